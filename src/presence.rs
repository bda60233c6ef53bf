//! Presence: where each peer is and what it is doing, many times a second, never logged.
//!
//! A peer's [`Presence`] (head and hands, pointer ray, hovered and selected elements, tool, name,
//! colour) travels as one QUIC datagram per update on each direct connection. Datagrams can be
//! lost or reordered, so every update is whole (no deltas) and carries a sequence number; the
//! receiver keeps the newest and forgets a peer whose updates stop ([`STALE_AFTER`]) or whose
//! connection closes, so nobody is left standing as a ghost.
//!
//! Interest management: the world is cut into cubes of [`CELL`] metres. A peer subscribes to the
//! regions it can see ([`Interest`], boxes snapped outward to whole cells) and tells each peer
//! over the control stream; a sender then sends its presence to a peer only while its head is in a
//! cell that peer subscribed to, and one last `gone` update when it leaves. A peer with no
//! subscriptions receives everyone (small sessions need no setup).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use theta_crdt::ids::ObjectId;
use theta_mesh::{EdgeKey, FaceId, Quat, Vec3, VertexId};

/// Edge length of an interest cell, metres.
pub const CELL: f32 = 1.0;
/// Most regions in one interest.
pub const MAX_REGIONS: usize = 64;
/// Most selected elements carried in one update (a datagram is about 1.2 KB).
pub const MAX_SELECTED: usize = 16;
/// Longest display name carried, bytes.
pub const MAX_NAME: usize = 64;
/// Slowest and fastest update rates a node accepts, per second.
pub const MIN_HZ: u32 = 20;
/// Fastest update rate.
pub const MAX_HZ: u32 = 90;
/// A peer whose updates stop for this long is no longer shown.
pub const STALE_AFTER: Duration = Duration::from_millis(1500);
/// An unchanged presence is sent again this often (so receivers can tell silence from loss).
pub const KEEPALIVE: Duration = Duration::from_millis(250);

/// A position and orientation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    /// Where, metres in the world frame.
    pub position: Vec3,
    /// Which way (unit quaternion).
    pub orientation: Quat,
}

impl Pose {
    /// A pose at `position`, facing the default way.
    pub fn at(position: Vec3) -> Pose {
        Pose {
            position,
            orientation: Quat::IDENTITY,
        }
    }
}

/// A pointer ray.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ray {
    /// Start, world frame.
    pub origin: Vec3,
    /// Unit direction.
    pub direction: Vec3,
}

/// One element of the scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementRef {
    /// A whole object.
    Object(ObjectId),
    /// A vertex of an object.
    Vertex(ObjectId, VertexId),
    /// An edge of an object.
    Edge(ObjectId, EdgeKey),
    /// A face of an object.
    Face(ObjectId, FaceId),
}

impl ElementRef {
    /// The object the element belongs to.
    pub fn object(&self) -> ObjectId {
        match *self {
            ElementRef::Object(o)
            | ElementRef::Vertex(o, _)
            | ElementRef::Edge(o, _)
            | ElementRef::Face(o, _) => o,
        }
    }
}

/// The editor tools, as presence names them (the numbering is part of the wire format: append
/// only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Tool {
    /// Select elements.
    #[default]
    Select,
    /// Grab, move, rotate, scale.
    Grab,
    /// Extrude faces.
    Extrude,
    /// Inset faces.
    Inset,
    /// Cut an edge loop.
    LoopCut,
    /// Subdivide.
    Subdivide,
    /// Insert a primitive.
    Insert,
    /// Paint faces.
    Paint,
    /// Erase.
    Erase,
    /// Mirror.
    Mirror,
    /// Duplicate.
    Duplicate,
    /// Group or ungroup.
    Group,
    /// A tool this build does not know (a newer peer's).
    Other(u8),
}

impl Tool {
    /// Its wire number.
    pub fn to_u8(self) -> u8 {
        match self {
            Tool::Select => 0,
            Tool::Grab => 1,
            Tool::Extrude => 2,
            Tool::Inset => 3,
            Tool::LoopCut => 4,
            Tool::Subdivide => 5,
            Tool::Insert => 6,
            Tool::Paint => 7,
            Tool::Erase => 8,
            Tool::Mirror => 9,
            Tool::Duplicate => 10,
            Tool::Group => 11,
            Tool::Other(n) => n,
        }
    }

    /// The tool a wire number names.
    pub fn from_u8(n: u8) -> Tool {
        match n {
            0 => Tool::Select,
            1 => Tool::Grab,
            2 => Tool::Extrude,
            3 => Tool::Inset,
            4 => Tool::LoopCut,
            5 => Tool::Subdivide,
            6 => Tool::Insert,
            7 => Tool::Paint,
            8 => Tool::Erase,
            9 => Tool::Mirror,
            10 => Tool::Duplicate,
            11 => Tool::Group,
            n => Tool::Other(n),
        }
    }
}

