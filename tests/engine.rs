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

mod common;
use common::Doc;

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
        .mesh()
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
        let m = &doc.replica.scene().object(a).unwrap().mesh();
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

// ---- Editor tools ----

use std::sync::{Arc, Mutex};
use theta::engine::ControllerState;
use theta::engine::input::{InputFrame, InputProvider};
use theta::engine::{Action, GrabMode, SelectMode, TrackedPose};
use theta::presence::{Ray, Tool};
use theta_crdt::scene::Event;
use theta_mesh::Transform;

/// An input provider the test moves by hand.
#[derive(Clone, Default)]
struct Hand(Arc<Mutex<InputFrame>>);

impl InputProvider for Hand {
    fn name(&self) -> &'static str {
        "test-hand"
    }
    fn sample(&mut self, _t: std::time::Duration) -> InputFrame {
        *self.0.lock().unwrap()
    }
}

/// A local user (Ada, admin) editing through the engine's tools, and Bob, a remote editor.
struct Rig {
    doc: Doc,
    bob: Keypair,
    engine: Engine,
    hand: Hand,
    t: u64,
    rejected: usize,
}

impl Rig {
    fn new() -> Rig {
        let mut doc = Doc::new();
        let bob = author_key(5);
        doc.edit(Op::GrantRole {
            author: bob.author(),
            role: theta_crdt::ids::Role::Editor,
        });
        let mut engine = Engine::new(doc.replica.scene());
        let hand = Hand::default();
        engine.set_input(hand.clone());
        Rig {
            doc,
            bob,
            engine,
            hand,
            t: 0,
            rejected: 0,
        }
    }

    fn events(&mut self, ev: &[Event]) {
        self.rejected += ev
            .iter()
            .filter(|e| matches!(e, Event::Rejected(_)))
            .count();
        self.engine.apply(self.doc.replica.scene(), ev);
    }

    fn edit(&mut self, op: Op) -> ObjectIdOf {
        let (id, ev) = self.doc.edit(op);
        self.events(&ev);
        DerivedIds::new(&id).object()
    }

    /// Bob's command, landing now.
    fn remote(&mut self, op: Op) {
        let b = author::sign(&self.bob, self.doc.replica.log(), op);
        self.doc
            .replica
            .insert(verify_command(&b).unwrap())
            .unwrap();
        let ev = self.doc.replica.settle();
        self.events(&ev);
    }

    /// One frame with the pointer on `ray` and the buttons as given.
    fn frame(&mut self, ray: Option<Ray>, trigger: bool, grip: bool) {
        *self.hand.0.lock().unwrap() = InputFrame {
            pose: TrackedPose {
                head: Some(Pose::at(Vec3::new(0.0, 0.0, 5.0))),
                ..TrackedPose::default()
            },
            controls: ControllerState {
                pointer: ray,
                trigger: [0.0, if trigger { 1.0 } else { 0.0 }],
                grip: [0.0, if grip { 1.0 } else { 0.0 }],
                buttons: 0,
            },
        };
        self.t += 11;
        self.engine
            .step_to(std::time::Duration::from_millis(self.t));
    }

    /// Signs what the tools made; returns the ops.
    fn commit(&mut self) -> Vec<Op> {
        let ops: Vec<Op> = self.engine.editor().pending().cloned().collect();
        let doc = &mut self.doc;
        let mut events = Vec::new();
        self.engine
            .commit_edits(|op| {
                let (id, ev) = doc.edit(op);
                events.extend(ev);
                Ok(id)
            })
            .unwrap();
        self.events(&events);
        ops
    }

    fn act(&mut self, a: Action) -> Vec<Op> {
        self.engine.act(a);
        self.frame(None, false, false);
        self.commit()
    }

    fn placement(&self, o: ObjectIdOf) -> ObjectTransform {
        self.doc.replica.scene().object(o).unwrap().transform
    }

    fn shown_translation(&self, o: ObjectIdOf) -> [f32; 3] {
        let e = self.engine.entity_of(o).unwrap();
        let m = self.engine.render_frame().instance(e).unwrap().model;
        [m[12], m[13], m[14]]
    }
}

