//! VR mode end to end: `theta vr` through the system's OpenXR loader and the stand-in runtime
//! (`xr-standin/`, built by `.ci/test` before the tests), which creates the Vulkan instance and
//! device on lavapipe, plays a scripted user (head, controllers, buttons), and reports what the
//! app did, with the eye images it rendered read back from the swapchain. Each test runs in a
//! network namespace with only loopback (the session's node binds there).
#![cfg(feature = "vr-openxr")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use theta::presence::{Pose, Tool};
use theta_mesh::{PALETTE, Vec3};

#[path = "common/netns.rs"]
mod netns;
#[path = "common/vr_child.rs"]
mod vr_child;
use netns::in_loopback_netns;

/// The stand-in runtime's library, beside the theta binary (cargo puts a workspace's cdylibs
/// in the same directory).
fn standin() -> PathBuf {
    let lib = Path::new(env!("CARGO_BIN_EXE_theta"))
        .parent()
        .expect("the binary's directory")
        .join("libtheta_xr_standin.so");
    assert!(
        lib.is_file(),
        "{} is missing: build it first with `cargo build -p theta-xr-standin` (.ci/test does)",
        lib.display()
    );
    lib
}

/// A runtime manifest for the stand-in, the script, and the output directory, in `dir`.
fn runtime(dir: &Path, script: &Value) -> Vec<(String, String)> {
    let manifest = dir.join("standin.json");
    std::fs::write(
        &manifest,
        json!({
            "file_format_version": "1.0.0",
            "runtime": {"name": "Theta stand-in", "library_path": standin()}
        })
        .to_string(),
    )
    .unwrap();
    let script_file = dir.join("script.json");
    std::fs::write(&script_file, script.to_string()).unwrap();
    vec![
        ("XR_RUNTIME_JSON".into(), manifest.display().to_string()),
        (
            "THETA_XR_STANDIN_SCRIPT".into(),
            script_file.display().to_string(),
        ),
        (
            "THETA_XR_STANDIN_OUT".into(),
            dir.join("out").display().to_string(),
        ),
    ]
}

/// `theta vr s.theta --report --local` in `dir`, no display, loopback only.
fn theta_vr(dir: &Path, env: &[(String, String)]) -> Output {
    theta_vr_with(dir, env, &[])
}

