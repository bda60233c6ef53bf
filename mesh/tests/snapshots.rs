//! Snapshot tests of the main operations in the text mesh format (`v id x y z` / `f id mM ids...`).
//! Re-bless with `UPDATE_EXPECT=1 cargo test -p theta-mesh --test snapshots`.

use expect_test::{Expect, expect};
use theta_mesh::{
    DeleteMode, MaterialId, Mesh, Plane, Primitive, SeqIds, Vec3, from_text, to_text,
};

fn quad() -> Mesh {
    from_text("v 1 0 0 0\nv 2 1 0 0\nv 3 1 0 1\nv 4 0 0 1\nf 5 m0 1 4 3 2\n").unwrap()
}

fn check(m: &Mesh, e: Expect) {
    m.validate().unwrap();
    let t = to_text(m);
    assert_eq!(to_text(&from_text(&t).unwrap()), t, "text round trip");
    e.assert_eq(&t);
}

#[test]
fn text_format_round_trips_and_rejects_garbage() {
    check(
        &quad(),
        expect![[r#"
            v 1 0.0 0.0 0.0
            v 2 1.0 0.0 0.0
            v 3 1.0 0.0 1.0
            v 4 0.0 0.0 1.0
            f 5 m0 1 4 3 2
        "#]],
    );
    assert!(from_text("v 1 0 0\n").is_err());
    assert!(from_text("f 1 m0 1 2 3\n").is_err());
    assert!(from_text("v 1 0 0 0\nv 1 0 0 0\n").is_err());
}

#[test]
fn extrude_a_quad() {
    let mut m = quad();
    m.extrude_region(
        &[theta_mesh::FaceId(5)],
        Vec3::new(0.0, 1.0, 0.0),
        &mut SeqIds::new(10),
    )
    .unwrap();
    check(
        &m,
        expect![[r#"
        v 1 0.0 0.0 0.0
        v 2 1.0 0.0 0.0
        v 3 1.0 0.0 1.0
        v 4 0.0 0.0 1.0
        v 10 0.0 1.0 0.0
        v 11 1.0 1.0 0.0
        v 12 1.0 1.0 1.0
        v 13 0.0 1.0 1.0
        f 5 m0 10 13 12 11
        f 14 m0 1 4 13 10
        f 15 m0 4 3 12 13
        f 16 m0 3 2 11 12
        f 17 m0 2 1 10 11
    "#]],
    );
}

#[test]
fn inset_a_quad() {
    let mut m = quad();
    m.inset(&[theta_mesh::FaceId(5)], 0.5, &mut SeqIds::new(10))
        .unwrap();
    check(
        &m,
        expect![[r#"
        v 1 0.0 0.0 0.0
        v 2 1.0 0.0 0.0
        v 3 1.0 0.0 1.0
        v 4 0.0 0.0 1.0
        v 10 0.25 0.0 0.25
        v 11 0.25 0.0 0.75
        v 12 0.75 0.0 0.75
        v 13 0.75 0.0 0.25
        f 5 m0 10 11 12 13
        f 14 m0 1 4 11 10
        f 15 m0 4 3 12 11
        f 16 m0 3 2 13 12
        f 17 m0 2 1 10 13
    "#]],
    );
}

#[test]
fn loop_cut_a_quad() {
    let mut m = quad();
    let h = m
        .find_halfedge(theta_mesh::VertexId(1), theta_mesh::VertexId(4))
        .unwrap();
    m.loop_cut(h, 1, &mut SeqIds::new(10)).unwrap();
    check(
        &m,
        expect![[r#"
        v 1 0.0 0.0 0.0
        v 2 1.0 0.0 0.0
        v 3 1.0 0.0 1.0
        v 4 0.0 0.0 1.0
        v 10 0.0 0.0 0.5
        v 11 1.0 0.0 0.5
        f 5 m0 1 10 11 2
        f 12 m0 10 4 3 11
    "#]],
    );
}

#[test]
fn subdivide_a_quad() {
    let mut m = quad();
    m.subdivide(1, &mut SeqIds::new(10)).unwrap();
    check(
        &m,
        expect![[r#"
        v 1 0.125 0.0 0.125
        v 2 0.875 0.0 0.125
        v 3 0.875 0.0 0.875
        v 4 0.125 0.0 0.875
        v 10 0.0 0.0 0.5
        v 11 0.5 0.0 1.0
        v 12 1.0 0.0 0.5
        v 13 0.5 0.0 0.0
        v 14 0.5 0.0 0.5
        f 5 m0 1 10 14 13
        f 15 m0 4 11 14 10
        f 16 m0 3 12 14 11
        f 17 m0 2 13 14 12
    "#]],
    );
}

#[test]
fn split_and_dissolve_an_edge() {
    let mut m = quad();
    let h = m
        .find_halfedge(theta_mesh::VertexId(1), theta_mesh::VertexId(4))
        .unwrap();
    let x = m.split_edge(h, 0.5, &mut SeqIds::new(10)).unwrap();
    check(
        &m,
        expect![[r#"
        v 1 0.0 0.0 0.0
        v 2 1.0 0.0 0.0
        v 3 1.0 0.0 1.0
        v 4 0.0 0.0 1.0
        v 10 0.0 0.0 0.5
        f 5 m0 1 10 4 3 2
    "#]],
    );
    m.delete_vertex(x, DeleteMode::Dissolve, &mut SeqIds::new(20))
        .unwrap();
    check(
        &m,
        expect![[r#"
        v 1 0.0 0.0 0.0
        v 2 1.0 0.0 0.0
        v 3 1.0 0.0 1.0
        v 4 0.0 0.0 1.0
        f 5 m0 1 4 3 2
    "#]],
    );
}

#[test]
fn mirror_a_quad_welded_at_the_seam() {
    let mut m = quad();
    let plane = Plane::from_point_normal(Vec3::ZERO, Vec3::X).unwrap();
    m.mirror_symmetric(plane, 1e-4, &mut SeqIds::new(10))
        .unwrap();
    check(
        &m,
        expect![[r#"
        v 1 0.0 0.0 0.0
        v 2 1.0 0.0 0.0
        v 3 1.0 0.0 1.0
        v 4 0.0 0.0 1.0
        v 10 -1.0 0.0 0.0
        v 11 -1.0 0.0 1.0
        f 5 m0 1 4 3 2
        f 12 m0 1 10 11 4
    "#]],
    );
}

#[test]
fn pyramid_primitive() {
    let m = Primitive::Pyramid {
        base: 2.0,
        height: 1.0,
        sides: 4,
    }
    .build(&mut SeqIds::new(1), MaterialId(5))
    .unwrap();
    check(
        &m,
        expect![[r#"
        v 1 0.99999994 -0.5 0.99999994
        v 2 -0.99999994 -0.5 0.99999994
        v 3 -0.99999994 -0.5 -0.99999994
        v 4 0.99999994 -0.5 -0.99999994
        v 5 0.0 0.5 0.0
        f 6 m5 1 5 2
        f 7 m5 2 5 3
        f 8 m5 3 5 4
        f 9 m5 4 5 1
        f 10 m5 1 2 3 4
    "#]],
    );
}
