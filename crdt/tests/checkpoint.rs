//! Checkpoints and opening a session: a restored replica equals the one that was saved and folds
//! later commands identically; a checkpoint that does not match its session file (another session,
//! a shorter file, other records, damage, a newer format) is reported and ignored, never trusted;
//! and a file with a bad signature opens exactly as verifying first would.

use std::sync::Arc;

use theta_crdt::checkpoint::{self, CheckpointError};
use theta_crdt::fold::Replica;
use theta_crdt::ids::CommandId;
use theta_crdt::log::verify_command;
use theta_crdt::open::{Opened, open};
use theta_crdt::store;
use theta_crdt::workload;

const SEED: [u8; 32] = [9; 32];

/// A session file's records and checksums, as the app writes them (the log's admission order).
struct File {
    session: CommandId,
    records: Vec<Arc<[u8]>>,
    checks: Vec<[u8; 8]>,
}

fn file_of(r: &Replica) -> File {
    let mut scratch = Vec::new();
    let mut records = Vec::new();
    let mut checks = Vec::new();
    for e in r.log().admitted() {
        checks.push(store::encode_command_record(&e.bytes(), &mut scratch));
        records.push(e.bytes());
    }
    File {
        session: r.log().session().expect("session"),
        records,
        checks,
    }
}

fn generated(seed: u64, n: usize) -> Vec<Arc<[u8]>> {
    workload::session(seed, 3, n)
        .into_iter()
        .map(Arc::from)
        .collect()
}

fn full_open(cmds: &[Arc<[u8]>]) -> Opened {
    let session = verify_command(&cmds[0]).expect("genesis").id();
    let o = open(session, cmds, &[], None, SEED);
    assert!(o.refused.is_empty(), "{:?}", o.refused.first());
    o
}

/// Everything a replica is, compared: the scene (undo records and histories included), its hash,
/// the rejections, and the log's order, heads and chains.
fn assert_same(a: &Replica, b: &Replica) {
    assert_eq!(a.scene(), b.scene());
    assert_eq!(a.scene().state_hash(), b.scene().state_hash());
    assert_eq!(a.rejections(), b.rejections());
    let ids = |r: &Replica| r.log().ordered().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(a), ids(b));
    assert_eq!(a.log().heads(), b.log().heads());
    for author in a.log().authors() {
        assert_eq!(a.log().last_seq(&author), b.log().last_seq(&author));
    }
    assert_eq!(a.log().equivocators(), b.log().equivocators());
}

#[test]
fn a_restored_replica_equals_the_saved_one() {
    let saved = full_open(&generated(7, 1_500)).replica;
    let f = file_of(&saved);
    let ck = checkpoint::encode(&saved, &f.checks).expect("settled");
    let o = open(f.session, &f.records, &f.checks, Some(&ck), SEED);
    assert_eq!(o.checkpoint_error, None);
    assert_eq!(o.from_checkpoint, f.records.len() as u64);
    assert_same(&o.replica, &saved);
    assert!(
        saved.rejections().len() > 10 && saved.scene().object_count() > 10,
        "the session exercises rejections and many objects"
    );
    // Encoding is deterministic.
    assert_eq!(checkpoint::encode(&o.replica, &f.checks), Ok(ck));
}

#[test]
fn a_checkpoint_of_a_prefix_then_the_tail_equals_the_full_open() {
    // The generator is deterministic, so the first 1,000 edits of a 1,600-edit session are the
    // 1,000-edit session: checkpoint that, then open the longer file with it.
    let early = full_open(&generated(11, 1_000)).replica;
    let ck = checkpoint::encode(&early, &file_of(&early).checks).expect("settled");
    let whole = full_open(&generated(11, 1_600)).replica;
    let f = file_of(&whole);
    let o = open(f.session, &f.records, &f.checks, Some(&ck), SEED);
    assert_eq!(o.checkpoint_error, None);
    assert_eq!(o.from_checkpoint, early.log().len() as u64);
    assert!(o.refused.is_empty());
    assert_same(&o.replica, &whole);
    // And the restored replica keeps folding like the original: one more round of the same
    // commands arriving again is a no-op on both.
    let mut a = o.replica;
    let mut b = whole;
    for c in f.records.iter().rev().take(20) {
        a.insert(verify_command(c).expect("valid")).expect("dup");
        b.insert(verify_command(c).expect("valid")).expect("dup");
    }
    a.settle();
    b.settle();
    assert_same(&a, &b);
}

