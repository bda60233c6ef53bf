//! A helper process for the crash-safety tests (`tests/crash.rs`): opens (or creates) a session
//! with the local session driver (`theta::session`) and feeds it generated commands one at a
//! time, printing `saved <n>` after each one is durable. The driver compacts the file whenever
//! `compact_bytes` of loose records have accumulated and checkpoints every `checkpoint_every`
//! commands, so the test's kills land in appends, compactions and checkpoint writes alike.
//!
//! Usage: `theta-crash-writer <file> <seed> <count> <compact_bytes> <checkpoint_every>`
//!
//! With `edit` as its second argument (`theta-crash-writer <file> edit <count>`) it makes local
//! edits instead, as the session's creator, until its log holds `count` commands, printing
//! `signed <seq>` once each is durable: the kills then land between signing, saving and folding.

use std::io::Write;

use anyhow::{Context, Result};
use theta::session::Session;
use theta_crdt::workload::author_key;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().context("file")?);
    let mode = args.next().context("seed")?;
    if mode == "edit" {
        let count: usize = args.next().context("count")?.parse()?;
        return edit(&path, count);
    }
    let seed: u64 = mode.parse()?;
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

/// Local edits as the session's creator until the log holds `count` commands (see the module
/// docs). Each renames the session: a command of the author's own chain, cheap to fold.
fn edit(path: &std::path::Path, count: usize) -> Result<()> {
    let me = author_key(0);
    let mut s = if path.exists() {
        Session::open(path, &me)?.0
    } else {
        Session::create(path, &me, "edits")?
    };
    s.set_intervals(5, 1_500);
    let mut out = std::io::stdout().lock();
    while s.replica().log().len() < count {
        let n = s.replica().log().len();
        let (id, _) = s.edit(theta_crdt::command::Op::SetSessionName {
            name: format!("name {n}"),
        })?;
        let seq = s
            .replica()
            .log()
            .get(&id)
            .context("the edit is in the log")?
            .seq;
        writeln!(out, "signed {seq}")?;
        out.flush()?;
    }
    writeln!(out, "done")?;
    Ok(())
}
