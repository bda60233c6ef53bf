//! The command log: a grow-only DAG of signed commands, content-addressed by BLAKE3.
//!
//! Insertion checks, in order: size and decoding, the signature (ZIP-215, see `sign.rs`), duplicates
//! (a no-op), and then, once every dependency is present: the Lamport clock (1 + the largest among
//! the deps), the author chain (`seq` 1 has no own predecessor; `seq` n > 1 depends on the author's
//! command n − 1), and the session binding (one genesis, named by the session id). A command whose
//! deps are missing waits in a bounded pending set and is reported as needing them.
//!
//! Equivocation rule: an author who signs two different commands with the same sequence number `s`
//! forfeits every command of theirs with `seq ≥ s`. Both branches stay in the log (as evidence, and so
//! the rule is a function of the command set, whatever order peers saw them in) but fold to nothing.
//! Other authors' commands that depend on a forfeited command are unaffected: they fold normally and
//! are validated against the state they land on like any other command.
//!
//! Total order: by (Lamport clock, id). Because a command's clock exceeds every dependency's, this is
//! a topological order of the DAG.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::command::{Envelope, Op};
use crate::ids::{AuthorId, CommandId};
use crate::sign::{self, SignatureError};
use crate::wire::{self, DecodeError};

/// A command's place in the total order: (Lamport clock, id).
pub type OrderKey = (u64, CommandId);

/// One author's commands by sequence number, as admission indices (see [`Entries`]). A command with
/// `seq = n` is admitted only after one with `n − 1`, so the first claim of each number sits densely
/// at index `n − 1`; further claims of a number (equivocation) are rare and kept aside.
#[derive(Debug, Clone, Default)]
struct Chain {
    first: Vec<u32>,
    extra: Vec<(u64, u32)>,
}

impl Chain {
    /// Records a claim of `seq`; returns true if the number was already claimed.
    fn claim(&mut self, seq: u64, id: u32) -> bool {
        let i = (seq - 1) as usize;
        if i == self.first.len() {
            self.first.push(id);
            false
        } else {
            self.extra.push((seq, id));
            true
        }
    }

    /// Every command claiming a sequence number of at least `seq`.
    fn from(&self, seq: u64) -> impl Iterator<Item = &u32> {
        let i = (seq.max(1) - 1) as usize;
        self.first.get(i..).unwrap_or(&[]).iter().chain(
            self.extra
                .iter()
                .filter(move |(s, _)| *s >= seq)
                .map(|(_, id)| id),
        )
    }
}

/// Hashes a command id for the hash maps keyed by ids (rejections, undo records, footprints).
/// Ids are BLAKE3 outputs, so their first eight bytes are already uniform; they are mixed with a
/// key so that an attacker grinding ids cannot aim them at one bucket without knowing it. Such
/// maps are only ever probed, never iterated, so neither the hash nor the key can influence any
/// result, only the speed of lookups.
#[derive(Clone, Copy, Debug)]
pub struct IdHash {
    key: u64,
}

impl Default for IdHash {
    fn default() -> IdHash {
        ID_HASH
    }
}

/// The hasher [`IdHash`] builds.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher {
    key: u64,
    state: u64,
}

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            key: self.key,
            state: 0,
        }
    }
}

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.state = crate::ids::splitmix(u64::from_le_bytes(b) ^ self.key ^ self.state);
    }
    fn finish(&self) -> u64 {
        self.state
    }
}

/// Most commands waiting for missing dependencies at once.
pub const MAX_PENDING: usize = 4096;
/// Most bytes the pending set may cost at once. A waiting command costs what it holds: its bytes
/// and their decoded copy, its deps twice (entry and envelope) plus its entries in the index of
/// missing ids, and a fixed overhead. With [`MAX_PENDING`] this bounds what a peer flooding
/// commands whose dependencies never arrive can make another peer hold.
pub const MAX_PENDING_BYTES: usize = 8 << 20;

fn pending_cost(v: &Verified) -> usize {
    2 * v.bytes().len() + 160 * v.1.deps.len() + 512
}

/// A command's deps as the admission indices of the commands they name (every dep is admitted
/// before the command that names it), inline for the usual one or two (the previous head and the
/// author's own previous command): 24 bytes where the ids would take 72.
pub(crate) type Deps = smallvec::SmallVec<[u32; 2]>;

/// A verified command as the log stores it: its bytes, plus the few header fields the log itself
/// needs. The operation stays in the bytes and is decoded when the fold applies it ([`Entry::op`]):
/// the bytes are the truth, and keeping a decoded copy of every command would more than double the
/// log's memory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// BLAKE3 of the signed body.
    pub id: CommandId,
    /// The author.
    pub author: AuthorId,
    /// The author's sequence number.
    pub seq: u64,
    /// The Lamport clock.
    pub lamport: u64,
    deps: Deps,
    /// The stored bytes (`SignedCommand`: body and signature), canonically wrapped: on their own
    /// while recent, compressed with their neighbours once cold (see [`Entry::bytes`]).
    bytes: Stored,
    /// Where the log admitted it: 0 for the first command admitted, and so on. The session file
    /// holds commands in this order, which is what lets a checkpoint name them by position.
    pub(crate) admitted: u32,
}

impl PartialEq for Entry {
    /// Two entries are equal if they are the same command: where each log admitted it is
    /// bookkeeping, and differs between peers.
    fn eq(&self, o: &Entry) -> bool {
        self.id == o.id
            && self.author == o.author
            && self.seq == o.seq
            && self.lamport == o.lamport
            && self.with_bytes(|a| o.with_bytes(|b| a == b))
    }
}

/// Where an entry's bytes are: `len` bytes from `at` in a frame (16 bytes per entry; a hot
/// entry's frame is its own bytes).
#[derive(Clone)]
struct Stored {
    frame: Arc<Frame>,
    at: u32,
    len: u32,
}

impl Stored {
    fn hot(bytes: Arc<[u8]>) -> Stored {
        let len = bytes.len() as u32;
        Stored {
            frame: Arc::new(Frame::Raw(bytes)),
            at: 0,
            len,
        }
    }
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.frame {
            Frame::Raw(b) => write!(f, "{} bytes", b.len()),
            Frame::Z { .. } => write!(f, "{} bytes, compressed", self.len),
        }
    }
}

/// Bytes of commands: one command's on their own, or those of [`FRAME`] consecutive commands (by
/// admission), concatenated and compressed.
#[derive(Debug)]
enum Frame {
    Raw(Arc<[u8]>),
    Z { z: Box<[u8]>, raw_len: u32 },
}

