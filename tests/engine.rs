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

#[derive(Resource, Default)]
struct Triggers(Vec<f32>);

#[test]
fn the_simulated_vr_provider_drives_the_local_user_each_frame() {
    use std::time::Duration;
    use theta::engine::input::{LocalUser, SimulatedVr};
    use theta::engine::{AfterInput, ControllerState, TrackedPose};
    let doc = Doc::new();
    let mut engine = Engine::new(doc.replica.scene());
    engine.set_input(SimulatedVr::default());
    engine.world_mut().init_resource::<Triggers>();
    // A tool reading this frame's input, ordered after the sampling.
    engine.add_systems(
        Stage::Simulation,
        (|mut t: ResMut<'_, Triggers>, q: Query<'_, '_, &ControllerState, With<LocalUser>>| {
            for c in &q {
                t.0.push(c.trigger[1]);
            }
        })
        .in_set(AfterInput),
    );
    let head_at = |e: &mut Engine, ms: u64| {
        e.step_to(Duration::from_millis(ms));
        let mut q = e
            .world_mut()
            .query_filtered::<&TrackedPose, With<LocalUser>>();
        q.single(e.world()).unwrap().head.unwrap().position
    };
    let h = head_at(&mut engine, 0);
    assert!((h.y - 1.7).abs() < 1e-6 && h.x.abs() < 1e-6, "{h:?}");
    // The wobble peaks a quarter period (0.5 s) in, and crosses zero at 1 s.
    let h = head_at(&mut engine, 500);
    assert!((h.x - 0.05).abs() < 1e-4, "{h:?}");
    let h = head_at(&mut engine, 1000);
    assert!(h.x.abs() < 1e-4, "{h:?}");
    // The trigger was down at 0 s, up at 0.5 s and 1 s, down again at 2.1 s.
    head_at(&mut engine, 2100);
    assert_eq!(
        engine.world().resource::<Triggers>().0,
        [1.0, 0.0, 0.0, 1.0]
    );
    let mut q = engine
        .world_mut()
        .query_filtered::<&ControllerState, With<LocalUser>>();
    let c = *q.single(engine.world()).unwrap();
    let d = c.pointer.unwrap().direction;
    assert!(d.y < 0.0 && d.z < 0.0, "points forward and down: {d:?}");
    assert_eq!(
        engine.world().resource::<theta::engine::FrameTime>().delta,
        Duration::from_millis(1100)
    );
}

#[test]
fn the_desktop_provider_turns_the_mouse_into_a_pointer_ray() {
    use std::time::Duration;
    use theta::engine::input::{Desktop, InputProvider};
    let mut d = Desktop {
        mouse: Some((640.0, 360.0)),
        buttons: (true, false),
        ..Desktop::default()
    };
    let f = d.sample(Duration::ZERO);
    let r = f.controls.pointer.unwrap();
    assert_eq!(r.origin, Vec3::new(0.0, 1.6, 4.0));
    assert!((r.direction.z + 1.0).abs() < 1e-6 && r.direction.x.abs() < 1e-6);
    assert_eq!(f.controls.trigger, [0.0, 1.0]);
    d.mouse = Some((1280.0, 0.0));
    let r = d.sample(Duration::ZERO).controls.pointer.unwrap();
    assert!(r.direction.x > 0.5 && r.direction.y > 0.3, "{r:?}");
    d.mouse = None;
    assert!(d.sample(Duration::ZERO).controls.pointer.is_none());
}

#[test]
fn undo_of_a_command_others_built_on_and_remote_commands_between_frames() {
    use theta_crdt::ids::Role;
    let mut doc = Doc::new();
    let bob = author_key(5);
    let (_, ev) = doc.edit(Op::GrantRole {
        author: bob.author(),
        role: Role::Editor,
    });
    let mut engine = Engine::new(doc.replica.scene());
    engine.apply(doc.replica.scene(), &ev);
    // Ada paints a cube; Bob, remotely, extrudes the top face of it.
    let (c, ev) = doc.edit(cube("a", 0.0));
    let a = DerivedIds::new(&c).object();
    engine.apply(doc.replica.scene(), &ev);
    let (paint, ev) = doc.edit(Op::PaintObject {
        object: a,
        material: MaterialId(7),
    });
    engine.apply(doc.replica.scene(), &ev);
    engine.step();
    let top = {
        let m = &doc.replica.scene().object(a).unwrap().mesh;
        m.faces()
            .max_by(|x, y| {
                let (nx, ny) = (m.face_normal(*x).unwrap(), m.face_normal(*y).unwrap());
                nx.y.total_cmp(&ny.y)
            })
            .unwrap()
    };
    let remote = author::sign(
        &bob,
        doc.replica.log(),
        Op::ExtrudeRegion {
            object: a,
            faces: vec![top],
            offset: Vec3::new(0.0, 1.0, 0.0),
        },
    );
    doc.replica
        .insert(verify_command(&remote).unwrap())
        .unwrap();
    let ev = doc.replica.settle();
    engine.apply(doc.replica.scene(), &ev);
    engine.step();
    engine.matches(doc.replica.scene()).unwrap();
    let ent = engine.entity_of(a).unwrap();
    assert_eq!(
        engine
            .world()
            .get::<RenderMesh>(ent)
            .unwrap()
            .triangle_count(),
        20,
        "the extrude shows: 10 quads"
    );
    // Ada undoes her paint, which Bob's extrude built on: the faces she painted get their old
    // material back; the faces Bob's extrude made (which took the paint from the face they grew
    // from) are his and stay; the world follows.
    let (_, ev) = doc.edit(Op::Undo { target: paint });
    engine.apply(doc.replica.scene(), &ev);
    engine.step();
    engine.matches(doc.replica.scene()).unwrap();
    let mesh = engine.world().get::<RenderMesh>(ent).unwrap();
    assert_eq!(mesh.triangle_count(), 20);
    let count = |m: u32| mesh.materials.iter().filter(|&&x| x == m).count();
    assert_eq!((count(3), count(7)), (12, 8), "{:?}", mesh.materials);
}
