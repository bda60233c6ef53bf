//! XR_EXT_hand_tracking: the 26 joints of each hand, laid out around the scripted grip pose.

use openxr_sys as xr;
use openxr_sys::Handle as _;

use crate::math;
use crate::state::{HandTracker, OK, State, XrResult, check_type, get, non_null};

/// Joints in the default joint set.
const JOINTS: usize = 26;

/// Where each joint sits in the grip pose's frame (metres: x right, y up, −z forward), and its
/// radius. The order is XrHandJointEXT's: palm, wrist, then thumb (4 joints) and the four
/// fingers (5 joints each), each from the hand out to the tip.
fn joint_offsets(hand: usize) -> [([f32; 3], f32); JOINTS] {
    // The thumb is on the inner side: +x on the left hand, −x on the right.
    let inner = if hand == 0 { 1.0 } else { -1.0 };
    let mut out = [([0.0; 3], 0.01); JOINTS];
    out[0] = ([0.0, 0.0, 0.0], 0.02);
    out[1] = ([0.0, 0.0, 0.08], 0.02);
    for (i, z) in [0.04, 0.01, -0.02, -0.04].into_iter().enumerate() {
        out[2 + i] = ([inner * 0.04, -0.01, z], 0.01);
    }
    for finger in 0..4 {
        // Index nearest the thumb, little finger farthest.
        let x = inner * (0.03 - 0.02 * finger as f32);
        for (j, z) in [0.05, -0.02, -0.06, -0.085, -0.1].into_iter().enumerate() {
            out[6 + finger * 5 + j] = ([x, 0.0, z], 0.008);
        }
    }
    out
}

/// xrCreateHandTrackerEXT.
pub(crate) unsafe fn create_hand_tracker(
    st: &mut State,
    session: xr::Session,
    info: *const xr::HandTrackerCreateInfoEXT,
    out: *mut xr::HandTrackerEXT,
) -> XrResult {
    get(&st.sessions, session.into_raw())?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::HAND_TRACKER_CREATE_INFO_EXT)?;
    let hand = match info.hand {
        xr::HandEXT::LEFT => 0,
        xr::HandEXT::RIGHT => 1,
        _ => return Err(xr::Result::ERROR_VALIDATION_FAILURE),
    };
    if info.hand_joint_set != xr::HandJointSetEXT::DEFAULT {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    let h = st.new_handle();
    st.hand_trackers.insert(
        h,
        HandTracker {
            session: session.into_raw(),
            hand,
        },
    );
    // SAFETY: checked non-null.
    unsafe { *out = xr::HandTrackerEXT::from_raw(h) };
    OK
}

/// xrDestroyHandTrackerEXT.
pub(crate) unsafe fn destroy_hand_tracker(st: &mut State, t: xr::HandTrackerEXT) -> XrResult {
    st.hand_trackers
        .remove(&t.into_raw())
        .map(|_| xr::Result::SUCCESS)
        .ok_or(xr::Result::ERROR_HANDLE_INVALID)
}

/// xrLocateHandJointsEXT.
pub(crate) unsafe fn locate_hand_joints(
    st: &mut State,
    t: xr::HandTrackerEXT,
    info: *const xr::HandJointsLocateInfoEXT,
    out: *mut xr::HandJointLocationsEXT,
) -> XrResult {
    let tracker = get(&st.hand_trackers, t.into_raw())?;
    let (session, hand) = (tracker.session, tracker.hand);
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::HAND_JOINTS_LOCATE_INFO_EXT)?;
    if info.time.as_nanos() <= 0 {
        return Err(xr::Result::ERROR_TIME_INVALID);
    }
    let base = *get(&st.spaces, info.base_space.into_raw())?;
    // SAFETY: checked non-null.
    let o = unsafe { &mut *out };
    check_type(o.ty, xr::StructureType::HAND_JOINT_LOCATIONS_EXT)?;
    if o.joint_count as usize != JOINTS {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    non_null(o.joint_locations)?;
    let s = get(&st.sessions, session)?;
    let active = s.focused();
    let scripted = st.script.frame(s.current_frame()).hands[hand];
    let grip = scripted.grip;
    // The trigger pinches: the thumb's tip moves onto the index finger's.
    let mut offsets = joint_offsets(hand);
    let (thumb, index) = (offsets[5].0, offsets[10].0);
    let t = scripted.trigger.clamp(0.0, 1.0);
    offsets[5].0 = [0, 1, 2].map(|k| thumb[k] + (index[k] - thumb[k]) * t);
    let base_pose = crate::session::world_pose(st, &base);
    let flags = xr::SpaceLocationFlags::ORIENTATION_VALID
        | xr::SpaceLocationFlags::POSITION_VALID
        | xr::SpaceLocationFlags::ORIENTATION_TRACKED
        | xr::SpaceLocationFlags::POSITION_TRACKED;
    for (i, ([x, y, z], radius)) in offsets.into_iter().enumerate() {
        let pose = math::relative(base_pose, math::offset(grip, x, y, z));
        // SAFETY: the app passes `joint_count` (26) locations.
        unsafe {
            *o.joint_locations.add(i) = xr::HandJointLocationEXT {
                location_flags: if active {
                    flags
                } else {
                    xr::SpaceLocationFlags::EMPTY
                },
                pose,
                radius,
            };
        }
    }
    o.is_active = active.into();
    // Velocities are not tracked.
    let mut next = o.next.cast::<xr::BaseOutStructure>();
    while !next.is_null() {
        // SAFETY: the app chains valid output structures.
        let n = unsafe { &mut *next };
        if n.ty == xr::StructureType::HAND_JOINT_VELOCITIES_EXT {
            // SAFETY: the type says what it is; the app passes `joint_count` velocities.
            unsafe {
                let v = &mut *next.cast::<xr::HandJointVelocitiesEXT>();
                for j in 0..v.joint_count as usize {
                    if !v.joint_velocities.is_null() {
                        *v.joint_velocities.add(j) = xr::HandJointVelocityEXT {
                            velocity_flags: xr::SpaceVelocityFlags::EMPTY,
                            linear_velocity: xr::Vector3f::default(),
                            angular_velocity: xr::Vector3f::default(),
                        };
                    }
                }
            }
        }
        next = n.next;
    }
    OK
}
