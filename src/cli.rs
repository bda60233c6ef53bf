//! The `theta` command line (clap). Every subcommand is documented in `--help` and in the README.
//!
//! Today the commands are headless: make a primitive, convert between OBJ and GLB, inspect a model
//! or a session file, and start a session file. The windowed editor, VR mode and networked
//! sessions arrive as their modules land; until then a bare `theta` says so in one line and lists
//! what it can do.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use theta_mesh::io::{ExportObject, ExportOptions, read_gltf, read_obj, write_glb, write_obj};
use theta_mesh::{MaterialId, Mesh, PALETTE, Primitive, SeqIds, Vec3};

/// Theta: collaborative, serverless low-poly modelling.
#[derive(Debug, Parser)]
#[command(name = "theta", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Serve the metrics (Prometheus / OpenMetrics text) at http://ADDR/metrics while the command
    /// runs (port 0 picks a free port; the address is printed as `metrics ADDR`).
    #[arg(long, global = true, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a primitive and write it to a .glb or .obj file.
    Primitive {
        /// Which primitive.
        kind: Kind,
        /// Output file (.glb or .obj; an .obj gets its .mtl beside it).
        #[arg(short, long)]
        out: PathBuf,
        /// Overall size (edge length, or diameter for round shapes).
        #[arg(long, default_value_t = 1.0)]
        size: f32,
        /// Segments around round shapes, or cells per side of a grid.
        #[arg(long, default_value_t = 16)]
        segments: u32,
        /// Rings of a UV sphere; subdivision level of an icosphere.
        #[arg(long, default_value_t = 8)]
        rings: u32,
        /// Catmull–Clark levels applied after building.
        #[arg(long, default_value_t = 0)]
        subdivide: u32,
        /// Palette colour name (see `theta colors`).
        #[arg(long, default_value = "white")]
        color: String,
    },
    /// Convert a model between .obj and .glb (vertices are welded on glTF import).
    Convert {
        /// Input file (.obj, .glb).
        input: PathBuf,
        /// Output file (.obj, .glb).
        output: PathBuf,
    },
    /// Print a model's element counts, bounds, Euler characteristic and validity; or, for a
    /// session file (.theta), its commands, authors, objects, vertices, faces and state hash, and
    /// what opening it recovered (a torn final write dropped, a stale checkpoint ignored).
    Info {
        /// Model file (.obj, .glb) or session file (.theta).
        file: PathBuf,
    },
    /// Open a session file to edit it: in the editor window where there is a display (not in
    /// this build yet); headless, it reads script lines (the `run --script` format, without
    /// `new`/`open`) from standard input until it ends, saving as it goes.
    Open {
        /// The session file (.theta).
        file: PathBuf,
    },
    /// Run a headless session from a script of edits and checks (format: `src/script.rs`, and
    /// the README); an error names the line.
    Run {
        /// The script file.
        #[arg(long)]
        script: PathBuf,
    },
    /// Merge two copies of one session (say, edited offline on two machines): every command of
    /// B that A lacks is verified and added to A, which then holds both; B is not changed.
    Merge {
        /// The session file that receives (.theta).
        a: PathBuf,
        /// The session file merged into it (.theta).
        b: PathBuf,
    },
    /// Export a session's scene (every object, placed as in the scene) to a .glb or .obj file.
    Export {
        /// Session file (.theta).
        file: PathBuf,
        /// Output file (.glb or .obj; an .obj gets its .mtl beside it).
        out: PathBuf,
    },
    /// Render a session's scene to a PNG without a window (GPU, or lavapipe on a CPU).
    #[cfg(feature = "render")]
    Render {
        /// Session file (.theta).
        file: PathBuf,
        /// Output image (.png).
        out: PathBuf,
        /// Both eyes of a headset at the camera, side by side.
        #[arg(long)]
        stereo: bool,
        /// Image size (per eye), WxH.
        #[arg(long, default_value = "1280x720")]
        size: String,
        /// Camera `x,y,z:tx,ty,tz` (from, towards); default: frame the whole scene.
        #[arg(long)]
        camera: Option<String>,
        /// Samples per pixel: 1 or 4.
        #[arg(long, default_value_t = 4)]
        msaa: u32,
        /// Leave out the ground grid.
        #[arg(long)]
        no_grid: bool,
    },
    /// List the palette's material names.
    Colors,
    /// Host a session over the network: start one in FILE (or resume it), print a ticket that
    /// others join with, and take line commands on standard input (see `docs/cli.md`).
    #[cfg(feature = "net")]
    Host {
        /// The session file (.theta); created if it does not exist.
        file: PathBuf,
        /// The name of a new session.
        #[arg(long, default_value = "untitled")]
        name: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// VR mode: the session in a headset through OpenXR. Without one (no loader, no runtime, no
    /// headset) it says why in one line and opens the desktop editor instead.
    #[cfg(feature = "vr-openxr")]
    Vr {
        /// The session file (.theta).
        file: Option<PathBuf>,
        /// Join the session of this ticket (kept in FILE, or in the data directory).
        #[arg(long, value_name = "TICKET")]
        join: Option<String>,
        /// Print `state <commands> <hash>` whenever the state changes, and `message <text>`
        /// for what the user is told (for scripts and tests).
        #[arg(long)]
        report: bool,
        /// The left hand points and runs the tools (the right one holds the palette).
        #[arg(long)]
        left_handed: bool,
        /// Turning with the stick: `snap` (30° a push), `snap:DEG`, `smooth` (90°/s) or
        /// `smooth:DEG` (degrees a second).
        #[arg(long, default_value = "snap", value_name = "HOW")]
        turn: String,
        /// Moving: `teleport` (aim with the stick, let go to land) or `grab` (hold the off
        /// hand's grip and pull the world).
        #[arg(long = "move", default_value = "teleport", value_name = "HOW")]
        locomotion: String,
        /// How dark the edges of the view go while the app moves you: 0 (off) to 1.
        #[arg(long, default_value_t = 0.6)]
        vignette: f32,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Open the desktop editor on a session file (created if missing; default: the last one),
    /// or join a session with `--join TICKET`. Needs a display.
    #[cfg(feature = "desktop")]
    Edit {
        /// The session file (.theta).
        file: Option<PathBuf>,
        /// Join the session of this ticket (kept in FILE, or in the data directory).
        #[arg(long, value_name = "TICKET")]
        join: Option<String>,
        /// Window size.
        #[arg(long, default_value = "1280x720")]
        size: String,
        /// Multisampling: 1 or 4 samples (default: 4 on a GPU, 1 on a software rasteriser).
        #[arg(long)]
        msaa: Option<u32>,
        /// Print `ticket …` at the start and `state <commands> <hash>` whenever the state
        /// changes (for scripts and tests).
        #[arg(long)]
        report: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Measure: `bench engine` the engine's CPU per frame; `bench memory` an opened session's
    /// resident memory; `bench net`, `bench presence` and `bench wire` the network layer, with
    /// real peers on loopback in this process (see docs/PERFORMANCE.md).
    Bench {
        /// What to measure.
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Join a session with a ticket someone printed; keeps it in FILE (default: in the data
    /// directory, named by the session id), and takes line commands on standard input.
    #[cfg(feature = "net")]
    Join {
        /// The ticket (`theta…`).
        ticket: String,
        /// The session file to keep (reused when rejoining).
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Start a new session in a file, as this user (the identity in the data directory is made on
    /// first use); prints the session id.
    New {
        /// The session file to create (.theta); it must not exist.
        file: PathBuf,
        /// The session's name.
        #[arg(long, default_value = "untitled")]
        name: String,
    },
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// The engine's frame time against a bare wgpu program drawing the same triangles with the
    /// same settings, in the same run (lavapipe here; any GPU wgpu finds).
    #[cfg(feature = "render")]
    Render {
        /// Triangles in all.
        #[arg(long, default_value_t = 100_000)]
        triangles: usize,
        /// Objects they are split into.
        #[arg(long, default_value_t = 1)]
        objects: usize,
        /// Image size per eye, WxH.
        #[arg(long, default_value = "1920x1080")]
        size: String,
        /// Samples per pixel: 1 or 4.
        #[arg(long, default_value_t = 4)]
        msaa: u32,
        /// Both eyes.
        #[arg(long)]
        stereo: bool,
        /// Frames of each program.
        #[arg(long, default_value_t = 60)]
        frames: usize,
        /// Leave the ground grid out of the engine's frames.
        #[arg(long)]
        no_grid: bool,
    },
    /// Resident memory of an opened session: a generated realistic session of this many commands
    /// is written to a file, then opened by a fresh `theta` process (from the file alone, then
    /// from its checkpoint), which reports its resident set before opening, after, and once idle
    /// packing is done.
    Memory {
        /// Commands in the session.
        #[arg(long, default_value_t = 100_000)]
        commands: usize,
        /// (Internal) open this file and report, as the measured process.
        #[arg(long, hide = true)]
        open: Option<PathBuf>,
    },
    /// The engine's CPU per frame (projection updates and systems) on a big scene while a remote
    /// peer's commands stream in.
    Engine {
        /// Objects in the scene.
        #[arg(long, default_value_t = 10_000)]
        objects: usize,
        /// Remote commands per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Frames to run (at 90 Hz of simulated time).
        #[arg(long, default_value_t = 900)]
        frames: usize,
    },
    /// Append-to-applied latency and sustained throughput of a session on loopback.
    #[cfg(feature = "net")]
    Net {
        /// Peers, the host included.
        #[arg(long, default_value_t = 3)]
        peers: usize,
        /// Edits in the latency run (one at a time, round robin).
        #[arg(long, default_value_t = 1000)]
        commands: usize,
        /// Edits per peer in the throughput run.
        #[arg(long, default_value_t = 5000)]
        burst: usize,
        /// Instead: time a newcomer catching up on a session of this many commands.
        #[arg(long, value_name = "COMMANDS")]
        late_joiner: Option<usize>,
    },
    /// The desktop editor's frame rate with its panels open, in a real window (needs a display:
    /// `xvfb-run -a` on a machine without one).
    #[cfg(feature = "desktop")]
    Desktop {
        /// Scene size in triangles (spread over icospheres of 1,280 each).
        #[arg(long, default_value_t = 20_000)]
        triangles: usize,
        /// Window size.
        #[arg(long, default_value = "1280x720")]
        size: String,
        /// Frames measured.
        #[arg(long, default_value_t = 300)]
        frames: u64,
        /// Multisampling: 1 or 4 samples (default: 4 on a GPU, 1 on a software rasteriser).
        #[arg(long)]
        msaa: Option<u32>,
        /// Draw the panels again on every frame, as if they changed each time (the worst
        /// case; by default they are drawn only when they change).
        #[arg(long)]
        panels_every_frame: bool,
    },
    /// CPU time per VR frame (input, tools, engine, render submission) through the OpenXR
    /// runtime `XR_RUNTIME_JSON` names (the stand-in runtime in tests and benchmarks).
    #[cfg(feature = "vr-openxr")]
    Vr {
        /// Scene size in triangles (spread over icospheres of 1,280 each).
        #[arg(long, default_value_t = 100_000)]
        triangles: usize,
        /// Frames measured (after ten to warm up).
        #[arg(long, default_value_t = 300)]
        frames: u64,
    },
    /// Bytes on the wire for a generated session: compact batches, zstd and the shipped
    /// dictionary against each signed command sent whole.
    #[cfg(feature = "net")]
    Wire {
        /// Commands in the generated session.
        #[arg(long, default_value_t = 20000)]
        commands: usize,
        /// Instead: train the dictionary on generated sessions and write it here.
        #[arg(long, value_name = "FILE")]
        train: Option<PathBuf>,
    },
    /// Interest management: how many presence updates about peers a receiver cannot see are
    /// never sent, against sending everything, on loopback.
    #[cfg(feature = "net")]
    Presence {
        /// Peers (each sees a fifth of the others).
        #[arg(long, default_value_t = 16)]
        peers: usize,
        /// Seconds per phase (baseline, then with subscriptions).
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
        /// Presence updates per second per peer.
        #[arg(long, default_value_t = 30)]
        hz: u32,
    },
}

/// Network options of `host` and `join`.
#[cfg(feature = "net")]
#[derive(Debug, clap::Args)]
struct NetArgs {
    /// LAN or offline: no relay servers, no DNS lookups.
    #[arg(long)]
    local: bool,
    /// Use this self-hosted iroh relay instead of the public ones.
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
    /// Bind to this socket address (default: all interfaces, any port).
    #[arg(long, value_name = "ADDR")]
    bind: Option<std::net::SocketAddr>,
    /// Talk only through the relay (no direct connections at all); needs --relay.
    #[arg(long, requires = "relay")]
    relay_only: bool,
    /// Trust this certificate (DER file) for the relay, for a self-hosted relay with its own CA.
    #[arg(long, value_name = "FILE", requires = "relay")]
    relay_ca: Option<PathBuf>,
    /// The name others see.
    #[arg(long)]
    display_name: Option<String>,
    /// Speak another protocol version (for testing refusals).
    #[arg(long, hide = true)]
    protocol_version: Option<u16>,
    /// Offer no compression dictionary, like a build without one (for testing that peers with
    /// different dictionaries still talk).
    #[arg(long, hide = true)]
    no_dictionary: bool,
    /// Take at most this many gossip messages per second from one neighbour (for testing the
    /// rate limit).
    #[arg(long, hide = true)]
    max_gossip_per_s: Option<u32>,
}

#[cfg(feature = "net")]
impl NetArgs {
    fn options(self) -> crate::live::NetOptions {
        crate::live::NetOptions {
            local: self.local,
            relay: self.relay,
            bind: self.bind,
            relay_only: self.relay_only,
            relay_ca: self.relay_ca,
            protocol_version: self.protocol_version,
            display_name: self.display_name,
            no_dictionary: self.no_dictionary,
            max_gossip_per_s: self.max_gossip_per_s,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Cube,
    Pyramid,
    Cylinder,
    Cone,
    Sphere,
    Icosphere,
    Icosahedron,
    Torus,
    Grid,
}

/// The commands that need no display, for the lines that say a window cannot open.
pub const HEADLESS_COMMANDS: &str =
    "new, open, run, info, export, merge, host, join, render, bench, primitive, convert, colors";

/// Runs the command line; errors print one clear line and give exit code 1.
pub fn main() -> ExitCode {
    #[cfg(feature = "vr-openxr")]
    quiet_xr_loader();
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    crate::telemetry::init();
    if let Some(addr) = cli.metrics {
        match crate::telemetry::serve(addr) {
            Ok(bound) => println!("metrics {bound}"),
            Err(e) => {
                eprintln!("theta: error: serving metrics on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("theta: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Keeps the OpenXR loader's own diagnostics out of the user's terminal unless they asked for
/// them (`XR_LOADER_DEBUG` set). Called first thing in `main`.
#[cfg(feature = "vr-openxr")]
#[expect(
    unsafe_code,
    reason = "setting an environment variable is unsafe once threads run; this runs before any"
)]
fn quiet_xr_loader() {
    if std::env::var_os("XR_LOADER_DEBUG").is_none() {
        // SAFETY: the first thing the process does, before any thread is started.
        unsafe { std::env::set_var("XR_LOADER_DEBUG", "none") };
    }
}

/// When whoever reads standard output goes away (`theta info s.theta | head -1`), stop quietly
/// with the status a process killed by SIGPIPE reports, as command-line tools do, instead of
/// the panic `println!` raises. SIGPIPE itself stays ignored (Rust's default): a signal would
/// also kill the process for a peer's closed TCP connection.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => {
            #[cfg(feature = "desktop")]
            if crate::desktop::display_problem().is_none() {
                return crate::desktop::run(crate::desktop::Options::default());
            }
            #[cfg(feature = "desktop")]
            let why = crate::desktop::display_problem().unwrap_or_default();
            #[cfg(not(feature = "desktop"))]
            let why = "this build has no desktop editor".to_owned();
            println!(
                "theta {}: {why}, so no editor window; headless commands: {HEADLESS_COMMANDS} \
                 (see `theta --help`)",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        #[cfg(feature = "vr-openxr")]
        Some(Command::Vr {
            file,
            join,
            report,
            left_handed,
            turn,
            locomotion,
            vignette,
            net,
        }) => {
            use crate::xr::session::{Ended, Options, run};
            let comfort = crate::xr::comfort::Settings::parse(&turn, &locomotion, vignette)
                .map_err(anyhow::Error::msg)?;
            let net = net.options();
            let ended = run(Options {
                file: file.clone(),
                join: join.clone(),
                net: net.clone(),
                report,
                bench: None,
                left_handed,
                comfort,
            })?;
            let (file, join) = match ended {
                Ended::Closed => return Ok(()),
                Ended::Unavailable(why) => {
                    eprintln!("theta: VR: {why}");
                    (file, join)
                }
                Ended::Lost { file, why } => {
                    eprintln!(
                        "theta: VR: {why}; your edits are saved in {}",
                        file.display()
                    );
                    // The same session again, from its file.
                    (Some(file), None)
                }
            };
            // Without a display the editor says so itself, naming the headless commands.
            if crate::desktop::display_problem().is_none() {
                eprintln!("theta: opening the desktop editor instead");
            }
            crate::desktop::run(crate::desktop::Options {
                file,
                join,
                net,
                report,
                ..Default::default()
            })
        }
        #[cfg(feature = "desktop")]
        Some(Command::Edit {
            file,
            join,
            size,
            msaa,
            report,
            net,
        }) => crate::desktop::run(crate::desktop::Options {
            file,
            join,
            net: net.options(),
            size: parse_size(&size)?,
            report,
            bench: None,
            msaa: msaa.unwrap_or(0),
            panels_every_frame: false,
        }),
        #[cfg(feature = "desktop")]
        Some(Command::Bench {
            what:
                BenchWhat::Desktop {
                    triangles,
                    size,
                    frames,
                    msaa,
                    panels_every_frame,
                },
        }) => bench_desktop(
            triangles,
            parse_size(&size)?,
            frames,
            msaa.unwrap_or(0),
            panels_every_frame,
        ),
        #[cfg(feature = "vr-openxr")]
        Some(Command::Bench {
            what: BenchWhat::Vr { triangles, frames },
        }) => bench_vr(triangles, frames),
        Some(Command::Primitive {
            kind,
            out,
            size,
            segments,
            rings,
            subdivide,
            color,
        }) => {
            let material = material_by_name(&color)?;
            let mut ids = SeqIds::new(1);
            let r = size * 0.5;
            let p = match kind {
                Kind::Cube => Primitive::Cuboid {
                    size: Vec3::new(size, size, size),
                },
                Kind::Pyramid => Primitive::Pyramid {
                    base: size,
                    height: size,
                    sides: 4,
                },
                Kind::Cylinder => Primitive::Cylinder {
                    radius: r,
                    height: size,
                    segments,
                },
                Kind::Cone => Primitive::Cone {
                    radius: r,
                    height: size,
                    segments,
                },
                Kind::Sphere => Primitive::UvSphere {
                    radius: r,
                    segments,
                    rings,
                },
                Kind::Icosphere => Primitive::Icosphere {
                    radius: r,
                    level: rings.min(7),
                },
                Kind::Icosahedron => Primitive::Icosahedron { radius: r },
                Kind::Torus => Primitive::Torus {
                    major_radius: r * 0.7,
                    minor_radius: r * 0.3,
                    major_segments: segments,
                    minor_segments: (segments / 2).max(3),
                },
                Kind::Grid => Primitive::Grid {
                    size_x: size,
                    size_z: size,
                    cells_x: segments,
                    cells_z: segments,
                },
            };
            let mut mesh = p
                .build(&mut ids, material)
                .context("building the primitive")?;
            if subdivide > 0 {
                mesh.subdivide(subdivide, &mut ids).context("subdividing")?;
            }
            let name = format!("{kind:?}").to_lowercase();
            export(&mesh, &name, &out)?;
            println!("wrote {} ({})", out.display(), summary(&mesh));
            Ok(())
        }
        Some(Command::Convert { input, output }) => {
            let mesh = import(&input)?;
            let name = input
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("model")
                .to_string();
            export(&mesh, &name, &output)?;
            println!("wrote {} ({})", output.display(), summary(&mesh));
            Ok(())
        }
        Some(Command::Export { file, out }) => export_session(&file, &out),
        #[cfg(feature = "render")]
        Some(Command::Render {
            file,
            out,
            stereo,
            size,
            camera,
            msaa,
            no_grid,
        }) => {
            use crate::render::headless;
            if !is_session_file(&file) {
                bail!(
                    "{}: not a session file (render takes a .theta file)",
                    file.display()
                );
            }
            let job = headless::RenderJob {
                size: headless::parse_size(&size)?,
                stereo,
                camera: match camera {
                    Some(c) => headless::parse_camera(&c)?,
                    None => headless::CameraSpec::Frame,
                },
                settings: crate::render::Settings {
                    msaa,
                    grid: !no_grid,
                    ..Default::default()
                },
            };
            headless::render_file(&file, &out, job)
        }
        Some(Command::Merge { a, b }) => merge_sessions(&a, &b),
        Some(Command::Open { file }) => {
            if !file.exists() {
                bail!(
                    "{}: no such file (`theta new {}` makes one)",
                    file.display(),
                    file.display()
                );
            }
            if !is_session_file(&file) {
                bail!(
                    "{}: not a session file (open takes a .theta file)",
                    file.display()
                );
            }
            let key = crate::identity::load_or_create(&crate::identity::data_dir()?)?;
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!(
                    "theta: no editor window in this build; {} is open headless: type script \
                     lines (cube, extrude, paint, hash, save …; see `theta run --help`), end \
                     with ctrl-D",
                    file.display()
                );
            }
            crate::script::interactive(&file, key, std::io::stdin().lock())
        }
        Some(Command::Run { script }) => {
            let key = crate::identity::load_or_create(&crate::identity::data_dir()?)?;
            crate::script::run(&script, key)
        }
        Some(Command::Info { file }) if is_session_file(&file) => session_info(&file),
        Some(Command::Info { file }) => {
            let mesh = import(&file)?;
            let b = mesh.bounds();
            println!("{}: {}", file.display(), summary(&mesh));
            println!(
                "bounds: min ({}, {}, {}) max ({}, {}, {})",
                b.min.x, b.min.y, b.min.z, b.max.x, b.max.y, b.max.z
            );
            println!("euler characteristic: {}", mesh.euler_characteristic());
            match mesh.validate() {
                Ok(()) => println!("valid: yes"),
                Err(e) => println!("valid: no ({e})"),
            }
            Ok(())
        }
        Some(Command::New { file, name }) => {
            let key = crate::identity::load_or_create(&crate::identity::data_dir()?)?;
            let s = crate::session::Session::create(&file, &key, &name)?;
            let id = s.id().map(|c| c.to_string()).unwrap_or_default();
            s.close()?;
            println!("created {}: session {id} \"{name}\"", file.display());
            Ok(())
        }
        #[cfg(feature = "net")]
        Some(Command::Host { file, name, net }) => {
            crate::live::run(crate::live::Launch::Host { file, name }, net.options())
        }
        #[cfg(feature = "net")]
        Some(Command::Bench {
            what:
                BenchWhat::Net {
                    peers,
                    commands,
                    burst,
                    late_joiner,
                },
        }) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let report = match late_joiner {
                Some(n) => rt.block_on(crate::net::bench::late_joiner(n))?,
                None => rt.block_on(crate::net::bench::run(crate::net::bench::NetBench {
                    peers,
                    commands,
                    burst,
                }))?,
            };
            println!("{report}");
            Ok(())
        }
        Some(Command::Bench {
            what: BenchWhat::Memory { commands, open },
        }) => {
            match open {
                Some(file) => println!("{}", memory_child(&file)?),
                None => bench_memory(commands)?,
            }
            Ok(())
        }
        Some(Command::Bench {
            what:
                BenchWhat::Engine {
                    objects,
                    rate,
                    frames,
                },
        }) => {
            println!("{}", crate::engine::bench::run(objects, rate, frames)?);
            Ok(())
        }
        #[cfg(feature = "render")]
        Some(Command::Bench {
            what:
                BenchWhat::Render {
                    triangles,
                    objects,
                    size,
                    msaa,
                    stereo,
                    frames,
                    no_grid,
                },
        }) => {
            let (report, _) = crate::render::bench::run(crate::render::bench::Job {
                grid: !no_grid,
                triangles,
                objects,
                size: crate::render::headless::parse_size(&size)?,
                msaa,
                stereo,
                frames,
            })?;
            println!("{report}");
            Ok(())
        }
        #[cfg(feature = "net")]
        Some(Command::Bench {
            what: BenchWhat::Wire { commands, train },
        }) => {
            let report = match train {
                Some(out) => crate::net::bench::train_dictionary(&out)?,
                None => crate::net::bench::wire(commands)?,
            };
            println!("{report}");
            Ok(())
        }
        #[cfg(feature = "net")]
        Some(Command::Bench {
            what: BenchWhat::Presence { peers, seconds, hz },
        }) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            println!(
                "{}",
                rt.block_on(crate::net::bench::presence(peers, seconds, hz))?
            );
            Ok(())
        }
        #[cfg(feature = "net")]
        Some(Command::Join { ticket, file, net }) => {
            crate::live::run(crate::live::Launch::Join { ticket, file }, net.options())
        }
        Some(Command::Colors) => {
            for (i, e) in PALETTE.iter().enumerate() {
                let [r, g, b, a] = e.rgba;
                println!("{i:>2} {:<12} #{r:02x}{g:02x}{b:02x} alpha {a}", e.name);
            }
            Ok(())
        }
    }
}

fn summary(m: &Mesh) -> String {
    format!(
        "{} vertices, {} edges, {} faces",
        m.vertex_count(),
        m.edge_count(),
        m.face_count()
    )
}

fn material_by_name(name: &str) -> Result<MaterialId> {
    match PALETTE.iter().position(|e| e.name == name) {
        Some(i) => Ok(MaterialId(i as u32)),
        None => bail!("unknown colour `{name}` (run `theta colors` for the list)"),
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn import(path: &Path) -> Result<Mesh> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut ids = SeqIds::new(1);
    let mesh = match extension(path).as_str() {
        "obj" => read_obj(&bytes, &mut ids),
        "glb" | "gltf" => read_gltf(&bytes, &mut ids),
        other => bail!(
            "{}: unsupported input format `.{other}` (use .obj or .glb)",
            path.display()
        ),
    };
    mesh.with_context(|| format!("importing {}", path.display()))
}

fn export(mesh: &Mesh, name: &str, path: &Path) -> Result<()> {
    let objects = [ExportObject::new(name, mesh)];
    let opts = ExportOptions::new().with_metadata("generator", "theta");
    write_export(&objects, &opts, path)
}

/// Writes objects to a .glb or .obj file (atomically; an .obj's .mtl first).
fn write_export(objects: &[ExportObject<'_>], opts: &ExportOptions, path: &Path) -> Result<()> {
    match extension(path).as_str() {
        "glb" => {
            let bytes = write_glb(objects, opts).context("encoding GLB")?;
            write_atomic(path, &bytes)
        }
        "obj" => {
            let mtl = path.with_extension("mtl");
            let mtl_name = mtl
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("model.mtl");
            let (obj, mtl_text) = write_obj(objects, mtl_name, opts).context("encoding OBJ")?;
            write_atomic(&mtl, mtl_text.as_bytes())?;
            write_atomic(path, obj.as_bytes())
        }
        other => bail!(
            "{}: unsupported output format `.{other}` (use .obj or .glb)",
            path.display()
        ),
    }
}

/// `theta merge`: B's commands that A lacks go into A (verified, saved, folded); B is read only.
fn merge_sessions(a: &Path, b: &Path) -> Result<()> {
    for f in [a, b] {
        if !is_session_file(f) {
            bail!("{}: not a session file", f.display());
        }
    }
    let theirs = crate::store::SessionFile::open_session(b)?;
    let key = crate::identity::load_or_create(&crate::identity::data_dir()?)?;
    let (mut mine, _) = crate::session::Session::open(a, &key)?;
    let (ia, ib) = (mine.id(), theirs.opened.replica.log().session());
    if ia != ib {
        bail!(
            "{} and {} hold different sessions: nothing merged",
            a.display(),
            b.display()
        );
    }
    let log = theirs.opened.replica.log();
    let ids: Vec<_> = log
        .ordered()
        .filter(|e| !mine.replica().log().contains(&e.id))
        .map(|e| e.id)
        .collect();
    let missing: Vec<std::sync::Arc<[u8]>> = log.bytes_of(&ids).into_iter().flatten().collect();
    let refs: Vec<&[u8]> = missing.iter().map(|c| &c[..]).collect();
    let batch = mine.receive_batch(&refs, false)?;
    if let Some((_, e)) = batch.refused.first() {
        bail!(
            "{} holds a command that does not verify ({e}); {} commands were merged before it",
            b.display(),
            batch.admitted.len()
        );
    }
    let hash: String = mine
        .replica()
        .scene()
        .state_hash()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    println!(
        "merged {} commands from {} into {}: {} commands, state hash {hash}",
        batch.admitted.len(),
        b.display(),
        a.display(),
        mine.replica().log().len()
    );
    mine.close()?;
    Ok(())
}

/// `theta export`: the session's objects, in object-id order, each with its rotation and scale
/// applied to its vertices and its translation kept as the object's placement.
pub(crate) fn export_session(file: &Path, out: &Path) -> Result<()> {
    if !is_session_file(file) {
        bail!(
            "{}: not a session file (export takes a .theta file; `convert` takes models)",
            file.display()
        );
    }
    let s = {
        let _p = crate::progress::spinner(format!("opening {}", file.display()));
        crate::store::SessionFile::open_session(file)?
    };
    let (objects, vertices, faces) = export_scene(s.opened.replica.scene(), out)?;
    println!(
        "wrote {}: {objects} objects, {vertices} vertices, {faces} faces",
        out.display(),
    );
    Ok(())
}

/// Writes a scene's objects, placed, to a model file (.glb, or .obj with its .mtl). Returns the
/// objects, vertices and faces written.
pub(crate) fn export_scene(
    scene: &theta_crdt::scene::Scene,
    out: &Path,
) -> Result<(usize, usize, usize)> {
    let bar = crate::progress::bar(scene.object_count() as u64, "placing objects");
    let placed: Vec<(String, Mesh, Vec3)> = scene
        .objects()
        .map(|(_, o)| -> Result<(String, Mesh, Vec3)> {
            bar.inc(1);
            let mut m = o.mesh().into_owned();
            let (r, k) = (o.transform.rotation, o.transform.scale);
            let ids: Vec<_> = m.vertices().collect();
            for v in ids {
                let p = m.position(v)?;
                m.set_position(v, r.rotate(p.mul_elem(k)))?;
            }
            Ok((o.name.clone(), m, o.transform.translation))
        })
        .collect::<Result<_>>()?;
    let objects: Vec<ExportObject<'_>> = placed
        .iter()
        .map(|(n, m, t)| ExportObject::new(n, m).at(*t))
        .collect();
    drop(bar);
    let opts = ExportOptions::new()
        .with_metadata("generator", "theta")
        .with_metadata("session", scene.name());
    {
        let _p = crate::progress::spinner(format!("writing {}", out.display()));
        write_export(&objects, &opts, out)?;
    }
    let (v, f) = placed.iter().fold((0, 0), |(v, f), (_, m, _)| {
        (v + m.vertex_count(), f + m.face_count())
    });
    Ok((placed.len(), v, f))
}

/// True if the file starts with the session-file magic.
fn is_session_file(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == theta_crdt::store::MAGIC)
}

/// `theta info` for a session file. Opening it recovers a torn final write (and says so); any
/// other damage is an error naming it, and the file is left as it was.
fn session_info(path: &Path) -> Result<()> {
    let s = {
        let _p = crate::progress::spinner(format!("opening {}", path.display()));
        crate::store::SessionFile::open_session(path)?
    };
    let r = &s.opened.replica;
    let scene = r.scene();
    let (mut vertices, mut faces) = (0, 0);
    for (_, o) in scene.objects() {
        let mesh = o.mesh();
        vertices += mesh.vertex_count();
        faces += mesh.face_count();
    }
    let session = r.log().session().map(|c| c.to_string()).unwrap_or_default();
    println!("{}: session {session} \"{}\"", path.display(), scene.name());
    println!(
        "commands: {}, authors: {}, objects: {}, vertices: {vertices}, faces: {faces}",
        r.log().len(),
        r.log().authors().count(),
        scene.object_count()
    );
    let hash: String = scene
        .state_hash()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("state hash: {hash}");
    match (&s.opened.checkpoint_error, s.opened.from_checkpoint) {
        (Some(e), _) => println!("checkpoint: not used ({e})"),
        (None, 0) => println!("checkpoint: none"),
        (None, n) => println!("checkpoint: restored {n} commands"),
    }
    if s.dropped > 0 {
        println!(
            "recovered: dropped {} bytes of a torn final write (a command that was never reported saved)",
            s.dropped
        );
    }
    if let Some((i, e)) = s.opened.refused.first() {
        println!(
            "refused: {} records (the first, record {i}: {e})",
            s.opened.refused.len()
        );
    }
    Ok(())
}

/// Writes a file so that a crash leaves either the old file or the whole new one: write a temporary
/// file beside it, flush it to disk, rename it over the target, then sync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().context("output path has no file name")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        if let Ok(d) = fs::File::open(&dir) {
            // Persist the rename itself; not every platform can sync a directory, hence no `?`.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `WxH` in pixels.
#[cfg(feature = "desktop")]
fn parse_size(s: &str) -> Result<(u32, u32)> {
    let (w, h) = s
        .split_once('x')
        .with_context(|| format!("size {s:?} is not WIDTHxHEIGHT"))?;
    let (w, h): (u32, u32) = (
        w.parse()
            .with_context(|| format!("size {s:?}: bad width"))?,
        h.parse()
            .with_context(|| format!("size {s:?}: bad height"))?,
    );
    if !(64..=8192).contains(&w) || !(64..=8192).contains(&h) {
        bail!("size {s:?}: each side must be 64 to 8192 pixels");
    }
    Ok((w, h))
}

/// `theta bench desktop`: a session of icospheres in a temporary file, opened in the editor,
/// which draws `frames` frames as fast as it can and prints its figures.
#[cfg(feature = "desktop")]
fn bench_desktop(
    triangles: usize,
    size: (u32, u32),
    frames: u64,
    msaa: u32,
    panels_every_frame: bool,
) -> Result<()> {
    if let Some(p) = crate::desktop::display_problem() {
        bail!("{p}: run it under `xvfb-run -a` on a machine without a display");
    }
    let file = bench_scene(triangles)?;
    let r = crate::desktop::run(crate::desktop::Options {
        file: Some(file.clone()),
        join: None,
        net: crate::live::NetOptions {
            local: true,
            bind: Some("127.0.0.1:0".parse()?),
            ..Default::default()
        },
        size,
        report: false,
        bench: Some(frames),
        msaa,
        panels_every_frame,
    });
    if let Some(d) = file.parent() {
        let _ = fs::remove_dir_all(d);
    }
    r
}

/// `theta bench vr`: the VR frame loop on the scene of `bench desktop`, through the runtime
/// `XR_RUNTIME_JSON` names.
#[cfg(feature = "vr-openxr")]
fn bench_vr(triangles: usize, frames: u64) -> Result<()> {
    use crate::xr::session::{Ended, Options, run};
    let file = bench_scene(triangles)?;
    let ended = run(Options {
        file: Some(file.clone()),
        net: crate::live::NetOptions {
            local: true,
            bind: Some("127.0.0.1:0".parse()?),
            ..Default::default()
        },
        bench: Some(frames),
        ..Default::default()
    });
    if let Some(d) = file.parent() {
        let _ = std::fs::remove_dir_all(d);
    }
    match ended? {
        Ended::Closed => Ok(()),
        Ended::Unavailable(why) => bail!("VR: {why}"),
        Ended::Lost { why, .. } => bail!("VR: {why}"),
    }
}

/// A session file in a new temporary directory holding `triangles` triangles of icospheres on a
/// square grid (the desktop and VR benchmarks' scene).
#[cfg(feature = "desktop")]
fn bench_scene(triangles: usize) -> Result<PathBuf> {
    use theta_crdt::command::{ObjectTransform, Op};
    let dir = tempfile_dir()?;
    let file = dir.join("bench.theta");
    let dir_key = crate::identity::data_dir()?;
    let key =
        theta_crdt::sign::Keypair::from_secret(crate::identity::load_or_create_secret(&dir_key)?);
    let mut s = crate::session::Session::create(&file, &key, "bench")?;
    // An icosphere of level 3 has 1,280 triangles.
    let n = triangles.div_ceil(1280).max(1);
    let side = (n as f64).sqrt().ceil() as usize;
    let ops = (0..n).map(|i| Op::CreateObject {
        name: format!("ball {i}"),
        primitive: Primitive::Icosphere {
            radius: 0.3,
            level: 3,
        },
        material: MaterialId((i % 24) as u32),
        transform: ObjectTransform {
            translation: Vec3::new(
                (i % side) as f32 * 0.8 - side as f32 * 0.4,
                0.3,
                (i / side) as f32 * 0.8 - side as f32 * 0.4,
            ),
            ..ObjectTransform::IDENTITY
        },
    });
    s.edit_many(ops)?;
    s.close()?;
    Ok(file)
}

/// `theta bench memory`: writes the session, then measures two fresh processes opening it.
fn bench_memory(commands: usize) -> Result<()> {
    let t = std::time::Instant::now();
    let cmds = theta_crdt::workload::session(42, 3, commands);
    let genesis = theta_crdt::log::verify_command(&cmds[0])
        .map_err(|e| anyhow::anyhow!("the generated genesis: {e}"))?;
    let dir = tempfile_dir()?;
    let file = dir.join("memory.theta");
    let mut f = crate::store::SessionFile::create(&file, &genesis.id(), genesis.bytes())?;
    let rest: Vec<&[u8]> = cmds[1..].iter().map(Vec::as_slice).collect();
    for chunk in rest.chunks(8192) {
        f.append_blocks(chunk)?;
    }
    drop(f);
    drop(rest);
    println!(
        "{} commands ({:.1} MB signed) written in {:.1} s",
        cmds.len(),
        cmds.iter().map(Vec::len).sum::<usize>() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    drop(cmds);
    let exe = std::env::current_exe().context("finding this executable")?;
    // The first process opens from the file alone and leaves a checkpoint; the second opens
    // from it.
    for how in ["from the file", "from its checkpoint"] {
        let out = std::process::Command::new(&exe)
            .args(["bench", "memory", "--open"])
            .arg(&file)
            .env("HOME", &dir)
            // mimalloc hands freed memory back to the system 10 ms after it is freed, at its
            // next call; without a delay, a report taken right away shows what it settles to.
            .env("MIMALLOC_PURGE_DELAY", "0")
            .output()
            .context("running the measured process")?;
        if !out.status.success() {
            bail!(
                "the measured process failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        print!("opened {how}: {}", String::from_utf8_lossy(&out.stdout));
    }
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

/// This process's resident set in bytes (`VmRSS`), and its anonymous part (`RssAnon`: heap and
/// stacks, without the executable's pages).
fn resident() -> Result<(u64, u64)> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .with_context(|| format!("no {name} in /proc/self/status"))
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?))
}

/// The measured process of `theta bench memory`: opens the file, runs idle housekeeping until
/// done (the checkpoint, if one is due, then packing), and reports the resident set at each
/// stage.
fn memory_child(file: &Path) -> Result<String> {
    let mb = |b: u64| b as f64 / 1e6;
    let (rss0, anon0) = resident()?;
    let t = std::time::Instant::now();
    let key = theta_crdt::sign::Keypair::from_secret([7; 32]);
    let (mut s, report) = crate::session::Session::open(file, &key)?;
    let opened = t.elapsed();
    let (rss1, _) = resident()?;
    let t = std::time::Instant::now();
    let mut steps = 0;
    while s.idle()? {
        steps += 1;
    }
    let packing = t.elapsed();
    let (rss2, anon2) = resident()?;
    let scene = s.replica().scene();
    let packed = scene.objects().filter(|(_, o)| o.is_packed()).count();
    let line = format!(
        "{} commands in {:.2} s{}; resident {:.1} MB before opening, {:.1} MB opened, {:.1} MB \
         after idle housekeeping ({steps} steps, {:.0} ms; {packed} of {} objects packed): the \
         session adds {:.1} MB resident ({:.1} MB of anonymous memory)\n",
        s.replica().log().len(),
        opened.as_secs_f64(),
        if report.from_checkpoint > 0 {
            format!(", {} from the checkpoint", report.from_checkpoint)
        } else {
            String::new()
        },
        mb(rss0),
        mb(rss1),
        mb(rss2),
        packing.as_secs_f64() * 1e3,
        scene.object_count(),
        mb(rss2.saturating_sub(rss0)),
        mb(anon2.saturating_sub(anon0)),
    );
    // Idle housekeeping saved the checkpoint that the second process opens from (an open from
    // the file alone has one due).
    Ok(line)
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..1000u32 {
        let d = base.join(format!("theta-bench-{}-{n}", std::process::id()));
        if fs::create_dir(&d).is_ok() {
            return Ok(d);
        }
    }
    bail!("no temporary directory could be made in {}", base.display())
}
