//! The fold: permissions, conflict strategies (LWW, merge, reject), undo/redo, events and hashes.

mod common;

use common::*;
use theta_crdt::author;
use theta_crdt::command::Op;
use theta_crdt::fold::{Replica, UNDO_DEPTH};
use theta_crdt::ids::Role;
use theta_crdt::scene::Event;
use theta_crdt::sign::Keypair;
use theta_mesh::{DeleteMode, MaterialId, Vec3};

/// Two replicas of one session that have both seen `r`'s log.
fn fork(r: &Replica) -> Replica {
    r.clone()
}

fn deliver(to: &mut Replica, cmds: &[Vec<u8>]) {
    for c in cmds {
        to.insert(verified(c)).unwrap();
    }
    to.settle();
}

#[test]
fn viewers_and_strangers_cannot_edit_and_roles_are_granted_and_revoked() {
    let admin = key(1);
    let bob = key(2);
    let (mut r, _) = start(&admin);
    // A stranger's edit is kept in the log but folds to nothing, with a reason.
    let (c, _) = edit(&mut r, &bob, cube("sneaky"));
    assert_eq!(r.scene().object_count(), 0);
    assert!(r.rejections()[&c].reason.contains("not a member"));
    // A stranger cannot grant themselves a role either.
    let (c, _) = edit(
        &mut r,
        &bob,
        Op::GrantRole {
            author: bob.author(),
            role: Role::Admin,
        },
    );
    assert!(r.rejections().contains_key(&c));
    assert_eq!(r.scene().role(&bob.author()), None);
    edit(
        &mut r,
        &admin,
        Op::GrantRole {
            author: bob.author(),
            role: Role::Viewer,
        },
    );
    let (c, _) = edit(&mut r, &bob, cube("still no"));
    assert!(r.rejections()[&c].reason.contains("Viewer"));
    edit(
        &mut r,
        &admin,
        Op::GrantRole {
            author: bob.author(),
            role: Role::Editor,
        },
    );
    edit(&mut r, &bob, cube("now yes"));
    assert_eq!(r.scene().object_count(), 1);
    assert_eq!(r.full_replay(), *r.scene());
}

#[test]
fn a_revoke_caps_backdated_commands() {
    let admin = key(1);
    let bob = key(2);
    let mut r = start_with_editor(&admin, &bob);
    edit(&mut r, &bob, cube("legit")); // bob's seq 1
    let before_revoke = fork(&r);
    // The admin revokes bob, accepting up to seq 1.
    edit(
        &mut r,
        &admin,
        Op::RevokeRole {
            author: bob.author(),
            last_accepted_seq: 1,
        },
    );
    // Bob, offline, made a command concurrent with the revoke (so it may order before it).
    let backdated = author::sign(&bob, before_revoke.log(), cube("backdated"));
    deliver(&mut r, &[backdated]);
    let names: Vec<String> = r.scene().objects().map(|(_, o)| o.name.clone()).collect();
    assert_eq!(names, vec!["legit".to_string()]);
    assert_eq!(r.scene().role(&bob.author()), Some(Role::Viewer));
    assert_eq!(r.full_replay(), *r.scene());
}

