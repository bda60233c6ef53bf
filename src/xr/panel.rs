//! Panels in the world: the editor's egui panels, drawn into textures, hung in space and used by
//! pointing a controller and pulling the trigger.
//!
//! A [`WorldPanel`] is a rectangle in the world with a texture of its own pixels; [`WorldPanel::hit`]
//! turns a pointer ray into the pixel it points at (what egui is told the mouse is over), and
//! [`palette_on_hand`] hangs the tool palette above the off hand, turned towards the user.

use theta_mesh::{Quat, Vec3};

use crate::presence::{Pose, Ray};

/// A panel in the world: its centre and orientation (it faces its frame's +Z, with +Y up the
/// panel and +X to the right), its size in metres and in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldPanel {
    /// Centre and orientation, world frame.
    pub pose: Pose,
    /// Width and height, metres.
    pub size: (f32, f32),
    /// Width and height of its texture, pixels.
    pub pixels: (u32, u32),
}

/// Where a ray meets a panel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PanelHit {
    /// The pixel, from the texture's top left (fractional).
    pub pixel: (f32, f32),
    /// How far along the ray.
    pub distance: f32,
}

impl WorldPanel {
    /// The panel's right, up and facing directions, world frame.
    pub fn axes(&self) -> (Vec3, Vec3, Vec3) {
        let q = self.pose.orientation;
        (
            q.rotate(Vec3::new(1.0, 0.0, 0.0)),
            q.rotate(Vec3::new(0.0, 1.0, 0.0)),
            q.rotate(Vec3::new(0.0, 0.0, 1.0)),
        )
    }

    /// The pixel a ray points at, if it meets the panel's front within its edges.
    pub fn hit(&self, ray: &Ray) -> Option<PanelHit> {
        let (right, up, normal) = self.axes();
        let den = ray.direction.dot(normal);
        // From the front only: a panel seen from behind is not in use.
        if den >= -1e-6 {
            return None;
        }
        let t = (self.pose.position - ray.origin).dot(normal) / den;
        if !(t >= 0.0 && t.is_finite()) {
            return None;
        }
        let local = ray.origin + ray.direction * t - self.pose.position;
        let (u, v) = (
            local.dot(right) / self.size.0 + 0.5,
            0.5 - local.dot(up) / self.size.1,
        );
        if !((0.0..1.0).contains(&u) && (0.0..1.0).contains(&v)) {
            return None;
        }
        Some(PanelHit {
            pixel: (u * self.pixels.0 as f32, v * self.pixels.1 as f32),
            distance: t,
        })
    }

    /// The corners, world frame: top left, top right, bottom left, bottom right.
    pub fn corners(&self) -> [Vec3; 4] {
        let (right, up, _) = self.axes();
        let (hx, hy) = (right * (self.size.0 * 0.5), up * (self.size.1 * 0.5));
        let c = self.pose.position;
        [c - hx + hy, c + hx + hy, c - hx - hy, c + hx - hy]
    }
}

/// The nearest panel a ray points at, and where.
pub fn pick(panels: &[WorldPanel], ray: &Ray) -> Option<(usize, PanelHit)> {
    panels
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.hit(ray).map(|h| (i, h)))
        .min_by(|a, b| a.1.distance.total_cmp(&b.1.distance))
}

