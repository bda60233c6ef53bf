//! Keyboard shortcuts: one table, read by the key handler, listed in the editor's help panel and
//! in `docs/USER_GUIDE.md` (a test checks that the guide lists every one).

use theta_mesh::Vec3;

use crate::engine::tools::{Action, GrabMode, SelectMode};
use crate::presence::Tool;

/// What a shortcut does: an editor action, or something of the window's.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// An engine editor action.
    Act(Action),
    /// Picks up the grab tool in this mode.
    Grab(GrabMode),
    /// Steps the current colour through the palette (−1 back, +1 on).
    Colour(i32),
    /// Nudges the selection by this many grid steps.
    Nudge(Vec3),
    /// Frames everything (or the selection, with `true`).
    Frame(bool),
    /// Toggles fly mode (WASD moves, right drag looks).
    Fly,
    /// Follows the first collaborator's view (again: stops).
    Follow,
    /// Renames the selection: focuses the inspector's name field.
    Rename,
    /// Toggles the telemetry overlay.
    Overlay,
    /// Toggles the shortcut list.
    Help,
    /// Saves a screenshot of the window (scene and panels) into the data directory.
    Screenshot,
    /// Starts a new session.
    New,
    /// Focuses the open field.
    Open,
    /// Saves (a checkpoint: every edit is on disk as it is made).
    Save,
    /// Focuses the export field.
    Export,
    /// Stops following a collaborator / cancels a drag / clears the selection.
    Escape,
    /// Closes the window.
    Quit,
}

/// Modifier keys a shortcut needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Mods {
    /// Ctrl.
    pub ctrl: bool,
    /// Shift.
    pub shift: bool,
    /// Alt.
    pub alt: bool,
}

const NONE: Mods = Mods {
    ctrl: false,
    shift: false,
    alt: false,
};
const CTRL: Mods = Mods {
    ctrl: true,
    shift: false,
    alt: false,
};
const SHIFT: Mods = Mods {
    ctrl: false,
    shift: true,
    alt: false,
};
const CTRL_SHIFT: Mods = Mods {
    ctrl: true,
    shift: true,
    alt: false,
};

/// One shortcut: the key (winit's logical key name, lower case for letters), its modifiers,
/// what it does, and its description for people.
#[derive(Clone, Debug)]
pub struct Shortcut {
    /// The key: a character ("g", "1", "[") or a named key ("Delete", "F2", "ArrowUp").
    pub key: &'static str,
    /// Modifiers.
    pub mods: Mods,
    /// What it does.
    pub command: Command,
    /// For the help list.
    pub what: &'static str,
}

impl Shortcut {
    /// "Ctrl+Shift+Z" style.
    pub fn label(&self) -> String {
        let mut s = String::new();
        if self.mods.ctrl {
            s.push_str("Ctrl+");
        }
        if self.mods.alt {
            s.push_str("Alt+");
        }
        if self.mods.shift {
            s.push_str("Shift+");
        }
        let k = match self.key {
            "ArrowUp" => "Up".to_owned(),
            "ArrowDown" => "Down".to_owned(),
            "ArrowLeft" => "Left".to_owned(),
            "ArrowRight" => "Right".to_owned(),
            k if k.chars().count() == 1 => k.to_uppercase(),
            k => k.to_owned(),
        };
        s.push_str(&k);
        s
    }
}

