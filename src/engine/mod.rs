//! The engine: the ECS world (bevy_ecs) as a projection of the scene, and the frame schedule.
//!
//! The scene (the fold of the log) is the truth; the world is derived from it and never edited
//! directly. [`Engine::apply`] takes the scene's change events after each fold and touches only
//! the entities they name: one entity per object ([`projection`]), found through a map from its
//! stable object id, so the world is never rebuilt per frame. Connected peers are entities too,
//! fed by presence ([`Engine::set_peers`]).
//!
//! A frame runs four stages in order — [`Stage::Startup`] (once), [`Stage::Simulation`],
//! [`Stage::Render`], [`Stage::Editor`] — each a bevy schedule whose systems run in parallel where
//! their data access allows. Every stage is timed, and frames over the budget are counted
//! ([`FrameStats`]).

pub mod bench;
pub mod extract;
pub mod input;
pub mod projection;
pub mod tools;

use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{IntoScheduleConfigs, ScheduleLabel};
use bevy_ecs::system::ScheduleSystem;
use theta_crdt::scene::{Event, Scene};

pub use extract::{Avatar, Instance, LocalColour, RenderFrame};
pub use projection::{
    ControllerState, DisplayName, InGroup, Interaction, Peer, PeerKey, Placement, RenderMesh,
    SceneObject, Shape, TrackedPose,
};
pub use tools::{Action, Drag, DragKind, Editor, GrabMode, SelectMode, SelectOp, Snap};

/// The stages of a frame, in the order they run.
#[derive(ScheduleLabel, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Once, before the first frame.
    Startup,
    /// Input, presence and the scene's changes become the world's.
    Simulation,
    /// What the renderer reads is extracted from the world.
    Render,
    /// Editor tools and UI.
    Editor,
}

impl Stage {
    /// The stages that run every frame.
    pub const FRAME: [Stage; 3] = [Stage::Simulation, Stage::Render, Stage::Editor];

    /// Its name ("startup", "simulation", "render", "editor").
    pub fn name(self) -> &'static str {
        match self {
            Stage::Startup => "startup",
            Stage::Simulation => "simulation",
            Stage::Render => "render",
            Stage::Editor => "editor",
        }
    }

    fn index(self) -> usize {
        match self {
            Stage::Startup => 0,
            Stage::Simulation => 1,
            Stage::Render => 2,
            Stage::Editor => 3,
        }
    }
}

/// Timing of the frames run so far.
#[derive(Resource, Debug, Clone, Default)]
pub struct FrameStats {
    /// Frames run.
    pub frames: u64,
    /// Frames whose stages together took longer than the budget.
    pub overruns: u64,
    /// The budget of one frame.
    pub budget: Duration,
    /// The last frame's time per stage (indexed like [`Stage`]: startup, simulation, render,
    /// editor).
    pub last: [Duration; 4],
    /// The slowest time seen per stage.
    pub max: [Duration; 4],
    /// The last frame's total.
    pub last_frame: Duration,
}

/// The frame's time since the engine started, and since the last frame (a resource).
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct FrameTime {
    /// Since the engine started.
    pub now: Duration,
    /// Since the last frame.
    pub delta: Duration,
}

/// The engine: a world projected from the scene, and its schedules.
pub struct Engine {
    world: World,
    started: bool,
    epoch: Instant,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("entities", &self.world.entities().count_spawned())
            .field("started", &self.started)
            .finish()
    }
}

/// The system set that samples input, first in the simulation stage.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InputSet;

/// Systems of the simulation stage that read this frame's input go in this set.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AfterInput;

/// The editor tools' system, in the simulation stage after input (so the frame that samples a
/// gesture also extracts what it shows).
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ToolSet;

/// The render extraction, in the render stage.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtractSet;

/// The frame budget at 90 Hz.
pub const BUDGET_90HZ: Duration = Duration::from_micros(11_111);

