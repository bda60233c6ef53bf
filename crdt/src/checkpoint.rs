//! Checkpoints: a replica's folded state, saved beside the session file so that reopening a session
//! restores it instead of verifying and folding every command again.
//!
//! A checkpoint is a cache, never the truth: the session file's commands are. It names the prefix of
//! the session file it was made from (how many records, and a digest of their checksums), and is
//! used only if the file still starts with exactly those records; anything else (another session,
//! a shorter file, different records, damage, a newer format) is an error, and the caller falls
//! back to the full open, which verifies and folds everything. Commands after the prefix are
//! verified and folded on top as usual.
//!
//! What it holds is everything the fold would recompute: the log's index (each command's id,
//! clock, author, sequence number and dependencies, in the order the log admitted them, which is
//! the session file's order, so the command bytes come from the file and are not stored twice),
//! the scene (objects with their meshes stored as the kernel's arrays, so that the restored meshes
//! have the very same layout and every later operation runs identically), the undo records and
//! histories, the rejections, the revocation caps and the fold's position. A restored replica is
//! equal to the one that was saved; tests check that, and that both fold later commands alike.
//!
//! Layout: a 128-byte header, then the body.
//! - Header: magic `THETACKP`, format version (u32 LE), flags (u32 LE, 0), session id (32),
//!   records covered (u64 LE), digest of those records' checksums (32), body length (u64 LE),
//!   BLAKE3 of the body (32).
//! - Body: little-endian fields and length-prefixed lists, in the order `encode_body` writes them.
//!
//! Decoding checks every length against the bytes that remain before allocating, and every index
//! and mesh before using it: a damaged checkpoint is an error, never a panic or an invalid scene.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use theta_mesh::{FaceId, MaterialId, Mesh, OwnedRawMesh, Quat, Vec3, VertexId};

use crate::command::{Envelope, ObjectTransform, Op};
use crate::fold::{FoldStats, Replica, UndoRecord};
use crate::ids::{AuthorId, CommandId, GroupId, ObjectId, Role};
use crate::log::{Entry, Log};
use crate::scene::{Group, Object, Rejection, Scene};

/// Checkpoint magic.
pub const MAGIC: [u8; 8] = *b"THETACKP";
/// The checkpoint format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 8 + 4 + 4 + 32 + 8 + 32 + 8 + 32;

/// Why a checkpoint cannot be used. Each is a reason to fall back to the full open, not to fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The bytes do not start with the checkpoint magic.
    #[error("not a Theta checkpoint (bad magic)")]
    NotACheckpoint,
    /// A newer Theta wrote it.
    #[error(
        "checkpoint format version {0} is newer than this Theta understands ({FORMAT_VERSION})"
    )]
    NewerVersion(u32),
    /// It was made for another session.
    #[error("the checkpoint belongs to another session")]
    OtherSession,
    /// It covers more records than the session file holds (the file lost a tail since).
    #[error("the checkpoint covers {covers} commands but the session file holds {records}")]
    Ahead {
        /// Records the checkpoint covers.
        covers: u64,
        /// Records in the session file.
        records: u64,
    },
    /// The session file's first records are not the ones the checkpoint was made from.
    #[error("the checkpoint was made from other commands than the session file's")]
    Mismatch,
    /// The checkpoint is damaged.
    #[error("the checkpoint is damaged: {0}")]
    Corrupt(String),
    /// The replica has commands it has not folded yet (call `Replica::settle` first).
    #[error("the replica has unfolded commands; settle it before checkpointing")]
    Unsettled,
}

type Result<T> = std::result::Result<T, CheckpointError>;

fn corrupt(what: impl Into<String>) -> CheckpointError {
    CheckpointError::Corrupt(what.into())
}

