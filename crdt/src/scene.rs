//! The scene: the deterministic fold of the log. Objects (mesh, placement, name, group), groups, the
//! session's name and who holds which role.
//!
//! Objects and groups sit behind `Arc`s, so a snapshot of the scene (kept by the fold for rollback)
//! costs one pointer per object, and an edit copies only the object it changes. Comparing two scenes'
//! objects by pointer finds what changed, which is how change events are made.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use theta_mesh::Mesh;

use crate::command::ObjectTransform;
use crate::ids::{AuthorId, CommandId, GroupId, ObjectId, Role};

/// One object of the scene.
#[derive(Clone)]
pub struct Object {
    /// Display name.
    pub name: String,
    /// Geometry, in object space: live, or packed while nobody edits it (see [`crate::packed`]).
    geometry: Geometry,
    /// Placement in the scene.
    pub transform: ObjectTransform,
    /// The group it belongs to, if any.
    pub group: Option<GroupId>,
    /// The command that created it.
    pub created_by: CommandId,
    /// The last command that changed its geometry, and its author (for conflict reports).
    pub last_geometry_edit: (CommandId, AuthorId),
}

#[derive(Clone)]
enum Geometry {
    /// Boxed, so a packed object (most of them) pays for the pointer, not the mesh's handles.
    Live(Box<Mesh>),
    Packed(Box<[u8]>),
}

impl Object {
    /// An object with a live mesh.
    pub fn new(
        name: String,
        mesh: Mesh,
        transform: ObjectTransform,
        group: Option<GroupId>,
        created_by: CommandId,
        last_geometry_edit: (CommandId, AuthorId),
    ) -> Object {
        Object {
            name,
            geometry: Geometry::Live(Box::new(mesh)),
            transform,
            group,
            created_by,
            last_geometry_edit,
        }
    }

    /// The geometry, in object space: borrowed when live, unpacked (a few microseconds for a
    /// few-dozen-face object) when packed.
    pub fn mesh(&self) -> Cow<'_, Mesh> {
        match &self.geometry {
            Geometry::Live(m) => Cow::Borrowed(m),
            Geometry::Packed(b) => Cow::Owned(crate::packed::unpack(b)),
        }
    }

    /// Calls `f` with the kernel's arrays of the geometry: a packed one is unpacked into its
    /// arrays only, without the id tables a [`Object::mesh`] builds (a checkpoint writes the
    /// arrays of every object).
    pub fn with_raw<R>(&self, f: impl FnOnce(theta_mesh::RawMesh<'_>) -> R) -> R {
        match &self.geometry {
            Geometry::Live(m) => f(m.raw()),
            Geometry::Packed(b) => f(crate::packed::unpack_raw(b).as_raw()),
        }
    }

    /// The geometry, to edit: unpacks it for good if it was packed.
    pub fn mesh_mut(&mut self) -> &mut Mesh {
        if let Geometry::Packed(b) = &self.geometry {
            self.geometry = Geometry::Live(Box::new(crate::packed::unpack(b)));
        }
        match &mut self.geometry {
            Geometry::Live(m) => m,
            Geometry::Packed(_) => unreachable!("unpacked above"),
        }
    }

    /// Replaces the geometry.
    pub fn set_mesh(&mut self, mesh: Mesh) {
        self.geometry = Geometry::Live(Box::new(mesh));
    }

    /// Whether the mesh is held packed.
    pub fn is_packed(&self) -> bool {
        matches!(self.geometry, Geometry::Packed(_))
    }

    /// A copy whose mesh is packed (none if it already is).
    pub(crate) fn packed(&self) -> Option<Object> {
        let Geometry::Live(m) = &self.geometry else {
            return None;
        };
        Some(Object {
            geometry: Geometry::Packed(crate::packed::pack(m)),
            name: self.name.clone(),
            transform: self.transform,
            group: self.group,
            created_by: self.created_by,
            last_geometry_edit: self.last_geometry_edit,
        })
    }
}

impl PartialEq for Object {
    /// Packing is a representation: a packed object equals its live self.
    fn eq(&self, o: &Object) -> bool {
        let same_mesh = match (&self.geometry, &o.geometry) {
            // Packing is a function of the mesh's arrays, which equality compares.
            (Geometry::Packed(a), Geometry::Packed(b)) => a == b,
            _ => *self.mesh() == *o.mesh(),
        };
        self.name == o.name
            && self.transform == o.transform
            && self.group == o.group
            && self.created_by == o.created_by
            && self.last_geometry_edit == o.last_geometry_edit
            && same_mesh
    }
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("name", &self.name)
            .field("mesh", &*self.mesh())
            .field("packed", &self.is_packed())
            .field("transform", &self.transform)
            .field("group", &self.group)
            .field("created_by", &self.created_by)
            .field("last_geometry_edit", &self.last_geometry_edit)
            .finish()
    }
}

