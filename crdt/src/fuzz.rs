//! Fuzz entry points (`fuzz/fuzz_targets/*`): thin targets call these, and
//! `crdt/tests/fuzz_crashers.rs` replays every kept crash input through them in the normal suite.

use crate::author;
use crate::command::Op;
use crate::fold::Replica;
use crate::ids::{CommandId, Role};
use crate::log::verify_command;
use crate::workload::{Rng, author_key, next_op};

/// Merge convergence driven by fuzz input: the bytes choose the number of peers, who edits what,
/// and the delivery schedule (order, duplicates, batching). After everything is delivered, every
/// replica must have the same state hash and an incremental scene equal to a full replay. Panics
/// (by assertion) when that breaks, which is what the fuzzer looks for.
pub fn merge_converges(data: &[u8]) {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let n = 2 + usize::from(next().unwrap_or(0) % 3);
    let keys: Vec<_> = (0..n).map(author_key).collect();
    let g = author::genesis(&keys[0], "fuzz");
    let Ok(gv) = verify_command(&g) else { return };
    let mut reps: Vec<Replica> = (0..n).map(|_| Replica::new(gv.id())).collect();
    let mut flight: Vec<(usize, Vec<u8>)> = Vec::new();
    for r in &mut reps {
        let Ok(v) = verify_command(&g) else { return };
        let _ = r.insert(v);
        r.settle();
    }
    let make = |reps: &mut Vec<Replica>, flight: &mut Vec<(usize, Vec<u8>)>, i: usize, op: Op| {
        let b = author::sign(&keys[i], reps[i].log(), op);
        if let Ok(v) = verify_command(&b) {
            let _ = reps[i].insert(v);
            reps[i].settle();
            for j in 0..reps.len() {
                if j != i {
                    flight.push((j, b.clone()));
                }
            }
        }
    };
    for k in &keys[1..] {
        let op = Op::GrantRole {
            author: k.author(),
            role: Role::Editor,
        };
        make(&mut reps, &mut flight, 0, op);
    }
    let mut mine: Vec<Vec<CommandId>> = vec![vec![]; n];
    let mut steps = 0;
    while let Some(b) = next() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let arg = next().unwrap_or(0);
        if b & 1 == 0 {
            let i = usize::from(b >> 1) % n;
            let mut rng = Rng::new(u64::from(arg) | (u64::from(b) << 8));
            let op = next_op(&mut rng, reps[i].scene(), keys[i].author(), &mine[i]);
            let before = reps[i].log().len();
            make(&mut reps, &mut flight, i, op);
            if reps[i].log().len() > before
                && let Some(h) = reps[i].log().heads().last()
            {
                mine[i].push(*h);
            }
        } else if !flight.is_empty() {
            let k = usize::from(arg) % flight.len();
            let (j, m) = if b & 2 == 0 {
                flight.swap_remove(k)
            } else {
                flight[k].clone()
            };
            if let Ok(v) = verify_command(&m) {
                let _ = reps[j].insert(v);
            }
            if b & 4 == 0 {
                reps[j].settle();
            }
        }
    }
    for (j, m) in flight.drain(..) {
        if let Ok(v) = verify_command(&m) {
            let _ = reps[j].insert(v);
        }
    }
    let mut hashes = Vec::new();
    for r in &mut reps {
        r.settle();
        assert!(
            r.full_replay() == *r.scene(),
            "incremental fold differs from a full replay"
        );
        for (_, o) in r.scene().objects() {
            assert!(o.mesh().validate().is_ok(), "an invalid mesh in the scene");
        }
        hashes.push(r.scene().state_hash());
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "replicas diverged");
}

/// The session-file parser on arbitrary bytes: never panics; whatever parses re-encodes to a file
/// that parses to the same commands with nothing dropped, and compacts to one that parses to the
/// same commands and checksums.
pub fn parse_store(data: &[u8]) {
    if let Ok(p) = crate::store::parse(data) {
        if p.dropped == 0 {
            let c = crate::store::compact(data).expect("a whole file compacts");
            let q = crate::store::parse(&c).expect("a compacted file parses");
            assert!(
                q.commands == p.commands && q.checks == p.checks && q.dropped == 0,
                "compaction changed the commands"
            );
        }
        let mut again = crate::store::encode_header(&p.session).to_vec();
        for c in &p.commands {
            crate::store::encode_command_record(c, &mut again);
        }
        let q = crate::store::parse(&again);
        assert!(
            q.as_ref()
                .is_ok_and(|q| q.commands == p.commands && q.dropped == 0),
            "re-encoded session file differs"
        );
    }
}

/// A small settled session, its file's records and checksums, and its checkpoint's body: what
/// [`parse_checkpoint`] decodes fuzzed bodies against.
struct Fixture {
    session: CommandId,
    records: Vec<std::sync::Arc<[u8]>>,
    checks: Vec<[u8; 8]>,
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let cmds: Vec<std::sync::Arc<[u8]>> = crate::workload::session(1, 2, 40)
            .into_iter()
            .map(std::sync::Arc::from)
            .collect();
        let session = verify_command(&cmds[0]).expect("genesis").id();
        let o = crate::open::open(session, &cmds, &[], None, [0; 32]);
        let mut scratch = Vec::new();
        let mut records = Vec::new();
        let mut checks = Vec::new();
        for e in o.replica.log().admitted() {
            checks.push(crate::store::encode_command_record(
                &e.bytes(),
                &mut scratch,
            ));
            records.push(e.bytes());
        }
        Fixture {
            session,
            records,
            checks,
        }
    })
}

/// The valid checkpoint body of the fuzz fixture (a seed input for `parse_checkpoint`).
pub fn checkpoint_seed() -> Vec<u8> {
    let f = fixture();
    let o = crate::open::open(f.session, &f.records, &[], None, [0; 32]);
    let ck = crate::checkpoint::encode(&o.replica, &f.checks).expect("settled");
    ck[crate::checkpoint::HEADER_LEN..].to_vec()
}

/// The checkpoint decoder on arbitrary bytes, as a checkpoint and as a body under a valid header
/// (so the fuzzer reaches past the body checksum): never panics, and whatever it accepts restores
/// only valid meshes.
pub fn parse_checkpoint(data: &[u8]) {
    let f = fixture();
    let _ = crate::checkpoint::decode(data, &f.session, &f.records, &f.checks);
    let ck = crate::checkpoint::with_body(&f.session, &f.checks, data);
    if let Ok(r) = crate::checkpoint::decode(&ck, &f.session, &f.records, &f.checks) {
        // A body can describe another scene over the same commands (the decoder checks structure,
        // not the fold), but never an invalid one: every mesh passed the kernel's checks.
        for (_, o) in r.scene().objects() {
            assert!(o.mesh().validate().is_ok(), "a restored mesh is invalid");
        }
    }
}