/// A frame being compressed on another thread: which frame, and where the result goes (`None`
/// while running, then `Some` of what [`Frame::pack`] gave).
#[derive(Debug)]
struct Compressing {
    frame: u32,
    slot: Arc<std::sync::Mutex<Option<Option<Frame>>>>,
}

/// Commands per compressed frame: large enough for zstd to find what neighbouring commands
/// share (a frame is about 80 kB raw), small enough that reading one cold command costs tens
/// of microseconds.
pub const FRAME: usize = 256;

/// zstd level for cold frames: the session file's blocks use level 9 once, at compaction; the
/// log compresses while it folds.
const FRAME_LEVEL: i32 = 3;

thread_local! {
    /// The frame read last, inflated: reading a frame's commands in order (a late joiner's
    /// catch-up, a deep replay) inflates it once.
    static INFLATED: std::cell::RefCell<Option<(Arc<Frame>, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

impl Frame {
    fn pack(parts: &[&[u8]]) -> Option<Frame> {
        let raw: Vec<u8> = parts.concat();
        let z = zstd::bulk::compress(&raw, FRAME_LEVEL).ok()?;
        Some(Frame::Z {
            z: z.into_boxed_slice(),
            raw_len: u32::try_from(raw.len()).ok()?,
        })
    }
}

impl Entry {
    fn new(id: CommandId, env: &Envelope, bytes: Arc<[u8]>) -> Entry {
        Entry::from_parts(id, env.author, env.seq, env.lamport, Deps::new(), bytes)
    }

    /// An entry from its parts, for restoring a log from a checkpoint.
    pub(crate) fn from_parts(
        id: CommandId,
        author: AuthorId,
        seq: u64,
        lamport: u64,
        deps: Deps,
        bytes: Arc<[u8]>,
    ) -> Entry {
        Entry {
            id,
            author,
            seq,
            lamport,
            deps,
            bytes: Stored::hot(bytes),
            admitted: 0,
        }
    }

    /// The stored bytes (`SignedCommand`: body and signature), canonically wrapped. A recent
    /// command's are shared; a cold one's are inflated from its frame (the frame read last is kept
    /// inflated per thread, so reading in admission order inflates each frame once).
    pub fn bytes(&self) -> Arc<[u8]> {
        match &*self.bytes.frame {
            Frame::Raw(b) => b.clone(),
            Frame::Z { .. } => self.with_bytes(|b| Arc::from(b)),
        }
    }

    /// Runs `f` on the stored bytes without copying a cold command's out of its frame.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let Stored { frame, at, len } = &self.bytes;
        let (z, raw_len) = match &**frame {
            Frame::Raw(b) => return f(b),
            Frame::Z { z, raw_len } => (z, *raw_len),
        };
        INFLATED.with(|cell| {
            let mut cell = cell.borrow_mut();
            let fresh = !matches!(&*cell, Some((fr, _)) if Arc::ptr_eq(fr, frame));
            if fresh {
                // Only this log compressed the frame, from bytes it held: a failure here is
                // memory corruption, not input.
                let raw = zstd::bulk::decompress(z, raw_len as usize)
                    .expect("a cold frame inflates: the log compressed it");
                *cell = Some((frame.clone(), raw));
            }
            let raw = &cell.as_ref().expect("just filled").1;
            f(&raw[*at as usize..(*at + *len) as usize])
        })
    }

    /// Whether the bytes are held compressed.
    pub fn is_cold(&self) -> bool {
        matches!(*self.bytes.frame, Frame::Z { .. })
    }

    /// The operation, decoded from the stored bytes. The bytes decoded when the command was
    /// verified, so this fails only if memory was corrupted.
    pub fn op(&self) -> Result<Op, DecodeError> {
        self.with_bytes(|b| {
            let (body, _) = wire::decode_signed(b)?;
            Ok(wire::decode_body(body)?.op)
        })
    }

    /// The whole signed body, decoded.
    pub fn envelope(&self) -> Result<Envelope, DecodeError> {
        self.with_bytes(|b| {
            let (body, _) = wire::decode_signed(b)?;
            wire::decode_body(body)
        })
    }
}

/// A command whose signature has been checked. The only way to make one is [`verify_command`] or
/// [`verify_commands`], so every path into the log goes through the same rule.
#[derive(Debug, Clone)]
pub struct Verified(Entry, Envelope);

impl Verified {
    /// A command this process just signed (see [`crate::author::sign_local`]); decodes it without
    /// checking the signature.
    pub(crate) fn own(bytes: &[u8]) -> Result<Verified, DecodeError> {
        let (body, _) = wire::decode_signed(bytes)?;
        let env = wire::decode_body(body)?;
        let id = CommandId(*blake3::hash(body).as_bytes());
        let entry = Entry::new(id, &env, Arc::from(bytes));
        Ok(Verified(entry, env))
    }

    /// The stored bytes.
    pub fn bytes(&self) -> &Arc<[u8]> {
        match &*self.0.bytes.frame {
            Frame::Raw(b) => b,
            // A verified command is made with its bytes on their own; only the log's own
            // entries turn cold.
            Frame::Z { .. } => unreachable!("a verified command's bytes are never cold"),
        }
    }

    /// The command's id.
    pub fn id(&self) -> CommandId {
        self.0.id
    }
    /// The decoded body.
    pub fn envelope(&self) -> &Envelope {
        &self.1
    }
}

/// Why a command was refused. Refused commands change nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The bytes are not a well-formed command.
    #[error("malformed command: {0}")]
    Decode(#[from] DecodeError),
    /// The signature does not verify for the named author.
    #[error("command {id:?}: {err}")]
    Signature {
        /// The command.
        id: CommandId,
        /// Why.
        err: SignatureError,
    },
    /// The Lamport clock is not 1 + the largest among the deps.
    #[error("command {0:?}: wrong Lamport clock")]
    Lamport(CommandId),
    /// The author chain is broken: wrong sequence number or missing link to the previous command.
    #[error("command {0:?}: broken author chain: {1}")]
    Chain(CommandId, String),
    /// A genesis that is not this session's, or a non-genesis command without deps.
    #[error("command {0:?}: not part of this session: {1}")]
    Session(CommandId, String),
    /// Too many commands, or too many bytes, are waiting for missing dependencies.
    #[error(
        "pending set full ({MAX_PENDING} commands or {MAX_PENDING_BYTES} bytes); command {0:?} dropped"
    )]
    PendingFull(CommandId),
}

/// What an insert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The command (and any pending commands it released) joined the log, in that order.
    Added(Vec<CommandId>),
    /// The log already had it.
    Duplicate,
    /// It waits for these missing dependencies.
    Pending(Vec<CommandId>),
}

