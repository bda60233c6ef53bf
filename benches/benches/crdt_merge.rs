//! Theta's command log against the CRDT libraries of the field notes (automerge, yrs, loro), on
//! the same mesh workload in the same run:
//!
//! - `merge_2x5000_concurrent_edits`: a 10,000-vertex grid (9,801 quads) in a common base state; two
//!   replicas each move 5,000 vertices concurrently; measured: merging B's 5,000 edits into A.
//! - `remote_apply_into_100k`: one remote entry applied into a document that already holds 100,000
//!   entries (Theta: a log of 100,000 commands; baselines: a map holding those same 100,000 signed
//!   command byte strings, keyed by command id).
//! - `remote_apply_into_100k_first_after_load`: the same, but the first apply into a freshly
//!   loaded copy (the first apply into a new automerge or loro document is far slower than later
//!   ones; the field notes' one-shot figures are of this kind).
//! - `local_move_one_vertex`: move one vertex of the 10,000-vertex grid and commit.
//!
//! Layouts: Theta holds one object made by `Primitive::Grid` and edits it with `Op::MoveVertices`
//! (signed; remote commands are verified outside the timing unless the bench name says otherwise).
//! automerge holds a map `v` of vertex index → list `[x, y, z]` and a map `f` of quad index → list
//! of 4 vertex indices (lists are automerge's only arrays); a move sets the three list elements.
//! yrs and loro hold the same two maps with each position or quad as one immutable array value; a
//! move replaces the vertex's value. Every baseline receives remote edits as bytes, so decoding them
//! is inside its timing.
//!
//! Run: `cargo bench -p theta-benches --bench crdt_merge`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, criterion_group, measurement::WallTime,
};

/// The allocator the `theta` binary ships with. Every library in this file runs under it (and, from
/// [`theta_benches::run_like_the_app`], without transparent huge pages, as the app runs), so the
/// comparison is of the code, in the process a user's peer actually has.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Vertices per side of the grid: 100 × 100 = 10,000 vertices, 99 × 99 = 9,801 quads.
const SIDE: usize = 100;
/// Vertices in the grid.
const VERTICES: usize = SIDE * SIDE;
/// Edits each replica makes in the merge workload.
const EDITS: usize = 5_000;
/// Entries already in the document of the remote-apply workload.
const LOG_ENTRIES: usize = 100_000;

/// Which vertex edit `i` of replica `r` (0 = A, 1 = B) moves. Both replicas walk the grid with
/// different strides, so some vertices are moved by both (real conflicts), most by one.
fn edited_vertex(r: usize, i: usize) -> usize {
    let stride = [7_919, 104_729][r];
    (i * stride + r * 17) % VERTICES
}

/// The offset of edit `i` (small, and different per edit so no edit is a no-op).
fn delta(i: usize) -> [f32; 3] {
    let s = 0.001 * (1 + i % 7) as f32;
    [s, -s, 0.5 * s]
}

/// Base position of vertex `v`, laid out like `Primitive::Grid` (10 × 10 units, y = 0).
fn base_position(v: usize) -> [f64; 3] {
    let step = 10.0 / (SIDE - 1) as f64;
    [
        (v % SIDE) as f64 * step - 5.0,
        0.0,
        (v / SIDE) as f64 * step - 5.0,
    ]
}

/// Position of vertex `v` after edit `i` (baselines store positions, LWW).
fn moved_position(v: usize, i: usize) -> [f64; 3] {
    let b = base_position(v);
    let d = delta(i);
    [
        b[0] + f64::from(d[0]),
        b[1] + f64::from(d[1]),
        b[2] + f64::from(d[2]),
    ]
}

/// The grid's quads as vertex indices.
fn quads() -> impl Iterator<Item = [u64; 4]> {
    (0..SIDE - 1).flat_map(|z| {
        (0..SIDE - 1).map(move |x| {
            let v = (z * SIDE + x) as u64;
            [v, v + 1, v + 1 + SIDE as u64, v + SIDE as u64]
        })
    })
}

