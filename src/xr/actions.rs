//! Controllers to the editor: the OpenXR actions Theta asks for, their suggested bindings on
//! the common controller profiles, and the mapping of a frame of controller state onto the
//! engine's input ([`ControllerState`]) and editor [`Action`]s, so every desktop tool works in a
//! headset through the same interface.
//!
//! The dominant hand (right unless the user says otherwise) points and runs the tool with its
//! trigger, grabs with its grip, and turns or teleports with its stick (see
//! [`comfort`](super::comfort)). The off hand holds the palette: its stick steps through the
//! colours, X/A undoes, Y/B redoes, and the menu button shows or hides the panels. The dominant
//! hand's A/B (X/Y for the left-handed) step to the next or previous tool, so every tool is in
//! reach without the palette panel.

use theta_mesh::Vec3;

use crate::engine::{Action, ControllerState};
use crate::presence::{Pose, Ray, Tool};

/// A hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hand {
    /// Left.
    Left,
    /// Right.
    Right,
}

impl Hand {
    /// Its index in the engine's two-element controller arrays.
    pub fn index(self) -> usize {
        match self {
            Hand::Left => 0,
            Hand::Right => 1,
        }
    }

    /// The other one.
    pub fn other(self) -> Hand {
        match self {
            Hand::Left => Hand::Right,
            Hand::Right => Hand::Left,
        }
    }

    /// Its OpenXR user path.
    pub fn path(self) -> &'static str {
        match self {
            Hand::Left => "/user/hand/left",
            Hand::Right => "/user/hand/right",
        }
    }
}

/// An OpenXR action Theta creates (one action set, `theta`, both hands as subaction paths).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum XrAction {
    /// The pointing pose.
    Aim,
    /// The holding pose.
    Grip,
    /// Trigger, 0..1.
    Trigger,
    /// Grip squeeze, 0..1 (a click on controllers without an analogue grip).
    Squeeze,
    /// Thumbstick or trackpad, −1..1 on each axis.
    Stick,
    /// The lower face button (A or X).
    Primary,
    /// The upper face button (B or Y).
    Secondary,
    /// The menu button.
    Menu,
    /// Vibration.
    Haptic,
}

impl XrAction {
    /// Every action.
    pub const ALL: [XrAction; 9] = [
        XrAction::Aim,
        XrAction::Grip,
        XrAction::Trigger,
        XrAction::Squeeze,
        XrAction::Stick,
        XrAction::Primary,
        XrAction::Secondary,
        XrAction::Menu,
        XrAction::Haptic,
    ];

    /// The action's name (OpenXR: lower-case letters, digits, `-`, `_` and `.`).
    pub fn name(self) -> &'static str {
        match self {
            XrAction::Aim => "aim_pose",
            XrAction::Grip => "grip_pose",
            XrAction::Trigger => "trigger",
            XrAction::Squeeze => "squeeze",
            XrAction::Stick => "stick",
            XrAction::Primary => "primary",
            XrAction::Secondary => "secondary",
            XrAction::Menu => "menu",
            XrAction::Haptic => "haptic",
        }
    }

    /// The name people see in the runtime's rebinding UI.
    pub fn localized(self) -> &'static str {
        match self {
            XrAction::Aim => "Point",
            XrAction::Grip => "Hold",
            XrAction::Trigger => "Use tool",
            XrAction::Squeeze => "Grab",
            XrAction::Stick => "Turn, teleport, colours",
            XrAction::Primary => "Undo",
            XrAction::Secondary => "Redo",
            XrAction::Menu => "Show panels",
            XrAction::Haptic => "Vibrate",
        }
    }
}

/// One suggested binding: on this interaction profile, this action is this input path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The interaction profile.
    pub profile: &'static str,
    /// The action.
    pub action: XrAction,
    /// The input (or output) path, with the hand's user path.
    pub path: String,
}

/// The interaction profiles Theta suggests bindings for.
pub const PROFILES: [&str; 4] = [
    "/interaction_profiles/oculus/touch_controller",
    "/interaction_profiles/valve/index_controller",
    "/interaction_profiles/htc/vive_controller",
    "/interaction_profiles/khr/simple_controller",
];

