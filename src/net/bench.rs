//! `theta bench net`: end-to-end figures of the network layer, measured in one process so every
//! timestamp comes from one clock. It starts real nodes (iroh endpoints on loopback, each with
//! its own durable session file in a temporary directory), has one host the session and the
//! others join with its ticket, then measures:
//!
//! - **latency**: one peer at a time (round robin) makes an edit (saved with fsync, then
//!   broadcast); the time until each other peer has verified, saved and folded it;
//! - **throughput**: every peer makes edits as fast as it can, in group commits of 16; the time
//!   until every peer holds every command.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use theta_crdt::ids::{AuthorId, Role};
use theta_crdt::workload::{Rng, next_op};
use tokio::sync::mpsc;

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

/// Runs the benchmark and returns its report, a few lines of text.
pub async fn run(b: NetBench) -> Result<String> {
    if b.peers < 2 {
        bail!("at least two peers are needed");
    }
    let dir = Dir(std::env::temp_dir().join(format!("theta-bench-net-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).context("creating the bench directory")?;
    let cfg = loopback_config();
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Events are not needed here; drain them.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let s0 = secret()?;
    let host = Session::create(
        &dir.0.join("0.theta"),
        &theta_crdt::sign::Keypair::from_secret(s0),
        "bench",
    )?;
    let mut nodes = vec![Node::start(cfg.clone(), s0, Start::Session(host), tx.clone()).await?];
    let ticket = nodes[0].ticket(Role::Editor, Duration::from_secs(3600))?;
    for i in 1..b.peers {
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
    while nodes.iter().any(|n| n.peers().len() < b.peers - 1) {
        if Instant::now() > deadline {
            bail!("the peers did not connect within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut len = b.peers;
    for n in &nodes {
        wait_len(n, len, Duration::from_secs(30)).await?;
    }

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
        last = last.max(wait_len(n, total, Duration::from_secs(120)).await?);
    }
    let secs = last.duration_since(t0).as_secs_f64();
    let hashes: Vec<[u8; 32]> = nodes
        .iter()
        .map(|n| n.with_session(|s| s.replica().scene().state_hash()))
        .collect();
    let converged = hashes.windows(2).all(|w| w[0] == w[1]);

    let report = format!(
        "net bench: {} peers on loopback, durable session files (fsync per group commit)\n\
         append -> applied on every other peer: {} edits, {} deliveries: p50 {}, p99 {}, max {}\n\
         sustained: {} edits from {} peers in {:.3} s = {:.0} commands/s; state hashes {}",
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
    );
    for n in nodes {
        n.shutdown().await?;
    }
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
    let (host, _) = Session::open(&path, &theta_crdt::sign::Keypair::from_secret(s0))?;
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
