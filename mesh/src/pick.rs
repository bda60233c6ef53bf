//! Ray picking: which vertex, edge or face lies under a ray, accelerated by a BVH over triangles.
//!
//! The BVH is built once per mesh state from the triangulation (binned surface-area heuristic, up to
//! four triangles per leaf) and answers nearest-hit queries by front-to-back traversal. A hit on a face
//! snaps to a corner or an edge of that face when the hit point lies within `snap` of it, which is how
//! a tool selects vertices and edges with a controller ray.

use crate::ids::{FaceId, HalfEdgeId, VertexId};
use crate::math::{Aabb, Vec3};
use crate::mesh::Mesh;

/// A ray `origin + t * dir`, `t ≥ 0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ray {
    /// Start point.
    pub origin: Vec3,
    /// Direction (need not be unit length; `t` is in units of it).
    pub dir: Vec3,
}

/// What a pick selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickElement {
    /// A corner of the hit face, within `snap` of the hit point.
    Vertex(VertexId),
    /// An edge of the hit face (the half-edge on the hit face's side), within `snap`.
    Edge(HalfEdgeId),
    /// The face itself.
    Face(FaceId),
}

/// The nearest hit of a ray.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pick {
    /// The face that was hit.
    pub face: FaceId,
    /// The element selected (vertex, edge or face).
    pub element: PickElement,
    /// Ray parameter of the hit.
    pub t: f32,
    /// Hit point.
    pub point: Vec3,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    bounds: Aabb,
    /// Leaf: first triangle; inner: index of the left child (the right child follows it).
    first: u32,
    /// Leaf: number of triangles; inner: 0.
    count: u32,
}

/// A bounding volume hierarchy over a mesh's triangles, valid for the mesh state it was built from.
#[derive(Clone, Debug, Default)]
pub struct Bvh {
    nodes: Vec<Node>,
    tris: Vec<[Vec3; 3]>,
    tri_face: Vec<u32>,
}

const LEAF: usize = 4;
const BINS: usize = 12;

impl Bvh {
    /// Builds the hierarchy over the mesh's triangulation.
    pub fn build(mesh: &Mesh) -> Bvh {
        let t = mesh.triangulate();
        let n = t.triangle_count();
        let mut tris = Vec::with_capacity(n);
        for i in 0..n {
            let c = |k: usize| Vec3::from_array(t.positions[t.indices[3 * i + k] as usize]);
            tris.push([c(0), c(1), c(2)]);
        }
        let mut order: Vec<u32> = (0..n as u32).collect();
        let centroids: Vec<Vec3> = tris.iter().map(|t| (t[0] + t[1] + t[2]) / 3.0).collect();
        let boxes: Vec<Aabb> = tris
            .iter()
            .map(|t| {
                let mut b = Aabb::EMPTY;
                b.include(t[0]);
                b.include(t[1]);
                b.include(t[2]);
                b
            })
            .collect();
        let mut nodes = Vec::with_capacity(2 * n / LEAF + 1);
        nodes.push(Node {
            bounds: Aabb::EMPTY,
            first: 0,
            count: n as u32,
        });
        if n > 0 {
            let mut stack = vec![0usize];
            while let Some(ni) = stack.pop() {
                let (first, count) = (nodes[ni].first as usize, nodes[ni].count as usize);
                let range = &mut order[first..first + count];
                let mut bounds = Aabb::EMPTY;
                let mut cb = Aabb::EMPTY;
                for &i in range.iter() {
                    bounds = bounds.union(boxes[i as usize]);
                    cb.include(centroids[i as usize]);
                }
                nodes[ni].bounds = bounds;
                if count <= LEAF {
                    continue;
                }
                let Some(mid) = split(range, &centroids, &boxes, cb) else {
                    continue;
                };
                let left = nodes.len();
                nodes.push(Node {
                    bounds: Aabb::EMPTY,
                    first: first as u32,
                    count: mid as u32,
                });
                nodes.push(Node {
                    bounds: Aabb::EMPTY,
                    first: (first + mid) as u32,
                    count: (count - mid) as u32,
                });
                nodes[ni] = Node {
                    bounds,
                    first: left as u32,
                    count: 0,
                };
                stack.push(left + 1);
                stack.push(left);
            }
        }
        let tris_sorted = order.iter().map(|&i| tris[i as usize]).collect();
        let tri_face = order.iter().map(|&i| t.triangle_face[i as usize]).collect();
        Bvh {
            nodes,
            tris: tris_sorted,
            tri_face,
        }
    }

