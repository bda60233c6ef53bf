//! The half-edge mesh: storage, construction from polygons, adjacency queries and `validate()`.
//!
//! Storage is struct-of-arrays over dense slots, chosen for memory (≤ 120 bytes per vertex on large
//! meshes) and for cache-friendly sweeps:
//! - vertices: id, position, one outgoing half-edge (a boundary one if the vertex is on a boundary);
//! - half-edges, in twin pairs (`twin(h) = h ^ 1`, so no twin array): next, origin vertex, face;
//! - faces: id, one half-edge, material.
//!
//! There is no `prev` array: `prev(h)` walks the rotation around `origin(h)` (the valence), which keeps
//! half-edges at 12 bytes. Ids map to slots through open-addressing tables that store only slot numbers
//! and compare against the id arrays, 5 bytes per bucket.
//!
//! Invariants (checked by [`Mesh::validate`]): every half-edge's `next` chain closes; a face's loop
//! has ≥ 3 distinct vertices and its half-edges all name the face; an edge has at least one face; each
//! vertex has ≥ 1 edge and a single fan (manifold), with at most one boundary gap; no two edges join
//! the same two vertices; positions are finite; ids are unique.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::error::{MeshError, Result};
use crate::ids::{FaceId, HalfEdgeId, MaterialId, VertexId};
use crate::math::{Aabb, Vec3};
use crate::polygons::Polygons;

pub(crate) const NONE: u32 = u32::MAX;

/// A polygon mesh with half-edge connectivity. See the module docs for layout and invariants.
///
/// Each array sits behind its own `Arc`, so cloning a mesh costs a few reference counts: the scene's
/// snapshots and undo records share a mesh's arrays with the live scene, and an edit copies only
/// the arrays it writes (a move copies the positions, a paint the materials; a topology edit builds
/// new arrays anyway).
#[derive(Clone, Default)]
pub struct Mesh {
    pub(crate) vid: Arc<Vec<VertexId>>,
    pub(crate) vpos: Arc<Vec<Vec3>>,
    pub(crate) vhe: Arc<Vec<u32>>,
    pub(crate) hnext: Arc<Vec<u32>>,
    pub(crate) horigin: Arc<Vec<u32>>,
    pub(crate) hface: Arc<Vec<u32>>,
    pub(crate) fid: Arc<Vec<FaceId>>,
    pub(crate) fhe: Arc<Vec<u32>>,
    pub(crate) fmat: Arc<Vec<MaterialId>>,
    vindex: Arc<IdIndex>,
    findex: Arc<IdIndex>,
}

impl PartialEq for Mesh {
    fn eq(&self, o: &Mesh) -> bool {
        // The id tables are derived from the id arrays, so they need no comparison. Positions compare
        // by bits so that equality means "byte-identical".
        self.vid == o.vid
            && self.vpos.len() == o.vpos.len()
            && self.vpos.iter().zip(o.vpos.iter()).all(|(a, b)| {
                a.x.to_bits() == b.x.to_bits()
                    && a.y.to_bits() == b.y.to_bits()
                    && a.z.to_bits() == b.z.to_bits()
            })
            && self.vhe == o.vhe
            && self.hnext == o.hnext
            && self.horigin == o.horigin
            && self.hface == o.hface
            && self.fid == o.fid
            && self.fhe == o.fhe
            && self.fmat == o.fmat
    }
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::text::to_text(self))
    }
}

/// Id → slot lookup: an open-addressing table of slot numbers that hashes and compares the ids stored
/// in the mesh's id array. The hash is a fixed mixer, so lookups cost the same on every run; nothing
/// iterates the table, so its order never reaches a result.
#[derive(Clone, Default)]
struct IdIndex {
    table: HashTable<u32>,
}

fn mix(x: u64) -> u64 {
    // splitmix64's finaliser: a bijection with good avalanche, no seed, no state.
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl IdIndex {
    /// Builds the table over slots `0..n` whose ids `key` gives; on a duplicate id returns the
    /// slot of its second use.
    fn build(n: usize, key: impl Fn(usize) -> u64) -> std::result::Result<IdIndex, usize> {
        let mut index = IdIndex {
            table: HashTable::with_capacity(n),
        };
        index.extend(0..n, key)?;
        Ok(index)
    }

    /// Adds slots to the table (their ids from `key`, which must also cover the slots already in
    /// it); on a duplicate id returns the offending slot.
    fn extend(
        &mut self,
        slots: std::ops::Range<usize>,
        key: impl Fn(usize) -> u64,
    ) -> std::result::Result<(), usize> {
        self.table.reserve(slots.len(), |&s| mix(key(s as usize)));
        for slot in slots {
            let id = key(slot);
            match self.table.entry(
                mix(id),
                |&s| key(s as usize) == id,
                |&s| mix(key(s as usize)),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => return Err(slot),
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(slot as u32);
                }
            }
        }
        Ok(())
    }

    fn heap_bytes(&self) -> usize {
        // One u32 per bucket plus one control byte per bucket (hashbrown's layout).
        let buckets = self.table.capacity().next_power_of_two().max(1);
        buckets * (std::mem::size_of::<u32>() + 1)
    }
}

