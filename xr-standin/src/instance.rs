//! Instance-level calls: extensions, the instance, events, strings, the system, view
//! configurations, paths, and the Vulkan handover (XR_KHR_vulkan_enable2).

use std::ffi::c_char;

use ash::vk;
use ash::vk::Handle as _;
use openxr_sys as xr;
use openxr_sys::Handle as _;

use crate::gfx;
use crate::script::Script;
use crate::state::{
    self, Event, Extensions, Instance, OK, SYSTEM_ID, State, XrResult, check_type, non_null,
};

const VULKAN2: &str = "XR_KHR_vulkan_enable2";
const HAND_TRACKING: &str = "XR_EXT_hand_tracking";

/// The extensions offered: Vulkan handover always, hand tracking when the script asks.
fn offered() -> Vec<(&'static str, u32)> {
    let mut v = vec![(VULKAN2, xr::KHR_vulkan_enable2_SPEC_VERSION)];
    if Script::from_env().is_ok_and(|s| s.hand_tracking) {
        v.push((HAND_TRACKING, xr::EXT_hand_tracking_SPEC_VERSION));
    }
    v
}

/// xrEnumerateApiLayerProperties: there are none.
pub(crate) unsafe fn enumerate_api_layer_properties(
    _st: &mut State,
    cap: u32,
    count: *mut u32,
    props: *mut xr::ApiLayerProperties,
) -> XrResult {
    // SAFETY: forwarded from the caller.
    unsafe { state::enumerate(0, cap, count, props, |_, _| {}) }
}

/// xrEnumerateInstanceExtensionProperties.
pub(crate) unsafe fn enumerate_instance_extension_properties(
    _st: &mut State,
    layer: *const c_char,
    cap: u32,
    count: *mut u32,
    props: *mut xr::ExtensionProperties,
) -> XrResult {
    if !layer.is_null() {
        return Err(xr::Result::ERROR_API_LAYER_NOT_PRESENT);
    }
    let exts = offered();
    // SAFETY: forwarded from the caller; each element is written field by field.
    unsafe {
        state::enumerate(exts.len(), cap, count, props, |i, p| {
            (*p).ty = xr::StructureType::EXTENSION_PROPERTIES;
            state::put_str(&mut (*p).extension_name, exts[i].0);
            (*p).extension_version = exts[i].1;
        })
    }
}

/// xrCreateInstance.
pub(crate) unsafe fn create_instance(
    st: &mut State,
    info: *const xr::InstanceCreateInfo,
    out: *mut xr::Instance,
) -> XrResult {
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null; the app passes a valid create info.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::INSTANCE_CREATE_INFO)?;
    let offered = offered();
    let mut exts = Extensions::default();
    for i in 0..info.enabled_extension_count as usize {
        // SAFETY: the app passes `enabled_extension_count` C strings.
        let name = unsafe { state::c_str(*info.enabled_extension_names.add(i)) }?;
        if !offered.iter().any(|(n, _)| *n == name) {
            return Err(xr::Result::ERROR_EXTENSION_NOT_PRESENT);
        }
        match name.as_str() {
            VULKAN2 => exts.vulkan2 = true,
            HAND_TRACKING => exts.hand_tracking = true,
            _ => {}
        }
    }
    let v = info.application_info.api_version;
    if (v.major(), v.minor()) != (1, 0) {
        return Err(xr::Result::ERROR_API_VERSION_UNSUPPORTED);
    }
    state::fixed_str(&info.application_info.application_name)?;
    if st.instance.is_some() {
        return Err(xr::Result::ERROR_LIMIT_REACHED);
    }
    st.script = match Script::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("theta-xr-standin: {e}");
            st.report.notes.push(e);
            return Err(xr::Result::ERROR_INITIALIZATION_FAILED);
        }
    };
    st.out_dir = std::env::var_os(state::OUT_ENV)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    st.paths = state::Paths::default();
    let handle = st.new_handle();
    st.instance = Some(Instance {
        handle,
        exts,
        got_requirements: false,
        events: Default::default(),
        vk_instances: Vec::new(),
        vk_physical: Vec::new(),
        vk_devices: Vec::new(),
        bindings: Vec::new(),
    });
    // SAFETY: checked non-null.
    unsafe { *out = xr::Instance::from_raw(handle) };
    OK
}

