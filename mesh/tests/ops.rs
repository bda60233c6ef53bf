//! Behaviour of every kernel operation: each test ends with `validate()`, and each bad input must
//! return a typed error and leave the mesh exactly as it was.

use theta_mesh::{
    DeleteMode, EdgeKey, FaceId, MaterialId, Mesh, MeshError, Plane, Primitive, Quat, Selection,
    SeqIds, Transform, Vec3, VertexId,
};

fn cube(ids: &mut SeqIds) -> Mesh {
    Primitive::Cuboid {
        size: Vec3::new(2.0, 2.0, 2.0),
    }
    .build(ids, MaterialId(0))
    .unwrap()
}

fn grid(ids: &mut SeqIds, n: u32) -> Mesh {
    Primitive::Grid {
        size_x: n as f32,
        size_z: n as f32,
        cells_x: n,
        cells_z: n,
    }
    .build(ids, MaterialId(0))
    .unwrap()
}

fn top_face(m: &Mesh) -> FaceId {
    m.faces()
        .find(|&f| m.face_normal(f).unwrap().y > 0.9)
        .unwrap()
}

/// Runs `op` expecting an error and checks the mesh did not change.
fn rejects(m: &mut Mesh, op: impl FnOnce(&mut Mesh) -> Result<(), MeshError>) -> MeshError {
    let before = m.clone();
    let e = op(m).expect_err("operation should fail");
    assert_eq!(*m, before, "a failed operation changed the mesh");
    e
}

#[test]
fn translate_rotate_scale_selections() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    let f = top_face(&m);
    m.transform(
        &Selection::of_faces([f]),
        &Transform::Translate(Vec3::new(0.0, 1.0, 0.0)),
    )
    .unwrap();
    m.validate().unwrap();
    assert_eq!(m.bounds().max.y, 2.0);
    let q = Quat::from_axis_angle(Vec3::Y, std::f32::consts::FRAC_PI_2).unwrap();
    m.transform(
        &Selection::whole(),
        &Transform::Rotate {
            rotation: q,
            pivot: Vec3::ZERO,
        },
    )
    .unwrap();
    m.transform(
        &Selection::whole(),
        &Transform::Scale {
            factors: Vec3::new(2.0, 1.0, 1.0),
            pivot: Vec3::ZERO,
        },
    )
    .unwrap();
    m.validate().unwrap();
    assert!((m.bounds().max.x - 2.0).abs() < 1e-5);
    // An edge selection moves exactly its two vertices.
    let h = m.edges().next().unwrap();
    let key = m.edge_key(h).unwrap();
    let before: Vec<Vec3> = m.vertices().map(|v| m.position(v).unwrap()).collect();
    m.transform(&Selection::of_edges([key]), &Transform::Translate(Vec3::X))
        .unwrap();
    let moved = m
        .vertices()
        .zip(before)
        .filter(|(v, p)| m.position(*v).unwrap() != *p)
        .count();
    assert_eq!(moved, 2);
    m.validate().unwrap();
}

#[test]
fn transform_rejects_bad_input_without_change() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    rejects(&mut m, |m| {
        m.transform(&Selection::default(), &Transform::Translate(Vec3::X))
    });
    let e = rejects(&mut m, |m| {
        m.transform(
            &Selection::of_vertices([VertexId(999)]),
            &Transform::Translate(Vec3::X),
        )
    });
    assert_eq!(e, MeshError::UnknownVertex(VertexId(999)));
    rejects(&mut m, |m| {
        m.transform(
            &Selection::whole(),
            &Transform::Translate(Vec3::new(f32::NAN, 0.0, 0.0)),
        )
    });
    rejects(&mut m, |m| {
        m.transform(
            &Selection::whole(),
            &Transform::Rotate {
                rotation: Quat::from_xyzw(0.0, 0.0, 0.0, 0.0),
                pivot: Vec3::ZERO,
            },
        )
    });
    let huge = Transform::Scale {
        factors: Vec3::new(f32::MAX, 1.0, 1.0),
        pivot: Vec3::ZERO,
    };
    m.transform(&Selection::whole(), &huge).unwrap();
    // A second scale would overflow to infinity: refused as a whole, no vertex half-moved.
    let e = rejects(&mut m, |m| m.transform(&Selection::whole(), &huge));
    assert!(matches!(e, MeshError::InvalidParameter { .. }));
}

