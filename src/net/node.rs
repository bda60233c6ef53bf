//! The running peer: endpoint, connections, gossip, and the session they feed.
//!
//! Concurrency: one tokio runtime; the [`Session`] sits behind a std mutex that is held only for
//! synchronous log work (never across an `.await`). Each connection has a reader task (the control
//! stream, which owns that connection's sync state), a writer task (frames queued on a channel)
//! and a datagram task (heartbeats). One task reads the gossip topic.
//!
//! Connection rules: the joiner dials the ticket's peers; every peer announces itself on the
//! gossip topic and lists its peers in its Hello, and whoever learns of a peer it is not connected
//! to dials it, so the peers form a full mesh of direct connections. When two connections to one
//! peer meet, both ends keep the same one: a newer process start (Hello `incarnation`) replaces an
//! older, and otherwise the connection dialled by the smaller endpoint id wins. A closed connection
//! is dialled again with backoff while the peer is known.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use iroh::address_lookup::memory::MemoryLookup;
use iroh::endpoint::{
    AfterHandshakeOutcome, Connection, EndpointHooks, IdleTimeout, QuicTransportConfig, RecvStream,
    SendStream, presets,
};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMode, RelayUrl, SecretKey};
use iroh_gossip::api::{Event as GossipEvent, GossipSender};
use iroh_gossip::net::{GOSSIP_ALPN, Gossip};
use iroh_gossip::proto::{PlumtreeConfig, TopicId};
use n0_future::StreamExt;
use theta_crdt::ids::{CommandId, Role};
use theta_crdt::invite::{Capability, SignedCapability};
use theta_crdt::log::InsertError;
use theta_crdt::sync::{Message, SyncSession};
use theta_crdt::wire::{decode_sync, encode_sync};
use tokio::sync::{mpsc, watch};

use super::presence::{self, Decision, Interest, Outbound, Presence, Region};
use super::ticket::SessionTicket;
use super::wire::{self, Frame, GossipCommands, GossipMessage, Hello, MAX_FRAME_BYTES};
use super::{ALPN, GOSSIP_MAX_MESSAGE, PROTOCOL_VERSION, schema_hash, unix_ms};
use super::{codec, compact};
use crate::session::Session;

/// Feature bit: the sender only wants the Hello (a newcomer fetching the genesis).
const FEATURE_BOOTSTRAP_ONLY: u64 = 1;
/// Features this build supports (the intersection with the peer's is used).
const FEATURES: u64 = 0;
/// Heartbeat period.
const PING_EVERY: Duration = Duration::from_millis(500);
/// Consecutive heartbeats showing a different log, with neither log growing, before a sync is
/// asked for.
const MISMATCHES_BEFORE_SYNC: u32 = 1;
/// Bytes of commands per sync batch on the control stream: big enough that a catch-up's batch
/// verification spreads over every core (it works in chunks of
/// `theta_crdt::log::VERIFY_CHUNK`), far below the frame limit.
const SYNC_BATCH_BYTES: usize = 1 << 20;
/// Most commands in one gossip broadcast.
const GOSSIP_BATCH: usize = 64;
/// Most datagrams accepted from one peer per second (heartbeats and presence at up to 90 Hz).
const MAX_DATAGRAMS_PER_S: u32 = 400;
/// Default presence rate, updates per second.
const DEFAULT_PRESENCE_HZ: u32 = 60;
/// Most gossip messages taken from one neighbour per second; beyond it they are dropped and
/// what they carried is fetched by sync from that neighbour (whose control stream has flow
/// control) once the second is over.
pub const MAX_GOSSIP_PER_S: u32 = 2000;
/// Neighbours whose gossip rates are tracked before old entries are dropped.
const MAX_PEERS_TRACKED: usize = 256;
/// Most frames queued to one peer's writer before it is considered stuck and dropped.
const MAX_QUEUED_FRAMES: usize = 4096;

/// How the endpoint reaches the world.
#[derive(Debug, Clone)]
pub enum NetMode {
    /// n0's public relays and address lookup.
    Internet,
    /// A self-hosted iroh relay; no public services.
    Relay(RelayUrl),
    /// LAN or offline: no relay, no DNS.
    Local,
}

/// Settings of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Network mode.
    pub mode: NetMode,
    /// Socket to bind (default: all interfaces, any port).
    pub bind: Option<SocketAddr>,
    /// Talk only through the relay: no IP transport, so no direct address exists to give out or
    /// to reach.
    pub relay_only: bool,
    /// Protocol version to speak (tests set another to check refusals).
    pub protocol_version: u16,
    /// Display name.
    pub name: String,
    /// An extra root certificate (DER) to trust for the relay: a self-hosted relay with its own
    /// certificate authority.
    pub relay_ca: Option<Vec<u8>>,
    /// The compression dictionary to offer ([`codec::DICT_V1`], or [`codec::PLAIN_ZSTD`] to
    /// behave like a peer without one).
    pub dictionary: u32,
    /// Most gossip messages taken from one neighbour per second ([`MAX_GOSSIP_PER_S`]; tests
    /// set fewer).
    pub max_gossip_per_s: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            mode: NetMode::Internet,
            bind: None,
            relay_only: false,
            protocol_version: PROTOCOL_VERSION,
            name: String::new(),
            relay_ca: None,
            dictionary: codec::DICT_V1,
            max_gossip_per_s: MAX_GOSSIP_PER_S,
        }
    }
}

/// Per-peer traffic figures from heartbeats and the connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerStats {
    /// Smoothed round-trip time, µs.
    pub rtt_us: u64,
    /// Mean deviation of the RTT, µs.
    pub jitter_us: u64,
    /// Heartbeats answered.
    pub pongs: u64,
    /// Heartbeats sent.
    pub pings: u64,
    /// UDP packets sent / received on the connection.
    pub packets_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// UDP bytes sent on the connection.
    pub bytes_sent: u64,
    /// UDP bytes received.
    pub bytes_received: u64,
    /// Presence updates sent to this peer.
    pub presence_sent: u64,
    /// Presence updates not sent because this peer could not see us (interest management).
    pub presence_withheld: u64,
    /// Presence updates received from this peer.
    pub presence_received: u64,
    /// Gossip messages from this neighbour dropped by the rate limit (fetched by sync instead).
    pub gossip_dropped: u64,
}

/// Something the node reports to the app.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// A peer connected.
    PeerUp {
        /// Its id.
        id: EndpointId,
        /// Its display name.
        name: String,
    },
    /// A peer's connection ended.
    PeerDown {
        /// Its id.
        id: EndpointId,
        /// Why.
        reason: String,
    },
    /// A handshake was refused (by us or by them).
    Refused {
        /// The peer.
        id: EndpointId,
        /// Why.
        reason: String,
    },
    /// A peer sent invalid data and was disconnected and banned.
    Banned {
        /// The peer.
        id: EndpointId,
        /// Why.
        reason: String,
    },
}

#[derive(Debug)]
struct BanHook(Arc<Mutex<HashSet<EndpointId>>>);

impl EndpointHooks for BanHook {
    async fn after_handshake<'a>(&'a self, conn: &'a Connection) -> AfterHandshakeOutcome {
        let banned = self
            .0
            .lock()
            .map(|b| b.contains(&conn.remote_id()))
            .unwrap_or(false);
        if banned {
            AfterHandshakeOutcome::Reject {
                error_code: 2u32.into(),
                reason: b"banned".to_vec(),
            }
        } else {
            AfterHandshakeOutcome::accept()
        }
    }
}

enum PeerCmd {
    /// Send a fresh summary (the heartbeat or gossip showed we lack something).
    Resync,
    /// Send this encoded frame as it is.
    Send(Vec<u8>),
}

struct PeerHandle {
    conn: Connection,
    ctl: mpsc::UnboundedSender<PeerCmd>,
    incarnation: u64,
    serial: u64,
    name: String,
    stats: Arc<Mutex<PeerStats>>,
    outbound: Arc<Mutex<Outbound>>,
    /// The dictionary its Hello named.
    dictionary: u32,
}

/// This peer's own presence and subscriptions.
struct Local {
    /// Subscribed regions by id.
    regions: BTreeMap<u64, Region>,
    next_region: u64,
}

impl Local {
    fn interest(&self) -> Interest {
        Interest {
            regions: self.regions.values().copied().collect(),
        }
    }
}

/// A subscription made with [`Node::subscribe_region`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(pub u64);

