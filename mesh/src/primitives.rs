//! Parametric primitives: box, pyramid, cylinder, cone, UV sphere, icosahedron, icosphere, torus and
//! grid. All are centred on the origin with +Y up and faces wound counter-clockwise seen from outside.
//!
//! Angles go through `libm` (a pure-software `sin`/`cos`), so every platform builds bit-identical
//! primitives. Ids are taken from the allocator in a fixed order: all vertices in the order documented
//! per primitive, then all faces.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use crate::error::{Result, invalid_param};
use crate::ids::{IdAlloc, MaterialId};
use crate::math::Vec3;
use crate::mesh::Mesh;
use crate::polygons::Polygons;

/// Largest segment count any round primitive accepts.
pub const MAX_SEGMENTS: u32 = 1024;
/// Largest subdivision count along one side of a grid.
pub const MAX_GRID: u32 = 4096;
/// Most subdivision levels of an icosphere (level 7 has 163,842 vertices).
pub const MAX_ICO_LEVEL: u32 = 7;

/// A primitive and its parameters, as a tool or a command names it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Primitive {
    /// Axis-aligned box of the given size.
    Cuboid {
        /// Edge lengths along x, y, z.
        size: Vec3,
    },
    /// Pyramid with a regular `sides`-gon base of apothem `base/2` (a square of side `base` for 4).
    Pyramid {
        /// Base width.
        base: f32,
        /// Height.
        height: f32,
        /// Number of base edges.
        sides: u32,
    },
    /// Cylinder along Y.
    Cylinder {
        /// Radius.
        radius: f32,
        /// Height.
        height: f32,
        /// Segments around.
        segments: u32,
    },
    /// Cone along Y, apex up.
    Cone {
        /// Base radius.
        radius: f32,
        /// Height.
        height: f32,
        /// Segments around.
        segments: u32,
    },
    /// Latitude/longitude sphere: triangles at the poles, quads elsewhere.
    UvSphere {
        /// Radius.
        radius: f32,
        /// Segments around (longitude).
        segments: u32,
        /// Bands from pole to pole (latitude).
        rings: u32,
    },
    /// Regular icosahedron.
    Icosahedron {
        /// Circumradius.
        radius: f32,
    },
    /// Icosahedron subdivided `level` times and projected onto the sphere.
    Icosphere {
        /// Radius.
        radius: f32,
        /// Subdivision level (0 = icosahedron).
        level: u32,
    },
    /// Torus around Y.
    Torus {
        /// Distance from the centre to the tube's centre.
        major_radius: f32,
        /// Tube radius.
        minor_radius: f32,
        /// Segments around Y.
        major_segments: u32,
        /// Segments around the tube.
        minor_segments: u32,
    },
    /// Flat quad grid in the XZ plane facing +Y.
    Grid {
        /// Size along X.
        size_x: f32,
        /// Size along Z.
        size_z: f32,
        /// Quads along X.
        cells_x: u32,
        /// Quads along Z.
        cells_z: u32,
    },
}

fn positive(name: &'static str, v: f32) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(invalid_param(
            name,
            format!("{v} is not a positive finite number"),
        ))
    }
}

fn count(name: &'static str, v: u32, min: u32, max: u32) -> Result<()> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(invalid_param(name, format!("{v} is outside {min}..={max}")))
    }
}

fn angle(i: u32, n: u32, offset: f64) -> (f32, f32) {
    let t = 2.0 * PI * f64::from(i) / f64::from(n) + offset;
    (libm::cos(t) as f32, libm::sin(t) as f32)
}

struct Builder<'a, A: IdAlloc> {
    p: Polygons,
    alloc: &'a mut A,
    material: MaterialId,
    faces: Vec<Vec<u32>>,
}

