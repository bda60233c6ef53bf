//! The kernel's error type. Every operation checks its input before it changes anything, so an `Err`
//! always means the mesh is exactly as it was.

use crate::ids::{FaceId, HalfEdgeId, VertexId};

/// Why a mesh operation, build, import or validation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The vertex id names no vertex of this mesh.
    #[error("no vertex {0}")]
    UnknownVertex(VertexId),
    /// The face id names no face of this mesh.
    #[error("no face {0}")]
    UnknownFace(FaceId),
    /// The half-edge handle is out of range for this mesh state.
    #[error("no half-edge {0}")]
    UnknownHalfEdge(HalfEdgeId),
    /// The two vertices are not joined by an edge.
    #[error("no edge between {0} and {1}")]
    UnknownEdge(VertexId, VertexId),
    /// The operation was given nothing to work on.
    #[error("empty selection")]
    EmptySelection,
    /// A numeric parameter is out of its allowed range or not finite.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A face would have fewer than three corners or repeat a vertex.
    #[error("degenerate face: {0}")]
    DegenerateFace(String),
    /// The result would not be an oriented 2-manifold (with boundary).
    #[error("non-manifold result: {0}")]
    NonManifold(String),
    /// The allocator returned an id that is already in use (or was returned twice).
    #[error("id collision: {0}")]
    IdCollision(String),
    /// The operation's precondition on the selection's shape does not hold.
    #[error("unsupported selection: {0}")]
    Unsupported(String),
    /// `validate()` found a broken invariant (a kernel bug, or a corrupt mesh).
    #[error("invalid mesh: {0}")]
    Invalid(String),
    /// An imported file is malformed; the message names the problem and where it is.
    #[error("import failed: {0}")]
    Import(String),
    /// Writing an export failed.
    #[error("export failed: {0}")]
    Export(String),
}

/// Shorthand for results of kernel operations.
pub type Result<T, E = MeshError> = std::result::Result<T, E>;

pub(crate) fn invalid_param(name: &'static str, reason: impl Into<String>) -> MeshError {
    MeshError::InvalidParameter {
        name,
        reason: reason.into(),
    }
}
