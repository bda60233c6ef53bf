//! Compact command batches: what a gossip `Commands` frame carries before compression.
//!
//! A signed command is its body (the bytes the author signed) and a 64-byte signature. The
//! signature cannot shrink; much of the body can, because the receiver already knows it:
//!
//! - the **author key** (32 bytes) of any command after an author's first: the receiver must hold
//!   that author's previous command to apply this one, so it knows the key, and an 8-byte prefix
//!   names it (a batch lists each author once);
//! - each **dependency id** (32 bytes): a command is named by its author and sequence number, or
//!   by its index when it travels in the same batch, since an id is the hash of bytes the
//!   receiver holds or is about to rebuild.
//!
//! The body keeps its exact bytes: the encoder cuts the 32-byte values out where they occur and
//! the decoder puts the resolved values back at the same offsets, so ids and signatures hold
//! whatever layout the author's encoder chose. Each compact command also carries the first four
//! bytes of its id: a rebuilt body that hashes differently (the receiver resolved a name to
//! another command, say after an equivocation) is not a forgery but an unresolved command, which
//! the receiver then fetches whole by sync, as it does when it lacks a dependency.
//!
//! Layout (integers are LEB128 varints unless sized):
//!
//! ```text
//! batch   = version:u8(1) n_authors authors* n_commands command*
//! author  = len:u8 (8: a known key's prefix, 32: a whole key) bytes
//! command = 0 len signed-bytes                       (literal: anything else, carried as is)
//!         | 1 id4:[u8;4] signature:[u8;64] body_len n_patches patch* rest
//! patch   = gap kind payload                         (gap: body bytes since the previous patch)
//! kind    = 0 author:u8                              (the author table's key)
//!         | 1 author:u8 seq                          (that author's command `seq`)
//!         | 2 index                                  (the batch's command `index`, earlier)
//! rest    = the body's other bytes (body_len - 32 * n_patches of them)
//! ```

use std::collections::HashMap;

use anyhow::{Result, bail};
use theta_crdt::ids::{AuthorId, CommandId};
use theta_crdt::log::Log;

/// Format version (the batch's first byte).
pub const VERSION: u8 = 1;
/// Most authors one batch names.
pub const MAX_AUTHORS: usize = 255;
/// Most commands in one batch.
pub const MAX_COMMANDS: usize = 4096;
const PREFIX: usize = 8;
const ID_CHECK: usize = 4;

/// What the encoder and decoder know of the session (its log).
pub trait Known {
    /// The author whose key begins with `prefix`, if exactly one is known.
    fn author(&self, prefix: &[u8; 8]) -> Option<AuthorId>;
    /// The command an author made with sequence number `seq`, if exactly one is known.
    fn command_at(&self, author: &AuthorId, seq: u64) -> Option<CommandId>;
    /// The author and sequence number of a known command, if no other command shares them.
    fn position(&self, id: &CommandId) -> Option<(AuthorId, u64)>;
    /// A known command's author, sequence number and dependencies (what the encoder needs of a
    /// command it is sending, without decoding its body again).
    fn header(&self, id: &CommandId) -> Option<(AuthorId, u64, Vec<CommandId>)>;
}

impl Known for Log {
    fn author(&self, prefix: &[u8; 8]) -> Option<AuthorId> {
        self.author_with_prefix(prefix)
    }
    fn command_at(&self, author: &AuthorId, seq: u64) -> Option<CommandId> {
        self.by_author_seq(author, seq)
    }
    fn position(&self, id: &CommandId) -> Option<(AuthorId, u64)> {
        let e = self.get(id)?;
        (self.by_author_seq(&e.author, e.seq) == Some(*id)).then_some((e.author, e.seq))
    }
    fn header(&self, id: &CommandId) -> Option<(AuthorId, u64, Vec<CommandId>)> {
        self.get(id)
            .map(|e| (e.author, e.seq, self.deps(e).collect()))
    }
}

