//! The `theta` binary end to end: real processes, real files in a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

#[cfg(feature = "vr-openxr")]
#[path = "common/vr_child.rs"]
mod vr_child;

fn theta(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_theta"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        // No display: a bare `theta` would open the editor where there is one.
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run theta")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn bare_theta_explains_itself_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let o = theta(&[], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(out.contains("headless commands"));
    assert!(out.contains("no display"), "{out}");
}

#[test]
#[cfg(feature = "desktop")]
fn asking_for_a_window_without_a_display_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["edit", "s.theta"][..], &["bench", "desktop"]] {
        let o = theta(args, dir.path());
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("no display"), "{err}");
        // Nothing was made.
        assert!(!dir.path().join("s.theta").exists());
    }
}

/// `theta vr` in `dir` with these extra environment variables, no display, no runtime
/// configured anywhere but where the test says.
#[cfg(feature = "vr-openxr")]
fn theta_vr(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = vr_child::theta_vr_in(dir);
    c.env("XDG_CONFIG_DIRS", dir.join("etc"))
        .env_remove("XR_RUNTIME_JSON");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run theta")
}

#[test]
#[cfg(feature = "vr-openxr")]
fn vr_without_a_loader_a_runtime_or_a_display_says_why_in_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let check = |o: &Output, vr: &str| {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}", text(o));
        assert!(!err.contains("panicked"), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "a line for VR, one for the window: {err}");
        assert!(
            lines[0].starts_with("theta: VR: ") && lines[0].contains(vr),
            "{err}"
        );
        assert!(lines[1].contains("no display"), "{err}");
        // Nothing was made.
        assert!(!dir.path().join("s.theta").exists());
    };
    // No loader: the file named, and how to get one.
    let o = theta_vr(
        dir.path(),
        &[("THETA_OPENXR_LOADER", "/nonexistent/libopenxr_loader.so.1")],
    );
    check(&o, "no OpenXR loader (/nonexistent/libopenxr_loader.so.1");
    // The system's loader (.ci/setup installs libopenxr-loader1), no runtime configured.
    let o = theta_vr(dir.path(), &[]);
    check(&o, "no OpenXR runtime is active");
    // A runtime manifest naming a library that is not there: the same, and the loader's own
    // complaints stay out of the terminal.
    let manifest = dir.path().join("runtime.json");
    std::fs::write(
        &manifest,
        r#"{"file_format_version": "1.0.0", "runtime": {"library_path": "/nonexistent/libruntime.so"}}"#,
    )
    .unwrap();
    let o = theta_vr(
        dir.path(),
        &[("XR_RUNTIME_JSON", manifest.to_str().unwrap())],
    );
    check(&o, "no OpenXR runtime is active");
    // A manifest that is not JSON at all.
    std::fs::write(&manifest, "\u{0}not json{").unwrap();
    let o = theta_vr(
        dir.path(),
        &[("XR_RUNTIME_JSON", manifest.to_str().unwrap())],
    );
    check(&o, "OpenXR runtime");
}

