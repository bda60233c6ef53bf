//! A stand-in OpenXR runtime for Theta's tests.
//!
//! The system OpenXR loader opens this library through a runtime manifest named by
//! `XR_RUNTIME_JSON`. It is headless: the app's Vulkan instance and device are made through
//! XR_KHR_vulkan_enable2 (on lavapipe in CI), the "user" is a script of head and controller poses
//! and buttons (`THETA_XR_STANDIN_SCRIPT`), and what the app did is written to a report, with the
//! eye images the app rendered read back as PNG files (`THETA_XR_STANDIN_OUT`).
//!
//! Every entry point runs under one global lock, catches panics (a panic never crosses the C
//! ABI), and records its call and any error code in the report.

#![expect(
    unsafe_code,
    reason = "an OpenXR runtime is a C ABI: every entry point takes raw pointers"
)]

mod gfx;
mod hands;
mod input;
mod instance;
mod math;
mod script;
mod session;
mod state;
mod swapchain;

use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use openxr_sys as xr;
use openxr_sys::pfn;

use state::{State, XrResult};

/// The runtime's name, as xrGetInstanceProperties gives it.
pub(crate) const RUNTIME_NAME: &str = "Theta stand-in";

/// Runs an entry point's body under the lock: counts the call, applies a scripted failure,
/// turns a panic into `XR_ERROR_RUNTIME_FAILURE`, and records an error result.
fn guarded(name: &'static str, body: impl FnOnce(&mut State) -> XrResult) -> xr::Result {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut st = state::lock();
        *st.report.calls.entry(name).or_default() += 1;
        if let Some(&code) = st.script.fail.get(name) {
            let r = xr::Result::from_raw(code);
            st.record(name, r);
            return r;
        }
        let r = match catch_unwind(AssertUnwindSafe(|| body(&mut st))) {
            Ok(Ok(r)) | Ok(Err(r)) => r,
            Err(_) => xr::Result::ERROR_RUNTIME_FAILURE,
        };
        // A function this runtime lacks is an answer, not a failure: the loader and the app
        // ask for every function they know of.
        if !(name == "xrGetInstanceProcAddr" && r == xr::Result::ERROR_FUNCTION_UNSUPPORTED) {
            st.record(name, r);
        }
        r
    }));
    outcome.unwrap_or(xr::Result::ERROR_RUNTIME_FAILURE)
}

/// Defines each entry point as an `extern "system"` function that runs its implementation
/// through [`guarded`], and the table xrGetInstanceProcAddr looks names up in. Each function is
/// checked against its `openxr_sys::pfn` type, so a wrong signature does not compile.
macro_rules! entry_points {
    ($( $name:literal $pfn:ident $ext:ident => $imp:path [$($arg:ident : $ty:ty),*]; )*) => {
        $(
            unsafe extern "system" fn $ext($($arg: $ty),*) -> xr::Result {
                guarded($name, move |st| {
                    // SAFETY: the arguments are the app's, passed on unchanged; the
                    // implementation checks each pointer for null before using it and
                    // otherwise relies on the validity the OpenXR specification demands.
                    unsafe { $imp(st, $($arg),*) }
                })
            }
        )*

        /// The entry point named `name`, if this runtime has it.
        fn find_entry_point(name: &str) -> Option<pfn::VoidFunction> {
            match name {
                $(
                    $name => {
                        let f: pfn::$pfn = $ext;
                        // SAFETY: a function pointer cast to the generic function pointer
                        // type, as xrGetInstanceProcAddr hands them out; the caller casts it
                        // back to `pfn::$pfn` before calling it.
                        Some(unsafe { std::mem::transmute::<pfn::$pfn, pfn::VoidFunction>(f) })
                    }
                )*
                _ => None,
            }
        }
    };
}

