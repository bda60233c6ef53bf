//! Actions: action sets, suggested bindings, syncing the scripted controllers into action
//! states, and haptics.

use std::ffi::c_char;

use openxr_sys as xr;
use openxr_sys::Handle as _;
use serde_json::json;

use crate::script::Frame;
use crate::state::{
    self, Action, ActionSet, Event, InputValue, Latched, OK, State, XrResult, check_type, get,
    get_mut, non_null,
};

/// The profile the scripted controllers are.
const TOUCH: &str = "/interaction_profiles/oculus/touch_controller";

/// The profiles bindings may be suggested for.
const PROFILES: [&str; 4] = [
    TOUCH,
    "/interaction_profiles/valve/index_controller",
    "/interaction_profiles/htc/vive_controller",
    "/interaction_profiles/khr/simple_controller",
];

/// The top-level user paths actions may be filtered by.
const USER_PATHS: [&str; 4] = [
    "/user/hand/left",
    "/user/hand/right",
    "/user/head",
    "/user/gamepad",
];

/// What a binding path reads from a scripted hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Component {
    Trigger,
    Squeeze,
    Stick,
    StickX,
    StickY,
    Primary,
    Secondary,
    Menu,
    Aim,
    Grip,
    Haptic,
    /// A real input the script does not drive (a touch sensor, a stick click): always off.
    Off,
}

/// The hand (0 left, 1 right) and component of a binding path, if it names a hand input.
fn parse_binding(path: &str) -> Option<(usize, Component)> {
    let (hand, rest) = if let Some(r) = path.strip_prefix("/user/hand/left/") {
        (0, r)
    } else if let Some(r) = path.strip_prefix("/user/hand/right/") {
        (1, r)
    } else {
        return None;
    };
    if rest == "output/haptic" {
        return Some((hand, Component::Haptic));
    }
    let mut parts = rest.strip_prefix("input/")?.split('/');
    let id = parts.next()?;
    let sub = parts.next();
    let c = match (id, sub) {
        ("trigger" | "select", Some("touch")) => Component::Off,
        ("trigger" | "select", _) => Component::Trigger,
        ("squeeze", _) => Component::Squeeze,
        ("thumbstick" | "trackpad" | "joystick", None) => Component::Stick,
        ("thumbstick" | "trackpad" | "joystick", Some("x")) => Component::StickX,
        ("thumbstick" | "trackpad" | "joystick", Some("y")) => Component::StickY,
        ("thumbstick" | "trackpad" | "joystick", _) => Component::Off,
        ("a" | "x", Some("click") | None) => Component::Primary,
        ("b" | "y", Some("click") | None) => Component::Secondary,
        ("menu", Some("click") | None) => Component::Menu,
        ("aim", Some("pose")) => Component::Aim,
        ("grip", Some("pose")) => Component::Grip,
        _ => Component::Off,
    };
    Some((hand, c))
}

/// The raw value of a component in a frame.
fn raw(frame: &Frame, hand: usize, c: Component) -> InputValue {
    let h = &frame.hands[hand];
    match c {
        Component::Trigger => InputValue::Float(h.trigger),
        Component::Squeeze => InputValue::Float(h.squeeze),
        Component::Stick => InputValue::Vec2(h.stick),
        Component::StickX => InputValue::Float(h.stick[0]),
        Component::StickY => InputValue::Float(h.stick[1]),
        Component::Primary => InputValue::Bool(h.primary),
        Component::Secondary => InputValue::Bool(h.secondary),
        Component::Menu => InputValue::Bool(h.menu),
        Component::Aim | Component::Grip => InputValue::Pose,
        Component::Haptic | Component::Off => InputValue::Bool(false),
    }
}

/// The suggested bindings in force: the Touch profile's, else the first profile suggested.
fn profile_bindings(st: &State) -> Option<&(u64, Vec<(u64, u64)>)> {
    let inst = st.instance.as_ref()?;
    let touch = st.paths.find(TOUCH);
    inst.bindings
        .iter()
        .find(|(p, _)| Some(*p) == touch)
        .or(inst.bindings.first())
}