/// The digest of the first records of a session file, from their checksums (see
/// [`crate::store::Parsed::checks`]): what a checkpoint names its prefix by.
pub fn prefix_digest(checks: &[[u8; 8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"theta-checkpoint-prefix/1");
    h.update(&(checks.len() as u64).to_le_bytes());
    for c in checks {
        h.update(c);
    }
    *h.finalize().as_bytes()
}

/// Encodes a settled replica's state as a checkpoint of a session file whose records are the
/// log's commands in the order it admitted them, with these checksums.
pub fn encode(replica: &Replica, checks: &[[u8; 8]]) -> Result<Vec<u8>> {
    if replica.applied_count != replica.log.len() || checks.len() != replica.log.len() {
        return Err(CheckpointError::Unsettled);
    }
    let mut w = Writer::default();
    encode_body(replica, &mut w);
    Ok(with_body(
        &replica.log.session().unwrap_or_default(),
        checks,
        &w.out,
    ))
}

/// A checkpoint of these records with this body (the header computed for it).
pub(crate) fn with_body(session: &CommandId, checks: &[[u8; 8]], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&session.0);
    out.extend_from_slice(&(checks.len() as u64).to_le_bytes());
    out.extend_from_slice(&prefix_digest(checks));
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let hash = blake3::Hasher::new().update_rayon(body).finalize();
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(body);
    out
}

/// What a checkpoint's header says, read without decoding the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The session.
    pub session: CommandId,
    /// How many records of the session file it covers.
    pub covers: u64,
    /// The body's length.
    pub body_len: u64,
    /// The body's BLAKE3.
    pub body_hash: [u8; 32],
}

/// Reads and checks a checkpoint's header against the session and the session file's record
/// checksums.
pub fn header(bytes: &[u8], session: &CommandId, checks: &[[u8; 8]]) -> Result<Header> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(CheckpointError::NotACheckpoint);
    }
    let h = bytes
        .get(..HEADER_LEN)
        .ok_or_else(|| corrupt("the header is incomplete"))?;
    let mut r = Reader { b: h, at: 8 };
    let version = r.u32()?;
    if version > FORMAT_VERSION {
        return Err(CheckpointError::NewerVersion(version));
    }
    if version == 0 {
        return Err(corrupt("format version 0"));
    }
    let _flags = r.u32()?;
    let s = CommandId(r.array()?);
    if s != *session {
        return Err(CheckpointError::OtherSession);
    }
    let covers = r.u64()?;
    if covers > checks.len() as u64 {
        return Err(CheckpointError::Ahead {
            covers,
            records: checks.len() as u64,
        });
    }
    let digest: [u8; 32] = r.array()?;
    if digest != prefix_digest(&checks[..covers as usize]) {
        return Err(CheckpointError::Mismatch);
    }
    Ok(Header {
        session: s,
        covers,
        body_len: r.u64()?,
        body_hash: r.array()?,
    })
}

/// Restores the replica a checkpoint holds. `records` are the session file's commands (at least
/// the ones it covers) and `checks` their checksums; the checkpoint must match them (see
/// [`header`]). The replica holds exactly the covered commands; the caller verifies and inserts
/// the rest.
pub fn decode(
    bytes: &[u8],
    session: &CommandId,
    records: &[Arc<[u8]>],
    checks: &[[u8; 8]],
) -> Result<Replica> {
    let head = header(bytes, session, checks)?;
    let body = bytes
        .get(HEADER_LEN..)
        .filter(|b| b.len() as u64 == head.body_len)
        .ok_or_else(|| corrupt("the body's length does not match the header"))?;
    if *blake3::Hasher::new()
        .update_rayon(body)
        .finalize()
        .as_bytes()
        != head.body_hash
    {
        return Err(corrupt("the body's checksum does not match"));
    }
    let covered = records
        .get(..head.covers as usize)
        .ok_or(CheckpointError::Ahead {
            covers: head.covers,
            records: records.len() as u64,
        })?;
    decode_body(&mut Reader { b: body, at: 0 }, *session, covered)
}

// ---------------------------------------------------------------------------------------------
// The body.
// ---------------------------------------------------------------------------------------------

