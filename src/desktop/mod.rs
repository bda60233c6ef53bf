//! The desktop editor (cargo feature `desktop`): a winit window showing the wgpu renderer's
//! view of the engine with egui panels over it, on a live session.
//!
//! Every editor is a peer: it runs a node (`src/net`) on the session file it edits, so a ticket
//! is ready from the start and others can join at any time; alone it simply has no peers. Each
//! frame the window (1) takes the fold's change events the session kept (`Session::keep_events`:
//! my edits and peers' alike) into the engine, and the peers' presences; (2) turns the mouse and
//! camera into the engine's desktop input and steps the engine, whose editor tools make
//! commands; (3) signs them through the node (durable, then broadcast); (4) sends my presence;
//! (5) runs the panels, whose requests become editor actions or window commands; (6) draws the
//! scene into the window's surface and the panels over it.
//!
//! Edits are on disk as they are made (the session file is the autosave), so a crash or a
//! killed process loses nothing: reopening the file (a bare `theta` reopens the last one)
//! recovers everything.
//!
//! With `--report`, the window prints one line on standard output whenever the session's state
//! changes, after the frame that shows it is presented: `state <commands> <state hash>` (tests
//! and scripts wait for it), `highlights <n>` whenever the number of objects drawn highlighted
//! (selected or hovered, by me or by peers) changes, `tool <wire number> material <id>` whenever
//! the tool or the material in hand changes, `typing 1` / `typing 0` when a text field takes or
//! gives up the keyboard, `camera <x> <y> <z> <yaw°> <pitch°> <following 0|1>` when the view
//! moves, `screenshot <path>` when one is saved, `message <text>` for every
//! message the window shows the user, and `ticket <ticket>` at the start.

pub mod keys;
pub mod panels;
pub mod ui;
pub mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use theta_crdt::command::Op;
use theta_crdt::ids::{AuthorId, Role};
use theta_mesh::{MaterialId, PALETTE, Vec3};
use tokio::sync::mpsc;
use winit::application::ApplicationHandler;
use winit::event::{ElementState, MouseButton, MouseScrollDelta, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::keyboard::{Key, NamedKey};
use winit::window::{Window, WindowId};

use crate::engine::Engine;
use crate::engine::input::Desktop;
use crate::engine::tools::{Action, keys as tool_keys};
use crate::live::{Launch, NetOptions};
use crate::net::{Node, NodeEvent};
use crate::presence::{Presence, Tool};
use crate::render::gpu::{Gpu, GpuRenderer, Target};
use crate::render::{Eye, Fov, Renderer, Settings};
use keys::{Command, Mods, Shortcut};
use view::{Follow, ViewCamera};

/// What to open.
#[derive(Clone, Debug)]
pub struct Options {
    /// The session file to edit (created if missing); `None` reopens the last one, or starts a
    /// new one in the data directory.
    pub file: Option<PathBuf>,
    /// Join this ticket's session instead (kept in `file`, or in the data directory).
    pub join: Option<String>,
    /// Network settings.
    pub net: NetOptions,
    /// Window size, logical pixels.
    pub size: (u32, u32),
    /// Print `ticket …` and `state …` lines on standard output.
    pub report: bool,
    /// Benchmark: draw this many frames as fast as possible, print the figures and close.
    pub bench: Option<u64>,
    /// Multisampling: 1 or 4 samples, or 0 to choose by the adapter (4 on a GPU, 1 on a
    /// software rasteriser, where four samples cost about twice the frame).
    pub msaa: u32,
    /// Draw the panels again on every frame, changed or not (the benchmark's worst case).
    pub panels_every_frame: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            file: None,
            join: None,
            net: NetOptions::default(),
            size: (1280, 720),
            report: false,
            bench: None,
            msaa: 0,
            panels_every_frame: false,
        }
    }
}

/// Why no window can open here, if that is so (checked before anything else starts).
pub fn display_problem() -> Option<String> {
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if set("DISPLAY") || set("WAYLAND_DISPLAY") {
        None
    } else {
        Some("no display (neither DISPLAY nor WAYLAND_DISPLAY is set)".into())
    }
}

/// The file a bare `theta` reopens.
fn last_session_record(dir: &Path) -> PathBuf {
    dir.join("last-session")
}

/// The session file to edit: the one asked for, else the last one edited, else a new one in the
/// data directory.
fn choose_file(opts: &Options, dir: &Path) -> Result<PathBuf> {
    if let Some(f) = &opts.file {
        return Ok(f.clone());
    }
    if let Ok(s) = std::fs::read_to_string(last_session_record(dir)) {
        let p = PathBuf::from(s.trim());
        if p.is_file() {
            return Ok(p);
        }
    }
    let d = dir.join("sessions");
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    for n in 1.. {
        let p = d.join(format!("untitled-{n}.theta"));
        if !p.exists() {
            return Ok(p);
        }
    }
    unreachable!("some name is free")
}

/// The async runtime an editor's session node runs on (the window's or the headset's).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Opens the editor window and runs it until it is closed.
pub fn run(opts: Options) -> Result<()> {
    if let Some(p) = display_problem() {
        bail!(
            "{p}: the editor needs one; the headless commands ({}) work without (see \
             `theta --help`)",
            crate::cli::HEADLESS_COMMANDS
        );
    }
    let event_loop = EventLoop::new().map_err(|e| anyhow!("opening the display: {e}"))?;
    let rt = runtime()?;
    let dir = crate::identity::data_dir()?;
    let session = start_session(&rt, &opts, &dir)?;
    let mut app = App {
        gfx: None,
        session,
        rt,
        dir,
        camera: ViewCamera::default(),
        follow: Follow::default(),
        mouse: MouseState::default(),
        ui: ui::UiState::default(),
        shortcuts: keys::table(),
        messages: Vec::new(),
        reported: None,
        reported_highlights: None,
        reported_tool: None,
        reported_typing: None,
        reported_camera: None,
        frame_clock: Instant::now(),
        bench: opts.bench.map(|frames| Bench {
            frames,
            ..Bench::default()
        }),
        opts,
        screenshot: None,
        result: Ok(()),
        fly: false,
        fly_keys: FlyKeys::default(),
    };
    if let Some((lo, hi)) = app.bounds(false) {
        app.camera.frame(lo, hi);
    }
    event_loop.set_control_flow(ControlFlow::Poll);
    event_loop
        .run_app(&mut app)
        .map_err(|e| anyhow!("the window's event loop: {e}"))?;
    let App {
        session,
        result,
        rt,
        ..
    } = app;
    let closed = session.close(&rt);
    result.and(closed)
}

