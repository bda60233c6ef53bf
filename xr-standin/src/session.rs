//! Sessions: the lifecycle, reference and action spaces, the frame loop, and views.

use ash::vk;
use openxr_sys as xr;
use openxr_sys::Handle as _;

use crate::gfx;
use crate::input;
use crate::math;
use crate::state::{
    self, Event, OK, PERIOD_NS, Session, Space, SpaceKind, State, XrResult, check_type, get,
    get_mut, non_null,
};

/// The most layers a frame may have.
const MAX_LAYERS: u32 = 16;

/// The session if `h` is a live one.
fn session(st: &mut State, h: xr::Session) -> Result<&mut Session, xr::Result> {
    get_mut(&mut st.sessions, h.into_raw())
}

/// xrCreateSession.
pub(crate) unsafe fn create_session(
    st: &mut State,
    instance: xr::Instance,
    info: *const xr::SessionCreateInfo,
    out: *mut xr::Session,
) -> XrResult {
    let inst = st.instance(instance)?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::SESSION_CREATE_INFO)?;
    crate::instance::check_system(info.system_id)?;
    if !inst.got_requirements {
        return Err(xr::Result::ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING);
    }
    // Find the Vulkan binding in the chain.
    let mut next = info.next.cast::<xr::BaseInStructure>();
    let mut binding = None;
    while !next.is_null() {
        // SAFETY: the app chains valid structures, each starting with type and next.
        let n = unsafe { &*next };
        if n.ty == xr::StructureType::GRAPHICS_BINDING_VULKAN_KHR {
            // SAFETY: the type says what it is.
            binding = Some(unsafe { &*next.cast::<xr::GraphicsBindingVulkanKHR>() });
        }
        next = n.next;
    }
    let b = binding.ok_or(xr::Result::ERROR_GRAPHICS_DEVICE_INVALID)?;
    let dev = crate::instance::find_device(
        inst,
        gfx::from_ptr(b.instance),
        gfx::from_ptr(b.physical_device),
        gfx::from_ptr(b.device),
    )
    .ok_or(xr::Result::ERROR_GRAPHICS_DEVICE_INVALID)?;
    // SAFETY: the physical device belongs to the live instance.
    let families = unsafe {
        dev.instance
            .get_physical_device_queue_family_properties(dev.physical)
    };
    let family = families
        .get(b.queue_family_index as usize)
        .ok_or(xr::Result::ERROR_VALIDATION_FAILURE)?;
    if b.queue_index >= family.queue_count {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    // SAFETY: the family and index exist; the app made its device with that queue.
    let queue = unsafe {
        dev.device
            .get_device_queue(b.queue_family_index, b.queue_index)
    };
    let gfx = gfx::SessionGfx {
        instance: dev.instance.clone(),
        physical: dev.physical,
        device: dev.device.clone(),
        queue,
        family: b.queue_family_index,
    };
    if !st.sessions.is_empty() {
        return Err(xr::Result::ERROR_LIMIT_REACHED);
    }
    let h = st.new_handle();
    st.sessions.insert(
        h,
        Session {
            state: xr::SessionState::UNKNOWN,
            running: false,
            ready_pending: true,
            stopping: false,
            loss_pending: false,
            gfx,
            waits: 0,
            waited: None,
            begun: None,
            attached: None,
            synced: false,
            latched: Default::default(),
        },
    );
    st.queue_state(h, xr::SessionState::IDLE);
    // SAFETY: checked non-null.
    unsafe { *out = xr::Session::from_raw(h) };
    OK
}

/// Destroys a session and everything made from it.
pub(crate) fn destroy_session_objects(st: &mut State, h: u64) {
    let Some(s) = st.sessions.remove(&h) else {
        return;
    };
    let chains: Vec<u64> = st
        .swapchains
        .iter()
        .filter(|(_, c)| c.session == h)
        .map(|(k, _)| *k)
        .collect();
    if !chains.is_empty() {
        // SAFETY: the queue is the app's, used from the app's thread during this call; waiting
        // makes the GPU done with the images before they go.
        let _ = unsafe { s.gfx.device.queue_wait_idle(s.gfx.queue) };
    }
    for c in chains {
        if let Some(c) = st.swapchains.remove(&c) {
            // SAFETY: made on this device; the queue is idle.
            unsafe { gfx::destroy_images(&s.gfx, &c.images) };
        }
    }
    st.spaces.retain(|_, sp| sp.session != h);
    st.hand_trackers.retain(|_, t| t.session != h);
    if let Some(i) = &mut st.instance {
        i.events.retain(|e| match *e {
            Event::State(s, ..) | Event::ProfileChanged(s) => s != h,
        });
    }
}