/// Every shortcut.
pub fn table() -> Vec<Shortcut> {
    use Command as C;
    let tool = |t| C::Act(Action::SetTool(t));
    let mode = |m| C::Act(Action::SetMode(m));
    let s = |key, mods, command, what| Shortcut {
        key,
        mods,
        command,
        what,
    };
    vec![
        s("q", NONE, tool(Tool::Select), "select tool"),
        s("g", NONE, C::Grab(GrabMode::Move), "grab tool: move"),
        s("r", NONE, C::Grab(GrabMode::Rotate), "grab tool: rotate"),
        s("s", NONE, C::Grab(GrabMode::Scale), "grab tool: scale"),
        s("e", NONE, tool(Tool::Extrude), "extrude tool (drag a face)"),
        s("i", NONE, tool(Tool::Inset), "inset tool"),
        s("l", NONE, tool(Tool::LoopCut), "loop cut tool (edge mode)"),
        s("u", NONE, tool(Tool::Subdivide), "subdivide tool"),
        s(
            "a",
            NONE,
            tool(Tool::Insert),
            "insert tool (click to place)",
        ),
        s("p", NONE, tool(Tool::Paint), "paint tool"),
        s("x", NONE, tool(Tool::Erase), "erase tool"),
        s("m", NONE, tool(Tool::Mirror), "mirror tool"),
        s(
            "d",
            SHIFT,
            C::Act(Action::Duplicate(Vec3::new(0.5, 0.0, 0.0))),
            "duplicate the selection",
        ),
        s(
            "Delete",
            NONE,
            C::Act(Action::Erase),
            "delete the selection",
        ),
        s(
            "g",
            CTRL,
            C::Act(Action::Group("group".into())),
            "group the selected objects",
        ),
        s("g", CTRL_SHIFT, C::Act(Action::Ungroup), "ungroup"),
        s("1", NONE, mode(SelectMode::Object), "select objects"),
        s("2", NONE, mode(SelectMode::Face), "select faces"),
        s("3", NONE, mode(SelectMode::Edge), "select edges"),
        s("4", NONE, mode(SelectMode::Vertex), "select vertices"),
        s("z", CTRL, C::Act(Action::Undo), "undo my last edit"),
        s("z", CTRL_SHIFT, C::Act(Action::Redo), "redo"),
        s("y", CTRL, C::Act(Action::Redo), "redo"),
        s("[", NONE, C::Colour(-1), "previous palette colour"),
        s("]", NONE, C::Colour(1), "next palette colour"),
        s(
            "ArrowLeft",
            NONE,
            C::Nudge(Vec3::new(-1.0, 0.0, 0.0)),
            "nudge the selection −X",
        ),
        s(
            "ArrowRight",
            NONE,
            C::Nudge(Vec3::new(1.0, 0.0, 0.0)),
            "nudge the selection +X",
        ),
        s(
            "ArrowUp",
            NONE,
            C::Nudge(Vec3::new(0.0, 0.0, -1.0)),
            "nudge the selection −Z",
        ),
        s(
            "ArrowDown",
            NONE,
            C::Nudge(Vec3::new(0.0, 0.0, 1.0)),
            "nudge the selection +Z",
        ),
        s(
            "PageUp",
            NONE,
            C::Nudge(Vec3::new(0.0, 1.0, 0.0)),
            "nudge the selection up",
        ),
        s(
            "PageDown",
            NONE,
            C::Nudge(Vec3::new(0.0, -1.0, 0.0)),
            "nudge the selection down",
        ),
        s("Home", NONE, C::Frame(false), "frame everything"),
        s(".", NONE, C::Frame(true), "frame the selection"),
        s(
            "f",
            NONE,
            C::Fly,
            "fly mode on/off (WASD, Q/E down/up, right drag looks)",
        ),
        s(
            "f",
            CTRL,
            C::Follow,
            "follow a collaborator's view (again: stop)",
        ),
        s("F2", NONE, C::Rename, "rename the selected object"),
        s("F3", NONE, C::Overlay, "telemetry overlay on/off"),
        s("F1", NONE, C::Help, "this list on/off"),
        s(
            "F12",
            NONE,
            C::Screenshot,
            "screenshot into the data directory",
        ),
        s("n", CTRL, C::New, "new session"),
        s("o", CTRL, C::Open, "open a session file (type its path)"),
        s(
            "s",
            CTRL,
            C::Save,
            "save (a checkpoint; edits are on disk as they are made)",
        ),
        s("e", CTRL, C::Export, "export (type a .glb or .obj path)"),
        s(
            "Escape",
            NONE,
            C::Escape,
            "cancel the drag, stop following, clear the selection",
        ),
        s("q", CTRL, C::Quit, "quit"),
    ]
}

/// The command for a key with these modifiers, if any.
pub fn lookup<'a>(table: &'a [Shortcut], key: &str, mods: Mods) -> Option<&'a Command> {
    let key = if key.chars().count() == 1 {
        key.to_lowercase()
    } else {
        key.to_owned()
    };
    table
        .iter()
        .find(|s| s.key == key && s.mods == mods)
        .map(|s| &s.command)
}

/// Mouse and camera controls, for the help list and the guide.
pub const MOUSE: &[(&str, &str)] = &[
    (
        "Left click",
        "use the tool in hand (select, insert, paint …); drag with grab or extrude",
    ),
    ("Shift+Left click", "add to (or take from) the selection"),
    ("Ctrl+Left click", "take from the selection"),
    (
        "Right drag",
        "grab and move what is under the pointer, whatever the tool",
    ),
    ("Middle drag / Alt+Left drag", "orbit"),
    ("Shift+Middle drag / Shift+Alt+Left drag", "pan"),
    ("Wheel", "zoom"),
    ("Alt held while dragging", "no snapping"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_shortcuts_share_a_key() {
        let t = table();
        for (i, a) in t.iter().enumerate() {
            for b in &t[i + 1..] {
                assert!(
                    !(a.key == b.key && a.mods == b.mods),
                    "{} is bound twice",
                    a.label()
                );
            }
        }
    }

    #[test]
    fn the_user_guide_lists_every_shortcut() {
        let guide = include_str!("../../docs/USER_GUIDE.md");
        for s in table() {
            let row = format!("| `{}` | {} |", s.label(), s.what);
            assert!(
                guide.contains(&row),
                "docs/USER_GUIDE.md lacks the row {row}"
            );
        }
        for (k, what) in MOUSE {
            let row = format!("| {k} | {what} |");
            assert!(
                guide.contains(&row),
                "docs/USER_GUIDE.md lacks the row {row}"
            );
        }
    }

    #[test]
    fn lookup_ignores_letter_case_and_needs_the_modifiers() {
        let t = table();
        assert_eq!(lookup(&t, "Z", CTRL), Some(&Command::Act(Action::Undo)));
        assert_eq!(lookup(&t, "z", NONE), None);
        assert_eq!(lookup(&t, "q", CTRL), Some(&Command::Quit));
        assert_eq!(
            lookup(&t, "q", NONE),
            Some(&Command::Act(Action::SetTool(Tool::Select)))
        );
        assert_eq!(
            t.iter()
                .find(|s| s.key == "z" && s.mods == CTRL_SHIFT)
                .unwrap()
                .label(),
            "Ctrl+Shift+Z"
        );
    }
}
