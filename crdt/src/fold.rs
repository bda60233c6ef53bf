//! The fold: applying commands to the scene in the log's total order, and the incremental replica
//! that keeps a folded scene in step with a growing log.
//!
//! Each command is checked against the state it lands on:
//! 1. Forfeit: an equivocating author's commands from the equivocation on fold to nothing.
//! 2. Revocation cap: an author whose role was revoked with `last_accepted_seq = n` has every command
//!    with `seq > n` fold to nothing, wherever it lands in the order (caps are computed by a first
//!    pass over the permission commands, so a backdated command gains nothing).
//! 3. Role: genesis makes its author admin; session and role commands need admin; edits need editor
//!    or admin. Viewers and strangers fold to nothing.
//! 4. The operation's own preconditions (the kernel checks its ids and parameters); a failure is a
//!    rejection naming the conflicting command where there is one.
//!
//! A rejected command changes nothing and yields a [`Rejection`].

use std::collections::BTreeMap;
use std::sync::Arc;

use theta_mesh::{MeshError, Selection, Vec3};

use crate::command::Op;
use crate::footprint::{Footprint, Key, Reach, footprint};
use crate::ids::{AuthorId, CommandId, DerivedIds, GroupId, ObjectId, Role};
use crate::log::{Entry, InsertError, Inserted, Log, OrderKey, Verified};
use crate::scene::{Event, Group, Object, Rejection, Scene, diff};

/// How many of an author's most recent commands can be undone: an undo or redo names one of the
/// author's commands at most this many sequence numbers before its own. A window in sequence
/// numbers, not in undoable commands, so that whether a command can still be undone depends on
/// nothing but the two commands (see `footprint.rs`).
pub const UNDO_DEPTH: usize = 32;
/// The replica keeps a snapshot of the scene every this many commands (and, while commands
/// arrive out of order, every [`TAIL_SNAPSHOT_INTERVAL`] near the tail).
pub const SNAPSHOT_INTERVAL: usize = 256;
/// How many snapshots the replica keeps: the most recent, and older ones ever sparser (see
/// `Replica::push_snapshot`); a rollback before the oldest replays from the start.
pub const MAX_SNAPSHOTS: usize = 16;
/// While commands arrive out of order (peers editing at once), the replica also keeps a snapshot
/// every this many commands near the tail, so that a rollback replays about as many commands as
/// it undoes instead of everything since the last [`SNAPSHOT_INTERVAL`] boundary.
pub const TAIL_SNAPSHOT_INTERVAL: usize = 16;
/// How many commands after a rollback the replica keeps taking tail snapshots. A session with
/// no rollbacks (one author at a time, a tail that only grows) takes none: each snapshot makes
/// the next edit of every object it holds copy that object's edited array.
pub const TAIL_SNAPSHOT_SPAN: usize = 4096;

/// Frames of cold command bytes one idle step compresses (see [`Replica::pack_idle`]): about a
/// millisecond of zstd.
const IDLE_FRAMES: usize = 4;

/// When the replica packs objects nobody has changed for a while (see [`Replica::pack_cold`]).
/// Packing is a representation only: it never changes the scene, its hash, or any fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    /// A packing step runs once per this many folded commands (0: never); a settle that folds
    /// many at once (opening a session, a merge) runs as many steps at its end. Coldness is
    /// counted in folded commands too, so a session nobody edits has nothing new to pack.
    pub every: usize,
    /// Objects one step looks at.
    pub visits: usize,
    /// Objects one step packs: with the default, a step costs about a millisecond, so it never
    /// shows as a hitch.
    pub max: usize,
    /// An object is cold once this many commands have folded since it last changed.
    pub cold_after: usize,
}

impl Default for Packing {
    fn default() -> Packing {
        Packing {
            every: SNAPSHOT_INTERVAL,
            visits: 2048,
            max: 64,
            cold_after: 128,
        }
    }
}

/// The packing sweep's bookkeeping (not state).
#[derive(Clone, Debug, Default)]
pub(crate) struct PackState {
    pub(crate) config: Packing,
    /// Per object changed lately, the count of folded commands when it last changed.
    pub(crate) last_change: hashbrown::HashMap<ObjectId, usize, crate::log::IdHash>,
    /// Where the sweep over the scene goes on, and the one over the snapshots (which snapshot,
    /// and the last object looked at there).
    pub(crate) cursor: Option<ObjectId>,
    pub(crate) snapshot_cursor: (usize, Option<ObjectId>),
    /// The count of folded commands at the last settle.
    pub(crate) stepped: usize,
    /// Objects the scene sweep and the snapshot sweep have looked at since anything was last
    /// packed or a long settle changed the scene: once each has looked at as many as it holds,
    /// a whole round found nothing to pack and [`Replica::pack_idle`] has nothing left to do.
    pub(crate) dry: (usize, usize),
}

/// What undoing a command needs. Edits that merge or overwrite values (moves, transforms, set
/// positions, renames, paints) record their inverse operations, which apply on top of whatever
/// happened since. Structural edits (create, delete, topology) record the objects and groups they
/// changed, before and after: they can be undone only while nobody has changed those since.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoRecord {
    pub(crate) objects: Vec<ObjectChange>,
    pub(crate) groups: Vec<GroupChange>,
    pub(crate) inverse: Vec<Op>,
}

/// An object before and after a command (`None`: absent).
pub(crate) type ObjectChange = (ObjectId, Option<Arc<Object>>, Option<Arc<Object>>);
/// A group before and after a command (`None`: absent).
pub(crate) type GroupChange = (GroupId, Option<Arc<Group>>, Option<Arc<Group>>);

type Reject = (String, Option<(CommandId, AuthorId)>);

fn reject(reason: impl Into<String>) -> Reject {
    (reason.into(), None)
}

/// Revocation caps from the permission commands alone, in order (see the module docs).
pub fn revocation_caps(log: &Log) -> BTreeMap<AuthorId, u64> {
    let mut roles: BTreeMap<AuthorId, Role> = BTreeMap::new();
    let mut caps: BTreeMap<AuthorId, u64> = BTreeMap::new();
    for e in log.permission_commands() {
        if log.is_forfeited(e) || caps.get(&e.author).is_some_and(|&c| e.seq > c) {
            continue;
        }
        let Ok(op) = e.op() else { continue };
        let change = role_change(&op, e.author, log.session(), |a| roles.get(a).copied());
        if let Ok(Some(change)) = change
            && let Some((who, cap)) = change.apply(&mut roles)
        {
            let c = caps.entry(who).or_insert(u64::MAX);
            *c = (*c).min(cap);
        }
    }
    caps
}

/// What a permission command does to the roles where it lands. One definition serves the fold and
/// the first pass that computes revocation caps, so the two passes never disagree.
enum RoleChange {
    /// `who` gets exactly `role`; a revoke also caps their sequence numbers.
    Set {
        who: AuthorId,
        role: Role,
        cap: Option<u64>,
    },
    /// `who` gets `role` unless they hold a higher one already (a redeemed invite).
    AtLeast { who: AuthorId, role: Role },
}

impl RoleChange {
    /// Applies the change; returns the revocation cap it sets, if any.
    fn apply(self, roles: &mut BTreeMap<AuthorId, Role>) -> Option<(AuthorId, u64)> {
        match self {
            RoleChange::Set { who, role, cap } => {
                roles.insert(who, role);
                cap.map(|c| (who, c))
            }
            RoleChange::AtLeast { who, role } => {
                let r = roles.entry(who).or_insert(role);
                *r = (*r).max(role);
                None
            }
        }
    }
}

/// The role change `op` by `author` makes, given the roles where it lands (`role_of`); `None` for
/// commands that are not about roles, `Err` with the reason for one that is refused.
fn role_change(
    op: &Op,
    author: AuthorId,
    session: Option<CommandId>,
    role_of: impl Fn(&AuthorId) -> Option<Role>,
) -> Result<Option<RoleChange>, String> {
    let admin = role_of(&author) == Some(Role::Admin);
    let change = match op {
        Op::Genesis { .. } => RoleChange::Set {
            who: author,
            role: Role::Admin,
            cap: None,
        },
        Op::GrantRole { author: who, role } if admin => RoleChange::Set {
            who: *who,
            role: *role,
            cap: None,
        },
        Op::RevokeRole { author: who, .. } if admin && *who == author => {
            return Err("an admin cannot revoke their own role".into());
        }
        Op::RevokeRole {
            author: who,
            last_accepted_seq,
        } if admin => RoleChange::Set {
            who: *who,
            role: Role::Viewer,
            cap: Some(*last_accepted_seq),
        },
        Op::GrantRole { .. } | Op::RevokeRole { .. } => {
            return Err("granting and revoking roles needs an admin".into());
        }
        Op::RedeemInvite { invite } => {
            redeemable(invite, session, author, role_of)?;
            RoleChange::AtLeast {
                who: author,
                role: invite.capability.role,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(change))
}

/// Checks an invite redeemed by `author`: signature, session, invitee, and that its issuer is an
/// admin at this point (`role_of`). Expiry is not checked here (see `invite.rs`).
fn redeemable(
    invite: &crate::invite::SignedCapability,
    session: Option<CommandId>,
    author: AuthorId,
    role_of: impl Fn(&AuthorId) -> Option<Role>,
) -> Result<(), String> {
    let c = &invite.capability;
    invite.verify().map_err(|e| e.to_string())?;
    if Some(c.session) != session {
        return Err("the invite is for another session".into());
    }
    if c.invitee.is_some_and(|k| k != author) {
        return Err("the invite names another invitee".into());
    }
    if role_of(&invite.issuer) != Some(Role::Admin) {
        return Err("the invite's issuer is not an admin here".into());
    }
    Ok(())
}

/// Applies one command to the scene. `caps` are the revocation caps of the whole log.
#[expect(
    clippy::result_large_err,
    reason = "a rejection is the normal outcome of a conflict, not a rare error; boxing it buys nothing"
)]
pub fn apply(
    scene: &mut Scene,
    log: &Log,
    caps: &BTreeMap<AuthorId, u64>,
    e: &Entry,
) -> Result<(), Rejection> {
    apply_decoded(scene, log, caps, e, None)
}

