//! Delete (leaving a hole) and dissolve (merging the neighbours into one face) of vertices, edges and
//! faces.

use super::soup::{SFace, Soup};
use crate::error::{MeshError, Result};
use crate::ids::{FaceId, HalfEdgeId, IdAlloc, VertexId};
use crate::mesh::{Mesh, NONE};

/// What happens to the surface where elements are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// Remove the faces that use the element, leaving a hole (edges and vertices no face uses go too).
    Hole,
    /// Remove the element but keep the surface closed by merging the faces around it into one.
    Dissolve,
}

impl Mesh {
    /// Deletes faces, leaving a hole; edges and vertices no longer used by any face are removed.
    /// A vertex left joining separate fans of faces (a "bow tie", as when two cells that touch only
    /// at a corner remain) is split into one vertex per fan at the same position, so the result
    /// stays a manifold.
    ///
    /// Ids: one vertex for each extra fan, vertices in storage order, fans in the order of their
    /// first face.
    pub fn delete_faces(&mut self, faces: &[FaceId], alloc: &mut impl IdAlloc) -> Result<()> {
        let sel = self.face_slots(faces)?;
        let mut soup = Soup::from_mesh(self);
        let mut gone = vec![false; self.fid.len()];
        for f in sel {
            gone[f as usize] = true;
        }
        let mut i = 0;
        soup.faces.retain(|_| {
            i += 1;
            !gone[i - 1]
        });
        split_fans(&mut soup, alloc);
        *self = soup.build()?;
        Ok(())
    }

    /// Removes a vertex: `Hole` deletes the faces around it; `Dissolve` merges them into one face
    /// without the vertex (for a vertex with two edges, it is simply taken out of both faces).
    pub fn delete_vertex(
        &mut self,
        v: VertexId,
        mode: DeleteMode,
        alloc: &mut impl IdAlloc,
    ) -> Result<()> {
        let s = self.vslot(v)?;
        let faces = self.vertex_faces(v)?;
        match mode {
            DeleteMode::Hole => self.delete_faces(&faces, alloc),
            DeleteMode::Dissolve => {
                let out = self.out_slots(s);
                let boundary = self.hface[self.vhe[s as usize] as usize] == NONE;
                if out.len() == 2 && !boundary {
                    let mut soup = Soup::from_mesh(self);
                    for f in self.face_slots(&faces)? {
                        let c = &mut soup.faces[f as usize].c;
                        if c.len() <= 3 {
                            return Err(MeshError::DegenerateFace(format!(
                                "removing {v} would leave face {} with two corners",
                                self.fid[f as usize]
                            )));
                        }
                        c.retain(|x| *x != s);
                    }
                    *self = soup.build()?;
                    return Ok(());
                }
                self.merge_faces(&faces, Some(s))
            }
        }
    }

    /// Removes an edge: `Hole` deletes the faces on both sides; `Dissolve` merges those two faces.
    pub fn delete_edge(
        &mut self,
        h: HalfEdgeId,
        mode: DeleteMode,
        alloc: &mut impl IdAlloc,
    ) -> Result<()> {
        let (a, b) = self.edge_faces(h)?;
        match mode {
            DeleteMode::Hole => {
                let faces: Vec<FaceId> = [a, b].into_iter().flatten().collect();
                self.delete_faces(&faces, alloc)
            }
            DeleteMode::Dissolve => match (a, b) {
                (Some(a), Some(b)) => self.merge_faces(&[a, b], None),
                _ => Err(MeshError::Unsupported(
                    "a boundary edge has only one face; delete it with a hole instead".into(),
                )),
            },
        }
    }

    /// Deletes faces (`Hole`), or merges a connected region of faces into one face (`Dissolve`).
    pub fn delete_faces_with(
        &mut self,
        faces: &[FaceId],
        mode: DeleteMode,
        alloc: &mut impl IdAlloc,
    ) -> Result<()> {
        match mode {
            DeleteMode::Hole => self.delete_faces(faces, alloc),
            DeleteMode::Dissolve => self.merge_faces(faces, None),
        }
    }