fn encode_body(rep: &Replica, w: &mut Writer) {
    // The log: authors once, then each command in admission order, deps by admission position.
    let admitted = rep.log.admitted();
    let authors: Vec<AuthorId> = rep.log.authors().collect();
    let author_ix: BTreeMap<AuthorId, u32> = authors
        .iter()
        .enumerate()
        .map(|(i, a)| (*a, i as u32))
        .collect();
    w.len(authors.len());
    for a in &authors {
        w.bytes(&a.0);
    }
    w.len(admitted.len());
    for e in &admitted {
        w.bytes(&e.id.0);
        w.u64(e.lamport);
        w.u32(author_ix.get(&e.author).copied().unwrap_or(u32::MAX));
        w.u64(e.seq);
        w.u8(u8::from(rep.log.is_permission(&e.id)));
        let deps: Vec<CommandId> = rep.log.deps(e).collect();
        w.len(deps.len());
        for d in &deps {
            w.u32(rep.log.get(d).map_or(u32::MAX, |x| x.admitted));
        }
    }
    // The scene. Objects are written once each, into a table that the scene and the undo records
    // refer to by position, so versions they share stay shared.
    let s = &rep.scene;
    let mut table = ObjectTable::default();
    let scene_objects: Vec<(ObjectId, u32)> = s
        .objects
        .iter()
        .map(|(id, o)| (*id, table.add(o)))
        .collect();
    type Changes = Vec<(ObjectId, u32, u32)>;
    // Undo records in history order (authors in order, each author's oldest first): the map
    // itself is a hash table, and is never iterated.
    let undo: Vec<(CommandId, &UndoRecord, Changes)> = s
        .history
        .values()
        .flatten()
        .filter_map(|(_, id)| s.undo.get(id).map(|rec| (id, rec)))
        .map(|(id, rec)| {
            let objs = rec
                .objects
                .iter()
                .map(|(oid, before, after)| {
                    (
                        *oid,
                        before.as_ref().map_or(u32::MAX, |o| table.add(o)),
                        after.as_ref().map_or(u32::MAX, |o| table.add(o)),
                    )
                })
                .collect();
            (*id, &**rec, objs)
        })
        .collect();
    w.opt(s.session.as_ref(), |w, c| w.bytes(&c.0));
    w.str(&s.name);
    w.len(s.roles.len());
    for (a, r) in &s.roles {
        w.bytes(&a.0);
        w.u8(*r as u8);
    }
    // Each object is a length-prefixed blob, so a reader can decode them in parallel.
    w.len(table.objects.len());
    let mut one = Writer::default();
    for o in &table.objects {
        one.out.clear();
        write_object(&mut one, o);
        w.blob(&one.out);
    }
    w.len(scene_objects.len());
    for (id, ix) in &scene_objects {
        w.u64(id.0);
        w.u32(*ix);
    }
    w.len(s.groups.len());
    for (id, g) in &s.groups {
        w.u64(id.0);
        write_group(w, g);
    }
    w.len(s.deleted.len());
    for (id, (c, a)) in s.deleted.iter() {
        w.u64(id.0);
        w.bytes(&c.0);
        w.bytes(&a.0);
    }
    w.len(undo.len());
    for (id, rec, objs) in &undo {
        w.bytes(&id.0);
        w.len(objs.len());
        for (oid, b, a) in objs {
            w.u64(oid.0);
            w.u32(*b);
            w.u32(*a);
        }
        w.len(rec.groups.len());
        for (gid, before, after) in &rec.groups {
            w.u64(gid.0);
            w.opt(before.as_ref(), |w, g| write_group(w, g));
            w.opt(after.as_ref(), |w, g| write_group(w, g));
        }
        w.len(rec.inverse.len());
        for op in &rec.inverse {
            w.blob(&crate::wire::encode_body(&op_envelope(op.clone())));
        }
    }
    w.len(s.history.len());
    for (a, ids) in &s.history {
        w.bytes(&a.0);
        w.len(ids.len());
        for (_, id) in ids {
            w.bytes(&id.0);
        }
    }
    // The fold's own state.
    w.opt(rep.applied.as_ref(), |w, (l, id)| {
        w.u64(*l);
        w.bytes(&id.0);
    });
    w.u64(rep.applied_count as u64);
    w.len(rep.caps.len());
    for (a, c) in &rep.caps {
        w.bytes(&a.0);
        w.u64(*c);
    }
    let mut rejected: Vec<(&CommandId, &Rejection)> = rep.rejected.iter().collect();
    rejected.sort_unstable_by_key(|(id, _)| **id);
    w.len(rejected.len());
    for (id, r) in rejected {
        w.bytes(&id.0);
        w.bytes(&r.author.0);
        w.str(r.kind);
        w.str(&r.reason);
        w.opt(r.conflict.as_ref(), |w, (c, a)| {
            w.bytes(&c.0);
            w.bytes(&a.0);
        });
    }
}

