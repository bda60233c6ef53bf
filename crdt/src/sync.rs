//! Sync between two peers' logs: an IO-less state machine, driven by whatever transport carries its
//! messages (a QUIC stream in the app, an in-memory queue in tests and the simulator).
//!
//! 1. Each side sends a [`Message::Summary`]: its chain tip per author (sequence number and id).
//! 2. Each side answers with exactly the commands the other lacks by that summary: for every
//!    author, the commands past the other's tip (all of them for authors the other has never
//!    seen), ordered so dependencies come first, in batches of bounded byte size
//!    ([`Message::Commands`]).
//! 3. A receiver whose log reports missing dependencies (it happens when an author equivocated and
//!    the two peers hold different branches) asks for them by id ([`Message::Want`]).
//!
//! Nothing is resent that the other side already had when it sent its summary, and a sync that is
//! cut off resumes from a fresh summary: what arrived before the cut is in the receiver's log and so
//! in its tips. There is no fallback to sending the whole log.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::ids::CommandId;
use crate::log::Log;

/// Default batch size: what fits a gossip message with room to spare.
pub const DEFAULT_BATCH_BYTES: usize = 60 * 1024;
/// Most ids one `Want` may ask for.
pub const MAX_WANT: usize = 1024;
/// Most tips a summary may carry (one per author).
pub const MAX_TIPS: usize = 4096;

/// An author's chain tip, compactly: eight-byte prefixes of the author's key and of the tip
/// command's id, and the tip's sequence number. A summary of three authors fits in about 120 bytes.
/// A prefix that matches several of the receiver's authors is treated as unknown (all their
/// commands are sent), so a collision costs bytes, never correctness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// First eight bytes of the author's key, little-endian.
    pub author_prefix: u64,
    /// Their highest sequence number in the log.
    pub seq: u64,
    /// First eight bytes of that command's id, little-endian.
    pub id_prefix: u64,
}

fn prefix(b: &[u8; 32]) -> u64 {
    let mut p = [0u8; 8];
    p.copy_from_slice(&b[..8]);
    u64::from_le_bytes(p)
}

/// A sync message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// What the sender holds.
    Summary {
        /// First eight bytes of the session id, so crossed wires stop at once.
        session_prefix: u64,
        /// Chain tips, one per author, in author order.
        tips: Vec<Tip>,
    },
    /// Commands the receiver lacks, dependencies first.
    Commands {
        /// Signed command bytes.
        commands: Vec<Arc<[u8]>>,
        /// True if more batches follow for this summary.
        more: bool,
    },
    /// Commands the sender needs by id (missing dependencies).
    Want {
        /// The ids.
        ids: Vec<CommandId>,
    },
}

/// Why a peer's sync message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The peer is in another session.
    #[error("the peer is in another session")]
    WrongSession,
    /// The message breaks a limit (too many tips or wanted ids).
    #[error("sync message too large: {0}")]
    TooLarge(&'static str),
}

/// The per-author tips of a log, in author order.
pub fn tips(log: &Log) -> Vec<Tip> {
    log.authors()
        .filter_map(|a| {
            let seq = log.last_seq(&a);
            let id = log.chain_command(&a, seq)?;
            Some(Tip {
                author_prefix: prefix(&a.0),
                seq,
                id_prefix: prefix(&id.0),
            })
        })
        .collect()
}

