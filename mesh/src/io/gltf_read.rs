//! glTF 2.0 import from GLB. Plain `.gltf` JSON is accepted too, but only where it needs no buffer
//! data: buffers with external or `data:` URIs are refused with a clear error.
//!
//! What is read: the triangles of every mesh the scene instances (the default scene, else the
//! first; a file without scenes contributes each mesh once, untransformed), placed by the nodes'
//! world transforms. Those triangles are merged into one mesh. Exporters write flat-shaded files
//! with every corner duplicated per face, so corners with bit-identical positions (after the
//! transform; `-0.0` counts as `0.0`) are welded back into shared vertices, and triangles that
//! collapse under welding are dropped rather than failing the import. Materials map by base colour
//! onto the palette (within one step per sRGB channel), else become a custom colour; primitives
//! without a material are white.
//!
//! Robustness: the container framing is parsed here, because the `gltf` crate's GLB parser
//! subtracts before it checks lengths. The JSON goes through `gltf`'s validation, after a pre-check
//! of the one reference its validator indexes without checking (a primitive's POSITION accessor).
//! Accessor data is then read by this module rather than by `gltf`'s reader, whose offset
//! arithmetic can overflow and whose item decoding asserts on malformed strides: every offset,
//! stride, count and index is checked with checked arithmetic against the actual bytes. Node
//! hierarchies are walked iteratively with a visited set, so a cycle is an error instead of a stack
//! overflow.
//!
//! Ids come from the allocator: welded vertices in order of first use, then faces in order.

use std::collections::BTreeMap;

use gltf::accessor::{DataType, Dimensions};
use gltf::mesh::Mode;
use gltf::{Accessor, Document, Semantic};

use super::material::{linear_to_srgb, material_from_srgb};
use super::{MAX_IMPORT_FACES, MAX_IMPORT_VERTICES};
use crate::error::{MeshError, Result};
use crate::ids::{IdAlloc, MaterialId};
use crate::math::Vec3;
use crate::mesh::Mesh;
use crate::polygons::Polygons;

type Mat4 = [[f32; 4]; 4];

const IDENTITY: Mat4 = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

fn err(msg: impl Into<String>) -> MeshError {
    MeshError::Import(format!("glTF: {}", msg.into()))
}

/// Reads a GLB file into one mesh (see the module docs). Fails with [`MeshError::Import`] naming
/// the problem: bad framing, invalid JSON or glTF, unsupported features (non-triangle primitives,
/// sparse or non-float positions, external buffers), data out of bounds, non-finite positions,
/// files over the import limits, or triangles that do not weld into an oriented 2-manifold. An
/// allocator id collision is returned as [`MeshError::IdCollision`].
pub fn read_gltf(bytes: &[u8], alloc: &mut impl IdAlloc) -> Result<Mesh> {
    let (json, bin) = split_container(bytes)?;
    let root: gltf::json::Root =
        gltf::json::deserialize::from_slice(json).map_err(|e| err(format!("invalid JSON: {e}")))?;
    precheck(&root)?;
    let doc = Document::from_json(root).map_err(describe_gltf_error)?;
    let buffers = buffer_data(&doc, bin)?;
    let tris = collect_triangles(&doc, &buffers)?;
    weld_and_build(&tris, alloc)
}

