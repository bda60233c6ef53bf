//! A deterministic in-memory network simulator: 2–16 peers make edits, gossip them over a network
//! that drops, duplicates, reorders and partitions, run anti-entropy sync (the real `SyncSession`
//! through the wire encoding), crash (sometimes tearing the write in progress) and restart from
//! their session file bytes (the real `store` format). After healing and quiescence every peer has
//! the same state hash and valid meshes, holds every command any peer saved, and its incremental
//! scene equals a full replay.
//!
//! Peers also save checkpoints and compact their files at random moments (the real formats), and
//! restart from the checkpoint when it matches, so restarts exercise both paths of `open`.
//!
//! Seeded; a failure prints its seed. `THETA_SIM_SCENARIOS=n` runs more scenarios. The suite counts
//! the faults it injected and asserts that each kind happened. A flood test measures the heap with
//! a counting allocator and checks that an attacker's flood cannot make a peer's memory grow
//! without bound.

use std::collections::BTreeSet;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use theta_crdt::author;
use theta_crdt::checkpoint;
use theta_crdt::command::{Envelope, Op};
use theta_crdt::fold::Replica;
use theta_crdt::ids::{CommandId, Role};
use theta_crdt::log::{InsertError, Inserted, verify_command};
use theta_crdt::open::open;
use theta_crdt::sign::Keypair;
use theta_crdt::store;
use theta_crdt::sync::{Message, SyncSession};
use theta_crdt::wire::{decode_sync, encode_sync};
use theta_crdt::workload::{Rng, author_key, next_op};

/// Counts live heap bytes (each nextest test runs in its own process, so the count is the test's).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged and only updates a counter.
#[expect(
    unsafe_code,
    reason = "a global allocator is the only way to count every heap byte"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Default, Debug)]
struct Faults {
    scenarios: u64,
    commands: u64,
    dropped: u64,
    duplicated: u64,
    partitions: u64,
    crashes: u64,
    torn_writes: u64,
    syncs: u64,
    checkpoints: u64,
    compactions: u64,
    restarts_from_checkpoint: u64,
}

struct Peer {
    key: Keypair,
    replica: Replica,
    /// The session file's bytes ("the disk").
    disk: Vec<u8>,
    /// Commands this peer made and saved (durable before they were sent).
    saved: Vec<CommandId>,
    /// The checkpoint beside the session file, if one was saved.
    checkpoint: Option<Vec<u8>>,
    up: bool,
}

impl Peer {
    /// A peer of the session that has received its genesis.
    fn new(key: &Keypair, session: CommandId, genesis: &[u8]) -> Peer {
        let mut p = Peer {
            key: key.clone(),
            replica: Replica::new(session),
            disk: store::encode_header(&session).to_vec(),
            saved: vec![],
            checkpoint: None,
            up: true,
        };
        p.receive(genesis);
        p.replica.settle();
        p
    }

    fn persist(&mut self, bytes: &[u8]) {
        store::encode_command_record(bytes, &mut self.disk);
    }

    /// Inserts a command from the network and persists it if it is new.
    fn receive(&mut self, bytes: &[u8]) -> Vec<CommandId> {
        let Ok(v) = verify_command(bytes) else {
            return vec![];
        };
        match self.replica.insert(v) {
            Ok(Inserted::Added(ids)) => {
                // The log admitted these (the command and any it released): persist in that order.
                for id in ids {
                    if let Some(e) = self.replica.log().get(&id) {
                        let b = e.bytes();
                        self.persist(&b);
                    }
                }
                vec![]
            }
            Ok(Inserted::Pending(missing)) => missing,
            _ => vec![],
        }
    }

    /// Saves a checkpoint of the settled replica, as the app does from time to time.
    fn save_checkpoint(&mut self) {
        self.replica.settle();
        let parsed = store::parse(&self.disk).expect("a live peer's file parses");
        self.checkpoint =
            Some(checkpoint::encode(&self.replica, &parsed.checks).expect("the disk is the log"));
    }

