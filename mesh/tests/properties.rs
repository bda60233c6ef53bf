//! Property tests: long random sequences of operations on random primitives. After every step the
//! mesh validates; a failed step leaves the mesh unchanged; operations that cannot change the
//! topology's genus keep the Euler characteristic; and replaying the same sequence gives a
//! bit-identical mesh.

use proptest::prelude::*;
use theta_mesh::{
    DeleteMode, FaceId, MaterialId, Mesh, Plane, Primitive, Quat, Selection, SeqIds, Transform,
    Vec3,
};

fn primitive(i: u8) -> Primitive {
    match i % 9 {
        0 => Primitive::Cuboid {
            size: Vec3::new(1.0, 2.0, 1.5),
        },
        1 => Primitive::Pyramid {
            base: 1.0,
            height: 1.0,
            sides: 4,
        },
        2 => Primitive::Cylinder {
            radius: 1.0,
            height: 2.0,
            segments: 6,
        },
        3 => Primitive::Cone {
            radius: 1.0,
            height: 1.0,
            segments: 5,
        },
        4 => Primitive::UvSphere {
            radius: 1.0,
            segments: 6,
            rings: 4,
        },
        5 => Primitive::Icosahedron { radius: 1.0 },
        6 => Primitive::Icosphere {
            radius: 1.0,
            level: 1,
        },
        7 => Primitive::Torus {
            major_radius: 2.0,
            minor_radius: 0.5,
            major_segments: 6,
            minor_segments: 4,
        },
        _ => Primitive::Grid {
            size_x: 2.0,
            size_z: 2.0,
            cells_x: 3,
            cells_z: 2,
        },
    }
}

fn nth_face(m: &Mesh, k: u32) -> Option<FaceId> {
    let n = m.face_count();
    (n > 0).then(|| m.faces().nth(k as usize % n)).flatten()
}

/// Applies op `code` with parameters `a`, `b`; returns whether the op keeps χ, and its result.
fn apply(m: &mut Mesh, ids: &mut SeqIds, code: u8, a: u32, b: u32) -> (bool, Result<(), String>) {
    let r = |x: Result<(), theta_mesh::MeshError>| x.map_err(|e| e.to_string());
    let frac = |x: u32| 0.05 + 0.9 * ((x % 1000) as f32 / 1000.0);
    let Some(f) = nth_face(m, a) else {
        return (true, Err("empty".into()));
    };
    let h = m.face_halfedges(f).unwrap()[(b as usize) % m.face_degree(f).unwrap()];
    match code % 16 {
        0 => (
            true,
            r(m.transform(
                &Selection::of_faces([f]),
                &Transform::Translate(Vec3::new(frac(a) - 0.5, frac(b), 0.25)),
            )),
        ),
        1 => {
            let q = Quat::from_axis_angle(Vec3::new(1.0, frac(a), 0.3), frac(b) * 3.0).unwrap();
            (
                true,
                r(m.transform(
                    &Selection::whole(),
                    &Transform::Rotate {
                        rotation: q,
                        pivot: Vec3::ONE,
                    },
                )),
            )
        }
        2 => {
            let g = nth_face(m, b).unwrap();
            (
                true,
                r(m.extrude_region(&[f, g], Vec3::new(0.0, frac(b), 0.1), ids)
                    .map(drop)),
            )
        }
        3 => (true, r(m.extrude_individual(&[f], frac(b), ids).map(drop))),
        4 => (true, r(m.inset(&[f], frac(b), ids).map(drop))),
        5 => (true, r(m.split_edge(h, frac(a), ids).map(drop))),
        6 => {
            let vs = m.face_vertices(f).unwrap();
            let (i, j) = (a as usize % vs.len(), b as usize % vs.len());
            (true, r(m.split_face(f, vs[i], vs[j], ids).map(drop)))
        }
        7 => (true, r(m.loop_cut(h, 1 + a % 3, ids).map(drop))),
        8 => {
            if m.face_count() > 400 {
                return (true, Err("too big to subdivide in a test".into()));
            }
            (true, r(m.subdivide(1, ids)))
        }
        9 => (false, r(m.delete_faces(&[f], ids))),
        10 => (false, r(m.delete_edge(h, DeleteMode::Dissolve, ids))),
        11 => {
            let v = m.origin(h).unwrap();
            (
                false,
                r(m.delete_vertex(
                    v,
                    if a.is_multiple_of(2) {
                        DeleteMode::Hole
                    } else {
                        DeleteMode::Dissolve
                    },
                    ids,
                )),
            )
        }
        12 => (false, r(m.weld(frac(a) * 0.3, None).map(drop))),
        13 => {
            let plane =
                Plane::from_point_normal(Vec3::new(frac(a) * 2.0, 0.0, 0.0), Vec3::X).unwrap();
            (
                false,
                r(m.mirror(
                    &[f],
                    plane,
                    if b.is_multiple_of(2) { 0.0 } else { 0.01 },
                    ids,
                )
                .map(drop)),
            )
        }
        14 => (
            false,
            r(m.duplicate(&[f], Vec3::new(3.0, 0.0, 0.0), ids).map(drop)),
        ),
        _ => {
            let h2 = m.face_halfedges(f).unwrap()[(a as usize) % m.face_degree(f).unwrap()];
            (
                true,
                r(m.split_face_between_edges(h, frac(a), h2, frac(b), ids)
                    .map(drop)),
            )
        }
    }
}

fn run(prim: u8, ops: &[(u8, u32, u32)]) -> Mesh {
    let ids = &mut SeqIds::new(1);
    let mut m = primitive(prim).build(ids, MaterialId(prim as u32)).unwrap();
    for &(code, a, b) in ops {
        let before = m.clone();
        let chi = m.euler_characteristic();
        let (keeps_chi, res) = apply(&mut m, ids, code, a, b);
        match res {
            Ok(()) => {
                if let Err(e) = m.validate() {
                    panic!("op {code} left an invalid mesh: {e}\nbefore:\n{before:?}");
                }
                if keeps_chi {
                    assert_eq!(m.euler_characteristic(), chi, "op {code} changed χ");
                }
            }
            Err(_) => assert_eq!(m, before, "failed op {code} changed the mesh"),
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_keep_the_mesh_valid(
        prim in 0u8..9,
        ops in prop::collection::vec((0u8..16, any::<u32>(), any::<u32>()), 1..30),
    ) {
        let a = run(prim, &ops);
        let b = run(prim, &ops);
        prop_assert_eq!(a, b, "the same sequence gave different meshes");
    }
}
