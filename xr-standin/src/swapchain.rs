//! Swapchains: Vulkan images on the app's device, the acquire/wait/release cycle, and reading
//! the eyes back as PNG files.

use ash::vk;
use openxr_sys as xr;
use openxr_sys::Handle as _;
use serde_json::json;

use crate::gfx;
use crate::session::EyeView;
use crate::state::{self, OK, State, Swapchain, XrResult, check_type, get, get_mut, non_null};

/// The images in each swapchain.
const IMAGES: usize = 3;

/// The formats offered, preferred first: R8G8B8A8_SRGB, B8G8R8A8_SRGB, R8G8B8A8_UNORM.
const FORMATS: [i64; 3] = [43, 50, 37];

/// xrEnumerateSwapchainFormats.
pub(crate) unsafe fn enumerate_swapchain_formats(
    st: &mut State,
    session: xr::Session,
    cap: u32,
    count: *mut u32,
    out: *mut i64,
) -> XrResult {
    get(&st.sessions, session.into_raw())?;
    // SAFETY: forwarded from the caller.
    unsafe { state::enumerate(FORMATS.len(), cap, count, out, |i, p| *p = FORMATS[i]) }
}

/// The Vulkan usage for OpenXR usage flags, plus TRANSFER_SRC for reading back.
fn usage(flags: xr::SwapchainUsageFlags) -> (vk::ImageUsageFlags, vk::ImageCreateFlags) {
    use xr::SwapchainUsageFlags as X;
    let map = [
        (X::COLOR_ATTACHMENT, vk::ImageUsageFlags::COLOR_ATTACHMENT),
        (
            X::DEPTH_STENCIL_ATTACHMENT,
            vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT,
        ),
        (X::UNORDERED_ACCESS, vk::ImageUsageFlags::STORAGE),
        (X::TRANSFER_SRC, vk::ImageUsageFlags::TRANSFER_SRC),
        (X::TRANSFER_DST, vk::ImageUsageFlags::TRANSFER_DST),
        (X::SAMPLED, vk::ImageUsageFlags::SAMPLED),
        (X::INPUT_ATTACHMENT, vk::ImageUsageFlags::INPUT_ATTACHMENT),
    ];
    let mut u = vk::ImageUsageFlags::TRANSFER_SRC;
    for (x, v) in map {
        if flags.contains(x) {
            u |= v;
        }
    }
    let f = if flags.contains(X::MUTABLE_FORMAT) {
        vk::ImageCreateFlags::MUTABLE_FORMAT
    } else {
        vk::ImageCreateFlags::empty()
    };
    (u, f)
}

/// xrCreateSwapchain.
pub(crate) unsafe fn create_swapchain(
    st: &mut State,
    session: xr::Session,
    info: *const xr::SwapchainCreateInfo,
    out: *mut xr::Swapchain,
) -> XrResult {
    let sh = session.into_raw();
    let s = get(&st.sessions, sh)?;
    non_null(info)?;
    non_null(out)?;
    // SAFETY: checked non-null.
    let info = unsafe { &*info };
    check_type(info.ty, xr::StructureType::SWAPCHAIN_CREATE_INFO)?;
    if !FORMATS.contains(&info.format) {
        return Err(xr::Result::ERROR_SWAPCHAIN_FORMAT_UNSUPPORTED);
    }
    if info.face_count != 1 || info.mip_count != 1 || info.sample_count != 1 {
        return Err(xr::Result::ERROR_FEATURE_UNSUPPORTED);
    }
    let size_ok = |v: u32| (1..=4096).contains(&v);
    if !size_ok(info.width) || !size_ok(info.height) || !(1..=16).contains(&info.array_size) {
        return Err(xr::Result::ERROR_VALIDATION_FAILURE);
    }
    let (usage, flags) = usage(info.usage_flags);
    let spec = gfx::ImageSpec {
        format: vk::Format::from_raw(info.format as i32),
        width: info.width,
        height: info.height,
        layers: info.array_size,
        usage,
        flags,
    };
    // SAFETY: the session's device is the app's and alive while the session is.
    let images = match unsafe { gfx::create_images(&s.gfx, &spec, IMAGES) } {
        Ok(i) => i,
        Err(e) => {
            st.report.notes.push(format!("xrCreateSwapchain: {e}"));
            return Err(xr::Result::ERROR_RUNTIME_FAILURE);
        }
    };
    let h = st.new_handle();
    st.swapchains.insert(
        h,
        Swapchain {
            session: sh,
            images,
            format: info.format,
            width: info.width,
            height: info.height,
            array_size: info.array_size,
            next: 0,
            acquired: Default::default(),
            waited: false,
            released: None,
        },
    );
    // SAFETY: checked non-null.
    unsafe { *out = xr::Swapchain::from_raw(h) };
    OK
}

