//! The wgpu renderer.
//!
//! Device: made by wgpu from the environment (`WGPU_BACKEND=vulkan|gl|…`,
//! `WGPU_ADAPTER_NAME`), or handed in ([`GpuRenderer::with_device`]) by whoever already made
//! one — an OpenXR runtime creates the Vulkan instance and device itself, and the VR mode wraps
//! them into a wgpu device and passes that here, so there is one renderer for desktop, headset
//! and headless use. Targets are texture views ([`Target`]), so images owned by someone else (a
//! swapchain's) are drawn into the same way as the renderer's own.
//!
//! Scene storage: one vertex buffer with every object's triangles in object space (position,
//! normal, sRGB colour, material kind and instance slot per vertex), three index buffers
//! (opaque triangles, glass triangles, face edges for the wireframe), and one storage buffer of
//! instance records (object → world matrix, normal matrix, highlight colours). An object's
//! indices are stored with its base vertex added, so the opaque scene is a single
//! `draw_indexed` however many objects there are, and the glass another. A changed mesh
//! rewrites its ranges in place when it still fits, else moves to the end (its old indices are
//! zeroed into degenerate triangles); the buffers compact themselves when half is garbage. A
//! moved object rewrites only its 128-byte record.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bevy_ecs::entity::Entity;
use bytemuck::{Pod, Zeroable};

use super::camera::Eye;
use super::{Books, FrameReport, Image, Renderer, Settings, Stereo};
use crate::engine::{Engine, Instance, RenderMesh};

/// The colour format of every target (sRGB: shaders write linear light).
pub const COLOR_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;
/// The depth format on a GPU (reversed depth: cleared to 0, nearer is larger).
///
/// 24-bit fixed point, not 32-bit float: on an NVIDIA H200 a multisampled float depth buffer
/// cost 0.8–0.9 ms more per stereo frame at 2 × 2064×2208 with 4× MSAA (docs/PERFORMANCE.md).
/// With the near plane at 5 cm and no far plane, depth is `near / distance`, so a step of the
/// 24 bits is `distance² / (near · 2²⁴)`: 0.12 mm at 10 m and 12 mm at 100 m, finer than any
/// model edit or the wireframe's depth offset needs.
pub const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth24Plus;
/// The depth format on a software rasteriser, whose native depth is float (the one lavapipe's
/// render figures were measured with).
pub const CPU_DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;

const CAMERA_BLOCK: u64 = 256;
/// One frame in this many measures its GPU time.
pub const TIMESTAMP_EVERY: u64 = 16;
const INSTANCE_BYTES: u64 = 128;
/// How close to an eye a peer's head may be and still be drawn, metres.
const NEAR_HEAD: f32 = 0.5;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct Vertex {
    pos: [f32; 3],
    normal: [f32; 3],
    colour: u32,
    meta: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
struct InstanceGpu {
    model: [f32; 16],
    n0: [f32; 4],
    n1: [f32; 4],
    n2: [f32; 4],
    selected: u32,
    hovered: u32,
    flags: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct OverlayVertex {
    pos: [f32; 3],
    colour: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct PanelVertex {
    pos: [f32; 3],
    uv: [f32; 2],
}

/// Blending of premultiplied colour (egui's, and the panels' texture of it).
pub(crate) const PREMULTIPLIED: wgpu::BlendState = {
    let c = wgpu::BlendComponent {
        src_factor: wgpu::BlendFactor::One,
        dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
        operation: wgpu::BlendOperation::Add,
    };
    wgpu::BlendState { color: c, alpha: c }
};

/// The depth test against the device's depth format (reversed depth: nearer passes
/// `GreaterEqual`).
pub(crate) fn depth_test(
    gpu: &Gpu,
    write: bool,
    compare: wgpu::CompareFunction,
) -> wgpu::DepthStencilState {
    wgpu::DepthStencilState {
        format: gpu.depth_format(),
        depth_write_enabled: Some(write),
        depth_compare: Some(compare),
        stencil: Default::default(),
        bias: Default::default(),
    }
}

/// A panel in the world: a quad showing part of [`Extras::panel_texture`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PanelQuad {
    /// Corners, world frame: top left, top right, bottom left, bottom right.
    pub corners: [theta_mesh::Vec3; 4],
    /// The part of the texture it shows, 0..1: left, top, right, bottom.
    pub uv: [f32; 4],
}

/// What the host adds to the world beside the engine's scene, until it says otherwise (VR:
/// its panels, the play area's bounds, the teleport arc, the comfort vignette).
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// Line segments: their ends, world frame, and colour (0xRRGGBBAA, alpha blended).
    pub lines: Vec<([theta_mesh::Vec3; 2], u32)>,
    /// The texture the panels show (premultiplied alpha, [`COLOR_FORMAT`]).
    pub panel_texture: Option<wgpu::TextureView>,
    /// The panels, depth tested against the scene.
    pub panels: Vec<PanelQuad>,
    /// How dark the edges of the view are, 0 (none) to 1: the comfort vignette, centred on
    /// each eye's straight-ahead direction.
    pub vignette: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct CameraGpu {
    view_proj: [f32; 16],
    eye: [f32; 4],
    pad: [[f32; 4]; 11],
}

/// A wgpu device with its adapter's description.
#[derive(Debug, Clone)]
pub struct Gpu {
    /// The first GPU error since it was last taken (wgpu reports errors asynchronously; the
    /// renderer turns them into `Err`s rather than letting wgpu's default handler panic).
    errors: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// The adapter.
    pub adapter: wgpu::Adapter,
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter name and backend, for people.
    pub description: String,
    /// Which corner of a triangle gives its flat-interpolated values.
    pub provoking: Provoking,
    /// The adapter is a software rasteriser (lavapipe, llvmpipe).
    pub software: bool,
}

impl Gpu {
    /// Makes a device on the adapter the environment asks for (`WGPU_BACKEND`), or the best one.
    pub fn new() -> Result<Gpu> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
            &instance, None,
        ))
        .map_err(|e| anyhow!("no GPU adapter: {e}"))?;
        Gpu::on(adapter)
    }

    /// Makes a device on `adapter`, with multiview and timestamp queries where it has them.
    pub fn on(adapter: wgpu::Adapter) -> Result<Gpu> {
        let wanted = wgpu::Features::MULTIVIEW
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::MULTISAMPLE_ARRAY;
        let features = adapter.features() & wanted;
        let mut limits = wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits());
        limits.max_storage_buffer_binding_size = adapter.limits().max_storage_buffer_binding_size;
        limits.max_buffer_size = adapter.limits().max_buffer_size;
        if features.contains(wgpu::Features::MULTIVIEW) {
            limits.max_multiview_view_count = adapter.limits().max_multiview_view_count.min(2);
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("theta"),
            required_features: features,
            required_limits: limits,
            ..Default::default()
        }))
        .context("creating the GPU device")?;
        Ok(Gpu::assemble(adapter, device, queue, ""))
    }

    /// A [`Gpu`] from a device (made here or handed in), with GPU errors caught.
    pub fn assemble(
        adapter: wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
        note: &str,
    ) -> Gpu {
        let info = adapter.get_info();
        let errors: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
        {
            let errors = errors.clone();
            device.on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| {
                let mut slot = errors.lock().unwrap_or_else(|p| p.into_inner());
                if slot.is_none() {
                    *slot = Some(e.to_string());
                }
            }));
        }
        Gpu {
            errors,
            description: format!(
                "{} ({:?}, {:?}){note}",
                info.name, info.backend, info.device_type
            ),
            // The first on Vulkan, Metal and DX12 (as WebGPU says); GL's convention, which
            // wgpu leaves at its default, is the last.
            provoking: if info.backend == wgpu::Backend::Gl {
                Provoking::Last
            } else {
                Provoking::First
            },
            software: info.device_type == wgpu::DeviceType::Cpu,
            adapter,
            device,
            queue,
        }
    }

    /// The first GPU error since the last call, as an `Err`.
    pub fn check(&self) -> Result<()> {
        match self.errors.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(anyhow!("GPU error: {e}")),
            None => Ok(()),
        }
    }

    /// Whether one pass can draw both eyes.
    pub fn multiview(&self) -> bool {
        self.device.features().contains(wgpu::Features::MULTIVIEW)
    }

    /// The depth buffers' format: [`DEPTH_FORMAT`], or [`CPU_DEPTH_FORMAT`] on a software
    /// rasteriser.
    pub fn depth_format(&self) -> wgpu::TextureFormat {
        if self.software {
            CPU_DEPTH_FORMAT
        } else {
            DEPTH_FORMAT
        }
    }
}