struct Inner {
    endpoint: Endpoint,
    lookup: MemoryLookup,
    session: Mutex<Session>,
    session_id: CommandId,
    genesis: Vec<u8>,
    me: EndpointId,
    incarnation: u64,
    cfg: NodeConfig,
    started: Instant,
    invite: Mutex<Option<SignedCapability>>,
    peers: Mutex<HashMap<EndpointId, PeerHandle>>,
    known: Mutex<BTreeMap<EndpointId, EndpointAddr>>,
    dialing: Mutex<HashSet<EndpointId>>,
    banned: Arc<Mutex<HashSet<EndpointId>>>,
    gossip_tx: tokio::sync::Mutex<Option<GossipSender>>,
    events: mpsc::UnboundedSender<NodeEvent>,
    log_len: watch::Sender<usize>,
    serial: AtomicU64,
    /// This peer's presence (None until the app sets one).
    presence: watch::Sender<Option<Presence>>,
    presence_hz: AtomicU32,
    /// Sequence numbers of presence updates, shared by all connections so they only grow.
    presence_seq: AtomicU32,
    remote_presence: Mutex<presence::Table<EndpointId>>,
    local: Mutex<Local>,
    /// Every presence update received, as it arrives (benchmarks).
    presence_tap: Mutex<Option<mpsc::UnboundedSender<(EndpointId, bool, Presence)>>>,
    /// When a heartbeat last asked a peer for a sync (see `datagram_loop`).
    heartbeat_sync: Mutex<Option<Instant>>,
    /// When a sync batch with more to follow was last taken (None once a last batch is): a
    /// catch-up in progress, which idle housekeeping leaves alone (see `idle_loop`).
    catching_up: Mutex<Option<Instant>>,
}

/// A running peer in a session.
pub struct Node {
    inner: Arc<Inner>,
    router: Router,
    gossip: Gossip,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.inner.me).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves data that is still consistent (every
    // critical section is a whole log operation), so carry on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn topic_of(session: &CommandId) -> TopicId {
    let mut h = blake3::Hasher::new();
    h.update(b"theta-topic/1");
    h.update(&session.0);
    TopicId::from_bytes(*h.finalize().as_bytes())
}

async fn bind_endpoint(
    cfg: &NodeConfig,
    secret: [u8; 32],
    lookup: MemoryLookup,
    banned: Arc<Mutex<HashSet<EndpointId>>>,
) -> Result<Endpoint> {
    let transport = QuicTransportConfig::builder()
        .max_idle_timeout(Some(
            IdleTimeout::try_from(Duration::from_secs(4)).map_err(|e| anyhow!("{e}"))?,
        ))
        .keep_alive_interval(Duration::from_millis(800))
        .build();
    let mut b = match &cfg.mode {
        NetMode::Internet => Endpoint::builder(presets::N0),
        // The net report's HTTPS probes go to the relay itself; without them an endpoint that
        // has no QUIC path to the relay never picks it as its home.
        NetMode::Relay(url) => Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Custom(url.clone().into()))
            .net_report_config(iroh::NetReportConfig::default()),
        NetMode::Local => Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .net_report_config(iroh::NetReportConfig::minimal()),
    };
    b = b
        .secret_key(SecretKey::from_bytes(&secret))
        .address_lookup(lookup)
        .transport_config(transport)
        .hooks(BanHook(banned));
    if let Some(der) = &cfg.relay_ca {
        b = b.ca_tls_config(
            iroh_relay::tls::CaTlsConfig::embedded()
                .with_extra_roots([rustls_pki_types::CertificateDer::from(der.clone())]),
        );
    }
    if cfg.relay_only {
        // No IP transport at all: every packet goes through the relay.
        b = b.clear_ip_transports();
    } else if let Some(addr) = cfg.bind {
        b = b
            .clear_ip_transports()
            .bind_addr(addr)
            .map_err(|e| anyhow!("binding {addr}: {e}"))?;
    }
    b.bind().await.context("starting the network endpoint")
}

/// What a node starts from.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per process and moved once"
)]
pub enum Start {
    /// A session already on this machine.
    Session(Session),
    /// Join through a ticket, keeping the session in this file (created if missing).
    Join {
        /// The ticket.
        ticket: SessionTicket,
        /// The session file.
        file: std::path::PathBuf,
    },
}

impl Node {
    /// Starts a node: binds the endpoint (keyed with `secret`), opens or joins the session, and
    /// begins talking to peers. Events go to `events`.
    pub async fn start(
        cfg: NodeConfig,
        secret: [u8; 32],
        start: Start,
        events: mpsc::UnboundedSender<NodeEvent>,
    ) -> Result<Node> {
        let lookup = MemoryLookup::new();
        let banned = Arc::new(Mutex::new(HashSet::new()));
        let endpoint = bind_endpoint(&cfg, secret, lookup.clone(), banned.clone()).await?;
        if matches!(cfg.mode, NetMode::Relay(_)) {
            tokio::time::timeout(Duration::from_secs(10), endpoint.online())
                .await
                .map_err(|_| anyhow!("the relay did not answer within 10 s"))?;
        }
        let key = theta_crdt::sign::Keypair::from_secret(secret);
        let (mut session, ticket) = match start {
            Start::Session(s) => (s, None),
            Start::Join { ticket, file } => {
                for p in &ticket.peers {
                    lookup.add_endpoint_info(p.clone());
                }
                let s = if file.exists() {
                    let (s, _) = Session::open(&file, &key)?;
                    if s.id() != Some(ticket.session) {
                        bail!("{} holds another session than the ticket's", file.display());
                    }
                    s
                } else {
                    let genesis = fetch_genesis(&endpoint, &cfg, &ticket).await?;
                    Session::create_joined(&file, &key, &genesis)?
                };
                (s, Some(ticket))
            }
        };
        // Checkpoints and compaction wait for the idle loop (below), so traffic never waits
        // behind a whole-file write while the session is busy.
        session.defer_housekeeping(true);
        let session_id = session.id().context("the session has no id")?;
        let genesis = session
            .replica()
            .log()
            .get(&session_id)
            .map(|e| e.bytes().to_vec())
            .context("the session's genesis is missing")?;
        let len = session.replica().log().len();
        let gossip = Gossip::builder()
            .max_message_size(GOSSIP_MAX_MESSAGE)
            .broadcast_config(PlumtreeConfig {
                graft_timeout_1: Duration::from_millis(10),
                graft_timeout_2: Duration::from_millis(5),
                ..Default::default()
            })
            .spawn(endpoint.clone());
        let mut inc = [0u8; 8];
        getrandom::getrandom(&mut inc).map_err(|e| anyhow!("randomness: {e}"))?;
        let inner = Arc::new(Inner {
            me: endpoint.id(),
            endpoint: endpoint.clone(),
            lookup,
            session: Mutex::new(session),
            session_id,
            genesis,
            incarnation: u64::from_le_bytes(inc),
            cfg,
            started: Instant::now(),
            invite: Mutex::new(ticket.as_ref().and_then(|t| t.invite)),
            peers: Mutex::new(HashMap::new()),
            known: Mutex::new(BTreeMap::new()),
            dialing: Mutex::new(HashSet::new()),
            banned,
            gossip_tx: tokio::sync::Mutex::new(None),
            events,
            log_len: watch::channel(len).0,
            serial: AtomicU64::new(0),
            presence: watch::channel(None).0,
            presence_hz: AtomicU32::new(DEFAULT_PRESENCE_HZ),
            // Starts from the clock, so a restarted process continues above its old numbers.
            presence_seq: AtomicU32::new((unix_ms() / 4) as u32),
            remote_presence: Mutex::new(presence::Table::default()),
            heartbeat_sync: Mutex::new(None),
            catching_up: Mutex::new(None),
            local: Mutex::new(Local {
                regions: BTreeMap::new(),
                next_region: 1,
            }),
            presence_tap: Mutex::new(None),
        });
        let router = Router::builder(endpoint.clone())
            .accept(ALPN, Handler(inner.clone()))
            .accept(GOSSIP_ALPN, gossip.clone())
            .spawn();
        let bootstrap: Vec<EndpointId> = ticket
            .as_ref()
            .map(|t| t.peers.iter().map(|p| p.id).collect())
            .unwrap_or_default();
        let topic = gossip
            .subscribe(topic_of(&session_id), bootstrap)
            .await
            .context("joining the session's gossip topic")?;
        let (tx, rx) = topic.split();
        *inner.gossip_tx.lock().await = Some(tx);
        tokio::spawn(gossip_loop(inner.clone(), rx));
        tokio::spawn(announce_loop(inner.clone()));
        tokio::spawn(idle_loop(inner.clone()));
        if let Some(t) = &ticket {
            for p in &t.peers {
                if p.id != inner.me {
                    lock(&inner.known).insert(p.id, p.clone());
                    spawn_dial(inner.clone(), p.clone());
                }
            }
        }
        let node = Node {
            inner,
            router,
            gossip,
        };
        if let Some(inv) = ticket.and_then(|t| t.invite) {
            node.redeem_if_needed(inv).await?;
        }
        Ok(node)
    }