/// Sets criterion's time budget from a rough per-iteration cost, so each library runs about 5,000
/// timed iterations. In `remote_apply_into_100k` every iteration adds an entry, and this keeps the
/// document near 100,000 entries instead of letting fast libraries grow it several-fold.
fn budget(g: &mut BenchmarkGroup<'_, WallTime>, per_iter: Duration) {
    let clamp = |d: Duration| d.clamp(Duration::from_millis(10), Duration::from_secs(3));
    g.warm_up_time(clamp(per_iter * 1_000));
    g.measurement_time(clamp(per_iter * 5_000));
}

/// A document that is handed one remote entry after another; each entry is made outside the
/// timing, and only `apply` is timed.
trait RemoteTarget {
    /// What travels from the remote replica.
    type Update;
    /// Makes the `n`-th remote entry (not timed).
    fn prepare(&mut self, n: u64) -> Self::Update;
    /// Applies it (timed).
    fn apply(&mut self, update: Self::Update);
}

/// Times `apply` alone, one iteration at a time, on a target that keeps growing.
fn time_remote<T: RemoteTarget>(b: &mut criterion::Bencher<'_>, target: &mut T) {
    // Entry 0 was made for the first-apply measurement and applied before this one.
    let mut n = 1;
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let u = target.prepare(n);
            n += 1;
            let t = Instant::now();
            target.apply(black_box(u));
            total += t.elapsed();
        }
        total
    });
}

/// Times the first apply into a freshly loaded copy: `load` is outside the timing, one copy per
/// iteration, and each copy is dropped outside the timing too.
fn time_first<D>(b: &mut criterion::Bencher<'_>, load: impl Fn() -> D, apply: impl Fn(&mut D)) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let mut doc = load();
            let t = Instant::now();
            apply(&mut doc);
            total += t.elapsed();
            drop(doc);
        }
        total
    });
}

/// Theta: signed commands folded into a scene.
mod theta {
    use theta_crdt::author;
    use theta_crdt::command::{ObjectTransform, Op};
    use theta_crdt::fold::Replica;
    use theta_crdt::ids::{DerivedIds, ObjectId, Role};
    use theta_crdt::log::{Inserted, Verified, verify_command};
    use theta_crdt::sign::Keypair;
    use theta_crdt::workload::author_key;
    use theta_mesh::{MaterialId, Primitive, Vec3, VertexId};

    use super::{EDITS, RemoteTarget, VERTICES, delta, edited_vertex};

    /// Genesis by the admin (key 0), editors 1 and 2, and the 10,000-vertex grid, folded.
    #[derive(Clone)]
    pub(super) struct Session {
        pub(super) replica: Replica,
        object: ObjectId,
        vertices: Vec<VertexId>,
    }

    fn insert(r: &mut Replica, v: Verified) {
        let added = r.insert(v).expect("insert");
        assert!(matches!(added, Inserted::Added(_)), "{added:?}");
    }

    pub(super) fn session() -> Session {
        let admin = author_key(0);
        let g = verify_command(&author::genesis(&admin, "crdt_merge")).expect("genesis");
        let mut replica = Replica::new(g.id());
        insert(&mut replica, g);
        for k in [1, 2] {
            let op = Op::GrantRole {
                author: author_key(k).author(),
                role: Role::Editor,
            };
            let c = author::sign_local(&admin, replica.log(), op).expect("sign");
            insert(&mut replica, c);
        }
        let create = Op::CreateObject {
            name: "grid".into(),
            primitive: Primitive::Grid {
                size_x: 10.0,
                size_z: 10.0,
                cells_x: 99,
                cells_z: 99,
            },
            material: MaterialId(0),
            transform: ObjectTransform::IDENTITY,
        };
        let c = author::sign_local(&admin, replica.log(), create).expect("sign");
        let object = DerivedIds::new(&c.id()).object();
        insert(&mut replica, c);
        replica.settle();
        let vertices: Vec<VertexId> = replica
            .scene()
            .object(object)
            .expect("grid")
            .mesh()
            .vertices()
            .collect();
        assert_eq!(vertices.len(), VERTICES);
        Session {
            replica,
            object,
            vertices,
        }
    }