/// xrDestroySession.
pub(crate) unsafe fn destroy_session(st: &mut State, h: xr::Session) -> XrResult {
    session(st, h)?;
    destroy_session_objects(st, h.into_raw());
    OK
}

/// xrBeginSession.
pub(crate) unsafe fn begin_session(
    st: &mut State,
    h: xr::Session,
    info: *const xr::SessionBeginInfo,
) -> XrResult {
    let s = session(st, h)?;
    if s.loss_pending {
        return Err(xr::Result::ERROR_SESSION_LOST);
    }
    non_null(info)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::SESSION_BEGIN_INFO)?;
    if info.primary_view_configuration_type != xr::ViewConfigurationType::PRIMARY_STEREO {
        return Err(xr::Result::ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED);
    }
    if s.running {
        return Err(xr::Result::ERROR_SESSION_RUNNING);
    }
    if s.state != xr::SessionState::READY {
        return Err(xr::Result::ERROR_SESSION_NOT_READY);
    }
    s.running = true;
    s.waited = None;
    s.begun = None;
    let h = h.into_raw();
    for state in [
        xr::SessionState::SYNCHRONIZED,
        xr::SessionState::VISIBLE,
        xr::SessionState::FOCUSED,
    ] {
        st.queue_state(h, state);
    }
    OK
}

/// Starts the session stopping: steps down through VISIBLE and SYNCHRONIZED to STOPPING.
fn stop(st: &mut State, h: u64) {
    let Some(s) = st.sessions.get_mut(&h) else {
        return;
    };
    if s.stopping || s.loss_pending {
        return;
    }
    s.stopping = true;
    let from = s.state;
    if from == xr::SessionState::FOCUSED {
        st.queue_state(h, xr::SessionState::VISIBLE);
    }
    if from == xr::SessionState::FOCUSED || from == xr::SessionState::VISIBLE {
        st.queue_state(h, xr::SessionState::SYNCHRONIZED);
    }
    st.queue_state(h, xr::SessionState::STOPPING);
}

/// xrEndSession.
pub(crate) unsafe fn end_session(st: &mut State, h: xr::Session) -> XrResult {
    let s = session(st, h)?;
    if s.loss_pending {
        return Err(xr::Result::ERROR_SESSION_LOST);
    }
    if !s.running {
        return Err(xr::Result::ERROR_SESSION_NOT_RUNNING);
    }
    if s.state != xr::SessionState::STOPPING {
        return Err(xr::Result::ERROR_SESSION_NOT_STOPPING);
    }
    s.running = false;
    s.waited = None;
    s.begun = None;
    let h = h.into_raw();
    st.queue_state(h, xr::SessionState::IDLE);
    st.queue_state(h, xr::SessionState::EXITING);
    st.write_report();
    OK
}

/// xrRequestExitSession.
pub(crate) unsafe fn request_exit_session(st: &mut State, h: xr::Session) -> XrResult {
    let s = session(st, h)?;
    if !s.running {
        return Err(xr::Result::ERROR_SESSION_NOT_RUNNING);
    }
    stop(st, h.into_raw());
    OK
}

const REFERENCE_SPACES: [xr::ReferenceSpaceType; 3] = [
    xr::ReferenceSpaceType::VIEW,
    xr::ReferenceSpaceType::LOCAL,
    xr::ReferenceSpaceType::STAGE,
];

/// xrEnumerateReferenceSpaces.
pub(crate) unsafe fn enumerate_reference_spaces(
    st: &mut State,
    h: xr::Session,
    cap: u32,
    count: *mut u32,
    out: *mut xr::ReferenceSpaceType,
) -> XrResult {
    session(st, h)?;
    // SAFETY: forwarded from the caller.
    unsafe {
        state::enumerate(REFERENCE_SPACES.len(), cap, count, out, |i, p| {
            *p = REFERENCE_SPACES[i];
        })
    }
}