    async fn redeem_if_needed(&self, invite: SignedCapability) -> Result<()> {
        let me = theta_crdt::ids::AuthorId(*self.inner.me.as_bytes());
        let has_role = lock(&self.inner.session)
            .replica()
            .scene()
            .role(&me)
            .is_some();
        if !has_role {
            self.edit_ops(vec![theta_crdt::command::Op::RedeemInvite { invite }])
                .await?;
        }
        Ok(())
    }

    /// This peer's endpoint id.
    pub fn id(&self) -> EndpointId {
        self.inner.me
    }

    /// This peer's display name.
    pub fn display_name(&self) -> &str {
        &self.inner.cfg.name
    }

    /// Runs `f` with the session (log, scene) locked.
    pub fn with_session<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        f(&mut lock(&self.inner.session))
    }

    /// Watches the number of commands in the log.
    pub fn log_len(&self) -> watch::Receiver<usize> {
        self.inner.log_len.subscribe()
    }

    /// Connected peers, with their names and figures.
    pub fn peers(&self) -> Vec<(EndpointId, String, PeerStats)> {
        let peers = lock(&self.inner.peers);
        let mut v: Vec<_> = peers
            .iter()
            .map(|(id, p)| {
                let mut s = lock(&p.stats).clone();
                {
                    let o = lock(&p.outbound);
                    s.presence_sent = o.sent;
                    s.presence_withheld = o.withheld;
                }
                let cs = p.conn.stats();
                s.packets_sent = cs.udp_tx.datagrams;
                s.packets_received = cs.udp_rx.datagrams;
                s.bytes_sent = cs.udp_tx.bytes;
                s.bytes_received = cs.udp_rx.bytes;
                (*id, p.name.clone(), s)
            })
            .collect();
        v.sort_by_key(|(id, _, _)| *id);
        v
    }

    /// Sets this peer's presence; it is sent to the peers that can see it at the presence rate
    /// (the latest value wins when it changes faster).
    pub fn set_presence(&self, p: Presence) {
        self.inner.presence.send_replace(Some(p));
    }

    /// Sets the presence rate, clamped to 20..=90 updates per second.
    pub fn set_presence_rate(&self, hz: u32) {
        self.inner.presence_hz.store(
            hz.clamp(presence::MIN_HZ, presence::MAX_HZ),
            Ordering::Relaxed,
        );
    }

    /// The peers' presences as last received (peers gone silent or disconnected are left out),
    /// sorted by peer.
    pub fn presence(&self) -> Vec<(EndpointId, presence::Remote)> {
        let mut v = lock(&self.inner.remote_presence).live(Instant::now());
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// Sends every presence update received (peer, `gone`, presence) to `tx` as it arrives
    /// (benchmarks classify each one).
    #[doc(hidden)]
    pub fn tap_presence(&self, tx: mpsc::UnboundedSender<(EndpointId, bool, Presence)>) {
        *lock(&self.inner.presence_tap) = Some(tx);
    }

    /// Asks for presence from this region of the world too. Until the first subscription,
    /// presence comes from everywhere; afterwards only from the subscribed regions (snapped
    /// outward to whole cells of [`presence::CELL`] metres).
    pub fn subscribe_region(&self, r: Region) -> Result<RegionId> {
        if !r.is_finite() {
            bail!("a region needs finite corners");
        }
        let id = {
            let mut l = lock(&self.inner.local);
            if l.regions.len() >= presence::MAX_REGIONS {
                bail!(
                    "already subscribed to {} regions (at most {})",
                    l.regions.len(),
                    presence::MAX_REGIONS
                );
            }
            let id = l.next_region;
            l.next_region += 1;
            l.regions.insert(id, r);
            id
        };
        self.inner.send_interest();
        Ok(RegionId(id))
    }

    /// Ends a subscription; false if there was none with that id. With no subscription left,
    /// presence comes from everywhere again.
    pub fn unsubscribe(&self, id: RegionId) -> bool {
        let found = lock(&self.inner.local).regions.remove(&id.0).is_some();
        if found {
            self.inner.send_interest();
        }
        found
    }

    /// Makes edits as this user (durable first, one group commit), then broadcasts them.
    pub async fn edit_ops(&self, ops: Vec<theta_crdt::command::Op>) -> Result<usize> {
        Ok(self.edit(ops).await?.len())
    }

    /// [`Node::edit_ops`], returning the new commands' ids (in order).
    /// Edits need the editor role at least: without it they are refused here, before anything
    /// is signed, with a message that says why (the desktop editor, the headset and the scripted
    /// command line all show it). A crafted edit that bypasses this folds to nothing on every
    /// peer anyway.
    pub async fn edit(&self, ops: Vec<theta_crdt::command::Op>) -> Result<Vec<CommandId>> {
        self.edit_checked(ops, true).await
    }

    /// [`Node::edit`] without its role check: what a modified client could do (tests of hostile
    /// peers only). Every peer keeps such edits and folds them to nothing.
    #[doc(hidden)]
    pub async fn edit_ignoring_role(
        &self,
        ops: Vec<theta_crdt::command::Op>,
    ) -> Result<Vec<CommandId>> {
        self.edit_checked(ops, false).await
    }

    async fn edit_checked(
        &self,
        ops: Vec<theta_crdt::command::Op>,
        check_role: bool,
    ) -> Result<Vec<CommandId>> {
        let signed = {
            let mut s = lock(&self.inner.session);
            if check_role {
                refuse_without_role(&s, &ops)?;
            }
            s.edit_many(ops)?
        };
        let (ids, signed): (Vec<CommandId>, Vec<Vec<u8>>) = signed.into_iter().unzip();
        self.inner
            .log_len
            .send_replace(lock(&self.inner.session).replica().log().len());
        broadcast(&self.inner, &signed).await;
        Ok(ids)
    }

    /// Broadcasts raw bytes as a command batch, unchecked (tests of hostile peers only).
    #[doc(hidden)]
    pub async fn inject(&self, commands: &[Vec<u8>]) {
        broadcast(&self.inner, commands).await;
        // The control streams too, as a sync batch, so every neighbour sees it from us.
        let frame = wire::encode(&Frame::Sync(encode_sync(&Message::Commands {
            commands: commands.iter().map(|c| Arc::from(&c[..])).collect(),
            more: false,
        })));
        for p in lock(&self.inner.peers).values() {
            let _ = p.ctl.send(PeerCmd::Send(frame.clone()));
        }
    }

    /// A ticket for this session: this peer's address and up to three of its peers', and an
    /// invite for `role` valid `ttl` (signed here if this user is an admin, else the invite
    /// this peer joined with, if it grants at least `role`).
    pub fn ticket(&self, role: Role, ttl: Duration) -> Result<SessionTicket> {
        let mut peers = vec![self.inner.endpoint.addr()];
        {
            let known = lock(&self.inner.known);
            let connected = lock(&self.inner.peers);
            peers.extend(
                connected
                    .keys()
                    .filter_map(|id| known.get(id).cloned())
                    .take(3),
            );
        }
        let s = lock(&self.inner.session);
        let me = theta_crdt::ids::AuthorId(*self.inner.me.as_bytes());
        let invite = if s.replica().scene().role(&me) == Some(Role::Admin) {
            let mut nonce = [0u8; 8];
            getrandom::getrandom(&mut nonce).map_err(|e| anyhow!("randomness: {e}"))?;
            Some(
                Capability {
                    session: self.inner.session_id,
                    role,
                    expires_unix_ms: unix_ms() + ttl.as_millis() as u64,
                    invitee: None,
                    nonce: u64::from_le_bytes(nonce),
                }
                .sign(s.key()),
            )
        } else {
            lock(&self.inner.invite)
                .filter(|i| i.capability.role >= role && i.check_expiry(unix_ms()).is_ok())
        };
        Ok(SessionTicket {
            session: self.inner.session_id,
            peers,
            invite,
        })
    }

    /// Saves a checkpoint, then closes every connection and the endpoint. Each network step is
    /// bounded in time: leaving never hangs on a peer that does not answer.
    pub async fn shutdown(self) -> Result<()> {
        let saved = lock(&self.inner.session).checkpoint();
        // Forget the peers first, so nothing dials them again while closing.
        lock(&self.inner.known).clear();
        let conns: Vec<Connection> = lock(&self.inner.peers)
            .drain()
            .map(|(_, p)| p.conn)
            .collect();
        for c in conns {
            c.close(0u32.into(), b"leaving");
        }
        let step = Duration::from_secs(2);
        let _ = tokio::time::timeout(step, self.gossip.shutdown()).await;
        let _ = tokio::time::timeout(step, self.router.shutdown()).await;
        let _ = tokio::time::timeout(step, self.inner.endpoint.close()).await;
        saved
    }
}

