//! Helpers shared by the crdt integration tests.
#![allow(dead_code, unreachable_pub)]

use theta_crdt::author;
use theta_crdt::command::{ObjectTransform, Op};
use theta_crdt::fold::Replica;
use theta_crdt::ids::{CommandId, ObjectId};
use theta_crdt::log::{Inserted, Verified, verify_command};
use theta_crdt::sign::Keypair;
use theta_mesh::{MaterialId, Primitive, Vec3};

pub fn key(i: u8) -> Keypair {
    Keypair::from_secret([i; 32])
}

/// A replica with a fresh session started by `admin`.
pub fn start(admin: &Keypair) -> (Replica, Vec<u8>) {
    let g = author::genesis(admin, "test session");
    let v = verify_command(&g).unwrap();
    let mut r = Replica::new(v.id());
    r.insert(v).unwrap();
    r.settle();
    (r, g)
}

/// A replica with a fresh session started by `admin`, who has made `editor` an editor.
pub fn start_with_editor(admin: &Keypair, editor: &Keypair) -> Replica {
    let (mut r, _) = start(admin);
    edit(
        &mut r,
        admin,
        Op::GrantRole {
            author: editor.author(),
            role: theta_crdt::ids::Role::Editor,
        },
    );
    r
}

/// Signs `op` by `k` on the replica's heads, inserts and settles it; returns id and bytes.
pub fn edit(r: &mut Replica, k: &Keypair, op: Op) -> (CommandId, Vec<u8>) {
    let b = author::sign(k, r.log(), op);
    let v = verify_command(&b).unwrap();
    let id = v.id();
    let res = r.insert(v).unwrap();
    assert!(matches!(res, Inserted::Added(_)), "{res:?}");
    r.settle();
    (id, b)
}

pub fn verified(b: &[u8]) -> Verified {
    verify_command(b).unwrap()
}

pub fn cube(name: &str) -> Op {
    Op::CreateObject {
        name: name.into(),
        primitive: Primitive::Cuboid { size: Vec3::ONE },
        material: MaterialId(0),
        transform: ObjectTransform::IDENTITY,
    }
}

/// The object a create command made (the first id it derives).
pub fn object_of(create: CommandId) -> ObjectId {
    theta_crdt::ids::DerivedIds::new(&create).object()
}
