//! The editor's panels (egui): tool palette, colours, inspector, history, session and file
//! actions, the shortcut list and the telemetry overlay. The panels read a [`Model`] (a
//! snapshot the window builds each frame) and answer with [`Request`]s; they never touch the
//! engine or the session themselves.

use theta_crdt::command::ObjectTransform;
use theta_crdt::ids::{AuthorId, ObjectId, Role};
use theta_mesh::{MaterialId, PALETTE, Primitive, Vec3, palette_entry};

use super::keys::{self, Command};
use crate::engine::tools::{Action, GrabMode, SelectMode, Snap};
use crate::presence::Tool;

/// What the panels show this frame.
#[derive(Clone, Debug)]
pub struct Model {
    /// Session name.
    pub session: String,
    /// Session file.
    pub file: String,
    /// My role.
    pub role: Option<Role>,
    /// My name and colour.
    pub me: (String, u32),
    /// Tool, modes, snapping, material, what insert makes.
    pub tool: Tool,
    /// Selection mode.
    pub mode: SelectMode,
    /// Grab mode.
    pub grab: GrabMode,
    /// Snapping.
    pub snap: Snap,
    /// Current material.
    pub material: MaterialId,
    /// What insert makes.
    pub primitive: Primitive,
    /// The selected object, if one is: id, name, placement, vertices, faces.
    pub object: Option<(ObjectId, String, ObjectTransform, usize, usize)>,
    /// Selected elements (count) when they are not whole objects.
    pub elements: usize,
    /// The last commands, newest first: author name, mine, kind, undone-able.
    pub history: Vec<HistoryRow>,
    /// Can undo / redo.
    pub undo_redo: (bool, bool),
    /// Peers: key, name, colour, role, round trip (ms), followed.
    pub peers: Vec<PeerRow>,
    /// Messages for the user, newest last (notices, conflicts, peers coming and going).
    pub messages: Vec<String>,
    /// The ticket for the chosen role, if one could be made.
    pub ticket: Result<String, String>,
    /// Telemetry lines (when the overlay is on).
    pub overlay: Vec<String>,
    /// Fly mode.
    pub fly: bool,
}

/// One line of the history.
#[derive(Clone, Debug)]
pub struct HistoryRow {
    /// Who.
    pub author: String,
    /// Whether it is mine.
    pub mine: bool,
    /// What (`Op::kind`).
    pub kind: &'static str,
    /// Whether the fold rejected it.
    pub rejected: bool,
}

/// One peer.
#[derive(Clone, Debug)]
pub struct PeerRow {
    /// Its key.
    pub key: [u8; 32],
    /// Display name.
    pub name: String,
    /// Colour (0xRRGGBBAA).
    pub colour: u32,
    /// Role in the session.
    pub role: Option<Role>,
    /// Round trip, milliseconds.
    pub rtt_ms: f32,
    /// Whether I follow its view.
    pub followed: bool,
}

/// What the user asked for through the panels.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// A shortcut's command (the same as pressing it).
    Command(Command),
    /// An editor action.
    Act(Action),
    /// Follow a peer's view (or stop).
    Follow(Option<[u8; 32]>),
    /// Give an author a role (admins).
    SetRole(AuthorId, Role),
    /// Copy text to the clipboard.
    Copy(String),
    /// Open a session file, or import a model into this one.
    Open(String),
    /// Copy this session to a new file and keep editing there.
    SaveAs(String),
    /// Export the scene to a model file.
    Export(String),
    /// Rename the session (admins).
    RenameSession(String),
}

/// The panels' own state between frames.
#[derive(Debug)]
pub struct UiState {
    /// Panels shown.
    pub panels: bool,
    /// Telemetry overlay shown.
    pub overlay: bool,
    /// Shortcut list shown.
    pub help: bool,
    /// The inspector's name field, and the object it belongs to.
    pub name: (String, Option<ObjectId>),
    /// Focus the name field next frame.
    pub focus_name: bool,
    /// The file field.
    pub path: String,
    /// Focus the file field next frame.
    pub focus_path: bool,
    /// What Enter in the file field does: open (Ctrl+O) or export (Ctrl+E).
    pub path_exports: bool,
    /// The custom colour.
    pub custom: [u8; 3],
    /// The role a ticket grants.
    pub ticket_role: Role,
    /// The session-name field.
    pub session_name: String,
    /// The inspector's placement fields while being edited.
    pub placement: Option<(ObjectId, [f32; 3], f32, f32)>,
}

