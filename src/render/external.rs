//! A GPU device made by someone else: Vulkan handles (instance, physical device, device, queue)
//! that another component created — an OpenXR runtime does exactly this through
//! `XR_KHR_vulkan_enable2`, creating the instance and device from create-infos the app supplies —
//! wrapped into the wgpu device the renderer draws with. The VR mode and the desktop then share
//! one renderer.
//!
//! The creator must enable what wgpu needs: [`instance_extensions`] on the instance, and on the
//! device the extensions and features [`device_requirements`] lists (both ask wgpu-hal, so they
//! follow wgpu's version).
#![expect(
    unsafe_code,
    reason = "adopting raw Vulkan handles is unsafe by nature: the caller vouches for how they \
              were made, and the functions state exactly what"
)]

use std::ffi::CStr;

use anyhow::{Context, Result, anyhow};
use ash::vk;
use wgpu::hal;
use wgpu::hal::api::Vulkan;

use super::gpu::Gpu;

/// The features the renderer asks of a device (where the adapter has them).
pub fn wanted_features() -> wgpu::Features {
    wgpu::Features::MULTIVIEW | wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::MULTISAMPLE_ARRAY
}

/// The instance extensions wgpu needs (and can use) on this loader.
pub fn instance_extensions(entry: &ash::Entry, api_version: u32) -> Result<Vec<&'static CStr>> {
    hal::vulkan::Instance::desired_extensions(entry, api_version, wgpu::InstanceFlags::empty())
        .map_err(|e| anyhow!("Vulkan instance extensions: {e}"))
}

/// Wraps an instance into wgpu's, taking ownership of it.
///
/// # Safety
/// `instance` was created from `entry` with `api_version` and at least `extensions` (as
/// [`instance_extensions`] returned them), and nothing else destroys it.
pub unsafe fn wrap_instance(
    entry: ash::Entry,
    instance: ash::Instance,
    api_version: u32,
    extensions: Vec<&'static CStr>,
) -> Result<hal::vulkan::Instance> {
    // SAFETY: the caller guarantees the instance came from `entry` with this version and these
    // extensions, and gives up ownership (no drop callback: wgpu-hal destroys it).
    unsafe {
        hal::vulkan::Instance::from_raw(
            entry,
            instance,
            api_version,
            0,
            None,
            extensions,
            wgpu::InstanceFlags::empty(),
            Default::default(),
            false,
            None,
        )
    }
    .map_err(|e| anyhow!("wrapping the Vulkan instance: {e}"))
}

/// What a device must be created with for wgpu to use it: its extensions, and the feature
/// structures to chain into `VkDeviceCreateInfo`.
pub struct DeviceRequirements {
    /// Device extensions.
    pub extensions: Vec<&'static CStr>,
    /// wgpu features these enable.
    pub features: wgpu::Features,
    /// The adapter, exposed.
    pub adapter: hal::ExposedAdapter<Vulkan>,
    physical: hal::vulkan::PhysicalDeviceFeatures,
}

impl DeviceRequirements {
    /// Adds the required feature structures to a device create-info.
    pub fn add_to<'a>(&'a mut self, info: vk::DeviceCreateInfo<'a>) -> vk::DeviceCreateInfo<'a> {
        self.physical.add_to_device_create(info)
    }
}

/// The extensions and features a device on `physical` needs for the renderer.
pub fn device_requirements(
    instance: &hal::vulkan::Instance,
    physical: vk::PhysicalDevice,
) -> Result<DeviceRequirements> {
    let adapter = instance
        .expose_adapter(physical)
        .context("wgpu cannot use this physical device")?;
    let features = adapter.features & wanted_features();
    let extensions = adapter.adapter.required_device_extensions(features);
    let physical = adapter
        .adapter
        .physical_device_features(&extensions, features);
    Ok(DeviceRequirements {
        extensions,
        features,
        adapter,
        physical,
    })
}

