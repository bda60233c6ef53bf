//! Opening a session from its file's commands: from a checkpoint where one matches, else by
//! verifying and folding everything. IO-less: the app reads the files and hands over the bytes.
//!
//! Full open: every command is verified (batches of 64 over all cores, the one ZIP-215 rule),
//! inserted in file order and folded once. With a checkpoint that matches the file's first records
//! (see `checkpoint.rs`), those are restored without being verified or folded again: they were
//! verified when they were first admitted, and the checkpoint and the file are both this peer's own
//! checksummed local files. Only the records after it are verified and folded. A checkpoint that
//! does not match is reported and ignored; it never stops a session from opening.

use std::sync::Arc;

use crate::checkpoint::{self, CheckpointError};
use crate::fold::Replica;
use crate::ids::CommandId;
use crate::log::{InsertError, check_signatures, decode_all, signed_of, with_signatures};
use crate::scene::Event;

/// A session opened from its file.
#[derive(Debug)]
pub struct Opened {
    /// The replica, settled.
    pub replica: Replica,
    /// How many records the checkpoint restored (0 when none was used).
    pub from_checkpoint: u64,
    /// Why a checkpoint that was offered was not used.
    pub checkpoint_error: Option<CheckpointError>,
    /// Records that were refused (by position in the file), with why. A file this peer wrote has
    /// none; they are reported, not fatal.
    pub refused: Vec<(usize, InsertError)>,
    /// Change events from folding the records after the checkpoint.
    pub events: Vec<Event>,
}

/// Opens a session from its file's records (`commands`, with their `checks`), using `checkpoint`
/// if it matches. `seed` keys batch verification (see
/// [`verify_commands_parallel`](crate::log::verify_commands_parallel)).
///
/// The records after the checkpoint are decoded on all cores, then folded while their signatures
/// are checked on the other threads: the fold does not wait for the signatures. If every
/// signature verifies, the replica built that way is the result. If any fails, it is thrown away
/// and the replica is built again from the commands whose signatures verified, so the result is
/// always exactly what verifying first and folding second gives.
pub fn open(
    session: CommandId,
    commands: &[Arc<[u8]>],
    checks: &[[u8; 8]],
    checkpoint: Option<&[u8]>,
    seed: [u8; 32],
) -> Opened {
    let restore = || match checkpoint.map(|c| checkpoint::decode(c, &session, commands, checks)) {
        Some(Ok(r)) => {
            let n = r.log().len() as u64;
            (r, n, None)
        }
        Some(Err(e)) => (Replica::new(session), 0, Some(e)),
        None => (Replica::new(session), 0, None),
    };
    let (mut replica, from, checkpoint_error) = restore();
    let rest = &commands[from as usize..];
    let decoded = decode_all(rest);
    let signed = signed_of(&decoded);
    let (signatures, (refused, events)) = std::thread::scope(|s| {
        let checker = s.spawn(|| check_signatures(&signed, seed));
        let mut refused = Vec::new();
        for (i, d) in decoded.into_iter().enumerate() {
            if let Err(e) = d.and_then(|(v, _)| replica.insert(v)) {
                refused.push((from as usize + i, e));
            }
        }
        let events = settle_without_packing(&mut replica);
        // A panic while checking would be a bug; checking again here surfaces it as one.
        let signatures = checker
            .join()
            .unwrap_or_else(|_| check_signatures(&signed, seed));
        (signatures, (refused, events))
    });
    if signatures.iter().all(Result::is_ok) {
        return Opened {
            replica,
            from_checkpoint: from,
            checkpoint_error,
            refused,
            events,
        };
    }
    // Some signature failed (a damaged or forged file): start again with only the commands whose
    // signatures verified (the results are known; only the decoding is repeated).
    drop(replica);
    let (mut replica, from, checkpoint_error) = restore();
    let mut refused = Vec::new();
    for (i, v) in with_signatures(decode_all(rest), signatures)
        .into_iter()
        .enumerate()
    {
        if let Err(e) = v.and_then(|v| replica.insert(v)) {
            refused.push((from as usize + i, e));
        }
    }
    let events = settle_without_packing(&mut replica);
    Opened {
        replica,
        from_checkpoint: from,
        checkpoint_error,
        refused,
        events,
    }
}

/// The opening settle, without packing cold objects at its end: packing a 100,000-command
/// session's scene takes about 0.2 s, which would put the open over its time. The objects pack
/// as commands fold afterwards (see [`crate::fold::Packing`]).
fn settle_without_packing(replica: &mut Replica) -> Vec<crate::scene::Event> {
    let packing = replica.packing();
    replica.set_packing(crate::fold::Packing {
        every: 0,
        ..packing
    });
    let events = replica.settle();
    replica.set_packing(packing);
    events
}
