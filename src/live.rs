//! `theta host` and `theta join`: a networked session in a terminal, driven by line commands on
//! standard input (typed by a person, or written by a test or script), reporting on standard
//! output one line per event or answer.
//!
//! Output lines: `id <endpoint id>`, `ticket <ticket>`, `peer-up <id> <name>`,
//! `peer-down <id> <reason>`, `refused <id> <reason>`, `banned <id> <reason>`, and the answers
//! below. Commands (one per line):
//!
//! | command | answer |
//! |---|---|
//! | `edit random <n> <seed>` | `edited <n>`: n plausible edits (create, move, extrude, paint …) |
//! | `ticket [editor\|viewer] [ttl seconds]` | `ticket <ticket>` |
//! | `hash` | `hash <state hash> <commands in the log>` |
//! | `wait-len <n> [timeout s]` | `len <n>` once the log holds at least n commands |
//! | `wait-peers <n> [timeout s]` | `peers <n>` once n peers are connected |
//! | `wait-heartbeats [timeout s]` | `heartbeats <n>` once every connected peer answered one |
//! | `stats` | one `stats <id> <name> rtt_us=… jitter_us=… pings=… pongs=… packets_sent=… …` line per peer, then `stats-end` |
//! | `presence <x> <y> <z> [tool]` | `presence-set`: this peer's head is at (x, y, z) |
//! | `presence-rate <hz>` | `presence-rate <hz>` (clamped to 20..=90) |
//! | `subscribe <x0> <y0> <z0> <x1> <y1> <z1>` | `region <id>`: presence only from this box (and other subscribed ones) |
//! | `unsubscribe <id>` | `unsubscribed <id>` |
//! | `wait-presence <n> [timeout s]` | once exactly n peers' presences are shown: one `presence <id> <name> <x> <y> <z> <tool>` line each, then `presence-end <n>` |
//! | `quit` | `bye`, then the process exits (also on end of input) |
//!
//! An answer that fails is `error <reason>`. Tests of hostile peers also have `inject forged`,
//! `inject malformed`, `inject unauthorized` and `inject burst <n>` (n edits, one gossip message
//! each).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use theta_crdt::author;
use theta_crdt::command::Op;
use theta_crdt::ids::{AuthorId, CommandId, Role};
use theta_crdt::workload::{Rng, next_op};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::net::presence::{self, Pose, Presence, Region, Tool};
use crate::net::ticket::SessionTicket;
use crate::net::{NetMode, Node, NodeConfig, NodeEvent, RegionId, Start, unix_ms};
use theta_mesh::Vec3;

/// How long a ticket's invite is valid by default.
pub const DEFAULT_TICKET_TTL: Duration = Duration::from_secs(24 * 3600);

/// What to run.
pub enum Launch {
    /// Host (or resume) the session in this file.
    Host {
        /// The file.
        file: PathBuf,
        /// Name for a new session.
        name: String,
    },
    /// Join with a ticket.
    Join {
        /// The ticket string.
        ticket: String,
        /// The file to keep the session in (default: in the data directory).
        file: Option<PathBuf>,
    },
}

/// Network settings from the command line.
#[derive(Clone, Debug, Default)]
pub struct NetOptions {
    /// `--local`.
    pub local: bool,
    /// `--relay`.
    pub relay: Option<String>,
    /// `--bind`.
    pub bind: Option<std::net::SocketAddr>,
    /// `--relay-only`.
    pub relay_only: bool,
    /// `--relay-ca`.
    pub relay_ca: Option<PathBuf>,
    /// `--protocol-version` (tests).
    pub protocol_version: Option<u16>,
    /// `--display-name`.
    pub display_name: Option<String>,
    /// `--no-dictionary` (tests).
    pub no_dictionary: bool,
    /// `--max-gossip-per-s` (tests).
    pub max_gossip_per_s: Option<u32>,
}

/// Runs a networked session until `quit` or the end of input.
pub fn run(launch: Launch, net: NetOptions) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(launch, net))
}