/// Wraps a device made by someone else into a [`Gpu`], taking ownership of both handles.
///
/// # Safety
/// `device` was created on `req`'s physical device from `instance` with `req.extensions` and
/// the features [`DeviceRequirements::add_to`] chained in, with queue `queue_index` of family
/// `family` (a graphics family), and nothing else destroys it.
pub unsafe fn wrap_device(
    instance: hal::vulkan::Instance,
    req: DeviceRequirements,
    device: ash::Device,
    family: u32,
    queue_index: u32,
) -> Result<Gpu> {
    let limits = wgpu::Limits::downlevel_defaults()
        .using_resolution(req.adapter.capabilities.limits.clone());
    let mut limits = limits;
    let caps = &req.adapter.capabilities.limits;
    limits.max_storage_buffer_binding_size = caps.max_storage_buffer_binding_size;
    limits.max_buffer_size = caps.max_buffer_size;
    if req.features.contains(wgpu::Features::MULTIVIEW) {
        limits.max_multiview_view_count = caps.max_multiview_view_count.min(2);
    }
    // SAFETY: the caller guarantees the device was made on this adapter with these extensions,
    // features and queue, and gives up ownership.
    let open = unsafe {
        req.adapter.adapter.device_from_raw(
            device,
            None,
            &req.extensions,
            req.features,
            &limits,
            &wgpu::MemoryHints::Performance,
            family,
            queue_index,
        )
    }
    .map_err(|e| anyhow!("wrapping the Vulkan device: {e}"))?;
    // SAFETY: `instance` is a valid hal instance (made by `wrap_instance`), and the adapter was
    // exposed from it.
    let wgpu_instance = unsafe { wgpu::Instance::from_hal::<Vulkan>(instance) };
    // SAFETY: as above: the adapter belongs to this instance.
    let adapter = unsafe { wgpu_instance.create_adapter_from_hal(req.adapter) };
    // SAFETY: `open` was made from this adapter's hal adapter with exactly these features and
    // limits.
    let (device, queue) = unsafe {
        adapter.create_device_from_hal(
            open,
            &wgpu::DeviceDescriptor {
                label: Some("theta (external)"),
                required_features: req.features,
                required_limits: limits,
                ..Default::default()
            },
        )
    }
    .context("creating the wgpu device from the Vulkan one")?;
    Ok(Gpu::assemble(
        adapter,
        device,
        queue,
        " (external Vulkan device)",
    ))
}

/// Wraps a colour image someone else owns (a headset swapchain's) into a texture the renderer
/// can draw into through [`super::gpu::Target::around`]: `layers` array layers of
/// [`super::gpu::COLOR_FORMAT`], usable as a colour attachment and as a copy source and target.
/// `release` runs when wgpu lets go of the image (the owner frees it then, or keeps it).
///
/// # Safety
/// `image` was created on `gpu`'s device with that format, size, layers, one mip level, one
/// sample and at least those usages, has memory bound, and stays valid until `release` runs.
pub unsafe fn wrap_image(
    gpu: &Gpu,
    image: vk::Image,
    size: (u32, u32),
    layers: u32,
    release: Box<dyn FnOnce() + Send + Sync + 'static>,
) -> Result<wgpu::Texture> {
    let format = super::gpu::COLOR_FORMAT;
    let usage = wgpu::TextureUsages::RENDER_ATTACHMENT
        | wgpu::TextureUsages::COPY_SRC
        | wgpu::TextureUsages::COPY_DST;
    let extent = wgpu::Extent3d {
        width: size.0,
        height: size.1,
        depth_or_array_layers: layers,
    };
    let hal_texture = {
        // SAFETY: the device is a Vulkan one whenever the caller made `image` on it.
        let device = unsafe { gpu.device.as_hal::<Vulkan>() }
            .context("the renderer's device is not a Vulkan device")?;
        let desc = hal::TextureDescriptor {
            label: Some("external colour"),
            size: extent,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUses::COLOR_TARGET
                | wgpu::TextureUses::COPY_SRC
                | wgpu::TextureUses::COPY_DST,
            memory_flags: hal::MemoryFlags::empty(),
            view_formats: Vec::new(),
        };
        // SAFETY: the caller vouches for the image; `release` runs once wgpu is done with it.
        unsafe {
            device.texture_from_raw(
                image,
                &desc,
                Some(release),
                hal::vulkan::TextureMemory::External,
            )
        }
    };
    // SAFETY: the hal texture was made on this device with this descriptor.
    Ok(unsafe {
        gpu.device.create_texture_from_hal::<Vulkan>(
            hal_texture,
            &wgpu::TextureDescriptor {
                label: Some("external colour"),
                size: extent,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage,
                view_formats: &[],
            },
            wgpu::TextureUses::UNINITIALIZED,
        )
    })
}
