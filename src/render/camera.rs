//! Cameras: view matrices from poses and projections from field-of-view angles, as a headset
//! reports them (OpenXR's `XrFovf`: four angles, asymmetric per eye), and the usual symmetric
//! desktop camera as a special case. Depth is reversed (1 at the near plane, 0 at infinity) with
//! no far plane, which keeps depth precision where a modeller needs it.
//!
//! Render-side maths only (glam, the platform's `tan`): nothing here reaches the fold.

use glam::{Mat4, Quat, Vec3, Vec4};

use crate::presence::Pose;

/// A field of view as four angles from the view direction, radians: left and down are negative
/// for a view that contains the centre (OpenXR `XrFovf`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fov {
    /// Angle of the left edge (negative to the left).
    pub left: f32,
    /// Angle of the right edge.
    pub right: f32,
    /// Angle of the top edge.
    pub up: f32,
    /// Angle of the bottom edge (negative below).
    pub down: f32,
}

impl Fov {
    /// A symmetric field of view: vertical angle `fov_y` and width/height `aspect`.
    pub fn symmetric(fov_y: f32, aspect: f32) -> Fov {
        let up = (fov_y / 2.0).tan();
        let right = up * aspect;
        Fov {
            left: -right.atan(),
            right: right.atan(),
            up: up.atan(),
            down: -up.atan(),
        }
    }

    /// This field of view mirrored left to right (the other eye's).
    pub fn mirrored(self) -> Fov {
        Fov {
            left: -self.right,
            right: -self.left,
            ..self
        }
    }
}

/// One eye (or a desktop camera): where it is and what it sees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eye {
    /// Position and orientation (looking along its −Z, +Y up).
    pub pose: Pose,
    /// Field of view.
    pub fov: Fov,
    /// Near plane distance, metres.
    pub near: f32,
}

fn quat(p: &Pose) -> Quat {
    let q = p.orientation;
    Quat::from_xyzw(q.x, q.y, q.z, q.w).normalize()
}

fn vec(v: theta_mesh::Vec3) -> Vec3 {
    Vec3::new(v.x, v.y, v.z)
}

impl Eye {
    /// World → eye.
    pub fn view(&self) -> Mat4 {
        Mat4::from_rotation_translation(quat(&self.pose), vec(self.pose.position)).inverse()
    }

    /// Eye → clip: asymmetric, reversed depth, infinite far plane.
    pub fn projection(&self) -> Mat4 {
        let (l, r) = (self.fov.left.tan(), self.fov.right.tan());
        let (u, d) = (self.fov.up.tan(), self.fov.down.tan());
        let (w, h) = (r - l, u - d);
        Mat4::from_cols(
            Vec4::new(2.0 / w, 0.0, 0.0, 0.0),
            Vec4::new(0.0, 2.0 / h, 0.0, 0.0),
            Vec4::new((r + l) / w, (u + d) / h, 0.0, -1.0),
            Vec4::new(0.0, 0.0, self.near, 0.0),
        )
    }

    /// World → clip.
    pub fn view_projection(&self) -> Mat4 {
        self.projection() * self.view()
    }

    /// A desktop camera at `position` looking at `target`.
    pub fn look_at(position: Vec3, target: Vec3, fov_y: f32, aspect: f32) -> Eye {
        let forward = (target - position).normalize_or(Vec3::NEG_Z);
        let up = if forward.cross(Vec3::Y).length_squared() < 1e-8 {
            Vec3::Z
        } else {
            Vec3::Y
        };
        // The rotation that takes −Z to `forward` with +Y as close to `up` as it goes.
        let view = Mat4::look_to_rh(position, forward, up);
        let (_, rot, _) = view.inverse().to_scale_rotation_translation();
        Eye {
            pose: Pose {
                position: theta_mesh::Vec3::new(position.x, position.y, position.z),
                orientation: theta_mesh::Quat::from_xyzw(rot.x, rot.y, rot.z, rot.w),
            },
            fov: Fov::symmetric(fov_y, aspect),
            near: 0.05,
        }
    }
}

/// Inter-pupillary distance used when only a head pose is known, metres.
pub const DEFAULT_IPD: f32 = 0.064;

/// The two eyes of a head: offset by half the IPD along the head's own x axis, the left eye
/// with `fov` and the right with its mirror image.
pub fn stereo(head: &Pose, ipd: f32, fov: Fov) -> [Eye; 2] {
    let q = quat(head);
    let right = q * Vec3::X;
    let c = vec(head.position);
    let at = |p: Vec3| Pose {
        position: theta_mesh::Vec3::new(p.x, p.y, p.z),
        orientation: head.orientation,
    };
    [
        Eye {
            pose: at(c - right * (ipd / 2.0)),
            fov,
            near: 0.05,
        },
        Eye {
            pose: at(c + right * (ipd / 2.0)),
            fov: fov.mirrored(),
            near: 0.05,
        },
    ]
}

