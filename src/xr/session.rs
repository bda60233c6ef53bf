//! The OpenXR session: VR mode end to end.
//!
//! Startup asks the runtime for everything before any session file is touched, so a refusal
//! anywhere leaves nothing behind and the caller falls back to the desktop editor:
//! 1. the loader and an instance with `XR_KHR_vulkan_enable2` (OpenXR 1.0), the headset;
//! 2. the Vulkan instance and device, made *by the runtime* from create-infos that carry what
//!    wgpu needs ([`external`]), then wrapped into the renderer's wgpu device;
//! 3. the session on that device, the STAGE space (LOCAL where there is none) and the VIEW space,
//!    the action set with its suggested bindings on every profile in
//!    [`actions::PROFILES`], and one 2-layer swapchain whose images the renderer draws into.
//!
//! Only then does the session file open (or the ticket's session get joined), through the same
//! [`Live`] session the desktop editor runs on. Each frame: the runtime's events (ready → begin,
//! stopping → end, exiting or loss pending → leave), xrWaitFrame, xrBeginFrame, the controllers
//! (sync, action states, poses located in the stage space at the predicted display time), comfort
//! (turning, teleport or grab-the-world, which move the rig that places tracking space in the
//! world), the mapping onto the engine's input and editor actions, the engine's step, committing
//! what the tools made, haptic pulses, presence, and then, when the runtime wants a frame drawn,
//! the two views located, drawn into the acquired swapchain image's layers and submitted in one
//! projection layer.
//!
//! A session lost mid-way (the headset unplugged, the runtime gone) loses nothing: every edit is
//! in the session file as it is made, and the caller reopens it in the desktop editor.

#![expect(
    unsafe_code,
    reason = "the Vulkan handover is raw handles passed between the runtime, ash and wgpu-hal"
)]

use std::ffi::c_char;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ash::vk;
use ash::vk::Handle as _;
use openxr as xr;
use theta_mesh::{MaterialId, PALETTE, Quat, Vec3};

use super::actions::{self, Hand, HandState, Mapper, XrAction};
use super::comfort::{self, Comfort, Locomotion, Turning};
use super::haptics::{Haptics, Signals};
use super::probe::Unavailable;
use super::ui::{Panels, Shown};
use crate::desktop::Live;
use crate::desktop::ui::Request;
use crate::engine::input::{InputFrame, InputProvider};
use crate::engine::tools::Action;
use crate::engine::{Engine, TrackedPose};
use crate::live::NetOptions;
use crate::presence::Pose;
use crate::render::external;
use crate::render::gpu::{Extras, GpuRenderer, Target};
use crate::render::{Eye, Fov, Renderer as _, Settings};

/// What to open, and how.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The session file (as the desktop editor's).
    pub file: Option<PathBuf>,
    /// Join this ticket's session instead.
    pub join: Option<String>,
    /// Network settings.
    pub net: NetOptions,
    /// Print `state <commands> <hash>` lines on standard output whenever the state changes,
    /// and `message <text>` for every message the user is shown.
    pub report: bool,
    /// Benchmark: after this many frames, ask the runtime to end the session and print the
    /// per-frame CPU figures.
    pub bench: Option<u64>,
    /// The left hand points and runs the tools.
    pub left_handed: bool,
    /// Turning, moving and the vignette.
    pub comfort: comfort::Settings,
}

/// How a VR run ended.
#[derive(Debug)]
pub enum Ended {
    /// The session ended (the runtime stopped it, or the user quit from the headset).
    Closed,
    /// No VR here: why, in one line. Nothing was opened or written.
    Unavailable(String),
    /// The headset session was lost or failed after the session file was opened: the file to
    /// reopen (every edit is in it) and why.
    Lost {
        /// The session file.
        file: PathBuf,
        /// What happened, in one line.
        why: String,
    },
}

/// Runs VR mode until the session ends. Errors are the session file's or the network's (the
/// desktop editor would fail on them too); everything the runtime refuses is an [`Ended`].
pub fn run(opts: Options) -> Result<Ended> {
    let mut headset = match Headset::open(&super::probe::loader_path()) {
        Ok(h) => h,
        Err(why) => return Ok(Ended::Unavailable(why)),
    };
    let rt = crate::desktop::runtime()?;
    let dir = crate::identity::data_dir()?;
    let desktop_opts = crate::desktop::Options {
        file: opts.file.clone(),
        join: opts.join.clone(),
        net: opts.net.clone(),
        ..Default::default()
    };
    let mut live = crate::desktop::start_session(&rt, &desktop_opts, &dir)?;
    let mut frames = Frames::new(&opts);
    let outcome = headset.run(&mut live, &rt, &mut frames, opts.comfort);
    let file = live.file.clone();
    // The GPU and the runtime let go of the swapchain before the session closes.
    drop(headset);
    if let Some(b) = &frames.bench {
        println!("{}", b.summary());
    }
    live.close(&rt)?;
    Ok(match outcome {
        Ok(()) => Ended::Closed,
        Err(why) => Ended::Lost {
            file,
            why: one_line(&format!("{why:#}")),
        },
    })
}

/// An OpenXR result as people and search engines know it: its name, then what it means.
fn code(r: xr::sys::Result) -> String {
    format!("XR_{r:?} ({r})")
}

/// A message on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An OpenXR pose as Theta's.
fn pose(p: xr::Posef) -> Pose {
    Pose {
        position: Vec3::new(p.position.x, p.position.y, p.position.z),
        orientation: Quat {
            x: p.orientation.x,
            y: p.orientation.y,
            z: p.orientation.z,
            w: p.orientation.w,
        }
        .normalized()
        .unwrap_or(Quat::IDENTITY),
    }
}

/// An OpenXR field of view as the renderer's.
fn fov(f: xr::Fovf) -> Fov {
    Fov {
        left: f.angle_left,
        right: f.angle_right,
        up: f.angle_up,
        down: f.angle_down,
    }
}

