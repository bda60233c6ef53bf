//! Memory per vertex of large meshes, measured with a counting allocator (live heap bytes after the
//! mesh is built, and the peak while building), for the kernel and for `tri-mesh` on the same surface.
//!
//! Run: `cargo bench -p theta-benches --bench mesh_memory`

use theta_benches::{Counting, grid, measure, sphere, to_tri_mesh};
use theta_mesh::{MaterialId, Primitive, SeqIds};

#[global_allocator]
static GLOBAL: Counting<std::alloc::System> = Counting(std::alloc::System);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run either way.
    println!(
        "{:<44} {:>10} {:>10} {:>12} {:>12}",
        "mesh", "vertices", "faces", "live B/vert", "peak B/vert"
    );
    let row = |name: &str, v: usize, f: usize, live: usize, peak: usize| {
        println!(
            "{:<44} {:>10} {:>10} {:>12.1} {:>12.1}",
            name,
            v,
            f,
            live as f64 / v as f64,
            peak as f64 / v as f64
        );
    };
    let (g, live, peak) = measure(|| grid(999));
    row(
        "theta grid 999x999 (quads)",
        g.vertex_count(),
        g.face_count(),
        live,
        peak,
    );
    assert_eq!(g.vertex_count(), 1_000_000);
    // The kernel's own estimate (capacities plus hash-table buckets) must match what was allocated.
    let est = g.heap_bytes();
    assert!(
        live.abs_diff(est) * 100 <= live,
        "heap_bytes() {est} vs allocator {live}"
    );
    let (s, live, peak) = measure(|| sphere(1024, 977));
    row(
        "theta UV sphere 1024x977 (quads + pole tris)",
        s.vertex_count(),
        s.face_count(),
        live,
        peak,
    );
    drop(s);
    let (i, live, peak) = measure(|| {
        Primitive::Icosphere {
            radius: 1.0,
            level: 7,
        }
        .build(&mut SeqIds::new(1), MaterialId(0))
        .expect("icosphere")
    });
    row(
        "theta icosphere level 7 (triangles)",
        i.vertex_count(),
        i.face_count(),
        live,
        peak,
    );
    drop(i);
    let (t, live, peak) = measure(|| to_tri_mesh(&g));
    row(
        "tri-mesh same grid, triangulated",
        t.no_vertices(),
        t.no_faces(),
        live,
        peak,
    );
}