    impl Session {
        /// Edit `i` of replica `r` as an operation.
        fn move_op(&self, r: usize, i: usize) -> Op {
            let [x, y, z] = delta(i);
            Op::MoveVertices {
                object: self.object,
                vertices: vec![self.vertices[edited_vertex(r, i)]],
                delta: Vec3::new(x, y, z),
            }
        }

        /// Replica `r` makes its `EDITS` edits as author `r + 1`, each on top of the last; returns
        /// them as signed bytes.
        fn edit(&mut self, r: usize) -> Vec<Vec<u8>> {
            let key = author_key(r + 1);
            let mut out = Vec::with_capacity(EDITS);
            for i in 0..EDITS {
                let op = self.move_op(r, i);
                let c = author::sign_local(&key, self.replica.log(), op).expect("sign");
                out.push(c.bytes().to_vec());
                insert(&mut self.replica, c);
            }
            self.replica.settle();
            out
        }

        /// Moves one vertex as a local edit: sign, insert, fold.
        pub(super) fn local_move(&mut self, key: &Keypair, i: usize) {
            let op = self.move_op(0, i);
            let c = author::sign_local(key, self.replica.log(), op).expect("sign");
            insert(&mut self.replica, c);
            self.replica.settle();
        }
    }

    /// Replica A after its 5,000 edits, and B's 5,000 edits already verified.
    pub(super) fn merge_inputs() -> (Replica, Vec<Verified>) {
        let base = session();
        let mut a = base.clone();
        a.edit(0);
        let mut b = base;
        let from_b = b
            .edit(1)
            .iter()
            .map(|bytes| verify_command(bytes).expect("valid"))
            .collect();
        (a.replica, from_b)
    }

    /// Inserts B's commands into A and folds once.
    pub(super) fn merge(mut a: Replica, from_b: Vec<Verified>) -> Replica {
        for c in from_b {
            insert(&mut a, c);
        }
        a.settle();
        a
    }

    /// The grid session plus admin moves up to `LOG_ENTRIES` commands (signed with `sign_local`,
    /// folded once at the end), and the signed bytes of every command, for the baselines.
    pub(super) fn log_100k() -> (Session, Vec<(String, Vec<u8>)>) {
        let mut s = session();
        let admin = author_key(0);
        let mut entries: Vec<(String, Vec<u8>)> = s
            .replica
            .log()
            .ordered()
            .map(|e| (e.id.to_string(), e.bytes().to_vec()))
            .collect();
        for i in entries.len()..super::LOG_ENTRIES {
            let op = s.move_op(0, i);
            let c = author::sign_local(&admin, s.replica.log(), op).expect("sign");
            entries.push((c.id().to_string(), c.bytes().to_vec()));
            insert(&mut s.replica, c);
        }
        s.replica.settle();
        assert_eq!(s.replica.log().len(), super::LOG_ENTRIES);
        (s, entries)
    }

    /// A 100,000-command replica receiving remote moves at its tail from editor 2.
    pub(super) struct Tail {
        session: Session,
        remote: Keypair,
    }

    impl Tail {
        pub(super) fn new(session: Session) -> Tail {
            Tail {
                session,
                remote: author_key(2),
            }
        }

        fn signed(&self, n: u64) -> Vec<u8> {
            let op = self.session.move_op(1, n as usize);
            author::sign(&self.remote, self.session.replica.log(), op)
        }

        fn insert_and_fold(&mut self, c: Verified) {
            apply_to(&mut self.session.replica, c);
        }

        /// A copy of the replica and remote entry 0, made against it.
        pub(super) fn first_apply_inputs(&mut self) -> (Replica, Verified) {
            let c = PreVerified(self).prepare(0);
            (self.session.replica.clone(), c)
        }

        /// Applies remote entry 0 outside any timing (see `time_remote`).
        pub(super) fn apply_first(&mut self, c: Verified) {
            self.insert_and_fold(c);
        }
    }

    /// Inserts one remote command and folds it.
    pub(super) fn apply_to(r: &mut Replica, c: Verified) {
        insert(r, c);
        std::hint::black_box(r.settle());
    }

