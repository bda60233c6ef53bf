//! Comfort in a headset: turning, moving, the vignette while moving, and the play area's bounds.
//!
//! All of it is a pure function of the controllers and the clock, kept apart from OpenXR so it
//! is tested without a runtime. The user stands in a [`Rig`]: the tracking space (where the
//! runtime reports the head and hands) placed in the world by a position on the ground and a
//! turn about the vertical. Turning and moving change only the rig; the head and hands keep
//! their tracked poses inside it.

use theta_mesh::{Quat, Vec3};

use crate::presence::Pose;

/// The up axis.
const UP: Vec3 = Vec3 {
    x: 0.0,
    y: 1.0,
    z: 0.0,
};

/// Where the tracking space sits in the world.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rig {
    /// The tracking space's origin, world frame (on the ground).
    pub position: Vec3,
    /// Its turn about +Y, radians (positive turns −Z towards −X: to the left).
    pub yaw: f32,
}

impl Default for Rig {
    fn default() -> Self {
        Rig {
            position: Vec3::ZERO,
            yaw: 0.0,
        }
    }
}

impl Rig {
    /// The rig's turn as a rotation.
    pub fn rotation(&self) -> Quat {
        Quat::from_axis_angle(UP, self.yaw).unwrap_or(Quat::IDENTITY)
    }

    /// A tracking-space point in the world.
    pub fn to_world(&self, p: Vec3) -> Vec3 {
        self.position + self.rotation().rotate(p)
    }

    /// A tracking-space pose (a controller's, the head's) in the world.
    pub fn place(&self, p: Pose) -> Pose {
        Pose {
            position: self.to_world(p.position),
            orientation: self
                .rotation()
                .mul_quat(p.orientation)
                .normalized()
                .unwrap_or(Quat::IDENTITY),
        }
    }

    /// Turns by `angle` about the vertical through `head` (tracking space), so the head stays
    /// where it is in the world: turning on the spot, not swinging round the play area's
    /// centre.
    pub fn turn_about(&mut self, head: Vec3, angle: f32) {
        let before = self.to_world(head);
        self.yaw = wrap(self.yaw + angle);
        let after = self.to_world(head);
        self.position += before - after;
    }
}

/// An angle in (−π, π].
fn wrap(a: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let r = a.rem_euclid(TAU);
    if r > PI { r - TAU } else { r }
}

/// How the thumbstick turns the user.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Turning {
    /// Steps of this many radians, one per push of the stick.
    Snap(f32),
    /// Continuously, at most this many radians a second.
    Smooth(f32),
}

/// How the user moves through the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locomotion {
    /// Push the stick forward to aim an arc, let go to land where it meets the ground.
    Teleport,
    /// Hold the world grip and pull the world along with the hand.
    GrabWorld,
}

/// The user's comfort choices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Turning.
    pub turning: Turning,
    /// Moving.
    pub locomotion: Locomotion,
    /// The vignette's strongest darkening during motion, 0 (off) to 1.
    pub vignette: f32,
    /// Show the play area's bounds when the head comes this close to them, metres.
    pub bounds_warning: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            turning: Turning::Snap(30f32.to_radians()),
            locomotion: Locomotion::Teleport,
            vignette: 0.6,
            bounds_warning: 0.4,
        }
    }
}