/// The corner of a triangle whose flat-interpolated outputs the whole triangle takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provoking {
    /// The first (Vulkan, Metal, DX12).
    First,
    /// The last (GL).
    Last,
}

/// A growable GPU buffer.
struct Grow {
    buffer: wgpu::Buffer,
    capacity: u64,
    usage: wgpu::BufferUsages,
    label: &'static str,
}

impl Grow {
    fn new(
        device: &wgpu::Device,
        label: &'static str,
        usage: wgpu::BufferUsages,
        capacity: u64,
    ) -> Grow {
        let usage = usage | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        Grow {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: capacity,
                usage,
                mapped_at_creation: false,
            }),
            capacity,
            usage,
            label,
        }
    }

    /// Makes room for `bytes`, copying the first `used` bytes over; true if the buffer changed.
    fn reserve(&mut self, gpu: &Gpu, bytes: u64, used: u64) -> bool {
        if bytes <= self.capacity {
            return false;
        }
        let mut cap = self.capacity.max(1024);
        while cap < bytes {
            cap *= 2;
        }
        let new = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(self.label),
            size: cap,
            usage: self.usage,
            mapped_at_creation: false,
        });
        if used > 0 {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&self.buffer, 0, &new, 0, used.div_ceil(4) * 4);
            gpu.queue.submit([enc.finish()]);
        }
        self.buffer = new;
        self.capacity = cap;
        true
    }
}

/// Where an object's mesh lives in the shared buffers (in vertices and indices).
#[derive(Clone, Copy, Debug, Default)]
struct Alloc {
    vbase: u32,
    vcap: u32,
    culled: (u32, u32, u32),
    opaque: (u32, u32, u32),
    glass: (u32, u32, u32),
    edges: (u32, u32, u32),
}

/// The shared scene buffers.
struct Store {
    vertices: Grow,
    culled: Grow,
    opaque: Grow,
    glass: Grow,
    edges: Grow,
    instances: Grow,
    vtop: u32,
    ctop: u32,
    otop: u32,
    gtop: u32,
    etop: u32,
    live: u64,
    allocs: HashMap<Entity, Alloc>,
    mirror: Vec<InstanceGpu>,
}

/// The triangles of a mesh, ready for the shared buffers.
struct Prepared {
    vertices: Vec<Vertex>,
    culled: Vec<u32>,
    opaque: Vec<u32>,
    glass: Vec<u32>,
    edges: Vec<u32>,
}

/// The grab tool's gizmo: per axis a line with a cone (move), a box (scale) at its end, or a
/// ring about it (rotate); red, green and blue for X, Y and Z, yellow for the handle under the
/// pointer or in hand.
fn gizmo_geometry(
    g: &crate::engine::tools::Gizmo,
    tris: &mut Vec<OverlayVertex>,
    lines: &mut Vec<OverlayVertex>,
) {
    use crate::engine::tools::{Axis, GrabMode};
    let c = glam::Vec3::new(g.pivot.x, g.pivot.y, g.pivot.z);
    let v = |p: glam::Vec3, colour: u32| OverlayVertex {
        pos: [p.x, p.y, p.z],
        colour: colour.swap_bytes(),
    };
    for axis in Axis::ALL {
        let u = axis.unit();
        let a = glam::Vec3::new(u.x, u.y, u.z);
        // Two directions across the axis.
        let (p, q) = a.any_orthonormal_pair();
        let lit = g.hovered == Some(axis) || g.active == Some(axis);
        let colour = if lit {
            0xffd0_20ff
        } else {
            match axis {
                Axis::X => 0xe0_4040ff,
                Axis::Y => 0x40_c040ff,
                Axis::Z => 0x40_60e0ff,
            }
        };
        match g.mode {
            GrabMode::Move | GrabMode::Scale => {
                let tip = c + a * g.size;
                lines.push(v(c + a * (g.size * 0.15), colour));
                lines.push(v(tip, colour));
                let r = g.size * 0.06;
                if g.mode == GrabMode::Move {
                    const SIDES: usize = 8;
                    let base = tip - a * (g.size * 0.2);
                    let apex = tip;
                    for i in 0..SIDES {
                        let t = |k: usize| {
                            let th = k as f32 / SIDES as f32 * std::f32::consts::TAU;
                            base + (p * th.cos() + q * th.sin()) * r
                        };
                        let (e0, e1) = (t(i), t(i + 1));
                        tris.extend([v(e0, colour), v(e1, colour), v(apex, colour)]);
                        tris.extend([v(e1, colour), v(e0, colour), v(base, colour)]);
                    }
                } else {
                    for p in unit_cube() {
                        tris.push(v(tip + glam::Vec3::from(*p) * (2.0 * r), colour));
                    }
                }
            }
            GrabMode::Rotate => {
                const SEGMENTS: usize = 48;
                let at = |k: usize| {
                    let th = k as f32 / SEGMENTS as f32 * std::f32::consts::TAU;
                    c + (p * th.cos() + q * th.sin()) * g.size
                };
                for i in 0..SEGMENTS {
                    lines.push(v(at(i), colour));
                    lines.push(v(at(i + 1), colour));
                }
            }
        }
    }
}

/// A 2D texture of one layer and one mip level, with `samples` samples a pixel.
pub fn flat_texture(
    device: &wgpu::Device,
    label: &str,
    size: (u32, u32),
    samples: u32,
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width: size.0,
            height: size.1,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: samples,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    })
}

/// The corners of a unit cube's triangles (the kernel's box, triangulated once), for peers'
/// heads and hands.
fn unit_cube() -> &'static [[f32; 3]] {
    static CUBE: std::sync::OnceLock<Vec<[f32; 3]>> = std::sync::OnceLock::new();
    CUBE.get_or_init(|| {
        theta_mesh::Primitive::Cuboid {
            size: theta_mesh::Vec3::ONE,
        }
        .build(&mut theta_mesh::SeqIds::new(1), theta_mesh::MaterialId(0))
        .map(|m| {
            let t = m.triangulate();
            t.indices.iter().map(|&i| t.positions[i as usize]).collect()
        })
        .unwrap_or_default()
    })
}

/// An sRGB channel (0..1) as linear light.
fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// An sRGB colour as linear light in 10-bit channels (red in the low bits) and a 2-bit alpha:
/// converted once at upload, so no vertex pays for the sRGB curve.
fn linear_10_10_10_2(rgba: [u8; 4]) -> u32 {
    let lin = |c: u8| (srgb_to_linear(f32::from(c) / 255.0) * 1023.0).round() as u32 & 0x3ff;
    let a = (u32::from(rgba[3]) * 3 + 127) / 255;
    lin(rgba[0]) | (lin(rgba[1]) << 10) | (lin(rgba[2]) << 20) | (a << 30)
}