impl Mesh {
    /// The mesh with no elements.
    pub fn empty() -> Mesh {
        Mesh::default()
    }

    /// Builds a mesh from a face list, checking that it is an oriented 2-manifold with boundary.
    /// Vertices no face uses are dropped. Vertex and face order (and so every derived half-edge
    /// handle) follows the input order, so the same input always gives the same mesh.
    pub fn from_polygons(p: &Polygons) -> Result<Mesh> {
        build(p)
    }

    /// Reads the mesh out as a face list: vertices and faces in slot order, each face's loop starting
    /// at its first corner. `Mesh::from_polygons(&m.to_polygons())` reproduces `m` exactly.
    pub fn to_polygons(&self) -> Polygons {
        let mut p = Polygons::with_capacity(self.vid.len(), self.fid.len(), self.hnext.len());
        p.vertex_ids.extend_from_slice(&self.vid);
        p.positions.extend_from_slice(&self.vpos);
        for f in 0..self.fid.len() {
            p.face_ids.push(self.fid[f]);
            p.materials.push(self.fmat[f]);
            let start = self.fhe[f];
            let mut h = start;
            loop {
                p.corners.push(self.horigin[h as usize]);
                h = self.hnext[h as usize];
                if h == start {
                    break;
                }
            }
            p.face_start.push(p.corners.len() as u32);
        }
        p
    }

    // ----- sizes and iteration -----

