//! Input providers: where the local user's head, hands, pointer and buttons come from, behind one
//! interface, so the editor tools never ask which device is in use. The simulated VR provider
//! drives headless tests, demos and benchmarks with scripted motion (a wobbling head, hands
//! circling in front of it, trigger pulses); the desktop provider turns a mouse over a viewport
//! into a pointer ray. OpenXR joins as a third.

use std::f32::consts::TAU;
use std::time::Duration;

use bevy_ecs::prelude::*;
use theta_mesh::{Quat, Vec3};

use super::{ControllerState, FrameTime, TrackedPose};
use crate::presence::{Pose, Ray};

/// What an input device says at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct InputFrame {
    /// Head and hands.
    pub pose: TrackedPose,
    /// Pointer, buttons and axes.
    pub controls: ControllerState,
}

/// A source of the local user's input.
pub trait InputProvider: Send + Sync + 'static {
    /// A short name ("simulated-vr", "desktop", "openxr").
    fn name(&self) -> &'static str;
    /// The input at time `t` since the engine started.
    fn sample(&mut self, t: Duration) -> InputFrame;
}

/// Scripted VR motion: the head at standing height wobbles side to side, the hands circle in
/// front of it, the right hand points forward and down, and the right trigger pulses.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatedVr {
    /// Head height, metres.
    pub head_height: f32,
    /// Head wobble: amplitude (metres) and frequency (Hz).
    pub wobble: (f32, f32),
    /// Hand circles: radius (metres) and frequency (Hz).
    pub hand_circle: (f32, f32),
    /// Trigger pulses: period and how long each press lasts.
    pub trigger: (Duration, Duration),
}

impl Default for SimulatedVr {
    fn default() -> Self {
        SimulatedVr {
            head_height: 1.7,
            wobble: (0.05, 0.5),
            hand_circle: (0.1, 0.25),
            trigger: (Duration::from_secs(2), Duration::from_millis(300)),
        }
    }
}

impl InputProvider for SimulatedVr {
    fn name(&self) -> &'static str {
        "simulated-vr"
    }

    fn sample(&mut self, t: Duration) -> InputFrame {
        let s = t.as_secs_f32();
        let head = Vec3::new(
            self.wobble.0 * (TAU * self.wobble.1 * s).sin(),
            self.head_height,
            0.0,
        );
        let (r, f) = self.hand_circle;
        let a = TAU * f * s;
        let hand = |side: f32| Pose {
            position: Vec3::new(
                head.x + side * 0.25 + r * a.cos(),
                head.y - 0.45 + r * a.sin(),
                -0.35,
            ),
            orientation: Quat::IDENTITY,
        };
        let right = hand(1.0);
        let pressed = {
            let (period, press) = self.trigger;
            let phase = t.as_nanos() % period.as_nanos().max(1);
            phase < press.as_nanos()
        };
        let down = Vec3::new(0.0, -0.5, -1.0);
        let len = (down.x * down.x + down.y * down.y + down.z * down.z).sqrt();
        InputFrame {
            pose: TrackedPose {
                head: Some(Pose::at(head)),
                left_hand: Some(hand(-1.0)),
                right_hand: Some(right),
            },
            controls: ControllerState {
                pointer: Some(Ray {
                    origin: right.position,
                    direction: Vec3::new(down.x / len, down.y / len, down.z / len),
                }),
                trigger: [0.0, if pressed { 1.0 } else { 0.0 }],
                grip: [0.0, 0.0],
                buttons: 0,
            },
        }
    }
}

/// A desktop: a camera and a mouse over a viewport. The pointer is the ray from the camera
/// through the mouse; the left button is the trigger, the right the grip.
#[derive(Clone, Debug, PartialEq)]
pub struct Desktop {
    /// Camera pose (looking along its −Z).
    pub camera: Pose,
    /// Vertical field of view, radians.
    pub fov_y: f32,
    /// Viewport size in pixels.
    pub viewport: (f32, f32),
    /// Mouse position in pixels from the top left, if over the viewport.
    pub mouse: Option<(f32, f32)>,
    /// Left and right mouse buttons.
    pub buttons: (bool, bool),
    /// Keyboard modifiers and keys the tools read, as bits (see the editor).
    pub keys: u32,
}

impl Default for Desktop {
    fn default() -> Self {
        Desktop {
            camera: Pose::at(Vec3::new(0.0, 1.6, 4.0)),
            fov_y: 60f32.to_radians(),
            viewport: (1280.0, 720.0),
            mouse: None,
            buttons: (false, false),
            keys: 0,
        }
    }
}

impl InputProvider for Desktop {
    fn name(&self) -> &'static str {
        "desktop"
    }

    fn sample(&mut self, _t: Duration) -> InputFrame {
        let pointer = self.mouse.map(|(mx, my)| {
            let (w, h) = (self.viewport.0.max(1.0), self.viewport.1.max(1.0));
            let tan = (self.fov_y / 2.0).tan();
            // Normalised device coordinates, then a direction in camera space.
            let x = (2.0 * mx / w - 1.0) * tan * w / h;
            let y = (1.0 - 2.0 * my / h) * tan;
            let d = self.camera.orientation.rotate(Vec3::new(x, y, -1.0));
            let len = (d.x * d.x + d.y * d.y + d.z * d.z).sqrt();
            Ray {
                origin: self.camera.position,
                direction: Vec3::new(d.x / len, d.y / len, d.z / len),
            }
        });
        let b = |on: bool| if on { 1.0 } else { 0.0 };
        InputFrame {
            pose: TrackedPose {
                head: Some(self.camera),
                left_hand: None,
                right_hand: None,
            },
            controls: ControllerState {
                pointer,
                trigger: [0.0, b(self.buttons.0)],
                grip: [0.0, b(self.buttons.1)],
                buttons: self.keys,
            },
        }
    }
}

/// The engine's input provider (a resource).
#[derive(Resource)]
pub struct Input(pub Box<dyn InputProvider>);

/// The local user's entity: its pose and controls are sampled from [`Input`] every frame.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct LocalUser;

/// Simulation-stage system: samples the provider at the frame's time into the local user's
/// components.
pub fn sample_input(
    time: Res<'_, FrameTime>,
    mut input: ResMut<'_, Input>,
    mut user: Query<'_, '_, (&mut TrackedPose, &mut ControllerState), With<LocalUser>>,
) {
    let f = input.0.sample(time.now);
    for (mut pose, mut controls) in &mut user {
        if *pose != f.pose {
            *pose = f.pose;
        }
        if *controls != f.controls {
            *controls = f.controls;
        }
    }
}
