//! The desktop camera: orbit, pan, zoom and fly, and following a collaborator's view. One
//! representation serves every mode: an eye position, a heading (yaw about +Y) and a pitch, and
//! the distance to the point it orbits, which lies straight ahead.
//!
//! Render-side maths (glam, the platform's trigonometry): nothing here reaches the fold; the
//! pointer ray it yields is input, like a headset's pose.

use glam::{Quat, Vec3};

use crate::presence::Pose;

/// How far the pitch may go from level, radians (just short of straight up or down).
const PITCH_LIMIT: f32 = 1.55;

/// Closest and farthest orbit distances, metres.
const DISTANCE: (f32, f32) = (0.2, 500.0);

/// The desktop camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewCamera {
    /// Eye position, world frame.
    pub position: Vec3,
    /// Heading: rotation about +Y, radians (0 looks along −Z).
    pub yaw: f32,
    /// Pitch: rotation about the camera's x axis, radians (positive looks up).
    pub pitch: f32,
    /// Distance to the orbit centre, straight ahead.
    pub distance: f32,
    /// Vertical field of view, radians.
    pub fov_y: f32,
}

impl Default for ViewCamera {
    fn default() -> Self {
        ViewCamera::looking_at(Vec3::new(3.0, 2.5, 4.0), Vec3::new(0.0, 0.25, 0.0))
    }
}

impl ViewCamera {
    /// A camera at `eye` looking at (and orbiting) `target`.
    pub fn looking_at(eye: Vec3, target: Vec3) -> ViewCamera {
        let d = target - eye;
        let distance = d.length().clamp(DISTANCE.0, DISTANCE.1);
        let (yaw, pitch) = heading(d.normalize_or(Vec3::NEG_Z));
        ViewCamera {
            position: eye,
            yaw,
            pitch,
            distance,
            fov_y: 50f32.to_radians(),
        }
    }

    /// Orientation: −Z forward, +Y up.
    pub fn rotation(&self) -> Quat {
        Quat::from_rotation_y(self.yaw) * Quat::from_rotation_x(self.pitch)
    }

    /// The unit view direction.
    pub fn forward(&self) -> Vec3 {
        self.rotation() * Vec3::NEG_Z
    }

    /// The camera's right and up axes.
    pub fn axes(&self) -> (Vec3, Vec3) {
        let r = self.rotation();
        (r * Vec3::X, r * Vec3::Y)
    }

    /// The point it orbits.
    pub fn target(&self) -> Vec3 {
        self.position + self.forward() * self.distance
    }

    /// The pose (for the renderer's eye, the pointer ray and presence).
    pub fn pose(&self) -> Pose {
        let q = self.rotation();
        let p = self.position;
        Pose {
            position: theta_mesh::Vec3::new(p.x, p.y, p.z),
            orientation: theta_mesh::Quat::from_xyzw(q.x, q.y, q.z, q.w),
        }
    }

    /// Turns about the orbit centre by these angles (radians), keeping it in view.
    pub fn orbit(&mut self, d_yaw: f32, d_pitch: f32) {
        let t = self.target();
        self.yaw = wrap(self.yaw + d_yaw);
        self.pitch = (self.pitch + d_pitch).clamp(-PITCH_LIMIT, PITCH_LIMIT);
        self.position = t - self.forward() * self.distance;
    }

    /// Slides the camera and its orbit centre across the view: `dx`, `dy` in fractions of the
    /// view's height at the orbit distance (so a drag keeps the point under the mouse).
    pub fn pan(&mut self, dx: f32, dy: f32) {
        let (right, up) = self.axes();
        let h = 2.0 * self.distance * (self.fov_y / 2.0).tan();
        self.position += (right * -dx + up * dy) * h;
    }

    /// Moves towards the orbit centre by a factor (`steps` > 0 in, < 0 out; one wheel notch is
    /// one step, 15% of the distance).
    pub fn zoom(&mut self, steps: f32) {
        let t = self.target();
        let d = (self.distance * 0.85f32.powf(steps)).clamp(DISTANCE.0, DISTANCE.1);
        self.distance = d;
        self.position = t - self.forward() * d;
    }

    /// Flies: `v` is (right, up, forward) metres, in the camera's frame (up is world up).
    pub fn fly(&mut self, v: Vec3) {
        let (right, _) = self.axes();
        self.position += right * v.x + Vec3::Y * v.y + self.forward() * v.z;
    }