    /// Number of vertices.
    pub fn vertex_count(&self) -> usize {
        self.vid.len()
    }
    /// Number of faces.
    pub fn face_count(&self) -> usize {
        self.fid.len()
    }
    /// Number of half-edges (twice the number of edges).
    pub fn halfedge_count(&self) -> usize {
        self.hnext.len()
    }
    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.hnext.len() / 2
    }
    /// True if the mesh has no faces.
    pub fn is_empty(&self) -> bool {
        self.fid.is_empty()
    }
    /// `V - E + F`: 2 for a closed sphere-like mesh, 0 for a torus.
    pub fn euler_characteristic(&self) -> i64 {
        self.vertex_count() as i64 - self.edge_count() as i64 + self.face_count() as i64
    }

    /// Vertex ids in storage order.
    pub fn vertices(&self) -> impl ExactSizeIterator<Item = VertexId> + '_ {
        self.vid.iter().copied()
    }
    /// Face ids in storage order.
    pub fn faces(&self) -> impl ExactSizeIterator<Item = FaceId> + '_ {
        self.fid.iter().copied()
    }
    /// All half-edge handles.
    pub fn halfedges(&self) -> impl ExactSizeIterator<Item = HalfEdgeId> {
        (0..self.hnext.len() as u32).map(HalfEdgeId)
    }
    /// One half-edge per edge (the even one of each twin pair).
    pub fn edges(&self) -> impl ExactSizeIterator<Item = HalfEdgeId> {
        (0..self.hnext.len() as u32 / 2).map(|e| HalfEdgeId(e * 2))
    }

    // ----- id lookups -----

    pub(crate) fn vslot(&self, v: VertexId) -> Result<u32> {
        self.vindex
            .table
            .find(mix(v.0), |&s| self.vid[s as usize] == v)
            .copied()
            .ok_or(MeshError::UnknownVertex(v))
    }
    pub(crate) fn fslot(&self, f: FaceId) -> Result<u32> {
        self.findex
            .table
            .find(mix(f.0), |&s| self.fid[s as usize] == f)
            .copied()
            .ok_or(MeshError::UnknownFace(f))
    }
    pub(crate) fn hcheck(&self, h: HalfEdgeId) -> Result<u32> {
        if (h.0 as usize) < self.hnext.len() {
            Ok(h.0)
        } else {
            Err(MeshError::UnknownHalfEdge(h))
        }
    }
    /// True if the mesh has this vertex.
    pub fn contains_vertex(&self, v: VertexId) -> bool {
        self.vslot(v).is_ok()
    }
    /// True if the mesh has this face.
    pub fn contains_face(&self, f: FaceId) -> bool {
        self.fslot(f).is_ok()
    }

    // ----- vertex queries -----

    /// Position of a vertex.
    pub fn position(&self, v: VertexId) -> Result<Vec3> {
        Ok(self.vpos[self.vslot(v)? as usize])
    }
    /// Moves a vertex to a new position (must be finite).
    pub fn set_position(&mut self, v: VertexId, p: Vec3) -> Result<()> {
        if !p.is_finite() {
            return Err(crate::error::invalid_param("position", "not finite"));
        }
        let s = self.vslot(v)?;
        Arc::make_mut(&mut self.vpos)[s as usize] = p;
        Ok(())
    }
    /// Positions of all vertices in storage order.
    pub fn positions(&self) -> &[Vec3] {
        &self.vpos
    }
    /// Outgoing half-edges of a vertex, in rotation order (clockwise seen from outside).
    pub fn vertex_outgoing(&self, v: VertexId) -> Result<Vec<HalfEdgeId>> {
        let s = self.vslot(v)?;
        Ok(self.out_slots(s).into_iter().map(HalfEdgeId).collect())
    }
    /// Faces around a vertex, in rotation order.
    pub fn vertex_faces(&self, v: VertexId) -> Result<Vec<FaceId>> {
        let s = self.vslot(v)?;
        Ok(self
            .out_slots(s)
            .into_iter()
            .filter_map(|h| {
                let f = self.hface[h as usize];
                (f != NONE).then(|| self.fid[f as usize])
            })
            .collect())
    }
    /// Vertices joined to `v` by an edge, in rotation order.
    pub fn vertex_neighbors(&self, v: VertexId) -> Result<Vec<VertexId>> {
        let s = self.vslot(v)?;
        Ok(self
            .out_slots(s)
            .into_iter()
            .map(|h| self.vid[self.dest_slot(h) as usize])
            .collect())
    }
    /// True if every half-edge has a face: no holes or open edges, so the surface encloses a
    /// volume and its back faces can never be seen (a renderer may cull them).
    pub fn is_closed(&self) -> bool {
        !self.hface.contains(&NONE)
    }

    /// True if the vertex lies on a boundary (a hole or open edge).
    pub fn is_boundary_vertex(&self, v: VertexId) -> Result<bool> {
        let s = self.vslot(v)?;
        Ok(self.hface[self.vhe[s as usize] as usize] == NONE)
    }

    pub(crate) fn out_slots(&self, v: u32) -> Vec<u32> {
        let start = self.vhe[v as usize];
        let mut out = Vec::with_capacity(6);
        let mut h = start;
        loop {
            out.push(h);
            h = self.hnext[(h ^ 1) as usize];
            if h == start || out.len() > self.hnext.len() {
                break;
            }
        }
        out
    }

    // ----- half-edge queries -----

    pub(crate) fn dest_slot(&self, h: u32) -> u32 {
        self.horigin[(h ^ 1) as usize]
    }
    pub(crate) fn prev_slot(&self, h: u32) -> u32 {
        // Rotate around origin(h) over incoming half-edges until the one whose next is h; see the
        // module docs for why there is no prev array.
        let mut g = h ^ 1;
        let mut steps = 0;
        loop {
            let n = self.hnext[g as usize];
            if n == h {
                return g;
            }
            g = n ^ 1;
            steps += 1;
            debug_assert!(steps <= self.hnext.len(), "rotation does not close");
            if steps > self.hnext.len() {
                return g;
            }
        }
    }
    /// Origin vertex of a half-edge.
    pub fn origin(&self, h: HalfEdgeId) -> Result<VertexId> {
        Ok(self.vid[self.horigin[self.hcheck(h)? as usize] as usize])
    }
    /// Destination vertex of a half-edge.
    pub fn dest(&self, h: HalfEdgeId) -> Result<VertexId> {
        Ok(self.vid[self.dest_slot(self.hcheck(h)?) as usize])
    }
    /// The opposite half-edge of the same edge.
    pub fn twin(&self, h: HalfEdgeId) -> Result<HalfEdgeId> {
        Ok(HalfEdgeId(self.hcheck(h)? ^ 1))
    }
    /// The next half-edge around the same face (or boundary loop).
    pub fn next(&self, h: HalfEdgeId) -> Result<HalfEdgeId> {
        Ok(HalfEdgeId(self.hnext[self.hcheck(h)? as usize]))
    }
    /// The previous half-edge around the same face (or boundary loop).
    pub fn prev(&self, h: HalfEdgeId) -> Result<HalfEdgeId> {
        Ok(HalfEdgeId(self.prev_slot(self.hcheck(h)?)))
    }
    /// The face on the left of a half-edge, `None` on a boundary.
    pub fn face_of(&self, h: HalfEdgeId) -> Result<Option<FaceId>> {
        let f = self.hface[self.hcheck(h)? as usize];
        Ok((f != NONE).then(|| self.fid[f as usize]))
    }
    /// The edge's two vertices.
    pub fn edge_key(&self, h: HalfEdgeId) -> Result<crate::ids::EdgeKey> {
        Ok(crate::ids::EdgeKey(self.origin(h)?, self.dest(h)?))
    }
    /// The half-edge from `a` to `b`, if they share an edge.
    pub fn find_halfedge(&self, a: VertexId, b: VertexId) -> Result<HalfEdgeId> {
        let sa = self.vslot(a)?;
        let sb = self.vslot(b)?;
        self.find_halfedge_slot(sa, sb)
            .map(HalfEdgeId)
            .ok_or(MeshError::UnknownEdge(a, b))
    }
    pub(crate) fn find_halfedge_slot(&self, a: u32, b: u32) -> Option<u32> {
        self.out_slots(a)
            .into_iter()
            .find(|&h| self.dest_slot(h) == b)
    }

    // ----- face queries -----

    /// Material of a face.
    pub fn face_material(&self, f: FaceId) -> Result<MaterialId> {
        Ok(self.fmat[self.fslot(f)? as usize])
    }
    /// The half-edges of a face, starting at its first corner.
    pub fn face_halfedges(&self, f: FaceId) -> Result<Vec<HalfEdgeId>> {
        let s = self.fslot(f)?;
        Ok(self.face_he_slots(s).into_iter().map(HalfEdgeId).collect())
    }
    /// The vertices of a face, counter-clockwise seen from outside.
    pub fn face_vertices(&self, f: FaceId) -> Result<Vec<VertexId>> {
        let s = self.fslot(f)?;
        Ok(self
            .face_he_slots(s)
            .into_iter()
            .map(|h| self.vid[self.horigin[h as usize] as usize])
            .collect())
    }
    /// Number of corners of a face.
    pub fn face_degree(&self, f: FaceId) -> Result<usize> {
        Ok(self.face_he_slots(self.fslot(f)?).len())
    }
    /// Unit normal of a face by Newell's method (robust for concave and slightly non-planar faces).
    /// A face with no area has normal zero.
    pub fn face_normal(&self, f: FaceId) -> Result<Vec3> {
        Ok(self.face_normal_slot(self.fslot(f)?))
    }
    /// Mean of a face's corner positions.
    pub fn face_centroid(&self, f: FaceId) -> Result<Vec3> {
        Ok(self.face_centroid_slot(self.fslot(f)?))
    }
    /// The faces on the two sides of an edge (`None` for a boundary side).
    pub fn edge_faces(&self, h: HalfEdgeId) -> Result<(Option<FaceId>, Option<FaceId>)> {
        Ok((self.face_of(h)?, self.face_of(self.twin(h)?)?))
    }

    pub(crate) fn face_he_slots(&self, f: u32) -> Vec<u32> {
        let start = self.fhe[f as usize];
        let mut out = Vec::with_capacity(4);
        let mut h = start;
        loop {
            out.push(h);
            h = self.hnext[h as usize];
            if h == start || out.len() > self.hnext.len() {
                break;
            }
        }
        out
    }
    pub(crate) fn face_vertex_slots(&self, f: u32) -> Vec<u32> {
        self.face_he_slots(f)
            .into_iter()
            .map(|h| self.horigin[h as usize])
            .collect()
    }
    pub(crate) fn face_normal_slot(&self, f: u32) -> Vec3 {
        newell(
            self.face_he_slots(f)
                .iter()
                .map(|&h| self.vpos[self.horigin[h as usize] as usize]),
        )
        .normalized()
        .unwrap_or(Vec3::ZERO)
    }
    pub(crate) fn face_centroid_slot(&self, f: u32) -> Vec3 {
        let hs = self.face_he_slots(f);
        let mut c = Vec3::ZERO;
        for &h in &hs {
            c += self.vpos[self.horigin[h as usize] as usize];
        }
        c / hs.len() as f32
    }

    /// Axis-aligned bounds of all vertices (empty for an empty mesh).
    pub fn bounds(&self) -> Aabb {
        let mut b = Aabb::EMPTY;
        for &p in self.vpos.iter() {
            b.include(p);
        }
        b
    }

    /// Heap bytes held by the mesh's arrays and id tables (capacity, not just length).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.vid.capacity() * size_of::<VertexId>()
            + self.vpos.capacity() * size_of::<Vec3>()
            + self.vhe.capacity() * 4
            + self.hnext.capacity() * 4
            + self.horigin.capacity() * 4
            + self.hface.capacity() * 4
            + self.fid.capacity() * size_of::<FaceId>()
            + self.fhe.capacity() * 4
            + self.fmat.capacity() * size_of::<MaterialId>()
            + self.vindex.heap_bytes()
            + self.findex.heap_bytes()
    }

    /// Checks every invariant listed in the module docs. A mesh built by the kernel always passes;
    /// tests call this after every operation.
    pub fn validate(&self) -> Result<()> {
        validate(self)
    }

    /// The storage arrays exactly as they are, for a checkpoint that must restore the very same
    /// layout: half-edge handles, and so every later operation, depend on slot order, so a mesh
    /// rebuilt from its face list would be equal in shape but not in layout.
    pub fn raw(&self) -> RawMesh<'_> {
        RawMesh {
            vertex_ids: &self.vid,
            positions: &self.vpos,
            vertex_half_edges: &self.vhe,
            next: &self.hnext,
            origins: &self.horigin,
            half_edge_faces: &self.hface,
            face_ids: &self.fid,
            face_half_edges: &self.fhe,
            materials: &self.fmat,
        }
    }

    /// The mesh with exactly these storage arrays (see [`Mesh::raw`]). The arrays are checked in
    /// full, as [`Mesh::validate`] does: bytes from a damaged file give an error, never a mesh that
    /// breaks an invariant.
    pub fn from_raw(raw: OwnedRawMesh) -> Result<Mesh> {
        let m = Mesh::from_parts(raw, None)?;
        m.validate()?;
        Ok(m)
    }

    /// [`Mesh::from_raw`] for arrays this process took from a mesh the kernel built, with
    /// [`Mesh::raw`], and kept in memory (a packed copy): the id tables are built (a repeated id
    /// is still an error) but the walk over every half-edge and face that [`Mesh::validate`]
    /// makes runs only in debug builds. It was a fifth of unpacking a packed mesh, and arrays
    /// that came from a valid mesh and never left the process cannot break an invariant. Bytes
    /// from a file or a peer go through [`Mesh::from_raw`].
    pub fn from_raw_trusted(raw: OwnedRawMesh) -> Result<Mesh> {
        let m = Mesh::from_parts(raw, None)?;
        debug_assert_eq!(m.validate(), Ok(()), "trusted arrays make a valid mesh");
        Ok(m)
    }
}

