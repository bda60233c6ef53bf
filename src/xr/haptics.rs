//! Haptic pulses: a firm one when a grab takes hold, a tick at each snap step a drag crosses, a
//! confirming one when a drag commits, and a tick for a snap turn. They are worked out from what
//! the editor did this frame ([`Signals`]), so the same rules hold for every tool.

use theta_mesh::Transform;

use super::actions::Hand;
use crate::engine::Editor;

/// One vibration to play.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pulse {
    /// On which controller.
    pub hand: Hand,
    /// Strength, 0..1.
    pub amplitude: f32,
    /// How long, seconds.
    pub seconds: f32,
}

/// A grab taking hold.
pub const GRAB: (f32, f32) = (0.5, 0.020);
/// A snap step crossed.
pub const SNAP: (f32, f32) = (0.2, 0.008);
/// A drag committed.
pub const CONFIRM: (f32, f32) = (0.7, 0.030);
/// A snap turn.
pub const TURN: (f32, f32) = (0.15, 0.008);
/// Snap ticks come at most this often (seconds), however fast the hand moves.
const TICK_GAP: f32 = 0.03;

/// What the editor did, read after the engine's step and before its commands are signed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Signals {
    /// A drag is held.
    pub dragging: bool,
    /// The drag's snapped transform and distance (they change only at a snap step).
    pub step: Option<(Transform, f32)>,
    /// Commands waiting to be signed.
    pub queued: usize,
}

impl Signals {
    /// The editor's signals now.
    pub fn of(ed: &Editor) -> Signals {
        Signals {
            dragging: ed.drag.is_some(),
            step: ed.drag.as_ref().map(|d| (d.transform, d.distance)),
            queued: ed.pending().count(),
        }
    }
}

/// Turns the editor's frames into pulses.
#[derive(Clone, Debug, Default)]
pub struct Haptics {
    last: Signals,
    since_tick: f32,
}

impl Haptics {
    /// One frame: the editor's signals, whether a snap turn happened, the frame's length, and
    /// the hand that runs the tools.
    pub fn update(
        &mut self,
        now: Signals,
        snap_turned: bool,
        dt: f32,
        dominant: Hand,
    ) -> Vec<Pulse> {
        let pulse = |(amplitude, seconds): (f32, f32)| Pulse {
            hand: dominant,
            amplitude,
            seconds,
        };
        let mut out = Vec::new();
        self.since_tick += dt.max(0.0);
        let last = self.last;
        if now.dragging && !last.dragging {
            out.push(pulse(GRAB));
            self.since_tick = 0.0;
        } else if now.dragging && now.step != last.step && self.since_tick >= TICK_GAP {
            out.push(pulse(SNAP));
            self.since_tick = 0.0;
        } else if !now.dragging && last.dragging && now.queued > last.queued {
            out.push(pulse(CONFIRM));
        }
        if snap_turned {
            out.push(pulse(TURN));
        }
        self.last = now;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use theta_mesh::Vec3;

    fn drag(x: f32) -> Signals {
        Signals {
            dragging: true,
            step: Some((Transform::Translate(Vec3::new(x, 0.0, 0.0)), 0.0)),
            queued: 0,
        }
    }

    #[test]
    fn a_drag_pulses_when_it_takes_hold_ticks_at_snap_steps_and_confirms_its_commit() {
        let mut h = Haptics::default();
        let amp = |p: &[Pulse]| p.iter().map(|p| p.amplitude).collect::<Vec<_>>();
        let f = 0.011;
        assert!(
            h.update(Signals::default(), false, f, Hand::Right)
                .is_empty()
        );
        let p = h.update(drag(0.0), false, f, Hand::Right);
        assert_eq!(amp(&p), [GRAB.0]);
        assert_eq!(p[0].hand, Hand::Right);
        // The hand moves but stays within a snap step: nothing.
        for _ in 0..5 {
            assert!(h.update(drag(0.0), false, f, Hand::Right).is_empty());
        }
        // A step crossed: a tick.
        assert_eq!(amp(&h.update(drag(0.05), false, f, Hand::Right)), [SNAP.0]);
        // Steps crossed faster than the gap: one tick per gap, not one per step.
        assert!(h.update(drag(0.10), false, f, Hand::Right).is_empty());
        assert!(h.update(drag(0.15), false, f, Hand::Right).is_empty());
        assert_eq!(amp(&h.update(drag(0.20), false, f, Hand::Right)), [SNAP.0]);
        // Released with a command queued: confirmed.
        let done = Signals {
            queued: 1,
            ..Signals::default()
        };
        assert_eq!(amp(&h.update(done, false, f, Hand::Right)), [CONFIRM.0]);
        // A drag let go where it began queues nothing: no confirmation.
        h.update(Signals::default(), false, f, Hand::Right);
        h.update(drag(0.0), false, f, Hand::Right);
        assert!(
            h.update(Signals::default(), false, f, Hand::Right)
                .is_empty()
        );
        // A snap turn ticks the hand that turned; a left-handed user feels it on the left.
        let p = h.update(Signals::default(), true, f, Hand::Left);
        assert_eq!(amp(&p), [TURN.0]);
        assert_eq!(p[0].hand, Hand::Left);
    }
}