impl Default for UiState {
    fn default() -> Self {
        UiState {
            panels: true,
            overlay: false,
            help: false,
            name: (String::new(), None),
            focus_name: false,
            path: String::new(),
            focus_path: false,
            path_exports: false,
            custom: [0xd0, 0x50, 0x30],
            ticket_role: Role::Editor,
            session_name: String::new(),
            placement: None,
        }
    }
}

/// The tools in the palette, with their shortcut keys.
pub const TOOLS: &[(Tool, &str, &str)] = &[
    (Tool::Select, "Select", "Q"),
    (Tool::Grab, "Grab", "G"),
    (Tool::Extrude, "Extrude", "E"),
    (Tool::Inset, "Inset", "I"),
    (Tool::LoopCut, "Loop cut", "L"),
    (Tool::Subdivide, "Subdivide", "U"),
    (Tool::Insert, "Insert", "A"),
    (Tool::Paint, "Paint", "P"),
    (Tool::Erase, "Erase", "X"),
    (Tool::Mirror, "Mirror", "M"),
    (Tool::Duplicate, "Duplicate", ""),
    (Tool::Group, "Group", ""),
];

/// What the insert tool can make.
pub fn primitives() -> Vec<(&'static str, Primitive)> {
    let half = Vec3::new(0.5, 0.5, 0.5);
    vec![
        ("Cube", Primitive::Cuboid { size: half }),
        (
            "Pyramid",
            Primitive::Pyramid {
                base: 0.5,
                height: 0.5,
                sides: 4,
            },
        ),
        (
            "Cylinder",
            Primitive::Cylinder {
                radius: 0.25,
                height: 0.5,
                segments: 12,
            },
        ),
        (
            "Cone",
            Primitive::Cone {
                radius: 0.25,
                height: 0.5,
                segments: 12,
            },
        ),
        (
            "Sphere",
            Primitive::UvSphere {
                radius: 0.25,
                segments: 12,
                rings: 8,
            },
        ),
        (
            "Icosphere",
            Primitive::Icosphere {
                radius: 0.25,
                level: 1,
            },
        ),
        (
            "Torus",
            Primitive::Torus {
                major_radius: 0.25,
                minor_radius: 0.08,
                major_segments: 16,
                minor_segments: 8,
            },
        ),
    ]
}

fn colour32(rgba: u32) -> egui::Color32 {
    egui::Color32::from_rgb((rgba >> 24) as u8, (rgba >> 16) as u8, (rgba >> 8) as u8)
}

fn material_colour(m: MaterialId) -> egui::Color32 {
    let [r, g, b, _] = palette_entry(m).rgba;
    egui::Color32::from_rgb(r, g, b)
}

fn role_name(r: Option<Role>) -> &'static str {
    match r {
        Some(Role::Admin) => "admin",
        Some(Role::Editor) => "editor",
        Some(Role::Viewer) => "viewer",
        None => "no role",
    }
}

/// Draws every panel; returns what the user asked for.
pub fn draw(ui: &mut egui::Ui, st: &mut UiState, m: &Model) -> Vec<Request> {
    let mut out = Vec::new();
    if st.panels {
        egui::Panel::top("file").show(ui, |ui| file_bar(ui, st, m, &mut out));
        egui::Panel::left("tools").exact_size(190.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| tools_panel(ui, st, m, &mut out));
        });
        egui::Panel::right("inspector")
            .exact_size(250.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    inspector(ui, st, m, &mut out);
                    ui.separator();
                    session_panel(ui, st, m, &mut out);
                    ui.separator();
                    history(ui, m, &mut out);
                });
            });
        egui::Panel::bottom("messages").show(ui, |ui| {
            let last = m.messages.iter().rev().take(2).collect::<Vec<_>>();
            if last.is_empty() {
                ui.label(format!(
                    "{} · {} · F1: shortcuts",
                    m.session,
                    role_name(m.role)
                ));
            }
            for line in last.into_iter().rev() {
                ui.label(line);
            }
        });
    }
    let ctx = ui.ctx().clone();
    if st.overlay {
        egui::Area::new(egui::Id::unique("overlay"))
            .fixed_pos(egui::pos2(200.0, 40.0))
            .interactable(false)
            .show(&ctx, |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    for l in &m.overlay {
                        ui.monospace(l);
                    }
                });
            });
    }
    if st.help {
        let mut open = true;
        egui::Window::new("Shortcuts")
            .open(&mut open)
            .default_width(420.0)
            .show(&ctx, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    egui::Grid::new("keys").striped(true).show(ui, |ui| {
                        for s in keys::table() {
                            ui.monospace(s.label());
                            ui.label(s.what);
                            ui.end_row();
                        }
                        for (k, what) in keys::MOUSE {
                            ui.monospace(*k);
                            ui.label(*what);
                            ui.end_row();
                        }
                    });
                });
            });
        st.help = open;
    }
    out
}