/// The (hand, component) sources bound to an action, filtered by subaction path (0: all).
fn sources(st: &State, action: u64, sub: u64) -> Vec<(usize, Component, u64)> {
    let Some((_, bindings)) = profile_bindings(st) else {
        return Vec::new();
    };
    let prefix = (sub != 0)
        .then(|| st.paths.get(sub).map(|s| format!("{s}/")))
        .flatten();
    bindings
        .iter()
        .filter(|(a, _)| *a == action)
        .filter_map(|&(_, path)| {
            let s = st.paths.get(path)?;
            if let Some(p) = &prefix
                && !s.starts_with(p.as_str())
            {
                return None;
            }
            let (hand, c) = parse_binding(s)?;
            Some((hand, c, path))
        })
        .collect()
}

/// Which hand (0 left, 1 right) and whether the aim pose (else the grip) an action space follows.
pub(crate) fn pose_source(st: &State, action: u64, sub: u64) -> (usize, bool) {
    let by_name = st
        .actions
        .get(&action)
        .is_some_and(|a| a.name.contains("aim"));
    let found = sources(st, action, sub)
        .into_iter()
        .find(|(_, c, _)| matches!(c, Component::Aim | Component::Grip));
    if let Some((hand, c, _)) = found {
        return (hand, c == Component::Aim);
    }
    let hand = match st.paths.get(sub) {
        Some("/user/hand/right") => 1,
        _ => 0,
    };
    (hand, by_name)
}

/// Fails unless `sub` is null or one of the action's subaction paths.
pub(crate) fn check_subaction(st: &State, action: &Action, sub: u64) -> Result<(), xr::Result> {
    if sub == 0 {
        return Ok(());
    }
    if st.paths.get(sub).is_none() {
        return Err(xr::Result::ERROR_PATH_INVALID);
    }
    if action.subaction_paths.contains(&sub) {
        Ok(())
    } else {
        Err(xr::Result::ERROR_PATH_UNSUPPORTED)
    }
}

/// Whether `s` is a valid action or action set name.
fn well_formed_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// xrCreateActionSet.
pub(crate) unsafe fn create_action_set(
    st: &mut State,
    instance: xr::Instance,
    info: *const xr::ActionSetCreateInfo,
    out: *mut xr::ActionSet,
) -> XrResult {
    st.instance(instance)?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::ACTION_SET_CREATE_INFO)?;
    let name = state::fixed_str(&info.action_set_name)?;
    if !well_formed_name(&name) {
        return Err(xr::Result::ERROR_PATH_FORMAT_INVALID);
    }
    if state::fixed_str(&info.localized_action_set_name)?.is_empty() {
        return Err(xr::Result::ERROR_LOCALIZED_NAME_INVALID);
    }
    if st.action_sets.values().any(|s| s.name == name) {
        return Err(xr::Result::ERROR_NAME_DUPLICATED);
    }
    let h = st.new_handle();
    st.action_sets.insert(
        h,
        ActionSet {
            name,
            attached: false,
        },
    );
    // SAFETY: checked non-null.
    unsafe { *out = xr::ActionSet::from_raw(h) };
    OK
}

/// xrDestroyActionSet (and its actions).
pub(crate) unsafe fn destroy_action_set(st: &mut State, set: xr::ActionSet) -> XrResult {
    let h = set.into_raw();
    st.action_sets
        .remove(&h)
        .ok_or(xr::Result::ERROR_HANDLE_INVALID)?;
    st.actions.retain(|_, a| a.set != h);
    OK
}

