//! Translate, rotate and scale a selection of vertices, edges, faces or the whole mesh, and paint
//! faces. These change positions or materials only, in place.

use crate::error::{MeshError, Result, invalid_param};
use crate::ids::{EdgeKey, FaceId, MaterialId, VertexId};
use crate::math::{Quat, Vec3};
use crate::mesh::Mesh;

/// A set of elements; an operation acts on the union of their vertices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// Everything in the mesh.
    pub all: bool,
    /// Selected vertices.
    pub vertices: Vec<VertexId>,
    /// Selected edges.
    pub edges: Vec<EdgeKey>,
    /// Selected faces.
    pub faces: Vec<FaceId>,
}

impl Selection {
    /// The whole mesh.
    pub fn whole() -> Selection {
        Selection {
            all: true,
            ..Default::default()
        }
    }
    /// Some vertices.
    pub fn of_vertices(v: impl IntoIterator<Item = VertexId>) -> Selection {
        Selection {
            vertices: v.into_iter().collect(),
            ..Default::default()
        }
    }
    /// Some edges.
    pub fn of_edges(e: impl IntoIterator<Item = EdgeKey>) -> Selection {
        Selection {
            edges: e.into_iter().collect(),
            ..Default::default()
        }
    }
    /// Some faces.
    pub fn of_faces(f: impl IntoIterator<Item = FaceId>) -> Selection {
        Selection {
            faces: f.into_iter().collect(),
            ..Default::default()
        }
    }
}

/// An affine change of positions. Rotations are quaternions computed by the author, so applying one
/// needs no transcendental function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    /// Move by an offset.
    Translate(Vec3),
    /// Rotate about a pivot. The quaternion is normalised before use.
    Rotate {
        /// The rotation.
        rotation: Quat,
        /// Fixed point.
        pivot: Vec3,
    },
    /// Scale about a pivot, per axis.
    Scale {
        /// Factor per axis (may be zero or negative: flatten or flip in place).
        factors: Vec3,
        /// Fixed point.
        pivot: Vec3,
    },
}

impl Mesh {
    /// The sorted, de-duplicated vertex slots of a selection.
    pub(crate) fn selection_slots(&self, sel: &Selection) -> Result<Vec<u32>> {
        if sel.all {
            if self.vid.is_empty() {
                return Err(MeshError::EmptySelection);
            }
            return Ok((0..self.vid.len() as u32).collect());
        }
        let mut out = Vec::new();
        for &v in &sel.vertices {
            out.push(self.vslot(v)?);
        }
        for &EdgeKey(a, b) in &sel.edges {
            let (sa, sb) = (self.vslot(a)?, self.vslot(b)?);
            self.find_halfedge_slot(sa, sb)
                .ok_or(MeshError::UnknownEdge(a, b))?;
            out.push(sa);
            out.push(sb);
        }
        for &f in &sel.faces {
            out.extend(self.face_vertex_slots(self.fslot(f)?));
        }
        if out.is_empty() {
            return Err(MeshError::EmptySelection);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The vertex ids of a selection, in storage order.
    pub fn selection_vertices(&self, sel: &Selection) -> Result<Vec<VertexId>> {
        Ok(self
            .selection_slots(sel)?
            .into_iter()
            .map(|s| self.vid[s as usize])
            .collect())
    }

    /// Moves vertices by `delta`, each listed vertex once however often it is listed: exactly
    /// `transform(&Selection::of_vertices(ids), &Transform::Translate(delta))`, with the same
    /// errors in the same order, but without building a selection or a closure (a vertex move is
    /// the commonest edit there is). Fails, changing nothing, on an empty list, an unknown vertex,
    /// a non-finite offset or a result that is not finite.
    pub fn translate_vertices(&mut self, ids: &[VertexId], delta: Vec3) -> Result<()> {
        let mut slots: smallvec::SmallVec<[u32; 8]> = smallvec::SmallVec::new();
        for &v in ids {
            slots.push(self.vslot(v)?);
        }
        if slots.is_empty() {
            return Err(MeshError::EmptySelection);
        }
        slots.sort_unstable();
        slots.dedup();
        if !delta.is_finite() {
            return Err(invalid_param("offset", "not finite"));
        }
        if slots
            .iter()
            .any(|&s| !(self.vpos[s as usize] + delta).is_finite())
        {
            return Err(invalid_param(
                "transform",
                "moves a vertex out of finite range",
            ));
        }
        let vpos = std::sync::Arc::make_mut(&mut self.vpos);
        for &s in &slots {
            vpos[s as usize] += delta;
        }
        Ok(())
    }

    /// Applies a transform to the selection's vertices. Fails, changing nothing, on an empty or
    /// unknown selection, a non-finite parameter, or a result that is not finite.
    pub fn transform(&mut self, sel: &Selection, t: &Transform) -> Result<()> {
        let slots = self.selection_slots(sel)?;
        let f: Box<dyn Fn(Vec3) -> Vec3> = match *t {
            Transform::Translate(d) => {
                if !d.is_finite() {
                    return Err(invalid_param("offset", "not finite"));
                }
                Box::new(move |p| p + d)
            }
            Transform::Rotate { rotation, pivot } => {
                let q = rotation
                    .normalized()
                    .ok_or_else(|| invalid_param("rotation", "zero or not finite"))?;
                if !pivot.is_finite() {
                    return Err(invalid_param("pivot", "not finite"));
                }
                Box::new(move |p| q.rotate(p - pivot) + pivot)
            }
            Transform::Scale { factors, pivot } => {
                if !factors.is_finite() || !pivot.is_finite() {
                    return Err(invalid_param("scale", "not finite"));
                }
                Box::new(move |p| (p - pivot).mul_elem(factors) + pivot)
            }
        };
        let new: Vec<Vec3> = slots.iter().map(|&s| f(self.vpos[s as usize])).collect();
        if new.iter().any(|p| !p.is_finite()) {
            return Err(invalid_param(
                "transform",
                "moves a vertex out of finite range",
            ));
        }
        let vpos = std::sync::Arc::make_mut(&mut self.vpos);
        for (&s, p) in slots.iter().zip(new) {
            vpos[s as usize] = p;
        }
        Ok(())
    }

    /// Sets the material of faces.
    pub fn paint(&mut self, faces: &[FaceId], material: MaterialId) -> Result<()> {
        let slots = self.face_slots(faces)?;
        let fmat = std::sync::Arc::make_mut(&mut self.fmat);
        for s in slots {
            fmat[s as usize] = material;
        }
        Ok(())
    }
}
