//! The command vocabulary: what an author can ask the scene to do, as plain domain types. The wire
//! form (FlatBuffers, `wire.rs`) converts to and from these in one place.
//!
//! Each kind has a conflict strategy, written in `docs/PROTOCOL.md` and next to each variant:
//! - *LWW* (last writer wins): the command later in the fold order overwrites.
//! - *merge*: effects combine commutatively in intent (two concurrent moves both apply, so the
//!   offsets add up).
//! - *reject*: the command's preconditions are checked against the state it lands on; if they no
//!   longer hold (a concurrent command deleted the face it extrudes) it has no effect on any peer and
//!   its author is told why.

use theta_mesh::{
    DeleteMode, EdgeKey, FaceId, MaterialId, Plane, Primitive, Quat, Transform, Vec3, VertexId,
};

use crate::ids::{AuthorId, CommandId, GroupId, ObjectId, Role};

/// Placement of an object in the scene: scale, then rotate, then translate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectTransform {
    /// Position.
    pub translation: Vec3,
    /// Orientation (a unit quaternion computed by the author).
    pub rotation: Quat,
    /// Scale per axis.
    pub scale: Vec3,
}

impl ObjectTransform {
    /// No translation, rotation or scaling.
    pub const IDENTITY: ObjectTransform = ObjectTransform {
        translation: Vec3::ZERO,
        rotation: Quat::IDENTITY,
        scale: Vec3::ONE,
    };

    /// The ten components in their one fixed order: translation, rotation (x, y, z, w), scale.
    pub fn components(&self) -> [f32; 10] {
        let (t, r, s) = (self.translation, self.rotation, self.scale);
        [t.x, t.y, t.z, r.x, r.y, r.z, r.w, s.x, s.y, s.z]
    }

    /// True if every component is finite.
    pub fn is_finite(&self) -> bool {
        self.translation.is_finite()
            && self.scale.is_finite()
            && [
                self.rotation.x,
                self.rotation.y,
                self.rotation.z,
                self.rotation.w,
            ]
            .iter()
            .all(|c| c.is_finite())
    }
}

/// A selection of mesh elements by stable ids.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ElementSelection {
    /// Vertices.
    pub vertices: Vec<VertexId>,
    /// Edges, by their end vertices.
    pub edges: Vec<EdgeKey>,
    /// Faces.
    pub faces: Vec<FaceId>,
}