fn check_pose(p: &xr::Posef) -> Result<(), xr::Result> {
    let q = p.orientation;
    let n = (q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w).sqrt();
    let finite = [p.position.x, p.position.y, p.position.z, n]
        .iter()
        .all(|v| v.is_finite());
    if finite && (n - 1.0).abs() < 0.01 {
        Ok(())
    } else {
        Err(xr::Result::ERROR_POSE_INVALID)
    }
}

/// xrCreateReferenceSpace.
pub(crate) unsafe fn create_reference_space(
    st: &mut State,
    h: xr::Session,
    info: *const xr::ReferenceSpaceCreateInfo,
    out: *mut xr::Space,
) -> XrResult {
    session(st, h)?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::REFERENCE_SPACE_CREATE_INFO)?;
    if !REFERENCE_SPACES.contains(&info.reference_space_type) {
        return Err(xr::Result::ERROR_REFERENCE_SPACE_UNSUPPORTED);
    }
    check_pose(&info.pose_in_reference_space)?;
    let id = st.new_handle();
    st.spaces.insert(
        id,
        Space {
            session: h.into_raw(),
            kind: SpaceKind::Reference(info.reference_space_type),
            offset: info.pose_in_reference_space,
        },
    );
    // SAFETY: checked non-null.
    unsafe { *out = xr::Space::from_raw(id) };
    OK
}

/// xrGetReferenceSpaceBoundsRect: the stage is 3 m by 3 m; other spaces have no bounds.
pub(crate) unsafe fn get_reference_space_bounds_rect(
    st: &mut State,
    h: xr::Session,
    ty: xr::ReferenceSpaceType,
    out: *mut xr::Extent2Df,
) -> XrResult {
    session(st, h)?;
    non_null(out)?;
    if !REFERENCE_SPACES.contains(&ty) {
        return Err(xr::Result::ERROR_REFERENCE_SPACE_UNSUPPORTED);
    }
    let stage = ty == xr::ReferenceSpaceType::STAGE;
    let size = if stage { 3.0 } else { 0.0 };
    // SAFETY: checked non-null.
    unsafe {
        *out = xr::Extent2Df {
            width: size,
            height: size,
        }
    };
    if stage {
        OK
    } else {
        Ok(xr::Result::SPACE_BOUNDS_UNAVAILABLE)
    }
}

/// xrCreateActionSpace.
pub(crate) unsafe fn create_action_space(
    st: &mut State,
    h: xr::Session,
    info: *const xr::ActionSpaceCreateInfo,
    out: *mut xr::Space,
) -> XrResult {
    session(st, h)?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::ACTION_SPACE_CREATE_INFO)?;
    let action = get(&st.actions, info.action.into_raw())?;
    if action.ty != xr::ActionType::POSE_INPUT {
        return Err(xr::Result::ERROR_ACTION_TYPE_MISMATCH);
    }
    input::check_subaction(st, action, info.subaction_path.into_raw())?;
    check_pose(&info.pose_in_action_space)?;
    let id = st.new_handle();
    st.spaces.insert(
        id,
        Space {
            session: h.into_raw(),
            kind: SpaceKind::Action(info.action.into_raw(), info.subaction_path.into_raw()),
            offset: info.pose_in_action_space,
        },
    );
    // SAFETY: checked non-null.
    unsafe { *out = xr::Space::from_raw(id) };
    OK
}

/// Where a space is in the world (STAGE space) at the session's current frame.
pub(crate) fn world_pose(st: &State, space: &Space) -> xr::Posef {
    let frame = st
        .sessions
        .get(&space.session)
        .map_or(0, Session::current_frame);
    let f = st.script.frame(frame);
    let base = match space.kind {
        SpaceKind::Reference(t) if t == xr::ReferenceSpaceType::VIEW => f.head,
        SpaceKind::Reference(_) => xr::Posef::IDENTITY,
        SpaceKind::Action(action, sub) => {
            let (hand, aim) = input::pose_source(st, action, sub);
            let h = &f.hands[hand];
            if aim { h.aim } else { h.grip }
        }
    };
    math::compose(base, space.offset)
}

