//! Tracked hands (XR_EXT_hand_tracking) as controllers: where a runtime tracks bare hands and
//! the controllers are put down, each hand's 26 joints become the same [`HandState`] a
//! controller gives, so every tool works by hand too. The palm is the grip pose; the aim ray
//! starts at the index finger's knuckle and runs along the palm towards the fingers; pinching
//! thumb and index together is the trigger, curling the other three fingers into a fist is the
//! grab. There are no sticks or face buttons by hand: turning and moving fall back to walking,
//! and the palette panel stands in for the buttons.

use theta_mesh::Vec3;

use super::actions::HandState;
use crate::presence::Pose;

/// The joints of XR_EXT_hand_tracking's default joint set, in its order.
pub const JOINTS: usize = 26;
/// The palm's centre: its −Z runs towards the fingers, +Y out of the back of the hand.
pub const PALM: usize = 0;
/// The thumb's tip.
pub const THUMB_TIP: usize = 5;
/// The index finger's knuckle (its proximal joint).
pub const INDEX_PROXIMAL: usize = 7;
/// The index finger's tip.
pub const INDEX_TIP: usize = 10;
/// The tips of the middle, ring and little fingers.
pub const OTHER_TIPS: [usize; 3] = [15, 20, 25];

/// A pinch this close (thumb tip to index tip, metres) is a full trigger...
const PINCH_FULL: f32 = 0.015;
/// ...and this far apart, none.
const PINCH_NONE: f32 = 0.04;
/// Finger tips this close to the palm on average are a full grab, and this far none.
const FIST_FULL: f32 = 0.04;
const FIST_NONE: f32 = 0.08;

/// 1 at `full` or closer, 0 at `none` or further, linear between.
fn closeness(d: f32, full: f32, none: f32) -> f32 {
    ((none - d) / (none - full)).clamp(0.0, 1.0)
}

/// One hand's controller state from its joints (`None` where a joint is not located), in the
/// space they were located in. `None` if the palm, the thumb or the index finger is not known.
pub fn from_joints(joints: &[Option<Pose>; JOINTS]) -> Option<HandState> {
    let palm = joints[PALM]?;
    let thumb = joints[THUMB_TIP]?.position;
    let index_tip = joints[INDEX_TIP]?.position;
    let knuckle = joints[INDEX_PROXIMAL]?.position;
    let trigger = closeness((thumb - index_tip).length(), PINCH_FULL, PINCH_NONE);
    let tips: Vec<Vec3> = OTHER_TIPS
        .iter()
        .filter_map(|&j| joints[j].map(|p| p.position))
        .collect();
    let squeeze = if tips.is_empty() {
        0.0
    } else {
        let mean = tips
            .iter()
            .map(|t| (*t - palm.position).length())
            .sum::<f32>()
            / tips.len() as f32;
        closeness(mean, FIST_FULL, FIST_NONE)
    };
    Some(HandState {
        aim: Some(Pose {
            position: knuckle,
            orientation: palm.orientation,
        }),
        grip: Some(palm),
        trigger,
        squeeze,
        ..HandState::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use theta_mesh::Quat;

    /// A right hand, palm down at (0, 1, −0.3), fingers along −Z, as a runtime would locate it:
    /// thumb tip `pinch` metres from the index tip, the other finger tips `fist` metres from
    /// the palm.
    fn hand(pinch: f32, fist: f32) -> [Option<Pose>; JOINTS] {
        let palm = Vec3::new(0.0, 1.0, -0.3);
        let mut j = [None; JOINTS];
        let at = |p: Vec3| Some(Pose::at(p));
        j[PALM] = Some(Pose {
            position: palm,
            orientation: Quat::IDENTITY,
        });
        j[INDEX_PROXIMAL] = at(palm + Vec3::new(-0.02, 0.0, -0.05));
        let index_tip = palm + Vec3::new(-0.02, 0.0, -0.12);
        j[INDEX_TIP] = at(index_tip);
        j[THUMB_TIP] = at(index_tip + Vec3::new(pinch, 0.0, 0.0));
        for t in OTHER_TIPS {
            j[t] = at(palm + Vec3::new(0.0, -fist * 0.6, -fist * 0.8));
        }
        j
    }

    #[test]
    fn the_pinch_is_the_trigger_and_the_fist_the_grab() {
        let open = from_joints(&hand(0.06, 0.15)).unwrap();
        assert_eq!((open.trigger, open.squeeze), (0.0, 0.0));
        let pinched = from_joints(&hand(0.01, 0.15)).unwrap();
        assert_eq!((pinched.trigger, pinched.squeeze), (1.0, 0.0));
        // Half way between 1.5 cm and 4 cm: half a trigger.
        let half = from_joints(&hand(0.0275, 0.15)).unwrap();
        assert!((half.trigger - 0.5).abs() < 1e-4, "{}", half.trigger);
        let fist = from_joints(&hand(0.06, 0.03)).unwrap();
        assert_eq!((fist.trigger, fist.squeeze), (0.0, 1.0));
        // 6 cm from the palm: half a grab.
        let half = from_joints(&hand(0.06, 0.06)).unwrap();
        assert!((half.squeeze - 0.5).abs() < 1e-4, "{}", half.squeeze);
    }

    #[test]
    fn the_aim_starts_at_the_knuckle_and_points_along_the_palm() {
        let s = from_joints(&hand(0.06, 0.15)).unwrap();
        let aim = s.aim.unwrap();
        assert!((aim.position - Vec3::new(-0.02, 1.0, -0.35)).length() < 1e-6);
        let d = aim.orientation.rotate(Vec3::new(0.0, 0.0, -1.0));
        assert!((d - Vec3::new(0.0, 0.0, -1.0)).length() < 1e-6, "{d:?}");
        assert_eq!(s.grip.unwrap().position, Vec3::new(0.0, 1.0, -0.3));
        // No sticks or buttons by hand.
        assert_eq!(s.stick, [0.0, 0.0]);
        assert!(!s.primary && !s.secondary && !s.menu);
    }

    #[test]
    fn a_hand_without_its_palm_thumb_or_index_is_not_a_controller() {
        for missing in [PALM, THUMB_TIP, INDEX_TIP, INDEX_PROXIMAL] {
            let mut j = hand(0.01, 0.03);
            j[missing] = None;
            assert_eq!(from_joints(&j), None, "joint {missing}");
        }
        // Without the other finger tips there is no grab, but the pinch still works.
        let mut j = hand(0.01, 0.03);
        for t in OTHER_TIPS {
            j[t] = None;
        }
        let s = from_joints(&j).unwrap();
        assert_eq!((s.trigger, s.squeeze), (1.0, 0.0));
    }
}