/// A located space's pose, if the runtime knows both where and which way it is.
fn located(l: xr::SpaceLocation) -> Option<Pose> {
    let need = xr::SpaceLocationFlags::POSITION_VALID | xr::SpaceLocationFlags::ORIENTATION_VALID;
    l.location_flags.contains(need).then(|| pose(l.pose))
}

/// The engine's input this frame, as the headset gave it.
struct Sampled(InputFrame);

impl InputProvider for Sampled {
    fn name(&self) -> &'static str {
        "openxr"
    }
    fn sample(&mut self, _t: Duration) -> InputFrame {
        self.0
    }
}

/// The action set and its actions, with a pose space for each hand's aim and grip.
struct Controls {
    // Spaces first: they are destroyed before the actions they follow.
    aim_spaces: [xr::Space; 2],
    grip_spaces: [xr::Space; 2],
    aim: xr::Action<xr::Posef>,
    grip: xr::Action<xr::Posef>,
    trigger: xr::Action<f32>,
    squeeze: xr::Action<f32>,
    stick: xr::Action<xr::Vector2f>,
    primary: xr::Action<bool>,
    secondary: xr::Action<bool>,
    menu: xr::Action<bool>,
    haptic: xr::Action<xr::Haptic>,
    set: xr::ActionSet,
    hands: [xr::Path; 2],
}

impl Controls {
    /// Creates the actions, suggests the bindings, makes the pose spaces and attaches the set.
    fn new(instance: &xr::Instance, session: &xr::Session<xr::Vulkan>) -> Result<Controls, String> {
        let e = |what: &str| {
            let what = what.to_owned();
            move |r: xr::sys::Result| format!("{what}: {}", code(r))
        };
        let set = instance
            .create_action_set("theta", "Theta", 0)
            .map_err(e("xrCreateActionSet"))?;
        let hands = [
            instance
                .string_to_path(Hand::Left.path())
                .map_err(e("xrStringToPath"))?,
            instance
                .string_to_path(Hand::Right.path())
                .map_err(e("xrStringToPath"))?,
        ];
        fn make<T: xr::ActionTy>(
            set: &xr::ActionSet,
            a: XrAction,
            hands: &[xr::Path; 2],
        ) -> Result<xr::Action<T>, String> {
            set.create_action::<T>(a.name(), a.localized(), hands)
                .map_err(|r| format!("xrCreateAction {}: {}", a.name(), code(r)))
        }
        let aim = make::<xr::Posef>(&set, XrAction::Aim, &hands)?;
        let grip = make::<xr::Posef>(&set, XrAction::Grip, &hands)?;
        let trigger = make::<f32>(&set, XrAction::Trigger, &hands)?;
        let squeeze = make::<f32>(&set, XrAction::Squeeze, &hands)?;
        let stick = make::<xr::Vector2f>(&set, XrAction::Stick, &hands)?;
        let primary = make::<bool>(&set, XrAction::Primary, &hands)?;
        let secondary = make::<bool>(&set, XrAction::Secondary, &hands)?;
        let menu = make::<bool>(&set, XrAction::Menu, &hands)?;
        let haptic = make::<xr::Haptic>(&set, XrAction::Haptic, &hands)?;
        let all = actions::bindings();
        let mut suggested = 0;
        for profile in actions::PROFILES {
            let mut list = Vec::new();
            for b in all.iter().filter(|b| b.profile == profile) {
                let path = instance
                    .string_to_path(&b.path)
                    .map_err(e("xrStringToPath"))?;
                list.push(match b.action {
                    XrAction::Aim => xr::Binding::new(&aim, path),
                    XrAction::Grip => xr::Binding::new(&grip, path),
                    XrAction::Trigger => xr::Binding::new(&trigger, path),
                    XrAction::Squeeze => xr::Binding::new(&squeeze, path),
                    XrAction::Stick => xr::Binding::new(&stick, path),
                    XrAction::Primary => xr::Binding::new(&primary, path),
                    XrAction::Secondary => xr::Binding::new(&secondary, path),
                    XrAction::Menu => xr::Binding::new(&menu, path),
                    XrAction::Haptic => xr::Binding::new(&haptic, path),
                });
            }
            let p = instance
                .string_to_path(profile)
                .map_err(e("xrStringToPath"))?;
            // A runtime that does not know a profile refuses its bindings; the others stand.
            match instance.suggest_interaction_profile_bindings(p, &list) {
                Ok(()) => suggested += 1,
                Err(r) => tracing::warn!("the runtime refused the bindings for {profile}: {r}"),
            }
        }
        if suggested == 0 {
            return Err("the runtime accepted no controller bindings".into());
        }
        let space = |a: &xr::Action<xr::Posef>, h: xr::Path| {
            a.create_space(session, h, xr::Posef::IDENTITY)
                .map_err(e("xrCreateActionSpace"))
        };
        let aim_spaces = [space(&aim, hands[0])?, space(&aim, hands[1])?];
        let grip_spaces = [space(&grip, hands[0])?, space(&grip, hands[1])?];
        session
            .attach_action_sets(&[&set])
            .map_err(e("xrAttachSessionActionSets"))?;
        Ok(Controls {
            aim_spaces,
            grip_spaces,
            aim,
            grip,
            trigger,
            squeeze,
            stick,
            primary,
            secondary,
            menu,
            haptic,
            set,
            hands,
        })
    }