/// Splits a GLB into its JSON and BIN chunks, or passes JSON text through with no binary chunk.
fn split_container(bytes: &[u8]) -> Result<(&[u8], Option<&[u8]>)> {
    if !bytes.starts_with(b"glTF") {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            return Ok((bytes, None));
        }
        return Err(err(
            "not a glTF file (no GLB magic `glTF` and no JSON object)",
        ));
    }
    let header = |at: usize| le_u32(bytes, at);
    let (Some(version), Some(length)) = (header(4), header(8)) else {
        return Err(err(format!(
            "GLB header truncated ({} bytes, needs 12)",
            bytes.len()
        )));
    };
    if version != 2 {
        return Err(err(format!(
            "unsupported GLB version {version} (only 2 is supported)"
        )));
    }
    let length = length as usize;
    if length < 12 {
        return Err(err(format!(
            "GLB header length {length} is shorter than the header itself"
        )));
    }
    // Bytes past the declared length are not part of the file.
    let bytes = bytes.get(..length).ok_or_else(|| {
        err(format!(
            "GLB truncated: header says {length} bytes, file has {}",
            bytes.len()
        ))
    })?;
    let mut json = None;
    let mut bin = None;
    let mut at = 12;
    while at < length {
        let (Some(len), Some(ty)) = (le_u32(bytes, at), bytes.get(at + 4..at + 8)) else {
            return Err(err(format!("GLB chunk header at byte {at} truncated")));
        };
        let start = at + 8;
        let end = start
            .checked_add(len as usize)
            .filter(|&e| e <= length)
            .ok_or_else(|| {
                err(format!(
                    "GLB chunk at byte {at} claims {len} bytes but only {} remain",
                    length.saturating_sub(start)
                ))
            })?;
        let data = &bytes[start..end];
        match (ty, json.is_none()) {
            (b"JSON", true) => json = Some(data),
            (_, true) => return Err(err("GLB's first chunk is not JSON")),
            (b"BIN\0", false) if bin.is_none() => bin = Some(data),
            (b"BIN\0", false) => return Err(err("GLB has more than one BIN chunk")),
            // The spec says readers skip chunk types they do not know.
            _ => {}
        }
        at = end;
    }
    let json = json.ok_or_else(|| err("GLB has no JSON chunk"))?;
    Ok((json, bin))
}

/// The little-endian u32 at byte `at`, if the data is long enough.
fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Checks what `gltf`'s validator would otherwise index without a bounds check.
fn precheck(root: &gltf::json::Root) -> Result<()> {
    let key = gltf::json::validation::Checked::Valid(gltf::json::mesh::Semantic::Positions);
    for (m, mesh) in root.meshes.iter().enumerate() {
        for (p, prim) in mesh.primitives.iter().enumerate() {
            if let Some(i) = prim.attributes.get(&key)
                && i.value() >= root.accessors.len()
            {
                return Err(err(format!(
                    "mesh {m} primitive {p}: POSITION accessor {} does not exist ({} accessors)",
                    i.value(),
                    root.accessors.len()
                )));
            }
        }
    }
    Ok(())
}

/// Names the first few validation problems (a hostile file can have millions).
fn describe_gltf_error(e: gltf::Error) -> MeshError {
    match e {
        gltf::Error::Validation(errors) => {
            let shown: Vec<String> = errors
                .iter()
                .take(5)
                .map(|(path, e)| format!("{path}: {e}"))
                .collect();
            let more = errors.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            };
            err(format!("invalid glTF: {}{tail}", shown.join("; ")))
        }
        other => err(format!("invalid glTF: {other}")),
    }
}

/// The bytes of each buffer: the BIN chunk for the buffer without a URI, `None` for external ones
/// (an error only if some accessor actually reads them).
fn buffer_data<'b>(doc: &Document, bin: Option<&'b [u8]>) -> Result<Vec<Option<&'b [u8]>>> {
    let mut out = Vec::new();
    for b in doc.buffers() {
        match b.source() {
            gltf::buffer::Source::Bin => {
                let data = bin.ok_or_else(|| {
                    err(format!(
                        "buffer {} refers to the GLB BIN chunk, but there is none",
                        b.index()
                    ))
                })?;
                let data = data.get(..b.length()).ok_or_else(|| {
                    err(format!(
                        "buffer {} declares {} bytes but the BIN chunk has {}",
                        b.index(),
                        b.length(),
                        data.len()
                    ))
                })?;
                out.push(Some(data));
            }
            gltf::buffer::Source::Uri(_) => out.push(None),
        }
    }
    Ok(out)
}

/// One triangle to import: positions after the node transform, and its material.
struct Tri {
    p: [Vec3; 3],
    material: MaterialId,
}

/// A primitive's data as read from the buffers (before any node transform).
struct Prim {
    positions: Vec<Vec3>,
    /// Triangle corner indices, already checked against `positions`.
    indices: Vec<u32>,
    material: MaterialId,
}

