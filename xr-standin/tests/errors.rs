//! The stand-in runtime through the system's OpenXR loader, as an app sees it: the calls it
//! implements work, and calls out of order or with bad handles get the specification's error
//! codes (which Theta's own end-to-end tests rely on it to return).
#![expect(
    unsafe_code,
    reason = "the test plays an OpenXR app: environment set before the loader starts, raw \
              handles for the Vulkan handover and for calls with bad handles"
)]

use std::path::PathBuf;

use ash::vk;
use ash::vk::Handle as _;
use openxr as xr;
use openxr::sys::Handle as _;
use serde_json::Value;

/// The runtime library: `target/<profile>/libtheta_xr_standin.so`, two levels above this test.
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("libtheta_xr_standin.so");
    assert!(
        lib.is_file(),
        "{} is missing (cargo build -p theta-xr-standin)",
        lib.display()
    );
    lib
}

type R<T> = Result<T, xr::sys::Result>;

fn err<T>(r: R<T>) -> xr::sys::Result {
    match r {
        Ok(_) => xr::sys::Result::SUCCESS,
        Err(e) => e,
    }
}

#[test]
fn calls_out_of_order_or_with_bad_handles_get_the_specifications_errors() {
    use xr::sys::Result as E;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("runtime.json");
    std::fs::write(
        &manifest,
        serde_json::json!({
            "file_format_version": "1.0.0",
            "runtime": {"library_path": library()}
        })
        .to_string(),
    )
    .unwrap();
    let script = dir.path().join("script.json");
    std::fs::write(&script, r#"{"view_size": [64, 48]}"#).unwrap();
    // SAFETY: nextest runs each test in a process of its own, and nothing else runs yet.
    unsafe {
        std::env::set_var("XR_RUNTIME_JSON", &manifest);
        std::env::set_var("THETA_XR_STANDIN_SCRIPT", &script);
        std::env::set_var("THETA_XR_STANDIN_OUT", dir.path().join("out"));
    }
    // SAFETY: the system's loader (libopenxr-loader1).
    let entry = unsafe { xr::Entry::load_from(std::path::Path::new("libopenxr_loader.so.1"), &()) }
        .expect("the OpenXR loader");
    let exts = entry.enumerate_extensions().unwrap();
    assert!(exts.khr_vulkan_enable2);
    let mut wanted = xr::ExtensionSet::default();
    wanted.khr_vulkan_enable2 = true;
    let app = xr::ApplicationInfo {
        application_name: "errors",
        application_version: 1,
        engine_name: "errors",
        engine_version: 1,
        api_version: xr::Version::new(1, 0, 0),
    };
    let instance = entry.create_instance(&app, &wanted, &[], &()).unwrap();
    assert_eq!(
        instance.properties().unwrap().runtime_name,
        "Theta stand-in"
    );
    assert_eq!(
        err(instance.system(xr::FormFactor::HANDHELD_DISPLAY)),
        E::ERROR_FORM_FACTOR_UNSUPPORTED
    );
    let system = instance
        .system(xr::FormFactor::HEAD_MOUNTED_DISPLAY)
        .unwrap();
    assert_eq!(
        err(instance.string_to_path("no/leading/slash")),
        E::ERROR_PATH_FORMAT_INVALID
    );
    // A handle the runtime never gave out.
    let mut path = xr::Path::NULL;
    // SAFETY: the string is a C string; the handle is deliberately bogus.
    let r = unsafe {
        (instance.fp().string_to_path)(
            xr::sys::Instance::from_raw(0xdead),
            c"/user/hand/left".as_ptr(),
            &mut path,
        )
    };
    assert_eq!(r, E::ERROR_HANDLE_INVALID);
    // A session before the graphics requirements were asked, then with no device.
    let none = xr::vulkan::SessionCreateInfo {
        instance: std::ptr::null(),
        physical_device: std::ptr::null(),
        device: std::ptr::null(),
        queue_family_index: 0,
        queue_index: 0,
    };
    // SAFETY: the runtime must refuse these without touching the null handles.
    let r = unsafe { instance.create_session::<xr::Vulkan>(system, &none) };
    assert_eq!(err(r), E::ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING);
    instance
        .graphics_requirements::<xr::Vulkan>(system)
        .unwrap();
    // SAFETY: as above.
    let r = unsafe { instance.create_session::<xr::Vulkan>(system, &none) };
    assert_eq!(err(r), E::ERROR_GRAPHICS_DEVICE_INVALID);

    // The Vulkan handover, on lavapipe.
    // SAFETY: the system's Vulkan loader.
    let vk_entry = unsafe { ash::Entry::load() }.unwrap();
    let app_info = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let ci = vk::InstanceCreateInfo::default().application_info(&app_info);
    let gipa = vk_entry.static_fn().get_instance_proc_addr;
    // SAFETY: the create-info outlives the call; the function is the loader's.
    let gipa_xr = unsafe {
        std::mem::transmute::<vk::PFN_vkGetInstanceProcAddr, xr::sys::platform::VkGetInstanceProcAddr>(
            gipa,
        )
    };
    // SAFETY: as above.
    let raw_instance =
        unsafe { instance.create_vulkan_instance(system, gipa_xr, &ci as *const _ as *const _) }
            .unwrap()
            .unwrap();
    // SAFETY: a live instance from this loader.
    let vk_instance = unsafe {
        ash::Instance::load(
            vk_entry.static_fn(),
            vk::Instance::from_raw(raw_instance as u64),
        )
    };
    // SAFETY: the instance came from the runtime.
    let physical = unsafe { instance.vulkan_graphics_device(system, raw_instance) }.unwrap();
    let prio = [1.0f32];
    let queues = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(0)
        .queue_priorities(&prio)];
    let dci = vk::DeviceCreateInfo::default().queue_create_infos(&queues);
    // SAFETY: the create-info outlives the call.
    let raw_device = unsafe {
        instance.create_vulkan_device(system, gipa_xr, physical, &dci as *const _ as *const _)
    }
    .unwrap()
    .unwrap();
    // SAFETY: handles the runtime made for this system.
    let (session, mut waiter, mut stream) = unsafe {
        instance.create_session::<xr::Vulkan>(
            system,
            &xr::vulkan::SessionCreateInfo {
                instance: raw_instance,
                physical_device: physical,
                device: raw_device,
                queue_family_index: 0,
                queue_index: 0,
            },
        )
    }
    .unwrap();
    // Not ready until the app has seen READY; no frames before the session runs.
    assert_eq!(
        err(session.begin(xr::ViewConfigurationType::PRIMARY_STEREO)),
        E::ERROR_SESSION_NOT_READY
    );
    assert_eq!(err(waiter.wait()), E::ERROR_SESSION_NOT_RUNNING);
    // Actions: bad names, unknown profiles, sync before attaching.
    assert_eq!(
        err(instance.create_action_set("Not Valid", "x", 0)),
        E::ERROR_PATH_FORMAT_INVALID
    );
    let set = instance.create_action_set("set", "Set", 0).unwrap();
    let trigger = set.create_action::<f32>("trigger", "Trigger", &[]).unwrap();
    assert_eq!(
        err(session.sync_actions(&[xr::ActiveActionSet::new(&set)])),
        E::ERROR_ACTIONSET_NOT_ATTACHED
    );
    let bogus = instance
        .string_to_path("/interaction_profiles/acme/nothing")
        .unwrap();
    let click = instance
        .string_to_path("/user/hand/right/input/select/click")
        .unwrap();
    assert_eq!(
        err(instance
            .suggest_interaction_profile_bindings(bogus, &[xr::Binding::new(&trigger, click)])),
        E::ERROR_PATH_UNSUPPORTED
    );
    session.attach_action_sets(&[&set]).unwrap();
    assert_eq!(
        err(session.attach_action_sets(&[&set])),
        E::ERROR_ACTIONSETS_ALREADY_ATTACHED
    );
    // Events: IDLE, then READY; the session begins.
    let mut buf = xr::EventDataBuffer::new();
    let mut seen = Vec::new();
    while let Some(e) = instance.poll_event(&mut buf).unwrap() {
        if let xr::Event::SessionStateChanged(s) = e {
            seen.push(s.state());
        }
    }
    assert_eq!(seen, [xr::SessionState::IDLE, xr::SessionState::READY]);
    session
        .begin(xr::ViewConfigurationType::PRIMARY_STEREO)
        .unwrap();
    assert_eq!(
        err(session.begin(xr::ViewConfigurationType::PRIMARY_STEREO)),
        E::ERROR_SESSION_RUNNING
    );
    // Frames: begin before wait is out of order.
    assert_eq!(err(stream.begin()), E::ERROR_CALL_ORDER_INVALID);
    let state = waiter.wait().unwrap();
    assert!(state.predicted_display_time.as_nanos() > 0);
    stream.begin().unwrap();
    // A swapchain: release before acquire, and before wait, are out of order.
    let mut sc = session
        .create_swapchain(&xr::SwapchainCreateInfo {
            create_flags: xr::SwapchainCreateFlags::EMPTY,
            usage_flags: xr::SwapchainUsageFlags::COLOR_ATTACHMENT,
            format: vk::Format::R8G8B8A8_SRGB.as_raw() as u32,
            sample_count: 1,
            width: 64,
            height: 48,
            face_count: 1,
            array_size: 2,
            mip_count: 1,
        })
        .unwrap();
    assert_eq!(sc.enumerate_images().unwrap().len(), 3);
    // (Raw calls: the openxr crate refuses these orders itself, before the runtime sees them.)
    let release = |sc: &xr::Swapchain<xr::Vulkan>| {
        // SAFETY: a live swapchain; a null info is allowed.
        unsafe { (sc.instance().fp().release_swapchain_image)(sc.as_raw(), std::ptr::null()) }
    };
    assert_eq!(release(&sc), E::ERROR_CALL_ORDER_INVALID);
    sc.acquire_image().unwrap();
    assert_eq!(release(&sc), E::ERROR_CALL_ORDER_INVALID);
    sc.wait_image(xr::Duration::INFINITE).unwrap();
    sc.release_image().unwrap();
    // The view space, located in the stage space: the scripted head.
    let stage = session
        .create_reference_space(xr::ReferenceSpaceType::STAGE, xr::Posef::IDENTITY)
        .unwrap();
    let view = session
        .create_reference_space(xr::ReferenceSpaceType::VIEW, xr::Posef::IDENTITY)
        .unwrap();
    let head = view.locate(&stage, state.predicted_display_time).unwrap();
    assert!(
        (head.pose.position.y - 1.6).abs() < 1e-6,
        "{:?}",
        head.pose.position
    );
    // Ending a session that is not stopping is refused; a frame with no layers is fine.
    assert_eq!(err(session.end()), E::ERROR_SESSION_NOT_STOPPING);
    stream
        .end(
            state.predicted_display_time,
            xr::EnvironmentBlendMode::OPAQUE,
            &[],
        )
        .unwrap();
    // Exit: stopping, then end.
    session.request_exit().unwrap();
    let mut seen = Vec::new();
    while let Some(e) = instance.poll_event(&mut buf).unwrap() {
        if let xr::Event::SessionStateChanged(s) = e {
            seen.push(s.state());
        }
    }
    assert_eq!(seen.last(), Some(&xr::SessionState::STOPPING), "{seen:?}");
    session.end().unwrap();
    drop((view, stage, sc, trigger, set, stream, waiter, session));
    // The report names every refusal, in order.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for want in [
        "XR_ERROR_FORM_FACTOR_UNSUPPORTED",
        "XR_ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING",
        "XR_ERROR_SESSION_NOT_READY",
        "XR_ERROR_ACTIONSET_NOT_ATTACHED",
        "XR_ERROR_CALL_ORDER_INVALID",
        "XR_ERROR_SESSION_NOT_STOPPING",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    // SAFETY: the session that used them is gone.
    unsafe {
        let device = ash::Device::load(
            vk_instance.fp_v1_0(),
            vk::Device::from_raw(raw_device as u64),
        );
        device.destroy_device(None);
        vk_instance.destroy_instance(None);
    }
}