entry_points! {
    "xrGetInstanceProcAddr" GetInstanceProcAddr xr_get_instance_proc_addr => get_instance_proc_addr
        [instance: xr::Instance, name: *const c_char, function: *mut Option<pfn::VoidFunction>];
    "xrEnumerateApiLayerProperties" EnumerateApiLayerProperties xr_enumerate_api_layer_properties
        => instance::enumerate_api_layer_properties
        [cap: u32, count: *mut u32, props: *mut xr::ApiLayerProperties];
    "xrEnumerateInstanceExtensionProperties" EnumerateInstanceExtensionProperties
        xr_enumerate_instance_extension_properties => instance::enumerate_instance_extension_properties
        [layer: *const c_char, cap: u32, count: *mut u32, props: *mut xr::ExtensionProperties];
    "xrCreateInstance" CreateInstance xr_create_instance => instance::create_instance
        [info: *const xr::InstanceCreateInfo, out: *mut xr::Instance];
    "xrDestroyInstance" DestroyInstance xr_destroy_instance => instance::destroy_instance
        [instance: xr::Instance];
    "xrGetInstanceProperties" GetInstanceProperties xr_get_instance_properties
        => instance::get_instance_properties
        [instance: xr::Instance, props: *mut xr::InstanceProperties];
    "xrPollEvent" PollEvent xr_poll_event => instance::poll_event
        [instance: xr::Instance, event: *mut xr::EventDataBuffer];
    "xrResultToString" ResultToString xr_result_to_string => instance::result_to_string
        [instance: xr::Instance, value: xr::Result, buffer: *mut c_char];
    "xrStructureTypeToString" StructureTypeToString xr_structure_type_to_string
        => instance::structure_type_to_string
        [instance: xr::Instance, value: xr::StructureType, buffer: *mut c_char];
    "xrGetSystem" GetSystem xr_get_system => instance::get_system
        [instance: xr::Instance, info: *const xr::SystemGetInfo, out: *mut xr::SystemId];
    "xrGetSystemProperties" GetSystemProperties xr_get_system_properties
        => instance::get_system_properties
        [instance: xr::Instance, system: xr::SystemId, props: *mut xr::SystemProperties];
    "xrEnumerateViewConfigurations" EnumerateViewConfigurations xr_enumerate_view_configurations
        => instance::enumerate_view_configurations
        [instance: xr::Instance, system: xr::SystemId, cap: u32, count: *mut u32,
         out: *mut xr::ViewConfigurationType];
    "xrGetViewConfigurationProperties" GetViewConfigurationProperties
        xr_get_view_configuration_properties => instance::get_view_configuration_properties
        [instance: xr::Instance, system: xr::SystemId, ty: xr::ViewConfigurationType,
         props: *mut xr::ViewConfigurationProperties];
    "xrEnumerateViewConfigurationViews" EnumerateViewConfigurationViews
        xr_enumerate_view_configuration_views => instance::enumerate_view_configuration_views
        [instance: xr::Instance, system: xr::SystemId, ty: xr::ViewConfigurationType, cap: u32,
         count: *mut u32, out: *mut xr::ViewConfigurationView];
    "xrEnumerateEnvironmentBlendModes" EnumerateEnvironmentBlendModes
        xr_enumerate_environment_blend_modes => instance::enumerate_environment_blend_modes
        [instance: xr::Instance, system: xr::SystemId, ty: xr::ViewConfigurationType, cap: u32,
         count: *mut u32, out: *mut xr::EnvironmentBlendMode];
    "xrStringToPath" StringToPath xr_string_to_path => instance::string_to_path
        [instance: xr::Instance, s: *const c_char, out: *mut xr::Path];
    "xrPathToString" PathToString xr_path_to_string => instance::path_to_string
        [instance: xr::Instance, path: xr::Path, cap: u32, count: *mut u32, buf: *mut c_char];
    "xrGetVulkanGraphicsRequirements2KHR" GetVulkanGraphicsRequirements2KHR
        xr_get_vulkan_graphics_requirements2 => instance::get_vulkan_graphics_requirements2
        [instance: xr::Instance, system: xr::SystemId,
         out: *mut xr::GraphicsRequirementsVulkanKHR];
    "xrCreateVulkanInstanceKHR" CreateVulkanInstanceKHR xr_create_vulkan_instance
        => instance::create_vulkan_instance
        [instance: xr::Instance, info: *const xr::VulkanInstanceCreateInfoKHR,
         out: *mut xr::platform::VkInstance, vk_result: *mut xr::platform::VkResult];
    "xrGetVulkanGraphicsDevice2KHR" GetVulkanGraphicsDevice2KHR xr_get_vulkan_graphics_device2
        => instance::get_vulkan_graphics_device2
        [instance: xr::Instance, info: *const xr::VulkanGraphicsDeviceGetInfoKHR,
         out: *mut xr::platform::VkPhysicalDevice];
    "xrCreateVulkanDeviceKHR" CreateVulkanDeviceKHR xr_create_vulkan_device
        => instance::create_vulkan_device
        [instance: xr::Instance, info: *const xr::VulkanDeviceCreateInfoKHR,
         out: *mut xr::platform::VkDevice, vk_result: *mut xr::platform::VkResult];

    "xrCreateSession" CreateSession xr_create_session => session::create_session
        [instance: xr::Instance, info: *const xr::SessionCreateInfo, out: *mut xr::Session];
    "xrDestroySession" DestroySession xr_destroy_session => session::destroy_session
        [session: xr::Session];
    "xrBeginSession" BeginSession xr_begin_session => session::begin_session
        [session: xr::Session, info: *const xr::SessionBeginInfo];
    "xrEndSession" EndSession xr_end_session => session::end_session
        [session: xr::Session];
    "xrRequestExitSession" RequestExitSession xr_request_exit_session
        => session::request_exit_session
        [session: xr::Session];
    "xrEnumerateReferenceSpaces" EnumerateReferenceSpaces xr_enumerate_reference_spaces
        => session::enumerate_reference_spaces
        [session: xr::Session, cap: u32, count: *mut u32, out: *mut xr::ReferenceSpaceType];
    "xrCreateReferenceSpace" CreateReferenceSpace xr_create_reference_space
        => session::create_reference_space
        [session: xr::Session, info: *const xr::ReferenceSpaceCreateInfo, out: *mut xr::Space];
    "xrGetReferenceSpaceBoundsRect" GetReferenceSpaceBoundsRect
        xr_get_reference_space_bounds_rect => session::get_reference_space_bounds_rect
        [session: xr::Session, ty: xr::ReferenceSpaceType, out: *mut xr::Extent2Df];
    "xrCreateActionSpace" CreateActionSpace xr_create_action_space
        => session::create_action_space
        [session: xr::Session, info: *const xr::ActionSpaceCreateInfo, out: *mut xr::Space];
    "xrLocateSpace" LocateSpace xr_locate_space => session::locate_space
        [space: xr::Space, base: xr::Space, time: xr::Time, out: *mut xr::SpaceLocation];
    "xrDestroySpace" DestroySpace xr_destroy_space => session::destroy_space
        [space: xr::Space];
    "xrWaitFrame" WaitFrame xr_wait_frame => session::wait_frame
        [session: xr::Session, info: *const xr::FrameWaitInfo, out: *mut xr::FrameState];
    "xrBeginFrame" BeginFrame xr_begin_frame => session::begin_frame
        [session: xr::Session, info: *const xr::FrameBeginInfo];
    "xrEndFrame" EndFrame xr_end_frame => session::end_frame
        [session: xr::Session, info: *const xr::FrameEndInfo];
    "xrLocateViews" LocateViews xr_locate_views => session::locate_views
        [session: xr::Session, info: *const xr::ViewLocateInfo, view_state: *mut xr::ViewState,
         cap: u32, count: *mut u32, out: *mut xr::View];

    "xrCreateActionSet" CreateActionSet xr_create_action_set => input::create_action_set
        [instance: xr::Instance, info: *const xr::ActionSetCreateInfo, out: *mut xr::ActionSet];
    "xrDestroyActionSet" DestroyActionSet xr_destroy_action_set => input::destroy_action_set
        [set: xr::ActionSet];
    "xrCreateAction" CreateAction xr_create_action => input::create_action
        [set: xr::ActionSet, info: *const xr::ActionCreateInfo, out: *mut xr::Action];
    "xrDestroyAction" DestroyAction xr_destroy_action => input::destroy_action
        [action: xr::Action];
    "xrSuggestInteractionProfileBindings" SuggestInteractionProfileBindings
        xr_suggest_interaction_profile_bindings => input::suggest_interaction_profile_bindings
        [instance: xr::Instance, info: *const xr::InteractionProfileSuggestedBinding];
    "xrAttachSessionActionSets" AttachSessionActionSets xr_attach_session_action_sets
        => input::attach_session_action_sets
        [session: xr::Session, info: *const xr::SessionActionSetsAttachInfo];
    "xrGetCurrentInteractionProfile" GetCurrentInteractionProfile
        xr_get_current_interaction_profile => input::get_current_interaction_profile
        [session: xr::Session, top: xr::Path, out: *mut xr::InteractionProfileState];
    "xrSyncActions" SyncActions xr_sync_actions => input::sync_actions
        [session: xr::Session, info: *const xr::ActionsSyncInfo];
    "xrGetActionStateBoolean" GetActionStateBoolean xr_get_action_state_boolean
        => input::get_action_state_boolean
        [session: xr::Session, info: *const xr::ActionStateGetInfo,
         out: *mut xr::ActionStateBoolean];
    "xrGetActionStateFloat" GetActionStateFloat xr_get_action_state_float
        => input::get_action_state_float
        [session: xr::Session, info: *const xr::ActionStateGetInfo,
         out: *mut xr::ActionStateFloat];
    "xrGetActionStateVector2f" GetActionStateVector2f xr_get_action_state_vector2f
        => input::get_action_state_vector2f
        [session: xr::Session, info: *const xr::ActionStateGetInfo,
         out: *mut xr::ActionStateVector2f];
    "xrGetActionStatePose" GetActionStatePose xr_get_action_state_pose
        => input::get_action_state_pose
        [session: xr::Session, info: *const xr::ActionStateGetInfo,
         out: *mut xr::ActionStatePose];
    "xrEnumerateBoundSourcesForAction" EnumerateBoundSourcesForAction
        xr_enumerate_bound_sources_for_action => input::enumerate_bound_sources_for_action
        [session: xr::Session, info: *const xr::BoundSourcesForActionEnumerateInfo, cap: u32,
         count: *mut u32, out: *mut xr::Path];
    "xrGetInputSourceLocalizedName" GetInputSourceLocalizedName
        xr_get_input_source_localized_name => input::get_input_source_localized_name
        [session: xr::Session, info: *const xr::InputSourceLocalizedNameGetInfo, cap: u32,
         count: *mut u32, buf: *mut c_char];
    "xrApplyHapticFeedback" ApplyHapticFeedback xr_apply_haptic_feedback
        => input::apply_haptic_feedback
        [session: xr::Session, info: *const xr::HapticActionInfo,
         feedback: *const xr::HapticBaseHeader];
    "xrStopHapticFeedback" StopHapticFeedback xr_stop_haptic_feedback
        => input::stop_haptic_feedback
        [session: xr::Session, info: *const xr::HapticActionInfo];

    "xrEnumerateSwapchainFormats" EnumerateSwapchainFormats xr_enumerate_swapchain_formats
        => swapchain::enumerate_swapchain_formats
        [session: xr::Session, cap: u32, count: *mut u32, out: *mut i64];
    "xrCreateSwapchain" CreateSwapchain xr_create_swapchain => swapchain::create_swapchain
        [session: xr::Session, info: *const xr::SwapchainCreateInfo, out: *mut xr::Swapchain];
    "xrDestroySwapchain" DestroySwapchain xr_destroy_swapchain => swapchain::destroy_swapchain
        [swapchain: xr::Swapchain];
    "xrEnumerateSwapchainImages" EnumerateSwapchainImages xr_enumerate_swapchain_images
        => swapchain::enumerate_swapchain_images
        [swapchain: xr::Swapchain, cap: u32, count: *mut u32,
         out: *mut xr::SwapchainImageBaseHeader];
    "xrAcquireSwapchainImage" AcquireSwapchainImage xr_acquire_swapchain_image
        => swapchain::acquire_swapchain_image
        [swapchain: xr::Swapchain, info: *const xr::SwapchainImageAcquireInfo, out: *mut u32];
    "xrWaitSwapchainImage" WaitSwapchainImage xr_wait_swapchain_image
        => swapchain::wait_swapchain_image
        [swapchain: xr::Swapchain, info: *const xr::SwapchainImageWaitInfo];
    "xrReleaseSwapchainImage" ReleaseSwapchainImage xr_release_swapchain_image
        => swapchain::release_swapchain_image
        [swapchain: xr::Swapchain, info: *const xr::SwapchainImageReleaseInfo];

    "xrCreateHandTrackerEXT" CreateHandTrackerEXT xr_create_hand_tracker => hands::create_hand_tracker
        [session: xr::Session, info: *const xr::HandTrackerCreateInfoEXT,
         out: *mut xr::HandTrackerEXT];
    "xrDestroyHandTrackerEXT" DestroyHandTrackerEXT xr_destroy_hand_tracker
        => hands::destroy_hand_tracker
        [tracker: xr::HandTrackerEXT];
    "xrLocateHandJointsEXT" LocateHandJointsEXT xr_locate_hand_joints => hands::locate_hand_joints
        [tracker: xr::HandTrackerEXT, info: *const xr::HandJointsLocateInfoEXT,
         out: *mut xr::HandJointLocationsEXT];
}