    /// Both hands this frame (after xrSyncActions), poses in `base` at `time`.
    fn read(
        &self,
        session: &xr::Session<xr::Vulkan>,
        base: &xr::Space,
        time: xr::Time,
    ) -> xr::Result<[HandState; 2]> {
        let mut out = [HandState::default(); 2];
        for (i, h) in out.iter_mut().enumerate() {
            let path = self.hands[i];
            let locate = |active: bool, space: &xr::Space| -> xr::Result<Option<Pose>> {
                Ok(if active {
                    located(space.locate(base, time)?)
                } else {
                    None
                })
            };
            h.aim = locate(self.aim.is_active(session, path)?, &self.aim_spaces[i])?;
            h.grip = locate(self.grip.is_active(session, path)?, &self.grip_spaces[i])?;
            let f = |a: &xr::Action<f32>| -> xr::Result<f32> {
                let s = a.state(session, path)?;
                Ok(if s.is_active {
                    s.current_state.clamp(0.0, 1.0)
                } else {
                    0.0
                })
            };
            h.trigger = f(&self.trigger)?;
            h.squeeze = f(&self.squeeze)?;
            let s = self.stick.state(session, path)?;
            if s.is_active {
                let v = s.current_state;
                h.stick = [v.x.clamp(-1.0, 1.0), v.y.clamp(-1.0, 1.0)];
            }
            let b = |a: &xr::Action<bool>| -> xr::Result<bool> {
                let s = a.state(session, path)?;
                Ok(s.is_active && s.current_state)
            };
            h.primary = b(&self.primary)?;
            h.secondary = b(&self.secondary)?;
            h.menu = b(&self.menu)?;
        }
        Ok(out)
    }
}

/// Frame counting, the report lines and the benchmark's figures.
struct Frames {
    report: bool,
    reported: Option<(usize, [u8; 32])>,
    bench: Option<Bench>,
    dominant: Hand,
    frames: u64,
}

impl Frames {
    fn new(opts: &Options) -> Frames {
        Frames {
            report: opts.report,
            reported: None,
            bench: opts.bench.map(|frames| Bench {
                frames,
                ..Bench::default()
            }),
            dominant: if opts.left_handed {
                Hand::Left
            } else {
                Hand::Right
            },
            frames: 0,
        }
    }

    /// A message for the user, on the terminal (the headset's panels do not show messages).
    fn message(&self, m: &str) {
        if self.report {
            println!("message {m}");
        } else {
            eprintln!("theta: {m}");
        }
    }

    /// After a frame: the state line when the state changed.
    fn after(&mut self, live: &Live) {
        self.frames += 1;
        if !self.report {
            return;
        }
        let now = live
            .node
            .with_session(|s| (s.replica().folded(), s.replica().scene().state_hash()));
        if self.reported != Some(now) {
            self.reported = Some(now);
            let h: String = now.1.iter().map(|b| format!("{b:02x}")).collect();
            println!("state {} {h}", now.0);
        }
    }
}

/// The benchmark's per-frame CPU times: everything but waiting (for xrWaitFrame, and for the
/// GPU to finish the previous frame before its swapchain image is reused).
#[derive(Default)]
struct Bench {
    frames: u64,
    /// The first frames are dropped (shader compilation, first uploads).
    cpu: Vec<Duration>,
    /// Of which the render submission (sync, encoding, submit, end frame).
    render: Vec<Duration>,
    waited: Vec<Duration>,
    seen: u64,
    triangles: usize,
}

impl Bench {
    const WARMUP: u64 = 10;

    fn record(&mut self, cpu: Duration, render: Duration, waited: Duration) {
        self.seen += 1;
        if self.seen > Self::WARMUP {
            self.cpu.push(cpu);
            self.render.push(render);
            self.waited.push(waited);
        }
    }

    fn summary(&self) -> String {
        let q = |v: &[Duration], p: f64| -> f64 {
            let mut s: Vec<Duration> = v.to_vec();
            s.sort();
            if s.is_empty() {
                return 0.0;
            }
            let i = ((s.len() as f64 - 1.0) * p).round() as usize;
            s[i].as_secs_f64() * 1e3
        };
        let tris = self.triangles;
        format!(
            "vr frames {} triangles {tris} cpu_ms p50 {:.3} p99 {:.3} max {:.3} render_ms p50 {:.3} \
             p99 {:.3} wait_ms p50 {:.3}",
            self.cpu.len(),
            q(&self.cpu, 0.5),
            q(&self.cpu, 0.99),
            q(&self.cpu, 1.0),
            q(&self.render, 0.5),
            q(&self.render, 0.99),
            q(&self.waited, 0.5),
        )
    }
}

/// The headset: the runtime's instance and session, and the renderer on the runtime's device.
/// Fields drop in declaration order: what uses the device goes before the renderer that owns
/// it, and the session before the instance.
struct Headset {
    /// The panels in the world (egui on the renderer's device).
    panels: Panels,
    target: Option<Target>,
    textures: Vec<wgpu::Texture>,
    swapchain: xr::Swapchain<xr::Vulkan>,
    /// Both hands' trackers, where the runtime tracks bare hands.
    trackers: Option<[xr::HandTracker; 2]>,
    controls: Controls,
    view: xr::Space,
    stage: xr::Space,
    stream: xr::FrameStream<xr::Vulkan>,
    waiter: xr::FrameWaiter,
    session: xr::Session<xr::Vulkan>,
    renderer: GpuRenderer,
    instance: xr::Instance,
    size: (u32, u32),
    blend: xr::EnvironmentBlendMode,
    /// The last frame's GPU work, waited for before its successor is drawn.
    in_flight: Option<wgpu::SubmissionIndex>,
    /// The play area, where the runtime knows it (tracking space).
    bounds: Option<comfort::Bounds>,
}

impl Drop for Headset {
    fn drop(&mut self) {
        // Nothing of the GPU's may still use the swapchain's images when they go.
        let _ = self.renderer.wait();
    }
}

