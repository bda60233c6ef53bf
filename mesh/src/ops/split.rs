//! Edge split, face split (between two vertices or two edges), and loop cut across a quad ring.

use super::soup::{SFace, Soup, insert_between};
use crate::error::{MeshError, Result, invalid_param};
use crate::ids::{FaceId, HalfEdgeId, IdAlloc, VertexId};
use crate::mesh::{Mesh, NONE};

/// A quad ring: its edges as half-edges in walk order, and its quads as (face, entry half-edge).
type QuadRing = (Vec<u32>, Vec<(u32, u32)>);

fn check_t(name: &'static str, t: f32) -> Result<()> {
    if t > 0.0 && t < 1.0 {
        Ok(())
    } else {
        Err(invalid_param(
            name,
            format!("{t} is not strictly between 0 and 1"),
        ))
    }
}

impl Mesh {
    /// Splits an edge at parameter `t` (0 < t < 1, measured from the half-edge's origin), inserting
    /// one vertex into the faces on both sides. Ids: one vertex.
    pub fn split_edge(
        &mut self,
        h: HalfEdgeId,
        t: f32,
        alloc: &mut impl IdAlloc,
    ) -> Result<VertexId> {
        check_t("t", t)?;
        let h = self.hcheck(h)?;
        let mut soup = Soup::from_mesh(self);
        let id = alloc.vertex();
        let x = self.split_in_soup(&mut soup, h, &[t], &[id]);
        let _ = x;
        *self = soup.build()?;
        Ok(id)
    }

    /// Inserts vertices at parameters `ts` (increasing, from origin(h)) along edge `h` into the soup's
    /// faces on both sides; returns their soup indices in order from origin(h).
    fn split_in_soup(&self, soup: &mut Soup, h: u32, ts: &[f32], ids: &[VertexId]) -> Vec<u32> {
        let (a, b) = (self.horigin[h as usize], self.dest_slot(h));
        let (pa, pb) = (self.vpos[a as usize], self.vpos[b as usize]);
        let xs: Vec<u32> = ts
            .iter()
            .zip(ids)
            .map(|(&t, &id)| soup.add_vertex(id, pa.lerp(pb, t)))
            .collect();
        let f = self.hface[h as usize];
        if f != NONE {
            insert_between(&mut soup.faces[f as usize].c, a, b, &xs);
        }
        let g = self.hface[(h ^ 1) as usize];
        if g != NONE {
            let rev: Vec<u32> = xs.iter().rev().copied().collect();
            insert_between(&mut soup.faces[g as usize].c, b, a, &rev);
        }
        xs
    }

    /// Splits a face in two by a new edge between two of its corners that are not already
    /// neighbours. The part from `a` round to `b` keeps the face's id. Ids: one face.
    pub fn split_face(
        &mut self,
        face: FaceId,
        a: VertexId,
        b: VertexId,
        alloc: &mut impl IdAlloc,
    ) -> Result<FaceId> {
        let f = self.fslot(face)?;
        let (sa, sb) = (self.vslot(a)?, self.vslot(b)?);
        let mut soup = Soup::from_mesh(self);
        let id = alloc.face();
        split_loop(&mut soup, f, sa, sb, id, a, b)?;
        *self = soup.build()?;
        Ok(id)
    }