/// A session open in the editor (the window's or the headset's): its node, the engine
/// projecting it, and who I am.
pub(crate) struct Live {
    pub(crate) node: Arc<Node>,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    pub(crate) engine: Engine,
    me: AuthorId,
    name: String,
    colour: u32,
    pub(crate) file: PathBuf,
    ticket: (Role, Instant, Result<String, String>),
}

impl Live {
    /// Shuts the node down (the session file holds every edit already).
    pub(crate) fn close(self, rt: &tokio::runtime::Runtime) -> Result<()> {
        let Live { node, engine, .. } = self;
        drop(engine);
        rt.block_on(async { crate::live::sole(node).await.shutdown().await })
    }
}

/// Starts the session `opts` asks for (host a file, or join a ticket) with its node.
pub(crate) fn start_session(
    rt: &tokio::runtime::Runtime,
    opts: &Options,
    dir: &Path,
) -> Result<Live> {
    let (launch, file) = match &opts.join {
        Some(ticket) => {
            let file = opts.file.clone();
            (
                Launch::Join {
                    ticket: ticket.clone(),
                    file: file.clone(),
                },
                file,
            )
        }
        None => {
            let file = choose_file(opts, dir)?;
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "untitled".into());
            (
                Launch::Host {
                    file: file.clone(),
                    name,
                },
                Some(file),
            )
        }
    };
    let (node, events, _key) = rt.block_on(crate::live::start(launch, opts.net.clone()))?;
    let node = Arc::new(node);
    {
        let _g = rt.enter();
        crate::live::spawn_link_metrics(Arc::downgrade(&node));
    }
    let me = AuthorId(*node.id().as_bytes());
    let engine = node.with_session(|s| {
        s.keep_events();
        Engine::new(s.replica().scene())
    });
    let file = match file {
        Some(f) => f,
        None => dir.join("sessions").join(format!(
            "{}.theta",
            node.with_session(|s| s.id())
                .map_or_else(String::new, |id| id.to_string())
        )),
    };
    let _ = crate::cli::write_atomic(&last_session_record(dir), file.to_string_lossy().as_bytes());
    let name = node.display_name().to_owned();
    let colour = crate::presence::colour_of(&me.0);
    let mut live = Live {
        node,
        events,
        engine,
        me,
        name,
        colour,
        file,
        ticket: (Role::Editor, Instant::now(), Err("not made yet".into())),
    };
    live.engine.set_local_colour(live.colour);
    live.engine.set_budget(Duration::from_micros(16_667));
    live.refresh_ticket(Role::Editor);
    if opts.report
        && let Ok(t) = &live.ticket.2
    {
        println!("ticket {t}");
    }
    Ok(live)
}

impl Live {
    /// Brings the engine up to date with the session and the peers: returns the messages for
    /// the user (my refused edits, peers coming and going) and the peers' presences.
    pub(crate) fn pump(&mut self) -> (Vec<String>, Vec<([u8; 32], Presence)>) {
        let s = self;
        let mut rejected = Vec::new();
        let mut names = std::collections::HashMap::new();
        let peers = s.node.peers();
        for (id, name, _) in &peers {
            names.insert(AuthorId(*id.as_bytes()), name.clone());
        }
        s.node.with_session(|x| {
            let events = x.take_events();
            if !events.is_empty() {
                s.engine.apply(x.replica().scene(), &events);
            }
            for e in &events {
                if let theta_crdt::scene::Event::Rejected(r) = e {
                    rejected.push(r.clone());
                }
            }
        });
        let mut msgs = Vec::new();
        for r in rejected {
            if r.author != s.me {
                continue;
            }
            let who = |a: &AuthorId| {
                if *a == s.me {
                    "your own".to_owned()
                } else {
                    format!("{}'s", names.get(a).cloned().unwrap_or_else(|| short(a)))
                }
            };
            msgs.push(match r.conflict {
                Some((_, a)) => format!(
                    "your {} was refused: {} (conflicted with {} edit)",
                    r.kind,
                    r.reason,
                    who(&a)
                ),
                None => format!("your {} was refused: {}", r.kind, r.reason),
            });
        }
        while let Ok(e) = s.events.try_recv() {
            msgs.push(match e {
                NodeEvent::PeerUp { name, .. } => format!("{name} joined"),
                NodeEvent::PeerDown { id, reason } => {
                    crate::telemetry::metrics().peer_gone(&id.fmt_short().to_string());
                    format!("{} left ({reason})", id.fmt_short())
                }
                NodeEvent::Refused { id, reason } => {
                    format!("refused {}: {reason}", id.fmt_short())
                }
                NodeEvent::Banned { id, reason } => {
                    format!("disconnected {}: {reason}", id.fmt_short())
                }
            });
        }
        let presences: Vec<([u8; 32], Presence)> = s
            .node
            .presence()
            .into_iter()
            .map(|(id, r)| (*id.as_bytes(), r.presence))
            .collect();
        s.engine.set_peers(&presences);
        (msgs, presences)
    }

    /// Signs what the tools made (durable, then broadcast); on failure the edits are dropped
    /// and the message says so.
    pub(crate) fn commit(&mut self, rt: &tokio::runtime::Runtime) -> Option<String> {
        // Nothing made, nothing to sign.
        self.engine.editor().pending().next()?;
        let node = self.node.clone();
        let r = self.engine.commit_edits(|op| {
            rt.block_on(node.edit(vec![op]))?
                .pop()
                .context("the edit made no command")
        });
        r.err().map(|e| {
            let dropped = self.engine.editor_mut().discard_pending();
            format!("the edit was not saved ({dropped} dropped): {e:#}")
        })
    }