/// [`apply`], with the operation already decoded when the caller has it.
#[expect(clippy::result_large_err, reason = "as for `apply`")]
fn apply_decoded(
    scene: &mut Scene,
    log: &Log,
    caps: &BTreeMap<AuthorId, u64>,
    e: &Entry,
    op: Option<&Op>,
) -> Result<(), Rejection> {
    let decoded;
    let op = match op {
        Some(op) => op,
        None => match e.op() {
            Ok(op) => {
                decoded = op;
                &decoded
            }
            Err(err) => {
                return Err(Rejection {
                    command: e.id,
                    author: e.author,
                    kind: "unreadable",
                    reason: format!("the stored command no longer decodes: {err}"),
                    conflict: None,
                });
            }
        },
    };
    let r = apply_inner(scene, log, caps, e, op);
    // Whatever became of it, the author's commands from UNDO_DEPTH before it on are the only
    // ones an undo can still name.
    prune_history(scene, e.author, e.seq);
    r.map_err(|(reason, conflict)| Rejection {
        command: e.id,
        author: e.author,
        kind: op.kind(),
        reason,
        conflict,
    })
}

fn apply_inner(
    scene: &mut Scene,
    log: &Log,
    caps: &BTreeMap<AuthorId, u64>,
    e: &Entry,
    op: &Op,
) -> Result<(), Reject> {
    let author = e.author;
    if log.is_forfeited(e) {
        return Err(reject(
            "the author signed two commands with one sequence number",
        ));
    }
    if caps.get(&author).is_some_and(|&c| e.seq > c) {
        return Err(reject("the author's role was revoked before this command"));
    }
    let role = scene.roles.get(&author).copied();
    let need = match op {
        // Redeeming an invite is how a newcomer gets a role: the capability is checked instead.
        Op::Genesis { .. } | Op::RedeemInvite { .. } => None,
        Op::SetSessionName { .. } | Op::GrantRole { .. } | Op::RevokeRole { .. } => {
            Some(Role::Admin)
        }
        _ => Some(Role::Editor),
    };
    if let Some(need) = need
        && role.is_none_or(|r| r < need)
    {
        return Err(reject(format!(
            "the author is {} here and this needs {need:?}",
            role.map_or("not a member".to_string(), |r| format!("{r:?}"))
        )));
    }
    let before = Snapshot::take(scene, op);
    let inverse = match op {
        Op::Undo { target } => return undo(scene, log, e, *target),
        Op::Redo { undo: u } => return redo(scene, log, e, *u),
        op => run(scene, e, op)?,
    };
    if let Some(inverse) = inverse {
        if !inverse.is_empty() {
            push_history(
                scene,
                e,
                UndoRecord {
                    objects: vec![],
                    groups: vec![],
                    inverse,
                },
            );
        }
    } else {
        before.record(scene, e, op);
    }
    Ok(())
}

/// Objects and groups a command may touch, captured before it runs, for its undo record.
struct Snapshot {
    objects: Vec<(ObjectId, Option<Arc<Object>>)>,
    groups: Vec<(GroupId, Option<Arc<Group>>)>,
    undoable: bool,
}

impl Snapshot {
    fn take(scene: &Scene, op: &Op) -> Snapshot {
        // Edits with an inverse operation need no snapshot (see `UndoRecord`); keeping one would
        // also force a copy of the object on every such edit.
        let objs: Vec<ObjectId> = match op {
            Op::DeleteObject { object }
            | Op::ExtrudeRegion { object, .. }
            | Op::ExtrudeIndividual { object, .. }
            | Op::Inset { object, .. }
            | Op::SplitEdge { object, .. }
            | Op::SplitFace { object, .. }
            | Op::LoopCut { object, .. }
            | Op::Subdivide { object, .. }
            | Op::DeleteFaces { object, .. }
            | Op::DeleteVertex { object, .. }
            | Op::DeleteEdge { object, .. }
            | Op::Weld { object, .. }
            | Op::Mirror { object, .. }
            | Op::MirrorSymmetric { object, .. }
            | Op::DuplicateFaces { object, .. } => vec![*object],
            Op::MergeObjects { into, from } => vec![*into, *from],
            Op::GroupObjects { objects, .. } => objects.clone(),
            Op::Ungroup { group } => scene
                .groups
                .get(group)
                .map(|g| g.members.iter().copied().collect())
                .unwrap_or_default(),
            _ => vec![],
        };
        let groups: Vec<GroupId> = match op {
            Op::Ungroup { group } => vec![*group],
            Op::GroupObjects { objects, .. } => objects
                .iter()
                .filter_map(|o| scene.objects.get(o).and_then(|x| x.group))
                .collect(),
            _ => vec![],
        };
        let undoable = !matches!(
            op,
            Op::Genesis { .. }
                | Op::SetSessionName { .. }
                | Op::GrantRole { .. }
                | Op::RevokeRole { .. }
                | Op::RedeemInvite { .. }
                | Op::Undo { .. }
                | Op::Redo { .. }
        );
        Snapshot {
            objects: objs
                .into_iter()
                .map(|o| (o, scene.objects.get(&o).cloned()))
                .collect(),
            groups: groups
                .into_iter()
                .map(|g| (g, scene.groups.get(&g).cloned()))
                .collect(),
            undoable,
        }
    }

    fn record(self, scene: &mut Scene, e: &Entry, op: &Op) {
        if !self.undoable {
            return;
        }
        let mut objects: Vec<ObjectChange> = self
            .objects
            .into_iter()
            .map(|(id, b)| (id, b, scene.objects.get(&id).cloned()))
            .collect();
        // An object the command created has the first id the command derives.
        if matches!(op, Op::CreateObject { .. } | Op::DuplicateObject { .. }) {
            let id = DerivedIds::new(&e.id).object();
            if let Some(o) = scene.objects.get(&id) {
                objects.push((id, None, Some(o.clone())));
            }
        }
        let mut groups: Vec<GroupChange> = self
            .groups
            .into_iter()
            .map(|(id, b)| (id, b, scene.groups.get(&id).cloned()))
            .collect();
        if let Op::GroupObjects { .. } = op {
            let g = DerivedIds::new(&e.id).group();
            if let Some(x) = scene.groups.get(&g) {
                groups.push((g, None, Some(x.clone())));
            }
        }
        push_history(
            scene,
            e,
            UndoRecord {
                objects,
                groups,
                inverse: vec![],
            },
        );
    }
}

fn push_history(scene: &mut Scene, e: &Entry, rec: UndoRecord) {
    keep_record(scene, e, Arc::new(rec));
}

/// Folds one command onto the scene, keeping the rejections and their events up to date. It takes
/// the replica's parts one by one, so that the settle and a partial rollback fold entries
/// borrowed from the log in place instead of copies.
fn fold_entry(
    scene: &mut Scene,
    log: &Log,
    caps: &BTreeMap<AuthorId, u64>,
    rejected: &mut Rejections,
    stats: &mut FoldStats,
    e: &Entry,
    events: &mut Vec<Event>,
) {
    stats.applied += 1;
    match apply_decoded(scene, log, caps, e, log.decoded(e)) {
        Ok(()) => {
            rejected.remove(&e.id);
        }
        Err(r) => {
            stats.rejected += 1;
            if rejected.get(&e.id) != Some(&r) {
                events.push(Event::Rejected(r.clone()));
            }
            rejected.insert(e.id, r);
        }
    }
}

/// Keeps a command's undo record.
fn keep_record(scene: &mut Scene, e: &Entry, rec: Arc<UndoRecord>) {
    scene.undo.insert(e.id, rec);
    let h = scene.history.entry(e.author).or_default();
    // In sequence order: a partial replay (see `Replica::settle`) folds some of an author's
    // commands again after later ones.
    let at = h.partition_point(|(s, _)| *s < e.seq);
    h.insert(at, (e.seq, e.id));
}