/// Dials a ticket peer just for its Hello, which carries the genesis a newcomer starts from.
async fn fetch_genesis(
    endpoint: &Endpoint,
    cfg: &NodeConfig,
    ticket: &SessionTicket,
) -> Result<Vec<u8>> {
    let mut last = anyhow!("the ticket lists no peers");
    for p in &ticket.peers {
        let r = async {
            let conn =
                tokio::time::timeout(Duration::from_secs(10), endpoint.connect(p.clone(), ALPN))
                    .await
                    .map_err(|_| anyhow!("no answer within 10 s"))??;
            let (mut send, mut recv) = conn.open_bi().await?;
            let hello = Hello {
                protocol: cfg.protocol_version,
                schema_hash: schema_hash(),
                session: ticket.session,
                features: FEATURES | FEATURE_BOOTSTRAP_ONLY,
                dictionary: cfg.dictionary,
                invite: ticket.invite,
                incarnation: 0,
                peers: Vec::new(),
                name: cfg.name.clone(),
                genesis: None,
            };
            write_frame(&mut send, &wire::encode(&Frame::Hello(Box::new(hello)))).await?;
            let reply = read_frame(&mut recv).await?;
            conn.close(0u32.into(), b"bootstrapped");
            match wire::decode(&reply)? {
                Frame::Hello(h) => {
                    check_hello(&h, cfg.protocol_version, &ticket.session)?;
                    h.genesis.context("the peer sent no genesis")
                }
                Frame::Refuse(r) => Err(anyhow!("refused: {r}")),
                _ => Err(anyhow!("the peer answered out of protocol")),
            }
        }
        .await;
        match r {
            Ok(g) => {
                let v = theta_crdt::log::verify_command(&g)
                    .map_err(|e| anyhow!("the peer's genesis is invalid: {e}"))?;
                if v.id() != ticket.session {
                    bail!("the peer's genesis is not the ticket's session");
                }
                return Ok(g);
            }
            Err(e) => last = e.context(format!("peer {}", p.id.fmt_short())),
        }
    }
    Err(last.context("could not reach any peer in the ticket"))
}

/// Refuses `ops` if this user's role in the session is below editor. Redeeming an invite is how a
/// newcomer gets a role, so it needs none (the fold checks the invite).
fn refuse_without_role(s: &Session, ops: &[theta_crdt::command::Op]) -> Result<()> {
    use theta_crdt::command::Op;
    let role = s.replica().scene().role(&s.key().author());
    if role < Some(Role::Editor) && ops.iter().any(|op| !matches!(op, Op::RedeemInvite { .. })) {
        bail!(
            "you are {} in this session: edits are refused",
            match role {
                Some(Role::Viewer) => "a viewer",
                _ => "a guest without a role",
            }
        );
    }
    Ok(())
}

fn check_hello(h: &Hello, protocol: u16, session: &CommandId) -> Result<()> {
    if h.protocol != protocol {
        bail!(
            "protocol version mismatch: this peer speaks {protocol}, the other {}",
            h.protocol
        );
    }
    if h.schema_hash != schema_hash() {
        bail!("schema mismatch: the peers run incompatible builds");
    }
    if h.session != *session {
        bail!("the peer is in another session");
    }
    Ok(())
}

async fn write_frame(s: &mut SendStream, frame: &[u8]) -> Result<()> {
    s.write_all(&(frame.len() as u32).to_le_bytes()).await?;
    s.write_all(frame).await?;
    Ok(())
}

/// What the control stream's reader hands on.
enum Incoming {
    /// A batch of commands, verified.
    Commands {
        batch: crate::session::Prepared,
        more: bool,
    },
    /// Any other sync message.
    Sync(Message),
    /// The peer's presence interest.
    Interest(Interest),
    /// The peer refused us.
    Refused(String),
    /// The peer sent something that gets it banned (the reason).
    Ban(String),
    /// The stream ended or failed.
    Closed(String),
}

/// Decodes a control-stream frame, verifying the commands of a command batch.
async fn incoming(frame: Result<Vec<u8>>) -> Incoming {
    let f = match frame {
        Ok(f) => f,
        Err(e) => return Incoming::Closed(format!("{e:#}")),
    };
    let m = match wire::decode(&f) {
        Ok(Frame::Sync(m)) => m,
        Ok(Frame::Interest(i)) => return Incoming::Interest(i),
        Ok(Frame::Refuse(r)) => return Incoming::Refused(r),
        Ok(_) => {
            return Incoming::Ban("sent a frame that does not belong on the control stream".into());
        }
        Err(e) => return Incoming::Ban(format!("sent a malformed frame: {e:#}")),
    };
    match decode_sync(&m) {
        Ok(Message::Commands { commands, more }) => {
            let t = Instant::now();
            let n = commands.len();
            let r = tokio::task::spawn_blocking(move || crate::session::prepare(&commands)).await;
            tracing::debug!(target: "theta::sync", n, ms = t.elapsed().as_secs_f64() * 1e3, "verified");
            match r {
                Ok(Ok(batch)) => Incoming::Commands { batch, more },
                Ok(Err(e)) => Incoming::Closed(format!("checking commands: {e:#}")),
                Err(e) => Incoming::Closed(format!("checking commands: {e}")),
            }
        }
        Ok(m) => Incoming::Sync(m),
        Err(e) => Incoming::Ban(format!("sent a malformed sync message: {e}")),
    }
}

async fn read_frame(r: &mut RecvStream) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        bail!("a {len}-byte frame (at most {MAX_FRAME_BYTES})");
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

impl Inner {
    fn my_hello(&self, features: u64) -> Hello {
        let peers = {
            let known = lock(&self.known);
            lock(&self.peers)
                .keys()
                .filter_map(|id| known.get(id).cloned())
                .take(wire::MAX_HELLO_PEERS)
                .collect()
        };
        Hello {
            protocol: self.cfg.protocol_version,
            schema_hash: schema_hash(),
            session: self.session_id,
            features,
            dictionary: self.cfg.dictionary,
            invite: *lock(&self.invite),
            incarnation: self.incarnation,
            peers,
            name: self.cfg.name.clone(),
            genesis: Some(self.genesis.clone()),
        }
    }

    fn send_interest(&self) {
        let frame = wire::encode(&Frame::Interest(lock(&self.local).interest()));
        for p in lock(&self.peers).values() {
            let _ = p.ctl.send(PeerCmd::Send(frame.clone()));
        }
    }

    fn emit(&self, e: NodeEvent) {
        let _ = self.events.send(e);
    }

    fn ban(&self, id: EndpointId, reason: String) {
        lock(&self.banned).insert(id);
        lock(&self.known).remove(&id);
        if let Some(p) = lock(&self.peers).remove(&id) {
            p.conn.close(3u32.into(), reason.as_bytes());
        }
        self.emit(NodeEvent::Banned { id, reason });
    }

    fn learn(&self, addr: EndpointAddr) -> bool {
        if addr.id == self.me || lock(&self.banned).contains(&addr.id) || addr.is_empty() {
            return false;
        }
        self.lookup.add_endpoint_info(addr.clone());
        lock(&self.known).insert(addr.id, addr.clone());
        !lock(&self.peers).contains_key(&addr.id)
    }

    fn resync_all(&self) {
        for p in lock(&self.peers).values() {
            let _ = p.ctl.send(PeerCmd::Resync);
        }
    }

