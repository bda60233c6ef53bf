//! Wavefront OBJ + MTL export.
//!
//! OBJ keeps polygons, so faces are written as the n-gons the user modelled (no triangulation) with
//! one `vn` face normal per face for flat shading. Faces keep storage order and a `usemtl` line is
//! written wherever the material changes, so [`read_obj`](super::read_obj) gets the same faces back
//! in the same order. Coordinates use Rust's `{}` formatting of `f32`: plain decimal (no exponent,
//! which every OBJ reader understands) with the fewest digits that parse back to the same bits.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::material::export_material;
use super::{ExportObject, ExportOptions, check_objects};
use crate::error::{MeshError, Result};
use crate::ids::MaterialId;
use crate::math::Vec3;
use crate::palette::MaterialKind;

/// Writes the objects as OBJ text plus the MTL library it names as `mtllib {mtl_name}`. Returns
/// `(obj, mtl)`. Vertex indices are global across objects, as OBJ requires. Fails with
/// [`MeshError::Export`] on a non-finite translation, a translation that pushes a vertex out of
/// finite range, or an `mtl_name` that is empty or holds a line break.
pub fn write_obj(
    objects: &[ExportObject<'_>],
    mtl_name: &str,
    opts: &ExportOptions,
) -> Result<(String, String)> {
    check_objects(objects)?;
    if mtl_name.trim().is_empty() || mtl_name.chars().any(char::is_control) {
        return Err(MeshError::Export(format!(
            "invalid MTL file name {mtl_name:?}"
        )));
    }
    let mut obj = String::new();
    let mut mtl = String::new();
    header(&mut obj, opts);
    header(&mut mtl, opts);
    // `fmt::Write` for `String` never fails, so the results of `writeln!` are ignored below.
    let _ = writeln!(obj, "mtllib {mtl_name}");

    let mut used = BTreeSet::new();
    // OBJ indices are 1-based and count every `v` (and `vn`) line in the file so far.
    let mut v_base = 1usize;
    let mut n_base = 1usize;
    for o in objects {
        let p = o.mesh.to_polygons();
        let _ = writeln!(obj, "o {}", one_line(o.name));
        for &pos in &p.positions {
            let q = pos + o.translation;
            if !q.is_finite() {
                return Err(MeshError::Export(format!(
                    "object `{}`: translation moves a vertex out of finite range",
                    o.name
                )));
            }
            let _ = writeln!(obj, "v {} {} {}", q.x, q.y, q.z);
        }
        for f in 0..p.face_count() {
            let n = o.mesh.face_normal_slot(f as u32);
            // A face with no area has no normal; any unit vector keeps readers that normalise
            // happy.
            let n = if n == Vec3::ZERO { Vec3::Y } else { n };
            let _ = writeln!(obj, "vn {} {} {}", n.x, n.y, n.z);
        }
        let mut current: Option<MaterialId> = None;
        for f in 0..p.face_count() {
            let m = p.materials[f];
            if current != Some(m) {
                let _ = writeln!(obj, "usemtl {}", export_material(m).name);
                used.insert(m);
                current = Some(m);
            }
            obj.push('f');
            for &c in p.face(f) {
                let _ = write!(obj, " {}//{}", v_base + c as usize, n_base + f);
            }
            obj.push('\n');
        }
        v_base += p.vertex_count();
        n_base += p.face_count();
    }

    for m in used {
        let e = export_material(m);
        let [r, g, b, a] = e.rgba.map(|c| f32::from(c) / 255.0);
        // Kd is the sRGB colour scaled to 0..1, as most tools read it. Ns/illum give each kind its
        // look in renderers that honour them: matte is dull, glass and gem are glossy.
        let (ns, illum, alpha) = match e.kind {
            MaterialKind::Matte => (10, 1, 1.0),
            MaterialKind::Glass => (500, 4, a),
            MaterialKind::Gem => (900, 3, 1.0),
        };
        let _ = writeln!(mtl, "\nnewmtl {}", e.name);
        let _ = writeln!(mtl, "Kd {r} {g} {b}");
        let ks = if e.kind == MaterialKind::Matte {
            0.0f32
        } else {
            0.9
        };
        let _ = writeln!(mtl, "Ks {ks} {ks} {ks}");
        let _ = writeln!(mtl, "Ns {ns}");
        let _ = writeln!(mtl, "d {alpha}");
        let _ = writeln!(mtl, "illum {illum}");
    }
    Ok((obj, mtl))
}

/// `# ...` comment lines: the generator and the metadata, one entry per line.
fn header(out: &mut String, opts: &ExportOptions) {
    out.push_str("# Theta\n");
    for (k, v) in &opts.metadata {
        let _ = writeln!(out, "# {}: {}", one_line(k), one_line(v));
    }
}

/// The text with line breaks and other control characters replaced, so a name or comment cannot
/// end its line early and inject statements.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
