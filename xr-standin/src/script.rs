//! The test script: what the "user" does, frame by frame, and how the headset is set up.
//!
//! The script is a JSON file named by `THETA_XR_STANDIN_SCRIPT`. Every key is optional; a frame
//! that leaves a field out keeps the previous frame's value. Unknown keys are refused, so that a
//! typing mistake in a test fails loudly instead of being ignored.

use std::collections::{BTreeSet, HashMap};

use openxr_sys::{Posef, Quaternionf, Vector3f};
use serde_json::Value;

/// The environment variable naming the script file.
pub(crate) const SCRIPT_ENV: &str = "THETA_XR_STANDIN_SCRIPT";

/// The number of frames of an empty script.
const DEFAULT_FRAMES: u64 = 600;

/// One hand's state in one frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HandFrame {
    /// The pointing pose, in STAGE space.
    pub(crate) aim: Posef,
    /// The holding pose, in STAGE space.
    pub(crate) grip: Posef,
    /// The trigger, 0..1.
    pub(crate) trigger: f32,
    /// The grip squeeze, 0..1.
    pub(crate) squeeze: f32,
    /// The thumbstick (or trackpad), −1..1 on each axis.
    pub(crate) stick: [f32; 2],
    /// The lower face button (A or X).
    pub(crate) primary: bool,
    /// The upper face button (B or Y).
    pub(crate) secondary: bool,
    /// The menu button.
    pub(crate) menu: bool,
    /// Whether the hand holds its controller; a hand without one has no action input (its
    /// tracked joints still move, and its trigger pinches thumb and index together).
    pub(crate) controller: bool,
}

impl HandFrame {
    fn at(x: f32) -> Self {
        let pose = Posef {
            orientation: Quaternionf::IDENTITY,
            position: Vector3f { x, y: 1.2, z: -0.3 },
        };
        HandFrame {
            aim: pose,
            grip: pose,
            trigger: 0.0,
            squeeze: 0.0,
            stick: [0.0, 0.0],
            primary: false,
            secondary: false,
            menu: false,
            controller: true,
        }
    }
}

/// Everything the user does in one frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    /// The head, in STAGE space.
    pub(crate) head: Posef,
    /// The left hand (0) and the right hand (1).
    pub(crate) hands: [HandFrame; 2],
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            head: Posef {
                orientation: Quaternionf::IDENTITY,
                position: Vector3f {
                    x: 0.0,
                    y: 1.6,
                    z: 0.0,
                },
            },
            hands: [HandFrame::at(-0.2), HandFrame::at(0.2)],
        }
    }
}

/// A parsed script.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    /// The recommended eye image size.
    pub(crate) view_size: [u32; 2],
    /// The distance between the eyes, metres.
    pub(crate) ipd: f32,
    /// Whether XR_EXT_hand_tracking is offered.
    pub(crate) hand_tracking: bool,
    /// Whether xrGetSystem reports the headset as unplugged.
    pub(crate) no_headset: bool,
    /// The field of view of both eyes: left, right, up, down (radians).
    pub(crate) fov: [f32; 4],
    /// The frame whose xrWaitFrame makes the session LOSS_PENDING.
    pub(crate) loss_pending_at: Option<u64>,
    /// Entry points that fail with a given result code.
    pub(crate) fail: HashMap<String, i32>,
    /// Frames (besides the last) whose eye images are captured.
    pub(crate) capture_frames: BTreeSet<u64>,
    /// Runs of identical frames: (the index one past the run's last frame, the frame).
    runs: Vec<(u64, Frame)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            view_size: [256, 256],
            ipd: 0.064,
            hand_tracking: false,
            no_headset: false,
            fov: [-0.785, 0.785, 0.785, -0.785],
            loss_pending_at: None,
            fail: HashMap::new(),
            capture_frames: BTreeSet::new(),
            runs: vec![(DEFAULT_FRAMES, Frame::default())],
        }
    }
}

