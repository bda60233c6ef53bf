//! The headset's panels: the tool palette and the colour picker on the off hand, the property
//! inspector and the undo history on a desk the menu button calls up in front of the user.
//!
//! egui draws all four into one texture (an atlas: each panel has its own region of it), and
//! only on a frame where what they show changed; the renderer hangs each region in the world as
//! a quad ([`Extras`](crate::render::gpu::Extras)). The dominant hand's pointer is egui's mouse:
//! where its ray meets a panel ([`WorldPanel::hit`]) is the pointer's position, and its trigger
//! the primary button. A press that starts on a panel belongs to the panel until it is released,
//! and while the pointer is on a panel the tools see neither the trigger nor the ray, so clicking
//! a button never also edits the model behind it.
//!
//! The buttons' places are fixed by construction ([`tool_button`], [`swatch`], [`undo_button`]),
//! in points from their panel's top left, so what is drawn and what a test aims at agree.

use egui::{Pos2, Rect, Vec2, pos2, vec2};
use theta_mesh::{MaterialId, PALETTE, Quat, Vec3};

use super::panel::{WorldPanel, palette_on_hand, pick};
use crate::desktop::ui::{Model, Request, UiState};
use crate::engine::tools::{Action, SelectMode};
use crate::presence::{Pose, Ray};

/// The atlas's pixels per point: panels are sharp at arm's length.
pub const PIXELS_PER_POINT: f32 = 2.0;

/// The atlas, in points.
pub const ATLAS: Vec2 = vec2(512.0, 522.0);

/// A panel of the headset's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The tools (and the selection modes), on the off hand.
    Palette,
    /// The colours and materials, beside the palette.
    Colours,
    /// The selected object's name, placement and size, on the desk.
    Inspector,
    /// Undo, redo and the session's last commands, on the desk.
    History,
}

impl Kind {
    /// Every panel.
    pub const ALL: [Kind; 4] = [Kind::Palette, Kind::Colours, Kind::Inspector, Kind::History];

    /// Its region of the atlas, points.
    pub fn region(self) -> Rect {
        let (min, size) = match self {
            Kind::Palette => (pos2(0.0, 0.0), vec2(240.0, 266.0)),
            Kind::Colours => (pos2(256.0, 0.0), vec2(240.0, 200.0)),
            Kind::Inspector => (pos2(0.0, 274.0), vec2(240.0, 240.0)),
            Kind::History => (pos2(256.0, 274.0), vec2(240.0, 240.0)),
        };
        Rect::from_min_size(min, size)
    }

    /// How big a point is in the world, metres: the hand's panels are held close, the desk's
    /// further off.
    pub fn metres_per_point(self) -> f32 {
        match self {
            Kind::Palette | Kind::Colours => 0.001,
            Kind::Inspector | Kind::History => 0.0015,
        }
    }

    /// A panel of this kind at `pose`: its size in metres, and its "pixels" in points, so a hit
    /// is in points from the panel's top left.
    pub fn at(self, pose: Pose) -> WorldPanel {
        let r = self.region();
        let m = self.metres_per_point();
        WorldPanel {
            pose,
            size: (r.width() * m, r.height() * m),
            pixels: (r.width() as u32, r.height() as u32),
        }
    }

    /// Its region as texture coordinates: left, top, right, bottom.
    pub fn uv(self) -> [f32; 4] {
        let r = self.region();
        [
            r.min.x / ATLAS.x,
            r.min.y / ATLAS.y,
            r.max.x / ATLAS.x,
            r.max.y / ATLAS.y,
        ]
    }
}

/// The palette's tool buttons: three columns of four, in [`super::actions::TOOLS`]' order;
/// points from the palette's top left.
pub fn tool_button(i: usize) -> Rect {
    let (col, row) = ((i % 3) as f32, (i / 3) as f32);
    Rect::from_min_size(pos2(8.0 + col * 76.0, 30.0 + row * 36.0), vec2(72.0, 32.0))
}

