//! The panels' layer. egui draws the panels into a texture of their own, and only on a frame
//! where what they show changed (other shapes, a new font atlas, another size); every frame then
//! lays that texture over the scene, in the 32-pixel tiles the panels cover and nowhere else.
//!
//! On a software rasteriser, egui's many small, blended, textured triangles cost more than the
//! scene behind them (about 15–25 ms a frame at 1280×720 on lavapipe): orbiting the camera or
//! watching a peer model leaves the panels as they were, so they are not drawn again. The layer
//! holds premultiplied colour (egui blends `One, OneMinusSrcAlpha` into a cleared, transparent
//! texture), and laying it over with the same blend gives what drawing egui straight onto the
//! scene would, up to the rounding of one extra 8-bit store.

use egui::epaint::{ClippedPrimitive, ClippedShape, Primitive};

/// The side of a tile, in pixels.
pub const TILE: u32 = 32;

const SHADER: &str = r"
@group(0) @binding(0) var layer: texture_2d<f32>;

@vertex
fn vs(@builtin(vertex_index) v: u32, @location(0) tile: vec2<u32>) -> @builtin(position) vec4<f32> {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
    );
    let size = vec2<f32>(textureDimensions(layer));
    let px = min((vec2<f32>(tile) + corners[v]) * 32.0, size);
    return vec4<f32>(px.x / size.x * 2.0 - 1.0, 1.0 - px.y / size.y * 2.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) p: vec4<f32>) -> @location(0) vec4<f32> {
    return textureLoad(layer, vec2<i32>(p.xy), 0);
}
";

/// Which tiles of a `size` frame the primitives touch: each mesh's bounds, cut to its clip
/// rectangle, in physical pixels. Sorted, without repeats.
pub fn tiles(prims: &[ClippedPrimitive], pixels_per_point: f32, size: (u32, u32)) -> Vec<[u16; 2]> {
    let cols = size.0.div_ceil(TILE) as usize;
    let rows = size.1.div_ceil(TILE) as usize;
    let mut hit = vec![false; cols * rows];
    for p in prims {
        let Primitive::Mesh(mesh) = &p.primitive else {
            continue;
        };
        if mesh.indices.is_empty() {
            continue;
        }
        let mut lo = egui::pos2(f32::INFINITY, f32::INFINITY);
        let mut hi = egui::pos2(f32::NEG_INFINITY, f32::NEG_INFINITY);
        for v in &mesh.vertices {
            lo = lo.min(v.pos);
            hi = hi.max(v.pos);
        }
        let r = egui::Rect::from_min_max(lo, hi).intersect(p.clip_rect);
        if !(r.width() > 0.0 && r.height() > 0.0) {
            continue;
        }
        let to_tile = |x: f32, n: usize| -> usize {
            ((x * pixels_per_point).max(0.0) as usize / TILE as usize).min(n.saturating_sub(1))
        };
        let (x0, x1) = (to_tile(r.min.x, cols), to_tile(r.max.x, cols));
        let (y0, y1) = (to_tile(r.min.y, rows), to_tile(r.max.y, rows));
        for y in y0..=y1 {
            for x in x0..=x1 {
                hit[y * cols + x] = true;
            }
        }
    }
    hit.iter()
        .enumerate()
        .filter(|(_, h)| **h)
        .map(|(i, _)| [(i % cols) as u16, (i / cols) as u16])
        .collect()
}

/// What the layer was last drawn from.
struct Drawn {
    shapes: Vec<ClippedShape>,
    pixels_per_point: f32,
    size: (u32, u32),
}

/// The panels' own texture, what it was drawn from, and the pipeline that lays it over a frame.
pub struct PanelLayer {
    format: wgpu::TextureFormat,
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    /// The layer's texture, its view and bind group, and its size.
    texture: Option<(wgpu::TextureView, wgpu::BindGroup, (u32, u32))>,
    tiles: wgpu::Buffer,
    tile_count: u32,
    drawn: Option<Drawn>,
    /// How many times the panels were drawn (the rest of the frames reused the layer).
    pub redraws: u64,
}

