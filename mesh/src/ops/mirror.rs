//! Mirror (one-shot and symmetric), duplicate, and merge of two meshes.

use super::soup::{SFace, Soup};
use crate::error::{MeshError, Result, invalid_param};
use crate::ids::{FaceId, IdAlloc};
use crate::math::{Plane, Vec3};
use crate::mesh::{Mesh, NONE};

fn check_plane(p: &Plane) -> Result<()> {
    if !(p.normal.is_finite() && p.offset.is_finite()) || (p.normal.length() - 1.0).abs() > 1e-3 {
        return Err(invalid_param(
            "plane",
            "normal must be unit length and finite",
        ));
    }
    Ok(())
}

impl Mesh {
    /// Adds a mirrored copy of faces (all faces if `faces` is empty) across `plane`, with reversed
    /// winding so it faces outwards. Vertices of the copied faces lying within `weld` of the plane
    /// are shared rather than copied (pass 0 to copy everything).
    ///
    /// Ids: copies of non-shared vertices in storage order, then copies of faces in storage order.
    pub fn mirror(
        &mut self,
        faces: &[FaceId],
        plane: Plane,
        weld: f32,
        alloc: &mut impl IdAlloc,
    ) -> Result<Vec<FaceId>> {
        check_plane(&plane)?;
        if !(weld.is_finite() && weld >= 0.0) {
            return Err(invalid_param("weld", "must be a finite distance ≥ 0"));
        }
        let sel = if faces.is_empty() {
            if self.fid.is_empty() {
                return Err(MeshError::EmptySelection);
            }
            (0..self.fid.len() as u32).collect()
        } else {
            self.face_slots(faces)?
        };
        let mut soup = Soup::from_mesh(self);
        let new = self.mirror_into(&mut soup, &sel, plane, weld, alloc);
        *self = soup.build()?;
        Ok(new)
    }

    fn mirror_into(
        &self,
        soup: &mut Soup,
        sel: &[u32],
        plane: Plane,
        weld: f32,
        alloc: &mut impl IdAlloc,
    ) -> Vec<FaceId> {
        let mut used = vec![false; self.vid.len()];
        for &f in sel {
            for v in self.face_vertex_slots(f) {
                used[v as usize] = true;
            }
        }
        let mut image = vec![NONE; self.vid.len()];
        for v in 0..self.vid.len() {
            if !used[v] {
                continue;
            }
            let p = soup.pos[v];
            image[v] = if weld > 0.0 && plane.signed_distance(p).abs() <= weld {
                v as u32
            } else {
                soup.add_vertex(alloc.vertex(), plane.reflect(p))
            };
        }
        let mut new = Vec::with_capacity(sel.len());
        for &f in sel {
            let c = self.face_vertex_slots(f);
            let mut m: Vec<u32> = c.iter().map(|&v| image[v as usize]).collect();
            m[1..].reverse();
            let id = alloc.face();
            new.push(id);
            soup.faces.push(SFace {
                id,
                mat: self.fmat[f as usize],
                c: m.into(),
            });
        }
        new
    }

    /// Symmetric mirror: keeps the half of the mesh on the positive side of `plane` (faces with any
    /// corner more than `seam` behind it are removed), snaps vertices within `seam` of the plane onto
    /// it, and adds the reflection of the kept half, welded to it along the seam.
    ///
    /// Ids: as [`Mesh::mirror`].
    pub fn mirror_symmetric(
        &mut self,
        plane: Plane,
        seam: f32,
        alloc: &mut impl IdAlloc,
    ) -> Result<Vec<FaceId>> {
        check_plane(&plane)?;
        if !(seam.is_finite() && seam > 0.0) {
            return Err(invalid_param("seam", "must be a finite distance > 0"));
        }
        let keep: Vec<u32> = (0..self.fid.len() as u32)
            .filter(|&f| {
                self.face_vertex_slots(f)
                    .iter()
                    .all(|&v| plane.signed_distance(self.vpos[v as usize]) >= -seam)
            })
            .collect();
        if keep.is_empty() {
            return Err(MeshError::EmptySelection);
        }
        let mut half = Soup::from_mesh(self);
        for p in &mut half.pos {
            if plane.signed_distance(*p).abs() <= seam {
                *p = plane.project(*p);
            }
        }
        let mut inkeep = vec![false; self.fid.len()];
        for &f in &keep {
            inkeep[f as usize] = true;
        }
        let mut i = 0;
        half.faces.retain(|_| {
            i += 1;
            inkeep[i - 1]
        });
        let half_mesh = half.build()?;
        let sel: Vec<u32> = (0..half_mesh.fid.len() as u32).collect();
        let mut soup = Soup::from_mesh(&half_mesh);
        let new = half_mesh.mirror_into(&mut soup, &sel, plane, seam, alloc);
        *self = soup.build()?;
        Ok(new)
    }

    /// Copies faces (with their own new vertices), moved by `offset`. Returns the new face ids in
    /// the order of the originals.
    ///
    /// Ids: copies of used vertices in storage order, then copies of faces in storage order.
    pub fn duplicate(
        &mut self,
        faces: &[FaceId],
        offset: Vec3,
        alloc: &mut impl IdAlloc,
    ) -> Result<Vec<FaceId>> {
        if !offset.is_finite() {
            return Err(invalid_param("offset", "not finite"));
        }
        let sel = self.face_slots(faces)?;
        let mut soup = Soup::from_mesh(self);
        let mut used = vec![false; self.vid.len()];
        for &f in &sel {
            for v in self.face_vertex_slots(f) {
                used[v as usize] = true;
            }
        }
        let mut copy = vec![NONE; self.vid.len()];
        for v in 0..self.vid.len() {
            if used[v] {
                copy[v] = soup.add_vertex(alloc.vertex(), self.vpos[v] + offset);
            }
        }
        let mut new = Vec::with_capacity(sel.len());
        for &f in &sel {
            let c = self
                .face_vertex_slots(f)
                .iter()
                .map(|&v| copy[v as usize])
                .collect();
            let id = alloc.face();
            new.push(id);
            soup.faces.push(SFace {
                id,
                mat: self.fmat[f as usize],
                c,
            });
        }
        *self = soup.build()?;
        Ok(new)
    }

    /// Merges another mesh into this one. Its elements get fresh ids (so ids never clash).
    ///
    /// Ids: `other`'s vertices in its storage order, then its faces likewise.
    pub fn merge(&mut self, other: &Mesh, alloc: &mut impl IdAlloc) -> Result<()> {
        if other.fid.is_empty() {
            return Err(MeshError::EmptySelection);
        }
        let mut soup = Soup::from_mesh(self);
        let base = soup.ids.len() as u32;
        for &p in other.vpos.iter() {
            soup.add_vertex(alloc.vertex(), p);
        }
        for f in 0..other.fid.len() as u32 {
            let c = other
                .face_vertex_slots(f)
                .iter()
                .map(|&v| v + base)
                .collect();
            soup.faces.push(SFace {
                id: alloc.face(),
                mat: other.fmat[f as usize],
                c,
            });
        }
        *self = soup.build()?;
        Ok(())
    }
}