/// The palette's selection-mode buttons, in one row under the tools.
pub fn mode_button(i: usize) -> Rect {
    Rect::from_min_size(pos2(8.0 + i as f32 * 57.0, 176.0), vec2(53.0, 20.0))
}

/// The palette's bottom row: undo, redo, and the desk (called up or put away), so a bare hand
/// reaches them by pointing and pinching as a controller's buttons would.
pub fn palette_row(i: usize) -> Rect {
    Rect::from_min_size(pos2(8.0 + i as f32 * 76.0, 204.0), vec2(72.0, 26.0))
}

/// The palette's turn buttons (left, right): a snap turn, for a bare hand, which has no stick.
pub fn turn_button(i: usize) -> Rect {
    Rect::from_min_size(pos2(8.0 + i as f32 * 114.0, 236.0), vec2(110.0, 24.0))
}

/// The selection modes, in [`mode_button`]'s order.
pub const MODES: [(SelectMode, &str); 4] = [
    (SelectMode::Object, "Object"),
    (SelectMode::Face, "Face"),
    (SelectMode::Edge, "Edge"),
    (SelectMode::Vertex, "Vertex"),
];

/// The colour picker's swatches: seven columns, in [`PALETTE`]'s order; points from the colour
/// panel's top left.
pub fn swatch(i: usize) -> Rect {
    let (col, row) = ((i % 7) as f32, (i / 7) as f32);
    Rect::from_min_size(pos2(8.0 + col * 32.0, 32.0 + row * 32.0), vec2(28.0, 28.0))
}

/// The colour panel's "paint the selection" button.
pub fn paint_button() -> Rect {
    Rect::from_min_size(pos2(8.0, 164.0), vec2(224.0, 28.0))
}

/// The history's undo button; points from the history panel's top left.
pub fn undo_button() -> Rect {
    Rect::from_min_size(pos2(8.0, 30.0), vec2(108.0, 32.0))
}

/// The history's redo button.
pub fn redo_button() -> Rect {
    Rect::from_min_size(pos2(124.0, 30.0), vec2(108.0, 32.0))
}

/// The gap between the palette and the colour panel beside it, metres.
const HAND_GAP: f32 = 0.01;
/// How far the hand's panels are raised along their own up from [`palette_on_hand`], metres.
const HAND_LIFT: f32 = 0.05;

/// The off hand's panels, from its grip pose (world frame): the palette above the back of the
/// hand, the colours beside it on the dominant hand's side.
pub fn on_hand(grip: &Pose, off_is_left: bool) -> [(Kind, WorldPanel); 2] {
    let mut palette = Kind::Palette.at(palette_on_hand(grip));
    let (right, up, _) = palette.axes();
    // Raised along its own up so its bottom edge clears the hand.
    palette.pose.position += up * HAND_LIFT;
    let step = palette.size.0 * 0.5 + HAND_GAP + Kind::Colours.at(palette.pose).size.0 * 0.5;
    let side = if off_is_left { step } else { -step };
    let colours = Kind::Colours.at(Pose {
        position: palette.pose.position + right * side,
        orientation: palette.pose.orientation,
    });
    [(Kind::Palette, palette), (Kind::Colours, colours)]
}

/// Where the desk goes when it is called up with the head at `head` (world frame): 60 cm ahead
/// of it on the level, 25 cm below the eyes, facing back at them and tipped back 20°.
pub fn desk_in_front(head: &Pose) -> Pose {
    let f = head.orientation.rotate(Vec3::new(0.0, 0.0, -1.0));
    let level = Vec3::new(f.x, 0.0, f.z)
        .normalized()
        .unwrap_or(Vec3::new(0.0, 0.0, -1.0));
    let yaw = (-level.x).atan2(-level.z);
    let turn = Quat::from_axis_angle(Vec3::new(0.0, 1.0, 0.0), yaw).unwrap_or(Quat::IDENTITY);
    let tilt = Quat::from_axis_angle(Vec3::new(1.0, 0.0, 0.0), -(20f32.to_radians()))
        .unwrap_or(Quat::IDENTITY);
    Pose {
        position: head.position + level * 0.6 - Vec3::new(0.0, 0.25, 0.0),
        orientation: turn.mul_quat(tilt).normalized().unwrap_or(Quat::IDENTITY),
    }
}