    /// Signatures verified before the timing.
    pub(super) struct PreVerified<'a>(pub(super) &'a mut Tail);

    impl RemoteTarget for PreVerified<'_> {
        type Update = Verified;
        fn prepare(&mut self, n: u64) -> Verified {
            verify_command(&self.0.signed(n)).expect("valid")
        }
        fn apply(&mut self, c: Verified) {
            self.0.insert_and_fold(c);
        }
    }

    /// Decoding and signature verification inside the timing.
    pub(super) struct Verifying<'a>(pub(super) &'a mut Tail);

    impl RemoteTarget for Verifying<'_> {
        type Update = Vec<u8>;
        fn prepare(&mut self, n: u64) -> Vec<u8> {
            self.0.signed(n)
        }
        fn apply(&mut self, bytes: Vec<u8>) {
            let c = verify_command(&bytes).expect("valid");
            self.0.insert_and_fold(c);
        }
    }
}

/// automerge: maps of list objects, one commit per edit.
mod am {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, Change, ObjId, ObjType, ROOT, ScalarValue};

    use super::{
        EDITS, RemoteTarget, VERTICES, base_position, edited_vertex, moved_position, quads,
    };

    /// A document and the list object of every vertex (kept, as an editor would, to skip lookups).
    #[derive(Clone)]
    pub(super) struct Mesh {
        pub(super) doc: AutoCommit,
        lists: Vec<ObjId>,
    }

    fn actor(n: u8) -> ActorId {
        ActorId::from([n; 16].as_slice())
    }

    pub(super) fn mesh() -> Mesh {
        let mut doc = AutoCommit::new().with_actor(actor(1));
        let v = doc.put_object(ROOT, "v", ObjType::Map).expect("put");
        let mut lists = Vec::with_capacity(VERTICES);
        for i in 0..VERTICES {
            let l = doc
                .put_object(&v, i.to_string(), ObjType::List)
                .expect("put");
            for (k, c) in base_position(i).into_iter().enumerate() {
                doc.insert(&l, k, c).expect("insert");
            }
            lists.push(l);
        }
        let f = doc.put_object(ROOT, "f", ObjType::Map).expect("put");
        for (i, q) in quads().enumerate() {
            let l = doc
                .put_object(&f, i.to_string(), ObjType::List)
                .expect("put");
            for (k, c) in q.into_iter().enumerate() {
                doc.insert(&l, k, c).expect("insert");
            }
        }
        doc.commit();
        Mesh { doc, lists }
    }

    impl Mesh {
        /// Moves vertex `v` to its position after edit `i` and commits.
        pub(super) fn move_vertex(&mut self, v: usize, i: usize) {
            for (k, c) in moved_position(v, i).into_iter().enumerate() {
                self.doc.put(&self.lists[v], k, c).expect("put");
            }
            self.doc.commit();
        }
    }

    /// A after its edits, and B's edits as the bytes of its changes.
    pub(super) fn merge_inputs() -> (AutoCommit, Vec<Vec<u8>>) {
        let mut base = mesh();
        let heads = base.doc.get_heads();
        let mut a = base.clone();
        a.doc.set_actor(actor(10));
        let mut b = base;
        b.doc.set_actor(actor(20));
        for i in 0..EDITS {
            a.move_vertex(edited_vertex(0, i), i);
            b.move_vertex(edited_vertex(1, i), i);
        }
        let changes = b.doc.get_changes(&heads);
        assert_eq!(changes.len(), EDITS);
        (
            a.doc,
            changes
                .into_iter()
                .map(|mut c| c.bytes().into_owned())
                .collect(),
        )
    }

    pub(super) fn merge(mut a: AutoCommit, from_b: Vec<Vec<u8>>) -> AutoCommit {
        let changes: Vec<Change> = from_b
            .into_iter()
            .map(|b| Change::from_bytes(b).expect("change"))
            .collect();
        a.apply_changes(changes).expect("apply");
        a
    }

    /// The 100,000 entries in a map, one transaction, and a fork that adds entries remotely.
    pub(super) struct Log {
        target: AutoCommit,
        remote: AutoCommit,
        map: ObjId,
        value: Vec<u8>,
    }

    pub(super) fn log(entries: &[(String, Vec<u8>)]) -> Log {
        let mut target = AutoCommit::new().with_actor(actor(1));
        let map = target.put_object(ROOT, "log", ObjType::Map).expect("put");
        for (k, v) in entries {
            target
                .put(&map, k.as_str(), ScalarValue::Bytes(v.clone()))
                .expect("put");
        }
        target.commit();
        let mut remote = target.fork();
        remote.set_actor(actor(2));
        let value = entries[entries.len() - 1].1.clone();
        Log {
            target,
            remote,
            map,
            value,
        }
    }

    impl RemoteTarget for Log {
        type Update = Vec<u8>;
        fn prepare(&mut self, n: u64) -> Vec<u8> {
            let key = format!("{n:064x}");
            self.remote
                .put(&self.map, key, ScalarValue::Bytes(self.value.clone()))
                .expect("put");
            self.remote.commit();
            let mut c = self.remote.get_last_local_change().expect("change");
            c.bytes().into_owned()
        }
        fn apply(&mut self, bytes: Vec<u8>) {
            apply_to(&mut self.target, bytes);
        }
    }

    impl Log {
        /// The saved target and remote entry 0, made against it.
        pub(super) fn first_apply_inputs(&mut self) -> (Vec<u8>, Vec<u8>) {
            let update = self.prepare(0);
            (self.target.save(), update)
        }
    }

    pub(super) fn load(saved: &[u8]) -> AutoCommit {
        AutoCommit::load(saved).expect("load").with_actor(actor(1))
    }

    pub(super) fn apply_to(doc: &mut AutoCommit, bytes: Vec<u8>) {
        let c = Change::from_bytes(bytes).expect("change");
        doc.apply_changes([c]).expect("apply");
    }
}