#[test]
fn region_extrude_of_one_cube_face() {
    let ids = &mut SeqIds::new(100);
    let mut m = cube(ids);
    let f = top_face(&m);
    let sides = m
        .extrude_region(&[f], Vec3::new(0.0, 1.0, 0.0), ids)
        .unwrap();
    m.validate().unwrap();
    assert_eq!(sides.len(), 4);
    assert_eq!((m.vertex_count(), m.face_count()), (12, 10));
    assert_eq!(m.euler_characteristic(), 2);
    assert_eq!(m.bounds().max.y, 2.0);
    // The extruded face kept its id and still faces up.
    assert!(m.face_normal(f).unwrap().y > 0.99);
}

#[test]
fn region_extrude_keeps_a_region_connected() {
    let ids = &mut SeqIds::default();
    let mut m = grid(ids, 3);
    let faces: Vec<FaceId> = m.faces().take(2).collect(); // two neighbouring cells
    let sides = m
        .extrude_region(&faces, Vec3::new(0.0, 0.5, 0.0), ids)
        .unwrap();
    m.validate().unwrap();
    assert_eq!(sides.len(), 6, "a 2x1 region has a rim of six edges");
    // Extruding every face of a closed mesh moves it without side walls.
    let mut c = cube(ids);
    let all: Vec<FaceId> = c.faces().collect();
    let s = c.extrude_region(&all, Vec3::X, ids).unwrap();
    assert!(s.is_empty());
    assert_eq!(c.bounds().min.x, 0.0);
    c.validate().unwrap();
}

#[test]
fn individual_extrude_gives_each_face_its_own_walls() {
    let ids = &mut SeqIds::default();
    let mut m = grid(ids, 2);
    let faces: Vec<FaceId> = m.faces().collect();
    let sides = m.extrude_individual(&faces, 1.0, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(sides.len(), 16);
    assert_eq!(m.face_count(), 4 + 16);
    for f in faces {
        assert_eq!(m.face_centroid(f).unwrap().y, 1.0);
    }
}

#[test]
fn extrude_rejects_bad_input() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    rejects(&mut m, |m| m.extrude_region(&[], Vec3::X, ids).map(drop));
    rejects(&mut m, |m| {
        m.extrude_region(&[FaceId(12345)], Vec3::X, ids).map(drop)
    });
    rejects(&mut m, |m| {
        m.extrude_individual(&[top_face(m)], f32::INFINITY, ids)
            .map(drop)
    });
    rejects(&mut m, |m| m.inset(&[top_face(m)], 1.0, ids).map(drop));
    rejects(&mut m, |m| m.inset(&[top_face(m)], 0.0, ids).map(drop));
}

#[test]
fn inset_makes_a_smaller_face_and_a_ring() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    let f = top_face(&m);
    let ring = m.inset(&[f], 0.25, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(ring.len(), 4);
    assert_eq!((m.vertex_count(), m.face_count()), (12, 10));
    let b = m
        .face_vertices(f)
        .unwrap()
        .iter()
        .map(|&v| m.position(v).unwrap().x)
        .fold(0f32, f32::max);
    assert_eq!(b, 0.75);
}