/// xrDestroyInstance: destroys every child handle, then writes the report.
pub(crate) unsafe fn destroy_instance(st: &mut State, instance: xr::Instance) -> XrResult {
    st.instance(instance)?;
    let sessions: Vec<u64> = st.sessions.keys().copied().collect();
    for s in sessions {
        crate::session::destroy_session_objects(st, s);
    }
    st.action_sets.clear();
    st.actions.clear();
    st.instance = None;
    // The destroy call is in the report, and counted.
    st.write_report();
    st.report = state::Report::default();
    OK
}

/// xrGetInstanceProperties.
pub(crate) unsafe fn get_instance_properties(
    st: &mut State,
    instance: xr::Instance,
    props: *mut xr::InstanceProperties,
) -> XrResult {
    st.instance(instance)?;
    non_null(props)?;
    // SAFETY: checked non-null; the app passes a writable structure.
    let props = unsafe { &mut *props };
    check_type(props.ty, xr::StructureType::INSTANCE_PROPERTIES)?;
    props.runtime_version = xr::Version::new(0, 1, 0);
    state::put_str(&mut props.runtime_name, crate::RUNTIME_NAME);
    OK
}

/// xrPollEvent.
pub(crate) unsafe fn poll_event(
    st: &mut State,
    instance: xr::Instance,
    event: *mut xr::EventDataBuffer,
) -> XrResult {
    non_null(event)?;
    let inst = st.instance(instance)?;
    let Some(ev) = inst.events.pop_front() else {
        return Ok(xr::Result::EVENT_UNAVAILABLE);
    };
    match ev {
        Event::State(session, s, time) => {
            let out = xr::EventDataSessionStateChanged {
                ty: xr::StructureType::EVENT_DATA_SESSION_STATE_CHANGED,
                next: std::ptr::null(),
                session: xr::Session::from_raw(session),
                state: s,
                time,
            };
            // SAFETY: the buffer is 4016 bytes, larger than the event, and writable.
            unsafe { event.cast::<xr::EventDataSessionStateChanged>().write(out) };
            // The runtime is ready as soon as the app has seen the session idle.
            if s == xr::SessionState::IDLE
                && st
                    .sessions
                    .get_mut(&session)
                    .is_some_and(|x| std::mem::take(&mut x.ready_pending))
            {
                st.queue_state(session, xr::SessionState::READY);
            }
        }
        Event::ProfileChanged(session) => {
            let out = xr::EventDataInteractionProfileChanged {
                ty: xr::StructureType::EVENT_DATA_INTERACTION_PROFILE_CHANGED,
                next: std::ptr::null(),
                session: xr::Session::from_raw(session),
            };
            // SAFETY: as above.
            unsafe {
                event
                    .cast::<xr::EventDataInteractionProfileChanged>()
                    .write(out)
            };
        }
    }
    OK
}

/// xrResultToString.
pub(crate) unsafe fn result_to_string(
    st: &mut State,
    instance: xr::Instance,
    value: xr::Result,
    buffer: *mut c_char,
) -> XrResult {
    st.instance(instance)?;
    non_null(buffer)?;
    // SAFETY: the spec gives the buffer XR_MAX_RESULT_STRING_SIZE characters.
    let buf = unsafe { std::slice::from_raw_parts_mut(buffer, xr::MAX_RESULT_STRING_SIZE) };
    state::put_str(buf, &state::result_name(value));
    OK
}

