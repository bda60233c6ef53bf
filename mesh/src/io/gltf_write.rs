//! GLB (binary glTF 2.0) export.
//!
//! Layout: one node per object (named, with the object's translation), one glTF mesh per non-empty
//! object, one primitive per material the object uses, one glTF material per material used
//! anywhere. Geometry is flat-shaded from [`Mesh::triangulate`](crate::Mesh::triangulate): each
//! face keeps its own corners carrying the face normal, which is how a low-poly model is meant to
//! look in any viewer. Every accessor gets its own tightly packed buffer view, so no view needs a
//! byte stride and every offset stays 4-aligned.
//!
//! The JSON is built as a `serde_json::Value`, whose maps are sorted, so the bytes do not depend on
//! construction order; floats are written from their exact `f64` widening, so a reader gets back
//! the same `f32` bits (accessor `min`/`max` must match the data exactly).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::material::{ExportMaterial, export_material, srgb_to_linear};
use super::{ExportObject, ExportOptions, check_objects};
use crate::error::{MeshError, Result};
use crate::ids::MaterialId;
use crate::palette::MaterialKind;
use crate::triangulate::Triangles;

const ARRAY_BUFFER: u32 = 34962;
const ELEMENT_ARRAY_BUFFER: u32 = 34963;
const FLOAT: u32 = 5126;
const UNSIGNED_INT: u32 = 5125;
const GLB_MAGIC: &[u8; 4] = b"glTF";
const CHUNK_JSON: &[u8; 4] = b"JSON";
const CHUNK_BIN: &[u8; 4] = b"BIN\0";

/// Writes the objects as one GLB file (see the module docs for the layout). Fails with
/// [`MeshError::Export`] on a non-finite translation or a file that would not fit GLB's 32-bit
/// sizes.
pub fn write_glb(objects: &[ExportObject<'_>], opts: &ExportOptions) -> Result<Vec<u8>> {
    check_objects(objects)?;
    let used: BTreeSet<MaterialId> = objects
        .iter()
        .flat_map(|o| o.mesh.fmat.iter().copied())
        .collect();
    let materials: Vec<MaterialId> = used.into_iter().collect();

    let mut w = Writer::default();
    let mut nodes = Vec::with_capacity(objects.len());
    let mut meshes = Vec::new();
    for o in objects {
        let mut node = Map::new();
        node.insert("name".into(), json!(o.name));
        if o.translation != crate::math::Vec3::ZERO {
            node.insert("translation".into(), floats(&o.translation.to_array()));
        }
        if !o.mesh.is_empty() {
            let primitives = w.object_primitives(o, &materials)?;
            node.insert("mesh".into(), json!(meshes.len()));
            meshes.push(json!({ "name": o.name, "primitives": primitives }));
        }
        nodes.push(Value::Object(node));
    }

    let mut asset = Map::new();
    asset.insert("version".into(), json!("2.0"));
    asset.insert("generator".into(), json!("Theta"));
    if !opts.metadata.is_empty() {
        asset.insert("extras".into(), json!(opts.metadata));
    }
    let mut root = Map::new();
    root.insert("asset".into(), Value::Object(asset));
    if !nodes.is_empty() {
        // A scene needs at least one node (and the `gltf` crate rejects one without), so an
        // export of no objects has no scene at all.
        root.insert("scene".into(), json!(0));
        root.insert(
            "scenes".into(),
            json!([{ "nodes": (0..nodes.len()).collect::<Vec<_>>() }]),
        );
    }
    // glTF forbids empty top-level arrays, so each is written only when it has entries.
    let mut put = |key: &str, items: Vec<Value>| {
        if !items.is_empty() {
            root.insert(key.into(), Value::Array(items));
        }
    };
    put("nodes", nodes);
    put("meshes", meshes);
    put(
        "materials",
        materials
            .iter()
            .map(|&m| material_json(&export_material(m)))
            .collect(),
    );
    put("accessors", std::mem::take(&mut w.accessors));
    put("bufferViews", std::mem::take(&mut w.views));
    if !w.bin.is_empty() {
        put("buffers", vec![json!({ "byteLength": w.bin.len() })]);
    }

    let json = serde_json::to_vec(&Value::Object(root))
        .map_err(|e| MeshError::Export(format!("cannot serialise glTF JSON: {e}")))?;
    frame_glb(json, w.bin)
}

/// Wraps the JSON and binary chunks in the GLB container: a 12-byte header, then each chunk as
/// length, type and payload padded to 4 bytes (JSON with spaces, binary with zeros, as the spec
/// requires).
fn frame_glb(mut json: Vec<u8>, mut bin: Vec<u8>) -> Result<Vec<u8>> {
    pad_to_4(&mut json, b' ');
    pad_to_4(&mut bin, 0);
    let total = 12 + 8 + json.len() + if bin.is_empty() { 0 } else { 8 + bin.len() };
    let too_big = || MeshError::Export(format!("GLB would be {total} bytes, over the 4 GiB limit"));
    let total32 = u32::try_from(total).map_err(|_| too_big())?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(GLB_MAGIC);
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&total32.to_le_bytes());
    // Both chunk lengths are below `total`, which fits in u32.
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(CHUNK_JSON);
    out.extend_from_slice(&json);
    if !bin.is_empty() {
        out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        out.extend_from_slice(CHUNK_BIN);
        out.extend_from_slice(&bin);
    }
    Ok(out)
}