/// The same, with more arguments.
fn theta_vr_with(dir: &Path, env: &[(String, String)], more: &[&str]) -> Output {
    let mut c = vr_child::theta_vr_in(dir);
    c.args(["--report", "--local", "--bind", "127.0.0.1:0"])
        .args(more)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("WGPU_BACKEND", "vulkan")
        .env(
            "VK_ICD_FILENAMES",
            "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json",
        );
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run theta")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `theta info s.theta` in `dir`.
fn info(dir: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_theta"))
        .args(["info", "s.theta"])
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `theta vr` on `script` (with `more` arguments), which must exit cleanly with no call the
/// runtime refused; its output and the runtime's report.
fn run_clean(dir: &Path, script: &Value, more: &[&str]) -> (Output, Value) {
    let env = runtime(dir, script);
    let o = theta_vr_with(dir, &env, more);
    assert!(o.status.success(), "{}", text(&o));
    let r = report(dir);
    assert_eq!(r["errors"], json!([]), "{r:#}\n{}", text(&o));
    (o, r)
}

/// `theta info` of the session file, which must say each of `wants` (the run `o` explains a
/// failure); the whole text.
fn holds(dir: &Path, o: &Output, wants: &[&str]) -> String {
    let info_text = info(dir);
    for w in wants {
        assert!(info_text.contains(w), "no {w:?}: {info_text}\n{}", text(o));
    }
    info_text
}

fn report(dir: &Path) -> Value {
    let p = dir.join("out/report.json");
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap()
}

/// The unit quaternion (x, y, z, w) that turns −Z towards `d`.
fn looking(d: [f32; 3]) -> [f32; 4] {
    let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    let b = [d[0] / n, d[1] / n, d[2] / n];
    // a = (0, 0, −1): a × b and 1 + a · b.
    let axis = [b[1], -b[0], 0.0];
    let w = 1.0 - b[2];
    let q = [axis[0], axis[1], axis[2], w];
    let m = q.iter().map(|c| c * c).sum::<f32>().sqrt();
    [q[0] / m, q[1] / m, q[2] / m, q[3] / m]
}

/// A pose from a position and the direction it looks.
fn pose(at: [f32; 3], towards: [f32; 3]) -> Value {
    let d = [towards[0] - at[0], towards[1] - at[1], towards[2] - at[2]];
    json!({"position": at, "orientation": looking(d)})
}

/// Presses a button of one hand `times` times (two frames down, two up).
fn presses(frames: &mut Vec<Value>, hand: &str, button: &str, times: usize) {
    for _ in 0..times {
        frames.push(json!({"repeat": 2, hand: {button: true}}));
        frames.push(json!({"repeat": 2, hand: {button: false}}));
    }
}

/// The user: picks red with the off hand's stick, steps the right hand's tools to Insert and
/// puts a cube on the floor, steps back to Extrude, pulls the cube's top face up, and clears
/// the selection.
fn cube_script() -> Value {
    let hand = [0.2, 1.2, -0.3];
    let floor = [0.0, 0.0, -1.5];
    // The default cube is 0.5 m: it stands on the floor with its top at 0.5 m.
    let top = [0.0, 0.5, -1.5];
    // The off hand hangs by the side, its panels out of view.
    let down = json!({"position": [-0.25, 0.9, 0.1], "orientation": [0.0, 0.0, 0.0, 1.0]});
    let mut f = vec![json!({"repeat": 10, "left": {"aim": down, "grip": down}})];
    // Five colours on: red.
    for _ in 0..5 {
        f.push(json!({"repeat": 2, "left": {"stick": [1.0, 0.0]}}));
        f.push(json!({"repeat": 2, "left": {"stick": [0.0, 0.0]}}));
    }
    // Select → Insert: six steps on.
    presses(&mut f, "right", "primary", 6);
    let p = pose(hand, floor);
    f.push(json!({"repeat": 3, "right": {"aim": p, "grip": p}}));
    f.push(json!({"repeat": 3, "right": {"trigger": 1.0}}));
    f.push(json!({"repeat": 6, "right": {"trigger": 0.0}}));
    // Insert → Extrude: four steps back.
    presses(&mut f, "right", "secondary", 4);
    let p = pose(hand, top);
    f.push(json!({"repeat": 4, "right": {"aim": p, "grip": p}}));
    f.push(json!({"repeat": 2, "right": {"trigger": 1.0}}));
    // Up by 0.4 m, the pointer's direction kept.
    for k in 1..=10 {
        let y = 0.04 * k as f32;
        let at = [hand[0], hand[1] + y, hand[2]];
        let p = pose(at, [top[0], top[1] + y, top[2]]);
        f.push(json!({"right": {"aim": p, "grip": p}}));
    }
    f.push(json!({"repeat": 3}));
    f.push(json!({"repeat": 6, "right": {"trigger": 0.0}}));
    // Rest, pointing away (nothing hovered), until the last frame, whose eyes are captured.
    let away = pose([0.2, 1.2, -0.3], [1.5, 1.2, -0.3]);
    f.push(json!({"repeat": 12, "right": {"aim": away, "grip": away}}));
    // Extrude → Select, and a click on nothing clears the selection (its highlight would tint
    // the cube).
    presses(&mut f, "right", "secondary", 2);
    f.push(json!({"repeat": 3, "right": {"trigger": 1.0}}));
    f.push(json!({"repeat": 6, "right": {"trigger": 0.0}}));
    json!({"view_size": [256, 256], "frames": f})
}

/// RGBA8 pixels of a PNG.
fn png(path: &Path) -> (u32, u32, Vec<u8>) {
    let d = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = d.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba, "{}", path.display());
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// The red pixels of an eye image (the cube: the sky, the floor and the grid are cool greys):
/// how many, and their mean column.
fn red(path: &Path) -> (usize, f64) {
    let (w, _, px) = png(path);
    let mut n = 0;
    let mut sum = 0.0;
    for (i, p) in px.chunks_exact(4).enumerate() {
        let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        if r > 120 && r > 2 * g && r > 2 * b {
            n += 1;
            sum += (i as u32 % w) as f64;
        }
    }
    (n, if n > 0 { sum / n as f64 } else { 0.0 })
}

#[test]
fn a_scripted_hand_inserts_and_extrudes_a_cube_that_both_eyes_show() {
    if !in_loopback_netns("a_scripted_hand_inserts_and_extrudes_a_cube_that_both_eyes_show") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = runtime(dir.path(), &cube_script());
    let o = theta_vr(dir.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let r = report(dir.path());
    // The whole lifecycle, in the specification's order, and no call refused.
    let states: Vec<&str> = r["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "IDLE",
            "READY",
            "SYNCHRONIZED",
            "VISIBLE",
            "FOCUSED",
            "VISIBLE",
            "SYNCHRONIZED",
            "STOPPING",
            "IDLE",
            "EXITING"
        ],
        "{r:#}"
    );
    assert_eq!(r["errors"], json!([]), "{r:#}\n{}", text(&o));
    assert_eq!(r["frames_waited"], r["frames_ended"], "{r:#}");
    assert!(r["frames_ended"].as_u64().unwrap() >= 100, "{r:#}");
    // Bindings for every profile Theta knows.
    assert_eq!(r["profiles"].as_array().unwrap().len(), 4, "{r:#}");
    // The extrude's grab and commit were felt in the right hand.
    let haptics = r["haptics"].as_array().unwrap();
    assert!(!haptics.is_empty(), "{r:#}");
    assert!(
        haptics.iter().all(|h| h["hand"] == "/user/hand/right"),
        "{r:#}"
    );
    // The session file holds the cube, extruded: 8 + 4 vertices, 6 + 4 faces, in red.
    let info_text = holds(dir.path(), &o, &["objects: 1", "vertices: 12", "faces: 10"]);
    // The report's last state line is the file's.
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().rfind(|l| l.starts_with("state ")).unwrap();
    let hash = last.split(' ').nth(2).unwrap();
    assert!(info_text.contains(hash), "{last}\n{info_text}");
    // Both eyes show the red cube, the left eye's view of it further right (stereo parallax).
    let captured = r["captured"].as_array().unwrap();
    assert_eq!(captured.len(), 2, "{r:#}");
    let (nl, xl) = red(&dir.path().join("out/eye-0.png"));
    let (nr, xr) = red(&dir.path().join("out/eye-1.png"));
    assert!(
        nl > 500 && nr > 500,
        "red pixels: left {nl}, right {nr}\n{}",
        text(&o)
    );
    assert!(
        xl - xr > 2.0,
        "mean red column: left {xl:.1}, right {xr:.1}"
    );
}

#[test]
fn a_refused_session_falls_back_in_one_line_and_touches_nothing() {
    if !in_loopback_netns("a_refused_session_falls_back_in_one_line_and_touches_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = json!({"fail": {"xrCreateSession": -2}});
    let env = runtime(dir.path(), &script);
    let o = theta_vr(dir.path(), &env);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "a line for VR, one for the window: {err}");
    assert!(
        lines[0].starts_with("theta: VR: ") && lines[0].contains("refused the session"),
        "{err}"
    );
    assert!(lines[0].contains("XR_ERROR_RUNTIME_FAILURE"), "{err}");
    assert!(lines[1].contains("no display"), "{err}");
    assert!(!dir.path().join("s.theta").exists());
}

#[test]
fn a_headset_lost_mid_session_keeps_every_edit_and_says_so() {
    if !in_loopback_netns("a_headset_lost_mid_session_keeps_every_edit_and_says_so") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Insert a cube, then the session is lost.
    let hand = [0.2, 1.2, -0.3];
    let p = pose(hand, [0.0, 0.0, -1.5]);
    let mut f = vec![json!({"repeat": 5})];
    presses(&mut f, "right", "primary", 6);
    f.push(json!({"repeat": 3, "right": {"aim": p, "grip": p}}));
    f.push(json!({"repeat": 3, "right": {"trigger": 1.0}}));
    f.push(json!({"repeat": 100, "right": {"trigger": 0.0}}));
    let script = json!({"loss_pending_at": 60, "frames": f});
    let env = runtime(dir.path(), &script);
    let o = theta_vr(dir.path(), &env);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("theta: VR: the headset session was lost")
                && l.contains("your edits are saved")),
        "{}",
        text(&o)
    );
    let r = report(dir.path());
    let states = r["states"].as_array().unwrap();
    assert!(states.iter().any(|s| s == "LOSS_PENDING"), "{r:#}");
    // The cube was saved before the loss.
    holds(dir.path(), &o, &["objects: 1"]);
}