/// Starts this user's node for a launch: the identity from the data directory, the session
/// opened, created or joined, the endpoint bound. Node events arrive on the receiver.
pub async fn start(
    launch: Launch,
    net: NetOptions,
) -> Result<(
    Node,
    mpsc::UnboundedReceiver<NodeEvent>,
    theta_crdt::sign::Keypair,
)> {
    let dir = crate::identity::data_dir()?;
    let secret = crate::identity::load_or_create_secret(&dir)?;
    let key = theta_crdt::sign::Keypair::from_secret(secret);
    let mode = match (net.local, &net.relay) {
        (true, Some(_)) => bail!("--local and --relay exclude each other"),
        (true, None) => NetMode::Local,
        (false, Some(url)) => NetMode::Relay(
            url.parse()
                .map_err(|e| anyhow!("--relay {url:?} is not a relay url: {e}"))?,
        ),
        (false, None) => NetMode::Internet,
    };
    let cfg = NodeConfig {
        mode,
        bind: net.bind,
        relay_only: net.relay_only,
        protocol_version: net.protocol_version.unwrap_or(crate::net::PROTOCOL_VERSION),
        name: net.display_name.unwrap_or_else(|| "peer".into()),
        relay_ca: match &net.relay_ca {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        },
        dictionary: if net.no_dictionary {
            crate::net::codec::PLAIN_ZSTD
        } else {
            crate::net::codec::DICT_V1
        },
        max_gossip_per_s: net.max_gossip_per_s.unwrap_or(crate::net::MAX_GOSSIP_PER_S),
    };
    let start = match launch {
        Launch::Host { file, name } => {
            let s = if file.exists() {
                crate::session::Session::open(&file, &key)?.0
            } else {
                crate::session::Session::create(&file, &key, &name)?
            };
            Start::Session(s)
        }
        Launch::Join { ticket, file } => {
            let ticket = SessionTicket::parse(&ticket, unix_ms())?;
            let file = match file {
                Some(f) => f,
                None => {
                    let d = dir.join("sessions");
                    std::fs::create_dir_all(&d)
                        .with_context(|| format!("creating {}", d.display()))?;
                    d.join(format!("{}.theta", ticket.session))
                }
            };
            Start::Join { ticket, file }
        }
    };
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let node = Node::start(cfg, secret, start, ev_tx).await?;
    Ok((node, ev_rx, key))
}

/// Samples each peer's link figures into the metrics registry once a second, while the node
/// lives (the task holds it only for a moment at a time).
pub fn spawn_link_metrics(node: std::sync::Weak<Node>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(node) = node.upgrade() else { break };
            let m = crate::telemetry::metrics();
            let peers = node.peers();
            m.peers.set(peers.len() as i64);
            for (id, _, s) in peers {
                m.peer(
                    &id.fmt_short().to_string(),
                    s.rtt_us,
                    s.jitter_us,
                    s.bytes_sent,
                    s.bytes_received,
                );
            }
        }
    });
}

/// The node once nothing else holds it (the metrics ticker holds it only for a moment at a
/// time), to shut it down.
pub async fn sole(mut node: std::sync::Arc<Node>) -> Node {
    loop {
        match std::sync::Arc::try_unwrap(node) {
            Ok(n) => return n,
            Err(shared) => {
                node = shared;
                tokio::task::yield_now().await;
            }
        }
    }
}

async fn run_async(launch: Launch, net: NetOptions) -> Result<()> {
    let (node, mut ev_rx, key) = start(launch, net).await?;
    println!("id {}", node.id());
    println!(
        "ticket {}",
        node.ticket(Role::Editor, DEFAULT_TICKET_TTL)?
            .to_string_form()
    );
    let node = std::sync::Arc::new(node);
    spawn_link_metrics(std::sync::Arc::downgrade(&node));
    tokio::spawn(async move {
        while let Some(e) = ev_rx.recv().await {
            match e {
                NodeEvent::PeerUp { id, name } => println!("peer-up {id} {name}"),
                NodeEvent::PeerDown { id, reason } => {
                    crate::telemetry::metrics().peer_gone(&id.fmt_short().to_string());
                    println!("peer-down {id} {reason}")
                }
                NodeEvent::Refused { id, reason } => {
                    eprintln!("theta: refused {}: {reason}", id.fmt_short());
                    println!("refused {id} {reason}");
                }
                NodeEvent::Banned { id, reason } => {
                    eprintln!("theta: disconnected {}: {reason}", id.fmt_short());
                    println!("banned {id} {reason}");
                }
            }
        }
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut mine: Vec<CommandId> = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"quit") {
            break;
        }
        match command(&node, &key, &words, &mut mine).await {
            Ok(Some(answer)) => println!("{answer}"),
            Ok(None) => {}
            Err(e) => println!("error {e:#}"),
        }
    }
    sole(node).await.shutdown().await?;
    println!("bye");
    Ok(())
}

