//! A session on this machine: its replica and its file, kept in step. Every command that enters the
//! log is on disk first (own edits before they are folded or sent; others' commands in the order
//! the log admitted them), so a crash loses nothing that was reported saved and sequence numbers
//! are never reused. A checkpoint is saved every [`CHECKPOINT_EVERY`] commands, or every eighth
//! of the log once that is more (each checkpoint holds the whole scene, so a fixed interval would
//! make a long session's checkpoints cost the square of its length), and on `close`, so reopening
//! is fast; the file compacts itself as it grows (see `store.rs`).
//!
//! The network layer and the editor drive this; `theta new` and the tests use it directly.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use theta_crdt::author;
use theta_crdt::command::Op;
use theta_crdt::fold::Replica;
use theta_crdt::ids::CommandId;
use theta_crdt::log::{InsertError, Inserted, Verified, verify_command};
use theta_crdt::scene::Event;
use theta_crdt::sign::Keypair;

use crate::store::SessionFile;

/// Checks a batch of received commands, in order: large batches (catch-up) with batch
/// verification on all cores, under the same rule as one at a time. Pure: no session needed.
pub fn verify_batch(commands: &[&[u8]]) -> Result<Vec<Result<Verified, InsertError>>> {
    let arcs: Vec<std::sync::Arc<[u8]>> =
        commands.iter().map(|c| std::sync::Arc::from(*c)).collect();
    verify_shared(&arcs)
}

/// [`verify_batch`] for commands already in shared buffers (as sync messages deliver them).
pub fn verify_shared(
    commands: &[std::sync::Arc<[u8]>],
) -> Result<Vec<Result<Verified, InsertError>>> {
    let _span = tracing::debug_span!("verify", commands = commands.len()).entered();
    let t = std::time::Instant::now();
    let out = if commands.len() >= 16 {
        theta_crdt::log::verify_commands_parallel(commands, crate::store::verification_seed()?)
    } else {
        commands.iter().map(|b| verify_command(b)).collect()
    };
    crate::telemetry::metrics().verified(commands.len(), t.elapsed());
    Ok(out)
}

/// A batch verified, and for a long one its file blocks encoded, away from the session (see
/// [`prepare`]).
#[derive(Debug)]
pub struct Prepared {
    verified: Vec<Result<Verified, InsertError>>,
    /// The valid commands' ids in order, and their blocks: what the file gets if the log admits
    /// exactly those, in that order (nearly every catch-up batch).
    blocks: Option<(Vec<CommandId>, crate::store::Blocks)>,
}

impl Prepared {
    /// Commands verified elsewhere, with nothing encoded for the file yet.
    pub fn verified(verified: Vec<Result<Verified, InsertError>>) -> Prepared {
        Prepared {
            verified,
            blocks: None,
        }
    }
}

/// Verifies a batch ([`verify_shared`]) and, when at least [`BLOCK_BATCH`] commands are valid,
/// encodes the compressed blocks the session will append if its log admits exactly those. A
/// connection does this for a catch-up's next batch while the session saves and folds the one
/// before, which takes the compression off the session's path (it was a tenth of a late
/// joiner's time there).
pub fn prepare(commands: &[std::sync::Arc<[u8]>]) -> Result<Prepared> {
    let verified = verify_shared(commands)?;
    let valid: Vec<&Verified> = verified.iter().filter_map(|v| v.as_ref().ok()).collect();
    let blocks = (valid.len() >= BLOCK_BATCH).then(|| {
        let refs: Vec<&[u8]> = valid.iter().map(|v| &v.bytes()[..]).collect();
        (
            valid.iter().map(|v| v.id()).collect(),
            crate::store::Blocks::encode(&refs),
        )
    });
    Ok(Prepared { verified, blocks })
}

/// Batches of at least this many admitted commands (catch-up) are saved as compressed blocks.
pub const BLOCK_BATCH: usize = 64;
/// Commands between automatic checkpoints, at least (see the module docs).
pub const CHECKPOINT_EVERY: usize = 4096;