    /// Whether a heartbeat may ask for a sync now: at most one a heartbeat period for the whole
    /// node. A peer that missed a burst sees every other peer's digest differ;
    /// asking them all at once fetched the same commands from each, and with sixteen peers the
    /// answers alone saturated the cores and nothing converged.
    fn heartbeat_sync_due(&self) -> bool {
        let mut last = lock(&self.heartbeat_sync);
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < PING_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Whether a catch-up is under way: a sync batch with more to follow was taken, less than
    /// [`CATCH_UP_STALL`] ago (a peer that stops half-way does not hold housekeeping off).
    fn catching_up(&self) -> bool {
        lock(&self.catching_up).is_some_and(|t| t.elapsed() < CATCH_UP_STALL)
    }

    fn heads_digest(&self) -> (u64, u64) {
        let s = lock(&self.session);
        let log = s.replica().log();
        let mut h = blake3::Hasher::new();
        for id in log.heads() {
            h.update(&id.0);
        }
        let d = h.finalize();
        let mut p = [0u8; 8];
        p.copy_from_slice(&d.as_bytes()[..8]);
        (log.len() as u64, u64::from_le_bytes(p))
    }

    /// Verifies and saves a batch from `from`; bans it for invalid bytes or signatures. Returns
    /// the missing dependencies to ask for, or `None` if the peer was banned.
    fn take_batch(
        &self,
        from: Option<EndpointId>,
        commands: &[&[u8]],
        fold: Fold,
    ) -> Option<Vec<CommandId>> {
        // Verified under the session's lock: with the fold and the saves of other batches
        // running meanwhile, verifying outside it only oversubscribes the cores (throughput
        // fell by a third when it did).
        let r = match fold {
            Fold::Now => self.receive_locked(|s| s.receive_batch(commands, false)),
            // The log's length is published by the fold, so nobody counts these as applied
            // before they are.
            Fold::Later => lock(&self.session).receive_batch_unfolded(commands),
        };
        self.judge(from, r)
    }

    /// Folds the batches taken with [`Fold::Later`] and publishes the log's new length.
    fn fold(&self) {
        let mut s = lock(&self.session);
        if let Err(e) = s.fold() {
            eprintln!("theta: saving a checkpoint failed: {e:#}");
        }
        self.log_len.send_replace(s.replica().log().len());
    }

    /// [`Inner::take_batch`] for commands already verified.
    fn take_verified(
        &self,
        from: Option<EndpointId>,
        batch: crate::session::Prepared,
        more_follow: bool,
    ) -> Option<Vec<CommandId>> {
        let r = self.receive_locked(|s| s.receive_verified(batch, more_follow));
        self.judge(from, r)
    }

    /// Runs a receive on the locked session and publishes the log's new length.
    fn receive_locked(
        &self,
        f: impl FnOnce(&mut Session) -> Result<crate::session::Batch>,
    ) -> Result<crate::session::Batch> {
        let mut s = lock(&self.session);
        let r = f(&mut s);
        self.log_len.send_replace(s.replica().log().len());
        r
    }

    /// Bans `from` if a batch it sent held invalid bytes or signatures; else the missing
    /// dependencies to ask for.
    fn judge(
        &self,
        from: Option<EndpointId>,
        r: Result<crate::session::Batch>,
    ) -> Option<Vec<CommandId>> {
        let batch = match r {
            Ok(b) => b,
            Err(e) => {
                eprintln!("theta: saving received commands failed: {e:#}");
                return Some(Vec::new());
            }
        };
        if !batch.refused.is_empty() {
            tracing::debug!(target: "theta::sync", me = %self.me.fmt_short(), refused = batch.refused.len(), first = ?batch.refused[0].1, "refused commands");
        }
        let invalid = batch
            .refused
            .iter()
            .find(|(_, e)| matches!(e, InsertError::Decode(_) | InsertError::Signature { .. }));
        if let (Some((_, e)), Some(from)) = (invalid, from) {
            self.ban(from, format!("sent an invalid command: {e}"));
            return None;
        }
        Some(batch.missing)
    }
}

async fn broadcast(inner: &Arc<Inner>, commands: &[Vec<u8>]) {
    let tx = inner.gossip_tx.lock().await;
    let Some(tx) = tx.as_ref() else { return };
    // The shipped dictionary only if every peer has it: gossip reaches them all.
    let dictionary = if inner.cfg.dictionary == codec::DICT_V1
        && lock(&inner.peers)
            .values()
            .all(|p| p.dictionary == codec::DICT_V1)
    {
        codec::DICT_V1
    } else {
        codec::PLAIN_ZSTD
    };
    for chunk in commands.chunks(GOSSIP_BATCH) {
        let refs: Vec<&[u8]> = chunk.iter().map(|c| &c[..]).collect();
        let raw = compact::encode(&refs, lock(&inner.session).replica().log());
        let (dictionary, raw_len, data) = codec::compress(&raw, dictionary);
        let frame = wire::encode_gossip(&GossipMessage::Commands(GossipCommands {
            dictionary,
            raw_len,
            data,
        }));
        if frame.len() > GOSSIP_MAX_MESSAGE {
            // Too large for gossip (an oversized broadcast is dropped silently and stalls the
            // link): peers fetch it by sync instead.
            inner.resync_all();
            continue;
        }
        if let Err(e) = tx.broadcast(frame.into()).await {
            eprintln!("theta: gossip broadcast failed: {e}");
        }
    }
}

/// A gossip batch with commands that name what this peer does not hold yet (typically one that
/// overtook, on another path, the command it builds on): kept a moment and decoded again as the
/// log grows.
struct Waiting {
    since: Instant,
    from: EndpointId,
    blame: Option<EndpointId>,
    batch: Vec<u8>,
}

/// Whether a received batch is folded at once or with the next ones.
#[derive(Clone, Copy)]
enum Fold {
    Now,
    Later,
}

/// Most gossip batches taken before they are folded (see `gossip_loop`).
const MAX_UNFOLDED: usize = 16;

/// How long a waiting batch is kept before what it carries is fetched by sync instead.
const WAIT_FOR_DEPS: Duration = Duration::from_millis(300);
/// Most batches waiting at once.
const MAX_WAITING: usize = 256;

impl Inner {
    /// Asks the peer a batch came from (or anyone) for what it builds on.
    fn resync_from(&self, from: EndpointId) {
        let peers = lock(&self.peers);
        match peers.get(&from) {
            Some(p) => {
                let _ = p.ctl.send(PeerCmd::Resync);
            }
            None => {
                drop(peers);
                self.resync_all();
            }
        }
    }