/// xrStructureTypeToString.
pub(crate) unsafe fn structure_type_to_string(
    st: &mut State,
    instance: xr::Instance,
    value: xr::StructureType,
    buffer: *mut c_char,
) -> XrResult {
    st.instance(instance)?;
    non_null(buffer)?;
    // SAFETY: the spec gives the buffer XR_MAX_STRUCTURE_NAME_SIZE characters.
    let buf = unsafe { std::slice::from_raw_parts_mut(buffer, xr::MAX_STRUCTURE_NAME_SIZE) };
    state::put_str(buf, &state::structure_type_name(value));
    OK
}

/// Fails unless `system` is the system xrGetSystem gives.
pub(crate) fn check_system(system: xr::SystemId) -> Result<(), xr::Result> {
    if system.into_raw() == SYSTEM_ID {
        Ok(())
    } else {
        Err(xr::Result::ERROR_SYSTEM_INVALID)
    }
}

/// xrGetSystem.
pub(crate) unsafe fn get_system(
    st: &mut State,
    instance: xr::Instance,
    info: *const xr::SystemGetInfo,
    out: *mut xr::SystemId,
) -> XrResult {
    st.instance(instance)?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::SYSTEM_GET_INFO)?;
    if info.form_factor != xr::FormFactor::HEAD_MOUNTED_DISPLAY {
        return Err(xr::Result::ERROR_FORM_FACTOR_UNSUPPORTED);
    }
    if st.script.no_headset {
        return Err(xr::Result::ERROR_FORM_FACTOR_UNAVAILABLE);
    }
    // SAFETY: checked non-null.
    unsafe { *out = xr::SystemId::from_raw(SYSTEM_ID) };
    OK
}

/// xrGetSystemProperties.
pub(crate) unsafe fn get_system_properties(
    st: &mut State,
    instance: xr::Instance,
    system: xr::SystemId,
    props: *mut xr::SystemProperties,
) -> XrResult {
    st.instance(instance)?;
    check_system(system)?;
    non_null(props)?;
    // SAFETY: checked non-null; the app passes a writable structure.
    let p = unsafe { &mut *props };
    check_type(p.ty, xr::StructureType::SYSTEM_PROPERTIES)?;
    p.system_id = system;
    p.vendor_id = 0;
    state::put_str(&mut p.system_name, "Theta stand-in headset");
    p.graphics_properties = xr::SystemGraphicsProperties {
        max_swapchain_image_height: 4096,
        max_swapchain_image_width: 4096,
        max_layer_count: 16,
    };
    p.tracking_properties = xr::SystemTrackingProperties {
        orientation_tracking: xr::TRUE,
        position_tracking: xr::TRUE,
    };
    // Hand tracking reports its support in a chained structure.
    let mut next = p.next.cast::<xr::BaseOutStructure>();
    while !next.is_null() {
        // SAFETY: the app chains valid output structures.
        let n = unsafe { &mut *next };
        if n.ty == xr::StructureType::SYSTEM_HAND_TRACKING_PROPERTIES_EXT {
            let h = next.cast::<xr::SystemHandTrackingPropertiesEXT>();
            // SAFETY: the type says what it is.
            unsafe { (*h).supports_hand_tracking = st.script.hand_tracking.into() };
        }
        next = n.next;
    }
    OK
}

fn check_view_config(ty: xr::ViewConfigurationType) -> Result<(), xr::Result> {
    if ty == xr::ViewConfigurationType::PRIMARY_STEREO {
        Ok(())
    } else {
        Err(xr::Result::ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED)
    }
}

/// xrEnumerateViewConfigurations.
pub(crate) unsafe fn enumerate_view_configurations(
    st: &mut State,
    instance: xr::Instance,
    system: xr::SystemId,
    cap: u32,
    count: *mut u32,
    out: *mut xr::ViewConfigurationType,
) -> XrResult {
    st.instance(instance)?;
    check_system(system)?;
    // SAFETY: forwarded from the caller.
    unsafe {
        state::enumerate(1, cap, count, out, |_, p| {
            *p = xr::ViewConfigurationType::PRIMARY_STEREO;
        })
    }
}