/// xrDestroySwapchain.
pub(crate) unsafe fn destroy_swapchain(st: &mut State, swapchain: xr::Swapchain) -> XrResult {
    let c = st
        .swapchains
        .remove(&swapchain.into_raw())
        .ok_or(xr::Result::ERROR_HANDLE_INVALID)?;
    if let Some(s) = st.sessions.get(&c.session) {
        // SAFETY: the app's queue, used on the app's thread during its call; once idle, the
        // GPU is done with the images.
        unsafe {
            let _ = s.gfx.device.queue_wait_idle(s.gfx.queue);
            gfx::destroy_images(&s.gfx, &c.images);
        }
    }
    OK
}

/// xrEnumerateSwapchainImages.
pub(crate) unsafe fn enumerate_swapchain_images(
    st: &mut State,
    swapchain: xr::Swapchain,
    cap: u32,
    count: *mut u32,
    out: *mut xr::SwapchainImageBaseHeader,
) -> XrResult {
    let c = get(&st.swapchains, swapchain.into_raw())?;
    if cap > 0 && !out.is_null() {
        // SAFETY: checked non-null; the array's first element says what the elements are.
        check_type(
            unsafe { (*out).ty },
            xr::StructureType::SWAPCHAIN_IMAGE_VULKAN_KHR,
        )?;
    }
    let images: Vec<vk::Image> = c.images.iter().map(|i| i.image).collect();
    // SAFETY: forwarded from the caller; the elements are XrSwapchainImageVulkanKHR.
    unsafe {
        state::enumerate(
            images.len(),
            cap,
            count,
            out.cast::<xr::SwapchainImageVulkanKHR>(),
            |i, p| {
                (*p).ty = xr::StructureType::SWAPCHAIN_IMAGE_VULKAN_KHR;
                (*p).image = vk::Handle::as_raw(images[i]);
            },
        )
    }
}

/// xrAcquireSwapchainImage: hands out the images in turn.
pub(crate) unsafe fn acquire_swapchain_image(
    st: &mut State,
    swapchain: xr::Swapchain,
    info: *const xr::SwapchainImageAcquireInfo,
    out: *mut u32,
) -> XrResult {
    let c = get_mut(&mut st.swapchains, swapchain.into_raw())?;
    non_null(out)?;
    if !info.is_null() {
        // SAFETY: checked non-null.
        check_type(
            unsafe { (*info).ty },
            xr::StructureType::SWAPCHAIN_IMAGE_ACQUIRE_INFO,
        )?;
    }
    if c.acquired.len() >= c.images.len() {
        return Err(xr::Result::ERROR_CALL_ORDER_INVALID);
    }
    let i = c.next;
    c.next = (c.next + 1) % c.images.len();
    c.acquired.push_back(i);
    // SAFETY: checked non-null.
    unsafe { *out = i as u32 };
    OK
}