    /// Sends my presence, as the engine sees me now.
    pub(crate) fn send_presence(&mut self) {
        let base = Presence {
            name: self.name.clone(),
            colour: self.colour,
            ..Presence::default()
        };
        let p = self.engine.presence(&base);
        self.node.set_presence(p);
    }

    fn refresh_ticket(&mut self, role: Role) {
        let t = self
            .node
            .ticket(role, crate::live::DEFAULT_TICKET_TTL)
            .map(|t| t.to_string_form())
            .map_err(|e| format!("{e:#}"));
        self.ticket = (role, Instant::now(), t);
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct MouseState {
    pos: Option<(f32, f32)>,
    left: bool,
    right: bool,
    middle: bool,
    mods: Mods,
    /// A camera drag in progress (orbit or pan), which the tools do not see.
    camera_drag: bool,
    /// Presses since the last frame: a click whose press and release both land between two
    /// frames still reaches the tools as one frame pressed.
    left_click: bool,
    right_click: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct FlyKeys {
    w: bool,
    a: bool,
    s: bool,
    d: bool,
    q: bool,
    e: bool,
}

#[derive(Debug, Default)]
struct Bench {
    frames: u64,
    done: u64,
    started: Option<Instant>,
    frame_ns: Vec<u64>,
    ui_ns: Vec<u64>,
    /// Per frame: waiting for the surface's next image, encoding and submitting the scene,
    /// presenting, laying out the panels (egui), drawing them and laying them over.
    stages_ns: Vec<[u64; 5]>,
}

struct Gfx {
    window: Arc<Window>,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    renderer: GpuRenderer,
    target: Option<Target>,
    egui: egui::Context,
    egui_state: egui_winit::State,
    egui_renderer: egui_wgpu::Renderer,
    /// egui textures to free once the frame that last used them is submitted.
    egui_free: Vec<egui::TextureId>,
    /// The panels, drawn only when they change and laid over every frame.
    panels: panels::PanelLayer,
}

struct App {
    gfx: Option<Gfx>,
    session: Live,
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    camera: ViewCamera,
    follow: Follow,
    mouse: MouseState,
    ui: ui::UiState,
    shortcuts: Vec<Shortcut>,
    messages: Vec<String>,
    /// The last state reported (`--report`).
    reported: Option<(usize, [u8; 32])>,
    /// The number of objects drawn highlighted (selected or hovered, by anyone) last reported.
    reported_highlights: Option<usize>,
    /// The tool (wire number) and material last reported.
    reported_tool: Option<(u8, u32)>,
    /// Whether a text field had the keyboard, last reported.
    reported_typing: Option<bool>,
    /// The camera (position, yaw, pitch, following) last reported.
    reported_camera: Option<String>,
    frame_clock: Instant,
    bench: Option<Bench>,
    opts: Options,
    screenshot: Option<PathBuf>,
    result: Result<()>,
    fly: bool,
    fly_keys: FlyKeys,
}

impl App {
    fn message(&mut self, m: impl Into<String>) {
        let m = m.into();
        tracing::info!(message = %m, "editor");
        if self.opts.report {
            println!("message {m}");
        }
        self.messages.push(m);
        if self.messages.len() > 200 {
            self.messages.remove(0);
        }
    }

    fn fail(&mut self, event_loop: &ActiveEventLoop, e: anyhow::Error) {
        if self.result.is_ok() {
            self.result = Err(e);
        }
        event_loop.exit();
    }

    fn open_window(&mut self, event_loop: &ActiveEventLoop) -> Result<()> {
        let attrs = Window::default_attributes()
            .with_title(format!("Theta — {}", self.session_title()))
            .with_inner_size(winit::dpi::LogicalSize::new(
                self.opts.size.0,
                self.opts.size.1,
            ));
        let window = Arc::new(
            event_loop
                .create_window(attrs)
                .map_err(|e| anyhow!("opening the window: {e}"))?,
        );
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let surface = instance
            .create_surface(window.clone())
            .map_err(|e| anyhow!("making the window's drawing surface: {e}"))?;
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
            &instance,
            Some(&surface),
        ))
        .map_err(|e| anyhow!("no GPU adapter can draw into the window: {e}"))?;
        let gpu = Gpu::on(adapter)?;
        if self.opts.msaa == 0 {
            self.opts.msaa = if gpu.software { 1 } else { 4 };
        }
        let caps = surface.get_capabilities(&gpu.adapter);
        let format = caps
            .formats
            .iter()
            .copied()
            .find(|f| f.is_srgb() && f.components() == 4 && !f.has_depth_aspect())
            .or_else(|| caps.formats.first().copied())
            .context("the window's surface offers no colour format")?;
        let size = window.inner_size();
        let mut usage = wgpu::TextureUsages::RENDER_ATTACHMENT;
        if caps.usages.contains(wgpu::TextureUsages::COPY_SRC) {
            usage |= wgpu::TextureUsages::COPY_SRC;
        }
        let present_mode = if self.bench.is_some() {
            wgpu::PresentMode::AutoNoVsync
        } else {
            wgpu::PresentMode::AutoVsync
        };
        let config = wgpu::SurfaceConfiguration {
            usage,
            format,
            width: size.width.max(1),
            height: size.height.max(1),
            present_mode,
            desired_maximum_frame_latency: 2,
            alpha_mode: caps
                .alpha_modes
                .first()
                .copied()
                .unwrap_or(wgpu::CompositeAlphaMode::Auto),
            view_formats: vec![],
            color_space: wgpu::SurfaceColorSpace::Auto,
        };
        surface.configure(&gpu.device, &config);
        let egui_renderer =
            egui_wgpu::Renderer::new(&gpu.device, format, egui_wgpu::RendererOptions::default());
        let panels = panels::PanelLayer::new(&gpu.device, format);
        let renderer = GpuRenderer::with_device(
            gpu,
            Settings {
                msaa: self.opts.msaa,
                ..Settings::default()
            },
        )?;
        let egui = egui::Context::default();
        let egui_state = egui_winit::State::new(
            egui.clone(),
            egui::ViewportId::ROOT,
            event_loop,
            Some(window.scale_factor() as f32),
            None,
            None,
        );
        self.message(format!("drawing with {}", renderer.describe()));
        self.gfx = Some(Gfx {
            window,
            surface,
            config,
            renderer,
            target: None,
            egui,
            egui_state,
            panels,
            egui_renderer,
            egui_free: Vec::new(),
        });
        Ok(())
    }

    fn session_title(&self) -> String {
        let s = &self.session;
        let name = s
            .node
            .with_session(|x| x.replica().scene().name().to_owned());
        format!("{name} ({})", s.file.display())
    }

    /// Brings the engine up to date with the session and the peers.
    fn pump(&mut self) {
        let (msgs, presences) = self.session.pump();
        for m in msgs {
            self.message(m);
        }
        let head_of = |k: &[u8; 32]| {
            presences
                .iter()
                .find(|(p, _)| p == k)
                .and_then(|(_, pr)| pr.head)
        };
        let before = self.follow.peer;
        self.follow.apply(&mut self.camera, head_of);
        if before.is_some() && self.follow.peer.is_none() {
            self.message("stopped following: they left or went out of view");
        }
    }

    /// Signs what the tools made.
    fn commit(&mut self) {
        if let Some(m) = self.session.commit(&self.rt) {
            self.message(m);
        }
    }

    fn viewport(&self) -> (f32, f32) {
        self.gfx
            .as_ref()
            .map(|g| (g.config.width as f32, g.config.height as f32))
            .unwrap_or((1280.0, 720.0))
    }

    fn frame(&mut self, event_loop: &ActiveEventLoop) -> Result<()> {
        let t0 = Instant::now();
        let dt = t0.duration_since(self.frame_clock).as_secs_f32().min(0.1);
        self.frame_clock = t0;
        self.pump();
        if self.fly {
            let k = self.fly_keys;
            let f = |a: bool, b: bool| f32::from(u8::from(a)) - f32::from(u8::from(b));
            let v = glam::Vec3::new(f(k.d, k.a), f(k.e, k.q), f(k.w, k.s)) * (3.0 * dt);
            if v != glam::Vec3::ZERO {
                self.camera.fly(v);
                self.follow.user_moved();
            }
        }
        if self.bench.is_some() {
            // The benchmark turns the view a little each frame, as a user orbiting would, so
            // the scene is drawn anew every time.
            self.camera.orbit(0.01, 0.0);
        }
        let (w, h) = self.viewport();
        let egui_wants_pointer = self
            .gfx
            .as_ref()
            .is_some_and(|g| g.egui.egui_wants_pointer_input() || g.egui.is_pointer_over_egui());
        // The tools see the pointer off the panels and outside camera drags, and always while
        // they hold a drag of their own.
        let tools_see = (!egui_wants_pointer && !self.mouse.camera_drag)
            || self.session.engine.editor().drag.is_some();
        let m = self.mouse;
        let mut bits = 0;
        if m.mods.shift {
            bits |= tool_keys::ADD;
        }
        if m.mods.ctrl {
            bits |= tool_keys::REMOVE;
        }
        if m.mods.alt {
            bits |= tool_keys::NO_SNAP;
        }
        let desktop = Desktop {
            camera: self.camera.pose(),
            fov_y: self.camera.fov_y,
            viewport: (w, h),
            mouse: if tools_see { m.pos } else { None },
            buttons: (
                (m.left || m.left_click) && tools_see && !m.mods.alt,
                (m.right || m.right_click) && tools_see,
            ),
            keys: bits,
        };
        self.session.engine.set_input(desktop);
        self.session.engine.step();
        self.mouse.left_click = false;
        self.mouse.right_click = false;
        self.commit();
        let notices: Vec<String> = std::mem::take(&mut self.session.engine.editor_mut().notices);
        for n in notices {
            self.message(n);
        }
        self.session.send_presence();
        // The panels.
        let model = self.model();
        let t_ui = Instant::now();
        let Some(g) = self.gfx.as_mut() else {
            return Ok(());
        };
        let raw = g.egui_state.take_egui_input(&g.window);
        let ui_state = &mut self.ui;
        let mut requests = Vec::new();
        let out = g.egui.run_ui(raw, |ui| {
            requests = ui::draw(ui, ui_state, &model);
        });
        g.egui_state.handle_platform_output_with_event_loop(
            &g.window,
            event_loop,
            out.platform_output,
        );
        // Textures are set before painting and freed after; every delta is consumed, even on a
        // frame that ends up not drawn.
        let mut deltas = out.textures_delta;
        let textures_changed = !deltas.set.is_empty();
        {
            let gpu = g.renderer.gpu();
            for (id, list) in deltas.set.drain() {
                for delta in &list {
                    g.egui_renderer
                        .update_texture(&gpu.device, &gpu.queue, id, delta);
                }
            }
        }
        g.egui_free.extend(deltas.free.drain());
        let pixels_per_point = out.pixels_per_point;
        let shapes = out.shapes;
        let layout = t_ui.elapsed();
        let mut ui_time = layout;
        for r in requests {
            self.request(event_loop, r)?;
        }
        let Some(g) = self.gfx.as_mut() else {
            return Ok(());
        };
        // The scene.
        let t_acquire = Instant::now();
        let tex = match g.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t)
            | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                g.surface.configure(&g.renderer.gpu().device, &g.config);
                return Ok(());
            }
            _ => return Ok(()),
        };
        let size = (g.config.width, g.config.height);
        let stale = g
            .target
            .as_ref()
            .is_none_or(|t| t.size != size || t.format != g.config.format);
        if stale {
            g.target = Some(Target::around(
                g.renderer.gpu(),
                tex.texture.clone(),
                size,
                1,
                self.opts.msaa,
            ));
        }
        let target = g.target.as_mut().context("target")?;
        target.color = tex.texture.clone();
        let t_scene = Instant::now();
        let acquire = t_scene - t_acquire;
        g.renderer.sync(&self.session.engine)?;
        let eye = Eye {
            pose: self.camera.pose(),
            fov: Fov::symmetric(self.camera.fov_y, w / h.max(1.0)),
            near: 0.05,
        };
        g.renderer.draw(&self.session.engine, &[eye], target)?;
        let scene = t_scene.elapsed();
        // The panels over it: drawn again only when they changed.
        let t_ui2 = Instant::now();
        let gpu = g.renderer.gpu();
        let redraw = self.opts.panels_every_frame
            || !g
                .panels
                .holds(&shapes, pixels_per_point, size, textures_changed);
        let mut cmds = Vec::new();
        if redraw {
            let prims = g.egui.tessellate(shapes.clone(), pixels_per_point);
            cmds = g.panels.draw(
                &gpu.device,
                &gpu.queue,
                &mut g.egui_renderer,
                shapes,
                &prims,
                pixels_per_point,
                size,
            );
        }
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let view = tex.texture.create_view(&Default::default());
        g.panels.composite(&mut enc, &view);
        cmds.push(enc.finish());
        gpu.queue.submit(cmds);
        for id in std::mem::take(&mut g.egui_free) {
            g.egui_renderer.free_texture(&id);
        }
        let panels_drawn = t_ui2.elapsed();
        ui_time += panels_drawn;
        if let Some(path) = self.screenshot.take() {
            let r = g
                .renderer
                .read(target)
                .and_then(|imgs| imgs.first().context("no image")?.save_png(&path));
            match r {
                Ok(()) => {
                    if self.opts.report {
                        println!("screenshot {}", path.display());
                    }
                    self.messages
                        .push(format!("screenshot saved to {}", path.display()));
                }
                Err(e) => self.messages.push(format!("no screenshot: {e:#}")),
            }
        }
        let t_present = Instant::now();
        g.window.pre_present_notify();
        g.renderer.gpu().queue.present(tex);
        let present = t_present.elapsed();
        g.renderer.gpu().check()?;
        let stages = [acquire, scene, present, layout, panels_drawn];
        self.after_present(t0.elapsed(), ui_time, stages, event_loop);
        Ok(())
    }

    /// `stages`: see [`Bench::stages_ns`].
    fn after_present(
        &mut self,
        frame: Duration,
        ui: Duration,
        stages: [Duration; 5],
        event_loop: &ActiveEventLoop,
    ) {
        if self.opts.report {
            let (len, hash) = self
                .session
                .node
                .with_session(|s| (s.replica().folded(), s.replica().scene().state_hash()));
            if self.reported != Some((len, hash)) {
                self.reported = Some((len, hash));
                let h: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                println!("state {len} {h}");
            }
            let lit = self
                .session
                .engine
                .render_frame()
                .instances
                .iter()
                .filter(|i| i.selected.is_some() || i.hovered.is_some())
                .count();
            let ed = self.session.engine.editor();
            let tool = (ed.tool.to_u8(), ed.material.0);
            if self.reported_tool != Some(tool) {
                self.reported_tool = Some(tool);
                println!("tool {} material {}", tool.0, tool.1);
            }
            let typing = self
                .gfx
                .as_ref()
                .is_some_and(|g| g.egui.egui_wants_keyboard_input());
            if self.reported_typing != Some(typing) {
                self.reported_typing = Some(typing);
                println!("typing {}", u8::from(typing));
            }
            let c = self.camera;
            let cam = format!(
                "{:.3} {:.3} {:.3} {:.2} {:.2} {}",
                c.position.x,
                c.position.y,
                c.position.z,
                c.yaw.to_degrees(),
                c.pitch.to_degrees(),
                u8::from(self.follow.peer.is_some())
            );
            if self.reported_camera.as_deref() != Some(&cam) {
                println!("camera {cam}");
                self.reported_camera = Some(cam);
            }
            if self.reported_highlights != Some(lit) {
                self.reported_highlights = Some(lit);
                println!("highlights {lit}");
            }
        }
        let viewport = self.viewport();
        let redraws = self.gfx.as_ref().map_or(0, |g| g.panels.redraws);
        let tris: usize = self.session.engine.render_frame().triangles;
        if let Some(b) = self.bench.as_mut() {
            // The first frames build pipelines and upload the scene: not counted.
            const WARMUP: u64 = 30;
            b.done += 1;
            if b.done == WARMUP {
                b.started = Some(Instant::now());
            } else if b.done > WARMUP {
                b.frame_ns.push(frame.as_nanos() as u64);
                b.ui_ns.push(ui.as_nanos() as u64);
                b.stages_ns.push(stages.map(|d| d.as_nanos() as u64));
            }
            if b.done >= WARMUP + b.frames {
                let wall = b.started.map_or(Duration::ZERO, |s| s.elapsed());
                let n = b.frame_ns.len().max(1) as f64;
                let fps = n / wall.as_secs_f64().max(1e-9);
                let mut f = b.frame_ns.clone();
                f.sort_unstable();
                let ui_sum: u64 = b.ui_ns.iter().sum();
                let frame_sum: u64 = b.frame_ns.iter().sum();
                println!(
                    "bench desktop: {} frames at {}x{}, {} triangles, MSAA {}, panels open: {:.1} fps, frame p50 {:.2} ms p99 {:.2} ms, ui {:.2} ms per frame ({:.1}% of the frame)",
                    b.frame_ns.len(),
                    viewport.0,
                    viewport.1,
                    tris,
                    self.opts.msaa,
                    fps,
                    f[f.len() / 2] as f64 / 1e6,
                    f[(f.len() * 99 / 100).min(f.len() - 1)] as f64 / 1e6,
                    ui_sum as f64 / n / 1e6,
                    100.0 * ui_sum as f64 / frame_sum.max(1) as f64,
                );
                let mean =
                    |k: usize| b.stages_ns.iter().map(|s| s[k]).sum::<u64>() as f64 / n / 1e6;
                println!(
                    "bench desktop: per frame, waiting for the surface {:.2} ms, scene {:.2} ms, present {:.2} ms, panels laid out {:.2} ms, panels drawn and laid over {:.2} ms; panels drawn {} times in {} frames{}",
                    mean(0),
                    mean(1),
                    mean(2),
                    mean(3),
                    mean(4),
                    redraws,
                    b.done,
                    if self.opts.panels_every_frame {
                        " (forced every frame)"
                    } else {
                        ""
                    },
                );
                event_loop.exit();
            }
        }
    }

    /// What the panels show.
    fn model(&mut self) -> ui::Model {
        model(
            &mut self.session,
            &self.ui,
            self.follow.peer,
            &self.messages,
            self.fly,
        )
    }

    fn request(&mut self, event_loop: &ActiveEventLoop, r: ui::Request) -> Result<()> {
        use ui::Request as R;
        match r {
            R::Command(c) => self.command(event_loop, c)?,
            R::Act(a) => self.session.engine.act(a),
            R::Follow(p) => {
                self.follow.peer = p;
                self.message(if p.is_some() {
                    "following: move the camera to stop"
                } else {
                    "stopped following"
                });
            }
            R::SetRole(author, role) => {
                let op = Op::GrantRole { author, role };
                let r = self.rt.block_on(self.session.node.edit(vec![op]));
                if let Err(e) = r {
                    self.message(format!("the role change was not saved: {e:#}"));
                }
            }
            R::RenameSession(name) => {
                let r = self
                    .rt
                    .block_on(self.session.node.edit(vec![Op::SetSessionName { name }]));
                if let Err(e) = r {
                    self.message(format!("the rename was not saved: {e:#}"));
                }
            }
            R::Copy(text) => {
                if let Some(g) = &self.gfx {
                    g.egui.copy_text(text);
                    self.message("ticket copied");
                }
            }
            R::Open(path) => self.open(path),
            R::SaveAs(path) => self.save_as(path),
            R::Export(path) => {
                let p = PathBuf::from(&path);
                let r = self
                    .session
                    .node
                    .with_session(|s| crate::cli::export_scene(s.replica().scene(), &p));
                match r {
                    Ok((o, v, f)) => self.message(format!(
                        "exported {o} objects, {v} vertices, {f} faces to {path}"
                    )),
                    Err(e) => self.message(format!("export failed: {e:#}")),
                }
            }
        }
        Ok(())
    }

    /// Opens a session file (switching to it), or imports a model into this session.
    fn open(&mut self, path: String) {
        let p = PathBuf::from(&path);
        let lower = path.to_lowercase();
        if lower.ends_with(".glb") || lower.ends_with(".gltf") || lower.ends_with(".obj") {
            self.message(format!(
                "{path} is a model: the command vocabulary has no mesh import yet; open a .theta session file"
            ));
            return;
        }
        if !p.exists() {
            self.message(format!(
                "{path}: no such file (a new session is made with New)"
            ));
            return;
        }
        let opts = Options {
            file: Some(p),
            join: None,
            ..self.opts.clone()
        };
        self.switch(opts);
    }

    fn switch(&mut self, opts: Options) {
        match start_session(&self.rt, &opts, &self.dir) {
            Ok(new) => {
                let old = std::mem::replace(&mut self.session, new);
                if let Err(e) = old.close(&self.rt) {
                    self.message(format!("closing the last session: {e:#}"));
                }
                self.reported = None;
                self.follow = Follow::default();
                if let Some(g) = &mut self.gfx {
                    // The renderer's books belong to the last engine.
                    if let Ok(r) = GpuRenderer::with_device(
                        g.renderer.gpu().clone(),
                        Settings {
                            msaa: self.opts.msaa,
                            ..Settings::default()
                        },
                    ) {
                        g.renderer = r;
                    }
                }
                let title = format!("Theta — {}", self.session_title());
                if let Some(g) = &self.gfx {
                    g.window.set_title(&title);
                }
                self.message(format!("opened {}", self.session.file.display()));
            }
            Err(e) => self.message(format!("could not open: {e:#}")),
        }
    }

    fn save_as(&mut self, path: String) {
        let p = PathBuf::from(&path);
        if p.exists() {
            self.message(format!("{path} exists: choose another name"));
            return;
        }
        let r = self.session.node.with_session(|s| s.checkpoint());
        if let Err(e) = r {
            self.message(format!("saving: {e:#}"));
            return;
        }
        let copied = std::fs::read(&self.session.file)
            .with_context(|| format!("reading {}", self.session.file.display()))
            .and_then(|b| crate::cli::write_atomic(&p, &b));
        match copied {
            Ok(()) => {
                let opts = Options {
                    file: Some(p),
                    join: None,
                    ..self.opts.clone()
                };
                self.switch(opts);
            }
            Err(e) => self.message(format!("save as failed: {e:#}")),
        }
    }

    fn command(&mut self, event_loop: &ActiveEventLoop, c: Command) -> Result<()> {
        let e = &mut self.session.engine;
        match c {
            Command::Act(a) => e.act(a),
            Command::Grab(g) => {
                e.act(Action::SetTool(Tool::Grab));
                e.act(Action::SetGrab(g));
            }
            Command::Colour(step) => {
                let n = PALETTE.len() as i32;
                let cur = e.editor().material.0;
                let cur = if (cur as usize) < PALETTE.len() {
                    cur as i32
                } else {
                    0
                };
                let next = (cur + step).rem_euclid(n);
                e.act(Action::SetMaterial(MaterialId(next as u32)));
            }
            Command::Nudge(v) => {
                let g = e.editor().snap.grid.max(0.01);
                e.act(Action::Translate(Vec3::new(v.x * g, v.y * g, v.z * g)));
            }
            Command::Frame(selection) => {
                let bounds = self.bounds(selection);
                if let Some((lo, hi)) = bounds {
                    self.camera.frame(lo, hi);
                    self.follow.user_moved();
                }
            }
            Command::Fly => {
                self.fly = !self.fly;
                self.message(if self.fly {
                    "fly mode: WASD to move, Q/E down/up, right drag to look"
                } else {
                    "orbit mode"
                });
            }
            Command::Follow => {
                if self.follow.peer.is_some() {
                    self.follow.user_moved();
                    self.message("stopped following");
                } else {
                    match self.session.node.peers().first() {
                        Some((id, name, _)) => {
                            self.follow.peer = Some(*id.as_bytes());
                            self.message(format!("following {name}: move the camera to stop"));
                        }
                        None => self.message("nobody to follow: no one else is here"),
                    }
                }
            }
            Command::Rename => self.ui.focus_name = true,
            Command::Overlay => self.ui.overlay = !self.ui.overlay,
            Command::Help => self.ui.help = !self.ui.help,
            Command::Screenshot => {
                let d = self.dir.join("screenshots");
                std::fs::create_dir_all(&d)?;
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                self.screenshot = Some(d.join(format!("theta-{stamp}.png")));
            }
            Command::New => {
                let d = self.dir.join("sessions");
                std::fs::create_dir_all(&d)?;
                let file = (1..)
                    .map(|n| d.join(format!("untitled-{n}.theta")))
                    .find(|p| !p.exists())
                    .context("no free name")?;
                let opts = Options {
                    file: Some(file),
                    join: None,
                    ..self.opts.clone()
                };
                self.switch(opts);
            }
            Command::Open | Command::Export => {
                self.ui.focus_path = true;
                self.ui.path_exports = c == Command::Export;
            }
            Command::Save => {
                let r = self.session.node.with_session(|s| s.checkpoint());
                match r {
                    Ok(()) => self.message(format!("saved {}", self.session.file.display())),
                    Err(e) => self.message(format!("saving: {e:#}")),
                }
            }
            Command::Escape => {
                if self.follow.peer.is_some() {
                    self.follow.user_moved();
                } else if e.editor().drag.is_some() {
                    e.act(Action::CancelDrag);
                } else {
                    e.act(Action::ClearSelection);
                }
            }
            Command::Quit => event_loop.exit(),
        }
        Ok(())
    }

    /// The world bounds of everything, or of the selected objects.
    fn bounds(&self, selection: bool) -> Option<(glam::Vec3, glam::Vec3)> {
        let sel: Vec<_> = self
            .session
            .engine
            .editor()
            .selection
            .iter()
            .map(|e| e.object())
            .collect();
        self.session.node.with_session(|s| {
            let mut lo = glam::Vec3::splat(f32::INFINITY);
            let mut hi = glam::Vec3::splat(f32::NEG_INFINITY);
            for (id, o) in s.replica().scene().objects() {
                if selection && !sel.contains(&id) {
                    continue;
                }
                let mesh = o.mesh();
                for v in mesh.vertices() {
                    if let Ok(p) = mesh.position(v) {
                        let w = crate::engine::tools::to_world(&o.transform, p);
                        let w = glam::Vec3::new(w.x, w.y, w.z);
                        lo = lo.min(w);
                        hi = hi.max(w);
                    }
                }
            }
            (lo.x <= hi.x).then_some((lo, hi))
        })
    }

    fn key(&mut self, event_loop: &ActiveEventLoop, key: &Key, pressed: bool) -> Result<()> {
        if let Key::Character(c) = key {
            let c = c.to_lowercase();
            let fk = &mut self.fly_keys;
            let slot = match c.as_str() {
                "w" => Some(&mut fk.w),
                "a" => Some(&mut fk.a),
                "s" => Some(&mut fk.s),
                "d" => Some(&mut fk.d),
                "q" => Some(&mut fk.q),
                "e" => Some(&mut fk.e),
                _ => None,
            };
            if self.fly
                && let Some(slot) = slot
                && !self.mouse.mods.ctrl
            {
                *slot = pressed;
                return Ok(());
            }
        }
        if !pressed {
            return Ok(());
        }
        let name = match key {
            Key::Character(c) => c.to_string(),
            Key::Named(n) => match n {
                NamedKey::Delete => "Delete",
                NamedKey::Escape => "Escape",
                NamedKey::ArrowUp => "ArrowUp",
                NamedKey::ArrowDown => "ArrowDown",
                NamedKey::ArrowLeft => "ArrowLeft",
                NamedKey::ArrowRight => "ArrowRight",
                NamedKey::PageUp => "PageUp",
                NamedKey::PageDown => "PageDown",
                NamedKey::Home => "Home",
                NamedKey::F1 => "F1",
                NamedKey::F2 => "F2",
                NamedKey::F3 => "F3",
                NamedKey::F12 => "F12",
                _ => return Ok(()),
            }
            .to_owned(),
            _ => return Ok(()),
        };
        // Shift changes the character of some keys ("D" stays a letter; "]" may become "}").
        let cmd = keys::lookup(&self.shortcuts, &name, self.mouse.mods).cloned();
        if let Some(c) = cmd {
            self.command(event_loop, c)?;
        }
        Ok(())
    }
}

