//! The runtime's state: every live handle, the script, and the report, behind one lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{CStr, c_char};
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

use openxr_sys as xr;
use serde_json::{Value, json};

use crate::gfx;
use crate::script::Script;

/// `Ok` carries a success code (usually `SUCCESS`), `Err` an error code.
pub(crate) type XrResult = std::result::Result<xr::Result, xr::Result>;

/// The usual successful outcome.
pub(crate) const OK: XrResult = Ok(xr::Result::SUCCESS);

/// The environment variable naming the report directory.
pub(crate) const OUT_ENV: &str = "THETA_XR_STANDIN_OUT";

/// The time between frames: 90 Hz.
pub(crate) const PERIOD_NS: i64 = 11_111_111;

/// The one system there is.
pub(crate) const SYSTEM_ID: u64 = 1;

/// The display time of scripted frame `k` (never zero).
pub(crate) fn frame_time(k: u64) -> xr::Time {
    xr::Time::from_nanos((k as i64 + 1).saturating_mul(PERIOD_NS))
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| Mutex::new(State::default()));

/// The state, locked. A panic while it was held does not make it unusable: the panic was
/// caught and reported, and the state is taken as it stands.
pub(crate) fn lock() -> MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The extensions an instance has enabled.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Extensions {
    /// XR_KHR_vulkan_enable2.
    pub(crate) vulkan2: bool,
    /// XR_EXT_hand_tracking.
    pub(crate) hand_tracking: bool,
}

/// The one instance.
pub(crate) struct Instance {
    /// Its handle.
    pub(crate) handle: u64,
    /// Its enabled extensions.
    pub(crate) exts: Extensions,
    /// Whether xrGetVulkanGraphicsRequirements2KHR has been called.
    pub(crate) got_requirements: bool,
    /// Queued events.
    pub(crate) events: VecDeque<Event>,
    /// Vulkan instances made through xrCreateVulkanInstanceKHR.
    pub(crate) vk_instances: Vec<gfx::AppInstance>,
    /// The physical device handed out by xrGetVulkanGraphicsDevice2KHR, per Vulkan instance.
    pub(crate) vk_physical: Vec<(ash::vk::Instance, ash::vk::PhysicalDevice)>,
    /// Vulkan devices made through xrCreateVulkanDeviceKHR.
    pub(crate) vk_devices: Vec<gfx::AppDevice>,
    /// Suggested bindings, in the order profiles were first suggested: (profile, [(action,
    /// binding path)]).
    pub(crate) bindings: Vec<(u64, Vec<(u64, u64)>)>,
}

/// An event waiting for xrPollEvent.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    /// XrEventDataSessionStateChanged: (session, state, time).
    State(u64, xr::SessionState, xr::Time),
    /// XrEventDataInteractionProfileChanged: the session.
    ProfileChanged(u64),
}

/// What a session is doing.
pub(crate) struct Session {
    /// The state as last queued.
    pub(crate) state: xr::SessionState,
    /// Between xrBeginSession and xrEndSession.
    pub(crate) running: bool,
    /// READY is queued once the app has seen IDLE.
    pub(crate) ready_pending: bool,
    /// STOPPING has been queued (or the stop has begun).
    pub(crate) stopping: bool,
    /// LOSS_PENDING has been queued.
    pub(crate) loss_pending: bool,
    /// The app's Vulkan objects.
    pub(crate) gfx: gfx::SessionGfx,
    /// The number of xrWaitFrame calls that succeeded.
    pub(crate) waits: u64,
    /// The frame of the last xrWaitFrame not yet begun.
    pub(crate) waited: Option<u64>,
    /// The frame begun and not yet ended.
    pub(crate) begun: Option<u64>,
    /// The attached action sets.
    pub(crate) attached: Option<Vec<u64>>,
    /// Whether xrSyncActions has succeeded once.
    pub(crate) synced: bool,
    /// The action states latched by the last sync: (action, subaction path) → state.
    pub(crate) latched: HashMap<(u64, u64), Latched>,
}

impl Session {
    /// The scripted frame shown now: that of the last xrWaitFrame (frame 0 before any).
    pub(crate) fn current_frame(&self) -> u64 {
        self.waits.saturating_sub(1)
    }

    /// Whether inputs reach the app.
    pub(crate) fn focused(&self) -> bool {
        self.state == xr::SessionState::FOCUSED
    }
}

