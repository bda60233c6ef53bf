//! File format tests: GLB and OBJ export checked by an independent reader (the `gltf` crate and
//! plain JSON), round trips through the importers, malformed input rejected with messages that name
//! the problem, and byte-for-byte deterministic output.

use theta_mesh::io::{
    ExportObject, ExportOptions, material_from_srgb, material_name, read_gltf, read_obj, write_glb,
    write_obj,
};
use theta_mesh::{IdAlloc, MaterialId, Mesh, MeshError, Primitive, SeqIds, Vec3};

fn every_primitive() -> Vec<(&'static str, Primitive)> {
    vec![
        (
            "cuboid",
            Primitive::Cuboid {
                size: Vec3::new(1.0, 2.0, 3.0),
            },
        ),
        (
            "pyramid",
            Primitive::Pyramid {
                base: 1.0,
                height: 1.5,
                sides: 4,
            },
        ),
        (
            "pyramid6",
            Primitive::Pyramid {
                base: 1.0,
                height: 1.0,
                sides: 6,
            },
        ),
        (
            "cylinder",
            Primitive::Cylinder {
                radius: 0.5,
                height: 1.0,
                segments: 12,
            },
        ),
        (
            "cone",
            Primitive::Cone {
                radius: 0.5,
                height: 1.0,
                segments: 9,
            },
        ),
        (
            "uv_sphere",
            Primitive::UvSphere {
                radius: 1.0,
                segments: 12,
                rings: 6,
            },
        ),
        ("icosahedron", Primitive::Icosahedron { radius: 1.0 }),
        (
            "icosphere",
            Primitive::Icosphere {
                radius: 1.0,
                level: 2,
            },
        ),
        (
            "torus",
            Primitive::Torus {
                major_radius: 1.0,
                minor_radius: 0.25,
                major_segments: 12,
                minor_segments: 6,
            },
        ),
        (
            "grid",
            Primitive::Grid {
                size_x: 2.0,
                size_z: 1.0,
                cells_x: 4,
                cells_z: 3,
            },
        ),
    ]
}

fn build(p: &Primitive) -> Mesh {
    p.build(&mut SeqIds::new(1), MaterialId(0))
        .expect("primitive builds")
}

fn unit_cube() -> Mesh {
    build(&Primitive::Cuboid { size: Vec3::ONE })
}

/// A cube with faces in four materials: red, glass, a custom colour and the default white.
fn painted_cube() -> Mesh {
    let mut m = unit_cube();
    let faces: Vec<_> = m.faces().collect();
    m.paint(&[faces[0], faces[3]], MaterialId(5))
        .expect("paint red");
    m.paint(&[faces[1]], MaterialId::GLASS)
        .expect("paint glass");
    m.paint(&[faces[2]], MaterialId::custom(0x12, 0x34, 0x56))
        .expect("paint custom");
    m
}