#[test]
fn a_tracked_hand_without_its_controller_pinches_to_insert() {
    if !in_loopback_netns("a_tracked_hand_without_its_controller_pinches_to_insert") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The right controller steps to Insert, then is put down; the bare hand, its palm turned to
    // the floor, pinches there (the stand-in moves the thumb onto the index finger as the
    // scripted trigger rises).
    let p = pose([0.2, 1.2, -0.3], [0.0, 0.0, -1.5]);
    let mut f = vec![json!({"repeat": 5})];
    presses(&mut f, "right", "primary", 6);
    f.push(json!({"repeat": 3, "right": {"controller": false, "aim": p, "grip": p}}));
    f.push(json!({"repeat": 3, "right": {"trigger": 1.0}}));
    f.push(json!({"repeat": 6, "right": {"trigger": 0.0}}));
    let script = json!({"hand_tracking": true, "frames": f});
    let (o, r) = run_clean(dir.path(), &script, &[]);
    assert!(
        r["calls"]["xrLocateHandJointsEXT"].as_u64().unwrap_or(0) > 0,
        "{r:#}"
    );
    holds(dir.path(), &o, &["objects: 1"]);
}

/// A pose at `at` pointing at `target` (theta's vectors).
fn pointing(at: [f32; 3], target: Vec3) -> Value {
    pose(at, [target.x, target.y, target.z])
}