    /// Compacts the session file, as the app does when enough has accumulated.
    fn compact(&mut self) {
        self.disk = store::compact(&self.disk).expect("a live peer's file compacts");
    }

    /// Restart: rebuild everything from the disk, as the app does after a crash (from the
    /// checkpoint when it matches the file), counting restarts that used the checkpoint.
    fn restart(&mut self, session: CommandId, f: &mut Faults) {
        let parsed = store::parse(&self.disk).expect("a crashed peer's file always opens");
        self.disk.truncate(parsed.valid_len as usize);
        let o = open(
            session,
            &parsed.commands,
            &parsed.checks,
            self.checkpoint.as_deref(),
            [7; 32],
        );
        assert!(
            o.refused.is_empty(),
            "a peer's own file has only good records"
        );
        self.replica = o.replica;
        self.up = true;
        if o.from_checkpoint > 0 {
            f.restarts_from_checkpoint += 1;
        }
    }
}

/// Anti-entropy between two peers through the real sync state machine and wire encoding.
fn sync_pair(peers: &mut [Peer], i: usize, j: usize) {
    let (a, b) = if i < j {
        let (l, r) = peers.split_at_mut(j);
        (&mut l[i], &mut r[0])
    } else {
        let (l, r) = peers.split_at_mut(i);
        (&mut r[0], &mut l[j])
    };
    let hop = |m: &Message| decode_sync(&encode_sync(m)).expect("sync messages decode");
    let (Some((mut sa, ma)), Some((mut sb, mb))) = (
        SyncSession::start(a.replica.log(), 8 * 1024),
        SyncSession::start(b.replica.log(), 8 * 1024),
    ) else {
        return;
    };
    sa.handle(a.replica.log(), &hop(&mb)).expect("same session");
    sb.handle(b.replica.log(), &hop(&ma)).expect("same session");
    for _ in 0..10_000 {
        let mut progress = false;
        if let Some(Message::Commands { commands, .. }) = sa.poll().map(|m| hop(&m)) {
            progress = true;
            let mut missing = vec![];
            for c in &commands {
                missing.extend(b.receive(c));
            }
            if let Some(w) = sb.want(&missing) {
                sa.handle(a.replica.log(), &hop(&w)).expect("want");
            }
        }
        if let Some(Message::Commands { commands, .. }) = sb.poll().map(|m| hop(&m)) {
            progress = true;
            let mut missing = vec![];
            for c in &commands {
                missing.extend(a.receive(c));
            }
            if let Some(w) = sa.want(&missing) {
                sb.handle(b.replica.log(), &hop(&w)).expect("want");
            }
        }
        if !progress {
            break;
        }
    }
    a.replica.settle();
    b.replica.settle();
}