    /// Number of triangles indexed.
    pub fn triangle_count(&self) -> usize {
        self.tris.len()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.tris.capacity() * std::mem::size_of::<[Vec3; 3]>()
            + self.tri_face.capacity() * 4
    }

    /// Nearest hit: (ray parameter, face storage index).
    pub fn intersect(&self, ray: Ray) -> Option<(f32, u32)> {
        if self.tris.is_empty() {
            return None;
        }
        let inv = Vec3::new(1.0 / ray.dir.x, 1.0 / ray.dir.y, 1.0 / ray.dir.z);
        let mut best: Option<(f32, u32)> = None;
        let mut best_t = f32::INFINITY;
        let mut stack = [0u32; 64];
        let mut sp = 0usize;
        slab(&self.nodes[0].bounds, ray.origin, ray.dir, inv, best_t)?;
        stack[sp] = 0;
        sp += 1;
        while sp > 0 {
            sp -= 1;
            let node = self.nodes[stack[sp] as usize];
            if node.count > 0 {
                for i in node.first..node.first + node.count {
                    if let Some(t) = ray_triangle(ray, &self.tris[i as usize])
                        && t < best_t
                    {
                        best_t = t;
                        best = Some((t, self.tri_face[i as usize]));
                    }
                }
                continue;
            }
            let (l, r) = (node.first, node.first + 1);
            let tl = slab(
                &self.nodes[l as usize].bounds,
                ray.origin,
                ray.dir,
                inv,
                best_t,
            );
            let tr = slab(
                &self.nodes[r as usize].bounds,
                ray.origin,
                ray.dir,
                inv,
                best_t,
            );
            // Push the farther child first so the nearer one is searched first.
            let mut push = |i: u32| {
                if sp < stack.len() {
                    stack[sp] = i;
                    sp += 1;
                }
            };
            match (tl, tr) {
                (Some(a), Some(b)) if a <= b => {
                    push(r);
                    push(l);
                }
                (Some(_), Some(_)) => {
                    push(l);
                    push(r);
                }
                (Some(_), None) => push(l),
                (None, Some(_)) => push(r),
                (None, None) => {}
            }
        }
        best
    }

    /// Nearest hit by testing every triangle (for tests and tiny meshes).
    pub fn intersect_brute_force(&self, ray: Ray) -> Option<(f32, u32)> {
        let mut best: Option<(f32, u32)> = None;
        for (i, tri) in self.tris.iter().enumerate() {
            if let Some(t) = ray_triangle(ray, tri)
                && best.is_none_or(|(bt, _)| t < bt)
            {
                best = Some((t, self.tri_face[i]));
            }
        }
        best
    }
}

/// Splits by the binned surface-area heuristic along the widest centroid axis; returns the size of
/// the left part, or `None` to keep a leaf.
fn split(range: &mut [u32], centroids: &[Vec3], boxes: &[Aabb], cb: Aabb) -> Option<usize> {
    let size = cb.size();
    let axis = if size.x >= size.y && size.x >= size.z {
        0
    } else if size.y >= size.z {
        1
    } else {
        2
    };
    let lo = cb.min.axis(axis);
    let extent = size.axis(axis);
    if extent <= 0.0 || !extent.is_finite() {
        // All centroids coincide: split in half by position in the list.
        let mid = range.len() / 2;
        return (mid > 0).then_some(mid);
    }
    let bin_of = |i: u32| {
        let b = ((centroids[i as usize].axis(axis) - lo) / extent * BINS as f32) as usize;
        b.min(BINS - 1)
    };
    let mut counts = [0usize; BINS];
    let mut bb = [Aabb::EMPTY; BINS];
    for &i in range.iter() {
        let b = bin_of(i);
        counts[b] += 1;
        bb[b] = bb[b].union(boxes[i as usize]);
    }
    let mut best_cost = f32::INFINITY;
    let mut best_bin = 0;
    let mut left_area = [0.0f32; BINS];
    let mut left_count = [0usize; BINS];
    let mut acc = Aabb::EMPTY;
    let mut n = 0;
    for b in 0..BINS - 1 {
        acc = acc.union(bb[b]);
        n += counts[b];
        left_area[b] = acc.surface_area();
        left_count[b] = n;
    }
    acc = Aabb::EMPTY;
    n = 0;
    for b in (1..BINS).rev() {
        acc = acc.union(bb[b]);
        n += counts[b];
        let cost = left_area[b - 1] * left_count[b - 1] as f32 + acc.surface_area() * n as f32;
        if left_count[b - 1] > 0 && n > 0 && cost < best_cost {
            best_cost = cost;
            best_bin = b;
        }
    }
    if best_cost == f32::INFINITY {
        let mid = range.len() / 2;
        return (mid > 0).then_some(mid);
    }
    // Stable partition keeps the build deterministic without relying on sort internals.
    let (mut left, mut right): (Vec<u32>, Vec<u32>) =
        range.iter().partition(|&&i| bin_of(i) < best_bin);
    let mid = left.len();
    left.append(&mut right);
    range.copy_from_slice(&left);
    Some(mid)
}