/// What a peer shows of itself.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Presence {
    /// Head pose (absent until tracked).
    pub head: Option<Pose>,
    /// Left hand or controller.
    pub left_hand: Option<Pose>,
    /// Right hand or controller.
    pub right_hand: Option<Pose>,
    /// Pointer ray (a controller's, or the mouse's).
    pub pointer: Option<Ray>,
    /// The element under the pointer.
    pub hovered: Option<ElementRef>,
    /// The selection (the first [`MAX_SELECTED`] elements travel).
    pub selected: Vec<ElementRef>,
    /// Active tool.
    pub tool: Tool,
    /// Display name.
    pub name: String,
    /// Colour, 0xRRGGBBAA.
    pub colour: u32,
    /// A drag in progress: the world-frame transform being applied to `selected`, so peers
    /// see it live before the one command it commits on release.
    pub drag: Option<theta_mesh::Transform>,
}

impl Presence {
    /// Where interest management places this peer: its head, else a hand, else nowhere (and a
    /// peer that is nowhere is sent to everyone).
    pub fn anchor(&self) -> Option<Vec3> {
        self.head
            .or(self.right_hand)
            .or(self.left_hand)
            .map(|p| p.position)
    }
}

/// An integer cell of the interest grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cell(pub [i32; 3]);

impl Cell {
    /// The cell holding a point (non-finite coordinates land in cell 0 of that axis).
    pub fn of(p: Vec3) -> Cell {
        let c = |v: f32| {
            if v.is_finite() {
                (v / CELL).floor().clamp(i32::MIN as f32, i32::MAX as f32) as i32
            } else {
                0
            }
        };
        Cell([c(p.x), c(p.y), c(p.z)])
    }
}

/// An axis-aligned box, world frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    /// Smallest corner.
    pub min: Vec3,
    /// Largest corner.
    pub max: Vec3,
}

impl Region {
    /// A box from two opposite corners, in any order.
    pub fn new(a: Vec3, b: Vec3) -> Region {
        Region {
            min: Vec3::new(a.x.min(b.x), a.y.min(b.y), a.z.min(b.z)),
            max: Vec3::new(a.x.max(b.x), a.y.max(b.y), a.z.max(b.z)),
        }
    }

    /// Whether a point is inside (exactly, not snapped to cells).
    pub fn contains(&self, p: Vec3) -> bool {
        (self.min.x..=self.max.x).contains(&p.x)
            && (self.min.y..=self.max.y).contains(&p.y)
            && (self.min.z..=self.max.z).contains(&p.z)
    }

    /// Whether a cell overlaps the box (the box snapped outward to whole cells).
    pub fn covers(&self, c: Cell) -> bool {
        let (lo, hi) = (Cell::of(self.min).0, Cell::of(self.max).0);
        (0..3).all(|i| (lo[i]..=hi[i]).contains(&c.0[i]))
    }

    /// Whether all six numbers are finite.
    pub fn is_finite(&self) -> bool {
        [self.min, self.max]
            .iter()
            .all(|v| v.x.is_finite() && v.y.is_finite() && v.z.is_finite())
    }
}

/// The regions a peer wants presence from; none means everywhere.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Interest {
    /// The subscribed regions.
    pub regions: Vec<Region>,
}

impl Interest {
    /// Whether a peer anchored at `anchor` should be sent.
    pub fn wants(&self, anchor: Option<Vec3>) -> bool {
        match anchor {
            _ if self.regions.is_empty() => true,
            None => true,
            Some(p) => {
                let c = Cell::of(p);
                self.regions.iter().any(|r| r.covers(c))
            }
        }
    }
}

/// What to send a peer this tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The presence update.
    Send,
    /// One `gone` update: the sender just left the peer's interest.
    Gone,
    /// Nothing.
    Skip,
}

/// A sender's state towards one peer: its interest and whether it currently sees us.
#[derive(Debug, Default)]
pub struct Outbound {
    /// The peer's interest.
    pub interest: Interest,
    visible: bool,
    /// Updates sent and withheld (for the benchmark and the stats).
    pub sent: u64,
    /// Updates withheld because the peer could not see us.
    pub withheld: u64,
}

impl Outbound {
    /// Decides for one update, and counts it.
    pub fn decide(&mut self, p: &Presence) -> Decision {
        let wants = self.interest.wants(p.anchor());
        let d = match (wants, self.visible) {
            (true, _) => Decision::Send,
            (false, true) => Decision::Gone,
            (false, false) => Decision::Skip,
        };
        self.visible = wants;
        match d {
            Decision::Send | Decision::Gone => self.sent += 1,
            Decision::Skip => self.withheld += 1,
        }
        d
    }
}

/// A peer's presence as last received.
#[derive(Clone, Debug, PartialEq)]
pub struct Remote {
    /// The presence.
    pub presence: Presence,
    /// Its sequence number.
    pub seq: u32,
    /// When it arrived.
    pub at: Instant,
}

