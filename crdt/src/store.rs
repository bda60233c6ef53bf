//! The session file format (`.theta`), as pure functions over bytes: the app's storage layer does
//! the file I/O (append, fsync, truncate) and calls these to encode records and to parse and recover
//! a file it opens. Keeping the format here, IO-less, lets the same parser run in the simulator and
//! under the fuzzer.
//!
//! Layout: a 48-byte header, then records back to back.
//! - Header: magic `THETALOG`, format version (u32 LE), flags (u32 LE, 0), the session id (32).
//! - Record: payload length (u32 LE), kind (u8: 1 = signed command), check (the first 8 bytes of
//!   BLAKE3 over kind and payload), payload.
//!
//! Commands are appended in the order the log admitted them (dependencies first). A crash can only
//! tear the end of the file: a torn or partial record at the tail is recovered by dropping it, and
//! the report says how many bytes were dropped. A bad record followed by good ones is corruption,
//! not a torn write: the file is refused with the offset, and never rewritten.

use std::sync::Arc;

use crate::ids::CommandId;

/// File magic.
pub const MAGIC: [u8; 8] = *b"THETALOG";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 48;
/// Record header size in bytes (length, kind, check).
pub const RECORD_HEADER_LEN: usize = 4 + 1 + 8;
/// Largest record payload accepted (a command is at most 64 KiB).
pub const MAX_RECORD: usize = 1 << 20;

const KIND_COMMAND: u8 = 1;

/// Why a session file cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file does not start with the Theta magic: it is not a session file.
    #[error("not a Theta session file (bad magic)")]
    NotASessionFile,
    /// The file was written by a newer version of Theta.
    #[error(
        "session file format version {0} is newer than this Theta understands ({FORMAT_VERSION})"
    )]
    NewerVersion(u32),
    /// The file is damaged before its end (not a torn final write).
    #[error("session file is corrupt at byte {offset}: {what}")]
    Corrupt {
        /// Where.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

/// A parsed session file.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The session id from the header.
    pub session: CommandId,
    /// The signed commands, in file order.
    pub commands: Vec<Arc<[u8]>>,
    /// Bytes of the file that are header and whole, valid records.
    pub valid_len: u64,
    /// Bytes after `valid_len` that were a torn final write and are dropped.
    pub dropped: u64,
}

/// The header for a session.
pub fn encode_header(session: &CommandId) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..48].copy_from_slice(&session.0);
    h
}

fn check(kind: u8, payload: &[u8]) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(payload);
    let mut c = [0u8; 8];
    c.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    c
}

/// Appends the record for one signed command to `out`.
pub fn encode_command_record(command: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(command.len() as u32).to_le_bytes());
    out.push(KIND_COMMAND);
    out.extend_from_slice(&check(KIND_COMMAND, command));
    out.extend_from_slice(command);
}

/// Parses one record at `bytes[at..]`: `Ok(Some((payload range end, payload)))`, `Ok(None)` if
/// it is cut short by the end of the data, `Err` if it is malformed.
fn record(bytes: &[u8], at: usize) -> Result<Option<(usize, &[u8])>, String> {
    let Some(h) = bytes.get(at..at + RECORD_HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let kind = h[4];
    if kind != KIND_COMMAND {
        return Err(format!("unknown record kind {kind}"));
    }
    if len > MAX_RECORD {
        return Err(format!("record of {len} bytes exceeds the limit"));
    }
    let start = at + RECORD_HEADER_LEN;
    let Some(payload) = bytes.get(start..start + len) else {
        return Ok(None);
    };
    if h[5..13] != check(kind, payload) {
        return Err("record checksum mismatch".into());
    }
    Ok(Some((start + len, payload)))
}

/// Parses a whole file, recovering a torn final record (see the module docs).
pub fn parse(bytes: &[u8]) -> Result<Parsed, StoreError> {
    if bytes.len() < HEADER_LEN {
        // Shorter than a header: a file whose creation was torn, or not ours at all.
        return Err(if bytes.len() >= 8 && bytes[..8] != MAGIC {
            StoreError::NotASessionFile
        } else {
            StoreError::Corrupt {
                offset: 0,
                what: "the header is incomplete".into(),
            }
        });
    }
    if bytes[..8] != MAGIC {
        return Err(StoreError::NotASessionFile);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version > FORMAT_VERSION {
        return Err(StoreError::NewerVersion(version));
    }
    if version == 0 {
        return Err(StoreError::Corrupt {
            offset: 8,
            what: "format version 0".into(),
        });
    }
    let mut session = [0u8; 32];
    session.copy_from_slice(&bytes[16..48]);
    let mut commands = Vec::new();
    let mut at = HEADER_LEN;
    loop {
        match record(bytes, at) {
            Ok(Some((end, payload))) => {
                commands.push(Arc::from(payload));
                at = end;
            }
            Ok(None) => break,
            Err(what) => {
                // A torn write leaves garbage only at the very end: if any whole, valid record
                // starts after this point, the damage is in the middle.
                if (at + 1..bytes.len()).any(|p| matches!(record(bytes, p), Ok(Some(_)))) {
                    return Err(StoreError::Corrupt {
                        offset: at as u64,
                        what,
                    });
                }
                break;
            }
        }
    }
    Ok(Parsed {
        session: CommandId(session),
        commands,
        valid_len: at as u64,
        dropped: (bytes.len() - at) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: usize) -> Vec<u8> {
        let mut f = encode_header(&CommandId([3; 32])).to_vec();
        for i in 0..n {
            encode_command_record(&vec![i as u8; 10 + i], &mut f);
        }
        f
    }

    #[test]
    fn round_trip_and_every_truncation_recovers_a_prefix() {
        let f = file(5);
        let p = parse(&f).unwrap();
        assert_eq!(p.commands.len(), 5);
        assert_eq!((p.valid_len as usize, p.dropped), (f.len(), 0));
        let mut last = 0;
        for cut in HEADER_LEN..=f.len() {
            let p = parse(&f[..cut]).unwrap();
            assert!(
                p.commands.len() >= last,
                "a longer prefix never loses commands"
            );
            last = p.commands.len();
            assert_eq!(p.valid_len + p.dropped, cut as u64);
        }
        assert!(matches!(parse(&f[..20]), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn foreign_newer_and_corrupt_files_are_named() {
        assert_eq!(
            parse(b"PK\x03\x04 not a theta file at all, but long enough to have a header....."),
            Err(StoreError::NotASessionFile)
        );
        let mut f = file(3);
        f[8] = 9;
        assert_eq!(parse(&f), Err(StoreError::NewerVersion(9)));
        // Damage to the first record, with good records after it: corruption, with the offset.
        let mut f = file(3);
        f[HEADER_LEN + RECORD_HEADER_LEN + 2] ^= 0xff;
        assert!(
            matches!(parse(&f), Err(StoreError::Corrupt { offset, .. }) if offset == HEADER_LEN as u64)
        );
        // Damage to the last record only: a torn tail, recovered.
        let mut f = file(3);
        let n = f.len();
        f[n - 1] ^= 0xff;
        let p = parse(&f).unwrap();
        assert_eq!(p.commands.len(), 2);
        assert!(p.dropped > 0);
    }
}
