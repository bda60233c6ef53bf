//! `theta render <file> <out.png>`: a session's scene as an image, without a window.

use std::path::Path;

use anyhow::{Context, Result, bail};
use glam::Vec3;

use super::camera::{self, Eye};
use super::gpu::GpuRenderer;
use super::{Image, Renderer, Settings};
use crate::engine::Engine;

/// Where the camera is: looking from `eye` at `target`, or framing the whole scene.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CameraSpec {
    /// Frame every object from above and in front.
    Frame,
    /// From a point towards a point.
    LookAt {
        /// Camera position.
        eye: Vec3,
        /// What it looks at.
        target: Vec3,
    },
}

/// Parses `--camera x,y,z:tx,ty,tz`.
pub fn parse_camera(s: &str) -> Result<CameraSpec> {
    let v = |p: &str| -> Result<Vec3> {
        let c: Vec<f32> = p
            .split(',')
            .map(|x| x.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{p:?} is not x,y,z"))?;
        if c.len() != 3 || c.iter().any(|x| !x.is_finite()) {
            bail!("{p:?} is not x,y,z");
        }
        Ok(Vec3::new(c[0], c[1], c[2]))
    };
    let (a, b) = s
        .split_once(':')
        .with_context(|| format!("--camera {s:?}: expected x,y,z:tx,ty,tz"))?;
    Ok(CameraSpec::LookAt {
        eye: v(a)?,
        target: v(b)?,
    })
}

/// Parses `--size WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("--size {s:?}: expected WxH"))?;
    let (w, h): (u32, u32) = (
        w.parse()
            .with_context(|| format!("--size {s:?}: bad width"))?,
        h.parse()
            .with_context(|| format!("--size {s:?}: bad height"))?,
    );
    if w == 0 || h == 0 || w > 8192 || h > 8192 {
        bail!("--size {s:?}: each side must be 1 to 8192 pixels");
    }
    Ok((w, h))
}

/// The world bounds of the scene's objects (a unit box around the origin when empty).
pub fn scene_bounds(scene: &theta_crdt::scene::Scene) -> (Vec3, Vec3) {
    let (mut lo, mut hi) = (Vec3::splat(f32::INFINITY), Vec3::splat(f32::NEG_INFINITY));
    for (_, o) in scene.objects() {
        let b = o.mesh().bounds();
        if b.is_empty() {
            continue;
        }
        for i in 0..8 {
            let c = theta_mesh::Vec3::new(
                if i & 1 != 0 { b.max.x } else { b.min.x },
                if i & 2 != 0 { b.max.y } else { b.min.y },
                if i & 4 != 0 { b.max.z } else { b.min.z },
            );
            let w = crate::engine::tools::to_world(&o.transform, c);
            let w = Vec3::new(w.x, w.y, w.z);
            lo = lo.min(w);
            hi = hi.max(w);
        }
    }
    if lo.x > hi.x {
        (Vec3::splat(-0.5), Vec3::splat(0.5))
    } else {
        (lo, hi)
    }
}

/// The eye for a camera spec over a scene, at an aspect ratio.
pub fn eye_for(spec: CameraSpec, scene: &theta_crdt::scene::Scene, aspect: f32) -> Eye {
    let fov_y = 50f32.to_radians();
    match spec {
        CameraSpec::LookAt { eye, target } => Eye::look_at(eye, target, fov_y, aspect),
        CameraSpec::Frame => {
            let (lo, hi) = scene_bounds(scene);
            let centre = (lo + hi) / 2.0;
            let radius = ((hi - lo).length() / 2.0).max(0.25);
            let fov = fov_y.min(fov_y * aspect);
            let dist = radius / (fov / 2.0).sin() * 1.05;
            let dir = Vec3::new(0.55, 0.5, 1.0).normalize();
            Eye::look_at(centre + dir * dist, centre, fov_y, aspect)
        }
    }
}

/// Places both eyes of a head at `mono`'s pose with headset-like fields of view.
pub fn stereo_from(mono: &Eye) -> [Eye; 2] {
    camera::stereo(&mono.pose, camera::DEFAULT_IPD, camera::HEADSET_FOV)
}

/// Two images side by side (left | right).
pub fn side_by_side(l: &Image, r: &Image) -> Image {
    let w = l.width + r.width;
    let h = l.height.max(r.height);
    let mut rgba = vec![0u8; (w * h * 4) as usize];
    for (img, x0) in [(l, 0), (r, l.width)] {
        for y in 0..img.height {
            let src = &img.rgba[(y * img.width * 4) as usize..((y + 1) * img.width * 4) as usize];
            let at = ((y * w + x0) * 4) as usize;
            rgba[at..at + src.len()].copy_from_slice(src);
        }
    }
    Image {
        width: w,
        height: h,
        rgba,
    }
}

/// Options of `theta render`.
#[derive(Clone, Copy, Debug)]
pub struct RenderJob {
    /// Image size per eye.
    pub size: (u32, u32),
    /// Both eyes, side by side.
    pub stereo: bool,
    /// Camera.
    pub camera: CameraSpec,
    /// Settings.
    pub settings: Settings,
}

/// Renders a session file to a PNG.
pub fn render_file(file: &Path, out: &Path, job: RenderJob) -> Result<()> {
    let opened = {
        let _p = crate::progress::spinner(format!("opening {}", file.display()));
        crate::store::SessionFile::open_session(file)?
    };
    let scene = opened.opened.replica.scene();
    let mut engine = Engine::new(scene);
    engine.step();
    let mut r = GpuRenderer::new(job.settings).context(
        "`theta render` needs a GPU or a software renderer (lavapipe: mesa-vulkan-drivers)",
    )?;
    r.sync(&engine)?;
    let aspect = job.size.0 as f32 / job.size.1 as f32;
    let mono = eye_for(job.camera, scene, aspect);
    let (image, eyes) = if job.stereo {
        let eyes = stereo_from(&mono);
        let (imgs, _) = r.render(&engine, &eyes, job.size)?;
        (side_by_side(&imgs[0], &imgs[1]), 2)
    } else {
        let (mut imgs, _) = r.render(&engine, &[mono], job.size)?;
        (imgs.remove(0), 1)
    };
    image.save_png(out)?;
    println!(
        "wrote {}: {}x{}{}, {} objects, {} triangles, on {}",
        out.display(),
        job.size.0,
        job.size.1,
        if eyes == 2 {
            " per eye, stereo side by side"
        } else {
            ""
        },
        scene.object_count(),
        engine.render_frame().triangles,
        r.describe()
    );
    Ok(())
}
