//! The renderer on a real GPU device: lavapipe (Vulkan on the CPU) here and in CI, and the GL
//! path through the command line. Images are compared with reference PNGs in `tests/golden/`:
//! at most 0.5% of pixels may differ by more than 8/255 in any channel. A failing comparison
//! writes the rendered image and a difference image next to the test binary's temporary
//! directory and names them. `THETA_UPDATE_GOLDEN=1` rewrites the references instead.
#![cfg(feature = "render")]

use std::path::{Path, PathBuf};
use std::process::Command;

use theta::engine::{Action, Engine, SelectOp};
use theta::presence::{ElementRef, Pose, Presence, Ray};
use theta::render::camera::{self, Eye};
use theta::render::gpu::GpuRenderer;
use theta::render::{Image, Renderer, Settings, Stereo, compare};
use theta_crdt::command::{ObjectTransform, Op};
use theta_crdt::ids::{DerivedIds, ObjectId};
use theta_crdt::workload::author_key;
use theta_mesh::{MaterialId, Primitive, Quat, Vec3};

/// Most pixels allowed to differ, and by how much.
const MAX_DIFFERING: f64 = 0.005;
const THRESHOLD: u8 = 8;

mod common;
use common::Doc;

/// Adds an object to the document and the engine.
fn add(doc: &mut Doc, engine: &mut Engine, name: &str, p: Primitive, m: u32, at: Vec3) -> ObjectId {
    let (id, ev) = doc.edit(Op::CreateObject {
        name: name.into(),
        primitive: p,
        material: MaterialId(m),
        transform: ObjectTransform {
            translation: at,
            ..ObjectTransform::IDENTITY
        },
    });
    engine.apply(doc.replica.scene(), &ev);
    DerivedIds::new(&id).object()
}

/// The reference scene: palette colours, glass, gem, a rotated object, an object a peer has
/// selected (in their colour, with its wireframe), one I hover, and the peer's head, hands and
/// pointer ray, over the ground grid.
fn scene() -> (Doc, Engine, ObjectId, ObjectId) {
    let mut doc = Doc::new();
    let mut engine = Engine::new(doc.replica.scene());
    let red = add(
        &mut doc,
        &mut engine,
        "tower",
        Primitive::Cuboid {
            size: Vec3::new(0.8, 1.6, 0.8),
        },
        2,
        Vec3::new(0.0, 0.8, 0.0),
    );
    add(
        &mut doc,
        &mut engine,
        "glass",
        Primitive::Icosphere {
            radius: 0.5,
            level: 1,
        },
        MaterialId::GLASS.0,
        Vec3::new(1.3, 0.5, 0.3),
    );
    add(
        &mut doc,
        &mut engine,
        "gem",
        Primitive::Icosahedron { radius: 0.4 },
        MaterialId::GEM.0,
        Vec3::new(-1.2, 0.4, 0.5),
    );
    let cyl = add(
        &mut doc,
        &mut engine,
        "drum",
        Primitive::Cylinder {
            radius: 0.35,
            height: 0.5,
            segments: 10,
        },
        9,
        Vec3::new(0.4, 0.25, 1.3),
    );
    let (_, ev) = doc.edit(Op::SetObjectTransform {
        object: cyl,
        transform: ObjectTransform {
            translation: Vec3::new(0.4, 0.3, 1.3),
            rotation: Quat::from_axis_angle(Vec3::new(1.0, 0.0, 0.0), 0.5).unwrap(),
            scale: Vec3::ONE,
        },
    });
    engine.apply(doc.replica.scene(), &ev);
    engine.set_peers(&[(
        [9; 32],
        Presence {
            head: Some(Pose::at(Vec3::new(-1.6, 1.5, -1.2))),
            right_hand: Some(Pose::at(Vec3::new(-1.3, 1.1, -0.9))),
            pointer: Some(Ray {
                origin: Vec3::new(-1.3, 1.1, -0.9),
                direction: Vec3::new(0.5, -0.2, 0.6).normalized().unwrap(),
            }),
            selected: vec![ElementRef::Object(cyl)],
            name: "bo".into(),
            colour: 0x2299ffff,
            ..Presence::default()
        },
    )]);
    engine.act(Action::Select(ElementRef::Object(red), SelectOp::Replace));
    engine.step();
    (doc, engine, red, cyl)
}