/// The triangles of a mesh for the shared buffers, with corners shared between faces.
///
/// Faces are flat and shaded once per vertex: the fragment stage takes the colour of each
/// triangle's first (provoking) vertex. So a face needs only one vertex of its own, carrying its
/// normal and material, as the first of each of its triangles; its other corners can be any
/// vertex at the right position. Each mesh vertex becomes one GPU vertex, and each face claims
/// one of its corners' vertices that no other face has claimed (placed first in each of its
/// triangles, or last where the backend takes the last); only a face that finds all of
/// them claimed (rare: a closed quad mesh has about as many vertices as faces) gets a copy of
/// its own. A quad mesh draws from about one vertex per face rather than four, which is what
/// the vertex stage and the post-transform cache see.
fn prepare(m: &RenderMesh, slot: u32, provoking: Provoking) -> Prepared {
    const NONE: u32 = u32::MAX;
    let corners = m.positions.len();
    // The mesh vertex behind each corner (each corner its own where the mesh did not say).
    let by_mesh = m.corner_vertex.len() == corners;
    let vertex_of = |c: u32| -> u32 {
        if by_mesh {
            m.corner_vertex[c as usize]
        } else {
            c
        }
    };
    // A corner's vertex, shaded as a face of the given palette entry.
    let attributes = |c: u32, e: &theta_mesh::PaletteEntry| {
        let kind = match e.kind {
            theta_mesh::MaterialKind::Matte => 0u32,
            theta_mesh::MaterialKind::Glass => 1,
            theta_mesh::MaterialKind::Gem => 2,
        };
        Vertex {
            pos: m.positions[c as usize],
            normal: m.normals[c as usize],
            colour: linear_10_10_10_2(e.rgba),
            meta: slot | (kind << 28),
        }
    };
    let mesh_vertices = (0..corners as u32)
        .map(vertex_of)
        .max()
        .map_or(0, |v| v as usize + 1);
    let mut shared = vec![NONE; mesh_vertices];
    let mut claimed: Vec<bool> = Vec::with_capacity(mesh_vertices);
    let mut vertices: Vec<Vertex> = Vec::with_capacity(mesh_vertices);
    // The vertex each corner claimed (or copied) for its face, and the shared vertex at it.
    let mut own = vec![NONE; corners];
    let mut at = vec![NONE; corners];
    let (mut opaque, mut glass) = (Vec::new(), Vec::new());
    let mut count: HashMap<(u32, u32), u32> = HashMap::new();
    for (t, tri) in m.indices.chunks_exact(3).enumerate() {
        if tri.iter().any(|&c| c as usize >= corners) {
            continue;
        }
        let entry = theta_mesh::palette_entry(theta_mesh::MaterialId(
            m.materials.get(t).copied().unwrap_or(0),
        ));
        let mut u = [0u32; 3];
        for k in 0..3 {
            let c = tri[k];
            let v = vertex_of(c) as usize;
            if shared[v] == NONE {
                shared[v] = vertices.len() as u32;
                vertices.push(attributes(c, &entry));
                claimed.push(false);
            }
            u[k] = shared[v];
            at[c as usize] = u[k];
        }
        // The triangle's provoking corner: one its face already owns, else one it can claim,
        // else a copy of its first corner.
        let k = match (0..3).find(|&k| own[tri[k] as usize] != NONE) {
            Some(k) => k,
            None => match (0..3).find(|&k| !claimed[u[k] as usize]) {
                Some(k) => {
                    claimed[u[k] as usize] = true;
                    vertices[u[k] as usize] = attributes(tri[k], &entry);
                    own[tri[k] as usize] = u[k];
                    k
                }
                None => {
                    own[tri[0] as usize] = vertices.len() as u32;
                    vertices.push(attributes(tri[0], &entry));
                    claimed.push(true);
                    0
                }
            },
        };
        let first = own[tri[k] as usize];
        // Rotated, so the winding holds.
        let out = match provoking {
            Provoking::First => [first, u[(k + 1) % 3], u[(k + 2) % 3]],
            Provoking::Last => [u[(k + 1) % 3], u[(k + 2) % 3], first],
        };
        let is_glass = entry.kind == theta_mesh::MaterialKind::Glass;
        if is_glass { &mut glass } else { &mut opaque }.extend_from_slice(&out);
        for k in 0..3 {
            let (a, b) = (tri[k], tri[(k + 1) % 3]);
            *count.entry((a.min(b), a.max(b))).or_default() += 1;
        }
    }
    // A triangle edge inside a face is shared by two of that face's triangles (its corners are
    // the face's own); an edge of the face polygon belongs to one. Counted on the corners, drawn
    // between the shared vertices, so an edge between two faces is drawn once.
    let mut edges: Vec<(u32, u32)> = count
        .into_iter()
        .filter(|(_, n)| *n == 1)
        .map(|((a, b), _)| {
            let (a, b) = (at[a as usize], at[b as usize]);
            (a.min(b), a.max(b))
        })
        .collect();
    edges.sort_unstable();
    edges.dedup();
    // A closed mesh's opaque triangles draw with back faces culled (half the rasterising on a
    // GPU short of raster units); an open one's draw from both sides.
    let (culled, opaque) = if m.closed {
        (opaque, Vec::new())
    } else {
        (Vec::new(), opaque)
    };
    Prepared {
        vertices,
        culled,
        opaque,
        glass,
        edges: edges.into_iter().flat_map(|(a, b)| [a, b]).collect(),
    }
}

/// A render target: colour layers (one per eye), owned by the renderer or by someone else
/// (a swapchain), with the renderer's multisampled colour and depth beside it.
pub struct Target {
    /// The colour texture drawn into (resolved into, with MSAA): `layers` array layers.
    pub color: wgpu::Texture,
    /// Size in pixels.
    pub size: (u32, u32),
    /// Layers (1: mono, 2: stereo).
    pub layers: u32,
    /// The colour format (the renderer's own, or a window surface's).
    pub format: wgpu::TextureFormat,
    /// Multisampled colour: one array texture, or one texture per layer where the device has
    /// no multisampled arrays.
    msaa: Vec<wgpu::Texture>,
    /// Depth, arranged like `msaa`.
    depth: Vec<wgpu::Texture>,
    /// Whether `msaa` and `depth` are single array textures (needed for multiview).
    arrayed: bool,
    /// Where a multisampled second eye resolves before it is copied into its layer (resolving
    /// straight into layer 1 left it empty on lavapipe).
    scratch: Option<wgpu::Texture>,
}

impl Target {
    /// A target of the renderer's own.
    pub fn new(gpu: &Gpu, size: (u32, u32), layers: u32, samples: u32) -> Target {
        let color = gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("target"),
            size: wgpu::Extent3d {
                width: size.0,
                height: size.1,
                depth_or_array_layers: layers,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: COLOR_FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT
                | wgpu::TextureUsages::COPY_SRC
                | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        Target::around(gpu, color, size, layers, samples)
    }

    /// A target around a colour texture someone else owns (e.g. a swapchain image or a window
    /// surface's texture, with `layers` layers, usable as a render attachment, of an sRGB format).
    pub fn around(
        gpu: &Gpu,
        color: wgpu::Texture,
        size: (u32, u32),
        layers: u32,
        samples: u32,
    ) -> Target {
        // Multisampled arrays only where a multiview pass will use them: resolving from layer 1
        // of a multisampled array in a single-layer pass resolved layer 0 on lavapipe.
        let arrayed = samples == 1
            || layers == 1
            || (gpu.multiview()
                && gpu
                    .device
                    .features()
                    .contains(wgpu::Features::MULTISAMPLE_ARRAY));
        let (count, per) = if arrayed { (1, layers) } else { (layers, 1) };
        let extent = wgpu::Extent3d {
            width: size.0,
            height: size.1,
            depth_or_array_layers: per,
        };
        let make = |label: &str, format| {
            gpu.device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: extent,
                mip_level_count: 1,
                sample_count: samples,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
                view_formats: &[],
            })
        };
        let format = color.format();
        let msaa = if samples > 1 {
            (0..count).map(|_| make("msaa", format)).collect()
        } else {
            Vec::new()
        };
        let depth = (0..count)
            .map(|_| make("depth", gpu.depth_format()))
            .collect();
        let scratch = (samples > 1 && layers > 1).then(|| Target::scratch(gpu, size, format));
        Target {
            color,
            size,
            layers,
            format,
            msaa,
            depth,
            arrayed,
            scratch,
        }
    }

    fn scratch(gpu: &Gpu, size: (u32, u32), format: wgpu::TextureFormat) -> wgpu::Texture {
        flat_texture(
            &gpu.device,
            "eye resolve",
            size,
            1,
            format,
            wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        )
    }

    /// Like [`Target::around`], with one multisampled texture per eye (for one pass per eye).
    fn per_eye(
        gpu: &Gpu,
        color: wgpu::Texture,
        size: (u32, u32),
        layers: u32,
        samples: u32,
    ) -> Target {
        let make = |label: &str, format| {
            flat_texture(
                &gpu.device,
                label,
                size,
                samples,
                format,
                wgpu::TextureUsages::RENDER_ATTACHMENT,
            )
        };
        let format = color.format();
        Target {
            color,
            size,
            layers,
            format,
            msaa: (0..layers).map(|_| make("msaa", format)).collect(),
            depth: (0..layers)
                .map(|_| make("depth", gpu.depth_format()))
                .collect(),
            arrayed: false,
            scratch: Some(Target::scratch(gpu, size, format)),
        }
    }

    /// Views for a pass over `layer` (or every layer): colour, multisampled colour, depth.
    pub(crate) fn views(
        &self,
        layer: Option<u32>,
    ) -> (
        wgpu::TextureView,
        Option<wgpu::TextureView>,
        wgpu::TextureView,
    ) {
        let color = Target::view(&self.color, layer, self.layers);
        let msaa = self.layer_view(&self.msaa, layer);
        let depth = self
            .layer_view(&self.depth, layer)
            .unwrap_or_else(|| Target::view(&self.color, layer, self.layers));
        (color, msaa, depth)
    }

    /// A view of `layer` (or of every layer) of a set of textures arranged like `msaa`.
    fn layer_view(&self, set: &[wgpu::Texture], layer: Option<u32>) -> Option<wgpu::TextureView> {
        if self.arrayed {
            Some(Target::view(set.first()?, layer, self.layers))
        } else {
            Some(Target::view(set.get(layer.unwrap_or(0) as usize)?, None, 1))
        }
    }

    fn view(t: &wgpu::Texture, layer: Option<u32>, layers: u32) -> wgpu::TextureView {
        t.create_view(&wgpu::TextureViewDescriptor {
            dimension: Some(if layer.is_some() || layers == 1 {
                wgpu::TextureViewDimension::D2
            } else {
                wgpu::TextureViewDimension::D2Array
            }),
            base_array_layer: layer.unwrap_or(0),
            array_layer_count: Some(if layer.is_some() { 1 } else { layers }),
            ..Default::default()
        })
    }
}