/// The functions available without an instance.
const GLOBAL_FUNCTIONS: [&str; 3] = [
    "xrEnumerateInstanceExtensionProperties",
    "xrCreateInstance",
    "xrEnumerateApiLayerProperties",
];

/// xrGetInstanceProcAddr.
///
/// # Safety
/// `name` must be null or a C string; `function` null or writable.
unsafe fn get_instance_proc_addr(
    st: &mut State,
    instance: xr::Instance,
    name: *const c_char,
    function: *mut Option<pfn::VoidFunction>,
) -> XrResult {
    use xr::Handle as _;
    state::non_null(function)?;
    // SAFETY: checked non-null; the caller promises it is writable.
    unsafe { *function = None };
    // SAFETY: the caller promises a C string or null, which `c_str` refuses.
    let name = unsafe { state::c_str(name) }?;
    if instance.into_raw() == 0 {
        if !GLOBAL_FUNCTIONS.contains(&name.as_str()) {
            return Err(xr::Result::ERROR_HANDLE_INVALID);
        }
    } else {
        let inst = st.instance(instance)?;
        let needs = |ext: bool| if ext { Ok(()) } else { Err(()) };
        let allowed = match name.as_str() {
            "xrGetVulkanGraphicsRequirements2KHR"
            | "xrCreateVulkanInstanceKHR"
            | "xrGetVulkanGraphicsDevice2KHR"
            | "xrCreateVulkanDeviceKHR" => needs(inst.exts.vulkan2),
            "xrCreateHandTrackerEXT" | "xrDestroyHandTrackerEXT" | "xrLocateHandJointsEXT" => {
                needs(inst.exts.hand_tracking)
            }
            _ => Ok(()),
        };
        if allowed.is_err() {
            st.report.unsupported_functions.push(name);
            return Err(xr::Result::ERROR_FUNCTION_UNSUPPORTED);
        }
    }
    match find_entry_point(&name) {
        Some(f) => {
            // SAFETY: checked non-null above.
            unsafe { *function = Some(f) };
            state::OK
        }
        None => {
            st.report.unsupported_functions.push(name);
            Err(xr::Result::ERROR_FUNCTION_UNSUPPORTED)
        }
    }
}

