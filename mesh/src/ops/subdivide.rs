//! Catmull–Clark subdivision for n-gon meshes with boundaries.
//!
//! Rules: face point = centroid; interior edge point = (ends + adjacent face points) / 4; boundary
//! edge point = midpoint; interior vertex of valence k: (F + 2R + (k − 3)P) / k with F the mean of
//! adjacent face points and R the mean of incident edge midpoints; boundary vertex: (3/4)P + (1/8)
//! (its two boundary neighbours). Sums run in rotation/loop order from each element's stored
//! half-edge, so the result is bit-identical everywhere.

use crate::error::{Result, invalid_param};
use crate::ids::{FaceId, IdAlloc};
use crate::math::Vec3;
use crate::mesh::{Mesh, NONE};
use crate::polygons::Polygons;

/// The most Catmull–Clark levels one call accepts (each level multiplies faces by about four).
pub const MAX_SUBDIVISION_LEVELS: u32 = 6;

impl Mesh {
    /// Applies `levels` rounds of Catmull–Clark subdivision. Original vertices keep their ids (and
    /// move); each face's first child quad keeps the face's id and material.
    ///
    /// Ids per level: edge points in edge order, face points in face order, then for each face (in
    /// order) ids for its child quads after the first.
    pub fn subdivide(&mut self, levels: u32, alloc: &mut impl IdAlloc) -> Result<()> {
        if !(1..=MAX_SUBDIVISION_LEVELS).contains(&levels) {
            return Err(invalid_param(
                "levels",
                format!("{levels} is outside 1..={MAX_SUBDIVISION_LEVELS}"),
            ));
        }
        if self.fid.is_empty() {
            return Err(crate::MeshError::EmptySelection);
        }
        let mut m = self.clone();
        for _ in 0..levels {
            m = catmull_clark(&m, alloc)?;
        }
        *self = m;
        Ok(())
    }
}

fn catmull_clark(m: &Mesh, alloc: &mut impl IdAlloc) -> Result<Mesh> {
    let nv = m.vid.len();
    let nh = m.hnext.len();
    let ne = nh / 2;
    let nf = m.fid.len();
    // Face points and face degrees.
    let mut fpt = Vec::with_capacity(nf);
    let mut corners = 0usize;
    for f in 0..nf {
        let start = m.fhe[f];
        let mut h = start;
        let mut sum = Vec3::ZERO;
        let mut k = 0u32;
        loop {
            sum += m.vpos[m.horigin[h as usize] as usize];
            k += 1;
            h = m.hnext[h as usize];
            if h == start {
                break;
            }
        }
        corners += k as usize;
        fpt.push(sum / k as f32);
    }
    // Edge points.
    let mut ept = Vec::with_capacity(ne);
    for e in 0..ne {
        let (h, t) = (2 * e, 2 * e + 1);
        let a = m.vpos[m.horigin[h] as usize];
        let b = m.vpos[m.horigin[t] as usize];
        let (fa, fb) = (m.hface[h], m.hface[t]);
        if fa == NONE || fb == NONE {
            ept.push((a + b) * 0.5);
        } else {
            ept.push(((a + b) + (fpt[fa as usize] + fpt[fb as usize])) * 0.25);
        }
    }
    // Vertex points.
    let mut vpt = Vec::with_capacity(nv);
    for v in 0..nv {
        let p = m.vpos[v];
        let start = m.vhe[v];
        if m.hface[start as usize] == NONE {
            // Boundary: neighbours along the boundary are dest(start) and the origin of the boundary
            // half-edge that arrives here, which is the twin of the last outgoing half-edge.
            let next = m.vpos[m.dest_slot(start) as usize];
            let mut h = start;
            let mut last = start;
            loop {
                let n = m.hnext[(h ^ 1) as usize];
                if n == start {
                    break;
                }
                last = n;
                h = n;
            }
            let prev = m.vpos[m.dest_slot(last) as usize];
            vpt.push(p * 0.75 + (prev + next) * 0.125);
            continue;
        }
        let mut fsum = Vec3::ZERO;
        let mut rsum = Vec3::ZERO;
        let mut k = 0u32;
        let mut h = start;
        loop {
            fsum += fpt[m.hface[h as usize] as usize];
            rsum += (p + m.vpos[m.dest_slot(h) as usize]) * 0.5;
            k += 1;
            h = m.hnext[(h ^ 1) as usize];
            if h == start {
                break;
            }
        }
        let kf = k as f32;
        vpt.push(((fsum / kf + (rsum / kf) * 2.0) + p * (kf - 3.0)) / kf);
    }
    // New face list: vertex points, then edge points, then face points.
    let mut out = Polygons::with_capacity(nv + ne + nf, corners, corners * 4);
    out.vertex_ids.extend_from_slice(&m.vid);
    out.positions.extend_from_slice(&vpt);
    for &p in &ept {
        let id = alloc.vertex();
        out.vertex_ids.push(id);
        out.positions.push(p);
    }
    for &p in &fpt {
        let id = alloc.vertex();
        out.vertex_ids.push(id);
        out.positions.push(p);
    }
    let ebase = nv as u32;
    let fbase = (nv + ne) as u32;
    for f in 0..nf {
        let start = m.fhe[f];
        let mut h = start;
        let mat = m.fmat[f];
        let mut first = true;
        let mut prev = m.prev_in_face(start);
        loop {
            let quad = [
                m.horigin[h as usize],
                ebase + (h >> 1),
                fbase + f as u32,
                ebase + (prev >> 1),
            ];
            let id: FaceId = if first { m.fid[f] } else { alloc.face() };
            first = false;
            prev = h;
            out.face_ids.push(id);
            out.materials.push(mat);
            out.corners.extend_from_slice(&quad);
            out.face_start.push(out.corners.len() as u32);
            h = m.hnext[h as usize];
            if h == start {
                break;
            }
        }
    }
    Mesh::from_polygons(&out)
}

impl Mesh {
    /// Previous half-edge within a face loop, by walking the loop (faces are small).
    pub(crate) fn prev_in_face(&self, h: u32) -> u32 {
        let mut g = h;
        loop {
            let n = self.hnext[g as usize];
            if n == h {
                return g;
            }
            g = n;
        }
    }
}