/// yrs: maps of immutable arrays, one transaction per edit.
mod y {
    use std::sync::Arc;

    use yrs::updates::decoder::Decode;
    use yrs::{Any, Doc, Map, MapRef, Number, ReadTxn, StateVector, Transact, Update};

    use super::{
        EDITS, RemoteTarget, VERTICES, base_position, edited_vertex, moved_position, quads,
    };

    fn array(xs: impl IntoIterator<Item = Any>) -> Any {
        Any::Array(Arc::from(xs.into_iter().collect::<Vec<_>>()))
    }

    fn position(p: [f64; 3]) -> Any {
        array(p.map(|c| Any::Number(Number::Float(c))))
    }

    pub(super) fn mesh() -> Doc {
        let doc = Doc::with_client_id(1);
        let v = doc.get_or_insert_map("v");
        let f = doc.get_or_insert_map("f");
        let mut txn = doc.transact_mut();
        for i in 0..VERTICES {
            v.insert(&mut txn, i.to_string(), position(base_position(i)));
        }
        for (i, q) in quads().enumerate() {
            f.insert(
                &mut txn,
                i.to_string(),
                array(q.map(|c| Any::Number(Number::Int(c as i64)))),
            );
        }
        drop(txn);
        doc
    }

    /// A copy of a document as another client (yrs's `Doc::clone` shares, it does not copy).
    pub(super) fn copy(state: &[u8], client: u64) -> Doc {
        let doc = Doc::with_client_id(client);
        doc.transact_mut()
            .apply_update(Update::decode_v1(state).expect("decode"))
            .expect("apply");
        doc
    }

    pub(super) fn full_state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// Moves vertex `v` to its position after edit `i`, in its own transaction.
    pub(super) fn move_vertex(doc: &Doc, map: &MapRef, v: usize, i: usize) {
        let mut txn = doc.transact_mut();
        map.insert(&mut txn, v.to_string(), position(moved_position(v, i)));
    }

    /// A's full state after its edits (each iteration loads a fresh copy), and B's edits as one
    /// update against the base.
    pub(super) fn merge_inputs() -> (Vec<u8>, Vec<u8>) {
        let base = mesh();
        let state = full_state(&base);
        let base_sv = base.transact().state_vector();
        let (a, b) = (copy(&state, 10), copy(&state, 20));
        let (va, vb) = (a.get_or_insert_map("v"), b.get_or_insert_map("v"));
        for i in 0..EDITS {
            move_vertex(&a, &va, edited_vertex(0, i), i);
            move_vertex(&b, &vb, edited_vertex(1, i), i);
        }
        let from_b = b.transact().encode_state_as_update_v1(&base_sv);
        (full_state(&a), from_b)
    }