/// The frames so far (the next frame's index).
fn frame_count(frames: &[Value]) -> u64 {
    frames
        .iter()
        .map(|f| f["repeat"].as_u64().unwrap_or(1))
        .sum()
}

/// Pointing at `target` with the right hand from `hand`, then one pull of the trigger.
fn click(frames: &mut Vec<Value>, hand: [f32; 3], target: Vec3) {
    let p = pointing(hand, target);
    frames.push(json!({"repeat": 4, "right": {"aim": p, "grip": p}}));
    frames.push(json!({"repeat": 3, "right": {"trigger": 1.0}}));
    frames.push(json!({"repeat": 4, "right": {"trigger": 0.0}}));
}

/// How many pixels of an eye image are (r, g, b) such that `like` says so.
fn pixels(path: &Path, like: impl Fn(i32, i32, i32) -> bool) -> usize {
    let (_, _, px) = png(path);
    px.chunks_exact(4)
        .filter(|p| like(i32::from(p[0]), i32::from(p[1]), i32::from(p[2])))
        .count()
}

/// Pixels as dark as the panels' background (the scene's sky, ground and grid are lighter).
fn panel_pixels(path: &Path) -> usize {
    pixels(path, |r, g, b| r < 45 && g < 45 && b < 45)
}

/// Pixels of the palette's blue (the cube's faces, lit).
fn blue(path: &Path) -> usize {
    pixels(path, |r, g, b| b > 100 && b > r + 50 && b > g + 15)
}

