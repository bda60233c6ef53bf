//! Wavefront OBJ import.
//!
//! Reads `v` positions and `f` polygons (`v`, `v/vt`, `v//vn` and `v/vt/vn` corners, positive and
//! negative indices) and maps `usemtl` names onto materials. Everything else that OBJ can hold
//! (texture coordinates, normals, groups, smoothing, lines, free-form geometry, `mtllib`) has no
//! place in a Theta mesh and is skipped. A line ending in `\` continues on the next one.
//!
//! Material names: an exported name ([`material_name`](super::material_name): a palette name such
//! as `red`, `custom_rrggbb`, `material_<id>`) maps back to its material. Any other name gets a
//! palette colour by first appearance (the first unknown name white, the next light grey, ...
//! cycling through the 24 matte colours), so a foreign model keeps its parts distinguishable. Faces
//! before any `usemtl` are white.
//!
//! The face list goes through [`Mesh::from_polygons`], so a file that is not an oriented 2-manifold
//! is rejected rather than half-imported. Ids come from the allocator: the vertices that faces use,
//! in file order, then the faces in file order.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::material::material_by_name;
use super::{MAX_IMPORT_CORNERS, MAX_IMPORT_FACES, MAX_IMPORT_VERTICES};
use crate::error::{MeshError, Result};
use crate::ids::{IdAlloc, MaterialId};
use crate::math::Vec3;
use crate::mesh::Mesh;
use crate::polygons::Polygons;

/// Number of matte palette colours that unknown material names cycle through.
const MATTE_COLOURS: u32 = 24;

/// Parses OBJ text into a mesh (see the module docs). Fails with [`MeshError::Import`] naming the
/// line and the problem: invalid UTF-8, a non-numeric or non-finite coordinate, a vertex index that
/// is 0 or out of range, a face with fewer than 3 corners or a repeated vertex, a file over the
/// import limits, or faces that do not form an oriented 2-manifold. An allocator id collision is
/// returned as [`MeshError::IdCollision`].
pub fn read_obj(bytes: &[u8], alloc: &mut impl IdAlloc) -> Result<Mesh> {
    let parsed = parse(bytes)?;
    build(&parsed, alloc)
}

/// The file's content before ids are assigned.
#[derive(Default)]
struct Parsed {
    positions: Vec<Vec3>,
    materials: Vec<MaterialId>,
    face_start: Vec<u32>,
    /// 0-based vertex indices, already resolved and range-checked.
    corners: Vec<u32>,
    /// Line of each face, for messages about a face that the builder rejects.
    face_line: Vec<usize>,
}

fn err(line: usize, msg: impl std::fmt::Display) -> MeshError {
    MeshError::Import(format!("OBJ line {line}: {msg}"))
}