/// A mesh's storage arrays, borrowed (see [`Mesh::raw`]). Half-edges come in twin pairs
/// (`twin(h) = h ^ 1`); `u32::MAX` is "none" in `half_edge_faces` (a boundary half-edge).
#[derive(Clone, Copy, Debug)]
pub struct RawMesh<'a> {
    /// Vertex ids, by vertex slot.
    pub vertex_ids: &'a [VertexId],
    /// Vertex positions, by vertex slot.
    pub positions: &'a [Vec3],
    /// One outgoing half-edge per vertex slot.
    pub vertex_half_edges: &'a [u32],
    /// The next half-edge around the face, by half-edge slot.
    pub next: &'a [u32],
    /// The origin vertex slot, by half-edge slot.
    pub origins: &'a [u32],
    /// The face slot, by half-edge slot.
    pub half_edge_faces: &'a [u32],
    /// Face ids, by face slot.
    pub face_ids: &'a [FaceId],
    /// One half-edge per face slot.
    pub face_half_edges: &'a [u32],
    /// Materials, by face slot.
    pub materials: &'a [MaterialId],
}

/// A mesh's storage arrays, owned, for [`Mesh::from_raw`]; the fields mean what [`RawMesh`]'s do.
#[derive(Clone, Debug, Default)]
#[expect(missing_docs, reason = "each field is documented on RawMesh")]
pub struct OwnedRawMesh {
    pub vertex_ids: Vec<VertexId>,
    pub positions: Vec<Vec3>,
    pub vertex_half_edges: Vec<u32>,
    pub next: Vec<u32>,
    pub origins: Vec<u32>,
    pub half_edge_faces: Vec<u32>,
    pub face_ids: Vec<FaceId>,
    pub face_half_edges: Vec<u32>,
    pub materials: Vec<MaterialId>,
}