/// A value an input can have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum InputValue {
    /// A button.
    Bool(bool),
    /// A trigger or axis.
    Float(f32),
    /// A stick.
    Vec2([f32; 2]),
    /// A pose (aim or grip).
    Pose,
}

/// An action's state as latched at a sync.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Latched {
    /// The value, converted to the action's type.
    pub(crate) value: InputValue,
    /// Whether it is bound and the session focused.
    pub(crate) active: bool,
    /// Whether it changed at the last sync.
    pub(crate) changed: bool,
    /// When it last changed.
    pub(crate) last_change: xr::Time,
}

/// What a space is attached to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SpaceKind {
    /// A reference space.
    Reference(xr::ReferenceSpaceType),
    /// An action space: (action, subaction path).
    Action(u64, u64),
}

/// A space.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Space {
    /// The session it belongs to.
    pub(crate) session: u64,
    /// What it follows.
    pub(crate) kind: SpaceKind,
    /// Its offset from what it follows.
    pub(crate) offset: xr::Posef,
}

/// An action set.
pub(crate) struct ActionSet {
    /// Its name.
    pub(crate) name: String,
    /// Whether it is attached to a session.
    pub(crate) attached: bool,
}

/// An action.
pub(crate) struct Action {
    /// Its action set.
    pub(crate) set: u64,
    /// Its name.
    pub(crate) name: String,
    /// Its type.
    pub(crate) ty: xr::ActionType,
    /// Its subaction paths.
    pub(crate) subaction_paths: Vec<u64>,
}

/// A swapchain.
pub(crate) struct Swapchain {
    /// The session it belongs to.
    pub(crate) session: u64,
    /// Its images.
    pub(crate) images: Vec<gfx::Image>,
    /// The Vulkan format.
    pub(crate) format: i64,
    /// Size in pixels.
    pub(crate) width: u32,
    /// Size in pixels.
    pub(crate) height: u32,
    /// Array layers.
    pub(crate) array_size: u32,
    /// The image the next acquire hands out.
    pub(crate) next: usize,
    /// Images acquired and not yet released, oldest first.
    pub(crate) acquired: VecDeque<usize>,
    /// Whether the oldest acquired image has been waited on.
    pub(crate) waited: bool,
    /// The image released last.
    pub(crate) released: Option<usize>,
}

/// A hand tracker (XR_EXT_hand_tracking).
pub(crate) struct HandTracker {
    /// The session it belongs to.
    pub(crate) session: u64,
    /// 0 for the left hand, 1 for the right.
    pub(crate) hand: usize,
}

/// Interned path strings.
#[derive(Default)]
pub(crate) struct Paths {
    strings: Vec<String>,
    ids: HashMap<String, u64>,
}

impl Paths {
    /// The path's id, interning it.
    pub(crate) fn intern(&mut self, s: &str) -> u64 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        self.strings.push(s.to_owned());
        let id = self.strings.len() as u64;
        self.ids.insert(s.to_owned(), id);
        id
    }

    /// The path's string, if the id is known.
    pub(crate) fn get(&self, id: u64) -> Option<&str> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.strings.get(i).map(String::as_str)
    }

    /// The id of an already interned string.
    pub(crate) fn find(&self, s: &str) -> Option<u64> {
        self.ids.get(s).copied()
    }
}

/// What the test reads afterwards.
#[derive(Default)]
pub(crate) struct Report {
    /// Session states, in the order they were queued.
    pub(crate) states: Vec<String>,
    /// Successful xrWaitFrame calls.
    pub(crate) frames_waited: u64,
    /// Successful xrEndFrame calls.
    pub(crate) frames_ended: u64,
    /// Every error code returned: (entry point, code).
    pub(crate) errors: Vec<(&'static str, xr::Result)>,
    /// Calls per entry point.
    pub(crate) calls: BTreeMap<&'static str, u64>,
    /// Functions asked of xrGetInstanceProcAddr that this runtime does not have.
    pub(crate) unsupported_functions: Vec<String>,
    /// Haptic pulses applied.
    pub(crate) haptics: Vec<Value>,
    /// Interaction profiles suggested.
    pub(crate) profiles: Vec<String>,
    /// Eye images captured.
    pub(crate) captured: Vec<Value>,
    /// Layers of the last ended frame.
    pub(crate) last_frame_layers: u32,
    /// Things a test may want to know that are not errors (capture failures and such).
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// The report as JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "runtime": crate::RUNTIME_NAME,
            "states": self.states,
            "frames_waited": self.frames_waited,
            "frames_ended": self.frames_ended,
            "errors": self.errors.iter().map(|(call, r)| json!({
                "call": call,
                "result": r.into_raw(),
                "name": result_name(*r),
            })).collect::<Vec<_>>(),
            "calls": self.calls,
            "unsupported_functions": self.unsupported_functions,
            "haptics": self.haptics,
            "profiles": self.profiles,
            "captured": self.captured,
            "last_frame_layers": self.last_frame_layers,
            "notes": self.notes,
        })
    }
}

