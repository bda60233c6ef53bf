//! A seeded generator of realistic editing sessions: several authors building models with
//! primitives, extrudes, insets, loop cuts, moves, paints, renames, deletes, undos and redos. Shared
//! by tests and benchmarks so that no figure rests on random bytes. Deterministic for a seed: it uses
//! its own SplitMix64, never a system random source.

use theta_mesh::{DeleteMode, EdgeKey, FaceId, MaterialId, Primitive, Quat, Vec3, VertexId};

use crate::command::{ElementSelection, ObjectTransform, Op};
use crate::ids::{AuthorId, CommandId, ObjectId, Role};
use crate::scene::Scene;
use crate::sign::Keypair;

/// SplitMix64: a tiny, well-mixed, seedable generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let out = crate::ids::splitmix(self.0);
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        out
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// A float in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.range(0.0, 1.0) < p
    }
    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> Option<&'a T> {
        (!xs.is_empty()).then(|| &xs[self.below(xs.len())])
    }
}

/// Deterministic keys for test and benchmark authors.
pub fn author_key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    seed[8] = 0x7e;
    Keypair::from_secret(seed)
}

fn primitive(rng: &mut Rng) -> Primitive {
    match rng.below(6) {
        0 => Primitive::Cuboid {
            size: Vec3::new(rng.range(0.2, 2.0), rng.range(0.2, 2.0), 1.0),
        },
        1 => Primitive::Cylinder {
            radius: 0.5,
            height: 1.0,
            segments: 6 + rng.below(10) as u32,
        },
        2 => Primitive::Cone {
            radius: 0.5,
            height: 1.0,
            segments: 5 + rng.below(8) as u32,
        },
        3 => Primitive::UvSphere {
            radius: 0.5,
            segments: 8,
            rings: 5,
        },
        4 => Primitive::Icosphere {
            radius: 0.5,
            level: rng.below(2) as u32,
        },
        _ => Primitive::Torus {
            major_radius: 1.0,
            minor_radius: 0.3,
            major_segments: 8,
            minor_segments: 4,
        },
    }
}

/// An operation an author might plausibly make next, given the scene they see and their own
/// recent commands (for undo and redo).
pub fn next_op(rng: &mut Rng, scene: &Scene, me: AuthorId, mine: &[CommandId]) -> Op {
    let objects: Vec<ObjectId> = scene.objects().map(|(id, _)| id).collect();
    let Some(&obj) = rng.pick(&objects) else {
        return create(rng);
    };
    let Some(o) = scene.object(obj) else {
        return create(rng);
    };
    let mesh = o.mesh();
    let faces: Vec<FaceId> = mesh.faces().collect();
    let verts: Vec<VertexId> = mesh.vertices().collect();
    let edge = mesh
        .edges()
        .nth(rng.below(mesh.edge_count().max(1)))
        .and_then(|h| Some(EdgeKey(mesh.origin(h).ok()?, mesh.dest(h).ok()?)));
    let face = rng.pick(&faces).copied();
    let _ = me;
    match rng.below(100) {
        0..=9 => create(rng),
        10..=24 => Op::MoveVertices {
            object: obj,
            vertices: (0..1 + rng.below(4))
                .filter_map(|_| rng.pick(&verts).copied())
                .collect(),
            delta: Vec3::new(
                rng.range(-0.3, 0.3),
                rng.range(-0.3, 0.3),
                rng.range(-0.3, 0.3),
            ),
        },
        25..=32 => Op::MoveObject {
            object: obj,
            delta: Vec3::new(rng.range(-1.0, 1.0), 0.0, rng.range(-1.0, 1.0)),
        },
        33..=42 => match face {
            Some(f) => Op::ExtrudeRegion {
                object: obj,
                faces: vec![f],
                offset: Vec3::new(0.0, rng.range(0.1, 0.5), 0.0),
            },
            None => create(rng),
        },
        43..=48 => match face {
            Some(f) => Op::Inset {
                object: obj,
                faces: vec![f],
                amount: rng.range(0.1, 0.6),
            },
            None => create(rng),
        },
        49..=54 => match edge {
            Some(edge) => Op::LoopCut {
                object: obj,
                edge,
                cuts: 1,
            },
            None => create(rng),
        },
        55..=62 => Op::PaintFaces {
            object: obj,
            faces: (0..1 + rng.below(3))
                .filter_map(|_| rng.pick(&faces).copied())
                .collect(),
            material: MaterialId(rng.below(26) as u32),
        },
        63..=65 => Op::RenameObject {
            object: obj,
            name: format!("part-{}", rng.below(1000)),
        },
        66..=68 => match edge {
            Some(edge) => Op::SplitEdge {
                object: obj,
                edge,
                t: rng.range(0.2, 0.8),
            },
            None => create(rng),
        },
        69..=70 if mesh.face_count() < 200 => Op::Subdivide {
            object: obj,
            levels: 1,
        },
        71..=73 => Op::TransformElements {
            object: obj,
            selection: ElementSelection {
                faces: face.into_iter().collect(),
                ..Default::default()
            },
            transform: theta_mesh::Transform::Rotate {
                rotation: Quat::from_axis_angle(Vec3::Y, rng.range(-0.5, 0.5))
                    .unwrap_or(Quat::IDENTITY),
                pivot: Vec3::ZERO,
            },
        },
        74..=76 => match face {
            Some(f) => Op::DeleteFaces {
                object: obj,
                faces: vec![f],
                mode: DeleteMode::Hole,
            },
            None => create(rng),
        },
        77..=78 => Op::DeleteObject { object: obj },
        79..=80 => Op::DuplicateObject {
            object: obj,
            offset: Vec3::new(1.5, 0.0, 0.0),
        },
        81..=83 => Op::SetObjectTransform {
            object: obj,
            transform: ObjectTransform {
                translation: Vec3::new(rng.range(-3.0, 3.0), 0.0, rng.range(-3.0, 3.0)),
                ..ObjectTransform::IDENTITY
            },
        },
        84..=92 => match rng.pick(mine) {
            Some(&target) => Op::Undo { target },
            None => create(rng),
        },
        _ => Op::PaintObject {
            object: obj,
            material: MaterialId(rng.below(24) as u32),
        },
    }
}

