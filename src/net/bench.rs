//! `theta bench net`: end-to-end figures of the network layer, measured in one process so every
//! timestamp comes from one clock. It starts real nodes (iroh endpoints on loopback, each with
//! its own durable session file in a temporary directory), has one host the session and the
//! others join with its ticket, then measures:
//!
//! - **latency**: one peer at a time (round robin) makes an edit (saved with fsync, then
//!   broadcast); the time until each other peer has verified, saved and folded it;
//! - **throughput**: every peer makes edits as fast as it can, in group commits of 16; the time
//!   until every peer holds every command.
//!
//! `theta bench presence` measures interest management the same way (see [`presence`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use theta_crdt::ids::{AuthorId, Role};
use theta_crdt::workload::{Rng, next_op};
use tokio::sync::mpsc;

use super::presence::{Pose, Presence, Region};
use super::{NetMode, Node, NodeConfig, Start};
use crate::session::Session;

/// What to measure.
#[derive(Debug, Clone)]
pub struct NetBench {
    /// Peers in the session (the host included).
    pub peers: usize,
    /// Edits in the latency run.
    pub commands: usize,
    /// Edits per peer in the throughput run.
    pub burst: usize,
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn secret() -> Result<[u8; 32]> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s).map_err(|e| anyhow!("randomness: {e}"))?;
    Ok(s)
}

