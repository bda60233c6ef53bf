//! Kernel speed against the targets, with `tri-mesh` as the baseline wherever it has the same
//! operation (it is triangle-only: no Catmull–Clark, no triangulation, no BVH).
//!
//! Run: `cargo bench -p theta-benches --bench mesh_kernel`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use theta_benches::{grid, rays, sphere, to_tri_mesh};
use theta_mesh::{Bvh, Selection, SeqIds, Transform, Vec3};

fn catmull_clark(c: &mut Criterion) {
    // 100 x 100 = 10,000 quads.
    let m = grid(100);
    let mut g = c.benchmark_group("catmull_clark_10k_quads");
    g.bench_function("theta", |b| {
        b.iter_batched(
            || m.clone(),
            |mut m| {
                m.subdivide(1, &mut SeqIds::new(1 << 40))
                    .expect("subdivide");
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn triangulate(c: &mut Criterion) {
    // 316 x 316 = 99,856 quads.
    let m = grid(316);
    let t = to_tri_mesh(&m);
    let mut g = c.benchmark_group("triangulate_flat_normals_100k_quads");
    g.bench_function("theta", |b| b.iter(|| black_box(m.triangulate())));
    // tri-mesh has no triangulation; the nearest operation is a normal per triangle of the same
    // surface already triangulated (2 x more faces).
    g.bench_function("tri-mesh face normals (200k tris, no triangulation)", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for f in t.face_iter() {
                acc += t.face_normal(f).x;
            }
            black_box(acc)
        })
    });
    g.finish();
}

fn ray_pick(c: &mut Criterion) {
    // 1024 segments x 512 rings: 1,046,528 triangles.
    let m = sphere(1024, 512);
    let bvh = Bvh::build(&m);
    assert!(bvh.triangle_count() >= 1_000_000);
    let rs = rays(4096);
    let mut g = c.benchmark_group("ray_pick_1m_tris");
    let mut i = 0;
    g.bench_function("theta bvh pick", |b| {
        b.iter(|| {
            i = (i + 1) % rs.len();
            black_box(m.pick(&bvh, rs[i], 0.001))
        })
    });
    g.bench_function("theta brute force", |b| {
        b.iter(|| {
            i = (i + 1) % rs.len();
            black_box(bvh.intersect_brute_force(rs[i]))
        })
    });
    let t = to_tri_mesh(&m);
    g.sample_size(10);
    g.bench_function("tri-mesh ray_intersection", |b| {
        b.iter(|| {
            i = (i + 1) % rs.len();
            let r = rs[i];
            let o = cgmath::Vector3::new(
                f64::from(r.origin.x),
                f64::from(r.origin.y),
                f64::from(r.origin.z),
            );
            let d =
                cgmath::Vector3::new(f64::from(r.dir.x), f64::from(r.dir.y), f64::from(r.dir.z));
            black_box(t.ray_intersection(&o, &d))
        })
    });
    g.finish();
    let mut g = c.benchmark_group("bvh_build_1m_tris");
    g.sample_size(10);
    g.bench_function("theta", |b| b.iter(|| black_box(Bvh::build(&m))));
    g.finish();
}

fn small_edits(c: &mut Criterion) {
    let m = grid(100);
    let t = to_tri_mesh(&m);
    let mut g = c.benchmark_group("translate_whole_10k_quads");
    g.bench_function("theta", |b| {
        b.iter_batched(
            || m.clone(),
            |mut m| {
                m.transform(&Selection::whole(), &Transform::Translate(Vec3::X))
                    .expect("move");
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("tri-mesh (20k tris)", |b| {
        b.iter_batched(
            || t.clone(),
            |mut t| {
                t.translate(cgmath::Vector3::new(1.0, 0.0, 0.0));
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
    // Edge split: the kernel rebuilds through its checking builder (linear in mesh size); tri-mesh
    // edits in place. Both include cloning the input.
    let h = m.edges().nth(5000).expect("edge");
    let th = t.edge_iter().nth(5000).expect("edge");
    let mut g = c.benchmark_group("split_edge_10k_quads");
    g.bench_function("theta", |b| {
        b.iter_batched(
            || m.clone(),
            |mut m| {
                m.split_edge(h, 0.5, &mut SeqIds::new(1 << 40))
                    .expect("split");
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("tri-mesh (20k tris)", |b| {
        b.iter_batched(
            || t.clone(),
            |mut t| {
                t.split_edge(th, cgmath::Vector3::new(0.5, 0.0, 0.5));
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
    let p = m.to_polygons();
    let mut g = c.benchmark_group("build_from_faces_10k_quads");
    g.bench_function("theta", |b| {
        b.iter(|| black_box(theta_mesh::Mesh::from_polygons(&p)))
    });
    g.finish();
}

criterion_group!(benches, catmull_clark, triangulate, ray_pick, small_edits);
criterion_main!(benches);