/// The presences received from peers, keyed by peer.
#[derive(Debug)]
pub struct Table<K> {
    peers: HashMap<K, Remote>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            peers: HashMap::new(),
        }
    }
}

/// Whether `a` comes after `b` in wrapping sequence order.
fn newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

impl<K: std::hash::Hash + Eq + Clone> Table<K> {
    /// Takes an update; returns false if it was older than what is held (and is dropped).
    pub fn update(&mut self, from: K, seq: u32, gone: bool, p: Presence, now: Instant) -> bool {
        if let Some(r) = self.peers.get(&from)
            && !newer(seq, r.seq)
        {
            return false;
        }
        if gone {
            self.peers.remove(&from);
        } else {
            self.peers.insert(
                from,
                Remote {
                    presence: p,
                    seq,
                    at: now,
                },
            );
        }
        true
    }

    /// Forgets a peer (its connection closed).
    pub fn remove(&mut self, from: &K) {
        self.peers.remove(from);
    }

    /// The live presences (stale ones are dropped first).
    pub fn live(&mut self, now: Instant) -> Vec<(K, Remote)> {
        self.peers
            .retain(|_, r| now.saturating_duration_since(r.at) < STALE_AFTER);
        self.peers
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    }
}

/// A person's colour (0xRRGGBBAA) for their avatar, pointer and highlights, chosen from their
/// key among colours that stand apart from each other and from the palette's greys.
pub fn colour_of(key: &[u8; 32]) -> u32 {
    const COLOURS: [u32; 8] = [
        0xe6_3c_3c_ff, // red
        0x2e_86_de_ff, // blue
        0x27_ae_60_ff, // green
        0xf3_9c_12_ff, // orange
        0x8e_44_ad_ff, // purple
        0x16_a0_85_ff, // teal
        0xe8_43_93_ff, // pink
        0xd4_ac_0d_ff, // gold
    ];
    let h = key
        .iter()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(*b)));
    COLOURS[(h % 8) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_snap_regions_outward() {
        let r = Region::new(Vec3::new(0.5, 0.0, 0.0), Vec3::new(2.2, 1.0, 1.0));
        assert!(r.covers(Cell::of(Vec3::new(0.1, 0.5, 0.5))));
        assert!(r.covers(Cell::of(Vec3::new(2.9, 0.5, 0.5))));
        assert!(!r.covers(Cell::of(Vec3::new(3.0, 0.5, 0.5))));
        assert!(!r.covers(Cell::of(Vec3::new(-0.1, 0.5, 0.5))));
        assert!(r.contains(Vec3::new(1.0, 0.5, 0.5)));
        assert!(!r.contains(Vec3::new(0.1, 0.5, 0.5)));
        assert_eq!(Cell::of(Vec3::new(f32::NAN, 1e30, -1e30)).0[0], 0);
    }

    #[test]
    fn outbound_sends_gone_once_when_leaving_interest() {
        let mut o = Outbound {
            interest: Interest {
                regions: vec![Region::new(Vec3::ZERO, Vec3::ONE)],
            },
            ..Outbound::default()
        };
        let at = |x: f32| Presence {
            head: Some(Pose::at(Vec3::new(x, 0.5, 0.5))),
            ..Presence::default()
        };
        assert_eq!(o.decide(&at(0.5)), Decision::Send);
        assert_eq!(o.decide(&at(5.0)), Decision::Gone);
        assert_eq!(o.decide(&at(6.0)), Decision::Skip);
        assert_eq!(o.decide(&at(0.2)), Decision::Send);
        assert_eq!((o.sent, o.withheld), (3, 1));
        // No regions: everyone is sent everything; a peer with no pose too.
        assert!(Interest::default().wants(Some(Vec3::new(99.0, 0.0, 0.0))));
        assert!(o.interest.wants(None));
    }

    #[test]
    fn table_keeps_the_newest_and_forgets_the_silent() {
        let mut t = Table::default();
        let t0 = Instant::now();
        let p = |n: &str| Presence {
            name: n.into(),
            ..Presence::default()
        };
        assert!(t.update(1u8, u32::MAX - 1, false, p("a"), t0));
        assert!(!t.update(1, u32::MAX - 2, false, p("old"), t0));
        // Sequence numbers wrap.
        assert!(t.update(1, 3, false, p("b"), t0));
        assert_eq!(t.live(t0)[0].1.presence.name, "b");
        assert!(t.update(1, 7, true, p(""), t0));
        assert!(t.live(t0).is_empty());
        assert!(t.update(2, 0, false, p("c"), t0));
        assert_eq!(t.live(t0 + STALE_AFTER / 2).len(), 1);
        assert!(t.live(t0 + STALE_AFTER).is_empty());
        t.update(3, 0, false, p("d"), t0);
        t.remove(&3);
        assert!(t.live(t0).is_empty());
        assert_eq!(Tool::from_u8(Tool::Paint.to_u8()), Tool::Paint);
        assert_eq!(Tool::from_u8(200), Tool::Other(200));
    }
}
