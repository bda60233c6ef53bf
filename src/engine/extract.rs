//! Render extraction: what the renderer needs from the world this frame, and only what changed.
//!
//! The renderer never reads half-edges or the scene. Each frame the render stage brings
//! [`RenderFrame`] up to date: a dense list of instances (one per object: its object → world
//! matrix, mesh revision, highlights), the indices of the instances written this frame (so an
//! instance buffer is patched, not refilled), the meshes to upload (new revision) and the
//! entities to free. Drags in progress — mine and other peers', from presence — are applied
//! here: a whole-object drag changes the instance's matrix, an element drag shows a preview mesh
//! in place of the object's own. Nothing here writes the world's components: when a drag ends
//! the committed command comes back through the fold.

use std::collections::{HashMap, HashSet};

use bevy_ecs::prelude::*;
use theta_crdt::command::ObjectTransform;
use theta_crdt::ids::ObjectId;
use theta_mesh::{Selection, Transform};

use super::projection::{Objects, Shape};
use super::tools::{self, Editor};
use super::{ControllerState, Interaction, Peer, Placement, RenderMesh, SceneObject, TrackedPose};
use crate::presence::{ElementRef, Pose, Ray};

/// The local user's highlight colour, 0xRRGGBBAA (a resource; the app sets it from the
/// identity's colour).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalColour(pub u32);

impl Default for LocalColour {
    fn default() -> Self {
        LocalColour(0xffcc33ff)
    }
}

/// One object as the renderer draws it.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Its entity (the key of its mesh on the GPU).
    pub entity: Entity,
    /// The object.
    pub object: ObjectId,
    /// Object → world, column-major 4×4.
    pub model: [f32; 16],
    /// The revision of the mesh to draw (the entity's [`RenderMesh`], or its preview).
    pub mesh_revision: u64,
    /// Colour of whoever selects it (me first), 0xRRGGBBAA.
    pub selected: Option<u32>,
    /// Colour of whoever hovers it (me first).
    pub hovered: Option<u32>,
    /// Drawn this frame from [`RenderFrame::previews`] rather than its own mesh.
    pub previewed: bool,
}

/// A peer as drawn: head, hands and pointer, in its colour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Avatar {
    /// Its colour, 0xRRGGBBAA.
    pub colour: u32,
    /// Head.
    pub head: Option<Pose>,
    /// Hands.
    pub hands: [Option<Pose>; 2],
    /// Pointer ray.
    pub pointer: Option<Ray>,
}

/// What the renderer reads this frame (a resource, brought up to date by the render stage).
#[derive(Resource, Debug, Default)]
pub struct RenderFrame {
    /// Frames extracted.
    pub frame: u64,
    /// Every object, densely packed (removal moves the last into the gap).
    pub instances: Vec<Instance>,
    index: HashMap<Entity, usize>,
    /// Indices into `instances` written this frame, ascending.
    pub dirty: Vec<u32>,
    /// Entities whose mesh must be (re-)uploaded this frame.
    pub uploads: Vec<Entity>,
    /// Entities whose GPU data can be freed.
    pub removed: Vec<Entity>,
    /// Meshes drawn this frame in place of an instance's own (element drags), with their
    /// revision.
    pub previews: Vec<(Entity, RenderMesh)>,
    /// Other peers.
    pub avatars: Vec<Avatar>,
    /// The grab tool's gizmo, drawn over the scene.
    pub gizmo: Option<tools::Gizmo>,
    /// Triangles in the frame.
    pub triangles: usize,
    /// The entities overridden by a drag last frame (to restore them when it ends).
    overridden: HashSet<Entity>,
    /// Highlights by me last frame.
    mine: HashMap<Entity, (bool, bool)>,
    /// Preview meshes already built, by entity, for the transform they show.
    cache: HashMap<Entity, (Vec<ElementRef>, [u32; 10], RenderMesh)>,
    revision: u64,
    /// Triangles per object, kept as meshes change (so `triangles` is not a per-frame scan).
    counts: HashMap<Entity, usize>,
}

impl RenderFrame {
    /// The instance of an entity.
    pub fn instance(&self, e: Entity) -> Option<&Instance> {
        self.index.get(&e).map(|&i| &self.instances[i])
    }
}

