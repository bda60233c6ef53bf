//! Editor tools: gestures and actions in, commands out, the same for every input device.
//!
//! The [`Editor`] resource holds the local user's tool, selection, snapping and the drag in
//! progress. Every frame the editor system reads the local user's pointer and buttons (from
//! whichever [`InputProvider`](super::input::InputProvider) feeds it) and the actions queued by a
//! UI, keyboard or script ([`Action`]), picks what the pointer is over, and turns what the user
//! did into commands ([`Op`]) in an outbox. Nothing here edits the scene: the app signs the
//! outbox's commands ([`Engine::commit_edits`](super::Engine::commit_edits)), the fold applies
//! them, and the world follows the scene as it always does.
//!
//! A drag (grab, rotate, scale, extrude) commits **one** command when the trigger is released;
//! while it lasts the object is shown moved by the render extraction and the drag travels in
//! the local user's presence, so peers watch it live. Concurrent edits that land mid-drag are
//! respected: moves are deltas (they add up with others'), and a drag whose object disappears
//! is cancelled with a notice.
//!
//! Gestures: the right trigger (a mouse's left button) runs the tool; the right grip (a mouse's
//! right button) grabs whatever the pointer is on, whatever the tool. [`keys`] are the modifier
//! bits a provider reports.

use std::collections::BTreeMap;

use bevy_ecs::prelude::*;
use theta_crdt::command::{ElementSelection, ObjectTransform, Op};
use theta_crdt::ids::{CommandId, GroupId, ObjectId};
use theta_mesh::{
    DeleteMode, EdgeKey, FaceId, MaterialId, Plane, Primitive, Quat, Transform, Vec3, VertexId,
};

use super::input::LocalUser;
use super::projection::{Objects, Shape};
use super::{ControllerState, InGroup, Placement, SceneObject};
use crate::presence::{ElementRef, Ray, Tool};

/// Modifier bits in [`ControllerState::buttons`].
pub mod keys {
    /// Add to the selection (shift).
    pub const ADD: u32 = 1 << 0;
    /// Remove from the selection (ctrl).
    pub const REMOVE: u32 = 1 << 1;
    /// Turn snapping off for this gesture (alt).
    pub const NO_SNAP: u32 = 1 << 2;
}

/// What a pick selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SelectMode {
    /// Whole objects.
    #[default]
    Object,
    /// Faces.
    Face,
    /// Edges.
    Edge,
    /// Vertices.
    Vertex,
}

/// What the grab tool does with a drag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GrabMode {
    /// Move by the pointer's travel.
    #[default]
    Move,
    /// Rotate about the vertical axis through the selection's centre.
    Rotate,
    /// Scale uniformly about the selection's centre.
    Scale,
}

/// Snapping steps (zero turns a step off).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snap {
    /// Grid step for moves and extrusions, metres.
    pub grid: f32,
    /// Angle step for rotations, radians.
    pub angle: f32,
    /// Step of the scale factor.
    pub scale: f32,
}

impl Default for Snap {
    fn default() -> Self {
        Snap {
            grid: 0.05,
            angle: 15f32.to_radians(),
            scale: 0.1,
        }
    }
}

fn snap_to(v: f32, step: f32) -> f32 {
    if step > 0.0 {
        (v / step).round() * step
    } else {
        v
    }
}

/// How a pick changes the selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectOp {
    /// The element alone.
    Replace,
    /// Add it.
    Add,
    /// Take it out.
    Remove,
    /// Add it if absent, else take it out.
    Toggle,
}

/// Something a UI, a keyboard shortcut or a script asks the editor to do. Actions that work on
/// the selection use the selection as it is when the frame runs them.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Picks up a tool.
    SetTool(Tool),
    /// Changes what picks select (the selection is cleared).
    SetMode(SelectMode),
    /// Changes what a grab drag does.
    SetGrab(GrabMode),
    /// Changes the snapping.
    SetSnap(Snap),
    /// Changes the paint and insert material.
    SetMaterial(MaterialId),
    /// Changes what the insert tool makes.
    SetPrimitive(Primitive),
    /// Changes the selection.
    Select(ElementRef, SelectOp),
    /// Empties the selection.
    ClearSelection,
    /// Extrudes the selected faces by a distance along their average normal.
    Extrude(f32),
    /// Insets the selected faces (fraction towards each centroid).
    Inset(f32),
    /// Cuts loops across the ring of the selected (or hovered) edge.
    LoopCut(u32),
    /// Catmull–Clark subdivides the selected objects.
    Subdivide(u32),
    /// Inserts the current primitive at a world position.
    Insert(Vec3),
    /// Paints the selection (faces, or whole objects) with the current material.
    Paint,
    /// Deletes the selection (objects, faces, edges or vertices).
    Erase,
    /// Makes the selected objects symmetric across their own plane x = 0 (axis 0), y = 0 (1) or
    /// z = 0 (2), keeping the positive side.
    Mirror(usize),
    /// Duplicates the selected objects (or faces), offset by a vector.
    Duplicate(Vec3),
    /// Groups the selected objects.
    Group(String),
    /// Dissolves the groups of the selected objects.
    Ungroup,
    /// Moves the selection by a world offset (keyboard nudges; a drag does this by hand).
    Translate(Vec3),
    /// Undoes my last command.
    Undo,
    /// Redoes my last undo.
    Redo,
    /// Drops the drag in progress without committing it.
    CancelDrag,
    /// Renames the selected object (the first selected, or the object of the first selected
    /// element).
    Rename(String),
    /// Sets an object's placement exactly (the property inspector's typed values).
    Place(ObjectId, ObjectTransform),
}

/// What a drag does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DragKind {
    /// Move, rotate or scale.
    Grab(GrabMode),
    /// Extrude the selected faces along their normal.
    Extrude,
}

/// A drag in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Drag {
    /// What it does.
    pub kind: DragKind,
    /// What it moves (the selection when it began).
    pub targets: Vec<ElementRef>,
    /// Where the pointer grabbed, world frame.
    pub start: Vec3,
    /// The selection's centre, world frame (rotations and scales turn about it).
    pub pivot: Vec3,
    /// The plane the pointer slides on (through `start`, facing the pointer).
    pub plane_normal: Vec3,
    /// Extrusions: the direction, world frame (unit).
    pub axis: Vec3,
    /// The transform so far, world frame, snapped.
    pub transform: Transform,
    /// Extrusions: the distance so far, snapped.
    pub distance: f32,
    /// The gizmo handle it was started from: moves slide along this axis, rotations turn about
    /// it, scales stretch along it. `None`: free (the pointer's plane, the vertical axis,
    /// uniform).
    pub constraint: Option<Axis>,
    /// Which button holds it: the trigger (tool) or the grip (grab).
    grip: bool,
}

