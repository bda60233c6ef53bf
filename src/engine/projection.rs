//! The scene's objects and the session's peers as entities and components.

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use theta_crdt::command::ObjectTransform;
use theta_crdt::ids::{GroupId, ObjectId};
use theta_crdt::scene::{Event, Object, Scene};

use theta_mesh::{Bvh, Mesh};

use crate::presence::{ElementRef, Pose, Presence, Ray, Tool};

/// The object an entity shows.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SceneObject(pub ObjectId);

/// Where an object is (its transform in the scene).
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Placement(pub ObjectTransform);

/// An object's display name.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct DisplayName(pub String);

/// The group an object belongs to.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct InGroup(pub Option<GroupId>);

/// What the renderer draws of an object: flat-shaded triangles in object space with a material per
/// triangle. `revision` grows with every change, so the renderer re-uploads only what changed.
#[derive(Component, Clone, Debug, PartialEq, Default)]
pub struct RenderMesh {
    /// Corner positions.
    pub positions: Vec<[f32; 3]>,
    /// Corner normals (the face's).
    pub normals: Vec<[f32; 3]>,
    /// Three corner indices per triangle.
    pub indices: Vec<u32>,
    /// For each corner, the mesh vertex it copies (corners with one entry share a position).
    pub corner_vertex: Vec<u32>,
    /// Palette material of each triangle.
    pub materials: Vec<u32>,
    /// Bumped on every rebuild.
    pub revision: u64,
    /// The mesh is closed (no holes): its back faces are never seen.
    pub closed: bool,
}

impl RenderMesh {
    fn of(o: &Object, revision: u64) -> RenderMesh {
        RenderMesh::of_mesh(&o.mesh(), revision)
    }

    /// The flat-shaded triangles of a mesh.
    pub fn of_mesh(mesh: &Mesh, revision: u64) -> RenderMesh {
        let t = mesh.triangulate();
        let materials = t
            .triangle_face
            .iter()
            .map(|&f| {
                mesh.face_at(f)
                    .and_then(|id| mesh.face_material(id).ok())
                    .map_or(0, |m| m.0)
            })
            .collect();
        RenderMesh {
            positions: t.positions,
            normals: t.normals,
            indices: t.indices,
            corner_vertex: t.corner_vertex,
            materials,
            revision,
            closed: mesh.is_closed(),
        }
    }

    /// Triangles.
    pub fn triangle_count(&self) -> usize {
        self.indices.len() / 3
    }
}

/// An object's mesh as the kernel holds it (a clone shares the scene's arrays), with a picking
/// BVH built the first time a tool asks for one. Tools read element ids and positions from it.
#[derive(Component, Clone)]
pub struct Shape {
    /// The mesh.
    pub mesh: Mesh,
    /// Its bounds, object frame.
    pub bounds: theta_mesh::Aabb,
    bvh: std::sync::Arc<std::sync::OnceLock<Bvh>>,
}

impl Shape {
    /// The shape of a mesh.
    pub fn new(mesh: Mesh) -> Shape {
        Shape {
            bounds: mesh.bounds(),
            mesh,
            bvh: Default::default(),
        }
    }

    /// The picking BVH of this mesh state (built on first use).
    pub fn bvh(&self) -> &Bvh {
        self.bvh.get_or_init(|| Bvh::build(&self.mesh))
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shape")
            .field("vertices", &self.mesh.vertex_count())
            .field("faces", &self.mesh.face_count())
            .finish()
    }
}

/// A peer, by its key (endpoint id = command author).
pub type PeerKey = [u8; 32];

/// Which peers select or hover an object (from their presence).
#[derive(Component, Clone, Debug, PartialEq, Default)]
pub struct Interaction {
    /// Peers with this object, or an element of it, selected.
    pub selected_by: Vec<PeerKey>,
    /// Peers hovering it.
    pub hovered_by: Vec<PeerKey>,
}

/// A connected peer.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct Peer {
    /// Its key.
    pub key: PeerKey,
    /// Display name.
    pub name: String,
    /// Colour, 0xRRGGBBAA.
    pub colour: u32,
    /// Active tool.
    pub tool: Tool,
    /// What it has selected.
    pub selected: Vec<ElementRef>,
    /// The drag it has in progress on its selection (world frame), shown live.
    pub drag: Option<theta_mesh::Transform>,
}