#[test]
fn the_panels_in_the_world_pick_a_tool_and_a_colour_and_undo() {
    if !in_loopback_netns("the_panels_in_the_world_pick_a_tool_and_a_colour_and_undo") {
        return;
    }
    use theta::xr::ui;
    let dir = tempfile::tempdir().unwrap();
    // The left hand held up in front, palm down: its palette and colours face the eyes. The
    // right hand points from above and to the right.
    let left = [-0.15, 1.35, -0.35];
    let grip = Pose::at(Vec3::new(left[0], left[1], left[2]));
    let [(_, palette), (_, colours)] = ui::on_hand(&grip, true);
    let hand = [0.25, 1.5, 0.0];
    let tool = |t: Tool| {
        let i = theta::xr::actions::TOOLS
            .iter()
            .position(|x| *x == t)
            .unwrap();
        ui::point_on(&palette, ui::tool_button(i).center())
    };
    let blue_swatch = PALETTE.iter().position(|e| e.name == "blue").unwrap();
    let left_pose = json!({"position": left, "orientation": [0.0, 0.0, 0.0, 1.0]});
    let mut f =
        vec![json!({"repeat": 10, "left": {"aim": left_pose.clone(), "grip": left_pose.clone()}})];
    click(&mut f, hand, tool(Tool::Insert));
    click(
        &mut f,
        hand,
        ui::point_on(&colours, ui::swatch(blue_swatch).center()),
    );
    let palette_frame = frame_count(&f);
    f.push(json!({"repeat": 2}));
    // The left hand goes down; the right one puts a cube on the floor.
    let down = json!({"position": [-0.25, 0.9, 0.1], "orientation": [0.0, 0.0, 0.0, 1.0]});
    f.push(json!({"repeat": 2, "left": {"aim": down, "grip": down}}));
    click(&mut f, hand, Vec3::new(0.0, 0.0, -1.5));
    let away = pose(hand, [1.5, 1.5, 0.0]);
    f.push(json!({"repeat": 6, "right": {"aim": away, "grip": away}}));
    let cube_frame = frame_count(&f);
    f.push(json!({"repeat": 2}));
    // The menu button calls up the desk in front of the head; its Undo takes the cube back.
    f.push(json!({"repeat": 2, "left": {"menu": true}}));
    f.push(json!({"repeat": 4, "left": {"menu": false}}));
    let desk = ui::desk_in_front(&Pose::at(Vec3::new(0.0, 1.6, 0.0)));
    let [_, (_, history)] = ui::on_desk(&desk);
    click(
        &mut f,
        hand,
        ui::point_on(&history, ui::undo_button().center()),
    );
    f.push(json!({"repeat": 6, "right": {"aim": away, "grip": away}}));
    // The desk goes away again; the left hand comes up, and its palette's turn button turns
    // the user (the button a bare hand has for the stick).
    f.push(json!({"repeat": 2, "left": {"menu": true}}));
    f.push(json!({"repeat": 2, "left": {"menu": false, "aim": left_pose, "grip": left_pose}}));
    click(
        &mut f,
        hand,
        ui::point_on(&palette, ui::turn_button(0).center()),
    );
    let script = json!({
        "view_size": [256, 256],
        "capture_frames": [palette_frame, cube_frame],
        "frames": f,
    });
    let (o, _) = run_clean(dir.path(), &script, &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    // The palette's button and the colour's swatch were what the trigger pressed.
    assert!(out.contains("message tool: Insert"), "{}", text(&o));
    assert!(out.contains("message colour: blue"), "{}", text(&o));
    assert_eq!(
        out.matches("message turned left").count(),
        1,
        "{}",
        text(&o)
    );
    // Both eyes saw the panels, then the blue cube (the panels' clicks reached nothing else:
    // the cube came from the one pull aimed at the floor).
    let eye = |e: u32, k: u64| dir.path().join(format!("out/eye-{e}-frame-{k}.png"));
    for e in 0..2 {
        let n = panel_pixels(&eye(e, palette_frame));
        assert!(n > 1500, "eye {e}: {n} panel pixels\n{}", text(&o));
        let b = blue(&eye(e, cube_frame));
        assert!(b > 300, "eye {e}: {b} blue pixels\n{}", text(&o));
    }
    // The history's Undo took the cube back out: insert and undo are in the log, no object in
    // the scene.
    holds(dir.path(), &o, &["objects: 0"]);
}

/// Pixels of the play area's fence (a light blue the sky, the grid and the panels lack).
fn fence(path: &Path) -> usize {
    pixels(path, |r, g, b| b - r > 70 && g - r > 40 && b > 180)
}

#[test]
fn the_play_areas_fence_shows_when_the_head_nears_its_edge() {
    if !in_loopback_netns("the_play_areas_fence_shows_when_the_head_nears_its_edge") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The stand-in's stage is 3 m by 3 m: its edge is 1.5 m to the right of the middle. The
    // head looks towards it from the middle, then from 25 cm short of it.
    let right = [
        0.0,
        -std::f32::consts::FRAC_1_SQRT_2,
        0.0,
        std::f32::consts::FRAC_1_SQRT_2,
    ];
    let middle = json!({"position": [0.0, 1.6, 0.0], "orientation": right});
    let near = json!({"position": [1.25, 1.6, 0.0], "orientation": right});
    let script = json!({
        "view_size": [256, 256],
        "capture_frames": [19],
        "frames": [
            {"repeat": 20, "head": middle},
            {"repeat": 20, "head": near},
        ],
    });
    let (_, r) = run_clean(dir.path(), &script, &[]);
    assert!(
        r["calls"]["xrGetReferenceSpaceBoundsRect"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{r:#}"
    );
    for e in 0..2 {
        let far = fence(&dir.path().join(format!("out/eye-{e}-frame-19.png")));
        let close = fence(&dir.path().join(format!("out/eye-{e}.png")));
        assert_eq!(far, 0, "eye {e}: the fence shows 1.5 m from its edge");
        assert!(
            close > 150,
            "eye {e}: {close} fence pixels 25 cm from the edge"
        );
    }
}

#[test]
fn smooth_turning_darkens_the_edges_of_both_eyes_and_bad_comfort_words_are_refused() {
    if !in_loopback_netns(
        "smooth_turning_darkens_the_edges_of_both_eyes_and_bad_comfort_words_are_refused",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Still for 20 frames, then the right stick held over: a smooth turn at 90°/s.
    let script = json!({
        "view_size": [128, 128],
        "capture_frames": [19],
        "frames": [
            {"repeat": 20},
            {"repeat": 200, "right": {"stick": [1.0, 0.0]}},
        ],
    });
    run_clean(
        dir.path(),
        &script,
        &["--turn", "smooth", "--vignette", "0.8"],
    );
    let lum = |p: &[u8]| u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2]);
    for e in 0..2 {
        let (w, _, still) = png(&dir.path().join(format!("out/eye-{e}-frame-19.png")));
        let (_, _, turning) = png(&dir.path().join(format!("out/eye-{e}.png")));
        let at = |px: &[u8], x: u32, y: u32| lum(&px[((y * w + x) * 4) as usize..][..4]);
        // The corner (sky) darkens; the middle of the sky above the horizon does not.
        let (c0, c1) = (at(&still, 2, 2), at(&turning, 2, 2));
        assert!(c1 * 2 < c0, "eye {e}: corner {c0} → {c1}");
        let (m0, m1) = (at(&still, 64, 20), at(&turning, 64, 20));
        assert!(m1 * 10 > m0 * 9, "eye {e}: middle {m0} → {m1}");
    }
    // A word the options do not know is refused before anything opens.
    let env = runtime(dir.path(), &script);
    let o = theta_vr_with(dir.path(), &env, &["--turn", "spin"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--turn spin") && !err.contains("panicked"),
        "{err}"
    );
}
