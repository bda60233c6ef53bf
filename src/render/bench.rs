//! `theta bench render`: the engine's frame time against a bare wgpu program drawing the same
//! triangles with the same settings, in the same run.
//!
//! The scene is tori (triangle counts exact: 2 per quad) folded from real commands and
//! projected by the engine. An *engine frame* is what the app does every frame: step the
//! engine (input, tools, extraction), sync the renderer (only what changed), draw everything
//! (opaque scene, grid, overlays) into an offscreen target of the given size and MSAA, and wait
//! for the GPU. The *bare program* has one pipeline (position + normal, one directional light,
//! back faces culled as the engine culls them on closed meshes), one vertex buffer holding the
//! same triangles already in world space, the same target size, MSAA and depth format, one draw
//! call, and the same wait. Frames alternate between the two so
//! both see the same machine load; medians are reported, with fps and the ratio.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use theta_crdt::author;
use theta_crdt::command::{ObjectTransform, Op};
use theta_crdt::fold::Replica;
use theta_mesh::{MaterialId, Primitive, Vec3};

use super::camera::{self, Eye};
use super::gpu::{COLOR_FORMAT, Gpu, GpuRenderer, Target};
use super::{Renderer, Settings};
use crate::engine::{Engine, RenderMesh};

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    /// Triangles in all.
    pub triangles: usize,
    /// Objects they are split into.
    pub objects: usize,
    /// Target size (per eye).
    pub size: (u32, u32),
    /// Samples per pixel.
    pub msaa: u32,
    /// Both eyes (2-layer target).
    pub stereo: bool,
    /// Frames of each kind.
    pub frames: usize,
    /// Draw the ground grid in the engine's frames (the bare program has none).
    pub grid: bool,
}

/// A torus with about `tris` triangles (2 per quad; the tube has a fifth of the ring's segments).
fn torus(tris: usize, radius: f32) -> Primitive {
    let quads = (tris / 2).max(9) as f64;
    let mut minor = ((quads / 5.0).sqrt().round() as u32).clamp(3, 1024);
    let major = ((quads / f64::from(minor)).round() as u32).clamp(3, 1024);
    if major == 1024 {
        // The ring is at its most segments: the tube takes the rest.
        minor = ((quads / 1024.0).round() as u32).clamp(3, 1024);
    }
    Primitive::Torus {
        major_radius: radius,
        minor_radius: radius * 0.3,
        major_segments: major,
        minor_segments: minor,
    }
}

fn scene(job: &Job) -> Result<Replica> {
    let key = theta_crdt::workload::author_key(0);
    let g = author::genesis(&key, "render bench");
    let gv = theta_crdt::log::verify_command(&g).map_err(|e| anyhow!("{e}"))?;
    let mut r = Replica::new(gv.id());
    r.insert(gv).map_err(|e| anyhow!("{e}"))?;
    let n = job.objects.max(1);
    let side = (n as f64).sqrt().ceil() as usize;
    let spacing = 10.0 / side as f32;
    for i in 0..n {
        let (x, z) = ((i % side) as f32, (i / side) as f32);
        let op = Op::CreateObject {
            name: format!("t{i}"),
            primitive: torus(job.triangles / n, spacing * 0.35),
            material: MaterialId((i % 24) as u32),
            transform: ObjectTransform {
                translation: Vec3::new(
                    (x - side as f32 / 2.0 + 0.5) * spacing,
                    spacing * 0.2,
                    (z - side as f32 / 2.0 + 0.5) * spacing,
                ),
                ..ObjectTransform::IDENTITY
            },
        };
        let v = author::sign_local(&key, r.log(), op).map_err(|e| anyhow!("{e}"))?;
        r.insert(v).map_err(|e| anyhow!("{e}"))?;
    }
    r.settle();
    Ok(r)
}

/// The bare program: one pipeline, one buffer, one draw.
struct Bare {
    pipeline: wgpu::RenderPipeline,
    group: wgpu::BindGroup,
    vertices: wgpu::Buffer,
    count: u32,
    target: Target,
    multiview: bool,
}