/// With housekeeping deferred to idle time ([`Session::defer_housekeeping`]), a checkpoint is
/// still saved inline once this many times the usual interval has passed without one.
pub const DEFERRED_CHECKPOINT: usize = 4;

/// Objects one idle step packs (see [`Session::idle`]).
const IDLE_PACK_STEP: usize = 64;
/// Automatic checkpoints are at least this share of the log apart (1/8): a checkpoint writes the
/// whole scene, so the bytes they write over a session grow with its length, not its square,
/// while a reopen after a crash folds at most an eighth of the log past the last one.
pub const CHECKPOINT_SHARE: usize = 8;

/// An open session: the user's key, the replica and the file.
#[derive(Debug)]
pub struct Session {
    key: Keypair,
    replica: Replica,
    file: SessionFile,
    since_checkpoint: usize,
    checkpoint_every: usize,
    /// The fold's events not yet taken, once someone asked to keep them (a window that
    /// projects the scene while the network feeds it).
    feed: Option<Vec<Event>>,
    /// Opened by folding the whole file (no checkpoint matched): idle time reloads the replica
    /// from its first checkpoint (see [`Session::idle`]).
    folded_at_open: bool,
    /// Logs at least this long are reloaded ([`RELOAD_AFTER_OPEN`] unless a test sets it).
    reload_min: usize,
    /// Whether idle time has given freed memory back since it last did any work (see
    /// [`crate::memory::give_back`]).
    given_back: bool,
}

/// A session opened by folding its whole file, with at least this many commands, is reloaded from
/// its first checkpoint in idle time. A fold of every command leaves the memory allocator's pages
/// shot through with the holes of what it freed (decoded operations, replaced meshes, undo
/// records, thinned snapshots) between what stays: a 100,000-command session held 116 MB
/// resident for 60 MB of live data. Restored from the checkpoint, the same replica is built in
/// one pass with few temporaries, and the old one's pages go back whole: 52 MB, as a session
/// opened from its checkpoint holds (`theta bench memory`).
pub const RELOAD_AFTER_OPEN: usize = 16_384;

/// What a batch from a peer did.
#[derive(Debug, Default)]
pub struct Batch {
    /// Commands the log admitted (the batch's and any waiting ones they released).
    pub admitted: Vec<CommandId>,
    /// Commands already held.
    pub duplicates: usize,
    /// Dependencies still missing (to ask the peer for).
    pub missing: Vec<CommandId>,
    /// Commands refused, by index in the batch, and why.
    pub refused: Vec<(usize, theta_crdt::log::InsertError)>,
    /// What the fold changed.
    pub events: Vec<Event>,
}

/// What opening a session found, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes of a torn final write that were dropped.
    pub dropped: u64,
    /// Commands restored from the checkpoint (0: none used).
    pub from_checkpoint: u64,
    /// Why a checkpoint was not used, if there was one.
    pub checkpoint_problem: Option<String>,
    /// Records refused (bad signature, malformed), if any.
    pub refused: usize,
}

impl Session {
    /// Creates a new session file at `path`, with `key`'s genesis naming it `name`.
    pub fn create(path: &Path, key: &Keypair, name: &str) -> Result<Session> {
        let g = author::genesis(key, name);
        let v = verify_command(&g).map_err(|e| anyhow!("making the genesis: {e}"))?;
        Session::from_genesis(path, key, v)
    }

    /// A new session file at `path` holding just this (verified) genesis.
    fn from_genesis(path: &Path, key: &Keypair, v: theta_crdt::log::Verified) -> Result<Session> {
        let file = SessionFile::create(path, &v.id(), v.bytes())?;
        let mut replica = Replica::new(v.id());
        replica.insert(v)?;
        replica.settle();
        Ok(Session {
            key: key.clone(),
            replica,
            file,
            since_checkpoint: 1,
            checkpoint_every: CHECKPOINT_EVERY,
            feed: None,
            folded_at_open: false,
            reload_min: RELOAD_AFTER_OPEN,
            given_back: false,
        })
    }