impl Drag {
    /// Whether it has moved anything yet.
    pub fn is_identity(&self) -> bool {
        match self.kind {
            DragKind::Extrude => self.distance == 0.0,
            DragKind::Grab(_) => match self.transform {
                Transform::Translate(d) => d == Vec3::ZERO,
                Transform::Rotate { rotation, .. } => rotation == Quat::IDENTITY,
                Transform::Scale { factors, .. } => factors == Vec3::ONE,
            },
        }
    }
}

/// Whether a command the editor queued joins my undo history, is an undo, or a redo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stack {
    Do,
    Undo,
    Redo,
}

/// The local user's editing state (a resource).
#[derive(Resource, Debug, Clone, Default)]
pub struct Editor {
    /// The tool in hand.
    pub tool: Tool,
    /// What picks select.
    pub mode: SelectMode,
    /// What grab drags do.
    pub grab: GrabMode,
    /// Snapping.
    pub snap: Snap,
    /// The material that paint and insert use.
    pub material: MaterialId,
    /// What insert makes (a 0.5 m box unless changed).
    pub primitive: Option<Primitive>,
    /// Selected elements, in the order they were picked.
    pub selection: Vec<ElementRef>,
    /// What the pointer is over.
    pub hovered: Option<ElementRef>,
    /// Where the pointer meets what it is over, world frame.
    pub hover_point: Option<Vec3>,
    /// The drag in progress.
    pub drag: Option<Drag>,
    /// The grab tool's gizmo on the selection this frame, if it shows one.
    pub gizmo: Option<Gizmo>,
    /// Why something the user asked for did nothing (for the UI), oldest first.
    pub notices: Vec<String>,
    actions: Vec<Action>,
    outbox: Vec<(Op, Stack)>,
    done: Vec<CommandId>,
    undone: Vec<CommandId>,
    trigger: bool,
    grip: bool,
    /// Where the pointer last came from (the gizmo keeps its size while the pointer is away).
    eye: Option<Vec3>,
}

impl Editor {
    /// Queues an action for the next frame.
    pub fn act(&mut self, a: Action) {
        self.actions.push(a);
    }

    /// Commands waiting to be signed.
    pub fn pending(&self) -> impl Iterator<Item = &Op> {
        self.outbox.iter().map(|(op, _)| op)
    }

    /// The primitive insert makes.
    pub fn insert_primitive(&self) -> Primitive {
        self.primitive.unwrap_or(Primitive::Cuboid {
            size: Vec3::new(0.5, 0.5, 0.5),
        })
    }