/// An inverse operation travels as the body of an envelope nobody signed (the body encoding is the
/// one encoding of operations there is).
fn op_envelope(op: Op) -> Envelope {
    Envelope {
        author: AuthorId([0; 32]),
        seq: 0,
        lamport: 0,
        deps: vec![],
        op,
    }
}

#[derive(Default)]
struct ObjectTable {
    objects: Vec<Arc<Object>>,
    /// Pointer → position. Only probed, never iterated, so the table's order is the order of
    /// first use and the encoding is deterministic.
    index: HashMap<*const Object, u32>,
}

impl ObjectTable {
    fn add(&mut self, o: &Arc<Object>) -> u32 {
        *self.index.entry(Arc::as_ptr(o)).or_insert_with(|| {
            self.objects.push(o.clone());
            (self.objects.len() - 1) as u32
        })
    }
}

fn write_object(w: &mut Writer, o: &Object) {
    w.str(&o.name);
    write_transform(w, &o.transform);
    w.opt(o.group.as_ref(), |w, g| w.u64(g.0));
    w.bytes(&o.created_by.0);
    w.bytes(&o.last_geometry_edit.0.0);
    w.bytes(&o.last_geometry_edit.1.0);
    o.with_raw(|m| write_arrays(w, m));
}

fn write_arrays(w: &mut Writer, m: theta_mesh::RawMesh<'_>) {
    w.len(m.vertex_ids.len());
    w.len(m.next.len());
    w.len(m.face_ids.len());
    for v in m.vertex_ids {
        w.u64(v.0);
    }
    for p in m.positions {
        w.f32(p.x);
        w.f32(p.y);
        w.f32(p.z);
    }
    for arr in [
        m.vertex_half_edges,
        m.next,
        m.origins,
        m.half_edge_faces,
        m.face_half_edges,
    ] {
        for x in arr {
            w.u32(*x);
        }
    }
    for f in m.face_ids {
        w.u64(f.0);
    }
    for x in m.materials {
        w.u32(x.0);
    }
}

fn write_transform(w: &mut Writer, t: &ObjectTransform) {
    for f in t.components() {
        w.f32(f);
    }
}

fn write_group(w: &mut Writer, g: &Group) {
    w.str(&g.name);
    w.len(g.members.len());
    for m in &g.members {
        w.u64(m.0);
    }
}