/// Object → world as a column-major 4×4 matrix.
pub fn model_matrix(t: &ObjectTransform) -> [f32; 16] {
    let r = t
        .rotation
        .normalized()
        .unwrap_or(theta_mesh::Quat::IDENTITY);
    let x = r.rotate(theta_mesh::Vec3::new(t.scale.x, 0.0, 0.0));
    let y = r.rotate(theta_mesh::Vec3::new(0.0, t.scale.y, 0.0));
    let z = r.rotate(theta_mesh::Vec3::new(0.0, 0.0, t.scale.z));
    let p = t.translation;
    [
        x.x, x.y, x.z, 0.0, y.x, y.y, y.z, 0.0, z.x, z.y, z.z, 0.0, p.x, p.y, p.z, 1.0,
    ]
}

fn transform_key(t: &Transform) -> [u32; 10] {
    let f = |v: f32| v.to_bits();
    match *t {
        Transform::Translate(d) => [0, f(d.x), f(d.y), f(d.z), 0, 0, 0, 0, 0, 0],
        Transform::Rotate {
            rotation: q,
            pivot: p,
        } => [
            1,
            f(q.x),
            f(q.y),
            f(q.z),
            f(q.w),
            f(p.x),
            f(p.y),
            f(p.z),
            0,
            0,
        ],
        Transform::Scale {
            factors: s,
            pivot: p,
        } => [2, f(s.x), f(s.y), f(s.z), f(p.x), f(p.y), f(p.z), 0, 0, 0],
    }
}

/// What a drag shows on one object.
enum Override {
    Placement(ObjectTransform),
    Elements(Vec<ElementRef>, Transform),
}