/// Appends `v` as a LEB128 varint (shared with the gossip envelope in `wire.rs`).
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads what [`put_varint`] and raw byte runs wrote, refusing truncation and overlong numbers.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            bail!("compact batch ends early");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub(crate) fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("compact batch has an overlong number")
    }
    fn len(&mut self, max: usize) -> Result<usize> {
        let v = self.varint()?;
        if v > max as u64 {
            bail!("compact batch states {v} where at most {max} fit");
        }
        Ok(v as usize)
    }
}

enum Patch {
    Author(u8),
    Chain(u8, u64),
    InBatch(u64),
}

/// Encodes commands (signed bytes) as a compact batch against what `known` holds. Anything that
/// does not parse as a signed command travels as a literal.
pub fn encode(commands: &[&[u8]], known: &impl Known) -> Vec<u8> {
    let mut authors: Vec<(AuthorId, bool)> = Vec::new();
    let mut author_index: HashMap<AuthorId, u8> = HashMap::new();
    let mut in_batch: HashMap<CommandId, u64> = HashMap::new();
    let mut firsts: Vec<AuthorId> = Vec::new();
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(commands.len());
    for (index, cmd) in commands.iter().enumerate() {
        // A command the sender holds (its own, just made, or one it forwards) has its header in
        // the log; anything else is decoded.
        let parsed = theta_crdt::wire::decode_signed(cmd)
            .ok()
            .and_then(|(body, sig)| {
                let id = CommandId(*blake3::hash(body).as_bytes());
                let (author, seq, deps) = known.header(&id).or_else(|| {
                    theta_crdt::wire::decode_body(body)
                        .ok()
                        .map(|e| (e.author, e.seq, e.deps))
                })?;
                Some((body, sig, id, author, seq, deps))
            });
        let Some((body, sig, id, author, seq, deps)) = parsed else {
            let mut p = vec![0];
            put_varint(&mut p, cmd.len() as u64);
            p.extend_from_slice(cmd);
            parts.push(p);
            continue;
        };
        let mut intern = |a: AuthorId, whole: bool| -> Option<u8> {
            if let Some(&i) = author_index.get(&a) {
                if whole {
                    authors[i as usize].1 = true;
                }
                return Some(i);
            }
            if authors.len() >= MAX_AUTHORS {
                return None;
            }
            let i = authors.len() as u8;
            authors.push((a, whole));
            author_index.insert(a, i);
            Some(i)
        };
        if seq == 1 {
            // A first command introduces its author: later ones in this batch name it by a
            // whole key.
            firsts.push(author);
        }
        let mut wanted: Vec<([u8; 32], Patch)> = Vec::new();
        if seq > 1
            && let Some(i) = intern(author, firsts.contains(&author))
        {
            wanted.push((author.0, Patch::Author(i)));
        }
        for d in &deps {
            if let Some(&k) = in_batch.get(d) {
                wanted.push((d.0, Patch::InBatch(k)));
            } else if let Some((a, s)) = known.position(d)
                && let Some(i) = intern(a, false)
            {
                wanted.push((d.0, Patch::Chain(i, s)));
            }
        }
        let mut at: Vec<(usize, Patch)> = wanted
            .into_iter()
            .filter_map(|(v, p)| body.windows(32).position(|w| w == v).map(|o| (o, p)))
            .collect();
        at.sort_by_key(|(o, _)| *o);
        let mut p = vec![1];
        p.extend_from_slice(&id.0[..ID_CHECK]);
        p.extend_from_slice(&sig);
        put_varint(&mut p, body.len() as u64);
        let mut kept: Vec<(usize, Patch)> = Vec::with_capacity(at.len());
        let mut end = 0;
        for (o, patch) in at {
            if o >= end {
                end = o + 32;
                kept.push((o, patch));
            }
        }
        put_varint(&mut p, kept.len() as u64);
        let mut prev = 0;
        for (o, patch) in &kept {
            put_varint(&mut p, (o - prev) as u64);
            prev = o + 32;
            match patch {
                Patch::Author(i) => p.extend_from_slice(&[0, *i]),
                Patch::Chain(i, s) => {
                    p.extend_from_slice(&[1, *i]);
                    put_varint(&mut p, *s);
                }
                Patch::InBatch(k) => {
                    p.push(2);
                    put_varint(&mut p, *k);
                }
            }
        }
        let mut prev = 0;
        for (o, _) in &kept {
            p.extend_from_slice(&body[prev..*o]);
            prev = o + 32;
        }
        p.extend_from_slice(&body[prev..]);
        in_batch.insert(id, index as u64);
        parts.push(p);
    }
    let mut out = vec![VERSION];
    put_varint(&mut out, authors.len() as u64);
    for (a, whole) in &authors {
        if *whole {
            out.push(32);
            out.extend_from_slice(&a.0);
        } else {
            out.push(PREFIX as u8);
            out.extend_from_slice(&a.0[..PREFIX]);
        }
    }
    put_varint(&mut out, parts.len() as u64);
    for p in parts {
        out.extend_from_slice(&p);
    }
    out
}