impl Engine {
    /// An engine with empty stages and a world projecting `scene` as it is now.
    pub fn new(scene: &Scene) -> Engine {
        let mut world = World::new();
        for s in [
            Stage::Startup,
            Stage::Simulation,
            Stage::Render,
            Stage::Editor,
        ] {
            world.add_schedule(Schedule::new(s));
        }
        world.insert_resource(FrameStats {
            budget: BUDGET_90HZ,
            ..FrameStats::default()
        });
        world.insert_resource(projection::Objects::default());
        world.insert_resource(FrameTime::default());
        world.insert_resource(Editor::default());
        world.insert_resource(RenderFrame::default());
        world.insert_resource(LocalColour::default());
        world.schedule_scope(Stage::Simulation, |_, s| {
            s.configure_sets((InputSet, AfterInput, ToolSet).chain());
            s.add_systems(tools::run_editor.in_set(ToolSet));
        });
        world.schedule_scope(Stage::Render, |_, s| {
            s.add_systems(extract::extract.in_set(ExtractSet));
        });
        let mut e = Engine {
            world,
            started: false,
            epoch: Instant::now(),
        };
        let all: Vec<Event> = scene
            .objects()
            .map(|(id, _)| Event::ObjectAdded(id))
            .collect();
        e.apply(scene, &all);
        e
    }

    /// Adds systems to a stage.
    pub fn add_systems<M>(
        &mut self,
        stage: Stage,
        systems: impl IntoScheduleConfigs<ScheduleSystem, M>,
    ) {
        self.world.schedule_scope(stage, |_, s| {
            s.add_systems(systems);
        });
    }

    /// Sets the frame budget (90 Hz by default).
    pub fn set_budget(&mut self, budget: Duration) {
        self.world.resource_mut::<FrameStats>().budget = budget;
    }

    /// Brings the world up to date with the scene's change events (as `Replica::settle` returns
    /// them): only the named objects are touched.
    pub fn apply(&mut self, scene: &Scene, events: &[Event]) {
        projection::apply(&mut self.world, scene, events);
    }

    /// Makes the peer entities match the peers' presences: new peers spawn, known ones update,
    /// and the ones not listed (disconnected, or gone from view) despawn.
    pub fn set_peers(&mut self, peers: &[(PeerKey, crate::presence::Presence)]) {
        projection::set_peers(&mut self.world, peers);
    }

    /// Makes `provider` the local user's input: a `LocalUser` entity whose pose and controls are
    /// sampled from it at the start of every frame's simulation stage.
    pub fn set_input(&mut self, provider: impl input::InputProvider) {
        let first = !self.world.contains_resource::<input::Input>();
        self.world.insert_resource(input::Input(Box::new(provider)));
        if first {
            self.world.spawn((
                input::LocalUser,
                TrackedPose::default(),
                ControllerState::default(),
            ));
            // First in the stage: every other simulation system sees this frame's input.
            self.world.schedule_scope(Stage::Simulation, |_, s| {
                s.add_systems(input::sample_input.in_set(InputSet));
            });
        }
    }

    /// Runs one frame at the real time since the engine started.
    pub fn step(&mut self) {
        let now = self.epoch.elapsed();
        self.step_to(now);
    }

    /// Runs one frame at time `now` since the start (headless runs and tests choose it), timing
    /// each stage; the startup stage runs first, the first time.
    pub fn step_to(&mut self, now: Duration) {
        {
            let mut t = self.world.resource_mut::<FrameTime>();
            let delta = now.saturating_sub(t.now);
            *t = FrameTime { now, delta };
        }
        let mut times = [Duration::ZERO; 4];
        if !self.started {
            self.started = true;
            let t = Instant::now();
            self.world.run_schedule(Stage::Startup);
            times[0] = t.elapsed();
        }
        let t_frame = Instant::now();
        let _frame = tracing::trace_span!("frame").entered();
        for s in Stage::FRAME {
            let _span = tracing::trace_span!("stage", stage = s.name()).entered();
            let t = Instant::now();
            self.world.run_schedule(s);
            times[s.index()] = t.elapsed();
        }
        let frame = t_frame.elapsed();
        let mut st = self.world.resource_mut::<FrameStats>();
        st.frames += 1;
        let over = frame > st.budget;
        if over {
            st.overruns += 1;
        }
        crate::telemetry::metrics().frame(
            frame,
            &Stage::FRAME.map(|s| (s.name(), times[s.index()])),
            over,
        );
        for (i, t) in times.iter().enumerate() {
            st.max[i] = st.max[i].max(*t);
        }
        st.last = times;
        st.last_frame = frame;
    }