    /// Splits a face between two of its edges: each edge is split at its parameter (from its
    /// half-edge's origin) and the two new vertices are joined. Ids: the vertex on `h1`, the vertex
    /// on `h2`, then the new face.
    pub fn split_face_between_edges(
        &mut self,
        h1: HalfEdgeId,
        t1: f32,
        h2: HalfEdgeId,
        t2: f32,
        alloc: &mut impl IdAlloc,
    ) -> Result<FaceId> {
        check_t("t1", t1)?;
        check_t("t2", t2)?;
        let (s1, s2) = (self.hcheck(h1)?, self.hcheck(h2)?);
        let f = self.hface[s1 as usize];
        if f == NONE || self.hface[s2 as usize] != f {
            return Err(MeshError::Unsupported(
                "both half-edges must lie on one face".into(),
            ));
        }
        if s1 == s2 {
            return Err(MeshError::Unsupported("the two edges must differ".into()));
        }
        let mut soup = Soup::from_mesh(self);
        let (i1, i2) = (alloc.vertex(), alloc.vertex());
        let x = self.split_in_soup(&mut soup, s1, &[t1], &[i1])[0];
        let y = self.split_in_soup(&mut soup, s2, &[t2], &[i2])[0];
        let id = alloc.face();
        split_loop(&mut soup, f, x, y, id, i1, i2)?;
        *self = soup.build()?;
        Ok(id)
    }

    /// Loop cut: walks the ring of quads across edge `h` (stopping at non-quads and boundaries, or
    /// closing on itself) and cuts every quad of the ring `cuts` times parallel to `h`.
    ///
    /// Ids: for each ring edge in ring order, its `cuts` new vertices (from the origin of the ring
    /// half-edge); then, for each quad in ring order, its `cuts` new faces.
    pub fn loop_cut(
        &mut self,
        h: HalfEdgeId,
        cuts: u32,
        alloc: &mut impl IdAlloc,
    ) -> Result<Vec<FaceId>> {
        if !(1..=64).contains(&cuts) {
            return Err(invalid_param("cuts", format!("{cuts} is outside 1..=64")));
        }
        let h0 = self.hcheck(h)?;
        let (ring_edges, quads) = self.quad_ring(h0)?;
        if quads.is_empty() {
            return Err(MeshError::Unsupported(
                "the edge has no quad on either side".into(),
            ));
        }
        let n = cuts as usize;
        let ts: Vec<f32> = (1..=n).map(|k| k as f32 / (n + 1) as f32).collect();
        let mut soup = Soup::from_mesh(self);
        // New vertices per ring edge, ordered from the origin of the ring half-edge.
        let mut points: Vec<(u32, Vec<u32>)> = Vec::with_capacity(ring_edges.len());
        for &e in &ring_edges {
            let ids: Vec<VertexId> = (0..n).map(|_| alloc.vertex()).collect();
            let (a, b) = (self.horigin[e as usize], self.dest_slot(e));
            let (pa, pb) = (self.vpos[a as usize], self.vpos[b as usize]);
            let xs = ts
                .iter()
                .zip(&ids)
                .map(|(&t, &id)| soup.add_vertex(id, pa.lerp(pb, t)))
                .collect();
            points.push((e, xs));
        }
        // Points on an edge seen from half-edge g, ordered from origin(g).
        let along = |g: u32| -> Vec<u32> {
            for (e, xs) in &points {
                if *e == g {
                    return xs.clone();
                }
                if *e == g ^ 1 {
                    return xs.iter().rev().copied().collect();
                }
            }
            Vec::new()
        };
        // Faces at the open ends of the ring (non-quads) just gain the points on their edge.
        let in_ring: Vec<u32> = quads.iter().map(|q| q.0).collect();
        for (e, _) in &points {
            for g in [*e, *e ^ 1] {
                let f = self.hface[g as usize];
                if f != NONE && !in_ring.contains(&f) {
                    let (a, b) = (self.horigin[g as usize], self.dest_slot(g));
                    insert_between(&mut soup.faces[f as usize].c, a, b, &along(g));
                }
            }
        }
        let mut new_faces = Vec::new();
        for &(f, hin) in &quads {
            let hout = self.hnext[self.hnext[hin as usize] as usize];
            let (a, b) = (self.horigin[hin as usize], self.dest_slot(hin));
            let (c, d) = (self.horigin[hout as usize], self.dest_slot(hout));
            let x = along(hin);
            let y = along(hout);
            // x[k] pairs with y[n-1-k] (x near a, y near d).
            let mut strips: Vec<Vec<u32>> = Vec::with_capacity(n + 1);
            strips.push(vec![a, x[0], y[n - 1], d]);
            for k in 0..n - 1 {
                strips.push(vec![x[k], x[k + 1], y[n - 2 - k], y[n - 1 - k]]);
            }
            strips.push(vec![x[n - 1], b, c, y[0]]);
            let mat = self.fmat[f as usize];
            let mut it = strips.into_iter();
            if let Some(first) = it.next() {
                soup.faces[f as usize].c = first.into();
            }
            for c in it {
                let id = alloc.face();
                new_faces.push(id);
                soup.faces.push(SFace {
                    id,
                    mat,
                    c: c.into(),
                });
            }
        }
        *self = soup.build()?;
        Ok(new_faces)
    }

