//! Latency distributions and throughput figures for the command log that criterion's mean-centred
//! reports do not give: p50/p99 of a local edit, remote arrivals at the tail and 1,000 commands
//! back, signature verification throughput on all cores, and the memory of a 100,000-command log.
//!
//! Run: `cargo bench -p theta-benches --bench crdt_latency`

use std::time::{Duration, Instant};

use rayon::prelude::*;
use theta_benches::{Counting, live_bytes};
use theta_crdt::author;
use theta_crdt::command::{ObjectTransform, Op};
use theta_crdt::fold::Replica;
use theta_crdt::ids::{DerivedIds, Role};
use theta_crdt::log::{verify_command, verify_commands};
use theta_crdt::workload::{self, author_key};
use theta_mesh::{MaterialId, Primitive, Vec3};

/// The app's allocator, counted (the timings are the app's; the heap figures count what is asked
/// of the allocator, so they do not depend on which allocator serves it).
#[global_allocator]
static GLOBAL: Counting<mimalloc::MiMalloc> = Counting(mimalloc::MiMalloc);

fn pct(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .map_or(0.0, |pages| pages * 4096.0 / 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--train-mesh-dictionary") {
        train_mesh_dictionary(args.get(i + 1).expect("a path to write the dictionary to"));
        return;
    }
    // As the app runs (src/main.rs): without transparent huge pages.
    theta_benches::run_like_the_app();
    local_edit();
    remote_arrivals_and_memory();
    verification_throughput();
}

/// Trains the packed-mesh dictionary (`crdt/src/packed.rs`) on every version of every object of
/// three generated 20,000-command sessions, seeds other than the benchmarks' 42, and writes it.
fn train_mesh_dictionary(path: &str) {
    let mut samples = Vec::new();
    for seed in [1u64, 2, 3] {
        let cmds = workload::session(seed, 3, 20_000);
        let gid = verify_command(&cmds[0]).expect("genesis").id();
        let mut r = Replica::new(gid);
        for (i, c) in cmds.iter().enumerate() {
            r.insert(verify_command(c).expect("valid")).expect("insert");
            if i % 997 == 0 {
                r.settle();
                samples.extend(
                    r.scene()
                        .objects()
                        .map(|(_, o)| theta_crdt::packed::encode(&o.mesh())),
                );
            }
        }
    }
    let dict = theta_crdt::packed::train(&samples, 16 * 1024).expect("training");
    std::fs::write(path, &dict).expect("writing the dictionary");
    println!(
        "trained a {} B mesh dictionary on {} samples ({} B) into {path}",
        dict.len(),
        samples.len(),
        samples.iter().map(Vec::len).sum::<usize>()
    );
}

/// Sign + insert + fold of a move of one vertex of a 10,000-vertex object.
fn local_edit() {
    let admin = author_key(0);
    let g = author::genesis(&admin, "bench");
    let mut r = Replica::new(verify_command(&g).expect("genesis").id());
    r.insert(verify_command(&g).expect("genesis"))
        .expect("insert");
    let create = author::sign_local(
        &admin,
        r.log(),
        Op::CreateObject {
            name: "grid".into(),
            primitive: Primitive::Grid {
                size_x: 10.0,
                size_z: 10.0,
                cells_x: 99,
                cells_z: 99,
            },
            material: MaterialId(0),
            transform: ObjectTransform::IDENTITY,
        },
    )
    .expect("sign");
    let obj = DerivedIds::new(&create.id()).object();
    r.insert(create).expect("insert");
    r.settle();
    let verts: Vec<_> = r
        .scene()
        .object(obj)
        .expect("object")
        .mesh()
        .vertices()
        .collect();
    assert_eq!(verts.len(), 10_000);
    let mut times = Vec::with_capacity(5000);
    for i in 0..5000 {
        let t = Instant::now();
        let op = Op::MoveVertices {
            object: obj,
            vertices: vec![verts[(i * 7919) % verts.len()]],
            delta: Vec3::new(0.001, 0.0, 0.0),
        };
        let c = author::sign_local(&admin, r.log(), op).expect("sign");
        r.insert(c).expect("insert");
        r.settle();
        times.push(t.elapsed());
    }
    let mut sorted = times.clone();
    sorted.sort();
    // Where the slowest 1% fall: the replica's every-256 housekeeping (the regular snapshot and
    // a packing step, then the copy of the edited mesh that the snapshot's sharing forces on the
    // next edit) or anywhere else. The edits start after genesis and the create, so edit `i`
    // takes the folded count to `i + 3`.
    let cut = sorted[sorted.len() * 99 / 100];
    let slow: Vec<usize> = (0..times.len()).filter(|&i| times[i] >= cut).collect();
    let at_boundary = slow.iter().filter(|&&i| (i + 3) % 256 <= 1).count();
    println!(
        "local edit, slowest 1% ({} edits from {cut:?}): {at_boundary} at the every-256 snapshot and the copy after it, {} elsewhere",
        slow.len(),
        slow.len() - at_boundary
    );
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    let (p50, p99) = pct(times);
    println!(
        "local edit, move 1 vertex of a 10k-vertex object (sign+insert+fold): p50 {p50:?} p99 {p99:?} (p90 {:?}, p99.9 {:?}, max {:?})",
        at(0.90),
        at(0.999),
        sorted[sorted.len() - 1]
    );
}