fn scenario(seed: u64, f: &mut Faults) {
    let mut rng = Rng::new(seed);
    let n = 2 + rng.below(15);
    let keys: Vec<Keypair> = (0..n).map(author_key).collect();
    let g = author::genesis(&keys[0], "sim");
    let session = verify_command(&g).unwrap().id();
    let mut peers: Vec<Peer> = keys.iter().map(|k| Peer::new(k, session, &g)).collect();
    // Every other peer packs cold objects at every settle (until it restarts), so checkpoints
    // are saved from scenes holding packed objects and rollbacks restore snapshots sharing them.
    for p in peers.iter_mut().skip(1).step_by(2) {
        p.replica.set_packing(theta_crdt::fold::Packing {
            every: 1,
            visits: usize::MAX,
            max: usize::MAX,
            cold_after: 2,
        });
    }
    // The admin makes everyone an editor (saved and gossiped like any command).
    let mut net: Vec<(usize, usize, Vec<u8>)> = Vec::new(); // (from, to, bytes)
    let mut group = vec![0usize; n]; // partition group per peer
    let make = |peers: &mut Vec<Peer>,
                net: &mut Vec<(usize, usize, Vec<u8>)>,
                i: usize,
                op: Op,
                rng: &mut Rng,
                f: &mut Faults| {
        let b = author::sign(&peers[i].key.clone(), peers[i].replica.log(), op);
        // Durable before sent: to disk, then into the log, then out.
        peers[i].persist(&b);
        let v = verify_command(&b).unwrap();
        let id = v.id();
        let _ = peers[i].replica.insert(v);
        peers[i].replica.settle();
        peers[i].saved.push(id);
        f.commands += 1;
        for j in 0..peers.len() {
            if j != i {
                if rng.chance(0.15) {
                    f.dropped += 1;
                    continue;
                }
                net.push((i, j, b.clone()));
                if rng.chance(0.1) {
                    f.duplicated += 1;
                    net.push((i, j, b.clone()));
                }
            }
        }
    };
    for k in &keys[1..] {
        make(
            &mut peers,
            &mut net,
            0,
            Op::GrantRole {
                author: k.author(),
                role: Role::Editor,
            },
            &mut rng,
            f,
        );
    }
    let steps = 30 + rng.below(50);
    for _ in 0..steps {
        let roll = rng.below(100);
        let i = rng.below(n);
        if !peers[i].up {
            if roll < 30 {
                peers[i].restart(session, f);
            }
            continue;
        }
        match roll {
            0..=44 => {
                let mine: Vec<CommandId> = peers[i].saved.iter().rev().take(8).copied().collect();
                let op = next_op(
                    &mut rng,
                    peers[i].replica.scene(),
                    peers[i].key.author(),
                    &mine,
                );
                make(&mut peers, &mut net, i, op, &mut rng, f);
            }
            45..=69 => {
                // Deliver a few messages in random order where the partition allows.
                for _ in 0..1 + rng.below(6) {
                    if net.is_empty() {
                        break;
                    }
                    let k = rng.below(net.len());
                    let (from, to, b) = net.swap_remove(k);
                    if group[from] != group[to] || !peers[to].up {
                        f.dropped += 1;
                        continue;
                    }
                    peers[to].receive(&b);
                    peers[to].replica.settle();
                }
            }
            70..=79 => {
                let j = rng.below(n);
                if j != i && peers[j].up && group[i] == group[j] {
                    f.syncs += 1;
                    sync_pair(&mut peers, i, j);
                }
            }
            80..=86 => {
                f.partitions += 1;
                for g in group.iter_mut() {
                    *g = rng.below(2);
                }
            }
            87..=90 => group.iter_mut().for_each(|g| *g = 0),
            _ => {
                // Crash; sometimes after a checkpoint or a compaction, sometimes in the middle of
                // writing a record, which leaves a torn tail.
                if rng.chance(0.5) {
                    peers[i].save_checkpoint();
                    f.checkpoints += 1;
                }
                if rng.chance(0.4) {
                    peers[i].compact();
                    f.compactions += 1;
                }
                f.crashes += 1;
                if rng.chance(0.5) {
                    let c = author::sign(
                        &peers[i].key.clone(),
                        peers[i].replica.log(),
                        Op::SetSessionName {
                            name: "torn".into(),
                        },
                    );
                    let mut rec = Vec::new();
                    store::encode_command_record(&c, &mut rec);
                    let cut = 1 + rng.below(rec.len() - 1);
                    peers[i].disk.extend_from_slice(&rec[..cut]);
                    f.torn_writes += 1;
                }
                peers[i].up = false;
            }
        }
    }
    // Heal: everyone restarts, one partition, all pairs sync until nothing moves.
    for p in peers.iter_mut().filter(|p| !p.up) {
        p.restart(session, f);
    }
    group.iter_mut().for_each(|g| *g = 0);
    for _ in 0..3 {
        for i in 0..n {
            for j in i + 1..n {
                sync_pair(&mut peers, i, j);
            }
        }
    }
    let all_saved: BTreeSet<CommandId> =
        peers.iter().flat_map(|p| p.saved.iter().copied()).collect();
    let h0 = peers[0].replica.scene().state_hash();
    for (i, p) in peers.iter().enumerate() {
        for id in &all_saved {
            assert!(
                p.replica.log().contains(id),
                "seed {seed}: peer {i} lacks saved command {id:?}"
            );
        }
        assert_eq!(
            p.replica.log().pending_len(),
            0,
            "seed {seed}: peer {i} has pending commands"
        );
        assert_eq!(
            p.replica.scene().state_hash(),
            h0,
            "seed {seed}: peer {i} diverged"
        );
        assert!(
            p.replica.full_replay() == *p.replica.scene(),
            "seed {seed}: peer {i} replay differs"
        );
        for (_, o) in p.replica.scene().objects() {
            o.mesh()
                .validate()
                .unwrap_or_else(|e| panic!("seed {seed}: invalid mesh: {e}"));
        }
        // The disk of every peer reopens (with its checkpoint, whatever it is by now) to the
        // scene it holds.
        let parsed = store::parse(&p.disk).expect("disk parses");
        assert_eq!(
            parsed.dropped, 0,
            "seed {seed}: restart truncated any torn tail"
        );
        let reopened = open(
            session,
            &parsed.commands,
            &parsed.checks,
            p.checkpoint.as_deref(),
            [8; 32],
        );
        assert_eq!(
            reopened.replica.scene().state_hash(),
            h0,
            "seed {seed}: peer {i}'s disk reopens to another scene"
        );
    }
    f.scenarios += 1;
}