impl<'a, A: IdAlloc> Builder<'a, A> {
    fn new(alloc: &'a mut A, material: MaterialId) -> Self {
        Builder {
            p: Polygons::new(),
            alloc,
            material,
            faces: Vec::new(),
        }
    }
    fn v(&mut self, p: Vec3) -> u32 {
        let id = self.alloc.vertex();
        self.p.add_vertex(id, p)
    }
    fn f(&mut self, c: &[u32]) {
        self.faces.push(c.to_vec());
    }
    fn finish(mut self) -> Result<Mesh> {
        for c in std::mem::take(&mut self.faces) {
            let id = self.alloc.face();
            self.p.add_face(id, self.material, &c);
        }
        Mesh::from_polygons(&self.p)
    }
}

impl Primitive {
    /// One primitive of each kind, small (a few hundred faces at most): for tests and examples
    /// across the workspace.
    pub fn samples() -> Vec<Primitive> {
        vec![
            Primitive::Cuboid {
                size: Vec3::new(1.0, 2.0, 3.0),
            },
            Primitive::Pyramid {
                base: 1.0,
                height: 1.0,
                sides: 4,
            },
            Primitive::Cylinder {
                radius: 1.0,
                height: 2.0,
                segments: 12,
            },
            Primitive::Cone {
                radius: 1.0,
                height: 2.0,
                segments: 7,
            },
            Primitive::UvSphere {
                radius: 1.0,
                segments: 8,
                rings: 5,
            },
            Primitive::Icosahedron { radius: 1.0 },
            Primitive::Icosphere {
                radius: 1.0,
                level: 2,
            },
            Primitive::Torus {
                major_radius: 2.0,
                minor_radius: 0.5,
                major_segments: 12,
                minor_segments: 6,
            },
            Primitive::Grid {
                size_x: 2.0,
                size_z: 1.0,
                cells_x: 3,
                cells_z: 2,
            },
        ]
    }
}

