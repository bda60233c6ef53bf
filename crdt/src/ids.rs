//! Ids of the log and the scene: authors, commands, objects, groups, roles, and the allocator that
//! derives new element ids from the creating command's id.

use std::fmt;

use theta_mesh::{FaceId, IdAlloc, VertexId};

/// An author: the ed25519 public key that signs their commands (the same key as their iroh endpoint
/// id).
///
/// Ordered by its bytes, like every 32-byte id here (see [`byte_order`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorId(pub [u8; 32]);

/// A command's id: BLAKE3 of its signed bytes. Ordered by its bytes (see [`byte_order`]): ties of
/// the total order's Lamport clock are broken by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommandId(pub [u8; 32]);

/// The lexicographic order of two 32-byte strings, as `[u8; 32]`'s own `Ord` gives it, compared a
/// big-endian word at a time. The derived order calls `memcmp` for every comparison; the log's
/// total order, its insertion search and the scene's per-author maps compare ids on every
/// command, and a merge spent a tenth of its time in those calls. Ids are hashes, so the first
/// word almost always decides.
#[inline]
pub fn byte_order(a: &[u8; 32], b: &[u8; 32]) -> std::cmp::Ordering {
    let word = |x: &[u8; 32], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&x[i * 8..i * 8 + 8]);
        u64::from_be_bytes(w)
    };
    for i in 0..4 {
        match word(a, i).cmp(&word(b, i)) {
            std::cmp::Ordering::Equal => {}
            o => return o,
        }
    }
    std::cmp::Ordering::Equal
}

/// `Ord` by [`byte_order`] for a 32-byte id.
macro_rules! byte_ordered {
    ($($id:ty),*) => {$(
        impl Ord for $id {
            #[inline]
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                byte_order(&self.0, &other.0)
            }
        }
        impl PartialOrd for $id {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
    )*};
}
byte_ordered!(AuthorId, CommandId);

/// A scene object's id, derived from the command that created it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ObjectId(pub u64);

/// A group's id, derived from the command that created it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GroupId(pub u64);

/// What an author may do in a session.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Role {
    /// Sees the session; every edit of theirs folds to nothing.
    Viewer,
    /// Edits the scene.
    Editor,
    /// Edits, renames the session, and grants and revokes roles.
    Admin,
}

fn hex(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    for x in b {
        write!(f, "{x:02x}")?;
    }
    Ok(())
}

impl fmt::Debug for AuthorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("author:")?;
        hex(f, &self.0[..6])
    }
}
impl fmt::Display for AuthorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(f, &self.0)
    }
}
impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cmd:")?;
        hex(f, &self.0[..6])
    }
}
impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(f, &self.0)
    }
}

impl CommandId {
    /// The first eight bytes, little-endian: the base of every id this command derives.
    pub fn prefix(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

/// SplitMix64's step and finaliser: adds the golden-ratio increment to `x` and mixes the result.
/// One definition for the log's id hash and the workload generator's random numbers.
pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Derives the ids a command creates: `prefix(command id) + i` for the `i`-th new element, object
/// or group, in the order the operation asks for them.
///
/// Why this is safe: ids only need to be unique within one mesh (and among objects). Two commands'
/// ranges overlap only if their 64-bit prefixes land within the number of elements they create of
/// each other, which is vanishingly unlikely by accident, and needs ~2^64 / n hashing work to force.
/// When it does happen the kernel reports an id collision and the later command in the fold order
/// is rejected on every peer alike, so convergence never depends on it.
#[derive(Clone, Debug)]
pub struct DerivedIds {
    base: u64,
    next: u64,
}

impl DerivedIds {
    /// The allocator for a command.
    pub fn new(command: &CommandId) -> DerivedIds {
        DerivedIds {
            base: command.prefix(),
            next: 0,
        }
    }

    /// How many ids were handed out.
    pub fn used(&self) -> u64 {
        self.next
    }

    fn take(&mut self) -> u64 {
        let id = self.base.wrapping_add(self.next);
        self.next += 1;
        id
    }

    /// The next object id.
    pub fn object(&mut self) -> ObjectId {
        ObjectId(self.take())
    }

    /// The next group id.
    pub fn group(&mut self) -> GroupId {
        GroupId(self.take())
    }
}

impl IdAlloc for DerivedIds {
    fn vertex(&mut self) -> VertexId {
        VertexId(self.take())
    }
    fn face(&mut self) -> FaceId {
        FaceId(self.take())
    }
}