const BARE_WGSL: &str = r#"
struct Cam { m: array<mat4x4<f32>, 2> }
@group(0) @binding(0) var<uniform> cam: Cam;
struct V { @builtin(position) p: vec4<f32>, @location(0) n: vec3<f32> }
@vertex fn vs(@location(0) pos: vec3<f32>, @location(1) n: vec3<f32> VIEW) -> V {
    var o: V;
    o.p = cam.m[EYE] * vec4<f32>(pos, 1.0);
    o.n = n;
    return o;
}
@fragment fn fs(v: V) -> @location(0) vec4<f32> {
    let l = max(dot(normalize(v.n), normalize(vec3<f32>(0.38, 0.86, 0.34))), 0.0);
    return vec4<f32>(vec3<f32>(0.2 + 0.7 * l), 1.0);
}
"#;

impl Bare {
    fn new(gpu: &Gpu, engine: &Engine, job: &Job, eyes: &[Eye]) -> Bare {
        use wgpu::util::DeviceExt;
        let d = &gpu.device;
        // The engine's triangles, in world space.
        let mut data: Vec<f32> = Vec::new();
        for inst in &engine.render_frame().instances {
            let Some(m) = engine.world().get::<RenderMesh>(inst.entity) else {
                continue;
            };
            let model = glam::Mat4::from_cols_array(&inst.model);
            let nm = glam::Mat3::from_mat4(model).inverse().transpose();
            for &i in &m.indices {
                let p = model.transform_point3(glam::Vec3::from(m.positions[i as usize]));
                let n = nm * glam::Vec3::from(m.normals[i as usize]);
                data.extend_from_slice(&[p.x, p.y, p.z, n.x, n.y, n.z]);
            }
        }
        let vertices = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("bare vertices"),
            contents: bytemuck::cast_slice(&data),
            usage: wgpu::BufferUsages::VERTEX,
        });
        let mut cams = [0f32; 32];
        for (k, e) in eyes.iter().enumerate() {
            cams[k * 16..(k + 1) * 16].copy_from_slice(&e.view_projection().to_cols_array());
        }
        let ubuf = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("bare camera"),
            contents: bytemuck::cast_slice(&cams),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let multiview = eyes.len() == 2 && gpu.multiview();
        let src = if multiview {
            BARE_WGSL
                .replace("VIEW", ", @builtin(view_index) view: u32")
                .replace("EYE", "view")
        } else {
            BARE_WGSL.replace("VIEW", "").replace("EYE", "0")
        };
        let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("bare"),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipeline = d.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("bare"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: 24,
                    step_mode: wgpu::VertexStepMode::Vertex,
                    attributes: &wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3],
                })],
            },
            // The tori are closed, and the engine culls closed meshes' back faces: so does this.
            primitive: wgpu::PrimitiveState {
                cull_mode: Some(wgpu::Face::Back),
                ..Default::default()
            },
            depth_stencil: Some(super::gpu::depth_test(
                gpu,
                true,
                wgpu::CompareFunction::GreaterEqual,
            )),
            multisample: wgpu::MultisampleState {
                count: job.msaa,
                ..Default::default()
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(COLOR_FORMAT.into())],
            }),
            multiview_mask: multiview.then(|| std::num::NonZeroU32::new(0b11)).flatten(),
            cache: None,
        });
        let group = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("bare"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: ubuf.as_entire_binding(),
            }],
        });
        Bare {
            pipeline,
            group,
            vertices,
            count: (data.len() / 6) as u32,
            target: Target::new(gpu, job.size, eyes.len() as u32, job.msaa),
            multiview,
        }
    }

    /// One frame (both eyes: one multiview pass, else one pass per eye), waited for.
    fn frame(&self, gpu: &Gpu) -> Result<()> {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let layers = self.target.layers;
        let passes: Vec<Option<u32>> = if self.multiview || layers == 1 {
            vec![None]
        } else {
            (0..layers).map(Some).collect()
        };
        for layer in passes {
            let (color, msaa, depth) = self.target.views(layer);
            let (view, resolve) = match &msaa {
                Some(m) => (m, Some(&color)),
                None => (&color, None),
            };
            let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("bare"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view,
                    depth_slice: None,
                    resolve_target: resolve,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                    view: &depth,
                    depth_ops: Some(wgpu::Operations {
                        load: wgpu::LoadOp::Clear(0.0),
                        store: wgpu::StoreOp::Discard,
                    }),
                    stencil_ops: None,
                }),
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: self
                    .multiview
                    .then(|| std::num::NonZeroU32::new(0b11))
                    .flatten(),
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.group, &[]);
            pass.set_vertex_buffer(0, self.vertices.slice(..));
            pass.draw(0..self.count, 0..1);
        }
        gpu.queue.submit([enc.finish()]);
        gpu.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| anyhow!("waiting for the GPU: {e}"))
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the comparison; returns the report and the engine/bare ratio of medians.
pub fn run(job: Job) -> Result<(String, f64)> {
    let t = Instant::now();
    let r = scene(&job)?;
    let mut engine = Engine::new(r.scene());
    engine.step();
    let built = t.elapsed();
    let mut renderer = GpuRenderer::new(Settings {
        msaa: job.msaa,
        grid: job.grid,
        ..Settings::default()
    })?;
    renderer.sync(&engine)?;
    let aspect = job.size.0 as f32 / job.size.1 as f32;
    let mono = Eye::look_at(
        glam::Vec3::new(0.0, 6.0, 11.0),
        glam::Vec3::new(0.0, 0.0, 0.0),
        50f32.to_radians(),
        aspect,
    );
    let eyes: Vec<Eye> = if job.stereo {
        let fov = camera::Fov::symmetric(50f32.to_radians(), aspect);
        camera::stereo(&mono.pose, camera::DEFAULT_IPD, fov).to_vec()
    } else {
        vec![mono]
    };
    let bare = Bare::new(renderer.gpu(), &engine, &job, &eyes);
    // Warm up both (pipelines, first uploads).
    let first = renderer.frame(&engine, &eyes, job.size)?;
    bare.frame(renderer.gpu())?;
    let (mut e_times, mut b_times, mut gpu_times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..job.frames {
        let t0 = Instant::now();
        engine.step();
        renderer.sync(&engine)?;
        let rep = renderer.frame(&engine, &eyes, job.size)?;
        e_times.push(t0.elapsed());
        if let Some(g) = rep.gpu_time {
            gpu_times.push(g);
        }
        let t1 = Instant::now();
        bare.frame(renderer.gpu())?;
        b_times.push(t1.elapsed());
    }
    let (e, b) = (median(&mut e_times), median(&mut b_times));
    let ratio = e.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let gpu_line = if gpu_times.is_empty() {
        String::from("GPU timestamps: not offered by this adapter")
    } else {
        format!(
            "engine GPU time (timestamps), median: {:.3} ms",
            ms(median(&mut gpu_times))
        )
    };
    let report = format!(
        "render bench on {}: {} triangles in {} objects, {}x{}{}, MSAA {}x, grid {}, {} frames \
         each (scene built in {:.2} s)\n\
         engine frame (step + sync + draw + wait), median: {:.3} ms ({:.1} fps), {} draw calls\n\
         bare wgpu program (one pipeline, one draw), median: {:.3} ms ({:.1} fps)\n\
         ratio engine / bare: {ratio:.3}\n{gpu_line}",
        renderer.describe(),
        first.triangles,
        engine.render_frame().instances.len(),
        job.size.0,
        job.size.1,
        if job.stereo {
            if renderer.multiview() {
                " per eye, stereo (multiview)"
            } else {
                " per eye, stereo (one pass per eye)"
            }
        } else {
            " mono"
        },
        job.msaa,
        if job.grid { "on" } else { "off" },
        job.frames,
        built.as_secs_f64(),
        ms(e),
        1.0 / e.as_secs_f64().max(1e-9),
        first.draw_calls,
        ms(b),
        1.0 / b.as_secs_f64().max(1e-9),
    );
    Ok((report, ratio))
}