    /// Opens a session file (from its checkpoint where that matches), to edit as `key`.
    pub fn open(path: &Path, key: &Keypair) -> Result<(Session, OpenReport)> {
        let _span = tracing::info_span!("open", path = %path.display()).entered();
        let o = SessionFile::open_session(path)?;
        let report = OpenReport {
            dropped: o.dropped,
            from_checkpoint: o.opened.from_checkpoint,
            checkpoint_problem: o.opened.checkpoint_error.as_ref().map(|e| e.to_string()),
            refused: o.opened.refused.len(),
        };
        let since = o.opened.replica.log().len() - o.opened.from_checkpoint as usize;
        Ok((
            Session {
                key: key.clone(),
                replica: o.opened.replica,
                file: o.file,
                since_checkpoint: since,
                checkpoint_every: CHECKPOINT_EVERY,
                feed: None,
                folded_at_open: report.from_checkpoint == 0,
                reload_min: RELOAD_AFTER_OPEN,
                given_back: false,
            },
            report,
        ))
    }

    /// Sets how many commands pass between automatic checkpoints, and how many loose bytes make
    /// the file compact (tests use small values so crashes land in both).
    pub fn set_intervals(&mut self, checkpoint_every: usize, min_compaction_bytes: u64) {
        self.checkpoint_every = checkpoint_every.max(1);
        self.file.set_min_compaction(min_compaction_bytes);
    }

    /// Sets the least log length at which a session opened by folding its whole file is
    /// reloaded from its first checkpoint ([`RELOAD_AFTER_OPEN`]; tests use small ones).
    pub fn set_reload_min(&mut self, commands: usize) {
        self.reload_min = commands;
    }

    /// Keeps the fold's change events from now on, for [`Session::take_events`] (whoever drives
    /// the session — the network — then need not pass them on).
    pub fn keep_events(&mut self) {
        self.feed.get_or_insert_with(Vec::new);
    }