impl Headset {
    /// Everything from the loader to the swapchain; on failure, why, in one line.
    fn open(loader: &Path) -> Result<Headset, String> {
        // SAFETY: the library is an OpenXR loader by name; openxr checks for the entry points.
        let entry = match unsafe { xr::Entry::load_from(loader, &()) } {
            Ok(e) => e,
            Err(xr::EntryError::Load(e)) => {
                return Err(Unavailable::NoLoader {
                    path: loader.to_path_buf(),
                    why: one_line(&e.to_string()),
                }
                .to_string());
            }
            Err(xr::EntryError::Xr(r)) => {
                return Err(Unavailable::NoRuntime(r.to_string()).to_string());
            }
        };
        let instance = super::probe::theta_instance(&entry).map_err(|u| u.to_string())?;
        let runtime = instance
            .properties()
            .map(|p| format!("{} {}", p.runtime_name, p.runtime_version))
            .unwrap_or_else(|_| "the OpenXR runtime".into());
        let system = match instance.system(xr::FormFactor::HEAD_MOUNTED_DISPLAY) {
            Ok(s) => s,
            Err(xr::sys::Result::ERROR_FORM_FACTOR_UNAVAILABLE) => {
                return Err(Unavailable::NoHeadset(runtime).to_string());
            }
            Err(r) => return Err(format!("{runtime}: xrGetSystem: {}", code(r))),
        };
        let refused =
            |what: &str, r: &xr::sys::Result| format!("{runtime} refused {what}: {}", code(*r));
        let reqs = instance
            .graphics_requirements::<xr::Vulkan>(system)
            .map_err(|r| refused("the Vulkan requirements", &r))?;
        let (gpu, raw) =
            vulkan(&instance, system, reqs).map_err(|e| format!("{runtime}: {e:#}"))?;
        // Four samples on a GPU; one on a software rasteriser, where four cost twice the frame.
        let msaa = if gpu.software { 1 } else { 4 };
        let renderer = GpuRenderer::with_device(
            gpu,
            Settings {
                msaa,
                ..Settings::default()
            },
        )
        .map_err(|e| format!("the renderer on {runtime}'s device: {e:#}"))?;
        // SAFETY: the handles are the ones the runtime made for this system, alive for as long
        // as the renderer, which outlives the session (field order in `Headset`).
        let (session, waiter, stream) = unsafe {
            instance.create_session::<xr::Vulkan>(
                system,
                &xr::vulkan::SessionCreateInfo {
                    instance: raw.instance,
                    physical_device: raw.physical,
                    device: raw.device,
                    queue_family_index: raw.family,
                    queue_index: 0,
                },
            )
        }
        .map_err(|r| refused("the session", &r))?;
        let spaces = session
            .enumerate_reference_spaces()
            .map_err(|r| refused("the reference spaces", &r))?;
        let has_stage = spaces.contains(&xr::ReferenceSpaceType::STAGE);
        let base = if has_stage {
            xr::ReferenceSpaceType::STAGE
        } else {
            xr::ReferenceSpaceType::LOCAL
        };
        let stage = session
            .create_reference_space(base, xr::Posef::IDENTITY)
            .map_err(|r| refused("the stage space", &r))?;
        let view = session
            .create_reference_space(xr::ReferenceSpaceType::VIEW, xr::Posef::IDENTITY)
            .map_err(|r| refused("the view space", &r))?;
        let controls = Controls::new(&instance, &session).map_err(|e| format!("{runtime}: {e}"))?;
        let trackers = if instance.exts().ext_hand_tracking.is_some()
            && instance.supports_hand_tracking(system).unwrap_or(false)
        {
            match (
                session.create_hand_tracker(xr::Hand::LEFT),
                session.create_hand_tracker(xr::Hand::RIGHT),
            ) {
                (Ok(l), Ok(r)) => Some([l, r]),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!("no hand tracking: xrCreateHandTrackerEXT: {}", code(e));
                    None
                }
            }
        } else {
            None
        };
        let views = instance
            .enumerate_view_configuration_views(system, xr::ViewConfigurationType::PRIMARY_STEREO)
            .map_err(|r| refused("stereo views", &r))?;
        let v = views
            .first()
            .ok_or_else(|| format!("{runtime} has no stereo views"))?;
        let size = (
            v.recommended_image_rect_width.max(1),
            v.recommended_image_rect_height.max(1),
        );
        let blends = instance
            .enumerate_environment_blend_modes(system, xr::ViewConfigurationType::PRIMARY_STEREO)
            .map_err(|r| refused("blend modes", &r))?;
        let blend = if blends.contains(&xr::EnvironmentBlendMode::OPAQUE) {
            xr::EnvironmentBlendMode::OPAQUE
        } else {
            *blends
                .first()
                .ok_or_else(|| format!("{runtime} has no blend modes"))?
        };
        let format = vk::Format::R8G8B8A8_SRGB.as_raw() as u32;
        let formats = session
            .enumerate_swapchain_formats()
            .map_err(|r| refused("swapchain formats", &r))?;
        if !formats.contains(&format) {
            return Err(format!(
                "{runtime} offers no R8G8B8A8_SRGB swapchain (formats {formats:?})"
            ));
        }
        let swapchain = session
            .create_swapchain(&xr::SwapchainCreateInfo {
                create_flags: xr::SwapchainCreateFlags::EMPTY,
                usage_flags: xr::SwapchainUsageFlags::COLOR_ATTACHMENT
                    | xr::SwapchainUsageFlags::TRANSFER_SRC
                    | xr::SwapchainUsageFlags::TRANSFER_DST,
                format,
                sample_count: 1,
                width: size.0,
                height: size.1,
                face_count: 1,
                array_size: 2,
                mip_count: 1,
            })
            .map_err(|r| refused("the swapchain", &r))?;
        let images = swapchain
            .enumerate_images()
            .map_err(|r| refused("the swapchain's images", &r))?;
        let mut textures = Vec::with_capacity(images.len());
        for img in images {
            // SAFETY: the runtime made the image on the renderer's device with this format,
            // size, two layers and these usages; it stays valid until the swapchain is
            // destroyed, which happens after the textures go (field order), and the runtime
            // frees it, so wgpu's release does nothing.
            let t = unsafe {
                external::wrap_image(
                    renderer.gpu(),
                    vk::Image::from_raw(img),
                    size,
                    2,
                    Box::new(|| {}),
                )
            }
            .map_err(|e| format!("{e:#}"))?;
            textures.push(t);
        }
        let first = textures
            .first()
            .cloned()
            .ok_or_else(|| format!("{runtime} made a swapchain without images"))?;
        let target = Target::around(renderer.gpu(), first, size, 2, msaa);
        tracing::info!(
            "VR: {runtime}, {} × {} per eye, {} swapchain images, {msaa}× MSAA, {}",
            size.0,
            size.1,
            textures.len(),
            renderer.gpu().description
        );
        // The play area: a rectangle about the stage's origin, where the runtime has one.
        let bounds = if has_stage {
            match session.reference_space_bounds_rect(xr::ReferenceSpaceType::STAGE) {
                Ok(Some(e)) if e.width > 0.0 && e.height > 0.0 => Some(comfort::Bounds {
                    half_x: e.width * 0.5,
                    half_z: e.height * 0.5,
                }),
                Ok(_) => None,
                Err(r) => {
                    tracing::warn!("xrGetReferenceSpaceBoundsRect: {}", code(r));
                    None
                }
            }
        } else {
            None
        };
        let panels = Panels::new(&renderer.gpu().device);
        Ok(Headset {
            panels,
            bounds,
            target: Some(target),
            textures,
            swapchain,
            trackers,
            controls,
            view,
            stage,
            stream,
            waiter,
            session,
            renderer,
            instance,
            size,
            blend,
            in_flight: None,
        })
    }

    /// The frame loop, until the session ends (`Ok`) or is lost or fails (`Err`, why).
    fn run(
        &mut self,
        live: &mut Live,
        rt: &tokio::runtime::Runtime,
        f: &mut Frames,
        comfort: comfort::Settings,
    ) -> Result<()> {
        let dominant = f.dominant;
        let mut mapper = Mapper::new(dominant);
        let mut comfort = Comfort::new(comfort);
        let mut haptics = Haptics::default();
        let mut running = false;
        let mut exit_requested = false;
        let mut clock = Instant::now();
        let mut buf = xr::EventDataBuffer::new();
        let mut last_held: Option<(crate::presence::Tool, MaterialId)> = None;
        loop {
            while let Some(event) = self
                .instance
                .poll_event(&mut buf)
                .map_err(|r| anyhow!("xrPollEvent: {}", code(r)))?
            {
                match event {
                    xr::Event::SessionStateChanged(e) => match e.state() {
                        xr::SessionState::READY => {
                            self.session
                                .begin(xr::ViewConfigurationType::PRIMARY_STEREO)
                                .map_err(|r| anyhow!("xrBeginSession: {}", code(r)))?;
                            running = true;
                        }
                        xr::SessionState::STOPPING => {
                            self.session
                                .end()
                                .map_err(|r| anyhow!("xrEndSession: {}", code(r)))?;
                            running = false;
                        }
                        xr::SessionState::EXITING => return Ok(()),
                        xr::SessionState::LOSS_PENDING => {
                            return Err(anyhow!("the headset session was lost"));
                        }
                        _ => {}
                    },
                    xr::Event::InstanceLossPending(_) => {
                        return Err(anyhow!("the OpenXR runtime is going away"));
                    }
                    _ => {}
                }
            }
            if !running {
                // Idle (not yet ready, or stopped and about to exit): the runtime's next event
                // is what moves things on.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let waited_from = Instant::now();
            let state = self
                .waiter
                .wait()
                .map_err(|r| anyhow!("xrWaitFrame: {}", code(r)))?;
            let t0 = Instant::now();
            let wait_frame = t0 - waited_from;
            let mut gpu_wait = Duration::ZERO;
            let dt = t0.duration_since(clock).as_secs_f32().min(0.1);
            clock = t0;
            self.stream
                .begin()
                .map_err(|r| anyhow!("xrBeginFrame: {}", code(r)))?;
            let time = state.predicted_display_time;
            // The session and the peers, into the engine.
            let (msgs, _) = live.pump();
            for m in msgs {
                f.message(&m);
            }
            // The controllers and the head.
            self.session
                .sync_actions(&[xr::ActiveActionSet::new(&self.controls.set)])
                .map_err(|r| anyhow!("xrSyncActions: {}", code(r)))?;
            let mut hands = self
                .controls
                .read(&self.session, &self.stage, time)
                .map_err(|r| anyhow!("reading the controllers: {}", code(r)))?;
            // A hand without its controller, where the runtime tracks it, is one.
            let mut bare = [false; 2];
            if let Some(trackers) = &self.trackers {
                for ((h, tracker), bare) in hands.iter_mut().zip(trackers).zip(&mut bare) {
                    if h.aim.is_some() {
                        continue;
                    }
                    let joints = self
                        .stage
                        .locate_hand_joints(tracker, time)
                        .map_err(|r| anyhow!("xrLocateHandJointsEXT: {}", code(r)))?;
                    if let Some(joints) = joints {
                        let poses = joints.map(|j| {
                            located(xr::SpaceLocation {
                                location_flags: j.location_flags,
                                pose: j.pose,
                            })
                        });
                        if let Some(by_hand) = super::hands::from_joints(&poses) {
                            *h = by_hand;
                            *bare = true;
                        }
                    }
                }
            }
            let head = located(
                self.view
                    .locate(&self.stage, time)
                    .map_err(|r| anyhow!("xrLocateSpace: {}", code(r)))?,
            );
            // Comfort moves the rig (tracking space in the world) before anything is placed.
            let dom = hands[dominant.index()];
            let off = hands[dominant.other().index()];
            // A bare hand has no stick to teleport with: its fist grabs the world whatever the
            // mode.
            let grab_world = (comfort.settings.locomotion == Locomotion::GrabWorld
                || bare[dominant.other().index()])
                && off.squeeze > 0.5;
            let moved = comfort.update(&comfort::Input {
                dt,
                stick: dom.stick,
                head: head.map(|h| h.position).unwrap_or(Vec3::ZERO),
                aim: dom
                    .aim
                    .map(|p| (p.position, p.orientation.rotate(Vec3::new(0.0, 0.0, -1.0)))),
                world_grip: off.grip.filter(|_| grab_world).map(|g| g.position),
            });
            let rig = comfort.rig;
            // The panels: placed on the off hand and the desk, and pointed at. While the
            // pointer is on them the tools see neither the trigger nor the ray.
            let ray = dom.aim.map(|p| actions::aim_ray(rig.place(p)));
            let (on_panel, ray_end) = self.panels.point(
                head.map(|h| rig.place(h)),
                off.grip.or(off.aim).map(|g| rig.place(g)),
                dominant == Hand::Right,
                ray.as_ref(),
                dom.trigger,
            );
            let mut for_tools = hands;
            if on_panel {
                let h = &mut for_tools[dominant.index()];
                h.trigger = 0.0;
                h.aim = None;
            }
            let (controls, req) = mapper.map(for_tools, |p| rig.place(p));
            if req.toggle_panels {
                self.panels.toggle_desk(head.map(|h| rig.place(h)));
            }
            let requests = self.panel_requests(live)?;
            // The palette's turn buttons: a snap turn about the head.
            let turn = std::mem::take(&mut self.panels.turn);
            if turn != 0 {
                let step = match comfort.settings.turning {
                    Turning::Snap(a) => a,
                    Turning::Smooth(_) => 30f32.to_radians(),
                };
                let at = head.map(|h| h.position).unwrap_or(Vec3::ZERO);
                comfort.rig.turn_about(at, step * turn as f32);
                let side = if turn > 0 { "left" } else { "right" };
                f.message(&format!("turned {side}"));
            }
            let engine = &mut live.engine;
            if req.tool_step != 0 {
                let t = actions::step_tool(engine.editor().tool, req.tool_step);
                engine.act(Action::SetTool(t));
            }
            if req.colour_step != 0 {
                let n = PALETTE.len() as i32;
                let cur = engine.editor().material.0 as i32;
                let next = (cur + req.colour_step).rem_euclid(n);
                engine.act(Action::SetMaterial(MaterialId(next as u32)));
            }
            for a in req.actions {
                engine.act(a);
            }
            for r in requests {
                match r {
                    Request::Act(a) => engine.act(a),
                    other => f.message(&format!("not in the headset yet: {other:?}")),
                }
            }
            // What the user now holds, said when it changes.
            let holding = (engine.editor().tool, engine.editor().material);
            if last_held.is_some_and(|h| h.0 != holding.0) {
                f.message(&format!("tool: {:?}", holding.0));
            }
            if last_held.is_some_and(|h| h.1 != holding.1) {
                f.message(&format!(
                    "colour: {}",
                    theta_mesh::palette_entry(holding.1).name
                ));
            }
            last_held = Some(holding);
            let place = |p: Option<Pose>| p.map(|p| rig.place(p));
            engine.set_input(Sampled(InputFrame {
                pose: TrackedPose {
                    head: place(head),
                    left_hand: place(hands[0].grip.or(hands[0].aim)),
                    right_hand: place(hands[1].grip.or(hands[1].aim)),
                },
                controls,
            }));
            engine.step();
            let signals = Signals::of(engine.editor());
            let notices: Vec<String> = std::mem::take(&mut engine.editor_mut().notices);
            for n in notices {
                f.message(&n);
            }
            if let Some(m) = live.commit(rt) {
                f.message(&m);
            }
            let snap = matches!(comfort.settings.turning, Turning::Snap(_));
            for p in haptics.update(signals, moved.turned != 0.0 && snap, dt, dominant) {
                let v = xr::HapticVibration::new()
                    .amplitude(p.amplitude)
                    .duration(xr::Duration::from_nanos((p.seconds * 1e9) as i64))
                    .frequency(xr::FREQUENCY_UNSPECIFIED);
                self.controls
                    .haptic
                    .apply_feedback(&self.session, self.controls.hands[p.hand.index()], &v)
                    .map_err(|r| anyhow!("xrApplyHapticFeedback: {}", code(r)))?;
            }
            live.send_presence();
            // What the headset adds to the world: the panels, the pointer, the teleport arc,
            // the play area's bounds when near them, and the vignette while moving.
            let mut extras = Extras {
                vignette: moved.vignette,
                ..Extras::default()
            };
            (extras.panel_texture, extras.panels) = self.panels.quads();
            if let Some(r) = &ray {
                let end = ray_end.unwrap_or(r.origin + r.direction * POINTER_LENGTH);
                let colour = if on_panel { 0xffff_ffe0 } else { 0xffff_ff70 };
                extras.lines.push(([r.origin, end], colour));
            }
            if let Some((_, arc)) = &moved.arc {
                for w in arc.windows(2) {
                    extras.lines.push(([w[0], w[1]], 0x5bc0_ebe0));
                }
            }
            if let (Some(b), Some(h)) = (&self.bounds, head) {
                let seen = b.visibility(h.position, comfort.settings.bounds_warning);
                if seen > 0.0 {
                    extras.lines.extend(bounds_lines(b, &rig, seen));
                }
            }
            self.renderer.set_extras(extras);
            // The picture.
            let mut triangles = 0;
            let t_render = Instant::now();
            if state.should_render {
                let (w, tris) = self.draw(&live.engine, &rig, time)?;
                gpu_wait = w;
                triangles = tris;
            } else {
                self.stream
                    .end(time, self.blend, &[])
                    .map_err(|r| anyhow!("xrEndFrame: {}", code(r)))?;
            }
            if let Some(b) = &mut f.bench {
                b.triangles = b.triangles.max(triangles);
                b.record(
                    t0.elapsed().saturating_sub(gpu_wait),
                    t_render.elapsed().saturating_sub(gpu_wait),
                    wait_frame + gpu_wait,
                );
                if b.seen >= b.frames && !exit_requested {
                    exit_requested = true;
                    self.session
                        .request_exit()
                        .map_err(|r| anyhow!("xrRequestExitSession: {}", code(r)))?;
                }
            }
            f.after(live);
        }
    }

    /// Draws both eyes into the next swapchain image and submits it as the frame's projection
    /// layer. Returns the time spent waiting for the GPU, and the triangles drawn.
    fn draw(
        &mut self,
        engine: &Engine,
        rig: &comfort::Rig,
        time: xr::Time,
    ) -> Result<(Duration, usize)> {
        let (_, views) = self
            .session
            .locate_views(xr::ViewConfigurationType::PRIMARY_STEREO, time, &self.stage)
            .map_err(|r| anyhow!("xrLocateViews: {}", code(r)))?;
        if views.len() != 2 {
            return Err(anyhow!("the runtime located {} views, not 2", views.len()));
        }
        let eyes: Vec<Eye> = views
            .iter()
            .map(|v| Eye {
                pose: rig.place(pose(v.pose)),
                fov: fov(v.fov),
                near: 0.05,
            })
            .collect();
        // One frame in flight: the previous one is done before its successor is drawn, so the
        // CPU never runs ahead of the GPU (the runtime's xrWaitFrame paces the rest).
        let w0 = Instant::now();
        if let Some(i) = self.in_flight.take() {
            self.renderer
                .gpu()
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(i),
                    timeout: None,
                })
                .map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        }
        let mut waited = w0.elapsed();
        let i = self
            .swapchain
            .acquire_image()
            .map_err(|r| anyhow!("xrAcquireSwapchainImage: {}", code(r)))? as usize;
        let w1 = Instant::now();
        self.swapchain
            .wait_image(xr::Duration::INFINITE)
            .map_err(|r| anyhow!("xrWaitSwapchainImage: {}", code(r)))?;
        waited += w1.elapsed();
        let texture = self.textures.get(i).cloned().ok_or_else(|| {
            anyhow!(
                "the runtime gave swapchain image {i} of {}",
                self.textures.len()
            )
        })?;
        let mut target = self.target.take().context("the eye target")?;
        target.color = texture.clone();
        let drawn = self
            .renderer
            .sync(engine)
            .and_then(|()| self.renderer.draw(engine, &eyes, &target));
        self.target = Some(target);
        let (_, triangles) = drawn?;
        // The runtime takes the image back in COLOR_ATTACHMENT_OPTIMAL.
        let gpu = self.renderer.gpu();
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("swapchain handback"),
            });
        enc.transition_resources(
            std::iter::empty(),
            std::iter::once(wgpu::TextureTransition {
                texture: &texture,
                selector: None,
                state: wgpu::TextureUses::COLOR_TARGET,
            }),
        );
        self.in_flight = Some(gpu.queue.submit([enc.finish()]));
        gpu.check()?;
        self.swapchain
            .release_image()
            .map_err(|r| anyhow!("xrReleaseSwapchainImage: {}", code(r)))?;
        let rect = xr::Rect2Di {
            offset: xr::Offset2Di { x: 0, y: 0 },
            extent: xr::Extent2Di {
                width: self.size.0 as i32,
                height: self.size.1 as i32,
            },
        };
        let projected: Vec<xr::CompositionLayerProjectionView<'_, xr::Vulkan>> = views
            .iter()
            .enumerate()
            .map(|(eye, v)| {
                xr::CompositionLayerProjectionView::new()
                    .pose(v.pose)
                    .fov(v.fov)
                    .sub_image(
                        xr::SwapchainSubImage::new()
                            .swapchain(&self.swapchain)
                            .image_array_index(eye as u32)
                            .image_rect(rect),
                    )
            })
            .collect();
        let layer = xr::CompositionLayerProjection::new()
            .space(&self.stage)
            .views(&projected);
        self.stream
            .end(time, self.blend, &[&layer])
            .map_err(|r| anyhow!("xrEndFrame: {}", code(r)))?;
        Ok((waited, triangles))
    }
}