    /// The ring of quads across edge `h0`: (ring edges as half-edges in walk order, quads as (face,
    /// entry half-edge)). Fails if the ring crosses itself.
    fn quad_ring(&self, h0: u32) -> Result<QuadRing> {
        let is_quad = |f: u32| f != NONE && self.face_he_slots(f).len() == 4;
        let walk = |start: u32, edges: &mut Vec<u32>, quads: &mut Vec<(u32, u32)>| -> bool {
            let mut h = start;
            loop {
                let f = self.hface[h as usize];
                if !is_quad(f) {
                    return false;
                }
                let opp = self.hnext[self.hnext[h as usize] as usize];
                quads.push((f, h));
                if opp >> 1 == h0 >> 1 {
                    return true;
                }
                edges.push(opp);
                h = opp ^ 1;
                if quads.len() > self.fid.len() {
                    return true;
                }
            }
        };
        let mut fwd_edges = vec![h0];
        let mut fwd = Vec::new();
        let closed = walk(h0, &mut fwd_edges, &mut fwd);
        let (mut edges, mut quads) = (fwd_edges, fwd);
        if !closed {
            let mut back_edges = Vec::new();
            let mut back = Vec::new();
            walk(h0 ^ 1, &mut back_edges, &mut back);
            // Prepend the backward walk, reversed, so the ring reads in one direction.
            back_edges.reverse();
            back.reverse();
            back_edges.extend(edges);
            back.extend(quads);
            edges = back_edges;
            quads = back;
        }
        let mut seen: Vec<u32> = quads.iter().map(|q| q.0).collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return Err(MeshError::Unsupported(
                "the quad ring crosses itself".into(),
            ));
        }
        Ok((edges, quads))
    }
}

/// Splits soup face `f` between corners `a` and `b` (soup indices); the part from `a` to `b` keeps the
/// face, the rest becomes face `id`.
fn split_loop(
    soup: &mut Soup,
    f: u32,
    a: u32,
    b: u32,
    id: FaceId,
    va: VertexId,
    vb: VertexId,
) -> Result<()> {
    let c = &soup.faces[f as usize].c;
    let n = c.len();
    let (Some(ia), Some(ib)) = (
        c.iter().position(|&x| x == a),
        c.iter().position(|&x| x == b),
    ) else {
        return Err(MeshError::Unsupported(format!(
            "{va} and {vb} are not both corners of the face"
        )));
    };
    if ia == ib || (ia + 1) % n == ib || (ib + 1) % n == ia {
        return Err(MeshError::DegenerateFace(format!(
            "{va} and {vb} are the same or neighbouring corners"
        )));
    }
    let mut first = Vec::new();
    let mut i = ia;
    loop {
        first.push(c[i]);
        if i == ib {
            break;
        }
        i = (i + 1) % n;
    }
    let mut second = Vec::new();
    let mut i = ib;
    loop {
        second.push(c[i]);
        if i == ia {
            break;
        }
        i = (i + 1) % n;
    }
    let mat = soup.faces[f as usize].mat;
    soup.faces[f as usize].c = first.into();
    soup.faces.push(SFace {
        id,
        mat,
        c: second.into(),
    });
    Ok(())
}