    /// The change events since the last call (empty unless [`Session::keep_events`] was called).
    pub fn take_events(&mut self) -> Vec<Event> {
        self.feed.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Leaves the automatic checkpoints and the file's compaction to [`Session::idle`], for a
    /// driver that calls it when the session goes still (the network node does, 100 ms after
    /// the log last grew). Both are whole-file writes: done inline they held up every command
    /// behind them, and a live session is still far more often than not. A long burst with no
    /// still moment still checkpoints and compacts inline, once [`DEFERRED_CHECKPOINT`] and
    /// `store::DEFERRED_COMPACTION` times the usual amount has piled up.
    pub fn defer_housekeeping(&mut self, deferred: bool) {
        self.file.defer_housekeeping(deferred);
    }

    /// Idle-time housekeeping, one step at a time; true while more is left. A step is a
    /// checkpoint that is due, else a compaction that is due (both deferred here by
    /// [`Session::defer_housekeeping`]), else about a millisecond of packing the objects a long
    /// settle left cold, such as opening the file (see `theta_crdt::fold::Replica::pack_idle`).
    /// The first checkpoint of a session opened by folding its whole file is followed by
    /// reloading the replica from it (see [`RELOAD_AFTER_OPEN`]). When nothing is left, the
    /// memory freed meanwhile goes back to the system ([`crate::memory::give_back`]). None of
    /// them changes the session's state.
    pub fn idle(&mut self) -> Result<bool> {
        let more = self.idle_step()?;
        // Out of work: what it freed (and what the busy time before it freed) goes back to the
        // system, once per spell of housekeeping.
        if more {
            self.given_back = false;
        } else if !std::mem::replace(&mut self.given_back, true) {
            crate::memory::give_back();
        }
        Ok(more)
    }

    /// One step of [`Session::idle`]; true while more is left.
    fn idle_step(&mut self) -> Result<bool> {
        if self.since_checkpoint >= self.checkpoint_due() {
            let bytes = self.save_checkpoint()?;
            if std::mem::take(&mut self.folded_at_open)
                && self.replica.log().len() >= self.reload_min
            {
                self.reload(&bytes);
            }
            return Ok(true);
        }
        if self.file.compact_if_due()? {
            return Ok(true);
        }
        Ok(self.replica.pack_idle(IDLE_PACK_STEP))
    }

    /// The replica (log and scene).
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The session id.
    pub fn id(&self) -> Option<CommandId> {
        self.replica.log().session()
    }

    /// Makes an edit as this user: signs it on top of everything this replica holds, makes it
    /// durable, then folds it. Returns its id and the change events (a rejection among them if
    /// it conflicted with what it landed on).
    pub fn edit(&mut self, op: Op) -> Result<(CommandId, Vec<Event>)> {
        let _span = tracing::debug_span!("edit", kind = op.kind()).entered();
        let v = author::sign_local(&self.key, self.replica.log(), op)
            .map_err(|e| anyhow!("the edit does not encode: {e}"))?;
        let id = v.id();
        // Durable before it is folded or sent: its sequence number is then never reused.
        self.file.append(&[v.bytes()])?;
        self.replica.insert(v).context("inserting the edit")?;
        self.since_checkpoint += 1;
        let events = self.replica.settle();
        self.count(1, "local", &events);
        self.maybe_checkpoint()?;
        Ok((id, events))
    }

    /// Takes a command from a peer: verifies it, inserts it, and saves whatever the log admitted
    /// (it, and any waiting commands it released), in that order. Folds what was admitted.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(Inserted, Vec<Event>)> {
        let t = std::time::Instant::now();
        let v = verify_command(bytes)?;
        crate::telemetry::metrics().verified(1, t.elapsed());
        let r = self.replica.insert(v)?;
        let mut n = 0;
        if let Inserted::Added(ids) = &r {
            self.save_admitted(ids, None)?;
            n = ids.len();
        }
        let events = self.replica.settle();
        self.count(n, "remote", &events);
        self.maybe_checkpoint()?;
        Ok((r, events))
    }

    /// Takes a batch of commands from a peer with one group commit: verifies each, inserts what
    /// verifies, saves everything the log admitted in admission order with one fsync, then folds.
    /// Commands that do not decode or verify are reported in `refused` (by index) and change
    /// nothing; the rest of the batch still counts.
    ///
    /// With `more_follow` (a catch-up with further batches on the way) the automatic checkpoint
    /// waits for the last batch: a checkpoint is a whole-scene write, and one per 4,096 commands
    /// of a long catch-up would cost more than the catch-up itself. A session that defers its
    /// housekeeping ([`Session::defer_housekeeping`]) leaves it to idle time even after the last
    /// batch: a catch-up ends with nothing more to fetch, so idle time follows at once, and the
    /// newcomer no longer waits for the write (0.24 s after a 100,000-command catch-up) before
    /// it is up to date.
    pub fn receive_batch(&mut self, commands: &[&[u8]], more_follow: bool) -> Result<Batch> {
        let verified = verify_batch(commands)?;
        self.receive_verified(Prepared::verified(verified), more_follow)
    }

    /// [`Session::receive_batch`] for commands already checked with [`verify_batch`] (which
    /// needs no session, so a connection can verify one batch while the session folds the last).
    pub fn receive_verified(&mut self, batch: Prepared, more_follow: bool) -> Result<Batch> {
        let mut out = self.take_verified(batch)?;
        out.events = if more_follow {
            self.replica.settle_part()
        } else {
            self.replica.settle()
        };
        self.count(out.admitted.len(), "remote", &out.events);
        if !more_follow && !self.file.housekeeping_deferred() {
            self.maybe_checkpoint()?;
        }
        Ok(out)
    }