/// How far the pointer's ray is drawn when it meets no panel, metres.
const POINTER_LENGTH: f32 = 2.0;

/// The play area's edges as a fence (world frame): on each side a lattice of lines 10 cm
/// apart up to 2.2 m, so some of it is in view however close the head comes, more opaque the
/// nearer (`seen`).
fn bounds_lines(b: &comfort::Bounds, rig: &comfort::Rig, seen: f32) -> Vec<([Vec3; 2], u32)> {
    const STEP: f32 = 0.1;
    const HEIGHT: f32 = 2.2;
    let alpha = ((seen * 1.5).clamp(0.0, 1.0) * 255.0) as u32;
    let colour = 0x40c0_ff00 | alpha;
    let corners = [
        (-b.half_x, -b.half_z),
        (b.half_x, -b.half_z),
        (b.half_x, b.half_z),
        (-b.half_x, b.half_z),
    ];
    let at = |(x, z): (f32, f32), y: f32| rig.to_world(Vec3::new(x, y, z));
    let mut out = Vec::new();
    for (i, &c) in corners.iter().enumerate() {
        let next = corners[(i + 1) % 4];
        let rows = (HEIGHT / STEP).round() as usize;
        for k in 0..=rows {
            let y = k as f32 * STEP;
            out.push(([at(c, y), at(next, y)], colour));
        }
        let length = ((next.0 - c.0).powi(2) + (next.1 - c.1).powi(2)).sqrt();
        let posts = (length / STEP).ceil().max(1.0) as usize;
        for k in 0..posts {
            let t = k as f32 / posts as f32;
            let p = (c.0 + (next.0 - c.0) * t, c.1 + (next.1 - c.1) * t);
            out.push(([at(p, 0.0), at(p, HEIGHT)], colour));
        }
    }
    out
}

