//! A helper process for the crash-safety tests (`tests/crash.rs`): opens (or creates) a session
//! file and appends generated commands one durable append at a time, printing `saved <n>` after
//! each append returns. It compacts the file whenever `compact_bytes` of loose records have
//! accumulated and saves a checkpoint every `checkpoint_every` commands, so the test's kills land
//! in appends, compactions and checkpoint writes alike. The test kills it with SIGKILL at random
//! moments and checks that every command reported saved is still there.
//!
//! Usage: `theta-crash-writer <file> <seed> <count> <compact_bytes> <checkpoint_every>`

use std::io::Write;

use anyhow::{Context, Result};
use theta::store::SessionFile;
use theta_crdt::fold::Replica;
use theta_crdt::log::verify_command;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().context("file")?);
    let seed: u64 = args.next().context("seed")?.parse()?;
    let count: usize = args.next().context("count")?.parse()?;
    let compact_bytes: u64 = args.next().context("compact_bytes")?.parse()?;
    let checkpoint_every: usize = args.next().context("checkpoint_every")?.parse()?;
    let cmds = theta_crdt::workload::session(seed, 2, count);
    let genesis = verify_command(&cmds[0]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut file, mut replica) = if path.exists() {
        let o = SessionFile::open_session(&path)?;
        (o.file, o.opened.replica)
    } else {
        let mut r = Replica::new(genesis.id());
        r.insert(genesis.clone())?;
        r.settle();
        (SessionFile::create(&path, &genesis.id(), &cmds[0])?, r)
    };
    file.set_min_compaction(compact_bytes);
    let have = replica.log().len();
    let mut out = std::io::stdout().lock();
    for (i, c) in cmds.iter().enumerate().skip(have) {
        replica.insert(verify_command(c).map_err(|e| anyhow::anyhow!("{e}"))?)?;
        file.append(&[c])?;
        writeln!(out, "saved {}", i + 1)?;
        out.flush()?;
        if (i + 1) % checkpoint_every == 0 {
            replica.settle();
            file.write_checkpoint(&replica)?;
        }
    }
    writeln!(out, "done")?;
    Ok(())
}