impl OwnedRawMesh {
    /// The arrays, borrowed, as [`Mesh::raw`] gives them.
    pub fn as_raw(&self) -> RawMesh<'_> {
        RawMesh {
            vertex_ids: &self.vertex_ids,
            positions: &self.positions,
            vertex_half_edges: &self.vertex_half_edges,
            next: &self.next,
            origins: &self.origins,
            half_edge_faces: &self.half_edge_faces,
            face_ids: &self.face_ids,
            face_half_edges: &self.face_half_edges,
            materials: &self.materials,
        }
    }
}

/// Newell's normal (not normalised) of a polygon given by its corners, summed in corner order.
pub(crate) fn newell(points: impl Iterator<Item = Vec3> + Clone) -> Vec3 {
    let first = points.clone().next();
    let mut n = Vec3::ZERO;
    let mut it = points.peekable();
    while let Some(a) = it.next() {
        let b = match it.peek() {
            Some(&b) => b,
            None => match first {
                Some(f) => f,
                None => break,
            },
        };
        n.x += (a.y - b.y) * (a.z + b.z);
        n.y += (a.z - b.z) * (a.x + b.x);
        n.z += (a.x - b.x) * (a.y + b.y);
    }
    n
}

fn build(p: &Polygons) -> Result<Mesh> {
    let nv = p.positions.len();
    let nf = p.face_ids.len();
    if p.vertex_ids.len() != nv
        || p.materials.len() != nf
        || p.face_start.len() != nf + 1
        || p.face_start.first() != Some(&0)
        || p.face_start.last().map(|&l| l as usize) != Some(p.corners.len())
    {
        return Err(MeshError::Invalid(
            "face list arrays disagree in length".into(),
        ));
    }
    for w in p.face_start.windows(2) {
        if w[1] < w[0] {
            return Err(MeshError::Invalid("face starts decrease".into()));
        }
    }
    if nv >= NONE as usize / 2 || p.corners.len() >= NONE as usize / 2 {
        return Err(MeshError::Invalid("mesh too large".into()));
    }
    // Per-face checks: ≥ 3 corners, indices in range, no repeated vertex.
    let mut used = vec![false; nv];
    let mut scratch: Vec<u32> = Vec::new();
    for f in 0..nf {
        let c = p.face(f);
        if c.len() < 3 {
            return Err(MeshError::DegenerateFace(format!(
                "face {} has {} corners",
                p.face_ids[f],
                c.len()
            )));
        }
        for &v in c {
            if v as usize >= nv {
                return Err(MeshError::Invalid(format!(
                    "face {} names vertex index {v} of {nv}",
                    p.face_ids[f]
                )));
            }
            used[v as usize] = true;
        }
        let repeated = if c.len() <= 8 {
            (0..c.len()).any(|i| c[i + 1..].contains(&c[i]))
        } else {
            scratch.clear();
            scratch.extend_from_slice(c);
            scratch.sort_unstable();
            scratch.windows(2).any(|w| w[0] == w[1])
        };
        if repeated {
            return Err(MeshError::DegenerateFace(format!(
                "face {} repeats a vertex",
                p.face_ids[f]
            )));
        }
    }
    // Drop unused vertices, keeping order (skipped in the common case where every vertex is used).
    let all_used = used.iter().all(|&u| u);
    let mut remap = if all_used { Vec::new() } else { vec![NONE; nv] };
    let mut vid = Vec::with_capacity(nv);
    let mut vpos = Vec::with_capacity(nv);
    for i in 0..nv {
        if used[i] {
            if !p.positions[i].is_finite() {
                return Err(MeshError::Invalid(format!(
                    "vertex {} has a non-finite position",
                    p.vertex_ids[i]
                )));
            }
            if !all_used {
                remap[i] = vid.len() as u32;
            }
            vid.push(p.vertex_ids[i]);
            vpos.push(p.positions[i]);
        }
    }
    drop(used);
    let nv = vid.len();
    let nc = p.corners.len();
    let remapped: Vec<u32>;
    let corners: &[u32] = if all_used {
        &p.corners
    } else {
        remapped = p.corners.iter().map(|&c| remap[c as usize]).collect();
        &remapped
    };
    drop(remap);
    // Next corner within the face, and the face of each corner.
    let mut cnext = vec![0u32; nc];
    let mut cface = vec![0u32; nc];
    for f in 0..nf {
        let s = p.face_start[f] as usize;
        let e = p.face_start[f + 1] as usize;
        for i in s..e {
            cnext[i] = if i + 1 == e { s as u32 } else { i as u32 + 1 };
            cface[i] = f as u32;
        }
    }
    let ends = |c: usize| (corners[c], corners[cnext[c] as usize]);
    // Corners grouped by origin vertex (counting sort): the corners leaving a vertex are its outgoing
    // half-edges, so a twin is found by scanning the short list of the other end.
    let mut ostart = vec![0u32; nv + 1];
    for &a in corners {
        ostart[a as usize + 1] += 1;
    }
    for i in 0..nv {
        ostart[i + 1] += ostart[i];
    }
    let mut fill = ostart.clone();
    let mut out = vec![0u32; nc];
    for (c, &a) in corners.iter().enumerate() {
        out[fill[a as usize] as usize] = c as u32;
        fill[a as usize] += 1;
    }
    drop(fill);
    let outgoing = |v: u32| &out[ostart[v as usize] as usize..ostart[v as usize + 1] as usize];
    // Two faces using one directed edge means inconsistent orientation or an edge shared by more
    // than two faces (three faces on an edge always repeat a direction).
    let mut scratch: Vec<(u32, u32)> = Vec::new();
    for v in 0..nv as u32 {
        let list = outgoing(v);
        let dup = if list.len() <= 16 {
            (0..list.len()).find_map(|i| {
                let d = corners[cnext[list[i] as usize] as usize];
                list[i + 1..]
                    .iter()
                    .find(|&&c| corners[cnext[c as usize] as usize] == d)
                    .map(|&c| (list[i], c))
            })
        } else {
            scratch.clear();
            scratch.extend(
                list.iter()
                    .map(|&c| (corners[cnext[c as usize] as usize], c)),
            );
            scratch.sort_unstable();
            scratch
                .windows(2)
                .find(|w| w[0].0 == w[1].0)
                .map(|w| (w[0].1, w[1].1))
        };
        if let Some((c0, c1)) = dup {
            let (a, b) = ends(c0 as usize);
            let uses = |x: u32, y: u32| {
                outgoing(x)
                    .iter()
                    .filter(|&&c| corners[cnext[c as usize] as usize] == y)
                    .count()
            };
            let n = uses(a, b) + uses(b, a);
            if n > 2 {
                return Err(MeshError::NonManifold(format!(
                    "edge {}-{} is shared by {n} faces",
                    vid[a as usize], vid[b as usize]
                )));
            }
            return Err(MeshError::NonManifold(format!(
                "faces {} and {} use edge {}-{} in the same direction (inconsistent orientation)",
                p.face_ids[cface[c0 as usize] as usize],
                p.face_ids[cface[c1 as usize] as usize],
                vid[a as usize],
                vid[b as usize]
            )));
        }
    }
    let mut partner = vec![NONE; nc];
    for c in 0..nc {
        if partner[c] != NONE {
            continue;
        }
        let (a, b) = ends(c);
        if let Some(&d) = outgoing(b)
            .iter()
            .find(|&&d| corners[cnext[d as usize] as usize] == a)
        {
            partner[c] = d;
            partner[d as usize] = c as u32;
        }
    }
    drop(out);
    drop(ostart);
    // Half-edges in twin pairs, allocated in corner order.
    let nh_est = nc + (nc - partner.iter().filter(|&&x| x != NONE).count());
    let mut hnext = vec![NONE; nh_est];
    let mut horigin = Vec::with_capacity(nh_est);
    let mut hface = Vec::with_capacity(nh_est);
    let mut corner_he = vec![NONE; nc];
    let mut first_out = vec![NONE; nv];
    let mut degree = vec![0u32; nv];
    for c in 0..nc {
        if corner_he[c] != NONE {
            continue;
        }
        let (a, b) = ends(c);
        let h = horigin.len() as u32;
        horigin.push(a);
        hface.push(cface[c]);
        horigin.push(b);
        let q = partner[c];
        hface.push(if q == NONE { NONE } else { cface[q as usize] });
        corner_he[c] = h;
        if q != NONE {
            corner_he[q as usize] = h + 1;
        }
        for (v, hh) in [(a, h), (b, h + 1)] {
            if first_out[v as usize] == NONE {
                first_out[v as usize] = hh;
            }
            degree[v as usize] += 1;
        }
    }
    debug_assert_eq!(horigin.len(), nh_est);
    let nh = horigin.len();
    let mut fhe = Vec::with_capacity(nf);
    for f in 0..nf {
        let s = p.face_start[f] as usize;
        let e = p.face_start[f + 1] as usize;
        for c in s..e {
            hnext[corner_he[c] as usize] = corner_he[cnext[c] as usize];
        }
        fhe.push(corner_he[s]);
    }
    drop(corner_he);
    drop(cnext);
    // Boundary loops: each boundary half-edge continues with the boundary half-edge leaving its
    // destination; a manifold vertex has at most one.
    let mut bout = vec![NONE; nv];
    for h in 0..nh {
        if hface[h] == NONE {
            let v = horigin[h] as usize;
            if bout[v] != NONE {
                return Err(MeshError::NonManifold(format!(
                    "vertex {} has two boundary gaps",
                    vid[v]
                )));
            }
            bout[v] = h as u32;
        }
    }
    for h in 0..nh {
        if hface[h] == NONE {
            let d = horigin[h ^ 1] as usize;
            if bout[d] == NONE {
                return Err(MeshError::NonManifold(format!(
                    "boundary does not continue at vertex {}",
                    vid[d]
                )));
            }
            hnext[h] = bout[d];
        }
    }
    let vhe: Vec<u32> = (0..nv)
        .map(|v| {
            if bout[v] != NONE {
                bout[v]
            } else {
                first_out[v]
            }
        })
        .collect();
    drop(bout);
    // One fan per vertex: the rotation from vhe must visit every outgoing half-edge.
    for v in 0..nv {
        let start = vhe[v];
        let mut h = start;
        let mut n = 0u32;
        loop {
            n += 1;
            h = hnext[(h ^ 1) as usize];
            if h == start || n > degree[v] {
                break;
            }
        }
        if n != degree[v] {
            return Err(MeshError::NonManifold(format!(
                "vertex {} joins separate fans of faces",
                vid[v]
            )));
        }
    }
    Mesh::from_parts(
        OwnedRawMesh {
            vertex_ids: vid,
            positions: vpos,
            vertex_half_edges: vhe,
            next: hnext,
            origins: horigin,
            half_edge_faces: hface,
            face_ids: p.face_ids.clone(),
            face_half_edges: fhe,
            materials: p.materials.clone(),
        },
        None,
    )
}