/// Remote commands landing at the tail of a 100,000-command log, and 1,000 commands back; memory of
/// that log and its scene.
fn remote_arrivals_and_memory() {
    let t = Instant::now();
    let cmds = workload::session(42, 3, 100_000);
    println!("generated {} commands in {:?}", cmds.len(), t.elapsed());
    let total_bytes: usize = cmds.iter().map(Vec::len).sum();
    let base_live = live_bytes();
    let base_rss = rss_mb();
    let gid = verify_command(&cmds[0]).expect("genesis").id();
    let mut r = Replica::new(gid);
    let t = Instant::now();
    for c in &cmds {
        r.insert(verify_command(c).expect("valid")).expect("insert");
    }
    r.settle();
    println!(
        "open 100k: verify one by one + insert + fold: {:?}",
        t.elapsed()
    );
    // A long settle leaves packing to idle time, as the app's idle loop gives it: pack until
    // nothing is left, as a peer that has held the session a moment has.
    let t = Instant::now();
    let mut steps = 0;
    while r.pack_idle(64) {
        steps += 1;
    }
    println!("idle packing: {steps} steps in {:?}", t.elapsed());
    let live = live_bytes() - base_live;
    restored_memory(&r);
    // The log alone: the same commands in a bare log, without the decoded-operation cache the fold
    // drains.
    let before_log = live_bytes();
    let mut bare = theta_crdt::log::Log::for_session(gid);
    for c in &cmds {
        bare.insert(verify_command(c).expect("valid"))
            .expect("insert");
    }
    bare.trim_decoded();
    bare.compact_cold(usize::MAX);
    let log_only = live_bytes() - before_log;
    drop(bare);
    println!(
        "100k log + scene: {:.1} MB live heap, of which the log {:.1} MB ({:.1} MB of command bytes), RSS grew {:.1} MB; {} objects",
        live as f64 / 1e6,
        log_only as f64 / 1e6,
        total_bytes as f64 / 1e6,
        rss_mb() - base_rss,
        r.scene().object_count()
    );
    // Packing: what the scene's meshes take live and packed, and what packing and unpacking cost.
    let meshes: Vec<theta_mesh::Mesh> = r
        .scene()
        .objects()
        .map(|(_, o)| o.mesh().into_owned())
        .collect();
    let packed_already = r.scene().objects().filter(|(_, o)| o.is_packed()).count();
    let t = Instant::now();
    let packs: Vec<Box<[u8]>> = meshes.iter().map(theta_crdt::packed::pack).collect();
    let pack_time = t.elapsed();
    let t = Instant::now();
    let unpacked: usize = packs
        .iter()
        .map(|p| theta_crdt::packed::unpack(p).vertex_count())
        .sum();
    let unpack_time = t.elapsed();
    println!(
        "packing: {packed_already} of {} objects held packed; all packed {:.1} MB; pack {:.1} µs, unpack {:.1} µs per object ({unpacked} vertices)",
        meshes.len(),
        packs.iter().map(|p| p.len()).sum::<usize>() as f64 / 1e6,
        pack_time.as_secs_f64() * 1e6 / meshes.len() as f64,
        unpack_time.as_secs_f64() * 1e6 / meshes.len() as f64,
    );
    drop((meshes, packs));
    // A fresh author (granted editor) sends moves of existing objects.
    let admin = author_key(0);
    let remote = author_key(7);
    let grant = author::sign(
        &admin,
        r.log(),
        Op::GrantRole {
            author: remote.author(),
            role: Role::Editor,
        },
    );
    r.insert(verify_command(&grant).expect("grant"))
        .expect("insert");
    r.settle();
    let objs: Vec<_> = r.scene().objects().map(|(id, _)| id).take(50).collect();
    let mut with_verify = Vec::new();
    let mut without_verify = Vec::new();
    for i in 0..2000 {
        let op = Op::MoveObject {
            object: objs[i % objs.len()],
            delta: Vec3::new(0.01, 0.0, 0.0),
        };
        let bytes = author::sign(&remote, r.log(), op);
        if i % 2 == 0 {
            let t = Instant::now();
            r.insert(verify_command(&bytes).expect("valid"))
                .expect("insert");
            r.settle();
            with_verify.push(t.elapsed());
        } else {
            let v = verify_command(&bytes).expect("valid");
            let t = Instant::now();
            r.insert(v).expect("insert");
            r.settle();
            without_verify.push(t.elapsed());
        }
    }
    let (a50, a99) = pct(with_verify);
    let (b50, b99) = pct(without_verify);
    println!("remote at tail of 100k (verify+insert+fold): p50 {a50:?} p99 {a99:?}");
    println!("remote at tail of 100k (insert+fold, pre-verified): p50 {b50:?} p99 {b99:?}");
    // 1,000 commands back: a command whose deps are the heads of 1,000 commands ago, by an editor
    // granted before them (a peer that was away while others made 1,000 edits).
    let late = author_key(8);
    let g2 = author::sign(
        &admin,
        r.log(),
        Op::GrantRole {
            author: late.author(),
            role: Role::Editor,
        },
    );
    r.insert(verify_command(&g2).expect("grant"))
        .expect("insert");
    r.settle();
    let mut back = Vec::new();
    let mut stale = r.log().clone();
    for i in 0..1000 {
        let op = Op::MoveObject {
            object: objs[i % objs.len()],
            delta: Vec3::new(0.0, 0.01, 0.0),
        };
        let b = author::sign(&remote, r.log(), op);
        r.insert(verify_command(&b).expect("valid"))
            .expect("insert");
        r.settle();
    }
    for i in 0..20 {
        // Each is concurrent with the last ~1,000 commands: it lands about 1,000 back.
        let op = Op::MoveObject {
            object: objs[i % objs.len()],
            delta: Vec3::new(0.0, 0.0, 0.01),
        };
        let b = author::sign_on(&late, &stale, &stale.heads(), op);
        let v = verify_command(&b).expect("valid");
        stale.insert(v.clone()).ok();
        let t = Instant::now();
        r.insert(v).expect("insert");
        r.settle();
        back.push(t.elapsed());
    }
    let (c50, c99) = pct(back);
    println!(
        "remote landing ~1,000 back in 100k (insert+fold, pre-verified): p50 {c50:?} p99 {c99:?}"
    );
    println!("fold stats: {:?}", r.stats());
    // Where the heap goes: each kind of derived state weighed by what its release frees (at the
    // end, since the arrivals above need it; the log has grown by about 3,000 commands since).
    drop(stale);
    let total = (live_bytes() - base_live) as f64 / 1e6;
    let mut weigh = |what: u8| {
        let before = live_bytes();
        r.release_for_measurement(what);
        (before - live_bytes()) as f64 / 1e6
    };
    let (snapshots, undo, decoded) = (weigh(0), weigh(1), weigh(2));
    let scene = total - log_only as f64 / 1e6 - snapshots - undo - decoded;
    println!(
        "{total:.1} MB live now, of which: snapshots {snapshots:.1} MB, undo records {undo:.1} MB, decoded operations {decoded:.1} MB, the scene (and the log's growth) {scene:.1} MB; {} vertices, {} faces",
        r.scene()
            .objects()
            .map(|(_, o)| o.mesh().vertex_count())
            .sum::<usize>(),
        r.scene()
            .objects()
            .map(|(_, o)| o.mesh().face_count())
            .sum::<usize>()
    );
}