type ObjectIdOf = theta_crdt::ids::ObjectId;

/// A ray from in front of the scene straight down −z through (x, y).
fn ray_at(x: f32, y: f32) -> Option<Ray> {
    Some(Ray {
        origin: Vec3::new(x, y, 5.0),
        direction: Vec3::new(0.0, 0.0, -1.0),
    })
}

#[test]
fn a_grab_drag_shows_live_to_me_and_peers_and_commits_one_move_on_release_remote_move_mid_drag() {
    let mut rig = Rig::new();
    let a = rig.edit(cube("a", 0.0));
    rig.act(Action::SetTool(Tool::Grab));
    rig.frame(ray_at(0.1, 0.1), false, false);
    assert_eq!(rig.engine.editor().hovered, Some(ElementRef::Object(a)));
    rig.frame(ray_at(0.1, 0.1), true, false);
    assert!(
        rig.engine.editor().drag.is_some(),
        "the press starts a drag"
    );
    // The pointer slides half a metre right (and a little more, which the grid snaps away).
    rig.frame(ray_at(0.61, 0.1), true, false);
    assert_eq!(
        rig.engine.editor().pending().count(),
        0,
        "nothing is committed mid-drag"
    );
    assert_eq!(
        rig.placement(a).translation,
        Vec3::ZERO,
        "the scene has not moved"
    );
    let shown = rig.shown_translation(a);
    assert!(
        (shown[0] - 0.5).abs() < 1e-5 && shown[1] == 0.0,
        "{shown:?}"
    );
    // The drag travels in my presence; a peer's engine shows it live on its copy.
    let mine = rig.engine.presence(&Presence {
        name: "ada".into(),
        colour: 0x3366ffff,
        ..Presence::default()
    });
    assert_eq!(mine.selected, vec![ElementRef::Object(a)]);
    assert_eq!(mine.tool, Tool::Grab);
    let Some(Transform::Translate(d)) = mine.drag else {
        panic!("no drag in presence: {:?}", mine.drag)
    };
    assert!((d.x - 0.5).abs() < 1e-5);
    let mut theirs = Engine::new(rig.doc.replica.scene());
    theirs.set_peers(&[([1; 32], mine.clone())]);
    theirs.step();
    let e = theirs.entity_of(a).unwrap();
    let inst = theirs.render_frame().instance(e).unwrap();
    assert!(
        (inst.model[12] - 0.5).abs() < 1e-5,
        "the peer sees the drag live"
    );
    assert_eq!(inst.selected, Some(0x3366ffff), "in the dragger's colour");
    // Bob moves the same cube up while I drag: the preview shows both.
    rig.remote(Op::MoveObject {
        object: a,
        delta: Vec3::new(0.0, 1.0, 0.0),
    });
    rig.frame(ray_at(1.1, 0.1), true, false);
    let shown = rig.shown_translation(a);
    assert!(
        (shown[0] - 1.0).abs() < 1e-5 && (shown[1] - 1.0).abs() < 1e-5,
        "{shown:?}"
    );
    // Release: exactly one command, a delta, so Bob's move and mine add up.
    rig.frame(ray_at(1.1, 0.1), false, false);
    let ops = rig.commit();
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert!(
        matches!(&ops[0], Op::MoveObject { object, delta } if *object == a && (delta.x - 1.0).abs() < 1e-5 && delta.y == 0.0)
    );
    rig.frame(None, false, false);
    let t = rig.placement(a).translation;
    assert!(
        (t.x - 1.0).abs() < 1e-5 && (t.y - 1.0).abs() < 1e-5,
        "{t:?}"
    );
    assert_eq!(
        rig.shown_translation(a),
        [t.x, t.y, t.z],
        "the preview gave way to the scene"
    );
    assert!(rig.engine.editor().presence_drag().is_none());
    rig.engine.matches(rig.doc.replica.scene()).unwrap();
    // Once the drag ends, the peer's presence no longer carries it.
    let mine = rig.engine.presence(&Presence::default());
    assert!(mine.drag.is_none());
    // Undo takes my move back, on top of Bob's; redo puts it back.
    rig.act(Action::Undo);
    assert_eq!(rig.placement(a).translation, Vec3::new(0.0, 1.0, 0.0));
    rig.act(Action::Redo);
    let t = rig.placement(a).translation;
    assert!(
        (t.x - 1.0).abs() < 1e-5 && (t.y - 1.0).abs() < 1e-5,
        "{t:?}"
    );
    assert_eq!(rig.rejected, 0);
}