/// Checks a command's encoding and signature.
pub fn verify_command(bytes: &[u8]) -> Result<Verified, InsertError> {
    let (body, sig) = wire::decode_signed(bytes)?;
    let env = wire::decode_body(body)?;
    let id = CommandId(*blake3::hash(body).as_bytes());
    sign::verify(&env.author, body, &sig).map_err(|err| InsertError::Signature { id, err })?;
    // The wrapper around the signed body has bytes no signature covers (alignment padding, for
    // one); storing a canonical re-encoding makes every peer hold the same bytes for a command.
    let entry = Entry::new(id, &env, Arc::from(wire::encode_signed(body, &sig)));
    Ok(Verified(entry, env))
}

/// Checks many commands with one batch signature verification (same rule as [`verify_command`]).
pub fn verify_commands<R: rand_core::RngCore + rand_core::CryptoRng>(
    commands: &[&[u8]],
    rng: R,
) -> Vec<Result<Verified, InsertError>> {
    let decoded: Vec<Decoded> = commands
        .iter()
        .map(|b| decode_unchecked(&Arc::from(*b)))
        .collect();
    let signed = signed_of(&decoded);
    let results = sign::verify_batch(&batch_items(&signed), rng);
    with_signatures(decoded, results)
}

/// Commands per block of [`Entries`].
const CHUNK: usize = 1024;

/// The log's commands in the order it admitted them, addressed by admission index, with an id
/// index. Entries sit in fixed blocks rather than one growing array: a block, once full, never
/// moves, so growth neither copies the log nor leaves half of a doubled array empty.
#[derive(Debug, Default)]
struct Entries {
    blocks: Vec<Vec<Entry>>,
    /// Id → admission index: an open-addressing table of indices that hashes and compares the
    /// ids stored in the entries (4 bytes and a control byte per bucket). Only ever probed, never
    /// iterated, so neither its hash nor its layout can reach a result.
    index: hashbrown::HashTable<u32>,
}

/// The id index's hash: ids are BLAKE3 outputs, so their first eight bytes are already uniform;
/// they are mixed with a key so that an attacker grinding ids cannot aim them at one bucket
/// without knowing it.
fn id_hash(id: &CommandId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    crate::ids::splitmix(u64::from_le_bytes(b) ^ ID_HASH.key)
}

impl Clone for Entries {
    /// A copy whose last block keeps its full room, so the copy's next insert does not move it.
    fn clone(&self) -> Entries {
        let mut blocks = self.blocks.clone();
        if let Some(last) = blocks.last_mut() {
            last.reserve_exact(CHUNK - last.len());
        }
        Entries {
            blocks,
            index: self.index.clone(),
        }
    }
}

impl Entries {
    fn len(&self) -> usize {
        self.blocks.len().saturating_sub(1) * CHUNK + self.blocks.last().map_or(0, Vec::len)
    }

