//! Vulkan: the handover (the app's instance and device, made by the runtime), swapchain images,
//! and reading an eye image back as a compositor would.

use ash::vk;

/// A Vulkan instance made for the app through xrCreateVulkanInstanceKHR (the app owns it).
pub(crate) struct AppInstance {
    /// The entry points, through the app's `vkGetInstanceProcAddr`.
    #[expect(
        dead_code,
        reason = "kept with the instance it made, for later instance-level work"
    )]
    pub(crate) entry: ash::Entry,
    /// The instance.
    pub(crate) instance: ash::Instance,
}

/// A Vulkan device made for the app through xrCreateVulkanDeviceKHR (the app owns it).
pub(crate) struct AppDevice {
    /// The instance it was made on.
    pub(crate) instance: ash::Instance,
    /// Its physical device.
    pub(crate) physical: vk::PhysicalDevice,
    /// The device.
    pub(crate) device: ash::Device,
}

/// A session's Vulkan objects (all the app's).
#[derive(Clone)]
pub(crate) struct SessionGfx {
    /// The instance.
    pub(crate) instance: ash::Instance,
    /// The physical device.
    pub(crate) physical: vk::PhysicalDevice,
    /// The device.
    pub(crate) device: ash::Device,
    /// The queue the app submits on.
    pub(crate) queue: vk::Queue,
    /// Its family.
    pub(crate) family: u32,
}

/// A swapchain image and its memory.
#[derive(Clone, Copy)]
pub(crate) struct Image {
    /// The image.
    pub(crate) image: vk::Image,
    /// Its memory.
    pub(crate) memory: vk::DeviceMemory,
}

/// What a swapchain's images are made with.
pub(crate) struct ImageSpec {
    /// The Vulkan format.
    pub(crate) format: vk::Format,
    /// Size in pixels.
    pub(crate) width: u32,
    /// Size in pixels.
    pub(crate) height: u32,
    /// Array layers.
    pub(crate) layers: u32,
    /// Usage.
    pub(crate) usage: vk::ImageUsageFlags,
    /// Creation flags.
    pub(crate) flags: vk::ImageCreateFlags,
}

/// Picks a physical device: the CPU one (lavapipe) if there is one, else the first.
///
/// # Safety
/// `instance` must be a live instance.
pub(crate) unsafe fn pick_physical(instance: &ash::Instance) -> Result<vk::PhysicalDevice, String> {
    // SAFETY: the instance is live, as the caller promises.
    let devices = unsafe { instance.enumerate_physical_devices() }
        .map_err(|e| format!("vkEnumeratePhysicalDevices: {e}"))?;
    let cpu = devices.iter().copied().find(|&d| {
        // SAFETY: `d` was just enumerated from this instance.
        let props = unsafe { instance.get_physical_device_properties(d) };
        props.device_type == vk::PhysicalDeviceType::CPU
    });
    cpu.or(devices.first().copied())
        .ok_or_else(|| "no Vulkan physical device".to_owned())
}

fn memory_type(
    g: &SessionGfx,
    bits: u32,
    want: vk::MemoryPropertyFlags,
) -> Result<u32, vk::Result> {
    // SAFETY: the physical device belongs to the live instance.
    let props = unsafe { g.instance.get_physical_device_memory_properties(g.physical) };
    (0..props.memory_type_count)
        .find(|&i| {
            bits & (1 << i) != 0 && props.memory_types[i as usize].property_flags.contains(want)
        })
        .ok_or(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY)
}

/// Makes `count` images to `spec` on the app's device, each bound to its own device-local memory.
///
/// # Safety
/// The session's device must be live.
pub(crate) unsafe fn create_images(
    g: &SessionGfx,
    spec: &ImageSpec,
    count: usize,
) -> Result<Vec<Image>, vk::Result> {
    let mut out: Vec<Image> = Vec::new();
    for _ in 0..count {
        // SAFETY: the device is live; every handle made here is destroyed on failure.
        match unsafe { create_image(g, spec) } {
            Ok(i) => out.push(i),
            Err(e) => {
                // SAFETY: these images were made just now on this device and are unused.
                unsafe { destroy_images(g, &out) };
                return Err(e);
            }
        }
    }
    Ok(out)
}