impl PanelLayer {
    /// A layer for frames of `format` (nothing is drawn in it until [`PanelLayer::draw`]).
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("panel layer"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("panel layer"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            }],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("panel layer"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("panel layer"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: 4,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &wgpu::vertex_attr_array![0 => Uint16x2],
                })],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format,
                    blend: Some(crate::render::gpu::PREMULTIPLIED),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let tiles = Self::tile_buffer(device, 0);
        Self {
            format,
            pipeline,
            layout,
            texture: None,
            tiles,
            tile_count: 0,
            drawn: None,
            redraws: 0,
        }
    }

    fn tile_buffer(device: &wgpu::Device, tiles: usize) -> wgpu::Buffer {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("panel tiles"),
            size: (tiles.max(64) * 4) as u64,
            usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Whether the layer already shows these shapes at this scale and size (and no texture
    /// of egui's changed since).
    pub fn holds(
        &self,
        shapes: &[ClippedShape],
        pixels_per_point: f32,
        size: (u32, u32),
        textures_changed: bool,
    ) -> bool {
        !textures_changed
            && self.drawn.as_ref().is_some_and(|d| {
                d.size == size && d.pixels_per_point == pixels_per_point && d.shapes == shapes
            })
    }

    /// Draw the panels into the layer: `prims` tessellated from `shapes`. Returns the command
    /// buffers to submit (egui's own uploads first).
    #[allow(clippy::too_many_arguments)]
    pub fn draw(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        egui_renderer: &mut egui_wgpu::Renderer,
        shapes: Vec<ClippedShape>,
        prims: &[ClippedPrimitive],
        pixels_per_point: f32,
        size: (u32, u32),
    ) -> Vec<wgpu::CommandBuffer> {
        if self.texture.as_ref().is_none_or(|t| t.2 != size) {
            let texture = crate::render::gpu::flat_texture(
                device,
                "panel layer",
                size,
                1,
                self.format,
                wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING,
            );
            let view = texture.create_view(&Default::default());
            let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("panel layer"),
                layout: &self.layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(&view),
                }],
            });
            self.texture = Some((view, group, size));
        }
        let Some((view, _, _)) = self.texture.as_ref() else {
            return Vec::new();
        };
        let sd = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [size.0, size.1],
            pixels_per_point,
        };
        let mut enc = device.create_command_encoder(&Default::default());
        let mut cmds = egui_renderer.update_buffers(device, queue, &mut enc, prims, &sd);
        {
            let pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("panels"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            let mut pass = pass.forget_lifetime();
            egui_renderer.render(&mut pass, prims, &sd);
        }
        cmds.push(enc.finish());
        let tiles = tiles(prims, pixels_per_point, size);
        if (self.tiles.size() as usize) < tiles.len() * 4 {
            self.tiles = Self::tile_buffer(device, tiles.len());
        }
        if !tiles.is_empty() {
            let bytes: Vec<u8> = tiles
                .iter()
                .flat_map(|[x, y]| [x.to_le_bytes(), y.to_le_bytes()])
                .flatten()
                .collect();
            queue.write_buffer(&self.tiles, 0, &bytes);
        }
        self.tile_count = tiles.len() as u32;
        self.drawn = Some(Drawn {
            shapes,
            pixels_per_point,
            size,
        });
        self.redraws += 1;
        cmds
    }

    /// The layer's texture, once drawn (what the headset hangs in the world).
    pub fn view(&self) -> Option<&wgpu::TextureView> {
        self.texture.as_ref().map(|t| &t.0)
    }

    /// Lay the panels over `target` (the frame, already holding the scene).
    pub fn composite(&self, enc: &mut wgpu::CommandEncoder, target: &wgpu::TextureView) {
        let Some((_, group, _)) = self.texture.as_ref() else {
            return;
        };
        if self.tile_count == 0 {
            return;
        }
        let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("panel layer"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: target,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Load,
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, group, &[]);
        pass.set_vertex_buffer(0, self.tiles.slice(..));
        pass.draw(0..6, 0..self.tile_count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::epaint::{Mesh, Vertex};

    fn quad(min: (f32, f32), max: (f32, f32), clip: egui::Rect) -> ClippedPrimitive {
        let mut mesh = Mesh::default();
        for (x, y) in [
            (min.0, min.1),
            (max.0, min.1),
            (min.0, max.1),
            (max.0, max.1),
        ] {
            mesh.vertices.push(Vertex {
                pos: egui::pos2(x, y),
                uv: egui::Pos2::ZERO,
                color: egui::Color32::WHITE,
            });
        }
        mesh.indices = vec![0, 1, 2, 2, 1, 3];
        ClippedPrimitive {
            clip_rect: clip,
            primitive: Primitive::Mesh(mesh),
        }
    }

    #[test]
    fn tiles_cover_each_mesh_cut_to_its_clip() {
        let all = egui::Rect::EVERYTHING;
        // A panel down the left edge, 40 points wide, at 2 pixels per point: 80 px = tiles 0..=2.
        let left = quad((0.0, 0.0), (40.0, 100.0), all);
        let t = tiles(&[left], 2.0, (320, 200));
        let cols: Vec<u16> = t.iter().map(|[x, _]| *x).collect();
        assert!(cols.iter().all(|&x| x <= 2), "{t:?}");
        // 200 px high: rows 0..=6 (7 rows of 32 px), all covered.
        assert_eq!(t.len(), 3 * 7);
        // A mesh clipped to nothing draws nowhere.
        let clipped = quad(
            (100.0, 10.0),
            (150.0, 20.0),
            egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(50.0, 50.0)),
        );
        assert!(tiles(&[clipped], 1.0, (320, 200)).is_empty());
        // A mesh beyond the frame is clamped to the last tile, not out of range.
        let beyond = quad((1000.0, 1000.0), (1100.0, 1100.0), all);
        assert_eq!(tiles(&[beyond], 1.0, (320, 200)), vec![[9, 6]]);
        // Overlapping meshes give each tile once.
        let a = quad((0.0, 0.0), (31.0, 31.0), all);
        let b = quad((5.0, 5.0), (20.0, 20.0), all);
        assert_eq!(tiles(&[a, b], 1.0, (320, 200)), vec![[0, 0]]);
    }
}