    pub(super) fn merge(a: Doc, from_b: &[u8]) -> Doc {
        a.transact_mut()
            .apply_update(Update::decode_v1(from_b).expect("decode"))
            .expect("apply");
        a
    }

    pub(super) struct Log {
        target: Doc,
        remote: Doc,
        remote_map: MapRef,
        value: Arc<[u8]>,
    }

    pub(super) fn log(entries: &[(String, Vec<u8>)]) -> Log {
        let target = Doc::with_client_id(1);
        let map = target.get_or_insert_map("log");
        {
            let mut txn = target.transact_mut();
            for (k, v) in entries {
                map.insert(&mut txn, k.as_str(), Any::Buffer(Arc::from(v.as_slice())));
            }
        }
        let remote = copy(&full_state(&target), 2);
        let remote_map = remote.get_or_insert_map("log");
        let value = Arc::from(entries[entries.len() - 1].1.as_slice());
        Log {
            target,
            remote,
            remote_map,
            value,
        }
    }

    impl RemoteTarget for Log {
        type Update = Vec<u8>;
        fn prepare(&mut self, n: u64) -> Vec<u8> {
            let mut txn = self.remote.transact_mut();
            self.remote_map.insert(
                &mut txn,
                format!("{n:064x}"),
                Any::Buffer(self.value.clone()),
            );
            txn.encode_update_v1()
        }
        fn apply(&mut self, bytes: Vec<u8>) {
            apply_to(&self.target, &bytes);
        }
    }

    impl Log {
        /// The saved target and remote entry 0, made against it.
        pub(super) fn first_apply_inputs(&mut self) -> (Vec<u8>, Vec<u8>) {
            let update = self.prepare(0);
            (full_state(&self.target), update)
        }
    }

    pub(super) fn apply_to(doc: &Doc, bytes: &[u8]) {
        doc.transact_mut()
            .apply_update(Update::decode_v1(bytes).expect("decode"))
            .expect("apply");
    }
}

/// loro: maps of immutable lists, one commit per edit.
mod lo {
    use loro::{ExportMode, LoroDoc, LoroValue};

    use super::{
        EDITS, RemoteTarget, VERTICES, base_position, edited_vertex, moved_position, quads,
    };

    pub(super) fn mesh() -> LoroDoc {
        let doc = LoroDoc::new();
        doc.set_peer_id(1).expect("peer");
        let v = doc.get_map("v");
        for i in 0..VERTICES {
            v.insert(&i.to_string(), base_position(i).to_vec())
                .expect("insert");
        }
        let f = doc.get_map("f");
        for (i, q) in quads().enumerate() {
            let q: Vec<LoroValue> = q.iter().map(|&c| LoroValue::I64(c as i64)).collect();
            f.insert(&i.to_string(), q).expect("insert");
        }
        doc.commit();
        doc
    }

    /// A deep copy as another peer.
    pub(super) fn fork(doc: &LoroDoc, peer: u64) -> LoroDoc {
        let d = doc.fork();
        d.set_peer_id(peer).expect("peer");
        d
    }

    /// Moves vertex `v` to its position after edit `i` and commits.
    pub(super) fn move_vertex(doc: &LoroDoc, v: usize, i: usize) {
        doc.get_map("v")
            .insert(&v.to_string(), moved_position(v, i).to_vec())
            .expect("insert");
        doc.commit();
    }

    /// A after its edits, and B's edits as one update against the base.
    pub(super) fn merge_inputs() -> (LoroDoc, Vec<u8>) {
        let base = mesh();
        let (a, b) = (fork(&base, 10), fork(&base, 20));
        for i in 0..EDITS {
            move_vertex(&a, edited_vertex(0, i), i);
            move_vertex(&b, edited_vertex(1, i), i);
        }
        let from_b = b
            .export(ExportMode::updates(&base.oplog_vv()))
            .expect("export");
        (a, from_b)
    }