fn collect_triangles(doc: &Document, buffers: &[Option<&[u8]>]) -> Result<Vec<Tri>> {
    // Which meshes to place, and where: (mesh index, world transform), in scene order.
    let mut instances: Vec<(usize, Mat4, usize)> = Vec::new();
    match doc.default_scene().or_else(|| doc.scenes().next()) {
        None => instances.extend(doc.meshes().map(|m| (m.index(), IDENTITY, usize::MAX))),
        Some(scene) => {
            let mut visited = vec![false; doc.nodes().len()];
            let mut stack: Vec<(gltf::Node<'_>, Mat4)> =
                scene.nodes().map(|n| (n, IDENTITY)).collect();
            // Depth-first, children in order: reverse so the first root is handled first.
            stack.reverse();
            while let Some((node, parent)) = stack.pop() {
                let seen = visited
                    .get_mut(node.index())
                    .ok_or_else(|| err("node out of range"))?;
                if std::mem::replace(seen, true) {
                    return Err(err(format!(
                        "node {} is reached twice (the node hierarchy must be a tree)",
                        node.index()
                    )));
                }
                let world = mat_mul(&parent, &node.transform().matrix());
                if let Some(mesh) = node.mesh() {
                    instances.push((mesh.index(), world, node.index()));
                }
                let first_child = stack.len();
                stack.extend(node.children().map(|c| (c, world)));
                stack[first_child..].reverse();
            }
        }
    }

    let meshes: Vec<gltf::Mesh<'_>> = doc.meshes().collect();
    let mut cache: Vec<Option<Vec<Prim>>> = (0..meshes.len()).map(|_| None).collect();
    let mut tris = Vec::new();
    for (mi, world, node) in instances {
        let (Some(slot), Some(mesh)) = (cache.get_mut(mi), meshes.get(mi)) else {
            return Err(err(format!("mesh {mi} out of range")));
        };
        if slot.is_none() {
            *slot = Some(read_mesh(mesh, buffers)?);
        }
        let prims = slot.as_deref().unwrap_or_default();
        let flip = det3(&world) < 0.0;
        for prim in prims {
            let n = prim.indices.len() / 3;
            if tris.len() + n > MAX_IMPORT_FACES {
                return Err(err(format!(
                    "more than {MAX_IMPORT_FACES} triangles (import limit)"
                )));
            }
            let place = |i: u32| -> Result<Vec3> {
                let p = prim.positions.get(i as usize).copied().unwrap_or_default();
                if world == IDENTITY {
                    return Ok(p);
                }
                let q = transform_point(&world, p);
                if q.is_finite() {
                    Ok(q)
                } else {
                    Err(err(format!(
                        "node {node}'s transform moves a vertex out of finite range"
                    )))
                }
            };
            for t in prim.indices.chunks_exact(3) {
                let (a, b, c) = (place(t[0])?, place(t[1])?, place(t[2])?);
                // A mirroring transform turns the winding inside out; swap two corners to undo it.
                let p = if flip { [a, c, b] } else { [a, b, c] };
                tris.push(Tri {
                    p,
                    material: prim.material,
                });
            }
        }
    }
    Ok(tris)
}

/// Reads every primitive of a mesh.
fn read_mesh(mesh: &gltf::Mesh<'_>, buffers: &[Option<&[u8]>]) -> Result<Vec<Prim>> {
    let mut out = Vec::new();
    for prim in mesh.primitives() {
        let at = format!("mesh {} primitive {}", mesh.index(), prim.index());
        if prim.mode() != Mode::Triangles {
            return Err(err(format!(
                "{at}: mode {:?} is not supported (only triangles)",
                prim.mode()
            )));
        }
        let pos = prim
            .get(&Semantic::Positions)
            .ok_or_else(|| err(format!("{at} has no POSITION attribute")))?;
        if pos.data_type() != DataType::F32 || pos.dimensions() != Dimensions::Vec3 {
            return Err(err(format!(
                "{at}: POSITION accessor {} is {:?} {:?}, expected float VEC3",
                pos.index(),
                pos.data_type(),
                pos.dimensions()
            )));
        }
        let (data, stride, count) = accessor_bytes(&pos, buffers)?;
        let mut positions = Vec::with_capacity(count);
        for k in 0..count {
            let f = |c: usize| read_f32(data, k * stride + 4 * c);
            let p = Vec3::new(f(0), f(1), f(2));
            if !p.is_finite() {
                return Err(err(format!(
                    "{at}: POSITION accessor {} element {k} is not finite",
                    pos.index()
                )));
            }
            positions.push(p);
        }
        let indices: Vec<u32> = match prim.indices() {
            None => (0..count as u32).collect(),
            Some(acc) => {
                if acc.dimensions() != Dimensions::Scalar {
                    return Err(err(format!(
                        "{at}: index accessor {} is {:?}, expected SCALAR",
                        acc.index(),
                        acc.dimensions()
                    )));
                }
                let size = match acc.data_type() {
                    DataType::U8 => 1,
                    DataType::U16 => 2,
                    DataType::U32 => 4,
                    other => {
                        return Err(err(format!(
                            "{at}: index accessor {} has component type {other:?}, \
                             expected an unsigned integer",
                            acc.index()
                        )));
                    }
                };
                let (data, stride, n) = accessor_bytes(&acc, buffers)?;
                (0..n).map(|k| read_uint(data, k * stride, size)).collect()
            }
        };
        if !indices.len().is_multiple_of(3) {
            return Err(err(format!(
                "{at}: {} indices is not a whole number of triangles",
                indices.len()
            )));
        }
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= positions.len()) {
            return Err(err(format!(
                "{at}: index {bad} is out of range ({} vertices)",
                positions.len()
            )));
        }
        let material = match prim.material().index() {
            None => MaterialId(0),
            Some(_) => {
                let [r, g, b, _] = prim.material().pbr_metallic_roughness().base_color_factor();
                material_from_srgb([linear_to_srgb(r), linear_to_srgb(g), linear_to_srgb(b)])
            }
        };
        out.push(Prim {
            positions,
            indices,
            material,
        });
    }
    Ok(out)
}

