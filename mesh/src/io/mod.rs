//! File formats: GLB and OBJ export, OBJ and glTF import. Byte buffers in, byte buffers out: the
//! kernel does no I/O.
//!
//! - [`write_glb`]: glTF 2.0 binary, one node and one mesh per object, one primitive per material,
//!   flat-shaded (each face keeps its own corners and the face normal), PBR materials from the
//!   palette.
//! - [`write_obj`]: Wavefront OBJ text plus its MTL library; n-gons stay n-gons.
//! - [`read_obj`]: OBJ faces and vertices, materials mapped by name onto the palette.
//! - [`read_gltf`]: GLB triangles of every mesh instanced by the scene, welded back into shared
//!   vertices, materials mapped by colour onto the palette.
//!
//! Exports are deterministic: the same objects and options give byte-identical files on every run
//! and platform (no hash-ordered maps, float text from Rust's shortest round-trip formatting,
//! colour conversion through `libm`). Imports never panic on malformed input: every problem becomes
//! a [`MeshError::Import`] whose message names the problem and, for text formats, the line. Imports
//! cap element counts ([`MAX_IMPORT_VERTICES`], [`MAX_IMPORT_FACES`], [`MAX_IMPORT_CORNERS`]) so a
//! small hostile file cannot make the kernel allocate without bound.

use std::collections::BTreeMap;

use crate::error::{MeshError, Result};
use crate::ids::SeqIds;
use crate::math::Vec3;
use crate::mesh::Mesh;

mod gltf_read;
mod gltf_write;
mod material;
mod obj_read;
mod obj_write;

pub use gltf_read::read_gltf;
pub use gltf_write::write_glb;
pub use material::{material_from_srgb, material_name};
pub use obj_read::read_obj;
pub use obj_write::write_obj;

/// Most vertices an import may create (after welding, for glTF).
pub const MAX_IMPORT_VERTICES: usize = 16 << 20;
/// Most faces an import may create.
pub const MAX_IMPORT_FACES: usize = 16 << 20;
/// Most face corners (summed over all faces) an import may create.
pub const MAX_IMPORT_CORNERS: usize = 64 << 20;

/// One mesh to export, with the name and placement it gets in the file.
#[derive(Clone, Copy, Debug)]
pub struct ExportObject<'a> {
    /// Object name (glTF node name, OBJ `o` name).
    pub name: &'a str,
    /// The geometry.
    pub mesh: &'a Mesh,
    /// Offset of the object in the scene. GLB stores it as the node's translation (positions stay
    /// in mesh space); OBJ has no transforms, so it is added to every vertex.
    pub translation: Vec3,
}

impl<'a> ExportObject<'a> {
    /// An object at the origin.
    pub fn new(name: &'a str, mesh: &'a Mesh) -> ExportObject<'a> {
        ExportObject {
            name,
            mesh,
            translation: Vec3::ZERO,
        }
    }

    /// The same object moved to `translation`.
    pub fn at(self, translation: Vec3) -> ExportObject<'a> {
        ExportObject {
            translation,
            ..self
        }
    }
}

/// Settings shared by the exporters.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Free-form key/value metadata (for example the session name or the author). GLB writes it as
    /// the `extras` object of `asset`; OBJ and MTL write it as `# key: value` header comments. A
    /// `BTreeMap` so the order in the file does not depend on insertion order.
    pub metadata: BTreeMap<String, String>,
}

impl ExportOptions {
    /// Options with no metadata.
    pub fn new() -> ExportOptions {
        ExportOptions::default()
    }

    /// The same options with one more metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Checks that every object can be written: finite translation, and (for OBJ) translated positions
/// still finite.
fn check_objects(objects: &[ExportObject<'_>]) -> Result<()> {
    for o in objects {
        if !o.translation.is_finite() {
            return Err(MeshError::Export(format!(
                "object `{}` has a non-finite translation",
                o.name
            )));
        }
    }
    Ok(())
}

/// Fuzz entry point for [`read_obj`]: any input must import cleanly or fail with an error, never
/// panic; an imported mesh must validate, import deterministically, and survive an OBJ round trip.
/// Panics (by assertion) when one of those properties breaks, which is what a fuzzer looks for.
#[doc(hidden)]
pub fn fuzz_read_obj(data: &[u8]) {
    let Ok(mesh) = read_obj(data, &mut SeqIds::new(1)) else {
        return;
    };
    assert_eq!(mesh.validate(), Ok(()), "read_obj built an invalid mesh");
    let again = read_obj(data, &mut SeqIds::new(1));
    assert!(again.as_ref() == Ok(&mesh), "read_obj is not deterministic");
    let objects = [ExportObject::new("fuzz", &mesh)];
    let opts = ExportOptions::default();
    let written = write_obj(&objects, "fuzz.mtl", &opts);
    let Ok((obj, _mtl)) = written else {
        panic!("write_obj failed on an imported mesh: {written:?}");
    };
    let back = read_obj(obj.as_bytes(), &mut SeqIds::new(1));
    let Ok(back) = back else {
        panic!("OBJ round trip failed: {back:?}");
    };
    assert_eq!(
        back.vertex_count(),
        mesh.vertex_count(),
        "OBJ round trip changed vertex count"
    );
    assert_eq!(
        back.face_count(),
        mesh.face_count(),
        "OBJ round trip changed face count"
    );
    // Any valid mesh must also export to GLB and read back without panicking (welding may merge
    // distinct vertices that share a position, so the result itself is not asserted).
    if let Ok(glb) = write_glb(&objects, &opts)
        && let Ok(m) = read_gltf(&glb, &mut SeqIds::new(1))
    {
        assert_eq!(m.validate(), Ok(()), "read_gltf built an invalid mesh");
    }
}

/// Fuzz entry point for [`read_gltf`]: any input must import cleanly or fail with an error, never
/// panic; an imported mesh must validate, import deterministically, and survive a GLB round trip
/// with the same counts (its vertices are welded, so re-welding changes nothing).
#[doc(hidden)]
pub fn fuzz_read_gltf(data: &[u8]) {
    let Ok(mesh) = read_gltf(data, &mut SeqIds::new(1)) else {
        return;
    };
    assert_eq!(mesh.validate(), Ok(()), "read_gltf built an invalid mesh");
    let again = read_gltf(data, &mut SeqIds::new(1));
    assert!(
        again.as_ref() == Ok(&mesh),
        "read_gltf is not deterministic"
    );
    let objects = [ExportObject::new("fuzz", &mesh)];
    let written = write_glb(&objects, &ExportOptions::default());
    let Ok(glb) = written else {
        panic!("write_glb failed on an imported mesh: {written:?}");
    };
    let back = read_gltf(&glb, &mut SeqIds::new(1));
    let Ok(back) = back else {
        panic!("GLB round trip failed: {back:?}");
    };
    assert_eq!(
        back.vertex_count(),
        mesh.vertex_count(),
        "GLB round trip changed vertex count"
    );
    assert_eq!(
        back.face_count(),
        mesh.face_count(),
        "GLB round trip changed face count"
    );
}
