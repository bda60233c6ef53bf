//! The local session driver and the user's identity, on real files: edits are durable before they
//! are folded, survive a reopen (through the checkpoint or without it), never reuse a sequence
//! number, and commands from a peer are saved in the order the log admitted them; the identity
//! is made once with mode 0600 and read back, and a damaged one is an error, never replaced.

use std::os::unix::fs::PermissionsExt;

use theta::identity;
use theta::session::Session;
use theta_crdt::author;
use theta_crdt::command::{ObjectTransform, Op};
use theta_crdt::ids::{DerivedIds, Role};
use theta_crdt::workload::author_key;
use theta_mesh::{MaterialId, Primitive, Vec3};

fn cube(name: &str) -> Op {
    Op::CreateObject {
        name: name.into(),
        primitive: Primitive::Cuboid { size: Vec3::ONE },
        material: MaterialId(0),
        transform: ObjectTransform::IDENTITY,
    }
}

#[test]
fn edits_survive_reopening_and_sequence_numbers_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.theta");
    let me = author_key(0);
    let mut s = Session::create(&path, &me, "demo").unwrap();
    let (c, _) = s.edit(cube("a")).unwrap();
    let obj = DerivedIds::new(&c).object();
    s.edit(Op::MoveObject {
        object: obj,
        delta: Vec3::new(1.0, 0.0, 0.0),
    })
    .unwrap();
    let hash = s.replica().scene().state_hash();
    // Dropped without closing (as a killed process would): no checkpoint, the file alone.
    drop(s);
    let (mut s, report) = Session::open(&path, &me).unwrap();
    assert_eq!(report.from_checkpoint, 0);
    assert_eq!((report.dropped, report.refused), (0, 0));
    assert_eq!(s.replica().scene().state_hash(), hash);
    assert_eq!(s.replica().scene().name(), "demo");
    let (c3, _) = s.edit(cube("b")).unwrap();
    let e = s.replica().log().get(&c3).unwrap();
    assert_eq!(e.seq, 4, "genesis, cube, move, then this: no number reused");
    let hash = s.replica().scene().state_hash();
    s.close().unwrap();
    // Closed: the next open restores the checkpoint.
    let (s, report) = Session::open(&path, &me).unwrap();
    assert_eq!(report.from_checkpoint, 4);
    assert_eq!(report.checkpoint_problem, None);
    assert_eq!(s.replica().scene().state_hash(), hash);
}

#[test]
fn commands_from_a_peer_are_saved_in_admission_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.theta");
    let admin = author_key(0);
    let peer = author_key(1);
    let mut s = Session::create(&path, &admin, "shared").unwrap();
    s.edit(Op::GrantRole {
        author: peer.author(),
        role: Role::Editor,
    })
    .unwrap();
    // The peer makes two commands; the second arrives first and waits for the first.
    let mut theirs = s.replica().clone();
    let one = author::sign(&peer, theirs.log(), cube("p1"));
    theirs
        .insert(theta_crdt::log::verify_command(&one).unwrap())
        .unwrap();
    let two = author::sign(&peer, theirs.log(), cube("p2"));
    let (r, _) = s.receive(&two).unwrap();
    assert!(matches!(r, theta_crdt::log::Inserted::Pending(_)), "{r:?}");
    let (r, _) = s.receive(&one).unwrap();
    assert!(matches!(r, theta_crdt::log::Inserted::Added(ref ids) if ids.len() == 2));
    let hash = s.replica().scene().state_hash();
    assert_eq!(s.replica().scene().object_count(), 2);
    s.close().unwrap();
    let (s, report) = Session::open(&path, &admin).unwrap();
    assert_eq!(report.from_checkpoint, 4);
    assert_eq!(s.replica().scene().state_hash(), hash);
    // Without the checkpoint too: the file's order is one the log accepts from scratch.
    std::fs::remove_file(theta::store::checkpoint_path(&path)).unwrap();
    let (s, report) = Session::open(&path, &admin).unwrap();
    assert_eq!((report.from_checkpoint, report.refused), (0, 0));
    assert_eq!(s.replica().scene().state_hash(), hash);
    // Forged bytes are an error and save nothing.
    let mut s = s;
    assert!(s.receive(b"not a command").is_err());
    assert_eq!(s.replica().log().len(), 4);
}

#[test]
fn the_identity_is_made_once_private_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = identity::load_or_create(dir.path()).unwrap();
    let file = dir.path().join("identity.key");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the user may read the key");
    let b = identity::load_or_create(dir.path()).unwrap();
    assert_eq!(a.author(), b.author(), "the same identity on every run");
    // A damaged key file is an error naming it, and stays as it was.
    std::fs::write(&file, b"THETAKEY too short").unwrap();
    let err = format!("{:#}", identity::load_or_create(dir.path()).unwrap_err());
    assert!(
        err.contains("identity.key") && err.contains("not a Theta identity"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"THETAKEY too short");
}