    /// The entry admitted `i`-th.
    fn at(&self, i: u32) -> &Entry {
        &self.blocks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn at_mut(&mut self, i: u32) -> &mut Entry {
        &mut self.blocks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn find(&self, id: &CommandId) -> Option<u32> {
        self.index
            .find(id_hash(id), |&i| self.at(i).id == *id)
            .copied()
    }

    fn get(&self, id: &CommandId) -> Option<&Entry> {
        self.find(id).map(|i| self.at(i))
    }

    fn contains(&self, id: &CommandId) -> bool {
        self.find(id).is_some()
    }

    fn reserve(&mut self, n: usize) {
        let blocks = &self.blocks;
        self.index.reserve(n, |&i| {
            id_hash(&blocks[i as usize / CHUNK][i as usize % CHUNK].id)
        });
    }

    /// Adds an entry whose id is not here yet; returns its admission index.
    fn push(&mut self, e: Entry) -> u32 {
        let i = self.len() as u32;
        let h = id_hash(&e.id);
        match self.blocks.last_mut() {
            Some(b) if b.len() < CHUNK => b.push(e),
            _ => {
                let mut b = Vec::with_capacity(CHUNK);
                b.push(e);
                self.blocks.push(b);
            }
        }
        let blocks = &self.blocks;
        self.index.insert_unique(h, i, |&j| {
            id_hash(&blocks[j as usize / CHUNK][j as usize % CHUNK].id)
        });
        i
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> + '_ {
        self.blocks.iter().flatten()
    }
}

/// The log of one session.
#[derive(Debug, Default)]
pub struct Log {
    session: Option<CommandId>,
    /// Every command, by admission index, with the id index probed on every insert and every
    /// fold step.
    entries: Entries,
    /// All commands in the total order, as admission indices (see [`Order`]).
    order: Order,
    /// Each author's chain of commands.
    chains: BTreeMap<AuthorId, Chain>,
    /// Author → the lowest sequence number at which they equivocated.
    forfeit: BTreeMap<AuthorId, u64>,
    heads: BTreeSet<CommandId>,
    pending: BTreeMap<CommandId, Verified>,
    /// What the pending set costs (see [`MAX_PENDING_BYTES`]).
    pending_bytes: usize,
    /// (missing id, pending command waiting for it): one flat set of pairs rather than a set per
    /// missing id, so a command naming dozens of missing deps costs dozens of small entries, not
    /// dozens of B-tree nodes.
    waiting: BTreeSet<(CommandId, CommandId)>,
    /// The lowest order key changed since the fold last looked (see [`Log::take_dirty`]).
    dirty_from: Option<OrderKey>,
    /// Permission commands (genesis, grant, revoke) in the total order, so revocation caps can be
    /// recomputed without walking the whole log.
    permissions: Vec<(u64, CommandId)>,
    /// Bumped whenever a permission command or an equivocation arrives.
    permission_epoch: u64,
    /// Operations of recently admitted commands, already decoded at verification, so neither the
    /// common path (a command at the tail) nor a replay of recent commands after a rollback
    /// decodes twice. Bounded ([`MAX_FRESH`] during a batch, [`KEEP_DECODED`] after it); the fold
    /// decodes from the bytes whatever is not here.
    /// Indexed by admission order from `fresh_base`: a ring, so a lookup is an index, not a hash
    /// probe, and a replay in (nearly) admission order walks it in order.
    fresh: std::collections::VecDeque<Op>,
    /// The admission index of `fresh[0]`.
    fresh_base: u32,
    /// How many frames of [`FRAME`] commands, from the first admitted, are held compressed.
    cold_frames: u32,
    /// The next frame, being compressed on another thread (see [`Log::compact_in_background`]).
    compressing: Option<Compressing>,
    /// How many of the most recently admitted commands stay uncompressed ([`HOT_BYTES`] unless
    /// a test sets it: see [`Log::set_hot_window`]).
    hot_window: Option<usize>,
}

/// The id index's hasher key (see [`IdHash`]).
pub(crate) const ID_HASH: IdHash = IdHash {
    key: 0x7e7a_5eed_0f1d_c0de,
};

/// Decoded operations kept after a batch is folded: a rollback that replays the last few thousand
/// commands (a merge of concurrent work) then decodes none of them again.
pub const KEEP_DECODED: usize = 8192;

/// Commands, the most recently admitted, whose bytes stay uncompressed (see [`Log::compact_cold`]):
/// the fold reads them only when they fall out of the decoded ring, and a peer catching up reads
/// older ones in order, a frame at a time.
pub const HOT_BYTES: usize = 1024;

/// Most decoded operations the log holds for the fold at once (see `Log::decoded`): enough for
/// opening a large session in one settle without decoding any command twice.
const MAX_FRESH: usize = 1 << 18;

/// The total order as admission indices: a sorted sequence in a gap buffer. A command at the
/// tail (nearly all of them) appends. A late one goes to its place by moving the gap there, so a
/// run of late commands landing in order one after another (another peer's offline work, a merge
/// of concurrent edits) moves the indices between consecutive places, not everything after each
/// place: a 5,000-command merge used to spend a sixteenth of its time shifting the order.
///
/// Positions `0..front.len()` are `front`; the rest are `back`, stored last first, so moving the
/// gap is popping from one and pushing onto the other. 4 bytes per command.
#[derive(Debug, Default)]
struct Order {
    front: Vec<u32>,
    back: Vec<u32>,
}

impl Order {
    fn len(&self) -> usize {
        self.front.len() + self.back.len()
    }

    /// The admission index at position `p` (< `len`).
    #[inline]
    fn get(&self, p: usize) -> u32 {
        match p.checked_sub(self.front.len()) {
            None => self.front[p],
            Some(b) => self.back[self.back.len() - 1 - b],
        }
    }

    fn last(&self) -> Option<u32> {
        self.back.first().or(self.front.last()).copied()
    }

    /// Positions `from..` in order.
    fn iter_from(&self, from: usize) -> impl DoubleEndedIterator<Item = u32> + '_ {
        let f = from.min(self.front.len());
        let b = (from - f).min(self.back.len());
        self.front[f..]
            .iter()
            .chain(self.back[..self.back.len() - b].iter().rev())
            .copied()
    }

    /// Moves the gap to position `p` (≤ `len`).
    fn gap_to(&mut self, p: usize) {
        if p < self.front.len() {
            self.back.extend(self.front.drain(p..).rev());
        } else if p > self.front.len() {
            let at = self.back.len() - (p - self.front.len());
            self.front.extend(self.back.drain(at..).rev());
        }
    }

    /// Inserts `ix` at position `p` (≤ `len`).
    fn insert(&mut self, p: usize, ix: u32) {
        self.gap_to(p);
        self.front.push(ix);
    }

    /// Appends `ix` at the end.
    fn push(&mut self, ix: u32) {
        self.insert(self.len(), ix);
    }

    /// A copy with the gap at the end and room to grow, as an order built by inserting has (a
    /// copy that came exactly full would move everything on its first insert).
    fn clone_with_room(&self) -> Order {
        let n = self.len();
        let mut front = Vec::with_capacity(n + n / 8 + 64);
        front.extend(self.iter_from(0));
        Order {
            front,
            back: Vec::new(),
        }
    }
}

impl Clone for Log {
    /// A copy with room to grow, as a log that was built by inserting has: a clone's vectors
    /// would otherwise come exactly full, and its first insert would move the order index and the
    /// decoded ring (a millisecond for a 100,000-command log).
    fn clone(&self) -> Log {
        let order = self.order.clone_with_room();
        let mut fresh = std::collections::VecDeque::with_capacity(
            self.fresh
                .capacity()
                .max(self.fresh.len() + self.fresh.len() / 8 + 64),
        );
        fresh.extend(self.fresh.iter().cloned());
        Log {
            session: self.session,
            entries: self.entries.clone(),
            order,
            chains: self.chains.clone(),
            forfeit: self.forfeit.clone(),
            heads: self.heads.clone(),
            pending: self.pending.clone(),
            pending_bytes: self.pending_bytes,
            waiting: self.waiting.clone(),
            dirty_from: self.dirty_from,
            permissions: self.permissions.clone(),
            permission_epoch: self.permission_epoch,
            fresh,
            fresh_base: self.fresh_base,
            cold_frames: self.cold_frames,
            // The copy compresses its own frames.
            compressing: None,
            hot_window: self.hot_window,
        }
    }
}

impl Log {
    /// A log for the session whose genesis has this id; the genesis may arrive later.
    pub fn for_session(session: CommandId) -> Log {
        Log {
            session: Some(session),
            ..Log::default()
        }
    }

    /// The session id (the genesis command's id).
    pub fn session(&self) -> Option<CommandId> {
        self.session
    }

    /// Number of commands in the log (not counting pending ones).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the log holds no command.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// Commands waiting for dependencies.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// What the pending set costs against [`MAX_PENDING_BYTES`].
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// The ids no other command depends on.
    pub fn heads(&self) -> Vec<CommandId> {
        self.heads.iter().copied().collect()
    }

    /// The ids a command of this log depends on (an entry holds them as admission indices, which
    /// only its own log can read).
    pub fn deps<'a>(&'a self, e: &'a Entry) -> impl Iterator<Item = CommandId> + 'a {
        e.deps.iter().map(|&d| self.entries.at(d).id)
    }

    /// Every command in the order the log admitted them (the order of the session file).
    pub fn admitted(&self) -> Vec<&Entry> {
        self.entries.iter().collect()
    }

    /// A command by id.
    pub fn get(&self, id: &CommandId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// The stored bytes of these commands, in the order given (`None` for one the log lacks).
    /// Cold commands are read frame by frame, so each frame is inflated once however the ids
    /// interleave: reading in the total order instead, which alternates between authors' frames,
    /// inflated a frame per command.
    pub fn bytes_of(&self, ids: &[CommandId]) -> Vec<Option<Arc<[u8]>>> {
        let mut out = vec![None; ids.len()];
        let mut order: Vec<(usize, u32, usize, &Entry)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                let e = self.entries.get(id)?;
                Some((Arc::as_ptr(&e.bytes.frame) as usize, e.bytes.at, i, e))
            })
            .collect();
        order.sort_unstable_by_key(|&(frame, at, i, _)| (frame, at, i));
        for (_, _, i, e) in order {
            out[i] = Some(e.bytes());
        }
        out
    }

    /// True if the log has this command.
    pub fn contains(&self, id: &CommandId) -> bool {
        self.entries.contains(id)
    }