impl Headset {
    /// The panels' turn: egui runs when the pointer did something or what they show changed,
    /// and what it drew goes to the GPU before the frame that shows it. Returns what the user
    /// asked for.
    fn panel_requests(&mut self, live: &mut Live) -> Result<Vec<Request>> {
        let commands = live
            .node
            .with_session(|s| (s.replica().log().len(), s.replica().rejections().len()));
        let shown = Shown::of(live.engine.editor(), commands);
        if !self.panels.due(&shown) {
            return Ok(Vec::new());
        }
        let model = crate::desktop::model(live, &self.panels.state, None, &[], false);
        let gpu = self.renderer.gpu();
        let (requests, cmds) = self.panels.run(&gpu.device, &gpu.queue, &model, shown);
        if !cmds.is_empty() {
            gpu.queue.submit(cmds);
        }
        Ok(requests)
    }
}

/// The raw Vulkan handles the runtime made, for its session.
struct RawHandles {
    instance: xr::sys::platform::VkInstance,
    physical: xr::sys::platform::VkPhysicalDevice,
    device: xr::sys::platform::VkDevice,
    family: u32,
}

/// The Vulkan instance and device, made by the runtime (XR_KHR_vulkan_enable2) with what wgpu
/// needs, wrapped into a [`crate::render::gpu::Gpu`].
fn vulkan(
    instance: &xr::Instance,
    system: xr::SystemId,
    reqs: xr::vulkan::Requirements,
) -> Result<(crate::render::gpu::Gpu, RawHandles)> {
    // SAFETY: loads the system's Vulkan loader.
    let entry = unsafe { ash::Entry::load() }.context("no Vulkan loader (libvulkan1)")?;
    // SAFETY: a query of the loader.
    let loader = unsafe { entry.try_enumerate_instance_version() }
        .ok()
        .flatten()
        .unwrap_or(vk::API_VERSION_1_0);
    // As wgpu asks: the loader's version up to 1.3, within what the runtime allows.
    let api = loader.min(vk::API_VERSION_1_3);
    let (min, max) = (
        reqs.min_api_version_supported,
        reqs.max_api_version_supported,
    );
    let api_xr = xr::Version::new(
        vk::api_version_major(api) as u16,
        vk::api_version_minor(api) as u16,
        0,
    );
    if api_xr < xr::Version::new(min.major(), min.minor(), 0) {
        return Err(anyhow!(
            "the runtime needs Vulkan {}.{}, the loader has {}.{}",
            min.major(),
            min.minor(),
            vk::api_version_major(api),
            vk::api_version_minor(api)
        ));
    }
    let _ = max;
    let exts = external::instance_extensions(&entry, api)?;
    let names: Vec<*const c_char> = exts.iter().map(|c| c.as_ptr()).collect();
    let app = vk::ApplicationInfo::default()
        .application_name(c"Theta")
        .engine_name(c"Theta")
        .api_version(api);
    let ci = vk::InstanceCreateInfo::default()
        .application_info(&app)
        .enabled_extension_names(&names);
    let gipa = entry.static_fn().get_instance_proc_addr;
    // SAFETY: the create-info and what it points to outlive the call; the function pointer is
    // the loader's vkGetInstanceProcAddr, which the runtime calls to create the instance.
    let raw = unsafe {
        instance.create_vulkan_instance(
            system,
            std::mem::transmute::<
                vk::PFN_vkGetInstanceProcAddr,
                xr::sys::platform::VkGetInstanceProcAddr,
            >(gipa),
            &ci as *const vk::InstanceCreateInfo<'_> as *const _,
        )
    }
    .map_err(|r| anyhow!("xrCreateVulkanInstanceKHR: {}", code(r)))?
    .map_err(|r| anyhow!("xrCreateVulkanInstanceKHR: vkCreateInstance failed ({r})"))?;
    let vk_instance = vk::Instance::from_raw(raw as u64);
    // SAFETY: a live instance made from this entry.
    let ash_instance = unsafe { ash::Instance::load(entry.static_fn(), vk_instance) };
    // SAFETY: the instance came from xrCreateVulkanInstanceKHR for this system.
    let physical = unsafe { instance.vulkan_graphics_device(system, raw) }
        .map_err(|r| anyhow!("xrGetVulkanGraphicsDevice2KHR: {}", code(r)));
    let physical = match physical {
        Ok(p) => vk::PhysicalDevice::from_raw(p as u64),
        Err(e) => {
            // SAFETY: nothing else holds the instance yet.
            unsafe { ash_instance.destroy_instance(None) };
            return Err(e);
        }
    };
    // SAFETY: made just above from `entry` with `api` and exactly `exts`; wgpu-hal takes it over
    // (and destroys it).
    let hal_instance = unsafe { external::wrap_instance(entry, ash_instance.clone(), api, exts) }?;
    let mut req = external::device_requirements(&hal_instance, physical)?;
    // SAFETY: `physical` belongs to this instance.
    let families = unsafe { ash_instance.get_physical_device_queue_family_properties(physical) };
    let family = families
        .iter()
        .position(|f| f.queue_flags.contains(vk::QueueFlags::GRAPHICS))
        .context("the runtime's GPU has no graphics queue")? as u32;
    let raw_device = {
        let prio = [1.0f32];
        let queues = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(family)
            .queue_priorities(&prio)];
        let ext_names: Vec<*const c_char> = req.extensions.iter().map(|c| c.as_ptr()).collect();
        let dci = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queues)
            .enabled_extension_names(&ext_names);
        let dci = req.add_to(dci);
        // SAFETY: the create-info and everything it points to live until the call returns.
        unsafe {
            instance.create_vulkan_device(
                system,
                std::mem::transmute::<
                    vk::PFN_vkGetInstanceProcAddr,
                    xr::sys::platform::VkGetInstanceProcAddr,
                >(gipa),
                physical.as_raw() as _,
                &dci as *const vk::DeviceCreateInfo<'_> as *const _,
            )
        }
        .map_err(|r| anyhow!("xrCreateVulkanDeviceKHR: {}", code(r)))?
        .map_err(|r| anyhow!("xrCreateVulkanDeviceKHR: vkCreateDevice failed ({r})"))?
    };
    // SAFETY: a live device made on `physical` of this instance.
    let device = unsafe {
        ash::Device::load(
            ash_instance.fp_v1_0(),
            vk::Device::from_raw(raw_device as u64),
        )
    };
    let handles = RawHandles {
        instance: raw,
        physical: physical.as_raw() as _,
        device: raw_device,
        family,
    };
    // SAFETY: the device was made on `physical` with the required extensions and features, with
    // queue 0 of `family`; the renderer takes it over.
    let gpu = unsafe { external::wrap_device(hal_instance, req, device, family, 0) }?;
    Ok((gpu, handles))
}