    /// Decodes a compact batch and takes what resolves; returns the number of commands that did
    /// not (None if the sender was banned for it).
    fn take_compact(
        &self,
        from: EndpointId,
        blame: Option<EndpointId>,
        batch: &[u8],
        fold: Fold,
    ) -> Option<usize> {
        let decoded = {
            let s = lock(&self.session);
            compact::decode(batch, s.replica().log()).map(|d| {
                let log = s.replica().log();
                let fresh: Vec<Vec<u8>> = d
                    .commands
                    .into_iter()
                    .zip(d.ids)
                    .filter(|(_, id)| id.is_none_or(|id| !log.contains(&id)))
                    .map(|(c, _)| c)
                    .collect();
                (fresh, d.unresolved)
            })
        };
        let (cmds, unresolved) = match decoded {
            Ok(d) => d,
            Err(e) => {
                if let Some(b) = blame {
                    self.ban(b, format!("sent a bad batch: {e:#}"));
                }
                return None;
            }
        };
        if cmds.is_empty() {
            return Some(unresolved);
        }
        let refs: Vec<&[u8]> = cmds.iter().map(|c| &c[..]).collect();
        let missing = self.take_batch(blame, &refs, fold)?;
        if !missing.is_empty() {
            self.resync_from(from);
        }
        Some(unresolved)
    }
}

async fn gossip_loop(inner: Arc<Inner>, mut rx: iroh_gossip::api::GossipReceiver) {
    // Per neighbour: (start of its one-second window, messages in it, whether some were dropped).
    let mut rates: HashMap<EndpointId, (Instant, u32, bool)> = HashMap::new();
    let mut waiting: std::collections::VecDeque<Waiting> = std::collections::VecDeque::new();
    let mut grew = inner.log_len.subscribe();
    let mut tick = tokio::time::interval(WAIT_FOR_DEPS / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Command batches taken but not folded yet: while more messages are ready, they are taken
    // too, and the fold runs once when none is (or after `MAX_UNFOLDED`, to bound latency).
    let mut unfolded = 0usize;
    loop {
        let ready = if unfolded > 0 && unfolded < MAX_UNFOLDED {
            n0_future::future::now_or_never(rx.next())
        } else {
            None
        };
        if ready.is_none() && unfolded > 0 {
            inner.fold();
            unfolded = 0;
        }
        let ev = if let Some(ev) = ready {
            ev
        } else {
            tokio::select! {
            ev = rx.next() => ev,
            r = grew.changed(), if !waiting.is_empty() => {
                if r.is_err() {
                    break;
                }
                // Decode the waiting batches again until nothing more resolves.
                let mut progress = true;
                while progress && !waiting.is_empty() {
                    let before = inner.log_len.borrow().to_owned();
                    let mut keep = std::collections::VecDeque::with_capacity(waiting.len());
                    while let Some(w) = waiting.pop_front() {
                        match inner.take_compact(w.from, w.blame, &w.batch, Fold::Now) {
                            Some(0) | None => {}
                            Some(_) => keep.push_back(w),
                        }
                    }
                    waiting = keep;
                    progress = *inner.log_len.borrow() > before;
                }
                grew.mark_unchanged();
                continue;
            }
            _ = tick.tick(), if !waiting.is_empty() => {
                while waiting.front().is_some_and(|w| w.since.elapsed() >= WAIT_FOR_DEPS) {
                    if let Some(w) = waiting.pop_front() {
                        inner.resync_from(w.from);
                    }
                }
                continue;
            }
            }
        };
        let Some(ev) = ev else { break };
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                eprintln!("theta: gossip stopped: {e}");
                break;
            }
        };
        match ev {
            GossipEvent::Received(msg) => {
                let from = msg.delivered_from;
                let now = Instant::now();
                let r = rates.entry(from).or_insert((now, 0, false));
                if now.duration_since(r.0) >= Duration::from_secs(1) {
                    if r.2
                        && let Some(p) = lock(&inner.peers).get(&from)
                    {
                        let _ = p.ctl.send(PeerCmd::Resync);
                    }
                    *r = (now, 0, false);
                }
                r.1 += 1;
                if r.1 > inner.cfg.max_gossip_per_s {
                    r.2 = true;
                    if let Some(p) = lock(&inner.peers).get(&from) {
                        lock(&p.stats).gossip_dropped += 1;
                    }
                    continue;
                }
                if rates.len() > 4 * MAX_PEERS_TRACKED {
                    rates.retain(|_, r| now.duration_since(r.0) < Duration::from_secs(2));
                }
                // Only a message that came straight from its origin can be held against the
                // sender: gossip forwards before anyone validates.
                let direct = msg.scope.is_direct();
                let blame = direct.then_some(from);
                let frame = match wire::decode_gossip(&msg.content) {
                    Ok(f) => f,
                    Err(e) => {
                        if let Some(b) = blame {
                            inner.ban(b, format!("sent a malformed gossip frame: {e:#}"));
                        }
                        continue;
                    }
                };
                match frame {
                    GossipMessage::Commands(c) => {
                        if !codec::knows(c.dictionary) {
                            // A newer peer's dictionary (it did not know of us yet): fetch
                            // what it sent by sync.
                            inner.resync_all();
                            continue;
                        }
                        let raw = match codec::decompress(c.dictionary, c.raw_len, &c.data) {
                            Ok(r) => r,
                            Err(e) => {
                                if let Some(b) = blame {
                                    inner.ban(b, format!("sent a bad batch: {e:#}"));
                                }
                                continue;
                            }
                        };
                        unfolded += 1;
                        if let Some(n) = inner.take_compact(from, blame, &raw, Fold::Later)
                            && n > 0
                        {
                            if waiting.len() >= MAX_WAITING
                                && let Some(old) = waiting.pop_front()
                            {
                                inner.resync_from(old.from);
                            }
                            waiting.push_back(Waiting {
                                since: Instant::now(),
                                from,
                                blame,
                                batch: raw,
                            });
                            grew.mark_unchanged();
                        }
                    }
                    GossipMessage::Announce(addr) => {
                        if inner.learn(addr.clone()) {
                            spawn_dial(inner.clone(), addr);
                        }
                    }
                }
            }
            GossipEvent::NeighborUp(id) => {
                let known = lock(&inner.known).get(&id).cloned();
                let connected = lock(&inner.peers).contains_key(&id);
                if !connected && id != inner.me {
                    spawn_dial(
                        inner.clone(),
                        known.unwrap_or_else(|| EndpointAddr::new(id)),
                    );
                }
            }
            GossipEvent::NeighborDown(_) => {}
            GossipEvent::Lagged => inner.resync_all(),
        }
    }
    if unfolded > 0 {
        inner.fold();
    }
}

/// How long the log must stay still before idle housekeeping starts. Packing is for idle time:
/// run after every growth, its sweeps (a rollback makes the replica look again) competed with
/// live traffic for the session's lock and took 7% of `theta bench net`'s CPU, re-packing objects
/// that the next edits unpacked.
const IDLE_AFTER: Duration = Duration::from_millis(100);
/// How long after its last batch a catch-up still counts as under way (see `Inner::catching_up`).
const CATCH_UP_STALL: Duration = Duration::from_secs(1);

/// Packs what a long settle left cold (opening the file, a catch-up, a merge) a step at a time,
/// once the log has been still for [`IDLE_AFTER`], letting go of the session between steps so that
/// traffic waits at most one step (about a millisecond) and stops the packing; then waits until
/// the log grows.
async fn idle_loop(inner: Arc<Inner>) {
    let mut grew = inner.log_len.subscribe();
    loop {
        // A still spell: no growth for IDLE_AFTER, and no catch-up under way. A catch-up's
        // batches can lie more than IDLE_AFTER apart (each is verified, saved and folded), and
        // a checkpoint written between two of them made the newcomer wait for it.
        loop {
            match tokio::time::timeout(IDLE_AFTER, grew.changed()).await {
                Err(_) if !inner.catching_up() => break,
                Err(_) | Ok(Ok(())) => {}
                Ok(Err(_)) => return,
            }
        }
        while !grew.has_changed().unwrap_or(true) && !inner.catching_up() {
            match lock(&inner.session).idle() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    eprintln!("theta: idle housekeeping failed: {e:#}");
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if grew.changed().await.is_err() {
            return;
        }
    }
}

/// Announces this peer on the topic now and then, so peers that missed it still find it.
async fn announce_loop(inner: Arc<Inner>) {
    let mut every = Duration::from_millis(200);
    loop {
        let frame = wire::encode_gossip(&GossipMessage::Announce(inner.endpoint.addr()));
        if let Some(tx) = inner.gossip_tx.lock().await.as_ref() {
            let _ = tx.broadcast(frame.into()).await;
        }
        tokio::time::sleep(every).await;
        every = (every * 2).min(Duration::from_secs(5));
    }
}

fn spawn_dial(inner: Arc<Inner>, addr: EndpointAddr) {
    if !lock(&inner.dialing).insert(addr.id) {
        return;
    }
    tokio::spawn(async move {
        let id = addr.id;
        let mut backoff = Duration::from_millis(100);
        loop {
            if lock(&inner.banned).contains(&id) || inner.endpoint.is_closed() {
                break;
            }
            if lock(&inner.peers).contains_key(&id) {
                break;
            }
            let addr = lock(&inner.known).get(&id).cloned().unwrap_or(addr.clone());
            match dial(inner.clone(), addr).await {
                Ok(DialEnd::Refused) => break,
                Ok(DialEnd::Connected) => {
                    backoff = Duration::from_millis(100);
                }
                Err(_) => {}
            }
            if !lock(&inner.known).contains_key(&id) {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(3));
        }
        lock(&inner.dialing).remove(&id);
    });
}

enum DialEnd {
    /// The connection ran and ended (dial again).
    Connected,
    /// The peer refused the handshake (do not dial again).
    Refused,
}

async fn dial(inner: Arc<Inner>, addr: EndpointAddr) -> Result<DialEnd> {
    let id = addr.id;
    let conn = tokio::time::timeout(Duration::from_secs(5), inner.endpoint.connect(addr, ALPN))
        .await
        .map_err(|_| anyhow!("connect timed out"))??;
    let (mut send, mut recv) = conn.open_bi().await?;
    write_frame(
        &mut send,
        &wire::encode(&Frame::Hello(Box::new(inner.my_hello(FEATURES)))),
    )
    .await?;
    let reply = read_frame(&mut recv).await?;
    let hello = match wire::decode(&reply) {
        Ok(Frame::Hello(h)) => h,
        Ok(Frame::Refuse(reason)) => {
            inner.emit(NodeEvent::Refused { id, reason });
            return Ok(DialEnd::Refused);
        }
        Ok(_) | Err(_) => {
            inner.ban(id, "answered the handshake out of protocol".into());
            return Ok(DialEnd::Refused);
        }
    };
    if let Err(e) = check_hello(&hello, inner.cfg.protocol_version, &inner.session_id) {
        let reason = format!("{e:#}");
        inner.emit(NodeEvent::Refused {
            id,
            reason: reason.clone(),
        });
        conn.close(1u32.into(), reason.as_bytes());
        return Ok(DialEnd::Refused);
    }
    run_connection(inner, conn, send, recv, *hello, true).await;
    Ok(DialEnd::Connected)
}

#[derive(Clone)]
struct Handler(Arc<Inner>);

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

impl ProtocolHandler for Handler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let inner = self.0.clone();
        let id = conn.remote_id();
        let r: Result<()> = async {
            let (mut send, mut recv) = conn.accept_bi().await?;
            let first = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut recv))
                .await
                .map_err(|_| anyhow!("no hello within 5 s"))??;
            let hello = match wire::decode(&first) {
                Ok(Frame::Hello(h)) => h,
                _ => {
                    inner.ban(id, "opened without a valid hello".into());
                    return Ok(());
                }
            };
            let mut problem = check_hello(&hello, inner.cfg.protocol_version, &inner.session_id)
                .err()
                .map(|e| format!("{e:#}"));
            if problem.is_none()
                && let Some(inv) = &hello.invite
            {
                let member = lock(&inner.session)
                    .replica()
                    .scene()
                    .role(&theta_crdt::ids::AuthorId(*id.as_bytes()))
                    .is_some();
                if !member && inv.check_expiry(unix_ms()).is_err() {
                    problem = Some("the invite expired; ask for a new ticket".into());
                }
            }
            if let Some(reason) = problem {
                let _ = write_frame(&mut send, &wire::encode(&Frame::Refuse(reason.clone()))).await;
                let _ = send.finish();
                inner.emit(NodeEvent::Refused {
                    id,
                    reason: reason.clone(),
                });
                // Give the refusal time to arrive before the close.
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                conn.close(1u32.into(), reason.as_bytes());
                return Ok(());
            }
            let features = hello.features & FEATURE_BOOTSTRAP_ONLY;
            write_frame(
                &mut send,
                &wire::encode(&Frame::Hello(Box::new(inner.my_hello(FEATURES)))),
            )
            .await?;
            if features != 0 {
                let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
                return Ok(());
            }
            run_connection(inner, conn, send, recv, *hello, false).await;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            eprintln!("theta: connection from {}: {e:#}", id.fmt_short());
        }
        Ok(())
    }
}