fn eye(size: (u32, u32)) -> Eye {
    Eye::look_at(
        glam::Vec3::new(2.6, 2.4, 4.2),
        glam::Vec3::new(0.0, 0.6, 0.3),
        50f32.to_radians(),
        size.0 as f32 / size.1 as f32,
    )
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares with the reference, or writes it when asked to.
fn check(image: &Image, name: &str) {
    let path = golden(name);
    if std::env::var_os("THETA_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image.save_png(&path).unwrap();
        return;
    }
    let want = Image::load_png(&path)
        .unwrap_or_else(|e| panic!("{e:#} (THETA_UPDATE_GOLDEN=1 writes the reference)"));
    let diff = compare(image, &want, THRESHOLD).expect("the reference has another size");
    if diff.fraction() > MAX_DIFFERING {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let got = dir.join(format!("got-{name}"));
        let d = dir.join(format!("diff-{name}"));
        image.save_png(&got).unwrap();
        diff.image.save_png(&d).unwrap();
        panic!(
            "{name}: {} of {} pixels ({:.2}%) differ by more than {THRESHOLD}/255 (largest {}); \
             rendered {}, difference {}",
            diff.differing,
            diff.pixels,
            diff.fraction() * 100.0,
            diff.max,
            got.display(),
            d.display()
        );
    }
}

fn renderer() -> GpuRenderer {
    GpuRenderer::new(Settings::default()).expect("a GPU adapter (lavapipe: mesa-vulkan-drivers)")
}

/// A renderer that draws stereo pairs in one multiview pass even on lavapipe (the default
/// there is one pass per eye), so the multiview path is what is tested.
fn multiview_renderer() -> GpuRenderer {
    let r = GpuRenderer::new(Settings {
        stereo: Stereo::Multiview,
        ..Settings::default()
    })
    .expect("a GPU adapter (lavapipe: mesa-vulkan-drivers)");
    assert!(r.multiview(), "lavapipe has multiview");
    r
}

#[test]
fn the_reference_scene_matches_its_golden_image() {
    let (_doc, engine, _, _) = scene();
    let mut r = renderer();
    r.sync(&engine).unwrap();
    let size = (320, 240);
    let (images, report) = r.render(&engine, &[eye(size)], size).unwrap();
    assert_eq!(report.instances, 4);
    check(&images[0], "scene.png");
    // Background at a corner, something drawn in the middle.
    let bg = images[0].pixel(2, 2);
    assert!(bg[2] > 150, "{bg:?}");
    assert_ne!(images[0].pixel(160, 110), bg);
}

#[test]
fn the_grab_tools_gizmo_is_drawn_on_the_selection_in_the_axes_colours() {
    use theta::engine::input::Desktop;
    use theta::engine::tools::{Axis, GrabMode};
    let (_doc, mut engine, _, _) = scene();
    let size = (320, 240);
    let e = eye(size);
    let mut r = renderer();
    let mut shot = |engine: &mut Engine| {
        // The pointer in a corner, off the gizmo: it only says where the eye is.
        engine.set_input(Desktop {
            camera: e.pose,
            fov_y: 50f32.to_radians(),
            viewport: (size.0 as f32, size.1 as f32),
            mouse: Some((2.0, 2.0)),
            ..Desktop::default()
        });
        engine.step();
        r.sync(engine).unwrap();
        r.render(engine, &[e], size).unwrap().0.remove(0)
    };
    let plain = shot(&mut engine);
    assert_eq!(
        engine.editor().gizmo,
        None,
        "the select tool shows no gizmo"
    );
    engine.act(Action::SetTool(theta::presence::Tool::Grab));
    let with = shot(&mut engine);
    let g = engine
        .editor()
        .gizmo
        .expect("the grab tool's gizmo on the selected tower");
    assert_eq!(g.mode, GrabMode::Move);
    assert_eq!(engine.render_frame().gizmo, Some(g));
    let project = |p: Vec3| {
        let c = e.view_projection() * glam::Vec4::new(p.x, p.y, p.z, 1.0);
        let (x, y) = (c.x / c.w, c.y / c.w);
        (
            ((x + 1.0) * 0.5 * size.0 as f32) as i32,
            ((1.0 - y) * 0.5 * size.1 as f32) as i32,
        )
    };
    // Each arrow's cone, near its tip, is drawn in its axis' colour.
    for (axis, want) in [(Axis::X, 0usize), (Axis::Y, 1), (Axis::Z, 2)] {
        let (cx, cy) = project(g.pivot + axis.unit() * (g.size * 0.93));
        let mut found = false;
        for y in cy - 2..=cy + 2 {
            for x in cx - 2..=cx + 2 {
                let px = with.pixel(x as u32, y as u32);
                let lead = px[want] as i32;
                let others = (0..3)
                    .filter(|&k| k != want)
                    .map(|k| px[k] as i32)
                    .max()
                    .unwrap();
                found |= lead > 150 && lead - others > 60 && px != plain.pixel(x as u32, y as u32);
            }
        }
        assert!(found, "no {axis:?}-coloured cone near ({cx}, {cy})");
    }
}

#[test]
fn stereo_eyes_differ_as_their_poses_say() {
    let (_doc, engine, _, _) = scene();
    let mut r = multiview_renderer();
    r.sync(&engine).unwrap();
    let size = (240, 240);
    let head = eye(size);
    let eyes = camera::stereo(&head.pose, camera::DEFAULT_IPD, camera::HEADSET_FOV);
    let (images, _) = r.render(&engine, &eyes, size).unwrap();
    assert_eq!(images.len(), 2);
    check(&images[0], "stereo-left.png");
    check(&images[1], "stereo-right.png");
    // The tower (tinted orange by my selection; nearer than infinity) sits further right in the
    // left eye: parallax.
    let centroid = |img: &Image| {
        let (mut sx, mut n) = (0f64, 0f64);
        for y in 0..img.height {
            for x in 0..img.width {
                let [r, g, b, _] = img.pixel(x, y);
                if r > 150 && i32::from(r) - i32::from(b) > 50 && g > b {
                    sx += x as f64;
                    n += 1.0;
                }
            }
        }
        assert!(n > 100.0, "the tower is visible");
        sx / n
    };
    let (l, rgt) = (centroid(&images[0]), centroid(&images[1]));
    assert!(
        l > rgt + 1.0,
        "left-eye x {l:.1} should exceed right-eye x {rgt:.1}"
    );
    // And the two eyes' fields of view are mirror images, so the images are not simply shifted.
    assert_ne!(images[0], images[1]);
    // One pass per eye (the path without multiview) draws the same two images.
    let mut two = GpuRenderer::new(Settings {
        stereo: Stereo::PerEye,
        ..Settings::default()
    })
    .unwrap();
    two.sync(&engine).unwrap();
    let (again, _) = two.render(&engine, &eyes, size).unwrap();
    for (a, b) in images.iter().zip(&again) {
        let d = compare(a, b, THRESHOLD).unwrap();
        assert!(
            d.fraction() <= MAX_DIFFERING,
            "multiview and two passes differ: {:.2}%",
            d.fraction() * 100.0
        );
    }
}

#[test]
fn only_what_changed_is_uploaded_and_many_objects_take_one_draw() {
    let mut doc = Doc::new();
    let mut engine = Engine::new(doc.replica.scene());
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(add(
            &mut doc,
            &mut engine,
            &format!("b{i}"),
            Primitive::Cuboid { size: Vec3::ONE },
            (i % 24) as u32,
            Vec3::new((i % 10) as f32 * 1.5, 0.5, (i / 10) as f32 * -1.5),
        ));
    }
    engine.step();
    let mut r = renderer();
    r.sync(&engine).unwrap();
    let size = (160, 120);
    let (_, first) = r.render(&engine, &[eye(size)], size).unwrap();
    assert_eq!((first.uploads, first.instance_writes), (60, 60));
    assert_eq!(first.triangles, 60 * 12);
    // One draw for every opaque object, plus the grid.
    assert_eq!(first.draw_calls, 2, "{first:?}");
    // A move rewrites one instance record and uploads no mesh.
    let (_, ev) = doc.edit(Op::MoveObject {
        object: ids[3],
        delta: Vec3::new(0.0, 1.0, 0.0),
    });
    engine.apply(doc.replica.scene(), &ev);
    engine.step();
    r.sync(&engine).unwrap();
    let (_, moved) = r.render(&engine, &[eye(size)], size).unwrap();
    assert_eq!((moved.uploads, moved.instance_writes), (0, 1), "{moved:?}");
    // A paint uploads that one mesh.
    let (_, ev) = doc.edit(Op::PaintObject {
        object: ids[4],
        material: MaterialId(7),
    });
    engine.apply(doc.replica.scene(), &ev);
    engine.step();
    r.sync(&engine).unwrap();
    let (_, painted) = r.render(&engine, &[eye(size)], size).unwrap();
    assert_eq!(
        (painted.uploads, painted.instance_writes),
        (1, 1),
        "{painted:?}"
    );
    // A delete frees it: one object fewer drawn, nothing uploaded.
    let (_, ev) = doc.edit(Op::DeleteObject { object: ids[5] });
    engine.apply(doc.replica.scene(), &ev);
    engine.step();
    r.sync(&engine).unwrap();
    let (_, deleted) = r.render(&engine, &[eye(size)], size).unwrap();
    assert_eq!(deleted.instances, 59);
    assert_eq!(deleted.uploads, 0);
    // Nothing changed: nothing sent.
    engine.step();
    r.sync(&engine).unwrap();
    let (_, idle) = r.render(&engine, &[eye(size)], size).unwrap();
    assert_eq!((idle.uploads, idle.instance_writes), (0, 0));
    // The null renderer keeps the same books.
    let mut null = theta::render::NullRenderer::new(Settings::default());
    null.sync(&engine).unwrap();
    let (_, n) = null.render(&engine, &[eye(size)], size).unwrap();
    assert_eq!((n.instances, n.triangles, n.uploads), (59, 59 * 12, 59));
}