/// xrCreateAction.
pub(crate) unsafe fn create_action(
    st: &mut State,
    set: xr::ActionSet,
    info: *const xr::ActionCreateInfo,
    out: *mut xr::Action,
) -> XrResult {
    let s = get(&st.action_sets, set.into_raw())?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::ACTION_CREATE_INFO)?;
    if s.attached {
        return Err(xr::Result::ERROR_ACTIONSETS_ALREADY_ATTACHED);
    }
    let name = state::fixed_str(&info.action_name)?;
    if !well_formed_name(&name) {
        return Err(xr::Result::ERROR_PATH_FORMAT_INVALID);
    }
    if state::fixed_str(&info.localized_action_name)?.is_empty() {
        return Err(xr::Result::ERROR_LOCALIZED_NAME_INVALID);
    }
    let known = [
        xr::ActionType::BOOLEAN_INPUT,
        xr::ActionType::FLOAT_INPUT,
        xr::ActionType::VECTOR2F_INPUT,
        xr::ActionType::POSE_INPUT,
        xr::ActionType::VIBRATION_OUTPUT,
    ];
    if !known.contains(&info.action_type) {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    let set_h = set.into_raw();
    if st
        .actions
        .values()
        .any(|a| a.set == set_h && a.name == name)
    {
        return Err(xr::Result::ERROR_NAME_DUPLICATED);
    }
    let mut subs = Vec::new();
    if info.count_subaction_paths > 0 {
        non_null(info.subaction_paths)?;
    }
    for i in 0..info.count_subaction_paths as usize {
        // SAFETY: the app passes `count_subaction_paths` paths.
        let p = unsafe { *info.subaction_paths.add(i) }.into_raw();
        let s = st.paths.get(p).ok_or(xr::Result::ERROR_PATH_INVALID)?;
        if !USER_PATHS.contains(&s) || subs.contains(&p) {
            return Err(xr::Result::ERROR_PATH_UNSUPPORTED);
        }
        subs.push(p);
    }
    let h = st.new_handle();
    st.actions.insert(
        h,
        Action {
            set: set_h,
            name,
            ty: info.action_type,
            subaction_paths: subs,
        },
    );
    // SAFETY: checked non-null.
    unsafe { *out = xr::Action::from_raw(h) };
    OK
}

/// xrDestroyAction.
pub(crate) unsafe fn destroy_action(st: &mut State, action: xr::Action) -> XrResult {
    st.actions
        .remove(&action.into_raw())
        .map(|_| xr::Result::SUCCESS)
        .ok_or(xr::Result::ERROR_HANDLE_INVALID)
}