/// Pipelines for one way of drawing (single view or multiview) and one sample count.
struct Pipelines {
    layout: wgpu::BindGroupLayout,
    opaque: wgpu::RenderPipeline,
    culled: wgpu::RenderPipeline,
    glass: wgpu::RenderPipeline,
    wire: wgpu::RenderPipeline,
    overlay_tris: wgpu::RenderPipeline,
    overlay_lines: wgpu::RenderPipeline,
    /// The gizmo: drawn over everything (no depth test), so the selection never hides it.
    gizmo_tris: wgpu::RenderPipeline,
    gizmo_lines: wgpu::RenderPipeline,
    /// Panels in the world, and the layout of their texture's bind group.
    panel: wgpu::RenderPipeline,
    panel_layout: wgpu::BindGroupLayout,
    /// The comfort vignette: a full-view triangle over everything.
    vignette: wgpu::RenderPipeline,
}

fn shader_source(multiview: bool) -> String {
    let src = include_str!("theta.wgsl");
    let (decl, arg, cam) = if multiview {
        (
            "@group(0) @binding(0) var<uniform> cameras: array<Camera, 2>;",
            "@builtin(view_index) view: u32",
            "cameras[view]",
        )
    } else {
        (
            "@group(0) @binding(0) var<uniform> camera: Camera;",
            "",
            "camera",
        )
    };
    src.replace("CAMERA_DECL", decl)
        .replace("VIEW_ARG", arg)
        .replace("CAMERA", cam)
}

impl Pipelines {
    fn new(gpu: &Gpu, multiview: bool, samples: u32, format: wgpu::TextureFormat) -> Pipelines {
        let device = &gpu.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("theta.wgsl"),
            source: wgpu::ShaderSource::Wgsl(shader_source(multiview).into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("scene"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: !multiview,
                        min_binding_size: wgpu::BufferSize::new(
                            CAMERA_BLOCK * if multiview { 2 } else { 1 },
                        ),
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::VERTEX,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(INSTANCE_BYTES),
                    },
                    count: None,
                },
            ],
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("scene"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let mesh_attrs =
            wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3, 2 => Uint32, 3 => Uint32];
        let mesh_buffers = [Some(wgpu::VertexBufferLayout {
            array_stride: std::mem::size_of::<Vertex>() as u64,
            step_mode: wgpu::VertexStepMode::Vertex,
            attributes: &mesh_attrs,
        })];
        let overlay_attrs = wgpu::vertex_attr_array![0 => Float32x3, 1 => Uint32];
        let overlay_buffers = [Some(wgpu::VertexBufferLayout {
            array_stride: std::mem::size_of::<OverlayVertex>() as u64,
            step_mode: wgpu::VertexStepMode::Vertex,
            attributes: &overlay_attrs,
        })];
        let mv = multiview.then(|| NonZeroU32::new(0b11)).flatten();
        let blend = Some(wgpu::BlendState::ALPHA_BLENDING);
        let make = |label: &str,
                    vs: &str,
                    fs: &str,
                    buffers: &[Option<wgpu::VertexBufferLayout<'_>>],
                    topology: wgpu::PrimitiveTopology,
                    depth_write: bool,
                    blend: Option<wgpu::BlendState>,
                    cull: Option<wgpu::Face>,
                    on_top: bool| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&pl),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some(vs),
                    compilation_options: Default::default(),
                    buffers,
                },
                primitive: wgpu::PrimitiveState {
                    topology,
                    cull_mode: cull,
                    ..Default::default()
                },
                depth_stencil: Some(depth_test(
                    gpu,
                    depth_write,
                    if on_top {
                        wgpu::CompareFunction::Always
                    } else {
                        wgpu::CompareFunction::GreaterEqual
                    },
                )),
                multisample: wgpu::MultisampleState {
                    count: samples,
                    ..Default::default()
                },
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some(fs),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format,
                        blend,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: mv,
                cache: None,
            })
        };
        use wgpu::PrimitiveTopology::{LineList, TriangleList};
        let panel_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("panels"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let panel_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("panels"),
            bind_group_layouts: &[Some(&layout), Some(&panel_layout)],
            immediate_size: 0,
        });
        let panel_attrs = wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x2];
        let panel = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("panels"),
            layout: Some(&panel_pl),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_panel"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<PanelVertex>() as u64,
                    step_mode: wgpu::VertexStepMode::Vertex,
                    attributes: &panel_attrs,
                })],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: Some(depth_test(gpu, true, wgpu::CompareFunction::GreaterEqual)),
            multisample: wgpu::MultisampleState {
                count: samples,
                ..Default::default()
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_panel"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format,
                    blend: Some(PREMULTIPLIED),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: mv,
            cache: None,
        });
        Pipelines {
            panel,
            panel_layout,
            vignette: make(
                "vignette",
                "vs_vignette",
                "fs_vignette",
                &[],
                TriangleList,
                false,
                blend,
                None,
                true,
            ),
            // Closed meshes cull their back faces; open ones (being edited, with holes) draw
            // from both sides.
            culled: make(
                "culled",
                "vs_mesh",
                "fs_opaque",
                &mesh_buffers,
                TriangleList,
                true,
                None,
                Some(wgpu::Face::Back),
                false,
            ),
            opaque: make(
                "opaque",
                "vs_mesh",
                "fs_opaque",
                &mesh_buffers,
                TriangleList,
                true,
                None,
                None,
                false,
            ),
            glass: make(
                "glass",
                "vs_mesh",
                "fs_glass",
                &mesh_buffers,
                TriangleList,
                false,
                blend,
                None,
                false,
            ),
            wire: make(
                "wire",
                "vs_wire",
                "fs_line",
                &mesh_buffers,
                LineList,
                false,
                None,
                None,
                false,
            ),
            overlay_tris: make(
                "overlay",
                "vs_overlay",
                "fs_line",
                &overlay_buffers,
                TriangleList,
                true,
                None,
                None,
                false,
            ),
            overlay_lines: make(
                "rays",
                "vs_overlay",
                "fs_line",
                &overlay_buffers,
                LineList,
                false,
                blend,
                None,
                false,
            ),
            gizmo_tris: make(
                "gizmo",
                "vs_overlay",
                "fs_line",
                &overlay_buffers,
                TriangleList,
                false,
                None,
                None,
                true,
            ),
            gizmo_lines: make(
                "gizmo lines",
                "vs_overlay",
                "fs_line",
                &overlay_buffers,
                LineList,
                false,
                None,
                None,
                true,
            ),
            layout,
        }
    }
}

struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    period: f32,
}

/// The ground grid as lines: every metre within 24 m of the eye's whole-metre spot on the
/// ground, in segments whose ends fade with distance from that spot (geometry rather
/// than a shader pattern, so it looks the same on every backend and in both eyes; rebuilt only
/// when the eye moves to another spot).
fn grid_lines(spot: (i32, i32)) -> Vec<OverlayVertex> {
    const R: i32 = 24;
    let (cx, cz) = spot;
    let at = |x: f32, z: f32| {
        let d = glam::Vec2::new(x - cx as f32, z - cz as f32).length();
        let fade = (1.0 - d / R as f32).clamp(0.0, 1.0);
        let a = (fade * 0.5 * 255.0) as u32;
        OverlayVertex {
            pos: [x, 0.0, z],
            // 0x26292e at alpha `a`, as the shader unpacks it (r in the low byte).
            colour: 0x2e_29_26 | (a << 24),
        }
    };
    // Segments of 3 m (the fade is linear along each), none where the fade is zero at both ends:
    // about 1,200 segments, which line rasterisers on the CPU draw cheaply.
    const SEG: i32 = 3;
    let mut out = Vec::new();
    for i in -R..=R {
        for j in (-R..R).step_by(SEG as usize) {
            for (a0, b0, a1, b1) in [
                (cx + i, cz + j, cx + i, cz + j + SEG),
                (cx + j, cz + i, cx + j + SEG, cz + i),
            ] {
                let (p, q) = (at(a0 as f32, b0 as f32), at(a1 as f32, b1 as f32));
                if (p.colour | q.colour) >> 24 != 0 {
                    out.push(p);
                    out.push(q);
                }
            }
        }
    }
    out
}