/// The desk's panels: the inspector on the left, the history on the right.
pub fn on_desk(desk: &Pose) -> [(Kind, WorldPanel); 2] {
    let probe = Kind::Inspector.at(*desk);
    let (right, _, _) = probe.axes();
    let step = probe.size.0 * 0.5 + 0.02;
    let at = |k: Kind, side: f32| {
        k.at(Pose {
            position: desk.position + right * side,
            orientation: desk.orientation,
        })
    };
    [
        (Kind::Inspector, at(Kind::Inspector, -step)),
        (Kind::History, at(Kind::History, step)),
    ]
}

/// The world point at `local` (points from the panel's top left) on `panel`.
pub fn point_on(panel: &WorldPanel, local: Pos2) -> Vec3 {
    let (right, up, _) = panel.axes();
    let u = local.x / panel.pixels.0 as f32 - 0.5;
    let v = 0.5 - local.y / panel.pixels.1 as f32;
    panel.pose.position + right * (u * panel.size.0) + up * (v * panel.size.1)
}

/// Where the pointer is on the panels: which panel, the atlas point, and how far along the ray.
pub fn aimed(panels: &[(Kind, WorldPanel)], ray: &Ray) -> Option<(Kind, Pos2, f32)> {
    let worlds: Vec<WorldPanel> = panels.iter().map(|(_, p)| *p).collect();
    let (i, hit) = pick(&worlds, ray)?;
    let kind = panels[i].0;
    let min = kind.region().min;
    Some((
        kind,
        pos2(min.x + hit.pixel.0, min.y + hit.pixel.1),
        hit.distance,
    ))
}

/// The trigger past this presses the panel's button; below [`RELEASE`] it lets go.
const PRESS: f32 = 0.6;
const RELEASE: f32 = 0.4;

/// The pointer as egui's mouse: the trigger's presses and releases, and who owns them.
#[derive(Clone, Debug, Default)]
pub struct Pointer {
    down: bool,
    /// A press that began on a panel: the panel keeps it until the trigger lets go.
    captured: bool,
    /// A press that began off the panels: the tool keeps it, wherever the ray goes.
    tool_holds: bool,
    last: Option<Pos2>,
}

/// What a frame of pointing did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pointed {
    /// For egui.
    pub events: Vec<egui::Event>,
    /// The panels own the pointer this frame: the tools see no trigger and no ray.
    pub on_panel: bool,
}

impl Pointer {
    /// One frame: where the ray meets the panels (atlas points), and the trigger.
    pub fn update(&mut self, at: Option<Pos2>, trigger: f32) -> Pointed {
        let mut out = Pointed::default();
        let down = if self.down {
            trigger > RELEASE
        } else {
            trigger > PRESS
        };
        // Where it is: while captured, a ray off the panels keeps the last point (egui sees a
        // drag that stayed at the edge, and the release lands there).
        let pos = match (at, self.captured) {
            (Some(p), _) => Some(p),
            (None, true) => self.last,
            (None, false) => None,
        };
        match (pos, self.last) {
            (Some(p), last) if last != Some(p) => out.events.push(egui::Event::PointerMoved(p)),
            (None, Some(_)) => out.events.push(egui::Event::PointerGone),
            _ => {}
        }
        let button = |pos: Pos2, pressed: bool| egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        };
        if down && !self.down {
            match at {
                Some(p) => {
                    self.captured = true;
                    out.events.push(button(p, true));
                }
                None => self.tool_holds = true,
            }
        } else if !down && self.down {
            if let (true, Some(p)) = (self.captured, pos) {
                out.events.push(button(p, false));
            }
            self.captured = false;
            self.tool_holds = false;
        }
        self.down = down;
        self.last = pos;
        out.on_panel = self.captured || (at.is_some() && !self.tool_holds);
        out
    }
}