/// xrSuggestInteractionProfileBindings.
pub(crate) unsafe fn suggest_interaction_profile_bindings(
    st: &mut State,
    instance: xr::Instance,
    info: *const xr::InteractionProfileSuggestedBinding,
) -> XrResult {
    st.instance(instance)?;
    non_null(info)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(
        info.ty,
        xr::StructureType::INTERACTION_PROFILE_SUGGESTED_BINDING,
    )?;
    let profile = info.interaction_profile.into_raw();
    let name = st
        .paths
        .get(profile)
        .ok_or(xr::Result::ERROR_PATH_INVALID)?
        .to_owned();
    if !PROFILES.contains(&name.as_str()) {
        return Err(xr::Result::ERROR_PATH_UNSUPPORTED);
    }
    if info.count_suggested_bindings == 0 {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    non_null(info.suggested_bindings)?;
    let mut list = Vec::new();
    for i in 0..info.count_suggested_bindings as usize {
        // SAFETY: the app passes `count_suggested_bindings` bindings.
        let b = unsafe { *info.suggested_bindings.add(i) };
        let a = get(&st.actions, b.action.into_raw())?;
        if st.action_sets.get(&a.set).is_some_and(|s| s.attached) {
            return Err(xr::Result::ERROR_ACTIONSETS_ALREADY_ATTACHED);
        }
        let path = st
            .paths
            .get(b.binding.into_raw())
            .ok_or(xr::Result::ERROR_PATH_INVALID)?;
        if parse_binding(path).is_none() {
            return Err(xr::Result::ERROR_PATH_UNSUPPORTED);
        }
        list.push((b.action.into_raw(), b.binding.into_raw()));
    }
    let inst = st.instance(instance)?;
    match inst.bindings.iter_mut().find(|(p, _)| *p == profile) {
        Some(entry) => entry.1 = list,
        None => inst.bindings.push((profile, list)),
    }
    if !st.report.profiles.contains(&name) {
        st.report.profiles.push(name);
    }
    OK
}

/// xrAttachSessionActionSets.
pub(crate) unsafe fn attach_session_action_sets(
    st: &mut State,
    session: xr::Session,
    info: *const xr::SessionActionSetsAttachInfo,
) -> XrResult {
    let s = get(&st.sessions, session.into_raw())?;
    non_null(info)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::SESSION_ACTION_SETS_ATTACH_INFO)?;
    if s.attached.is_some() {
        return Err(xr::Result::ERROR_ACTIONSETS_ALREADY_ATTACHED);
    }
    if info.count_action_sets == 0 {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    non_null(info.action_sets)?;
    let mut sets = Vec::new();
    for i in 0..info.count_action_sets as usize {
        // SAFETY: the app passes `count_action_sets` handles.
        let h = unsafe { *info.action_sets.add(i) }.into_raw();
        get(&st.action_sets, h)?;
        sets.push(h);
    }
    for h in &sets {
        if let Some(s) = st.action_sets.get_mut(h) {
            s.attached = true;
        }
    }
    get_mut(&mut st.sessions, session.into_raw())?.attached = Some(sets);
    OK
}

/// xrGetCurrentInteractionProfile: the Touch controllers (or the first profile suggested) once
/// actions have been synced.
pub(crate) unsafe fn get_current_interaction_profile(
    st: &mut State,
    session: xr::Session,
    top: xr::Path,
    out: *mut xr::InteractionProfileState,
) -> XrResult {
    let s = get(&st.sessions, session.into_raw())?;
    if s.attached.is_none() {
        return Err(xr::Result::ERROR_ACTIONSET_NOT_ATTACHED);
    }
    let synced = s.synced;
    let user = st
        .paths
        .get(top.into_raw())
        .ok_or(xr::Result::ERROR_PATH_INVALID)?;
    if !USER_PATHS.contains(&user) {
        return Err(xr::Result::ERROR_PATH_UNSUPPORTED);
    }
    let is_hand = user.starts_with("/user/hand/");
    non_null(out)?;
    // SAFETY: checked non-null.
    let o = unsafe { &mut *out };
    check_type(o.ty, xr::StructureType::INTERACTION_PROFILE_STATE)?;
    let profile = if synced && is_hand {
        profile_bindings(st).map_or(0, |(p, _)| *p)
    } else {
        0
    };
    o.interaction_profile = xr::Path::from_raw(profile);
    OK
}

/// An input value converted to an action's type; `None` if the source cannot feed it.
fn convert(ty: xr::ActionType, v: InputValue) -> Option<InputValue> {
    use InputValue as V;
    let len = |a: [f32; 2]| (a[0] * a[0] + a[1] * a[1]).sqrt();
    match (ty, v) {
        (xr::ActionType::BOOLEAN_INPUT, V::Bool(b)) => Some(V::Bool(b)),
        (xr::ActionType::BOOLEAN_INPUT, V::Float(f)) => Some(V::Bool(f > 0.5)),
        (xr::ActionType::BOOLEAN_INPUT, V::Vec2(a)) => Some(V::Bool(len(a) > 0.5)),
        (xr::ActionType::FLOAT_INPUT, V::Bool(b)) => Some(V::Float(if b { 1.0 } else { 0.0 })),
        (xr::ActionType::FLOAT_INPUT, V::Float(f)) => Some(V::Float(f)),
        (xr::ActionType::FLOAT_INPUT, V::Vec2(a)) => Some(V::Float(a[1])),
        (xr::ActionType::VECTOR2F_INPUT, V::Vec2(a)) => Some(V::Vec2(a)),
        (xr::ActionType::POSE_INPUT, V::Pose) => Some(V::Pose),
        _ => None,
    }
}

/// Combines several sources of one action: any button down, the largest deflection.
fn combine(a: InputValue, b: InputValue) -> InputValue {
    use InputValue as V;
    match (a, b) {
        (V::Bool(x), V::Bool(y)) => V::Bool(x || y),
        (V::Float(x), V::Float(y)) => V::Float(if y.abs() > x.abs() { y } else { x }),
        (V::Vec2(x), V::Vec2(y)) => {
            if y[0] * y[0] + y[1] * y[1] > x[0] * x[0] + x[1] * x[1] {
                V::Vec2(y)
            } else {
                V::Vec2(x)
            }
        }
        (x, _) => x,
    }
}

/// The zero value of an action type.
fn zero(ty: xr::ActionType) -> InputValue {
    match ty {
        xr::ActionType::FLOAT_INPUT => InputValue::Float(0.0),
        xr::ActionType::VECTOR2F_INPUT => InputValue::Vec2([0.0, 0.0]),
        xr::ActionType::POSE_INPUT => InputValue::Pose,
        _ => InputValue::Bool(false),
    }
}

/// xrSyncActions: latches the current scripted frame's inputs.
pub(crate) unsafe fn sync_actions(
    st: &mut State,
    session: xr::Session,
    info: *const xr::ActionsSyncInfo,
) -> XrResult {
    let sh = session.into_raw();
    let s = get(&st.sessions, sh)?;
    if s.loss_pending {
        return Ok(xr::Result::SESSION_LOSS_PENDING);
    }
    non_null(info)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::ACTIONS_SYNC_INFO)?;
    let attached = s
        .attached
        .clone()
        .ok_or(xr::Result::ERROR_ACTIONSET_NOT_ATTACHED)?;
    let mut active_sets = Vec::new();
    if info.count_active_action_sets > 0 {
        non_null(info.active_action_sets)?;
    }
    for i in 0..info.count_active_action_sets as usize {
        // SAFETY: the app passes `count_active_action_sets` entries.
        let a = unsafe { *info.active_action_sets.add(i) };
        let h = a.action_set.into_raw();
        get(&st.action_sets, h)?;
        if !attached.contains(&h) {
            return Err(xr::Result::ERROR_ACTIONSET_NOT_ATTACHED);
        }
        active_sets.push(h);
    }
    let focused = s.focused();
    let frame_index = s.current_frame();
    let now = state::frame_time(frame_index);
    let frame = st.script.frame(frame_index);
    let mut fresh = Vec::new();
    for (&ah, a) in &st.actions {
        if !attached.contains(&a.set) {
            continue;
        }
        let set_active = active_sets.contains(&a.set);
        for sub in std::iter::once(0).chain(a.subaction_paths.iter().copied()) {
            let value = sources(st, ah, sub)
                .into_iter()
                .filter(|(hand, _, _)| frame.hands[*hand].controller)
                .filter_map(|(hand, c, _)| convert(a.ty, raw(&frame, hand, c)))
                .reduce(combine);
            let active = focused && set_active && value.is_some();
            let value = if active {
                value.unwrap_or(zero(a.ty))
            } else {
                zero(a.ty)
            };
            fresh.push(((ah, sub), value, active));
        }
    }
    let first = !s.synced;
    let s = get_mut(&mut st.sessions, sh)?;
    for (key, value, active) in fresh {
        let prev = s.latched.get(&key).copied();
        let was_active = prev.is_some_and(|p| p.active);
        let changed = active && was_active && prev.is_some_and(|p| p.value != value);
        let last_change = if changed || (active && !was_active) {
            now
        } else {
            prev.map_or(now, |p| p.last_change)
        };
        s.latched.insert(
            key,
            Latched {
                value,
                active,
                changed,
                last_change,
            },
        );
    }
    s.synced = true;
    if first
        && profile_bindings(st).is_some()
        && let Some(i) = &mut st.instance
    {
        i.events.push_back(Event::ProfileChanged(sh));
    }
    OK
}