/// A field of view like a current standalone headset's per-eye view (the left eye's; about 97°
/// across and 96° high, wider outward than inward).
pub const HEADSET_FOV: Fov = Fov {
    left: -0.942,
    right: 0.698,
    up: 0.768,
    down: -0.907,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn ndc(m: Mat4, p: Vec3) -> Vec3 {
        let c = m * p.extend(1.0);
        c.truncate() / c.w
    }

    #[test]
    fn a_symmetric_projection_maps_the_frustum_edges_to_the_ndc_edges() {
        // 90° vertical, 2:1: the top edge is at 45°, the right edge at atan(2).
        let e = Eye {
            pose: Pose::at(theta_mesh::Vec3::ZERO),
            fov: Fov::symmetric(std::f32::consts::FRAC_PI_2, 2.0),
            near: 0.1,
        };
        let m = e.view_projection();
        let top = ndc(m, Vec3::new(0.0, 1.0, -1.0));
        assert!((top.y - 1.0).abs() < 1e-5 && top.x.abs() < 1e-6, "{top}");
        let right = ndc(m, Vec3::new(2.0, 0.0, -1.0));
        assert!((right.x - 1.0).abs() < 1e-5, "{right}");
        // Reversed depth: 1 at the near plane, halving as distance doubles, 0 at infinity.
        assert!((ndc(m, Vec3::new(0.0, 0.0, -0.1)).z - 1.0).abs() < 1e-5);
        assert!((ndc(m, Vec3::new(0.0, 0.0, -0.2)).z - 0.5).abs() < 1e-5);
        assert!(ndc(m, Vec3::new(0.0, 0.0, -1e9)).z < 1e-6);
    }

    #[test]
    fn an_asymmetric_projection_puts_the_centre_off_centre_as_computed_by_hand() {
        // left −45°, right +26.565° (tan 0.5), up 45°, down −45°: width in tan units 1.5, so the
        // view direction lands at x = (0 − (−1)) / 1.5 · 2 − 1 = 1/3.
        let e = Eye {
            pose: Pose::at(theta_mesh::Vec3::ZERO),
            fov: Fov {
                left: -std::f32::consts::FRAC_PI_4,
                right: 0.5f32.atan(),
                up: std::f32::consts::FRAC_PI_4,
                down: -std::f32::consts::FRAC_PI_4,
            },
            near: 0.05,
        };
        let c = ndc(e.view_projection(), Vec3::new(0.0, 0.0, -3.0));
        assert!((c.x - 1.0 / 3.0).abs() < 1e-5 && c.y.abs() < 1e-6, "{c}");
        let left_edge = ndc(e.view_projection(), Vec3::new(-3.0, 0.0, -3.0));
        assert!((left_edge.x + 1.0).abs() < 1e-5, "{left_edge}");
    }

    #[test]
    fn the_view_follows_the_pose_and_stereo_eyes_sit_half_an_ipd_apart() {
        // A head at (1, 1.7, 2) turned 90° left (about +y): it looks along −x.
        let turn = theta_mesh::Quat::from_axis_angle(
            theta_mesh::Vec3::new(0.0, 1.0, 0.0),
            std::f32::consts::FRAC_PI_2,
        )
        .unwrap();
        let head = Pose {
            position: theta_mesh::Vec3::new(1.0, 1.7, 2.0),
            orientation: turn,
        };
        let e = Eye {
            pose: head,
            fov: Fov::symmetric(1.0, 1.0),
            near: 0.05,
        };
        // A point 1 m ahead in the world (−x) is 1 m ahead of the eye (−z).
        let p = e.view() * Vec3::new(0.0, 1.7, 2.0).extend(1.0);
        assert!(
            (p.z + 1.0).abs() < 1e-5 && p.x.abs() < 1e-5 && p.y.abs() < 1e-5,
            "{p}"
        );
        let [l, r] = stereo(&head, 0.064, HEADSET_FOV);
        // The head's right is −z in the world once turned left.
        assert!(
            (l.pose.position.z - 2.032).abs() < 1e-5,
            "{:?}",
            l.pose.position
        );
        assert!(
            (r.pose.position.z - 1.968).abs() < 1e-5,
            "{:?}",
            r.pose.position
        );
        assert_eq!(r.fov.left, -HEADSET_FOV.right);
        assert_eq!(r.fov.right, -HEADSET_FOV.left);
    }

    #[test]
    fn look_at_looks_at_its_target() {
        let e = Eye::look_at(Vec3::new(3.0, 2.0, 4.0), Vec3::new(0.0, 0.5, 0.0), 1.0, 1.5);
        let c = ndc(e.view_projection(), Vec3::new(0.0, 0.5, 0.0));
        assert!(c.x.abs() < 1e-5 && c.y.abs() < 1e-5 && c.z > 0.0, "{c}");
    }
}