fn pad_to_4(v: &mut Vec<u8>, fill: u8) {
    while !v.len().is_multiple_of(4) {
        v.push(fill);
    }
}

/// A JSON array of floats, each widened exactly to `f64`.
fn floats(v: &[f32]) -> Value {
    Value::Array(v.iter().map(|&x| json!(f64::from(x))).collect())
}

fn material_json(m: &ExportMaterial) -> Value {
    let [r, g, b, a] = m.rgba;
    let color = floats(&[
        srgb_to_linear(r),
        srgb_to_linear(g),
        srgb_to_linear(b),
        f32::from(a) / 255.0,
    ]);
    // Matte is the low-poly look: rough, non-metallic. Glass blends by its alpha; gem is a glossy,
    // slightly metallic opaque surface so its facets catch highlights.
    let (metallic, roughness) = match m.kind {
        MaterialKind::Matte => (0.0, 0.9),
        MaterialKind::Glass => (0.0, 0.05),
        MaterialKind::Gem => (0.3, 0.08),
    };
    let mut out = Map::new();
    out.insert("name".into(), json!(m.name));
    out.insert(
        "pbrMetallicRoughness".into(),
        json!({
            "baseColorFactor": color,
            "metallicFactor": f64::from(metallic as f32),
            "roughnessFactor": f64::from(roughness as f32),
        }),
    );
    if m.kind == MaterialKind::Glass {
        out.insert("alphaMode".into(), json!("BLEND"));
        // Both sides of a transparent shell are visible through it.
        out.insert("doubleSided".into(), json!(true));
    }
    Value::Object(out)
}

/// Accumulates the binary chunk and the accessors and buffer views describing it.
#[derive(Default)]
struct Writer {
    bin: Vec<u8>,
    views: Vec<Value>,
    accessors: Vec<Value>,
}

impl Writer {
    /// Appends one tightly packed buffer view and returns its index.
    fn view(&mut self, bytes: &[u8], target: u32) -> Result<usize> {
        pad_to_4(&mut self.bin, 0);
        let offset = self.bin.len();
        let end = offset
            .checked_add(bytes.len())
            .filter(|&e| e <= u32::MAX as usize);
        if end.is_none() {
            return Err(MeshError::Export(
                "geometry exceeds GLB's 4 GiB buffer limit".into(),
            ));
        }
        self.bin.extend_from_slice(bytes);
        self.views.push(json!({
            "buffer": 0,
            "byteOffset": offset,
            "byteLength": bytes.len(),
            "target": target,
        }));
        Ok(self.views.len() - 1)
    }