    /// All commands in the total order.
    pub fn ordered(&self) -> impl DoubleEndedIterator<Item = &Entry> + '_ {
        self.order.iter_from(0).map(|i| self.entries.at(i))
    }

    /// All commands in the total order, last first (a history panel reads the newest few).
    pub fn ordered_rev(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.ordered().rev()
    }

    /// The commands after `key` in the total order (all of them for `None`).
    pub fn ordered_after(&self, key: Option<OrderKey>) -> impl Iterator<Item = &Entry> + '_ {
        self.order
            .iter_from(self.position_of_next(key))
            .map(|i| self.entries.at(i))
    }

    /// Where the commands after `key` start in the total order (0 for `None`): with
    /// [`Log::ordered_at`], what [`Log::ordered_after`] gives, read by position.
    pub(crate) fn position_of_next(&self, key: Option<OrderKey>) -> usize {
        key.map_or(0, |k| self.position_after(&k))
    }

    /// The command at `pos` in the total order.
    pub(crate) fn ordered_at(&self, pos: usize) -> &Entry {
        self.entries.at(self.order.get(pos))
    }

    /// How many commands in the total order come at or before `k`. Searched from the tail, in
    /// steps that double, then by bisection: the fold asks for what follows the command it folded
    /// last, nearly always the last or nearly so, and each probe costs a cache miss or two.
    fn position_after(&self, k: &OrderKey) -> usize {
        let n = self.order.len();
        let after = |p: usize| self.key_at(self.order.get(p)) > *k;
        // Find lo < hi with order[..lo] all ≤ k and order[hi..] all > k.
        let (mut lo, mut hi) = (n, n);
        let mut step = 1;
        while lo > 0 && after(lo - 1) {
            hi = lo - 1;
            lo = lo.saturating_sub(step);
            step *= 2;
        }
        // order[..lo] is ≤ k (the probe that stopped the loop said so) and order[hi..] is > k:
        // bisect what lies between.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if after(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// The order key of the command admitted `i`-th.
    fn key_at(&self, i: u32) -> OrderKey {
        let e = self.entries.at(i);
        (e.lamport, e.id)
    }

    /// Permission commands (genesis, grants, revokes) in the total order.
    pub fn permission_commands(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.permissions
            .iter()
            .filter_map(|(_, id)| self.entries.get(id))
    }

    /// A counter that changes whenever a permission command or an equivocation arrives.
    pub fn permission_epoch(&self) -> u64 {
        self.permission_epoch
    }

    /// True if the command is forfeited by its author's equivocation and folds to nothing.
    pub fn is_forfeited(&self, e: &Entry) -> bool {
        self.forfeit.get(&e.author).is_some_and(|&s| e.seq >= s)
    }

    /// Authors who equivocated, with the sequence number from which their commands are forfeited.
    pub fn equivocators(&self) -> &BTreeMap<AuthorId, u64> {
        &self.forfeit
    }

    /// The highest sequence number among an author's commands in the log (0 if none).
    pub fn last_seq(&self, author: &AuthorId) -> u64 {
        self.chains.get(author).map_or(0, |c| c.first.len() as u64)
    }

    /// Every author with a command in the log, in order.
    pub fn authors(&self) -> impl Iterator<Item = AuthorId> + '_ {
        self.chains.keys().copied()
    }

    /// The author whose key begins with these eight bytes, if exactly one in the log does
    /// (compact wire encodings name known authors this way).
    pub fn author_with_prefix(&self, prefix: &[u8; 8]) -> Option<AuthorId> {
        let mut lo = [0u8; 32];
        lo[..8].copy_from_slice(prefix);
        let mut it = self
            .chains
            .range(AuthorId(lo)..)
            .map(|(a, _)| *a)
            .take_while(|a| a.0[..8] == prefix[..]);
        let one = it.next()?;
        it.next().is_none().then_some(one)
    }

    /// The first command the log admitted with this author and sequence number.
    pub fn chain_command(&self, author: &AuthorId, seq: u64) -> Option<CommandId> {
        let c = self.chains.get(author)?;
        let i = *c.first.get(seq.checked_sub(1)? as usize)?;
        Some(self.entries.at(i).id)
    }

    /// Every command of an author with a sequence number of at least `seq` (equivocating claims
    /// included).
    pub fn chain_from(&self, author: &AuthorId, seq: u64) -> Vec<CommandId> {
        self.chains
            .get(author)
            .map(|c| c.from(seq).map(|&i| self.entries.at(i).id).collect())
            .unwrap_or_default()
    }

    /// The author's command with sequence number `seq`, if exactly one exists.
    pub fn by_author_seq(&self, author: &AuthorId, seq: u64) -> Option<CommandId> {
        let one = self.chain_command(author, seq)?;
        let equivocated = self
            .chains
            .get(author)?
            .extra
            .iter()
            .any(|(s, _)| *s == seq);
        (!equivocated).then_some(one)
    }

    /// The lowest order key that changed since the last call (a command arrived there, or folds
    /// differently from there on), and resets it. The fold replays from there.
    pub fn take_dirty(&mut self) -> Option<OrderKey> {
        self.dirty_from.take()
    }

    /// The decoded operation of a recently admitted command, if the log still holds it (see the
    /// field's docs); the fold decodes the bytes otherwise.
    pub fn decoded(&self, e: &Entry) -> Option<&Op> {
        let i = e.admitted.checked_sub(self.fresh_base)?;
        self.fresh.get(i as usize)
    }

    /// Compresses up to `max` more frames of [`FRAME`] commands whose bytes have gone cold: those
    /// admitted before the last [`HOT_BYTES`], which neither the fold's common path nor a
    /// recent replay (it takes the decoded ring) reads. About 2.3 times smaller; a read inflates the frame (see
    /// [`Entry::bytes`]). Returns how many it compressed.
    pub fn compact_cold(&mut self, max: usize) -> usize {
        // A frame compressing elsewhere is done here instead; its result will be dropped.
        self.compressing = None;
        let hot = self.hot_window.unwrap_or(HOT_BYTES);
        let first = self.cold_frames as usize;
        let eligible = (self.entries.len().saturating_sub(hot) / FRAME).saturating_sub(first);
        let n = eligible.min(max);
        // Frames are independent: compressed on rayon's pool, installed in order.
        let pack_one = |f: usize| {
            let from = (first + f) * FRAME;
            let parts: Vec<&[u8]> = (from..from + FRAME)
                .map(|i| match &*self.entries.at(i as u32).bytes.frame {
                    Frame::Raw(b) => &b[..],
                    Frame::Z { .. } => &[][..],
                })
                .collect();
            Frame::pack(&parts)
        };
        let frames: Vec<Option<Frame>> = if n > 4 {
            use rayon::prelude::*;
            (0..n).into_par_iter().map(pack_one).collect()
        } else {
            (0..n).map(pack_one).collect()
        };
        let mut done = 0;
        for f in frames {
            let Some(f) = f else {
                break;
            };
            self.install_frame(self.cold_frames as usize * FRAME, f);
            done += 1;
        }
        done
    }

    /// Like [`Log::compact_cold`] for one frame, but compresses it on rayon's pool and installs it
    /// at a later call: the fold thread only hands over the frame's byte handles and, once the
    /// frame is ready, points its commands at it. The fold's common path calls this, so
    /// compressing never lands in a settle's latency.
    pub fn compact_in_background(&mut self) {
        if let Some(job) = &self.compressing {
            let result = match job.slot.try_lock() {
                Ok(mut g) => g.take(),
                Err(_) => None,
            };
            let Some(result) = result else {
                return;
            };
            let frame = job.frame;
            self.compressing = None;
            if let Some(f) = result
                && frame == self.cold_frames
            {
                self.install_frame(frame as usize * FRAME, f);
            }
        }
        let Some(from) = self.next_cold_frame() else {
            return;
        };
        let parts: Vec<Arc<[u8]>> = (from..from + FRAME)
            .filter_map(|i| match &*self.entries.at(i as u32).bytes.frame {
                Frame::Raw(b) => Some(b.clone()),
                Frame::Z { .. } => None,
            })
            .collect();
        let slot = Arc::new(std::sync::Mutex::new(None));
        let out = slot.clone();
        rayon::spawn(move || {
            let refs: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
            let f = Frame::pack(&refs);
            if let Ok(mut g) = out.lock() {
                *g = Some(f);
            }
        });
        self.compressing = Some(Compressing {
            frame: self.cold_frames,
            slot,
        });
    }

    /// The first admission index of the next frame to compress, if it has gone cold.
    fn next_cold_frame(&self) -> Option<usize> {
        let from = self.cold_frames as usize * FRAME;
        (from + FRAME + self.hot_window.unwrap_or(HOT_BYTES) <= self.entries.len()).then_some(from)
    }

    /// Points the commands of the frame starting at `from` at its compressed bytes.
    fn install_frame(&mut self, from: usize, frame: Frame) {
        let frame = Arc::new(frame);
        let mut at = 0u32;
        for i in from..from + FRAME {
            let e = self.entries.at_mut(i as u32);
            let Frame::Raw(b) = &*e.bytes.frame else {
                continue;
            };
            let len = b.len() as u32;
            e.bytes = Stored {
                frame: frame.clone(),
                at,
                len,
            };
            at += len;
        }
        self.cold_frames += 1;
    }

    /// Sets how many of the most recently admitted commands [`Log::compact_cold`] leaves alone
    /// (tests make it small, so that short sessions exercise cold reads).
    pub fn set_hot_window(&mut self, n: usize) {
        self.hot_window = Some(n);
    }

    /// How many commands hold their bytes compressed.
    pub fn cold_len(&self) -> usize {
        self.cold_frames as usize * FRAME
    }

    /// Keeps only the [`KEEP_DECODED`] most recently admitted commands' decoded operations (the
    /// fold calls this after each batch), and gives back a table grown by a large batch.
    pub fn trim_decoded(&mut self) {
        let excess = self.fresh.len().saturating_sub(KEEP_DECODED);
        self.fresh.drain(..excess);
        self.fresh_base += excess as u32;
        // A batch grows the ring (doubling); once it is trimmed, the room it left is given back,
        // keeping enough that the common settle (one command in, one out) never grows it again.
        if self.fresh.capacity() > 2 * KEEP_DECODED {
            self.fresh.shrink_to(KEEP_DECODED + KEEP_DECODED / 8);
        }
    }

    /// Drops every decoded operation (see [`Replica::release_for_measurement`]).
    ///
    /// [`Replica::release_for_measurement`]: crate::fold::Replica::release_for_measurement
    pub(crate) fn drop_decoded(&mut self) {
        self.fresh_base += self.fresh.len() as u32;
        self.fresh = Default::default();
    }

    /// Commands a peer lacks, given the heads it reported: everything not in the causal past of
    /// `frontier` (ids this log does not know are ignored), in the total order.
    pub fn entries_since(&self, frontier: &[CommandId]) -> Vec<Entry> {
        let mut known = BTreeSet::new();
        let mut stack: Vec<CommandId> = frontier
            .iter()
            .filter(|id| self.entries.contains(id))
            .copied()
            .collect();
        while let Some(id) = stack.pop() {
            if !known.insert(id) {
                continue;
            }
            if let Some(e) = self.entries.get(&id) {
                stack.extend(self.deps(e));
            }
        }
        self.ordered()
            .filter(|e| !known.contains(&e.id))
            .cloned()
            .collect()
    }

    /// Inserts a verified command (and any pending commands it completes).
    pub fn insert(&mut self, cmd: Verified) -> Result<Inserted, InsertError> {
        let id = cmd.id();
        if self.entries.contains(&id) || self.pending.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        // The common case (every dep present) allocates nothing here.
        let all_present = cmd.1.deps.iter().all(|d| self.entries.contains(d));
        if !all_present {
            let missing: Vec<CommandId> = cmd
                .1
                .deps
                .iter()
                .filter(|d| !self.entries.contains(d))
                .copied()
                .collect();
            let cost = pending_cost(&cmd);
            if self.pending.len() >= MAX_PENDING || self.pending_bytes + cost > MAX_PENDING_BYTES {
                return Err(InsertError::PendingFull(id));
            }
            for m in &missing {
                self.waiting.insert((*m, id));
            }
            self.pending_bytes += cost;
            self.pending.insert(id, cmd);
            return Ok(Inserted::Pending(missing));
        }
        self.admit(cmd)?;
        let mut added = vec![id];
        if self.waiting.is_empty() {
            return Ok(Inserted::Added(added));
        }
        // Release pending commands whose last missing dep just arrived, breadth first.
        let mut ready = vec![id];
        while let Some(arrived) = ready.pop() {
            if self.waiting.is_empty() {
                break;
            }
            let waiters: Vec<CommandId> = self
                .waiting
                .range((arrived, CommandId([0; 32]))..=(arrived, CommandId([0xff; 32])))
                .map(|(_, w)| *w)
                .collect();
            for w in waiters {
                self.waiting.remove(&(arrived, w));
                let complete = self
                    .pending
                    .get(&w)
                    .is_some_and(|p| p.1.deps.iter().all(|d| self.entries.contains(d)));
                if complete && let Some(p) = self.pending.remove(&w) {
                    self.pending_bytes -= pending_cost(&p);
                    // A pending command that fails its checks is dropped; the first error is
                    // not the caller's command's fault, so it is not returned.
                    if self.admit(p).is_ok() {
                        added.push(w);
                        ready.push(w);
                    }
                }
            }
        }
        Ok(Inserted::Added(added))
    }

    /// Checks a command whose deps are all present and adds it.
    fn admit(&mut self, cmd: Verified) -> Result<(), InsertError> {
        let Verified(e, env_owned) = cmd;
        let env = &env_owned;
        let id = e.id;
        if let Op::Genesis { .. } = env.op {
            if !env.deps.is_empty() || env.seq != 1 || env.lamport != 1 {
                return Err(InsertError::Session(
                    id,
                    "genesis must be seq 1, clock 1, no deps".into(),
                ));
            }
            match self.session {
                Some(s) if s != id => {
                    return Err(InsertError::Session(
                        id,
                        "a different session's genesis".into(),
                    ));
                }
                _ => self.session = Some(id),
            }
        } else {
            if env.deps.is_empty() {
                return Err(InsertError::Session(
                    id,
                    "only genesis may have no deps".into(),
                ));
            }
            // One look at each dep: the highest clock among them, and (for the chain rule) the
            // author's own commands among them: how many, and the last one's number.
            let mut max = 0;
            let (mut own, mut own_seq) = (0usize, 0u64);
            for d in &env.deps {
                if let Some(de) = self.entries.get(d) {
                    max = max.max(de.lamport);
                    if de.author == env.author {
                        own += 1;
                        own_seq = de.seq;
                    }
                }
            }
            if env.lamport != max.saturating_add(1) {
                return Err(InsertError::Lamport(id));
            }
            // Chain: seq 1 has no earlier own command among its deps; seq n depends on n - 1.
            if env.seq == 0 {
                return Err(InsertError::Chain(id, "sequence numbers start at 1".into()));
            }
            if env.seq == 1 {
                if own != 0 {
                    return Err(InsertError::Chain(
                        id,
                        "seq 1 cannot follow an own command".into(),
                    ));
                }
            } else if own != 1 || own_seq + 1 != env.seq {
                return Err(InsertError::Chain(
                    id,
                    format!(
                        "seq {} must depend on exactly the author's seq {}",
                        env.seq,
                        env.seq - 1
                    ),
                ));
            }
        }
        let permission = matches!(
            env.op,
            Op::Genesis { .. } | Op::GrantRole { .. } | Op::RevokeRole { .. }
        );
        let mut e = e;
        e.deps = env
            .deps
            .iter()
            .filter_map(|d| self.entries.find(d))
            .collect();
        self.accept(e, permission);
        // Its admission index is the last one; the ring must end just before it (a restored log
        // starts with an empty ring).
        let admitted = (self.entries.len() - 1) as u32;
        if self.fresh_base as usize + self.fresh.len() != admitted as usize {
            self.fresh.clear();
            self.fresh_base = admitted;
        }
        self.fresh.push_back(env_owned.op);
        if self.fresh.len() > MAX_FRESH {
            self.fresh.pop_front();
            self.fresh_base += 1;
        }
        Ok(())
    }

    /// Adds a command that passed every check (or that a checkpoint vouches for): the order, the
    /// heads, the author's chain, the equivocation rule and the permission index.
    fn accept(&mut self, mut e: Entry, permission: bool) {
        e.admitted = self.entries.len() as u32;
        let id = e.id;
        let key = (e.lamport, id);
        let (author, seq) = (e.author, e.seq);
        for &d in &e.deps {
            let dep = self.entries.at(d).id;
            self.heads.remove(&dep);
        }
        self.heads.insert(id);
        let ix = self.entries.push(e);
        // A command at the tail appends; a late one goes to its place, searched for from the
        // tail, where late commands mostly land (no other command has its key, so the place
        // after every key up to it is the place before every key after it).
        if self.order.last().is_none_or(|l| self.key_at(l) < key) {
            self.order.push(ix);
        } else {
            let p = self.position_after(&key);
            self.order.insert(p, ix);
        }
        self.mark_dirty(key);
        if permission {
            let p = self.permissions.partition_point(|k| *k < key);
            self.permissions.insert(p, key);
            self.permission_epoch += 1;
        }
        let repeated = self.chains.entry(author).or_default().claim(seq, ix);
        if repeated {
            let s = seq;
            let earlier = self.forfeit.get(&author).is_none_or(|&f| s < f);
            if earlier {
                self.forfeit.insert(author, s);
                self.permission_epoch += 1;
                // Every command of theirs from `s` on now folds to nothing: replay from the first.
                let first = self
                    .chains
                    .get(&author)
                    .and_then(|ch| ch.from(s).map(|&c| self.key_at(c)).min());
                if let Some(k) = first {
                    self.mark_dirty(k);
                }
            }
        }
    }

    /// Rebuilds a log from commands that a checkpoint vouches for, in the order the log first
    /// admitted them, without decoding or verifying them again (see `checkpoint.rs`). The caller
    /// has matched the checkpoint to the session file's records, so these are exactly the commands
    /// this log admitted before, and every check they passed then still holds.
    pub(crate) fn restore(
        session: CommandId,
        entries: impl ExactSizeIterator<Item = (Entry, bool)>,
    ) -> Result<Log, String> {
        let mut log = Log::for_session(session);
        log.entries.reserve(entries.len());
        for (e, permission) in entries {
            // The checkpoint was checksummed, but its structure is still checked, so that even a
            // deliberately made one cannot give a log that breaks the invariants `admit` keeps.
            if log.entries.contains(&e.id) {
                return Err("a command appears twice".into());
            }
            if log.is_empty() {
                if e.id != session || !e.deps.is_empty() || e.seq != 1 || e.lamport != 1 {
                    return Err("the first command is not the session's genesis".into());
                }
            } else {
                if e.deps.iter().any(|&d| d as usize >= log.entries.len()) {
                    return Err("a command depends on one admitted after it".into());
                }
                let max = e.deps.iter().map(|&d| log.entries.at(d).lamport).max();
                if max.map(|m| m.saturating_add(1)) != Some(e.lamport) {
                    return Err("a command's clock does not follow its deps".into());
                }
            }
            let claimed = log
                .chains
                .get(&e.author)
                .map_or(0, |c| c.first.len() as u64);
            if e.seq == 0 || e.seq > claimed + 1 {
                return Err("a command's sequence number skips".into());
            }
            log.accept(e, permission);
        }
        log.dirty_from = None;
        Ok(log)
    }

    /// True if the command is a genesis, grant or revoke (what the permission index holds).
    pub(crate) fn is_permission(&self, id: &CommandId) -> bool {
        self.entries
            .get(id)
            .is_some_and(|e| self.permissions.binary_search(&(e.lamport, *id)).is_ok())
    }

    fn mark_dirty(&mut self, key: OrderKey) {
        self.dirty_from = Some(self.dirty_from.map_or(key, |d| d.min(key)));
    }
}