#[test]
fn a_checkpoint_that_does_not_match_is_reported_and_ignored() {
    let cmds = generated(5, 300);
    let saved = full_open(&cmds).replica;
    let f = file_of(&saved);
    let ck = checkpoint::encode(&saved, &f.checks).expect("settled");
    let reference = &saved;
    let check = |records: &[Arc<[u8]>],
                 checks: &[[u8; 8]],
                 ck: &[u8],
                 want: fn(&CheckpointError) -> bool| {
        let o = open(f.session, records, checks, Some(ck), SEED);
        let err = o.checkpoint_error.as_ref().expect("refused");
        assert!(want(err), "unexpected {err:?}");
        assert_eq!(o.from_checkpoint, 0);
        o
    };
    // A shorter file (it lost its tail since the checkpoint).
    let n = f.records.len() - 5;
    check(&f.records[..n], &f.checks[..n], &ck, |e| {
        matches!(e, CheckpointError::Ahead { .. })
    });
    // Other records under the same count: the digest differs.
    let mut checks = f.checks.clone();
    checks[3][0] ^= 1;
    let o = check(&f.records, &checks, &ck, |e| {
        *e == CheckpointError::Mismatch
    });
    assert_same(&o.replica, reference);
    // Damage anywhere in the body, a newer version, not a checkpoint at all, cut short.
    for at in [checkpoint::HEADER_LEN, ck.len() / 2, ck.len() - 1] {
        let mut bad = ck.clone();
        bad[at] ^= 0x40;
        let o = check(&f.records, &f.checks, &bad, |e| {
            matches!(e, CheckpointError::Corrupt(_))
        });
        assert_same(&o.replica, reference);
    }
    let mut newer = ck.clone();
    newer[8] = 2;
    check(&f.records, &f.checks, &newer, |e| {
        *e == CheckpointError::NewerVersion(2)
    });
    check(&f.records, &f.checks, b"PK\x03\x04zip", |e| {
        *e == CheckpointError::NotACheckpoint
    });
    check(&f.records, &f.checks, &ck[..ck.len() - 9], |e| {
        matches!(e, CheckpointError::Corrupt(_))
    });
    // Another session's checkpoint.
    // (Generated sessions share their genesis, so this one is made by hand.)
    let g: Arc<[u8]> = Arc::from(theta_crdt::author::genesis(
        &workload::author_key(0),
        "other",
    ));
    let other = full_open(&[g]).replica;
    let other_ck = checkpoint::encode(&other, &file_of(&other).checks).expect("settled");
    check(&f.records, &f.checks, &other_ck, |e| {
        *e == CheckpointError::OtherSession
    });
}

#[test]
fn damaged_checkpoints_never_panic_or_restore_a_wrong_scene() {
    let saved = full_open(&generated(3, 40)).replica;
    let f = file_of(&saved);
    let ck = checkpoint::encode(&saved, &f.checks).expect("settled");
    let mut accepted = 0;
    for at in (0..ck.len()).step_by(7) {
        for cut in [false, true] {
            let bad: Vec<u8> = if cut {
                ck[..at].to_vec()
            } else {
                let mut b = ck.clone();
                b[at] = b[at].wrapping_add(0x5b);
                b
            };
            // Straight at the decoder, so header checks do not hide the body's.
            if let Ok(r) = checkpoint::decode(&bad, &f.session, &f.records, &f.checks) {
                accepted += 1;
                assert_same(&r, &saved);
            }
        }
    }
    // The body checksum catches every change, so only the unchanged flags field may differ.
    assert!(accepted <= 1, "{accepted} damaged checkpoints accepted");
}

#[test]
fn an_unsettled_replica_cannot_be_checkpointed() {
    let cmds = generated(4, 30);
    let mut r = Replica::new(verify_command(&cmds[0]).expect("genesis").id());
    for c in &cmds {
        r.insert(verify_command(c).expect("valid")).expect("insert");
    }
    let f = file_of(&r);
    assert_eq!(
        checkpoint::encode(&r, &f.checks),
        Err(CheckpointError::Unsettled)
    );
    r.settle();
    assert!(checkpoint::encode(&r, &f.checks).is_ok());
}

#[test]
fn a_bad_signature_in_the_file_opens_as_verifying_first_would() {
    let cmds = generated(8, 200);
    let saved = full_open(&cmds).replica;
    let mut f = file_of(&saved);
    // Flip a bit in the last byte (inside the signature) of a command in the middle: it still
    // decodes, but its signature fails; it is refused, and the commands that depend on it wait.
    let k = 120;
    let mut bad = f.records[k].to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    f.records[k] = Arc::from(bad);
    let o = open(f.session, &f.records, &[], None, SEED);
    assert!(o.refused.iter().any(|(i, _)| *i == k), "{:?}", o.refused);
    // What verifying one by one, then inserting, gives.
    let mut r = Replica::new(f.session);
    for c in &f.records {
        if let Ok(v) = verify_command(c) {
            let _ = r.insert(v);
        }
    }
    r.settle();
    assert_same(&o.replica, &r);
    assert!(o.replica.log().len() < saved.log().len());
}