#[test]
fn concurrent_moves_merge_and_set_position_is_last_writer_wins() {
    let a = key(1);
    let b = key(2);
    let mut r = start_with_editor(&a, &b);
    let (c, _) = edit(&mut r, &a, cube("box"));
    let obj = object_of(c);
    let v = r
        .scene()
        .object(obj)
        .unwrap()
        .mesh()
        .vertices()
        .next()
        .unwrap();
    let p0 = r.scene().object(obj).unwrap().mesh().position(v).unwrap();
    let mut ra = fork(&r);
    let mut rb = fork(&r);
    let ma = edit(
        &mut ra,
        &a,
        Op::MoveVertices {
            object: obj,
            vertices: vec![v],
            delta: Vec3::new(1.0, 0.0, 0.0),
        },
    )
    .1;
    let mb = edit(
        &mut rb,
        &b,
        Op::MoveVertices {
            object: obj,
            vertices: vec![v],
            delta: Vec3::new(0.0, 2.0, 0.0),
        },
    )
    .1;
    deliver(&mut ra, &[mb]);
    deliver(&mut rb, &[ma]);
    let pa = ra.scene().object(obj).unwrap().mesh().position(v).unwrap();
    assert_eq!(pa, p0 + Vec3::new(1.0, 2.0, 0.0), "both moves apply");
    assert_eq!(ra.scene().state_hash(), rb.scene().state_hash());
    // Concurrent set-position: one of them wins, the same one everywhere.
    let (sa_id, sa) = edit(
        &mut ra,
        &a,
        Op::SetVertexPositions {
            object: obj,
            positions: vec![(v, Vec3::ZERO)],
        },
    );
    let (sb_id, sb) = edit(
        &mut rb,
        &b,
        Op::SetVertexPositions {
            object: obj,
            positions: vec![(v, Vec3::ONE)],
        },
    );
    deliver(&mut ra, &[sb]);
    deliver(&mut rb, &[sa]);
    assert_eq!(ra.scene().state_hash(), rb.scene().state_hash());
    // The one later in the total order wins, on both.
    let later = ra
        .log()
        .ordered()
        .rev()
        .find(|e| e.id == sa_id || e.id == sb_id)
        .unwrap()
        .id;
    let want = if later == sa_id {
        Vec3::ZERO
    } else {
        Vec3::ONE
    };
    for r in [&ra, &rb] {
        let p = r.scene().object(obj).unwrap().mesh().position(v).unwrap();
        assert_eq!(p, want, "the later set-position wins");
    }
}

#[test]
fn an_extrude_of_a_concurrently_deleted_face_is_rejected_naming_the_delete() {
    let ana = key(1);
    let ben = key(2);
    let mut r = start_with_editor(&ana, &ben);
    let (c, _) = edit(&mut r, &ana, cube("box"));
    let obj = object_of(c);
    let f = r
        .scene()
        .object(obj)
        .unwrap()
        .mesh()
        .faces()
        .next()
        .unwrap();
    let mut r_ana = fork(&r);
    let mut r_ben = fork(&r);
    let (del, del_b) = edit(
        &mut r_ana,
        &ana,
        Op::DeleteFaces {
            object: obj,
            faces: vec![f],
            mode: DeleteMode::Hole,
        },
    );
    // Ben renames first, so his extrude has the higher clock and lands after Ana's delete.
    let (_, ren_b) = edit(
        &mut r_ben,
        &ben,
        Op::RenameObject {
            object: obj,
            name: "b".into(),
        },
    );
    let (ext, ext_b) = edit(
        &mut r_ben,
        &ben,
        Op::ExtrudeRegion {
            object: obj,
            faces: vec![f],
            offset: Vec3::Y,
        },
    );
    deliver(&mut r_ana, &[ren_b, ext_b]);
    deliver(&mut r_ben, &[del_b]);
    assert_eq!(r_ana.scene().state_hash(), r_ben.scene().state_hash());
    let rej = &r_ana.rejections()[&ext];
    assert_eq!(rej.command, ext);
    assert_eq!(rej.kind, "extrude-region", "{rej:?}");
    assert_eq!(rej.conflict, Some((del, ana.author())), "{rej:?}");
    assert_eq!(rej.author, ben.author());
    assert!(rej.reason.contains("no face"), "{rej:?}");
    assert_eq!(r_ben.rejections()[&ext], *rej, "Ben sees the same verdict");
    assert_eq!(r_ana.full_replay(), *r_ana.scene());
}