#[test]
fn edge_split_inserts_into_both_faces() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    let h = m.edges().next().unwrap();
    let (a, b) = (m.origin(h).unwrap(), m.dest(h).unwrap());
    let x = m.split_edge(h, 0.25, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(m.vertex_count(), 9);
    assert_eq!(m.vertex_faces(x).unwrap().len(), 2);
    let expect = m.position(a).unwrap().lerp(m.position(b).unwrap(), 0.25);
    assert_eq!(m.position(x).unwrap(), expect);
    assert!(m.find_halfedge(a, b).is_err());
    m.find_halfedge(a, x).unwrap();
    let degrees: Vec<usize> = m.faces().map(|f| m.face_degree(f).unwrap()).collect();
    assert_eq!(degrees.iter().filter(|&&d| d == 5).count(), 2);
}

#[test]
fn face_split_by_vertices_and_between_edges() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    let f = top_face(&m);
    let vs = m.face_vertices(f).unwrap();
    let g = m.split_face(f, vs[0], vs[2], ids).unwrap();
    m.validate().unwrap();
    assert_eq!(m.face_degree(f).unwrap(), 3);
    assert_eq!(m.face_degree(g).unwrap(), 3);
    assert_eq!(m.euler_characteristic(), 2);
    // Neighbouring corners cannot be joined: the edge exists already.
    let mut m2 = cube(ids);
    let f2 = top_face(&m2);
    let vs2 = m2.face_vertices(f2).unwrap();
    let e = rejects(&mut m2, |m| m.split_face(f2, vs2[0], vs2[1], ids).map(drop));
    assert!(matches!(e, MeshError::DegenerateFace(_)));
    // Between two opposite edges of a quad: two quads.
    let hs = m2.face_halfedges(f2).unwrap();
    let g2 = m2
        .split_face_between_edges(hs[0], 0.5, hs[2], 0.5, ids)
        .unwrap();
    m2.validate().unwrap();
    assert_eq!(m2.face_degree(f2).unwrap(), 4);
    assert_eq!(m2.face_degree(g2).unwrap(), 4);
    assert_eq!((m2.vertex_count(), m2.face_count()), (10, 7));
    let e = rejects(&mut m2, |m| {
        m.split_face_between_edges(hs[0], 0.5, hs[0], 0.5, ids)
            .map(drop)
    });
    assert!(matches!(
        e,
        MeshError::Unsupported(_) | MeshError::UnknownHalfEdge(_)
    ));
}

#[test]
fn loop_cut_around_a_cube_closes_the_ring() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    let h = m.edges().next().unwrap();
    let new = m.loop_cut(h, 2, ids).unwrap();
    m.validate().unwrap();
    // A cube ring has four quads and four ring edges: 2 cuts add 8 vertices and 8 faces.
    assert_eq!(new.len(), 8);
    assert_eq!((m.vertex_count(), m.face_count()), (16, 14));
    assert_eq!(m.euler_characteristic(), 2);
}