/// Drops the author's undo records that no command from `newest` on can name.
fn prune_history(scene: &mut Scene, author: AuthorId, newest: u64) {
    if let Some(h) = scene.history.get_mut(&author) {
        let cut = h.partition_point(|(s, _)| s.saturating_add(UNDO_DEPTH as u64) < newest);
        if cut > 0 {
            for (_, id) in h.drain(..cut) {
                scene.undo.remove(&id);
            }
            if h.is_empty() {
                scene.history.remove(&author);
            }
        }
    }
}

/// Forgets one command's undo record (before the command is folded again).
fn forget_history(scene: &mut Scene, e: &Entry) {
    if scene.undo.remove(&e.id).is_some()
        && let Some(h) = scene.history.get_mut(&e.author)
    {
        h.retain(|(_, id)| *id != e.id);
        if h.is_empty() {
            scene.history.remove(&e.author);
        }
    }
}

/// Brings a snapshot taken before a partial rollback up to date, as the rollback's replay passes
/// the snapshot's place in the order: the objects (and groups) the replay reaches take their
/// values from `scene` as they are at that moment; the commands folded again so far (`done`, by
/// author, in order) take their undo records from it; and their authors' records are pruned as a
/// full fold leaves them there (`last_seq`: each author's last command up to that place). Only
/// the commands within each author's undo window are looked at: the pruning removes the rest.
fn repair(
    snap: &mut Scene,
    scene: &Scene,
    objects: &[ObjectId],
    groups: bool,
    done: &BTreeMap<AuthorId, Vec<&Entry>>,
    last_seq: &BTreeMap<AuthorId, u64>,
) {
    for id in objects {
        match scene.objects.get(id) {
            Some(o) => snap.objects.insert(*id, o.clone()),
            None => snap.objects.remove(id),
        };
        // Copied only where it differs, so an unchanged table stays shared.
        if scene.deleted.get(id) != snap.deleted.get(id) {
            match scene.deleted.get(id) {
                Some(by) => Arc::make_mut(&mut snap.deleted).insert(*id, *by),
                None => Arc::make_mut(&mut snap.deleted).remove(id),
            };
        }
    }
    if groups {
        snap.groups = scene.groups.clone();
    }
    for (a, list) in done {
        let Some(&n) = last_seq.get(a) else {
            continue;
        };
        let from = list.partition_point(|e| e.seq.saturating_add(UNDO_DEPTH as u64) < n);
        for e in &list[from..] {
            forget_history(snap, e);
            if let Some(rec) = scene.undo.get(&e.id) {
                keep_record(snap, e, rec.clone());
            }
        }
        prune_history(snap, *a, n);
    }
}

/// True if an undo or redo `e` may name `target` (see [`UNDO_DEPTH`]).
fn in_undo_window(e: &Entry, target: &Entry) -> bool {
    target.seq < e.seq && e.seq - target.seq <= UNDO_DEPTH as u64
}

/// True if an object or group is as recorded (`None`: absent); pointer equality first, since an
/// untouched value is the very same allocation.
fn same<T: PartialEq>(a: &Option<Arc<T>>, b: Option<&Arc<T>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || **x == **y,
        _ => false,
    }
}

/// Reverts a record: if every object and group is still as the command left it, they go back to
/// how they were before; else, for a mergeable edit, its inverse is applied on top of later edits;
/// else the undo is rejected, naming the last edit that got in the way.
fn revert(scene: &mut Scene, e: &Entry, rec: &UndoRecord) -> Result<UndoRecord, Reject> {
    if !rec.inverse.is_empty() {
        // Apply every inverse on a copy of the scene (cheap: objects are shared) so that the undo
        // is all or nothing.
        // One inverse runs in place (every operation is all or nothing); several run on a copy
        // of the scene, so that the undo as a whole is all or nothing.
        let mut trial = (rec.inverse.len() > 1).then(|| scene.clone());
        let mut redo = Vec::new();
        for inv in &rec.inverse {
            match run(trial.as_mut().unwrap_or(scene), e, inv)? {
                Some(r) if !r.is_empty() => redo.extend(r),
                _ => return Err(reject("it has no inverse")),
            }
        }
        if let Some(t) = trial {
            *scene = t;
        }
        redo.reverse();
        return Ok(UndoRecord {
            objects: vec![],
            groups: vec![],
            inverse: redo,
        });
    }
    let untouched = rec
        .objects
        .iter()
        .all(|(id, _, after)| same(after, scene.objects.get(id)))
        && rec
            .groups
            .iter()
            .all(|(id, _, after)| same(after, scene.groups.get(id)));
    if untouched {
        let mut undone = UndoRecord {
            objects: vec![],
            groups: vec![],
            inverse: vec![],
        };
        for (id, before, _) in &rec.objects {
            undone
                .objects
                .push((*id, scene.objects.get(id).cloned(), before.clone()));
            match before {
                Some(o) => {
                    scene.touch(*id);
                    scene.objects.insert(*id, o.clone());
                    if scene.deleted.contains_key(id) {
                        Arc::make_mut(&mut scene.deleted).remove(id);
                    }
                }
                None => {
                    scene.touch(*id);
                    scene.objects.remove(id);
                    Arc::make_mut(&mut scene.deleted).insert(*id, (e.id, e.author));
                }
            }
        }
        for (id, before, _) in &rec.groups {
            scene.journal.meta = true;
            undone
                .groups
                .push((*id, scene.groups.get(id).cloned(), before.clone()));
            match before {
                Some(g) => scene.groups.insert(*id, g.clone()),
                None => scene.groups.remove(id),
            };
        }
        return Ok(undone);
    }
    let already = rec
        .objects
        .iter()
        .all(|(id, before, _)| same(before, scene.objects.get(id)));
    if already {
        return Err(reject("it is already undone"));
    }
    let blocker = rec
        .objects
        .iter()
        .find(|(id, _, after)| !same(after, scene.objects.get(id)))
        .and_then(|(id, _, _)| {
            scene
                .objects
                .get(id)
                .map(|o| o.last_geometry_edit)
                .or_else(|| scene.deleted.get(id).copied())
        });
    Err((
        "later edits changed what it touched, and it cannot be undone on top of them".into(),
        blocker,
    ))
}

fn undo(scene: &mut Scene, log: &Log, e: &Entry, target: CommandId) -> Result<(), Reject> {
    let Some(t) = log.get(&target) else {
        return Err(reject("the command to undo is not in the log"));
    };
    if t.author != e.author {
        return Err(reject("only a command's author can undo it"));
    }
    if !in_undo_window(e, t) {
        return Err(reject(format!(
            "only the author's last {UNDO_DEPTH} commands can be undone"
        )));
    }
    let Some(rec) = scene.undo.get(&target).cloned() else {
        return Err(reject("the command was rejected or cannot be undone"));
    };
    let undone = revert(scene, e, &rec)?;
    push_history(scene, e, undone);
    Ok(())
}

fn redo(scene: &mut Scene, log: &Log, e: &Entry, u: CommandId) -> Result<(), Reject> {
    let Some(t) = log.get(&u) else {
        return Err(reject("the undo to redo is not in the log"));
    };
    if t.author != e.author || !matches!(t.op(), Ok(Op::Undo { .. })) {
        return Err(reject("redo names one of the author's own undo commands"));
    }
    if !in_undo_window(e, t) {
        return Err(reject(format!(
            "only the author's last {UNDO_DEPTH} commands can be redone"
        )));
    }
    let Some(rec) = scene.undo.get(&u).cloned() else {
        return Err(reject("the undo was rejected"));
    };
    let redone = revert(scene, e, &rec)?;
    push_history(scene, e, redone);
    Ok(())
}

fn object_mut(scene: &mut Scene, id: ObjectId) -> Result<&mut Object, Reject> {
    if scene.objects.contains_key(&id) {
        scene.touch(id);
    }
    if let Some(o) = scene.objects.get_mut(&id) {
        return Ok(Arc::make_mut(o));
    }
    Err(match scene.deleted.get(&id) {
        Some(&by) => ("the object was deleted".into(), Some(by)),
        None => reject("no such object"),
    })
}

/// Runs a kernel edit on an object's mesh; on success records it as the last geometry edit.
fn mesh_edit(
    scene: &mut Scene,
    e: &Entry,
    object: ObjectId,
    f: impl FnOnce(&mut theta_mesh::Mesh, &mut DerivedIds) -> Result<(), MeshError>,
) -> Result<(), Reject> {
    // The kernel leaves the mesh untouched when it fails, so the edit runs in place.
    let o = object_mut(scene, object)?;
    let last = o.last_geometry_edit;
    let mut ids = DerivedIds::new(&e.id);
    f(o.mesh_mut(), &mut ids).map_err(|err| {
        let conflict = matches!(
            err,
            MeshError::UnknownVertex(_)
                | MeshError::UnknownFace(_)
                | MeshError::UnknownEdge(..)
                | MeshError::UnknownHalfEdge(_)
        )
        .then_some(last);
        (err.to_string(), conflict)
    })?;
    o.last_geometry_edit = (e.id, e.author);
    Ok(())
}