#[test]
fn undo_and_redo_are_per_author_and_selective() {
    let a = key(1);
    let b = key(2);
    let mut r = start_with_editor(&a, &b);
    let (c, _) = edit(&mut r, &a, cube("box"));
    let obj = object_of(c);
    let v = r
        .scene()
        .object(obj)
        .unwrap()
        .mesh()
        .vertices()
        .next()
        .unwrap();
    let p0 = r.scene().object(obj).unwrap().mesh().position(v).unwrap();
    let (mv, _) = edit(
        &mut r,
        &a,
        Op::MoveVertices {
            object: obj,
            vertices: vec![v],
            delta: Vec3::X,
        },
    );
    // Bob edits the same object afterwards.
    edit(
        &mut r,
        &b,
        Op::PaintObject {
            object: obj,
            material: MaterialId(5),
        },
    );
    // Ana undoes her move on top of Bob's paint: the inverse move applies, the paint stays.
    let (u, _) = edit(&mut r, &a, Op::Undo { target: mv });
    assert!(
        !r.rejections().contains_key(&u),
        "{:?}",
        r.rejections().get(&u)
    );
    let o = r.scene().object(obj).unwrap();
    assert_eq!(o.mesh().position(v).unwrap(), p0);
    assert_eq!(
        o.mesh()
            .face_material(o.mesh().faces().next().unwrap())
            .unwrap(),
        MaterialId(5)
    );
    // Bob cannot undo Ana's command.
    let (bu, _) = edit(&mut r, &b, Op::Undo { target: c });
    assert!(r.rejections()[&bu].reason.contains("author"));
    // Redo brings the move back.
    let (rd, _) = edit(&mut r, &a, Op::Redo { undo: u });
    assert!(
        !r.rejections().contains_key(&rd),
        "{:?}",
        r.rejections().get(&rd)
    );
    assert_eq!(
        r.scene().object(obj).unwrap().mesh().position(v).unwrap(),
        p0 + Vec3::X
    );
    // Undo of a create removes the object, if nobody touched it since... Bob painted it: refused.
    let (uc, _) = edit(&mut r, &a, Op::Undo { target: c });
    assert!(r.rejections().contains_key(&uc));
    let rej = &r.rejections()[&uc];
    assert!(rej.conflict.is_some(), "names the blocking edit: {rej:?}");
    // A fresh object with no later edits is undone cleanly; undoing it twice is harmless.
    let (c2, _) = edit(&mut r, &a, cube("temp"));
    edit(&mut r, &a, Op::Undo { target: c2 });
    assert!(r.scene().object(object_of(c2)).is_none());
    let (again, _) = edit(&mut r, &a, Op::Undo { target: c2 });
    assert!(r.rejections()[&again].reason.contains("already undone"));
    assert_eq!(r.full_replay(), *r.scene());
}

#[test]
fn settle_reports_change_events() {
    let a = key(1);
    let (mut r, _) = start(&a);
    let b = author::sign(&a, r.log(), cube("x"));
    r.insert(verified(&b)).unwrap();
    let ev = r.settle();
    let obj = object_of(verified(&b).id());
    assert_eq!(ev, vec![Event::ObjectAdded(obj)]);
    let b = author::sign(
        &a,
        r.log(),
        Op::RenameObject {
            object: obj,
            name: "y".into(),
        },
    );
    r.insert(verified(&b)).unwrap();
    assert_eq!(r.settle(), vec![Event::ObjectChanged(obj)]);
    let b = author::sign(&a, r.log(), Op::DeleteObject { object: obj });
    r.insert(verified(&b)).unwrap();
    assert_eq!(r.settle(), vec![Event::ObjectRemoved(obj)]);
    let b = author::sign(&a, r.log(), Op::DeleteObject { object: obj });
    r.insert(verified(&b)).unwrap();
    let ev = r.settle();
    assert!(
        matches!(&ev[..], [Event::Rejected(rej)] if rej.conflict.is_some()),
        "{ev:?}"
    );
}