/// Every suggested binding, profile by profile (the components each profile has, per the
/// OpenXR specification's interaction profile list).
pub fn bindings() -> Vec<Binding> {
    // Touch and Index share the analogue inputs; their face and menu buttons differ.
    const ANALOGUE: [(XrAction, &str); 3] = [
        (XrAction::Trigger, "input/trigger/value"),
        (XrAction::Squeeze, "input/squeeze/value"),
        (XrAction::Stick, "input/thumbstick"),
    ];
    let mut out = Vec::new();
    for profile in PROFILES {
        for hand in [Hand::Left, Hand::Right] {
            let components: Vec<(XrAction, &str)> = match (profile, hand) {
                (p, h) if p.ends_with("oculus/touch_controller") => match h {
                    Hand::Left => [
                        &ANALOGUE[..],
                        &[
                            (XrAction::Primary, "input/x/click"),
                            (XrAction::Secondary, "input/y/click"),
                            (XrAction::Menu, "input/menu/click"),
                        ],
                    ]
                    .concat(),
                    // The right Touch controller's menu button is the system's.
                    Hand::Right => [
                        &ANALOGUE[..],
                        &[
                            (XrAction::Primary, "input/a/click"),
                            (XrAction::Secondary, "input/b/click"),
                        ],
                    ]
                    .concat(),
                },
                // Index has no menu button (its system button is reserved): B stands in on the
                // left hand.
                (p, h) if p.ends_with("valve/index_controller") => [
                    &ANALOGUE[..],
                    &[
                        (XrAction::Primary, "input/a/click"),
                        match h {
                            Hand::Left => (XrAction::Menu, "input/b/click"),
                            Hand::Right => (XrAction::Secondary, "input/b/click"),
                        },
                    ],
                ]
                .concat(),
                // Vive wands: a clicky grip, a trackpad, a menu button, no face buttons.
                (p, _) if p.ends_with("htc/vive_controller") => vec![
                    (XrAction::Trigger, "input/trigger/value"),
                    (XrAction::Squeeze, "input/squeeze/click"),
                    (XrAction::Stick, "input/trackpad"),
                    (XrAction::Menu, "input/menu/click"),
                ],
                // The simple controller: select and menu only.
                _ => vec![
                    (XrAction::Trigger, "input/select/click"),
                    (XrAction::Menu, "input/menu/click"),
                ],
            };
            let base = [
                (XrAction::Aim, "input/aim/pose"),
                (XrAction::Grip, "input/grip/pose"),
                (XrAction::Haptic, "output/haptic"),
            ];
            for (action, component) in base.iter().chain(&components) {
                out.push(Binding {
                    profile,
                    action: *action,
                    path: format!("{}/{component}", hand.path()),
                });
            }
        }
    }
    out
}

/// One hand's controller this frame, tracking space.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HandState {
    /// The aim pose (looks along its −Z).
    pub aim: Option<Pose>,
    /// The grip pose.
    pub grip: Option<Pose>,
    /// Trigger, 0..1.
    pub trigger: f32,
    /// Squeeze, 0..1.
    pub squeeze: f32,
    /// Stick, −1..1.
    pub stick: [f32; 2],
    /// Face buttons and menu.
    pub primary: bool,
    /// The upper face button.
    pub secondary: bool,
    /// The menu button.
    pub menu: bool,
}

/// What the controllers asked of the app this frame, besides the engine's input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    /// Editor actions.
    pub actions: Vec<Action>,
    /// Step the palette colour by this much.
    pub colour_step: i32,
    /// Show or hide the panels.
    pub toggle_panels: bool,
    /// Step this many tools along [`TOOLS`] (the dominant hand's face buttons).
    pub tool_step: i32,
}

/// The tools in the order the dominant hand's face buttons step through them.
pub const TOOLS: [Tool; 12] = [
    Tool::Select,
    Tool::Grab,
    Tool::Extrude,
    Tool::Inset,
    Tool::LoopCut,
    Tool::Subdivide,
    Tool::Insert,
    Tool::Paint,
    Tool::Erase,
    Tool::Mirror,
    Tool::Duplicate,
    Tool::Group,
];

/// The tool `by` steps from `from` along [`TOOLS`], wrapping round (a tool not in the list
/// steps from the first).
pub fn step_tool(from: Tool, by: i32) -> Tool {
    let n = TOOLS.len() as i32;
    let i = TOOLS.iter().position(|t| *t == from).unwrap_or(0) as i32;
    TOOLS[(i + by).rem_euclid(n) as usize]
}

/// The ray a pointing pose casts (along its −Z).
pub fn aim_ray(p: Pose) -> Ray {
    Ray {
        origin: p.position,
        direction: p
            .orientation
            .rotate(Vec3::new(0.0, 0.0, -1.0))
            .normalized()
            .unwrap_or(Vec3::new(0.0, 0.0, -1.0)),
    }
}

