//! A helper process for the crash-safety tests (`tests/crash.rs`): opens (or creates) a session
//! file and appends generated commands one durable append at a time, printing `saved <n>` after
//! each append returns. The test kills it with SIGKILL at random moments and checks that every
//! command reported saved is still there.
//!
//! Usage: `theta-crash-writer <file> <seed> <count>`

use std::io::Write;

use anyhow::{Context, Result};
use theta::store::SessionFile;
use theta_crdt::log::verify_command;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().context("file")?);
    let seed: u64 = args.next().context("seed")?.parse()?;
    let count: usize = args.next().context("count")?.parse()?;
    let cmds = theta_crdt::workload::session(seed, 2, count);
    let genesis = verify_command(&cmds[0]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut file, have) = if path.exists() {
        let o = SessionFile::open(&path)?;
        (o.file, o.commands.len())
    } else {
        (SessionFile::create(&path, &genesis.id(), &cmds[0])?, 1)
    };
    let mut out = std::io::stdout().lock();
    for (i, c) in cmds.iter().enumerate().skip(have) {
        file.append(&[c])?;
        writeln!(out, "saved {}", i + 1)?;
        out.flush()?;
    }
    writeln!(out, "done")?;
    Ok(())
}
