//! A tiny text format for meshes, used by snapshot tests and bug reports.
//!
//! ```text
//! v <id> <x> <y> <z>
//! f <id> m<material> <vertex id> <vertex id> <vertex id> ...
//! ```
//! Lines starting with `#` and blank lines are ignored. Floats print in Rust's shortest round-trip
//! form, so `from_text(to_text(m))` reproduces positions bit for bit.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::error::{MeshError, Result};
use crate::ids::{FaceId, MaterialId, VertexId};
use crate::math::Vec3;
use crate::mesh::Mesh;
use crate::polygons::Polygons;

/// Writes a mesh in the text format: vertices then faces, in storage order.
pub fn to_text(m: &Mesh) -> String {
    let p = m.to_polygons();
    let mut s = String::new();
    for (id, pos) in p.vertex_ids.iter().zip(&p.positions) {
        let _ = writeln!(s, "v {} {:?} {:?} {:?}", id.0, pos.x, pos.y, pos.z);
    }
    for f in 0..p.face_count() {
        let _ = write!(s, "f {} m{}", p.face_ids[f].0, p.materials[f].0);
        for &c in p.face(f) {
            let _ = write!(s, " {}", p.vertex_ids[c as usize].0);
        }
        s.push('\n');
    }
    s
}

/// Reads the text format and builds the mesh (with all of the builder's checks).
pub fn from_text(text: &str) -> Result<Mesh> {
    let mut p = Polygons::new();
    let mut index: BTreeMap<u64, u32> = BTreeMap::new();
    let err = |line: usize, what: &str| MeshError::Import(format!("line {}: {what}", line + 1));
    let mut corners = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let kind = it.next().unwrap_or_default();
        let id: u64 = it
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| err(ln, "expected an id"))?;
        match kind {
            "v" => {
                let mut c = [0f32; 3];
                for x in &mut c {
                    *x = it
                        .next()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| err(ln, "expected three coordinates"))?;
                }
                if index.insert(id, p.vertex_count() as u32).is_some() {
                    return Err(err(ln, "vertex id repeated"));
                }
                p.add_vertex(VertexId(id), Vec3::from_array(c));
            }
            "f" => {
                let mat = it
                    .next()
                    .and_then(|t| t.strip_prefix('m'))
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| err(ln, "expected a material m<N>"))?;
                corners.clear();
                for t in it {
                    let v: u64 = t.parse().map_err(|_| err(ln, "bad vertex id"))?;
                    corners.push(*index.get(&v).ok_or_else(|| err(ln, "unknown vertex id"))?);
                }
                p.add_face(FaceId(id), MaterialId(mat), &corners);
            }
            _ => return Err(err(ln, "expected `v` or `f`")),
        }
    }
    Mesh::from_polygons(&p)
}
