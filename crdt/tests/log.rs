//! The log: insertion checks, pending dependencies, duplicates, equivocation and the total order.

mod common;

use common::*;
use theta_crdt::author;
use theta_crdt::command::{Envelope, Op};
use theta_crdt::log::{InsertError, Inserted, Log, verify_command};
use theta_crdt::wire;

#[test]
fn insert_duplicate_and_pending_release() {
    let a = key(1);
    let (mut r, g) = start(&a);
    let c1 = author::sign(&a, r.log(), cube("one"));
    let mut other = r.log().clone();
    other.insert(verified(&c1)).unwrap();
    let c2 = author::sign(&a, &other, cube("two"));
    // c2 arrives before c1: it waits, naming c1.
    let id1 = verified(&c1).id();
    assert_eq!(
        r.insert(verified(&c2)).unwrap(),
        Inserted::Pending(vec![id1])
    );
    assert_eq!(r.log().pending_len(), 1);
    let res = r.insert(verified(&c1)).unwrap();
    assert_eq!(res, Inserted::Added(vec![id1, verified(&c2).id()]));
    assert_eq!(r.insert(verified(&c1)).unwrap(), Inserted::Duplicate);
    assert_eq!(r.insert(verified(&g)).unwrap(), Inserted::Duplicate);
    r.settle();
    assert_eq!(r.scene().object_count(), 2);
    assert_eq!(r.log().pending_len(), 0);
}

#[test]
fn forged_tampered_and_malformed_commands_are_refused() {
    let a = key(1);
    let (r, _) = start(&a);
    let good = author::sign(&a, r.log(), cube("x"));
    // Flip one byte anywhere: it no longer decodes, or no longer verifies, or it only touched
    // wrapper bytes no signature covers, and then it is the very same command, stored canonically.
    let orig = verified(&good);
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x01;
        if let Ok(v) = verify_command(&b) {
            assert_eq!(v.id(), orig.id(), "byte {i}");
            assert_eq!(v.envelope(), orig.envelope(), "byte {i}");
        }
    }
    // Impersonation: a body naming author A signed by B.
    let b = key(2);
    let env = Envelope {
        author: a.author(),
        seq: 2,
        lamport: 2,
        deps: r.log().heads(),
        op: cube("forged"),
    };
    let body = wire::encode_body(&env);
    let forged = wire::encode_signed(&body, &b.sign(&body));
    assert!(matches!(
        verify_command(&forged),
        Err(InsertError::Signature { .. })
    ));
    assert!(verify_command(&[]).is_err());
    assert!(verify_command(&vec![0xAB; 100_000]).is_err());
}

#[test]
fn lamport_chain_and_session_rules() {
    let a = key(1);
    let (r, _) = start(&a);
    let heads = r.log().heads();
    let mut log: Log = r.log().clone();
    let bad = |env: Envelope| author::seal(&a, &env);
    let try_insert = |log: &mut Log, b: Vec<u8>| log.insert(verified(&b));
    // Wrong Lamport clock.
    let e = try_insert(
        &mut log,
        bad(Envelope {
            author: a.author(),
            seq: 2,
            lamport: 5,
            deps: heads.clone(),
            op: cube("x"),
        }),
    );
    assert!(matches!(e, Err(InsertError::Lamport(_))), "{e:?}");
    // Sequence gap: seq 3 without seq 2.
    let e = try_insert(
        &mut log,
        bad(Envelope {
            author: a.author(),
            seq: 3,
            lamport: 2,
            deps: heads.clone(),
            op: cube("x"),
        }),
    );
    assert!(matches!(e, Err(InsertError::Chain(..))), "{e:?}");
    // A non-genesis command without deps, and a second genesis.
    let e = try_insert(
        &mut log,
        bad(Envelope {
            author: a.author(),
            seq: 2,
            lamport: 1,
            deps: vec![],
            op: cube("x"),
        }),
    );
    assert!(matches!(e, Err(InsertError::Session(..))), "{e:?}");
    let other = author::genesis(&key(9), "another session");
    assert!(matches!(
        try_insert(&mut log, other),
        Err(InsertError::Session(..))
    ));
    assert_eq!(log.len(), 1, "nothing bad got in");
}