#[test]
fn peers_converge_under_drops_duplicates_partitions_and_crashes() {
    let n: u64 = std::env::var("THETA_SIM_SCENARIOS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut f = Faults::default();
    for seed in 0..n {
        scenario(0x51_0000 + seed, &mut f);
    }
    println!("{f:?}");
    assert_eq!(f.scenarios, n);
    assert!(
        f.dropped > 0 && f.duplicated > 0 && f.partitions > 0,
        "{f:?}"
    );
    assert!(f.crashes > 0 && f.torn_writes > 0 && f.syncs > 0, "{f:?}");
    assert!(
        f.checkpoints > 0 && f.compactions > 0 && f.restarts_from_checkpoint > 0,
        "{f:?}"
    );
}

#[derive(Default, Debug)]
struct Attacks {
    junk: u64,
    oversized: u64,
    impersonations: u64,
    escalations: u64,
    replays: u64,
    withheld: u64,
    refused: u64,
    folded_to_nothing: u64,
}

/// Honest peers plus one attacker (a viewer) who sends junk, oversized blobs, forgeries in honest
/// authors' names, self-escalations, replays, and commands whose dependencies it withholds.
fn adversarial_scenario(seed: u64, a: &mut Attacks) {
    let mut rng = Rng::new(seed);
    let n = 2 + rng.below(6);
    let keys: Vec<Keypair> = (0..n).map(author_key).collect();
    let eve = author_key(99);
    let g = author::genesis(&keys[0], "sim");
    let session = verify_command(&g).unwrap().id();
    let mut peers: Vec<Peer> = keys.iter().map(|k| Peer::new(k, session, &g)).collect();
    let mut honest: Vec<Vec<u8>> = vec![g.clone()];
    let broadcast = |peers: &mut Vec<Peer>, b: &[u8]| {
        for p in peers.iter_mut() {
            p.receive(b);
            p.replica.settle();
        }
    };
    for k in &keys[1..] {
        let b = author::sign(
            &keys[0],
            peers[0].replica.log(),
            Op::GrantRole {
                author: k.author(),
                role: Role::Editor,
            },
        );
        broadcast(&mut peers, &b);
        honest.push(b);
    }
    let b = author::sign(
        &keys[0],
        peers[0].replica.log(),
        Op::GrantRole {
            author: eve.author(),
            role: Role::Viewer,
        },
    );
    broadcast(&mut peers, &b);
    honest.push(b);
    // Eve's private chain: she keeps seq 1 to herself and sends what builds on it.
    let mut eve_log = peers[0].replica.log().clone();
    for _ in 0..40 {
        let i = rng.below(n);
        match rng.below(8) {
            0..=2 => {
                let mine: Vec<CommandId> = peers[i].saved.clone();
                let op = next_op(&mut rng, peers[i].replica.scene(), keys[i].author(), &mine);
                let b = author::sign(&keys[i], peers[i].replica.log(), op);
                peers[i].saved.push(verify_command(&b).unwrap().id());
                broadcast(&mut peers, &b);
                honest.push(b);
            }
            3 => {
                let junk: Vec<u8> = (0..1 + rng.below(300))
                    .map(|_| rng.below(256) as u8)
                    .collect();
                a.junk += 1;
                a.refused += u64::from(verify_command(&junk).is_err());
                broadcast(&mut peers, &junk);
            }
            4 => {
                a.oversized += 1;
                let big = vec![0x42u8; theta_crdt::wire::MAX_COMMAND_BYTES + 1 + rng.below(1000)];
                a.refused += u64::from(verify_command(&big).is_err());
                broadcast(&mut peers, &big);
            }
            5 => {
                // Impersonation: a body naming an honest author, signed by Eve.
                let victim = &keys[rng.below(n)];
                let mut env = verify_command(&author::sign(
                    victim,
                    peers[0].replica.log(),
                    Op::SetSessionName {
                        name: "pwned".into(),
                    },
                ))
                .unwrap()
                .envelope()
                .clone();
                env.op = Op::DeleteObject {
                    object: theta_crdt::ids::ObjectId(rng.next_u64()),
                };
                let body = theta_crdt::wire::encode_body(&env);
                let forged = theta_crdt::wire::encode_signed(&body, &eve.sign(&body));
                a.impersonations += 1;
                a.refused += u64::from(verify_command(&forged).is_err());
                broadcast(&mut peers, &forged);
            }
            6 => {
                // Escalation (validly signed, but she is a viewer) and a replay of an old command.
                let b = author::sign(
                    &eve,
                    &eve_log,
                    Op::GrantRole {
                        author: eve.author(),
                        role: Role::Admin,
                    },
                );
                if eve_log.last_seq(&eve.author()) == 0 && seed.is_multiple_of(2) {
                    // Withhold her first command; what follows depends on it.
                    eve_log.insert(verify_command(&b).unwrap()).unwrap();
                    a.withheld += 1;
                } else {
                    eve_log.insert(verify_command(&b).unwrap()).unwrap();
                    broadcast(&mut peers, &b);
                }
                a.escalations += 1;
                let old = &honest[rng.below(honest.len())];
                broadcast(&mut peers, old);
                a.replays += 1;
            }
            _ => {
                let j = rng.below(n);
                if i != j {
                    sync_pair(&mut peers, i, j);
                }
            }
        }
    }
    for i in 0..n {
        for j in i + 1..n {
            sync_pair(&mut peers, i, j);
        }
    }
    // The reference: a replica that saw only the honest commands.
    let mut reference = Replica::new(session);
    for b in &honest {
        reference.insert(verify_command(b).unwrap()).unwrap();
    }
    reference.settle();
    let h0 = peers[0].replica.scene().state_hash();
    for (i, p) in peers.iter().enumerate() {
        assert_eq!(
            p.replica.scene().state_hash(),
            h0,
            "seed {seed}: honest peer {i} diverged"
        );
        assert!(
            p.replica.log().pending_len() <= theta_crdt::log::MAX_PENDING,
            "bounded"
        );
        assert_eq!(
            p.replica.scene().role(&eve.author()),
            Some(Role::Viewer),
            "seed {seed}"
        );
        // Every command of hers that reached the log folded to nothing.
        let hers: Vec<CommandId> = p
            .replica
            .log()
            .ordered()
            .filter(|e| e.author == eve.author())
            .map(|e| e.id)
            .collect();
        for id in &hers {
            assert!(
                p.replica.rejections().contains_key(id),
                "seed {seed}: {id:?} had an effect"
            );
        }
        if i == 0 {
            a.folded_to_nothing += hers.len() as u64;
        }
    }
    if seed.is_multiple_of(2) {
        // Nothing of hers reached any log, so the honest state is exactly what honest commands
        // alone give.
        assert_eq!(
            reference.scene().state_hash(),
            h0,
            "seed {seed}: the attack changed the state"
        );
    }
}

#[test]
fn honest_peers_converge_untouched_by_an_attacker() {
    let mut a = Attacks::default();
    for seed in 0..60 {
        adversarial_scenario(0xbad_0000 + seed, &mut a);
    }
    println!("{a:?}");
    assert!(
        a.junk > 0 && a.oversized > 0 && a.impersonations > 0,
        "{a:?}"
    );
    assert!(
        a.escalations > 0 && a.replays > 0 && a.withheld > 0,
        "{a:?}"
    );
    assert_eq!(
        a.refused,
        a.junk + a.oversized + a.impersonations,
        "every forgery was refused: {a:?}"
    );
}

/// An editor who equivocates: at some point she signs two different commands with one sequence
/// number and shows each to half the peers, then keeps building on both branches. After sync every
/// peer holds both branches, agrees she forfeited everything from that number on, and converges.
#[test]
fn an_equivocating_editor_is_forfeited_identically_everywhere() {
    let mut forfeits = 0;
    for seed in 0..40u64 {
        let mut rng = Rng::new(0xe9_0000 + seed);
        let n = 3 + rng.below(4);
        let keys: Vec<Keypair> = (0..n).map(author_key).collect();
        let mallory = author_key(77);
        let g = author::genesis(&keys[0], "sim");
        let session = verify_command(&g).unwrap().id();
        let mut peers: Vec<Peer> = keys.iter().map(|k| Peer::new(k, session, &g)).collect();
        let all = |peers: &mut Vec<Peer>, b: &[u8]| {
            for p in peers.iter_mut() {
                p.receive(b);
                p.replica.settle();
            }
        };
        let grant = author::sign(
            &keys[0],
            peers[0].replica.log(),
            Op::GrantRole {
                author: mallory.author(),
                role: Role::Editor,
            },
        );
        all(&mut peers, &grant);
        // Some honest, legitimate commands of hers first.
        let mut base = peers[0].replica.log().clone();
        for i in 0..1 + rng.below(3) {
            let b = author::sign(&mallory, &base, crate_cube(&format!("m{i}")));
            base.insert(verify_command(&b).unwrap()).unwrap();
            all(&mut peers, &b);
        }
        // The fork: two branches of several commands each, to two halves of the peers.
        let (mut left, mut right) = (base.clone(), base.clone());
        let half = n / 2;
        for i in 0..1 + rng.below(3) {
            let l = author::sign(&mallory, &left, crate_cube(&format!("left{i}")));
            left.insert(verify_command(&l).unwrap()).unwrap();
            let r = author::sign(&mallory, &right, crate_cube(&format!("right{i}")));
            right.insert(verify_command(&r).unwrap()).unwrap();
            for (j, p) in peers.iter_mut().enumerate() {
                p.receive(if j < half { &l } else { &r });
                p.replica.settle();
            }
        }
        for i in 0..n {
            for j in i + 1..n {
                sync_pair(&mut peers, i, j);
            }
        }
        let h0 = peers[0].replica.scene().state_hash();
        let fork_seq = base.last_seq(&mallory.author()) + 1;
        for (i, p) in peers.iter().enumerate() {
            assert_eq!(
                p.replica.scene().state_hash(),
                h0,
                "seed {seed}: peer {i} diverged"
            );
            assert_eq!(
                p.replica.log().equivocators().get(&mallory.author()),
                Some(&fork_seq),
                "seed {seed}"
            );
            assert_eq!(p.replica.log().pending_len(), 0, "seed {seed}");
            let names: Vec<&str> = p
                .replica
                .scene()
                .objects()
                .map(|(_, o)| o.name.as_str())
                .collect();
            assert!(
                names.iter().any(|n| n.starts_with('m')),
                "her earlier commands still count"
            );
            assert!(
                !names
                    .iter()
                    .any(|n| n.starts_with("left") || n.starts_with("right")),
                "seed {seed}"
            );
        }
        forfeits += 1;
    }
    assert_eq!(forfeits, 40);
}

fn crate_cube(name: &str) -> Op {
    Op::CreateObject {
        name: name.into(),
        primitive: theta_mesh::Primitive::Cuboid {
            size: theta_mesh::Vec3::ONE,
        },
        material: theta_mesh::MaterialId(0),
        transform: theta_crdt::command::ObjectTransform::IDENTITY,
    }
}

/// A flood: a viewer sends an honest peer tens of thousands of messages (junk, oversized blobs,
/// forgeries, validly signed commands whose dependencies she withholds, and validly signed
/// commands naming dozens of dependencies that do not exist). Every one is refused with an error
/// or parked in the bounded pending set; the peer's heap stops growing once that set is full,
/// however long the flood goes on; and the honest peers still converge to the state honest
/// commands alone give.
#[test]
fn a_flood_cannot_grow_an_honest_peers_memory_without_bound() {
    let mut rng = Rng::new(0xf100d);
    let keys: Vec<Keypair> = (0..3).map(author_key).collect();
    let eve = author_key(66);
    let g = author::genesis(&keys[0], "sim");
    let session = verify_command(&g).unwrap().id();
    let mut peers: Vec<Peer> = keys.iter().map(|k| Peer::new(k, session, &g)).collect();
    let mut honest: Vec<Vec<u8>> = vec![g.clone()];
    let all = |peers: &mut Vec<Peer>, honest: &mut Vec<Vec<u8>>, b: Vec<u8>| {
        for p in peers.iter_mut() {
            p.receive(&b);
            p.replica.settle();
        }
        honest.push(b);
    };
    for k in keys[1..].iter().chain([&eve]) {
        let role = if k.author() == eve.author() {
            Role::Viewer
        } else {
            Role::Editor
        };
        let b = author::sign(
            &keys[0],
            peers[0].replica.log(),
            Op::GrantRole {
                author: k.author(),
                role,
            },
        );
        all(&mut peers, &mut honest, b);
    }
    for i in 0..30 {
        let a = i % 3;
        let op = next_op(&mut rng, peers[a].replica.scene(), keys[a].author(), &[]);
        let b = author::sign(&keys[a], peers[a].replica.log(), op);
        all(&mut peers, &mut honest, b);
    }
    // Eve's own chain, whose first command she never sends.
    let mut eve_log = peers[0].replica.log().clone();
    let first = author::sign(
        &eve,
        &eve_log,
        Op::SetSessionName {
            name: "withheld".into(),
        },
    );
    eve_log.insert(verify_command(&first).unwrap()).unwrap();
    let mut sent = [0u64; 5];
    // The flood is made first, so the heap count measures only what receiving it costs the peer.
    let mut make = |count: usize, rng: &mut Rng, eve_log: &mut theta_crdt::log::Log| {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = rng.below(5);
            let bytes = match kind {
                0 => (0..1 + rng.below(400))
                    .map(|_| rng.below(256) as u8)
                    .collect(),
                1 => vec![0x17u8; theta_crdt::wire::MAX_COMMAND_BYTES + 1 + rng.below(4096)],
                2 => {
                    // A body in an honest author's name, signed by Eve.
                    let env = Envelope {
                        author: keys[rng.below(3)].author(),
                        seq: 1 + rng.below(1000) as u64,
                        lamport: 2,
                        deps: vec![session],
                        op: Op::SetSessionName {
                            name: "pwned".into(),
                        },
                    };
                    let body = theta_crdt::wire::encode_body(&env);
                    theta_crdt::wire::encode_signed(&body, &eve.sign(&body))
                }
                3 => {
                    // Validly signed, next in her chain, depending on the withheld command.
                    let b = author::sign(
                        &eve,
                        eve_log,
                        Op::RenameObject {
                            object: theta_crdt::ids::ObjectId(rng.next_u64()),
                            name: "x".repeat(200),
                        },
                    );
                    eve_log.insert(verify_command(&b).unwrap()).unwrap();
                    b
                }
                _ => {
                    // Validly signed, naming 60 dependencies nobody has.
                    let mut deps: Vec<CommandId> = (0..60)
                        .map(|_| {
                            let mut id = [0u8; 32];
                            id[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                            CommandId(id)
                        })
                        .collect();
                    deps.sort_unstable();
                    deps.dedup();
                    author::seal(
                        &eve,
                        &Envelope {
                            author: eve.author(),
                            seq: 1,
                            lamport: 9,
                            deps,
                            op: Op::SetSessionName {
                                name: "ghost".into(),
                            },
                        },
                    )
                }
            };
            sent[kind] += 1;
            out.push((kind, bytes));
        }
        out
    };
    let early = make(6_000, &mut rng, &mut eve_log);
    let late = make(24_000, &mut rng, &mut eve_log);
    drop(eve_log);
    let (mut refused, mut full, mut parked) = (0u64, 0u64, 0u64);
    let mut receive = |peer: &mut Peer, msgs: &[(usize, Vec<u8>)]| {
        for (_, bytes) in msgs {
            match verify_command(bytes) {
                Err(_) => refused += 1,
                Ok(v) => match peer.replica.insert(v) {
                    Ok(Inserted::Pending(_)) => parked += 1,
                    Err(InsertError::PendingFull(_)) => full += 1,
                    other => panic!("a flood command was admitted: {other:?}"),
                },
            }
            peer.replica.settle();
        }
    };
    let base = LIVE.load(Ordering::Relaxed);
    receive(&mut peers[0], &early);
    let after_some = LIVE.load(Ordering::Relaxed);
    receive(&mut peers[0], &late);
    let after_all = LIVE.load(Ordering::Relaxed);
    drop((early, late));
    let log = peers[0].replica.log();
    println!(
        "flood of {} messages ({sent:?} junk/oversized/forged/withheld/ghost): {refused} refused, \
         {parked} parked, {full} turned away by the full pending set; pending {} commands, {} \
         bytes; heap +{} B after 6,000, +{} B after 30,000",
        sent.iter().sum::<u64>(),
        log.pending_len(),
        log.pending_bytes(),
        after_some.saturating_sub(base),
        after_all.saturating_sub(base)
    );
    assert!(log.pending_len() <= theta_crdt::log::MAX_PENDING);
    assert!(log.pending_bytes() <= theta_crdt::log::MAX_PENDING_BYTES);
    assert_eq!(
        refused,
        sent[0] + sent[1] + sent[2],
        "every forgery and blob is an error"
    );
    assert_eq!(parked + full, sent[3] + sent[4]);
    assert!(
        full > sent[3] + sent[4] - theta_crdt::log::MAX_PENDING as u64,
        "the bound was reached and held: {full}"
    );
    // Once the pending set is full, 24,000 more messages leave the heap where it was (a little
    // slack for the allocator's own bookkeeping), and the whole flood costs at most a few times
    // the pending budget.
    let growth_late = after_all.saturating_sub(after_some);
    assert!(
        growth_late < 1 << 20,
        "the heap kept growing: +{growth_late} B"
    );
    assert!(
        after_all.saturating_sub(base) < 4 * theta_crdt::log::MAX_PENDING_BYTES,
        "the flood cost more than its bound"
    );
    // The honest peers still converge, on exactly what honest commands give.
    for i in 0..3 {
        for j in i + 1..3 {
            sync_pair(&mut peers, i, j);
        }
    }
    let mut reference = Replica::new(session);
    for b in &honest {
        reference.insert(verify_command(b).unwrap()).unwrap();
    }
    reference.settle();
    for p in &peers {
        assert_eq!(
            p.replica.scene().state_hash(),
            reference.scene().state_hash()
        );
    }
}