    /// Signs the queued commands with `sign` (which returns each one's id), keeping my undo and
    /// redo stacks. Stops at the first error and leaves the rest queued.
    pub fn commit(
        &mut self,
        mut sign: impl FnMut(Op) -> anyhow::Result<CommandId>,
    ) -> anyhow::Result<Vec<CommandId>> {
        let mut ids = Vec::new();
        while !self.outbox.is_empty() {
            let (op, stack) = self.outbox.remove(0);
            let id = match sign(op.clone()) {
                Ok(id) => id,
                Err(e) => {
                    self.outbox.insert(0, (op, stack));
                    return Err(e);
                }
            };
            match stack {
                Stack::Do => {
                    self.done.push(id);
                    self.undone.clear();
                }
                Stack::Undo => self.undone.push(id),
                Stack::Redo => self.done.push(id),
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Drops the commands waiting to be signed (signing failed); returns how many.
    pub fn discard_pending(&mut self) -> usize {
        let n = self.outbox.len();
        self.outbox.clear();
        n
    }

    /// Commands of mine that undo would take back, oldest first.
    pub fn undo_stack(&self) -> &[CommandId] {
        &self.done
    }

    /// Undo commands of mine that redo would take back, oldest first.
    pub fn redo_stack(&self) -> &[CommandId] {
        &self.undone
    }

    fn notice(&mut self, s: impl Into<String>) {
        self.notices.push(s.into());
        if self.notices.len() > 64 {
            self.notices.remove(0);
        }
    }

    fn push(&mut self, op: Op) {
        self.outbox.push((op, Stack::Do));
    }

    fn select(&mut self, e: ElementRef, how: SelectOp) {
        let at = self.selection.iter().position(|s| *s == e);
        match (how, at) {
            (SelectOp::Replace, _) => self.selection = vec![e],
            (SelectOp::Add, None) | (SelectOp::Toggle, None) => self.selection.push(e),
            (SelectOp::Remove, Some(i)) | (SelectOp::Toggle, Some(i)) => {
                self.selection.remove(i);
            }
            _ => {}
        }
    }

    /// The drag as presence carries it: the world-frame transform applied to my selection.
    pub fn presence_drag(&self) -> Option<Transform> {
        let d = self.drag.as_ref()?;
        match d.kind {
            DragKind::Grab(_) if !d.is_identity() => Some(d.transform),
            DragKind::Extrude if d.distance != 0.0 => {
                Some(Transform::Translate(d.axis * d.distance))
            }
            _ => None,
        }
    }
}

// ---- Object frame maths (the author's machine computes these; the fold sees only results) ----

fn conj(q: Quat) -> Quat {
    Quat::from_xyzw(-q.x, -q.y, -q.z, q.w)
}

fn div_elem(a: Vec3, b: Vec3) -> Vec3 {
    Vec3::new(a.x / b.x, a.y / b.y, a.z / b.z)
}

/// A world point in an object's frame.
pub fn to_local(t: &ObjectTransform, p: Vec3) -> Vec3 {
    div_elem(conj(t.rotation).rotate(p - t.translation), t.scale)
}

/// An object-frame point in the world.
pub fn to_world(t: &ObjectTransform, p: Vec3) -> Vec3 {
    t.translation + t.rotation.rotate(p.mul_elem(t.scale))
}

fn dir_to_local(t: &ObjectTransform, d: Vec3) -> Vec3 {
    div_elem(conj(t.rotation).rotate(d), t.scale)
}

fn normal_to_world(t: &ObjectTransform, n: Vec3) -> Vec3 {
    t.rotation
        .rotate(div_elem(n, t.scale))
        .normalized()
        .unwrap_or(Vec3::new(0.0, 1.0, 0.0))
}

/// A world-frame transform as the same motion in an object's frame (rotations and scales of a
/// non-uniformly scaled, rotated object are approximated by their uniform part).
pub fn transform_to_local(t: &ObjectTransform, w: &Transform) -> Transform {
    match *w {
        Transform::Translate(d) => Transform::Translate(dir_to_local(t, d)),
        Transform::Rotate { rotation, pivot } => Transform::Rotate {
            rotation: conj(t.rotation).mul_quat(rotation).mul_quat(t.rotation),
            pivot: to_local(t, pivot),
        },
        Transform::Scale { factors, pivot } => Transform::Scale {
            factors,
            pivot: to_local(t, pivot),
        },
    }
}

/// An object's placement after a world-frame transform of the whole object.
pub fn transform_placement(t: &ObjectTransform, w: &Transform) -> ObjectTransform {
    match *w {
        Transform::Translate(d) => ObjectTransform {
            translation: t.translation + d,
            ..*t
        },
        Transform::Rotate { rotation, pivot } => ObjectTransform {
            translation: pivot + rotation.rotate(t.translation - pivot),
            rotation: rotation
                .mul_quat(t.rotation)
                .normalized()
                .unwrap_or(t.rotation),
            scale: t.scale,
        },
        Transform::Scale { factors, pivot } => {
            // A placement scales along the object's own axes: a stretch along world axes
            // becomes, for each of its axes, how much the stretch lengthens it (exact when the
            // object's axes lie along the world's, as after snapped turns).
            let local = if factors.x == factors.y && factors.y == factors.z {
                factors
            } else {
                let along = |e: Vec3| t.rotation.rotate(e).mul_elem(factors).length();
                Vec3::new(
                    along(Vec3::new(1.0, 0.0, 0.0)),
                    along(Vec3::new(0.0, 1.0, 0.0)),
                    along(Vec3::new(0.0, 0.0, 1.0)),
                )
            };
            ObjectTransform {
                translation: pivot + (t.translation - pivot).mul_elem(factors),
                rotation: t.rotation,
                scale: t.scale.mul_elem(local),
            }
        }
    }
}

fn ray_plane(ray: &Ray, point: Vec3, normal: Vec3) -> Option<Vec3> {
    let den = ray.direction.dot(normal);
    if den.abs() < 1e-6 {
        return None;
    }
    let t = (point - ray.origin).dot(normal) / den;
    (t >= 0.0).then(|| ray.origin + ray.direction * t)
}

/// The parameter along `axis` (from `start`) of the point nearest the ray.
fn ray_axis(ray: &Ray, start: Vec3, axis: Vec3) -> Option<f32> {
    let w = start - ray.origin;
    let b = axis.dot(ray.direction);
    let den = 1.0 - b * b;
    if den.abs() < 1e-6 {
        return None;
    }
    Some((b * ray.direction.dot(w) - axis.dot(w)) / den)
}

// ---- The gizmo ----

/// A world axis: a gizmo handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Axis {
    /// +X (red).
    X,
    /// +Y, up (green).
    Y,
    /// +Z (blue).
    Z,
}

impl Axis {
    /// The three, in order.
    pub const ALL: [Axis; 3] = [Axis::X, Axis::Y, Axis::Z];

    /// Its unit vector.
    pub fn unit(self) -> Vec3 {
        match self {
            Axis::X => Vec3::new(1.0, 0.0, 0.0),
            Axis::Y => Vec3::new(0.0, 1.0, 0.0),
            Axis::Z => Vec3::new(0.0, 0.0, 1.0),
        }
    }
}

/// A gizmo handle's length (a ring's radius) as a share of its distance from the pointer's
/// origin: the gizmo keeps one size on screen wherever it is.
pub const GIZMO_SHARE: f32 = 0.15;
/// How close to a handle (a share of the gizmo's size) the pointer picks it.
const GIZMO_REACH: f32 = 0.08;

/// The grab tool's gizmo on the selection: three arrows (move), three rings (rotate) or three
/// stalks with boxes (scale) at the selection's centre. Dragging a handle moves along, turns
/// about or stretches along its axis only; the rest of the selection drags as before.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gizmo {
    /// What it does.
    pub mode: GrabMode,
    /// Where it stands, world frame (the selection's centre, moved with a drag in progress).
    pub pivot: Vec3,
    /// A handle's length and a ring's radius, metres.
    pub size: f32,
    /// The handle under the pointer.
    pub hovered: Option<Axis>,
    /// The handle being dragged.
    pub active: Option<Axis>,
}

impl Gizmo {
    /// The handle the ray meets, nearest along the ray first, with the distance along it.
    pub fn pick(&self, ray: &Ray) -> Option<(Axis, f32)> {
        let reach = self.size * GIZMO_REACH;
        let mut best: Option<(Axis, f32)> = None;
        for axis in Axis::ALL {
            let a = axis.unit();
            let along = match self.mode {
                GrabMode::Move | GrabMode::Scale => {
                    let Some(t) = ray_axis(ray, self.pivot, a) else {
                        continue;
                    };
                    // The stalk, not the centre where the three meet.
                    if !(self.size * 0.15..=self.size * 1.1).contains(&t) {
                        continue;
                    }
                    let w = self.pivot + a * t - ray.origin;
                    let s = w.dot(ray.direction);
                    if s <= 0.0 || (w - ray.direction * s).length() > reach {
                        continue;
                    }
                    s
                }
                GrabMode::Rotate => {
                    let Some(p) = ray_plane(ray, self.pivot, a) else {
                        continue;
                    };
                    if ((p - self.pivot).length() - self.size).abs() > reach {
                        continue;
                    }
                    (p - ray.origin).length()
                }
            };
            if best.is_none_or(|(_, d)| along < d) {
                best = Some((axis, along));
            }
        }
        best
    }
}

/// The gizmo for this frame: the grab tool in hand and something selected (or a drag of it in
/// progress). `eye` is where the pointer comes from.
fn gizmo_for(ed: &Editor, view: &View<'_, '_, '_>, eye: Option<Vec3>) -> Option<Gizmo> {
    if ed.tool != Tool::Grab {
        return None;
    }
    let eye = eye?;
    let (mode, pivot, active) = match &ed.drag {
        Some(d) => {
            let DragKind::Grab(mode) = d.kind else {
                return None;
            };
            let pivot = match d.transform {
                Transform::Translate(v) => d.pivot + v,
                _ => d.pivot,
            };
            (mode, pivot, d.constraint)
        }
        None if ed.selection.is_empty() => return None,
        None => (ed.grab, view.centre(&ed.selection)?, None),
    };
    let size = (pivot - eye).length() * GIZMO_SHARE;
    (size > 1e-4).then_some(Gizmo {
        mode,
        pivot,
        size,
        hovered: None,
        active,
    })
}

/// Starts a drag from a gizmo handle.
fn begin_gizmo_drag(ed: &mut Editor, g: &Gizmo, ray: &Ray, axis: Axis) {
    let a = axis.unit();
    let start = match g.mode {
        GrabMode::Move | GrabMode::Scale => {
            g.pivot + a * ray_axis(ray, g.pivot, a).unwrap_or(g.size)
        }
        GrabMode::Rotate => match ray_plane(ray, g.pivot, a) {
            Some(p) => p,
            None => return,
        },
    };
    let transform = match g.mode {
        GrabMode::Move => Transform::Translate(Vec3::ZERO),
        GrabMode::Rotate => Transform::Rotate {
            rotation: Quat::IDENTITY,
            pivot: g.pivot,
        },
        GrabMode::Scale => Transform::Scale {
            factors: Vec3::ONE,
            pivot: g.pivot,
        },
    };
    ed.drag = Some(Drag {
        kind: DragKind::Grab(g.mode),
        targets: ed.selection.clone(),
        start,
        pivot: g.pivot,
        plane_normal: a,
        axis: a,
        transform,
        distance: 0.0,
        constraint: Some(axis),
        grip: false,
    });
}

/// A drag held to one axis: the transform from where it started to where the ray points now.
fn constrained(
    mode: GrabMode,
    axis: Axis,
    start: Vec3,
    pivot: Vec3,
    ray: &Ray,
    s: &Snap,
) -> Option<Transform> {
    let a = axis.unit();
    Some(match mode {
        GrabMode::Move => Transform::Translate(a * snap_to(ray_axis(ray, start, a)?, s.grid)),
        GrabMode::Rotate => {
            let p = ray_plane(ray, pivot, a)?;
            let (u, v) = (start - pivot, p - pivot);
            // The signed angle from where it started, about the axis (right-handed).
            let angle = snap_to(a.dot(u.cross(v)).atan2(u.dot(v)), s.angle);
            let rotation = if angle == 0.0 {
                Quat::IDENTITY
            } else {
                Quat::from_axis_angle(a, angle).unwrap_or(Quat::IDENTITY)
            };
            Transform::Rotate { rotation, pivot }
        }
        GrabMode::Scale => {
            let t0 = (start - pivot).dot(a);
            let t = ray_axis(ray, pivot, a)?;
            let f = if t0.abs() > 1e-6 { t / t0 } else { 1.0 };
            let f = snap_to(f, s.scale).max(if s.scale > 0.0 { s.scale } else { 0.01 });
            let mut factors = Vec3::ONE;
            match axis {
                Axis::X => factors.x = f,
                Axis::Y => factors.y = f,
                Axis::Z => factors.z = f,
            }
            Transform::Scale { factors, pivot }
        }
    })
}

// ---- Picking ----

/// What a pointer ray hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The element, as the select mode names it.
    pub element: ElementRef,
    /// The face under the pointer.
    pub face: FaceId,
    /// Where, world frame.
    pub point: Vec3,
    /// The face's normal, world frame.
    pub normal: Vec3,
    /// Distance along the ray.
    pub distance: f32,
}