/// The wgpu renderer.
pub struct GpuRenderer {
    gpu: Gpu,
    settings: Settings,
    books: Books,
    store: Store,
    cameras: wgpu::Buffer,
    pipelines: HashMap<(bool, u32, wgpu::TextureFormat), Pipelines>,
    overlay: Grow,
    timer: Option<Timer>,
    target: Option<Target>,
    readback: Option<wgpu::Buffer>,
    last_uploads: usize,
    last_writes: usize,
    grid: Option<((i32, i32), wgpu::Buffer, u32)>,
    /// Frames drawn, and whether the last one wrote timestamps.
    frames: u64,
    stamped: bool,
    /// What the host adds to the world, and the panels' vertices and sampler.
    extras: Extras,
    panel_vertices: Grow,
    panel_sampler: wgpu::Sampler,
}

impl std::fmt::Debug for GpuRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuRenderer")
            .field("gpu", &self.gpu.description)
            .finish_non_exhaustive()
    }
}

impl GpuRenderer {
    /// A renderer on the device the environment asks for.
    pub fn new(settings: Settings) -> Result<GpuRenderer> {
        GpuRenderer::with_device(Gpu::new()?, settings)
    }

    /// A renderer on a device someone else made (e.g. wrapped from an OpenXR runtime's Vulkan
    /// device).
    pub fn with_device(gpu: Gpu, settings: Settings) -> Result<GpuRenderer> {
        if ![1, 4].contains(&settings.msaa) {
            bail!("MSAA must be 1 or 4 samples, not {}", settings.msaa);
        }
        let d = &gpu.device;
        use wgpu::BufferUsages as U;
        let store = Store {
            vertices: Grow::new(d, "vertices", U::VERTEX, 1 << 20),
            culled: Grow::new(d, "culled", U::INDEX, 1 << 18),
            opaque: Grow::new(d, "opaque", U::INDEX, 1 << 14),
            glass: Grow::new(d, "glass", U::INDEX, 1 << 12),
            edges: Grow::new(d, "edges", U::INDEX, 1 << 16),
            instances: Grow::new(d, "instances", U::STORAGE, INSTANCE_BYTES * 256),
            vtop: 0,
            ctop: 0,
            otop: 0,
            gtop: 0,
            etop: 0,
            live: 0,
            allocs: HashMap::new(),
            mirror: Vec::new(),
        };
        let cameras = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("cameras"),
            size: CAMERA_BLOCK * 2,
            usage: U::UNIFORM | U::COPY_DST,
            mapped_at_creation: false,
        });
        let timer = d
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            .then(|| Timer {
                set: d.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("frame"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 4,
                }),
                resolve: d.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps"),
                    size: 32,
                    usage: U::QUERY_RESOLVE | U::COPY_SRC,
                    mapped_at_creation: false,
                }),
                read: d.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps read"),
                    size: 32,
                    usage: U::MAP_READ | U::COPY_DST,
                    mapped_at_creation: false,
                }),
                period: gpu.queue.get_timestamp_period(),
            });
        let overlay = Grow::new(d, "overlay", U::VERTEX, 1 << 14);
        let panel_vertices = Grow::new(d, "panels", U::VERTEX, 1 << 12);
        let panel_sampler = d.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("panels"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        Ok(GpuRenderer {
            gpu,
            settings,
            books: Books::default(),
            store,
            cameras,
            pipelines: HashMap::new(),
            overlay,
            timer,
            target: None,
            readback: None,
            last_uploads: 0,
            last_writes: 0,
            grid: None,
            frames: 0,
            stamped: false,
            extras: Extras::default(),
            panel_vertices,
            panel_sampler,
        })
    }

    /// Whether a stereo pair is drawn in one multiview pass (on targets that allow it), as the
    /// settings and the device decide.
    pub fn multiview(&self) -> bool {
        match self.settings.stereo {
            Stereo::Auto => self.gpu.multiview() && !self.gpu.software,
            Stereo::Multiview => self.gpu.multiview(),
            Stereo::PerEye => false,
        }
    }

    /// What to add to the world from the next frame on (replacing what was set before).
    pub fn set_extras(&mut self, extras: Extras) {
        self.extras = extras;
    }

    /// The device.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    fn free(&mut self, e: Entity) {
        let Some(a) = self.store.allocs.remove(&e) else {
            return;
        };
        self.store.live -= u64::from(a.vcap);
        let q = &self.gpu.queue;
        // Degenerate triangles and lines in place of the freed ones.
        for (buf, (base, _, cap)) in [
            (&self.store.culled, a.culled),
            (&self.store.opaque, a.opaque),
            (&self.store.glass, a.glass),
            (&self.store.edges, a.edges),
        ] {
            if cap > 0 {
                q.write_buffer(
                    &buf.buffer,
                    u64::from(base) * 4,
                    &vec![0u8; cap as usize * 4],
                );
            }
        }
    }

    fn upload(&mut self, e: Entity, p: Prepared) {
        let nv = p.vertices.len() as u32;
        let fits = |old: Option<&Alloc>| {
            old.is_some_and(|a| {
                nv <= a.vcap
                    && p.culled.len() as u32 <= a.culled.2
                    && p.opaque.len() as u32 <= a.opaque.2
                    && p.glass.len() as u32 <= a.glass.2
                    && p.edges.len() as u32 <= a.edges.2
            })
        };
        let mut a = match self.store.allocs.get(&e) {
            Some(old) if fits(Some(old)) => *old,
            _ => {
                self.free(e);
                let s = &mut self.store;
                // Room to grow a little in place (edits usually add a few faces).
                let slack = |n: usize| (n as u32 + n as u32 / 4).max(n as u32);
                let a = Alloc {
                    vbase: s.vtop,
                    vcap: slack(p.vertices.len()),
                    culled: (s.ctop, 0, slack(p.culled.len())),
                    opaque: (s.otop, 0, slack(p.opaque.len())),
                    glass: (s.gtop, 0, slack(p.glass.len())),
                    edges: (s.etop, 0, slack(p.edges.len())),
                };
                s.vtop += a.vcap;
                s.ctop += a.culled.2;
                s.otop += a.opaque.2;
                s.gtop += a.glass.2;
                s.etop += a.edges.2;
                s.live += u64::from(a.vcap);
                let vsz = std::mem::size_of::<Vertex>() as u64;
                s.vertices
                    .reserve(&self.gpu, u64::from(s.vtop) * vsz, u64::from(a.vbase) * vsz);
                s.culled
                    .reserve(&self.gpu, u64::from(s.ctop) * 4, u64::from(a.culled.0) * 4);
                s.opaque
                    .reserve(&self.gpu, u64::from(s.otop) * 4, u64::from(a.opaque.0) * 4);
                s.glass
                    .reserve(&self.gpu, u64::from(s.gtop) * 4, u64::from(a.glass.0) * 4);
                s.edges
                    .reserve(&self.gpu, u64::from(s.etop) * 4, u64::from(a.edges.0) * 4);
                a
            }
        };
        let q = &self.gpu.queue;
        let s = &self.store;
        q.write_buffer(
            &s.vertices.buffer,
            u64::from(a.vbase) * std::mem::size_of::<Vertex>() as u64,
            bytemuck::cast_slice(&p.vertices),
        );
        let write = |buf: &Grow, range: &mut (u32, u32, u32), idx: &[u32]| {
            let mut out: Vec<u32> = idx.iter().map(|i| i + a.vbase).collect();
            out.resize(range.2 as usize, 0);
            range.1 = idx.len() as u32;
            if !out.is_empty() {
                q.write_buffer(
                    &buf.buffer,
                    u64::from(range.0) * 4,
                    bytemuck::cast_slice(&out),
                );
            }
        };
        write(&s.culled, &mut a.culled, &p.culled);
        write(&s.opaque, &mut a.opaque, &p.opaque);
        write(&s.glass, &mut a.glass, &p.glass);
        write(&s.edges, &mut a.edges, &p.edges);
        self.store.allocs.insert(e, a);
    }

    fn instance_record(i: &Instance) -> InstanceGpu {
        let m = glam::Mat4::from_cols_array(&i.model);
        let n = glam::Mat3::from_mat4(m).inverse().transpose();
        let col = |c: glam::Vec3| [c.x, c.y, c.z, 0.0];
        InstanceGpu {
            model: i.model,
            n0: col(n.x_axis),
            n1: col(n.y_axis),
            n2: col(n.z_axis),
            selected: i.selected.map_or(0, |c| c.swap_bytes()),
            hovered: i.hovered.map_or(0, |c| c.swap_bytes()),
            flags: 0,
            pad: 0,
        }
    }

    fn pipelines(&mut self, multiview: bool, format: wgpu::TextureFormat) -> &Pipelines {
        let samples = self.settings.msaa;
        let gpu = &self.gpu;
        self.pipelines
            .entry((multiview, samples, format))
            .or_insert_with(|| Pipelines::new(gpu, multiview, samples, format))
    }

    /// Peers' heads, hands and pointers. A head within [`NEAR_HEAD`] of an eye is left out: a
    /// peer standing where I stand (following me, or at the same default view) would otherwise
    /// fill my view from inside their head.
    /// Also the gizmo's triangles and lines, drawn over everything.
    fn overlay_geometry(engine: &Engine, eyes: &[Eye]) -> [Vec<OverlayVertex>; 4] {
        let (mut tris, mut lines) = (Vec::new(), Vec::new());
        let cube = |out: &mut Vec<OverlayVertex>,
                    c: theta_mesh::Vec3,
                    q: theta_mesh::Quat,
                    h: f32,
                    colour: u32| {
            let q = glam::Quat::from_xyzw(q.x, q.y, q.z, q.w).normalize();
            let c = glam::Vec3::new(c.x, c.y, c.z);
            for p in unit_cube() {
                let p = c + q * (glam::Vec3::from(*p) * (2.0 * h));
                out.push(OverlayVertex {
                    pos: [p.x, p.y, p.z],
                    colour,
                });
            }
        };
        let near = |p: theta_mesh::Vec3| {
            eyes.iter().any(|e| {
                let d = e.pose.position - p;
                d.dot(d) < NEAR_HEAD * NEAR_HEAD
            })
        };
        for a in &engine.render_frame().avatars {
            let colour = a.colour.swap_bytes();
            if let Some(h) = a.head
                && !near(h.position)
            {
                cube(&mut tris, h.position, h.orientation, 0.11, colour);
            }
            for h in a.hands.iter().flatten() {
                cube(&mut tris, h.position, h.orientation, 0.04, colour);
            }
            if let Some(r) = a.pointer {
                let o = r.origin;
                let e = r.origin + r.direction * 3.0;
                lines.push(OverlayVertex {
                    pos: [o.x, o.y, o.z],
                    colour,
                });
                lines.push(OverlayVertex {
                    pos: [e.x, e.y, e.z],
                    colour: colour & 0x00ff_ffff,
                });
            }
        }
        let (mut gizmo_tris, mut gizmo_lines) = (Vec::new(), Vec::new());
        if let Some(g) = &engine.render_frame().gizmo {
            gizmo_geometry(g, &mut gizmo_tris, &mut gizmo_lines);
        }
        [tris, lines, gizmo_tris, gizmo_lines]
    }

    /// Draws a frame for `eyes` into `target` (as many layers as eyes), without reading it back.
    /// Returns the draw calls and triangles submitted.
    pub fn draw(
        &mut self,
        engine: &Engine,
        eyes: &[Eye],
        target: &Target,
    ) -> Result<(usize, usize)> {
        if eyes.is_empty() || eyes.len() as u32 != target.layers || eyes.len() > 2 {
            bail!(
                "{} eyes for a target of {} layers",
                eyes.len(),
                target.layers
            );
        }
        // Timestamps on one frame in TIMESTAMP_EVERY: plenty for telemetry, and writing them
        // costs a CPU rasteriser about 2 ms a frame.
        let stamp = self.frames.is_multiple_of(TIMESTAMP_EVERY);
        self.frames += 1;
        self.stamped = stamp;
        let stereo = eyes.len() == 2;
        let multiview = stereo && self.multiview() && target.arrayed;
        // Cameras.
        let mut cams = Vec::with_capacity(2);
        for e in eyes {
            let p = e.pose.position;
            let mut pad = [[0.0; 4]; 11];
            // The vignette's centre: where straight ahead lands in this eye's view.
            let ahead = e.projection() * glam::Vec4::new(0.0, 0.0, -1.0, 1.0);
            let centre = if ahead.w.abs() > 1e-6 {
                [ahead.x / ahead.w, ahead.y / ahead.w]
            } else {
                [0.0, 0.0]
            };
            pad[0] = [
                centre[0],
                centre[1],
                self.extras.vignette.clamp(0.0, 1.0),
                0.0,
            ];
            cams.push(CameraGpu {
                view_proj: e.view_projection().to_cols_array(),
                eye: [p.x, p.y, p.z, 1.0],
                pad,
            });
        }
        self.gpu
            .queue
            .write_buffer(&self.cameras, 0, bytemuck::cast_slice(&cams));
        // Overlay geometry.
        let [tris, mut lines, gizmo_tris, gizmo_lines] =
            GpuRenderer::overlay_geometry(engine, eyes);
        for ([a, b], colour) in &self.extras.lines {
            let colour = colour.swap_bytes();
            lines.push(OverlayVertex {
                pos: [a.x, a.y, a.z],
                colour,
            });
            lines.push(OverlayVertex {
                pos: [b.x, b.y, b.z],
                colour,
            });
        }
        // The panels: two triangles each.
        let mut panel_verts: Vec<PanelVertex> = Vec::new();
        if self.extras.panel_texture.is_some() {
            for q in &self.extras.panels {
                let [l, t, r, b] = q.uv;
                let c = q.corners;
                let v = |i: usize, u: f32, w: f32| PanelVertex {
                    pos: [c[i].x, c[i].y, c[i].z],
                    uv: [u, w],
                };
                panel_verts.extend([
                    v(0, l, t),
                    v(2, l, b),
                    v(1, r, t),
                    v(1, r, t),
                    v(2, l, b),
                    v(3, r, b),
                ]);
            }
        }
        if !panel_verts.is_empty() {
            let bytes = (panel_verts.len() * std::mem::size_of::<PanelVertex>()) as u64;
            self.panel_vertices.reserve(&self.gpu, bytes, 0);
            self.gpu.queue.write_buffer(
                &self.panel_vertices.buffer,
                0,
                bytemuck::cast_slice(&panel_verts),
            );
        }
        // The grid lives in its own buffer, rewritten only when the eye reaches another spot;
        // heads, hands and rays are rewritten every frame (they are small).
        let mut grid_count = 0u32;
        if self.settings.grid {
            let p = eyes[0].pose.position;
            let spot = (p.x.round() as i32, p.z.round() as i32);
            if self.grid.as_ref().is_none_or(|(s, _, _)| *s != spot) {
                let g = grid_lines(spot);
                let buf = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("grid"),
                    size: (g.len() * std::mem::size_of::<OverlayVertex>()) as u64,
                    usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.gpu
                    .queue
                    .write_buffer(&buf, 0, bytemuck::cast_slice(&g));
                self.grid = Some((spot, buf, g.len() as u32));
            }
            grid_count = self.grid.as_ref().map_or(0, |(_, _, n)| *n);
        }
        let overlay_bytes = ((tris.len() + lines.len() + gizmo_tris.len() + gizmo_lines.len())
            * std::mem::size_of::<OverlayVertex>()) as u64;
        self.overlay.reserve(&self.gpu, overlay_bytes, 0);
        let r0 = tris.len() as u32;
        let r1 = r0 + lines.len() as u32;
        let r2 = r1 + gizmo_tris.len() as u32;
        let r3 = r2 + gizmo_lines.len() as u32;
        if overlay_bytes > 0 {
            let mut all = tris.clone();
            all.extend_from_slice(&lines);
            all.extend_from_slice(&gizmo_tris);
            all.extend_from_slice(&gizmo_lines);
            self.gpu
                .queue
                .write_buffer(&self.overlay.buffer, 0, bytemuck::cast_slice(&all));
        }
        let selected: Vec<(u32, u32)> = engine
            .render_frame()
            .instances
            .iter()
            .filter(|i| i.selected.is_some())
            .filter_map(|i| {
                self.store
                    .allocs
                    .get(&i.entity)
                    .map(|a| (a.edges.0, a.edges.1))
            })
            .collect();
        let clear = self.settings.clear;
        let (ctop, otop, gtop) = (self.store.ctop, self.store.otop, self.store.gtop);
        self.pipelines(multiview, target.format);
        let p = &self.pipelines[&(multiview, self.settings.msaa, target.format)];
        let bind = |dynamic: bool| {
            self.gpu
                .device
                .create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("scene"),
                    layout: &p.layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &self.cameras,
                                offset: 0,
                                size: wgpu::BufferSize::new(if dynamic {
                                    CAMERA_BLOCK
                                } else {
                                    CAMERA_BLOCK * 2
                                }),
                            }),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: self.store.instances.buffer.as_entire_binding(),
                        },
                    ],
                })
        };
        let group = bind(!multiview);
        let panel_group = match (&self.extras.panel_texture, panel_verts.is_empty()) {
            (Some(view), false) => Some(self.gpu.device.create_bind_group(
                &wgpu::BindGroupDescriptor {
                    label: Some("panels"),
                    layout: &p.panel_layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::TextureView(view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::Sampler(&self.panel_sampler),
                        },
                    ],
                },
            )),
            _ => None,
        };
        let vignette = self.extras.vignette > 0.005;
        let triangles = self
            .store
            .allocs
            .values()
            .map(|a| (a.culled.1 + a.opaque.1 + a.glass.1) as usize / 3)
            .sum::<usize>();
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        let passes: Vec<Option<u32>> = if multiview || !stereo {
            vec![None]
        } else {
            vec![Some(0), Some(1)]
        };
        let mut calls = 0usize;
        let n_passes = passes.len();
        for (k, layer) in passes.into_iter().enumerate() {
            let color_view = Target::view(&target.color, layer, target.layers);
            let msaa_view = target.layer_view(&target.msaa, layer);
            let depth_view = target
                .layer_view(&target.depth, layer)
                .context("depth target")?;
            let via_scratch = match (layer, &target.scratch) {
                (Some(l), Some(t)) if l > 0 && msaa_view.is_some() => Some((l, t)),
                _ => None,
            };
            let scratch_view = via_scratch.map(|(_, t)| Target::view(t, None, 1));
            let (view, resolve) = match &msaa_view {
                Some(m) => (m, Some(scratch_view.as_ref().unwrap_or(&color_view))),
                None => (&color_view, None),
            };
            let ts =
                self.timer
                    .as_ref()
                    .filter(|_| stamp)
                    .map(|t| wgpu::RenderPassTimestampWrites {
                        query_set: &t.set,
                        beginning_of_pass_write_index: Some(2 * k as u32),
                        end_of_pass_write_index: Some(2 * k as u32 + 1),
                    });
            let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("scene"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view,
                    depth_slice: None,
                    resolve_target: resolve,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color {
                            r: f64::from(srgb_to_linear(clear[0])),
                            g: f64::from(srgb_to_linear(clear[1])),
                            b: f64::from(srgb_to_linear(clear[2])),
                            a: 1.0,
                        }),
                        store: if resolve.is_some() {
                            wgpu::StoreOp::Discard
                        } else {
                            wgpu::StoreOp::Store
                        },
                    },
                })],
                depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                    view: &depth_view,
                    depth_ops: Some(wgpu::Operations {
                        load: wgpu::LoadOp::Clear(0.0),
                        store: wgpu::StoreOp::Discard,
                    }),
                    stencil_ops: None,
                }),
                timestamp_writes: ts,
                occlusion_query_set: None,
                multiview_mask: multiview.then(|| NonZeroU32::new(0b11)).flatten(),
            });
            let offsets: Vec<u32> = if multiview {
                vec![]
            } else {
                vec![(layer.unwrap_or(0) as u64 * CAMERA_BLOCK) as u32]
            };
            pass.set_bind_group(0, &group, &offsets);
            pass.set_vertex_buffer(0, self.store.vertices.buffer.slice(..));
            // The shared scene buffers, each drawn whole in one call (freed ranges hold
            // degenerate triangles).
            let scene_draw =
                |pass: &mut wgpu::RenderPass<'_>, pipeline, indices: &Grow, count: u32| {
                    if count == 0 {
                        return 0;
                    }
                    pass.set_pipeline(pipeline);
                    pass.set_vertex_buffer(0, self.store.vertices.buffer.slice(..));
                    pass.set_index_buffer(indices.buffer.slice(..), wgpu::IndexFormat::Uint32);
                    pass.draw_indexed(0..count, 0, 0..1);
                    1
                };
            calls += scene_draw(&mut pass, &p.culled, &self.store.culled, ctop);
            calls += scene_draw(&mut pass, &p.opaque, &self.store.opaque, otop);
            if !tris.is_empty() {
                pass.set_pipeline(&p.overlay_tris);
                pass.set_vertex_buffer(0, self.overlay.buffer.slice(..));
                pass.draw(0..tris.len() as u32, 0..1);
                calls += 1;
                pass.set_vertex_buffer(0, self.store.vertices.buffer.slice(..));
            }
            if !selected.is_empty() {
                pass.set_pipeline(&p.wire);
                pass.set_index_buffer(self.store.edges.buffer.slice(..), wgpu::IndexFormat::Uint32);
                for &(base, n) in &selected {
                    if n > 0 {
                        pass.draw_indexed(base..base + n, 0, 0..1);
                        calls += 1;
                    }
                }
            }
            if let Some(pg) = &panel_group {
                pass.set_pipeline(&p.panel);
                pass.set_bind_group(1, pg, &[]);
                pass.set_vertex_buffer(0, self.panel_vertices.buffer.slice(..));
                pass.draw(0..panel_verts.len() as u32, 0..1);
                calls += 1;
            }
            if let (Some((_, buf, _)), true) = (&self.grid, grid_count > 0) {
                pass.set_pipeline(&p.overlay_lines);
                pass.set_vertex_buffer(0, buf.slice(..));
                pass.draw(0..grid_count, 0..1);
                calls += 1;
            }
            calls += scene_draw(&mut pass, &p.glass, &self.store.glass, gtop);
            if r1 > r0 {
                pass.set_pipeline(&p.overlay_lines);
                pass.set_vertex_buffer(0, self.overlay.buffer.slice(..));
                pass.draw(r0..r1, 0..1);
                calls += 1;
            }
            if r3 > r1 {
                pass.set_vertex_buffer(0, self.overlay.buffer.slice(..));
                if r2 > r1 {
                    pass.set_pipeline(&p.gizmo_tris);
                    pass.draw(r1..r2, 0..1);
                    calls += 1;
                }
                if r3 > r2 {
                    pass.set_pipeline(&p.gizmo_lines);
                    pass.draw(r2..r3, 0..1);
                    calls += 1;
                }
            }
            if vignette {
                pass.set_pipeline(&p.vignette);
                pass.draw(0..3, 0..1);
                calls += 1;
            }
            drop(pass);
            if let Some((l, t)) = via_scratch {
                enc.copy_texture_to_texture(
                    wgpu::TexelCopyTextureInfo {
                        texture: t,
                        mip_level: 0,
                        origin: wgpu::Origin3d::ZERO,
                        aspect: wgpu::TextureAspect::All,
                    },
                    wgpu::TexelCopyTextureInfo {
                        texture: &target.color,
                        mip_level: 0,
                        origin: wgpu::Origin3d { x: 0, y: 0, z: l },
                        aspect: wgpu::TextureAspect::All,
                    },
                    wgpu::Extent3d {
                        width: target.size.0,
                        height: target.size.1,
                        depth_or_array_layers: 1,
                    },
                );
            }
        }
        if let Some(t) = self.timer.as_ref().filter(|_| stamp) {
            let n = 2 * n_passes as u32;
            enc.resolve_query_set(&t.set, 0..n, &t.resolve, 0);
            enc.copy_buffer_to_buffer(&t.resolve, 0, &t.read, 0, 32);
        }
        self.gpu.queue.submit([enc.finish()]);
        Ok((calls, triangles))
    }

    /// Waits for the GPU and reads the frame's timestamps (if the adapter has them).
    fn gpu_time(&self, passes: usize) -> Option<Duration> {
        let t = self.timer.as_ref()?;
        let slice = t.read.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .ok()?;
        let stamps: Vec<u64> = {
            let v = slice.get_mapped_range().ok()?;
            bytemuck::cast_slice::<u8, u64>(&v).to_vec()
        };
        t.read.unmap();
        let first = stamps.first().copied()?;
        let last = stamps.get(2 * passes - 1).copied()?;
        (last > first)
            .then(|| Duration::from_nanos(((last - first) as f64 * f64::from(t.period)) as u64))
    }

    /// Reads a target's layers back.
    pub fn read(&mut self, target: &Target) -> Result<Vec<Image>> {
        let (w, h) = target.size;
        let row = (w * 4).div_ceil(256) * 256;
        let size = u64::from(row) * u64::from(h) * u64::from(target.layers);
        if self.readback.as_ref().is_none_or(|b| b.size() < size) {
            self.readback = Some(self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let buf = self.readback.as_ref().context("readback buffer")?;
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &target.color,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: buf,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row),
                    rows_per_image: Some(h),
                },
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: target.layers,
            },
        );
        self.gpu.queue.submit([enc.finish()]);
        let slice = buf.slice(..size);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        rx.recv()
            .context("the readback never finished")?
            .map_err(|e| anyhow!("reading the image back: {e}"))?;
        let mut images = Vec::new();
        {
            let data = slice.get_mapped_range().map_err(|e| anyhow!("{e}"))?;
            let bgra = matches!(
                target.format,
                wgpu::TextureFormat::Bgra8UnormSrgb | wgpu::TextureFormat::Bgra8Unorm
            );
            for l in 0..target.layers {
                let mut rgba = Vec::with_capacity((w * h * 4) as usize);
                for y in 0..h {
                    let at = ((l * h + y) * row) as usize;
                    rgba.extend_from_slice(&data[at..at + (w * 4) as usize]);
                }
                if bgra {
                    // A window surface's order: blue first.
                    for p in rgba.chunks_exact_mut(4) {
                        p.swap(0, 2);
                    }
                }
                images.push(Image {
                    width: w,
                    height: h,
                    rgba,
                });
            }
        }
        buf.unmap();
        self.gpu.check()?;
        Ok(images)
    }

    /// Blocks until the GPU has finished everything submitted.
    pub fn wait(&self) -> Result<()> {
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| anyhow!("waiting for the GPU: {e}"))
    }

    /// Renders one frame into the renderer's own target of `size`, waits for it, and returns the
    /// draw calls, triangles and GPU time (no readback).
    pub fn frame(
        &mut self,
        engine: &Engine,
        eyes: &[Eye],
        size: (u32, u32),
    ) -> Result<FrameReport> {
        let layers = eyes.len() as u32;
        let samples = self.settings.msaa;
        let stale = self.target.as_ref().is_none_or(|t| {
            t.size != size || t.layers != layers || t.msaa.is_empty() != (samples == 1)
        });
        if stale {
            let mut t = Target::new(&self.gpu, size, layers, samples);
            if !self.multiview() && samples > 1 && layers > 1 && t.arrayed {
                // One pass per eye: one multisampled texture per eye.
                t = Target::per_eye(&self.gpu, t.color, size, layers, samples);
            }
            self.target = Some(t);
        }
        let target = self.target.take().context("target")?;
        let r = self.draw(engine, eyes, &target);
        self.target = Some(target);
        let (calls, triangles) = r?;
        self.gpu.check()?;
        let multiview = self.multiview() && self.target.as_ref().is_some_and(|t| t.arrayed);
        let passes = if eyes.len() == 2 && !multiview { 2 } else { 1 };
        let gpu_time = if self.timer.is_some() && self.stamped {
            self.gpu_time(passes)
        } else {
            self.wait().ok().and(None)
        };
        if let Some(t) = gpu_time {
            crate::telemetry::metrics().gpu_frame(t);
        }
        Ok(FrameReport {
            instances: engine.render_frame().instances.len(),
            triangles,
            draw_calls: calls,
            uploads: self.last_uploads,
            instance_writes: self.last_writes,
            gpu_time,
        })
    }

    fn compact_if_needed(&mut self) {
        let top = u64::from(self.store.vtop);
        if top > 1 << 16 && top > 2 * self.store.live {
            // Start again: everything is uploaded afresh by the next sync.
            self.store.allocs.clear();
            self.store.vtop = 0;
            self.store.ctop = 0;
            self.store.otop = 0;
            self.store.gtop = 0;
            self.store.etop = 0;
            self.store.live = 0;
            self.books = Books::default();
        }
    }
}

