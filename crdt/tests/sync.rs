//! Sync: two peers exchange summaries and exactly the commands the other lacks, in bounded batches,
//! resume after a cut without resending, and fill equivocation gaps by asking for ids.

mod common;

use common::*;
use theta_crdt::author;
use theta_crdt::command::Op;
use theta_crdt::fold::Replica;
use theta_crdt::ids::{CommandId, Role};
use theta_crdt::log::{Inserted, verify_command};
use theta_crdt::sync::{Message, SyncError, SyncSession};

#[derive(Default, Debug)]
struct Traffic {
    commands: usize,
    duplicates: usize,
    batches: usize,
    max_batch_bytes: usize,
}

/// Delivers one message's commands into `to`; returns the ids it reported missing.
fn receive(to: &mut Replica, msg: &Message, t: &mut Traffic) -> Vec<CommandId> {
    let mut missing = vec![];
    if let Message::Commands { commands, .. } = msg {
        t.batches += 1;
        t.max_batch_bytes = t
            .max_batch_bytes
            .max(commands.iter().map(|c| c.len()).sum());
        for c in commands {
            t.commands += 1;
            match to.insert(verify_command(c).unwrap()).unwrap() {
                Inserted::Duplicate => t.duplicates += 1,
                Inserted::Pending(m) => missing.extend(m),
                Inserted::Added(_) => {}
            }
        }
    }
    missing
}

/// Runs a sync between `a` and `b`, stopping after `limit` batches each way if given.
fn sync(
    a: &mut Replica,
    b: &mut Replica,
    batch: usize,
    limit: Option<usize>,
) -> (Traffic, Traffic) {
    let (mut sa, ma) = SyncSession::start(a.log(), batch).unwrap();
    let (mut sb, mb) = SyncSession::start(b.log(), batch).unwrap();
    sa.handle(a.log(), &mb).unwrap();
    sb.handle(b.log(), &ma).unwrap();
    let (mut ta, mut tb) = (Traffic::default(), Traffic::default());
    let mut rounds = 0;
    loop {
        rounds += 1;
        if limit.is_some_and(|l| rounds > l) {
            break;
        }
        let mut progress = false;
        if let Some(m) = sa.poll() {
            progress = true;
            let missing = receive(b, &m, &mut ta);
            if let Some(w) = sb.want(&missing) {
                sa.handle(a.log(), &w).unwrap();
            }
        }
        if let Some(m) = sb.poll() {
            progress = true;
            let missing = receive(a, &m, &mut tb);
            if let Some(w) = sa.want(&missing) {
                sb.handle(b.log(), &w).unwrap();
            }
        }
        if !progress {
            break;
        }
    }
    a.settle();
    b.settle();
    (ta, tb)
}

fn editors(admin: &theta_crdt::sign::Keypair, others: &[&theta_crdt::sign::Keypair]) -> Replica {
    let (mut r, _) = start(admin);
    for k in others {
        edit(
            &mut r,
            admin,
            Op::GrantRole {
                author: k.author(),
                role: Role::Editor,
            },
        );
    }
    r
}

#[test]
fn diverged_peers_exchange_exactly_what_the_other_lacks() {
    let (a_key, b_key) = (key(1), key(2));
    let mut a = editors(&a_key, &[&b_key]);
    let mut b = a.clone();
    for i in 0..40 {
        edit(&mut a, &a_key, cube(&format!("a{i}")));
    }
    for i in 0..25 {
        edit(&mut b, &b_key, cube(&format!("b{i}")));
    }
    let (ab, ba) = sync(&mut a, &mut b, 4096, None);
    assert_eq!(a.scene().state_hash(), b.scene().state_hash());
    assert_eq!(a.log().len(), b.log().len());
    assert_eq!(
        (ab.commands, ab.duplicates),
        (40, 0),
        "a sent exactly its 40: {ab:?}"
    );
    assert_eq!(
        (ba.commands, ba.duplicates),
        (25, 0),
        "b sent exactly its 25: {ba:?}"
    );
    assert!(
        ab.batches > 1 && ab.max_batch_bytes <= 4096,
        "bounded batches: {ab:?}"
    );
    // Already in sync: nothing but the summaries.
    let (x, y) = sync(&mut a, &mut b, 4096, None);
    assert_eq!((x.commands, y.commands), (0, 0));
}

#[test]
fn a_cut_off_sync_resumes_without_resending() {
    let a_key = key(1);
    let mut a = editors(&a_key, &[]);
    let (g_only, _) = {
        let mut fresh = Replica::new(a.scene().session().unwrap());
        for e in a.log().ordered().take(1) {
            fresh.insert(verified(&e.bytes)).unwrap();
        }
        fresh.settle();
        (fresh, ())
    };
    for i in 0..100 {
        edit(&mut a, &a_key, cube(&format!("c{i}")));
    }
    let mut late = g_only;
    let (first, _) = sync(&mut a, &mut late, 2048, Some(3));
    assert!(first.commands > 0 && first.commands < 100, "{first:?}");
    let (rest, _) = sync(&mut a, &mut late, 2048, None);
    assert_eq!(
        first.commands + rest.commands,
        100,
        "nothing resent: {first:?} {rest:?}"
    );
    assert_eq!(rest.duplicates, 0);
    assert_eq!(late.scene().state_hash(), a.scene().state_hash());
}

#[test]
fn equivocating_branches_are_filled_by_asking_for_ids() {
    let (admin, eve) = (key(1), key(2));
    let mut base = editors(&admin, &[&eve]);
    edit(&mut base, &eve, cube("shared"));
    // Eve forks her chain: three commands on each branch, shown to different peers.
    let mut a = base.clone();
    let mut b = base.clone();
    for i in 0..3 {
        let ca = author::sign(&eve, a.log(), cube(&format!("left{i}")));
        a.insert(verify_command(&ca).unwrap()).unwrap();
        let cb = author::sign(&eve, b.log(), cube(&format!("right{i}")));
        b.insert(verify_command(&cb).unwrap()).unwrap();
    }
    a.settle();
    b.settle();
    assert_eq!(
        a.log().last_seq(&eve.author()),
        b.log().last_seq(&eve.author())
    );
    sync(&mut a, &mut b, 60 * 1024, None);
    assert_eq!(a.log().len(), b.log().len(), "both branches everywhere");
    assert_eq!(a.log().pending_len() + b.log().pending_len(), 0);
    assert_eq!(a.scene().state_hash(), b.scene().state_hash());
    assert!(a.log().equivocators().contains_key(&eve.author()));
}

#[test]
fn a_peer_of_another_session_is_refused() {
    let (a, _) = start(&key(1));
    let (b, _) = start(&key(2));
    let (mut sa, _) = SyncSession::start(a.log(), 1024).unwrap();
    let (_, mb) = SyncSession::start(b.log(), 1024).unwrap();
    assert_eq!(sa.handle(a.log(), &mb), Err(SyncError::WrongSession));
    assert!(sa.poll().is_none());
}
