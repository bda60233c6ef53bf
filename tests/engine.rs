//! The engine headless: the world follows the scene through change events (never rebuilt), the
//! schedule runs its stages and times them, and peers' presence becomes entities.

use bevy_ecs::prelude::*;
use theta::engine::{Engine, Interaction, Peer, Placement, RenderMesh, SceneObject, Stage};
use theta::presence::{ElementRef, Pose, Presence};
use theta_crdt::author;
use theta_crdt::command::{ObjectTransform, Op};
use theta_crdt::fold::Replica;
use theta_crdt::ids::DerivedIds;
use theta_crdt::log::verify_command;
use theta_crdt::sign::Keypair;
use theta_crdt::workload::author_key;
use theta_mesh::{MaterialId, Primitive, Vec3};

struct Doc {
    key: Keypair,
    replica: Replica,
}

impl Doc {
    fn new() -> Doc {
        let key = author_key(0);
        let g = author::genesis(&key, "engine");
        let v = verify_command(&g).unwrap();
        let mut replica = Replica::new(v.id());
        replica.insert(v).unwrap();
        replica.settle();
        Doc { key, replica }
    }

    /// Makes an edit; returns its id and the fold's change events.
    fn edit(&mut self, op: Op) -> (theta_crdt::ids::CommandId, Vec<theta_crdt::scene::Event>) {
        let b = author::sign(&self.key, self.replica.log(), op);
        let v = verify_command(&b).unwrap();
        let id = v.id();
        self.replica.insert(v).unwrap();
        (id, self.replica.settle())
    }
}

fn cube(name: &str, x: f32) -> Op {
    Op::CreateObject {
        name: name.into(),
        primitive: Primitive::Cuboid { size: Vec3::ONE },
        material: MaterialId(3),
        transform: ObjectTransform {
            translation: Vec3::new(x, 0.0, 0.0),
            ..ObjectTransform::IDENTITY
        },
    }
}

#[test]
fn the_world_follows_the_scene_through_its_events() {
    let mut doc = Doc::new();
    let mut engine = Engine::new(doc.replica.scene());
    let (a, ev) = doc.edit(cube("a", 0.0));
    engine.apply(doc.replica.scene(), &ev);
    let (b, ev) = doc.edit(cube("b", 3.0));
    engine.apply(doc.replica.scene(), &ev);
    let (a, b) = (DerivedIds::new(&a).object(), DerivedIds::new(&b).object());
    engine.step();
    engine.matches(doc.replica.scene()).unwrap();
    let ea = engine.entity_of(a).unwrap();
    let eb = engine.entity_of(b).unwrap();
    let rev = |e: &Engine, ent| e.world().get::<RenderMesh>(ent).unwrap().revision;
    let (ra, rb) = (rev(&engine, ea), rev(&engine, eb));
    assert_eq!(
        engine
            .world()
            .get::<RenderMesh>(ea)
            .unwrap()
            .triangle_count(),
        12
    );
    assert!(
        engine
            .world()
            .get::<RenderMesh>(ea)
            .unwrap()
            .materials
            .iter()
            .all(|&m| m == 3)
    );

    // A move changes the placement and nothing else: the mesh is not rebuilt.
    let (_, ev) = doc.edit(Op::MoveObject {
        object: a,
        delta: Vec3::new(0.0, 1.0, 0.0),
    });
    engine.apply(doc.replica.scene(), &ev);
    engine.step();
    engine.matches(doc.replica.scene()).unwrap();
    assert_eq!(
        engine.world().get::<Placement>(ea).unwrap().0.translation,
        Vec3::new(0.0, 1.0, 0.0)
    );
    assert_eq!((rev(&engine, ea), rev(&engine, eb)), (ra, rb));

    // A paint rebuilds that object's render data only.
    let faces: Vec<_> = doc
        .replica
        .scene()
        .object(b)
        .unwrap()
        .mesh
        .faces()
        .collect();
    let (_, ev) = doc.edit(Op::PaintFaces {
        object: b,
        faces: faces[..2].to_vec(),
        material: MaterialId(9),
    });
    engine.apply(doc.replica.scene(), &ev);
    engine.matches(doc.replica.scene()).unwrap();
    assert_eq!(rev(&engine, ea), ra);
    assert!(rev(&engine, eb) > rb);
    let painted = engine.world().get::<RenderMesh>(eb).unwrap();
    assert_eq!(painted.materials.iter().filter(|&&m| m == 9).count(), 4);

    // Deleting an object despawns its entity; the rest stays.
    let (_, ev) = doc.edit(Op::DeleteObject { object: a });
    engine.apply(doc.replica.scene(), &ev);
    engine.matches(doc.replica.scene()).unwrap();
    assert!(engine.entity_of(a).is_none());
    assert!(engine.world().get_entity(ea).is_err());
    assert_eq!(engine.entity_of(b), Some(eb));
}