fn ray_box(o: Vec3, d: Vec3, b: &theta_mesh::Aabb) -> Option<f32> {
    if b.is_empty() {
        return None;
    }
    let (mut t0, mut t1) = (0.0f32, f32::INFINITY);
    for i in 0..3 {
        let (oi, di) = (o.axis(i), d.axis(i));
        let (lo, hi) = (b.min.axis(i), b.max.axis(i));
        if di.abs() < 1e-12 {
            if oi < lo || oi > hi {
                return None;
            }
            continue;
        }
        let (a, c) = ((lo - oi) / di, (hi - oi) / di);
        let (a, c) = if a <= c { (a, c) } else { (c, a) };
        t0 = t0.max(a);
        t1 = t1.min(c);
        if t0 > t1 {
            return None;
        }
    }
    Some(t0)
}

/// The nearest element under a world-frame ray, among `objects`.
pub fn pick<'a>(
    objects: impl Iterator<Item = (ObjectId, &'a ObjectTransform, &'a Shape)>,
    ray: &Ray,
    mode: SelectMode,
) -> Option<Hit> {
    // Bounds first (in each object's frame, where the ray parameter is the world one), then
    // the BVH of the objects whose bounds the ray enters, nearest first.
    let mut candidates: Vec<(f32, ObjectId, &ObjectTransform, &Shape)> = Vec::new();
    for (id, t, s) in objects {
        let o = to_local(t, ray.origin);
        let d = dir_to_local(t, ray.direction);
        if let Some(near) = ray_box(o, d, &s.bounds) {
            candidates.push((near, id, t, s));
        }
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut best: Option<Hit> = None;
    for (near, id, t, s) in candidates {
        if best.is_some_and(|b| b.distance < near) {
            break;
        }
        let local = theta_mesh::Ray {
            origin: to_local(t, ray.origin),
            dir: dir_to_local(t, ray.direction),
        };
        let Some(p) = s.mesh.pick(s.bvh(), local, 0.0) else {
            continue;
        };
        if best.is_some_and(|b| b.distance <= p.t) {
            continue;
        }
        let element = match mode {
            SelectMode::Object => ElementRef::Object(id),
            SelectMode::Face => ElementRef::Face(id, p.face),
            SelectMode::Vertex | SelectMode::Edge => {
                let Ok(vs) = s.mesh.face_vertices(p.face) else {
                    continue;
                };
                let pos = |v: VertexId| s.mesh.position(v).unwrap_or(p.point);
                if mode == SelectMode::Vertex {
                    let v = vs
                        .iter()
                        .copied()
                        .min_by(|a, b| {
                            pos(*a)
                                .distance(p.point)
                                .total_cmp(&pos(*b).distance(p.point))
                        })
                        .unwrap_or(vs[0]);
                    ElementRef::Vertex(id, v)
                } else {
                    let n = vs.len();
                    let edge = (0..n)
                        .map(|i| (vs[i], vs[(i + 1) % n]))
                        .min_by(|a, b| {
                            seg_dist(p.point, pos(a.0), pos(a.1)).total_cmp(&seg_dist(
                                p.point,
                                pos(b.0),
                                pos(b.1),
                            ))
                        })
                        .unwrap_or((vs[0], vs[1 % n]));
                    ElementRef::Edge(id, EdgeKey(edge.0, edge.1))
                }
            }
        };
        let normal = s
            .mesh
            .face_normal(p.face)
            .map(|n| normal_to_world(t, n))
            .unwrap_or(Vec3::new(0.0, 1.0, 0.0));
        best = Some(Hit {
            element,
            face: p.face,
            point: ray.origin + ray.direction * p.t,
            normal,
            distance: p.t,
        });
    }
    best
}

fn seg_dist(p: Vec3, a: Vec3, b: Vec3) -> f32 {
    let ab = b - a;
    let l = ab.length_squared();
    let t = if l > 0.0 {
        ((p - a).dot(ab) / l).clamp(0.0, 1.0)
    } else {
        0.0
    };
    p.distance(a + ab * t)
}

// ---- The editor system ----

/// The objects as the editor sees them this frame.
type ObjectQuery<'w, 's> = Query<
    'w,
    's,
    (
        &'static SceneObject,
        &'static Placement,
        &'static Shape,
        &'static InGroup,
    ),
>;

struct View<'a, 'w, 's> {
    map: &'a std::collections::HashMap<ObjectId, Entity>,
    q: &'a ObjectQuery<'w, 's>,
}

