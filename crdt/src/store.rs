//! The session file format (`.theta`), as pure functions over bytes: the app's storage layer does
//! the file I/O (append, fsync, rename) and calls these to encode records, to parse and recover a
//! file it opens, and to compact one. Keeping the format here, IO-less, lets the same parser run in
//! the simulator and under the fuzzer.
//!
//! Layout: a 48-byte header, then records back to back.
//! - Header: magic `THETALOG`, format version (u32 LE), flags (u32 LE, 0), the session id (32).
//! - Record: payload length (u32 LE), kind (u8), check (the first 8 bytes of BLAKE3 over kind and
//!   payload), payload. Kinds:
//!   - 1, a signed command: the payload is the command's bytes. Live appends write these.
//!   - 2, a block of commands (format version 2): command count (u32 LE), uncompressed length
//!     (u32 LE), then one zstd frame holding, for each command, its length (u32 LE) and its bytes.
//!     Compaction writes these.
//!
//! Commands are in the order the log admitted them (dependencies first), blocks included. A crash
//! can only tear the end of the file: a torn or partial record at the tail is recovered by dropping
//! it, and the report says how many bytes were dropped. A bad record followed by good ones is
//! corruption, not a torn write: the file is refused with the offset, and never rewritten.
//!
//! Compaction ([`compact`]) turns the commands appended one by one since the last compaction into
//! a compressed block: signatures and hashes do not compress, but the repeated author keys, the
//! ids that reappear as later commands' deps, and the FlatBuffers framing do, to well under half
//! the size. The caller writes the result to a new file and renames it over the old one, so a crash
//! leaves one whole file or the other. Blocks already written are copied as they are.

use std::sync::Arc;

use crate::ids::CommandId;

/// File magic.
pub const MAGIC: [u8; 8] = *b"THETALOG";
/// The format version this code writes (it reads 1 and 2).
pub const FORMAT_VERSION: u32 = 2;
/// Header size in bytes.
pub const HEADER_LEN: usize = 48;
/// Record header size in bytes (length, kind, check).
pub const RECORD_HEADER_LEN: usize = 4 + 1 + 8;
/// Largest record payload accepted (a command is at most 64 KiB; a block is smaller than this).
pub const MAX_RECORD: usize = 16 << 20;
/// Largest uncompressed block: what compaction aims for, and the most a reader will inflate one
/// block to, so a forged block cannot make it allocate more.
pub const MAX_BLOCK_RAW: usize = 4 << 20;
/// zstd level for blocks: well past the knee of the size curve, still fast (a 4 MiB block takes
/// tens of milliseconds).
pub const BLOCK_LEVEL: i32 = 9;
/// zstd level for a block that compaction writes smaller than half of [`MAX_BLOCK_RAW`]: the next
/// compaction unpacks it and merges it with what came since, so it is written fast (level 3 takes
/// less than half the time of level 9 for about 4% more bytes) and only the block that stays
/// pays for [`BLOCK_LEVEL`].
pub const OPEN_BLOCK_LEVEL: i32 = 3;

const KIND_COMMAND: u8 = 1;
const KIND_BLOCK: u8 = 2;

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
    /// The signed commands, in file order (blocks unpacked).
    pub commands: Vec<Arc<[u8]>>,
    /// Each command's checksum, in file order: the check its record has, or would have as a
    /// single-command record if it sits in a block (what a checkpoint names its prefix by, so
    /// compaction does not invalidate checkpoints).
    pub checks: Vec<[u8; 8]>,
    /// Bytes of the file that are header and whole, valid records.
    pub valid_len: u64,
    /// Bytes after `valid_len` that were a torn final write and are dropped.
    pub dropped: u64,
    /// Where the records after the last block start (the commands appended one by one since the
    /// last compaction), and how many commands those are.
    pub tail_offset: u64,
    /// Commands in the tail.
    pub tail_commands: usize,
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

fn encode_record(kind: u8, payload: &[u8], out: &mut Vec<u8>) -> [u8; 8] {
    let c = check(kind, payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&c);
    out.extend_from_slice(payload);
    c
}

