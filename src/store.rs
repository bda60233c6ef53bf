//! The session file on disk: create, open (with recovery of a torn final write, and from the
//! checkpoint beside it when one matches), durable appends, compaction and checkpoints. The formats
//! and their parsers live in `theta_crdt::store` and `theta_crdt::checkpoint`; this module is the
//! only place that touches the files.
//!
//! Durability (fsync) policy: `append` writes a batch of commands and calls `sync_data` before it
//! returns, so a command is on disk before anyone is told it is saved, or before it is sent to a
//! peer (which is also what keeps sequence numbers from ever being reused after a crash). Callers
//! group-commit by passing several commands to one `append`.
//!
//! Whole-file writes (creating a session, compacting it, saving a checkpoint) go to a temporary
//! file that is synced and then renamed over the target, so a crash leaves the old file or the new
//! one, never a mix. Compaction runs when the commands appended since the last one reach a quarter
//! of the compacted size (at least 1 MiB), so its rewrites cost a bounded share of the writes.
//! The checkpoint (`<file>.checkpoint`) is a cache: when it is missing, stale or damaged the session
//! opens by verifying and folding every command, and says why.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use theta_crdt::checkpoint;
use theta_crdt::fold::Replica;
use theta_crdt::ids::CommandId;
use theta_crdt::store::{self, Parsed};

/// Compaction never runs for fewer loose bytes than this.
pub const MIN_COMPACTION_BYTES: u64 = 1 << 20;
/// zstd level of blocks appended whole ([`SessionFile::append_blocks`]): on the catch-up path,
/// so fast rather than small.
pub const CATCH_UP_LEVEL: i32 = 3;

/// Commands encoded as compressed blocks for [`SessionFile::append_encoded`] (zstd level
/// [`CATCH_UP_LEVEL`]), with their records' checks.
#[derive(Debug)]
pub struct Blocks {
    buf: Vec<u8>,
    checks: Vec<[u8; 8]>,
}

impl Blocks {
    /// Encodes these commands, in this order.
    pub fn encode(commands: &[&[u8]]) -> Blocks {
        let mut buf = Vec::new();
        let checks = store::encode_block_records(commands, CATCH_UP_LEVEL, &mut buf);
        Blocks { buf, checks }
    }
}

/// An open session file, positioned for appends.
#[derive(Debug)]
pub struct SessionFile {
    path: PathBuf,
    file: File,
    /// Every command's record checksum, in file order (for checkpoints).
    checks: Vec<[u8; 8]>,
    /// Bytes of single-command records after the last compressed block.
    loose_bytes: u64,
    /// Bytes before them (header and blocks).
    compacted_bytes: u64,
    min_compaction: u64,
    /// Whether appends leave compaction to [`SessionFile::compact_if_due`] (called in idle
    /// time) until [`DEFERRED_COMPACTION`] times the usual amount has piled up.
    deferred: bool,
}

/// With compaction deferred to idle time, an append still compacts once this many times the
/// usual amount of loose bytes has piled up (a long burst with no idle moment), so the file's
/// rewrites stay a bounded share of its writes.
pub const DEFERRED_COMPACTION: u64 = 4;

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

/// A session opened into a replica.
#[derive(Debug)]
pub struct OpenedSession {
    /// The file, ready for appends.
    pub file: SessionFile,
    /// The replica and what opening it found (checkpoint used or why not, refused records).
    pub opened: theta_crdt::open::Opened,
    /// Bytes of a torn final write that were dropped (0 if the file was clean).
    pub dropped: u64,
}

/// A fresh secret seed for batch verification's random coefficients (the crate takes it as
/// input: it has no randomness of its own).
pub(crate) fn verification_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| anyhow::anyhow!("drawing a verification seed: {e}"))?;
    Ok(seed)
}

/// The checkpoint file that belongs to a session file.
pub fn checkpoint_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".checkpoint");
    PathBuf::from(name)
}