/// Splits a GLB into its JSON (parsed) and BIN chunk, checking the container framing on the way.
fn glb_parts(glb: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let u32_at = |at: usize| u32::from_le_bytes(glb[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(&glb[0..4], b"glTF");
    assert_eq!(u32_at(4), 2, "GLB version");
    assert_eq!(u32_at(8), glb.len(), "GLB header length");
    let json_len = u32_at(12);
    assert_eq!(&glb[16..20], b"JSON");
    assert_eq!(json_len % 4, 0, "JSON chunk padded to 4 bytes");
    let json_bytes = &glb[20..20 + json_len];
    let text = std::str::from_utf8(json_bytes).unwrap();
    assert!(
        text.trim_end_matches(' ').ends_with('}'),
        "JSON padding is spaces"
    );
    let json: serde_json::Value = serde_json::from_slice(json_bytes).unwrap();
    let rest = &glb[20 + json_len..];
    if rest.is_empty() {
        return (json, Vec::new());
    }
    let bin_len = u32_at(20 + json_len);
    assert_eq!(&rest[4..8], b"BIN\0");
    assert_eq!(bin_len % 4, 0, "BIN chunk padded to 4 bytes");
    assert_eq!(rest.len(), 8 + bin_len, "BIN is the last chunk");
    (json, rest[8..].to_vec())
}

/// Reassembles a GLB from (possibly edited) JSON and a BIN chunk.
fn glb_from_parts(json: &serde_json::Value, bin: &[u8]) -> Vec<u8> {
    let mut j = serde_json::to_vec(json).unwrap();
    while !j.len().is_multiple_of(4) {
        j.push(b' ');
    }
    let mut out = Vec::new();
    let total = 12 + 8 + j.len() + if bin.is_empty() { 0 } else { 8 + bin.len() };
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(j.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&j);
    if !bin.is_empty() {
        out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        out.extend_from_slice(b"BIN\0");
        out.extend_from_slice(bin);
    }
    out
}

fn corner_count(m: &Mesh) -> usize {
    m.faces().map(|f| m.face_degree(f).unwrap()).sum()
}

fn triangle_count(m: &Mesh) -> usize {
    m.faces().map(|f| m.face_degree(f).unwrap() - 2).sum()
}

fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn import_err(r: theta_mesh::Result<Mesh>) -> String {
    match r {
        Err(MeshError::Import(msg)) => msg,
        other => panic!("expected an import error, got {other:?}"),
    }
}

// ----- GLB export, checked by an independent reader -----

#[test]
fn every_primitive_exports_valid_glb() {
    for (name, p) in every_primitive() {
        let mesh = build(&p);
        let glb = write_glb(&[ExportObject::new(name, &mesh)], &ExportOptions::default()).unwrap();
        let doc = gltf::Gltf::from_slice(&glb).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (json, bin) = glb_parts(&glb);
        assert_eq!(json["asset"]["version"], "2.0");
        assert_eq!(json["asset"]["generator"], "Theta");
        assert_eq!(json["nodes"][0]["name"], name);
        assert_eq!(doc.nodes().count(), 1);
        assert_eq!(doc.meshes().count(), 1);
        assert_eq!(doc.materials().count(), 1);
        assert_eq!(doc.blob.as_deref().map(<[u8]>::len), Some(bin.len()));
        let gmesh = doc.meshes().next().unwrap();
        let prims: Vec<_> = gmesh.primitives().collect();
        assert_eq!(prims.len(), 1, "{name}: one material, one primitive");
        let prim = &prims[0];
        assert_eq!(prim.mode(), gltf::mesh::Mode::Triangles);
        let pos = prim.get(&gltf::Semantic::Positions).unwrap();
        let nrm = prim.get(&gltf::Semantic::Normals).unwrap();
        let idx = prim.indices().unwrap();
        assert_eq!(
            pos.count(),
            corner_count(&mesh),
            "{name}: flat-shaded corners"
        );
        assert_eq!(nrm.count(), pos.count());
        assert_eq!(
            idx.count(),
            3 * triangle_count(&mesh),
            "{name}: index count"
        );
        assert_eq!(idx.data_type(), gltf::accessor::DataType::U32);
        let b = mesh.bounds();
        assert_eq!(
            f32s(&pos.min().unwrap()),
            b.min.to_array().to_vec(),
            "{name}: min"
        );
        assert_eq!(
            f32s(&pos.max().unwrap()),
            b.max.to_array().to_vec(),
            "{name}: max"
        );
        for view in doc.views() {
            assert_eq!(view.offset() % 4, 0);
            assert_eq!(view.length() % 4, 0);
            assert!(view.offset() + view.length() <= bin.len());
        }
        // The data itself, read back through `gltf`'s own reader.
        let reader = prim.reader(|_| doc.blob.as_deref());
        let positions: Vec<[f32; 3]> = reader.read_positions().unwrap().collect();
        let normals: Vec<[f32; 3]> = reader.read_normals().unwrap().collect();
        let indices: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
        assert!(indices.iter().all(|&i| (i as usize) < positions.len()));
        for n in &normals {
            let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
            assert!((len - 1.0).abs() < 1e-5, "{name}: unit normals");
        }
        let (lo, hi) = (b.min.to_array(), b.max.to_array());
        for p in &positions {
            for ((x, l), h) in p.iter().zip(lo).zip(hi) {
                assert!(l <= *x && *x <= h, "{name}: corner outside the bounds");
            }
        }
    }
}

#[test]
fn multi_material_glb_has_one_primitive_per_material() {
    let cube = painted_cube();
    let ball = build(&Primitive::Icosahedron { radius: 0.5 });
    let opts = ExportOptions::default()
        .with_metadata("session", "demo \"one\"")
        .with_metadata("author", "ada");
    let objects = [
        ExportObject::new("Painted cube", &cube),
        ExportObject::new("Ball", &ball).at(Vec3::new(3.0, 0.5, -1.0)),
    ];
    let glb = write_glb(&objects, &opts).unwrap();
    let doc = gltf::Gltf::from_slice(&glb).unwrap();
    let (json, _) = glb_parts(&glb);

    assert_eq!(json["nodes"][0]["name"], "Painted cube");
    assert_eq!(json["nodes"][1]["name"], "Ball");
    assert!(json["nodes"][0].get("translation").is_none());
    assert_eq!(
        json["nodes"][1]["translation"],
        serde_json::json!([3.0, 0.5, -1.0])
    );
    assert_eq!(json["scenes"][0]["nodes"], serde_json::json!([0, 1]));
    assert_eq!(json["scene"], 0);
    assert_eq!(
        json["asset"]["extras"],
        serde_json::json!({ "author": "ada", "session": "demo \"one\"" })
    );

    // Materials: white, red, glass, custom — in id order, named as the OBJ exporter names them.
    let names: Vec<&str> = json["materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["white", "red", "glass", "custom_123456"]);
    let glass = &json["materials"][2];
    assert_eq!(glass["alphaMode"], "BLEND");
    let red = f32s(&json["materials"][1]["pbrMetallicRoughness"]["baseColorFactor"]);
    // sRGB 0xD7263D to linear: (0.6795, 0.0194, 0.0467).
    assert!(
        (red[0] - 0.6795).abs() < 1e-3 && (red[1] - 0.0194).abs() < 1e-3,
        "{red:?}"
    );
    assert!((red[2] - 0.0467).abs() < 1e-3 && red[3] == 1.0, "{red:?}");

    let gmeshes: Vec<_> = doc.meshes().collect();
    assert_eq!(gmeshes.len(), 2);
    let prims: Vec<_> = gmeshes[0].primitives().collect();
    assert_eq!(prims.len(), 4, "one primitive per material used");
    let mats: Vec<usize> = prims
        .iter()
        .map(|p| p.material().index().unwrap())
        .collect();
    assert_eq!(mats, [0, 1, 2, 3]);
    // Red has two quads, every other material one: 4 corners and 2 triangles per quad.
    let per_prim: Vec<(usize, usize)> = prims
        .iter()
        .map(|p| {
            (
                p.get(&gltf::Semantic::Positions).unwrap().count(),
                p.indices().unwrap().count(),
            )
        })
        .collect();
    assert_eq!(per_prim, [(8, 12), (8, 12), (4, 6), (4, 6)]);
    // The union of the primitives' bounds is the mesh's bounds.
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    for p in &prims {
        let a = p.get(&gltf::Semantic::Positions).unwrap();
        for (c, (mn, mx)) in f32s(&a.min().unwrap())
            .iter()
            .zip(f32s(&a.max().unwrap()))
            .enumerate()
        {
            lo[c] = lo[c].min(*mn);
            hi[c] = hi[c].max(mx);
        }
    }
    assert_eq!(lo, cube.bounds().min.to_array());
    assert_eq!(hi, cube.bounds().max.to_array());
    assert_eq!(gmeshes[1].primitives().count(), 1);
}

#[test]
fn empty_objects_still_make_a_valid_glb() {
    let empty = Mesh::empty();
    let glb = write_glb(
        &[ExportObject::new("nothing", &empty)],
        &ExportOptions::default(),
    )
    .unwrap();
    let doc = gltf::Gltf::from_slice(&glb).unwrap();
    assert_eq!(doc.nodes().count(), 1);
    assert_eq!(doc.meshes().count(), 0);
    assert!(doc.blob.is_none());
    let glb = write_glb(&[], &ExportOptions::default()).unwrap();
    gltf::Gltf::from_slice(&glb).unwrap();
    assert!(read_gltf(&glb, &mut SeqIds::new(1)).unwrap().is_empty());
}

#[test]
fn non_finite_translation_is_an_export_error() {
    let cube = unit_cube();
    let obj = [ExportObject::new("c", &cube).at(Vec3::new(f32::NAN, 0.0, 0.0))];
    assert!(matches!(
        write_glb(&obj, &ExportOptions::default()),
        Err(MeshError::Export(_))
    ));
    assert!(matches!(
        write_obj(&obj, "c.mtl", &ExportOptions::default()),
        Err(MeshError::Export(_))
    ));
    let huge = build(&Primitive::Cuboid {
        size: Vec3::new(3e38, 1.0, 1.0),
    });
    let big = [ExportObject::new("c", &huge).at(Vec3::new(f32::MAX, 0.0, 0.0))];
    let e = write_obj(&big, "c.mtl", &ExportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("finite range"), "{e}");
    let e = write_obj(
        &[ExportObject::new("c", &cube)],
        "a\nb.mtl",
        &ExportOptions::default(),
    );
    assert!(matches!(e, Err(MeshError::Export(_))));
}

// ----- GLB import -----

#[test]
fn glb_round_trip_welds_the_cube_back() {
    let cube = painted_cube();
    let glb = write_glb(
        &[ExportObject::new("cube", &cube)],
        &ExportOptions::default(),
    )
    .unwrap();
    let back = read_gltf(&glb, &mut SeqIds::new(100)).unwrap();
    back.validate().unwrap();
    assert_eq!(back.vertex_count(), 8);
    assert_eq!(back.face_count(), 12);
    assert_eq!(back.euler_characteristic(), 2);
    assert_eq!(back.bounds(), cube.bounds());
    // Each quad became two triangles of its material.
    let mut mats: Vec<MaterialId> = back
        .faces()
        .map(|f| back.face_material(f).unwrap())
        .collect();
    mats.sort();
    let mut expected: Vec<MaterialId> = cube
        .faces()
        .flat_map(|f| [cube.face_material(f).unwrap(); 2])
        .collect();
    expected.sort();
    assert_eq!(mats, expected);
    // Ids: welded vertices first, then faces, from the allocator.
    let vids: Vec<u64> = back.vertices().map(|v| v.0).collect();
    assert_eq!(vids, (100..108).collect::<Vec<_>>());
    let fids: Vec<u64> = back.faces().map(|f| f.0).collect();
    assert_eq!(fids, (108..120).collect::<Vec<_>>());
}

#[test]
fn glb_round_trip_of_every_primitive() {
    for (name, p) in every_primitive() {
        let mesh = build(&p);
        let glb = write_glb(&[ExportObject::new(name, &mesh)], &ExportOptions::default()).unwrap();
        let back = read_gltf(&glb, &mut SeqIds::new(1)).unwrap_or_else(|e| panic!("{name}: {e}"));
        back.validate().unwrap();
        assert_eq!(back.vertex_count(), mesh.vertex_count(), "{name}");
        assert_eq!(back.face_count(), triangle_count(&mesh), "{name}");
        assert_eq!(
            back.euler_characteristic(),
            mesh.euler_characteristic(),
            "{name}"
        );
        assert_eq!(back.bounds(), mesh.bounds(), "{name}");
    }
}

#[test]
fn glb_import_applies_node_translations() {
    let cube = unit_cube();
    let objects = [
        ExportObject::new("a", &cube),
        ExportObject::new("b", &cube).at(Vec3::new(5.0, 0.0, 0.0)),
    ];
    let glb = write_glb(&objects, &ExportOptions::default()).unwrap();
    let back = read_gltf(&glb, &mut SeqIds::new(1)).unwrap();
    back.validate().unwrap();
    assert_eq!(back.vertex_count(), 16);
    assert_eq!(back.face_count(), 24);
    assert_eq!(back.bounds().min, Vec3::new(-0.5, -0.5, -0.5));
    assert_eq!(back.bounds().max, Vec3::new(5.5, 0.5, 0.5));
}

#[test]
fn glb_import_handles_mirroring_nodes_and_unindexed_primitives() {
    let cube = unit_cube();
    let glb = write_glb(&[ExportObject::new("a", &cube)], &ExportOptions::default()).unwrap();
    let (mut json, bin) = glb_parts(&glb);
    // A mirror keeps the mesh closed and outward-facing only if the importer flips the winding.
    json["nodes"][0]["scale"] = serde_json::json!([-1.0, 1.0, 1.0]);
    let back = read_gltf(&glb_from_parts(&json, &bin), &mut SeqIds::new(1)).unwrap();
    back.validate().unwrap();
    assert_eq!(back.vertex_count(), 8);
    for f in back.faces() {
        let n = back.face_normal(f).unwrap();
        let c = back.face_centroid(f).unwrap();
        assert!(n.dot(c) > 0.0, "face {f:?} points inward");
    }

    // Without indices, every three corners form a triangle. Rebuild the BIN as unindexed corners.
    let doc = gltf::Gltf::from_slice(&glb).unwrap();
    let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
    let reader = prim.reader(|_| doc.blob.as_deref());
    let pos: Vec<[f32; 3]> = reader.read_positions().unwrap().collect();
    let idx: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
    let flat: Vec<u8> = idx
        .iter()
        .flat_map(|&i| pos[i as usize])
        .flat_map(f32::to_le_bytes)
        .collect();
    let mut json = glb_parts(&glb).0;
    json["bufferViews"] =
        serde_json::json!([{ "buffer": 0, "byteOffset": 0, "byteLength": flat.len() }]);
    json["buffers"] = serde_json::json!([{ "byteLength": flat.len() }]);
    json["accessors"] = serde_json::json!([{
        "bufferView": 0, "componentType": 5126, "count": idx.len(), "type": "VEC3",
        "min": [-0.5, -0.5, -0.5], "max": [0.5, 0.5, 0.5]
    }]);
    json["meshes"][0]["primitives"] = serde_json::json!([{ "attributes": { "POSITION": 0 } }]);
    json.as_object_mut().unwrap().remove("materials");
    let back = read_gltf(&glb_from_parts(&json, &flat), &mut SeqIds::new(1)).unwrap();
    back.validate().unwrap();
    assert_eq!((back.vertex_count(), back.face_count()), (8, 12));
    assert!(
        back.faces()
            .all(|f| back.face_material(f).unwrap() == MaterialId(0))
    );
}

#[test]
fn glb_import_drops_triangles_that_weld_away() {
    let cube = unit_cube();
    let glb = write_glb(&[ExportObject::new("a", &cube)], &ExportOptions::default()).unwrap();
    let (mut json, mut bin) = glb_parts(&glb);
    // Append a degenerate triangle (corners 0, 0, 1) to the index accessor's data.
    let idx_view = json["accessors"][2]["bufferView"].as_u64().unwrap() as usize;
    assert_eq!(idx_view, 2);
    let extra: Vec<u8> = [0u32, 0, 1].iter().flat_map(|i| i.to_le_bytes()).collect();
    let view_len = json["bufferViews"][2]["byteLength"].as_u64().unwrap() as usize;
    let view_off = json["bufferViews"][2]["byteOffset"].as_u64().unwrap() as usize;
    assert_eq!(view_off + view_len, bin.len(), "indices are the last view");
    bin.extend_from_slice(&extra);
    json["bufferViews"][2]["byteLength"] = (view_len + 12).into();
    json["buffers"][0]["byteLength"] = bin.len().into();
    json["accessors"][2]["count"] = (view_len / 4 + 3).into();
    let back = read_gltf(&glb_from_parts(&json, &bin), &mut SeqIds::new(1)).unwrap();
    back.validate().unwrap();
    assert_eq!((back.vertex_count(), back.face_count()), (8, 12));
}

#[test]
fn glb_materials_map_back_to_the_palette() {
    assert_eq!(material_from_srgb([0xD7, 0x26, 0x3D]), MaterialId(5));
    assert_eq!(
        material_from_srgb([0xD8, 0x25, 0x3D]),
        MaterialId(5),
        "within one step"
    );
    assert_eq!(material_from_srgb([1, 2, 3]), MaterialId::custom(1, 2, 3));
    let mut cube = unit_cube();
    let faces: Vec<_> = cube.faces().collect();
    for (i, &f) in faces.iter().enumerate() {
        let m = [
            MaterialId(7),
            MaterialId::GLASS,
            MaterialId::GEM,
            MaterialId::custom(9, 99, 199),
        ];
        cube.paint(&[f], m[i % 4]).unwrap();
    }
    let glb = write_glb(&[ExportObject::new("a", &cube)], &ExportOptions::default()).unwrap();
    let back = read_gltf(&glb, &mut SeqIds::new(1)).unwrap();
    let used: std::collections::BTreeSet<MaterialId> = back
        .faces()
        .map(|f| back.face_material(f).unwrap())
        .collect();
    let expected: std::collections::BTreeSet<MaterialId> = cube
        .faces()
        .map(|f| cube.face_material(f).unwrap())
        .collect();
    assert_eq!(used, expected);
}

/// Takes the exported cube's GLB, edits its JSON, and returns the import error message.
fn glb_error_after(edit: impl FnOnce(&mut serde_json::Value, &mut Vec<u8>)) -> String {
    let cube = unit_cube();
    let glb = write_glb(&[ExportObject::new("a", &cube)], &ExportOptions::default()).unwrap();
    let (mut json, mut bin) = glb_parts(&glb);
    edit(&mut json, &mut bin);
    import_err(read_gltf(&glb_from_parts(&json, &bin), &mut SeqIds::new(1)))
}

#[test]
fn malformed_glb_framing_is_an_import_error() {
    let cube = unit_cube();
    let glb = write_glb(&[ExportObject::new("a", &cube)], &ExportOptions::default()).unwrap();
    let read = |b: &[u8]| import_err(read_gltf(b, &mut SeqIds::new(1)));
    assert!(read(b"").contains("not a glTF file"));
    assert!(read(b"hello").contains("not a glTF file"));
    assert!(read(&glb[..10]).contains("header truncated"));
    assert!(read(&glb[..glb.len() - 1]).contains("truncated"));
    assert!(read(&glb[..40]).contains("truncated"));
    let mut v3 = glb.clone();
    v3[4] = 3;
    assert!(read(&v3).contains("version 3"));
    let mut short = glb.clone();
    short[8..12].copy_from_slice(&4u32.to_le_bytes());
    assert!(read(&short).contains("shorter than the header"));
    let mut chunk = glb.clone();
    chunk[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(read(&chunk).contains("claims 4294967295 bytes"));
    let mut ty = glb.clone();
    ty[16..20].copy_from_slice(b"BIN\0");
    assert!(read(&ty).contains("first chunk is not JSON"));
    let mut bad_json = glb.clone();
    bad_json[20] = b'[';
    assert!(read(&bad_json).contains("invalid JSON"));
}

#[test]
fn malformed_glb_content_is_an_import_error() {
    let e = glb_error_after(|j, _| {
        j["meshes"][0]["primitives"][0]["attributes"]["POSITION"] = 99.into();
    });
    assert!(e.contains("POSITION accessor 99 does not exist"), "{e}");
    let e = glb_error_after(|j, _| j["meshes"][0]["primitives"][0]["indices"] = 42.into());
    assert!(e.contains("invalid glTF") && e.contains("indices"), "{e}");
    let e = glb_error_after(|j, _| j["meshes"][0]["primitives"][0]["mode"] = 0.into());
    assert!(e.contains("only triangles"), "{e}");
    let e = glb_error_after(|j, _| j["accessors"][0]["count"] = 1_000_000.into());
    assert!(
        e.contains("accessor 0") && e.contains("runs past the end"),
        "{e}"
    );
    let e = glb_error_after(|j, _| j["accessors"][0]["count"] = u64::MAX.into());
    assert!(e.contains("accessor 0"), "{e}");
    let e = glb_error_after(|j, _| j["bufferViews"][0]["byteOffset"] = 1_000_000.into());
    assert!(
        e.contains("buffer view 0") && e.contains("runs past the end"),
        "{e}"
    );
    let e = glb_error_after(|j, _| j["buffers"][0]["byteLength"] = 1_000_000.into());
    assert!(e.contains("buffer 0 declares 1000000 bytes"), "{e}");
    let e = glb_error_after(|j, _| {
        j["buffers"][0]["uri"] = "data:application/octet-stream;base64,AAAA".into()
    });
    assert!(e.contains("external or data: URI"), "{e}");
    let e = glb_error_after(|j, _| j["accessors"][0]["componentType"] = 5121.into());
    assert!(e.contains("expected float VEC3"), "{e}");
    let e = glb_error_after(|j, _| j["accessors"][2]["count"] = 35.into());
    assert!(e.contains("not a whole number of triangles"), "{e}");
    let e = glb_error_after(|j, _| {
        j["accessors"][0]["sparse"] = serde_json::json!({
            "count": 1,
            "indices": { "bufferView": 2, "componentType": 5125 },
            "values": { "bufferView": 0 }
        });
    });
    assert!(e.contains("sparse"), "{e}");
    let e = glb_error_after(|j, _| j["bufferViews"][0]["byteStride"] = 4.into());
    assert!(e.contains("stride 4 is smaller"), "{e}");
    let e = glb_error_after(|j, _| j["nodes"][0]["children"] = serde_json::json!([0]));
    assert!(e.contains("reached twice"), "{e}");
    let e = glb_error_after(|j, _| {
        j["nodes"][0]["scale"] = serde_json::json!([1e38, 1e38, 1e38]);
        j["nodes"][0]["translation"] = serde_json::json!([3e38, 0.0, 0.0]);
    });
    assert!(e.contains("out of finite range"), "{e}");
    let e = glb_error_after(|_, bin| {
        // The first index becomes 1000, far past the 24 corners.
        let first_index = 24 * 12 * 2;
        bin[first_index..first_index + 4].copy_from_slice(&1000u32.to_le_bytes());
    });
    assert!(
        e.contains("index 1000 is out of range (24 vertices)"),
        "{e}"
    );
    let e = glb_error_after(|_, bin| bin[0..4].copy_from_slice(&f32::NAN.to_le_bytes()));
    assert!(e.contains("element 0 is not finite"), "{e}");
    let e = glb_error_after(|j, _| {
        // The same mesh twice at the same place: every edge is shared by four faces.
        j["nodes"] = serde_json::json!([{ "mesh": 0 }, { "mesh": 0 }]);
        j["scenes"][0]["nodes"] = serde_json::json!([0, 1]);
    });
    assert!(e.contains("2-manifold"), "{e}");
}

// ----- OBJ export and import -----

#[test]
fn obj_export_keeps_ngons_and_writes_materials() {
    let cube = painted_cube();
    let cyl = build(&Primitive::Cylinder {
        radius: 0.5,
        height: 1.0,
        segments: 7,
    });
    let opts = ExportOptions::default().with_metadata("session", "line one\nline two");
    let objects = [
        ExportObject::new("cube", &cube),
        ExportObject::new("cyl", &cyl).at(Vec3::new(2.0, 0.0, 0.0)),
    ];
    let (obj, mtl) = write_obj(&objects, "scene.mtl", &opts).unwrap();
    assert!(obj.starts_with("# Theta\n# session: line one line two\nmtllib scene.mtl\no cube\n"));
    assert!(obj.contains("\no cyl\n"));
    let count = |prefix: &str| obj.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("v "), 8 + cyl.vertex_count());
    assert_eq!(count("vn "), 6 + cyl.face_count());
    assert_eq!(count("f "), 6 + cyl.face_count());
    // The cylinder's caps stay 7-gons; the second object's indices continue after the cube's.
    let heptagons = obj
        .lines()
        .filter(|l| l.starts_with("f ") && l.split(' ').count() == 8);
    assert_eq!(heptagons.count(), 2);
    let first_cyl_face = obj
        .split("\no cyl\n")
        .nth(1)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("f "));
    for corner in first_cyl_face.unwrap().split(' ').skip(1) {
        let (v, n) = corner.split_once("//").unwrap();
        assert!(v.parse::<usize>().unwrap() >= 9, "{corner}");
        assert_eq!(n, "7");
    }
    assert!(obj.contains("v 2.5 "), "translation applied to vertices");
    assert!(obj.contains("\nusemtl glass\n") && obj.contains("\nusemtl custom_123456\n"));
    for name in ["white", "red", "glass", "custom_123456"] {
        assert!(mtl.contains(&format!("\nnewmtl {name}\n")), "{mtl}");
    }
    assert!(
        mtl.contains(
            "newmtl glass\nKd 0.78431374 0.9019608 1\nKs 0.9 0.9 0.9\nNs 500\nd 0.3764706\n"
        ),
        "{mtl}"
    );
    assert!(
        mtl.contains("newmtl custom_123456\nKd 0.07058824 0.20392157 0.3372549\n"),
        "{mtl}"
    );
    assert_eq!(material_name(MaterialId(5)), "red");
}

#[test]
fn obj_round_trip_is_exact() {
    let mut cases: Vec<(String, Mesh)> = every_primitive()
        .into_iter()
        .map(|(n, p)| (n.to_string(), build(&p)))
        .collect();
    cases.push(("painted".into(), painted_cube()));
    let mut odd = build(&Primitive::UvSphere {
        radius: 0.3,
        segments: 5,
        rings: 3,
    });
    let faces: Vec<_> = odd.faces().collect();
    odd.paint(&faces[..3], MaterialId::GEM).unwrap();
    odd.paint(&faces[3..5], MaterialId(26)).unwrap();
    cases.push(("odd".into(), odd));
    for (name, mesh) in cases {
        let (obj, _) = write_obj(
            &[ExportObject::new(&name, &mesh)],
            "m.mtl",
            &ExportOptions::default(),
        )
        .unwrap();
        let back =
            read_obj(obj.as_bytes(), &mut SeqIds::new(1)).unwrap_or_else(|e| panic!("{name}: {e}"));
        back.validate().unwrap();
        let (a, b) = (mesh.to_polygons(), back.to_polygons());
        assert_eq!(b.vertex_count(), a.vertex_count(), "{name}");
        assert_eq!(b.face_count(), a.face_count(), "{name}");
        let bits = |p: &theta_mesh::Polygons| -> Vec<[u32; 3]> {
            p.positions
                .iter()
                .map(|v| v.to_array().map(f32::to_bits))
                .collect()
        };
        assert_eq!(bits(&b), bits(&a), "{name}: positions bit-exact");
        assert_eq!(b.corners, a.corners, "{name}: same n-gons");
        assert_eq!(b.face_start, a.face_start, "{name}");
        assert_eq!(b.materials, a.materials, "{name}: materials");
    }
}

#[test]
fn obj_import_reads_every_corner_form() {
    let text = "\u{feff}# a quad and a triangle\r\n\
        mtllib whatever.mtl\r\n\
        o thing\n\
        v 0 0 0\n\
        v 1 0 0 1.0\n\
        v 1 1 0 0.5 0.5 0.5\n\
        v 0 1 0\n\
        v 0.5 \\\n  2 0\n\
        vt 0 0\nvn 0 0 1\ng grp\ns 1\n\
        usemtl teapot blue\n\
        f 1/1/1 2/1/1 3/1/1 4/1/1\n\
        usemtl red\n\
        f -2//1 -3/1 5 # trailing comment\n\
        l 1 2\n";
    let mut ids = SeqIds::new(10);
    let m = read_obj(text.as_bytes(), &mut ids).unwrap();
    m.validate().unwrap();
    assert_eq!((m.vertex_count(), m.face_count()), (5, 2));
    let p = m.to_polygons();
    assert_eq!(p.face(0), &[0, 1, 2, 3]);
    assert_eq!(p.face(1), &[3, 2, 4]);
    assert_eq!(p.positions[4], Vec3::new(0.5, 2.0, 0.0), "continued line");
    // An unknown name gets the first matte colour; a palette name maps to its entry.
    assert_eq!(p.materials, [MaterialId(0), MaterialId(5)]);
    let vids: Vec<u64> = m.vertices().map(|v| v.0).collect();
    assert_eq!(vids, [10, 11, 12, 13, 14]);
    assert_eq!(m.faces().map(|f| f.0).collect::<Vec<_>>(), [15, 16]);
    assert_eq!(ids.peek(), 17);
}

#[test]
fn obj_unknown_materials_get_colours_in_first_seen_order() {
    let text = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nv 2 1 0\n\
        usemtl b\nf 1 2 3\nusemtl a\nf 2 4 3\nusemtl b\nf 2 5 4\n";
    let m = read_obj(text.as_bytes(), &mut SeqIds::new(1)).unwrap();
    let mats: Vec<MaterialId> = m.faces().map(|f| m.face_material(f).unwrap()).collect();
    assert_eq!(mats, [MaterialId(0), MaterialId(1), MaterialId(0)]);
}

#[test]
fn obj_import_ids_skip_unused_vertices() {
    let text = "v 9 9 9\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 2 3 4\n";
    let m = read_obj(text.as_bytes(), &mut SeqIds::new(1)).unwrap();
    assert_eq!(m.vertices().map(|v| v.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(m.faces().map(|f| f.0).collect::<Vec<_>>(), [4]);
    assert!(read_obj(b"", &mut SeqIds::new(1)).unwrap().is_empty());
    assert!(
        read_obj(b"v 1 2 3\n", &mut SeqIds::new(1))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn malformed_obj_is_an_import_error_naming_the_line() {
    let tri = "v 0 0 0\nv 1 0 0\nv 0 1 0\n";
    let cases: &[(String, &[&str])] = &[
        (format!("{tri}f 1 2 0\n"), &["line 4", "index 0"]),
        (
            format!("{tri}f 1 2 4\n"),
            &["line 4", "index 4 is out of range", "3 vertices"],
        ),
        (
            format!("{tri}f 1 2 -4\n"),
            &["line 4", "index -4 is out of range"],
        ),
        (
            format!("{tri}f 1 2 99999999999999999999\n"),
            &["line 4", "not an integer"],
        ),
        (
            format!("{tri}f 1 2 x\n"),
            &["line 4", "`x` is not an integer"],
        ),
        (
            format!("{tri}f 1 2 3/4/5/6\n"),
            &["line 4", "more than 3 parts"],
        ),
        (
            format!("{tri}f 1 2\n"),
            &["line 4", "2 corners, needs at least 3"],
        ),
        (
            format!("{tri}f 1 2 1\n"),
            &["line 4", "uses vertex 1 twice"],
        ),
        (
            "v 0 0 0\nv 1 zero 0\n".into(),
            &["line 2", "`zero` is not a number"],
        ),
        (
            "v 0 0 0\nv 1 nan 0\n".into(),
            &["line 2", "`nan` is not finite"],
        ),
        ("v 0 0 inf\n".into(), &["line 1", "`inf` is not finite"]),
        ("v 0 0 1e39\n".into(), &["line 1", "`1e39` is not finite"]),
        ("v 0 0\n".into(), &["line 1", "2 coordinates, needs 3"]),
        (
            format!("{tri}v 0 -1 0\nv 1 1 1\nf 1 2 3\nf 1 2 4\nf 2 1 5\n"),
            &[
                "line 6",
                "2-manifold",
                "shared by 3 faces",
                "on lines 6, 7, 8",
            ],
        ),
        (
            format!("{tri}f 1 2 3\nf 1 2 3\n"),
            &[
                "line 4",
                "2-manifold",
                "same direction",
                "f5 is the face on line 5",
            ],
        ),
    ];
    for (text, needles) in cases {
        let msg = import_err(read_obj(text.as_bytes(), &mut SeqIds::new(1)));
        for n in *needles {
            assert!(msg.contains(n), "{text:?}: message {msg:?} lacks {n:?}");
        }
    }
    let mut bad = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl caf".to_vec();
    bad.extend_from_slice(&[0xC3, 0x28, b'\n']);
    let msg = import_err(read_obj(&bad, &mut SeqIds::new(1)));
    assert!(
        msg.contains("line 4") && msg.contains("not valid UTF-8"),
        "{msg}"
    );
}

#[test]
fn obj_import_reports_id_collisions_as_such() {
    /// An allocator that hands out the same id forever.
    struct Stuck;
    impl IdAlloc for Stuck {
        fn vertex(&mut self) -> theta_mesh::VertexId {
            theta_mesh::VertexId(7)
        }
        fn face(&mut self) -> theta_mesh::FaceId {
            theta_mesh::FaceId(7)
        }
    }
    let r = read_obj(b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", &mut Stuck);
    assert!(matches!(r, Err(MeshError::IdCollision(_))), "{r:?}");
}

// ----- determinism -----

#[test]
fn exports_are_deterministic() {
    let cube = painted_cube();
    let torus = build(&Primitive::Torus {
        major_radius: 1.0,
        minor_radius: 0.3,
        major_segments: 9,
        minor_segments: 5,
    });
    let opts = ExportOptions::default()
        .with_metadata("b", "2")
        .with_metadata("a", "1");
    let objects = [
        ExportObject::new("cube", &cube),
        ExportObject::new("torus", &torus).at(Vec3::new(0.1, 0.2, 0.3)),
    ];
    let glb1 = write_glb(&objects, &opts).unwrap();
    let glb2 = write_glb(&objects, &opts.clone()).unwrap();
    assert_eq!(glb1, glb2);
    let obj1 = write_obj(&objects, "x.mtl", &opts).unwrap();
    let obj2 = write_obj(&objects, "x.mtl", &opts).unwrap();
    assert_eq!(obj1, obj2);
    // Metadata order follows the keys, not insertion.
    let swapped = ExportOptions::default()
        .with_metadata("a", "1")
        .with_metadata("b", "2");
    assert_eq!(write_glb(&objects, &swapped).unwrap(), glb1);
    // Imports are deterministic too.
    let a = read_gltf(&glb1, &mut SeqIds::new(1)).unwrap();
    let b = read_gltf(&glb1, &mut SeqIds::new(1)).unwrap();
    assert_eq!(a, b);
    let a = read_obj(obj1.0.as_bytes(), &mut SeqIds::new(1)).unwrap();
    let b = read_obj(obj1.0.as_bytes(), &mut SeqIds::new(1)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn fuzz_entry_points_accept_exports() {
    let cube = painted_cube();
    let objects = [ExportObject::new("cube", &cube)];
    let glb = write_glb(&objects, &ExportOptions::default()).unwrap();
    let (obj, mtl) = write_obj(&objects, "c.mtl", &ExportOptions::default()).unwrap();
    for input in [&glb[..], obj.as_bytes(), mtl.as_bytes(), b"", b"glTF"] {
        theta_mesh::io::fuzz_read_gltf(input);
        theta_mesh::io::fuzz_read_obj(input);
    }
}

#[test]
fn every_srgb_byte_survives_the_linear_round_trip() {
    let mut grid = build(&Primitive::Grid {
        size_x: 1.0,
        size_z: 1.0,
        cells_x: 16,
        cells_z: 16,
    });
    let faces: Vec<_> = grid.faces().collect();
    assert_eq!(faces.len(), 256);
    let colour = |i: usize| [i as u8, 255 - i as u8, (i * 7) as u8];
    for (i, &f) in faces.iter().enumerate() {
        let [r, g, b] = colour(i);
        grid.paint(&[f], MaterialId::custom(r, g, b)).unwrap();
    }
    let glb = write_glb(&[ExportObject::new("g", &grid)], &ExportOptions::default()).unwrap();
    let back = read_gltf(&glb, &mut SeqIds::new(1)).unwrap();
    // Each quad became two triangles, in face order.
    for (t, f) in back.faces().enumerate() {
        let expected = material_from_srgb(colour(t / 2));
        assert_eq!(
            back.face_material(f).unwrap(),
            expected,
            "colour {:?}",
            colour(t / 2)
        );
    }
}