/// A peer's tracked head and hands.
#[derive(Component, Clone, Copy, Debug, PartialEq, Default)]
pub struct TrackedPose {
    /// Head.
    pub head: Option<Pose>,
    /// Left hand or controller.
    pub left_hand: Option<Pose>,
    /// Right hand or controller.
    pub right_hand: Option<Pose>,
}

/// A user's controllers: the pointer ray, and (for the local user, from its input provider)
/// triggers, grips and buttons. Other peers' show only the pointer, which presence carries.
#[derive(Component, Clone, Copy, Debug, PartialEq, Default)]
pub struct ControllerState {
    /// Pointer ray.
    pub pointer: Option<Ray>,
    /// Trigger of the left and right controller, 0 to 1.
    pub trigger: [f32; 2],
    /// Grip of the left and right controller, 0 to 1.
    pub grip: [f32; 2],
    /// Other buttons and keys, as bits.
    pub buttons: u32,
}

/// Object id → entity.
#[derive(Resource, Default, Debug)]
pub(crate) struct Objects(pub(crate) HashMap<ObjectId, Entity>);

/// Peer key → entity.
#[derive(Resource, Default, Debug)]
struct Peers(HashMap<PeerKey, Entity>);

/// Revision counter for render meshes.
#[derive(Resource, Default, Debug)]
struct Revisions(u64);

fn components(o: &Object) -> (Placement, DisplayName, InGroup) {
    (
        Placement(o.transform),
        DisplayName(o.name.clone()),
        InGroup(o.group),
    )
}

pub(crate) fn apply(world: &mut World, scene: &Scene, events: &[Event]) {
    world.init_resource::<Revisions>();
    for e in events {
        match e {
            Event::ObjectAdded(id) | Event::ObjectChanged(id) => {
                let Some(o) = scene.object(*id) else {
                    // Gone again later in the same fold.
                    despawn(world, *id);
                    continue;
                };
                let rev = {
                    let mut r = world.resource_mut::<Revisions>();
                    r.0 += 1;
                    r.0
                };
                let existing = world.resource::<Objects>().0.get(id).copied();
                let (placement, name, group) = components(o);
                match existing.and_then(|e| world.get_entity_mut(e).ok()) {
                    Some(mut ent) => {
                        // Only what changed is written, so change detection tells the renderer
                        // exactly what to re-upload.
                        if ent.get::<Placement>() != Some(&placement) {
                            ent.insert(placement);
                        }
                        if ent.get::<DisplayName>() != Some(&name) {
                            ent.insert(name);
                        }
                        if ent.get::<InGroup>() != Some(&group) {
                            ent.insert(group);
                        }
                        // The mesh is compared, not its last editing command: a late arrival
                        // folded earlier in the order changes a mesh whose last edit stays the
                        // same command.
                        let mut fresh = RenderMesh::of(o, 0);
                        let same = ent.get::<RenderMesh>().is_some_and(|m| {
                            fresh.revision = m.revision;
                            *m == fresh
                        });
                        if !same {
                            fresh.revision = rev;
                            ent.insert(fresh);
                        }
                        // Element ids can change while the triangles stay the same, so the
                        // kernel mesh is always refreshed (a clone costs a few reference counts).
                        ent.insert(Shape::new(o.mesh().into_owned()));
                    }
                    None => {
                        let ent = world
                            .spawn((
                                SceneObject(*id),
                                placement,
                                name,
                                group,
                                RenderMesh::of(o, rev),
                                Shape::new(o.mesh().into_owned()),
                                Interaction::default(),
                            ))
                            .id();
                        world.resource_mut::<Objects>().0.insert(*id, ent);
                    }
                }
            }
            Event::ObjectRemoved(id) => despawn(world, *id),
            Event::SessionChanged | Event::Rejected(_) => {}
        }
    }
}

fn despawn(world: &mut World, id: ObjectId) {
    if let Some(e) = world.resource_mut::<Objects>().0.remove(&id) {
        world.despawn(e);
    }
}