/// The latched state of an action for a get-state call, after the common checks.
fn latched(
    st: &State,
    session: xr::Session,
    info: *const xr::ActionStateGetInfo,
    ty: xr::ActionType,
) -> Result<Latched, xr::Result> {
    let s = get(&st.sessions, session.into_raw())?;
    non_null(info)?;
    // SAFETY: checked non-null; the app passes a valid structure.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::ACTION_STATE_GET_INFO)?;
    let ah = info.action.into_raw();
    let a = get(&st.actions, ah)?;
    if !s.attached.as_ref().is_some_and(|v| v.contains(&a.set)) {
        return Err(xr::Result::ERROR_ACTIONSET_NOT_ATTACHED);
    }
    if a.ty != ty {
        return Err(xr::Result::ERROR_ACTION_TYPE_MISMATCH);
    }
    let sub = info.subaction_path.into_raw();
    check_subaction(st, a, sub)?;
    Ok(s.latched.get(&(ah, sub)).copied().unwrap_or(Latched {
        value: zero(ty),
        active: false,
        changed: false,
        last_change: xr::Time::from_nanos(0),
    }))
}

/// xrGetActionStateBoolean.
pub(crate) unsafe fn get_action_state_boolean(
    st: &mut State,
    session: xr::Session,
    info: *const xr::ActionStateGetInfo,
    out: *mut xr::ActionStateBoolean,
) -> XrResult {
    let l = latched(st, session, info, xr::ActionType::BOOLEAN_INPUT)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let o = unsafe { &mut *out };
    check_type(o.ty, xr::StructureType::ACTION_STATE_BOOLEAN)?;
    o.current_state = matches!(l.value, InputValue::Bool(true)).into();
    o.changed_since_last_sync = l.changed.into();
    o.last_change_time = l.last_change;
    o.is_active = l.active.into();
    OK
}