fn file_bar(ui: &mut egui::Ui, st: &mut UiState, m: &Model, out: &mut Vec<Request>) {
    ui.horizontal(|ui| {
        if ui.button("New").clicked() {
            out.push(Request::Command(Command::New));
        }
        let field = ui.add(
            egui::TextEdit::singleline(&mut st.path)
                .id(egui::Id::unique("path"))
                .hint_text("path: a .theta session to open, or a .glb/.obj to export")
                .desired_width(320.0),
        );
        if st.focus_path {
            field.request_focus();
            st.focus_path = false;
        }
        let path = st.path.trim().to_owned();
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Open").clicked() || (enter && !st.path_exports)) && !path.is_empty() {
            out.push(Request::Open(path.clone()));
        }
        if ui.button("Save").clicked() {
            out.push(Request::Command(Command::Save));
        }
        if ui.button("Save as").clicked() && !path.is_empty() {
            out.push(Request::SaveAs(path.clone()));
        }
        if (ui.button("Export").clicked() || (enter && st.path_exports)) && !path.is_empty() {
            out.push(Request::Export(path));
        }
        ui.separator();
        ui.toggle_value(&mut st.overlay, "Telemetry");
        ui.toggle_value(&mut st.help, "Shortcuts");
        ui.separator();
        ui.label(format!("{} — {}", m.session, m.file));
    });
}

fn tools_panel(ui: &mut egui::Ui, st: &mut UiState, m: &Model, out: &mut Vec<Request>) {
    ui.heading("Tools");
    egui::Grid::new("tool grid").num_columns(2).show(ui, |ui| {
        for (i, (tool, name, key)) in TOOLS.iter().enumerate() {
            let label = if key.is_empty() {
                (*name).to_owned()
            } else {
                format!("{name} ({key})")
            };
            if ui.selectable_label(m.tool == *tool, label).clicked() {
                out.push(Request::Act(Action::SetTool(*tool)));
            }
            if i % 2 == 1 {
                ui.end_row();
            }
        }
    });
    if m.tool == Tool::Grab {
        ui.horizontal(|ui| {
            for (g, n) in [
                (GrabMode::Move, "Move"),
                (GrabMode::Rotate, "Rotate"),
                (GrabMode::Scale, "Scale"),
            ] {
                if ui.selectable_label(m.grab == g, n).clicked() {
                    out.push(Request::Act(Action::SetGrab(g)));
                }
            }
        });
    }
    if m.tool == Tool::Insert {
        ui.label("Insert:");
        ui.horizontal_wrapped(|ui| {
            for (n, p) in primitives() {
                if ui.selectable_label(m.primitive == p, n).clicked() {
                    out.push(Request::Act(Action::SetPrimitive(p)));
                }
            }
        });
    }
    ui.separator();
    ui.label("Select");
    ui.horizontal_wrapped(|ui| {
        for (mode, n) in [
            (SelectMode::Object, "Object 1"),
            (SelectMode::Face, "Face 2"),
            (SelectMode::Edge, "Edge 3"),
            (SelectMode::Vertex, "Vertex 4"),
        ] {
            if ui.selectable_label(m.mode == mode, n).clicked() {
                out.push(Request::Act(Action::SetMode(mode)));
            }
        }
    });
    ui.separator();
    ui.label("Snapping");
    let mut snap = m.snap;
    let mut deg = snap.angle.to_degrees();
    egui::Grid::new("snap").num_columns(2).show(ui, |ui| {
        ui.label("grid m");
        ui.add(
            egui::DragValue::new(&mut snap.grid)
                .speed(0.01)
                .range(0.0..=10.0),
        );
        ui.end_row();
        ui.label("angle °");
        ui.add(egui::DragValue::new(&mut deg).speed(1.0).range(0.0..=180.0));
        ui.end_row();
        ui.label("scale");
        ui.add(
            egui::DragValue::new(&mut snap.scale)
                .speed(0.01)
                .range(0.0..=10.0),
        );
        ui.end_row();
    });
    snap.angle = deg.to_radians();
    if snap != m.snap {
        out.push(Request::Act(Action::SetSnap(snap)));
    }
    ui.separator();
    ui.label("Colour");
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = egui::vec2(2.0, 2.0);
        for (i, e) in PALETTE.iter().enumerate() {
            let id = MaterialId(i as u32);
            let [r, g, b, _] = e.rgba;
            let b = egui::Button::new("")
                .fill(egui::Color32::from_rgb(r, g, b))
                .min_size(egui::vec2(18.0, 18.0))
                .selected(m.material == id);
            if ui.add(b).on_hover_text(e.name).clicked() {
                out.push(Request::Act(Action::SetMaterial(id)));
            }
        }
    });
    ui.horizontal(|ui| {
        ui.color_edit_button_srgb(&mut st.custom);
        let [r, g, b] = st.custom;
        if ui.button("Use custom").clicked() {
            out.push(Request::Act(Action::SetMaterial(MaterialId::custom(
                r, g, b,
            ))));
        }
    });
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(18.0, 18.0), egui::Sense::hover());
        ui.painter()
            .rect_filled(rect, 3.0, material_colour(m.material));
        ui.label(palette_entry(m.material).name);
        if ui.button("Paint selection (P)").clicked() {
            out.push(Request::Act(Action::Paint));
        }
    });
    ui.separator();
    ui.horizontal_wrapped(|ui| {
        if ui.button("Undo").clicked() {
            out.push(Request::Act(Action::Undo));
        }
        if ui.button("Redo").clicked() {
            out.push(Request::Act(Action::Redo));
        }
        if ui.button("Frame").clicked() {
            out.push(Request::Command(Command::Frame(false)));
        }
        if ui.selectable_label(m.fly, "Fly (F)").clicked() {
            out.push(Request::Command(Command::Fly));
        }
    });
}