/// What the panels ask of the headset itself, besides the editor's [`Request`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Asks {
    /// Whether the desk is up (the palette's desk button turns it).
    pub desk: bool,
    /// Snap turns asked for: positive to the left.
    pub turn: i32,
}

/// Draws the four panels into the atlas's regions.
pub fn draw(ui: &mut egui::Ui, st: &mut UiState, m: &Model, asks: &mut Asks) -> Vec<Request> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let rect = kind.region();
        ui.painter()
            .rect_filled(rect, 10.0, ui.visuals().window_fill());
        ui.painter().rect_stroke(
            rect.shrink(0.5),
            10.0,
            ui.visuals().window_stroke(),
            egui::StrokeKind::Inside,
        );
        let at = |r: Rect| r.translate(rect.min.to_vec2());
        let heading = |ui: &mut egui::Ui, text: String| {
            ui.put(
                Rect::from_min_size(rect.min + vec2(10.0, 4.0), vec2(220.0, 22.0)),
                egui::Label::new(egui::RichText::new(text).heading()),
            );
        };
        match kind {
            Kind::Palette => {
                heading(ui, "Tools".into());
                for (i, tool) in super::actions::TOOLS.iter().enumerate() {
                    let name = crate::desktop::ui::TOOLS
                        .iter()
                        .find(|(t, _, _)| t == tool)
                        .map_or("?", |(_, n, _)| *n);
                    let b = egui::Button::selectable(m.tool == *tool, name);
                    if ui.put(at(tool_button(i)), b).clicked() {
                        out.push(Request::Act(Action::SetTool(*tool)));
                    }
                }
                for (i, (mode, name)) in MODES.iter().enumerate() {
                    let text = egui::RichText::new(*name).small();
                    let b = egui::Button::selectable(m.mode == *mode, text).small();
                    if ui.put(at(mode_button(i)), b).clicked() {
                        out.push(Request::Act(Action::SetMode(*mode)));
                    }
                }
                let undo = ui.add_enabled_ui(m.undo_redo.0, |ui| {
                    ui.put(at(palette_row(0)), egui::Button::new("Undo"))
                });
                if undo.inner.clicked() {
                    out.push(Request::Act(Action::Undo));
                }
                let redo = ui.add_enabled_ui(m.undo_redo.1, |ui| {
                    ui.put(at(palette_row(1)), egui::Button::new("Redo"))
                });
                if redo.inner.clicked() {
                    out.push(Request::Act(Action::Redo));
                }
                if ui
                    .put(
                        at(palette_row(2)),
                        egui::Button::selectable(asks.desk, "Desk"),
                    )
                    .clicked()
                {
                    asks.desk = !asks.desk;
                }
                for (i, (label, by)) in [("< Turn", 1), ("Turn >", -1)].into_iter().enumerate() {
                    if ui
                        .put(at(turn_button(i)), egui::Button::new(label))
                        .clicked()
                    {
                        asks.turn += by;
                    }
                }
            }
            Kind::Colours => {
                heading(
                    ui,
                    format!("Colour: {}", theta_mesh::palette_entry(m.material).name),
                );
                for (i, e) in PALETTE.iter().enumerate() {
                    let id = MaterialId(i as u32);
                    let [r, g, b, _] = e.rgba;
                    let b = egui::Button::new("")
                        .fill(egui::Color32::from_rgb(r, g, b))
                        .selected(m.material == id);
                    if ui.put(at(swatch(i)), b).clicked() {
                        out.push(Request::Act(Action::SetMaterial(id)));
                    }
                }
                if ui
                    .put(at(paint_button()), egui::Button::new("Paint the selection"))
                    .clicked()
                {
                    out.push(Request::Act(Action::Paint));
                }
            }
            Kind::Inspector => {
                let inner = rect.shrink(10.0);
                ui.scope_builder(egui::UiBuilder::new().max_rect(inner), |ui| {
                    crate::desktop::ui::inspector(ui, st, m, &mut out);
                });
            }
            Kind::History => {
                heading(ui, "History".into());
                let undo = ui.add_enabled_ui(m.undo_redo.0, |ui| {
                    ui.put(at(undo_button()), egui::Button::new("Undo"))
                });
                if undo.inner.clicked() {
                    out.push(Request::Act(Action::Undo));
                }
                let redo = ui.add_enabled_ui(m.undo_redo.1, |ui| {
                    ui.put(at(redo_button()), egui::Button::new("Redo"))
                });
                if redo.inner.clicked() {
                    out.push(Request::Act(Action::Redo));
                }
                let list =
                    Rect::from_min_max(rect.min + vec2(10.0, 70.0), rect.max - vec2(10.0, 6.0));
                ui.scope_builder(egui::UiBuilder::new().max_rect(list), |ui| {
                    ui.set_clip_rect(list);
                    crate::desktop::ui::history_rows(ui, m, 10);
                });
            }
        }
    }
    out
}