/// Appends the record for one signed command to `out`; returns its checksum.
pub fn encode_command_record(command: &[u8], out: &mut Vec<u8>) -> [u8; 8] {
    encode_record(KIND_COMMAND, command, out)
}

/// One whole record found in the bytes.
struct Record<'a> {
    kind: u8,
    payload: &'a [u8],
    check: [u8; 8],
    end: usize,
}

/// Parses one record at `bytes[at..]`: `Ok(None)` if it is cut short by the end of the data,
/// `Err` if it is malformed.
fn record(bytes: &[u8], at: usize) -> Result<Option<Record<'_>>, String> {
    let Some(h) = bytes.get(at..at + RECORD_HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let kind = h[4];
    if kind != KIND_COMMAND && kind != KIND_BLOCK {
        return Err(format!("unknown record kind {kind}"));
    }
    if len > MAX_RECORD {
        return Err(format!("record of {len} bytes exceeds the limit"));
    }
    let start = at + RECORD_HEADER_LEN;
    let Some(payload) = bytes.get(start..start + len) else {
        return Ok(None);
    };
    let c = check(kind, payload);
    if h[5..13] != c {
        return Err("record checksum mismatch".into());
    }
    Ok(Some(Record {
        kind,
        payload,
        check: c,
        end: start + len,
    }))
}

/// A command's bytes and its record checksum.
type Checked = (Arc<[u8]>, [u8; 8]);

/// The commands of a block, each with the check it would have as a single-command record.
fn unpack_block(payload: &[u8]) -> Result<Vec<Checked>, String> {
    let head = payload.get(..8).ok_or("block header cut short")?;
    let count = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let raw_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if raw_len > MAX_BLOCK_RAW || count.saturating_mul(4) > raw_len {
        return Err(format!(
            "block of {count} commands, {raw_len} bytes, exceeds the limits"
        ));
    }
    let raw = zstd::bulk::decompress(&payload[8..], raw_len)
        .map_err(|e| format!("block does not decompress: {e}"))?;
    if raw.len() != raw_len {
        return Err("block is shorter than its header says".into());
    }
    let mut out = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let len = raw
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("block ends inside a length")?;
        let cmd = raw
            .get(at + 4..at + 4 + len)
            .ok_or("block ends inside a command")?;
        out.push((Arc::from(cmd), check(KIND_COMMAND, cmd)));
        at += 4 + len;
    }
    if at != raw.len() {
        return Err("block has bytes after its last command".into());
    }
    Ok(out)
}

/// The whole records of a file, found and checksummed but not unpacked.
struct Scan<'a> {
    session: CommandId,
    /// Each record with its offset.
    records: Vec<(usize, Record<'a>)>,
    /// Where the last whole record ends.
    valid_len: usize,
}

impl Scan<'_> {
    /// The position in `records` of the first record after the last block.
    fn tail_start(&self) -> usize {
        self.records
            .iter()
            .rposition(|(_, r)| r.kind == KIND_BLOCK)
            .map_or(0, |i| i + 1)
    }
}