/// Commands per batch in [`verify_commands_parallel`]: large enough that batch verification pays
/// off, small enough that one bad signature costs few single re-checks.
pub const VERIFY_CHUNK: usize = 256;

/// Checks many commands in batches of [`VERIFY_CHUNK`] spread over all cores (same rule as
/// [`verify_command`]; results in input order). The batches' random coefficients come from a
/// BLAKE3 stream keyed by `seed`, which the caller draws from the operating system: a peer who
/// cannot predict them cannot make a bad signature pass a batch.
pub fn verify_commands_parallel(
    commands: &[Arc<[u8]>],
    seed: [u8; 32],
) -> Vec<Result<Verified, InsertError>> {
    let decoded = decode_all(commands);
    let results = check_signatures(&signed_of(&decoded), seed);
    with_signatures(decoded, results)
}

/// A command decoded without its signature checked, and that signature.
pub(crate) type Decoded = Result<(Verified, [u8; 64]), InsertError>;

/// [`decode_unchecked`] on all cores, in input order.
/// No more than one [`VERIFY_CHUNK`] (a live gossip batch) is done on this thread: handing it to
/// rayon's pool cost a thread hand-off and left the pool's threads spinning for more work on the
/// cores the caller's runtime needs.
pub(crate) fn decode_all(commands: &[Arc<[u8]>]) -> Vec<Decoded> {
    use rayon::prelude::*;
    if commands.len() <= VERIFY_CHUNK {
        return commands.iter().map(decode_unchecked).collect();
    }
    commands.par_iter().map(decode_unchecked).collect()
}

