//! Mesh operations. Geometry edits (transform, paint) change the mesh in place; topology edits read
//! the mesh into a [`Soup`](soup::Soup), edit the face list, and rebuild through the checking builder
//! (see `polygons.rs` for why), replacing `self` only on success.
//!
//! Id allocation order is part of each operation's contract (the log replays it on every peer); each
//! operation documents it.

mod delete;
mod extrude;
mod mirror;
mod soup;
mod split;
mod subdivide;
mod transform;
mod weld;

pub use delete::DeleteMode;
pub use subdivide::MAX_SUBDIVISION_LEVELS;
pub use transform::{Selection, Transform};

use crate::error::{MeshError, Result};
use crate::ids::FaceId;
use crate::mesh::Mesh;

impl Mesh {
    /// Resolves face ids to sorted, de-duplicated storage slots; an empty list or unknown id fails.
    pub(crate) fn face_slots(&self, faces: &[FaceId]) -> Result<Vec<u32>> {
        if faces.is_empty() {
            return Err(MeshError::EmptySelection);
        }
        let mut s = faces
            .iter()
            .map(|&f| self.fslot(f))
            .collect::<Result<Vec<_>>>()?;
        s.sort_unstable();
        s.dedup();
        Ok(s)
    }
}