/// The commands `log` holds that a peer with these tips lacks, with their ids, dependencies first
/// (total order).
fn missing_for(log: &Log, theirs: &[Tip]) -> Vec<(CommandId, Arc<[u8]>)> {
    let theirs: BTreeMap<u64, &Tip> = theirs.iter().map(|t| (t.author_prefix, t)).collect();
    let mut mine_by_prefix: BTreeMap<u64, usize> = BTreeMap::new();
    for a in log.authors() {
        *mine_by_prefix.entry(prefix(&a.0)).or_default() += 1;
    }
    let mut ids: Vec<(u64, CommandId)> = Vec::new();
    for a in log.authors() {
        let p = prefix(&a.0);
        let tip = if mine_by_prefix.get(&p) == Some(&1) {
            theirs.get(&p)
        } else {
            None
        };
        let from = match tip {
            None => 1,
            // Same command at their tip: they have everything up to it.
            Some(t) if log.chain_command(&a, t.seq).map(|c| prefix(&c.0)) == Some(t.id_prefix) => {
                t.seq + 1
            }
            // A different command at that number (equivocation) or a number we lack: send from
            // there; missing earlier branch commands are then asked for by id.
            Some(t) => t.seq.max(1),
        };
        for id in log.chain_from(&a, from) {
            if let Some(e) = log.get(&id) {
                ids.push((e.lamport, id));
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    with_bytes(log, ids.into_iter().map(|(_, id)| id).collect())
}

/// The ids with their stored bytes, in the order given (read frame by frame: see
/// [`Log::bytes_of`]).
fn with_bytes(log: &Log, ids: Vec<CommandId>) -> Vec<(CommandId, Arc<[u8]>)> {
    let bytes = log.bytes_of(&ids);
    ids.into_iter()
        .zip(bytes)
        .filter_map(|(id, b)| Some((id, b?)))
        .collect()
}

/// One side of a sync exchange.
#[derive(Debug, Clone)]
pub struct SyncSession {
    session: CommandId,
    batch_bytes: usize,
    /// Commands queued to send, with their ids (so nothing is hashed again to deduplicate).
    outbox: VecDeque<(CommandId, Arc<[u8]>)>,
    /// Ids sent since the peer's last summary, so a `Want` never resends them twice.
    sent: BTreeSet<CommandId>,
}

impl SyncSession {
    /// Starts an exchange for the log's session; returns the summary to send first.
    pub fn start(log: &Log, batch_bytes: usize) -> Option<(SyncSession, Message)> {
        let session = log.session()?;
        let s = SyncSession {
            session,
            batch_bytes: batch_bytes.max(1),
            outbox: VecDeque::new(),
            sent: BTreeSet::new(),
        };
        Some((
            s,
            Message::Summary {
                session_prefix: prefix(&session.0),
                tips: tips(log),
            },
        ))
    }

    /// Handles the peer's summary or want: queues what the peer lacks. Commands the peer sends are
    /// not handled here; the caller verifies and inserts them, and asks for missing dependencies
    /// with [`SyncSession::want`].
    pub fn handle(&mut self, log: &Log, msg: &Message) -> Result<(), SyncError> {
        match msg {
            Message::Summary {
                session_prefix,
                tips,
            } => {
                if *session_prefix != prefix(&self.session.0) {
                    return Err(SyncError::WrongSession);
                }
                if tips.len() > MAX_TIPS {
                    return Err(SyncError::TooLarge("tips"));
                }
                // The summary says what the peer holds now: whatever it lacks goes, even if it
                // was sent before (it may have been refused then, e.g. with the pending set full).
                self.sent.clear();
                self.outbox.extend(missing_for(log, tips));
            }
            Message::Want { ids } => {
                if ids.len() > MAX_WANT {
                    return Err(SyncError::TooLarge("want"));
                }
                // Wanted commands go out with their own missing ancestry resolved the same way.
                let mut found: Vec<(u64, CommandId)> = ids
                    .iter()
                    .filter_map(|id| log.get(id).map(|e| (e.lamport, *id)))
                    .collect();
                found.sort_unstable();
                let ids = found.into_iter().map(|(_, id)| id).collect();
                self.outbox.extend(with_bytes(log, ids));
            }
            Message::Commands { .. } => {}
        }
        Ok(())
    }

    /// A request for commands the caller's log reported missing.
    pub fn want(&self, missing: &[CommandId]) -> Option<Message> {
        let mut ids: Vec<CommandId> = missing.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(MAX_WANT);
        (!ids.is_empty()).then_some(Message::Want { ids })
    }

    /// The next batch to send, at most `batch_bytes` of command bytes (a single larger command goes
    /// alone), or `None` when nothing is queued.
    pub fn poll(&mut self) -> Option<Message> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some((_, c)) = self.outbox.front() {
            if !batch.is_empty() && bytes + c.len() > self.batch_bytes {
                break;
            }
            let Some((id, c)) = self.outbox.pop_front() else {
                break;
            };
            if !self.sent.insert(id) {
                continue;
            }
            bytes += c.len();
            batch.push(c);
        }
        if batch.is_empty() {
            return None;
        }
        Some(Message::Commands {
            commands: batch,
            more: !self.outbox.is_empty(),
        })
    }
}