/// xrWaitSwapchainImage: never waits (the runtime reads images only while the app is inside
/// xrEndFrame).
pub(crate) unsafe fn wait_swapchain_image(
    st: &mut State,
    swapchain: xr::Swapchain,
    info: *const xr::SwapchainImageWaitInfo,
) -> XrResult {
    let c = get_mut(&mut st.swapchains, swapchain.into_raw())?;
    non_null(info)?;
    // SAFETY: checked non-null.
    check_type(
        unsafe { (*info).ty },
        xr::StructureType::SWAPCHAIN_IMAGE_WAIT_INFO,
    )?;
    if c.acquired.is_empty() || c.waited {
        return Err(xr::Result::ERROR_CALL_ORDER_INVALID);
    }
    c.waited = true;
    OK
}

/// xrReleaseSwapchainImage.
pub(crate) unsafe fn release_swapchain_image(
    st: &mut State,
    swapchain: xr::Swapchain,
    info: *const xr::SwapchainImageReleaseInfo,
) -> XrResult {
    let c = get_mut(&mut st.swapchains, swapchain.into_raw())?;
    if !info.is_null() {
        // SAFETY: checked non-null.
        check_type(
            unsafe { (*info).ty },
            xr::StructureType::SWAPCHAIN_IMAGE_RELEASE_INFO,
        )?;
    }
    if !c.waited {
        return Err(xr::Result::ERROR_CALL_ORDER_INVALID);
    }
    c.released = c.acquired.pop_front();
    c.waited = false;
    OK
}

/// Encodes RGBA bytes as a PNG file.
fn encode_png(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width, height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(rgba).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    Ok(bytes)
}

/// Reads both eyes of a projection layer back and writes them as PNG files, one set per name
/// suffix, then the report.
pub(crate) fn capture(
    st: &mut State,
    session: u64,
    frame: u64,
    composition_layer: usize,
    views: &[EyeView],
    suffixes: &[String],
) {
    let Some(gfx) = st.sessions.get(&session).map(|s| s.gfx.clone()) else {
        return;
    };
    for (eye, v) in views.iter().enumerate() {
        let region = gfx::Region {
            image: v.image,
            layer: v.layer,
            x: v.rect.offset.x,
            y: v.rect.offset.y,
            width: v.rect.extent.width as u32,
            height: v.rect.extent.height as u32,
        };
        // SAFETY: the image was released by the app, which leaves it in
        // COLOR_ATTACHMENT_OPTIMAL with its rendering submitted; the queue is the app's, used
        // on the app's thread during its xrEndFrame.
        let read = unsafe { gfx::read_back(&gfx, &region) };
        let mut pixels = match read {
            Ok(p) => p,
            Err(e) => {
                let note = format!("frame {frame} eye {eye}: cannot read the image back: {e}");
                eprintln!("theta-xr-standin: {note}");
                st.report.notes.push(note);
                continue;
            }
        };
        // B8G8R8A8 images are stored blue first: swap to RGBA so the PNG shows true colours.
        if v.format == 50 || v.format == 44 {
            for px in pixels.chunks_exact_mut(4) {
                px.swap(0, 2);
            }
        }
        let mut files = Vec::new();
        if let Some(dir) = st.out_dir.clone() {
            match encode_png(region.width, region.height, &pixels) {
                Ok(png) => {
                    for suffix in suffixes {
                        let name = format!("eye-{eye}{suffix}.png");
                        match state::write_atomic(&dir.join(&name), &png) {
                            Ok(()) => files.push(name),
                            Err(e) => st.report.notes.push(format!("cannot write {name}: {e}")),
                        }
                    }
                }
                Err(e) => st.report.notes.push(format!("cannot encode a PNG: {e}")),
            }
        }
        let p = v.pose;
        st.report.captured.push(json!({
            "eye": eye,
            "frame": frame,
            "position": [p.position.x, p.position.y, p.position.z],
            "orientation": [p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w],
            "fov": [v.fov.angle_left, v.fov.angle_right, v.fov.angle_up, v.fov.angle_down],
            "rect": [v.rect.offset.x, v.rect.offset.y, v.rect.extent.width, v.rect.extent.height],
            "layer": v.layer,
            "composition_layer": composition_layer,
            "swapchain_format": v.format,
            "files": files,
        }));
    }
    st.write_report();
}