impl<'a> View<'a, '_, '_> {
    fn get(&self, id: &ObjectId) -> Option<(&'a ObjectTransform, &'a Shape, Option<GroupId>)> {
        let e = self.map.get(id)?;
        let (_, p, s, g) = self.q.get(*e).ok()?;
        Some((&p.0, s, g.0))
    }

    fn has(&self, e: &ElementRef) -> bool {
        let Some((_, s, _)) = self.get(&e.object()) else {
            return false;
        };
        match e {
            ElementRef::Object(_) => true,
            ElementRef::Vertex(_, v) => s.mesh.position(*v).is_ok(),
            ElementRef::Face(_, f) => s.mesh.face_vertices(*f).is_ok(),
            ElementRef::Edge(_, k) => s.mesh.position(k.0).is_ok() && s.mesh.position(k.1).is_ok(),
        }
    }

    /// The centre of elements, world frame.
    fn centre(&self, targets: &[ElementRef]) -> Option<Vec3> {
        let mut sum = Vec3::ZERO;
        let mut n = 0u32;
        for e in targets {
            let Some((t, s, _)) = self.get(&e.object()) else {
                continue;
            };
            let p = match e {
                ElementRef::Object(_) => to_world(t, s.bounds.center()),
                ElementRef::Vertex(_, v) => match s.mesh.position(*v) {
                    Ok(p) => to_world(t, p),
                    Err(_) => continue,
                },
                ElementRef::Edge(_, k) => match (s.mesh.position(k.0), s.mesh.position(k.1)) {
                    (Ok(a), Ok(b)) => to_world(t, a.lerp(b, 0.5)),
                    _ => continue,
                },
                ElementRef::Face(_, f) => match s.mesh.face_centroid(*f) {
                    Ok(p) => to_world(t, p),
                    Err(_) => continue,
                },
            };
            sum += p;
            n += 1;
        }
        (n > 0).then(|| sum / n as f32)
    }
}

/// Elements of one object, as a command's selection.
fn selections(targets: &[ElementRef]) -> BTreeMap<ObjectId, ElementSelection> {
    let mut out: BTreeMap<ObjectId, ElementSelection> = BTreeMap::new();
    for e in targets {
        match *e {
            ElementRef::Object(_) => {}
            ElementRef::Vertex(o, v) => out.entry(o).or_default().vertices.push(v),
            ElementRef::Edge(o, k) => out.entry(o).or_default().edges.push(k),
            ElementRef::Face(o, f) => out.entry(o).or_default().faces.push(f),
        }
    }
    out
}