impl Primitive {
    /// Checks the parameters and builds the mesh.
    pub fn build(&self, alloc: &mut impl IdAlloc, material: MaterialId) -> Result<Mesh> {
        let mut b = Builder::new(alloc, material);
        match *self {
            Primitive::Cuboid { size } => {
                positive("size.x", size.x)?;
                positive("size.y", size.y)?;
                positive("size.z", size.z)?;
                let h = size * 0.5;
                // Vertex i has x = bit 0, y = bit 1, z = bit 2.
                for i in 0..8u32 {
                    let s = |bit: u32, e: f32| if i & bit != 0 { e } else { -e };
                    b.v(Vec3::new(s(1, h.x), s(2, h.y), s(4, h.z)));
                }
                for f in [
                    [1, 3, 7, 5],
                    [0, 4, 6, 2],
                    [2, 6, 7, 3],
                    [0, 1, 5, 4],
                    [4, 5, 7, 6],
                    [0, 2, 3, 1],
                ] {
                    b.f(&f);
                }
            }
            Primitive::Pyramid {
                base,
                height,
                sides,
            } => {
                positive("base", base)?;
                positive("height", height)?;
                count("sides", sides, 3, MAX_SEGMENTS)?;
                let apothem = f64::from(base) * 0.5;
                let radius = (apothem / libm::cos(PI / f64::from(sides))) as f32;
                cone(&mut b, radius, height, sides, PI / f64::from(sides));
            }
            Primitive::Cone {
                radius,
                height,
                segments,
            } => {
                positive("radius", radius)?;
                positive("height", height)?;
                count("segments", segments, 3, MAX_SEGMENTS)?;
                cone(&mut b, radius, height, segments, 0.0);
            }
            Primitive::Cylinder {
                radius,
                height,
                segments,
            } => {
                positive("radius", radius)?;
                positive("height", height)?;
                count("segments", segments, 3, MAX_SEGMENTS)?;
                let n = segments;
                // Bottom ring then top ring.
                for y in [-0.5 * height, 0.5 * height] {
                    for i in 0..n {
                        let (c, s) = angle(i, n, 0.0);
                        b.v(Vec3::new(radius * c, y, radius * s));
                    }
                }
                for i in 0..n {
                    let j = (i + 1) % n;
                    b.f(&[i, n + i, n + j, j]);
                }
                let top: Vec<u32> = (0..n).rev().map(|i| n + i).collect();
                let bottom: Vec<u32> = (0..n).collect();
                b.f(&top);
                b.f(&bottom);
            }
            Primitive::UvSphere {
                radius,
                segments,
                rings,
            } => {
                positive("radius", radius)?;
                count("segments", segments, 3, MAX_SEGMENTS)?;
                count("rings", rings, 2, MAX_SEGMENTS)?;
                let (s, r) = (segments, rings);
                let north = b.v(Vec3::new(0.0, radius, 0.0));
                for j in 1..r {
                    let phi = PI * f64::from(j) / f64::from(r);
                    let y = (f64::from(radius) * libm::cos(phi)) as f32;
                    let rho = (f64::from(radius) * libm::sin(phi)) as f32;
                    for i in 0..s {
                        let (c, sn) = angle(i, s, 0.0);
                        b.v(Vec3::new(rho * c, y, rho * sn));
                    }
                }
                let south = b.v(Vec3::new(0.0, -radius, 0.0));
                let ring = |j: u32, i: u32| 1 + (j - 1) * s + (i % s);
                for i in 0..s {
                    b.f(&[ring(1, i), north, ring(1, i + 1)]);
                }
                for j in 1..r - 1 {
                    for i in 0..s {
                        b.f(&[
                            ring(j + 1, i),
                            ring(j, i),
                            ring(j, i + 1),
                            ring(j + 1, i + 1),
                        ]);
                    }
                }
                for i in 0..s {
                    b.f(&[south, ring(r - 1, i), ring(r - 1, i + 1)]);
                }
            }
            Primitive::Icosahedron { radius } => {
                positive("radius", radius)?;
                let (pts, tris) = icosahedron();
                emit_sphere(&mut b, radius, &pts, &tris);
            }
            Primitive::Icosphere { radius, level } => {
                positive("radius", radius)?;
                count("level", level, 0, MAX_ICO_LEVEL)?;
                let (mut pts, mut tris) = icosahedron();
                for _ in 0..level {
                    let mut mid: BTreeMap<(u32, u32), u32> = BTreeMap::new();
                    let mut next = Vec::with_capacity(tris.len() * 4);
                    for t in &tris {
                        let mut m = [0u32; 3];
                        for k in 0..3 {
                            let (a, c) = (t[k], t[(k + 1) % 3]);
                            let key = (a.min(c), a.max(c));
                            m[k] = *mid.entry(key).or_insert_with(|| {
                                let p = (pts[a as usize] + pts[c as usize]) * 0.5;
                                pts.push(p.normalized().unwrap_or(p));
                                pts.len() as u32 - 1
                            });
                        }
                        next.push([t[0], m[0], m[2]]);
                        next.push([t[1], m[1], m[0]]);
                        next.push([t[2], m[2], m[1]]);
                        next.push([m[0], m[1], m[2]]);
                    }
                    tris = next;
                }
                emit_sphere(&mut b, radius, &pts, &tris);
            }
            Primitive::Torus {
                major_radius,
                minor_radius,
                major_segments,
                minor_segments,
            } => {
                positive("major_radius", major_radius)?;
                positive("minor_radius", minor_radius)?;
                if minor_radius >= major_radius {
                    return Err(invalid_param(
                        "minor_radius",
                        "must be smaller than major_radius (the tube would intersect itself)",
                    ));
                }
                count("major_segments", major_segments, 3, MAX_SEGMENTS)?;
                count("minor_segments", minor_segments, 3, MAX_SEGMENTS)?;
                let (mm, nn) = (major_segments, minor_segments);
                for i in 0..mm {
                    let (ct, st) = angle(i, mm, 0.0);
                    for j in 0..nn {
                        let (cp, sp) = angle(j, nn, 0.0);
                        let rr = major_radius + minor_radius * cp;
                        b.v(Vec3::new(rr * ct, minor_radius * sp, rr * st));
                    }
                }
                let idx = |i: u32, j: u32| (i % mm) * nn + (j % nn);
                for i in 0..mm {
                    for j in 0..nn {
                        b.f(&[idx(i, j), idx(i, j + 1), idx(i + 1, j + 1), idx(i + 1, j)]);
                    }
                }
            }
            Primitive::Grid {
                size_x,
                size_z,
                cells_x,
                cells_z,
            } => {
                positive("size_x", size_x)?;
                positive("size_z", size_z)?;
                count("cells_x", cells_x, 1, MAX_GRID)?;
                count("cells_z", cells_z, 1, MAX_GRID)?;
                for i in 0..=cells_x {
                    let x = -0.5 * size_x + size_x * (i as f32 / cells_x as f32);
                    for k in 0..=cells_z {
                        let z = -0.5 * size_z + size_z * (k as f32 / cells_z as f32);
                        b.v(Vec3::new(x, 0.0, z));
                    }
                }
                let idx = |i: u32, k: u32| i * (cells_z + 1) + k;
                for i in 0..cells_x {
                    for k in 0..cells_z {
                        b.f(&[idx(i, k), idx(i, k + 1), idx(i + 1, k + 1), idx(i + 1, k)]);
                    }
                }
            }
        }
        b.finish()
    }
}