pub(crate) fn set_peers(world: &mut World, peers: &[(PeerKey, Presence)]) {
    world.init_resource::<Peers>();
    let listed: std::collections::HashSet<PeerKey> = peers.iter().map(|(k, _)| *k).collect();
    let gone: Vec<(PeerKey, Entity)> = world
        .resource::<Peers>()
        .0
        .iter()
        .filter(|(k, _)| !listed.contains(*k))
        .map(|(k, e)| (*k, *e))
        .collect();
    for (k, e) in gone {
        world.resource_mut::<Peers>().0.remove(&k);
        world.despawn(e);
    }
    for (key, p) in peers {
        let peer = Peer {
            key: *key,
            name: p.name.clone(),
            colour: p.colour,
            tool: p.tool,
            selected: p.selected.clone(),
            drag: p.drag,
        };
        let pose = TrackedPose {
            head: p.head,
            left_hand: p.left_hand,
            right_hand: p.right_hand,
        };
        let ctl = ControllerState {
            pointer: p.pointer,
            ..ControllerState::default()
        };
        let existing = world.resource::<Peers>().0.get(key).copied();
        match existing.and_then(|e| world.get_entity_mut(e).ok()) {
            Some(mut ent) => {
                // Written only when changed, so extraction re-reads only moving peers.
                if ent.get::<Peer>() != Some(&peer) {
                    ent.insert(peer);
                }
                if ent.get::<TrackedPose>() != Some(&pose) {
                    ent.insert(pose);
                }
                if ent.get::<ControllerState>() != Some(&ctl) {
                    ent.insert(ctl);
                }
            }
            None => {
                let e = world.spawn((peer, pose, ctl)).id();
                world.resource_mut::<Peers>().0.insert(*key, e);
            }
        }
    }
    // Who selects and hovers what, on the objects' entities.
    let mut marks: HashMap<Entity, Interaction> = HashMap::new();
    {
        let objects = &world.resource::<Objects>().0;
        for (key, p) in peers {
            for s in &p.selected {
                if let Some(e) = objects.get(&s.object()) {
                    let m = marks.entry(*e).or_default();
                    if !m.selected_by.contains(key) {
                        m.selected_by.push(*key);
                    }
                }
            }
            if let Some(h) = &p.hovered
                && let Some(e) = objects.get(&h.object())
            {
                marks.entry(*e).or_default().hovered_by.push(*key);
            }
        }
    }
    // Only the objects marked now or last time are visited: the cost follows the peers'
    // selections, not the size of the scene.
    world.init_resource::<Marked>();
    let before = std::mem::take(&mut world.resource_mut::<Marked>().0);
    let mut visit: Vec<Entity> = before.into_iter().chain(marks.keys().copied()).collect();
    visit.sort_unstable();
    visit.dedup();
    let now: Vec<Entity> = marks.keys().copied().collect();
    for e in visit {
        let want = marks.remove(&e).unwrap_or_default();
        if let Some(mut i) = world.get_mut::<Interaction>(e)
            && *i != want
        {
            *i = want;
        }
    }
    world.resource_mut::<Marked>().0 = now;
}

/// The object entities whose [`Interaction`] is not empty.
#[derive(Resource, Default, Debug)]
struct Marked(Vec<Entity>);

pub(crate) fn check(world: &mut World, scene: &Scene) -> Result<(), String> {
    let mut q = world.query::<(
        &SceneObject,
        &Placement,
        &DisplayName,
        &InGroup,
        &RenderMesh,
    )>();
    let mut seen = 0usize;
    for (id, placement, name, group, mesh) in q.iter(world) {
        let o = scene
            .object(id.0)
            .ok_or_else(|| format!("entity for object {:?} that the scene lacks", id.0))?;
        let (p, n, g) = components(o);
        if (placement, name, group) != (&p, &n, &g) {
            return Err(format!(
                "object {:?}: components differ from the scene",
                id.0
            ));
        }
        let fresh = RenderMesh::of(o, mesh.revision);
        if *mesh != fresh {
            return Err(format!("object {:?}: render mesh is stale", id.0));
        }
        seen += 1;
    }
    if seen != scene.object_count() {
        return Err(format!(
            "{seen} object entities for {} objects",
            scene.object_count()
        ));
    }
    if world.resource::<Objects>().0.len() != seen {
        return Err("the object map and the entities disagree".into());
    }
    Ok(())
}