impl Script {
    /// The script named by the environment, or the empty script if none is named.
    pub(crate) fn from_env() -> Result<Script, String> {
        match std::env::var_os(SCRIPT_ENV).filter(|v| !v.is_empty()) {
            None => Ok(Script::default()),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!("cannot read the script {}: {e}", path.to_string_lossy())
                })?;
                Script::parse(&text)
                    .map_err(|e| format!("the script {}: {e}", path.to_string_lossy()))
            }
        }
    }

    /// The total number of scripted frames (at least 1).
    pub(crate) fn total_frames(&self) -> u64 {
        self.runs.last().map_or(1, |r| r.0.max(1))
    }

    /// The scripted frame `k` (the last one for `k` past the end).
    pub(crate) fn frame(&self, k: u64) -> Frame {
        let i = self.runs.partition_point(|r| r.0 <= k);
        self.runs
            .get(i)
            .or(self.runs.last())
            .map_or_else(Frame::default, |r| r.1)
    }

    /// Parses a script from JSON text.
    pub(crate) fn parse(text: &str) -> Result<Script, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let obj = root.as_object().ok_or("the script must be a JSON object")?;
        let mut s = Script::default();
        for (key, v) in obj {
            match key.as_str() {
                "view_size" => {
                    let a = floats::<2>(v, "view_size")?;
                    if a.iter()
                        .any(|&x| !(1.0..=4096.0).contains(&x) || x.fract() != 0.0)
                    {
                        return Err("view_size must be two integers in 1..=4096".into());
                    }
                    s.view_size = [a[0] as u32, a[1] as u32];
                }
                "ipd" => s.ipd = float(v, "ipd")?,
                "hand_tracking" => s.hand_tracking = boolean(v, "hand_tracking")?,
                "no_headset" => s.no_headset = boolean(v, "no_headset")?,
                "fov" => s.fov = floats::<4>(v, "fov")?,
                "loss_pending_at" => {
                    s.loss_pending_at = Some(v.as_u64().ok_or("loss_pending_at must be a frame")?)
                }
                "fail" => {
                    let m = v
                        .as_object()
                        .ok_or("fail must map entry points to result codes")?;
                    for (name, code) in m {
                        let c = code
                            .as_i64()
                            .and_then(|c| i32::try_from(c).ok())
                            .ok_or_else(|| format!("fail.{name} must be a result code"))?;
                        s.fail.insert(name.clone(), c);
                    }
                }
                "capture_frames" => {
                    let a = v
                        .as_array()
                        .ok_or("capture_frames must be a list of frames")?;
                    for k in a {
                        s.capture_frames
                            .insert(k.as_u64().ok_or("capture_frames must be frame numbers")?);
                    }
                }
                "frames" => s.runs = frames(v)?,
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        Ok(s)
    }
}

fn frames(v: &Value) -> Result<Vec<(u64, Frame)>, String> {
    let list = v.as_array().ok_or("frames must be a list")?;
    if list.is_empty() {
        return Ok(vec![(DEFAULT_FRAMES, Frame::default())]);
    }
    let mut runs = Vec::new();
    let mut current = Frame::default();
    let mut end = 0u64;
    for (i, f) in list.iter().enumerate() {
        let at = |e: String| format!("frames[{i}]: {e}");
        let obj = f
            .as_object()
            .ok_or_else(|| at("a frame must be an object".into()))?;
        let mut repeat = 1u64;
        for (key, v) in obj {
            match key.as_str() {
                "repeat" => {
                    repeat = v
                        .as_u64()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| at("repeat must be a positive integer".into()))?
                }
                "head" => current.head = pose(v, current.head).map_err(at)?,
                "left" => current.hands[0] = hand(v, current.hands[0]).map_err(at)?,
                "right" => current.hands[1] = hand(v, current.hands[1]).map_err(at)?,
                other => return Err(at(format!("unknown key {other:?}"))),
            }
        }
        end = end.saturating_add(repeat);
        runs.push((end, current));
    }
    Ok(runs)
}

fn hand(v: &Value, mut h: HandFrame) -> Result<HandFrame, String> {
    let obj = v.as_object().ok_or("a hand must be an object")?;
    for (key, v) in obj {
        match key.as_str() {
            "aim" => h.aim = pose(v, h.aim)?,
            "grip" => h.grip = pose(v, h.grip)?,
            "trigger" => h.trigger = float(v, "trigger")?,
            "squeeze" => h.squeeze = float(v, "squeeze")?,
            "stick" => h.stick = floats::<2>(v, "stick")?,
            "primary" => h.primary = boolean(v, "primary")?,
            "secondary" => h.secondary = boolean(v, "secondary")?,
            "menu" => h.menu = boolean(v, "menu")?,
            "controller" => h.controller = boolean(v, "controller")?,
            other => return Err(format!("unknown hand key {other:?}")),
        }
    }
    Ok(h)
}

fn pose(v: &Value, mut p: Posef) -> Result<Posef, String> {
    let obj = v.as_object().ok_or("a pose must be an object")?;
    for (key, v) in obj {
        match key.as_str() {
            "position" => {
                let [x, y, z] = floats::<3>(v, "position")?;
                p.position = Vector3f { x, y, z };
            }
            "orientation" => {
                let [x, y, z, w] = floats::<4>(v, "orientation")?;
                p.orientation = crate::math::quat_normalize(Quaternionf { x, y, z, w });
            }
            other => return Err(format!("unknown pose key {other:?}")),
        }
    }
    Ok(p)
}

fn float(v: &Value, what: &str) -> Result<f32, String> {
    v.as_f64()
        .map(|x| x as f32)
        .ok_or_else(|| format!("{what} must be a number"))
}

fn boolean(v: &Value, what: &str) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{what} must be true or false"))
}

fn floats<const N: usize>(v: &Value, what: &str) -> Result<[f32; N], String> {
    let a = v
        .as_array()
        .filter(|a| a.len() == N)
        .ok_or_else(|| format!("{what} must be a list of {N} numbers"))?;
    let mut out = [0.0; N];
    for (o, x) in out.iter_mut().zip(a) {
        *o = float(x, what)?;
    }
    Ok(out)
}
