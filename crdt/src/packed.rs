//! Packed meshes: the compact form the scene keeps an object's mesh in while nobody edits it.
//!
//! A live mesh is the kernel's arrays (ids, positions, half-edges) and its id tables: about 5 kB
//! for a few-dozen-face object, of which the tables and the allocations' headers are a fifth. Most
//! objects of a long session are not being edited at any moment, so the replica packs those (see
//! [`crate::fold::Replica::settle`]) and a read or an edit unpacks them again. Packing is a
//! representation only: it never changes what the scene holds, its equality, its state hash or
//! anything folded from it.
//!
//! The encoding writes the kernel's arrays in order, each element as the zigzag varint of its
//! difference from the one before (ids are consecutive, half-edge links mostly step by one), the
//! positions as their bits, and then, where it is smaller, compresses all of it with zstd.
//! Unpacking rebuilds the very same arrays, so the mesh that comes back is equal to the one that
//! went in, slot for slot.

use theta_mesh::{FaceId, MaterialId, Mesh, OwnedRawMesh, Vec3, VertexId};

/// The first byte of a packed mesh: how the rest is stored.
const PLAIN: u8 = 0;
const ZSTD: u8 = 1;
const ZSTD_DICT: u8 = 2;

/// A zstd dictionary trained on the packed meshes of generated sessions (other seeds than the
/// benchmarks'), by `cargo bench -p theta-benches --bench crdt_latency -- --train-mesh-dictionary
/// crdt/src/packed.zdict`. Packed meshes never leave the process, so it needs no version: a
/// build packs and unpacks with its own.
static DICT: &[u8] = include_bytes!("packed.zdict");

/// zstd's fastest level: packing runs inside the fold, and higher levels gain little on a mesh of
/// a few kilobytes.
const LEVEL: i32 = 1;

thread_local! {
    static ZSTD_OUT: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static ZSTD_IN: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static ZSTD_DICT_IN: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// The encoding before compression (what the dictionary is trained on).
pub fn encode(m: &Mesh) -> Vec<u8> {
    let raw = m.raw();
    let mut out = Vec::with_capacity(
        16 + raw.vertex_ids.len() * 16 + raw.next.len() * 3 + raw.face_ids.len() * 4,
    );
    for n in [raw.vertex_ids.len(), raw.next.len(), raw.face_ids.len()] {
        varint(&mut out, n as u64);
    }
    deltas(&mut out, raw.vertex_ids.iter().map(|v| v.0));
    for p in raw.positions {
        for c in [p.x, p.y, p.z] {
            out.extend_from_slice(&c.to_bits().to_le_bytes());
        }
    }
    for arr in [
        raw.vertex_half_edges,
        raw.next,
        raw.origins,
        raw.half_edge_faces,
        raw.face_half_edges,
    ] {
        deltas(&mut out, arr.iter().map(|&x| u64::from(x)));
    }
    deltas(&mut out, raw.face_ids.iter().map(|f| f.0));
    deltas(&mut out, raw.materials.iter().map(|m| u64::from(m.0)));
    out
}

/// Trains a dictionary of at most `size` bytes on encoded meshes (see [`encode`]).
pub fn train(samples: &[Vec<u8>], size: usize) -> std::io::Result<Vec<u8>> {
    zstd::dict::from_samples(samples, size)
}

/// Packs a mesh.
pub fn pack(m: &Mesh) -> Box<[u8]> {
    let out = encode(m);
    // A compression context per thread: making one costs more than compressing a small mesh.
    let z = ZSTD_OUT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = if DICT.is_empty() {
                zstd::bulk::Compressor::new(LEVEL).ok()
            } else {
                zstd::bulk::Compressor::with_dictionary(LEVEL, DICT).ok()
            };
        }
        c.as_mut().and_then(|c| c.compress(&out).ok())
    });
    if let Some(z) = z
        && z.len() + 5 < out.len()
    {
        let mut packed = Vec::with_capacity(z.len() + 5);
        packed.push(if DICT.is_empty() { ZSTD } else { ZSTD_DICT });
        packed.extend_from_slice(&(out.len() as u32).to_le_bytes());
        packed.extend_from_slice(&z);
        return packed.into_boxed_slice();
    }
    let mut packed = Vec::with_capacity(out.len() + 1);
    packed.push(PLAIN);
    packed.extend_from_slice(&out);
    packed.into_boxed_slice()
}

/// Unpacks what [`pack`] made.
pub fn unpack(b: &[u8]) -> Mesh {
    // The bytes never leave this process and only `pack` writes them, from a mesh the kernel
    // built, so a failure here is a bug in this module, not bad input; for the same reason the
    // arrays need not be walked again (`Mesh::from_raw_trusted`).
    try_unpack_raw(b)
        .and_then(|raw| Mesh::from_raw_trusted(raw).ok())
        .expect("a packed mesh unpacks: only `pack` writes them")
}