#[test]
fn equivocation_forfeits_the_author_from_that_seq_on_whatever_the_arrival_order() {
    let admin = key(1);
    let eve = key(2);
    let (mut r, g) = start(&admin);
    let grant = edit(
        &mut r,
        &admin,
        Op::GrantRole {
            author: eve.author(),
            role: theta_crdt::ids::Role::Editor,
        },
    )
    .1;
    let base = r.log().clone();
    let (c_ok, _) = edit(&mut r, &eve, cube("fine"));
    let honest_base = r.log().clone();
    // Two different commands with Eve's seq 2.
    let x = author::sign(&eve, &honest_base, cube("left"));
    let y = author::sign(&eve, &honest_base, cube("right"));
    // Another author builds on one branch.
    let mut with_x = honest_base.clone();
    with_x.insert(verified(&x)).unwrap();
    let bob_on_x = author::sign(&admin, &with_x, cube("bob's"));
    let cmds = [
        g.clone(),
        grant.clone(),
        r.log().get(&c_ok).map(|e| e.bytes().to_vec()).unwrap(),
        x,
        y,
        bob_on_x,
    ];
    let _ = base;
    let mut hashes = vec![];
    for order in [
        [0, 1, 2, 3, 4, 5],
        [0, 1, 2, 4, 5, 3],
        [5, 4, 3, 2, 1, 0],
        [0, 1, 2, 5, 3, 4],
    ] {
        let mut rep = theta_crdt::fold::Replica::new(verified(&g).id());
        for i in order {
            let _ = rep.insert(verified(&cmds[i]));
        }
        rep.settle();
        assert_eq!(rep.log().len(), 6);
        assert_eq!(rep.log().equivocators().get(&eve.author()), Some(&2));
        let names: Vec<String> = rep.scene().objects().map(|(_, o)| o.name.clone()).collect();
        assert!(
            names.contains(&"fine".to_string()),
            "seq 1 still counts: {names:?}"
        );
        assert!(!names.contains(&"left".to_string()) && !names.contains(&"right".to_string()));
        assert!(
            names.contains(&"bob's".to_string()),
            "others' commands on the branch still fold"
        );
        assert_eq!(rep.full_replay(), *rep.scene());
        hashes.push(rep.scene().state_hash());
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn entries_since_sends_exactly_what_is_missing() {
    let a = key(1);
    let (mut r, _) = start(&a);
    let frontier = r.log().heads();
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(edit(&mut r, &a, cube(&format!("c{i}"))).0);
    }
    let missing: Vec<_> = r
        .log()
        .entries_since(&frontier)
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(missing, ids);
    assert!(r.log().entries_since(&r.log().heads()).is_empty());
    assert_eq!(r.log().entries_since(&[]).len(), 6);
}

#[test]
fn deps_that_never_arrive_wait_in_a_bounded_pending_set() {
    use theta_crdt::log::MAX_PENDING;
    let a = key(1);
    let (r, _) = start(&a);
    let mut log = r.log().clone();
    // Commands naming a dependency nobody will ever send.
    let ghost = theta_crdt::ids::CommandId([0xee; 32]);
    let mut refused = 0;
    for i in 0..MAX_PENDING + 10 {
        let env = Envelope {
            author: key(2).author(),
            seq: 1,
            lamport: 7,
            deps: vec![ghost],
            op: cube(&format!("orphan {i}")),
        };
        match log.insert(verified(&author::seal(&key(2), &env))) {
            Ok(Inserted::Pending(missing)) => assert_eq!(missing, vec![ghost]),
            Err(InsertError::PendingFull(_)) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(log.pending_len(), MAX_PENDING);
    assert_eq!(refused, 10);
    assert_eq!(log.len(), 1, "nothing entered the log");
    // The log still works for honest commands.
    let ok = author::sign(&a, &log, cube("fine"));
    assert!(matches!(log.insert(verified(&ok)), Ok(Inserted::Added(_))));
}

#[test]
fn late_arrivals_take_their_place_in_the_total_order() {
    // Three authors edit apart from one base, in rounds, and one log takes their work in an
    // order unlike the total order: every round of the third arrives before the others' rounds.
    let keys = [key(1), key(2), key(3)];
    let (mut base, _) = start(&keys[0]);
    for k in &keys[1..] {
        edit(
            &mut base,
            &keys[0],
            Op::GrantRole {
                author: k.author(),
                role: theta_crdt::ids::Role::Editor,
            },
        );
    }
    let mut apart: Vec<Log> = (0..3).map(|_| base.log().clone()).collect();
    let mut made: Vec<Vec<Vec<u8>>> = vec![vec![]; 3];
    for round in 0..40 {
        for (i, k) in keys.iter().enumerate() {
            // Each author makes a different number of commands per round, so clocks spread out.
            for n in 0..=(round + i) % 3 {
                let c = author::sign(k, &apart[i], cube(&format!("{i}-{round}-{n}")));
                apart[i].insert(verified(&c)).unwrap();
                made[i].push(c);
            }
        }
    }
    let mut log = base.log().clone();
    for c in made[2].iter().chain(&made[1]).chain(&made[0]) {
        assert!(matches!(
            log.insert(verified(c)).unwrap(),
            Inserted::Added(_)
        ));
    }
    let keys_in_order: Vec<_> = log.ordered().map(|e| (e.lamport, e.id)).collect();
    assert_eq!(keys_in_order.len(), log.len());
    assert!(keys_in_order.windows(2).all(|w| w[0] < w[1]), "not sorted");
    let admitted: Vec<_> = log.admitted().iter().map(|e| (e.lamport, e.id)).collect();
    assert_ne!(
        admitted, keys_in_order,
        "the arrivals were in the total order"
    );
    // What follows a key, for every key in the log and for keys just beside them.
    let follows = |k: (u64, theta_crdt::ids::CommandId)| {
        keys_in_order
            .iter()
            .filter(|x| **x > k)
            .copied()
            .collect::<Vec<_>>()
    };
    for &(l, id) in &keys_in_order {
        let mut below = id;
        below.0[31] = below.0[31].wrapping_sub(1);
        for k in [
            (l, id),
            (l, below),
            (l + 1, below),
            (l.saturating_sub(1), id),
        ] {
            let got: Vec<_> = log
                .ordered_after(Some(k))
                .map(|e| (e.lamport, e.id))
                .collect();
            assert_eq!(got, follows(k), "after {k:?}");
        }
    }
    assert_eq!(log.ordered_after(None).count(), log.len());
    let rev: Vec<_> = log.ordered_rev().map(|e| (e.lamport, e.id)).collect();
    assert!(rev.iter().rev().eq(keys_in_order.iter()));
}

/// Cold commands: once their bytes are compressed in frames, every read gives the same bytes (in
/// order and out of it), the scene and a full replay from the compressed bytes are unchanged, and
/// a late joiner gets the same commands.
#[test]
fn cold_commands_read_back_the_same_bytes() {
    use theta_crdt::fold::Replica;
    let cmds = theta_crdt::workload::session(5, 3, 3000);
    let gid = verify_command(&cmds[0]).unwrap().id();
    let mut cold = Replica::new(gid);
    cold.set_hot_window(0);
    let mut plain = Replica::new(gid);
    plain.set_hot_window(usize::MAX / 2);
    for c in &cmds {
        cold.insert(verify_command(c).unwrap()).unwrap();
        cold.settle();
        plain.insert(verify_command(c).unwrap()).unwrap();
    }
    plain.settle();
    // The settles compress in the background; what is still hot is compressed now.
    cold.compact_cold_now();
    assert!(
        cold.log().cold_len() >= 2560 && plain.log().cold_len() == 0,
        "{} cold",
        cold.log().cold_len()
    );
    let entries = cold.log().admitted();
    assert!(entries[0].is_cold() && !entries[entries.len() - 1].is_cold());
    let want = |e: &theta_crdt::log::Entry| plain.log().get(&e.id).unwrap().bytes();
    for e in entries.iter().chain(entries.iter().rev()).step_by(7) {
        assert_eq!(e.bytes(), want(e));
        assert_eq!(e.with_bytes(|b| b.len()), want(e).len());
    }
    assert!(cold.log().ordered().eq(plain.log().ordered()));
    assert_eq!(cold.scene().state_hash(), plain.scene().state_hash());
    // Without the decoded operations, a full replay decodes every command from its bytes.
    cold.release_for_measurement(2);
    assert!(cold.full_replay() == *plain.scene());
    // A late joiner catches up from the compressed log.
    let mut late = Replica::new(gid);
    for e in cold.log().entries_since(&[]) {
        late.insert(verify_command(&e.bytes()).unwrap()).unwrap();
    }
    late.settle();
    assert_eq!(late.scene().state_hash(), plain.scene().state_hash());
}

/// The ids' word-at-a-time order is exactly the byte order the total order is defined by: on
/// random ids, on ids that share a prefix up to each word boundary and across it, and on
/// extremes.
#[test]
fn id_order_is_byte_order() {
    use theta_crdt::ids::{AuthorId, CommandId, byte_order};
    let mut rng = 0x1234_5678_u64;
    let mut next = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) as u8
    };
    let mut ids: Vec<[u8; 32]> = vec![[0; 32], [0xff; 32]];
    for shared in 0..=32 {
        let base: [u8; 32] = std::array::from_fn(|_| next());
        for _ in 0..4 {
            let mut x = base;
            for b in x.iter_mut().skip(shared) {
                *b = next();
            }
            ids.push(x);
        }
        let mut y = base;
        if shared < 32 {
            y[shared] ^= 0x80;
        }
        ids.push(y);
    }
    for a in &ids {
        for b in &ids {
            assert_eq!(byte_order(a, b), a.cmp(b), "{a:?} {b:?}");
            assert_eq!(CommandId(*a).cmp(&CommandId(*b)), a.cmp(b));
            assert_eq!(AuthorId(*a).partial_cmp(&AuthorId(*b)), Some(a.cmp(b)));
        }
    }
}