unsafe fn create_image(g: &SessionGfx, spec: &ImageSpec) -> Result<Image, vk::Result> {
    let info = vk::ImageCreateInfo::default()
        .flags(spec.flags)
        .image_type(vk::ImageType::TYPE_2D)
        .format(spec.format)
        .extent(vk::Extent3D {
            width: spec.width,
            height: spec.height,
            depth: 1,
        })
        .mip_levels(1)
        .array_layers(spec.layers)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::OPTIMAL)
        .usage(spec.usage)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED);
    // SAFETY: a valid create info on a live device.
    let image = unsafe { g.device.create_image(&info, None) }?;
    // SAFETY: the image was just made on this device.
    let req = unsafe { g.device.get_image_memory_requirements(image) };
    let bound = (|| {
        let ty = memory_type(
            g,
            req.memory_type_bits,
            vk::MemoryPropertyFlags::DEVICE_LOCAL,
        )?;
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(ty);
        // SAFETY: a valid allocation on a live device.
        let memory = unsafe { g.device.allocate_memory(&alloc, None) }?;
        // SAFETY: the memory fits the image's requirements and neither is bound yet.
        if let Err(e) = unsafe { g.device.bind_image_memory(image, memory, 0) } {
            // SAFETY: the memory is unused.
            unsafe { g.device.free_memory(memory, None) };
            return Err(e);
        }
        Ok(memory)
    })();
    match bound {
        Ok(memory) => Ok(Image { image, memory }),
        Err(e) => {
            // SAFETY: the image is unused.
            unsafe { g.device.destroy_image(image, None) };
            Err(e)
        }
    }
}

/// Destroys images and frees their memory.
///
/// # Safety
/// The images must have been made on this device, and the GPU must be done with them.
pub(crate) unsafe fn destroy_images(g: &SessionGfx, images: &[Image]) {
    for i in images {
        // SAFETY: as the caller promises.
        unsafe {
            g.device.destroy_image(i.image, None);
            g.device.free_memory(i.memory, None);
        }
    }
}

/// A rectangle of one array layer of an image, to read back.
pub(crate) struct Region {
    /// The image, in COLOR_ATTACHMENT_OPTIMAL.
    pub(crate) image: vk::Image,
    /// The array layer.
    pub(crate) layer: u32,
    /// The offset.
    pub(crate) x: i32,
    /// The offset.
    pub(crate) y: i32,
    /// The size.
    pub(crate) width: u32,
    /// The size.
    pub(crate) height: u32,
}

