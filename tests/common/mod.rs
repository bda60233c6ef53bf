//! What several test files share: a session document folded in memory by one author.

use theta_crdt::author;
use theta_crdt::command::Op;
use theta_crdt::fold::Replica;
use theta_crdt::ids::CommandId;
use theta_crdt::log::verify_command;
use theta_crdt::scene::Event;
use theta_crdt::sign::Keypair;
use theta_crdt::workload::author_key;

/// A replica and its admin's key (the workload generator's author 0).
pub(crate) struct Doc {
    /// The admin.
    pub(crate) key: Keypair,
    /// The replica.
    pub(crate) replica: Replica,
}

impl Doc {
    /// A new session with only its genesis.
    pub(crate) fn new() -> Doc {
        let key = author_key(0);
        let g = author::genesis(&key, "test");
        let v = verify_command(&g).unwrap();
        let mut replica = Replica::new(v.id());
        replica.insert(v).unwrap();
        replica.settle();
        Doc { key, replica }
    }

    /// Makes an edit as the admin; returns its id and the fold's change events.
    pub(crate) fn edit(&mut self, op: Op) -> (CommandId, Vec<Event>) {
        let b = author::sign(&self.key, self.replica.log(), op);
        let v = verify_command(&b).unwrap();
        let id = v.id();
        self.replica.insert(v).unwrap();
        (id, self.replica.settle())
    }
}