#[test]
fn a_drag_whose_object_a_peer_deletes_is_cancelled_and_commits_nothing() {
    let mut rig = Rig::new();
    let a = rig.edit(cube("a", 0.0));
    rig.act(Action::SetTool(Tool::Grab));
    rig.frame(ray_at(0.0, 0.0), true, false);
    rig.frame(ray_at(0.5, 0.0), true, false);
    assert!(rig.engine.editor().drag.is_some());
    rig.remote(Op::DeleteObject { object: a });
    rig.frame(ray_at(0.7, 0.0), true, false);
    assert!(rig.engine.editor().drag.is_none());
    assert!(rig.engine.editor().selection.is_empty());
    assert!(
        rig.engine
            .editor()
            .notices
            .iter()
            .any(|n| n.contains("deleted"))
    );
    rig.frame(ray_at(0.7, 0.0), false, false);
    assert!(rig.commit().is_empty(), "nothing to commit");
    rig.engine.matches(rig.doc.replica.scene()).unwrap();
}

#[test]
fn rotate_and_scale_drags_snap_and_the_grip_grabs_whatever_the_tool() {
    let mut rig = Rig::new();
    let a = rig.edit(cube("a", 0.0));
    rig.act(Action::SetTool(Tool::Grab));
    rig.act(Action::SetGrab(GrabMode::Rotate));
    // Grab at the cube's right edge, swing the pointer round: the angle snaps to 15° steps.
    rig.frame(ray_at(0.45, 0.0), true, false);
    rig.frame(ray_at(0.3, 0.0), true, false);
    rig.frame(ray_at(0.3, 0.0), false, false);
    let ops = rig.commit();
    let [Op::SetObjectTransform { transform, .. }] = ops.as_slice() else {
        panic!("{ops:?}")
    };
    let q = transform.rotation;
    let angle = 2.0 * q.y.atan2(q.w);
    let steps = angle / 15f32.to_radians();
    assert!(
        (steps - steps.round()).abs() < 1e-3,
        "angle {angle} is not a 15° multiple"
    );
    assert_eq!(rig.rejected, 0);
    // Scale: uniform, in 0.1 steps.
    rig.act(Action::SetGrab(GrabMode::Scale));
    rig.frame(ray_at(0.2, 0.2), true, false);
    rig.frame(ray_at(0.43, 0.43), true, false);
    rig.frame(ray_at(0.43, 0.43), false, false);
    let ops = rig.commit();
    let [Op::SetObjectTransform { transform, .. }] = ops.as_slice() else {
        panic!("{ops:?}")
    };
    let s = transform.scale;
    assert!(s.x == s.y && s.y == s.z && s.x > 1.0, "{s:?}");
    assert!(((s.x * 10.0) - (s.x * 10.0).round()).abs() < 1e-4, "{s:?}");
    // The grip moves, even with the select tool in hand.
    rig.act(Action::SetTool(Tool::Select));
    let before = rig.placement(a).translation;
    rig.frame(ray_at(0.0, 0.0), false, true);
    rig.frame(ray_at(0.0, -0.3), false, true);
    rig.frame(ray_at(0.0, -0.3), false, false);
    let ops = rig.commit();
    assert!(matches!(ops.as_slice(), [Op::MoveObject { .. }]), "{ops:?}");
    let after = rig.placement(a).translation;
    assert!(
        (after.y - before.y + 0.3).abs() < 1e-4,
        "{before:?} -> {after:?}"
    );
    rig.engine.matches(rig.doc.replica.scene()).unwrap();
}