/// Registers a connection after its handshake (or refuses it as a duplicate) and serves it until
/// it closes.
async fn run_connection(
    inner: Arc<Inner>,
    conn: Connection,
    send: SendStream,
    recv: RecvStream,
    hello: Hello,
    i_dialed: bool,
) {
    let id = conn.remote_id();
    let dialer = if i_dialed { inner.me } else { id };
    let serial = inner.serial.fetch_add(1, Ordering::Relaxed);
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
    let stats = Arc::new(Mutex::new(PeerStats::default()));
    let outbound = Arc::new(Mutex::new(Outbound::default()));
    {
        let mut peers = lock(&inner.peers);
        if let Some(old) = peers.get(&id) {
            let replace = old.incarnation != hello.incarnation
                || old.conn.close_reason().is_some()
                || dialer == inner.me.min(id);
            if !replace {
                conn.close(0u32.into(), b"duplicate connection");
                return;
            }
            old.conn
                .close(0u32.into(), b"replaced by a newer connection");
        }
        peers.insert(
            id,
            PeerHandle {
                conn: conn.clone(),
                ctl: ctl_tx.clone(),
                incarnation: hello.incarnation,
                serial,
                name: hello.name.clone(),
                stats: stats.clone(),
                outbound: outbound.clone(),
                dictionary: hello.dictionary,
            },
        );
    }
    for p in hello.peers {
        if inner.learn(p.clone()) {
            spawn_dial(inner.clone(), p);
        }
    }
    if let Some(known) = lock(&inner.known).get(&id).cloned() {
        inner.lookup.add_endpoint_info(known);
    } else {
        // Its announcement will say how to reach it; until then the endpoint knows its paths.
        lock(&inner.known).insert(id, EndpointAddr::new(id));
    }
    inner.emit(NodeEvent::PeerUp {
        id,
        name: hello.name.clone(),
    });

    // Writer: frames from a channel onto the control stream.
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(MAX_QUEUED_FRAMES);
    let writer = tokio::spawn(async move {
        let mut send = send;
        while let Some(f) = out_rx.recv().await {
            if write_frame(&mut send, &f).await.is_err() {
                break;
            }
        }
    });
    let datagrams = tokio::spawn(datagram_loop(
        inner.clone(),
        conn.clone(),
        ctl_tx.clone(),
        stats,
        outbound.clone(),
    ));

    let send_frame = |f: Frame| {
        let out = out_tx.clone();
        async move { out.send(wire::encode(&f)).await.is_ok() }
    };
    let mut reason = String::from("closed");
    let start_sync = |inner: &Inner| -> Option<(SyncSession, Message)> {
        let s = lock(&inner.session);
        SyncSession::start(s.replica().log(), SYNC_BATCH_BYTES)
    };
    let Some((mut sync, summary)) = start_sync(&inner) else {
        return;
    };
    // Reader: frames from the control stream onto a channel. A read must never be cancelled
    // half-way (the stream would lose its framing), so it runs in a task of its own rather than
    // in the select below; the small channel keeps QUIC's flow control in charge.
    // It also decodes, and verifies the signatures of command batches (on the blocking pool, on
    // every core), so that one catch-up batch is verified while the session saves and folds the
    // one before.
    let (frames_tx, mut frames) = mpsc::channel::<Incoming>(2);
    let reader = tokio::spawn(async move {
        let mut recv = recv;
        loop {
            let item = incoming(read_frame(&mut recv).await).await;
            let end = matches!(
                item,
                Incoming::Closed(_) | Incoming::Ban(_) | Incoming::Refused(_)
            );
            if frames_tx.send(item).await.is_err() || end {
                break;
            }
        }
    });
    let mut ok = send_frame(Frame::Sync(encode_sync(&summary))).await;
    let interest = lock(&inner.local).interest();
    if ok && !interest.regions.is_empty() {
        ok = send_frame(Frame::Interest(interest)).await;
    }
    while ok {
        tokio::select! {
            f = frames.recv() => {
                let msg = match f {
                    Some(Incoming::Sync(m)) => m,
                    Some(Incoming::Commands { batch, more }) => {
                        let took = Instant::now();
                        *lock(&inner.catching_up) = more.then(Instant::now);
                        match inner.take_verified(Some(id), batch, more) {
                            None => { reason = "banned".into(); break; }
                            Some(missing) => {
                                tracing::debug!(target: "theta::sync", me = %inner.me.fmt_short(), peer = %id.fmt_short(), missing = missing.len(), log = *inner.log_len.borrow(), ms = took.elapsed().as_secs_f64() * 1e3, "took a batch");
                                if let Some(w) = sync.want(&missing) {
                                    ok = send_frame(Frame::Sync(encode_sync(&w))).await;
                                }
                            }
                        }
                        continue;
                    }
                    Some(Incoming::Interest(i)) => { lock(&outbound).interest = i; continue; }
                    Some(Incoming::Refused(r)) => { reason = format!("refused: {r}"); break; }
                    Some(Incoming::Ban(why)) => { inner.ban(id, why); reason = "banned".into(); break; }
                    Some(Incoming::Closed(e)) => { reason = e; break; }
                    None => break,
                };
                let r = {
                    let s = lock(&inner.session);
                    sync.handle(s.replica().log(), &msg)
                };
                if let Err(e) = r {
                    inner.ban(id, format!("sync: {e}"));
                    reason = "banned".into();
                    break;
                }
                while let Some(m) = sync.poll() {
                    if let Message::Commands { commands, .. } = &m {
                        tracing::debug!(target: "theta::sync", me = %inner.me.fmt_short(), peer = %id.fmt_short(), commands = commands.len(), "sending");
                    }
                    ok = send_frame(Frame::Sync(encode_sync(&m))).await;
                    if !ok { break; }
                }
            }
            c = ctl_rx.recv() => {
                match c {
                    Some(PeerCmd::Resync) => {
                        tracing::debug!(target: "theta::sync", me = %inner.me.fmt_short(), peer = %id.fmt_short(), log = *inner.log_len.borrow(), "asking for a sync");
                        if let Some((s, summary)) = start_sync(&inner) {
                            sync = s;
                            ok = send_frame(Frame::Sync(encode_sync(&summary))).await;
                        }
                    }
                    Some(PeerCmd::Send(f)) => ok = out_tx.send(f).await.is_ok(),
                    None => break,
                }
            }
        }
    }
    writer.abort();
    reader.abort();
    datagrams.abort();
    if let Some(r) = conn.close_reason() {
        reason = r.to_string();
    }
    let mine = {
        let mut peers = lock(&inner.peers);
        if peers.get(&id).is_some_and(|p| p.serial == serial) {
            peers.remove(&id);
            true
        } else {
            false
        }
    };
    if mine {
        // No ghosts: a peer that left is not shown.
        lock(&inner.remote_presence).remove(&id);
    }
    conn.close(0u32.into(), b"bye");
    if mine {
        inner.emit(NodeEvent::PeerDown { id, reason });
        // Dial it again while it is known (it may come back; a ban or refusal forgets it).
        let addr = lock(&inner.known).get(&id).cloned();
        if let Some(addr) = addr {
            spawn_dial(inner, addr);
        }
    }
}