#[test]
fn a_generated_session_projects_incrementally_as_a_fresh_projection_would() {
    let cmds = theta_crdt::workload::session(31, 3, 400);
    let first = verify_command(&cmds[0]).unwrap();
    let mut replica = Replica::new(first.id());
    let mut engine = Engine::new(replica.scene());
    for chunk in cmds.chunks(7) {
        for c in chunk {
            let _ = replica.insert(verify_command(c).unwrap());
        }
        let ev = replica.settle();
        engine.apply(replica.scene(), &ev);
        engine.step();
        engine.matches(replica.scene()).unwrap();
    }
    assert!(replica.scene().object_count() > 3);
    // A fresh engine over the final scene holds the same objects.
    let mut fresh = Engine::new(replica.scene());
    fresh.matches(replica.scene()).unwrap();
    let count = |e: &mut Engine| {
        e.world_mut()
            .query::<&SceneObject>()
            .iter(e.world())
            .count()
    };
    assert_eq!(count(&mut engine), count(&mut fresh));
}

#[derive(Resource, Default)]
struct Seen {
    startups: u32,
    objects: usize,
    order: Vec<&'static str>,
}

#[test]
fn stages_run_in_order_and_are_timed() {
    let mut doc = Doc::new();
    let (_, ev) = doc.edit(cube("a", 0.0));
    let mut engine = Engine::new(doc.replica.scene());
    engine.apply(doc.replica.scene(), &ev);
    engine.world_mut().init_resource::<Seen>();
    engine.add_systems(Stage::Startup, |mut s: ResMut<'_, Seen>| s.startups += 1);
    engine.add_systems(
        Stage::Simulation,
        |mut s: ResMut<'_, Seen>, q: Query<'_, '_, &SceneObject>| {
            s.objects = q.iter().count();
            s.order.push("simulation");
        },
    );
    engine.add_systems(Stage::Render, |mut s: ResMut<'_, Seen>| {
        s.order.push("render")
    });
    engine.add_systems(Stage::Editor, |mut s: ResMut<'_, Seen>| {
        s.order.push("editor")
    });
    engine.step();
    engine.step();
    let seen = engine.world().resource::<Seen>();
    assert_eq!(seen.startups, 1);
    assert_eq!(seen.objects, 1);
    assert_eq!(
        seen.order,
        [
            "simulation",
            "render",
            "editor",
            "simulation",
            "render",
            "editor"
        ]
    );
    let st = engine.stats().clone();
    assert_eq!((st.frames, st.overruns), (2, 0));
    assert!(st.last_frame >= st.last[1]);
    // A budget nothing can meet: every frame is an overrun.
    engine.set_budget(std::time::Duration::ZERO);
    engine.step();
    assert_eq!(engine.stats().overruns, 1);
}

#[test]
fn peers_appear_select_and_leave() {
    let mut doc = Doc::new();
    let (a, ev) = doc.edit(cube("a", 0.0));
    let a = DerivedIds::new(&a).object();
    let mut engine = Engine::new(doc.replica.scene());
    engine.apply(doc.replica.scene(), &ev);
    let ada = [1u8; 32];
    let bob = [2u8; 32];
    let p = |name: &str, sel: bool| Presence {
        head: Some(Pose::at(Vec3::new(0.0, 1.7, 2.0))),
        selected: if sel {
            vec![ElementRef::Object(a)]
        } else {
            vec![]
        },
        hovered: Some(ElementRef::Object(a)),
        name: name.into(),
        ..Presence::default()
    };
    engine.set_peers(&[(ada, p("ada", true)), (bob, p("bob", false))]);
    let ea = engine.entity_of(a).unwrap();
    let i = engine.world().get::<Interaction>(ea).unwrap().clone();
    assert_eq!(i.selected_by, vec![ada]);
    assert_eq!(i.hovered_by, vec![ada, bob]);
    let peers = |e: &mut Engine| {
        let mut v: Vec<String> = e
            .world_mut()
            .query::<&Peer>()
            .iter(e.world())
            .map(|p| p.name.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(peers(&mut engine), ["ada", "bob"]);
    // Ada leaves: her entity goes, and so do her marks.
    engine.set_peers(&[(bob, p("bob", false))]);
    assert_eq!(peers(&mut engine), ["bob"]);
    let i = engine.world().get::<Interaction>(ea).unwrap().clone();
    assert!(i.selected_by.is_empty());
    assert_eq!(i.hovered_by, vec![bob]);
    engine.set_peers(&[]);
    assert!(peers(&mut engine).is_empty());
}
