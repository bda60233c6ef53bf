//! The session file on disk: create, open (with recovery of a torn final write), and durable
//! appends. The format and its parser live in `theta_crdt::store`; this module is the only place
//! that touches the file.
//!
//! Durability (fsync) policy: `append` writes a batch of commands and calls `sync_data` before it
//! returns, so a command is on disk before anyone is told it is saved, or before it is sent to a
//! peer (which is also what keeps sequence numbers from ever being reused after a crash). Callers
//! group-commit by passing several commands to one `append`. A new file is written to a temporary
//! name, synced, and renamed into place, so a crash never leaves a half-made session file.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use theta_crdt::ids::CommandId;
use theta_crdt::store::{self, Parsed};

/// An open session file, positioned for appends.
#[derive(Debug)]
pub struct SessionFile {
    path: PathBuf,
    file: File,
}

/// What opening a file found.
#[derive(Debug)]
pub struct Opened {
    /// The file, ready for appends.
    pub file: SessionFile,
    /// The session id from the header.
    pub session: CommandId,
    /// The commands, in file order.
    pub commands: Vec<Arc<[u8]>>,
    /// Bytes of a torn final write that were dropped (0 if the file was clean).
    pub dropped: u64,
}

impl SessionFile {
    /// Creates a new session file holding its genesis command. Fails if the file exists.
    pub fn create(path: &Path, session: &CommandId, genesis: &[u8]) -> Result<SessionFile> {
        if path.exists() {
            bail!("{} already exists", path.display());
        }
        let mut bytes = store::encode_header(session).to_vec();
        store::encode_command_record(genesis, &mut bytes);
        crate::cli::write_atomic(path, &bytes)?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(SessionFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Opens a session file. A torn final write is dropped (the file is truncated to its last
    /// whole record, and `dropped` says how much went); any other damage is an error naming it, and
    /// the file is left exactly as it was.
    pub fn open(path: &Path) -> Result<Opened> {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let Parsed {
            session,
            commands,
            valid_len,
            dropped,
        } = store::parse(&bytes).with_context(|| format!("opening {}", path.display()))?;
        let mut file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening {} for writing", path.display()))?;
        if dropped > 0 {
            file.set_len(valid_len)
                .with_context(|| format!("recovering {}", path.display()))?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok(Opened {
            file: SessionFile {
                path: path.to_path_buf(),
                file,
            },
            session,
            commands,
            dropped,
        })
    }

    /// Appends commands and makes them durable before returning (see the module docs).
    pub fn append(&mut self, commands: &[&[u8]]) -> Result<()> {
        let mut buf = Vec::with_capacity(commands.iter().map(|c| c.len() + 16).sum());
        for c in commands {
            store::encode_command_record(c, &mut buf);
        }
        self.file
            .write_all(&buf)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.file
            .sync_data()
            .with_context(|| format!("syncing {}", self.path.display()))?;
        Ok(())
    }
}