#[test]
fn invites_are_redeemed_while_the_admin_is_offline() {
    use theta_crdt::invite::Capability;
    let admin = key(1);
    let ivy = key(3);
    let mallory = key(4);
    let (mut r, _) = start(&admin);
    let session = r.scene().session().unwrap();
    let cap = Capability {
        session,
        role: Role::Editor,
        expires_unix_ms: 5_000,
        invitee: None,
        nonce: 1,
    };
    let invite = cap.sign(&admin);
    // The capability survives its fixed encoding, and its expiry is checked against a given clock.
    assert_eq!(Capability::from_bytes(&cap.to_bytes()).unwrap(), cap);
    assert!(invite.check_expiry(4_999).is_ok() && invite.check_expiry(5_000).is_err());
    // The admin is offline: Ivy redeems and edits; any peer folding the log agrees.
    let (red, red_b) = edit(&mut r, &ivy, Op::RedeemInvite { invite });
    assert!(
        !r.rejections().contains_key(&red),
        "{:?}",
        r.rejections().get(&red)
    );
    assert_eq!(r.scene().role(&ivy.author()), Some(Role::Editor));
    let (c, _) = edit(&mut r, &ivy, cube("ivy's"));
    assert!(r.scene().object(object_of(c)).is_some());
    // Forged: Mallory signs an admin capability for herself.
    let forged = Capability {
        role: Role::Admin,
        nonce: 2,
        ..cap
    }
    .sign(&mallory);
    let (f, _) = edit(&mut r, &mallory, Op::RedeemInvite { invite: forged });
    assert!(r.rejections()[&f].reason.contains("not an admin"));
    // Tampered: an editor invite relabelled admin no longer verifies.
    let mut tampered = cap.sign(&admin);
    tampered.capability.role = Role::Admin;
    let (t, _) = edit(&mut r, &mallory, Op::RedeemInvite { invite: tampered });
    assert!(r.rejections()[&t].reason.contains("signature"));
    // Bound to someone else.
    let bound = Capability {
        invitee: Some(ivy.author()),
        nonce: 3,
        ..cap
    }
    .sign(&admin);
    let (b, _) = edit(&mut r, &mallory, Op::RedeemInvite { invite: bound });
    assert!(r.rejections()[&b].reason.contains("invitee"));
    // Another session's invite.
    let other = Capability {
        session: theta_crdt::ids::CommandId([9; 32]),
        nonce: 4,
        ..cap
    }
    .sign(&admin);
    let (o, _) = edit(&mut r, &mallory, Op::RedeemInvite { invite: other });
    assert!(r.rejections()[&o].reason.contains("another session"));
    assert_eq!(r.scene().role(&mallory.author()), None);
    // A fresh replica that receives the whole log agrees.
    let mut fresh = Replica::new(session);
    for e in r.log().ordered() {
        fresh.insert(verified(&e.bytes())).unwrap();
    }
    fresh.settle();
    assert_eq!(fresh.scene().state_hash(), r.scene().state_hash());
    let _ = red_b;
}

#[test]
fn an_admins_self_revoke_is_refused_in_both_fold_passes() {
    let admin = key(1);
    let (mut r, _) = start(&admin);
    // Refused: so it sets no revocation cap either, and her later edits still count.
    let (rv, _) = edit(
        &mut r,
        &admin,
        Op::RevokeRole {
            author: admin.author(),
            last_accepted_seq: 0,
        },
    );
    assert!(r.rejections()[&rv].reason.contains("own role"));
    let (c, _) = edit(&mut r, &admin, cube("still admin"));
    assert!(r.scene().object(object_of(c)).is_some());
    assert_eq!(r.scene().role(&admin.author()), Some(Role::Admin));
    assert_eq!(r.full_replay(), *r.scene());
}

/// A session of an admin and an editor (Bob) holding one box, and a move of that box by `x`.
fn admin_bob_and_a_box() -> (Keypair, Keypair, Replica, impl Fn(f32) -> Op) {
    let admin = key(1);
    let bob = key(2);
    let mut r = start_with_editor(&admin, &bob);
    let (create, _) = edit(&mut r, &admin, cube("box"));
    let object = object_of(create);
    let nudge = move |x: f32| Op::MoveObject {
        object,
        delta: Vec3::new(x, 0.0, 0.0),
    };
    (admin, bob, r, nudge)
}