    /// Merges a region of faces whose outline is a single loop into one face, which keeps the id and
    /// material of the region's first face in storage order. `drop` names a vertex to leave out of
    /// the outline (dissolving a boundary vertex).
    fn merge_faces(&mut self, faces: &[FaceId], drop: Option<u32>) -> Result<()> {
        let region = self.face_slots(faces)?;
        if region.len() < 2 && drop.is_none() {
            return Err(MeshError::Unsupported(
                "dissolving needs at least two faces".into(),
            ));
        }
        let mut inr = vec![false; self.fid.len()];
        for &f in &region {
            inr[f as usize] = true;
        }
        // Outline: half-edges of region faces whose twin is outside the region.
        let mut outline = Vec::new();
        for &f in &region {
            for h in self.face_he_slots(f) {
                let t = self.hface[(h ^ 1) as usize];
                if t == NONE || !inr[t as usize] {
                    outline.push(h);
                }
            }
        }
        if outline.is_empty() {
            return Err(MeshError::Unsupported(
                "the region is closed: it has no outline".into(),
            ));
        }
        // Chain the outline: from each half-edge to the outline half-edge leaving its destination.
        let mut by_origin: Vec<(u32, u32)> = outline
            .iter()
            .map(|&h| (self.horigin[h as usize], h))
            .collect();
        by_origin.sort_unstable();
        if by_origin.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(MeshError::Unsupported(
                "the region's outline touches itself at a vertex".into(),
            ));
        }
        let start = outline[0];
        let mut lp = Vec::with_capacity(outline.len());
        let mut h = start;
        loop {
            lp.push(self.horigin[h as usize]);
            let d = self.dest_slot(h);
            let Ok(i) = by_origin.binary_search_by_key(&d, |x| x.0) else {
                return Err(MeshError::Unsupported(
                    "the region's outline is not closed".into(),
                ));
            };
            h = by_origin[i].1;
            if h == start || lp.len() > outline.len() {
                break;
            }
        }
        if lp.len() != outline.len() {
            return Err(MeshError::Unsupported(
                "the region is not one piece with one outline (it has holes or several parts)"
                    .into(),
            ));
        }
        if let Some(d) = drop {
            lp.retain(|&x| x != d);
        }
        let keep = region[0];
        let mut soup = Soup::from_mesh(self);
        let (id, mat) = (self.fid[keep as usize], self.fmat[keep as usize]);
        let mut i = 0;
        soup.faces.retain(|_| {
            i += 1;
            !inr[i - 1] || (i - 1) as u32 == keep
        });
        // The kept face is the first region face, so its position is the count of non-region
        // faces before it.
        let pos = (0..keep).filter(|&f| !inr[f as usize]).count();
        soup.faces[pos] = SFace {
            id,
            mat,
            c: lp.into(),
        };
        *self = soup.build()?;
        Ok(())
    }
}

/// Splits every vertex whose faces form separate fans (connected through edges around the vertex)
/// into one vertex per fan; the fan with the vertex's first corner keeps it.
fn split_fans(soup: &mut Soup, alloc: &mut impl IdAlloc) {
    let nv = soup.ids.len();
    // Corners grouped by vertex (counting sort), in face order.
    let mut start = vec![0u32; nv + 1];
    for f in &soup.faces {
        for &v in &f.c {
            start[v as usize + 1] += 1;
        }
    }
    for i in 0..nv {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut corners = vec![(0u32, 0u32); start[nv] as usize];
    for (fi, f) in soup.faces.iter().enumerate() {
        for (ci, &v) in f.c.iter().enumerate() {
            corners[fill[v as usize] as usize] = (fi as u32, ci as u32);
            fill[v as usize] += 1;
        }
    }
    let mut parent: Vec<usize> = Vec::new();
    for v in 0..nv {
        let cs = &corners[start[v] as usize..start[v + 1] as usize];
        if cs.len() < 2 {
            continue;
        }
        let neighbours = |&(fi, ci): &(u32, u32)| {
            let c = &soup.faces[fi as usize].c;
            let n = c.len();
            (c[(ci as usize + 1) % n], c[(ci as usize + n - 1) % n])
        };
        parent.clear();
        parent.extend(0..cs.len());
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        // Corner i (edge v→out) and corner j (edge in→v) share the edge when out_i == in_j.
        let mut by_out: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
        for (i, c) in cs.iter().enumerate() {
            by_out.insert(neighbours(c).0, i);
        }
        for (j, c) in cs.iter().enumerate() {
            if let Some(&i) = by_out.get(&neighbours(c).1) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        // Roots in order of their first corner; every root after the first gets a new vertex.
        let mut new_of_root: std::collections::BTreeMap<usize, u32> =
            std::collections::BTreeMap::new();
        let cs: Vec<(u32, u32)> = cs.to_vec();
        for (i, &(fi, ci)) in cs.iter().enumerate() {
            let r = find(&mut parent, i);
            if r == 0 {
                continue;
            }
            let nv_idx = match new_of_root.get(&r) {
                Some(&x) => x,
                None => {
                    let pos = soup.pos[v];
                    let x = soup.add_vertex(alloc.vertex(), pos);
                    new_of_root.insert(r, x);
                    x
                }
            };
            soup.faces[fi as usize].c[ci as usize] = nv_idx;
        }
    }
}