impl Renderer for GpuRenderer {
    fn describe(&self) -> String {
        self.gpu.description.clone()
    }

    fn sync(&mut self, engine: &Engine) -> Result<()> {
        let _span = tracing::debug_span!("render_sync").entered();
        self.compact_if_needed();
        let plan = self.books.plan(engine);
        for (e, _) in &plan.freed {
            self.free(*e);
        }
        self.last_uploads = plan.uploads.len();
        self.last_writes = plan.instances.len();
        let provoking = self.gpu.provoking;
        let uploads: Vec<(Entity, Prepared)> = plan
            .uploads
            .iter()
            .map(|(e, s, m)| (*e, prepare(m, *s, provoking)))
            .collect();
        let writes: Vec<(u32, InstanceGpu)> = plan
            .instances
            .iter()
            .map(|(s, i)| (*s, GpuRenderer::instance_record(i)))
            .collect();
        drop(plan);
        for (e, p) in uploads {
            self.upload(e, p);
        }
        if let Some(max) = writes.iter().map(|(s, _)| *s).max() {
            let s = &mut self.store;
            if s.mirror.len() <= max as usize {
                s.mirror.resize(max as usize + 1, InstanceGpu::default());
            }
            let (mut lo, mut hi) = (u32::MAX, 0);
            for (slot, rec) in writes {
                s.mirror[slot as usize] = rec;
                lo = lo.min(slot);
                hi = hi.max(slot);
            }
            let bytes = s.mirror.len() as u64 * INSTANCE_BYTES;
            let old = s.instances.capacity.min(bytes);
            s.instances.reserve(&self.gpu, bytes, old);
            self.gpu.queue.write_buffer(
                &s.instances.buffer,
                u64::from(lo) * INSTANCE_BYTES,
                bytemuck::cast_slice(&s.mirror[lo as usize..=hi as usize]),
            );
        }
        Ok(())
    }