fn create(rng: &mut Rng) -> Op {
    Op::CreateObject {
        name: format!("shape-{}", rng.below(1000)),
        primitive: primitive(rng),
        material: MaterialId(rng.below(24) as u32),
        transform: ObjectTransform {
            translation: Vec3::new(rng.range(-4.0, 4.0), 0.0, rng.range(-4.0, 4.0)),
            ..ObjectTransform::IDENTITY
        },
    }
}

/// A whole session as signed command bytes, in the order they were made: author 0 starts it and
/// makes the others editors, then `commands` edits follow, each author building on the full log.
pub fn session(seed: u64, authors: usize, commands: usize) -> Vec<Vec<u8>> {
    let keys: Vec<Keypair> = (0..authors.max(1)).map(author_key).collect();
    session_of(seed, &keys, commands)
}

/// [`session`] with these authors (the first starts it; at least one is needed).
pub fn session_of(seed: u64, keys: &[Keypair], commands: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let Some(first) = keys.first() else {
        return vec![];
    };
    let g = crate::author::genesis(first, "generated");
    let Ok(gv) = crate::log::verify_command(&g) else {
        return vec![];
    };
    let mut replica = crate::fold::Replica::new(gv.id());
    let mut out = vec![g];
    let _ = replica.insert(gv);
    let add = |replica: &mut crate::fold::Replica, bytes: Vec<u8>, out: &mut Vec<Vec<u8>>| {
        if let Ok(v) = crate::log::verify_command(&bytes) {
            let _ = replica.insert(v);
            out.push(bytes);
        }
    };
    for k in &keys[1..] {
        let b = crate::author::sign(
            &keys[0],
            replica.log(),
            Op::GrantRole {
                author: k.author(),
                role: Role::Editor,
            },
        );
        add(&mut replica, b, &mut out);
    }
    replica.settle();
    let mut mine: Vec<Vec<CommandId>> = vec![vec![]; keys.len()];
    for _ in 0..commands {
        let a = rng.below(keys.len());
        let op = next_op(&mut rng, replica.scene(), keys[a].author(), &mine[a]);
        let b = crate::author::sign(&keys[a], replica.log(), op);
        if let Ok(v) = crate::log::verify_command(&b) {
            mine[a].push(v.id());
            if mine[a].len() > 8 {
                mine[a].remove(0);
            }
            let _ = replica.insert(v);
            out.push(b);
            replica.settle();
        }
    }
    out
}