async fn datagram_loop(
    inner: Arc<Inner>,
    conn: Connection,
    ctl: mpsc::UnboundedSender<PeerCmd>,
    stats: Arc<Mutex<PeerStats>>,
    outbound: Arc<Mutex<Outbound>>,
) {
    let id = conn.remote_id();
    let mut ticker = tokio::time::interval(PING_EVERY);
    let mut my_presence = inner.presence.subscribe();
    my_presence.mark_changed();
    // Presence goes out when it changes, at most at the presence rate, and again after
    // `KEEPALIVE` when it does not.
    let mut pending = false;
    let mut next_slot = tokio::time::Instant::now();
    let mut keepalive = tokio::time::interval(presence::KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sent = tokio::time::Instant::now();
    let send_presence = |last_sent: &mut tokio::time::Instant| -> bool {
        let Some(p) = inner.presence.borrow().clone() else {
            return true;
        };
        let d = lock(&outbound).decide(&p);
        let frame = match d {
            Decision::Skip => return true,
            Decision::Send => Frame::Presence {
                seq: inner.presence_seq.fetch_add(1, Ordering::Relaxed),
                gone: false,
                presence: Box::new(p),
            },
            Decision::Gone => Frame::Presence {
                seq: inner.presence_seq.fetch_add(1, Ordering::Relaxed),
                gone: true,
                presence: Box::default(),
            },
        };
        *last_sent = tokio::time::Instant::now();
        conn.send_datagram(wire::encode(&frame).into()).is_ok()
    };
    let mut seq = 0u32;
    let mut mismatches = 0u32;
    let mut last_seen: Option<(u64, u64)> = None;
    let mut window = Instant::now();
    let mut in_window = 0u32;
    loop {
        tokio::select! {
            r = my_presence.changed() => {
                if r.is_err() {
                    break;
                }
                pending = true;
            }
            _ = tokio::time::sleep_until(next_slot), if pending => {
                pending = false;
                let hz = inner.presence_hz.load(Ordering::Relaxed).max(1);
                next_slot = tokio::time::Instant::now() + Duration::from_secs(1) / hz;
                if !send_presence(&mut last_sent) {
                    break;
                }
            }
            _ = keepalive.tick() => {
                if !pending && last_sent.elapsed() >= presence::KEEPALIVE && !send_presence(&mut last_sent) {
                    break;
                }
            }
            _ = ticker.tick() => {
                seq = seq.wrapping_add(1);
                let (log_len, heads_digest) = inner.heads_digest();
                let f = wire::encode(&Frame::Ping {
                    seq,
                    sent_us: inner.started.elapsed().as_micros() as u64,
                    log_len,
                    heads_digest,
                });
                if conn.send_datagram(f.into()).is_err() {
                    break;
                }
                lock(&stats).pings += 1;
            }
            d = conn.read_datagram() => {
                let Ok(d) = d else { break };
                if window.elapsed() > Duration::from_secs(1) {
                    window = Instant::now();
                    in_window = 0;
                }
                in_window += 1;
                if in_window > MAX_DATAGRAMS_PER_S {
                    continue;
                }
                match wire::decode(&d) {
                    Ok(Frame::Ping { seq, sent_us, log_len, heads_digest }) => {
                        let _ = conn.send_datagram(wire::encode(&Frame::Pong { seq, sent_us }).into());
                        let mine = inner.heads_digest();
                        // Only a difference that persists while neither log moves means gossip
                        // missed something; during live traffic the logs differ briefly all the
                        // time, and a sync then would only resend what is already on its way.
                        let still = last_seen == Some((mine.0, log_len));
                        last_seen = Some((mine.0, log_len));
                        // A peer with a shorter log lacks something of ours for certain, and
                        // asks for it itself; this side asks only a peer that may hold something
                        // it lacks.
                        if mine != (log_len, heads_digest) && still && log_len >= mine.0 {
                            mismatches += 1;
                            if mismatches >= MISMATCHES_BEFORE_SYNC && inner.heartbeat_sync_due() {
                                mismatches = 0;
                                let _ = ctl.send(PeerCmd::Resync);
                            }
                        } else {
                            mismatches = 0;
                        }
                    }
                    Ok(Frame::Pong { sent_us, .. }) => {
                        let now = inner.started.elapsed().as_micros() as u64;
                        let rtt = now.saturating_sub(sent_us);
                        let mut s = lock(&stats);
                        if s.pongs == 0 {
                            s.rtt_us = rtt;
                            s.jitter_us = rtt / 2;
                        } else {
                            // RFC 6298-style smoothing.
                            let dev = s.rtt_us.abs_diff(rtt);
                            s.jitter_us = (3 * s.jitter_us + dev) / 4;
                            s.rtt_us = (7 * s.rtt_us + rtt) / 8;
                        }
                        s.pongs += 1;
                    }
                    Ok(Frame::Presence { seq, gone, presence }) => {
                        lock(&stats).presence_received += 1;
                        if let Some(tap) = lock(&inner.presence_tap).as_ref() {
                            let _ = tap.send((id, gone, (*presence).clone()));
                        }
                        lock(&inner.remote_presence).update(id, seq, gone, *presence, Instant::now());
                    }
                    _ => {
                        inner.ban(id, "sent a malformed datagram".into());
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(session: CommandId) -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            schema_hash: schema_hash(),
            session,
            features: 0,
            dictionary: 0,
            invite: None,
            incarnation: 1,
            peers: Vec::new(),
            name: "peer".into(),
            genesis: None,
        }
    }

    /// The handshake refuses another protocol version, another build's schemas and another
    /// session, each with a message that names which (both sides log and show it), and takes a
    /// hello that matches on all three. The ALPN names the protocol's version.
    #[test]
    fn a_hello_is_refused_on_version_schema_or_session_and_says_which() {
        let session = CommandId([7; 32]);
        assert!(check_hello(&hello(session), PROTOCOL_VERSION, &session).is_ok());
        let mut h = hello(session);
        h.protocol = PROTOCOL_VERSION + 1;
        let e = check_hello(&h, PROTOCOL_VERSION, &session).unwrap_err();
        assert!(e.to_string().contains("protocol version mismatch"), "{e}");
        let mut h = hello(session);
        h.schema_hash[0] ^= 1;
        let e = check_hello(&h, PROTOCOL_VERSION, &session).unwrap_err();
        assert!(e.to_string().contains("schema mismatch"), "{e}");
        let e = check_hello(&hello(CommandId([8; 32])), PROTOCOL_VERSION, &session).unwrap_err();
        assert!(e.to_string().contains("another session"), "{e}");
        assert_eq!(
            ALPN,
            format!("/theta/session/{PROTOCOL_VERSION}").as_bytes()
        );
    }

    /// Editing through a node needs the editor role: a guest and a viewer are refused with a
    /// message naming their role, before anything is signed; a guest may still redeem an invite.
    #[test]
    fn edits_without_the_editor_role_are_refused_saying_why() {
        use theta_crdt::command::{ObjectTransform, Op};
        use theta_crdt::sign::Keypair;
        let dir = tempfile::tempdir().unwrap();
        let admin = Keypair::from_secret([1; 32]);
        let other = Keypair::from_secret([2; 32]);
        let cube = || Op::CreateObject {
            name: "box".into(),
            primitive: theta_mesh::Primitive::Cuboid {
                size: theta_mesh::Vec3::ONE,
            },
            material: theta_mesh::MaterialId(0),
            transform: ObjectTransform::IDENTITY,
        };
        let mut host = Session::create(&dir.path().join("a.theta"), &admin, "s").unwrap();
        assert!(
            refuse_without_role(&host, &[cube()]).is_ok(),
            "the admin edits"
        );
        let genesis = host.replica().log().ordered().next().unwrap().bytes();
        let mut guest =
            Session::create_joined(&dir.path().join("b.theta"), &other, &genesis).unwrap();
        let e = refuse_without_role(&guest, &[cube()]).unwrap_err();
        assert!(e.to_string().contains("a guest without a role"), "{e}");
        let invite = theta_crdt::invite::Capability {
            session: host.id().unwrap(),
            role: Role::Editor,
            expires_unix_ms: u64::MAX,
            invitee: None,
            nonce: 1,
        }
        .sign(&admin);
        assert!(refuse_without_role(&guest, &[Op::RedeemInvite { invite }]).is_ok());
        let (grant, _) = host
            .edit(Op::GrantRole {
                author: other.author(),
                role: Role::Viewer,
            })
            .unwrap();
        guest
            .receive(&host.replica().log().get(&grant).unwrap().bytes())
            .unwrap();
        let e = refuse_without_role(&guest, &[cube()]).unwrap_err();
        assert!(e.to_string().contains("a viewer"), "{e}");
    }
}
