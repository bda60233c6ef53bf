//! The renderer: what a person sees, from the engine's render extraction (never the scene or
//! half-edges).
//!
//! Two backends behind one shape of API: [`NullRenderer`] keeps the same books as a GPU would
//! (what is uploaded, what would be drawn) for headless tests and machines without a GPU, and
//! [`gpu::GpuRenderer`] (feature `render`) draws with wgpu on whatever backend it picks (Vulkan,
//! GL, Metal, DX12; `WGPU_BACKEND` is honoured). [`open`] picks the GPU when there is one and
//! falls back to the null renderer with a message when there is not, never a crash.
//!
//! Each frame the renderer [`sync`](Renderer::sync)s with the engine's `RenderFrame`: instance
//! data only for the objects written this frame, meshes only for the ones whose revision moved,
//! and frees what was removed. All objects' triangles live in one vertex buffer, each vertex
//! naming its object's slot in an instance buffer, so the whole scene is one draw call whatever
//! the number of objects (plus one for glass).

#[cfg(feature = "render")]
pub mod bench;
pub mod camera;
#[cfg(all(feature = "render", not(target_arch = "wasm32")))]
pub mod external;
#[cfg(feature = "render")]
pub mod gpu;
#[cfg(feature = "render")]
pub mod headless;

use std::collections::HashMap;

use anyhow::Result;
use bevy_ecs::entity::Entity;

use crate::engine::{Engine, RenderMesh};
pub use camera::{Eye, Fov};

/// Rendering settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Samples per pixel (1 or 4).
    pub msaa: u32,
    /// Draw the ground grid.
    pub grid: bool,
    /// Background colour, sRGB 0..1.
    pub clear: [f32; 3],
    /// How a stereo pair is drawn.
    pub stereo: Stereo,
}

/// How the two eyes of a stereo pair are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Stereo {
    /// In one multiview pass where the device has multiview and draws it right, else one pass
    /// per eye. A software rasteriser gets one pass per eye: lavapipe's multiview pass drops the
    /// second view's triangles that need clipping, so an object at the edge of the view
    /// vanishes from the right eye.
    #[default]
    Auto,
    /// In one multiview pass wherever the device has multiview (what tests of that path ask).
    Multiview,
    /// One pass per eye.
    PerEye,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            msaa: 4,
            grid: true,
            clear: [0.74, 0.77, 0.82],
            stereo: Stereo::Auto,
        }
    }
}

/// An image read back from the GPU: rows of RGBA8 (sRGB), one image per layer (eye).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA8, row by row, top row first.
    pub rgba: Vec<u8>,
}

impl Image {
    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        [
            self.rgba[i],
            self.rgba[i + 1],
            self.rgba[i + 2],
            self.rgba[i + 3],
        ]
    }

    /// Writes it as a PNG file.
    #[cfg(feature = "render")]
    pub fn save_png(&self, path: &std::path::Path) -> Result<()> {
        use anyhow::Context;
        let bytes = self.png()?;
        crate::cli::write_atomic(path, &bytes)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The image as PNG bytes.
    #[cfg(feature = "render")]
    pub fn png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
            let mut w = enc.write_header()?;
            w.write_image_data(&self.rgba)?;
        }
        Ok(out)
    }

    /// Reads a PNG file (RGBA8 or RGB8).
    #[cfg(feature = "render")]
    pub fn load_png(path: &std::path::Path) -> Result<Image> {
        use anyhow::{Context, bail};
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut dec = png::Decoder::new(std::io::BufReader::new(f));
        dec.set_transformations(png::Transformations::EXPAND);
        let mut r = dec.read_info()?;
        let mut buf = vec![0; r.output_buffer_size().unwrap_or(0)];
        let info = r.next_frame(&mut buf)?;
        let rgba = match info.color_type {
            png::ColorType::Rgba => buf[..info.buffer_size()].to_vec(),
            png::ColorType::Rgb => buf[..info.buffer_size()]
                .chunks(3)
                .flat_map(|c| [c[0], c[1], c[2], 255])
                .collect(),
            other => bail!("{}: unsupported PNG colour type {other:?}", path.display()),
        };
        Ok(Image {
            width: info.width,
            height: info.height,
            rgba,
        })
    }
}