impl SessionFile {
    /// Creates a new session file holding its genesis command. Fails if the file exists.
    pub fn create(path: &Path, session: &CommandId, genesis: &[u8]) -> Result<SessionFile> {
        if path.exists() {
            bail!("{} already exists", path.display());
        }
        let mut bytes = store::encode_header(session).to_vec();
        let check = store::encode_command_record(genesis, &mut bytes);
        crate::cli::write_atomic(path, &bytes)?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(SessionFile {
            path: path.to_path_buf(),
            file,
            checks: vec![check],
            loose_bytes: (bytes.len() - store::HEADER_LEN) as u64,
            compacted_bytes: store::HEADER_LEN as u64,
            min_compaction: MIN_COMPACTION_BYTES,
            deferred: false,
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
            checks,
            valid_len,
            dropped,
            tail_offset,
            ..
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
                checks,
                loose_bytes: valid_len - tail_offset,
                compacted_bytes: tail_offset,
                min_compaction: MIN_COMPACTION_BYTES,
                deferred: false,
            },
            session,
            commands,
            dropped,
        })
    }

    /// Opens a session file into a replica: from the checkpoint beside it where that matches the
    /// file, else by verifying and folding every command (see `theta_crdt::open`).
    pub fn open_session(path: &Path) -> Result<OpenedSession> {
        let o = SessionFile::open(path)?;
        let ck = match fs::read(checkpoint_path(path)) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                warn(&format!("cannot read the checkpoint: {e}"));
                None
            }
        };
        let opened = theta_crdt::open::open(
            o.session,
            &o.commands,
            &o.file.checks,
            ck.as_deref(),
            verification_seed()?,
        );
        Ok(OpenedSession {
            file: o.file,
            opened,
            dropped: o.dropped,
        })
    }

    /// Sets the least number of loose bytes that triggers a compaction (tests use small ones).
    pub fn set_min_compaction(&mut self, bytes: u64) {
        self.min_compaction = bytes;
    }

    /// Every command's record checksum, in file order.
    pub fn checks(&self) -> &[[u8; 8]] {
        &self.checks
    }

    /// Appends commands and makes them durable before returning (see the module docs); then
    /// compacts the file if enough has accumulated since the last compaction.
    pub fn append(&mut self, commands: &[&[u8]]) -> Result<()> {
        let mut buf = Vec::with_capacity(commands.iter().map(|c| c.len() + 16).sum());
        for c in commands {
            self.checks.push(store::encode_command_record(c, &mut buf));
        }
        self.write_durable(&buf)?;
        self.loose_bytes += buf.len() as u64;
        let factor = if self.deferred {
            DEFERRED_COMPACTION
        } else {
            1
        };
        if self.loose_bytes >= self.compaction_threshold().saturating_mul(factor) {
            self.compact()?;
        }
        Ok(())
    }

    /// Loose bytes that make a compaction due: a quarter of the compacted size, at least the
    /// minimum.
    fn compaction_threshold(&self) -> u64 {
        self.min_compaction.max(self.compacted_bytes / 4)
    }

    /// Leaves compaction to [`SessionFile::compact_if_due`] (see [`DEFERRED_COMPACTION`]); the
    /// session defers its checkpoints by the same flag.
    pub fn defer_housekeeping(&mut self, deferred: bool) {
        self.deferred = deferred;
    }

    /// Whether housekeeping waits for idle time (see [`SessionFile::defer_housekeeping`]).
    pub fn housekeeping_deferred(&self) -> bool {
        self.deferred
    }

    /// Compacts the file if enough has piled up since the last compaction; returns whether it
    /// did.
    pub fn compact_if_due(&mut self) -> Result<bool> {
        if self.loose_bytes < self.compaction_threshold() {
            return Ok(false);
        }
        self.compact()?;
        Ok(true)
    }

    /// Writes bytes at the end of the file and syncs them.
    fn write_durable(&mut self, buf: &[u8]) -> Result<()> {
        self.file
            .write_all(buf)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.file
            .sync_data()
            .with_context(|| format!("syncing {}", self.path.display()))
    }

    /// Appends commands as compressed blocks (zstd level [`CATCH_UP_LEVEL`]) and makes them
    /// durable before returning: for large batches, such as a catch-up, which would otherwise be
    /// written loose and read back and rewritten by every compaction while the file grows.
    pub fn append_blocks(&mut self, commands: &[&[u8]]) -> Result<()> {
        self.append_encoded(Blocks::encode(commands))
    }

    /// [`SessionFile::append_blocks`] for blocks encoded beforehand (on another thread, while
    /// the session was busy).
    pub fn append_encoded(&mut self, blocks: Blocks) -> Result<()> {
        let Blocks { buf, checks } = blocks;
        self.write_durable(&buf)?;
        self.checks.extend(checks);
        // Loose records before a block are no longer the file's tail: compaction keeps them as
        // they are, so they count as compacted from now on.
        self.compacted_bytes += self.loose_bytes + buf.len() as u64;
        self.loose_bytes = 0;
        Ok(())
    }

    /// Rewrites the file with the loose commands in compressed blocks (atomically: a crash leaves
    /// the old file or the new one), then goes on appending to the new file.
    pub fn compact(&mut self) -> Result<()> {
        let bytes =
            fs::read(&self.path).with_context(|| format!("reading {}", self.path.display()))?;
        let compacted = store::compact(&bytes)
            .with_context(|| format!("compacting {}", self.path.display()))?;
        crate::cli::write_atomic(&self.path, &compacted)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("reopening {}", self.path.display()))?;
        self.compacted_bytes = compacted.len() as u64;
        self.loose_bytes = 0;
        Ok(())
    }

    /// Saves a checkpoint of a settled replica whose log is exactly this file's commands (in the
    /// order the log admitted them, which is the order they were appended).
    /// Returns the checkpoint's bytes.
    pub fn write_checkpoint(&self, replica: &Replica) -> Result<Vec<u8>> {
        let bytes = checkpoint::encode(replica, &self.checks)
            .with_context(|| format!("checkpointing {}", self.path.display()))?;
        crate::cli::write_atomic(&checkpoint_path(&self.path), &bytes)?;
        Ok(bytes)
    }

    /// Every command in the file, read back from disk, in file order; an error if the file no
    /// longer matches what this handle wrote.
    pub fn read_commands(&self) -> Result<Vec<Arc<[u8]>>> {
        let bytes =
            fs::read(&self.path).with_context(|| format!("reading {}", self.path.display()))?;
        let parsed =
            store::parse(&bytes).with_context(|| format!("reading {}", self.path.display()))?;
        if parsed.checks != self.checks {
            bail!("{} changed on disk while open", self.path.display());
        }
        Ok(parsed.commands)
    }
}

/// One line on stderr for a problem that does not stop anything (the engine's telemetry will
/// take these over).
fn warn(msg: &str) {
    eprintln!("theta: warning: {msg}");
}
