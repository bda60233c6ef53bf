//! Making commands: the local author signs operations on top of what their log holds.
//!
//! Sequence numbers are never reused, even after a crash, because a command is made durable before it
//! is sent (the storage layer's job, with group commit): after a restart the next number is one past
//! the last command of the author's that the reopened log holds, and no command beyond that was ever
//! seen by anyone. This keeps each author's chain gap-free, which the log's chain check relies on.

use crate::command::{Envelope, Op};
use crate::ids::CommandId;
use crate::log::{Log, Verified};
use crate::sign::Keypair;
use crate::wire;
use crate::wire::DecodeError;

/// The signed bytes of a session's first command.
pub fn genesis(key: &Keypair, name: &str) -> Vec<u8> {
    let env = Envelope {
        author: key.author(),
        seq: 1,
        lamport: 1,
        deps: vec![],
        op: Op::Genesis {
            name: name.to_string(),
        },
    };
    seal(key, &env)
}

/// Signs `op` as the author's next command on top of the log's current heads.
pub fn sign(key: &Keypair, log: &Log, op: Op) -> Vec<u8> {
    sign_on(key, log, &log.heads(), op)
}

/// Signs `op` on top of chosen deps (plus the author's own previous command, which the chain needs).
/// Used by tests and simulators to model authors who have seen only part of the log.
pub fn sign_on(key: &Keypair, log: &Log, deps: &[CommandId], op: Op) -> Vec<u8> {
    let author = key.author();
    let seq = log.last_seq(&author) + 1;
    let mut deps: Vec<CommandId> = deps.iter().filter(|d| log.contains(d)).copied().collect();
    deps.sort_unstable();
    deps.dedup();
    // Keep room for the chain link, which must never be the one dropped.
    deps.truncate(wire::MAX_DEPS - 1);
    if let Some(prev) = log.by_author_seq(&author, seq - 1) {
        deps.push(prev);
        deps.sort_unstable();
        deps.dedup();
    }
    let lamport = 1 + deps
        .iter()
        .filter_map(|d| log.get(d))
        .map(|e| e.lamport)
        .max()
        .unwrap_or(0);
    seal(
        key,
        &Envelope {
            author,
            seq,
            lamport,
            deps,
            op,
        },
    )
}

/// Signs `op` like [`sign`] and returns it ready for the log, without verifying the signature just
/// made: ed25519 signing is deterministic and always yields a valid signature, so a local edit need
/// not pay for verification. The bytes are still decoded: that applies the same size and field
/// limits every peer's decoder applies, so a command others would refuse is refused here too.
/// Remote commands always go through [`crate::log::verify_command`].
pub fn sign_local(key: &Keypair, log: &Log, op: Op) -> Result<Verified, DecodeError> {
    let bytes = sign(key, log, op);
    Verified::own(&bytes)
}

/// Encodes and signs an envelope as it is (no checks): tests use it to forge bad commands.
pub fn seal(key: &Keypair, env: &Envelope) -> Vec<u8> {
    let body = wire::encode_body(env);
    let sig = key.sign(&body);
    wire::encode_signed(&body, &sig)
}
