//! Typed element ids and the caller-supplied id allocator.
//!
//! Vertex and face ids are stable names that peers agree on without coordination: the command log
//! derives them from the creating command's hash and an index, so the kernel never invents an id. It
//! asks an [`IdAlloc`] for each new element, in a deterministic order. Half-edge ids are different:
//! they are handles into one state of one mesh, renumbered by every topology edit, and never leave a
//! process. An edge is named across edits by its two vertices ([`EdgeKey`]).

use std::fmt;

/// Stable id of a vertex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VertexId(pub u64);

/// Stable id of a face.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FaceId(pub u64);

/// Handle of a half-edge, valid for the mesh state it was read from. Half-edges come in twin pairs
/// stored side by side: the twin of `h` is `h ^ 1`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HalfEdgeId(pub(crate) u32);

/// An undirected edge named by its two end vertices, stable across edits that keep both.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct EdgeKey(pub VertexId, pub VertexId);

/// Index into a material table (the palette, glass, gem, or a session's custom colours).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct MaterialId(pub u32);

impl HalfEdgeId {
    /// The raw handle (for display and debugging).
    pub fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for VertexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}
impl fmt::Display for VertexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}
impl fmt::Debug for FaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "f{}", self.0)
    }
}
impl fmt::Display for FaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "f{}", self.0)
    }
}
impl fmt::Debug for HalfEdgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}
impl fmt::Display for HalfEdgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

/// Source of ids for new vertices and faces. Implementations must be deterministic: the log's
/// allocator derives id `i` of a command from `(command hash, i)`, so every peer names new elements
/// identically. Operations request ids in a documented, deterministic order.
pub trait IdAlloc {
    /// The id for the next new vertex.
    fn vertex(&mut self) -> VertexId;
    /// The id for the next new face.
    fn face(&mut self) -> FaceId;
}

/// An allocator handing out consecutive numbers from a base, shared by vertices and faces. Used by
/// tests, tools and importers; the log uses its own hash-derived allocator.
#[derive(Clone, Debug)]
pub struct SeqIds {
    next: u64,
}

impl SeqIds {
    /// Starts at `first`.
    pub fn new(first: u64) -> SeqIds {
        SeqIds { next: first }
    }

    /// The id the next call will return.
    pub fn peek(&self) -> u64 {
        self.next
    }

    fn take(&mut self) -> u64 {
        let n = self.next;
        self.next = self.next.wrapping_add(1);
        n
    }
}

impl Default for SeqIds {
    fn default() -> Self {
        SeqIds::new(1)
    }
}

impl IdAlloc for SeqIds {
    fn vertex(&mut self) -> VertexId {
        VertexId(self.take())
    }
    fn face(&mut self) -> FaceId {
        FaceId(self.take())
    }
}

impl<A: IdAlloc + ?Sized> IdAlloc for &mut A {
    fn vertex(&mut self) -> VertexId {
        (**self).vertex()
    }
    fn face(&mut self) -> FaceId {
        (**self).face()
    }
}
