//! The desktop editor end to end: two real `theta edit` windows on a real X server (Xvfb, with
//! lavapipe drawing), joined by a ticket over QUIC on loopback, driven only by real X input —
//! `xdotool` moving the pointer, clicking and typing through the XTEST extension, exactly as a
//! person's mouse and keyboard arrive — and checked by screenshots of the X server (ImageMagick's
//! `import`) and by the state hashes both windows report.
//!
//! The test re-runs itself inside a network namespace with only loopback (`unshare -n`), starts
//! its own X server there, and gives each editor its own home directory. It waits on the lines
//! the editors print (`--report`) and on `xdotool --sync`, never on sleeps.

#![cfg(feature = "desktop")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use theta::render::Image;

#[path = "common/netns.rs"]
mod netns;
use netns::in_loopback_netns;

const WAIT: Duration = Duration::from_secs(60);

/// An X server of the test's own, killed when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-screen",
                "0",
                "2600x760x24",
                "-nolisten",
                "tcp",
                "-displayfd",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (package xvfb) is needed for the desktop tests");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let n: u32 = line
            .trim()
            .parse()
            .expect("Xvfb printed its display number");
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }

    /// Runs xdotool with these arguments; returns its standard output.
    fn xdo(&self, args: &[&str]) -> String {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("xdotool is needed for the desktop tests");
        assert!(
            out.status.success(),
            "xdotool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The whole screen.
    fn screenshot(&self, path: &Path) -> Image {
        let st = Command::new("import")
            .args(["-window", "root"])
            .arg(path)
            .env("DISPLAY", &self.display)
            .status()
            .expect("ImageMagick's import is needed for the desktop tests");
        assert!(st.success(), "import failed");
        Image::load_png(path).unwrap()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One editor process.
struct Editor {
    child: Child,
    lines: mpsc::Receiver<String>,
    home: PathBuf,
    /// The last `state` it reported: commands, hash.
    state: Option<(usize, String)>,
    /// The last number of highlighted objects it reported.
    highlights: Option<usize>,
    /// The tool (wire number) and material in hand, as last reported.
    tool: Option<(u8, u32)>,
    /// Whether a text field has the keyboard, as last reported.
    typing: bool,
    /// Its camera as last reported: x, y, z, yaw°, pitch°, and whether it follows someone.
    camera: Option<([f32; 5], bool)>,
    /// Messages the window showed, and screenshots it saved.
    messages: Vec<String>,
    screenshots: Vec<PathBuf>,
    ticket: Option<String>,
    window: String,
}

impl Editor {
    fn start(x: &Xvfb, home: &Path, args: &[&str]) -> Editor {
        std::fs::create_dir_all(home).unwrap();
        let runtime = home.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_theta"))
            .arg("edit")
            .args(args)
            .args(["--local", "--bind", "127.0.0.1:0", "--report"])
            .current_dir(home)
            .env("HOME", home)
            .env("DISPLAY", &x.display)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(home.join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Editor {
            child,
            lines,
            home: home.to_owned(),
            state: None,
            highlights: None,
            tool: None,
            typing: false,
            camera: None,
            messages: Vec::new(),
            screenshots: Vec::new(),
            ticket: None,
            window: String::new(),
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.home.join("stderr.txt")).unwrap_or_default()
    }

    /// Takes in every line already printed.
    fn drain(&mut self) {
        self.wait("", |_| true);
        while let Ok(l) = self.lines.try_recv() {
            self.take(&l);
        }
    }

    fn take(&mut self, l: &str) {
        if let Some(t) = l.strip_prefix("ticket ") {
            self.ticket = Some(t.to_owned());
        } else if let Some(t) = l.strip_prefix("tool ") {
            let w: Vec<&str> = t.split_whitespace().collect();
            self.tool = Some((w[0].parse().unwrap(), w[2].parse().unwrap()));
        } else if let Some(c) = l.strip_prefix("camera ") {
            let w: Vec<f32> = c.split_whitespace().map(|v| v.parse().unwrap()).collect();
            self.camera = Some(([w[0], w[1], w[2], w[3], w[4]], w[5] == 1.0));
        } else if let Some(m) = l.strip_prefix("message ") {
            self.messages.push(m.to_owned());
        } else if let Some(p) = l.strip_prefix("screenshot ") {
            self.screenshots.push(PathBuf::from(p));
        } else if let Some(t) = l.strip_prefix("typing ") {
            self.typing = t == "1";
        } else if let Some(n) = l.strip_prefix("highlights ") {
            self.highlights = n.parse().ok();
        } else if let Some(s) = l.strip_prefix("state ") {
            let mut w = s.split_whitespace();
            let n = w.next().unwrap().parse().unwrap();
            self.state = Some((n, w.next().unwrap().to_owned()));
        }
    }

    /// Reads lines until `done` holds for this editor's state, or panics after the timeout.
    fn wait(&mut self, what: &str, done: impl Fn(&Editor) -> bool) {
        let end = Instant::now() + WAIT;
        while !done(self) {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.take(&l),
                Err(_) => panic!(
                    "waiting for {what}: the editor said nothing more (last state {:?}); its stderr:\n{}",
                    self.state,
                    self.stderr()
                ),
            }
        }
    }

    fn len(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.0)
    }
}

/// Waits until both editors report the same state with at least `n` commands.
fn converge(a: &mut Editor, b: &mut Editor, n: usize) -> (usize, String) {
    loop {
        if a.len() >= n && a.state == b.state {
            return a.state.clone().unwrap();
        }
        let (la, lb) = (a.len(), b.len());
        if la < n || la < lb {
            let want = n.max(lb);
            eprintln!("ana {la}, ben {lb}: waiting for ana to reach {want}");
            a.wait("ana to catch up", |e| e.len() >= want);
        } else if lb < la {
            b.wait("ben to catch up", |e| e.len() >= la);
        } else {
            // As many commands, not the same states: each still lacks one of the other's, or
            // one has yet to report its state after folding. Either may speak next.
            next_of_either(a, b);
        }
    }
}

/// Takes the next line either editor prints, or panics after the timeout.
fn next_of_either(a: &mut Editor, b: &mut Editor) {
    let end = Instant::now() + WAIT;
    let step = Duration::from_millis(20);
    while Instant::now() < end {
        for e in [&mut *a, &mut *b] {
            if let Ok(l) = e.lines.recv_timeout(step) {
                e.take(&l);
                return;
            }
        }
    }
    panic!(
        "waiting for either editor's next state: neither said more (ana {:?}, ben {:?}); ana's stderr:\n{}\nben's stderr:\n{}",
        a.state,
        b.state,
        a.stderr(),
        b.stderr()
    );
}

/// With `THETA_GUIDE_SHOTS=<dir>`, the editor's own screenshot (F12) of its window, copied into
/// that directory as `<name>.png`: this is how `docs/USER_GUIDE.md`'s pictures are made.
fn guide_shot(x: &Xvfb, e: &mut Editor, name: &str) {
    let Some(dir) = std::env::var_os("THETA_GUIDE_SHOTS") else {
        return;
    };
    x.xdo(&["windowfocus", "--sync", &e.window]);
    let had = e.screenshots.len();
    x.xdo(&["key", "F12"]);
    e.wait("the editor's screenshot", |e| e.screenshots.len() > had);
    let from = e.screenshots.last().unwrap().clone();
    std::fs::copy(&from, Path::new(&dir).join(format!("{name}.png"))).unwrap();
}

/// Whether two reported views are the same (to the report's rounding).
fn same_view(a: &[f32; 5], b: &[f32; 5]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 0.02)
}

/// The share of pixels of the 3D view (between the panels) that differ by more than 24 in some
/// channel between the windows at `a` and `b`.
fn view_difference(img: &Image, a: (u32, u32), b: (u32, u32)) -> f64 {
    let (mut differ, mut all) = (0u64, 0u64);
    for y in (40..680).step_by(2) {
        for x in (200..1020).step_by(2) {
            let (p, q) = (at(img, a, x, y), at(img, b, x, y));
            all += 1;
            if p.iter().zip(q).any(|(u, v)| u.abs_diff(v) > 24) {
                differ += 1;
            }
        }
    }
    differ as f64 / all as f64
}

fn is_red(p: [u8; 4]) -> bool {
    let [r, g, b, _] = p.map(u32::from);
    r > 90 && r > 2 * g && r > 2 * b
}

/// A pixel of the window whose top left is at `origin` on the screen.
fn at(img: &Image, origin: (u32, u32), x: u32, y: u32) -> [u8; 4] {
    img.pixel(origin.0 + x, origin.1 + y)
}

#[test]
fn two_editors_model_together_through_real_input() {
    if !in_loopback_netns("two_editors_model_together_through_real_input") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let x = Xvfb::start();
    // Ana hosts; her window says where its session file is.
    let mut ana = Editor::start(
        &x,
        &dir.path().join("ana"),
        &["ana.theta", "--display-name", "Ana"],
    );
    ana.wait("ana's ticket and first frame", |e| {
        e.ticket.is_some() && e.state.is_some()
    });
    ana.window = x
        .xdo(&["search", "--sync", "--name", "ana.theta"])
        .trim()
        .to_owned();
    guide_shot(&x, &mut ana, "start");
    let ticket = ana.ticket.clone().unwrap();
    let mut ben = Editor::start(
        &x,
        &dir.path().join("ben"),
        &["ben.theta", "--join", &ticket, "--display-name", "Ben"],
    );
    ben.wait("ben's first frame", |e| e.state.is_some());
    // Ben's invite redemption reaches Ana: both hold the same log.
    let (joined, _) = converge(&mut ana, &mut ben, 2);

    // The windows: Ana's at the left of the screen, Ben's moved to the right.
    ben.window = x
        .xdo(&["search", "--sync", "--name", "ben.theta"])
        .trim()
        .to_owned();
    let a0 = (0u32, 0u32);
    let b0 = (1300u32, 0u32);
    x.xdo(&["windowmove", "--sync", &ben.window, "1300", "0"]);
    x.xdo(&["windowmove", "--sync", &ana.window, "0", "0"]);
    guide_shot(&x, &mut ana, "host");
    guide_shot(&x, &mut ben, "join");
    // Where the cube goes: a point on the ground in the middle of the view.
    let (px, py) = (610u32, 420u32);
    let before = x.screenshot(&dir.path().join("before.png"));
    for (who, origin) in [("ana", a0), ("ben", b0)] {
        let p = at(&before, origin, px, py);
        assert!(
            !is_red(p),
            "{who}'s window shows {p:?} before anything was made"
        );
    }

    // Ana: red from the palette (five steps on from white with `]`), the insert tool (`a`), and
    // a click on the ground.
    x.xdo(&["windowfocus", "--sync", &ana.window]);
    x.xdo(&[
        "mousemove",
        "--sync",
        &(a0.0 + px).to_string(),
        &(a0.1 + py).to_string(),
    ]);
    // Each key press is read back from the editor's report before the next (the tool and
    // material it has in hand), so no key is sent before the window has taken the last.
    ana.drain();
    for step in 1..=5u32 {
        x.xdo(&["key", "bracketright"]);
        ana.wait("the next colour", |e| e.tool.is_some_and(|t| t.1 == step));
    }
    x.xdo(&["key", "a"]);
    ana.wait("the insert tool", |e| e.tool == Some((6, 5)));
    x.xdo(&["click", "1"]);
    let (n1, _) = converge(&mut ana, &mut ben, joined + 1);
    assert_eq!(n1, joined + 1, "one click made one command");

    // Ana takes the select tool and moves the pointer off the cube: once neither window draws a
    // highlight (hers, or hers as Ben sees it through presence), both show the cube as it is:
    // where Ana clicked, red, in both windows (the same default view).
    ana.drain();
    ana.wait("ana's own hover", |e| e.highlights == Some(1));
    ben.wait("ana's hover in ben's window", |e| e.highlights == Some(1));
    x.xdo(&["key", "q"]);
    x.xdo(&[
        "mousemove",
        "--sync",
        &(a0.0 + 300).to_string(),
        &(a0.1 + 650).to_string(),
    ]);
    ana.wait("ana's hover to end", |e| e.highlights == Some(0));
    ben.wait("ana's hover to end in ben's window", |e| {
        e.highlights == Some(0)
    });
    let after = x.screenshot(&dir.path().join("after.png"));
    for (who, origin) in [("ana", a0), ("ben", b0)] {
        let p = at(&after, origin, px, py);
        assert!(
            is_red(p),
            "{who}'s window shows {p:?} where the red cube should be"
        );
    }

    // Ben: selects the cube with a click and renames it by typing into the inspector's name
    // field (F2 focuses it with the old name selected).
    x.xdo(&["windowfocus", "--sync", &ben.window]);
    x.xdo(&[
        "mousemove",
        "--sync",
        &(b0.0 + px).to_string(),
        &(b0.1 + py).to_string(),
    ]);
    ben.drain();
    x.xdo(&["click", "1"]);
    ben.wait("ben's selection", |e| e.highlights == Some(1));
    x.xdo(&["key", "F2"]);
    ben.wait("the name field to take the keyboard", |e| e.typing);
    x.xdo(&["type", "--delay", "30", "Tower"]);
    x.xdo(&["key", "Return"]);
    let (n2, _) = converge(&mut ana, &mut ben, n1 + 1);

    // Ben's selection shows in Ana's window too (in his colour).
    ana.wait("ben's selection in ana's window", |e| {
        e.highlights == Some(1)
    });
    guide_shot(&x, &mut ben, "model");

    // Ana exports the model: Ctrl+E takes her to the file field, where she types a path and
    // presses Return.
    x.xdo(&["windowfocus", "--sync", &ana.window]);
    x.xdo(&["key", "ctrl+e"]);
    ana.wait("the file field to take the keyboard", |e| e.typing);
    x.xdo(&["type", "--delay", "30", "model.glb"]);
    x.xdo(&["key", "Return"]);
    ana.wait("the export", |e| {
        e.messages
            .iter()
            .any(|m| m.starts_with("exported 1 objects"))
    });
    let glb = std::fs::read(ana.home.join("model.glb")).unwrap();
    assert_eq!(&glb[..4], b"glTF", "a binary glTF file");
    guide_shot(&x, &mut ana, "export");

    // Ben clears his selection (Escape) and follows Ana (Ctrl+F); Ana orbits her view with the
    // middle button and takes the pointer off the scene. Ben's view follows hers until he moves
    // it himself (the wheel).
    x.xdo(&["windowfocus", "--sync", &ben.window]);
    x.xdo(&["mousemove", "--sync", &(b0.0 + 100).to_string(), "600"]);
    x.xdo(&["key", "Escape"]);
    ben.wait("ben's selection to clear", |e| e.highlights == Some(0));
    x.xdo(&["key", "ctrl+f"]);
    ben.wait("ben to follow", |e| e.camera.is_some_and(|c| c.1));
    x.xdo(&["windowfocus", "--sync", &ana.window]);
    let start = ana.camera.unwrap().0;
    x.xdo(&["mousemove", "--sync", "700", "500"]);
    x.xdo(&["mousedown", "2"]);
    x.xdo(&["mousemove", "--sync", "820", "470"]);
    x.xdo(&["mouseup", "2"]);
    x.xdo(&["mousemove", "--sync", "100", "600"]);
    ana.wait("ana's orbit", |e| {
        e.camera.is_some_and(|c| !same_view(&c.0, &start)) && e.highlights == Some(0)
    });
    let hers = ana.camera.unwrap().0;
    ben.wait("ben's view to follow ana's", |e| {
        e.camera.is_some_and(|c| c.1 && same_view(&c.0, &hers)) && e.highlights == Some(0)
    });
    let followed = x.screenshot(&dir.path().join("followed.png"));
    let d = view_difference(&followed, a0, b0);
    assert!(d < 0.02, "{:.1}% of the followed view differs", d * 100.0);
    x.xdo(&["windowfocus", "--sync", &ben.window]);
    x.xdo(&["mousemove", "--sync", &(b0.0 + 600).to_string(), "400"]);
    x.xdo(&["click", "5"]);
    ben.wait("ben to stop following", |e| e.camera.is_some_and(|c| !c.1));

    // Ana closes with Ctrl+Q; Ben's editor is killed outright (SIGKILL). Both files then hold
    // the same scene, with the renamed cube: nothing shown was unsaved.
    x.xdo(&["windowfocus", "--sync", &ana.window]);
    x.xdo(&["key", "ctrl+q"]);
    let st = ana.child.wait().unwrap();
    assert!(st.success(), "editor exit {st:?}: {}", ana.stderr());
    ben.child.kill().unwrap();
    ben.child.wait().unwrap();
    let info = |home: &Path, file: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_theta"))
            .args(["export"])
            .arg(home.join(file))
            .arg(home.join("out.obj"))
            .env("HOME", home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(home.join("out.obj")).unwrap()
    };
    assert_eq!(n2, n1 + 1, "the rename is one command");
    let a_obj = info(&ana.home, "ana.theta");
    let b_obj = info(&ben.home, "ben.theta");
    assert!(a_obj.contains("o Tower"), "{a_obj}");
    assert_eq!(a_obj, b_obj);
}

/// VR mode without an OpenXR loader, where there is a display: one line saying why, then the
/// desktop editor on the same session, which closes cleanly with Ctrl+Q.
#[test]
#[cfg(feature = "vr-openxr")]
fn vr_without_openxr_opens_the_desktop_editor_instead() {
    if !in_loopback_netns("vr_without_openxr_opens_the_desktop_editor_instead") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let x = Xvfb::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_theta"))
        .args(["vr", "vr.theta", "--local", "--bind", "127.0.0.1:0"])
        .current_dir(home)
        .env("HOME", home)
        .env("DISPLAY", &x.display)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("THETA_OPENXR_LOADER", home.join("no-such-loader.so"))
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("XR_LOADER_DEBUG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.join("stderr.txt")).unwrap())
        .spawn()
        .unwrap();
    // The window appears (xdotool waits for it; `timeout` bounds the wait).
    let found = Command::new("timeout")
        .args(["60", "xdotool", "search", "--sync", "--name", "vr.theta"])
        .env("DISPLAY", &x.display)
        .output()
        .unwrap();
    let stderr = || std::fs::read_to_string(home.join("stderr.txt")).unwrap_or_default();
    assert!(
        found.status.success(),
        "no editor window within 60 s; stderr:\n{}",
        stderr()
    );
    let window = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    x.xdo(&["windowfocus", "--sync", &window]);
    x.xdo(&["key", "ctrl+q"]);
    let st = child.wait().unwrap();
    let err = stderr();
    assert!(st.success(), "editor exit {st:?}: {err}");
    let mut lines = err.lines();
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with("theta: VR: no OpenXR loader ("), "{err}");
    assert_eq!(
        lines.next(),
        Some("theta: opening the desktop editor instead"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(home.join("vr.theta").exists(), "the session file was made");
}