    /// [`Session::receive_batch`] without the fold: the batch is verified, inserted and saved,
    /// and [`Session::fold`] folds it later, together with whatever else arrived meanwhile.
    /// A peer that has several batches waiting takes them all and folds once: a batch that lands
    /// before commands already folded costs a rollback and a replay, and one rollback for many
    /// batches replays the tail once instead of once per batch.
    pub fn receive_batch_unfolded(&mut self, commands: &[&[u8]]) -> Result<Batch> {
        let verified = verify_batch(commands)?;
        let out = self.take_verified(Prepared::verified(verified))?;
        self.count(out.admitted.len(), "remote", &[]);
        Ok(out)
    }

    /// Folds what [`Session::receive_batch_unfolded`] took; returns the change events.
    pub fn fold(&mut self) -> Result<Vec<Event>> {
        let events = self.replica.settle();
        self.count(0, "remote", &events);
        self.maybe_checkpoint()?;
        Ok(events)
    }

    /// Inserts verified commands and saves what the log admitted, with one fsync.
    fn take_verified(&mut self, batch: Prepared) -> Result<Batch> {
        let Prepared { verified, blocks } = batch;
        let _span = tracing::debug_span!("receive", commands = verified.len()).entered();
        let mut out = Batch::default();
        let mut admitted_ids = Vec::new();
        for (i, v) in verified.into_iter().enumerate() {
            let v = match v {
                Ok(v) => v,
                Err(e) => {
                    out.refused.push((i, e));
                    continue;
                }
            };
            match self.replica.insert(v) {
                Ok(Inserted::Added(ids)) => admitted_ids.extend(ids),
                Ok(Inserted::Duplicate) => out.duplicates += 1,
                Ok(Inserted::Pending(missing)) => out.missing.extend(missing),
                Err(e) => out.refused.push((i, e)),
            }
        }
        self.save_admitted(&admitted_ids, blocks)?;
        out.missing.sort_unstable();
        out.missing.dedup();
        out.missing.retain(|id| !self.replica.log().contains(id));
        out.admitted = admitted_ids;
        Ok(out)
    }

    /// Counts applied commands and the fold's rejections, and the pending queue.
    fn count(&mut self, n: usize, origin: &str, events: &[Event]) {
        if let Some(f) = &mut self.feed {
            f.extend_from_slice(events);
        }
        let m = crate::telemetry::metrics();
        m.applied(origin, n as u64);
        m.rejected(events);
        m.pending.set(self.replica.log().pending_len() as i64);
    }

    /// Appends these admitted commands to the file, in this order, with one fsync: a batch of at
    /// least [`BLOCK_BATCH`] as compressed blocks, anything smaller as loose records. Blocks
    /// encoded beforehand ([`prepare`]) are written as they are if they hold exactly these.
    fn save_admitted(
        &mut self,
        ids: &[CommandId],
        prepared: Option<(Vec<CommandId>, crate::store::Blocks)>,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        match prepared {
            Some((prepared_ids, blocks)) if prepared_ids == ids => {
                self.file.append_encoded(blocks)?;
            }
            _ => {
                let admitted: Vec<_> = ids
                    .iter()
                    .filter_map(|id| self.replica.log().get(id).map(|e| e.bytes()))
                    .collect();
                let refs: Vec<&[u8]> = admitted.iter().map(|b| &b[..]).collect();
                if refs.len() >= BLOCK_BATCH {
                    self.file.append_blocks(&refs)?;
                } else {
                    self.file.append(&refs)?;
                }
            }
        }
        self.since_checkpoint += ids.len();
        Ok(())
    }

    /// Signs and saves several edits with one group commit, folds them, and returns their ids
    /// and signed bytes (to broadcast).
    pub fn edit_many(
        &mut self,
        ops: impl IntoIterator<Item = Op>,
    ) -> Result<Vec<(CommandId, Vec<u8>)>> {
        let mut signed = Vec::new();
        let mut ids = Vec::new();
        for op in ops {
            let v = author::sign_local(&self.key, self.replica.log(), op)
                .map_err(|e| anyhow!("the edit does not encode: {e}"))?;
            ids.push(v.id());
            signed.push(v.bytes().to_vec());
            self.replica.insert(v).context("inserting the edit")?;
        }
        let refs: Vec<&[u8]> = signed.iter().map(|b| &b[..]).collect();
        // Durable before anything is sent: sequence numbers are never reused.
        self.file.append(&refs)?;
        self.since_checkpoint += signed.len();
        let events = self.replica.settle();
        self.count(signed.len(), "local", &events);
        self.maybe_checkpoint()?;
        Ok(ids.into_iter().zip(signed).collect())
    }