/// xrGetViewConfigurationProperties.
pub(crate) unsafe fn get_view_configuration_properties(
    st: &mut State,
    instance: xr::Instance,
    system: xr::SystemId,
    ty: xr::ViewConfigurationType,
    props: *mut xr::ViewConfigurationProperties,
) -> XrResult {
    st.instance(instance)?;
    check_system(system)?;
    check_view_config(ty)?;
    non_null(props)?;
    // SAFETY: checked non-null.
    let p = unsafe { &mut *props };
    check_type(p.ty, xr::StructureType::VIEW_CONFIGURATION_PROPERTIES)?;
    p.view_configuration_type = ty;
    p.fov_mutable = xr::FALSE;
    OK
}

/// xrEnumerateViewConfigurationViews.
pub(crate) unsafe fn enumerate_view_configuration_views(
    st: &mut State,
    instance: xr::Instance,
    system: xr::SystemId,
    ty: xr::ViewConfigurationType,
    cap: u32,
    count: *mut u32,
    out: *mut xr::ViewConfigurationView,
) -> XrResult {
    st.instance(instance)?;
    check_system(system)?;
    check_view_config(ty)?;
    let [w, h] = st.script.view_size;
    // SAFETY: forwarded from the caller; each element is written field by field.
    unsafe {
        state::enumerate(2, cap, count, out, |_, p| {
            (*p).ty = xr::StructureType::VIEW_CONFIGURATION_VIEW;
            (*p).recommended_image_rect_width = w;
            (*p).max_image_rect_width = 4096;
            (*p).recommended_image_rect_height = h;
            (*p).max_image_rect_height = 4096;
            (*p).recommended_swapchain_sample_count = 1;
            (*p).max_swapchain_sample_count = 4;
        })
    }
}

/// xrEnumerateEnvironmentBlendModes.
pub(crate) unsafe fn enumerate_environment_blend_modes(
    st: &mut State,
    instance: xr::Instance,
    system: xr::SystemId,
    ty: xr::ViewConfigurationType,
    cap: u32,
    count: *mut u32,
    out: *mut xr::EnvironmentBlendMode,
) -> XrResult {
    st.instance(instance)?;
    check_system(system)?;
    check_view_config(ty)?;
    // SAFETY: forwarded from the caller.
    unsafe {
        state::enumerate(1, cap, count, out, |_, p| {
            *p = xr::EnvironmentBlendMode::OPAQUE;
        })
    }
}

/// Whether `s` is a well-formed path: `/`-separated, lower-case letters, digits, `-_.`.
pub(crate) fn well_formed_path(s: &str) -> bool {
    s.starts_with('/')
        && s.len() > 1
        && s.len() < xr::MAX_PATH_LENGTH
        && !s.ends_with('/')
        && !s.contains("//")
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b'/')
        })
        && s.split('/').all(|c| c != "." && c != "..")
}

/// xrStringToPath.
pub(crate) unsafe fn string_to_path(
    st: &mut State,
    instance: xr::Instance,
    s: *const c_char,
    out: *mut xr::Path,
) -> XrResult {
    st.instance(instance)?;
    non_null(out)?;
    // SAFETY: the app passes a C string (null is refused).
    let s = unsafe { state::c_str(s) }.map_err(|_| xr::Result::ERROR_PATH_FORMAT_INVALID)?;
    if !well_formed_path(&s) {
        return Err(xr::Result::ERROR_PATH_FORMAT_INVALID);
    }
    let id = st.paths.intern(&s);
    // SAFETY: checked non-null.
    unsafe { *out = xr::Path::from_raw(id) };
    OK
}