/// What [`check_signatures`] needs of the commands that decoded.
pub(crate) fn signed_of(decoded: &[Decoded]) -> Vec<Signed> {
    decoded
        .iter()
        .filter_map(|d| d.as_ref().ok())
        .map(|(v, sig)| (v.0.author, v.bytes().clone(), *sig))
        .collect()
}

/// Decoded commands with their signature results (one per command that decoded, in order, as
/// [`check_signatures`] returns them): a command whose signature failed becomes that error.
pub(crate) fn with_signatures(
    decoded: Vec<Decoded>,
    results: Vec<Result<(), SignatureError>>,
) -> Vec<Result<Verified, InsertError>> {
    let mut results = results.into_iter();
    decoded
        .into_iter()
        .map(|d| {
            let (v, _) = d?;
            match results.next() {
                Some(Ok(())) => Ok(v),
                Some(Err(err)) => Err(InsertError::Signature { id: v.id(), err }),
                None => Err(InsertError::Signature {
                    id: v.id(),
                    err: SignatureError::Invalid,
                }),
            }
        })
        .collect()
}

/// Decodes a command without checking its signature, and returns the signature for a later check.
/// Only `open.rs` uses this, and it discards everything built from these commands unless every
/// signature then verifies (see there), so the one signature rule still holds for every command
/// that reaches a caller.
pub(crate) fn decode_unchecked(bytes: &Arc<[u8]>) -> Result<(Verified, [u8; 64]), InsertError> {
    let (body, sig) = wire::decode_signed(bytes)?;
    let env = wire::decode_body(body)?;
    let id = CommandId(*blake3::hash(body).as_bytes());
    // Store the canonical wrapping, as `verify_command` does; a file this code wrote has it already.
    let canonical = wire::encode_signed(body, &sig);
    let stored = if canonical[..] == bytes[..] {
        bytes.clone()
    } else {
        Arc::from(canonical)
    };
    let entry = Entry::new(id, &env, stored);
    Ok((Verified(entry, env), sig))
}