/// A command that lands `depth` commands back replays about that many, however long the log:
/// snapshots are dense at the tail once commands arrive out of order, and thin out
/// geometrically towards the past (an even spacing over a long log made every shallow rollback
/// replay hundreds of commands).
#[test]
fn a_rollback_replays_about_as_many_commands_as_it_undoes() {
    let (admin, bob, mut r, nudge) = admin_bob_and_a_box();
    let mut stale = Vec::new();
    let moves = |r: &mut Replica, n: usize, stale: &mut Vec<Replica>, keep_at: &[usize]| {
        for i in 0..n {
            if keep_at.contains(&(n - i)) {
                stale.push(r.clone());
            }
            edit(r, &admin, nudge(0.001));
        }
    };
    // A long tail from one author, then a first concurrent command (Bob's) a few back.
    moves(&mut r, 3000, &mut stale, &[10]);
    let b1 = author::sign(&bob, stale.pop().unwrap().log(), nudge(1.0));
    deliver(&mut r, &[b1]);
    assert_eq!(r.stats().rollbacks, 1);
    // More of the tail; then Bob's next commands, each made on a replica that many commands
    // behind (a deep one, then, after more of the tail, a shallow one).
    for (tail, depth) in [(3000usize, 300usize), (100, 40)] {
        moves(&mut r, tail, &mut stale, &[depth]);
        let before = r.stats();
        let b = author::sign(&bob, stale.pop().unwrap().log(), nudge(1.0));
        deliver(&mut r, &[b]);
        let after = r.stats();
        assert_eq!(after.rollbacks, before.rollbacks + 1, "depth {depth}");
        let replayed = (after.replayed - before.replayed) as usize;
        assert!(
            replayed >= depth && replayed <= 2 * depth + 16,
            "landing {depth} back replayed {replayed}"
        );
    }
    assert_eq!(r.full_replay(), *r.scene());
}

/// A flood of backdated commands arriving together costs one rollback to the earliest of them and
/// one replay of what follows it, not a replay per command: 300 commands of one author, each
/// signed on a replica 500 commands behind, land in a 3,500-command log.
#[test]
fn a_flood_of_backdated_commands_costs_one_rollback_not_one_per_command() {
    const TAIL: usize = 3000;
    const DEPTH: usize = 500;
    const FLOOD: usize = 300;
    let (admin, bob, mut r, nudge) = admin_bob_and_a_box();
    for _ in 0..TAIL - DEPTH {
        edit(&mut r, &admin, nudge(0.001));
    }
    let mut stale = r.clone();
    for _ in 0..DEPTH {
        edit(&mut r, &admin, nudge(0.001));
    }
    // Bob's flood, signed on the stale replica: every command lands about DEPTH back.
    let flood: Vec<Vec<u8>> = (0..FLOOD)
        .map(|_| edit(&mut stale, &bob, nudge(1.0)).1)
        .collect();
    let before = r.stats();
    let log_len = r.log().len();
    deliver(&mut r, &flood);
    let after = r.stats();
    assert_eq!(r.log().len(), log_len + FLOOD);
    assert_eq!(
        after.rollbacks,
        before.rollbacks + 1,
        "one rollback for the batch"
    );
    let replayed = (after.replayed - before.replayed) as usize;
    assert!(
        replayed <= 2 * DEPTH + FLOOD + 16,
        "replayed {replayed} for {FLOOD} commands {DEPTH} back (a replay per command: {})",
        FLOOD * DEPTH
    );
    assert_eq!(r.full_replay(), *r.scene());
}