fn decode_body(r: &mut Reader<'_>, session: CommandId, records: &[Arc<[u8]>]) -> Result<Replica> {
    let n_authors = r.len(32)?;
    let mut authors = Vec::with_capacity(n_authors);
    for _ in 0..n_authors {
        authors.push(AuthorId(r.array()?));
    }
    let n = r.len(32 + 8 + 4 + 8 + 1 + 4)?;
    if n != records.len() {
        return Err(corrupt(format!(
            "{n} log entries for {} covered records",
            records.len()
        )));
    }
    let mut ids: Vec<CommandId> = Vec::with_capacity(n);
    let mut entries = Vec::with_capacity(n);
    for (i, bytes) in records.iter().enumerate() {
        let id = CommandId(r.array()?);
        let lamport = r.u64()?;
        let author = *authors
            .get(r.u32()? as usize)
            .ok_or_else(|| corrupt("author index out of range"))?;
        let seq = r.u64()?;
        let permission = r.u8()? != 0;
        let nd = r.len(4)?;
        let mut deps = crate::log::Deps::with_capacity(nd);
        for _ in 0..nd {
            let d = r.u32()? as usize;
            // Deps were admitted before the command that names them.
            if d >= i || ids.get(d).is_none() {
                return Err(corrupt("dependency index out of range"));
            }
            deps.push(d as u32);
        }
        ids.push(id);
        entries.push((
            Entry::from_parts(id, author, seq, lamport, deps, bytes.clone()),
            permission,
        ));
    }

    let scene_session = r.opt(|r| Ok(CommandId(r.array()?)))?;
    let name = r.str()?;
    let mut roles = BTreeMap::new();
    for _ in 0..r.len(33)? {
        let a = AuthorId(r.array()?);
        let role = match r.u8()? {
            0 => Role::Viewer,
            1 => Role::Editor,
            2 => Role::Admin,
            x => return Err(corrupt(format!("unknown role {x}"))),
        };
        roles.insert(a, role);
    }
    let n_table = r.len(4)?;
    let mut blobs = Vec::with_capacity(n_table);
    for _ in 0..n_table {
        blobs.push(r.blob()?);
    }
    // The log index is rebuilt while the meshes are rebuilt and checked on the other cores.
    let (log, table) = rayon::join(
        || Log::restore(session, entries.into_iter()).map_err(corrupt),
        || {
            use rayon::prelude::*;
            blobs
                .par_iter()
                .map(|b| {
                    let mut one = Reader { b, at: 0 };
                    let o = read_object(&mut one)?;
                    if one.at != b.len() {
                        return Err(corrupt("an object has trailing bytes"));
                    }
                    Ok(Arc::new(o))
                })
                .collect::<Result<Vec<_>>>()
        },
    );
    let (log, table) = (log?, table?);
    let obj = |ix: u32| -> Result<Arc<Object>> {
        table
            .get(ix as usize)
            .cloned()
            .ok_or_else(|| corrupt("object index out of range"))
    };
    let opt_obj = |ix: u32| -> Result<Option<Arc<Object>>> {
        if ix == u32::MAX {
            Ok(None)
        } else {
            obj(ix).map(Some)
        }
    };
    let mut objects = BTreeMap::new();
    for _ in 0..r.len(12)? {
        let id = ObjectId(r.u64()?);
        objects.insert(id, obj(r.u32()?)?);
    }
    let mut groups = BTreeMap::new();
    for _ in 0..r.len(16)? {
        let id = GroupId(r.u64()?);
        groups.insert(id, Arc::new(read_group(r)?));
    }
    let mut deleted = BTreeMap::new();
    for _ in 0..r.len(72)? {
        let id = ObjectId(r.u64()?);
        deleted.insert(id, (CommandId(r.array()?), AuthorId(r.array()?)));
    }
    let mut undo = hashbrown::HashMap::default();
    for _ in 0..r.len(32 + 12)? {
        let id = CommandId(r.array()?);
        let mut objs = Vec::new();
        for _ in 0..r.len(16)? {
            let oid = ObjectId(r.u64()?);
            let before = opt_obj(r.u32()?)?;
            let after = opt_obj(r.u32()?)?;
            objs.push((oid, before, after));
        }
        let mut grps = Vec::new();
        for _ in 0..r.len(10)? {
            let gid = GroupId(r.u64()?);
            let before = r.opt(|r| read_group(r).map(Arc::new))?;
            let after = r.opt(|r| read_group(r).map(Arc::new))?;
            grps.push((gid, before, after));
        }
        let mut inverse = Vec::new();
        for _ in 0..r.len(4)? {
            let b = r.blob()?;
            let env = crate::wire::decode_body(b)
                .map_err(|e| corrupt(format!("an undo record's operation: {e}")))?;
            inverse.push(env.op);
        }
        undo.insert(
            id,
            Arc::new(UndoRecord {
                objects: objs,
                groups: grps,
                inverse,
            }),
        );
    }
    let mut history = BTreeMap::new();
    for _ in 0..r.len(36)? {
        let a = AuthorId(r.array()?);
        let mut h = Vec::new();
        for _ in 0..r.len(32)? {
            let id = CommandId(r.array()?);
            // Sequence numbers come from the log, which holds every command with a record.
            let seq = log
                .get(&id)
                .filter(|e| e.author == a)
                .ok_or_else(|| corrupt("an undo record names a command not in the log"))?
                .seq;
            h.push((seq, id));
        }
        if !h.is_sorted() {
            return Err(corrupt("an author's undo records are out of order"));
        }
        history.insert(a, h);
    }
    let applied = r.opt(|r| Ok((r.u64()?, CommandId(r.array()?))))?;
    let applied_count = r.u64()? as usize;
    if applied_count != log.len() {
        return Err(corrupt("the fold's position does not match the log"));
    }
    let mut caps = BTreeMap::new();
    for _ in 0..r.len(40)? {
        let a = AuthorId(r.array()?);
        caps.insert(a, r.u64()?);
    }
    let mut rejected = crate::fold::Rejections::default();
    for _ in 0..r.len(64 + 17)? {
        let command = CommandId(r.array()?);
        let author = AuthorId(r.array()?);
        let kind = static_kind(&log, &command, &r.str()?)?;
        let reason = r.str()?;
        let conflict = r.opt(|r| Ok((CommandId(r.array()?), AuthorId(r.array()?))))?;
        rejected.insert(
            command,
            Rejection {
                command,
                author,
                kind,
                reason,
                conflict,
            },
        );
    }
    if r.at != r.b.len() {
        return Err(corrupt("trailing bytes after the body"));
    }
    let scene = Scene {
        session: scene_session,
        name,
        roles,
        objects,
        groups,
        deleted: Arc::new(deleted),
        undo,
        history,
        journal: Default::default(),
    };
    let caps_epoch = Some(log.permission_epoch());
    // The restored scene is the first snapshot, so a late arrival rolls back to it rather than to
    // the start, if it lands after it.
    let snapshots = match applied {
        Some(k) => vec![(k, applied_count, scene.clone())],
        None => vec![],
    };
    Ok(Replica {
        log,
        scene,
        applied,
        applied_count,
        caps,
        caps_epoch,
        snapshots,
        tail_snapshots_until: 0,
        rejected,
        stats: FoldStats::default(),
        seen: applied_count as u32,
        // The first settle after the restore runs no packing steps for the commands the
        // checkpoint covers: restored objects pack as commands fold after it.
        pack: crate::fold::PackState {
            stepped: applied_count,
            ..Default::default()
        },
    })
}