/// The same replica as a reopen restores it from its checkpoint (the app's usual open), after idle
/// housekeeping: its live heap, and what its log, snapshots and undo records take of it.
fn restored_memory(folded: &Replica) {
    let session = folded.log().session().expect("session");
    let base = live_bytes();
    let (ck, checks, records) = {
        let mut scratch = Vec::new();
        let mut records = Vec::new();
        let mut checks = Vec::new();
        for e in folded.log().admitted() {
            checks.push(theta_crdt::store::encode_command_record(
                &e.bytes(),
                &mut scratch,
            ));
            // A copy, as a reopen reads it from the file: nothing shared with `folded`.
            records.push(std::sync::Arc::<[u8]>::from(&e.bytes()[..]));
        }
        let ck = theta_crdt::checkpoint::encode(folded, &checks).expect("settled");
        (ck, checks, records)
    };
    let mut r = theta_crdt::checkpoint::decode(&ck, &session, &records, &checks).expect("restore");
    drop((ck, checks, records));
    while r.pack_idle(64) {}
    let total = (live_bytes() - base) as f64 / 1e6;
    let mut weigh = |what: u8| {
        let before = live_bytes();
        r.release_for_measurement(what);
        (before - live_bytes()) as f64 / 1e6
    };
    let (snapshots, undo, decoded) = (weigh(0), weigh(1), weigh(2));
    println!(
        "restored from its checkpoint, after idle housekeeping: {total:.1} MB live heap, of which snapshots {snapshots:.1} MB, undo records {undo:.1} MB, decoded operations {decoded:.1} MB, the log (cold bytes compressed) and the scene {:.1} MB",
        total - snapshots - undo - decoded
    );
}

/// Batch verification (64 per batch) spread over all cores with rayon.
fn verification_throughput() {
    let cmds = workload::session(7, 3, 20_000);
    let refs: Vec<&[u8]> = cmds.iter().map(Vec::as_slice).collect();
    let t = Instant::now();
    let ok: usize = refs
        .par_chunks(64)
        .map(|chunk| {
            use rand::SeedableRng;
            let rng = rand::rngs::StdRng::seed_from_u64(chunk.len() as u64);
            verify_commands(chunk, rng)
                .iter()
                .filter(|r| r.is_ok())
                .count()
        })
        .sum();
    let dt = t.elapsed();
    assert_eq!(ok, refs.len());
    println!(
        "signature verification, batch of 64 + rayon on {} threads: {:.0} commands/s",
        rayon::current_num_threads(),
        ok as f64 / dt.as_secs_f64()
    );
}