/// A named set of objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Display name.
    pub name: String,
    /// Members.
    pub members: BTreeSet<ObjectId>,
}

/// The folded state of a session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scene {
    pub(crate) session: Option<CommandId>,
    pub(crate) name: String,
    pub(crate) roles: BTreeMap<AuthorId, Role>,
    pub(crate) objects: BTreeMap<ObjectId, Arc<Object>>,
    pub(crate) groups: BTreeMap<GroupId, Arc<Group>>,
    /// Objects that were deleted, with the deleting command and its author (for conflict reports).
    /// Shared with the snapshots until a delete changes it.
    pub(crate) deleted: Arc<BTreeMap<ObjectId, (CommandId, AuthorId)>>,
    /// Per command that can be undone: what undoing it needs (see `fold.rs`). A hash table, since
    /// every command adds one record and drops the oldest: only probed, never iterated (the
    /// histories give the order).
    pub(crate) undo:
        hashbrown::HashMap<CommandId, Arc<crate::fold::UndoRecord>, crate::log::IdHash>,
    /// Per author, the sequence numbers and ids of their commands that have an undo record, in
    /// order, newest last: those among the author's last [`crate::fold::UNDO_DEPTH`] commands
    /// (authors whose list is empty are absent).
    pub(crate) history: BTreeMap<AuthorId, Vec<(u64, CommandId)>>,
    /// What changed since the replica last looked; not state (see [`Journal`]).
    pub(crate) journal: Journal,
}

/// A record of which objects the fold touched (and whether each existed before), and whether the
/// session's name, roles or groups changed, so that change events cost what changed rather than a
/// comparison of whole scenes. It is bookkeeping, not state: it never takes part in equality or the
/// state hash.
#[derive(Clone, Debug, Default)]
pub(crate) struct Journal {
    /// Every touch, in order, with whether the object existed then; the first touch of an object
    /// is the one that counts. A list rather than a map: one push per edit, its room kept between
    /// batches, and sorted once when the events are taken.
    pub(crate) objects: Vec<(ObjectId, bool)>,
    pub(crate) meta: bool,
}

impl PartialEq for Journal {
    fn eq(&self, _: &Journal) -> bool {
        true
    }
}

impl Scene {
    /// A copy of the state without the journal (which is bookkeeping for the live scene): what a
    /// snapshot keeps. Cloning the journal only to drop it cost a copy of every touch of a long
    /// settle at each of its snapshots.
    pub(crate) fn snapshot(&self) -> Scene {
        Scene {
            session: self.session,
            name: self.name.clone(),
            roles: self.roles.clone(),
            objects: self.objects.clone(),
            groups: self.groups.clone(),
            deleted: self.deleted.clone(),
            undo: self.undo.clone(),
            history: self.history.clone(),
            journal: Journal::default(),
        }
    }

    /// Notes that an object is about to change (call before the change).
    pub(crate) fn touch(&mut self, id: ObjectId) {
        let existed = self.objects.contains_key(&id);
        self.journal.objects.push((id, existed));
    }

    /// The change events since the journal was last taken, and clears it.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        let mut touched = std::mem::take(&mut self.journal.objects);
        let meta = std::mem::take(&mut self.journal.meta);
        // Stable: the first touch of each object stays first among its own.
        touched.sort_by_key(|(id, _)| *id);
        touched.dedup_by_key(|(id, _)| *id);
        let mut ev = Vec::new();
        for &(id, existed) in &touched {
            match (existed, self.objects.contains_key(&id)) {
                (false, true) => ev.push(Event::ObjectAdded(id)),
                (true, true) => ev.push(Event::ObjectChanged(id)),
                (true, false) => ev.push(Event::ObjectRemoved(id)),
                (false, false) => {}
            }
        }
        if meta {
            ev.push(Event::SessionChanged);
        }
        touched.clear();
        if touched.capacity() <= 4096 {
            self.journal.objects = touched;
        }
        ev
    }
}