/// Nodes of the benchmark: local mode, bound to loopback.
fn loopback_config() -> NodeConfig {
    NodeConfig {
        mode: NetMode::Local,
        bind: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        name: "bench".into(),
        ..NodeConfig::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

async fn wait_len(node: &Node, want: usize, timeout: Duration) -> Result<Instant> {
    let mut rx = node.log_len();
    tokio::time::timeout(timeout, rx.wait_for(|&n| n >= want))
        .await
        .map_err(|_| anyhow!("a peer did not reach {want} commands within {timeout:?}"))?
        .map_err(|_| anyhow!("a peer stopped"))?;
    Ok(Instant::now())
}

/// Starts `peers` nodes on loopback, each with its own session file in a temporary directory:
/// one hosts, the others join with its ticket; returns once they form a full mesh and every
/// invite redemption has reached every peer.
async fn swarm(peers: usize, tag: &str) -> Result<(Dir, Vec<Node>)> {
    let dir = Dir(std::env::temp_dir().join(format!("theta-bench-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).context("creating the bench directory")?;
    let cfg = loopback_config();
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Only bans and refusals matter here: a healthy run has none.
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let super::NodeEvent::Banned { id, reason }
            | super::NodeEvent::Refused { id, reason } = e
            {
                eprintln!("theta bench: {} {reason}", id.fmt_short());
            }
        }
    });
    let s0 = secret()?;
    let host = Session::create(
        &dir.0.join("0.theta"),
        &theta_crdt::sign::Keypair::from_secret(s0),
        "bench",
    )?;
    let mut nodes = vec![Node::start(cfg.clone(), s0, Start::Session(host), tx.clone()).await?];
    let ticket = nodes[0].ticket(Role::Editor, Duration::from_secs(3600))?;
    for i in 1..peers {
        nodes.push(
            Node::start(
                cfg.clone(),
                secret()?,
                Start::Join {
                    ticket: ticket.clone(),
                    file: dir.0.join(format!("{i}.theta")),
                },
                tx.clone(),
            )
            .await?,
        );
    }
    // A full mesh, and everyone's redemption everywhere.
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes.iter().any(|n| n.peers().len() < peers - 1) {
        if Instant::now() > deadline {
            bail!("the peers did not connect within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let len = peers;
    for n in &nodes {
        wait_len(n, len, Duration::from_secs(30)).await?;
    }
    Ok((dir, nodes))
}

/// Shuts nodes down all at once.
async fn shutdown_all(nodes: Vec<Node>) -> Result<()> {
    for r in n0_future::join_all(nodes.into_iter().map(|n| n.shutdown())).await {
        r?;
    }
    Ok(())
}

/// Runs the benchmark and returns its report, a few lines of text.
pub async fn run(b: NetBench) -> Result<String> {
    if b.peers < 2 {
        bail!("at least two peers are needed");
    }
    let (_dir, nodes) = swarm(b.peers, "net").await?;
    let mut len = b.peers;

    let mut rng = Rng::new(7);
    let op_for = |n: &Node, rng: &mut Rng| {
        let me = AuthorId(*n.id().as_bytes());
        n.with_session(|s| next_op(rng, s.replica().scene(), me, &[]))
    };
    // Warm up: a few edits that also create objects to edit.
    for k in 0..(4 * b.peers) {
        let n = &nodes[k % b.peers];
        let op = op_for(n, &mut rng);
        n.edit_ops(vec![op]).await?;
        len += 1;
        for m in &nodes {
            wait_len(m, len, Duration::from_secs(30)).await?;
        }
    }

    // Latency.
    let mut lat = Vec::with_capacity(b.commands * (b.peers - 1));
    for k in 0..b.commands {
        let a = k % b.peers;
        let op = op_for(&nodes[a], &mut rng);
        len += 1;
        let waits: Vec<_> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != a)
            .map(|(_, n)| {
                let mut rx = n.log_len();
                let want = len;
                tokio::spawn(async move {
                    tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|&x| x >= want))
                        .await
                        .ok()
                        .and_then(|r| r.ok().map(|_| Instant::now()))
                })
            })
            .collect();
        let t0 = Instant::now();
        nodes[a].edit_ops(vec![op]).await?;
        for w in waits {
            let t = w
                .await
                .map_err(|e| anyhow!("{e}"))?
                .context("a peer did not receive an edit within 30 s")?;
            lat.push(t.saturating_duration_since(t0));
        }
    }
    lat.sort_unstable();

    // Throughput.
    let t0 = Instant::now();
    let total = len + b.peers * b.burst;
    let mut futs = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let burst = b.burst;
        futs.push(async move {
            let mut rng = Rng::new(100 + i as u64);
            let me = AuthorId(*n.id().as_bytes());
            let mut left = burst;
            while left > 0 {
                let k = left.min(16);
                left -= k;
                // Each group is made against the scene as this peer sees it then.
                let ops: Vec<_> = n.with_session(|s| {
                    (0..k)
                        .map(|_| next_op(&mut rng, s.replica().scene(), me, &[]))
                        .collect()
                });
                n.edit_ops(ops).await?;
                tokio::task::yield_now().await;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    for r in n0_future::join_all(futs).await {
        r?;
    }
    let mut last = t0;
    for n in &nodes {
        match wait_len(n, total, Duration::from_secs(120)).await {
            Ok(t) => last = last.max(t),
            Err(e) => {
                // Where every peer stands, for whoever has to find out why one stalled.
                let lens: Vec<String> = nodes
                    .iter()
                    .map(|n| {
                        let peers = n.peers();
                        let dropped: u64 = peers.iter().map(|(_, _, p)| p.gossip_dropped).sum();
                        let pongs: u64 = peers.iter().map(|(_, _, p)| p.pongs).sum();
                        n.with_session(|s| {
                            let log = s.replica().log();
                            format!(
                                "{} (+{} pending; {} peers, {dropped} gossip dropped, {pongs} pongs)",
                                log.len(),
                                log.pending_len(),
                                peers.len()
                            )
                        })
                    })
                    .collect();
                bail!("{e:#}; the peers' logs: {}", lens.join(", "));
            }
        }
    }
    let secs = last.duration_since(t0).as_secs_f64();
    let hashes: Vec<[u8; 32]> = nodes
        .iter()
        .map(|n| n.with_session(|s| s.replica().scene().state_hash()))
        .collect();
    let converged = hashes.windows(2).all(|w| w[0] == w[1]);
    // What each peer's fold did over the whole run: replays are commands folded again after a
    // rollback, when a command arrived that belongs before ones already folded.
    let folds: Vec<String> = nodes
        .iter()
        .map(|n| {
            let st = n.with_session(|s| s.replica().stats());
            format!(
                "{} applied ({} replayed in {} rollbacks, {} of them partial)",
                st.applied, st.replayed, st.rollbacks, st.partial
            )
        })
        .collect();

    let report = format!(
        "net bench: {} peers on loopback, durable session files (fsync per group commit)\n\
         append -> applied on every other peer: {} edits, {} deliveries: p50 {}, p99 {}, max {}\n\
         sustained: {} edits from {} peers in {:.3} s = {:.0} commands/s; state hashes {}\n\
         fold per peer: {}",
        b.peers,
        b.commands,
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        b.peers * b.burst,
        b.peers,
        secs,
        (b.peers * b.burst) as f64 / secs,
        if converged { "equal" } else { "DIFFER" },
        folds.join("; "),
    );
    shutdown_all(nodes).await?;
    if !converged {
        bail!("{report}\nthe peers did not converge");
    }
    Ok(report)
}

/// A late joiner: one peer holds a generated session of `commands` commands (three authors, the
/// workload generator's mix); a newcomer joins with its ticket. Timed from the newcomer's start
/// (endpoint, bootstrap, handshake) until its log holds every command, verified, saved and
/// folded.
pub async fn late_joiner(commands: usize) -> Result<String> {
    let dir = Dir(std::env::temp_dir().join(format!("theta-bench-join-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).context("creating the bench directory")?;
    let t_gen = Instant::now();
    let cmds = theta_crdt::workload::session(42, 3, commands);
    let genesis = cmds.first().context("the generator made nothing")?;
    let id = theta_crdt::log::verify_command(genesis)
        .map_err(|e| anyhow!("{e}"))?
        .id();
    let path = dir.0.join("host.theta");
    {
        let mut f = crate::store::SessionFile::create(&path, &id, genesis)?;
        let refs: Vec<&[u8]> = cmds[1..].iter().map(|c| &c[..]).collect();
        f.append(&refs)?;
    }
    let gen_s = t_gen.elapsed().as_secs_f64();
    let s0 = secret()?;
    let (mut host, _) = Session::open(&path, &theta_crdt::sign::Keypair::from_secret(s0))?;
    // The host has held the session a while: its idle housekeeping after opening (packing,
    // the checkpoint) is done, and does not run beside the newcomer's catch-up being timed.
    while host.idle()? {}
    let total = host.replica().log().len();
    let cfg = loopback_config();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let node0 = Node::start(cfg.clone(), s0, Start::Session(host), tx.clone()).await?;
    let ticket = node0.ticket(Role::Viewer, Duration::from_secs(3600))?;
    let t0 = Instant::now();
    let node1 = Node::start(
        cfg,
        secret()?,
        Start::Join {
            ticket,
            file: dir.0.join("joiner.theta"),
        },
        tx,
    )
    .await?;
    wait_len(&node1, total, Duration::from_secs(120)).await?;
    let dt = t0.elapsed();
    let equal = node0.with_session(|s| s.replica().scene().state_hash())
        == node1.with_session(|s| s.replica().scene().state_hash());
    let report = format!(
        "late joiner: {total} commands ({gen_s:.1} s to generate) received, verified, saved and \
         folded in {:.3} s; state hashes {}",
        dt.as_secs_f64(),
        if equal { "equal" } else { "DIFFER" }
    );
    node1.shutdown().await?;
    node0.shutdown().await?;
    if !equal {
        bail!("{report}");
    }
    Ok(report)
}

/// Interest management, measured: `peers` nodes stand 10 m apart on a line and wander up to
/// 4 m from their spot (so they walk in and out of each other's view); each looks at the next fifth of the others (a 5 m box around each, the
/// boxes its `subscribe_region` calls name) and updates its presence `hz` times a second for
/// `seconds`. Every received update is classed by the receiver against the exact boxes: an update
/// about a peer outside them is one the receiver cannot see. The same motion runs twice in one
/// run: without subscriptions (everything is sent: the baseline) and with them. Reported: of the
/// updates about unseen peers, the share never sent (received ones and `gone` notices count as
/// sent).
pub async fn presence(peers: usize, seconds: f64, hz: u32) -> Result<String> {
    if peers < 6 {
        bail!("at least six peers are needed (each sees a fifth of the others)");
    }
    let t_setup = Instant::now();
    let (_dir, nodes) = swarm(peers, "presence").await?;
    eprintln!("{peers} peers in a full mesh after {:?}", t_setup.elapsed());
    let sees = ((peers - 1) / 5).max(1);
    let home = |i: usize| i as f32 * 10.0;
    let view: Vec<Vec<Region>> = (0..peers)
        .map(|i| {
            (1..=sees)
                .map(|k| {
                    let x = home((i + k) % peers);
                    Region::new(
                        theta_mesh::Vec3::new(x - 2.5, 0.0, -2.5),
                        theta_mesh::Vec3::new(x + 2.5, 3.0, 2.5),
                    )
                })
                .collect()
        })
        .collect();
    let visible = |r: usize, p: theta_mesh::Vec3| view[r].iter().any(|b| b.contains(p));
    let ids: Vec<_> = nodes.iter().map(|n| n.id()).collect();
    let index = |id: &iroh::EndpointId| ids.iter().position(|x| x == id);
    let mut taps = Vec::new();
    for n in &nodes {
        let (tx, rx) = mpsc::unbounded_channel();
        n.tap_presence(tx);
        n.set_presence_rate(super::presence::MAX_HZ);
        taps.push(rx);
    }
    let mut lines = Vec::new();
    let mut fractions = Vec::new();
    for subscribed in [false, true] {
        let regions: Vec<Vec<_>> = if subscribed {
            nodes
                .iter()
                .zip(&view)
                .map(|(n, v)| {
                    v.iter()
                        .map(|r| n.subscribe_region(*r))
                        .collect::<Result<_>>()
                })
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        // Let the subscriptions arrive, and drain what came before.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for t in &mut taps {
            while t.try_recv().is_ok() {}
        }
        let (mut gen_unseen, mut gen_seen) = (0u64, 0u64);
        let period = Duration::from_secs(1) / hz.max(1);
        let mut tick = tokio::time::interval(period);
        let t0 = Instant::now();
        let mut k = 0u64;
        while t0.elapsed().as_secs_f64() < seconds {
            tick.tick().await;
            let t = k as f32 / hz as f32;
            for (i, n) in nodes.iter().enumerate() {
                let w = 0.7 + 0.13 * i as f32;
                let p = theta_mesh::Vec3::new(
                    home(i) + 4.0 * (w * t).sin(),
                    1.6,
                    2.0 * (0.8 * w * t).cos(),
                );
                for r in 0..peers {
                    if r != i {
                        if visible(r, p) {
                            gen_seen += 1;
                        } else {
                            gen_unseen += 1;
                        }
                    }
                }
                n.set_presence(Presence {
                    head: Some(Pose::at(p)),
                    name: format!("p{i}"),
                    ..Presence::default()
                });
            }
            k += 1;
        }
        // Let the last updates land.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (mut got_unseen, mut got_seen, mut gone) = (0u64, 0u64, 0u64);
        for (r, t) in taps.iter_mut().enumerate() {
            while let Ok((from, is_gone, p)) = t.try_recv() {
                if index(&from).is_none() {
                    continue;
                }
                match (is_gone, p.anchor()) {
                    (true, _) => gone += 1,
                    (false, Some(a)) if visible(r, a) => got_seen += 1,
                    _ => got_unseen += 1,
                }
            }
        }
        let sent_unseen = got_unseen + gone;
        let never = 1.0 - sent_unseen as f64 / gen_unseen.max(1) as f64;
        fractions.push(never);
        lines.push(format!(
            "{}: updates about unseen peers {gen_unseen}, sent {sent_unseen} ({got_unseen} updates + \
             {gone} gone notices): {:.1}% never sent; updates about seen peers {gen_seen}, \
             received {got_seen}",
            if subscribed { "subscribed" } else { "baseline (no subscriptions)" },
            100.0 * never
        ));
        for (n, rs) in nodes.iter().zip(regions) {
            for r in rs {
                n.unsubscribe(r);
            }
        }
    }
    shutdown_all(nodes).await?;
    Ok(format!(
        "presence bench: {peers} peers on loopback, each sees {sees} of the other {}, {hz} Hz, \
         {seconds} s per phase\n{}",
        peers - 1,
        lines.join("\n")
    ))
}

/// Sessions the dictionary is trained on: other seeds and other authors than the measured one,
/// so the figure does not reward a dictionary that memorised the test data.
const TRAIN_SEEDS: std::ops::Range<u64> = 1000..1006;
const TRAIN_COMMANDS: usize = 4000;
/// Size of the shipped dictionary.
pub const DICT_BYTES: usize = 8 * 1024;

/// Live gossip messages of a generated session: each command in its own compact batch, against
/// a log holding everything before it.
fn live_batches(cmds: &[Vec<u8>], per_message: usize) -> Result<Vec<(usize, Vec<u8>)>> {
    use theta_crdt::log::{Log, verify_command};
    let genesis =
        verify_command(cmds.first().context("an empty session")?).map_err(|e| anyhow!("{e}"))?;
    let mut log = Log::for_session(genesis.id());
    log.insert(genesis).map_err(|e| anyhow!("{e}"))?;
    let mut out = Vec::new();
    for chunk in cmds[1..].chunks(per_message) {
        let refs: Vec<&[u8]> = chunk.iter().map(|c| &c[..]).collect();
        out.push((
            chunk.iter().map(|c| c.len()).sum(),
            super::compact::encode(&refs, &log),
        ));
        for c in chunk {
            log.insert(verify_command(c).map_err(|e| anyhow!("{e}"))?)
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    Ok(out)
}

/// Trains the dictionary on generated sessions and writes it to `out` (crash-safe).
pub fn train_dictionary(out: &std::path::Path) -> Result<String> {
    let mut samples = Vec::new();
    for seed in TRAIN_SEEDS {
        let keys: Vec<_> = (0..4)
            .map(|i| theta_crdt::workload::author_key(1000 + 10 * seed as usize + i))
            .collect();
        let cmds = theta_crdt::workload::session_of(seed, &keys, TRAIN_COMMANDS);
        samples.extend(live_batches(&cmds, 1)?.into_iter().map(|(_, b)| b));
    }
    let dict = super::codec::train(&samples, DICT_BYTES)?;
    let tmp = out.with_extension("tmp");
    {
        use std::io::Write;
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&dict)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(format!(
        "trained a {}-byte dictionary on {} messages from {} generated sessions; wrote {}",
        dict.len(),
        samples.len(),
        TRAIN_SEEDS.end - TRAIN_SEEDS.start,
        out.display()
    ))
}

/// Bytes on the wire for a generated realistic session (4 authors, the workload generator's
/// mix; seed and authors differ from the dictionary's training data): each signed command whole
/// and uncompressed (the baseline) against the `Commands` frames gossip carries, live (one
/// command per message, as people edit) and in bursts of 64, with each saving on its own.
pub fn wire(commands: usize) -> Result<String> {
    use super::codec::{DICT_V1, PLAIN_ZSTD, compress};
    let keys: Vec<_> = (0..4).map(theta_crdt::workload::author_key).collect();
    let cmds = theta_crdt::workload::session_of(42, &keys, commands);
    let frame = |raw: &[u8], dict: u32| {
        let (dictionary, raw_len, data) = compress(raw, dict);
        super::wire::encode_gossip(&super::wire::GossipMessage::Commands(
            super::wire::GossipCommands {
                dictionary,
                raw_len,
                data,
            },
        ))
        .len()
    };
    let mut lines = Vec::new();
    let mut live_saving = 0.0;
    for per in [1usize, 64] {
        let batches = live_batches(&cmds, per)?;
        let baseline: usize = batches.iter().map(|(b, _)| b).sum();
        // Without compaction: the commands as stored, length-prefixed.
        let whole: Vec<Vec<u8>> = cmds[1..]
            .chunks(per)
            .map(|c| theta_crdt::wire::join_commands(c.iter().map(|c| &c[..])))
            .collect();
        let zstd_only: usize = whole.iter().map(|w| frame(w, PLAIN_ZSTD)).sum();
        let dict_only: usize = whole.iter().map(|w| frame(w, DICT_V1)).sum();
        let compact_raw: usize = batches.iter().map(|(_, b)| b.len()).sum();
        let compact_zstd: usize = batches.iter().map(|(_, b)| frame(b, PLAIN_ZSTD)).sum();
        let compact_dict: usize = batches.iter().map(|(_, b)| frame(b, DICT_V1)).sum();
        let pct = |x: usize| 100.0 * (1.0 - x as f64 / baseline as f64);
        if per == 1 {
            live_saving = pct(compact_dict);
        }
        lines.push(format!(
            "{} ({} messages): signed commands whole {baseline} B; frames: zstd {zstd_only} B \
             ({:.1}% fewer), zstd+dictionary (up to 4 KiB) {dict_only} B ({:.1}%), compact batch unframed \
             {compact_raw} B ({:.1}%), compact+zstd {compact_zstd} B ({:.1}%), \
             compact+zstd+dictionary {compact_dict} B ({:.1}% fewer)",
            if per == 1 {
                "live, one command per message"
            } else {
                "bursts of 64 per message"
            },
            batches.len(),
            pct(zstd_only),
            pct(dict_only),
            pct(compact_raw),
            pct(compact_zstd),
            pct(compact_dict),
        ));
    }
    Ok(format!(
        "wire bench: a generated session of {} commands, 4 authors (dictionary v1, {} bytes)\n{}\n\
         live saving {live_saving:.1}% (target at least 50%)",
        cmds.len(),
        super::codec::dictionary_len(),
        lines.join("\n")
    ))
}
