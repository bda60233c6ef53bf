//! `Soup`: an editable face list used by topology operations. Vertex `i` of a soup made from a mesh is
//! the mesh's vertex slot `i`, and face `i` its face slot `i`, so an operation can query the mesh's
//! adjacency while it edits the soup.

use crate::error::Result;
use crate::ids::{FaceId, MaterialId, VertexId};
use crate::math::Vec3;
use crate::mesh::Mesh;
use crate::polygons::Polygons;

/// A face's corners (vertex slots in loop order). Most faces are quads or triangles, which fit
/// inline: turning a mesh into a soup then allocates per mesh, not per face.
pub(crate) type Corners = smallvec::SmallVec<[u32; 4]>;

pub(crate) struct SFace {
    pub(crate) id: FaceId,
    pub(crate) mat: MaterialId,
    pub(crate) c: Corners,
}

pub(crate) struct Soup {
    pub(crate) ids: Vec<VertexId>,
    pub(crate) pos: Vec<Vec3>,
    pub(crate) faces: Vec<SFace>,
}

impl Soup {
    pub(crate) fn from_mesh(m: &Mesh) -> Soup {
        let faces = (0..m.fid.len())
            .map(|f| {
                let mut c = Corners::new();
                let start = m.fhe[f];
                let mut h = start;
                loop {
                    c.push(m.horigin[h as usize]);
                    h = m.hnext[h as usize];
                    // A valid mesh's loops close; the length check only guards the loop.
                    if h == start || c.len() > m.hnext.len() {
                        break;
                    }
                }
                SFace {
                    id: m.fid[f],
                    mat: m.fmat[f],
                    c,
                }
            })
            .collect();
        Soup {
            ids: m.vid.to_vec(),
            pos: m.vpos.to_vec(),
            faces,
        }
    }

    pub(crate) fn add_vertex(&mut self, id: VertexId, p: Vec3) -> u32 {
        self.ids.push(id);
        self.pos.push(p);
        self.ids.len() as u32 - 1
    }

    pub(crate) fn to_polygons(&self) -> Polygons {
        let nc = self.faces.iter().map(|f| f.c.len()).sum();
        let mut p = Polygons::with_capacity(self.ids.len(), self.faces.len(), nc);
        p.vertex_ids.extend_from_slice(&self.ids);
        p.positions.extend_from_slice(&self.pos);
        for f in &self.faces {
            p.add_face(f.id, f.mat, &f.c);
        }
        p
    }

    pub(crate) fn build(&self) -> Result<Mesh> {
        Mesh::from_polygons(&self.to_polygons())
    }
}

/// Inserts `x` between consecutive corners `a` and `b` of a loop; returns false if `a → b` is not an
/// edge of the loop.
pub(crate) fn insert_between(c: &mut Corners, a: u32, b: u32, xs: &[u32]) -> bool {
    let n = c.len();
    for i in 0..n {
        if c[i] == a && c[(i + 1) % n] == b {
            c.insert_many(i + 1, xs.iter().copied());
            return true;
        }
    }
    false
}
