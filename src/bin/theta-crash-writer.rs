//! A helper process for the crash-safety tests (`tests/crash.rs`): opens (or creates) a session
//! with the local session driver (`theta::session`) and feeds it generated commands one at a
//! time, printing `saved <n>` after each one is durable. The driver compacts the file whenever
//! `compact_bytes` of loose records have accumulated and checkpoints every `checkpoint_every`
//! commands, so the test's kills land in appends, compactions and checkpoint writes alike.
//!
//! Usage: `theta-crash-writer <file> <seed> <count> <compact_bytes> <checkpoint_every>`

use std::io::Write;

use anyhow::{Context, Result};
use theta::session::Session;
use theta_crdt::workload::author_key;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().context("file")?);
    let seed: u64 = args.next().context("seed")?.parse()?;
    let count: usize = args.next().context("count")?.parse()?;
    let compact_bytes: u64 = args.next().context("compact_bytes")?.parse()?;
    let checkpoint_every: usize = args.next().context("checkpoint_every")?.parse()?;
    let cmds = theta_crdt::workload::session(seed, 2, count);
    // The generated session's first author made its genesis; the writer acts as that user.
    let me = author_key(0);
    let mut s = if path.exists() {
        Session::open(&path, &me)?.0
    } else {
        let s = Session::create(&path, &me, "generated")?;
        anyhow::ensure!(
            s.replica()
                .log()
                .get(&theta_crdt::log::verify_command(&cmds[0])?.id())
                .is_some(),
            "the generator's genesis is this session's"
        );
        s
    };
    s.set_intervals(checkpoint_every, compact_bytes);
    let have = s.replica().log().len();
    let mut out = std::io::stdout().lock();
    for (i, c) in cmds.iter().enumerate().skip(have) {
        s.receive(c)?;
        writeln!(out, "saved {}", i + 1)?;
        out.flush()?;
    }
    writeln!(out, "done")?;
    Ok(())
}