fn all_location_flags() -> xr::SpaceLocationFlags {
    xr::SpaceLocationFlags::ORIENTATION_VALID
        | xr::SpaceLocationFlags::POSITION_VALID
        | xr::SpaceLocationFlags::ORIENTATION_TRACKED
        | xr::SpaceLocationFlags::POSITION_TRACKED
}

/// Clears any XrSpaceVelocity chained to an output structure (velocities are not tracked).
///
/// # Safety
/// `next` must be null or a valid chain of output structures.
pub(crate) unsafe fn clear_velocities(mut next: *mut xr::BaseOutStructure) {
    while !next.is_null() {
        // SAFETY: the app chains valid output structures.
        let n = unsafe { &mut *next };
        if n.ty == xr::StructureType::SPACE_VELOCITY {
            let v = next.cast::<xr::SpaceVelocity>();
            // SAFETY: the type says what it is.
            unsafe {
                (*v).velocity_flags = xr::SpaceVelocityFlags::EMPTY;
                (*v).linear_velocity = xr::Vector3f::default();
                (*v).angular_velocity = xr::Vector3f::default();
            }
        }
        next = n.next;
    }
}

/// xrLocateSpace.
pub(crate) unsafe fn locate_space(
    st: &mut State,
    space: xr::Space,
    base: xr::Space,
    time: xr::Time,
    out: *mut xr::SpaceLocation,
) -> XrResult {
    let sp = *get(&st.spaces, space.into_raw())?;
    let bs = *get(&st.spaces, base.into_raw())?;
    if sp.session != bs.session {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    if time.as_nanos() <= 0 {
        return Err(xr::Result::ERROR_TIME_INVALID);
    }
    non_null(out)?;
    // SAFETY: checked non-null.
    let loc = unsafe { &mut *out };
    check_type(loc.ty, xr::StructureType::SPACE_LOCATION)?;
    loc.pose = math::relative(world_pose(st, &bs), world_pose(st, &sp));
    loc.location_flags = all_location_flags();
    // SAFETY: the app's output chain.
    unsafe { clear_velocities(loc.next.cast()) };
    OK
}

/// xrDestroySpace.
pub(crate) unsafe fn destroy_space(st: &mut State, space: xr::Space) -> XrResult {
    st.spaces
        .remove(&space.into_raw())
        .map(|_| xr::Result::SUCCESS)
        .ok_or(xr::Result::ERROR_HANDLE_INVALID)
}

/// xrWaitFrame: never sleeps; each call shows the next scripted frame.
pub(crate) unsafe fn wait_frame(
    st: &mut State,
    h: xr::Session,
    info: *const xr::FrameWaitInfo,
    out: *mut xr::FrameState,
) -> XrResult {
    let s = session(st, h)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let fs = unsafe { &mut *out };
    check_type(fs.ty, xr::StructureType::FRAME_STATE)?;
    if !info.is_null() {
        // SAFETY: checked non-null.
        check_type(unsafe { (*info).ty }, xr::StructureType::FRAME_WAIT_INFO)?;
    }
    if s.loss_pending {
        fs.predicted_display_time = state::frame_time(s.current_frame());
        fs.predicted_display_period = xr::Duration::from_nanos(PERIOD_NS);
        fs.should_render = xr::FALSE;
        return Ok(xr::Result::SESSION_LOSS_PENDING);
    }
    if !s.running {
        return Err(xr::Result::ERROR_SESSION_NOT_RUNNING);
    }
    let k = s.waits;
    s.waits += 1;
    s.waited = Some(k);
    let visible = s.state == xr::SessionState::VISIBLE || s.state == xr::SessionState::FOCUSED;
    fs.predicted_display_time = state::frame_time(k);
    fs.predicted_display_period = xr::Duration::from_nanos(PERIOD_NS);
    fs.should_render = visible.into();
    st.report.frames_waited += 1;
    if st.script.loss_pending_at == Some(k) {
        if let Some(s) = st.sessions.get_mut(&h.into_raw()) {
            s.loss_pending = true;
        }
        st.queue_state(h.into_raw(), xr::SessionState::LOSS_PENDING);
        return Ok(xr::Result::SESSION_LOSS_PENDING);
    }
    OK
}

/// xrBeginFrame.
pub(crate) unsafe fn begin_frame(
    st: &mut State,
    h: xr::Session,
    info: *const xr::FrameBeginInfo,
) -> XrResult {
    let s = session(st, h)?;
    if s.loss_pending {
        return Ok(xr::Result::SESSION_LOSS_PENDING);
    }
    if !info.is_null() {
        // SAFETY: checked non-null.
        check_type(unsafe { (*info).ty }, xr::StructureType::FRAME_BEGIN_INFO)?;
    }
    if !s.running {
        return Err(xr::Result::ERROR_SESSION_NOT_RUNNING);
    }
    let k = s
        .waited
        .take()
        .ok_or(xr::Result::ERROR_CALL_ORDER_INVALID)?;
    if s.begun.replace(k).is_some() {
        return Ok(xr::Result::FRAME_DISCARDED);
    }
    OK
}

/// A projection view's sub-image, checked.
struct Checked {
    image: vk::Image,
    format: i64,
    rect: xr::Rect2Di,
    layer: u32,
}

/// Checks a layer's sub-image against its swapchain.
fn check_sub_image(
    st: &State,
    session: u64,
    sub: &xr::SwapchainSubImage,
) -> Result<Checked, xr::Result> {
    let c = get(&st.swapchains, sub.swapchain.into_raw())?;
    if c.session != session {
        return Err(xr::Result::ERROR_HANDLE_INVALID);
    }
    let released = c.released.ok_or(xr::Result::ERROR_LAYER_INVALID)?;
    if sub.image_array_index >= c.array_size {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    let r = sub.image_rect;
    let fits = r.offset.x >= 0
        && r.offset.y >= 0
        && r.extent.width > 0
        && r.extent.height > 0
        && (r.offset.x as i64 + r.extent.width as i64) <= c.width as i64
        && (r.offset.y as i64 + r.extent.height as i64) <= c.height as i64;
    if !fits {
        return Err(xr::Result::ERROR_SWAPCHAIN_RECT_INVALID);
    }
    Ok(Checked {
        image: c.images[released].image,
        format: c.format,
        rect: r,
        layer: sub.image_array_index,
    })
}

/// One eye of a projection layer, for capture.
pub(crate) struct EyeView {
    /// The image released last.
    pub(crate) image: vk::Image,
    /// Its format.
    pub(crate) format: i64,
    /// The rectangle.
    pub(crate) rect: xr::Rect2Di,
    /// The array layer.
    pub(crate) layer: u32,
    /// The pose the app rendered with.
    pub(crate) pose: xr::Posef,
    /// The field of view it rendered with.
    pub(crate) fov: xr::Fovf,
}

/// xrEndFrame.
pub(crate) unsafe fn end_frame(
    st: &mut State,
    h: xr::Session,
    info: *const xr::FrameEndInfo,
) -> XrResult {
    let sh = h.into_raw();
    let s = session(st, h)?;
    if s.loss_pending {
        return Ok(xr::Result::SESSION_LOSS_PENDING);
    }
    non_null(info)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::FRAME_END_INFO)?;
    if !s.running {
        return Err(xr::Result::ERROR_SESSION_NOT_RUNNING);
    }
    let Some(frame) = s.begun else {
        return Err(xr::Result::ERROR_CALL_ORDER_INVALID);
    };
    if info.display_time.as_nanos() <= 0 {
        return Err(xr::Result::ERROR_TIME_INVALID);
    }
    if info.environment_blend_mode != xr::EnvironmentBlendMode::OPAQUE {
        return Err(xr::Result::ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED);
    }
    if info.layer_count > MAX_LAYERS {
        return Err(xr::Result::ERROR_LAYER_LIMIT_EXCEEDED);
    }
    if info.layer_count > 0 {
        non_null(info.layers)?;
    }
    // The first projection layer's views, for capture: (layer index, views).
    let mut projection: Option<(usize, Vec<EyeView>)> = None;
    for i in 0..info.layer_count as usize {
        // SAFETY: the app passes `layer_count` layer pointers.
        let lp = unsafe { *info.layers.add(i) };
        if lp.is_null() {
            return Err(xr::Result::ERROR_LAYER_INVALID);
        }
        // SAFETY: checked non-null; every layer starts with the base header.
        let header = unsafe { &*lp };
        get(&st.spaces, header.space.into_raw())?;
        match header.ty {
            xr::StructureType::COMPOSITION_LAYER_PROJECTION => {
                // SAFETY: the type says what it is.
                let l = unsafe { &*lp.cast::<xr::CompositionLayerProjection>() };
                if l.view_count != 2 {
                    return Err(xr::Result::ERROR_VALIDATION_FAILURE);
                }
                non_null(l.views)?;
                let mut views = Vec::new();
                for v in 0..2 {
                    // SAFETY: the app passes `view_count` views.
                    let view = unsafe { &*l.views.add(v) };
                    check_type(
                        view.ty,
                        xr::StructureType::COMPOSITION_LAYER_PROJECTION_VIEW,
                    )?;
                    let c = check_sub_image(st, sh, &view.sub_image)?;
                    views.push(EyeView {
                        image: c.image,
                        format: c.format,
                        rect: c.rect,
                        layer: c.layer,
                        pose: view.pose,
                        fov: view.fov,
                    });
                }
                if projection.is_none() {
                    projection = Some((i, views));
                }
            }
            xr::StructureType::COMPOSITION_LAYER_QUAD => {
                // SAFETY: the type says what it is.
                let l = unsafe { &*lp.cast::<xr::CompositionLayerQuad>() };
                check_sub_image(st, sh, &l.sub_image)?;
            }
            _ => return Err(xr::Result::ERROR_LAYER_INVALID),
        }
    }
    if let Some(s) = st.sessions.get_mut(&sh) {
        s.begun = None;
    }
    st.report.frames_ended += 1;
    st.report.last_frame_layers = info.layer_count;
    let last = st.script.total_frames() - 1;
    let names: Vec<String> = [
        (frame == last).then(String::new),
        st.script
            .capture_frames
            .contains(&frame)
            .then(|| format!("-frame-{frame}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !names.is_empty() {
        match &projection {
            Some((index, views)) => {
                crate::swapchain::capture(st, sh, frame, *index, views, &names);
            }
            None => st
                .report
                .notes
                .push(format!("frame {frame}: no projection layer to capture")),
        }
    }
    if frame >= last {
        stop(st, sh);
    }
    OK
}

/// xrLocateViews: the eyes sit ±ipd/2 along the head's x axis, looking where the head looks.
pub(crate) unsafe fn locate_views(
    st: &mut State,
    h: xr::Session,
    info: *const xr::ViewLocateInfo,
    view_state: *mut xr::ViewState,
    cap: u32,
    count: *mut u32,
    out: *mut xr::View,
) -> XrResult {
    let s = session(st, h)?;
    let loss = s.loss_pending;
    let frame = s.current_frame();
    non_null(info)?;
    non_null(view_state)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::VIEW_LOCATE_INFO)?;
    if info.view_configuration_type != xr::ViewConfigurationType::PRIMARY_STEREO {
        return Err(xr::Result::ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED);
    }
    if info.display_time.as_nanos() <= 0 {
        return Err(xr::Result::ERROR_TIME_INVALID);
    }
    let base = *get(&st.spaces, info.space.into_raw())?;
    // SAFETY: checked non-null.
    let vs = unsafe { &mut *view_state };
    check_type(vs.ty, xr::StructureType::VIEW_STATE)?;
    vs.view_state_flags = xr::ViewStateFlags::ORIENTATION_VALID
        | xr::ViewStateFlags::POSITION_VALID
        | xr::ViewStateFlags::ORIENTATION_TRACKED
        | xr::ViewStateFlags::POSITION_TRACKED;
    let head = st.script.frame(frame).head;
    let base_pose = world_pose(st, &base);
    let half = st.script.ipd / 2.0;
    let [l, r, u, d] = st.script.fov;
    let fov = xr::Fovf {
        angle_left: l,
        angle_right: r,
        angle_up: u,
        angle_down: d,
    };
    let eyes = [
        math::relative(base_pose, math::offset(head, -half, 0.0, 0.0)),
        math::relative(base_pose, math::offset(head, half, 0.0, 0.0)),
    ];
    // SAFETY: forwarded from the caller; each element is written field by field.
    let r = unsafe {
        state::enumerate(2, cap, count, out, |i, p| {
            (*p).ty = xr::StructureType::VIEW;
            (*p).pose = eyes[i];
            (*p).fov = fov;
        })
    }?;
    if loss {
        Ok(xr::Result::SESSION_LOSS_PENDING)
    } else {
        Ok(r)
    }
}