/// How two images differ: pixels whose largest channel difference exceeds a threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    /// Pixels compared.
    pub pixels: usize,
    /// Pixels differing by more than the threshold in some channel.
    pub differing: usize,
    /// The largest channel difference seen.
    pub max: u8,
    /// A difference image: differing pixels red, the rest a faded copy of `a`.
    pub image: Image,
}

impl Diff {
    /// The share of pixels that differ, 0..1.
    pub fn fraction(&self) -> f64 {
        self.differing as f64 / self.pixels.max(1) as f64
    }
}

/// Compares two images of one size; `None` if the sizes differ.
pub fn compare(a: &Image, b: &Image, threshold: u8) -> Option<Diff> {
    if (a.width, a.height) != (b.width, b.height) {
        return None;
    }
    let mut out = Vec::with_capacity(a.rgba.len());
    let (mut differing, mut max) = (0usize, 0u8);
    for (pa, pb) in a.rgba.chunks(4).zip(b.rgba.chunks(4)) {
        let d = pa
            .iter()
            .zip(pb)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        max = max.max(d);
        if d > threshold {
            differing += 1;
            out.extend_from_slice(&[255, 0, 0, 255]);
        } else {
            out.extend(pa[..3].iter().map(|c| c / 3 + 170));
            out.push(255);
        }
    }
    Some(Diff {
        pixels: (a.width * a.height) as usize,
        differing,
        max,
        image: Image {
            width: a.width,
            height: a.height,
            rgba: out,
        },
    })
}

/// What a frame drew.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameReport {
    /// Objects drawn.
    pub instances: usize,
    /// Triangles submitted.
    pub triangles: usize,
    /// Draw calls.
    pub draw_calls: usize,
    /// Meshes uploaded by the sync before it.
    pub uploads: usize,
    /// Instance records written by the sync before it.
    pub instance_writes: usize,
    /// GPU time of the frame's passes, where the adapter has timestamp queries.
    pub gpu_time: Option<std::time::Duration>,
}

/// A renderer's books on the engine's objects: which slot and mesh revision each entity has,
/// and which slots are free. Both backends keep them the same way.
#[derive(Debug, Default)]
pub struct Books {
    /// Entity → (instance slot, uploaded mesh revision).
    pub slots: HashMap<Entity, (u32, u64)>,
    /// Free instance slots.
    pub free: Vec<u32>,
    /// The next never-used slot.
    pub next: u32,
    /// The engine's extraction frame last synced.
    pub frame: u64,
}

/// What one sync must do.
#[derive(Debug, Default)]
pub struct SyncPlan<'a> {
    /// Meshes to upload: entity, slot, mesh (its own or its preview).
    pub uploads: Vec<(Entity, u32, &'a RenderMesh)>,
    /// Instance records to write: slot, instance.
    pub instances: Vec<(u32, &'a crate::engine::Instance)>,
    /// Slots freed (their meshes must no longer draw).
    pub freed: Vec<(Entity, u32)>,
}

impl Books {
    fn slot(&mut self, e: Entity) -> u32 {
        if let Some((s, _)) = self.slots.get(&e) {
            return *s;
        }
        let s = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.slots.insert(e, (s, u64::MAX));
        s
    }

    /// Works out what to send to the GPU for the engine's current extraction: only what the
    /// extraction wrote this frame, or everything if a frame was skipped.
    pub fn plan<'a>(&mut self, engine: &'a Engine) -> SyncPlan<'a> {
        let rf = engine.render_frame();
        let world = engine.world();
        let mut plan = SyncPlan::default();
        let full = rf.frame != self.frame + 1;
        self.frame = rf.frame;
        let previews: HashMap<Entity, &RenderMesh> =
            rf.previews.iter().map(|(e, m)| (*e, m)).collect();
        if full {
            let live: std::collections::HashSet<Entity> =
                rf.instances.iter().map(|i| i.entity).collect();
            let gone: Vec<Entity> = self
                .slots
                .keys()
                .filter(|e| !live.contains(e))
                .copied()
                .collect();
            for e in gone {
                if let Some((s, _)) = self.slots.remove(&e) {
                    self.free.push(s);
                    plan.freed.push((e, s));
                }
            }
        } else {
            for e in &rf.removed {
                if let Some((s, _)) = self.slots.remove(e) {
                    self.free.push(s);
                    plan.freed.push((*e, s));
                }
            }
        }
        let indices: Box<dyn Iterator<Item = usize>> = if full {
            Box::new(0..rf.instances.len())
        } else {
            Box::new(rf.dirty.iter().map(|&i| i as usize))
        };
        for i in indices {
            let Some(inst) = rf.instances.get(i) else {
                continue;
            };
            let slot = self.slot(inst.entity);
            plan.instances.push((slot, inst));
            let uploaded = self.slots.get(&inst.entity).map(|x| x.1);
            if uploaded != Some(inst.mesh_revision) {
                let mesh = if inst.previewed {
                    previews.get(&inst.entity).copied()
                } else {
                    world.get::<RenderMesh>(inst.entity)
                };
                if let Some(m) = mesh {
                    plan.uploads.push((inst.entity, slot, m));
                    self.slots.insert(inst.entity, (slot, inst.mesh_revision));
                }
            }
        }
        plan
    }
}