/// Paint commands that restore the current materials of `faces` (one per material, in material
/// order), checking the faces exist.
fn repaint(
    scene: &Scene,
    object: ObjectId,
    faces: &[theta_mesh::FaceId],
) -> Result<Vec<Op>, Reject> {
    let o = scene
        .objects
        .get(&object)
        .ok_or_else(|| reject("no such object"))?;
    let mesh = o.mesh();
    let mut by: BTreeMap<theta_mesh::MaterialId, Vec<theta_mesh::FaceId>> = BTreeMap::new();
    for &f in faces {
        let m = mesh
            .face_material(f)
            .map_err(|err| (err.to_string(), Some(o.last_geometry_edit)))?;
        by.entry(m).or_default().push(f);
    }
    Ok(by
        .into_iter()
        .map(|(material, faces)| Op::PaintFaces {
            object,
            faces,
            material,
        })
        .collect())
}

fn finite(v: Vec3, what: &str) -> Result<(), Reject> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(reject(format!("{what} is not finite")))
    }
}

/// Runs an operation (not undo/redo). For edits that are undone by an inverse operation, returns
/// the inverse (empty if this instance cannot be inverted, e.g. a scale by zero); `None` for
/// structural edits, which are undone from snapshots.
fn run(scene: &mut Scene, e: &Entry, op: &Op) -> Result<Option<Vec<Op>>, Reject> {
    let mut ids = DerivedIds::new(&e.id);
    let author = e.author;
    match op {
        Op::Genesis { name } => {
            if scene.session.is_some() {
                return Err(reject("the session already has a genesis"));
            }
            scene.journal.meta = true;
            scene.session = Some(e.id);
            scene.name = name.clone();
            scene.roles.insert(author, Role::Admin);
        }
        Op::SetSessionName { name } => {
            scene.journal.meta = true;
            scene.name = name.clone();
        }
        Op::GrantRole { .. } | Op::RevokeRole { .. } | Op::RedeemInvite { .. } => {
            let change = role_change(op, author, scene.session, |a| scene.roles.get(a).copied())
                .map_err(reject)?;
            if let Some(change) = change {
                scene.journal.meta = true;
                change.apply(&mut scene.roles);
            }
        }
        Op::CreateObject {
            name,
            primitive,
            material,
            transform,
        } => {
            if !transform.is_finite() {
                return Err(reject("the placement is not finite"));
            }
            let id = ids.object();
            if scene.objects.contains_key(&id) {
                return Err(reject("object id collision"));
            }
            let mesh = primitive
                .build(&mut ids, *material)
                .map_err(|e| reject(e.to_string()))?;
            scene.touch(id);
            scene.objects.insert(
                id,
                Arc::new(Object::new(
                    name.clone(),
                    mesh,
                    *transform,
                    None,
                    e.id,
                    (e.id, author),
                )),
            );
        }
        Op::DeleteObject { object } => {
            object_mut(scene, *object)?;
            if let Some(o) = scene.objects.remove(object)
                && let Some(g) = o.group
                && let Some(gr) = scene.groups.get_mut(&g)
            {
                Arc::make_mut(gr).members.remove(object);
                scene.journal.meta = true;
            }
            Arc::make_mut(&mut scene.deleted).insert(*object, (e.id, author));
        }
        Op::DuplicateObject { object, offset } => {
            finite(*offset, "offset")?;
            let src = object_mut(scene, *object)?.clone();
            let id = ids.object();
            if scene.objects.contains_key(&id) {
                return Err(reject("object id collision"));
            }
            let mut copy = src;
            copy.transform.translation += *offset;
            finite(copy.transform.translation, "the copy's position")?;
            copy.group = None;
            copy.created_by = e.id;
            copy.last_geometry_edit = (e.id, author);
            scene.touch(id);
            scene.objects.insert(id, Arc::new(copy));
        }
        Op::RenameObject { object, name } => {
            let o = object_mut(scene, *object)?;
            let old = std::mem::replace(&mut o.name, name.clone());
            return Ok(Some(vec![Op::RenameObject {
                object: *object,
                name: old,
            }]));
        }
        Op::SetObjectTransform { object, transform } => {
            if !transform.is_finite() {
                return Err(reject("the placement is not finite"));
            }
            let o = object_mut(scene, *object)?;
            let old = std::mem::replace(&mut o.transform, *transform);
            return Ok(Some(vec![Op::SetObjectTransform {
                object: *object,
                transform: old,
            }]));
        }
        Op::MoveObject { object, delta } => {
            finite(*delta, "offset")?;
            let o = object_mut(scene, *object)?;
            let t = o.transform.translation + *delta;
            finite(t, "the new position")?;
            o.transform.translation = t;
            return Ok(Some(vec![Op::MoveObject {
                object: *object,
                delta: -*delta,
            }]));
        }
        Op::PaintObject { object, material } => {
            let faces: Vec<_> = object_mut(scene, *object)?.mesh_mut().faces().collect();
            let inverse = repaint(scene, *object, &faces)?;
            let m = *material;
            mesh_edit(scene, e, *object, |mesh, _| mesh.paint(&faces, m))?;
            return Ok(Some(inverse));
        }
        Op::GroupObjects { objects, name } => {
            if objects.is_empty() {
                return Err(reject("a group needs members"));
            }
            for o in objects {
                object_mut(scene, *o)?;
            }
            let g = ids.group();
            scene.journal.meta = true;
            let mut members = std::collections::BTreeSet::new();
            for o in objects {
                let obj = object_mut(scene, *o)?;
                let old = obj.group.replace(g);
                members.insert(*o);
                if let Some(old) = old
                    && let Some(gr) = scene.groups.get_mut(&old)
                {
                    Arc::make_mut(gr).members.remove(o);
                }
            }
            scene.groups.insert(
                g,
                Arc::new(Group {
                    name: name.clone(),
                    members,
                }),
            );
        }
        Op::Ungroup { group } => {
            let Some(g) = scene.groups.remove(group) else {
                return Err(reject("no such group"));
            };
            scene.journal.meta = true;
            for m in &g.members {
                if scene.objects.contains_key(m) {
                    scene.touch(*m);
                }
                if let Some(o) = scene.objects.get_mut(m) {
                    Arc::make_mut(o).group = None;
                }
            }
        }
        Op::MergeObjects { into, from } => {
            if into == from {
                return Err(reject("an object cannot be merged into itself"));
            }
            let src = object_mut(scene, *from)?.clone();
            let dst_t = object_mut(scene, *into)?.transform;
            let s = dst_t.scale;
            if s.x == 0.0 || s.y == 0.0 || s.z == 0.0 {
                return Err(reject("the target object is scaled to zero"));
            }
            // Bring the source's vertices into the target's object space.
            let mut m = src.mesh().into_owned();
            let to_world = |p: Vec3| {
                src.transform
                    .rotation
                    .rotate(p.mul_elem(src.transform.scale))
                    + src.transform.translation
            };
            let inv_rot = theta_mesh::Quat::from_xyzw(
                -dst_t.rotation.x,
                -dst_t.rotation.y,
                -dst_t.rotation.z,
                dst_t.rotation.w,
            );
            let to_local = |p: Vec3| {
                let q = inv_rot.rotate(p - dst_t.translation);
                Vec3::new(q.x / s.x, q.y / s.y, q.z / s.z)
            };
            let vs: Vec<_> = m.vertices().collect();
            for v in vs {
                let p = m.position(v).map_err(|e| reject(e.to_string()))?;
                m.set_position(v, to_local(to_world(p)))
                    .map_err(|e| reject(e.to_string()))?;
            }
            mesh_edit(scene, e, *into, |mesh, ids| mesh.merge(&m, ids))?;
            scene.touch(*from);
            scene.objects.remove(from);
            Arc::make_mut(&mut scene.deleted).insert(*from, (e.id, author));
        }
        Op::MoveVertices {
            object,
            vertices,
            delta,
        } => {
            finite(*delta, "offset")?;
            mesh_edit(scene, e, *object, |m, _| {
                m.translate_vertices(vertices, *delta)
            })?;
            return Ok(Some(vec![Op::MoveVertices {
                object: *object,
                vertices: vertices.clone(),
                delta: -*delta,
            }]));
        }
        Op::SetVertexPositions { object, positions } => {
            let mut old = Vec::with_capacity(positions.len());
            mesh_edit(scene, e, *object, |m, _| {
                // All or nothing: check every vertex and position before moving any.
                for (v, p) in positions {
                    old.push((*v, m.position(*v)?));
                    if !p.is_finite() {
                        return Err(MeshError::InvalidParameter {
                            name: "position",
                            reason: "not finite".into(),
                        });
                    }
                }
                for (v, p) in positions {
                    m.set_position(*v, *p)?;
                }
                Ok(())
            })?;
            // Restoring in reverse order undoes repeated vertices correctly.
            old.reverse();
            return Ok(Some(vec![Op::SetVertexPositions {
                object: *object,
                positions: old,
            }]));
        }
        Op::TransformElements {
            object,
            selection,
            transform,
        } => {
            let sel = Selection {
                all: false,
                vertices: selection.vertices.clone(),
                edges: selection.edges.clone(),
                faces: selection.faces.clone(),
            };
            mesh_edit(scene, e, *object, |m, _| m.transform(&sel, transform))?;
            let inverse = match *transform {
                theta_mesh::Transform::Translate(d) => Some(theta_mesh::Transform::Translate(-d)),
                theta_mesh::Transform::Rotate { rotation, pivot } => {
                    Some(theta_mesh::Transform::Rotate {
                        rotation: theta_mesh::Quat::from_xyzw(
                            -rotation.x,
                            -rotation.y,
                            -rotation.z,
                            rotation.w,
                        ),
                        pivot,
                    })
                }
                theta_mesh::Transform::Scale { factors: f, pivot } => {
                    (f.x != 0.0 && f.y != 0.0 && f.z != 0.0).then(|| theta_mesh::Transform::Scale {
                        factors: Vec3::new(1.0 / f.x, 1.0 / f.y, 1.0 / f.z),
                        pivot,
                    })
                }
            };
            return Ok(Some(
                inverse
                    .map(|transform| Op::TransformElements {
                        object: *object,
                        selection: selection.clone(),
                        transform,
                    })
                    .into_iter()
                    .collect(),
            ));
        }
        Op::ExtrudeRegion {
            object,
            faces,
            offset,
        } => mesh_edit(scene, e, *object, |m, ids| {
            m.extrude_region(faces, *offset, ids).map(drop)
        })?,
        Op::ExtrudeIndividual {
            object,
            faces,
            distance,
        } => mesh_edit(scene, e, *object, |m, ids| {
            m.extrude_individual(faces, *distance, ids).map(drop)
        })?,
        Op::Inset {
            object,
            faces,
            amount,
        } => mesh_edit(scene, e, *object, |m, ids| {
            m.inset(faces, *amount, ids).map(drop)
        })?,
        Op::SplitEdge { object, edge, t } => mesh_edit(scene, e, *object, |m, ids| {
            let h = m.find_halfedge(edge.0, edge.1)?;
            m.split_edge(h, *t, ids).map(drop)
        })?,
        Op::SplitFace { object, face, a, b } => mesh_edit(scene, e, *object, |m, ids| {
            m.split_face(*face, *a, *b, ids).map(drop)
        })?,
        Op::LoopCut { object, edge, cuts } => mesh_edit(scene, e, *object, |m, ids| {
            let h = m.find_halfedge(edge.0, edge.1)?;
            m.loop_cut(h, *cuts, ids).map(drop)
        })?,
        Op::Subdivide { object, levels } => {
            mesh_edit(scene, e, *object, |m, ids| m.subdivide(*levels, ids))?
        }
        Op::DeleteFaces {
            object,
            faces,
            mode,
        } => mesh_edit(scene, e, *object, |m, ids| {
            m.delete_faces_with(faces, *mode, ids)
        })?,
        Op::DeleteVertex {
            object,
            vertex,
            mode,
        } => mesh_edit(scene, e, *object, |m, ids| {
            m.delete_vertex(*vertex, *mode, ids)
        })?,
        Op::DeleteEdge { object, edge, mode } => mesh_edit(scene, e, *object, |m, ids| {
            let h = m.find_halfedge(edge.0, edge.1)?;
            m.delete_edge(h, *mode, ids)
        })?,
        Op::Weld {
            object,
            distance,
            vertices,
        } => mesh_edit(scene, e, *object, |m, _| {
            let only = (!vertices.is_empty()).then_some(vertices.as_slice());
            m.weld(*distance, only).map(drop)
        })?,
        Op::Mirror {
            object,
            faces,
            plane,
            weld,
        } => mesh_edit(scene, e, *object, |m, ids| {
            m.mirror(faces, *plane, *weld, ids).map(drop)
        })?,
        Op::MirrorSymmetric {
            object,
            plane,
            seam,
        } => mesh_edit(scene, e, *object, |m, ids| {
            m.mirror_symmetric(*plane, *seam, ids).map(drop)
        })?,
        Op::DuplicateFaces {
            object,
            faces,
            offset,
        } => mesh_edit(scene, e, *object, |m, ids| {
            m.duplicate(faces, *offset, ids).map(drop)
        })?,
        Op::PaintFaces {
            object,
            faces,
            material,
        } => {
            let inverse = repaint(scene, *object, faces)?;
            mesh_edit(scene, e, *object, |m, _| m.paint(faces, *material))?;
            return Ok(Some(inverse));
        }
        Op::Undo { .. } | Op::Redo { .. } => return Err(reject("undo cannot be nested")),
    }
    Ok(None)
}