#[test]
fn theta_new_creates_a_session_as_this_user() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_theta"))
            .args(args)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env_remove("XDG_DATA_HOME")
            .output()
            .unwrap()
    };
    let o = run(&["new", "m.theta", "--name", "model"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("created m.theta: session "));
    assert!(dir.path().join(".local/share/theta/identity.key").exists());
    let o = run(&["info", "m.theta"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("\"model\"") && out.contains("commands: 1, authors: 1"),
        "{out}"
    );
    // Never over an existing file.
    let o = run(&["new", "m.theta"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
}

/// A generated session (seed, authors, commands) and a new session file `s.theta` in a
/// temporary directory that user 7 joined it into, holding only its genesis.
fn joined(seed: u64, authors: usize, count: usize) -> (tempfile::TempDir, Vec<Vec<u8>>, Session) {
    let dir = tempfile::tempdir().unwrap();
    let cmds = theta_crdt::workload::session(seed, authors, count);
    let s = Session::create_joined(&dir.path().join("s.theta"), &author_key(7), &cmds[0]).unwrap();
    (dir, cmds, s)
}

#[test]
fn a_catch_up_is_saved_as_blocks_and_a_torn_block_loses_only_itself() {
    let (dir, cmds, mut s) = joined(9, 3, 600);
    let path = dir.path().join("s.theta");
    let me = author_key(7);
    let refs: Vec<&[u8]> = cmds[1..].iter().map(|c| &c[..]).collect();
    let (first, second) = refs.split_at(300);
    assert!(s.receive_batch(first, true).unwrap().refused.is_empty());
    let after_first = std::fs::metadata(&path).unwrap().len();
    assert!(s.receive_batch(second, false).unwrap().refused.is_empty());
    let hash = s.replica().scene().state_hash();
    let total = s.replica().log().len();
    assert_eq!(total, cmds.len());
    drop(s);
    // Compressed blocks, not loose records, and no compaction needed to get there.
    let raw: usize = cmds.iter().map(|c| c.len()).sum();
    let size = std::fs::metadata(&path).unwrap().len() as usize;
    assert!(
        size * 10 < raw * 7,
        "{size} bytes on disk for {raw} bytes of commands"
    );
    std::fs::remove_file(theta::store::checkpoint_path(&path)).ok();
    let (s, report) = Session::open(&path, &me).unwrap();
    assert_eq!((report.dropped, report.refused), (0, 0));
    assert_eq!(s.replica().scene().state_hash(), hash);
    drop(s);
    // A write torn inside the last block drops that block, and only it.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(size as u64 - 10).unwrap();
    drop(f);
    let (s, report) = Session::open(&path, &me).unwrap();
    assert!(report.dropped > 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), after_first);
    assert_eq!(s.replica().log().len(), 1 + first.len());
}

#[test]
fn deferred_housekeeping_waits_for_idle_time_but_not_forever() {
    let (dir, cmds, mut s) = joined(11, 2, 200);
    let path = dir.path().join("s.theta");
    let me = author_key(7);
    // A checkpoint due every 10 commands, a compaction every 3,000 loose bytes (a command is a
    // few hundred bytes); deferred, they wait for 40 commands and 12,000 bytes.
    s.set_intervals(10, 3_000);
    s.defer_housekeeping(true);
    let checkpoint = theta::store::checkpoint_path(&path);
    let compacted = |p: &std::path::Path| {
        theta_crdt::store::parse(&std::fs::read(p).unwrap())
            .unwrap()
            .tail_offset
            > theta_crdt::store::HEADER_LEN as u64
    };
    for c in &cmds[1..21] {
        s.receive(c).unwrap();
    }
    assert!(!checkpoint.exists(), "no checkpoint before idle time");
    assert!(!compacted(&path), "no compaction before idle time");
    // Idle time does both, a step at a time, and then says when nothing is left.
    let mut steps = 0;
    while s.idle().unwrap() {
        steps += 1;
        assert!(steps < 1_000, "idle housekeeping ends");
    }
    assert!(checkpoint.exists(), "idle time saved a checkpoint");
    assert!(compacted(&path), "idle time compacted the file");
    // A burst with no idle time still checkpoints once 4 x the interval has passed.
    std::fs::remove_file(&checkpoint).unwrap();
    for c in &cmds[21..60] {
        s.receive(c).unwrap();
    }
    assert!(!checkpoint.exists(), "39 commands: under 4 x 10");
    s.receive(&cmds[60]).unwrap();
    assert!(checkpoint.exists(), "40 commands: the deferred limit");
    let hash = s.replica().scene().state_hash();
    drop(s);
    // The file holds every command, and opens to the same scene from the checkpoint or without.
    let (s, report) = Session::open(&path, &me).unwrap();
    assert_eq!((report.dropped, report.refused), (0, 0));
    assert!(report.from_checkpoint > 0);
    assert_eq!(s.replica().log().len(), 61);
    assert_eq!(s.replica().scene().state_hash(), hash);
    drop(s);
    std::fs::remove_file(&checkpoint).unwrap();
    let (s, _) = Session::open(&path, &me).unwrap();
    assert_eq!(s.replica().scene().state_hash(), hash);
}

#[test]
fn blocks_encoded_before_the_batch_is_taken_are_saved_only_if_the_log_admits_exactly_them() {
    let (dir, cmds, mut s) = joined(12, 3, 500);
    let path = dir.path().join("s.theta");
    let arcs: Vec<std::sync::Arc<[u8]>> = cmds[1..]
        .iter()
        .map(|c| std::sync::Arc::from(&c[..]))
        .collect();
    // The first batch as a catch-up's reader prepares it: admitted whole, its blocks are used.
    let first = theta::session::prepare(&arcs[..200]).unwrap();
    assert_eq!(s.receive_verified(first, true).unwrap().admitted.len(), 200);
    // The second overlaps the first by 50 commands, which the log takes as duplicates: the
    // prepared blocks hold those too, so the session saves the admitted ones itself.
    let second = theta::session::prepare(&arcs[150..]).unwrap();
    let b = s.receive_verified(second, false).unwrap();
    assert_eq!((b.admitted.len(), b.duplicates), (arcs.len() - 200, 50));
    let hash = s.replica().scene().state_hash();
    assert_eq!(s.replica().log().len(), cmds.len());
    drop(s);
    // Every command is on disk once: the file alone opens to the same scene.
    let parsed = theta_crdt::store::parse(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(parsed.commands.len(), cmds.len());
    std::fs::remove_file(theta::store::checkpoint_path(&path)).ok();
    let (s, report) = Session::open(&path, &author_key(7)).unwrap();
    assert_eq!((report.dropped, report.refused), (0, 0));
    assert_eq!(s.replica().log().len(), cmds.len());
    assert_eq!(s.replica().scene().state_hash(), hash);
}

#[test]
fn a_session_folded_at_open_is_reloaded_from_its_first_checkpoint_in_idle_time() {
    let (dir, cmds, mut s) = joined(13, 3, 600);
    let path = dir.path().join("s.theta");
    let me = author_key(7);
    let refs: Vec<&[u8]> = cmds[1..].iter().map(|c| &c[..]).collect();
    assert!(s.receive_batch(&refs, false).unwrap().refused.is_empty());
    let hash = s.replica().scene().state_hash();
    drop(s);
    let checkpoint = theta::store::checkpoint_path(&path);
    std::fs::remove_file(&checkpoint).ok();
    let idle = |s: &mut Session| {
        let mut steps = 0;
        while s.idle().unwrap() {
            steps += 1;
            assert!(steps < 10_000, "idle housekeeping ends");
        }
    };

    // Below the threshold: the checkpoint is saved, the folded replica stays.
    let (mut s, report) = Session::open(&path, &me).unwrap();
    assert_eq!(report.from_checkpoint, 0);
    let folded = s.replica().stats().applied;
    assert!(folded >= cmds.len() as u64, "{folded}");
    // A checkpoint due every 100 commands (600 are folded, so one is due now).
    s.set_intervals(100, 1 << 30);
    s.set_reload_min(cmds.len() + 1);
    idle(&mut s);
    assert!(checkpoint.exists());
    assert_eq!(s.replica().stats().applied, folded, "not reloaded");
    drop(s);
    std::fs::remove_file(&checkpoint).unwrap();

    // At the threshold: after the first checkpoint the replica is the one it restores, which
    // folded nothing itself, with the same log and scene.
    let (mut s, report) = Session::open(&path, &me).unwrap();
    assert_eq!(report.from_checkpoint, 0);
    s.set_intervals(100, 1 << 30);
    s.set_reload_min(cmds.len());
    idle(&mut s);
    assert_eq!(
        s.replica().stats().applied,
        0,
        "reloaded from the checkpoint"
    );
    assert_eq!(s.replica().log().len(), cmds.len());
    assert_eq!(s.replica().scene().state_hash(), hash);
    // Once: later checkpoints do not reload again.
    let (id, _) = s.edit(cube("after the reload")).unwrap();
    s.checkpoint().unwrap();
    idle(&mut s);
    assert_eq!(s.replica().stats().applied, 1);
    let hash = s.replica().scene().state_hash();
    drop(s);
    // The session goes on from there: reopened from the checkpoint or from the file alone.
    let (s, report) = Session::open(&path, &me).unwrap();
    assert_eq!(report.from_checkpoint as usize, cmds.len() + 1);
    assert!(s.replica().log().contains(&id));
    assert_eq!(s.replica().scene().state_hash(), hash);
    drop(s);
    std::fs::remove_file(&checkpoint).unwrap();
    let (s, _) = Session::open(&path, &me).unwrap();
    assert_eq!(s.replica().scene().state_hash(), hash);
}