impl Settings {
    /// The settings from the command line's words: `turn` is `snap` (30° a push), `snap:DEG`,
    /// `smooth` (90°/s) or `smooth:DEG` (degrees a second); `locomotion` is `teleport` or
    /// `grab`; `vignette` is 0 (off) to 1.
    pub fn parse(turn: &str, locomotion: &str, vignette: f32) -> Result<Settings, String> {
        let (kind, amount) = match turn.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (turn, None),
        };
        let degrees = |default: f32, max: f32| -> Result<f32, String> {
            let d = match amount {
                None => default,
                Some(a) => a
                    .trim()
                    .parse::<f32>()
                    .map_err(|_| format!("--turn {turn}: {a:?} is not a number of degrees"))?,
            };
            if d.is_finite() && d > 0.0 && d <= max {
                Ok(d.to_radians())
            } else {
                Err(format!(
                    "--turn {turn}: the angle must be above 0 and at most {max}"
                ))
            }
        };
        let turning = match kind {
            "snap" => Turning::Snap(degrees(30.0, 180.0)?),
            "smooth" => Turning::Smooth(degrees(90.0, 720.0)?),
            _ => {
                return Err(format!(
                    "--turn {turn}: say snap, snap:DEG, smooth or smooth:DEG"
                ));
            }
        };
        let locomotion = match locomotion {
            "teleport" => Locomotion::Teleport,
            "grab" => Locomotion::GrabWorld,
            other => return Err(format!("--move {other}: say teleport or grab")),
        };
        if !(0.0..=1.0).contains(&vignette) {
            return Err(format!("--vignette {vignette}: between 0 (off) and 1"));
        }
        Ok(Settings {
            turning,
            locomotion,
            vignette,
            ..Settings::default()
        })
    }
}

/// Stick travel below this is noise.
pub const DEADZONE: f32 = 0.2;
/// A snap turn fires when the stick goes past this sideways...
const SNAP_FIRE: f32 = 0.7;
/// ...and is armed again only once it comes back inside this.
const SNAP_REARM: f32 = 0.3;
/// The stick forward past this aims a teleport.
const TELEPORT_AIM: f32 = 0.6;
/// Launch speed of the teleport arc, metres a second, and gravity.
const ARC_SPEED: f32 = 7.0;
const GRAVITY: f32 = 9.81;
/// Turning at this rate, or moving at this speed, gives the full vignette.
const FULL_TURN: f32 = 1.5;
const FULL_SPEED: f32 = 2.0;
/// How fast the vignette follows the motion (per second).
const VIGNETTE_RATE: f32 = 8.0;

/// One frame of what comfort reads (tracking space).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Input {
    /// Seconds since the last frame.
    pub dt: f32,
    /// The turning and moving hand's thumbstick (x right, y forward), −1..1.
    pub stick: [f32; 2],
    /// The head's position.
    pub head: Vec3,
    /// The moving hand's aim pose (for the teleport arc): origin and unit direction.
    pub aim: Option<(Vec3, Vec3)>,
    /// Whether the world grip is held, and where that hand is (the session passes it in
    /// grab-the-world mode, and for a bare hand's fist in any mode).
    pub world_grip: Option<Vec3>,
}

/// What a frame of comfort did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// The rig turned this much (a haptic tick on a snap).
    pub turned: f32,
    /// The user landed somewhere (teleport).
    pub teleported: bool,
    /// Where the teleport arc meets the ground while aiming (world frame), and the arc's points.
    pub arc: Option<(Vec3, Vec<Vec3>)>,
    /// The vignette's darkening now, 0..1.
    pub vignette: f32,
}

/// Comfort's state from frame to frame.
#[derive(Clone, Debug, Default)]
pub struct Comfort {
    /// The choices.
    pub settings: Settings,
    /// Where the tracking space is.
    pub rig: Rig,
    snap_armed: bool,
    aiming: Option<Vec3>,
    grab: Option<Vec3>,
    vignette: f32,
    last_head: Option<Vec3>,
}

impl Comfort {
    /// Comfort with these choices, the rig at the origin.
    pub fn new(settings: Settings) -> Comfort {
        Comfort {
            settings,
            snap_armed: true,
            ..Comfort::default()
        }
    }