/// Ray–box overlap: the entry parameter, or `None`. Axes along which the ray does not move are
/// tested directly (origin inside the slab, faces included) rather than through `1 / 0`, whose
/// infinities turn into NaN on a box face and, with a negative zero direction, would wrongly reject
/// a ray running along the face.
fn slab(b: &Aabb, o: Vec3, dir: Vec3, inv: Vec3, t_max: f32) -> Option<f32> {
    let mut t0 = 0.0f32;
    let mut t1 = t_max;
    for k in 0..3 {
        let (o, d, inv) = (o.axis(k), dir.axis(k), inv.axis(k));
        let (lo, hi) = (b.min.axis(k), b.max.axis(k));
        if d == 0.0 {
            if o < lo || o > hi {
                return None;
            }
            continue;
        }
        let mut ta = (lo - o) * inv;
        let mut tb = (hi - o) * inv;
        if ta > tb {
            std::mem::swap(&mut ta, &mut tb);
        }
        if ta > t0 {
            t0 = ta;
        }
        if tb < t1 {
            t1 = tb;
        }
        if t0 > t1 {
            return None;
        }
    }
    Some(t0)
}

/// Möller–Trumbore; hits from either side count (a pick sees back faces of open meshes too).
fn ray_triangle(ray: Ray, t: &[Vec3; 3]) -> Option<f32> {
    let e1 = t[1] - t[0];
    let e2 = t[2] - t[0];
    let p = ray.dir.cross(e2);
    let det = e1.dot(p);
    if det == 0.0 || !det.is_finite() {
        return None;
    }
    let inv = 1.0 / det;
    let s = ray.origin - t[0];
    let u = s.dot(p) * inv;
    if !(0.0..=1.0).contains(&u) {
        return None;
    }
    let q = s.cross(e1);
    let v = ray.dir.dot(q) * inv;
    if v < 0.0 || u + v > 1.0 {
        return None;
    }
    let dist = e2.dot(q) * inv;
    (dist >= 0.0).then_some(dist)
}