/// A ray from `from` through `to`.
fn ray_through(from: Vec3, to: Vec3) -> Option<Ray> {
    Some(Ray {
        origin: from,
        direction: (to - from).normalized().unwrap(),
    })
}

#[test]
fn the_gizmo_moves_along_turns_about_and_stretches_along_one_axis() {
    use theta::engine::tools::Axis;
    let mut rig = Rig::new();
    let a = rig.edit(cube("a", 0.0));
    // Nothing selected: no gizmo, even with the grab tool.
    rig.act(Action::SetTool(Tool::Grab));
    rig.frame(ray_at(3.0, 3.0), false, false);
    assert_eq!(rig.engine.editor().gizmo, None);
    rig.act(Action::SetTool(Tool::Select));
    rig.frame(ray_at(0.1, 0.1), true, false);
    rig.frame(ray_at(0.1, 0.1), false, false);
    rig.act(Action::SetTool(Tool::Grab));
    // The move gizmo at the cube's centre, a fixed share of the distance from the eye.
    let eye = Vec3::new(0.0, 0.0, 5.0);
    rig.frame(ray_through(eye, Vec3::new(3.0, 3.0, 0.0)), false, false);
    let g = rig.engine.editor().gizmo.expect("a gizmo on the selection");
    assert_eq!(g.mode, GrabMode::Move);
    assert!(g.pivot.length() < 1e-5, "{:?}", g.pivot);
    assert!((g.size - 5.0 * theta::engine::tools::GIZMO_SHARE).abs() < 1e-4);
    assert_eq!(g.hovered, None);
    assert_eq!(rig.engine.render_frame().gizmo, Some(g));
    // Pointing at the X arrow lights it and hides the cube behind it from the pointer.
    let on_x = Vec3::new(g.size * 0.6, 0.0, 0.0);
    rig.frame(ray_through(eye, on_x), false, false);
    assert_eq!(rig.engine.editor().gizmo.unwrap().hovered, Some(Axis::X));
    assert_eq!(rig.engine.editor().hovered, None);
    // Dragged up and to the right, it moves along X only, snapped to the grid.
    rig.frame(ray_through(eye, on_x), true, false);
    let to = on_x + Vec3::new(0.52, 0.7, 0.0);
    rig.frame(ray_through(eye, to), true, false);
    assert_eq!(rig.engine.editor().gizmo.unwrap().active, Some(Axis::X));
    rig.frame(ray_through(eye, to), false, false);
    let ops = rig.commit();
    let [Op::MoveObject { delta, .. }] = ops.as_slice() else {
        panic!("{ops:?}")
    };
    assert!(
        (delta.x - 0.5).abs() < 1e-5 && delta.y == 0.0 && delta.z == 0.0,
        "{delta:?}"
    );
    // Rotate: the ring about Z, dragged a quarter turn, turns the cube 90° about Z only.
    rig.act(Action::SetGrab(GrabMode::Rotate));
    let eye = Vec3::new(0.5, 0.0, 5.0);
    let pivot = Vec3::new(0.5, 0.0, 0.0);
    rig.frame(ray_through(eye, Vec3::new(3.0, 3.0, 0.0)), false, false);
    let g = rig.engine.editor().gizmo.unwrap();
    assert!((g.pivot - pivot).length() < 1e-4, "{:?}", g.pivot);
    let ring = |deg: f32| {
        let th = deg.to_radians();
        pivot + Vec3::new(th.cos(), th.sin(), 0.0) * g.size
    };
    rig.frame(ray_through(eye, ring(0.0)), false, false);
    assert_eq!(rig.engine.editor().gizmo.unwrap().hovered, Some(Axis::Z));
    rig.frame(ray_through(eye, ring(0.0)), true, false);
    rig.frame(ray_through(eye, ring(88.0)), true, false);
    rig.frame(ray_through(eye, ring(88.0)), false, false);
    let ops = rig.commit();
    let [Op::SetObjectTransform { transform, .. }] = ops.as_slice() else {
        panic!("{ops:?}")
    };
    let q = transform.rotation;
    assert!(q.x.abs() < 1e-5 && q.y.abs() < 1e-5, "{q:?}");
    let angle = 2.0 * q.z.atan2(q.w);
    assert!(
        (angle - std::f32::consts::FRAC_PI_2).abs() < 1e-4,
        "{angle}"
    );
    assert!((transform.translation - pivot).length() < 1e-4);
    // Scale: the Y stalk dragged to twice its length doubles the cube along world Y, which
    // after the quarter turn is the cube's own X.
    rig.act(Action::SetGrab(GrabMode::Scale));
    rig.frame(
        ray_through(eye, pivot + Vec3::new(0.0, 0.5 * g.size, 0.0)),
        false,
        false,
    );
    assert_eq!(rig.engine.editor().gizmo.unwrap().hovered, Some(Axis::Y));
    rig.frame(
        ray_through(eye, pivot + Vec3::new(0.0, 0.5 * g.size, 0.0)),
        true,
        false,
    );
    rig.frame(
        ray_through(eye, pivot + Vec3::new(0.0, g.size, 0.0)),
        true,
        false,
    );
    rig.frame(
        ray_through(eye, pivot + Vec3::new(0.0, g.size, 0.0)),
        false,
        false,
    );
    let ops = rig.commit();
    let [Op::SetObjectTransform { transform, .. }] = ops.as_slice() else {
        panic!("{ops:?}")
    };
    let s = transform.scale;
    assert!(
        (s.x - 2.0).abs() < 1e-4 && (s.y - 1.0).abs() < 1e-4 && (s.z - 1.0).abs() < 1e-4,
        "{s:?}"
    );
    assert!((rig.placement(a).translation - pivot).length() < 1e-4);
    assert_eq!(rig.rejected, 0);
    rig.engine.matches(rig.doc.replica.scene()).unwrap();
}