    fn render(
        &mut self,
        engine: &Engine,
        eyes: &[Eye],
        size: (u32, u32),
    ) -> Result<(Vec<Image>, FrameReport)> {
        let report = self.frame(engine, eyes, size)?;
        let target = self.target.take().context("target")?;
        let images = self.read(&target);
        self.target = Some(target);
        Ok((images?, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use theta_mesh::{MaterialId, Primitive, SeqIds};

    #[test]
    fn shared_corners_draw_the_same_triangles_with_each_faces_shading_provoking() {
        for (p, provoking) in Primitive::samples()
            .into_iter()
            .flat_map(|p| [(p, Provoking::First), (p, Provoking::Last)])
        {
            let mesh = p.build(&mut SeqIds::default(), MaterialId(3)).unwrap();
            let rm = RenderMesh::of_mesh(&mesh, 1);
            let out = prepare(&rm, 7, provoking);
            let drawn: Vec<u32> = [&out.culled, &out.opaque, &out.glass]
                .into_iter()
                .flatten()
                .copied()
                .collect();
            assert_eq!(drawn.len(), rm.indices.len(), "{p:?}");
            for (t, (a, b)) in rm.indices.chunks(3).zip(drawn.chunks(3)).enumerate() {
                let pos = |c: u32| rm.positions[c as usize];
                let got: Vec<[f32; 3]> = b.iter().map(|&v| out.vertices[v as usize].pos).collect();
                // The same corners, in the same turning order, starting anywhere.
                let same = (0..3).any(|r| (0..3).all(|k| got[k] == pos(a[(k + r) % 3])));
                assert!(same, "{p:?}: triangle {t} moved or flipped");
                // The provoking vertex carries this triangle's face normal and material.
                let first =
                    out.vertices[b[if provoking == Provoking::First { 0 } else { 2 }] as usize];
                assert_eq!(
                    first.normal, rm.normals[a[0] as usize],
                    "{p:?}: triangle {t}"
                );
                assert_eq!(first.meta & 0x0fff_ffff, 7);
                let want = linear_10_10_10_2(theta_mesh::palette_entry(MaterialId(3)).rgba);
                assert_eq!(first.colour, want);
            }
            // About one vertex per mesh vertex, not one per corner.
            assert!(
                out.vertices.len() <= mesh.vertex_count() + mesh.face_count(),
                "{p:?}: {} vertices for {} mesh vertices",
                out.vertices.len(),
                mesh.vertex_count()
            );
            assert!(out.vertices.len() < rm.positions.len(), "{p:?}");
            // Each mesh edge drawn once in the wireframe.
            assert_eq!(out.edges.len(), 2 * mesh.edge_count(), "{p:?}");
        }
    }

    #[test]
    fn a_closed_quad_mesh_needs_few_copies() {
        let mesh = Primitive::Torus {
            major_radius: 2.0,
            minor_radius: 0.5,
            major_segments: 64,
            minor_segments: 16,
        }
        .build(&mut SeqIds::default(), MaterialId(0))
        .unwrap();
        let out = prepare(&RenderMesh::of_mesh(&mesh, 1), 0, Provoking::First);
        // 1,024 quads on 1,024 vertices: a copy for at most a tenth of the faces.
        assert!(
            out.vertices.len() <= mesh.vertex_count() + mesh.face_count() / 10,
            "{} vertices",
            out.vertices.len()
        );
    }
}