/// Rejections by command id: a hash table, probed on every fold step. Nothing that decides state
/// iterates it; whoever lists rejections sorts them (the checkpoint does, by id).
pub type Rejections = hashbrown::HashMap<CommandId, Rejection, crate::log::IdHash>;

/// A log and its folded scene, kept in step incrementally.
///
/// Commands that land at the end of the order are applied in place. Commands that land earlier
/// (late or concurrent arrivals), equivocations and revocations are integrated in batches: the
/// replica rolls back once per [`Replica::settle`] to the nearest snapshot before the earliest
/// change and replays from there, so the cost is bounded by the commands after that point, and a
/// flood of backdated commands costs one replay, not one per command.
#[derive(Debug, Clone)]
pub struct Replica {
    pub(crate) log: Log,
    pub(crate) scene: Scene,
    /// The last command folded into `scene`, and how many commands that is.
    pub(crate) applied: Option<OrderKey>,
    pub(crate) applied_count: usize,
    pub(crate) caps: BTreeMap<AuthorId, u64>,
    pub(crate) caps_epoch: Option<u64>,
    pub(crate) snapshots: Vec<(OrderKey, usize, Scene)>,
    /// Tail snapshots are taken while `applied_count` is below this (see
    /// [`TAIL_SNAPSHOT_SPAN`]).
    pub(crate) tail_snapshots_until: usize,
    pub(crate) rejected: Rejections,
    pub(crate) stats: FoldStats,
    /// How many commands the log had admitted at the last settle: those admitted since are the
    /// ones this settle brings in (`Entry::admitted`).
    pub(crate) seen: u32,
    /// Packing cold objects (see [`Replica::pack_cold`]).
    pub(crate) pack: PackState,
}

/// Packed copies of these objects (see [`crate::packed`]), on rayon's pool when there are many
/// (after opening a session: thousands, a few milliseconds each core).
fn pack_all(objects: &[(ObjectId, Arc<Object>)]) -> Vec<Arc<Object>> {
    use rayon::prelude::*;
    let one = |(_, o): &(ObjectId, Arc<Object>)| o.packed().map_or_else(|| o.clone(), Arc::new);
    if objects.len() > 64 {
        objects.par_iter().map(one).collect()
    } else {
        objects.iter().map(one).collect()
    }
}

/// Counters of what the fold did (tests assert that conflicts and rollbacks really happened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldStats {
    /// Commands applied (including replays).
    pub applied: u64,
    /// Commands that folded to nothing.
    pub rejected: u64,
    /// Rollbacks (replays from a snapshot or the start).
    pub rollbacks: u64,
    /// Commands replayed by rollbacks.
    pub replayed: u64,
    /// Rollbacks that restored and replayed only what the late commands reach (see
    /// [`Replica::settle`]).
    pub partial: u64,
}

impl Replica {
    /// A replica of the session with this genesis id.
    pub fn new(session: CommandId) -> Replica {
        Replica {
            log: Log::for_session(session),
            scene: Scene::default(),
            applied: None,
            applied_count: 0,
            caps: BTreeMap::new(),
            caps_epoch: None,
            snapshots: Vec::new(),
            tail_snapshots_until: 0,
            rejected: Rejections::default(),
            stats: FoldStats::default(),
            seen: 0,
            pack: PackState::default(),
        }
    }

    /// Compresses every frame of commands that has gone cold, now (see [`Log::compact_cold`]).
    pub fn compact_cold_now(&mut self) -> usize {
        self.log.compact_cold(usize::MAX)
    }

    /// Sets how many recent commands the log keeps uncompressed (see [`Log::set_hot_window`]).
    pub fn set_hot_window(&mut self, n: usize) {
        self.log.set_hot_window(n);
    }

    /// When the settle packs cold objects.
    pub fn packing(&self) -> Packing {
        self.pack.config
    }