/// A rejection's kind is one of the operation kinds' static names: it is the kind of the command
/// it names, which the log holds.
fn static_kind(log: &Log, command: &CommandId, kind: &str) -> Result<&'static str> {
    let op = log
        .get(command)
        .ok_or_else(|| corrupt("a rejection names a command the log lacks"))?
        .op()
        .map_err(|e| corrupt(format!("a logged command: {e}")))?;
    let k = op.kind();
    if k != kind {
        return Err(corrupt("a rejection's kind does not match its command"));
    }
    Ok(k)
}

fn read_object(r: &mut Reader<'_>) -> Result<Object> {
    let name = r.str()?;
    let transform = read_transform(r)?;
    let group = r.opt(|r| Ok(GroupId(r.u64()?)))?;
    let created_by = CommandId(r.array()?);
    let last_geometry_edit = (CommandId(r.array()?), AuthorId(r.array()?));
    let nv = r.len(8 + 12 + 4)?;
    let nh = r.len(12)?;
    let nf = r.len(8 + 4 + 4)?;
    // Check the arrays' total size before allocating any of them.
    let need = nv * 24 + nh * 12 + nf * 16;
    if need > r.b.len() - r.at {
        return Err(corrupt("a mesh is longer than the checkpoint"));
    }
    let vertex_ids = (0..nv)
        .map(|_| r.u64().map(VertexId))
        .collect::<Result<Vec<_>>>()?;
    let positions = (0..nv)
        .map(|_| Ok(Vec3::new(r.f32()?, r.f32()?, r.f32()?)))
        .collect::<Result<Vec<_>>>()?;
    let mut u32s = |n: usize| (0..n).map(|_| r.u32()).collect::<Result<Vec<u32>>>();
    let vertex_half_edges = u32s(nv)?;
    let next = u32s(nh)?;
    let origins = u32s(nh)?;
    let half_edge_faces = u32s(nh)?;
    let face_half_edges = u32s(nf)?;
    let face_ids = (0..nf)
        .map(|_| r.u64().map(FaceId))
        .collect::<Result<Vec<_>>>()?;
    let materials = (0..nf)
        .map(|_| r.u32().map(MaterialId))
        .collect::<Result<Vec<_>>>()?;
    let mesh = Mesh::from_raw(OwnedRawMesh {
        vertex_ids,
        positions,
        vertex_half_edges,
        next,
        origins,
        half_edge_faces,
        face_ids,
        face_half_edges,
        materials,
    })
    .map_err(|e| corrupt(format!("a mesh: {e}")))?;
    Ok(Object::new(
        name,
        mesh,
        transform,
        group,
        created_by,
        last_geometry_edit,
    ))
}