/// The whole runtime.
#[derive(Default)]
pub(crate) struct State {
    next_handle: u64,
    /// The report of the current instance (or of calls before one).
    pub(crate) report: Report,
    /// The script of the current instance.
    pub(crate) script: Script,
    /// Where the report goes.
    pub(crate) out_dir: Option<PathBuf>,
    /// The instance, if one exists.
    pub(crate) instance: Option<Instance>,
    /// Live sessions.
    pub(crate) sessions: HashMap<u64, Session>,
    /// Live spaces.
    pub(crate) spaces: HashMap<u64, Space>,
    /// Live action sets.
    pub(crate) action_sets: HashMap<u64, ActionSet>,
    /// Live actions.
    pub(crate) actions: HashMap<u64, Action>,
    /// Live swapchains.
    pub(crate) swapchains: HashMap<u64, Swapchain>,
    /// Live hand trackers.
    pub(crate) hand_trackers: HashMap<u64, HandTracker>,
    /// Interned paths.
    pub(crate) paths: Paths,
}

impl State {
    /// A fresh handle value, never handed out before.
    pub(crate) fn new_handle(&mut self) -> u64 {
        // Start high so that small numbers a test makes up are never valid.
        if self.next_handle == 0 {
            self.next_handle = 0x7E7A_0000_0000_0001;
        }
        let h = self.next_handle;
        self.next_handle += 1;
        h
    }

    /// The instance if `h` is its handle.
    pub(crate) fn instance(&mut self, h: xr::Instance) -> Result<&mut Instance, xr::Result> {
        use xr::Handle as _;
        match &mut self.instance {
            Some(i) if i.handle == h.into_raw() && h.into_raw() != 0 => Ok(i),
            _ => Err(xr::Result::ERROR_HANDLE_INVALID),
        }
    }

    /// Records an entry point's result.
    pub(crate) fn record(&mut self, call: &'static str, r: xr::Result) {
        if r.into_raw() < 0 {
            self.report.errors.push((call, r));
        }
    }

    /// Queues a session state change and records it.
    pub(crate) fn queue_state(&mut self, session: u64, state: xr::SessionState) {
        let time = self
            .sessions
            .get(&session)
            .map_or(frame_time(0), |s| frame_time(s.current_frame()));
        if let Some(s) = self.sessions.get_mut(&session) {
            s.state = state;
        }
        if let Some(i) = &mut self.instance {
            i.events.push_back(Event::State(session, state, time));
        }
        self.report.states.push(format!("{state:?}"));
    }

    /// Writes the report, if there is somewhere to write it.
    pub(crate) fn write_report(&mut self) {
        let Some(dir) = self.out_dir.clone() else {
            return;
        };
        let text = match serde_json::to_string_pretty(&self.report.to_json()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("theta-xr-standin: cannot encode the report: {e}");
                return;
            }
        };
        if let Err(e) = write_atomic(&dir.join("report.json"), text.as_bytes()) {
            eprintln!(
                "theta-xr-standin: cannot write {}: {e}",
                dir.join("report.json").display()
            );
        }
    }
}

/// Writes a file so that readers see either the old or the new contents, never a part.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// A map lookup that fails as an invalid handle.
pub(crate) fn get<T>(map: &HashMap<u64, T>, h: u64) -> Result<&T, xr::Result> {
    map.get(&h).ok_or(xr::Result::ERROR_HANDLE_INVALID)
}

/// A mutable map lookup that fails as an invalid handle.
pub(crate) fn get_mut<T>(map: &mut HashMap<u64, T>, h: u64) -> Result<&mut T, xr::Result> {
    map.get_mut(&h).ok_or(xr::Result::ERROR_HANDLE_INVALID)
}