/// The kernel's arrays of what [`pack`] made, without building a mesh from them (its id tables):
/// for readers that only copy the arrays out, such as a checkpoint.
pub fn unpack_raw(b: &[u8]) -> OwnedRawMesh {
    try_unpack_raw(b).expect("a packed mesh unpacks: only `pack` writes them")
}

fn try_unpack_raw(b: &[u8]) -> Option<OwnedRawMesh> {
    let (&kind, rest) = b.split_first()?;
    let inflated;
    let body: &[u8] = match kind {
        PLAIN => rest,
        ZSTD | ZSTD_DICT => {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let cell = if kind == ZSTD {
                &ZSTD_IN
            } else {
                &ZSTD_DICT_IN
            };
            inflated = cell.with(|d| {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = if kind == ZSTD {
                        zstd::bulk::Decompressor::new().ok()
                    } else {
                        zstd::bulk::Decompressor::with_dictionary(DICT).ok()
                    };
                }
                d.as_mut()?.decompress(&rest[4..], len).ok()
            })?;
            &inflated
        }
        _ => return None,
    };
    let mut r = Reader { b: body, at: 0 };
    let nv = r.varint()? as usize;
    let nh = r.varint()? as usize;
    let nf = r.varint()? as usize;
    let vertex_ids = r.deltas(nv)?.into_iter().map(VertexId).collect();
    let mut positions = Vec::with_capacity(nv);
    for _ in 0..nv {
        let x = r.f32()?;
        let y = r.f32()?;
        let z = r.f32()?;
        positions.push(Vec3::new(x, y, z));
    }
    let vertex_half_edges = r.deltas32(nv)?;
    let next = r.deltas32(nh)?;
    let origins = r.deltas32(nh)?;
    let half_edge_faces = r.deltas32(nh)?;
    let face_half_edges = r.deltas32(nf)?;
    let face_ids = r.deltas(nf)?.into_iter().map(FaceId).collect();
    let materials = r.deltas32(nf)?.into_iter().map(MaterialId).collect();
    Some(OwnedRawMesh {
        vertex_ids,
        positions,
        vertex_half_edges,
        next,
        origins,
        half_edge_faces,
        face_ids,
        face_half_edges,
        materials,
    })
}

fn varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Each value as the zigzag varint of its (wrapping) difference from the one before.
fn deltas(out: &mut Vec<u8>, xs: impl Iterator<Item = u64>) {
    let mut prev = 0u64;
    for x in xs {
        let d = x.wrapping_sub(prev) as i64;
        varint(out, ((d << 1) ^ (d >> 63)) as u64);
        prev = x;
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.at)?;
            self.at += 1;
            x |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(x);
            }
        }
        None
    }

    fn deltas(&mut self, n: usize) -> Option<Vec<u64>> {
        // Every element takes at least a byte.
        if n > self.b.len() - self.at {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        let mut prev = 0u64;
        for _ in 0..n {
            let z = self.varint()?;
            let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
            prev = prev.wrapping_add(d as u64);
            out.push(prev);
        }
        Some(out)
    }

    fn deltas32(&mut self, n: usize) -> Option<Vec<u32>> {
        self.deltas(n)?
            .into_iter()
            .map(|x| u32::try_from(x).ok())
            .collect()
    }

    fn f32(&mut self) -> Option<f32> {
        let b = self.b.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(f32::from_bits(u32::from_le_bytes(b.try_into().ok()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use theta_mesh::{Primitive, SeqIds};

    #[test]
    fn a_packed_mesh_unpacks_to_the_same_arrays() {
        for p in [
            Primitive::Cuboid {
                size: Vec3::new(1.0, 2.0, 3.0),
            },
            Primitive::Grid {
                size_x: 2.0,
                size_z: 2.0,
                cells_x: 99,
                cells_z: 99,
            },
            Primitive::Cylinder {
                radius: 0.5,
                height: 1.0,
                segments: 12,
            },
        ] {
            let m = p
                .build(&mut SeqIds::default(), MaterialId(3))
                .expect("a primitive");
            let packed = pack(&m);
            let back = unpack(&packed);
            assert_eq!(back, m);
            assert_eq!(back.raw().next, m.raw().next);
            assert!(packed.len() * 3 < m.vertex_count() * 24 + m.face_count() * 64);
        }
        let empty = Mesh::default();
        assert_eq!(unpack(&pack(&empty)), empty);
    }
}