    /// One frame.
    pub fn update(&mut self, input: &Input) -> Output {
        let mut out = Output::default();
        let dt = input.dt.max(0.0);
        let head_before = self.last_head.map(|h| self.rig.to_world(h));
        // Turning, by the stick's sideways travel.
        let x = input.stick[0];
        match self.settings.turning {
            Turning::Snap(step) => {
                if x.abs() < SNAP_REARM {
                    self.snap_armed = true;
                } else if x.abs() > SNAP_FIRE && self.snap_armed {
                    self.snap_armed = false;
                    // Stick right turns right: a negative yaw.
                    out.turned = -step * x.signum();
                }
            }
            Turning::Smooth(rate) => {
                out.turned = -rate * dead(x) * dt;
            }
        }
        if out.turned != 0.0 {
            self.rig.turn_about(input.head, out.turned);
        }
        // Moving.
        if self.settings.locomotion == Locomotion::Teleport {
            let y = input.stick[1];
            let target = input.aim.and_then(|(o, d)| {
                let o = self.rig.to_world(o);
                let d = self.rig.rotation().rotate(d);
                teleport_arc(o, d, self.rig.position.y)
            });
            if y > TELEPORT_AIM {
                self.aiming = target.as_ref().map(|(p, _)| *p);
                out.arc = target;
            } else if let Some(to) = self.aiming.take() {
                // Land with the head over the target, at the height the floor was.
                let head = self.rig.to_world(input.head);
                let shift = Vec3::new(to.x - head.x, 0.0, to.z - head.z);
                self.rig.position += shift;
                out.teleported = true;
            }
        }
        // Grabbing the world: the session passes the world grip in grab-the-world mode, and
        // for a bare tracked hand's fist in either mode (a hand has no stick to teleport with).
        match (input.world_grip, self.grab) {
            (Some(hand), Some(held)) => {
                // The world point held stays under the hand.
                let now = self.rig.to_world(hand);
                self.rig.position += held - now;
            }
            (Some(hand), None) => self.grab = Some(self.rig.to_world(hand)),
            (None, _) => self.grab = None,
        }
        // The vignette follows how fast the view moves through the world: smooth turns and
        // pulls, not snaps and teleports (those are instant, which is the comfortable part).
        let mut motion = 0.0;
        if matches!(self.settings.turning, Turning::Smooth(_)) && dt > 0.0 {
            motion += (out.turned.abs() / dt / FULL_TURN).min(1.0);
        }
        if let (Some(before), false, true) = (head_before, out.teleported, dt > 0.0) {
            let moved = self.rig.to_world(input.head) - before;
            // What the head did inside the tracking space is the user walking: not motion the
            // app made.
            let walked = input.head - self.last_head.unwrap_or(input.head);
            let made = moved - self.rig.rotation().rotate(walked);
            motion += (made.length() / dt / FULL_SPEED).min(1.0);
        }
        let goal = self.settings.vignette * motion.min(1.0);
        let k = (VIGNETTE_RATE * dt).min(1.0);
        self.vignette += (goal - self.vignette) * k;
        out.vignette = self.vignette;
        self.last_head = Some(input.head);
        out
    }
}

/// Stick travel with the dead zone taken out, rescaled to −1..1.
fn dead(v: f32) -> f32 {
    if v.abs() <= DEADZONE {
        0.0
    } else {
        v.signum() * ((v.abs() - DEADZONE) / (1.0 - DEADZONE)).min(1.0)
    }
}

/// The teleport arc from `origin` along `direction` (world frame): a throw at [`ARC_SPEED`]
/// under gravity, sampled every 20 ms for at most 2 s, until it falls through the floor at
/// height `floor`. Returns where it lands and the samples up to there.
pub fn teleport_arc(origin: Vec3, direction: Vec3, floor: f32) -> Option<(Vec3, Vec<Vec3>)> {
    let v = direction.normalized()? * ARC_SPEED;
    let at = |t: f32| origin + v * t - Vec3::new(0.0, 0.5 * GRAVITY * t * t, 0.0);
    let mut points = vec![origin];
    for i in 1..=100 {
        let t = i as f32 * 0.02;
        let p = at(t);
        if p.y <= floor {
            // Exact landing: solve origin.y + v.y t − g t²/2 = floor.
            let (a, b, c) = (-0.5 * GRAVITY, v.y, origin.y - floor);
            let t = (-b - (b * b - 4.0 * a * c).max(0.0).sqrt()) / (2.0 * a);
            let land = at(t);
            points.push(land);
            return Some((land, points));
        }
        points.push(p);
    }
    None
}