fn point_segment_distance(p: Vec3, a: Vec3, b: Vec3) -> f32 {
    let ab = b - a;
    let len2 = ab.length_squared();
    let t = if len2 > 0.0 {
        ((p - a).dot(ab) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    p.distance(a + ab * t)
}

impl Mesh {
    /// The nearest element under the ray: a corner of the hit face within `snap` of the hit point,
    /// else an edge within `snap`, else the face. `bvh` must be built from this mesh state.
    pub fn pick(&self, bvh: &Bvh, ray: Ray, snap: f32) -> Option<Pick> {
        let (t, f) = bvh.intersect(ray)?;
        if f as usize >= self.fid.len() {
            return None;
        }
        let point = ray.origin + ray.dir * t;
        let hs = self.face_he_slots(f);
        let face = self.fid[f as usize];
        let mut element = PickElement::Face(face);
        let mut best = snap;
        for &h in &hs {
            let v = self.horigin[h as usize];
            let d = point.distance(self.vpos[v as usize]);
            if d <= best {
                best = d;
                element = PickElement::Vertex(self.vid[v as usize]);
            }
        }
        if !matches!(element, PickElement::Vertex(_)) {
            best = snap;
            for &h in &hs {
                let a = self.vpos[self.horigin[h as usize] as usize];
                let b = self.vpos[self.dest_slot(h) as usize];
                let d = point_segment_distance(point, a, b);
                if d <= best {
                    best = d;
                    element = PickElement::Edge(HalfEdgeId(h));
                }
            }
        }
        Some(Pick {
            face,
            element,
            t,
            point,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaterialId, Primitive, SeqIds};

    #[test]
    fn bvh_agrees_with_brute_force() {
        let m = Primitive::Icosphere {
            radius: 1.0,
            level: 3,
        }
        .build(&mut SeqIds::default(), MaterialId(0))
        .unwrap();
        let bvh = Bvh::build(&m);
        for i in 0..200 {
            let a = f64::from(i) * 0.37;
            let origin = Vec3::new(
                (3.0 * libm::cos(a)) as f32,
                (1.3 * libm::sin(a * 1.7)) as f32,
                (3.0 * libm::sin(a)) as f32,
            );
            let target = Vec3::new(0.1 * libm::sin(a * 3.1) as f32, 0.2, -0.1);
            let ray = Ray {
                origin,
                dir: target - origin,
            };
            assert_eq!(
                bvh.intersect(ray),
                bvh.intersect_brute_force(ray),
                "ray {i}"
            );
        }
    }

    #[test]
    fn axis_aligned_rays_through_vertices_and_edges_agree_with_brute_force() {
        // Rays along an axis, with negative-zero direction components, through grid vertices and
        // edge midpoints of a subdivided cube: the cases where slab tests meet 0 * inf.
        let mut m = Primitive::Cuboid {
            size: Vec3::new(2.0, 2.0, 2.0),
        }
        .build(&mut SeqIds::default(), MaterialId(0))
        .unwrap();
        m.subdivide(2, &mut SeqIds::new(1000)).unwrap();
        let bvh = Bvh::build(&m);
        let dirs = [-Vec3::X, -Vec3::Y, -Vec3::Z, Vec3::X, Vec3::Y, Vec3::Z];
        for d in dirs {
            for i in -4..=4 {
                for j in -4..=4 {
                    let (a, b) = (i as f32 * 0.25, j as f32 * 0.25);
                    let o = if d.x != 0.0 {
                        Vec3::new(-d.x * 5.0, a, b)
                    } else if d.y != 0.0 {
                        Vec3::new(a, -d.y * 5.0, b)
                    } else {
                        Vec3::new(a, b, -d.z * 5.0)
                    };
                    let ray = Ray { origin: o, dir: d };
                    let (x, y) = (bvh.intersect(ray), bvh.intersect_brute_force(ray));
                    assert_eq!(x.map(|h| h.0), y.map(|h| h.0), "ray {ray:?}");
                    if a.abs() <= 0.5 && b.abs() <= 0.5 {
                        assert!(
                            x.is_some(),
                            "a ray near the middle hits the rounded cube: {ray:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pick_snaps_to_vertex_edge_and_face() {
        let m = Primitive::Cuboid {
            size: Vec3::new(2.0, 2.0, 2.0),
        }
        .build(&mut SeqIds::default(), MaterialId(0))
        .unwrap();
        let bvh = Bvh::build(&m);
        let down = |x: f32, z: f32| Ray {
            origin: Vec3::new(x, 5.0, z),
            dir: Vec3::new(0.0, -1.0, 0.0),
        };
        let p = m.pick(&bvh, down(0.0, 0.0), 0.1).unwrap();
        assert!(matches!(p.element, PickElement::Face(_)));
        assert!((p.point.y - 1.0).abs() < 1e-6);
        let p = m.pick(&bvh, down(0.97, 0.98), 0.1).unwrap();
        match p.element {
            PickElement::Vertex(v) => assert_eq!(m.position(v).unwrap(), Vec3::new(1.0, 1.0, 1.0)),
            e => panic!("expected a vertex, got {e:?}"),
        }
        let p = m.pick(&bvh, down(0.97, 0.0), 0.1).unwrap();
        assert!(matches!(p.element, PickElement::Edge(_)));
        assert!(m.pick(&bvh, down(3.0, 0.0), 0.1).is_none());
    }
}