/// xrGetActionStateFloat.
pub(crate) unsafe fn get_action_state_float(
    st: &mut State,
    session: xr::Session,
    info: *const xr::ActionStateGetInfo,
    out: *mut xr::ActionStateFloat,
) -> XrResult {
    let l = latched(st, session, info, xr::ActionType::FLOAT_INPUT)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let o = unsafe { &mut *out };
    check_type(o.ty, xr::StructureType::ACTION_STATE_FLOAT)?;
    o.current_state = match l.value {
        InputValue::Float(f) => f,
        _ => 0.0,
    };
    o.changed_since_last_sync = l.changed.into();
    o.last_change_time = l.last_change;
    o.is_active = l.active.into();
    OK
}

/// xrGetActionStateVector2f.
pub(crate) unsafe fn get_action_state_vector2f(
    st: &mut State,
    session: xr::Session,
    info: *const xr::ActionStateGetInfo,
    out: *mut xr::ActionStateVector2f,
) -> XrResult {
    let l = latched(st, session, info, xr::ActionType::VECTOR2F_INPUT)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let o = unsafe { &mut *out };
    check_type(o.ty, xr::StructureType::ACTION_STATE_VECTOR2F)?;
    let [x, y] = match l.value {
        InputValue::Vec2(a) => a,
        _ => [0.0, 0.0],
    };
    o.current_state = xr::Vector2f { x, y };
    o.changed_since_last_sync = l.changed.into();
    o.last_change_time = l.last_change;
    o.is_active = l.active.into();
    OK
}

/// xrGetActionStatePose.
pub(crate) unsafe fn get_action_state_pose(
    st: &mut State,
    session: xr::Session,
    info: *const xr::ActionStateGetInfo,
    out: *mut xr::ActionStatePose,
) -> XrResult {
    let l = latched(st, session, info, xr::ActionType::POSE_INPUT)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let o = unsafe { &mut *out };
    check_type(o.ty, xr::StructureType::ACTION_STATE_POSE)?;
    o.is_active = l.active.into();
    OK
}

/// xrEnumerateBoundSourcesForAction.
pub(crate) unsafe fn enumerate_bound_sources_for_action(
    st: &mut State,
    session: xr::Session,
    info: *const xr::BoundSourcesForActionEnumerateInfo,
    cap: u32,
    count: *mut u32,
    out: *mut xr::Path,
) -> XrResult {
    let s = get(&st.sessions, session.into_raw())?;
    non_null(info)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(
        info.ty,
        xr::StructureType::BOUND_SOURCES_FOR_ACTION_ENUMERATE_INFO,
    )?;
    let ah = info.action.into_raw();
    let a = get(&st.actions, ah)?;
    if !s.attached.as_ref().is_some_and(|v| v.contains(&a.set)) {
        return Err(xr::Result::ERROR_ACTIONSET_NOT_ATTACHED);
    }
    let paths: Vec<u64> = sources(st, ah, 0)
        .into_iter()
        .filter(|(_, c, _)| *c != Component::Off)
        .map(|(_, _, p)| p)
        .collect();
    // SAFETY: forwarded from the caller.
    unsafe {
        state::enumerate(paths.len(), cap, count, out, |i, p| {
            *p = xr::Path::from_raw(paths[i]);
        })
    }
}

/// A readable name for the last components of a binding path, e.g. "Trigger".
fn component_name(path: &str) -> String {
    let rest = path.splitn(5, '/').nth(4).unwrap_or(path);
    let rest = rest.strip_prefix("input/").unwrap_or(rest);
    let mut name = String::new();
    for word in rest.split(['/', '_']) {
        let mut c = word.chars();
        if let Some(f) = c.next() {
            if !name.is_empty() {
                name.push(' ');
            }
            name.extend(f.to_uppercase());
            name.push_str(c.as_str());
        }
    }
    name
}

