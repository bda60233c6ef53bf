//! Triangulation with flat normals, for rendering, picking and export.
//!
//! Each face is cut into triangles that keep its winding: convex faces (the common case) as a fan,
//! concave ones by ear clipping in the face's plane. Output is flat-shaded: every face gets its own
//! copies of its corners, all carrying the face normal (Newell's method).

use crate::ids::FaceId;
use crate::math::Vec3;
use crate::mesh::{Mesh, newell};

/// A flat-shaded triangle list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Triangles {
    /// Corner positions (each face has its own copies).
    pub positions: Vec<[f32; 3]>,
    /// Per-corner normal: the face normal.
    pub normals: Vec<[f32; 3]>,
    /// Three indices into `positions` per triangle, counter-clockwise seen from outside.
    pub indices: Vec<u32>,
    /// For each triangle, the index (storage order) of the face it came from.
    pub triangle_face: Vec<u32>,
    /// For each face (storage order), the first of its corners in `positions`.
    pub face_first_corner: Vec<u32>,
    /// For each corner, the storage index of the mesh vertex it copies: corners with the same
    /// entry sit at the same position, so a renderer that shades each face at one corner can
    /// share the rest.
    pub corner_vertex: Vec<u32>,
}

impl Triangles {
    /// Number of triangles.
    pub fn triangle_count(&self) -> usize {
        self.indices.len() / 3
    }
}

/// Projects 3D points onto the plane with normal `n` as 2D points with the same winding.
fn project(n: Vec3, p: Vec3) -> (f32, f32) {
    let (ax, ay, az) = (n.x.abs(), n.y.abs(), n.z.abs());
    if az >= ax && az >= ay {
        if n.z >= 0.0 { (p.x, p.y) } else { (p.y, p.x) }
    } else if ax >= ay {
        if n.x >= 0.0 { (p.y, p.z) } else { (p.z, p.y) }
    } else if n.y >= 0.0 {
        (p.z, p.x)
    } else {
        (p.x, p.z)
    }
}