/// The off hand's stick past this, sideways, steps the colour once per push.
const STEP_FIRE: f32 = 0.7;
const STEP_REARM: f32 = 0.3;

/// Turns controller frames into the engine's input and the app's requests, firing buttons on
/// their press, not while they are held.
#[derive(Clone, Debug)]
pub struct Mapper {
    /// The hand that points and runs the tool.
    pub dominant: Hand,
    last: [HandState; 2],
    step_armed: bool,
}

impl Default for Mapper {
    fn default() -> Self {
        Mapper::new(Hand::Right)
    }
}

impl Mapper {
    /// A mapper for a user whose dominant hand is `dominant`.
    pub fn new(dominant: Hand) -> Mapper {
        Mapper {
            dominant,
            last: [HandState::default(); 2],
            step_armed: true,
        }
    }

    /// One frame: `hands` (left, right) in tracking space, placed in the world by
    /// `to_world` (the comfort rig's [`place`](super::comfort::Rig::place)). The engine's controller arrays are indexed by hand, and
    /// its right-hand slot is the one the tools read: the dominant hand goes there.
    pub fn map(
        &mut self,
        hands: [HandState; 2],
        to_world: impl Fn(Pose) -> Pose,
    ) -> (ControllerState, Requests) {
        let dom = hands[self.dominant.index()];
        let off = hands[self.dominant.other().index()];
        let pointer = dom.aim.map(|p| aim_ray(to_world(p)));
        let controls = ControllerState {
            pointer,
            trigger: [off.trigger, dom.trigger],
            grip: [off.squeeze, dom.squeeze],
            buttons: 0,
        };
        let last_off = self.last[self.dominant.other().index()];
        let pressed = |now: bool, before: bool| now && !before;
        let mut req = Requests::default();
        if pressed(off.primary, last_off.primary) {
            req.actions.push(Action::Undo);
        }
        if pressed(off.secondary, last_off.secondary) {
            req.actions.push(Action::Redo);
        }
        let last_dom = self.last[self.dominant.index()];
        if pressed(dom.primary, last_dom.primary) {
            req.tool_step += 1;
        }
        if pressed(dom.secondary, last_dom.secondary) {
            req.tool_step -= 1;
        }
        if pressed(off.menu, last_off.menu) || pressed(dom.menu, last_dom.menu) {
            req.toggle_panels = true;
        }
        let x = off.stick[0];
        if x.abs() < STEP_REARM {
            self.step_armed = true;
        } else if x.abs() > STEP_FIRE && self.step_armed {
            self.step_armed = false;
            req.colour_step = if x > 0.0 { 1 } else { -1 };
        }
        self.last = hands;
        (controls, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xr::comfort::Rig;
    use std::collections::HashSet;
    use std::convert::identity as unplaced;

    #[test]
    fn every_profile_binds_pointing_holding_the_tool_and_vibration_on_both_hands() {
        let all = bindings();
        for profile in PROFILES {
            for hand in [Hand::Left, Hand::Right] {
                for action in [
                    XrAction::Aim,
                    XrAction::Grip,
                    XrAction::Trigger,
                    XrAction::Haptic,
                    XrAction::Menu,
                ] {
                    // The right Touch controller's menu is the system's: the left one has it.
                    if action == XrAction::Menu
                        && hand == Hand::Right
                        && !profile.contains("vive")
                        && !profile.contains("simple")
                    {
                        continue;
                    }
                    assert!(
                        all.iter().any(|b| b.profile == profile
                            && b.action == action
                            && b.path.starts_with(hand.path())),
                        "{profile} {hand:?} has no {action:?}"
                    );
                }
            }
        }
        // Grabbing needs a grip, turning a stick: all but the simple controller have them.
        for profile in &PROFILES[..3] {
            for action in [XrAction::Squeeze, XrAction::Stick] {
                assert_eq!(
                    all.iter()
                        .filter(|b| b.profile == *profile && b.action == action)
                        .count(),
                    2,
                    "{profile} {action:?}"
                );
            }
        }
        // Paths are well formed and never bound twice on one profile.
        let mut seen = HashSet::new();
        for b in &all {
            assert!(
                b.path.starts_with("/user/hand/left/") || b.path.starts_with("/user/hand/right/"),
                "{}",
                b.path
            );
            let rest = b.path.splitn(5, '/').nth(4).unwrap();
            assert!(
                rest.starts_with("input/") || rest == "output/haptic",
                "{}",
                b.path
            );
            assert!(seen.insert((b.profile, b.path.clone())), "{} twice", b.path);
        }
        // Action names follow OpenXR's rule for them.
        for a in XrAction::ALL {
            assert!(
                a.name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)),
                "{}",
                a.name()
            );
        }
    }

