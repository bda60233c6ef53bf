//! # theta-mesh: Theta's half-edge mesh kernel
//!
//! Data model: a [`Mesh`] is an oriented 2-manifold polygon mesh (n-gon faces, boundaries allowed) in
//! half-edge form. Vertices and faces have stable ids ([`VertexId`], [`FaceId`]) that the caller's
//! [`IdAlloc`] supplies, so the command log can derive them from command hashes and every peer names
//! new elements identically. Half-edge handles ([`HalfEdgeId`]) are valid for one mesh state.
//!
//! Invariants:
//! - Every operation checks its input and either succeeds with a mesh that passes
//!   [`Mesh::validate`], or returns a [`MeshError`] and leaves the mesh exactly as it was.
//! - Every operation is deterministic: the same mesh, arguments and allocator give bit-identical
//!   results on every run and platform. The kernel uses no platform math library (transcendentals go
//!   through `libm`), no `mul_add`, no hash-ordered iteration, no parallel float reductions, no
//!   clocks and no randomness.
//! - The kernel does no I/O: importers and exporters read and write byte buffers.
//!
//! Architecture invariant: this crate knows nothing about the command log, networking, the GPU, XR
//! or the ECS.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod error;
mod ids;
pub mod io;
mod math;
mod mesh;
mod ops;
mod palette;
mod pick;
mod polygons;
mod primitives;
mod text;
mod triangulate;

pub use error::{MeshError, Result};
pub use ids::{EdgeKey, FaceId, HalfEdgeId, IdAlloc, MaterialId, SeqIds, VertexId};
pub use math::{Aabb, Plane, Quat, Vec3};
pub use mesh::{Mesh, OwnedRawMesh, RawMesh};
pub use ops::{DeleteMode, MAX_SUBDIVISION_LEVELS, Selection, Transform};
pub use palette::{CUSTOM_BIT, MaterialKind, PALETTE, PaletteEntry, palette_entry};
pub use pick::{Bvh, Pick, PickElement, Ray};
pub use polygons::Polygons;
pub use primitives::{MAX_GRID, MAX_ICO_LEVEL, MAX_SEGMENTS, Primitive};
pub use text::{from_text, to_text};
pub use triangulate::{Triangles, triangulate_polygon};