/// A renderer.
pub trait Renderer {
    /// What it is ("null", or the adapter and backend).
    fn describe(&self) -> String;
    /// Brings the GPU's copy of the scene up to date with the engine's extraction.
    fn sync(&mut self, engine: &Engine) -> Result<()>;
    /// Draws one frame for `eyes` (one: mono; two: stereo into a 2-layer target) at `size` and
    /// reads it back, one image per eye.
    fn render(
        &mut self,
        engine: &Engine,
        eyes: &[Eye],
        size: (u32, u32),
    ) -> Result<(Vec<Image>, FrameReport)>;
}

/// The renderer for machines without a GPU: the same books, no pixels (its images are the
/// clear colour).
#[derive(Debug, Default)]
pub struct NullRenderer {
    books: Books,
    triangles: HashMap<u32, usize>,
    last_uploads: usize,
    last_writes: usize,
    settings: Settings,
}

impl NullRenderer {
    /// A null renderer.
    pub fn new(settings: Settings) -> NullRenderer {
        NullRenderer {
            settings,
            ..NullRenderer::default()
        }
    }
}

impl Renderer for NullRenderer {
    fn describe(&self) -> String {
        "null (no GPU)".into()
    }

    fn sync(&mut self, engine: &Engine) -> Result<()> {
        let plan = self.books.plan(engine);
        for (_, s) in &plan.freed {
            self.triangles.remove(s);
        }
        for (_, s, m) in &plan.uploads {
            self.triangles.insert(*s, m.triangle_count());
        }
        self.last_uploads = plan.uploads.len();
        self.last_writes = plan.instances.len();
        Ok(())
    }

    fn render(
        &mut self,
        engine: &Engine,
        eyes: &[Eye],
        size: (u32, u32),
    ) -> Result<(Vec<Image>, FrameReport)> {
        let c = self
            .settings
            .clear
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8);
        let image = Image {
            width: size.0,
            height: size.1,
            rgba: [c[0], c[1], c[2], 255].repeat((size.0 * size.1) as usize),
        };
        let report = FrameReport {
            instances: engine.render_frame().instances.len(),
            triangles: self.triangles.values().sum(),
            draw_calls: 0,
            uploads: self.last_uploads,
            instance_writes: self.last_writes,
            gpu_time: None,
        };
        Ok((vec![image; eyes.len().max(1)], report))
    }
}

/// The best renderer this machine has: the GPU one, else the null one with the reason.
pub fn open(settings: Settings) -> (Box<dyn Renderer>, Option<String>) {
    #[cfg(feature = "render")]
    {
        match gpu::GpuRenderer::new(settings) {
            Ok(r) => (Box::new(r), None),
            Err(e) => (
                Box::new(NullRenderer::new(settings)),
                Some(format!("no GPU renderer ({e:#}); drawing nothing")),
            ),
        }
    }
    #[cfg(not(feature = "render"))]
    {
        (
            Box::new(NullRenderer::new(settings)),
            Some("this build has no GPU renderer (feature `render`)".into()),
        )
    }
}