    pub(super) fn merge(a: LoroDoc, from_b: &[u8]) -> LoroDoc {
        a.import(from_b).expect("import");
        a
    }

    pub(super) struct Log {
        target: LoroDoc,
        remote: LoroDoc,
        value: Vec<u8>,
    }

    pub(super) fn log(entries: &[(String, Vec<u8>)]) -> Log {
        let target = LoroDoc::new();
        target.set_peer_id(1).expect("peer");
        let map = target.get_map("log");
        for (k, v) in entries {
            map.insert(k, v.clone()).expect("insert");
        }
        target.commit();
        let remote = fork(&target, 2);
        let value = entries[entries.len() - 1].1.clone();
        Log {
            target,
            remote,
            value,
        }
    }

    impl RemoteTarget for Log {
        type Update = Vec<u8>;
        fn prepare(&mut self, n: u64) -> Vec<u8> {
            let vv = self.remote.oplog_vv();
            self.remote
                .get_map("log")
                .insert(&format!("{n:064x}"), self.value.clone())
                .expect("insert");
            self.remote.commit();
            self.remote
                .export(ExportMode::updates(&vv))
                .expect("export")
        }
        fn apply(&mut self, bytes: Vec<u8>) {
            self.target.import(&bytes).expect("import");
        }
    }

    impl Log {
        /// The target's snapshot and remote entry 0, made against it.
        pub(super) fn first_apply_inputs(&mut self) -> (Vec<u8>, Vec<u8>) {
            let update = self.prepare(0);
            (
                self.target.export(ExportMode::Snapshot).expect("export"),
                update,
            )
        }
    }

    pub(super) fn load(saved: &[u8]) -> LoroDoc {
        let doc = LoroDoc::new();
        doc.set_peer_id(1).expect("peer");
        doc.import(saved).expect("import");
        doc
    }
}