fn short(a: &AuthorId) -> String {
    a.0[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gfx.is_none()
            && let Err(e) = self.open_window(event_loop)
        {
            self.fail(event_loop, e);
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        let Some(g) = self.gfx.as_mut() else {
            return;
        };
        let response = g.egui_state.on_window_event(&g.window, &event);
        let egui_keys = g.egui.egui_wants_keyboard_input();
        let egui_pointer = g.egui.is_pointer_over_egui() || g.egui.egui_is_using_pointer();
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::Resized(size) => {
                g.config.width = size.width.max(1);
                g.config.height = size.height.max(1);
                g.surface.configure(&g.renderer.gpu().device, &g.config);
                g.target = None;
            }
            WindowEvent::RedrawRequested => {
                if let Err(e) = self.frame(event_loop) {
                    self.fail(event_loop, e);
                }
            }
            WindowEvent::ModifiersChanged(m) => {
                let s = m.state();
                self.mouse.mods = Mods {
                    ctrl: s.control_key(),
                    shift: s.shift_key(),
                    alt: s.alt_key(),
                };
            }
            WindowEvent::KeyboardInput { event, .. } => {
                if response.consumed || egui_keys {
                    return;
                }
                let pressed = event.state == ElementState::Pressed;
                if let Err(e) = self.key(event_loop, &event.logical_key, pressed) {
                    self.message(format!("{e:#}"));
                }
            }
            WindowEvent::CursorMoved { position, .. } => {
                let (x, y) = (position.x as f32, position.y as f32);
                if let Some((px, py)) = self.mouse.pos
                    && self.mouse.camera_drag
                {
                    let (_, h) = self.viewport();
                    let (dx, dy) = ((x - px) / h, (y - py) / h);
                    let pan = self.mouse.mods.shift;
                    if self.fly && self.mouse.right {
                        self.camera.look(-dx * 3.0, -dy * 3.0);
                    } else if pan {
                        self.camera.pan(dx, dy);
                    } else {
                        self.camera.orbit(-dx * 4.0, -dy * 4.0);
                    }
                    self.follow.user_moved();
                }
                self.mouse.pos = Some((x, y));
            }
            WindowEvent::CursorLeft { .. } => self.mouse.pos = None,
            WindowEvent::MouseInput { state, button, .. } => {
                let down = state == ElementState::Pressed;
                if down && egui_pointer {
                    return;
                }
                match button {
                    MouseButton::Left => {
                        self.mouse.left = down;
                        self.mouse.left_click |= down && !self.mouse.mods.alt;
                        if down && self.mouse.mods.alt {
                            self.mouse.camera_drag = true;
                        }
                    }
                    MouseButton::Right => {
                        self.mouse.right = down;
                        self.mouse.right_click |= down && !self.fly;
                        if down && self.fly {
                            self.mouse.camera_drag = true;
                        }
                    }
                    MouseButton::Middle => {
                        self.mouse.middle = down;
                        if down {
                            self.mouse.camera_drag = true;
                        }
                    }
                    _ => {}
                }
                if !(down || self.mouse.middle || (self.mouse.left && self.mouse.mods.alt)) {
                    self.mouse.camera_drag = self.fly && self.mouse.right;
                }
            }
            WindowEvent::MouseWheel { delta, .. } => {
                if egui_pointer {
                    return;
                }
                let steps = match delta {
                    MouseScrollDelta::LineDelta(_, y) => y,
                    MouseScrollDelta::PixelDelta(p) => p.y as f32 / 40.0,
                };
                self.camera.zoom(steps);
                self.follow.user_moved();
            }
            _ => {}
        }
    }

    fn about_to_wait(&mut self, _event_loop: &ActiveEventLoop) {
        if let Some(g) = &self.gfx {
            g.window.request_redraw();
        }
    }
}