/// A late command folds again only the commands that reach what it touches (see `footprint.rs`):
/// on another object, none; on the same object, exactly those after the snapshot it restores
/// from. An undo that lands late reaches what its target touched. Across an old role change the
/// roles are restored and the change folds again. Each time the scene equals a full replay, undo
/// records included.
#[test]
fn a_late_command_folds_again_only_what_it_reaches() {
    let admin = key(1);
    let bob = key(2);
    let mut r = start_with_editor(&admin, &bob);
    let (a, _) = edit(&mut r, &admin, cube("a"));
    let (b, _) = edit(&mut r, &admin, cube("b"));
    let (a, b) = (object_of(a), object_of(b));
    let nudge = |object, x: f32| Op::MoveObject {
        object,
        delta: Vec3::new(x, 0.0, 0.0),
    };
    // A long tail on `a`; Bob's move of `b`, made 20 commands back, lands in it.
    let mut stale = None;
    for i in 0..300 {
        if i == 280 {
            stale = Some(r.clone());
        }
        edit(&mut r, &admin, nudge(a, 0.001));
    }
    let before = r.stats();
    let b1 = author::sign(&bob, stale.take().unwrap().log(), nudge(b, 1.0));
    let b1_id = verified(&b1).id();
    deliver(&mut r, &[b1]);
    let after = r.stats();
    assert_eq!(after.partial, before.partial + 1);
    assert_eq!(after.replayed, before.replayed, "nothing else reaches `b`");
    assert_eq!(r.full_replay(), *r.scene());

    // Commands on `a`, then on `b`, then on `a` again; Bob's next move of `b` lands before
    // them all: the five moves of `b` fold again, and nothing else.
    for i in 0..40 {
        if i == 20 {
            stale = Some(r.clone());
        }
        let o = if (30..35).contains(&i) { b } else { a };
        edit(&mut r, &admin, nudge(o, 0.01));
    }
    let before = r.stats();
    let b2 = author::sign(&bob, stale.take().unwrap().log(), nudge(b, 2.0));
    deliver(&mut r, &[b2]);
    let after = r.stats();
    assert_eq!(after.partial, before.partial + 1);
    assert_eq!(after.replayed - before.replayed, 5);
    assert_eq!(r.full_replay(), *r.scene());

    // Bob undoes his first move from a replica 10 commands behind.
    for i in 0..20 {
        if i == 10 {
            stale = Some(r.clone());
        }
        edit(&mut r, &admin, nudge(if i % 4 == 0 { b } else { a }, 0.01));
    }
    let before = r.stats();
    let u = author::sign(
        &bob,
        stale.take().unwrap().log(),
        Op::Undo { target: b1_id },
    );
    let u_id = verified(&u).id();
    deliver(&mut r, &[u]);
    assert_eq!(r.stats().partial, before.partial + 1);
    assert!(!r.rejections().contains_key(&u_id), "the undo applied");
    assert_eq!(r.full_replay(), *r.scene());

    // A role change after where a late command lands: the roles go back to the snapshot too,
    // and the change folds again with the moves of `b`.
    for i in 0..20 {
        if i == 5 {
            stale = Some(r.clone());
        }
        if i == 10 {
            edit(
                &mut r,
                &admin,
                Op::GrantRole {
                    author: key(3).author(),
                    role: Role::Viewer,
                },
            );
        } else {
            edit(&mut r, &admin, nudge(a, 0.01));
        }
    }
    let before = r.stats();
    let b3 = author::sign(&bob, stale.take().unwrap().log(), nudge(b, 3.0));
    deliver(&mut r, &[b3]);
    let after = r.stats();
    assert_eq!(after.partial, before.partial + 1);
    assert!(after.replayed - before.replayed < 10, "{after:?}");
    assert_eq!(r.scene().role(&key(3).author()), Some(Role::Viewer));
    assert_eq!(r.full_replay(), *r.scene());
}

/// An undo names one of its author's last `UNDO_DEPTH` commands, counted in sequence numbers,
/// whatever became of the commands in between.
#[test]
fn an_undo_reaches_back_undo_depth_commands() {
    let admin = key(1);
    let (mut r, _) = start(&admin);
    let (c, _) = edit(&mut r, &admin, cube("a"));
    let object = object_of(c);
    let mut moves = Vec::new();
    for _ in 0..UNDO_DEPTH + 2 {
        let (m, _) = edit(
            &mut r,
            &admin,
            Op::MoveObject {
                object,
                delta: Vec3::new(1.0, 0.0, 0.0),
            },
        );
        moves.push(m);
    }
    // The newest move is one back; the one UNDO_DEPTH back can still be undone, the one
    // before it not.
    let n = moves.len();
    let (ok, _) = edit(
        &mut r,
        &admin,
        Op::Undo {
            target: moves[n - UNDO_DEPTH],
        },
    );
    assert!(
        !r.rejections().contains_key(&ok),
        "{:?}",
        r.rejections().get(&ok)
    );
    let (too_old, _) = edit(
        &mut r,
        &admin,
        Op::Undo {
            target: moves[n - UNDO_DEPTH - 1],
        },
    );
    assert!(
        r.rejections()[&too_old].reason.contains("last 32 commands"),
        "{:?}",
        r.rejections()[&too_old]
    );
    assert_eq!(r.full_replay(), *r.scene());
}