impl Mesh {
    /// Assembles a mesh from its arrays and builds the id tables, failing on a repeated id. With
    /// `keep_vertices_of`, the first `base.vertex_count()` vertices are known to be `base`'s, in the
    /// same slots, and its vertex table is reused rather than rebuilt.
    pub(crate) fn from_parts(p: OwnedRawMesh, keep_vertices_of: Option<&Mesh>) -> Result<Mesh> {
        let (vid, fid) = (&p.vertex_ids, &p.face_ids);
        let vkey = |s: usize| vid[s].0;
        let vindex = match keep_vertices_of {
            // The same vertices: share the table.
            Some(base) if base.vid.len() == vid.len() => Ok(base.vindex.clone()),
            Some(base) if base.vid.len() < vid.len() => {
                let mut ix = IdIndex::clone(&base.vindex);
                ix.extend(base.vid.len()..vid.len(), vkey)
                    .map(|_| Arc::new(ix))
            }
            _ => IdIndex::build(vid.len(), vkey).map(Arc::new),
        }
        .map_err(|s| MeshError::IdCollision(format!("vertex id {} used twice", vid[s])))?;
        let findex = IdIndex::build(fid.len(), |s| fid[s].0)
            .map_err(|s| MeshError::IdCollision(format!("face id {} used twice", fid[s])))?;
        Ok(Mesh {
            vid: Arc::new(p.vertex_ids),
            vpos: Arc::new(p.positions),
            vhe: Arc::new(p.vertex_half_edges),
            hnext: Arc::new(p.next),
            horigin: Arc::new(p.origins),
            hface: Arc::new(p.half_edge_faces),
            fid: Arc::new(p.face_ids),
            fhe: Arc::new(p.face_half_edges),
            fmat: Arc::new(p.materials),
            vindex,
            findex: Arc::new(findex),
        })
    }
}