fn cone<A: IdAlloc>(b: &mut Builder<'_, A>, radius: f32, height: f32, n: u32, offset: f64) {
    // Base ring, then the apex.
    for i in 0..n {
        let (c, s) = angle(i, n, offset);
        b.v(Vec3::new(radius * c, -0.5 * height, radius * s));
    }
    let apex = b.v(Vec3::new(0.0, 0.5 * height, 0.0));
    for i in 0..n {
        b.f(&[i, apex, (i + 1) % n]);
    }
    let base: Vec<u32> = (0..n).collect();
    b.f(&base);
}

fn icosahedron() -> (Vec<Vec3>, Vec<[u32; 3]>) {
    let t = ((1.0 + libm::sqrt(5.0)) / 2.0) as f32;
    let raw = [
        (-1.0, t, 0.0),
        (1.0, t, 0.0),
        (-1.0, -t, 0.0),
        (1.0, -t, 0.0),
        (0.0, -1.0, t),
        (0.0, 1.0, t),
        (0.0, -1.0, -t),
        (0.0, 1.0, -t),
        (t, 0.0, -1.0),
        (t, 0.0, 1.0),
        (-t, 0.0, -1.0),
        (-t, 0.0, 1.0),
    ];
    let pts = raw
        .iter()
        .map(|&(x, y, z)| Vec3::new(x, y, z).normalized().unwrap_or(Vec3::Y))
        .collect();
    let tris = vec![
        [0, 11, 5],
        [0, 5, 1],
        [0, 1, 7],
        [0, 7, 10],
        [0, 10, 11],
        [1, 5, 9],
        [5, 11, 4],
        [11, 10, 2],
        [10, 7, 6],
        [7, 1, 8],
        [3, 9, 4],
        [3, 4, 2],
        [3, 2, 6],
        [3, 6, 8],
        [3, 8, 9],
        [4, 9, 5],
        [2, 4, 11],
        [6, 2, 10],
        [8, 6, 7],
        [9, 8, 1],
    ];
    (pts, tris)
}