/// What the panels show, for the session `s` (the desktop editor's and the headset's).
pub(crate) fn model(
    s: &mut Live,
    ui_state: &ui::UiState,
    followed: Option<[u8; 32]>,
    messages: &[String],
    fly: bool,
) -> ui::Model {
    if s.ticket.1.elapsed() > Duration::from_secs(600) || s.ticket.0 != ui_state.ticket_role {
        s.refresh_ticket(ui_state.ticket_role);
    }
    let peers = s.node.peers();
    let ed = s.engine.editor();
    let me = s.me;
    let mut names: std::collections::HashMap<AuthorId, String> = peers
        .iter()
        .map(|(id, n, _)| (AuthorId(*id.as_bytes()), n.clone()))
        .collect();
    names.insert(me, format!("{} (you)", s.name));
    let selection = ed.selection.clone();
    let (tool, mode, grab, snap, material, primitive) = (
        ed.tool,
        ed.mode,
        ed.grab,
        ed.snap,
        ed.material,
        ed.insert_primitive(),
    );
    let undo_redo = (!ed.undo_stack().is_empty(), !ed.redo_stack().is_empty());
    s.node.with_session(|x| {
        let r = x.replica();
        let scene = r.scene();
        let object = match selection.first() {
            Some(e) => {
                let id = e.object();
                scene.object(id).map(|o| {
                    let mesh = o.mesh();
                    (
                        id,
                        o.name.clone(),
                        o.transform,
                        mesh.vertex_count(),
                        mesh.face_count(),
                    )
                })
            }
            None => None,
        };
        let whole = selection
            .iter()
            .all(|e| matches!(e, crate::presence::ElementRef::Object(_)));
        let history = r
            .log()
            .ordered_rev()
            .take(40)
            .map(|e| ui::HistoryRow {
                author: names
                    .get(&e.author)
                    .cloned()
                    .unwrap_or_else(|| short(&e.author)),
                mine: e.author == me,
                kind: e.op().map(|o| o.kind()).unwrap_or("?"),
                rejected: r.rejections().contains_key(&e.id),
            })
            .collect();
        ui::Model {
            session: scene.name().to_owned(),
            file: s.file.display().to_string(),
            role: scene.role(&me),
            me: (s.name.clone(), s.colour),
            tool,
            mode,
            grab,
            snap,
            material,
            primitive,
            object,
            elements: if whole { 0 } else { selection.len() },
            history,
            undo_redo,
            peers: peers
                .iter()
                .map(|(id, n, st)| {
                    let key = *id.as_bytes();
                    ui::PeerRow {
                        key,
                        name: n.clone(),
                        colour: crate::presence::colour_of(&key),
                        role: scene.role(&AuthorId(key)),
                        rtt_ms: st.rtt_us as f32 / 1000.0,
                        followed: followed == Some(key),
                    }
                })
                .collect(),
            messages: messages.to_vec(),
            ticket: s.ticket.2.clone(),
            overlay: if ui_state.overlay {
                crate::telemetry::overlay()
            } else {
                Vec::new()
            },
            fly,
        }
    })
}