async fn command(
    node: &Node,
    key: &theta_crdt::sign::Keypair,
    words: &[&str],
    mine: &mut Vec<CommandId>,
) -> Result<Option<String>> {
    let num = |i: usize, default: u64| -> Result<u64> {
        match words.get(i) {
            None => Ok(default),
            Some(w) => w.parse().map_err(|_| anyhow!("{w:?} is not a number")),
        }
    };
    match words {
        [] => Ok(None),
        // A viewer's edits are refused by `Node::edit`, with the message the editor shows too.
        ["edit", "random", ..] => {
            let n = num(2, 1)? as usize;
            let mut rng = Rng::new(num(3, 1)?);
            let me = AuthorId(*node.id().as_bytes());
            let mut done = 0;
            while done < n {
                let chunk = (n - done).min(16);
                let ops: Vec<Op> = node.with_session(|s| {
                    (0..chunk)
                        .map(|_| next_op(&mut rng, s.replica().scene(), me, mine))
                        .collect()
                });
                node.edit_ops(ops).await?;
                let seq_ids = node.with_session(|s| {
                    let log = s.replica().log();
                    let last = log.last_seq(&me);
                    (last.saturating_sub(chunk as u64 - 1)..=last)
                        .filter_map(|q| log.chain_command(&me, q))
                        .collect::<Vec<_>>()
                });
                mine.extend(seq_ids);
                if mine.len() > 64 {
                    mine.drain(..mine.len() - 64);
                }
                done += chunk;
            }
            Ok(Some(format!("edited {n}")))
        }
        ["ticket", rest @ ..] => {
            let role = match rest.first() {
                None | Some(&"editor") => Role::Editor,
                Some(&"viewer") => Role::Viewer,
                Some(w) => bail!("unknown role {w:?} (editor or viewer)"),
            };
            let ttl = Duration::from_secs(num(2, DEFAULT_TICKET_TTL.as_secs())?);
            Ok(Some(format!(
                "ticket {}",
                node.ticket(role, ttl)?.to_string_form()
            )))
        }
        ["hash"] => Ok(Some(node.with_session(|s| {
            let r = s.replica();
            let h: String = r
                .scene()
                .state_hash()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("hash {h} {}", r.log().len())
        }))),
        ["wait-len", ..] => {
            let want = num(1, 0)? as usize;
            let timeout = Duration::from_secs(num(2, 60)?);
            let mut rx = node.log_len();
            let r = tokio::time::timeout(timeout, rx.wait_for(|&n| n >= want))
                .await
                .map(|r| r.map(|n| *n));
            match r {
                Ok(Ok(n)) => Ok(Some(format!("len {n}"))),
                _ => bail!(
                    "timeout: the log holds {} commands, not {want}",
                    *rx.borrow()
                ),
            }
        }
        ["wait-peers", ..] => {
            let want = num(1, 1)? as usize;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(num(2, 60)?);
            loop {
                let n = node.peers().len();
                if n >= want {
                    return Ok(Some(format!("peers {n}")));
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("timeout: {n} peers connected, not {want}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        ["wait-heartbeats", ..] => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(num(1, 60)?);
            loop {
                let peers = node.peers();
                if !peers.is_empty() && peers.iter().all(|(_, _, s)| s.pongs > 0) {
                    return Ok(Some(format!("heartbeats {}", peers.len())));
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("timeout: not every peer has answered a heartbeat");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        ["stats"] => {
            for (id, name, s) in node.peers() {
                println!(
                    "stats {id} {name} rtt_us={} jitter_us={} pings={} pongs={} packets_sent={} \
                     packets_received={} bytes_sent={} bytes_received={} presence_sent={} \
                     presence_withheld={} presence_received={} gossip_dropped={}",
                    s.rtt_us,
                    s.jitter_us,
                    s.pings,
                    s.pongs,
                    s.packets_sent,
                    s.packets_received,
                    s.bytes_sent,
                    s.bytes_received,
                    s.presence_sent,
                    s.presence_withheld,
                    s.presence_received,
                    s.gossip_dropped
                );
            }
            Ok(Some("stats-end".into()))
        }
        ["presence", x, y, z, rest @ ..] => {
            let f = |w: &str| -> Result<f32> {
                w.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| anyhow!("{w:?} is not a finite number"))
            };
            let tool = match rest.first() {
                None => Tool::Select,
                Some(t) => Tool::from_u8(
                    t.parse()
                        .map_err(|_| anyhow!("{t:?} is not a tool number"))?,
                ),
            };
            let id = node.id();
            node.set_presence(Presence {
                head: Some(Pose::at(Vec3::new(f(x)?, f(y)?, f(z)?))),
                tool,
                name: node.display_name().to_owned(),
                colour: crate::presence::colour_of(id.as_bytes()),
                ..Presence::default()
            });
            Ok(Some("presence-set".into()))
        }
        ["presence-rate", hz] => {
            let hz: u32 = hz.parse().map_err(|_| anyhow!("{hz:?} is not a number"))?;
            node.set_presence_rate(hz);
            Ok(Some(format!(
                "presence-rate {}",
                hz.clamp(presence::MIN_HZ, presence::MAX_HZ)
            )))
        }
        ["subscribe", c @ ..] if c.len() == 6 => {
            let v: Vec<f32> = c
                .iter()
                .map(|w| {
                    w.parse::<f32>()
                        .map_err(|_| anyhow!("{w:?} is not a number"))
                })
                .collect::<Result<_>>()?;
            let id = node.subscribe_region(Region::new(
                Vec3::new(v[0], v[1], v[2]),
                Vec3::new(v[3], v[4], v[5]),
            ))?;
            Ok(Some(format!("region {}", id.0)))
        }
        ["unsubscribe", id] => {
            let n: u64 = id
                .parse()
                .map_err(|_| anyhow!("{id:?} is not a region id"))?;
            if !node.unsubscribe(RegionId(n)) {
                bail!("no region {n}");
            }
            Ok(Some(format!("unsubscribed {n}")))
        }
        ["wait-presence", ..] => {
            let want = num(1, 1)? as usize;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(num(2, 60)?);
            loop {
                let shown = node.presence();
                if shown.len() == want {
                    for (id, r) in &shown {
                        let p = r.presence.anchor().unwrap_or_default();
                        println!(
                            "presence {id} {} {} {} {} {}",
                            r.presence.name,
                            p.x,
                            p.y,
                            p.z,
                            r.presence.tool.to_u8()
                        );
                    }
                    return Ok(Some(format!("presence-end {want}")));
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("timeout: {} presences shown, not {want}", shown.len());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        ["inject", "burst", n] => {
            // Many edits, each its own gossip message, as fast as this peer can make them.
            let n: usize = n.parse().map_err(|_| anyhow!("{n:?} is not a number"))?;
            let me = AuthorId(*node.id().as_bytes());
            let mut rng = Rng::new(unix_ms());
            for _ in 0..n {
                let op = node.with_session(|s| next_op(&mut rng, s.replica().scene(), me, &[]));
                node.edit_ops(vec![op]).await?;
            }
            Ok(Some(format!("injected burst {n}")))
        }
        ["inject", "unauthorized"] => {
            // What a modified client could do: sign an edit whatever its role. Every peer keeps
            // it and folds it to nothing.
            let op = node.with_session(|s| {
                next_op(
                    &mut Rng::new(unix_ms()),
                    s.replica().scene(),
                    key.author(),
                    &[],
                )
            });
            node.edit_ignoring_role(vec![op]).await?;
            Ok(Some("injected unauthorized".into()))
        }
        ["inject", what] => {
            let bytes = node.with_session(|s| -> Result<Vec<u8>> {
                let op = next_op(
                    &mut Rng::new(unix_ms()),
                    s.replica().scene(),
                    key.author(),
                    &[],
                );
                let b = author::sign(key, s.replica().log(), op);
                match *what {
                    "forged" => {
                        let (body, mut sig) =
                            theta_crdt::wire::decode_signed(&b).map_err(|e| anyhow!("{e}"))?;
                        sig[10] ^= 1;
                        Ok(theta_crdt::wire::encode_signed(body, &sig))
                    }
                    "malformed" => Ok(b"this is not a command at all".to_vec()),
                    other => bail!("unknown injection {other:?}"),
                }
            })?;
            node.inject(&[bytes]).await;
            Ok(Some(format!("injected {what}")))
        }
        _ => bail!("unknown command {:?}", words.join(" ")),
    }
}