/// xrPathToString.
pub(crate) unsafe fn path_to_string(
    st: &mut State,
    instance: xr::Instance,
    path: xr::Path,
    cap: u32,
    count: *mut u32,
    buf: *mut c_char,
) -> XrResult {
    st.instance(instance)?;
    let s = st
        .paths
        .get(path.into_raw())
        .ok_or(xr::Result::ERROR_PATH_INVALID)?
        .to_owned();
    // SAFETY: forwarded from the caller.
    unsafe { state::enumerate_str(&s, cap, count, buf) }
}

/// xrGetVulkanGraphicsRequirements2KHR.
pub(crate) unsafe fn get_vulkan_graphics_requirements2(
    st: &mut State,
    instance: xr::Instance,
    system: xr::SystemId,
    out: *mut xr::GraphicsRequirementsVulkanKHR,
) -> XrResult {
    let inst = st.instance(instance)?;
    check_system(system)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let r = unsafe { &mut *out };
    check_type(r.ty, xr::StructureType::GRAPHICS_REQUIREMENTS_VULKAN_KHR)?;
    r.min_api_version_supported = xr::Version::new(1, 0, 0);
    r.max_api_version_supported = xr::Version::new(1, 3, 0);
    inst.got_requirements = true;
    OK
}

/// xrCreateVulkanInstanceKHR: makes the app's Vulkan instance with the app's create info,
/// through the app's `vkGetInstanceProcAddr`.
pub(crate) unsafe fn create_vulkan_instance(
    st: &mut State,
    instance: xr::Instance,
    info: *const xr::VulkanInstanceCreateInfoKHR,
    out: *mut xr::platform::VkInstance,
    vk_result: *mut xr::platform::VkResult,
) -> XrResult {
    let inst = st.instance(instance)?;
    non_null(info)?;
    non_null(out)?;
    non_null(vk_result)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::VULKAN_INSTANCE_CREATE_INFO_KHR)?;
    check_system(info.system_id)?;
    if !inst.got_requirements {
        return Err(xr::Result::ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING);
    }
    let gipa = info
        .pfn_get_instance_proc_addr
        .ok_or(xr::Result::ERROR_VALIDATION_FAILURE)?;
    non_null(info.vulkan_create_info)?;
    let static_fn = ash::StaticFn {
        // SAFETY: OpenXR's and ash's vkGetInstanceProcAddr types are the same C function
        // type: the instance is a pointer-sized handle either way.
        get_instance_proc_addr: unsafe {
            std::mem::transmute::<xr::platform::VkGetInstanceProcAddr, vk::PFN_vkGetInstanceProcAddr>(
                gipa,
            )
        },
    };
    // SAFETY: the app's loader entry point, valid while the app keeps Vulkan loaded.
    let entry = unsafe { ash::Entry::from_static_fn(static_fn) };
    // SAFETY: the app passes a valid VkInstanceCreateInfo (and allocator, or null), unchanged.
    let made = unsafe {
        let ci = &*info.vulkan_create_info.cast::<vk::InstanceCreateInfo<'_>>();
        let alloc = info
            .vulkan_allocator
            .cast::<vk::AllocationCallbacks<'_>>()
            .as_ref();
        entry.create_instance(ci, alloc)
    };
    match made {
        Ok(vk_instance) => {
            // SAFETY: all three checked non-null.
            unsafe {
                *out = gfx::to_ptr(vk_instance.handle());
                *vk_result = vk::Result::SUCCESS.as_raw();
            }
            inst.vk_instances.push(gfx::AppInstance {
                entry,
                instance: vk_instance,
            });
        }
        Err(e) => {
            // SAFETY: checked non-null.
            unsafe {
                *out = std::ptr::null();
                *vk_result = e.as_raw();
            }
        }
    }
    OK
}

