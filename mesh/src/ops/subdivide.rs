//! Catmull–Clark subdivision for n-gon meshes with boundaries.
//!
//! Rules: face point = centroid; interior edge point = (ends + adjacent face points) / 4; boundary
//! edge point = midpoint; interior vertex of valence k: (F + 2R + (k − 3)P) / k with F the mean of
//! adjacent face points and R the mean of incident edge midpoints; boundary vertex: (3/4)P + (1/8)
//! (its two boundary neighbours). Sums run in rotation/loop order from each element's stored
//! half-edge, so the result is bit-identical everywhere.

use crate::error::{Result, invalid_param};
use crate::ids::IdAlloc;
use crate::math::Vec3;
use crate::mesh::{Mesh, NONE, OwnedRawMesh};

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
        let mut m = catmull_clark(self, alloc)?;
        for _ in 1..levels {
            m = catmull_clark(&m, alloc)?;
        }
        *self = m;
        Ok(())
    }
}

fn catmull_clark(m: &Mesh, alloc: &mut impl IdAlloc) -> Result<Mesh> {
    let points = points(m, alloc);
    direct_assembly(m, points, alloc)
}

/// The new vertices of one level, and where each old face's corners start in corner order.
struct Points {
    /// Old vertex ids, then edge points', then face points'.
    vid: Vec<crate::ids::VertexId>,
    /// Their positions.
    vpos: Vec<Vec3>,
    /// Face `f`'s corners are `first_corner[f]..first_corner[f + 1]` (one entry per face, plus
    /// the total).
    first_corner: Vec<u32>,
}

/// Face, edge and vertex points, and the ids of the new ones (see the module docs).
fn points(m: &Mesh, alloc: &mut impl IdAlloc) -> Points {
    let nv = m.vid.len();
    let nh = m.hnext.len();
    let ne = nh / 2;
    let nf = m.fid.len();
    // Face points and face degrees.
    let mut fpt = Vec::with_capacity(nf);
    let mut first_corner = Vec::with_capacity(nf + 1);
    let mut corners = 0u32;
    for f in 0..nf {
        first_corner.push(corners);
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
        corners += k;
        fpt.push(sum / k as f32);
    }
    first_corner.push(corners);
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
    // Ids: edge points, face points, then each face's child quads after the first.
    let mut vid = Vec::with_capacity(nv + ne + nf);
    vid.extend_from_slice(&m.vid);
    for _ in 0..ne + nf {
        vid.push(alloc.vertex());
    }
    let mut vpos = vpt;
    vpos.reserve(ne + nf);
    vpos.extend_from_slice(&ept);
    vpos.extend_from_slice(&fpt);
    Points {
        vid,
        vpos,
        first_corner,
    }
}