/// What a command does. Strategy per variant in brackets.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// Starts a session; its author becomes admin. Only the first command of a log. \[reject\]
    Genesis {
        /// Session name.
        name: String,
    },
    /// Renames the session (admin). \[LWW\]
    SetSessionName {
        /// New name.
        name: String,
    },
    /// Gives an author a role (admin). \[LWW\]
    GrantRole {
        /// Who.
        author: AuthorId,
        /// Which role.
        role: Role,
    },
    /// Takes an author's role away (admin). Their commands with a sequence number above
    /// `last_accepted_seq` fold to nothing wherever they land in the order. \[LWW; the cap is min\]
    RevokeRole {
        /// Who.
        author: AuthorId,
        /// The last of their sequence numbers this revoke still accepts.
        last_accepted_seq: u64,
    },
    /// Adds an object made from a primitive. \[create: never conflicts\]
    CreateObject {
        /// Object name.
        name: String,
        /// Shape and parameters.
        primitive: Primitive,
        /// Material of every face.
        material: MaterialId,
        /// Placement.
        transform: ObjectTransform,
    },
    /// Removes an object. \[reject if already gone\]
    DeleteObject {
        /// Which.
        object: ObjectId,
    },
    /// Copies an object, moved by `offset`. \[reject if gone\]
    DuplicateObject {
        /// Which.
        object: ObjectId,
        /// Added to the copy's translation.
        offset: Vec3,
    },
    /// Renames an object. \[LWW\]
    RenameObject {
        /// Which.
        object: ObjectId,
        /// New name.
        name: String,
    },
    /// Sets an object's placement. \[LWW\]
    SetObjectTransform {
        /// Which.
        object: ObjectId,
        /// New placement.
        transform: ObjectTransform,
    },
    /// Moves an object by an offset. \[merge\]
    MoveObject {
        /// Which.
        object: ObjectId,
        /// Offset.
        delta: Vec3,
    },
    /// Paints every face of an object. \[LWW\]
    PaintObject {
        /// Which.
        object: ObjectId,
        /// Material.
        material: MaterialId,
    },
    /// Groups objects under a new group. \[reject if any object is gone\]
    GroupObjects {
        /// Members.
        objects: Vec<ObjectId>,
        /// Group name.
        name: String,
    },
    /// Dissolves a group (its objects stay). \[reject if gone\]
    Ungroup {
        /// Which.
        group: GroupId,
    },
    /// Moves all of `from`'s geometry into `into` and deletes `from`. \[reject if either is gone\]
    MergeObjects {
        /// Receives the geometry.
        into: ObjectId,
        /// Is merged in and removed.
        from: ObjectId,
    },
    /// Moves vertices by an offset. \[merge\]
    MoveVertices {
        /// Object.
        object: ObjectId,
        /// Vertices.
        vertices: Vec<VertexId>,
        /// Offset.
        delta: Vec3,
    },
    /// Sets vertex positions. \[LWW\]
    SetVertexPositions {
        /// Object.
        object: ObjectId,
        /// New positions.
        positions: Vec<(VertexId, Vec3)>,
    },
    /// Translates, rotates or scales a selection of elements. \[merge\]
    TransformElements {
        /// Object.
        object: ObjectId,
        /// Elements.
        selection: ElementSelection,
        /// The transform.
        transform: Transform,
    },
    /// Region extrude. \[reject\]
    ExtrudeRegion {
        /// Object.
        object: ObjectId,
        /// Region.
        faces: Vec<FaceId>,
        /// Offset.
        offset: Vec3,
    },
    /// Individual extrude along each face's normal. \[reject\]
    ExtrudeIndividual {
        /// Object.
        object: ObjectId,
        /// Faces.
        faces: Vec<FaceId>,
        /// Distance.
        distance: f32,
    },
    /// Inset. \[reject\]
    Inset {
        /// Object.
        object: ObjectId,
        /// Faces.
        faces: Vec<FaceId>,
        /// Fraction towards the centroid.
        amount: f32,
    },
    /// Splits an edge. \[reject\]
    SplitEdge {
        /// Object.
        object: ObjectId,
        /// Edge.
        edge: EdgeKey,
        /// Parameter from the first vertex.
        t: f32,
    },
    /// Splits a face between two of its corners. \[reject\]
    SplitFace {
        /// Object.
        object: ObjectId,
        /// Face.
        face: FaceId,
        /// First corner.
        a: VertexId,
        /// Second corner.
        b: VertexId,
    },
    /// Loop cut across the quad ring of an edge. \[reject\]
    LoopCut {
        /// Object.
        object: ObjectId,
        /// Edge the ring crosses.
        edge: EdgeKey,
        /// Number of cuts.
        cuts: u32,
    },
    /// Catmull–Clark subdivision. \[reject\]
    Subdivide {
        /// Object.
        object: ObjectId,
        /// Levels.
        levels: u32,
    },
    /// Deletes or dissolves faces. \[reject\]
    DeleteFaces {
        /// Object.
        object: ObjectId,
        /// Faces.
        faces: Vec<FaceId>,
        /// Hole or dissolve.
        mode: DeleteMode,
    },
    /// Deletes or dissolves a vertex. \[reject\]
    DeleteVertex {
        /// Object.
        object: ObjectId,
        /// Vertex.
        vertex: VertexId,
        /// Hole or dissolve.
        mode: DeleteMode,
    },
    /// Deletes or dissolves an edge. \[reject\]
    DeleteEdge {
        /// Object.
        object: ObjectId,
        /// Edge.
        edge: EdgeKey,
        /// Hole or dissolve.
        mode: DeleteMode,
    },
    /// Welds vertices by distance (all of them when `vertices` is empty). \[reject\]
    Weld {
        /// Object.
        object: ObjectId,
        /// Distance.
        distance: f32,
        /// Vertices taking part.
        vertices: Vec<VertexId>,
    },
    /// Adds a mirrored copy of faces (all when empty). \[reject\]
    Mirror {
        /// Object.
        object: ObjectId,
        /// Faces.
        faces: Vec<FaceId>,
        /// Mirror plane.
        plane: Plane,
        /// Seam weld distance.
        weld: f32,
    },
    /// Keeps the positive half and adds its reflection, welded at the seam. \[reject\]
    MirrorSymmetric {
        /// Object.
        object: ObjectId,
        /// Mirror plane.
        plane: Plane,
        /// Seam distance.
        seam: f32,
    },
    /// Copies faces within the object. \[reject\]
    DuplicateFaces {
        /// Object.
        object: ObjectId,
        /// Faces.
        faces: Vec<FaceId>,
        /// Offset of the copy.
        offset: Vec3,
    },
    /// Paints faces. \[LWW\]
    PaintFaces {
        /// Object.
        object: ObjectId,
        /// Faces.
        faces: Vec<FaceId>,
        /// Material.
        material: MaterialId,
    },
    /// Joins the session with the role an admin's invite grants (see `invite.rs`). \[reject if the
    /// capability is forged, for another session or invitee, or its issuer is not an admin here\]
    RedeemInvite {
        /// The capability.
        invite: crate::invite::SignedCapability,
    },
    /// Undoes one of the author's own commands, on top of whatever happened since. \[reject if the
    /// inverse no longer applies\]
    Undo {
        /// The command to undo.
        target: CommandId,
    },
    /// Undoes an undo. \[reject if it no longer applies\]
    Redo {
        /// The undo command to revert.
        undo: CommandId,
    },
}