/// What the panels show, in brief: egui runs again when this changes. The log's length and its
/// rejections change with every edit, undo and peer's command; the rest is what is in hand.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    /// Commands in the log, and how many the fold rejected.
    pub commands: (usize, usize),
    /// The tool, selection mode, grab mode and material in hand.
    pub holding: (
        crate::presence::Tool,
        SelectMode,
        crate::engine::tools::GrabMode,
        MaterialId,
    ),
    /// What is selected.
    pub selection: Vec<crate::presence::ElementRef>,
    /// The undo and redo stacks' depths.
    pub stacks: (usize, usize),
}

impl Shown {
    /// What `editor` holds, in a log of `commands` (and rejections).
    pub fn of(editor: &crate::engine::tools::Editor, commands: (usize, usize)) -> Shown {
        Shown {
            commands,
            holding: (editor.tool, editor.mode, editor.grab, editor.material),
            selection: editor.selection.clone(),
            stacks: (editor.undo_stack().len(), editor.redo_stack().len()),
        }
    }
}

/// The panels at run time: egui, the atlas it draws into, the pointer, and where the desk is.
pub struct Panels {
    ctx: egui::Context,
    renderer: egui_wgpu::Renderer,
    layer: crate::desktop::panels::PanelLayer,
    /// The editor's panel state (the inspector's fields).
    pub state: UiState,
    pointer: Pointer,
    /// Where the desk stands, while it is up.
    pub desk: Option<Pose>,
    events: Vec<egui::Event>,
    /// What the panels last showed, and whether egui asked to run again soon.
    shown: Option<Shown>,
    again: bool,
    start: std::time::Instant,
    free: Vec<egui::TextureId>,
    /// Where the panels are this frame.
    pub placed: Vec<(Kind, WorldPanel)>,
    /// The head, world frame, where the desk comes up.
    head: Option<Pose>,
    /// Snap turns the palette asked for, not yet made (positive to the left).
    pub turn: i32,
}

impl Panels {
    /// Panels for a renderer on `device`.
    pub fn new(device: &wgpu::Device) -> Panels {
        let format = crate::render::gpu::COLOR_FORMAT;
        Panels {
            ctx: egui::Context::default(),
            renderer: egui_wgpu::Renderer::new(
                device,
                format,
                egui_wgpu::RendererOptions::default(),
            ),
            layer: crate::desktop::panels::PanelLayer::new(device, format),
            state: UiState::default(),
            pointer: Pointer::default(),
            desk: None,
            events: Vec::new(),
            shown: None,
            again: true,
            start: std::time::Instant::now(),
            free: Vec::new(),
            placed: Vec::new(),
            head: None,
            turn: 0,
        }
    }