/// xrGetVulkanGraphicsDevice2KHR: the CPU device (lavapipe) if there is one, else the first.
pub(crate) unsafe fn get_vulkan_graphics_device2(
    st: &mut State,
    instance: xr::Instance,
    info: *const xr::VulkanGraphicsDeviceGetInfoKHR,
    out: *mut xr::platform::VkPhysicalDevice,
) -> XrResult {
    let inst = st.instance(instance)?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(
        info.ty,
        xr::StructureType::VULKAN_GRAPHICS_DEVICE_GET_INFO_KHR,
    )?;
    check_system(info.system_id)?;
    if !inst.got_requirements {
        return Err(xr::Result::ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING);
    }
    let want: vk::Instance = gfx::from_ptr(info.vulkan_instance);
    let app = inst
        .vk_instances
        .iter()
        .find(|i| i.instance.handle() == want)
        .ok_or(xr::Result::ERROR_VALIDATION_FAILURE)?;
    // SAFETY: the instance was made here and the app keeps it alive.
    let physical = match unsafe { gfx::pick_physical(&app.instance) } {
        Ok(p) => p,
        Err(e) => {
            eprintln!("theta-xr-standin: {e}");
            return Err(xr::Result::ERROR_RUNTIME_FAILURE);
        }
    };
    inst.vk_physical.retain(|(i, _)| *i != want);
    inst.vk_physical.push((want, physical));
    // SAFETY: checked non-null.
    unsafe { *out = gfx::to_ptr(physical) };
    OK
}

/// xrCreateVulkanDeviceKHR: makes the app's device with the app's create info.
pub(crate) unsafe fn create_vulkan_device(
    st: &mut State,
    instance: xr::Instance,
    info: *const xr::VulkanDeviceCreateInfoKHR,
    out: *mut xr::platform::VkDevice,
    vk_result: *mut xr::platform::VkResult,
) -> XrResult {
    let inst = st.instance(instance)?;
    non_null(info)?;
    non_null(out)?;
    non_null(vk_result)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::VULKAN_DEVICE_CREATE_INFO_KHR)?;
    check_system(info.system_id)?;
    if !inst.got_requirements {
        return Err(xr::Result::ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING);
    }
    non_null(info.vulkan_create_info)?;
    let physical: vk::PhysicalDevice = gfx::from_ptr(info.vulkan_physical_device);
    let owner = inst
        .vk_physical
        .iter()
        .find(|(_, p)| *p == physical)
        .map(|(i, _)| *i)
        .ok_or(xr::Result::ERROR_VALIDATION_FAILURE)?;
    let app = inst
        .vk_instances
        .iter()
        .find(|i| i.instance.handle() == owner)
        .ok_or(xr::Result::ERROR_VALIDATION_FAILURE)?;
    // SAFETY: the app passes a valid VkDeviceCreateInfo (and allocator, or null), unchanged,
    // for the physical device handed out above.
    let made = unsafe {
        let ci = &*info.vulkan_create_info.cast::<vk::DeviceCreateInfo<'_>>();
        let alloc = info
            .vulkan_allocator
            .cast::<vk::AllocationCallbacks<'_>>()
            .as_ref();
        app.instance.create_device(physical, ci, alloc)
    };
    match made {
        Ok(device) => {
            // SAFETY: checked non-null.
            unsafe {
                *out = gfx::to_ptr(device.handle());
                *vk_result = vk::Result::SUCCESS.as_raw();
            }
            let instance = app.instance.clone();
            inst.vk_devices.push(gfx::AppDevice {
                instance,
                physical,
                device,
            });
        }
        Err(e) => {
            // SAFETY: checked non-null.
            unsafe {
                *out = std::ptr::null();
                *vk_result = e.as_raw();
            }
        }
    }
    OK
}

/// The ash device and instance of a session's graphics binding, if they were made here.
pub(crate) fn find_device(
    inst: &Instance,
    instance: vk::Instance,
    physical: vk::PhysicalDevice,
    device: vk::Device,
) -> Option<&gfx::AppDevice> {
    inst.vk_devices.iter().find(|d| {
        d.device.handle() == device
            && d.physical == physical
            && d.instance.handle() == instance
            && !d.device.handle().is_null()
    })
}