    /// Turns on the spot (fly mode's mouse look), radians.
    pub fn look(&mut self, d_yaw: f32, d_pitch: f32) {
        self.yaw = wrap(self.yaw + d_yaw);
        self.pitch = (self.pitch + d_pitch).clamp(-PITCH_LIMIT, PITCH_LIMIT);
    }

    /// Looks at a box from the current heading, far enough back to see all of it.
    pub fn frame(&mut self, min: Vec3, max: Vec3) {
        let centre = (min + max) * 0.5;
        let radius = ((max - min).length() * 0.5).max(0.25);
        let d = (radius / (self.fov_y / 2.0).sin() * 1.1).clamp(DISTANCE.0, DISTANCE.1);
        self.distance = d;
        self.position = centre - self.forward() * d;
    }

    /// Takes a collaborator's view: their head's position and the heading and pitch of its
    /// view direction (roll is dropped: a desk camera stays level).
    pub fn take_view(&mut self, head: &Pose) {
        let q = head.orientation;
        let f = Quat::from_xyzw(q.x, q.y, q.z, q.w).normalize() * Vec3::NEG_Z;
        let p = head.position;
        self.position = Vec3::new(p.x, p.y, p.z);
        (self.yaw, self.pitch) = heading(f);
    }

    /// Where a world point lands in a `w`×`h` view, in pixels from the top left (`None` behind
    /// the camera).
    pub fn project(&self, p: Vec3, w: f32, h: f32) -> Option<(f32, f32)> {
        let r = self.rotation().inverse();
        let c = r * (p - self.position);
        if c.z >= -1e-4 {
            return None;
        }
        let tan = (self.fov_y / 2.0).tan();
        let x = c.x / -c.z / (tan * w / h);
        let y = c.y / -c.z / tan;
        Some(((x + 1.0) * 0.5 * w, (1.0 - y) * 0.5 * h))
    }
}

/// The yaw and pitch that look along the unit direction `f`.
fn heading(f: Vec3) -> (f32, f32) {
    (
        (-f.x).atan2(-f.z),
        f.y.clamp(-1.0, 1.0).asin().clamp(-PITCH_LIMIT, PITCH_LIMIT),
    )
}

fn wrap(a: f32) -> f32 {
    let tau = std::f32::consts::TAU;
    let a = a % tau;
    if a > std::f32::consts::PI {
        a - tau
    } else if a < -std::f32::consts::PI {
        a + tau
    } else {
        a
    }
}

/// Following a collaborator: my view snaps to theirs every frame until I move the camera.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Follow {
    /// Whose view (peer key), while following.
    pub peer: Option<[u8; 32]>,
}

impl Follow {
    /// Applies this frame: with a peer followed and its head pose known, the camera takes its
    /// view; a peer that left (no pose) ends the follow. Returns whether the view was taken.
    pub fn apply(
        &mut self,
        camera: &mut ViewCamera,
        head_of: impl Fn(&[u8; 32]) -> Option<Pose>,
    ) -> bool {
        let Some(peer) = self.peer else {
            return false;
        };
        match head_of(&peer) {
            Some(head) => {
                camera.take_view(&head);
                true
            }
            None => {
                self.peer = None;
                false
            }
        }
    }

    /// The user moved the camera: stop following.
    pub fn user_moved(&mut self) {
        self.peer = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Vec3, b: Vec3) -> bool {
        (a - b).length() < 1e-4
    }

    #[test]
    fn looking_at_faces_the_target() {
        let c = ViewCamera::looking_at(Vec3::new(0.0, 0.0, 5.0), Vec3::ZERO);
        assert!(close(c.forward(), Vec3::NEG_Z));
        assert!(close(c.target(), Vec3::ZERO));
        let c = ViewCamera::looking_at(Vec3::new(5.0, 0.0, 0.0), Vec3::ZERO);
        // Looking along −X: a quarter turn to the left about +Y.
        assert!(close(c.forward(), Vec3::NEG_X));
        assert!((c.yaw - std::f32::consts::FRAC_PI_2).abs() < 1e-5);
    }

