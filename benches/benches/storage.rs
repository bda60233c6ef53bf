//! The session file on disk: opening a 100,000-command session (read, verify every signature, fold)
//! and opening it from its checkpoint, against yrs loading and reading the same signed commands as
//! plain map entries; and the bytes on disk against automerge 0.12, yrs and loro holding the same
//! signed commands in a map, in the same run.
//!
//! The session is the seeded realistic one that tests share (`workload::session`, 3 authors), written
//! in the session-file format exactly as the app writes it. The baselines store each command's
//! signed bytes as a bytes value keyed by the command id in hex (the layout of `crdt_merge`'s
//! 100k-entry documents) and, for automerge, also keyed by its position (short keys, the most
//! favourable layout for it).
//!
//! Run: `cargo bench -p theta-benches --bench storage`

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use theta_crdt::checkpoint;
use theta_crdt::open::open;
use theta_crdt::store;
use theta_crdt::workload;

/// Commands in the session (plus genesis and the two grants).
const COMMANDS: usize = 100_000;

struct Files {
    dir: PathBuf,
    session_file: PathBuf,
    checkpoint_file: PathBuf,
    /// Every command's id (hex) and signed bytes, in file order, for the baselines.
    entries: Vec<(String, Vec<u8>)>,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn seed() -> [u8; 32] {
    // A benchmark needs no secret: the app draws this from the operating system.
    *blake3::hash(b"theta storage bench").as_bytes()
}

fn files() -> Files {
    let t = Instant::now();
    let cmds = workload::session(42, 3, COMMANDS);
    eprintln!("generated {} commands in {:?}", cmds.len(), t.elapsed());
    let dir = std::env::temp_dir().join(format!("theta-storage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let session_file = dir.join("session.theta");
    let checkpoint_file = dir.join("session.theta.checkpoint");
    let commands: Vec<Arc<[u8]>> = cmds.iter().map(|c| Arc::from(c.as_slice())).collect();
    // The file as the app writes it: the log's canonical bytes, in the order it admitted them.
    let first = open(
        theta_crdt::log::verify_command(&commands[0])
            .expect("genesis")
            .id(),
        &commands,
        &[],
        None,
        seed(),
    );
    assert!(first.refused.is_empty(), "the generated session is valid");
    let r = first.replica;
    let session = r.log().session().expect("session");
    let mut bytes = store::encode_header(&session).to_vec();
    let mut checks = Vec::new();
    let mut entries = Vec::new();
    for e in r.log().admitted() {
        checks.push(store::encode_command_record(&e.bytes(), &mut bytes));
        entries.push((e.id.to_string(), e.bytes().to_vec()));
    }
    let loose = bytes.len();
    // The app compacts as it goes (see `src/store.rs`); one compaction of the whole file gives the
    // same blocks.
    let t = Instant::now();
    let bytes = store::compact(&bytes).expect("compact");
    eprintln!(
        "compacted {loose} bytes of single-command records to {} in {:?}",
        bytes.len(),
        t.elapsed()
    );
    std::fs::write(&session_file, &bytes).expect("write session");
    if let Some(to) = std::env::var_os("THETA_BENCH_SAVE_SESSION") {
        // Keeps a copy for inspection (profiling, compression experiments).
        std::fs::write(to, &bytes).expect("write copy");
    }
    let ck = checkpoint::encode(&r, &checks).expect("checkpoint");
    std::fs::write(&checkpoint_file, &ck).expect("write checkpoint");
    eprintln!(
        "session file {} bytes ({} commands, {} bytes of signed commands); checkpoint {} bytes; {} objects",
        bytes.len(),
        entries.len(),
        entries.iter().map(|(_, v)| v.len()).sum::<usize>(),
        ck.len(),
        r.scene().object_count()
    );
    Files {
        dir,
        session_file,
        checkpoint_file,
        entries,
    }
}

/// Reads the session file and opens it, with or without its checkpoint.
fn open_from_disk(f: &Files, with_checkpoint: bool) -> theta_crdt::open::Opened {
    let bytes = std::fs::read(&f.session_file).expect("read");
    let p = store::parse(&bytes).expect("parse");
    let ck = with_checkpoint.then(|| std::fs::read(&f.checkpoint_file).expect("read checkpoint"));
    let o = open(p.session, &p.commands, &p.checks, ck.as_deref(), seed());
    assert!(
        o.refused.is_empty() && o.checkpoint_error.is_none(),
        "{:?} {:?}",
        o.refused.first(),
        o.checkpoint_error
    );
    o
}

/// Sync bytes on the 100,000-command, 3-author history: a reconnect with nothing new, and one new
/// command (application bytes, as encoded).
fn sync_bytes(mut a: theta_crdt::fold::Replica) {
    use theta_crdt::sync::SyncSession;
    use theta_crdt::wire::{decode_sync, encode_sync};
    let b = a.clone();
    let (_, ma) = SyncSession::start(a.log(), 60 * 1024).expect("session");
    let (_, mb) = SyncSession::start(b.log(), 60 * 1024).expect("session");
    let reconnect = encode_sync(&ma).len() + encode_sync(&mb).len();
    let object = a
        .scene()
        .objects()
        .map(|(id, _)| id)
        .next()
        .expect("objects");
    let new = theta_crdt::author::sign_local(
        &workload::author_key(1),
        a.log(),
        theta_crdt::command::Op::MoveObject {
            object,
            delta: theta_mesh::Vec3::new(0.5, 0.0, 0.0),
        },
    )
    .expect("sign");
    let envelope = new.bytes().len();
    a.insert(new).expect("insert");
    a.settle();
    let (mut sa, ma) = SyncSession::start(a.log(), 60 * 1024).expect("session");
    let (mut sb, mb) = SyncSession::start(b.log(), 60 * 1024).expect("session");
    sa.handle(a.log(), &decode_sync(&encode_sync(&mb)).expect("decode"))
        .expect("same session");
    sb.handle(b.log(), &decode_sync(&encode_sync(&ma)).expect("decode"))
        .expect("same session");
    let batch = sa.poll().expect("one batch");
    assert!(
        sa.poll().is_none() && sb.poll().is_none(),
        "nothing more to send"
    );
    let a_to_b = encode_sync(&ma).len() + encode_sync(&batch).len();
    let b_to_a = encode_sync(&mb).len();
    println!(
        "sync on {} commands of 3 authors: reconnect with nothing new {reconnect} B in total \
         (target <= 300); one new command a->b {a_to_b} B for a {envelope} B envelope \
         (target <= envelope + 200), b->a {b_to_a} B (target <= 200)",
        b.log().len()
    );
}

/// Where the time of each open goes, printed once (one run each, so rougher than criterion's).
fn phases(f: &Files) {
    let t = Instant::now();
    let bytes = std::fs::read(&f.session_file).expect("read");
    let ck = std::fs::read(&f.checkpoint_file).expect("read checkpoint");
    let read = t.elapsed();
    let t = Instant::now();
    let p = store::parse(&bytes).expect("parse");
    let parse = t.elapsed();
    let t = Instant::now();
    let r = checkpoint::decode(&ck, &p.session, &p.commands, &p.checks).expect("decode");
    let restore = t.elapsed();
    drop(r);
    let t = Instant::now();
    let verified = theta_crdt::log::verify_commands_parallel(&p.commands, seed());
    let verify = t.elapsed();
    let t = Instant::now();
    let mut r = theta_crdt::fold::Replica::new(p.session);
    for v in verified {
        r.insert(v.expect("valid")).expect("insert");
    }
    let insert = t.elapsed();
    // Profiling aid: `THETA_BENCH_FOLD_REPEAT=n` folds the whole log n more times.
    let repeat: usize = std::env::var("THETA_BENCH_FOLD_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for _ in 0..repeat {
        black_box(r.full_replay());
    }
    let t = Instant::now();
    r.settle();
    let fold = t.elapsed();
    drop(r);
    let t = Instant::now();
    let o = open(p.session, &p.commands, &p.checks, None, seed());
    let whole = t.elapsed();
    drop(o);
    eprintln!(
        "phases: open without checkpoint {whole:?}; read both files {read:?}, parse {parse:?}, restore checkpoint {restore:?}; \
         verify {verify:?}, insert {insert:?}, fold {fold:?}"
    );
}

fn open_100k(c: &mut Criterion) {
    let f = files();
    let full = open_from_disk(&f, false);
    let restored = open_from_disk(&f, true);
    assert_eq!(restored.from_checkpoint, full.replica.log().len() as u64);
    assert_eq!(
        restored.replica.scene().state_hash(),
        full.replica.scene().state_hash(),
        "the checkpoint restores the folded scene"
    );
    drop(restored);
    sync_bytes(full.replica);
    phases(&f);
    if std::env::var_os("THETA_BENCH_PHASES_ONLY").is_some() {
        return;
    }

    let mut g = c.benchmark_group("open_100k_from_disk");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("theta_full_verify_and_fold", |b| {
        b.iter_with_large_drop(|| open_from_disk(&f, false))
    });
    g.bench_function("theta_from_checkpoint", |b| {
        b.iter_with_large_drop(|| open_from_disk(&f, true))
    });
    let y_file = f.dir.join("yrs.bin");
    std::fs::write(&y_file, y::save(&f.entries)).expect("write yrs");
    g.bench_function("yrs_load_and_read_same_entries_unsigned_unfolded", |b| {
        b.iter(|| black_box(y::load_and_read(&std::fs::read(&y_file).expect("read"))))
    });
    g.finish();

    // Bytes on disk, same commands.
    let theta = std::fs::metadata(&f.session_file).expect("meta").len();
    let am_hex = am::save(&f.entries, false).len();
    let am_short = am::save(&f.entries, true).len();
    let yrs = y::save(&f.entries).len();
    let loro = lo::save(&f.entries).len();
    let raw: usize = f.entries.iter().map(|(_, v)| v.len()).sum();
    println!(
        "on disk, {} signed commands ({raw} bytes):",
        f.entries.len()
    );
    println!("  theta session file         {theta:>10} bytes");
    println!("  automerge, keyed by id     {am_hex:>10} bytes");
    println!("  automerge, keyed by index  {am_short:>10} bytes");
    println!("  yrs, keyed by id           {yrs:>10} bytes");
    println!("  loro, keyed by id          {loro:>10} bytes");
}

mod am {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};

    pub(super) fn save(entries: &[(String, Vec<u8>)], short_keys: bool) -> Vec<u8> {
        let mut doc = AutoCommit::new();
        let map = doc.put_object(ROOT, "log", ObjType::Map).expect("put");
        for (i, (k, v)) in entries.iter().enumerate() {
            let key = if short_keys { i.to_string() } else { k.clone() };
            doc.put(&map, key, ScalarValue::Bytes(v.clone()))
                .expect("put");
        }
        doc.commit();
        doc.save()
    }
}

mod y {
    use std::sync::Arc;

    use yrs::updates::decoder::Decode;
    use yrs::{Any, Doc, Map, Out, ReadTxn, StateVector, Transact, Update};

    pub(super) fn save(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let doc = Doc::with_client_id(1);
        let map = doc.get_or_insert_map("log");
        {
            let mut txn = doc.transact_mut();
            for (k, v) in entries {
                map.insert(&mut txn, k.as_str(), Any::Buffer(Arc::from(v.as_slice())));
            }
        }
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// Loads a saved document and reads every entry's bytes; returns the bytes read.
    pub(super) fn load_and_read(saved: &[u8]) -> usize {
        let doc = Doc::with_client_id(2);
        let map = doc.get_or_insert_map("log");
        doc.transact_mut()
            .apply_update(Update::decode_v1(saved).expect("decode"))
            .expect("apply");
        let txn = doc.transact();
        map.iter(&txn)
            .map(|(_, v)| match v {
                Out::Any(Any::Buffer(b)) => b.len(),
                _ => 0,
            })
            .sum()
    }
}

mod lo {
    use loro::{ExportMode, LoroDoc};

    pub(super) fn save(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let doc = LoroDoc::new();
        let map = doc.get_map("log");
        for (k, v) in entries {
            map.insert(k, v.clone()).expect("insert");
        }
        doc.commit();
        doc.export(ExportMode::Snapshot).expect("export")
    }
}

criterion_group!(benches, open_100k);
criterion_main!(benches);