/// Checks the header and finds every whole record, recovering a torn final record (see the
/// module docs).
fn scan(bytes: &[u8]) -> Result<Scan<'_>, StoreError> {
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
    let mut records: Vec<(usize, Record<'_>)> = Vec::new();
    let mut at = HEADER_LEN;
    loop {
        match record(bytes, at) {
            Ok(Some(r)) if r.kind == KIND_BLOCK && version < 2 => {
                return Err(StoreError::Corrupt {
                    offset: at as u64,
                    what: "a block record in a version 1 file".into(),
                });
            }
            Ok(Some(r)) => {
                let end = r.end;
                records.push((at, r));
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
    Ok(Scan {
        session: CommandId(session),
        records,
        valid_len: at,
    })
}

/// A record's commands: a block unpacked, or the one command of a single record.
fn commands_of(offset: usize, r: &Record<'_>) -> Result<Vec<Checked>, StoreError> {
    if r.kind == KIND_BLOCK {
        unpack_block(r.payload).map_err(|what| StoreError::Corrupt {
            offset: offset as u64,
            what,
        })
    } else {
        Ok(vec![(Arc::from(r.payload), r.check)])
    }
}

/// Parses a whole file, recovering a torn final record (see the module docs). Blocks are unpacked
/// on all cores.
pub fn parse(bytes: &[u8]) -> Result<Parsed, StoreError> {
    use rayon::prelude::*;
    let s = scan(bytes)?;
    let tail = s.tail_start();
    let tail_offset = match tail {
        0 => HEADER_LEN,
        i => s.records[i - 1].1.end,
    };
    let unpacked: Vec<Result<Vec<Checked>, StoreError>> = s
        .records
        .par_iter()
        .map(|(offset, r)| commands_of(*offset, r))
        .collect();
    let mut commands = Vec::new();
    let mut checks = Vec::new();
    for u in unpacked {
        for (c, k) in u? {
            commands.push(c);
            checks.push(k);
        }
    }
    Ok(Parsed {
        session: s.session,
        commands,
        checks,
        valid_len: s.valid_len as u64,
        dropped: (bytes.len() - s.valid_len) as u64,
        tail_offset: tail_offset as u64,
        tail_commands: s.records.len() - tail,
    })
}

/// Encodes commands as block records compressed at zstd `level` (appended to `out`), as many as
/// [`MAX_BLOCK_RAW`] needs, for a writer that appends whole batches as blocks (a catch-up: no
/// later compaction needs to read them again). Returns each command's check value, the one it
/// would have as a command record.
pub fn encode_block_records(commands: &[&[u8]], level: i32, out: &mut Vec<u8>) -> Vec<[u8; 8]> {
    encode_blocks(commands, &|_| level, out);
    commands.iter().map(|c| check(KIND_COMMAND, c)).collect()
}

/// Blocks of at most [`MAX_BLOCK_RAW`] bytes, each at the level `level` gives for its raw size.
fn encode_blocks(commands: &[&[u8]], level: &dyn Fn(usize) -> i32, out: &mut Vec<u8>) {
    let mut chunk: Vec<&[u8]> = Vec::new();
    let mut size = 0;
    for c in commands {
        if size + c.len() + 4 > MAX_BLOCK_RAW && !chunk.is_empty() {
            encode_block_at(&chunk, level(size), out);
            chunk.clear();
            size = 0;
        }
        size += c.len() + 4;
        chunk.push(c);
    }
    if !chunk.is_empty() {
        encode_block_at(&chunk, level(size), out);
    }
}

/// The level compaction writes a block of `raw` bytes at: one small enough to be merged again
/// later is written fast.
fn compaction_level(raw: usize) -> i32 {
    if raw < MAX_BLOCK_RAW / 2 {
        OPEN_BLOCK_LEVEL
    } else {
        BLOCK_LEVEL
    }
}

fn encode_block_at(commands: &[&[u8]], level: i32, out: &mut Vec<u8>) {
    let mut raw = Vec::with_capacity(commands.iter().map(|c| c.len() + 4).sum());
    for c in commands {
        raw.extend_from_slice(&(c.len() as u32).to_le_bytes());
        raw.extend_from_slice(c);
    }
    // Compressing bytes in memory fails only if zstd cannot allocate its context; store the
    // block uncompressed-in-a-frame then (level 1 has the smallest context).
    let z = zstd::bulk::compress(&raw, level)
        .or_else(|_| zstd::bulk::compress(&raw, 1))
        .unwrap_or_default();
    let mut payload = Vec::with_capacity(8 + z.len());
    payload.extend_from_slice(&(commands.len() as u32).to_le_bytes());
    payload.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    payload.extend_from_slice(&z);
    encode_record(KIND_BLOCK, &payload, out);
}

/// A compacted copy of a whole, valid session file: the same commands in the same order, with
/// every command appended since the last compaction moved into compressed blocks (merged with the
/// last block while it is small). Returns the new file's bytes; the caller replaces the old file
/// with them atomically. A file with a torn tail is compacted without it.
pub fn compact(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let s = scan(bytes)?;
    let mut out = encode_header(&s.session).to_vec();
    // Records before the tail are copied as they are (a single record before the last block
    // comes from a file compacted by hand, or merged), except a last block small enough to merge
    // with the tail: only that one is unpacked.
    let mut keep = s.tail_start();
    if let Some((_, last)) = keep.checked_sub(1).map(|i| &s.records[i])
        && last.kind == KIND_BLOCK
        && last.payload.get(4..8).is_some_and(|b| {
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize) < MAX_BLOCK_RAW / 2
        })
    {
        keep -= 1;
    }
    for (offset, r) in &s.records[..keep] {
        out.extend_from_slice(&bytes[*offset..r.end]);
    }
    let mut loose: Vec<Arc<[u8]>> = Vec::new();
    for (offset, r) in &s.records[keep..] {
        loose.extend(commands_of(*offset, r)?.into_iter().map(|(c, _)| c));
    }
    let refs: Vec<&[u8]> = loose.iter().map(|c| &c[..]).collect();
    encode_blocks(&refs, &compaction_level, &mut out);
    Ok(out)
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
    fn compaction_keeps_every_command_and_check_and_shrinks_the_file() {
        // Realistic commands compress; these stand-ins repeat a 32-byte "author key".
        let cmd = |i: usize| {
            let mut c = vec![7u8; 32];
            c.extend_from_slice(&(i as u64).to_le_bytes());
            c.extend(std::iter::repeat_n((i % 251) as u8, 60));
            c
        };
        let mut f = encode_header(&CommandId([3; 32])).to_vec();
        for i in 0..5000 {
            encode_command_record(&cmd(i), &mut f);
        }
        let before = parse(&f).unwrap();
        let c = compact(&f).unwrap();
        assert!(c.len() * 4 < f.len(), "{} -> {}", f.len(), c.len());
        let after = parse(&c).unwrap();
        assert_eq!(after.commands, before.commands);
        assert_eq!(after.checks, before.checks);
        assert_eq!(
            (after.tail_commands, after.tail_offset),
            (0, c.len() as u64)
        );
        // Append more, compact again: the small last block merges with the new tail.
        let mut g = c.clone();
        for i in 5000..5100 {
            encode_command_record(&cmd(i), &mut g);
        }
        let p = parse(&g).unwrap();
        assert_eq!((p.tail_commands, p.tail_offset), (100, c.len() as u64));
        let h = compact(&g).unwrap();
        let q = parse(&h).unwrap();
        assert_eq!(q.commands.len(), 5100);
        assert_eq!(q.commands[..], p.commands[..]);
        assert_eq!(q.checks, p.checks);
        // Every truncation of a compacted file recovers a prefix of its commands.
        for cut in (HEADER_LEN..g.len()).step_by(97) {
            let t = parse(&g[..cut]).unwrap();
            assert_eq!(t.commands[..], p.commands[..t.commands.len()]);
        }
        // Damage inside a block with records after it is corruption at that block.
        let mut d = g.clone();
        d[HEADER_LEN + RECORD_HEADER_LEN + 20] ^= 1;
        assert!(
            matches!(parse(&d), Err(StoreError::Corrupt { offset, .. }) if offset == HEADER_LEN as u64)
        );
        // A block whose checksum is right but whose contents lie is refused, not inflated.
        let mut payload = 1u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&(u32::MAX).to_le_bytes());
        payload.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd]);
        let mut e = encode_header(&CommandId([3; 32])).to_vec();
        encode_record(KIND_BLOCK, &payload, &mut e);
        encode_command_record(b"after", &mut e);
        assert!(matches!(parse(&e), Err(StoreError::Corrupt { .. })));
        // Version 1 files (no blocks) still open; a block in one is refused.
        let mut v1 = f.clone();
        v1[8] = 1;
        assert_eq!(parse(&v1).unwrap().commands.len(), 5000);
        let mut v1b = c.clone();
        v1b[8] = 1;
        assert!(matches!(parse(&v1b), Err(StoreError::Corrupt { .. })));
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