fn emit_sphere<A: IdAlloc>(b: &mut Builder<'_, A>, radius: f32, pts: &[Vec3], tris: &[[u32; 3]]) {
    for &p in pts {
        b.v(p * radius);
    }
    for t in tris {
        b.f(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SeqIds;

    /// Signed volume: positive when faces wind counter-clockwise seen from outside.
    fn volume(m: &Mesh) -> f32 {
        let mut v = 0.0;
        for f in m.faces() {
            let ps: Vec<Vec3> = m
                .face_vertices(f)
                .unwrap()
                .iter()
                .map(|&v| m.position(v).unwrap())
                .collect();
            for i in 1..ps.len() - 1 {
                v += ps[0].dot(ps[i].cross(ps[i + 1])) / 6.0;
            }
        }
        v
    }

    fn all() -> Vec<(Primitive, i64)> {
        // The Euler characteristic of each: a torus 0, an open grid 1, closed solids 2.
        Primitive::samples()
            .into_iter()
            .map(|p| match p {
                Primitive::Torus { .. } => (p, 0),
                Primitive::Grid { .. } => (p, 1),
                _ => (p, 2),
            })
            .collect()
    }

    #[test]
    fn primitives_are_valid_outward_and_have_the_right_euler_characteristic() {
        for (p, chi) in all() {
            let m = p.build(&mut SeqIds::default(), MaterialId(0)).unwrap();
            m.validate().unwrap_or_else(|e| panic!("{p:?}: {e}"));
            assert_eq!(m.euler_characteristic(), chi, "{p:?}");
            if chi != 1 {
                assert!(volume(&m) > 0.0, "{p:?} winds inward");
            }
        }
    }

    #[test]
    fn element_counts() {
        let ids = &mut SeqIds::default();
        let m = Primitive::Cuboid { size: Vec3::ONE }
            .build(ids, MaterialId(0))
            .unwrap();
        assert_eq!(
            (m.vertex_count(), m.edge_count(), m.face_count()),
            (8, 12, 6)
        );
        let m = Primitive::Icosahedron { radius: 1.0 }
            .build(ids, MaterialId(0))
            .unwrap();
        assert_eq!(
            (m.vertex_count(), m.edge_count(), m.face_count()),
            (12, 30, 20)
        );
        let m = Primitive::Icosphere {
            radius: 1.0,
            level: 3,
        }
        .build(ids, MaterialId(0))
        .unwrap();
        assert_eq!(m.face_count(), 20 * 64);
        let m = Primitive::UvSphere {
            radius: 1.0,
            segments: 16,
            rings: 8,
        }
        .build(ids, MaterialId(0))
        .unwrap();
        assert_eq!(m.vertex_count(), 2 + 16 * 7);
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        let ids = &mut SeqIds::default();
        for p in [
            Primitive::Cuboid {
                size: Vec3::new(0.0, 1.0, 1.0),
            },
            Primitive::Cylinder {
                radius: f32::NAN,
                height: 1.0,
                segments: 8,
            },
            Primitive::Cone {
                radius: 1.0,
                height: 1.0,
                segments: 2,
            },
            Primitive::UvSphere {
                radius: 1.0,
                segments: 8,
                rings: 1,
            },
            Primitive::Icosphere {
                radius: 1.0,
                level: 99,
            },
            Primitive::Torus {
                major_radius: 1.0,
                minor_radius: 2.0,
                major_segments: 8,
                minor_segments: 8,
            },
            Primitive::Grid {
                size_x: 1.0,
                size_z: -1.0,
                cells_x: 1,
                cells_z: 1,
            },
        ] {
            assert!(
                matches!(
                    p.build(ids, MaterialId(0)),
                    Err(crate::MeshError::InvalidParameter { .. })
                ),
                "{p:?}"
            );
        }
    }

    #[test]
    fn primitives_are_deterministic() {
        for (p, _) in all() {
            let a = p.build(&mut SeqIds::new(7), MaterialId(3)).unwrap();
            let b = p.build(&mut SeqIds::new(7), MaterialId(3)).unwrap();
            assert_eq!(a, b);
        }
    }
}