/// The bytes an accessor covers, its element stride and its element count, after checking that
/// every element lies inside its buffer view and the view inside its buffer.
fn accessor_bytes<'b>(
    acc: &Accessor<'_>,
    buffers: &[Option<&'b [u8]>],
) -> Result<(&'b [u8], usize, usize)> {
    let name = format!("accessor {}", acc.index());
    if acc.sparse().is_some() {
        return Err(err(format!("{name} is sparse, which is not supported")));
    }
    let view = acc
        .view()
        .ok_or_else(|| err(format!("{name} has no buffer view")))?;
    let buffer = view.buffer();
    let data = buffers
        .get(buffer.index())
        .copied()
        .flatten()
        .ok_or_else(|| {
            err(format!(
                "{name} reads buffer {}, which uses an external or data: URI \
             (only GLB-embedded data is supported)",
                buffer.index()
            ))
        })?;
    let view_end = view.offset().checked_add(view.length());
    let view_bytes = view_end
        .and_then(|e| data.get(view.offset()..e))
        .ok_or_else(|| {
            err(format!(
                "buffer view {} (offset {}, length {}) runs past the end of buffer {} ({} bytes)",
                view.index(),
                view.offset(),
                view.length(),
                buffer.index(),
                data.len()
            ))
        })?;
    let count = acc.count();
    if count == 0 {
        return Ok((&[], 0, 0));
    }
    let elem = acc.size();
    let stride = view.stride().unwrap_or(elem);
    if stride < elem {
        return Err(err(format!(
            "buffer view {} stride {stride} is smaller than {name}'s element size {elem}",
            view.index()
        )));
    }
    let end = (count - 1)
        .checked_mul(stride)
        .and_then(|x| x.checked_add(elem))
        .and_then(|x| x.checked_add(acc.offset()));
    let bytes = end
        .and_then(|e| view_bytes.get(acc.offset()..e))
        .ok_or_else(|| {
            err(format!(
                "{name} ({count} elements at offset {}, stride {stride}) runs past the end of \
             buffer view {} ({} bytes)",
                acc.offset(),
                view.index(),
                view_bytes.len()
            ))
        })?;
    Ok((bytes, stride, count))
}