fn theta_bin(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_theta"));
    c.args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_RUNTIME_DIR", dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn theta_render_writes_pngs_on_vulkan_and_on_gl_alike_and_fails_cleanly_without_a_gpu() {
    let dir = tempfile::tempdir().unwrap();
    // The example model's edits, by a fixed author (the element ids, and so which ring a loop
    // cut takes, follow the command hashes).
    let script = dir.path().join("model.txt");
    let session = dir.path().join("model.theta");
    std::fs::write(
        &script,
        format!(
            "new {} demo\ncube body\nextrude body +y 1\nloopcut body y 1\nsubdivide body\n\
             paint body red\nmirror body x 2\ncube lid 0.6\nmove lid 2 1.6 0\npaint lid glass\n",
            session.display()
        ),
    )
    .unwrap();
    theta::script::run(&script, author_key(0)).unwrap();
    let args = ["render", "model.theta", "vk.png", "--size", "256x160"];
    let o = theta_bin(&args, dir.path(), &[("WGPU_BACKEND", "vulkan")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("(Vulkan, Cpu)"), "{}", text(&o));
    let vk = Image::load_png(&dir.path().join("vk.png")).unwrap();
    assert_eq!((vk.width, vk.height), (256, 160));
    check(&vk, "model.png");
    // The GL path draws the same picture.
    let o = theta_bin(
        &["render", "model.theta", "gl.png", "--size", "256x160"],
        dir.path(),
        &[("WGPU_BACKEND", "gl")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("(Gl, "), "{}", text(&o));
    let gl = Image::load_png(&dir.path().join("gl.png")).unwrap();
    let d = compare(&vk, &gl, THRESHOLD).unwrap();
    assert!(
        d.fraction() <= MAX_DIFFERING,
        "GL and Vulkan differ in {:.2}% of pixels",
        d.fraction() * 100.0
    );
    // Stereo: both eyes side by side.
    let o = theta_bin(
        &[
            "render",
            "model.theta",
            "st.png",
            "--size",
            "128x128",
            "--stereo",
        ],
        dir.path(),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let st = Image::load_png(&dir.path().join("st.png")).unwrap();
    assert_eq!((st.width, st.height), (256, 128));
    // No driver: a clear error, a failing exit, and no file.
    let o = theta_bin(
        &["render", "model.theta", "none.png"],
        dir.path(),
        &[
            ("WGPU_BACKEND", "vulkan"),
            ("VK_ICD_FILENAMES", "/nonexistent.json"),
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("needs a GPU"), "{}", text(&o));
    assert!(!dir.path().join("none.png").exists());
    // Bad arguments.
    for (args, says) in [
        (
            vec!["render", "model.theta", "x.png", "--size", "0x10"],
            "1 to 8192",
        ),
        (
            vec!["render", "model.theta", "x.png", "--camera", "1,2:3"],
            "x,y,z",
        ),
        (vec!["render", "nope.theta", "x.png"], "not a session file"),
        (
            vec!["render", "model.theta", "x.png", "--msaa", "3"],
            "MSAA",
        ),
    ] {
        let o = theta_bin(&args, dir.path(), &[]);
        assert!(!o.status.success(), "{args:?}");
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(!dir.path().join("x.png").exists());
    }
}

#[test]
#[expect(
    unsafe_code,
    reason = "the test plays the part of an OpenXR runtime: it makes raw Vulkan handles itself"
)]
fn a_vulkan_device_and_image_made_outside_wgpu_draw_the_reference_images() {
    use ash::vk;
    use std::ffi::c_char;
    use theta::render::external;
    // SAFETY: loads the system's Vulkan loader; nothing else runs while it does.
    let entry = unsafe { ash::Entry::load() }.expect("the Vulkan loader (libvulkan1)");
    // As wgpu itself asks: the loader's version, up to 1.3 (its device code uses core 1.2
    // functions when the version allows them).
    // SAFETY: a query of the loader.
    let loader = unsafe { entry.try_enumerate_instance_version() }
        .ok()
        .flatten()
        .unwrap_or(vk::API_VERSION_1_0);
    let api = loader.min(vk::API_VERSION_1_3);
    let exts = external::instance_extensions(&entry, api).unwrap();
    let names: Vec<*const c_char> = exts.iter().map(|c| c.as_ptr()).collect();
    let app = vk::ApplicationInfo::default().api_version(api);
    let ci = vk::InstanceCreateInfo::default()
        .application_info(&app)
        .enabled_extension_names(&names);
    // SAFETY: a plain instance create-info whose pointers outlive the call.
    let instance = unsafe { entry.create_instance(&ci, None) }.unwrap();
    // SAFETY: the instance is valid.
    let physical = unsafe { instance.enumerate_physical_devices() }.unwrap();
    let phd = physical
        .iter()
        .copied()
        .find(|&p| {
            // SAFETY: `p` came from this instance.
            let props = unsafe { instance.get_physical_device_properties(p) };
            props.device_type == vk::PhysicalDeviceType::CPU
        })
        .or(physical.first().copied())
        .expect("a Vulkan physical device (lavapipe: mesa-vulkan-drivers)");
    // SAFETY: made just above from `entry` with `api` and exactly `exts`; wgpu-hal takes it over.
    let hal_instance =
        unsafe { external::wrap_instance(entry, instance.clone(), api, exts) }.unwrap();
    let mut req = external::device_requirements(&hal_instance, phd).unwrap();
    let device = {
        let prio = [1.0f32];
        // wgpu-hal drives the first queue family, which must do graphics.
        let queues = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(0)
            .queue_priorities(&prio)];
        let ext_names: Vec<*const c_char> = req.extensions.iter().map(|c| c.as_ptr()).collect();
        let dci = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queues)
            .enabled_extension_names(&ext_names);
        let dci = req.add_to(dci);
        // SAFETY: the create-info and everything it points to live until the call returns.
        unsafe { instance.create_device(phd, &dci, None) }.unwrap()
    };
    let dev = device.clone();
    // SAFETY: the device was made on `phd` with the required extensions and features, queue 0
    // of family 0; the renderer takes it over.
    let gpu = unsafe { external::wrap_device(hal_instance, req, device, 0, 0) }.unwrap();
    assert!(gpu.description.contains("external"), "{}", gpu.description);
    let (_doc, engine, _, _) = scene();
    let mut r = GpuRenderer::with_device(
        gpu,
        Settings {
            stereo: Stereo::Multiview,
            ..Settings::default()
        },
    )
    .unwrap();
    r.sync(&engine).unwrap();
    let size = (320, 240);
    let (images, _) = r.render(&engine, &[eye(size)], size).unwrap();
    // The same picture as through a device wgpu made itself.
    check(&images[0], "scene.png");

    // And into a 2-layer image it does not own either (a headset swapchain's, say): both eyes.
    let (w, h) = (240u32, 240u32);
    let ici = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_SRGB)
        .extent(vk::Extent3D {
            width: w,
            height: h,
            depth: 1,
        })
        .mip_levels(1)
        .array_layers(2)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::OPTIMAL)
        .usage(
            vk::ImageUsageFlags::COLOR_ATTACHMENT
                | vk::ImageUsageFlags::TRANSFER_SRC
                | vk::ImageUsageFlags::TRANSFER_DST,
        )
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED);
    // SAFETY: a plain image create-info on a live device.
    let image = unsafe { dev.create_image(&ici, None) }.unwrap();
    // SAFETY: the image was just made on this device.
    let needs = unsafe { dev.get_image_memory_requirements(image) };
    // SAFETY: `phd` belongs to this instance.
    let props = unsafe { instance.get_physical_device_memory_properties(phd) };
    let ty = (0..props.memory_type_count)
        .find(|&i| {
            needs.memory_type_bits & (1 << i) != 0
                && props.memory_types[i as usize]
                    .property_flags
                    .contains(vk::MemoryPropertyFlags::DEVICE_LOCAL)
        })
        .expect("device-local memory");
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(needs.size)
        .memory_type_index(ty);
    // SAFETY: a valid allocation request; bound once, at offset 0, to the image it was sized for.
    let memory = unsafe { dev.allocate_memory(&alloc, None) }.unwrap();
    // SAFETY: as above.
    unsafe { dev.bind_image_memory(image, memory, 0) }.unwrap();
    let owner = dev.clone();
    let release = Box::new(move || {
        // SAFETY: wgpu has let go of the image; it and its memory are this test's to free.
        unsafe {
            owner.destroy_image(image, None);
            owner.free_memory(memory, None);
        }
    });
    // SAFETY: the image matches what `wrap_image` asks for and outlives wgpu's use of it.
    let texture = unsafe { external::wrap_image(r.gpu(), image, (w, h), 2, release) }.unwrap();
    let target = theta::render::gpu::Target::around(r.gpu(), texture, (w, h), 2, 4);
    let head = eye((w, h));
    let eyes = camera::stereo(&head.pose, camera::DEFAULT_IPD, camera::HEADSET_FOV);
    r.draw(&engine, &eyes, &target).unwrap();
    let images = r.read(&target).unwrap();
    check(&images[0], "stereo-left.png");
    check(&images[1], "stereo-right.png");
    // Without multisampling (what a headset gets on a software rasteriser), one multiview pass
    // straight into the image draws what one pass per eye does.
    let single = |stereo: Stereo| {
        let mut r = GpuRenderer::with_device(
            r.gpu().clone(),
            Settings {
                msaa: 1,
                stereo,
                ..Settings::default()
            },
        )
        .unwrap();
        let target =
            theta::render::gpu::Target::around(r.gpu(), target.color.clone(), (w, h), 2, 1);
        // Frames before the scene arrives, as a headset draws them while a session opens.
        for _ in 0..3 {
            r.draw(&engine, &eyes, &target).unwrap();
        }
        r.sync(&engine).unwrap();
        r.draw(&engine, &eyes, &target).unwrap();
        r.read(&target).unwrap()
    };
    let (one, two) = (single(Stereo::Multiview), single(Stereo::PerEye));
    for (eye, (a, b)) in one.iter().zip(&two).enumerate() {
        let d = compare(a, b, THRESHOLD).unwrap();
        if d.fraction() > MAX_DIFFERING {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
            a.save_png(&dir.join(format!("mv-{eye}.png"))).unwrap();
            b.save_png(&dir.join(format!("two-{eye}.png"))).unwrap();
        }
        assert!(
            d.fraction() <= MAX_DIFFERING,
            "eye {eye}: multiview and two passes differ in {:.2}% of pixels",
            d.fraction() * 100.0
        );
    }
}