    #[test]
    fn orbit_keeps_the_centre_and_the_distance() {
        let mut c = ViewCamera::looking_at(Vec3::new(3.0, 2.0, 4.0), Vec3::new(0.0, 0.5, 0.0));
        let t = c.target();
        let d = c.distance;
        c.orbit(1.0, -0.3);
        assert!(close(c.target(), t));
        assert!(((c.position - t).length() - d).abs() < 1e-4);
        // A half turn puts the eye on the far side.
        let mut c = ViewCamera::looking_at(Vec3::new(0.0, 0.0, 5.0), Vec3::ZERO);
        c.orbit(std::f32::consts::PI, 0.0);
        assert!(close(c.position, Vec3::new(0.0, 0.0, -5.0)));
    }

    #[test]
    fn pitch_stops_short_of_the_poles() {
        let mut c = ViewCamera::default();
        c.orbit(0.0, 10.0);
        assert!(c.pitch <= PITCH_LIMIT);
        c.orbit(0.0, -20.0);
        assert!(c.pitch >= -PITCH_LIMIT);
    }

    #[test]
    fn pan_and_zoom() {
        let mut c = ViewCamera::looking_at(Vec3::new(0.0, 0.0, 5.0), Vec3::ZERO);
        c.pan(0.5, 0.0);
        // Half the view's height (2·5·tan 25° ≈ 4.663 m) to the left.
        let h = 2.0 * 5.0 * (25f32.to_radians()).tan();
        assert!(close(c.position, Vec3::new(-0.5 * h, 0.0, 5.0)));
        let mut c = ViewCamera::looking_at(Vec3::new(0.0, 0.0, 5.0), Vec3::ZERO);
        c.zoom(1.0);
        assert!(close(c.position, Vec3::new(0.0, 0.0, 4.25)));
        assert!(close(c.target(), Vec3::ZERO));
        c.zoom(-1000.0);
        assert_eq!(c.distance, DISTANCE.1);
    }

    #[test]
    fn fly_moves_in_the_camera_frame() {
        let mut c = ViewCamera::looking_at(Vec3::new(5.0, 1.0, 0.0), Vec3::new(0.0, 1.0, 0.0));
        c.fly(Vec3::new(0.0, 0.0, 2.0));
        assert!(close(c.position, Vec3::new(3.0, 1.0, 0.0)));
        c.fly(Vec3::new(1.0, 0.5, 0.0));
        // Right of a camera looking along −X is −Z.
        assert!(close(c.position, Vec3::new(3.0, 1.5, -1.0)));
    }

    #[test]
    fn projection_puts_the_target_in_the_middle() {
        let c = ViewCamera::looking_at(Vec3::new(2.0, 3.0, 4.0), Vec3::new(0.0, 0.5, 0.0));
        let (x, y) = c.project(c.target(), 1280.0, 720.0).unwrap();
        assert!((x - 640.0).abs() < 1e-2 && (y - 360.0).abs() < 1e-2);
        // Behind the camera: nowhere.
        assert!(c.project(c.position - c.forward(), 1280.0, 720.0).is_none());
        // A point at the top edge of a 50° view, 1 m ahead: tan 25° up.
        let c = ViewCamera::looking_at(Vec3::ZERO, Vec3::NEG_Z);
        let (_, y) = c
            .project(
                Vec3::new(0.0, 25f32.to_radians().tan(), -1.0),
                1280.0,
                720.0,
            )
            .unwrap();
        assert!(y.abs() < 1e-2);
    }

    #[test]
    fn follow_takes_the_view_until_i_move() {
        let them = ViewCamera::looking_at(Vec3::new(-3.0, 1.7, 2.0), Vec3::new(1.0, 0.0, 0.0));
        let head = them.pose();
        let mut mine = ViewCamera::default();
        let mut f = Follow {
            peer: Some([7; 32]),
        };
        assert!(f.apply(&mut mine, |_| Some(head)));
        assert!(close(mine.position, them.position));
        assert!(close(mine.forward(), them.forward()));
        f.user_moved();
        let before = mine;
        assert!(!f.apply(&mut mine, |_| Some(ViewCamera::default().pose())));
        assert_eq!(mine, before);
        // A peer who left ends the follow.
        let mut f = Follow {
            peer: Some([7; 32]),
        };
        assert!(!f.apply(&mut mine, |_| None));
        assert_eq!(f.peer, None);
    }
}
