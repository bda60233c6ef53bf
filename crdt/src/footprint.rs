//! What part of the scene a command can read or write: its footprint. Two commands whose
//! footprints are disjoint commute exactly (either order folds to the same scene, bit for bit), so
//! a late arrival needs to replay only the commands whose footprints reach what it touched (see
//! `Replica::settle`).
//!
//! The scene is split into keys: one per object (the object, and its entry among the deleted), one
//! for all groups together, one per command for its undo record. Everything else (the session's
//! name, the roles, and so who may edit at all) is global: a command that touches it reaches every
//! other. Every command also reads the roles and the revocation caps; those change only with
//! global commands and permission epochs, which the fold handles by replaying in full.
//!
//! Footprints are computed from the operation alone (and, for undo and redo, from the command they
//! name), never from the scene, so they are the same wherever the command lands.

use std::collections::BTreeSet;

use smallvec::SmallVec;

use crate::command::Op;
use crate::ids::{CommandId, DerivedIds, ObjectId};
use crate::log::{Entry, ID_HASH, IdHash, Log};

/// One independently folding part of the scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    /// Every group (membership changes reach groups other than the command's own).
    Groups,
    /// One object: its value in the scene and its record among the deleted.
    Object(ObjectId),
    /// One command's undo record: written by the command, read by undo and redo of it.
    Command(CommandId),
}

/// What a command reaches: some keys, or everything.
#[derive(Clone, Debug, Default)]
pub(crate) struct Footprint {
    pub(crate) global: bool,
    /// A global command that changes only the session's name and roles (no object, group or
    /// undo record): commands before it in the order do not see what it does.
    pub(crate) session_only: bool,
    pub(crate) keys: SmallVec<[Key; 2]>,
    /// The command an undo or redo names (whose record it reads).
    pub(crate) names: Option<CommandId>,
}

/// How deep undo-of-undo chains are followed before a footprint is called global.
const MAX_DEPTH: u32 = 8;

/// The footprint of `e`, whose operation is `op`.
pub(crate) fn footprint(log: &Log, e: &Entry, op: &Op) -> Footprint {
    let mut f = Footprint::default();
    if let Op::Undo { target: t } | Op::Redo { undo: t } = op {
        f.names = Some(*t);
    }
    add(log, e, op, &mut f, 0);
    f.keys.sort_unstable();
    f.keys.dedup();
    f
}

fn add(log: &Log, e: &Entry, op: &Op, f: &mut Footprint, depth: u32) {
    let obj = |f: &mut Footprint, o: ObjectId| f.keys.push(Key::Object(o));
    match op {
        Op::Genesis { .. }
        | Op::SetSessionName { .. }
        | Op::GrantRole { .. }
        | Op::RevokeRole { .. }
        | Op::RedeemInvite { .. } => {
            f.global = true;
            f.session_only = depth == 0;
        }
        // Its members are whatever the group holds where it lands.
        Op::Ungroup { .. } => f.global = true,
        Op::CreateObject { .. } => obj(f, DerivedIds::new(&e.id).object()),
        Op::DuplicateObject { object, .. } => {
            obj(f, *object);
            obj(f, DerivedIds::new(&e.id).object());
        }
        Op::DeleteObject { object } => {
            obj(f, *object);
            f.keys.push(Key::Groups);
        }
        Op::GroupObjects { objects, .. } => {
            for o in objects {
                obj(f, *o);
            }
            f.keys.push(Key::Groups);
        }
        Op::MergeObjects { into, from } => {
            obj(f, *into);
            obj(f, *from);
        }
        Op::RenameObject { object, .. }
        | Op::SetObjectTransform { object, .. }
        | Op::MoveObject { object, .. }
        | Op::PaintObject { object, .. }
        | Op::MoveVertices { object, .. }
        | Op::SetVertexPositions { object, .. }
        | Op::TransformElements { object, .. }
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
        | Op::DuplicateFaces { object, .. }
        | Op::PaintFaces { object, .. } => obj(f, *object),
        // Undoing reads the target's record and changes what the target changed.
        Op::Undo { target: t } | Op::Redo { undo: t } => {
            f.keys.push(Key::Command(*t));
            let Some(te) = log.get(t) else {
                return;
            };
            if depth >= MAX_DEPTH {
                f.global = true;
                return;
            }
            // A target that no longer decodes cannot be undone: the undo touches nothing more.
            if let Some(top) = log.decoded(te) {
                add(log, te, top, f, depth + 1);
            } else if let Ok(top) = te.op() {
                add(log, te, &top, f, depth + 1);
            }
        }
    }
}

/// What a set of commands reaches: their objects and groups, and (apart, since they are many and
/// only probed) the commands themselves, whose undo records they rewrite.
pub(crate) struct Reach {
    pub(crate) keys: BTreeSet<Key>,
    commands: hashbrown::HashSet<CommandId, IdHash>,
}

impl Reach {
    pub(crate) fn new() -> Reach {
        Reach {
            keys: BTreeSet::new(),
            commands: hashbrown::HashSet::with_hasher(ID_HASH),
        }
    }

    /// True if a command with footprint `f` reads or writes something in the set.
    pub(crate) fn meets(&self, f: &Footprint) -> bool {
        f.keys.iter().any(|k| match k {
            Key::Command(c) => self.commands.contains(c),
            k => self.keys.contains(k),
        })
    }

    /// Adds command `id`, whose footprint is `f`.
    pub(crate) fn add(&mut self, id: CommandId, f: &Footprint) {
        self.keys.extend(
            f.keys
                .iter()
                .copied()
                .filter(|k| !matches!(k, Key::Command(_))),
        );
        self.commands.insert(id);
    }
}