/// A decoded batch.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Commands rebuilt (signed bytes, canonically wrapped), in batch order; literals as sent.
    pub commands: Vec<Vec<u8>>,
    /// Their ids (None for a literal, which may not be a command at all).
    pub ids: Vec<Option<CommandId>>,
    /// Commands that name something the receiver does not hold (or that rebuilt to another id):
    /// fetch them by sync.
    pub unresolved: usize,
}

/// Decodes a compact batch. Malformed structure is an error (the sender is at fault); names the
/// receiver cannot resolve are counted in [`Decoded::unresolved`]. Never panics.
pub fn decode(batch: &[u8], known: &impl Known) -> Result<Decoded> {
    let mut r = Reader(batch);
    let v = r.u8()?;
    if v != VERSION {
        bail!("compact batch version {v} (this build reads {VERSION})");
    }
    let n_authors = r.len(MAX_AUTHORS)?;
    // None: a prefix this receiver cannot resolve.
    let mut authors: Vec<Option<AuthorId>> = Vec::with_capacity(n_authors);
    for _ in 0..n_authors {
        let len = r.u8()? as usize;
        let b = r.bytes(len)?;
        authors.push(match len {
            32 => Some(AuthorId(b.try_into().unwrap_or([0; 32]))),
            PREFIX => known.author(&b.try_into().unwrap_or([0; 8])),
            _ => bail!("compact batch author of {len} bytes"),
        });
    }
    let n = r.len(MAX_COMMANDS)?;
    let mut out = Decoded::default();
    // Ids of this batch's commands by index (None if that one did not resolve).
    let mut ids: Vec<Option<CommandId>> = Vec::with_capacity(n);
    for _ in 0..n {
        match r.u8()? {
            0 => {
                let len = r.len(crate::net::codec::MAX_RAW)?;
                out.commands.push(r.bytes(len)?.to_vec());
                out.ids.push(None);
                ids.push(None);
            }
            1 => {
                let check = r.bytes(ID_CHECK)?;
                let sig: [u8; 64] = r.bytes(64)?.try_into().unwrap_or([0; 64]);
                let body_len = r.len(crate::net::codec::MAX_RAW)?;
                let n_patches = r.len(body_len / 32)?;
                let mut patches: Vec<(usize, Option<[u8; 32]>)> = Vec::with_capacity(n_patches);
                for _ in 0..n_patches {
                    let gap = r.len(body_len)?;
                    let value = match r.u8()? {
                        0 => {
                            let i = r.u8()? as usize;
                            let a = authors.get(i).ok_or_else(|| {
                                anyhow::anyhow!("compact batch names author {i} of {n_authors}")
                            })?;
                            a.map(|a| a.0)
                        }
                        1 => {
                            let i = r.u8()? as usize;
                            let seq = r.varint()?;
                            let a = authors.get(i).ok_or_else(|| {
                                anyhow::anyhow!("compact batch names author {i} of {n_authors}")
                            })?;
                            a.and_then(|a| known.command_at(&a, seq)).map(|c| c.0)
                        }
                        2 => {
                            let k = r.varint()?;
                            if k >= ids.len() as u64 {
                                bail!("compact batch names command {k} before it comes");
                            }
                            ids[k as usize].map(|c| c.0)
                        }
                        k => bail!("compact batch patch kind {k}"),
                    };
                    patches.push((gap, value));
                }
                let rest_len = body_len
                    .checked_sub(32 * n_patches)
                    .ok_or_else(|| anyhow::anyhow!("compact batch patches overflow the body"))?;
                let gaps: usize = patches.iter().map(|(g, _)| g).sum();
                if gaps > rest_len {
                    bail!("compact batch patches reach past the body");
                }
                let rest = r.bytes(rest_len)?;
                if patches.iter().any(|(_, v)| v.is_none()) {
                    out.unresolved += 1;
                    ids.push(None);
                    continue;
                }
                let mut body = Vec::with_capacity(body_len);
                let mut at = 0;
                for (gap, v) in &patches {
                    body.extend_from_slice(&rest[at..at + gap]);
                    at += gap;
                    body.extend_from_slice(&v.unwrap_or([0; 32]));
                }
                body.extend_from_slice(&rest[at..]);
                let id = CommandId(*blake3::hash(&body).as_bytes());
                if id.0[..ID_CHECK] != *check {
                    out.unresolved += 1;
                    ids.push(None);
                    continue;
                }
                out.commands
                    .push(theta_crdt::wire::encode_signed(&body, &sig));
                out.ids.push(Some(id));
                ids.push(Some(id));
            }
            t => bail!("compact batch command tag {t}"),
        }
    }
    if !r.0.is_empty() {
        bail!("compact batch has {} bytes after its end", r.0.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use theta_crdt::log::verify_command;

    fn log_of(cmds: &[Vec<u8>]) -> Log {
        let first = verify_command(&cmds[0]).unwrap();
        let mut log = Log::for_session(first.id());
        for c in cmds {
            log.insert(verify_command(c).unwrap()).unwrap();
        }
        log
    }

    #[test]
    fn batches_rebuild_exactly_and_shrink() {
        let cmds = theta_crdt::workload::session(5, 3, 400);
        let (old, new) = cmds.split_at(300);
        let sender = log_of(&cmds);
        let receiver = log_of(old);
        // Live traffic: one command per batch, against what the receiver holds.
        let mut raw = 0;
        let mut compact = 0;
        let mut receiver = receiver;
        for c in new {
            let b = encode(&[c], &sender);
            let d = decode(&b, &receiver).unwrap();
            assert_eq!(d.unresolved, 0);
            assert_eq!(d.commands.len(), 1);
            let want = verify_command(c).unwrap();
            assert_eq!(&d.commands[0][..], &want.bytes()[..]);
            receiver
                .insert(verify_command(&d.commands[0]).unwrap())
                .unwrap();
            raw += c.len();
            compact += b.len();
        }
        assert!(compact * 10 < raw * 8, "{compact} of {raw} bytes");
        // A whole session in one batch, to a receiver that holds nothing but the genesis.
        let refs: Vec<&[u8]> = cmds.iter().map(|c| &c[..]).collect();
        let b = encode(&refs[1..], &sender);
        let d = decode(&b, &log_of(&cmds[..1])).unwrap();
        assert_eq!(d.unresolved, 0);
        for (got, c) in d.commands.iter().zip(&cmds[1..]) {
            assert_eq!(&got[..], &verify_command(c).unwrap().bytes()[..]);
        }
    }

    #[test]
    fn unknown_names_are_unresolved_and_garbage_is_an_error() {
        let cmds = theta_crdt::workload::session(6, 2, 60);
        let sender = log_of(&cmds);
        let b = encode(&[&cmds[59][..], b"not a command"], &sender);
        // A receiver holding only the genesis cannot name the dependencies.
        let d = decode(&b, &log_of(&cmds[..1])).unwrap();
        assert_eq!(d.unresolved, 1);
        assert_eq!(d.commands, vec![b"not a command".to_vec()]);
        for cut in 0..b.len() {
            assert!(decode(&b[..cut], &sender).is_err(), "cut at {cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(decode(&extra, &sender).is_err());
        let mut v2 = b.clone();
        v2[0] = 2;
        assert!(decode(&v2, &sender).is_err());
        // Flipped bytes never panic; a flipped body byte rebuilds to another id.
        for i in 0..b.len() {
            let mut x = b.clone();
            x[i] ^= 0x40;
            let _ = decode(&x, &sender);
        }
    }
}