/// The spec's name of a result code, e.g. `XR_ERROR_HANDLE_INVALID`.
pub(crate) fn result_name(r: xr::Result) -> String {
    let name = format!("{r:?}");
    if name.parse::<i64>().is_ok() {
        if r.into_raw() < 0 {
            format!("XR_UNKNOWN_FAILURE_{}", -r.into_raw())
        } else {
            format!("XR_UNKNOWN_SUCCESS_{}", r.into_raw())
        }
    } else {
        format!("XR_{name}")
    }
}

/// The spec's name of a structure type, e.g. `XR_TYPE_INSTANCE_CREATE_INFO`.
pub(crate) fn structure_type_name(t: xr::StructureType) -> String {
    let name = format!("{t:?}");
    if name.parse::<i64>().is_ok() {
        format!("XR_UNKNOWN_STRUCTURE_TYPE_{}", t.into_raw())
    } else {
        format!("XR_TYPE_{name}")
    }
}

/// Fails with `ERROR_VALIDATION_FAILURE` if `p` is null.
pub(crate) fn non_null<T>(p: *const T) -> Result<(), xr::Result> {
    if p.is_null() {
        Err(xr::Result::ERROR_VALIDATION_FAILURE)
    } else {
        Ok(())
    }
}

/// Fails with `ERROR_VALIDATION_FAILURE` unless `ty` is `want`.
pub(crate) fn check_type(ty: xr::StructureType, want: xr::StructureType) -> Result<(), xr::Result> {
    if ty == want {
        Ok(())
    } else {
        Err(xr::Result::ERROR_VALIDATION_FAILURE)
    }
}

/// The two-call idiom: writes the count, and if there is room, `n` items through `fill`.
///
/// # Safety
/// `count_out` must be null or writable; `out` must be null or point to `cap` items.
pub(crate) unsafe fn enumerate<T>(
    n: usize,
    cap: u32,
    count_out: *mut u32,
    out: *mut T,
    mut fill: impl FnMut(usize, *mut T),
) -> XrResult {
    non_null(count_out)?;
    // SAFETY: checked non-null; the caller promises it is writable.
    unsafe { *count_out = n as u32 };
    if cap == 0 {
        return OK;
    }
    if (cap as usize) < n {
        return Err(xr::Result::ERROR_SIZE_INSUFFICIENT);
    }
    non_null(out)?;
    for i in 0..n {
        // SAFETY: i < n <= cap, and the caller promises `cap` items at `out`.
        fill(i, unsafe { out.add(i) });
    }
    OK
}

/// The two-call idiom for a string: writes the count (with the terminating zero) and the bytes.
///
/// # Safety
/// As [`enumerate`].
pub(crate) unsafe fn enumerate_str(
    s: &str,
    cap: u32,
    count_out: *mut u32,
    out: *mut c_char,
) -> XrResult {
    let bytes: Vec<u8> = s.bytes().chain(std::iter::once(0)).collect();
    // SAFETY: forwarded from the caller.
    unsafe {
        enumerate(bytes.len(), cap, count_out, out, |i, p| {
            *p = bytes[i] as c_char;
        })
    }
}

/// Copies `s` into a fixed-size C string buffer, truncating, always zero-terminated.
pub(crate) fn put_str(buf: &mut [c_char], s: &str) {
    let n = s.len().min(buf.len().saturating_sub(1));
    for (d, b) in buf.iter_mut().zip(s.bytes().take(n)) {
        *d = b as c_char;
    }
    if let Some(z) = buf.get_mut(n) {
        *z = 0;
    }
}

/// Reads a fixed-size C string buffer; fails if it has no terminating zero or is not UTF-8.
pub(crate) fn fixed_str(buf: &[c_char]) -> Result<String, xr::Result> {
    let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
    let s = CStr::from_bytes_until_nul(&bytes).map_err(|_| xr::Result::ERROR_VALIDATION_FAILURE)?;
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| xr::Result::ERROR_VALIDATION_FAILURE)
}

/// Reads a C string pointer.
///
/// # Safety
/// `p` must be null or a zero-terminated string.
pub(crate) unsafe fn c_str(p: *const c_char) -> Result<String, xr::Result> {
    non_null(p)?;
    // SAFETY: non-null and zero-terminated, as the caller promises.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| xr::Result::ERROR_VALIDATION_FAILURE)
}