/// The OpenXR version this runtime implements (the 1.0 core).
const API_VERSION: xr::Version = xr::Version::new(1, 0, 34);

/// The loader's handshake with the runtime: agrees on the loader interface and hands over
/// xrGetInstanceProcAddr.
///
/// # Safety
/// `loader_info` must be null or a valid `XrNegotiateLoaderInfo`; `runtime_request` null or a
/// writable `XrNegotiateRuntimeRequest`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn xrNegotiateLoaderRuntimeInterface(
    loader_info: *const xr::NegotiateLoaderInfo,
    runtime_request: *mut xr::NegotiateRuntimeRequest,
) -> xr::Result {
    let negotiate = || -> xr::Result {
        if loader_info.is_null() || runtime_request.is_null() {
            return xr::Result::ERROR_INITIALIZATION_FAILED;
        }
        // SAFETY: both checked non-null; the loader passes valid structures.
        let (info, req) = unsafe { (&*loader_info, &mut *runtime_request) };
        if info.struct_type != xr::NegotiateLoaderInfo::TYPE
            || info.struct_version != xr::NegotiateLoaderInfo::VERSION
            || info.struct_size != std::mem::size_of::<xr::NegotiateLoaderInfo>()
            || req.struct_type != xr::NegotiateRuntimeRequest::TYPE
            || req.struct_version != xr::NegotiateRuntimeRequest::VERSION
            || req.struct_size != std::mem::size_of::<xr::NegotiateRuntimeRequest>()
            || info.min_interface_version > 1
            || info.max_interface_version < 1
        {
            return xr::Result::ERROR_INITIALIZATION_FAILED;
        }
        let (min, max) = (info.min_api_version, info.max_api_version);
        // The newest 1.0 version both sides know.
        let version = if (max.major(), max.minor()) == (1, 0) {
            xr::Version::new(1, 0, max.patch().min(API_VERSION.patch()))
        } else {
            API_VERSION
        };
        if (min.major(), min.minor()) > (1, 0) || (max.major(), max.minor()) < (1, 0) {
            return xr::Result::ERROR_INITIALIZATION_FAILED;
        }
        req.runtime_interface_version = 1;
        req.runtime_api_version = version;
        req.get_instance_proc_addr = Some(xr_get_instance_proc_addr);
        xr::Result::SUCCESS
    };
    catch_unwind(negotiate).unwrap_or(xr::Result::ERROR_RUNTIME_FAILURE)
}
