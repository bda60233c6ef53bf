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

/// Sends a message through its wire encoding, as a transport would.
fn hop(m: &Message) -> Message {
    theta_crdt::wire::decode_sync(&theta_crdt::wire::encode_sync(m)).unwrap()
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
    sa.handle(a.log(), &hop(&mb)).unwrap();
    sb.handle(b.log(), &hop(&ma)).unwrap();
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
            let missing = receive(b, &hop(&m), &mut ta);
            if let Some(w) = sb.want(&missing) {
                sa.handle(a.log(), &hop(&w)).unwrap();
            }
        }
        if let Some(m) = sb.poll() {
            progress = true;
            let missing = receive(a, &hop(&m), &mut tb);
            if let Some(w) = sa.want(&missing) {
                sb.handle(b.log(), &hop(&w)).unwrap();
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
            fresh.insert(verified(&e.bytes())).unwrap();
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

#[test]
fn messages_round_trip_through_the_wire_and_garbage_is_refused() {
    use theta_crdt::sync::Tip;
    use theta_crdt::wire::{decode_sync, encode_sync};
    let msgs = [
        Message::Summary {
            session_prefix: 7,
            tips: vec![
                Tip {
                    author_prefix: 1,
                    seq: 2,
                    id_prefix: 3,
                },
                Tip {
                    author_prefix: u64::MAX,
                    seq: 0,
                    id_prefix: 9,
                },
            ],
        },
        Message::Commands {
            commands: vec![vec![1u8, 2, 3].into(), vec![].into()],
            more: true,
        },
        Message::Want {
            ids: vec![CommandId([1; 32]), CommandId([2; 32])],
        },
    ];
    for m in &msgs {
        let b = encode_sync(m);
        assert_eq!(decode_sync(&b).as_ref(), Ok(m));
        assert_eq!(encode_sync(m), b, "deterministic");
        for cut in 0..b.len() {
            let _ = decode_sync(&b[..cut]); // must not panic
        }
        let mut flipped = b.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0x5a;
            let _ = decode_sync(&flipped);
            flipped[i] ^= 0x5a;
        }
    }
    assert!(decode_sync(b"not a sync message at all").is_err());
    assert!(decode_sync(&vec![0u8; theta_crdt::wire::MAX_SYNC_BYTES + 1]).is_err());
}

#[test]
fn byte_budgets_for_one_new_command_and_for_a_reconnect() {
    use theta_crdt::wire::{decode_sync, encode_sync};
    let (k0, k1, k2) = (key(1), key(2), key(3));
    let mut a = editors(&k0, &[&k1, &k2]);
    for i in 0..300 {
        let k = [&k0, &k1, &k2][i % 3];
        edit(&mut a, k, cube(&format!("c{i}")));
    }
    let mut b = a.clone();
    // Reconnect with nothing new: the whole exchange is the two summaries.
    let (_, ma) = SyncSession::start(a.log(), 60 * 1024).unwrap();
    let (_, mb) = SyncSession::start(b.log(), 60 * 1024).unwrap();
    let total = encode_sync(&ma).len() + encode_sync(&mb).len();
    assert!(
        total <= 3 * 100,
        "reconnect exchange is {total} bytes for 3 authors"
    );
    // One new command on a's side: a sends its summary and the one envelope; b its summary.
    let (_, new) = edit(&mut a, &k1, cube("new"));
    let (mut sa, ma) = SyncSession::start(a.log(), 60 * 1024).unwrap();
    let (mut sb, mb) = SyncSession::start(b.log(), 60 * 1024).unwrap();
    sa.handle(a.log(), &decode_sync(&encode_sync(&mb)).unwrap())
        .unwrap();
    sb.handle(b.log(), &decode_sync(&encode_sync(&ma)).unwrap())
        .unwrap();
    let batch = sa.poll().expect("one batch");
    assert!(sa.poll().is_none() && sb.poll().is_none());
    let a_to_b = encode_sync(&ma).len() + encode_sync(&batch).len();
    let b_to_a = encode_sync(&mb).len();
    println!(
        "reconnect: {total} B in total; one new command: a→b {a_to_b} B (envelope {} B), b→a {b_to_a} B",
        new.len()
    );
    assert!(
        a_to_b <= new.len() + 200,
        "a→b {a_to_b} bytes for a {}-byte envelope",
        new.len()
    );
    assert!(b_to_a <= 200, "b→a {b_to_a} bytes");
    let mut t = Traffic::default();
    receive(&mut b, &decode_sync(&encode_sync(&batch)).unwrap(), &mut t);
    b.settle();
    assert_eq!(a.scene().state_hash(), b.scene().state_hash());
}

#[test]
fn catch_up_of_10k_commands_sends_at_most_10_percent_more_than_the_commands() {
    use theta_crdt::wire::encode_sync;
    let cmds = theta_crdt::workload::session(11, 3, 10_000);
    let gid = verify_command(&cmds[0]).unwrap().id();
    let mut full = Replica::new(gid);
    for c in &cmds {
        full.insert(verify_command(c).unwrap()).unwrap();
    }
    full.settle();
    let mut late = Replica::new(gid);
    late.insert(verify_command(&cmds[0]).unwrap()).unwrap();
    late.settle();
    let (mut s_full, _) = SyncSession::start(full.log(), 60 * 1024).unwrap();
    let (_, summary) = SyncSession::start(late.log(), 60 * 1024).unwrap();
    s_full.handle(full.log(), &hop(&summary)).unwrap();
    let (mut wire_bytes, mut own_bytes) = (encode_sync(&summary).len(), 0);
    let mut t = Traffic::default();
    while let Some(m) = s_full.poll() {
        wire_bytes += encode_sync(&m).len();
        if let Message::Commands { commands, .. } = &m {
            own_bytes += commands.iter().map(|c| c.len()).sum::<usize>();
        }
        assert!(
            receive(&mut late, &hop(&m), &mut t).is_empty(),
            "dependencies come first"
        );
    }
    late.settle();
    assert_eq!(late.scene().state_hash(), full.scene().state_hash());
    assert_eq!(t.commands, cmds.len() - 1);
    let ratio = wire_bytes as f64 / own_bytes as f64;
    println!(
        "catch-up of {} commands: {wire_bytes} B sent for {own_bytes} B of commands ({ratio:.4}x)",
        t.commands
    );
    assert!(
        ratio <= 1.1,
        "catch-up sent {wire_bytes} bytes for {own_bytes} bytes of commands"
    );
}

#[test]
fn commands_the_receiver_dropped_are_sent_again_after_its_next_summary() {
    let (a_key, b_key) = (key(1), key(2));
    let mut a = editors(&a_key, &[&b_key]);
    let b = a.clone();
    for i in 0..30 {
        edit(&mut a, &a_key, cube(&format!("a{i}")));
    }
    let (_, mb) = SyncSession::start(b.log(), 4096).unwrap();
    let (mut sa, _) = SyncSession::start(a.log(), 4096).unwrap();
    sa.handle(a.log(), &hop(&mb)).unwrap();
    let mut first = 0;
    while let Some(Message::Commands { commands, .. }) = sa.poll() {
        first += commands.len();
    }
    assert_eq!(first, 30);
    // `b` dropped all of it (say its pending set was full) and summarises again, unchanged: the
    // same session sends it all again rather than counting it as delivered.
    sa.handle(a.log(), &hop(&mb)).unwrap();
    let mut b = b;
    let mut t = Traffic::default();
    while let Some(m) = sa.poll() {
        assert!(receive(&mut b, &hop(&m), &mut t).is_empty());
    }
    b.settle();
    a.settle();
    assert_eq!(t.commands, 30);
    assert_eq!(a.scene().state_hash(), b.scene().state_hash());
}

#[test]
fn cold_commands_are_read_frame_by_frame_and_match_what_was_stored() {
    let keys = [key(1), key(2), key(3)];
    let mut a = editors(&keys[0], &[&keys[1], &keys[2]]);
    let fresh = a.clone();
    // Three authors interleave, so the total order alternates between them.
    for i in 0..900 {
        edit(&mut a, &keys[i % 3], cube(&format!("c{i}")));
    }
    a.set_hot_window(0);
    assert!(a.compact_cold_now() > 0, "frames went cold");
    let ids: Vec<CommandId> = a.log().ordered().map(|e| e.id).collect();
    let got = a.log().bytes_of(&ids);
    for (id, b) in ids.iter().zip(&got) {
        assert_eq!(
            b.as_deref().expect("held"),
            &a.log().get(id).unwrap().bytes()[..]
        );
    }
    let unknown = CommandId([7; 32]);
    assert_eq!(a.log().bytes_of(&[unknown]), vec![None]);
    // A late joiner's catch-up from the cold log converges.
    let mut b = fresh;
    let (ab, _) = sync(&mut a, &mut b, 60 * 1024, None);
    assert_eq!(ab.commands, 900);
    assert_eq!(a.scene().state_hash(), b.scene().state_hash());
}