/// xrGetInputSourceLocalizedName.
pub(crate) unsafe fn get_input_source_localized_name(
    st: &mut State,
    session: xr::Session,
    info: *const xr::InputSourceLocalizedNameGetInfo,
    cap: u32,
    count: *mut u32,
    buf: *mut c_char,
) -> XrResult {
    let s = get(&st.sessions, session.into_raw())?;
    if s.attached.is_none() {
        return Err(xr::Result::ERROR_ACTIONSET_NOT_ATTACHED);
    }
    non_null(info)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(
        info.ty,
        xr::StructureType::INPUT_SOURCE_LOCALIZED_NAME_GET_INFO,
    )?;
    let path = st
        .paths
        .get(info.source_path.into_raw())
        .ok_or(xr::Result::ERROR_PATH_INVALID)?;
    let which = info.which_components;
    if which.is_empty() {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    let mut parts = Vec::new();
    if which.contains(xr::InputSourceLocalizedNameFlags::USER_PATH) {
        parts.push(if path.starts_with("/user/hand/left") {
            "Left Hand".to_owned()
        } else if path.starts_with("/user/hand/right") {
            "Right Hand".to_owned()
        } else {
            "User".to_owned()
        });
    }
    if which.contains(xr::InputSourceLocalizedNameFlags::INTERACTION_PROFILE) {
        parts.push("Oculus Touch Controller".to_owned());
    }
    if which.contains(xr::InputSourceLocalizedNameFlags::COMPONENT) {
        parts.push(component_name(path));
    }
    let name = parts.join(" ");
    // SAFETY: forwarded from the caller.
    unsafe { state::enumerate_str(&name, cap, count, buf) }
}

/// The checks of both haptic calls: the session, an attached vibration action, a subaction
/// path of it. Gives the hands it would vibrate.
fn haptic_target(
    st: &State,
    session: xr::Session,
    info: *const xr::HapticActionInfo,
) -> Result<Vec<String>, xr::Result> {
    let s = get(&st.sessions, session.into_raw())?;
    non_null(info)?;
    // SAFETY: checked non-null; the app passes a valid structure.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::HAPTIC_ACTION_INFO)?;
    let ah = info.action.into_raw();
    let a = get(&st.actions, ah)?;
    if a.ty != xr::ActionType::VIBRATION_OUTPUT {
        return Err(xr::Result::ERROR_ACTION_TYPE_MISMATCH);
    }
    if !s.attached.as_ref().is_some_and(|v| v.contains(&a.set)) {
        return Err(xr::Result::ERROR_ACTIONSET_NOT_ATTACHED);
    }
    let sub = info.subaction_path.into_raw();
    check_subaction(st, a, sub)?;
    if sub != 0 {
        return Ok(st.paths.get(sub).map(str::to_owned).into_iter().collect());
    }
    let mut hands: Vec<String> = sources(st, ah, 0)
        .into_iter()
        .filter(|(_, c, _)| *c == Component::Haptic)
        .map(|(h, _, _)| USER_PATHS[h].to_owned())
        .collect();
    hands.dedup();
    Ok(hands)
}

/// xrApplyHapticFeedback: records the pulse.
pub(crate) unsafe fn apply_haptic_feedback(
    st: &mut State,
    session: xr::Session,
    info: *const xr::HapticActionInfo,
    feedback: *const xr::HapticBaseHeader,
) -> XrResult {
    let hands = haptic_target(st, session, info)?;
    non_null(feedback)?;
    // SAFETY: checked non-null; every haptic structure starts with the base header.
    let ty = unsafe { (*feedback).ty };
    check_type(ty, xr::StructureType::HAPTIC_VIBRATION)?;
    // SAFETY: the type says what it is.
    let v = unsafe { &*feedback.cast::<xr::HapticVibration>() };
    let s = get(&st.sessions, session.into_raw())?;
    let frame = s.current_frame();
    let focused = s.focused();
    for hand in hands {
        st.report.haptics.push(json!({
            "frame": frame,
            "hand": hand,
            "amplitude": v.amplitude,
            "duration_ns": v.duration.as_nanos(),
            "frequency": v.frequency,
            "focused": focused,
        }));
    }
    OK
}

/// xrStopHapticFeedback.
pub(crate) unsafe fn stop_haptic_feedback(
    st: &mut State,
    session: xr::Session,
    info: *const xr::HapticActionInfo,
) -> XrResult {
    haptic_target(st, session, info)?;
    OK
}