    /// Per-system timing (bevy_ecs's `system` spans, timed by the telemetry layer once
    /// `telemetry::init` or a subscriber with `telemetry::SystemTimer` is installed), across
    /// every engine in the process.
    pub fn system_times(&self) -> Vec<crate::telemetry::SystemTime> {
        crate::telemetry::system_times()
    }

    /// The frames' timing.
    pub fn stats(&self) -> &FrameStats {
        self.world.resource::<FrameStats>()
    }

    /// The world (read it; change it only through the engine's systems).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The world, for systems' tests and tools that add resources.
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    /// The local user's editing state: tool, selection, drag.
    pub fn editor(&self) -> &Editor {
        self.world.resource::<Editor>()
    }

    /// The editing state, to change settings directly.
    pub fn editor_mut(&mut self) -> Mut<'_, Editor> {
        self.world.resource_mut::<Editor>()
    }

    /// Queues an editor action for the next frame (UI buttons, shortcuts, scripts).
    pub fn act(&mut self, a: Action) {
        self.world.resource_mut::<Editor>().act(a);
    }

    /// Signs the commands the tools made, in order, with `sign` (which returns each one's id;
    /// `Session::edit` for a local session, the node's edit for a live one), keeping my undo
    /// history. The fold's events for them then go through [`Engine::apply`] as usual.
    pub fn commit_edits(
        &mut self,
        sign: impl FnMut(theta_crdt::command::Op) -> anyhow::Result<theta_crdt::ids::CommandId>,
    ) -> anyhow::Result<Vec<theta_crdt::ids::CommandId>> {
        self.world.resource_mut::<Editor>().commit(sign)
    }

    /// What the renderer reads this frame.
    pub fn render_frame(&self) -> &RenderFrame {
        self.world.resource::<RenderFrame>()
    }

    /// The local user's presence as the editor sees it: `base` (name, colour) with this frame's
    /// pose, pointer, hover, selection, tool and drag.
    pub fn presence(&mut self, base: &crate::presence::Presence) -> crate::presence::Presence {
        let mut p = base.clone();
        let mut q = self
            .world
            .query_filtered::<(&TrackedPose, &ControllerState), With<input::LocalUser>>();
        if let Some((pose, ctl)) = q.iter(&self.world).next() {
            p.head = pose.head;
            p.left_hand = pose.left_hand;
            p.right_hand = pose.right_hand;
            p.pointer = ctl.pointer;
        }
        let ed = self.editor();
        p.hovered = ed.hovered;
        p.selected = ed
            .selection
            .iter()
            .take(crate::presence::MAX_SELECTED)
            .copied()
            .collect();
        p.tool = ed.tool;
        p.drag = ed.presence_drag();
        p
    }

    /// The colour my selection and hover are drawn in (0xRRGGBBAA; the same as my presence's).
    pub fn set_local_colour(&mut self, colour: u32) {
        self.world.insert_resource(LocalColour(colour));
    }

    /// The entity of an object.
    pub fn entity_of(&self, id: theta_crdt::ids::ObjectId) -> Option<Entity> {
        self.world
            .resource::<projection::Objects>()
            .0
            .get(&id)
            .copied()
    }

    /// Whether the world is exactly what projecting `scene` from nothing gives (tests, and a
    /// debug check): the same objects with the same components.
    pub fn matches(&mut self, scene: &Scene) -> Result<(), String> {
        projection::check(&mut self.world, scene)
    }
}