fn cross2(o: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Triangulates one polygon given by its corners; appends corner-index triples (into `points`) to
/// `out`. `normal` is the polygon's (unnormalised is fine) normal. Convex polygons become a fan;
/// concave ones are ear-clipped. Always emits `points.len() - 2` triangles.
pub fn triangulate_polygon(points: &[Vec3], normal: Vec3, out: &mut Vec<[u32; 3]>) {
    let n = points.len();
    if n < 3 {
        return;
    }
    if n == 3 {
        out.push([0, 1, 2]);
        return;
    }
    // Small faces (nearly all of them) project onto the stack: no allocation per face.
    let mut small = [(0.0f32, 0.0f32); 8];
    let mut big = Vec::new();
    let p2: &mut [(f32, f32)] = if n <= small.len() {
        &mut small[..n]
    } else {
        big.resize(n, (0.0, 0.0));
        &mut big
    };
    for (q, &p) in p2.iter_mut().zip(points) {
        *q = project(normal, p);
    }
    let p2 = &*p2;
    let convex = (0..n).all(|i| cross2(p2[(i + n - 1) % n], p2[i], p2[(i + 1) % n]) >= 0.0);
    if convex {
        for i in 1..n - 1 {
            out.push([0, i as u32, i as u32 + 1]);
        }
        return;
    }
    ear_clip(p2, out);
}

fn ear_clip(p: &[(f32, f32)], out: &mut Vec<[u32; 3]>) {
    let mut idx: Vec<u32> = (0..p.len() as u32).collect();
    // The search resumes where the last ear was cut, which keeps typical faces near O(n²).
    let mut cursor = 0usize;
    while idx.len() > 3 {
        let m = idx.len();
        let mut clipped = false;
        for step in 0..m {
            let i = (cursor + step) % m;
            let (a, b, c) = (idx[(i + m - 1) % m], idx[i], idx[(i + 1) % m]);
            let (pa, pb, pc) = (p[a as usize], p[b as usize], p[c as usize]);
            if cross2(pa, pb, pc) <= 0.0 {
                continue;
            }
            let blocked = idx.iter().any(|&q| {
                if q == a || q == b || q == c {
                    return false;
                }
                let pq = p[q as usize];
                if pq == pa || pq == pb || pq == pc {
                    return false;
                }
                cross2(pa, pb, pq) >= 0.0 && cross2(pb, pc, pq) >= 0.0 && cross2(pc, pa, pq) >= 0.0
            });
            if !blocked {
                out.push([a, b, c]);
                idx.remove(i);
                cursor = if i == 0 { 0 } else { i - 1 };
                clipped = true;
                break;
            }
        }
        if !clipped {
            // Self-intersecting or degenerate outline: no proper ear exists. Clip the corner with
            // the largest turn so the output still covers the face with the right triangle count.
            let mut best = 0;
            let mut best_turn = f32::NEG_INFINITY;
            for i in 0..m {
                let t = cross2(
                    p[idx[(i + m - 1) % m] as usize],
                    p[idx[i] as usize],
                    p[idx[(i + 1) % m] as usize],
                );
                if t > best_turn {
                    best_turn = t;
                    best = i;
                }
            }
            out.push([idx[(best + m - 1) % m], idx[best], idx[(best + 1) % m]]);
            idx.remove(best);
        }
    }
    out.push([idx[0], idx[1], idx[2]]);
}

impl Mesh {
    /// Triangulates every face with flat normals (see the module docs).
    pub fn triangulate(&self) -> Triangles {
        let nh = self.hnext.len();
        let nf = self.fid.len();
        let corners = nh
            - self
                .hface
                .iter()
                .filter(|&&f| f == crate::mesh::NONE)
                .count();
        let mut t = Triangles {
            positions: Vec::with_capacity(corners),
            normals: Vec::with_capacity(corners),
            indices: Vec::with_capacity((corners - 2 * nf.min(corners / 3)) * 3),
            triangle_face: Vec::with_capacity(corners - 2 * nf.min(corners / 3)),
            face_first_corner: Vec::with_capacity(nf),
            corner_vertex: Vec::with_capacity(corners),
        };
        let mut pts: Vec<Vec3> = Vec::with_capacity(8);
        let mut verts: Vec<u32> = Vec::with_capacity(8);
        let mut tris: Vec<[u32; 3]> = Vec::with_capacity(8);
        for f in 0..nf {
            pts.clear();
            verts.clear();
            let start = self.fhe[f];
            let mut h = start;
            loop {
                let v = self.horigin[h as usize];
                verts.push(v);
                pts.push(self.vpos[v as usize]);
                h = self.hnext[h as usize];
                if h == start {
                    break;
                }
            }
            let raw = newell(pts.iter().copied());
            let normal = raw.normalized().unwrap_or(Vec3::ZERO);
            let base = t.positions.len() as u32;
            t.face_first_corner.push(base);
            for p in &pts {
                t.positions.push(p.to_array());
                t.normals.push(normal.to_array());
            }
            t.corner_vertex.extend_from_slice(&verts);
            tris.clear();
            triangulate_polygon(&pts, raw, &mut tris);
            for tri in &tris {
                t.indices
                    .extend_from_slice(&[base + tri[0], base + tri[1], base + tri[2]]);
                t.triangle_face.push(f as u32);
            }
        }
        t
    }

    /// The face id for a `Triangles::triangle_face` entry.
    pub fn face_at(&self, storage_index: u32) -> Option<FaceId> {
        self.fid.get(storage_index as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area2(p: &[Vec3], tris: &[[u32; 3]]) -> f32 {
        tris.iter()
            .map(|t| {
                let (a, b, c) = (p[t[0] as usize], p[t[1] as usize], p[t[2] as usize]);
                (b - a).cross(c - a).z
            })
            .sum()
    }

    #[test]
    fn concave_polygon_keeps_area_and_winding() {
        // An L shape, counter-clockwise in the XY plane; its doubled area is 2 * 3 = 6.
        let p: Vec<Vec3> = [(0., 0.), (2., 0.), (2., 1.), (1., 1.), (1., 2.), (0., 2.)]
            .iter()
            .map(|&(x, y)| Vec3::new(x, y, 0.0))
            .collect();
        let mut out = Vec::new();
        triangulate_polygon(&p, Vec3::Z, &mut out);
        assert_eq!(out.len(), 4);
        assert!((area2(&p, &out) - 6.0).abs() < 1e-5);
        for t in &out {
            let (a, b, c) = (p[t[0] as usize], p[t[1] as usize], p[t[2] as usize]);
            assert!((b - a).cross(c - a).z > 0.0, "triangle {t:?} flipped");
        }
    }

    #[test]
    fn concave_star_is_clipped_without_flips() {
        let mut p = Vec::new();
        for i in 0..10 {
            let r = if i % 2 == 0 { 2.0 } else { 0.7 };
            let a = std::f64::consts::PI * 2.0 * f64::from(i) / 10.0;
            p.push(Vec3::new(
                (r * libm::cos(a)) as f32,
                (r * libm::sin(a)) as f32,
                0.0,
            ));
        }
        let mut out = Vec::new();
        triangulate_polygon(&p, Vec3::Z, &mut out);
        assert_eq!(out.len(), 8);
        for t in &out {
            let (a, b, c) = (p[t[0] as usize], p[t[1] as usize], p[t[2] as usize]);
            assert!((b - a).cross(c - a).z > 0.0, "triangle {t:?} flipped");
        }
    }

    #[test]
    fn corners_name_the_mesh_vertex_they_copy() {
        use crate::{MaterialId, Primitive, SeqIds};
        let m = Primitive::Cuboid { size: Vec3::ONE }
            .build(&mut SeqIds::default(), MaterialId(0))
            .unwrap();
        let t = m.triangulate();
        assert_eq!(t.corner_vertex.len(), t.positions.len());
        // 24 corners of 8 vertices, 3 each, and every copy at its vertex's position.
        let mut seen = std::collections::BTreeMap::new();
        for (c, &v) in t.corner_vertex.iter().enumerate() {
            let at = seen.entry(v).or_insert((t.positions[c], 0));
            assert_eq!(
                at.0, t.positions[c],
                "corner {c} is not where vertex {v} is"
            );
            at.1 += 1;
        }
        assert_eq!(seen.len(), 8);
        assert!(seen.values().all(|&(_, n)| n == 3));
    }
}