    /// The menu button: the desk comes up in front of the head, or goes away.
    pub fn toggle_desk(&mut self, head: Option<Pose>) {
        self.desk = match (self.desk, head) {
            (Some(_), _) => None,
            (None, Some(h)) => Some(desk_in_front(&h)),
            (None, None) => None,
        };
    }

    /// Places the panels (the off hand's grip, world frame) and points at them with `ray` and
    /// `trigger`. Returns whether the panels own the pointer this frame, and where its ray ends
    /// on them.
    pub fn point(
        &mut self,
        head: Option<Pose>,
        off_grip: Option<Pose>,
        off_is_left: bool,
        ray: Option<&Ray>,
        trigger: f32,
    ) -> (bool, Option<Vec3>) {
        self.head = head;
        self.placed.clear();
        if let Some(g) = off_grip {
            self.placed.extend(on_hand(&g, off_is_left));
        }
        if let Some(d) = &self.desk {
            self.placed.extend(on_desk(d));
        }
        let hit = ray.and_then(|r| {
            aimed(&self.placed, r).map(|(_, at, t)| (at, r.origin + r.direction * t))
        });
        let out = self.pointer.update(hit.map(|h| h.0), trigger);
        self.events.extend(out.events);
        (out.on_panel, hit.map(|h| h.1))
    }

    /// Whether egui should run this frame: the pointer did something, what the panels show
    /// changed, or egui asked to.
    pub fn due(&self, now: &Shown) -> bool {
        !self.events.is_empty() || self.again || self.shown.as_ref() != Some(now)
    }