/// How many of the scene's objects are held packed.
fn packed(r: &Replica) -> usize {
    r.scene().objects().filter(|(_, o)| o.is_packed()).count()
}

/// Packs in idle steps until the replica says nothing is left; returns how many steps it took.
fn pack_until_idle(r: &mut Replica) -> usize {
    let mut steps = 0;
    while r.pack_idle(16) {
        steps += 1;
        assert!(steps < 100_000, "idle packing never finishes");
    }
    steps
}

#[test]
fn idle_packing_after_opening_packs_the_cold_scene_and_changes_nothing() {
    let all = generated(5, 2_300);
    let cmds = &all[..2_000];
    let reference = full_open(cmds).replica;
    let f = file_of(&reference);
    let ck = checkpoint::encode(&reference, &f.checks).expect("settled");
    let restored = open(f.session, &f.records, &f.checks, Some(&ck), SEED).replica;
    // The checkpoint's restore folds nothing, so its command bytes start uncompressed; idle
    // time compresses them as far as a full open's fold does.
    let cold = full_open(cmds).replica.log().cold_len();
    assert!(cold > 0, "a full open compresses what went cold");
    assert_eq!(restored.log().cold_len(), 0);
    for mut r in [full_open(cmds).replica, restored] {
        let total = r.scene().object_count();
        let before = packed(&r);
        let steps = pack_until_idle(&mut r);
        let after = packed(&r);
        assert!(steps > 1, "more than one step: {steps}");
        assert!(
            after > before && after * 2 > total,
            "idle packing packed {before} -> {after} of {total} objects"
        );
        // Done stays done, and packing changed nothing but memory: the replica, its checkpoint,
        // and what later commands fold to are as without it.
        assert!(!r.pack_idle(16));
        assert_eq!(r.log().cold_len(), cold);
        assert_same(&r, &reference);
        assert_eq!(checkpoint::encode(&r, &f.checks), Ok(ck.clone()));
        let mut unpacked = reference.clone();
        for c in &all[2_000..] {
            let v = verify_command(c).expect("valid");
            r.insert(v.clone()).expect("inserts");
            unpacked.insert(v).expect("inserts");
        }
        r.settle();
        unpacked.settle();
        assert_same(&r, &unpacked);
        assert_eq!(r.scene().state_hash(), r.full_replay().state_hash());
    }
}

/// A catch-up folded batch by batch (`settle_part` while more follow, `settle` for the last)
/// ends where one fold of everything ends; its batches leave the log's cold bytes to idle time,
/// which compresses as much as the one fold did, and a command landing deep in it still folds
/// to a full replay's scene.
#[test]
fn a_catch_up_in_parts_folds_like_one_fold_and_leaves_compression_to_idle_time() {
    let all = generated(8, 3_300);
    let whole = full_open(&all[..3_000]).replica;
    let session = verify_command(&all[0]).expect("genesis").id();
    let mut parts = Replica::new(session);
    let batches: Vec<&[Arc<[u8]>]> = all[..3_000].chunks(700).collect();
    for (i, batch) in batches.iter().enumerate() {
        for c in *batch {
            parts
                .insert(verify_command(c).expect("valid"))
                .expect("inserts");
        }
        if i + 1 < batches.len() {
            parts.settle_part();
            assert_eq!(
                parts.log().cold_len(),
                0,
                "no compression while more follow"
            );
        } else {
            parts.settle();
        }
    }
    assert_same(&parts, &whole);
    pack_until_idle(&mut parts);
    assert!(parts.log().cold_len() >= whole.log().cold_len());
    assert!(parts.log().cold_len() > 0);
    // The rest of the session folds on top, and a command made on the log as it was 2,000
    // commands back (by a newcomer without a role: it folds to nothing, but lands deep) rolls
    // back through the sparse snapshots; the scene still equals a full replay.
    let mut stale = Replica::new(session);
    for c in &all[..1_000] {
        stale
            .insert(verify_command(c).expect("valid"))
            .expect("inserts");
    }
    for c in &all[3_000..] {
        parts
            .insert(verify_command(c).expect("valid"))
            .expect("inserts");
    }
    parts.settle();
    let before = parts.stats().rollbacks;
    let late = theta_crdt::author::sign(
        &workload::author_key(50),
        stale.log(),
        theta_crdt::command::Op::SetSessionName {
            name: "late".into(),
        },
    );
    parts
        .insert(verify_command(&late).expect("valid"))
        .expect("inserts");
    parts.settle();
    assert_eq!(parts.stats().rollbacks, before + 1);
    assert_eq!(parts.scene().state_hash(), parts.full_replay().state_hash());
    assert_eq!(parts.first_bad_snapshot(), None);
}
