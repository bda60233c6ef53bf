//! Region extrude, individual extrude and inset.

use super::soup::{Corners, SFace, Soup};
use crate::error::{Result, invalid_param};
use crate::ids::{FaceId, IdAlloc};
use crate::math::Vec3;
use crate::mesh::{Mesh, NONE};

impl Mesh {
    /// Extrudes a region of faces by `offset`, as one connected piece: vertices inside the region
    /// move; vertices on its rim are duplicated and joined to the originals by side quads.
    ///
    /// Ids: new vertices in ascending storage order of the rim vertices they copy, then side faces in
    /// storage order of the region faces and loop order of their rim edges.
    pub fn extrude_region(
        &mut self,
        faces: &[FaceId],
        offset: Vec3,
        alloc: &mut impl IdAlloc,
    ) -> Result<Vec<FaceId>> {
        if !offset.is_finite() {
            return Err(invalid_param("offset", "not finite"));
        }
        let region = self.face_slots(faces)?;
        let mut in_region = vec![false; self.fid.len()];
        for &f in &region {
            in_region[f as usize] = true;
        }
        let mut touched = Vec::new();
        for &f in &region {
            touched.extend(self.face_vertex_slots(f));
        }
        touched.sort_unstable();
        touched.dedup();
        let mut soup = Soup::from_mesh(self);
        let mut copy = vec![NONE; self.vid.len()];
        for &v in &touched {
            let rim = self.out_slots(v).into_iter().any(|h| {
                let f = self.hface[h as usize];
                f == NONE || !in_region[f as usize]
            });
            if rim {
                let p = self.vpos[v as usize] + offset;
                copy[v as usize] = soup.add_vertex(alloc.vertex(), p);
            } else {
                soup.pos[v as usize] += offset;
            }
        }
        let mut sides = Vec::new();
        for &f in &region {
            for h in self.face_he_slots(f) {
                let t = self.hface[(h ^ 1) as usize];
                if t == NONE || !in_region[t as usize] {
                    let (a, b) = (self.horigin[h as usize], self.dest_slot(h));
                    sides.push((f, [a, b, copy[b as usize], copy[a as usize]]));
                }
            }
            for c in &mut soup.faces[f as usize].c {
                if copy[*c as usize] != NONE {
                    *c = copy[*c as usize];
                }
            }
        }
        let mut new_faces = Vec::with_capacity(sides.len());
        for (f, quad) in sides {
            let id = alloc.face();
            new_faces.push(id);
            soup.faces.push(SFace {
                id,
                mat: self.fmat[f as usize],
                c: Corners::from_slice(&quad),
            });
        }
        *self = soup.build()?;
        Ok(new_faces)
    }

    /// Extrudes each face on its own along its normal by `distance`; every face gets its own copy
    /// of its corners and a quad on each of its edges.
    ///
    /// Ids: new vertices face by face (storage order) in loop order, then side faces in the same
    /// order.
    pub fn extrude_individual(
        &mut self,
        faces: &[FaceId],
        distance: f32,
        alloc: &mut impl IdAlloc,
    ) -> Result<Vec<FaceId>> {
        if !distance.is_finite() {
            return Err(invalid_param("distance", "not finite"));
        }
        let sel = self.face_slots(faces)?;
        self.copy_faces_with_rings(&sel, alloc, |m, f, p| p + m.face_normal_slot(f) * distance)
    }

    /// Insets each face: a smaller copy of the face, `amount` of the way (0 < amount < 1) from each
    /// corner towards the centroid, ringed by quads. The inner face keeps the face's id.
    ///
    /// Ids: inner vertices face by face (storage order) in loop order, then ring faces likewise.
    pub fn inset(
        &mut self,
        faces: &[FaceId],
        amount: f32,
        alloc: &mut impl IdAlloc,
    ) -> Result<Vec<FaceId>> {
        if !(amount > 0.0 && amount < 1.0) {
            return Err(invalid_param(
                "amount",
                format!("{amount} is not strictly between 0 and 1"),
            ));
        }
        let sel = self.face_slots(faces)?;
        self.copy_faces_with_rings(&sel, alloc, |m, f, p| {
            p + (m.face_centroid_slot(f) - p) * amount
        })
    }

    /// Gives each face in `sel` its own copy of its corners (placed by `place(mesh, face, corner)`)
    /// and joins the old and new loops with a ring of quads: the shared shape of individual extrude
    /// and inset. Ids: new vertices face by face in loop order, then ring faces likewise.
    fn copy_faces_with_rings(
        &mut self,
        sel: &[u32],
        alloc: &mut impl IdAlloc,
        place: impl Fn(&Mesh, u32, Vec3) -> Vec3,
    ) -> Result<Vec<FaceId>> {
        let mut soup = Soup::from_mesh(self);
        let mut loops = Vec::with_capacity(sel.len());
        for &f in sel {
            let old = self.face_vertex_slots(f);
            let new: Vec<u32> = old
                .iter()
                .map(|&v| soup.add_vertex(alloc.vertex(), place(self, f, self.vpos[v as usize])))
                .collect();
            soup.faces[f as usize].c = Corners::from_slice(&new);
            loops.push((f, old, new));
        }
        let mut new_faces = Vec::new();
        for (f, old, new) in loops {
            let k = old.len();
            for i in 0..k {
                let j = (i + 1) % k;
                let id = alloc.face();
                new_faces.push(id);
                soup.faces.push(SFace {
                    id,
                    mat: self.fmat[f as usize],
                    c: Corners::from_slice(&[old[i], old[j], new[j], new[i]]),
                });
            }
        }
        *self = soup.build()?;
        Ok(new_faces)
    }
}