#[test]
fn loop_cut_on_an_open_grid_stops_at_the_boundary() {
    let ids = &mut SeqIds::default();
    let mut m = grid(ids, 3);
    // An interior edge along one axis: the ring crosses 3 quads.
    let h = m
        .edges()
        .find(|&h| {
            m.edge_faces(h)
                .map(|(a, b)| a.is_some() && b.is_some())
                .unwrap_or(false)
        })
        .unwrap();
    m.loop_cut(h, 1, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(m.face_count(), 12);
    assert_eq!(m.vertex_count(), 16 + 4);
    assert_eq!(m.euler_characteristic(), 1);
}

#[test]
fn loop_cut_stops_at_non_quads() {
    let ids = &mut SeqIds::default();
    let mut m = Primitive::Cylinder {
        radius: 1.0,
        height: 2.0,
        segments: 6,
    }
    .build(ids, MaterialId(0))
    .unwrap();
    // A cap edge: the ring runs down the side quads, around the cylinder... pick a vertical edge.
    let h = m
        .edges()
        .find(|&h| {
            let (a, b) = (m.origin(h).unwrap(), m.dest(h).unwrap());
            (m.position(a).unwrap().y - m.position(b).unwrap().y).abs() > 1.0
        })
        .unwrap();
    m.loop_cut(h, 1, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(m.face_count(), 8 + 6);
    // A cut across the rim ring hits the caps (non-quads) at both ends and stops.
    let mut m = Primitive::Cylinder {
        radius: 1.0,
        height: 2.0,
        segments: 6,
    }
    .build(ids, MaterialId(0))
    .unwrap();
    let h = m
        .edges()
        .find(|&h| {
            let (a, b) = (m.origin(h).unwrap(), m.dest(h).unwrap());
            (m.position(a).unwrap().y - m.position(b).unwrap().y).abs() < 1e-6
        })
        .unwrap();
    m.loop_cut(h, 1, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(m.face_count(), 9);
    assert!(
        m.faces().any(|f| m.face_degree(f).unwrap() == 7),
        "a cap gained a corner"
    );
    let tri = Primitive::Cone {
        radius: 1.0,
        height: 1.0,
        segments: 5,
    }
    .build(ids, MaterialId(0))
    .unwrap();
    let mut tri2 = tri.clone();
    let h = tri
        .edges()
        .find(|&h| {
            tri.face_degree(tri.face_of(h).unwrap().unwrap()).unwrap() == 3
                && tri
                    .face_degree(tri.face_of(tri.twin(h).unwrap()).unwrap().unwrap())
                    .unwrap()
                    == 3
        })
        .unwrap();
    rejects(&mut tri2, |m| m.loop_cut(h, 1, ids).map(drop));
    // A handle from a bigger mesh is out of range here.
    let beyond = grid(ids, 8).halfedges().last().unwrap();
    rejects(&mut tri2, |m| m.loop_cut(beyond, 1, ids).map(drop));
}

#[test]
fn catmull_clark_on_cube_and_open_grid() {
    let ids = &mut SeqIds::new(1000);
    let mut m = cube(ids);
    let f0 = m.faces().next().unwrap();
    let v0 = m.vertices().next().unwrap();
    m.subdivide(1, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(
        (m.vertex_count(), m.edge_count(), m.face_count()),
        (26, 48, 24)
    );
    assert!(m.contains_face(f0) && m.contains_vertex(v0));
    // Cube corners move inwards by the Catmull-Clark rule: (F + 2R + (n-3)P)/n with n = 3.
    let p = m.position(v0).unwrap();
    assert!((p.x.abs() - 5.0 / 9.0).abs() < 1e-6, "{p:?}");
    m.subdivide(2, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(m.face_count(), 24 * 16);
    assert_eq!(m.euler_characteristic(), 2);
    let mut g = grid(ids, 2);
    g.subdivide(1, ids).unwrap();
    g.validate().unwrap();
    assert_eq!(g.face_count(), 16);
    assert_eq!(g.euler_characteristic(), 1);
    // Boundary corners move only along the boundary.
    assert!(g.bounds().max.x <= 1.0);
    let mut t = Primitive::Torus {
        major_radius: 2.0,
        minor_radius: 0.5,
        major_segments: 8,
        minor_segments: 4,
    }
    .build(ids, MaterialId(0))
    .unwrap();
    t.subdivide(1, ids).unwrap();
    t.validate().unwrap();
    assert_eq!(t.euler_characteristic(), 0);
    rejects(&mut t, |m| m.subdivide(0, ids));
    rejects(&mut t, |m| m.subdivide(99, ids));
}

#[test]
fn delete_faces_leaves_a_hole() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    let f = top_face(&m);
    m.delete_faces(&[f], ids).unwrap();
    m.validate().unwrap();
    assert_eq!((m.vertex_count(), m.face_count()), (8, 5));
    assert_eq!(m.euler_characteristic(), 1);
    let v = m.vertices().next().unwrap();
    let mut g = grid(ids, 2);
    // Deleting two diagonal cells leaves two cells touching at the centre only: the centre vertex
    // is split in two (one per fan), at the same place, and the mesh stays manifold.
    let fs: Vec<FaceId> = g.faces().collect();
    g.delete_faces(&[fs[0], fs[3]], ids).unwrap();
    g.validate().unwrap();
    assert_eq!((g.face_count(), g.vertex_count()), (2, 8));
    let centre: Vec<VertexId> = g
        .vertices()
        .filter(|&v| g.position(v).unwrap() == Vec3::ZERO)
        .collect();
    assert_eq!(centre.len(), 2, "one centre vertex per remaining cell");
    assert_eq!(g.euler_characteristic(), 2, "two separate quads");
    m.delete_vertex(v, DeleteMode::Hole, ids).unwrap();
    m.validate().unwrap();
    let h = m.edges().next().unwrap();
    m.delete_edge(h, DeleteMode::Hole, ids).unwrap();
    m.validate().unwrap();
}

#[test]
fn dissolve_edge_vertex_and_faces() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    let f = top_face(&m);
    let h = m.face_halfedges(f).unwrap()[0];
    m.delete_edge(h, DeleteMode::Dissolve, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(
        (m.vertex_count(), m.edge_count(), m.face_count()),
        (8, 11, 5)
    );
    assert_eq!(
        m.faces()
            .filter(|&g| m.face_degree(g).unwrap() == 6)
            .count(),
        1
    );

    let mut g = grid(ids, 2);
    let centre = g
        .vertices()
        .find(|&v| g.position(v).unwrap() == Vec3::ZERO)
        .unwrap();
    g.delete_vertex(centre, DeleteMode::Dissolve, ids).unwrap();
    g.validate().unwrap();
    assert_eq!(g.face_count(), 1);
    assert_eq!(g.vertex_count(), 8);

    let mut g = grid(ids, 2);
    let all: Vec<FaceId> = g.faces().collect();
    g.delete_faces_with(&all, DeleteMode::Dissolve, ids)
        .unwrap();
    g.validate().unwrap();
    assert_eq!(g.face_count(), 1);

    // A vertex with two edges (after an edge split) is simply taken out.
    let mut c = cube(ids);
    let h = c.edges().next().unwrap();
    let x = c.split_edge(h, 0.5, ids).unwrap();
    c.delete_vertex(x, DeleteMode::Dissolve, ids).unwrap();
    c.validate().unwrap();
    assert_eq!((c.vertex_count(), c.face_count()), (8, 6));

    // A boundary vertex of a grid: the faces around it merge and it leaves the outline.
    let mut g = grid(ids, 2);
    let edge_mid = g
        .vertices()
        .find(|&v| g.position(v).unwrap() == Vec3::new(1.0, 0.0, 0.0))
        .unwrap();
    g.delete_vertex(edge_mid, DeleteMode::Dissolve, ids)
        .unwrap();
    g.validate().unwrap();
    assert_eq!(g.face_count(), 3);
    assert!(!g.contains_vertex(edge_mid));

    // A closed region or a boundary edge cannot be dissolved.
    let mut c = cube(ids);
    let all: Vec<FaceId> = c.faces().collect();
    rejects(&mut c, |m| {
        m.delete_faces_with(&all, DeleteMode::Dissolve, ids)
    });
    let mut g = grid(ids, 1);
    let h = g.edges().next().unwrap();
    rejects(&mut g, |m| m.delete_edge(h, DeleteMode::Dissolve, ids));
}

#[test]
fn weld_merges_coincident_vertices() {
    let ids = &mut SeqIds::default();
    let mut m = grid(ids, 1);
    let other = grid(ids, 1);
    let mut shifted = other.clone();
    shifted
        .transform(
            &Selection::whole(),
            &Transform::Translate(Vec3::new(1.0, 0.0, 0.0)),
        )
        .unwrap();
    m.merge(&shifted, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(m.vertex_count(), 8);
    let merged = m.weld(1e-4, None).unwrap();
    m.validate().unwrap();
    assert_eq!(merged, 2);
    assert_eq!((m.vertex_count(), m.face_count()), (6, 2));
    assert_eq!(m.weld(1e-4, None).unwrap(), 0);
    let e = rejects(&mut m, |m| m.weld(-1.0, None).map(drop));
    assert!(matches!(e, MeshError::InvalidParameter { .. }));
    // Welding a whole cube to a point collapses every face: refused rather than emptying silently.
    let mut c = cube(ids);
    let all = c.vertices().collect::<Vec<_>>();
    let n = c.weld(10.0, Some(&all)).unwrap();
    assert_eq!(n, 7);
    assert_eq!(c.face_count(), 0);
}

#[test]
fn weld_collapsing_an_edge_removes_degenerate_faces() {
    let ids = &mut SeqIds::default();
    let mut m = grid(ids, 2);
    // Pull one boundary vertex onto its neighbour and weld: the two cells lose a corner.
    let a = m
        .vertices()
        .find(|&v| m.position(v).unwrap() == Vec3::new(-1.0, 0.0, -1.0))
        .unwrap();
    let b = m
        .vertices()
        .find(|&v| m.position(v).unwrap() == Vec3::new(-1.0, 0.0, 0.0))
        .unwrap();
    m.set_position(a, Vec3::new(-1.0, 0.0, -0.00001)).unwrap();
    m.set_position(b, Vec3::new(-1.0, 0.0, 0.0)).unwrap();
    let n = m.weld(0.001, Some(&[a, b])).unwrap();
    assert_eq!(n, 1);
    m.validate().unwrap();
    assert_eq!(m.face_count(), 4);
    assert!(m.faces().any(|f| m.face_degree(f).unwrap() == 3));
}

#[test]
fn mirror_one_shot_and_symmetric() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    m.transform(
        &Selection::whole(),
        &Transform::Translate(Vec3::new(2.0, 0.0, 0.0)),
    )
    .unwrap();
    let plane = Plane::from_point_normal(Vec3::ZERO, Vec3::X).unwrap();
    let new = m.mirror(&[], plane, 0.0, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(new.len(), 6);
    assert_eq!((m.vertex_count(), m.face_count()), (16, 12));
    assert_eq!(m.bounds().min.x, -3.0);
    // Outward winding: the mirrored copy's +x face points towards the plane.
    let near = m
        .faces()
        .filter(|&f| m.face_centroid(f).unwrap().x == -1.0)
        .collect::<Vec<_>>();
    assert_eq!(near.len(), 1);
    assert!(m.face_normal(near[0]).unwrap().x > 0.99);

    // Symmetric: half a cube open at x = 0, mirrored and welded into a closed box.
    let mut h = cube(ids);
    h.transform(
        &Selection::whole(),
        &Transform::Translate(Vec3::new(1.0, 0.0, 0.0)),
    )
    .unwrap();
    let seam_face = h
        .faces()
        .find(|&f| h.face_normal(f).unwrap().x < -0.9)
        .unwrap();
    h.delete_faces(&[seam_face], ids).unwrap();
    h.mirror_symmetric(plane, 1e-4, ids).unwrap();
    h.validate().unwrap();
    assert_eq!((h.vertex_count(), h.face_count()), (12, 10));
    assert_eq!(h.euler_characteristic(), 2);
    assert_eq!(h.bounds().min.x, -2.0);
    let bad = Plane {
        normal: Vec3::new(2.0, 0.0, 0.0),
        offset: 0.0,
    };
    rejects(&mut h, |m| m.mirror(&[], bad, 0.0, ids).map(drop));
}

#[test]
fn duplicate_merge_and_paint() {
    let ids = &mut SeqIds::default();
    let mut m = cube(ids);
    let all: Vec<FaceId> = m.faces().collect();
    let copies = m.duplicate(&all, Vec3::new(5.0, 0.0, 0.0), ids).unwrap();
    m.validate().unwrap();
    assert_eq!(copies.len(), 6);
    assert_eq!((m.vertex_count(), m.face_count()), (16, 12));
    assert_eq!(m.euler_characteristic(), 4, "two separate closed shells");
    m.paint(&copies[..2], MaterialId(7)).unwrap();
    assert_eq!(m.face_material(copies[0]).unwrap(), MaterialId(7));
    assert_eq!(m.face_material(all[0]).unwrap(), MaterialId(0));
    let sphere = Primitive::Icosahedron { radius: 1.0 }
        .build(ids, MaterialId(3))
        .unwrap();
    m.merge(&sphere, ids).unwrap();
    m.validate().unwrap();
    assert_eq!(m.face_count(), 32);
    rejects(&mut m, |m| m.paint(&[FaceId(u64::MAX)], MaterialId(1)));
    rejects(&mut m, |m| m.merge(&Mesh::empty(), ids));
}

#[test]
fn reused_ids_are_refused() {
    let mut m = cube(&mut SeqIds::new(1));
    // An allocator that hands out ids the cube already uses.
    let mut clash = SeqIds::new(1);
    let f = top_face(&m);
    let e = rejects(&mut m, |m| {
        m.extrude_region(&[f], Vec3::Y, &mut clash).map(drop)
    });
    assert!(matches!(e, MeshError::IdCollision(_)), "{e}");
}

#[test]
fn edge_keys_resolve() {
    let ids = &mut SeqIds::default();
    let m = cube(ids);
    for h in m.halfedges() {
        let EdgeKey(a, b) = m.edge_key(h).unwrap();
        assert_eq!(m.find_halfedge(a, b).unwrap(), h);
        assert_eq!(m.next(m.prev(h).unwrap()).unwrap(), h);
        assert_eq!(m.twin(m.twin(h).unwrap()).unwrap(), h);
    }
}

#[test]
fn every_operation_refuses_unknown_ids_and_bad_parameters_without_change() {
    let ids = &mut SeqIds::new(500);
    let mut m = cube(ids);
    let f = top_face(&m);
    let h = m.face_halfedges(f).unwrap()[0];
    let beyond = grid(ids, 8).halfedges().last().unwrap();
    let (ghost_f, ghost_v) = (FaceId(9_999_999), VertexId(9_999_999));
    let nan = Vec3::new(f32::NAN, 0.0, 0.0);
    let plane = Plane::from_point_normal(Vec3::ZERO, Vec3::X).unwrap();
    // Unknown ids.
    assert_eq!(
        rejects(&mut m, |m| m
            .extrude_region(&[ghost_f], Vec3::Y, ids)
            .map(drop)),
        MeshError::UnknownFace(ghost_f)
    );
    rejects(&mut m, |m| {
        m.extrude_individual(&[ghost_f], 1.0, ids).map(drop)
    });
    rejects(&mut m, |m| m.inset(&[ghost_f], 0.5, ids).map(drop));
    rejects(&mut m, |m| m.split_edge(beyond, 0.5, ids).map(drop));
    rejects(&mut m, |m| {
        m.split_face(ghost_f, ghost_v, ghost_v, ids).map(drop)
    });
    rejects(&mut m, |m| {
        m.split_face_between_edges(beyond, 0.5, h, 0.5, ids)
            .map(drop)
    });
    rejects(&mut m, |m| m.delete_faces(&[ghost_f], ids));
    rejects(&mut m, |m| m.delete_vertex(ghost_v, DeleteMode::Hole, ids));
    rejects(&mut m, |m| m.delete_edge(beyond, DeleteMode::Dissolve, ids));
    rejects(&mut m, |m| m.weld(0.1, Some(&[ghost_v])).map(drop));
    rejects(&mut m, |m| m.mirror(&[ghost_f], plane, 0.0, ids).map(drop));
    rejects(&mut m, |m| m.duplicate(&[ghost_f], Vec3::X, ids).map(drop));
    rejects(&mut m, |m| m.paint(&[ghost_f], MaterialId(1)));
    rejects(&mut m, |m| m.set_position(ghost_v, Vec3::ZERO));
    // Bad parameters.
    for t in [0.0, 1.0, -0.5, f32::NAN] {
        rejects(&mut m, |m| m.split_edge(h, t, ids).map(drop));
    }
    rejects(&mut m, |m| m.extrude_region(&[f], nan, ids).map(drop));
    rejects(&mut m, |m| m.duplicate(&[f], nan, ids).map(drop));
    let v0 = m.vertices().next().unwrap();
    rejects(&mut m, |m| m.set_position(v0, nan));
    rejects(&mut m, |m| m.mirror_symmetric(plane, 0.0, ids).map(drop));
    rejects(&mut m, |m| m.mirror(&[], plane, f32::NAN, ids).map(drop));
    rejects(&mut m, |m| m.loop_cut(h, 0, ids).map(drop));
    rejects(&mut m, |m| m.loop_cut(h, 1000, ids).map(drop));
    // Empty selections.
    rejects(&mut m, |m| m.extrude_individual(&[], 1.0, ids).map(drop));
    rejects(&mut m, |m| m.inset(&[], 0.5, ids).map(drop));
    rejects(&mut m, |m| m.duplicate(&[], Vec3::X, ids).map(drop));
    rejects(&mut m, |m| m.delete_faces(&[], ids));
    rejects(&mut m, |m| m.paint(&[], MaterialId(1)));
    m.validate().unwrap();
}

#[test]
fn translate_vertices_is_exactly_a_translate_transform() {
    let ids = &mut SeqIds::default();
    let base = grid(ids, 6);
    let vs: Vec<VertexId> = base.vertices().collect();
    let cases: Vec<(Vec<VertexId>, Vec3)> = vec![
        (vec![vs[0]], Vec3::new(0.1, -0.2, 0.3)),
        (vec![vs[5], vs[3], vs[5], vs[9]], Vec3::new(1e-3, 7.0, -0.0)),
        (vs.clone(), Vec3::new(-2.5, 0.0, 1.25)),
        (vec![], Vec3::new(1.0, 0.0, 0.0)),
        (vec![vs[1], VertexId(999_999)], Vec3::new(1.0, 0.0, 0.0)),
        (vec![vs[2]], Vec3::new(f32::NAN, 0.0, 0.0)),
        (vec![vs[2]], Vec3::new(f32::MAX, 0.0, 0.0)),
    ];
    for (sel, d) in cases {
        let mut a = base.clone();
        let mut b = base.clone();
        let ra = a.translate_vertices(&sel, d);
        let rb = b.transform(
            &Selection::of_vertices(sel.iter().copied()),
            &Transform::Translate(d),
        );
        assert_eq!(ra, rb, "same result for {sel:?} by {d:?}");
        assert_eq!(a, b, "bit-identical meshes for {sel:?} by {d:?}");
        if ra.is_err() {
            assert_eq!(a, base, "a failed move changes nothing");
        }
    }
    // Moving a vertex already at f32::MAX further out overflows to infinity: refused, nothing
    // moved (the other listed vertex stays put too).
    let mut m = base.clone();
    let huge = Vec3::new(f32::MAX, f32::MAX, f32::MAX);
    m.translate_vertices(&[vs[35]], huge).unwrap();
    let far = rejects(&mut m, |m| m.translate_vertices(&[vs[0], vs[35]], huge));
    assert!(matches!(far, MeshError::InvalidParameter { .. }), "{far:?}");
}

#[test]
fn a_cube_is_closed_until_a_face_is_deleted_and_a_grid_never_is() {
    let mut ids = SeqIds::new(1);
    let mut m = cube(&mut ids);
    assert!(m.is_closed());
    let top = top_face(&m);
    m.delete_faces(&[top], &mut ids).unwrap();
    assert!(!m.is_closed(), "a hole opens it");
    assert!(!grid(&mut ids, 3).is_closed());
}