/// A command's author, stored bytes and signature, for [`check_signatures`].
pub(crate) type Signed = (AuthorId, Arc<[u8]>, [u8; 64]);

/// Checks the signatures of decoded commands (their stored bytes, with the signature each
/// carries) in batches over all cores, under the same rule as [`verify_command`]; one result per
/// command, in order.
pub(crate) fn check_signatures(
    items: &[Signed],
    seed: [u8; 32],
) -> Vec<Result<(), SignatureError>> {
    use rayon::prelude::*;
    // One chunk: on this thread, as `decode_all` does, with the coefficients of chunk 0.
    if items.len() <= VERIFY_CHUNK {
        return sign::verify_batch(&batch_items(items), crate::sign::SeededRng::new(&seed, 0));
    }
    items
        .par_chunks(VERIFY_CHUNK)
        .enumerate()
        .flat_map_iter(|(i, chunk)| {
            sign::verify_batch(
                &batch_items(chunk),
                crate::sign::SeededRng::new(&seed, i as u64),
            )
        })
        .collect()
}

/// The (author, signed body, signature) items batch verification takes. The stored bytes decoded
/// when they were made, so the body is found again; bytes that did not would fail the signature.
fn batch_items(signed: &[Signed]) -> Vec<(AuthorId, &[u8], [u8; 64])> {
    signed
        .iter()
        .map(|(author, bytes, sig)| {
            let body = wire::decode_signed(bytes).map_or(&[][..], |(b, _)| b);
            (*author, body, *sig)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Order;

    /// The gap buffer reads exactly as a plain vector given the same inserts: appends, runs of
    /// late inserts moving forward, jumps back, and reads from every position between them.
    #[test]
    fn order_reads_as_the_vector_it_stands_for() {
        let mut model: Vec<u32> = Vec::new();
        let mut order = Order::default();
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut at = 0;
        for ix in 0..3000u32 {
            match rand(4) {
                0 => {
                    model.push(ix);
                    order.push(ix);
                }
                // A run moving forward from the last place.
                1 | 2 => {
                    at = (at + rand(3)).min(model.len());
                    model.insert(at, ix);
                    order.insert(at, ix);
                    at += 1;
                }
                _ => {
                    at = rand(model.len() + 1);
                    model.insert(at, ix);
                    order.insert(at, ix);
                }
            }
            assert_eq!(order.len(), model.len());
            assert_eq!(order.last(), model.last().copied());
            if ix % 97 == 0 {
                for from in [0, at.min(model.len()), model.len() / 2, model.len()] {
                    let got: Vec<u32> = order.iter_from(from).collect();
                    assert_eq!(got, model[from..]);
                    let rev: Vec<u32> = order.iter_from(from).rev().collect();
                    assert!(rev.iter().eq(model[from..].iter().rev()));
                }
                for (p, &ix) in model.iter().enumerate() {
                    assert_eq!(order.get(p), ix);
                }
                let copy = order.clone_with_room();
                assert!(copy.iter_from(0).eq(model.iter().copied()));
            }
        }
    }
}