/// The selected object's name, placement and size (the headset's inspector panel too).
pub(crate) fn inspector(ui: &mut egui::Ui, st: &mut UiState, m: &Model, out: &mut Vec<Request>) {
    ui.heading("Inspector");
    match &m.object {
        None if m.elements == 0 => {
            ui.label("Nothing selected.");
            st.name = (String::new(), None);
            st.placement = None;
        }
        None => {
            ui.label(format!("{} elements selected", m.elements));
        }
        Some((id, name, t, verts, faces)) => {
            if st.name.1 != Some(*id) {
                st.name = (name.clone(), Some(*id));
            }
            ui.horizontal(|ui| {
                ui.label("Name");
                let mut edit = egui::TextEdit::singleline(&mut st.name.0)
                    .id(egui::Id::unique("name"))
                    .desired_width(150.0)
                    .show(ui);
                let r = edit.response.response.clone();
                if st.focus_name {
                    // Renaming replaces the name: it starts selected.
                    r.request_focus();
                    let all = egui::text::CCursorRange::two(
                        egui::text::CCursor::new(0),
                        egui::text::CCursor::new(st.name.0.chars().count()),
                    );
                    edit.state.cursor.set_char_range(Some(all));
                    edit.state.store(ui.ctx(), r.id);
                    st.focus_name = false;
                }
                if r.lost_focus() && st.name.0.trim() != name && !st.name.0.trim().is_empty() {
                    out.push(Request::Act(Action::Rename(st.name.0.trim().to_owned())));
                }
            });
            ui.label(format!("{verts} vertices, {faces} faces"));
            if m.elements > 0 {
                ui.label(format!("{} elements selected", m.elements));
            }
            // Placement: typed values become one exact placement when a field is released.
            let yaw = {
                let q = t.rotation;
                (2.0 * (q.w * q.y + q.x * q.z)).atan2(1.0 - 2.0 * (q.y * q.y + q.x * q.x))
            };
            let fresh = (
                *id,
                [t.translation.x, t.translation.y, t.translation.z],
                yaw.to_degrees(),
                t.scale.x,
            );
            let p = st.placement.get_or_insert(fresh);
            if p.0 != *id {
                *p = fresh;
            }
            // Released (a drag ended, or typing left the field), and still being edited.
            let (mut done, mut dragging) = (false, false);
            let mut field = |r: egui::Response| {
                done |= r.drag_stopped() || r.lost_focus();
                dragging |= r.dragged() || r.has_focus();
            };
            egui::Grid::new("placement").num_columns(4).show(ui, |ui| {
                ui.label("position");
                for v in &mut p.1 {
                    field(ui.add(egui::DragValue::new(v).speed(0.05).max_decimals(3)));
                }
                ui.end_row();
                ui.label("turn °");
                field(ui.add(egui::DragValue::new(&mut p.2).speed(1.0).max_decimals(1)));
                ui.end_row();
                ui.label("scale");
                field(
                    ui.add(
                        egui::DragValue::new(&mut p.3)
                            .speed(0.01)
                            .range(0.01..=100.0)
                            .max_decimals(3),
                    ),
                );
                ui.end_row();
            });
            if done && *p != fresh {
                let half = p.2.to_radians() / 2.0;
                out.push(Request::Act(Action::Place(
                    *id,
                    ObjectTransform {
                        translation: Vec3::new(p.1[0], p.1[1], p.1[2]),
                        rotation: theta_mesh::Quat::from_xyzw(0.0, half.sin(), 0.0, half.cos()),
                        scale: Vec3::new(p.3, p.3, p.3),
                    },
                )));
            } else if !dragging {
                *p = fresh;
            }
        }
    }
}