/// A texture of one colour, as the panels' texture would be.
fn flat(r: &GpuRenderer, rgba: [u8; 4]) -> wgpu::TextureView {
    let gpu = r.gpu();
    let size = wgpu::Extent3d {
        width: 8,
        height: 8,
        depth_or_array_layers: 1,
    };
    let t = gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("flat"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: theta::render::gpu::COLOR_FORMAT,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let bytes: Vec<u8> = (0..64).flat_map(|_| rgba).collect();
    gpu.queue.write_texture(
        t.as_image_copy(),
        &bytes,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(32),
            rows_per_image: Some(8),
        },
        size,
    );
    t.create_view(&Default::default())
}

#[test]
fn the_hosts_panels_lines_and_vignette_are_drawn_into_the_world() {
    use theta::render::gpu::{Extras, PanelQuad};
    let (_doc, engine, _, _) = scene();
    let size = (240, 240);
    let e = eye(size);
    let plain = {
        let mut r = renderer();
        r.sync(&engine).unwrap();
        r.render(&engine, &[e], size).unwrap().0.remove(0)
    };
    // A green panel 40 cm wide, 1 m ahead of the eye and square to it; a magenta line under
    // it; the vignette full on.
    let q = e.pose.orientation;
    let (right, up) = (
        q.rotate(Vec3::new(1.0, 0.0, 0.0)),
        q.rotate(Vec3::new(0.0, 1.0, 0.0)),
    );
    let centre = e.pose.position + q.rotate(Vec3::new(0.0, 0.0, -1.0));
    let corners = [
        centre - right * 0.2 + up * 0.2,
        centre + right * 0.2 + up * 0.2,
        centre - right * 0.2 - up * 0.2,
        centre + right * 0.2 - up * 0.2,
    ];
    let extras = |r: &GpuRenderer, vignette: f32| Extras {
        lines: vec![(
            [
                centre - up * 0.25 - right * 0.3,
                centre - up * 0.25 + right * 0.3,
            ],
            0xff00_ffff,
        )],
        panel_texture: Some(flat(r, [0, 200, 0, 255])),
        panels: vec![PanelQuad {
            corners,
            uv: [0.0, 0.0, 1.0, 1.0],
        }],
        vignette,
    };
    let mut r = multiview_renderer();
    r.sync(&engine).unwrap();
    r.set_extras(extras(&r, 1.0));
    let img = r.render(&engine, &[e], size).unwrap().0.remove(0);
    // The panel covers the middle of the view, in its texture's colour.
    let mid = img.pixel(120, 120);
    assert!(mid[1] > 150 && mid[0] < 40 && mid[2] < 40, "{mid:?}");
    // The line crosses below it (0.25 m below at 1 m: about 64 pixels down at this field of
    // view).
    let line = (160..210).any(|y| {
        let p = img.pixel(120, y).map(i32::from);
        p[0] - p[1] > 60 && p[2] - p[1] > 60
    });
    assert!(line, "no magenta line below the panel");
    // The vignette darkens the corners, not the middle.
    let lum = |p: [u8; 4]| u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2]);
    assert!(
        lum(img.pixel(2, 2)) * 2 < lum(plain.pixel(2, 2)),
        "{:?} vs {:?}",
        img.pixel(2, 2),
        plain.pixel(2, 2)
    );
    // Without the vignette the corners are as they were.
    r.set_extras(extras(&r, 0.0));
    let img = r.render(&engine, &[e], size).unwrap().0.remove(0);
    assert_eq!(img.pixel(2, 2), plain.pixel(2, 2));
    // Both eyes of a stereo pair (one multiview pass on lavapipe) show the panel.
    let eyes = camera::stereo(&e.pose, camera::DEFAULT_IPD, camera::HEADSET_FOV);
    let (both, _) = r.render(&engine, &eyes, size).unwrap();
    for (i, img) in both.iter().enumerate() {
        let n = (0..size.1)
            .flat_map(|y| (0..size.0).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = img.pixel(x, y);
                p[1] > 150 && p[0] < 40 && p[2] < 40
            })
            .count();
        assert!(n > 1200, "eye {i}: {n} panel pixels");
    }
}