/// A little-endian f32 at `at`. The caller has checked the range; out of range reads NaN, which the
/// finiteness check then rejects, so no path panics.
fn read_f32(data: &[u8], at: usize) -> f32 {
    match at.checked_add(4).and_then(|e| data.get(at..e)) {
        Some(b) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => f32::NAN,
    }
}

/// A little-endian unsigned integer of `size` bytes at `at`. Out of range reads `u32::MAX`, which
/// the index range check then rejects.
fn read_uint(data: &[u8], at: usize, size: usize) -> u32 {
    match at.checked_add(size).and_then(|e| data.get(at..e)) {
        Some([a]) => u32::from(*a),
        Some([a, b]) => u32::from(u16::from_le_bytes([*a, *b])),
        Some([a, b, c, d]) => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => u32::MAX,
    }
}

/// `a * b` for column-major matrices (`m[column][row]`), each sum in a fixed order.
fn mat_mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut c = [[0.0f32; 4]; 4];
    for (j, col) in c.iter_mut().enumerate() {
        for (i, out) in col.iter_mut().enumerate() {
            *out = a[0][i] * b[j][0] + a[1][i] * b[j][1] + a[2][i] * b[j][2] + a[3][i] * b[j][3];
        }
    }
    c
}

/// The point `p` transformed by `m` (affine part; glTF node matrices have no projection).
fn transform_point(m: &Mat4, p: Vec3) -> Vec3 {
    let row = |i: usize| m[0][i] * p.x + m[1][i] * p.y + m[2][i] * p.z + m[3][i];
    Vec3::new(row(0), row(1), row(2))
}

/// Determinant of the upper-left 3×3 (negative for a mirroring transform).
fn det3(m: &Mat4) -> f32 {
    m[0][0] * (m[1][1] * m[2][2] - m[2][1] * m[1][2])
        - m[1][0] * (m[0][1] * m[2][2] - m[2][1] * m[0][2])
        + m[2][0] * (m[0][1] * m[1][2] - m[1][1] * m[0][2])
}

/// Weld key: the position's bits, with `-0.0` folded into `0.0` so a signed zero does not split a
/// vertex.
fn key(p: Vec3) -> [u32; 3] {
    let bits = |x: f32| if x == 0.0 { 0 } else { x.to_bits() };
    [bits(p.x), bits(p.y), bits(p.z)]
}

fn weld_and_build(tris: &[Tri], alloc: &mut impl IdAlloc) -> Result<Mesh> {
    let mut index: BTreeMap<[u32; 3], u32> = BTreeMap::new();
    let mut positions: Vec<Vec3> = Vec::new();
    let mut faces: Vec<([u32; 3], MaterialId)> = Vec::with_capacity(tris.len());
    for t in tris {
        let k = t.p.map(key);
        if k[0] == k[1] || k[1] == k[2] || k[0] == k[2] {
            // Collapsed by welding (or degenerate to begin with): it has no area and no place in
            // a manifold, so it is dropped.
            continue;
        }
        let mut corner = [0u32; 3];
        for c in 0..3 {
            let next = positions.len() as u32;
            let i = *index.entry(k[c]).or_insert(next);
            if i == next {
                if positions.len() >= MAX_IMPORT_VERTICES {
                    return Err(err(format!(
                        "more than {MAX_IMPORT_VERTICES} vertices after welding (import limit)"
                    )));
                }
                let p = t.p[c];
                // `-0.0 + 0.0` is `+0.0`, so the stored position agrees with its weld key.
                positions.push(Vec3::new(p.x + 0.0, p.y + 0.0, p.z + 0.0));
            }
            corner[c] = i;
        }
        faces.push((corner, t.material));
    }
    let mut poly = Polygons::with_capacity(positions.len(), faces.len(), faces.len() * 3);
    for &p in &positions {
        poly.add_vertex(alloc.vertex(), p);
    }
    for (corners, m) in &faces {
        poly.add_face(alloc.face(), *m, corners);
    }
    Mesh::from_polygons(&poly).map_err(|e| match e {
        MeshError::IdCollision(_) => e,
        other => err(format!(
            "triangles do not form an oriented 2-manifold mesh after welding: {other}"
        )),
    })
}