fn session_panel(ui: &mut egui::Ui, st: &mut UiState, m: &Model, out: &mut Vec<Request>) {
    ui.heading("Session");
    ui.label(format!(
        "{} — you are {} ({})",
        m.session,
        m.me.0,
        role_name(m.role)
    ));
    if m.role == Some(Role::Admin) {
        ui.horizontal(|ui| {
            if st.session_name.is_empty() {
                st.session_name = m.session.clone();
            }
            ui.add(egui::TextEdit::singleline(&mut st.session_name).desired_width(140.0));
            if ui.button("Rename").clicked() && st.session_name.trim() != m.session {
                out.push(Request::RenameSession(st.session_name.trim().to_owned()));
            }
        });
    }
    ui.horizontal(|ui| {
        ui.label("Invite as");
        for (r, n) in [(Role::Editor, "editor"), (Role::Viewer, "viewer")] {
            if ui.selectable_label(st.ticket_role == r, n).clicked() {
                st.ticket_role = r;
            }
        }
    });
    match &m.ticket {
        Ok(t) => {
            ui.horizontal(|ui| {
                let short: String = t.chars().take(14).collect();
                ui.monospace(format!("{short}…"));
                if ui.button("Copy ticket").clicked() {
                    out.push(Request::Copy(t.clone()));
                }
            });
        }
        Err(e) => {
            ui.label(format!("no ticket: {e}"));
        }
    }
    ui.label(format!("Peers ({})", m.peers.len()));
    for p in &m.peers {
        ui.horizontal(|ui| {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter()
                .circle_filled(rect.center(), 6.0, colour32(p.colour));
            let quality = if p.rtt_ms < 50.0 {
                "good"
            } else if p.rtt_ms < 150.0 {
                "fair"
            } else {
                "poor"
            };
            ui.label(format!(
                "{} · {} · {:.0} ms {quality}",
                p.name,
                role_name(p.role),
                p.rtt_ms
            ));
        });
        ui.horizontal(|ui| {
            let follow = if p.followed {
                "Stop following"
            } else {
                "Follow"
            };
            if ui.small_button(follow).clicked() {
                out.push(Request::Follow((!p.followed).then_some(p.key)));
            }
            if m.role == Some(Role::Admin) {
                for (r, n) in [
                    (Role::Admin, "admin"),
                    (Role::Editor, "editor"),
                    (Role::Viewer, "viewer"),
                ] {
                    if p.role != Some(r) && ui.small_button(format!("make {n}")).clicked() {
                        out.push(Request::SetRole(AuthorId(p.key), r));
                    }
                }
            }
        });
    }
}

fn history(ui: &mut egui::Ui, m: &Model, out: &mut Vec<Request>) {
    ui.horizontal(|ui| {
        ui.heading("History");
        if ui
            .add_enabled(m.undo_redo.0, egui::Button::new("Undo"))
            .clicked()
        {
            out.push(Request::Act(Action::Undo));
        }
        if ui
            .add_enabled(m.undo_redo.1, egui::Button::new("Redo"))
            .clicked()
        {
            out.push(Request::Act(Action::Redo));
        }
    });
    history_rows(ui, m, usize::MAX);
}

/// The last `most` commands, newest first; what the fold rejected struck through in red (the
/// headset's history panel too).
pub(crate) fn history_rows(ui: &mut egui::Ui, m: &Model, most: usize) {
    for h in m.history.iter().take(most) {
        let text = format!("{} {}", h.author, h.kind);
        let mut rich = egui::RichText::new(text);
        if h.rejected {
            rich = rich
                .strikethrough()
                .color(egui::Color32::from_rgb(200, 60, 60));
        } else if h.mine {
            rich = rich.strong();
        }
        ui.label(rich);
    }
}