/// Where the tool palette hangs on the off hand (its grip pose): 12 cm above the back of the
/// hand, tipped back 50° from upright so it faces the eyes when the palm faces down. The grip
/// pose looks along its −Z, with +Y out of the back of the hand.
pub fn palette_on_hand(grip: &Pose) -> Pose {
    let tilt = Quat::from_axis_angle(Vec3::new(1.0, 0.0, 0.0), -(50f32.to_radians()))
        .unwrap_or(Quat::IDENTITY);
    Pose {
        position: grip.position + grip.orientation.rotate(Vec3::new(0.0, 0.12, 0.0)),
        orientation: grip
            .orientation
            .mul_quat(tilt)
            .normalized()
            .unwrap_or(Quat::IDENTITY),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn panel() -> WorldPanel {
        WorldPanel {
            pose: Pose::at(Vec3::new(0.0, 1.5, -1.0)),
            size: (0.4, 0.3),
            pixels: (400, 300),
        }
    }

    /// The ray from `from` through `to`.
    pub(crate) fn ray(from: Vec3, to: Vec3) -> Ray {
        Ray {
            origin: from,
            direction: (to - from).normalized().unwrap(),
        }
    }

    #[test]
    fn a_ray_meets_a_panel_at_the_pixel_it_points_at() {
        let p = panel();
        let eye = Vec3::new(0.0, 1.5, 0.0);
        // The centre is the middle pixel, 1 m away.
        let h = p.hit(&ray(eye, Vec3::new(0.0, 1.5, -1.0))).unwrap();
        assert!((h.pixel.0 - 200.0).abs() < 1e-3 && (h.pixel.1 - 150.0).abs() < 1e-3);
        assert!((h.distance - 1.0).abs() < 1e-5);
        // 10 cm right and 5 cm up of the centre: a quarter of the width right, a sixth of the
        // height up → (300, 100).
        let h = p.hit(&ray(eye, Vec3::new(0.1, 1.55, -1.0))).unwrap();
        assert!((h.pixel.0 - 300.0).abs() < 1e-2, "{h:?}");
        assert!((h.pixel.1 - 100.0).abs() < 1e-2, "{h:?}");
        // Past the edge, from behind, or pointing away: nothing.
        assert_eq!(p.hit(&ray(eye, Vec3::new(0.21, 1.5, -1.0))), None);
        assert_eq!(
            p.hit(&ray(Vec3::new(0.0, 1.5, -2.0), Vec3::new(0.0, 1.5, -1.0))),
            None
        );
        assert_eq!(p.hit(&ray(eye, Vec3::new(0.0, 1.5, 1.0))), None);
    }

    #[test]
    fn a_turned_panel_maps_its_own_axes_and_the_nearest_panel_wins() {
        // Turned a quarter left about +Y: it faces +X, its right is −Z.
        let q =
            Quat::from_axis_angle(Vec3::new(0.0, 1.0, 0.0), std::f32::consts::FRAC_PI_2).unwrap();
        let side = WorldPanel {
            pose: Pose {
                position: Vec3::new(-1.0, 1.5, 0.0),
                orientation: q,
            },
            ..panel()
        };
        let eye = Vec3::new(0.0, 1.5, 0.0);
        // A point 10 cm towards −Z on it is 10 cm to its right: pixel x 300.
        let h = side.hit(&ray(eye, Vec3::new(-1.0, 1.5, -0.1))).unwrap();
        assert!((h.pixel.0 - 300.0).abs() < 1e-2, "{h:?}");
        let c = side.corners();
        assert!(
            (c[1] - Vec3::new(-1.0, 1.65, -0.2)).length() < 1e-5,
            "{c:?}"
        );
        // Two panels on one line of sight: the nearer one takes the pointer.
        let near = WorldPanel {
            pose: Pose::at(Vec3::new(0.0, 1.5, -0.5)),
            ..panel()
        };
        let (i, h) = pick(&[panel(), near], &ray(eye, Vec3::new(0.0, 1.5, -1.0))).unwrap();
        assert_eq!(i, 1);
        assert!((h.distance - 0.5).abs() < 1e-5);
    }

    #[test]
    fn the_palette_hangs_above_the_back_of_the_hand_facing_the_eyes() {
        // A hand held out level, palm down, at chest height.
        let grip = Pose::at(Vec3::new(-0.2, 1.2, -0.3));
        let pose = palette_on_hand(&grip);
        assert!((pose.position - Vec3::new(-0.2, 1.32, -0.3)).length() < 1e-5);
        let panel = WorldPanel {
            pose,
            size: (0.2, 0.15),
            pixels: (320, 240),
        };
        let (_, up, normal) = panel.axes();
        // Facing up and back towards the user (+Y, +Z), tipped 50° from upright.
        assert!(normal.y > 0.7 && normal.z > 0.6, "{normal:?}");
        assert!((normal.y - 50f32.to_radians().sin()).abs() < 1e-5);
        assert!(up.z < 0.0, "its top leans away");
        // So a pointer from the other hand above and behind it meets its front.
        let eye = Vec3::new(0.1, 1.6, 0.1);
        assert!(panel.hit(&ray(eye, pose.position)).is_some());
    }
}