/// Builds the subdivided connectivity directly, without the general builder: the result's topology
/// is known in closed form. Old edge `e` (half-edges `2e`, `2e+1`) becomes two edges: half-edges
/// `4e..4e+4`, so that the first half of old half-edge `h` is `first(h)` and the second `second(h)`,
/// with twins still `x ^ 1`. Face corner `k` (old face half-edges in face and loop order) gets a
/// spoke from its edge point to its face point, half-edges `4E + 2k` (out) and `4E + 2k + 1` (in),
/// and becomes child quad `k`: `first(h) → spoke_out(k) → spoke_in(k − 1) → second(prev(h))`.
/// Vertices, faces and loops equal those the general builder makes from the same face list (a
/// test checks this against [`reference_assembly`]).
fn direct_assembly(m: &Mesh, points: Points, alloc: &mut impl IdAlloc) -> Result<Mesh> {
    let Points {
        vid,
        vpos,
        first_corner,
    } = points;
    let corners = first_corner[first_corner.len() - 1] as usize;
    let nv = m.vid.len();
    let nh = m.hnext.len();
    let ne = nh / 2;
    let nf = m.fid.len();
    let first = |h: u32| if h & 1 == 0 { 2 * h } else { 2 * h + 1 };
    let second = |h: u32| if h & 1 == 0 { 2 * h + 2 } else { 2 * h - 1 };
    let spokes = 4 * ne as u32;
    let nh2 = 4 * ne + 2 * corners;
    let mut hnext = vec![NONE; nh2];
    let mut horigin = vec![0u32; nh2];
    let mut hface = vec![NONE; nh2];
    let mut fid = Vec::with_capacity(corners);
    let mut fhe = Vec::with_capacity(corners);
    let mut fmat = Vec::with_capacity(corners);
    let ebase = nv as u32;
    let fbase = (nv + ne) as u32;
    // Halves of every old edge: origins, and the boundary links.
    for h in 0..nh as u32 {
        horigin[first(h) as usize] = m.horigin[h as usize];
        horigin[second(h) as usize] = ebase + (h >> 1);
        if m.hface[h as usize] == NONE {
            hnext[first(h) as usize] = second(h);
            hnext[second(h) as usize] = first(m.hnext[h as usize]);
        }
    }
    // Child quads, corner by corner.
    for f in 0..nf {
        let start = m.fhe[f];
        let k0 = first_corner[f];
        let deg = first_corner[f + 1] - k0;
        let mat = m.fmat[f];
        let fp = fbase + f as u32;
        let mut h = start;
        let mut g = m.prev_slot(start);
        for i in 0..deg {
            let kc = k0 + i;
            let kprev = if i == 0 { k0 + deg - 1 } else { kc - 1 };
            let (a, b, c, d) = (first(h), spokes + 2 * kc, spokes + 2 * kprev + 1, second(g));
            hnext[a as usize] = b;
            hnext[b as usize] = c;
            hnext[c as usize] = d;
            hnext[d as usize] = a;
            for x in [a, b, c, d] {
                hface[x as usize] = kc;
            }
            horigin[b as usize] = ebase + (h >> 1);
            horigin[c as usize] = fp;
            fid.push(if i == 0 { m.fid[f] } else { alloc.face() });
            fhe.push(a);
            fmat.push(mat);
            g = h;
            h = m.hnext[h as usize];
        }
    }
    // One outgoing half-edge per vertex, the boundary one where there is one.
    let mut vhe = Vec::with_capacity(nv + ne + nf);
    for v in 0..nv {
        vhe.push(first(m.vhe[v]));
    }
    for e in 0..ne as u32 {
        let h = 2 * e;
        vhe.push(if m.hface[(h + 1) as usize] == NONE {
            second(h + 1)
        } else {
            second(h)
        });
    }
    for &k in &first_corner[..nf] {
        vhe.push(spokes + 2 * k + 1);
    }
    Mesh::from_parts(
        OwnedRawMesh {
            vertex_ids: vid,
            positions: vpos,
            vertex_half_edges: vhe,
            next: hnext,
            origins: horigin,
            half_edge_faces: hface,
            face_ids: fid,
            face_half_edges: fhe,
            materials: fmat,
        },
        Some(m),
    )
}

/// The same subdivision through the general builder: the reference the direct assembly is tested
/// against.
#[cfg(test)]
fn reference_assembly(m: &Mesh, points: Points, alloc: &mut impl IdAlloc) -> Result<Mesh> {
    use crate::ids::FaceId;
    use crate::polygons::Polygons;
    let Points {
        vid,
        vpos,
        first_corner,
    } = points;
    let corners = first_corner[first_corner.len() - 1] as usize;
    let nv = m.vid.len();
    let ne = m.hnext.len() / 2;
    let nf = m.fid.len();
    let mut out = Polygons::with_capacity(0, corners, corners * 4);
    out.vertex_ids = vid;
    out.positions = vpos;
    let ebase = nv as u32;
    let fbase = (nv + ne) as u32;
    for f in 0..nf {
        let start = m.fhe[f];
        let mut h = start;
        let mat = m.fmat[f];
        let mut first = true;
        let mut prev = m.prev_slot(start);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaterialId, Primitive, SeqIds};

    #[test]
    fn direct_assembly_matches_the_general_builder() {
        let mut open = Primitive::Grid {
            size_x: 2.0,
            size_z: 1.0,
            cells_x: 3,
            cells_z: 2,
        }
        .build(&mut SeqIds::new(1), MaterialId(0))
        .unwrap();
        let f = open.faces().next().unwrap();
        open.delete_faces(&[f], &mut SeqIds::new(500)).unwrap();
        let meshes = [
            Primitive::Cuboid { size: Vec3::ONE }
                .build(&mut SeqIds::new(1), MaterialId(0))
                .unwrap(),
            Primitive::Cone {
                radius: 1.0,
                height: 1.0,
                segments: 7,
            }
            .build(&mut SeqIds::new(1), MaterialId(2))
            .unwrap(),
            Primitive::Torus {
                major_radius: 2.0,
                minor_radius: 0.5,
                major_segments: 5,
                minor_segments: 3,
            }
            .build(&mut SeqIds::new(1), MaterialId(0))
            .unwrap(),
            open,
        ];
        for m in meshes {
            let a = catmull_clark(&m, &mut SeqIds::new(1000)).unwrap();
            let mut ids = SeqIds::new(1000);
            let p = points(&m, &mut ids);
            let b = reference_assembly(&m, p, &mut ids).unwrap();
            a.validate().unwrap();
            b.validate().unwrap();
            assert_eq!(a.to_polygons(), b.to_polygons());
            for v in a.vertices() {
                assert_eq!(a.is_boundary_vertex(v), b.is_boundary_vertex(v));
            }
        }
    }
}