    fn aim_forward(at: Vec3) -> Option<Pose> {
        Some(Pose::at(at))
    }

    #[test]
    fn the_dominant_hand_points_and_runs_the_tool_and_the_off_hand_holds_the_palette() {
        let mut m = Mapper::new(Hand::Right);
        let mut hands = [HandState::default(); 2];
        hands[1] = HandState {
            aim: aim_forward(Vec3::new(0.2, 1.2, -0.3)),
            trigger: 0.9,
            squeeze: 0.1,
            ..HandState::default()
        };
        hands[0].trigger = 0.4;
        let (c, r) = m.map(hands, unplaced);
        let ray = c.pointer.unwrap();
        assert!((ray.origin - Vec3::new(0.2, 1.2, -0.3)).length() < 1e-6);
        assert!((ray.direction - Vec3::new(0.0, 0.0, -1.0)).length() < 1e-6);
        assert_eq!(c.trigger, [0.4, 0.9]);
        assert_eq!(c.grip, [0.0, 0.1]);
        assert_eq!(r, Requests::default());
        // The rig's turn applies to the ray: a quarter turn left points along −X.
        let (c, _) = m.map(hands, |p| {
            Rig {
                position: Vec3::ZERO,
                yaw: std::f32::consts::FRAC_PI_2,
            }
            .place(p)
        });
        let d = c.pointer.unwrap().direction;
        assert!((d - Vec3::new(-1.0, 0.0, 0.0)).length() < 1e-5, "{d:?}");
        // Left-handed: the left hand's trigger drives the tool slot.
        let mut lefty = Mapper::new(Hand::Left);
        let (c, _) = lefty.map(hands, unplaced);
        assert_eq!(c.trigger, [0.9, 0.4]);
        assert_eq!(c.pointer, None, "the left hand has no aim pose here");
    }

    #[test]
    fn buttons_fire_on_press_and_the_stick_steps_colours_once_per_push() {
        let mut m = Mapper::default();
        let mut hands = [HandState::default(); 2];
        hands[0].primary = true;
        let (_, r) = m.map(hands, unplaced);
        assert_eq!(r.actions, vec![Action::Undo]);
        // Held: nothing more.
        let (_, r) = m.map(hands, unplaced);
        assert!(r.actions.is_empty());
        hands[0].primary = false;
        hands[0].secondary = true;
        hands[0].menu = true;
        let (_, r) = m.map(hands, unplaced);
        assert_eq!(r.actions, vec![Action::Redo]);
        assert!(r.toggle_panels);
        hands[0] = HandState {
            stick: [0.9, 0.0],
            ..HandState::default()
        };
        assert_eq!(m.map(hands, unplaced).1.colour_step, 1);
        assert_eq!(m.map(hands, unplaced).1.colour_step, 0, "held");
        hands[0].stick = [0.0, 0.0];
        m.map(hands, unplaced);
        hands[0].stick = [-0.8, 0.1];
        assert_eq!(m.map(hands, unplaced).1.colour_step, -1);
        // The dominant hand's face buttons are not undo: they step through the tools, once
        // per press.
        let mut hands = [HandState::default(); 2];
        hands[1].primary = true;
        let (_, r) = m.map(hands, unplaced);
        assert!(r.actions.is_empty());
        assert_eq!(r.tool_step, 1);
        assert_eq!(m.map(hands, unplaced).1.tool_step, 0, "held");
        hands[1].primary = false;
        hands[1].secondary = true;
        assert_eq!(m.map(hands, unplaced).1.tool_step, -1);
    }

    #[test]
    fn tool_steps_walk_the_list_and_wrap_round() {
        assert_eq!(step_tool(Tool::Select, 1), Tool::Grab);
        assert_eq!(step_tool(Tool::Select, 6), Tool::Insert);
        assert_eq!(step_tool(Tool::Insert, -4), Tool::Extrude);
        assert_eq!(step_tool(Tool::Select, -1), Tool::Group);
        assert_eq!(step_tool(Tool::Group, 1), Tool::Select);
        assert_eq!(step_tool(Tool::Other(200), 1), Tool::Grab);
        let all: HashSet<_> = TOOLS.iter().map(|t| t.to_u8()).collect();
        assert_eq!(all.len(), TOOLS.len(), "each tool once");
    }
}