    /// Runs egui on `model` and draws the atlas where it changed. Returns what the user asked
    /// for, and the command buffers to submit before the frame that shows them.
    pub fn run(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        model: &Model,
        shown: Shown,
    ) -> (Vec<Request>, Vec<wgpu::CommandBuffer>) {
        let mut raw = egui::RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, ATLAS)),
            time: Some(self.start.elapsed().as_secs_f64()),
            focused: true,
            events: std::mem::take(&mut self.events),
            max_texture_side: Some(device.limits().max_texture_dimension_2d as usize),
            ..Default::default()
        };
        raw.viewports
            .entry(egui::ViewportId::ROOT)
            .or_default()
            .native_pixels_per_point = Some(PIXELS_PER_POINT);
        let st = &mut self.state;
        let mut requests = Vec::new();
        let was_up = self.desk.is_some();
        let mut asks = Asks {
            desk: was_up,
            turn: 0,
        };
        let out = self
            .ctx
            .run_ui(raw, |ui| requests = draw(ui, st, model, &mut asks));
        if asks.desk != was_up {
            self.toggle_desk(self.head);
        }
        self.turn += asks.turn;
        self.shown = Some(shown);
        self.again = out
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .is_some_and(|v| v.repaint_delay.is_zero());
        let mut deltas = out.textures_delta;
        let textures_changed = !deltas.set.is_empty();
        for (id, list) in deltas.set.drain() {
            for delta in &list {
                self.renderer.update_texture(device, queue, id, delta);
            }
        }
        let ppp = out.pixels_per_point;
        let size = (
            (ATLAS.x * PIXELS_PER_POINT) as u32,
            (ATLAS.y * PIXELS_PER_POINT) as u32,
        );
        let mut cmds = Vec::new();
        if !self.layer.holds(&out.shapes, ppp, size, textures_changed) {
            let prims = self.ctx.tessellate(out.shapes.clone(), ppp);
            cmds = self.layer.draw(
                device,
                queue,
                &mut self.renderer,
                out.shapes,
                &prims,
                ppp,
                size,
            );
        }
        for id in std::mem::take(&mut self.free) {
            self.renderer.free_texture(&id);
        }
        self.free.extend(deltas.free.drain());
        (requests, cmds)
    }

    /// The panels as the renderer draws them this frame (nothing until egui has drawn once).
    pub fn quads(
        &self,
    ) -> (
        Option<wgpu::TextureView>,
        Vec<crate::render::gpu::PanelQuad>,
    ) {
        let Some(view) = self.layer.view() else {
            return (None, Vec::new());
        };
        let quads = self
            .placed
            .iter()
            .map(|(k, p)| crate::render::gpu::PanelQuad {
                corners: p.corners(),
                uv: k.uv(),
            })
            .collect();
        (Some(view.clone()), quads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xr::panel::tests::ray;

    #[test]
    fn the_regions_tile_the_atlas_and_every_button_lies_inside_its_panel() {
        for (i, a) in Kind::ALL.iter().enumerate() {
            let r = a.region();
            assert!(
                Rect::from_min_size(Pos2::ZERO, ATLAS).contains_rect(r),
                "{a:?}"
            );
            for b in &Kind::ALL[i + 1..] {
                assert!(!r.intersects(b.region()), "{a:?} overlaps {b:?}");
            }
        }
        // Every panel's buttons lie inside it and never overlap one another.
        let palette: Vec<Rect> = (0..super::super::actions::TOOLS.len())
            .map(tool_button)
            .chain((0..MODES.len()).map(mode_button))
            .chain((0..3).map(palette_row))
            .chain((0..2).map(turn_button))
            .collect();
        let colours: Vec<Rect> = (0..PALETTE.len())
            .map(swatch)
            .chain([paint_button()])
            .collect();
        let history = vec![undo_button(), redo_button()];
        for (kind, buttons) in [
            (Kind::Palette, palette),
            (Kind::Colours, colours),
            (Kind::History, history),
        ] {
            let panel = Rect::from_min_size(Pos2::ZERO, kind.region().size());
            for (i, a) in buttons.iter().enumerate() {
                assert!(panel.contains_rect(*a), "{kind:?} button {i}");
                for (k, b) in buttons.iter().enumerate().skip(i + 1) {
                    assert!(!a.intersects(*b), "{kind:?} buttons {i} and {k}");
                }
            }
        }
    }

    #[test]
    fn a_ray_at_a_button_in_the_world_lands_on_that_button_in_the_atlas() {
        // The left hand held out, palm down; the right hand points from above and behind.
        let grip = Pose::at(Vec3::new(-0.2, 1.2, -0.3));
        let panels = on_hand(&grip, true);
        let from = Vec3::new(0.25, 1.5, 0.0);
        // The Insert tool's button centre, in the world, and back.
        let insert = super::super::actions::TOOLS
            .iter()
            .position(|t| *t == crate::presence::Tool::Insert)
            .unwrap();
        let target = point_on(&panels[0].1, tool_button(insert).center());
        let (kind, at, _) = aimed(&panels, &ray(from, target)).unwrap();
        assert_eq!(kind, Kind::Palette);
        assert!(
            (at - tool_button(insert).center()).length() < 0.05,
            "{at:?}"
        );
        // The colours hang to the right of the palette (towards the dominant hand), the same
        // way up; the blue swatch's centre maps into its region.
        let (r, up, n) = panels[0].1.axes();
        let d = panels[1].1.pose.position - panels[0].1.pose.position;
        assert!((d.dot(r) - 0.25).abs() < 1e-4 && d.dot(up).abs() < 1e-5 && d.dot(n).abs() < 1e-5);
        let blue = PALETTE.iter().position(|e| e.name == "blue").unwrap();
        let target = point_on(&panels[1].1, swatch(blue).center());
        let (kind, at, _) = aimed(&panels, &ray(from, target)).unwrap();
        assert_eq!(kind, Kind::Colours);
        let expect = Kind::Colours.region().min + swatch(blue).center().to_vec2();
        assert!((at - expect).length() < 0.05, "{at:?} {expect:?}");
        // Left-handed: the colours go to the palette's left.
        let mirrored = on_hand(&grip, false);
        let d = mirrored[1].1.pose.position - mirrored[0].1.pose.position;
        assert!((d.dot(r) + 0.25).abs() < 1e-4);
    }

    #[test]
    fn the_desk_faces_the_head_from_in_front_at_any_heading() {
        let head = Pose::at(Vec3::new(0.0, 1.6, 0.0));
        let desk = desk_in_front(&head);
        assert!(
            (desk.position - Vec3::new(0.0, 1.35, -0.6)).length() < 1e-5,
            "{desk:?}"
        );
        // Looking to the right (−Z turned towards +X), tilted down: still level, 60 cm to the right.
        let turned = Quat::from_axis_angle(Vec3::new(0.0, 1.0, 0.0), -std::f32::consts::FRAC_PI_2)
            .unwrap()
            .mul_quat(Quat::from_axis_angle(Vec3::new(1.0, 0.0, 0.0), -0.5).unwrap());
        let head = Pose {
            position: Vec3::new(1.0, 1.7, 2.0),
            orientation: turned,
        };
        let desk = desk_in_front(&head);
        assert!(
            (desk.position - Vec3::new(1.6, 1.45, 2.0)).length() < 1e-4,
            "{desk:?}"
        );
        for (kind, p) in on_desk(&desk) {
            let (_, _, n) = p.axes();
            // Facing back towards the head (−X), tipped up 20°.
            assert!(
                n.x < -0.9 && (n.y - 20f32.to_radians().sin()).abs() < 1e-4,
                "{kind:?} {n:?}"
            );
            // And the eyes see its front.
            assert!(
                p.hit(&ray(head.position, p.pose.position)).is_some(),
                "{kind:?}"
            );
        }
        let [(_, ins), (_, his)] = on_desk(&desk);
        // The inspector on the left as seen from the head: towards −Z here.
        assert!(ins.pose.position.z < his.pose.position.z);
    }

    #[test]
    fn a_press_on_a_panel_stays_the_panels_and_a_press_off_it_stays_the_tools() {
        let mut p = Pointer::default();
        let a = pos2(40.0, 50.0);
        // Hovering: egui sees the pointer, the tools do not.
        let out = p.update(Some(a), 0.0);
        assert_eq!(out.events, vec![egui::Event::PointerMoved(a)]);
        assert!(out.on_panel);
        // Pressed (past 0.6), held (above 0.4), released: one press and one release.
        let out = p.update(Some(a), 0.7);
        assert!(matches!(
            &out.events[..],
            [egui::Event::PointerButton { pressed: true, .. }]
        ));
        assert!(p.update(Some(a), 0.5).events.is_empty());
        // Dragged off the panel while held: it stays the panel's, at the last point.
        let out = p.update(None, 0.9);
        assert!(out.on_panel && out.events.is_empty(), "{out:?}");
        let out = p.update(None, 0.1);
        assert!(
            matches!(&out.events[..], [egui::Event::PointerButton { pressed: false, pos, .. }] if *pos == a),
            "{out:?}"
        );
        assert!(!out.on_panel);
        // A press that starts on the model belongs to the tool, even when the ray then
        // crosses a panel: egui sees the pointer move but no button, and the tool keeps it.
        let mut p = Pointer::default();
        assert!(!p.update(None, 0.9).on_panel);
        let out = p.update(Some(a), 0.9);
        assert!(!out.on_panel);
        assert!(
            out.events
                .iter()
                .all(|e| !matches!(e, egui::Event::PointerButton { .. }))
        );
        assert!(p.update(Some(a), 0.0).events.is_empty());
        // Released, it is the panel's again.
        assert!(p.update(Some(a), 0.0).on_panel);
        // The ray leaves: egui is told.
        assert_eq!(p.update(None, 0.0).events, vec![egui::Event::PointerGone]);
    }
}