    /// Sets when the settle packs cold objects (tests pack at every settle, to show packing
    /// changes nothing but memory).
    pub fn set_packing(&mut self, packing: Packing) {
        self.pack.config = packing;
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The folded scene (as of the last [`Replica::settle`]).
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// How many of the log's commands the scene holds: the log's length once settled. A log
    /// that took commands not yet folded is longer, and its scene does not show them yet, so a
    /// report of "this many commands, this state" counts these.
    pub fn folded(&self) -> usize {
        self.applied_count
    }

    /// Counters of fold work.
    pub fn stats(&self) -> FoldStats {
        self.stats
    }

    /// Every command that currently folds to nothing, with why, by command id.
    pub fn rejections(&self) -> &Rejections {
        &self.rejected
    }

    /// Adds a verified command to the log (not yet folded: call [`Replica::settle`]).
    pub fn insert(&mut self, cmd: Verified) -> Result<Inserted, InsertError> {
        self.log.insert(cmd)
    }

    /// Inserts and folds one command: the common path for a local edit or a live remote command.
    pub fn insert_and_settle(
        &mut self,
        cmd: Verified,
    ) -> Result<(Inserted, Vec<Event>), InsertError> {
        let r = self.log.insert(cmd)?;
        Ok((r, self.settle()))
    }

    /// Folds everything the log gained since the last call; returns the change events.
    pub fn settle(&mut self) -> Vec<Event> {
        self.settle_with(false)
    }

    /// [`Replica::settle`] for one batch of a catch-up with more batches on the way: the regular
    /// snapshots are [`MAX_SNAPSHOTS`] times sparser. The batches that follow would thin a
    /// snapshot every [`SNAPSHOT_INTERVAL`] out again, geometrically, before anything could roll
    /// back to it, and each one costs a scene clone, a copy of every object edited after it,
    /// and the drop of those copies: a third of a late joiner's fold. The last batch folds
    /// with [`Replica::settle`], so the tail gets its dense snapshots. Nor does it compress the
    /// log's cold bytes: [`Replica::pack_idle`] does, once the catch-up is over.
    pub fn settle_part(&mut self) -> Vec<Event> {
        self.settle_with(true)
    }

    /// The fold of [`Replica::settle`]; `part`: one batch of a catch-up with more on the way
    /// (see [`Replica::settle_part`]).
    fn settle_with(&mut self, part: bool) -> Vec<Event> {
        let every = if part {
            SNAPSHOT_INTERVAL * MAX_SNAPSHOTS
        } else {
            SNAPSHOT_INTERVAL
        };
        let mut dirty = self.log.take_dirty();
        // Revocation caps change only with permission commands; a changed cap replays from the
        // first command it affects.
        let epoch = self.log.permission_epoch();
        let epoch_changed = self.caps_epoch != Some(epoch);
        if epoch_changed {
            self.caps_epoch = Some(epoch);
            let caps = revocation_caps(&self.log);
            if caps != self.caps {
                let changed: Vec<AuthorId> = caps
                    .iter()
                    .filter(|(a, c)| self.caps.get(a) != Some(c))
                    .map(|(a, _)| *a)
                    .chain(self.caps.keys().filter(|a| !caps.contains_key(a)).copied())
                    .collect();
                let first = self
                    .log
                    .ordered()
                    .find(|e| changed.contains(&e.author))
                    .map(|e| (e.lamport, e.id));
                if let Some(k) = first {
                    dirty = Some(dirty.map_or(k, |d| d.min(k)));
                }
                self.caps = caps;
            }
        }
        let mut events = Vec::new();
        // The scene as it was, kept only when a rollback replaces it (then events come from
        // comparing the two); otherwise the journal says what changed, at no per-object cost.
        let mut replaced: Option<Scene> = None;
        let seen = std::mem::replace(&mut self.seen, self.log.len() as u32);
        let partial_before = self.stats.partial;
        if let Some(d) = dirty
            && self.applied.is_some_and(|a| d <= a)
            && (epoch_changed || !self.partial_rollback(d, seen, &mut events))
        {
            self.stats.rollbacks += 1;
            // A snapshot taken after folding key k is still good if every change lies after k.
            self.snapshots.retain(|(k, _, _)| *k < d);
            let (key, count, restored) = match self.snapshots.last() {
                Some((k, c, s)) => (Some(*k), *c, s.clone()),
                None => (None, 0, Scene::default()),
            };
            self.applied = key;
            // Commands are arriving out of order: keep snapshots close to the tail for a while.
            self.tail_snapshots_until = self.applied_count + TAIL_SNAPSHOT_SPAN;
            self.applied_count = count;
            let mut old = std::mem::replace(&mut self.scene, restored);
            old.journal = Default::default();
            replaced = Some(old);
        }
        // What this settle folds: the commands after `applied` in the total order, read in place.
        let from = self.log.position_of_next(self.applied);
        let todo_len = self.log.len() - from;
        if replaced.is_some() {
            self.stats.replayed += todo_len as u64;
        }
        // Snapshots older than the last MAX_SNAPSHOTS would be dropped before this settle ends, so
        // a long replay (opening a file, a deep rollback) takes only the ones it keeps: each
        // snapshot costs a scene clone and makes the next edit of every object copy it.
        let keep_from = todo_len.saturating_sub(MAX_SNAPSHOTS * every + every);
        // A long batch at the tail (a peer's offline work arriving, a merge) starts with a
        // snapshot where it begins, so that work concurrent with it, arriving later, rolls back
        // to there rather than to the start.
        if replaced.is_none()
            && todo_len >= SNAPSHOT_INTERVAL
            && !part
            && let Some(k) = self.applied
            && self.snapshots.last().is_none_or(|(s, _, _)| *s != k)
        {
            self.push_snapshot(k);
        }
        for i in 0..todo_len {
            let touched = self.scene.journal.objects.len();
            let e = self.log.ordered_at(from + i);
            fold_entry(
                &mut self.scene,
                &self.log,
                &self.caps,
                &mut self.rejected,
                &mut self.stats,
                e,
                &mut events,
            );
            let key = (e.lamport, e.id);
            self.applied = Some(key);
            self.applied_count += 1;
            for &(id, _) in self.scene.journal.objects.get(touched..).unwrap_or(&[]) {
                self.pack.last_change.insert(id, self.applied_count);
            }
            // Only in short settles (a replay longer than a snapshot interval takes the regular
            // ones: in a scene of 9,000 objects each clone and its later drop cost a few hundred
            // microseconds), and only in their last 64 commands.
            let tail_snapshot = self.applied_count < self.tail_snapshots_until
                && todo_len <= SNAPSHOT_INTERVAL
                && self.applied_count.is_multiple_of(TAIL_SNAPSHOT_INTERVAL)
                && i + TAIL_SNAPSHOT_INTERVAL * 4 >= todo_len;
            if (self.applied_count.is_multiple_of(every) && i >= keep_from) || tail_snapshot {
                self.push_snapshot(key);
            }
        }
        self.log.trim_decoded();
        // Commands that have gone cold are compressed a frame at a time: on another thread while
        // the fold goes on (a frame is about a quarter of a millisecond of zstd), except at the
        // end of a long settle at the tail (opening a session), which compresses all it has made
        // cold before returning. A catch-up batch with more to follow compresses nothing: idle
        // time does it once the catch-up is over (`pack_idle`), off the path of the batches
        // still coming.
        let rolled_back = replaced.is_some() || self.stats.partial > partial_before;
        if !part {
            if todo_len >= 4 * crate::log::FRAME && !rolled_back {
                self.log.compact_cold(1 + todo_len / crate::log::FRAME);
            } else {
                self.log.compact_in_background();
            }
        }
        let mut out = match replaced {
            Some(old) => {
                self.scene.journal = Default::default();
                diff(&old, &self.scene)
            }
            None => self.scene.take_events(),
        };
        // A packing step each time the folded count passes a multiple of `every`. With the
        // default, that is the settle that takes the regular snapshot, so the fold pauses for its
        // housekeeping once, not twice. A long settle (opening, a catch-up batch, a merge) packs
        // nothing at its end and leaves it to idle time (`pack_idle`, below): packing there as
        // many steps as it passed put a late joiner's catch-up from 1.8 s to over 3 s, packing
        // objects that the next batch unpacked again.
        let c = self.pack.config;
        if let (Some(now), Some(then)) = (
            self.applied_count.checked_div(c.every),
            self.pack.stepped.checked_div(c.every),
        ) && now != then
            && todo_len < SNAPSHOT_INTERVAL
        {
            self.pack_cold(c.visits, c.max);
        }
        // Also while packing is off, so turning it back on does not make up for the settles
        // in between all at once.
        self.pack.stepped = self.applied_count;
        // A long settle (opening, a merge, a deep rollback) leaves more cold objects than its
        // steps packed: idle time takes the rest (see `pack_idle`).
        if todo_len >= SNAPSHOT_INTERVAL || rolled_back {
            self.pack.dry = (0, 0);
        }
        out.append(&mut events);
        out
    }

    /// Packs objects that have not changed in the last [`Packing::cold_after`] folded commands
    /// (see [`crate::packed`]), going on from where the last call stopped: it looks at up to
    /// `visits` objects and packs up to `max`. The snapshots share the objects, so they are
    /// pointed at the packed copies too, and the live meshes are freed. Packing changes no state:
    /// the scene, its hash and every later fold are the same with or without it.
    pub fn pack_cold(&mut self, visits: usize, max: usize) {
        use std::ops::Bound;
        let from = match self.pack.cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        let now = self.applied_count;
        let cold_after = self.pack.config.cold_after;
        let mut packed: Vec<(ObjectId, Arc<Object>, Arc<Object>)> = Vec::new();
        let mut cursor = None;
        let mut visited = 0;
        // Whether the sweep reached the end of the scene (it did unless the budget stopped it).
        let mut wrapped = true;
        let mut cold: Vec<(ObjectId, Arc<Object>)> = Vec::new();
        for (i, (id, o)) in self
            .scene
            .objects
            .range((from, Bound::Unbounded))
            .enumerate()
        {
            if i == visits || cold.len() == max {
                wrapped = false;
                break;
            }
            visited = i + 1;
            cursor = Some(*id);
            let warm = self
                .pack
                .last_change
                .get(id)
                .is_some_and(|&c| c + cold_after > now);
            if !warm && !o.is_packed() {
                cold.push((*id, o.clone()));
            }
        }
        for ((id, old), new) in cold.iter().zip(pack_all(&cold)) {
            if let Some(slot) = self.scene.objects.get_mut(id) {
                *slot = new.clone();
            }
            packed.push((*id, old.clone(), new));
        }
        drop(cold);
        if wrapped {
            // A sweep is done: forget changes that no longer keep anything live.
            self.pack.cursor = None;
            self.pack.last_change.retain(|_, c| *c + cold_after > now);
        } else {
            self.pack.cursor = cursor;
        }
        // What is left of the budget goes to the snapshots' own versions of objects whose scene
        // version is packed or gone: those share their arrays with nothing live, so packing them
        // frees the arrays. (An older version of an object that is live in the scene shares most
        // arrays with it, and packing it would free little and add its packed copy.)
        let mut left = visits.saturating_sub(visited);
        // Versions already taken care of: what the scene sweep just packed (which the snapshots
        // may share) and what this sweep takes (a version shared by several snapshots is packed
        // once).
        let mut fresh: std::collections::HashSet<*const Object> =
            packed.iter().map(|(_, old, _)| Arc::as_ptr(old)).collect();
        let n = self.snapshots.len();
        let mut tries = 0;
        let mut want: Vec<(ObjectId, Arc<Object>)> = Vec::new();
        while left > 0 && packed.len() + want.len() < max && tries < n {
            tries += 1;
            let (ix, from) = self.pack.snapshot_cursor;
            let ix = if ix < n { ix } else { 0 };
            let from = match from {
                Some(c) => Bound::Excluded(c),
                None => Bound::Unbounded,
            };
            let mut at = None;
            let mut done = true;
            for (id, o) in self.snapshots[ix].2.objects.range((from, Bound::Unbounded)) {
                if left == 0 || packed.len() + want.len() == max {
                    done = false;
                    break;
                }
                left -= 1;
                at = Some(*id);
                let scene_packed = self.scene.objects.get(id).is_none_or(|c| c.is_packed());
                if !scene_packed || o.is_packed() {
                    continue;
                }
                // Shared versions are packed once (the scene sweep's too: the pass below
                // repoints them).
                if fresh.insert(Arc::as_ptr(o)) {
                    want.push((*id, o.clone()));
                }
            }
            self.pack.snapshot_cursor = if done { (ix + 1, None) } else { (ix, at) };
        }
        for ((id, old), new) in want.iter().zip(pack_all(&want)) {
            packed.push((*id, old.clone(), new));
        }
        drop(want);
        if packed.is_empty() {
            let snapshot_visits = visits.saturating_sub(visited) - left;
            self.pack.dry.0 = self.pack.dry.0.saturating_add(visited);
            self.pack.dry.1 = self.pack.dry.1.saturating_add(snapshot_visits);
            return;
        }
        self.pack.dry = (0, 0);
        for (_, _, snap) in &mut self.snapshots {
            for (id, old, new) in &packed {
                if let Some(s) = snap.objects.get_mut(id)
                    && Arc::ptr_eq(s, old)
                {
                    *s = new.clone();
                }
            }
        }
        // Undo records hold objects too (structural edits keep the versions before and after):
        // point them at the packed copies as well, so that packing keeps what is shared shared
        // (the checkpoint writes each shared object once, and its bytes must not depend on when
        // packing ran). Records shared between the scene and its snapshots stay shared. The maps
        // are visited in hash order, which decides nothing: each record is patched on its own.
        let by_ptr: std::collections::HashMap<*const Object, &Arc<Object>> = packed
            .iter()
            .map(|(_, old, new)| (Arc::as_ptr(old), new))
            .collect();
        let mut patched: std::collections::HashMap<*const UndoRecord, Arc<UndoRecord>> =
            std::collections::HashMap::new();
        let scenes =
            std::iter::once(&mut self.scene).chain(self.snapshots.iter_mut().map(|(_, _, s)| s));
        for scene in scenes {
            for rec in scene.undo.values_mut() {
                let hit = |o: &Option<Arc<Object>>| {
                    o.as_ref()
                        .is_some_and(|o| by_ptr.contains_key(&Arc::as_ptr(o)))
                };
                if !rec.objects.iter().any(|(_, b, a)| hit(b) || hit(a)) {
                    continue;
                }
                let key = Arc::as_ptr(rec);
                if let Some(done) = patched.get(&key) {
                    *rec = done.clone();
                    continue;
                }
                let mut fresh = (**rec).clone();
                for (_, before, after) in &mut fresh.objects {
                    for o in [before, after] {
                        if let Some(x) = o
                            && let Some(new) = by_ptr.get(&Arc::as_ptr(x))
                        {
                            *x = Arc::clone(new);
                        }
                    }
                }
                let fresh = Arc::new(fresh);
                patched.insert(key, fresh.clone());
                *rec = fresh;
            }
        }
    }

    /// One packing step for idle time: packs up to `max` cold objects (of the scene, then of its
    /// snapshots), as [`Replica::pack_cold`] does, and says whether any may be left. After a long
    /// settle (opening a session packs nothing, to open in time; a merge packs only its steps'
    /// worth), the app calls this between frames or messages until it says no: a step of 64
    /// objects is about a millisecond. Once a whole round of both sweeps found nothing, it
    /// returns false at once until the next long settle. Packing changes no state.
    ///
    /// The log's cold command bytes come first, a few frames a step (see [`Log::compact_cold`]):
    /// a replica restored from a checkpoint folded nothing, so nothing compressed them, and
    /// compressing them took a 100,000-command session opened that way from 67.2 to 43.5 MB of
    /// live heap.
    pub fn pack_idle(&mut self, max: usize) -> bool {
        if self.log.compact_cold(IDLE_FRAMES) > 0 {
            return true;
        }
        if self.pack_idle_done() {
            return false;
        }
        self.pack_cold(self.pack.config.visits.max(1), max.max(1));
        !self.pack_idle_done()
    }

    fn pack_idle_done(&self) -> bool {
        let in_snapshots: usize = self.snapshots.iter().map(|(_, _, s)| s.objects.len()).sum();
        self.pack.dry.0 >= self.scene.objects.len() && self.pack.dry.1 >= in_snapshots
    }

    /// Integrates commands that landed before the end of what is folded (`d`: the earliest)
    /// without replaying everything after them. From the newest snapshot before `d`, the
    /// commands that reach what the new ones reach are found (and those that reach what they
    /// reach, to a fixed point: see `footprint.rs`); only those parts of the scene go back to
    /// the snapshot, and only those commands fold again, in order. Every other command's
    /// footprint is disjoint from all of theirs, so it commutes with them: the scene that comes
    /// out is the one a full replay gives, bit for bit (the tests compare the two).
    ///
    /// Returns false, having changed nothing, where this does not apply: no snapshot before
    /// `d`, a global command (session, roles, ungroup) among those after it, or an undo whose
    /// target's record is no longer kept. The caller then rolls back in full.
    fn partial_rollback(&mut self, d: OrderKey, seen: u32, events: &mut Vec<Event>) -> bool {
        let Some(si) = self.snapshots.iter().rposition(|(k, _, _)| *k < d) else {
            return false;
        };
        let (base, base_count) = (self.snapshots[si].0, self.snapshots[si].1);
        // Borrowed from the log, which the rollback does not change (the scene and the
        // snapshots are other fields).
        let entries: Vec<&Entry> = self.log.ordered_after(Some(base)).collect();
        debug_assert_eq!(base_count + entries.len(), self.log.len());
        // What the commands to fold again reach.
        let mut reach = Reach::new();
        let mut marked = vec![false; entries.len()];
        let mut fps = Vec::with_capacity(entries.len());
        let mut n_marked = 0;
        let mut last_global = None;
        // One pass in order computes the footprints and marks the new commands and whatever
        // reaches what the marked ones before it reach.
        for (i, e) in entries.iter().enumerate() {
            let f = match self.log.decoded(e) {
                Some(op) => footprint(&self.log, e, op),
                None => match e.op() {
                    Ok(op) => footprint(&self.log, e, &op),
                    // It folds to "unreadable", reaching nothing.
                    Err(_) => Footprint::default(),
                },
            };
            if f.global {
                // An old change of name or roles is fine: it folds as before (see below).
                if !f.session_only || e.admitted >= seen {
                    return false;
                }
                last_global = Some(i);
                fps.push(f);
                continue;
            }
            if e.admitted >= seen || reach.meets(&f) {
                marked[i] = true;
                n_marked += 1;
                reach.add(e.id, &f);
            }
            fps.push(f);
            // When nearly everything folds again anyway (concurrent work on one object), a full
            // rollback costs less: it skips the bookkeeping of which parts to restore.
            if i >= 128 && n_marked * 4 > (i + 1) * 3 {
                return false;
            }
        }
        // Then to a fixed point: a command marked late in the order can reach what an earlier,
        // unmarked one touched.
        let mut passes = 0;
        loop {
            let mut grew = false;
            for i in 0..entries.len() {
                if !marked[i] && reach.meets(&fps[i]) {
                    marked[i] = true;
                    n_marked += 1;
                    reach.add(entries[i].id, &fps[i]);
                    grew = true;
                }
            }
            passes += 1;
            if !grew {
                break;
            }
            if passes > 16 || (entries.len() > 128 && n_marked * 4 > entries.len() * 3) {
                return false;
            }
        }
        // Commands folded again before an old change of name or roles must see the roles as they
        // were there: then the name and roles go back to the snapshot too, and every such change
        // in the range folds again (it reads nothing else, so it comes out as before).
        let session_again = last_global.is_some_and(|g| marked[..g].contains(&true));
        if session_again {
            for (i, f) in fps.iter().enumerate() {
                if f.global {
                    marked[i] = true;
                }
            }
        }
        // An undo folded again reads its target's record. A target that is not folded again
        // kept its record, unless later commands of its author pruned it already.
        for (i, e) in entries.iter().enumerate() {
            let Some(t) = fps[i].names.filter(|_| marked[i]) else {
                continue;
            };
            let target_marked = entries
                .iter()
                .position(|x| x.id == t)
                .is_some_and(|j| marked[j]);
            if !target_marked
                && let Some(te) = self.log.get(&t)
                && te.author == e.author
                && in_undo_window(e, te)
                && !self.scene.undo.contains_key(&t)
                && !self.rejected.contains_key(&t)
            {
                return false;
            }
        }
        self.stats.rollbacks += 1;
        self.stats.partial += 1;
        let snap = &self.snapshots[si].2;
        let objects: Vec<ObjectId> = reach
            .keys
            .iter()
            .filter_map(|k| match *k {
                Key::Object(o) => Some(o),
                _ => None,
            })
            .collect();
        for &id in &objects {
            self.scene.touch(id);
            match snap.objects.get(&id) {
                Some(o) => self.scene.objects.insert(id, o.clone()),
                None => self.scene.objects.remove(&id),
            };
            if snap.deleted.get(&id) != self.scene.deleted.get(&id) {
                match snap.deleted.get(&id) {
                    Some(by) => Arc::make_mut(&mut self.scene.deleted).insert(id, *by),
                    None => Arc::make_mut(&mut self.scene.deleted).remove(&id),
                };
            }
        }
        if session_again {
            self.scene.session = snap.session;
            self.scene.name = snap.name.clone();
            self.scene.roles = snap.roles.clone();
            self.scene.journal.meta = true;
        }
        let groups = reach.keys.contains(&Key::Groups);
        if groups && self.scene.groups != snap.groups {
            self.scene.groups = snap.groups.clone();
            self.scene.journal.meta = true;
        }
        let mut authors = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if marked[i] {
                forget_history(&mut self.scene, e);
                authors.push(e.author);
            }
        }
        // The snapshots from `d` on lack the new commands. Each is repaired as the replay passes
        // it: what the replay reaches is, at that moment, as a full fold leaves it there, and
        // nothing else differs.
        let mut next = si + 1;
        let mut done: BTreeMap<AuthorId, Vec<&Entry>> = BTreeMap::new();
        let mut last_seq: BTreeMap<AuthorId, u64> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            while let Some((k, count, snap)) = self.snapshots.get_mut(next)
                && *k < (e.lamport, e.id)
            {
                *count = base_count + i;
                repair(snap, &self.scene, &objects, groups, &done, &last_seq);
                next += 1;
            }
            if marked[i] {
                if e.admitted < seen {
                    self.stats.replayed += 1;
                }
                fold_entry(
                    &mut self.scene,
                    &self.log,
                    &self.caps,
                    &mut self.rejected,
                    &mut self.stats,
                    e,
                    events,
                );
                done.entry(e.author).or_default().push(*e);
            }
            last_seq.insert(e.author, e.seq);
        }
        for (_, count, snap) in &mut self.snapshots[next..] {
            *count = base_count + entries.len();
            repair(snap, &self.scene, &objects, groups, &done, &last_seq);
        }
        // As a full replay leaves them: pruned from each author's last command on.
        authors.sort_unstable();
        authors.dedup();
        for a in authors {
            prune_history(&mut self.scene, a, self.log.last_seq(&a));
        }
        self.applied = entries.last().map(|e| (e.lamport, e.id)).or(Some(base));
        self.tail_snapshots_until = self.applied_count + TAIL_SNAPSHOT_SPAN;
        self.applied_count = self.log.len();
        // The scene is a clean fold again: keep it, unless a snapshot lies close behind, so that
        // the next late command restores from near where it lands rather than from ever further
        // back.
        if let Some(k) = self.applied
            && self
                .snapshots
                .last()
                .is_none_or(|(_, c, _)| c + TAIL_SNAPSHOT_INTERVAL * 4 <= self.applied_count)
        {
            self.push_snapshot(k);
        }
        true
    }

    /// Keeps a snapshot of the scene as it is, after folding `key`. Past [`MAX_SNAPSHOTS`], the
    /// one whose removal leaves the smallest gap for its age goes (never the oldest or the
    /// newest), so the snapshots thin out geometrically towards the past: a rollback to any
    /// depth replays a bounded multiple of the commands it undoes, not the whole log.
    fn push_snapshot(&mut self, key: OrderKey) {
        self.snapshots
            .push((key, self.applied_count, self.scene.snapshot()));
        if self.snapshots.len() > MAX_SNAPSHOTS {
            let counts: Vec<usize> = self.snapshots.iter().map(|(_, c, _)| *c).collect();
            let newest = counts[counts.len() - 1];
            // Removing snapshot i leaves a gap from i - 1 to i + 1; measured against how far
            // back i - 1 lies, the smallest such gap goes. Gaps then grow in proportion to
            // their age (a geometric spacing): dense at the tail, where concurrent edits
            // land, and sparse far back. (An absolute smallest gap would even the spacing
            // out instead, and leave the tail with gaps of a thousand commands.)
            let relative = |i: usize| {
                (
                    (counts[i + 1] - counts[i - 1]) as u128,
                    (newest - counts[i - 1]) as u128,
                )
            };
            let mut drop = 1;
            for i in 2..counts.len() - 1 {
                let ((g, a), (bg, ba)) = (relative(i), relative(drop));
                if g * ba < bg * a {
                    drop = i;
                }
            }
            self.snapshots.remove(drop);
        }
    }

    /// Checks every kept snapshot against a fold from scratch up to its place, and its count:
    /// the first snapshot that differs, by index, if any. For tests (it folds the log once per
    /// snapshot).
    #[doc(hidden)]
    pub fn first_bad_snapshot(&self) -> Option<usize> {
        let caps = revocation_caps(&self.log);
        self.snapshots.iter().position(|(k, count, snap)| {
            let mut scene = Scene::default();
            let mut n = 0;
            for e in self.log.ordered().take_while(|e| (e.lamport, e.id) <= *k) {
                let _ = apply(&mut scene, &self.log, &caps, e);
                n += 1;
            }
            n != *count || scene != *snap
        })
    }

    /// Drops one kind of the replica's derived state, so a benchmark can weigh it by the heap it
    /// frees: 0 the snapshots, 1 the undo records and histories, 2 the log's decoded operations.
    /// The replica is only good for dropping afterwards.
    #[doc(hidden)]
    pub fn release_for_measurement(&mut self, what: u8) {
        match what {
            0 => self.snapshots = Vec::new(),
            1 => {
                self.scene.undo = Default::default();
                self.scene.history = Default::default();
            }
            _ => self.log.drop_decoded(),
        }
    }

    /// The scene folded from scratch, ignoring all incremental state (tests compare the two).
    pub fn full_replay(&self) -> Scene {
        let caps = revocation_caps(&self.log);
        let mut scene = Scene::default();
        for e in self.log.ordered() {
            let _ = apply(&mut scene, &self.log, &caps, e);
        }
        scene
    }
}