    /// The user's key.
    pub fn key(&self) -> &Keypair {
        &self.key
    }

    /// Creates a session file for a session someone else started, from its genesis command
    /// (verified here), to join it as `key`.
    pub fn create_joined(path: &Path, key: &Keypair, genesis: &[u8]) -> Result<Session> {
        let v = verify_command(genesis).map_err(|e| anyhow!("the session's genesis: {e}"))?;
        Session::from_genesis(path, key, v)
    }

    /// Saves a checkpoint now.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.save_checkpoint().map(drop)
    }

    /// [`Session::checkpoint`], returning the checkpoint's bytes.
    fn save_checkpoint(&mut self) -> Result<Vec<u8>> {
        let _span = tracing::info_span!("checkpoint").entered();
        self.replica.settle();
        let bytes = self.file.write_checkpoint(&self.replica)?;
        self.since_checkpoint = 0;
        Ok(bytes)
    }

    /// Reopens the replica from `checkpoint` (just written) and the file's commands, as closing
    /// and opening the session would (see [`RELOAD_AFTER_OPEN`]). The old replica is dropped
    /// first, so that the new one is built into the pages it frees rather than beside them. That
    /// loses nothing: everything the log admitted is in the file (only commands still waiting
    /// for their dependencies are not, and a log holding any is not reloaded), and if the
    /// checkpoint did not restore, opening folds the file's commands instead.
    fn reload(&mut self, checkpoint: &[u8]) {
        let _span = tracing::info_span!("reload").entered();
        let t = std::time::Instant::now();
        let Some(session) = self.id() else { return };
        if self.replica.log().pending_len() > 0 {
            return;
        }
        // Everything that can fail comes before the old replica goes.
        let read = crate::store::verification_seed()
            .and_then(|seed| Ok((seed, self.file.read_commands()?)));
        let (seed, commands) = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("not reloaded: {e:#}");
                return;
            }
        };
        let (len, hash, packing) = (
            self.replica.log().len(),
            self.replica.scene().state_hash(),
            self.replica.packing(),
        );
        self.replica = Replica::new(session);
        let mut opened = theta_crdt::open::open(
            session,
            &commands,
            self.file.checks(),
            Some(checkpoint),
            seed,
        );
        drop(commands);
        opened.replica.set_packing(packing);
        self.replica = opened.replica;
        if let Some(e) = opened.checkpoint_error {
            tracing::warn!("reloading folded the file: the checkpoint did not restore: {e}");
        }
        if self.replica.log().len() != len || self.replica.scene().state_hash() != hash {
            tracing::error!(
                "the reloaded session differs from the one open before: {} commands, was {len}",
                self.replica.log().len()
            );
        }
        tracing::info!(
            commands = len,
            ms = t.elapsed().as_millis() as u64,
            "reloaded from the checkpoint"
        );
    }

    /// Saves a checkpoint (so the next open is fast) and closes the session.
    pub fn close(mut self) -> Result<()> {
        if self.since_checkpoint > 0 {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Commands after the last checkpoint that make the next one due.
    fn checkpoint_due(&self) -> usize {
        self.checkpoint_every
            .max(self.replica.log().len() / CHECKPOINT_SHARE)
    }

    fn maybe_checkpoint(&mut self) -> Result<()> {
        let factor = if self.file.housekeeping_deferred() {
            DEFERRED_CHECKPOINT
        } else {
            1
        };
        if self.since_checkpoint >= self.checkpoint_due().saturating_mul(factor) {
            self.checkpoint()?;
        }
        Ok(())
    }
}