fn read_transform(r: &mut Reader<'_>) -> Result<ObjectTransform> {
    let mut f = [0f32; 10];
    for x in &mut f {
        *x = r.f32()?;
    }
    Ok(ObjectTransform {
        translation: Vec3::new(f[0], f[1], f[2]),
        rotation: Quat {
            x: f[3],
            y: f[4],
            z: f[5],
            w: f[6],
        },
        scale: Vec3::new(f[7], f[8], f[9]),
    })
}

fn read_group(r: &mut Reader<'_>) -> Result<Group> {
    let name = r.str()?;
    let mut members = BTreeSet::new();
    for _ in 0..r.len(8)? {
        members.insert(ObjectId(r.u64()?));
    }
    Ok(Group { name, members })
}

// ---------------------------------------------------------------------------------------------
// Bytes.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, x: u8) {
        self.out.push(x);
    }
    fn u32(&mut self, x: u32) {
        self.out.extend_from_slice(&x.to_le_bytes());
    }
    fn u64(&mut self, x: u64) {
        self.out.extend_from_slice(&x.to_le_bytes());
    }
    fn f32(&mut self, x: f32) {
        self.u32(x.to_bits());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    fn blob(&mut self, b: &[u8]) {
        self.len(b.len());
        self.bytes(b);
    }
    fn str(&mut self, s: &str) {
        self.blob(s.as_bytes());
    }
    fn opt<T>(&mut self, v: Option<&T>, f: impl FnOnce(&mut Writer, &T)) {
        match v {
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
            None => self.u8(0),
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|end| self.b.get(self.at..end))
            .ok_or_else(|| corrupt("it ends early"))?;
        self.at += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.u32()?))
    }
    /// A list length, checked against the bytes left given the least each element takes.
    fn len(&mut self, min_each: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_each.max(1)) > self.b.len() - self.at {
            return Err(corrupt("a list is longer than the checkpoint"));
        }
        Ok(n)
    }
    fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
    fn str(&mut self) -> Result<String> {
        let b = self.blob()?;
        String::from_utf8(b.to_vec()).map_err(|_| corrupt("a name is not UTF-8"))
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Reader<'a>) -> Result<T>) -> Result<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            x => Err(corrupt(format!("bad option tag {x}"))),
        }
    }
}
