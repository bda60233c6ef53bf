//! `Polygons`: a plain face list (vertex table + corner lists), the exchange form of a mesh.
//!
//! Every topology edit in the kernel works the same way: read the mesh out as `Polygons`, change the
//! face list, and build a fresh half-edge mesh from it with full checking. The builder rejects anything
//! that is not an oriented 2-manifold with boundary, so an edit can never leave a broken mesh behind, and
//! an `Err` leaves the original untouched. The cost is linear in the mesh size per edit, which is
//! microseconds for the low-poly models Theta is for; local in-place edits are a later optimisation
//! behind the same API.

use crate::ids::{FaceId, MaterialId, VertexId};
use crate::math::Vec3;

/// A vertex table and a list of faces, each face a loop of indices into the vertex table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Polygons {
    /// Id of each vertex.
    pub vertex_ids: Vec<VertexId>,
    /// Position of each vertex.
    pub positions: Vec<Vec3>,
    /// Id of each face.
    pub face_ids: Vec<FaceId>,
    /// Material of each face.
    pub materials: Vec<MaterialId>,
    /// Face `i`'s corners are `corners[face_start[i]..face_start[i + 1]]`; starts at `[0]`.
    pub face_start: Vec<u32>,
    /// Vertex indices of all faces, back to back, counter-clockwise seen from outside.
    pub corners: Vec<u32>,
}

impl Polygons {
    /// An empty face list.
    pub fn new() -> Polygons {
        Polygons {
            face_start: vec![0],
            ..Default::default()
        }
    }

    /// An empty face list with room for `v` vertices, `f` faces and `c` corners.
    pub fn with_capacity(v: usize, f: usize, c: usize) -> Polygons {
        let mut face_start = Vec::with_capacity(f + 1);
        face_start.push(0);
        Polygons {
            vertex_ids: Vec::with_capacity(v),
            positions: Vec::with_capacity(v),
            face_ids: Vec::with_capacity(f),
            materials: Vec::with_capacity(f),
            face_start,
            corners: Vec::with_capacity(c),
        }
    }

    /// Adds a vertex and returns its index.
    pub fn add_vertex(&mut self, id: VertexId, position: Vec3) -> u32 {
        let i = self.positions.len() as u32;
        self.vertex_ids.push(id);
        self.positions.push(position);
        i
    }

    /// Adds a face over vertex indices (counter-clockwise seen from outside).
    pub fn add_face(&mut self, id: FaceId, material: MaterialId, corners: &[u32]) {
        self.face_ids.push(id);
        self.materials.push(material);
        self.corners.extend_from_slice(corners);
        self.face_start.push(self.corners.len() as u32);
    }

    /// Number of vertices.
    pub fn vertex_count(&self) -> usize {
        self.positions.len()
    }

    /// Number of faces.
    pub fn face_count(&self) -> usize {
        self.face_ids.len()
    }

    /// The corners of face `i`.
    pub fn face(&self, i: usize) -> &[u32] {
        &self.corners[self.face_start[i] as usize..self.face_start[i + 1] as usize]
    }

    /// Appends another face list, keeping its ids.
    pub fn append(&mut self, other: &Polygons) {
        let base = self.positions.len() as u32;
        self.vertex_ids.extend_from_slice(&other.vertex_ids);
        self.positions.extend_from_slice(&other.positions);
        for i in 0..other.face_count() {
            self.face_ids.push(other.face_ids[i]);
            self.materials.push(other.materials[i]);
            self.corners.extend(other.face(i).iter().map(|&c| c + base));
            self.face_start.push(self.corners.len() as u32);
        }
    }
}