fn validate(m: &Mesh) -> Result<()> {
    let bad = |s: String| Err(MeshError::Invalid(s));
    let nv = m.vid.len();
    let nh = m.hnext.len();
    let nf = m.fid.len();
    if m.vpos.len() != nv || m.vhe.len() != nv {
        return bad("vertex arrays disagree in length".into());
    }
    if m.horigin.len() != nh || m.hface.len() != nh || !nh.is_multiple_of(2) {
        return bad("half-edge arrays disagree in length".into());
    }
    if m.fhe.len() != nf || m.fmat.len() != nf {
        return bad("face arrays disagree in length".into());
    }
    let mut incoming = vec![0u8; nh];
    for h in 0..nh {
        let n = m.hnext[h] as usize;
        if n >= nh
            || m.horigin[h] as usize >= nv
            || (m.hface[h] != NONE && m.hface[h] as usize >= nf)
        {
            return bad(format!("half-edge h{h} points out of range"));
        }
        if m.horigin[n] != m.horigin[h ^ 1] {
            return bad(format!("h{h}: next does not start where h ends"));
        }
        if m.hface[n] != m.hface[h] {
            return bad(format!("h{h}: next lies on another face"));
        }
        if m.hface[h] == NONE && m.hface[h ^ 1] == NONE {
            return bad(format!("edge of h{h} has no face on either side"));
        }
        if m.horigin[h] == m.horigin[h ^ 1] {
            return bad(format!("h{h} is a loop edge"));
        }
        incoming[n] = incoming[n].saturating_add(1);
    }
    if let Some(h) = incoming.iter().position(|&c| c != 1) {
        return bad(format!("next is not a permutation at h{h}"));
    }
    let mut face_walked = 0usize;
    let mut seen = Vec::new();
    for f in 0..nf {
        let start = m.fhe[f] as usize;
        if start >= nh || m.hface[start] != f as u32 {
            return bad(format!("face {} has a foreign half-edge", m.fid[f]));
        }
        seen.clear();
        let mut h = start;
        loop {
            seen.push(m.horigin[h]);
            h = m.hnext[h] as usize;
            if h == start {
                break;
            }
            if seen.len() > nh {
                return bad(format!("face {} loop does not close", m.fid[f]));
            }
        }
        if seen.len() < 3 {
            return bad(format!("face {} has {} corners", m.fid[f], seen.len()));
        }
        face_walked += seen.len();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return bad(format!("face {} repeats a vertex", m.fid[f]));
        }
    }
    if face_walked != m.hface.iter().filter(|&&f| f != NONE).count() {
        return bad("some half-edges claim a face whose loop does not reach them".into());
    }
    let mut degree = vec![0u32; nv];
    let mut boundary_out = vec![0u32; nv];
    for h in 0..nh {
        degree[m.horigin[h] as usize] += 1;
        if m.hface[h] == NONE {
            boundary_out[m.horigin[h] as usize] += 1;
        }
    }
    for v in 0..nv {
        if !m.vpos[v].is_finite() {
            return bad(format!("vertex {} position not finite", m.vid[v]));
        }
        if degree[v] == 0 {
            return bad(format!("vertex {} is isolated", m.vid[v]));
        }
        let s = m.vhe[v] as usize;
        if s >= nh || m.horigin[s] != v as u32 {
            return bad(format!("vertex {} half-edge does not leave it", m.vid[v]));
        }
        if boundary_out[v] > 1 {
            return bad(format!(
                "vertex {} has {} boundary gaps",
                m.vid[v], boundary_out[v]
            ));
        }
        if boundary_out[v] == 1 && m.hface[s] != NONE {
            return bad(format!(
                "boundary vertex {} does not start at its boundary",
                m.vid[v]
            ));
        }
        let mut n = 0u32;
        let mut h = s;
        loop {
            n += 1;
            h = m.hnext[h ^ 1] as usize;
            if h == s || n > degree[v] {
                break;
            }
        }
        if n != degree[v] {
            return bad(format!("vertex {} joins separate fans", m.vid[v]));
        }
    }
    let mut keys: Vec<(u32, u32)> = (0..nh / 2)
        .map(|e| {
            let (a, b) = (m.horigin[2 * e], m.horigin[2 * e + 1]);
            (a.min(b), a.max(b))
        })
        .collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        return bad(format!(
            "two edges join {} and {}",
            m.vid[w[0].0 as usize], m.vid[w[0].1 as usize]
        ));
    }
    for v in 0..nv {
        if m.vslot(m.vid[v]).ok() != Some(v as u32) {
            return bad(format!("vertex id {} does not map to its slot", m.vid[v]));
        }
    }
    for f in 0..nf {
        if m.fslot(m.fid[f]).ok() != Some(f as u32) {
            return bad(format!("face id {} does not map to its slot", m.fid[f]));
        }
    }
    if m.vindex.table.len() != nv || m.findex.table.len() != nf {
        return bad("id tables hold stale entries".into());
    }
    Ok(())
}