#[test]
fn every_tool_turns_gestures_and_actions_into_commands_the_fold_accepts() {
    let mut rig = Rig::new();
    let a = rig.edit(cube("a", 0.0));
    let b = rig.edit(cube("b", 3.0));
    let tris = |rig: &Rig, o| {
        let e = rig.engine.entity_of(o).unwrap();
        rig.engine
            .world()
            .get::<RenderMesh>(e)
            .unwrap()
            .triangle_count()
    };
    // Face mode: the pointer picks the front face; extrude pushes it out along its normal.
    rig.act(Action::SetMode(SelectMode::Face));
    rig.frame(ray_at(0.1, 0.1), true, false);
    rig.frame(ray_at(0.1, 0.1), false, false);
    let sel = rig.engine.editor().selection.clone();
    assert!(
        matches!(sel.as_slice(), [ElementRef::Face(o, _)] if *o == a),
        "{sel:?}"
    );
    let ops = rig.act(Action::Extrude(0.5));
    assert!(
        matches!(&ops[..], [Op::ExtrudeRegion { offset, .. }] if (offset.z - 0.5).abs() < 1e-5),
        "{ops:?}"
    );
    assert_eq!(tris(&rig, a), 20);
    // The extrude tool as a drag: pressed on a face, pulled along its normal by an oblique
    // pointer, snapped, one command on release.
    rig.act(Action::SetTool(Tool::Extrude));
    let oblique = |x: f32| {
        let d = Vec3::new(-1.0, 0.0, -1.0).normalized().unwrap();
        Some(Ray {
            origin: Vec3::new(x, 0.2, 2.0) - d * 1.0,
            direction: d,
        })
    };
    rig.frame(ray_at(0.1, 0.1), true, false);
    rig.frame(oblique(0.0), true, false);
    rig.frame(oblique(0.0), false, false);
    let ops = rig.commit();
    assert!(matches!(&ops[..], [Op::ExtrudeRegion { .. }]), "{ops:?}");
    assert_eq!(tris(&rig, a), 28);
    // Inset and paint through the tools, on what the pointer is over.
    for (tool, kind) in [(Tool::Inset, "inset"), (Tool::Paint, "paint-faces")] {
        rig.act(Action::SetTool(tool));
        rig.frame(ray_at(0.0, 0.0), true, false);
        rig.frame(ray_at(0.0, 0.0), false, false);
        let ops = rig.commit();
        assert_eq!(ops.iter().map(|o| o.kind()).collect::<Vec<_>>(), [kind]);
    }
    // Edge mode: loop cut the ring of the picked edge of b.
    rig.act(Action::SetMode(SelectMode::Edge));
    rig.act(Action::SetTool(Tool::LoopCut));
    rig.frame(ray_at(3.45, 0.0), true, false);
    rig.frame(ray_at(3.45, 0.0), false, false);
    let ops = rig.commit();
    assert!(
        matches!(&ops[..], [Op::LoopCut { object, .. }] if *object == b),
        "{ops:?}"
    );
    assert!(tris(&rig, b) > 12);
    // Vertex mode picks the nearest corner.
    rig.act(Action::SetMode(SelectMode::Vertex));
    rig.act(Action::SetTool(Tool::Select));
    rig.frame(ray_at(3.45, 0.45), true, false);
    rig.frame(ray_at(3.45, 0.45), false, false);
    let sel = rig.engine.editor().selection.clone();
    assert!(
        matches!(sel.as_slice(), [ElementRef::Vertex(o, _)] if *o == b),
        "{sel:?}"
    );
    let ops = rig.act(Action::Translate(Vec3::new(0.0, 0.25, 0.0)));
    assert!(
        matches!(&ops[..], [Op::TransformElements { .. }]),
        "{ops:?}"
    );
    // Object mode: subdivide, mirror, duplicate, group and ungroup, insert, erase.
    rig.act(Action::SetMode(SelectMode::Object));
    rig.act(Action::Select(
        ElementRef::Object(b),
        theta::engine::SelectOp::Replace,
    ));
    assert_eq!(rig.act(Action::Subdivide(1))[0].kind(), "subdivide");
    assert_eq!(rig.act(Action::Mirror(0))[0].kind(), "mirror-symmetric");
    assert_eq!(
        rig.act(Action::Duplicate(Vec3::new(0.0, 0.0, 3.0)))[0].kind(),
        "duplicate-object"
    );
    assert_eq!(rig.doc.replica.scene().object_count(), 3);
    rig.act(Action::Select(
        ElementRef::Object(a),
        theta::engine::SelectOp::Add,
    ));
    assert_eq!(
        rig.act(Action::Group("pair".into()))[0].kind(),
        "group-objects"
    );
    assert!(rig.doc.replica.scene().object(a).unwrap().group.is_some());
    assert_eq!(rig.act(Action::Ungroup)[0].kind(), "ungroup");
    assert!(rig.doc.replica.scene().object(a).unwrap().group.is_none());
    rig.act(Action::SetTool(Tool::Insert));
    rig.act(Action::SetPrimitive(Primitive::Icosahedron { radius: 0.3 }));
    let down = Vec3::new(0.0, -1.0, -1.0).normalized().unwrap();
    rig.frame(
        Some(Ray {
            origin: Vec3::new(-3.0, 1.0, 5.0),
            direction: down,
        }),
        true,
        false,
    );
    let ops = rig.commit();
    assert!(
        // Standing on the ground: lifted by the icosahedron's depth below its centre (0.255 m),
        // snapped to the 5 cm grid.
        matches!(&ops[..], [Op::CreateObject { transform, .. }] if transform.translation.y == 0.25),
        "on the ground: {ops:?}"
    );
    assert_eq!(rig.doc.replica.scene().object_count(), 4);
    rig.frame(None, false, false);
    rig.act(Action::Select(
        ElementRef::Object(a),
        theta::engine::SelectOp::Replace,
    ));
    assert_eq!(rig.act(Action::Erase)[0].kind(), "delete-object");
    assert!(rig.doc.replica.scene().object(a).is_none());
    // Nothing selected: a notice, no command.
    assert!(rig.act(Action::Paint).is_empty());
    assert!(
        rig.engine
            .editor()
            .notices
            .last()
            .unwrap()
            .contains("nothing selected")
    );
    assert_eq!(rig.rejected, 0, "every command the tools made applied");
    rig.engine.matches(rig.doc.replica.scene()).unwrap();
    // The extraction lists every object once, and its mesh uploads followed the edits.
    rig.frame(None, false, false);
    assert_eq!(rig.engine.render_frame().instances.len(), 3);
}

