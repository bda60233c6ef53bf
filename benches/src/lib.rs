//! Shared workloads for the benchmarks in `benches/benches/`, so that Theta and each baseline are fed
//! exactly the same input.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

use theta_mesh::{MaterialId, Mesh, Primitive, SeqIds, Vec3};

/// Runs the process the way the `theta` binary runs itself (`src/main.rs`): without transparent
/// huge pages. mimalloc asks the kernel for huge pages on its arenas, and each first touch of one
/// then zeroes 2 MiB; the app turns them off at start-up, so a benchmark of the app's code does
/// too. Benchmarks that compare libraries call it first, so every library runs under the same
/// setting.
#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "prctl is a C call")]
pub fn run_like_the_app() {
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of ours. A
    // kernel without it (before 3.15) refuses, and huge pages stay as the system has them.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// Elsewhere there is nothing to change.
#[cfg(not(target_os = "linux"))]
pub fn run_like_the_app() {}

/// A global allocator that counts live heap bytes and their peak, over the allocator it wraps. A
/// memory benchmark installs it with `#[global_allocator] static GLOBAL: Counting<System> =
/// Counting(System);` (or over mimalloc, the app's allocator, for benchmarks whose timings
/// should be the app's) and reads it with [`measure`] or [`live_bytes`]. The counters count
/// what is asked of the allocator, so heap figures do not depend on which one serves it.
pub struct Counting<A>(pub A);

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every method forwards to the wrapped allocator unchanged and only updates counters.
#[expect(
    unsafe_code,
    reason = "a global allocator is the only way to count every heap byte"
)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        // SAFETY: same contract as the caller's.
        unsafe { self.0.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { self.0.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > l.size() {
            grew(new - l.size());
        } else {
            LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { self.0.realloc(p, l, new) }
    }
}

/// Live heap bytes now (with [`Counting`] installed).
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Live heap bytes held by what `make` returns, and the peak above the starting point while making
/// it (with [`Counting`] installed).
pub fn measure<T>(make: impl FnOnce() -> T) -> (T, usize, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let v = make();
    let live = LIVE.load(Ordering::Relaxed) - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    (v, live, peak)
}

/// A flat `n` × `n` quad grid (n² quads, (n+1)² vertices).
pub fn grid(n: u32) -> Mesh {
    Primitive::Grid {
        size_x: n as f32,
        size_z: n as f32,
        cells_x: n,
        cells_z: n,
    }
    .build(&mut SeqIds::new(1), MaterialId(0))
    .expect("grid parameters are valid")
}

/// A UV sphere with about `2 * segments * (rings - 1)` triangles once triangulated.
pub fn sphere(segments: u32, rings: u32) -> Mesh {
    Primitive::UvSphere {
        radius: 1.0,
        segments,
        rings,
    }
    .build(&mut SeqIds::new(1), MaterialId(0))
    .expect("sphere parameters are valid")
}

/// The same surface as a `tri_mesh::Mesh`: the kernel's triangulation, with shared vertices.
pub fn to_tri_mesh(m: &Mesh) -> tri_mesh::Mesh {
    let p = m.to_polygons();
    let mut indices = Vec::new();
    let mut tris = Vec::new();
    for f in 0..p.face_count() {
        let c = p.face(f);
        let pts: Vec<Vec3> = c.iter().map(|&i| p.positions[i as usize]).collect();
        let n = m.face_normal(p.face_ids[f]).unwrap_or(Vec3::Y);
        tris.clear();
        theta_mesh::triangulate_polygon(&pts, n, &mut tris);
        for t in &tris {
            indices.extend(t.iter().map(|&k| c[k as usize]));
        }
    }
    let positions = p
        .positions
        .iter()
        .map(|q| cgmath::Vector3::new(f64::from(q.x), f64::from(q.y), f64::from(q.z)))
        .collect();
    tri_mesh::Mesh::new(&three_d_asset::TriMesh {
        positions: three_d_asset::Positions::F64(positions),
        indices: three_d_asset::Indices::U32(indices),
        ..Default::default()
    })
}

/// A deterministic stream of rays aimed at the unit sphere from a shell around it (xorshift; no
/// randomness source, so every run measures the same rays).
pub fn rays(count: usize) -> Vec<theta_mesh::Ray> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    (0..count)
        .map(|_| {
            let origin = Vec3::new(next(), next(), next())
                .normalized()
                .unwrap_or(Vec3::X)
                * 3.0;
            let target = Vec3::new(next(), next(), next()) * 0.5;
            theta_mesh::Ray {
                origin,
                dir: target - origin,
            }
        })
        .collect()
}