/// Copies a region of a colour image (4 bytes a pixel) into host memory on the app's queue,
/// leaving the image as it was found, in COLOR_ATTACHMENT_OPTIMAL.
///
/// # Safety
/// The session's device and queue must be live, the image must be in COLOR_ATTACHMENT_OPTIMAL
/// with its rendering submitted, and no other thread may use the queue meanwhile.
pub(crate) unsafe fn read_back(g: &SessionGfx, r: &Region) -> Result<Vec<u8>, String> {
    let d = &g.device;
    let size = u64::from(r.width) * u64::from(r.height) * 4;
    let mut pool = vk::CommandPool::null();
    let mut buffer = vk::Buffer::null();
    let mut memory = vk::DeviceMemory::null();
    let mut fence = vk::Fence::null();
    let result = (|| -> Result<Vec<u8>, String> {
        let e = |what: &'static str| move |err: vk::Result| format!("{what}: {err}");
        // SAFETY (this whole block): every call is on the live device with create infos that
        // are valid, and each object made is recorded above so that it is destroyed below.
        unsafe {
            pool = d
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default()
                        .queue_family_index(g.family)
                        .flags(vk::CommandPoolCreateFlags::TRANSIENT),
                    None,
                )
                .map_err(e("vkCreateCommandPool"))?;
            buffer = d
                .create_buffer(
                    &vk::BufferCreateInfo::default()
                        .size(size)
                        .usage(vk::BufferUsageFlags::TRANSFER_DST)
                        .sharing_mode(vk::SharingMode::EXCLUSIVE),
                    None,
                )
                .map_err(e("vkCreateBuffer"))?;
            let req = d.get_buffer_memory_requirements(buffer);
            let ty = memory_type(
                g,
                req.memory_type_bits,
                vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
            )
            .map_err(e("no host-visible memory"))?;
            memory = d
                .allocate_memory(
                    &vk::MemoryAllocateInfo::default()
                        .allocation_size(req.size)
                        .memory_type_index(ty),
                    None,
                )
                .map_err(e("vkAllocateMemory"))?;
            d.bind_buffer_memory(buffer, memory, 0)
                .map_err(e("vkBindBufferMemory"))?;
            fence = d
                .create_fence(&vk::FenceCreateInfo::default(), None)
                .map_err(e("vkCreateFence"))?;
            let cb = d
                .allocate_command_buffers(
                    &vk::CommandBufferAllocateInfo::default()
                        .command_pool(pool)
                        .level(vk::CommandBufferLevel::PRIMARY)
                        .command_buffer_count(1),
                )
                .map_err(e("vkAllocateCommandBuffers"))?[0];
            d.begin_command_buffer(
                cb,
                &vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )
            .map_err(e("vkBeginCommandBuffer"))?;
            let range = vk::ImageSubresourceRange {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                base_mip_level: 0,
                level_count: 1,
                base_array_layer: r.layer,
                layer_count: 1,
            };
            let to_src = vk::ImageMemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
                .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
                .old_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                .new_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
                .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .image(r.image)
                .subresource_range(range);
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
                vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                &[to_src],
            );
            let copy = vk::BufferImageCopy {
                buffer_offset: 0,
                buffer_row_length: 0,
                buffer_image_height: 0,
                image_subresource: vk::ImageSubresourceLayers {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    mip_level: 0,
                    base_array_layer: r.layer,
                    layer_count: 1,
                },
                image_offset: vk::Offset3D {
                    x: r.x,
                    y: r.y,
                    z: 0,
                },
                image_extent: vk::Extent3D {
                    width: r.width,
                    height: r.height,
                    depth: 1,
                },
            };
            d.cmd_copy_image_to_buffer(
                cb,
                r.image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                buffer,
                &[copy],
            );
            let back = vk::ImageMemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_READ)
                .dst_access_mask(
                    vk::AccessFlags::COLOR_ATTACHMENT_WRITE
                        | vk::AccessFlags::COLOR_ATTACHMENT_READ,
                )
                .old_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
                .new_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .image(r.image)
                .subresource_range(range);
            let host = vk::BufferMemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::HOST_READ)
                .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                .buffer(buffer)
                .offset(0)
                .size(vk::WHOLE_SIZE);
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT | vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &[],
                &[host],
                &[back],
            );
            d.end_command_buffer(cb).map_err(e("vkEndCommandBuffer"))?;
            let cbs = [cb];
            let submit = vk::SubmitInfo::default().command_buffers(&cbs);
            d.queue_submit(g.queue, &[submit], fence)
                .map_err(e("vkQueueSubmit"))?;
            d.wait_for_fences(&[fence], true, u64::MAX)
                .map_err(e("vkWaitForFences"))?;
            let p = d
                .map_memory(memory, 0, size, vk::MemoryMapFlags::empty())
                .map_err(e("vkMapMemory"))?;
            let bytes = std::slice::from_raw_parts(p.cast::<u8>(), size as usize).to_vec();
            d.unmap_memory(memory);
            Ok(bytes)
        }
    })();
    // SAFETY: the fence has been waited on (or nothing was submitted), so the GPU is done with
    // all of these; destroying null handles is allowed.
    unsafe {
        d.destroy_fence(fence, None);
        d.destroy_buffer(buffer, None);
        d.free_memory(memory, None);
        d.destroy_command_pool(pool, None);
    }
    result
}

/// A Vulkan handle as the pointer-sized value OpenXR passes.
pub(crate) fn to_ptr(h: impl vk::Handle) -> *const std::ffi::c_void {
    h.as_raw() as usize as *const std::ffi::c_void
}

/// A pointer-sized Vulkan handle from OpenXR as an ash handle.
pub(crate) fn from_ptr<H: vk::Handle>(p: *const std::ffi::c_void) -> H {
    H::from_raw(p as usize as u64)
}