fn merge_2x5000(c: &mut Criterion) {
    let mut g = c.benchmark_group("merge_2x5000_concurrent_edits");
    // Each iteration takes milliseconds to hundreds of milliseconds plus a setup copy of A: flat
    // sampling keeps the slowest library to a few seconds.
    g.sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let (a, from_b) = theta::merge_inputs();
    // Once outside the timing: the merge really interleaves both histories.
    let merged = theta::merge(a.clone(), from_b.clone());
    assert_eq!(merged.log().len(), a.log().len() + from_b.len());
    assert!(merged.stats().rollbacks > a.stats().rollbacks);
    g.bench_function("theta", |b| {
        b.iter_batched(
            || (a.clone(), from_b.clone()),
            |(a, from_b)| theta::merge(a, from_b),
            BatchSize::LargeInput,
        );
    });
    drop((a, from_b, merged));

    let (a, from_b) = am::merge_inputs();
    g.bench_function("automerge", |b| {
        b.iter_batched(
            || (a.clone(), from_b.clone()),
            |(a, from_b)| am::merge(a, from_b),
            BatchSize::LargeInput,
        );
    });
    drop((a, from_b));

    let (a_state, from_b) = y::merge_inputs();
    g.bench_function("yrs", |b| {
        b.iter_batched(
            || y::copy(&a_state, 10),
            |a| y::merge(a, &from_b),
            BatchSize::LargeInput,
        );
    });
    drop((a_state, from_b));

    let (a, from_b) = lo::merge_inputs();
    g.bench_function("loro", |b| {
        b.iter_batched(
            || lo::fork(&a, 10),
            |a| lo::merge(a, &from_b),
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn remote_apply_into_100k(c: &mut Criterion) {
    let (session, entries) = theta::log_100k();
    let mut tail = theta::Tail::new(session);
    let mut am_doc = am::log(&entries);
    let mut y_doc = y::log(&entries);
    let mut lo_doc = lo::log(&entries);
    drop(entries);

    // The first apply into a freshly loaded document pays one-off costs that later applies do not
    // (index or state building, lazily decoded snapshots), so it is measured on its own: one fresh
    // copy per iteration, loaded outside the timing; 1 ns budgets make criterion take exactly one
    // iteration per sample, as each load takes up to a few hundred milliseconds.
    let mut g = c.benchmark_group("remote_apply_into_100k_first_after_load");
    g.sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_nanos(1))
        .measurement_time(Duration::from_nanos(1));
    let (replica, first) = tail.first_apply_inputs();
    g.bench_function("theta_preverified", |b| {
        time_first(b, || replica.clone(), |r| theta::apply_to(r, first.clone()))
    });
    drop(replica);
    tail.apply_first(first);
    let (saved, first) = am_doc.first_apply_inputs();
    g.bench_function("automerge", |b| {
        time_first(b, || am::load(&saved), |d| am::apply_to(d, first.clone()))
    });
    am_doc.apply(first);
    let (saved, first) = y_doc.first_apply_inputs();
    g.bench_function("yrs", |b| {
        time_first(b, || y::copy(&saved, 1), |d| y::apply_to(d, &first))
    });
    y_doc.apply(first);
    let (saved, first) = lo_doc.first_apply_inputs();
    g.bench_function("loro", |b| {
        time_first(
            b,
            || lo::load(&saved),
            |d| d.import(&first).map(drop).expect("import"),
        )
    });
    lo_doc.apply(first);
    drop(saved);
    g.finish();

    // Steady state: every target has had its first apply above. Rough per-iteration costs (from
    // a first run on this machine) size the budgets, since each target grows by one entry per
    // iteration.
    let mut g = c.benchmark_group("remote_apply_into_100k");
    budget(&mut g, Duration::from_micros(10));
    g.bench_function("theta_preverified", |b| {
        time_remote(b, &mut theta::PreVerified(&mut tail))
    });
    budget(&mut g, Duration::from_micros(50));
    g.bench_function("theta_with_verify", |b| {
        time_remote(b, &mut theta::Verifying(&mut tail))
    });
    drop(tail);
    budget(&mut g, Duration::from_micros(6));
    g.bench_function("automerge", |b| time_remote(b, &mut am_doc));
    drop(am_doc);
    budget(&mut g, Duration::from_micros(2));
    g.bench_function("yrs", |b| time_remote(b, &mut y_doc));
    drop(y_doc);
    budget(&mut g, Duration::from_micros(1));
    g.bench_function("loro", |b| time_remote(b, &mut lo_doc));
    g.finish();
}

fn local_move_one_vertex(c: &mut Criterion) {
    // Every iteration is one more edit in the document's history: budgets sized like
    // `remote_apply_into_100k` keep the histories comparable (about 6,000 edits each).
    let mut g = c.benchmark_group("local_move_one_vertex");

    let mut s = theta::session();
    let key = theta_crdt::workload::author_key(1);
    let mut i = 0;
    budget(&mut g, Duration::from_micros(60));
    g.bench_function("theta", |b| {
        b.iter(|| {
            s.local_move(&key, i);
            i += 1;
        })
    });
    drop(s);

    let mut m = am::mesh();
    let mut i = 0;
    budget(&mut g, Duration::from_micros(67));
    g.bench_function("automerge", |b| {
        b.iter(|| {
            m.move_vertex(edited_vertex(0, i), i);
            i += 1;
        })
    });
    drop(m);

    let doc = y::mesh();
    let map = doc.get_or_insert_map("v");
    let mut i = 0;
    budget(&mut g, Duration::from_nanos(980));
    g.bench_function("yrs", |b| {
        b.iter(|| {
            y::move_vertex(&doc, &map, edited_vertex(0, i), i);
            i += 1;
        })
    });

    let doc = lo::mesh();
    let mut i = 0;
    budget(&mut g, Duration::from_nanos(1_550));
    g.bench_function("loro", |b| {
        b.iter(|| {
            lo::move_vertex(&doc, edited_vertex(0, i), i);
            i += 1;
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // Few samples: the slowest iterations take hundreds of milliseconds, and the whole file should
    // run in a few minutes on a shared 2-core machine.
    config = Criterion::default().sample_size(10);
    targets = merge_2x5000, remote_apply_into_100k, local_move_one_vertex
}
fn main() {
    theta_benches::run_like_the_app();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