impl Scene {
    /// The session id (genesis command id), once genesis has been folded.
    pub fn session(&self) -> Option<CommandId> {
        self.session
    }
    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// An author's role (none if they were never granted one).
    pub fn role(&self, author: &AuthorId) -> Option<Role> {
        self.roles.get(author).copied()
    }
    /// Everyone with a role.
    pub fn roles(&self) -> &BTreeMap<AuthorId, Role> {
        &self.roles
    }
    /// An object.
    pub fn object(&self, id: ObjectId) -> Option<&Object> {
        self.objects.get(&id).map(|o| &**o)
    }
    /// All objects, by id.
    pub fn objects(&self) -> impl Iterator<Item = (ObjectId, &Object)> + '_ {
        self.objects.iter().map(|(k, v)| (*k, &**v))
    }
    /// Number of objects.
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }
    /// A group.
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(&id).map(|g| &**g)
    }
    /// All groups.
    pub fn groups(&self) -> impl Iterator<Item = (GroupId, &Group)> + '_ {
        self.groups.iter().map(|(k, v)| (*k, &**v))
    }

    /// BLAKE3 over the canonical encoding of the scene ([`Scene::canonical_bytes`]). Peers with the
    /// same commands have the same hash.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        self.encode(&mut h);
        *h.finalize().as_bytes()
    }

    /// The canonical encoding: everything that is state, in id order, floats by their bits.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    fn encode(&self, out: &mut impl Sink) {
        out.put(b"theta-scene/1");
        out.put(&self.session.map(|s| s.0).unwrap_or([0; 32]));
        put_str(out, &self.name);
        out.put(&(self.roles.len() as u64).to_le_bytes());
        for (a, r) in &self.roles {
            out.put(&a.0);
            out.put(&[*r as u8]);
        }
        out.put(&(self.objects.len() as u64).to_le_bytes());
        for (id, o) in &self.objects {
            out.put(&id.0.to_le_bytes());
            put_str(out, &o.name);
            for f in o.transform.components() {
                out.put(&f.to_bits().to_le_bytes());
            }
            out.put(&o.group.map_or(u64::MAX, |g| g.0).to_le_bytes());
            let p = o.mesh().to_polygons();
            out.put(&(p.vertex_count() as u64).to_le_bytes());
            for (vid, pos) in p.vertex_ids.iter().zip(&p.positions) {
                out.put(&vid.0.to_le_bytes());
                for f in pos.to_array() {
                    out.put(&f.to_bits().to_le_bytes());
                }
            }
            out.put(&(p.face_count() as u64).to_le_bytes());
            for f in 0..p.face_count() {
                out.put(&p.face_ids[f].0.to_le_bytes());
                out.put(&p.materials[f].0.to_le_bytes());
                let c = p.face(f);
                out.put(&(c.len() as u32).to_le_bytes());
                for &k in c {
                    out.put(&p.vertex_ids[k as usize].0.to_le_bytes());
                }
            }
        }
        out.put(&(self.groups.len() as u64).to_le_bytes());
        for (id, g) in &self.groups {
            out.put(&id.0.to_le_bytes());
            put_str(out, &g.name);
            out.put(&(g.members.len() as u64).to_le_bytes());
            for m in &g.members {
                out.put(&m.0.to_le_bytes());
            }
        }
    }
}

trait Sink {
    fn put(&mut self, b: &[u8]);
}
impl Sink for blake3::Hasher {
    fn put(&mut self, b: &[u8]) {
        self.update(b);
    }
}
impl Sink for Vec<u8> {
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}
fn put_str(out: &mut impl Sink, s: &str) {
    out.put(&(s.len() as u64).to_le_bytes());
    out.put(s.as_bytes());
}

/// What changed in the scene, for projections downstream (the ECS world, the renderer).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A new object.
    ObjectAdded(ObjectId),
    /// An object's mesh, placement, name or group changed.
    ObjectChanged(ObjectId),
    /// An object is gone.
    ObjectRemoved(ObjectId),
    /// The session's name, roles or groups changed.
    SessionChanged,
    /// A command folded to nothing; its author should be told why.
    Rejected(Rejection),
}

/// Why a command had no effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// The command.
    pub command: CommandId,
    /// Its author.
    pub author: AuthorId,
    /// Its kind (`Op::kind`).
    pub kind: &'static str,
    /// Why, in words.
    pub reason: String,
    /// The command it conflicted with, and that command's author, where there is one.
    pub conflict: Option<(CommandId, AuthorId)>,
}

/// The change events that turn scene `a` into scene `b`.
pub fn diff(a: &Scene, b: &Scene) -> Vec<Event> {
    let mut ev = Vec::new();
    for (id, o) in &b.objects {
        match a.objects.get(id) {
            None => ev.push(Event::ObjectAdded(*id)),
            // Pointer identity: an object is copied only when a command writes to it.
            Some(p) if !Arc::ptr_eq(p, o) => ev.push(Event::ObjectChanged(*id)),
            _ => {}
        }
    }
    for id in a.objects.keys() {
        if !b.objects.contains_key(id) {
            ev.push(Event::ObjectRemoved(*id));
        }
    }
    if a.name != b.name || a.roles != b.roles || a.groups != b.groups {
        ev.push(Event::SessionChanged);
    }
    ev
}