fn objects_in(targets: &[ElementRef]) -> Vec<ObjectId> {
    let mut v: Vec<ObjectId> = targets.iter().map(ElementRef::object).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn whole_objects(targets: &[ElementRef]) -> Vec<ObjectId> {
    let mut v: Vec<ObjectId> = targets
        .iter()
        .filter_map(|e| match e {
            ElementRef::Object(o) => Some(*o),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn faces_by_object(targets: &[ElementRef]) -> BTreeMap<ObjectId, Vec<FaceId>> {
    let mut out: BTreeMap<ObjectId, Vec<FaceId>> = BTreeMap::new();
    for e in targets {
        if let ElementRef::Face(o, f) = e {
            out.entry(*o).or_default().push(*f);
        }
    }
    out
}

/// The commands a finished drag makes.
fn drag_commands(view: &View<'_, '_, '_>, d: &Drag) -> Vec<Op> {
    let mut ops = Vec::new();
    if d.is_identity() {
        return ops;
    }
    if d.kind == DragKind::Extrude {
        for (o, faces) in faces_by_object(&d.targets) {
            let Some((t, _, _)) = view.get(&o) else {
                continue;
            };
            ops.push(Op::ExtrudeRegion {
                object: o,
                faces,
                offset: dir_to_local(t, d.axis * d.distance),
            });
        }
        return ops;
    }
    for o in whole_objects(&d.targets) {
        let Some((t, _, _)) = view.get(&o) else {
            continue;
        };
        match d.transform {
            // Moves are deltas: they add up with others' concurrent moves.
            Transform::Translate(delta) => ops.push(Op::MoveObject { object: o, delta }),
            _ => ops.push(Op::SetObjectTransform {
                object: o,
                transform: transform_placement(t, &d.transform),
            }),
        }
    }
    for (o, selection) in selections(&d.targets) {
        let Some((t, _, _)) = view.get(&o) else {
            continue;
        };
        ops.push(Op::TransformElements {
            object: o,
            selection,
            transform: transform_to_local(t, &d.transform),
        });
    }
    ops
}

fn update_drag(d: &mut Drag, ray: &Ray, no_snap: bool, snap: &Snap) {
    let s = if no_snap {
        Snap {
            grid: 0.0,
            angle: 0.0,
            scale: 0.0,
        }
    } else {
        *snap
    };
    if d.kind == DragKind::Extrude {
        if let Some(t) = ray_axis(ray, d.start, d.axis) {
            d.distance = snap_to(t, s.grid);
        }
        return;
    }
    if let (DragKind::Grab(mode), Some(axis)) = (d.kind, d.constraint) {
        if let Some(t) = constrained(mode, axis, d.start, d.pivot, ray, &s) {
            d.transform = t;
        }
        return;
    }
    let Some(p) = ray_plane(ray, d.start, d.plane_normal) else {
        return;
    };
    d.transform = match d.kind {
        DragKind::Grab(GrabMode::Move) | DragKind::Extrude => {
            let v = p - d.start;
            Transform::Translate(Vec3::new(
                snap_to(v.x, s.grid),
                snap_to(v.y, s.grid),
                snap_to(v.z, s.grid),
            ))
        }
        DragKind::Grab(GrabMode::Rotate) => {
            let (a, b) = (d.start - d.pivot, p - d.pivot);
            let angle = b.z.atan2(b.x) - a.z.atan2(a.x);
            // About +y, a positive angle turns +x towards −z: so the angle is negated.
            let angle = snap_to(-angle, s.angle);
            let rotation =
                Quat::from_axis_angle(Vec3::new(0.0, 1.0, 0.0), angle).unwrap_or(Quat::IDENTITY);
            Transform::Rotate {
                rotation: if angle == 0.0 {
                    Quat::IDENTITY
                } else {
                    rotation
                },
                pivot: d.pivot,
            }
        }
        DragKind::Grab(GrabMode::Scale) => {
            let (a, b) = ((d.start - d.pivot).length(), (p - d.pivot).length());
            let f = if a > 1e-6 { b / a } else { 1.0 };
            let f = snap_to(f, s.scale).max(if s.scale > 0.0 { s.scale } else { 0.01 });
            Transform::Scale {
                factors: Vec3::new(f, f, f),
                pivot: d.pivot,
            }
        }
    };
}

/// The editor stage's system: actions, hover, gestures, drags.
pub(crate) fn run_editor(
    mut editor: ResMut<'_, Editor>,
    user: Query<'_, '_, &ControllerState, With<LocalUser>>,
    objects: ObjectQuery<'_, '_>,
    map: Res<'_, Objects>,
) {
    let view = View {
        map: &map.0,
        q: &objects,
    };
    let ed = editor.as_mut();
    // Elements that vanished (a peer deleted them) leave the selection; a drag on them ends.
    ed.selection.retain(|e| view.has(e));
    if let Some(d) = &ed.drag
        && !d.targets.iter().all(|e| view.has(e))
    {
        ed.drag = None;
        ed.notice("the drag ended: what it moved was deleted by someone else");
    }
    for a in std::mem::take(&mut ed.actions) {
        run_action(ed, &view, a);
    }
    let controls = user.iter().next().copied().unwrap_or_default();
    let ray = controls.pointer;
    if let Some(r) = &ray {
        ed.eye = Some(r.origin);
    }
    ed.gizmo = gizmo_for(ed, &view, ed.eye);
    let handle = match (&mut ed.gizmo, &ray) {
        (Some(g), Some(r)) if ed.drag.is_none() => {
            g.hovered = g.pick(r).map(|(axis, _)| axis);
            g.hovered
        }
        _ => None,
    };
    // A handle under the pointer hides what is behind it.
    let hit = ray.filter(|_| handle.is_none()).and_then(|r| {
        pick(
            view.q.iter().map(|(id, p, s, _)| (id.0, &p.0, s)),
            &r,
            ed.mode,
        )
    });
    ed.hovered = hit.map(|h| h.element);
    ed.hover_point = hit.map(|h| h.point);
    let trigger = controls.trigger[1] > 0.5;
    let grip = controls.grip[1] > 0.5;
    let (pressed, released) = (trigger && !ed.trigger, !trigger && ed.trigger);
    let (grip_pressed, grip_released) = (grip && !ed.grip, !grip && ed.grip);
    ed.trigger = trigger;
    ed.grip = grip;
    let no_snap = controls.buttons & keys::NO_SNAP != 0;

    if let (Some(d), Some(r)) = (ed.drag.as_mut(), ray.as_ref()) {
        update_drag(d, r, no_snap, &ed.snap);
    }
    let ends = ed
        .drag
        .as_ref()
        .is_some_and(|d| (d.grip && grip_released) || (!d.grip && released));
    if ends && let Some(d) = ed.drag.take() {
        for op in drag_commands(&view, &d) {
            ed.push(op);
        }
    }
    if ed.drag.is_none()
        && grip_pressed
        && let (Some(r), Some(h)) = (ray, hit)
    {
        begin_drag(ed, &view, &r, &h, DragKind::Grab(GrabMode::Move), true);
    } else if ed.drag.is_none()
        && pressed
        && let (Some(r), Some(axis), Some(g)) = (ray, handle, ed.gizmo)
    {
        begin_gizmo_drag(ed, &g, &r, axis);
    } else if ed.drag.is_none()
        && pressed
        && let Some(r) = ray
    {
        press(ed, &view, &r, hit, controls.buttons);
    }
}

fn begin_drag(
    ed: &mut Editor,
    view: &View<'_, '_, '_>,
    ray: &Ray,
    hit: &Hit,
    kind: DragKind,
    grip: bool,
) {
    // Grabbing something outside the selection selects it first.
    if !ed.selection.contains(&hit.element) {
        ed.selection = vec![hit.element];
    }
    let targets = ed.selection.clone();
    let pivot = view.centre(&targets).unwrap_or(hit.point);
    let normal = (ray.direction * -1.0)
        .normalized()
        .unwrap_or(Vec3::new(0.0, 0.0, 1.0));
    let axis = if kind == DragKind::Extrude {
        let mut n = Vec3::ZERO;
        for (o, faces) in faces_by_object(&targets) {
            if let Some((t, s, _)) = view.get(&o) {
                for f in faces {
                    if let Ok(fnorm) = s.mesh.face_normal(f) {
                        n += normal_to_world(t, fnorm);
                    }
                }
            }
        }
        n.normalized().unwrap_or(hit.normal)
    } else {
        hit.normal
    };
    let transform = match kind {
        DragKind::Grab(GrabMode::Rotate) => Transform::Rotate {
            rotation: Quat::IDENTITY,
            pivot,
        },
        DragKind::Grab(GrabMode::Scale) => Transform::Scale {
            factors: Vec3::ONE,
            pivot,
        },
        _ => Transform::Translate(Vec3::ZERO),
    };
    ed.drag = Some(Drag {
        kind,
        targets,
        start: hit.point,
        pivot,
        plane_normal: normal,
        axis,
        transform,
        distance: 0.0,
        constraint: None,
        grip,
    });
}

/// A trigger press with the tool in hand.
fn press(ed: &mut Editor, view: &View<'_, '_, '_>, ray: &Ray, hit: Option<Hit>, buttons: u32) {
    let how = if buttons & keys::REMOVE != 0 {
        SelectOp::Remove
    } else if buttons & keys::ADD != 0 {
        SelectOp::Toggle
    } else {
        SelectOp::Replace
    };
    match ed.tool {
        Tool::Select => match hit {
            Some(h) => ed.select(h.element, how),
            None if how == SelectOp::Replace => ed.selection.clear(),
            None => {}
        },
        Tool::Grab => match hit {
            Some(h) => begin_drag(ed, view, ray, &h, DragKind::Grab(ed.grab), false),
            None => ed.notice("grab: point at something to move it"),
        },
        Tool::Extrude => match hit {
            Some(h) => {
                let on_face =
                    matches!(h.element, ElementRef::Face(..)) || ed.mode == SelectMode::Object;
                let face = ElementRef::Face(h.element.object(), h.face);
                if !on_face || !ed.selection.contains(&face) {
                    ed.selection = vec![face];
                }
                let hit = Hit { element: face, ..h };
                begin_drag(ed, view, ray, &hit, DragKind::Extrude, false);
            }
            None => ed.notice("extrude: point at a face"),
        },
        Tool::Insert => {
            // On what the pointer is over, else on the ground, else a metre along the ray;
            // on a floor (the ground, or an upward face) it stands on it rather than in it.
            let floor = hit.is_none_or(|h| h.normal.y > 0.7);
            let mut at = hit.map(|h| h.point).unwrap_or_else(|| {
                ray_plane(ray, Vec3::ZERO, Vec3::new(0.0, 1.0, 0.0))
                    .unwrap_or(ray.origin + ray.direction)
            });
            if floor
                && let Ok(m) = ed
                    .insert_primitive()
                    .build(&mut theta_mesh::SeqIds::new(1), MaterialId(0))
            {
                at.y -= m.bounds().min.y;
            }
            run_action(ed, view, Action::Insert(at));
        }
        tool => {
            // The other tools act on what the pointer is over (selecting it first) or, on
            // empty space, on the selection.
            if let Some(h) = hit {
                let target = match tool {
                    Tool::Paint => ElementRef::Face(h.element.object(), h.face),
                    _ => h.element,
                };
                let target = if tool == Tool::Paint && ed.mode == SelectMode::Object {
                    ElementRef::Object(h.element.object())
                } else {
                    target
                };
                if !ed.selection.contains(&target) {
                    ed.selection = vec![target];
                }
            }
            let a = match tool {
                Tool::Inset => Action::Inset(0.25),
                Tool::LoopCut => Action::LoopCut(1),
                Tool::Subdivide => Action::Subdivide(1),
                Tool::Paint => Action::Paint,
                Tool::Erase => Action::Erase,
                Tool::Mirror => Action::Mirror(0),
                Tool::Duplicate => {
                    Action::Duplicate(Vec3::new(ed.snap.grid.max(0.05) * 4.0, 0.0, 0.0))
                }
                Tool::Group => Action::Group("group".into()),
                _ => return,
            };
            run_action(ed, view, a);
        }
    }
}

fn run_action(ed: &mut Editor, view: &View<'_, '_, '_>, a: Action) {
    let sel = ed.selection.clone();
    let empty = |ed: &mut Editor, what: &str| ed.notice(format!("{what}: nothing selected"));
    match a {
        Action::SetTool(t) => {
            ed.tool = t;
            ed.drag = None;
        }
        Action::SetMode(m) => {
            if ed.mode != m {
                ed.mode = m;
                ed.selection.clear();
            }
        }
        Action::SetGrab(g) => ed.grab = g,
        Action::SetSnap(s) => ed.snap = s,
        Action::SetMaterial(m) => ed.material = m,
        Action::SetPrimitive(p) => ed.primitive = Some(p),
        Action::Select(e, how) => {
            if view.has(&e) {
                ed.select(e, how);
            } else {
                ed.notice("select: no such element");
            }
        }
        Action::ClearSelection => ed.selection.clear(),
        Action::CancelDrag => ed.drag = None,
        Action::Rename(name) => match sel.first() {
            Some(e) => ed.push(Op::RenameObject {
                object: e.object(),
                name,
            }),
            None => empty(ed, "rename"),
        },
        Action::Place(object, transform) => {
            if view.get(&object).is_some() {
                ed.push(Op::SetObjectTransform { object, transform });
            } else {
                ed.notice("place: no such object");
            }
        }
        Action::Translate(delta) => {
            if sel.is_empty() {
                return empty(ed, "move");
            }
            let d = Drag {
                kind: DragKind::Grab(GrabMode::Move),
                targets: sel,
                start: Vec3::ZERO,
                pivot: Vec3::ZERO,
                plane_normal: Vec3::new(0.0, 0.0, 1.0),
                axis: Vec3::ZERO,
                transform: Transform::Translate(delta),
                distance: 0.0,
                constraint: None,
                grip: false,
            };
            for op in drag_commands(view, &d) {
                ed.push(op);
            }
        }
        Action::Extrude(distance) => {
            let faces = faces_by_object(&sel);
            if faces.is_empty() {
                return empty(ed, "extrude (faces)");
            }
            for (o, faces) in faces {
                let Some((_, s, _)) = view.get(&o) else {
                    continue;
                };
                let mut n = Vec3::ZERO;
                for f in &faces {
                    if let Ok(v) = s.mesh.face_normal(*f) {
                        n += v;
                    }
                }
                let n = n.normalized().unwrap_or(Vec3::new(0.0, 1.0, 0.0));
                ed.push(Op::ExtrudeRegion {
                    object: o,
                    faces,
                    offset: n * distance,
                });
            }
        }
        Action::Inset(amount) => {
            let faces = faces_by_object(&sel);
            if faces.is_empty() {
                return empty(ed, "inset (faces)");
            }
            for (object, faces) in faces {
                ed.push(Op::Inset {
                    object,
                    faces,
                    amount,
                });
            }
        }
        Action::LoopCut(cuts) => {
            let edge = sel.iter().chain(ed.hovered.iter()).find_map(|e| match e {
                ElementRef::Edge(o, k) => Some((*o, *k)),
                _ => None,
            });
            match edge {
                Some((object, edge)) => ed.push(Op::LoopCut { object, edge, cuts }),
                None => ed.notice("loop cut: select an edge (edge mode)"),
            }
        }
        Action::Subdivide(levels) => {
            let objs = objects_in(&sel);
            if objs.is_empty() {
                return empty(ed, "subdivide");
            }
            for object in objs {
                ed.push(Op::Subdivide { object, levels });
            }
        }
        Action::Insert(at) => {
            let s = ed.snap.grid;
            let at = Vec3::new(snap_to(at.x, s), snap_to(at.y, s), snap_to(at.z, s));
            let p = ed.insert_primitive();
            let name = primitive_name(&p).to_owned();
            ed.push(Op::CreateObject {
                name,
                primitive: p,
                material: ed.material,
                transform: ObjectTransform {
                    translation: at,
                    ..ObjectTransform::IDENTITY
                },
            });
        }
        Action::Paint => {
            if sel.is_empty() {
                return empty(ed, "paint");
            }
            let material = ed.material;
            for object in whole_objects(&sel) {
                ed.push(Op::PaintObject { object, material });
            }
            for (object, faces) in faces_by_object(&sel) {
                ed.push(Op::PaintFaces {
                    object,
                    faces,
                    material,
                });
            }
        }
        Action::Erase => {
            if sel.is_empty() {
                return empty(ed, "erase");
            }
            let whole = whole_objects(&sel);
            for &object in &whole {
                ed.push(Op::DeleteObject { object });
            }
            for (object, faces) in faces_by_object(&sel) {
                if !whole.contains(&object) {
                    ed.push(Op::DeleteFaces {
                        object,
                        faces,
                        mode: DeleteMode::Hole,
                    });
                }
            }
            for e in &sel {
                match *e {
                    ElementRef::Vertex(object, vertex) if !whole.contains(&object) => {
                        ed.push(Op::DeleteVertex {
                            object,
                            vertex,
                            mode: DeleteMode::Dissolve,
                        })
                    }
                    ElementRef::Edge(object, edge) if !whole.contains(&object) => {
                        ed.push(Op::DeleteEdge {
                            object,
                            edge,
                            mode: DeleteMode::Dissolve,
                        })
                    }
                    _ => {}
                }
            }
            ed.selection.clear();
        }
        Action::Mirror(axis) => {
            let objs = objects_in(&sel);
            if objs.is_empty() {
                return empty(ed, "mirror");
            }
            let mut n = [0.0f32; 3];
            n[axis.min(2)] = 1.0;
            let Some(plane) = Plane::from_point_normal(Vec3::ZERO, Vec3::from_array(n)) else {
                return;
            };
            for object in objs {
                ed.push(Op::MirrorSymmetric {
                    object,
                    plane,
                    seam: 1e-4,
                });
            }
        }
        Action::Duplicate(offset) => {
            if sel.is_empty() {
                return empty(ed, "duplicate");
            }
            let whole = whole_objects(&sel);
            for &object in &whole {
                ed.push(Op::DuplicateObject { object, offset });
            }
            for (object, faces) in faces_by_object(&sel) {
                if let Some((t, _, _)) = view.get(&object)
                    && !whole.contains(&object)
                {
                    ed.push(Op::DuplicateFaces {
                        object,
                        faces,
                        offset: dir_to_local(t, offset),
                    });
                }
            }
        }
        Action::Group(name) => {
            let objs = objects_in(&sel);
            if objs.len() < 2 {
                return ed.notice("group: select two or more objects");
            }
            ed.push(Op::GroupObjects {
                objects: objs,
                name,
            });
        }
        Action::Ungroup => {
            let mut groups: Vec<GroupId> = objects_in(&sel)
                .iter()
                .filter_map(|o| view.get(o).and_then(|(_, _, g)| g))
                .collect();
            groups.sort_unstable();
            groups.dedup();
            if groups.is_empty() {
                return ed.notice("ungroup: nothing selected is in a group");
            }
            for group in groups {
                ed.push(Op::Ungroup { group });
            }
        }
        Action::Undo => match ed.done.pop() {
            Some(target) => ed.outbox.push((Op::Undo { target }, Stack::Undo)),
            None => ed.notice("undo: nothing of mine to undo"),
        },
        Action::Redo => match ed.undone.pop() {
            Some(undo) => ed.outbox.push((Op::Redo { undo }, Stack::Redo)),
            None => ed.notice("redo: nothing to redo"),
        },
    }
}

fn primitive_name(p: &Primitive) -> &'static str {
    match p {
        Primitive::Cuboid { .. } => "box",
        Primitive::Pyramid { .. } => "pyramid",
        Primitive::Cone { .. } => "cone",
        Primitive::Cylinder { .. } => "cylinder",
        Primitive::UvSphere { .. } => "sphere",
        Primitive::Icosahedron { .. } => "icosahedron",
        Primitive::Icosphere { .. } => "icosphere",
        Primitive::Torus { .. } => "torus",
        Primitive::Grid { .. } => "grid",
    }
}