#[test]
fn an_element_drag_shows_a_preview_mesh_and_commits_one_transform() {
    let mut rig = Rig::new();
    let a = rig.edit(cube("a", 0.0));
    rig.act(Action::SetMode(SelectMode::Face));
    rig.act(Action::SetTool(Tool::Grab));
    let e = rig.engine.entity_of(a).unwrap();
    let own = rig.engine.world().get::<RenderMesh>(e).unwrap().clone();
    rig.frame(ray_at(0.0, 0.0), true, false);
    rig.frame(ray_at(0.0, 0.4), true, false);
    let rf = rig.engine.render_frame();
    let inst = rf.instance(e).unwrap();
    assert!(inst.previewed);
    let [(pe, preview)] = rf.previews.as_slice() else {
        panic!("{} previews", rf.previews.len())
    };
    assert_eq!(*pe, e);
    assert_eq!(inst.mesh_revision, preview.revision);
    assert_eq!(preview.triangle_count(), own.triangle_count());
    let top = |m: &RenderMesh| m.positions.iter().map(|p| p[1]).fold(f32::MIN, f32::max);
    assert!(
        (top(preview) - 0.9).abs() < 1e-5,
        "the front face rose 0.4: {}",
        top(preview)
    );
    // A frame with the same pointer reuses the preview it built.
    let rev = preview.revision;
    rig.frame(ray_at(0.0, 0.4), true, false);
    assert_eq!(
        rig.engine.render_frame().instance(e).unwrap().mesh_revision,
        rev
    );
    rig.frame(ray_at(0.0, 0.4), false, false);
    let ops = rig.commit();
    assert!(
        matches!(&ops[..], [Op::TransformElements { selection, .. }] if selection.faces.len() == 1),
        "{ops:?}"
    );
    rig.frame(None, false, false);
    let rf = rig.engine.render_frame();
    assert!(rf.previews.is_empty());
    let inst = rf.instance(e).unwrap();
    assert!(!inst.previewed);
    let mesh = rig.engine.world().get::<RenderMesh>(e).unwrap();
    assert_eq!(inst.mesh_revision, mesh.revision);
    assert!(rf.uploads.is_empty() || rf.uploads == [e]);
    assert!((top(mesh) - 0.9).abs() < 1e-5);
    rig.engine.matches(rig.doc.replica.scene()).unwrap();
}

#[test]
fn every_system_is_timed_and_frames_feed_the_metrics() {
    theta::telemetry::init();
    let mut rig = Rig::new();
    rig.edit(cube("a", 0.0));
    for _ in 0..5 {
        rig.frame(ray_at(0.0, 0.0), false, false);
    }
    let times = rig.engine.system_times();
    let names: Vec<&str> = times.iter().map(|s| s.name.as_str()).collect();
    for want in ["sample_input", "run_editor", "extract"] {
        let s = times
            .iter()
            .find(|s| s.name.ends_with(want))
            .unwrap_or_else(|| panic!("{want} is not timed: {names:?}"));
        assert!(s.calls >= 5, "{s:?}");
        assert!(
            s.max >= s.mean && s.mean > std::time::Duration::ZERO,
            "{s:?}"
        );
    }
    let text = theta::telemetry::render();
    assert!(text.contains("theta_frame_seconds_count 5"), "{text}");
    assert!(
        text.contains("theta_stage_seconds_count{stage=\"render\"} 5"),
        "{text}"
    );
    let overlay = theta::telemetry::overlay();
    assert!(
        overlay.iter().any(|l| l.starts_with("system ")),
        "{overlay:?}"
    );
}