#[test]
fn primitive_convert_and_info_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let o = theta(
        &[
            "primitive",
            "torus",
            "--out",
            "t.glb",
            "--segments",
            "12",
            "--color",
            "red",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.path().join("t.glb").exists());
    let o = theta(&["convert", "t.glb", "t.obj"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.path().join("t.mtl").exists());
    let o = theta(&["info", "t.obj"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("euler characteristic: 0"), "{out}");
    assert!(out.contains("valid: yes"), "{out}");
    let o = theta(
        &["primitive", "cube", "--out", "c.obj", "--subdivide", "2"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = theta(&["info", "c.obj"], dir.path());
    assert!(text(&o).contains("96 faces"), "{}", text(&o));
}

#[test]
fn bad_input_is_a_clear_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.obj"), "v 0 0 0\nv 1 0 0\nf 1 2 9\n").unwrap();
    let o = theta(&["info", "bad.obj"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("theta: error:"), "{err}");
    assert!(err.contains("line 3"), "names the line: {err}");
    std::fs::write(dir.path().join("bad.glb"), b"glTF\x02\x00\x00\x00garbage").unwrap();
    let o = theta(&["convert", "bad.glb", "out.obj"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        !dir.path().join("out.obj").exists(),
        "nothing written on failure"
    );
    let o = theta(&["primitive", "cube", "--out", "x.stl"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("unsupported output format"));
    let o = theta(
        &[
            "primitive",
            "cube",
            "--out",
            "x.glb",
            "--color",
            "ultraviolet",
        ],
        dir.path(),
    );
    assert!(text(&o).contains("unknown colour"));
    let o = theta(
        &["primitive", "cone", "--out", "x.glb", "--segments", "2"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("segments"), "{}", text(&o));
}

#[test]
fn info_on_a_session_file_reports_its_contents_and_what_was_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.theta");
    // A real session file, written by the crash-test writer (appends, compactions, checkpoints).
    let w = Command::new(env!("CARGO_BIN_EXE_theta-crash-writer"))
        .args([path.to_str().unwrap(), "3", "40", "2000", "7"])
        .output()
        .unwrap();
    assert!(w.status.success(), "{}", text(&w));
    let o = theta(&["info", "s.theta"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    // Genesis, the grant to the second author, and 40 edits.
    assert!(out.contains("commands: 42, authors: 2"), "{out}");
    assert!(out.contains("state hash: "), "{out}");
    assert!(out.contains("checkpoint: "), "{out}");
    assert!(!out.contains("recovered"), "{out}");
    let hash = out
        .lines()
        .find(|l| l.starts_with("state hash: "))
        .unwrap()
        .to_string();
    // Without the checkpoint: the same scene, from verifying and folding every command.
    std::fs::remove_file(dir.path().join("s.theta.checkpoint")).unwrap();
    let o = theta(&["info", "s.theta"], dir.path());
    let out = text(&o);
    assert!(
        out.contains(&hash) && out.contains("checkpoint: none"),
        "{out}"
    );
    // A torn final write: half a record appended. Recovered, and the user is told.
    let mut bytes = std::fs::read(&path).unwrap();
    let mut rec = Vec::new();
    theta_crdt::store::encode_command_record(&[7u8; 300], &mut rec);
    bytes.extend_from_slice(&rec[..150]);
    std::fs::write(&path, &bytes).unwrap();
    let o = theta(&["info", "s.theta"], dir.path());
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("recovered: dropped 150 bytes"), "{out}");
    assert!(out.contains(&hash), "{out}");
    // Damage in the middle: a clear error, a failing exit, and the file untouched.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[theta_crdt::store::HEADER_LEN + 20] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let o = theta(&["info", "s.theta"], dir.path());
    assert!(!o.status.success());
    assert!(text(&o).contains("corrupt at byte 48"), "{}", text(&o));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "never overwritten");
}

#[test]
fn export_writes_a_sessions_scene_that_reads_back_with_the_same_counts() {
    use theta_crdt::command::{ObjectTransform, Op};
    use theta_mesh::{MaterialId, Primitive, Quat, Vec3};
    let dir = tempfile::tempdir().unwrap();
    let key = theta_crdt::workload::author_key(0);
    let mut s = theta::session::Session::create(&dir.path().join("s.theta"), &key, "two").unwrap();
    for (i, x) in [0.0f32, 4.0].iter().enumerate() {
        s.edit(Op::CreateObject {
            name: format!("box{i}"),
            primitive: Primitive::Cuboid {
                size: Vec3::new(1.0, 2.0, 1.0),
            },
            material: MaterialId(i as u32),
            transform: ObjectTransform {
                translation: Vec3::new(*x, 0.0, 0.0),
                rotation: Quat {
                    x: 0.0,
                    y: std::f32::consts::FRAC_1_SQRT_2,
                    z: 0.0,
                    w: std::f32::consts::FRAC_1_SQRT_2,
                },
                scale: Vec3::ONE,
            },
        })
        .unwrap();
    }
    s.close().unwrap();
    // GLB stores triangles (each box's 6 quads come back as 12 triangles); OBJ keeps polygons.
    for (out, faces) in [("scene.glb", "24 faces"), ("scene.obj", "12 faces")] {
        let o = theta(&["export", "s.theta", out], dir.path());
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("2 objects, 16 vertices, 12 faces"),
            "{}",
            text(&o)
        );
        let o = theta(&["info", out], dir.path());
        let info = text(&o);
        assert!(o.status.success(), "{info}");
        assert!(
            info.contains("16 vertices, ") && info.contains(faces),
            "{out}: {info}"
        );
        // The rotation is baked in: the 2 m tall boxes stay 2 m tall, and the second one sits
        // 4 m along x.
        assert!(
            info.contains("max (4.5, 1, 0.5)") && info.contains("min (-0.5, -1, -0.5)"),
            "{out}: {info}"
        );
    }
    // Bad input: a clear error, a non-zero exit, nothing written.
    for (args, says) in [
        (&["export", "missing.theta", "x.glb"][..], "missing.theta"),
        (
            &["export", "s.theta", "x.stl"][..],
            "unsupported output format",
        ),
        (&["export", "scene.glb", "x.glb"][..], "not a session file"),
    ] {
        let o = theta(args, dir.path());
        assert!(!o.status.success(), "{args:?}");
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    assert!(!dir.path().join("x.glb").exists() && !dir.path().join("x.stl").exists());
}

#[test]
fn bench_engine_runs_and_checks_the_world_against_the_scene() {
    let dir = tempfile::tempdir().unwrap();
    let o = theta(
        &["bench", "engine", "--objects", "40", "--frames", "90"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("4040 vertices"), "{out}");
    assert!(out.contains("100 remote commands over 90 frames"), "{out}");
    assert!(out.contains("engine per frame"), "{out}");
}

#[test]
fn merge_joins_two_offline_copies_either_way_to_one_state() {
    use theta_crdt::command::{ObjectTransform, Op};
    use theta_crdt::ids::Role;
    use theta_mesh::{MaterialId, Primitive, Vec3};
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let ada = theta_crdt::workload::author_key(0);
    let bob = theta_crdt::workload::author_key(1);
    let cube = |x: f32| Op::CreateObject {
        name: format!("c{x}"),
        primitive: Primitive::Cuboid { size: Vec3::ONE },
        material: MaterialId(1),
        transform: ObjectTransform {
            translation: Vec3::new(x, 0.0, 0.0),
            ..ObjectTransform::IDENTITY
        },
    };
    let mut s = theta::session::Session::create(&p("a.theta"), &ada, "shared").unwrap();
    s.edit(Op::GrantRole {
        author: bob.author(),
        role: Role::Editor,
    })
    .unwrap();
    s.close().unwrap();
    std::fs::copy(p("a.theta"), p("b.theta")).unwrap();
    // Offline: Ada edits her copy, Bob his.
    let (mut a, _) = theta::session::Session::open(&p("a.theta"), &ada).unwrap();
    a.edit(cube(0.0)).unwrap();
    a.edit(cube(1.0)).unwrap();
    a.close().unwrap();
    let (mut b, _) = theta::session::Session::open(&p("b.theta"), &bob).unwrap();
    for x in [5.0, 6.0, 7.0] {
        b.edit(cube(x)).unwrap();
    }
    b.close().unwrap();
    std::fs::copy(p("b.theta"), p("b2.theta")).unwrap();
    std::fs::copy(p("a.theta"), p("a2.theta")).unwrap();
    let b_before = std::fs::read(p("b.theta")).unwrap();
    let o = theta(&["merge", "a.theta", "b.theta"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("merged 3 commands") && out.contains(": 7 commands"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(p("b.theta")).unwrap(),
        b_before,
        "B is not changed"
    );
    let o = theta(&["merge", "b2.theta", "a2.theta"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let other = text(&o);
    assert!(other.contains("merged 2 commands"), "{other}");
    let hash = |s: &str| s.split("state hash ").nth(1).unwrap().trim().to_owned();
    assert_eq!(hash(&out), hash(&other));
    // The merged file reopens to the same state, and a second merge adds nothing.
    let o = theta(&["info", "a.theta"], dir.path());
    assert!(text(&o).contains(&hash(&out)), "{}", text(&o));
    let o = theta(&["merge", "a.theta", "b.theta"], dir.path());
    assert!(text(&o).contains("merged 0 commands"), "{}", text(&o));
    // Another session is refused, and nothing is merged.
    theta::session::Session::create(&p("c.theta"), &ada, "other")
        .unwrap()
        .close()
        .unwrap();
    let before = std::fs::read(p("a.theta")).unwrap();
    let o = theta(&["merge", "a.theta", "c.theta"], dir.path());
    assert!(!o.status.success());
    assert!(text(&o).contains("different sessions"), "{}", text(&o));
    assert_eq!(std::fs::read(p("a.theta")).unwrap(), before);
}

#[test]
fn a_script_builds_saves_and_exports_a_model_that_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/model.theta-script");
    let o = theta(&["run", "--script", script.to_str().unwrap()], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("state hash: "))
        .unwrap()
        .to_owned();
    // Reopened, the session folds to the same state.
    let o = theta(&["info", "model.theta"], dir.path());
    assert!(text(&o).contains(&hash), "{}", text(&o));
    // The GLB holds the same vertices, and each face as its triangles.
    let key = theta_crdt::workload::author_key(0);
    let (s, _) = theta::session::Session::open(&dir.path().join("model.theta"), &key).unwrap();
    let (mut v, mut t) = (0, 0);
    for (_, o) in s.replica().scene().objects() {
        let mesh = o.mesh();
        v += mesh.vertex_count();
        t += mesh.triangulate().triangle_count();
    }
    let o = theta(&["info", "model.glb"], dir.path());
    let info = text(&o);
    assert!(
        info.contains(&format!("model.glb: {v} vertices, "))
            && info.contains(&format!(", {t} faces")),
        "{v} vertices and {t} triangles wanted: {info}"
    );
    assert!(info.contains("valid: yes"), "{info}");
}

#[test]
fn a_script_error_names_its_line_and_stops_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.txt"),
        "new s.theta\ncube a\nextrdue a +y 1\ncube b\n",
    )
    .unwrap();
    let o = theta(&["run", "--script", "bad.txt"], dir.path());
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("bad.txt:3") && out.contains("unknown command `extrdue`"),
        "{out}"
    );
    // What came before it was saved; what came after never ran.
    let o = theta(&["info", "s.theta"], dir.path());
    assert!(text(&o).contains("objects: 1"), "{}", text(&o));
    for (script, says) in [
        ("cube a\n", "no session yet"),
        (
            "new t.theta\nextrude ghost +y 1\n",
            "no object named `ghost`",
        ),
        (
            "new u.theta\ncube a\nexpect faces a 7\n",
            "expected 7 faces, found 6",
        ),
        ("new v.theta\ncube a\nextrude a up 1\n", "not a direction"),
    ] {
        std::fs::write(dir.path().join("x.txt"), script).unwrap();
        let o = theta(&["run", "--script", "x.txt"], dir.path());
        assert!(!o.status.success(), "{script}");
        assert!(text(&o).contains(says), "{script}: {}", text(&o));
    }
    let o = theta(&["run", "--script", "missing.txt"], dir.path());
    assert!(!o.status.success() && text(&o).contains("missing.txt"));
}

/// `theta` with standard input from `input`.
fn theta_with_input(args: &[&str], dir: &Path, input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_theta"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run theta");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn open_edits_a_session_headless_from_standard_input_and_survives_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        theta(&["new", "s.theta", "--name", "desk"], dir.path())
            .status
            .success()
    );
    let o = theta_with_input(
        &["open", "s.theta"],
        dir.path(),
        "cube a\nextrude a +y 1\nextrdue a +y 1\nextrude ghost +y 1\nexpect faces a 10\nhash\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        out.starts_with("opened s.theta: \"desk\", 0 objects"),
        "{out}"
    );
    assert!(err.contains("line 3: unknown command `extrdue`"), "{err}");
    assert!(err.contains("line 4: no object named `ghost`"), "{err}");
    assert!(
        out.contains("closed s.theta: 4 lines done, 2 failed"),
        "{out}"
    );
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("state hash: "))
        .unwrap()
        .to_owned();
    // Every good line was saved; the reopened file folds to the same state.
    let info = text(&theta(&["info", "s.theta"], dir.path()));
    assert!(
        info.contains(&hash) && info.contains("objects: 1"),
        "{info}"
    );
    // A missing or corrupt file is a clear error, and nothing is written.
    let o = theta(&["open", "nope.theta"], dir.path());
    assert!(
        !o.status.success() && text(&o).contains("no such file"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("nope.theta").exists());
    std::fs::write(dir.path().join("junk.theta"), b"not a session at all").unwrap();
    let o = theta(&["open", "junk.theta"], dir.path());
    assert!(
        !o.status.success() && text(&o).contains("not a session file"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(dir.path().join("junk.theta")).unwrap(),
        b"not a session at all"
    );
}

#[test]
fn an_unknown_subcommand_or_a_bad_flag_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = theta(&["frobnicate"], dir.path());
    assert!(!o.status.success());
    assert!(
        text(&o).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        text(&o)
    );
    let o = theta(
        &["info", "x.theta", "--metrics", "not-an-address"],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("--metrics"), "{}", text(&o));
    // Nothing was written in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_reader_that_goes_away_stops_theta_quietly() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    assert!(theta(&["new", "s.theta"], dir.path()).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_theta"))
        .args(["open", "s.theta"])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end first, then ask for output: every print now meets a closed pipe.
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..50 {
        if writeln!(stdin, "hash").is_err() {
            break;
        }
    }
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(141), "{err}");
}