/// The play area as a rectangle centred on the tracking origin (OpenXR's stage bounds):
/// half its width (x) and depth (z).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Half the width, metres.
    pub half_x: f32,
    /// Half the depth, metres.
    pub half_z: f32,
}

impl Bounds {
    /// How far inside the bounds a tracking-space point is (negative: outside).
    pub fn inside_by(&self, p: Vec3) -> f32 {
        (self.half_x - p.x.abs()).min(self.half_z - p.z.abs())
    }

    /// How strongly to show the bounds for a head at `head`: 0 when further in than
    /// `warning`, rising to 1 at the edge and beyond.
    pub fn visibility(&self, head: Vec3, warning: f32) -> f32 {
        if warning <= 0.0 {
            return if self.inside_by(head) <= 0.0 {
                1.0
            } else {
                0.0
            };
        }
        (1.0 - self.inside_by(head) / warning).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::FRAC_PI_2;

    fn close(a: Vec3, b: Vec3) -> bool {
        (a - b).length() < 1e-4
    }

    #[test]
    fn a_rig_places_tracking_space_and_turns_about_the_head() {
        let mut rig = Rig {
            position: Vec3::new(1.0, 0.0, 2.0),
            yaw: FRAC_PI_2,
        };
        // A quarter turn left: tracking −Z (ahead) is world −X.
        assert!(close(
            rig.to_world(Vec3::new(0.0, 1.6, -1.0)),
            Vec3::new(0.0, 1.6, 2.0)
        ));
        // Turning about a head off the origin keeps the head where it is in the world.
        let head = Vec3::new(0.5, 1.7, 0.3);
        let before = rig.to_world(head);
        rig.turn_about(head, 0.7);
        assert!(close(rig.to_world(head), before));
        assert!((rig.yaw - (FRAC_PI_2 + 0.7)).abs() < 1e-5);
        // Yaw stays in (−π, π].
        rig.turn_about(head, 3.0);
        assert!(rig.yaw > -std::f32::consts::PI && rig.yaw <= std::f32::consts::PI);
    }

    #[test]
    fn snap_turns_fire_once_per_push_and_rearm_when_the_stick_returns() {
        let mut c = Comfort::new(Settings::default());
        let step = 30f32.to_radians();
        let frame = |c: &mut Comfort, x: f32| {
            c.update(&Input {
                dt: 0.011,
                stick: [x, 0.0],
                head: Vec3::new(0.0, 1.6, 0.0),
                ..Input::default()
            })
        };
        assert_eq!(frame(&mut c, 0.5).turned, 0.0, "not past the firing point");
        assert!(
            (frame(&mut c, 0.9).turned + step).abs() < 1e-6,
            "right turns right"
        );
        // Held over: no more turns; back past the re-arm point only half way: still none.
        assert_eq!(frame(&mut c, 1.0).turned, 0.0);
        assert_eq!(frame(&mut c, 0.5).turned, 0.0);
        assert_eq!(frame(&mut c, 0.9).turned, 0.0);
        // Released, then pushed left: a left turn.
        assert_eq!(frame(&mut c, 0.1).turned, 0.0);
        assert!((frame(&mut c, -0.8).turned - step).abs() < 1e-6);
        assert!(
            c.rig.yaw.abs() < 1e-5,
            "right then left is back where it began"
        );
        // Snaps are instant: no vignette.
        assert_eq!(frame(&mut c, 0.0).vignette, 0.0);
    }

    #[test]
    fn smooth_turns_scale_with_the_stick_past_the_dead_zone_and_darken_the_edges() {
        let mut c = Comfort::new(Settings {
            turning: Turning::Smooth(2.0),
            ..Settings::default()
        });
        let input = |x| Input {
            dt: 0.1,
            stick: [x, 0.0],
            head: Vec3::new(0.0, 1.6, 0.0),
            ..Input::default()
        };
        assert_eq!(c.update(&input(0.15)).turned, 0.0, "inside the dead zone");
        // 0.6 → (0.6 − 0.2) / 0.8 = 0.5 of 2 rad/s for 0.1 s = 0.1 rad, to the right.
        let out = c.update(&input(0.6));
        assert!((out.turned + 0.1).abs() < 1e-5, "{}", out.turned);
        // 1 rad/s of 1.5 for full: goal 0.6 × 2/3 = 0.4; the vignette moves 0.8 of the way.
        assert!((out.vignette - 0.4 * 0.8).abs() < 1e-4, "{}", out.vignette);
        // Stopped: it fades.
        let v = c.update(&input(0.0)).vignette;
        assert!(v < out.vignette);
    }

    #[test]
    fn the_teleport_arc_lands_where_a_throw_would_and_the_head_goes_there() {
        // Thrown level from 1 m up at 7 m/s: it falls 1 m in √(2/9.81) s, landing 7·0.4515 m out.
        let (land, points) =
            teleport_arc(Vec3::new(0.0, 1.0, 0.0), Vec3::new(0.0, 0.0, -1.0), 0.0).unwrap();
        let t = (2.0f32 / 9.81).sqrt();
        assert!(close(land, Vec3::new(0.0, 0.0, -7.0 * t)), "{land:?}");
        assert!(points.len() > 2 && points.windows(2).all(|w| w[1].z < w[0].z));
        // Straight up, it comes down (after 1.56 s) where it started.
        let (up, _) = teleport_arc(Vec3::new(0.0, 1.0, 0.0), UP, 0.0).unwrap();
        assert!(up.x.abs() < 1e-4 && up.z.abs() < 1e-4);
        // Pushing the stick aims; letting go lands with the head above the target.
        let mut c = Comfort::new(Settings::default());
        let head = Vec3::new(0.3, 1.6, 0.2);
        let aim = Some((Vec3::new(0.3, 1.0, 0.0), Vec3::new(0.0, 0.0, -1.0)));
        let out = c.update(&Input {
            dt: 0.011,
            stick: [0.0, 0.9],
            head,
            aim,
            ..Input::default()
        });
        let (target, _) = out.arc.expect("aiming shows the arc");
        let out = c.update(&Input {
            dt: 0.011,
            stick: [0.0, 0.0],
            head,
            aim,
            ..Input::default()
        });
        assert!(out.teleported);
        let now = c.rig.to_world(head);
        assert!((now.x - target.x).abs() < 1e-4 && (now.z - target.z).abs() < 1e-4);
        assert!((now.y - 1.6).abs() < 1e-5, "the floor stays the floor");
        assert_eq!(out.vignette, 0.0, "a teleport is instant: no vignette");
    }

    #[test]
    fn the_command_lines_comfort_words_parse_and_bad_ones_say_why() {
        let s = Settings::parse("snap", "teleport", 0.6).unwrap();
        assert_eq!(s, Settings::default());
        let s = Settings::parse("smooth:120", "grab", 0.0).unwrap();
        assert_eq!(s.turning, Turning::Smooth(120f32.to_radians()));
        assert_eq!(s.locomotion, Locomotion::GrabWorld);
        assert_eq!(s.vignette, 0.0);
        assert_eq!(
            Settings::parse("snap:45", "teleport", 1.0).unwrap().turning,
            Turning::Snap(45f32.to_radians())
        );
        assert_eq!(
            Settings::parse("smooth", "teleport", 1.0).unwrap().turning,
            Turning::Smooth(90f32.to_radians())
        );
        for (turn, mv, v, says) in [
            ("spin", "teleport", 0.5, "say snap"),
            ("snap:x", "teleport", 0.5, "not a number"),
            ("snap:0", "teleport", 0.5, "above 0"),
            ("smooth:NaN", "teleport", 0.5, "above 0"),
            ("snap", "walk", 0.5, "--move walk"),
            ("snap", "grab", 1.5, "--vignette"),
            ("snap", "grab", f32::NAN, "--vignette"),
        ] {
            let e = Settings::parse(turn, mv, v).unwrap_err();
            assert!(e.contains(says), "{turn} {mv} {v}: {e}");
        }
    }

    #[test]
    fn a_bare_hands_fist_grabs_the_world_in_teleport_mode_too() {
        // The session passes a bare hand's fist as the world grip whatever the mode: a hand
        // has no stick to teleport with.
        let mut c = Comfort::new(Settings::default());
        assert_eq!(c.settings.locomotion, Locomotion::Teleport);
        let head = Vec3::new(0.0, 1.6, 0.0);
        for z in [-0.4, -0.1] {
            c.update(&Input {
                dt: 0.05,
                head,
                world_grip: Some(Vec3::new(0.2, 1.0, z)),
                ..Input::default()
            });
        }
        assert!(
            close(c.rig.position, Vec3::new(0.0, 0.0, -0.3)),
            "{:?}",
            c.rig
        );
    }

    #[test]
    fn grabbing_the_world_keeps_the_held_point_under_the_hand() {
        let mut c = Comfort::new(Settings {
            locomotion: Locomotion::GrabWorld,
            ..Settings::default()
        });
        let head = Vec3::new(0.0, 1.6, 0.0);
        let frame = |c: &mut Comfort, grip: Option<Vec3>| {
            c.update(&Input {
                dt: 0.05,
                head,
                world_grip: grip,
                ..Input::default()
            })
        };
        frame(&mut c, None);
        frame(&mut c, Some(Vec3::new(0.2, 1.0, -0.4)));
        // Pull the hand 0.5 m towards me: the world comes 0.5 m closer (I move 0.5 m forward).
        let out = frame(&mut c, Some(Vec3::new(0.2, 1.0, 0.1)));
        assert!(
            close(c.rig.position, Vec3::new(0.0, 0.0, -0.5)),
            "{:?}",
            c.rig
        );
        assert!(out.vignette > 0.0, "a pull is motion the app made");
        // Let go, move the hand back: nothing moves.
        frame(&mut c, None);
        frame(&mut c, None);
        assert!(close(c.rig.position, Vec3::new(0.0, 0.0, -0.5)));
    }

    #[test]
    fn walking_in_the_play_area_is_not_motion_and_its_bounds_show_near_the_edge() {
        let mut c = Comfort::new(Settings::default());
        for i in 0..20 {
            let out = c.update(&Input {
                dt: 0.05,
                head: Vec3::new(i as f32 * 0.05, 1.6, 0.0),
                ..Input::default()
            });
            assert_eq!(out.vignette, 0.0);
        }
        let b = Bounds {
            half_x: 1.5,
            half_z: 1.0,
        };
        assert_eq!(b.visibility(Vec3::new(0.0, 1.6, 0.0), 0.4), 0.0);
        // 0.2 m from the +z edge: half way into the 0.4 m warning.
        assert!((b.visibility(Vec3::new(0.0, 1.6, 0.8), 0.4) - 0.5).abs() < 1e-5);
        assert_eq!(b.visibility(Vec3::new(1.6, 1.6, 0.0), 0.4), 1.0, "outside");
        assert!((b.inside_by(Vec3::new(1.6, 0.0, 0.0)) + 0.1).abs() < 1e-5);
    }
}