/// The render stage's extraction system.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn extract(
    mut rf: ResMut<'_, RenderFrame>,
    editor: Res<'_, Editor>,
    colour: Res<'_, LocalColour>,
    map: Res<'_, Objects>,
    all: Query<'_, '_, (&SceneObject, &Placement, &RenderMesh, &Interaction, &Shape)>,
    changed: Query<
        '_,
        '_,
        Entity,
        (
            With<SceneObject>,
            Or<(
                Changed<Placement>,
                Changed<RenderMesh>,
                Changed<Interaction>,
            )>,
        ),
    >,
    meshes_changed: Query<'_, '_, Entity, (With<SceneObject>, Changed<RenderMesh>)>,
    mut removed: RemovedComponents<'_, '_, SceneObject>,
    peers: Query<'_, '_, (&Peer, &TrackedPose, &ControllerState)>,
) {
    let rf = rf.as_mut();
    rf.frame += 1;
    rf.dirty.clear();
    rf.uploads.clear();
    rf.removed.clear();
    rf.previews.clear();

    // Removed objects leave the dense list.
    for e in removed.read() {
        if let Some(i) = rf.index.remove(&e) {
            rf.instances.swap_remove(i);
            if i < rf.instances.len() {
                let moved = rf.instances[i].entity;
                rf.index.insert(moved, i);
                rf.dirty.push(i as u32);
            }
            rf.removed.push(e);
            rf.cache.remove(&e);
            rf.triangles -= rf.counts.remove(&e).unwrap_or(0);
        }
    }
    rf.uploads.extend(meshes_changed.iter());

    // Drags: mine, then peers' (by key order, so the result does not depend on arrival).
    let mut overrides: HashMap<Entity, Override> = HashMap::new();
    let mut drags: Vec<(Vec<ElementRef>, Transform)> = Vec::new();
    if let Some(t) = editor.presence_drag()
        && let Some(d) = &editor.drag
    {
        drags.push((d.targets.clone(), t));
    }
    let mut remote: Vec<&Peer> = peers.iter().map(|(p, _, _)| p).collect();
    remote.sort_by_key(|p| p.key);
    for p in remote {
        if let Some(t) = p.drag {
            drags.push((p.selected.clone(), t));
        }
    }
    for (targets, t) in drags {
        let mut elements: HashMap<Entity, Vec<ElementRef>> = HashMap::new();
        for e in &targets {
            let Some(&ent) = map.0.get(&e.object()) else {
                continue;
            };
            if overrides.contains_key(&ent) {
                continue;
            }
            match e {
                ElementRef::Object(_) => {
                    if let Ok((_, p, _, _, _)) = all.get(ent) {
                        overrides.insert(
                            ent,
                            Override::Placement(tools::transform_placement(&p.0, &t)),
                        );
                    }
                }
                _ => elements.entry(ent).or_default().push(*e),
            }
        }
        for (ent, els) in elements {
            overrides.entry(ent).or_insert(Override::Elements(els, t));
        }
    }

    // Highlights by me.
    let mut mine: HashMap<Entity, (bool, bool)> = HashMap::new();
    for e in &editor.selection {
        if let Some(&ent) = map.0.get(&e.object()) {
            mine.entry(ent).or_default().0 = true;
        }
    }
    if let Some(h) = &editor.hovered
        && let Some(&ent) = map.0.get(&h.object())
    {
        mine.entry(ent).or_default().1 = true;
    }

    // Everything to write this frame: changed components, drags starting, going on or ending,
    // and highlights of mine that changed.
    let mut touch: Vec<Entity> = changed.iter().collect();
    touch.extend(overrides.keys().copied());
    touch.extend(rf.overridden.iter().copied());
    for (e, m) in &mine {
        if rf.mine.get(e) != Some(m) {
            touch.push(*e);
        }
    }
    for e in rf.mine.keys() {
        if !mine.contains_key(e) {
            touch.push(*e);
        }
    }
    touch.sort_unstable();
    touch.dedup();

    let peer_colour: HashMap<[u8; 32], u32> =
        peers.iter().map(|(p, _, _)| (p.key, p.colour)).collect();
    for ent in touch {
        let Ok((obj, placement, mesh, inter, shape)) = all.get(ent) else {
            continue;
        };
        let n = mesh.triangle_count();
        rf.triangles = rf.triangles + n - rf.counts.insert(ent, n).unwrap_or(0);
        let (me_sel, me_hov) = mine.get(&ent).copied().unwrap_or_default();
        let first = |keys: &[[u8; 32]]| {
            let mut k: Vec<&[u8; 32]> = keys.iter().collect();
            k.sort_unstable();
            k.first().and_then(|k| peer_colour.get(*k).copied())
        };
        let mut inst = Instance {
            entity: ent,
            object: obj.0,
            model: model_matrix(&placement.0),
            mesh_revision: mesh.revision,
            selected: if me_sel {
                Some(colour.0)
            } else {
                first(&inter.selected_by)
            },
            hovered: if me_hov {
                Some(colour.0)
            } else {
                first(&inter.hovered_by)
            },
            previewed: false,
        };
        match overrides.get(&ent) {
            Some(Override::Placement(t)) => inst.model = model_matrix(t),
            Some(Override::Elements(els, t)) => {
                let key = transform_key(t);
                let cached = rf
                    .cache
                    .get(&ent)
                    .is_some_and(|(e, k, m)| e == els && *k == key && m.revision != 0);
                if !cached {
                    let local = tools::transform_to_local(&placement.0, t);
                    let sel = element_selection(els);
                    let mut m = shape.mesh.clone();
                    if m.transform(&sel, &local).is_ok() {
                        rf.revision += 1;
                        let preview = RenderMesh::of_mesh(&m, rf.revision | 1 << 63);
                        rf.cache.insert(ent, (els.clone(), key, preview));
                    }
                }
                if let Some((_, _, m)) = rf.cache.get(&ent) {
                    inst.previewed = true;
                    inst.mesh_revision = m.revision;
                    rf.previews.push((ent, m.clone()));
                }
            }
            None => {
                rf.cache.remove(&ent);
            }
        }
        match rf.index.get(&ent) {
            Some(&i) => {
                if rf.instances[i] != inst {
                    rf.instances[i] = inst;
                    rf.dirty.push(i as u32);
                }
            }
            None => {
                let i = rf.instances.len();
                rf.instances.push(inst);
                rf.index.insert(ent, i);
                rf.dirty.push(i as u32);
            }
        }
    }
    rf.dirty.sort_unstable();
    rf.dirty.dedup();
    rf.overridden = overrides.keys().copied().collect();
    rf.mine = mine;

    rf.gizmo = editor.gizmo;
    rf.avatars.clear();
    let mut ps: Vec<(&Peer, &TrackedPose, &ControllerState)> = peers.iter().collect();
    ps.sort_by_key(|p| p.0.key);
    for (p, pose, ctl) in ps {
        rf.avatars.push(Avatar {
            colour: p.colour,
            head: pose.head,
            hands: [pose.left_hand, pose.right_hand],
            pointer: ctl.pointer,
        });
    }
}

fn element_selection(els: &[ElementRef]) -> Selection {
    let mut s = Selection::default();
    for e in els {
        match *e {
            ElementRef::Vertex(_, v) => s.vertices.push(v),
            ElementRef::Edge(_, k) => s.edges.push(k),
            ElementRef::Face(_, f) => s.faces.push(f),
            ElementRef::Object(_) => {}
        }
    }
    s
}