    fn vec3_accessor(&mut self, data: &[[f32; 3]], with_bounds: bool) -> Result<usize> {
        let bytes: Vec<u8> = data
            .iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let view = self.view(&bytes, ARRAY_BUFFER)?;
        let mut acc = Map::new();
        acc.insert("bufferView".into(), json!(view));
        acc.insert("componentType".into(), json!(FLOAT));
        acc.insert("count".into(), json!(data.len()));
        acc.insert("type".into(), json!("VEC3"));
        if with_bounds {
            let mut min = [f32::INFINITY; 3];
            let mut max = [f32::NEG_INFINITY; 3];
            for p in data {
                for c in 0..3 {
                    min[c] = min[c].min(p[c]);
                    max[c] = max[c].max(p[c]);
                }
            }
            acc.insert("min".into(), floats(&min));
            acc.insert("max".into(), floats(&max));
        }
        self.accessors.push(Value::Object(acc));
        Ok(self.accessors.len() - 1)
    }

    fn index_accessor(&mut self, data: &[u32]) -> Result<usize> {
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let view = self.view(&bytes, ELEMENT_ARRAY_BUFFER)?;
        self.accessors.push(json!({
            "bufferView": view,
            "componentType": UNSIGNED_INT,
            "count": data.len(),
            "type": "SCALAR",
        }));
        Ok(self.accessors.len() - 1)
    }

    /// Writes an object's geometry, one primitive per material in material-id order, and returns
    /// the primitives' JSON.
    fn object_primitives(
        &mut self,
        o: &ExportObject<'_>,
        materials: &[MaterialId],
    ) -> Result<Vec<Value>> {
        let t = o.mesh.triangulate();
        let fmat = &o.mesh.fmat;
        let nf = fmat.len();
        // Triangles come out grouped by face in face order, so each face owns a contiguous run.
        let mut tri_start = vec![0usize; nf + 1];
        for &f in &t.triangle_face {
            if let Some(s) = tri_start.get_mut(f as usize + 1) {
                *s += 1;
            }
        }
        for f in 0..nf {
            tri_start[f + 1] += tri_start[f];
        }
        let used: BTreeSet<MaterialId> = fmat.iter().copied().collect();
        let mut prims = Vec::with_capacity(used.len());
        for m in used {
            let faces = (0..nf).filter(|&f| fmat[f] == m);
            let g = gather(&t, faces, &tri_start);
            let pos = self.vec3_accessor(&g.positions, true)?;
            let nrm = self.vec3_accessor(&g.normals, false)?;
            let idx = self.index_accessor(&g.indices)?;
            // `materials` holds every id used by any object, so the search always succeeds.
            let mat = materials.binary_search(&m).unwrap_or(0);
            prims.push(json!({
                "attributes": { "POSITION": pos, "NORMAL": nrm },
                "indices": idx,
                "material": mat,
                "mode": 4,
            }));
        }
        Ok(prims)
    }
}

/// One primitive's vertex and index data.
struct Gathered {
    positions: Vec<[f32; 3]>,
    normals: Vec<[f32; 3]>,
    indices: Vec<u32>,
}

/// Copies the corners and triangles of the given faces out of the flat-shaded triangle list,
/// renumbering indices to the primitive's own corner list.
fn gather(t: &Triangles, faces: impl Iterator<Item = usize>, tri_start: &[usize]) -> Gathered {
    let mut g = Gathered {
        positions: Vec::new(),
        normals: Vec::new(),
        indices: Vec::new(),
    };
    for f in faces {
        let first = t.face_first_corner[f] as usize;
        let end = t
            .face_first_corner
            .get(f + 1)
            .map_or(t.positions.len(), |&c| c as usize);
        let base = g.positions.len() as u32;
        g.positions.extend_from_slice(&t.positions[first..end]);
        g.normals.extend(t.normals[first..end].iter().map(|&n| {
            // A face with no area has normal zero, which glTF forbids (normals must be unit
            // length); such a face is invisible, so any unit vector will do.
            if n == [0.0; 3] { [0.0, 1.0, 0.0] } else { n }
        }));
        for &i in &t.indices[tri_start[f] * 3..tri_start[f + 1] * 3] {
            g.indices.push(i - first as u32 + base);
        }
    }
    g
}