fn parse(bytes: &[u8]) -> Result<Parsed> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut p = Parsed {
        face_start: vec![0],
        ..Parsed::default()
    };
    let mut material = MaterialId(0);
    let mut unknown: BTreeMap<String, MaterialId> = BTreeMap::new();
    let mut face: Vec<u32> = Vec::new();
    // A logical line being joined from `\`-continued physical lines, and where it started.
    let mut pending: Option<(usize, String)> = None;

    let mut physical = bytes.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((i, raw)) = physical.next() {
        let lineno = i + 1;
        let text = std::str::from_utf8(raw).map_err(|e| {
            err(
                lineno,
                format_args!(
                    "not valid UTF-8 (bad byte at column {})",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        let continued = text.trim_end().strip_suffix('\\');
        if let (Some(head), true) = (continued, physical.peek().is_some()) {
            let entry = pending.get_or_insert_with(|| (lineno, String::new()));
            entry.1.push_str(head);
            entry.1.push(' ');
            continue;
        }
        // A backslash on the last line has nothing to continue onto and is dropped.
        let piece = continued.unwrap_or(text);
        let (start, logical) = match pending.take() {
            Some((s, mut joined)) => {
                joined.push_str(piece);
                (s, Cow::Owned(joined))
            }
            None => (lineno, Cow::Borrowed(piece)),
        };
        statement(
            &mut p,
            start,
            &logical,
            &mut material,
            &mut unknown,
            &mut face,
        )?;
    }
    Ok(p)
}

/// Handles one logical line.
fn statement(
    p: &mut Parsed,
    line: usize,
    text: &str,
    material: &mut MaterialId,
    unknown: &mut BTreeMap<String, MaterialId>,
    face: &mut Vec<u32>,
) -> Result<()> {
    // A `#` token starts a comment that runs to the end of the line.
    let mut tokens = text
        .split_ascii_whitespace()
        .take_while(|t| !t.starts_with('#'));
    let Some(keyword) = tokens.next() else {
        return Ok(());
    };
    match keyword {
        "v" => {
            if p.positions.len() >= MAX_IMPORT_VERTICES {
                return Err(err(
                    line,
                    format_args!("more than {MAX_IMPORT_VERTICES} vertices (import limit)"),
                ));
            }
            let mut xyz = [0.0f32; 3];
            for (k, c) in xyz.iter_mut().enumerate() {
                let t = tokens.next().ok_or_else(|| {
                    err(line, format_args!("vertex has {k} coordinates, needs 3"))
                })?;
                let v: f32 = t.parse().map_err(|_| {
                    err(
                        line,
                        format_args!("vertex coordinate `{t}` is not a number"),
                    )
                })?;
                if !v.is_finite() {
                    return Err(err(
                        line,
                        format_args!("vertex coordinate `{t}` is not finite"),
                    ));
                }
                *c = v;
            }
            // Extra values (w, or the vertex colours some tools append) are not part of a Theta
            // mesh.
            p.positions.push(Vec3::from_array(xyz));
        }
        "f" => {
            if p.materials.len() >= MAX_IMPORT_FACES {
                return Err(err(
                    line,
                    format_args!("more than {MAX_IMPORT_FACES} faces (import limit)"),
                ));
            }
            face.clear();
            for t in tokens {
                face.push(corner(line, t, p.positions.len())?);
            }
            if face.len() < 3 {
                return Err(err(
                    line,
                    format_args!("face has {} corners, needs at least 3", face.len()),
                ));
            }
            if let Some(v) = repeated(face) {
                return Err(err(line, format_args!("face uses vertex {} twice", v + 1)));
            }
            if p.corners.len() + face.len() > MAX_IMPORT_CORNERS {
                return Err(err(
                    line,
                    format_args!("more than {MAX_IMPORT_CORNERS} face corners (import limit)"),
                ));
            }
            p.corners.extend_from_slice(face);
            p.face_start.push(p.corners.len() as u32);
            p.materials.push(*material);
            p.face_line.push(line);
        }
        "usemtl" => {
            // Names may contain spaces; the rest of the line is the name.
            let name = tokens.collect::<Vec<_>>().join(" ");
            *material = match material_by_name(&name) {
                Some(m) => m,
                None => {
                    let next = MaterialId(unknown.len() as u32 % MATTE_COLOURS);
                    *unknown.entry(name).or_insert(next)
                }
            };
        }
        // Texture coordinates, normals, parameter-space vertices, names, groups, smoothing, the
        // material library, lines, points and free-form geometry carry nothing a Theta mesh holds.
        _ => {}
    }
    Ok(())
}

/// Resolves one face corner (`v`, `v/vt`, `v//vn` or `v/vt/vn`) to a 0-based vertex index, given
/// how many vertices the file has defined so far.
fn corner(line: usize, token: &str, defined: usize) -> Result<u32> {
    let mut parts = token.split('/');
    let v = parts.next().unwrap_or("");
    if parts.clone().count() > 2 {
        return Err(err(
            line,
            format_args!("face corner `{token}` has more than 3 parts"),
        ));
    }
    let index: i64 = v.parse().map_err(|_| {
        err(
            line,
            format_args!("face corner `{token}`: vertex index `{v}` is not an integer"),
        )
    })?;
    let resolved = match index {
        0 => {
            return Err(err(
                line,
                "vertex index 0 is invalid (OBJ indices start at 1)",
            ));
        }
        // 1-based from the start of the file.
        i if i > 0 => usize::try_from(i - 1).ok().filter(|&i| i < defined),
        // Relative: -1 is the most recently defined vertex.
        i => usize::try_from(i.unsigned_abs())
            .ok()
            .and_then(|back| defined.checked_sub(back)),
    };
    let Some(resolved) = resolved else {
        return Err(err(
            line,
            format_args!(
                "vertex index {index} is out of range ({defined} vertices defined so far)"
            ),
        ));
    };
    // `defined` is capped at MAX_IMPORT_VERTICES, far below u32::MAX.
    Ok(resolved as u32)
}

/// The first vertex a face uses twice, if any.
fn repeated(face: &[u32]) -> Option<u32> {
    if face.len() <= 16 {
        (0..face.len())
            .find(|&i| face[i + 1..].contains(&face[i]))
            .map(|i| face[i])
    } else {
        let mut sorted = face.to_vec();
        sorted.sort_unstable();
        sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    }
}

/// Assigns ids (used vertices in file order, then faces) and builds the half-edge mesh.
fn build(p: &Parsed, alloc: &mut impl IdAlloc) -> Result<Mesh> {
    let mut used = vec![false; p.positions.len()];
    for &c in &p.corners {
        used[c as usize] = true;
    }
    let mut remap = vec![u32::MAX; p.positions.len()];
    let n_used = used.iter().filter(|&&u| u).count();
    let mut poly = Polygons::with_capacity(n_used, p.materials.len(), p.corners.len());
    for (i, &pos) in p.positions.iter().enumerate() {
        if used[i] {
            remap[i] = poly.add_vertex(alloc.vertex(), pos);
        }
    }
    let mut corners = Vec::new();
    for (f, &m) in p.materials.iter().enumerate() {
        let (s, e) = (p.face_start[f] as usize, p.face_start[f + 1] as usize);
        corners.clear();
        corners.extend(p.corners[s..e].iter().map(|&c| remap[c as usize]));
        poly.add_face(alloc.face(), m, &corners);
    }
    Mesh::from_polygons(&poly).map_err(|e| match e {
        MeshError::IdCollision(_) => e,
        other => {
            let msg = other.to_string();
            let (first_line, notes) = locate(&msg, &poly, p, &remap);
            let prefix = first_line
                .map(|l| format!("OBJ line {l}: "))
                .unwrap_or_default();
            MeshError::Import(format!(
                "{prefix}faces do not form an oriented 2-manifold mesh: {msg}{notes}"
            ))
        }
    })
}

/// Translates the element ids a builder error names back into the file's terms: returns the line of
/// the first face involved, and a note like ` (f7 is the face on line 12, v3 is OBJ vertex 3)`.
/// When the error names only vertices (a shared edge, a pinched vertex), the faces around the first
/// edge or vertex named are listed by line. Only runs on the error path, so linear scans are fine.
fn locate(msg: &str, poly: &Polygons, p: &Parsed, remap: &[u32]) -> (Option<usize>, String) {
    let mut first_line = None;
    let mut notes: Vec<String> = Vec::new();
    let mut vertex_slots: Vec<u32> = Vec::new();
    for word in msg.split(|c: char| !c.is_ascii_alphanumeric()) {
        // Words are ASCII here, so splitting after the first byte is on a char boundary.
        let (kind, digits) = word.split_at(word.len().min(1));
        let Ok(n) = digits.parse::<u64>() else {
            continue;
        };
        let note = match kind {
            "f" => poly.face_ids.iter().position(|id| id.0 == n).and_then(|f| {
                let line = *p.face_line.get(f)?;
                first_line.get_or_insert(line);
                Some(format!("{word} is the face on line {line}"))
            }),
            "v" => poly
                .vertex_ids
                .iter()
                .position(|id| id.0 == n)
                .and_then(|slot| {
                    vertex_slots.push(slot as u32);
                    let file_index = remap.iter().position(|&r| r as usize == slot)?;
                    Some(format!("{word} is OBJ vertex {}", file_index + 1))
                }),
            _ => None,
        };
        if let Some(note) = note
            && !notes.contains(&note)
        {
            notes.push(note);
        }
    }
    if first_line.is_none()
        && let Some(&a) = vertex_slots.first()
    {
        let b = vertex_slots.get(1).copied().filter(|&b| b != a);
        let touches = |f: usize| {
            let c = poly.face(f);
            match b {
                // Faces using edge a-b in either direction.
                Some(b) => (0..c.len()).any(|i| {
                    let (x, y) = (c[i], c[(i + 1) % c.len()]);
                    (x, y) == (a, b) || (x, y) == (b, a)
                }),
                None => c.contains(&a),
            }
        };
        let lines: Vec<usize> = (0..poly.face_count())
            .filter(|&f| touches(f))
            .filter_map(|f| p.face_line.get(f).copied())
            .take(8)
            .collect();
        if let Some(&l) = lines.first() {
            first_line = Some(l);
            let list: Vec<String> = lines.iter().map(usize::to_string).collect();
            let what = if b.is_some() {
                "that edge"
            } else {
                "that vertex"
            };
            notes.push(format!(
                "faces using {what} are on lines {}",
                list.join(", ")
            ));
        }
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    (first_line, notes)
}