/// How concurrent commands of a kind resolve (see `docs/PROTOCOL.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The later command in the total order wins.
    LastWriterWins,
    /// Concurrent commands combine (moves add up).
    Merge,
    /// A command whose preconditions no longer hold is rejected.
    Reject,
    /// Creation: never conflicts.
    Create,
}

impl Strategy {
    /// The strategy of a command kind (`Op::kind`); unknown kinds are `Reject`.
    pub fn of_kind(kind: &str) -> Strategy {
        match kind {
            "set-session-name"
            | "grant-role"
            | "revoke-role"
            | "rename-object"
            | "set-object-transform"
            | "paint-object"
            | "set-vertex-positions"
            | "paint-faces" => Strategy::LastWriterWins,
            "move-object" | "move-vertices" | "transform-elements" => Strategy::Merge,
            "create-object" => Strategy::Create,
            _ => Strategy::Reject,
        }
    }

    /// A short, stable name ("lww", "merge", "reject", "create").
    pub fn name(self) -> &'static str {
        match self {
            Strategy::LastWriterWins => "lww",
            Strategy::Merge => "merge",
            Strategy::Reject => "reject",
            Strategy::Create => "create",
        }
    }
}

impl Op {
    /// How concurrent commands of this kind resolve.
    pub fn strategy(&self) -> Strategy {
        Strategy::of_kind(self.kind())
    }

    /// A short, stable name of the kind (for logs, errors and the protocol table).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Genesis { .. } => "genesis",
            Op::SetSessionName { .. } => "set-session-name",
            Op::GrantRole { .. } => "grant-role",
            Op::RevokeRole { .. } => "revoke-role",
            Op::CreateObject { .. } => "create-object",
            Op::DeleteObject { .. } => "delete-object",
            Op::DuplicateObject { .. } => "duplicate-object",
            Op::RenameObject { .. } => "rename-object",
            Op::SetObjectTransform { .. } => "set-object-transform",
            Op::MoveObject { .. } => "move-object",
            Op::PaintObject { .. } => "paint-object",
            Op::GroupObjects { .. } => "group-objects",
            Op::Ungroup { .. } => "ungroup",
            Op::MergeObjects { .. } => "merge-objects",
            Op::MoveVertices { .. } => "move-vertices",
            Op::SetVertexPositions { .. } => "set-vertex-positions",
            Op::TransformElements { .. } => "transform-elements",
            Op::ExtrudeRegion { .. } => "extrude-region",
            Op::ExtrudeIndividual { .. } => "extrude-individual",
            Op::Inset { .. } => "inset",
            Op::SplitEdge { .. } => "split-edge",
            Op::SplitFace { .. } => "split-face",
            Op::LoopCut { .. } => "loop-cut",
            Op::Subdivide { .. } => "subdivide",
            Op::DeleteFaces { .. } => "delete-faces",
            Op::DeleteVertex { .. } => "delete-vertex",
            Op::DeleteEdge { .. } => "delete-edge",
            Op::Weld { .. } => "weld",
            Op::Mirror { .. } => "mirror",
            Op::MirrorSymmetric { .. } => "mirror-symmetric",
            Op::DuplicateFaces { .. } => "duplicate-faces",
            Op::PaintFaces { .. } => "paint-faces",
            Op::RedeemInvite { .. } => "redeem-invite",
            Op::Undo { .. } => "undo",
            Op::Redo { .. } => "redo",
        }
    }
}

/// The signed part of a command: who, where in their chain, where in the causal order, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The author (public key).
    pub author: AuthorId,
    /// The author's sequence number, 1 for their first command, never reused.
    pub seq: u64,
    /// 1 + the largest Lamport clock among `deps` (1 for genesis).
    pub lamport: u64,
    /// The log heads the author had seen, strictly ascending. For `seq > 1` they include the
    /// author's own previous command.
    pub deps: Vec<CommandId>,
    /// The operation.
    pub op: Op,
}
