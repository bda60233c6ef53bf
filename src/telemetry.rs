//! Telemetry: tracing spans, a metrics registry, per-system timing, and a Prometheus endpoint.
//!
//! - **Spans.** The app opens `tracing` spans around the work worth seeing (opening a session,
//!   an edit, a batch received, a sync round, export, every engine stage; bevy_ecs adds one per
//!   system). [`init`] installs the subscriber: events go to standard error filtered by
//!   `RUST_LOG` (nothing by default, so a terminal stays clean), and the `system` spans are timed
//!   into [`system_times`].
//! - **Metrics.** One registry per process ([`metrics`]): commands applied (local and remote),
//!   rejections and conflicts by strategy, the pending queue, signature-verification latency,
//!   per-peer RTT, jitter and bytes, gossip compression, frame and stage times. [`overlay`] gives
//!   the lines an in-app overlay shows; [`render`] the OpenMetrics text.
//! - **Endpoint.** `--metrics <addr>` ([`serve`]) answers `GET /metrics` over HTTP/1.1 on that
//!   address. The server is a few lines of std: one route, one response, no keep-alive; a web
//!   framework would pull in a second HTTP stack for that.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label sets: name/value pairs.
pub type Labels = Vec<(String, String)>;

fn seconds_histogram() -> Histogram {
    // 1 µs to about 4 s.
    Histogram::new(exponential_buckets(1e-6, 2.0, 23))
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// Commands applied, by origin (`local`, `remote`).
    pub commands: Family<Labels, Counter>,
    /// Commands the fold rejected, by strategy and kind.
    pub rejections: Family<Labels, Counter>,
    /// Rejections that named a conflicting command, by strategy.
    pub conflicts: Family<Labels, Counter>,
    /// All rejections (the sum of `rejections`, which a family cannot give; not exported).
    pub rejected_total: Counter,
    /// Commands waiting for their dependencies.
    pub pending: Gauge,
    /// Time to verify one batch of signatures (a single command is a batch of one).
    pub verify_seconds: Histogram,
    /// Signatures verified.
    pub signatures: Counter,
    /// Smoothed RTT per peer.
    pub rtt_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    /// RTT deviation per peer.
    pub jitter_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    /// UDP bytes sent to each peer (cumulative).
    pub peer_sent_bytes: Family<Labels, Gauge>,
    /// UDP bytes received from each peer (cumulative).
    pub peer_received_bytes: Family<Labels, Gauge>,
    /// Connected peers.
    pub peers: Gauge,
    /// Bytes of command batches before compression.
    pub wire_raw_bytes: Counter,
    /// The same batches compressed.
    pub wire_compressed_bytes: Counter,
    /// Engine frame time.
    pub frame_seconds: Histogram,
    /// Engine stage times, by stage.
    pub stage_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// Frames over the budget.
    pub frame_overruns: Counter,
    /// GPU time per rendered frame (timestamp queries, where the adapter has them).
    pub gpu_frame_seconds: Histogram,
    started: Instant,
    rate: Mutex<(Instant, u64, f64)>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("theta");
        let m = Metrics {
            commands: Family::default(),
            rejections: Family::default(),
            conflicts: Family::default(),
            rejected_total: Counter::default(),
            pending: Gauge::default(),
            verify_seconds: seconds_histogram(),
            signatures: Counter::default(),
            rtt_seconds: Family::default(),
            jitter_seconds: Family::default(),
            peer_sent_bytes: Family::default(),
            peer_received_bytes: Family::default(),
            peers: Gauge::default(),
            wire_raw_bytes: Counter::default(),
            wire_compressed_bytes: Counter::default(),
            frame_seconds: seconds_histogram(),
            stage_seconds: Family::new_with_constructor(seconds_histogram),
            frame_overruns: Counter::default(),
            gpu_frame_seconds: seconds_histogram(),
            started: Instant::now(),
            rate: Mutex::new((Instant::now(), 0, 0.0)),
            registry: Registry::default(),
        };
        registry.register(
            "commands",
            "Commands applied, by origin",
            m.commands.clone(),
        );
        registry.register(
            "rejections",
            "Commands the fold rejected, by conflict strategy and kind",
            m.rejections.clone(),
        );
        registry.register(
            "conflicts",
            "Rejections naming a conflicting command, by strategy",
            m.conflicts.clone(),
        );
        registry.register(
            "pending_commands",
            "Commands waiting for their dependencies",
            m.pending.clone(),
        );
        registry.register(
            "signature_verify_seconds",
            "Time to verify one batch of signatures",
            m.verify_seconds.clone(),
        );
        registry.register(
            "signatures_verified",
            "Signatures verified",
            m.signatures.clone(),
        );
        registry.register(
            "peer_rtt_seconds",
            "Smoothed round-trip time per peer",
            m.rtt_seconds.clone(),
        );
        registry.register(
            "peer_jitter_seconds",
            "Round-trip time deviation per peer",
            m.jitter_seconds.clone(),
        );
        registry.register(
            "peer_sent_bytes",
            "UDP bytes sent to a peer",
            m.peer_sent_bytes.clone(),
        );
        registry.register(
            "peer_received_bytes",
            "UDP bytes received from a peer",
            m.peer_received_bytes.clone(),
        );
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register(
            "wire_raw_bytes",
            "Command batch bytes before compression",
            m.wire_raw_bytes.clone(),
        );
        registry.register(
            "wire_compressed_bytes",
            "Command batch bytes after compression",
            m.wire_compressed_bytes.clone(),
        );
        registry.register(
            "frame_seconds",
            "Engine frame time",
            m.frame_seconds.clone(),
        );
        registry.register(
            "stage_seconds",
            "Engine stage time, by stage",
            m.stage_seconds.clone(),
        );
        registry.register(
            "frame_overruns",
            "Engine frames over the budget",
            m.frame_overruns.clone(),
        );
        registry.register(
            "gpu_frame_seconds",
            "GPU time per rendered frame",
            m.gpu_frame_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts applied commands.
    pub fn applied(&self, origin: &str, n: u64) {
        if n > 0 {
            self.commands
                .get_or_create(&l(&[("origin", origin)]))
                .inc_by(n);
        }
    }

    /// Counts the fold's rejections among `events`.
    pub fn rejected(&self, events: &[theta_crdt::scene::Event]) {
        for e in events {
            if let theta_crdt::scene::Event::Rejected(r) = e {
                let strategy = theta_crdt::command::Strategy::of_kind(r.kind).name();
                self.rejected_total.inc();
                self.rejections
                    .get_or_create(&l(&[("strategy", strategy), ("kind", r.kind)]))
                    .inc();
                if r.conflict.is_some() {
                    self.conflicts
                        .get_or_create(&l(&[("strategy", strategy)]))
                        .inc();
                }
            }
        }
    }

    /// Records a verification of `n` signatures that took `d`.
    pub fn verified(&self, n: usize, d: Duration) {
        if n > 0 {
            self.verify_seconds.observe(d.as_secs_f64());
            self.signatures.inc_by(n as u64);
        }
    }

    /// Records one peer's link figures.
    pub fn peer(&self, peer: &str, rtt_us: u64, jitter_us: u64, sent: u64, received: u64) {
        let k = l(&[("peer", peer)]);
        self.rtt_seconds.get_or_create(&k).set(rtt_us as f64 / 1e6);
        self.jitter_seconds
            .get_or_create(&k)
            .set(jitter_us as f64 / 1e6);
        self.peer_sent_bytes
            .get_or_create(&k)
            .set(sent.min(i64::MAX as u64) as i64);
        self.peer_received_bytes
            .get_or_create(&k)
            .set(received.min(i64::MAX as u64) as i64);
    }

    /// Forgets a peer that left (its series disappear from the endpoint).
    pub fn peer_gone(&self, peer: &str) {
        let k = l(&[("peer", peer)]);
        self.rtt_seconds.remove(&k);
        self.jitter_seconds.remove(&k);
        self.peer_sent_bytes.remove(&k);
        self.peer_received_bytes.remove(&k);
    }

    /// Records a compressed batch.
    pub fn compressed(&self, raw: usize, compressed: usize) {
        self.wire_raw_bytes.inc_by(raw as u64);
        self.wire_compressed_bytes.inc_by(compressed as u64);
    }

    /// Records an engine frame.
    pub fn frame(&self, total: Duration, stages: &[(&str, Duration)], overrun: bool) {
        self.frame_seconds.observe(total.as_secs_f64());
        for (name, d) in stages {
            self.stage_seconds
                .get_or_create(&l(&[("stage", name)]))
                .observe(d.as_secs_f64());
        }
        if overrun {
            self.frame_overruns.inc();
        }
    }

    /// Records a frame's GPU time.
    pub fn gpu_frame(&self, d: Duration) {
        self.gpu_frame_seconds.observe(d.as_secs_f64());
    }

    /// Commands applied per second, over the time since the last call (at least a second).
    pub fn commands_per_second(&self) -> f64 {
        let total: u64 = ["local", "remote"]
            .iter()
            .map(|o| self.commands.get_or_create(&l(&[("origin", o)])).get())
            .sum();
        let mut r = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        let dt = r.0.elapsed();
        if dt >= Duration::from_secs(1) {
            r.2 = (total - r.1) as f64 / dt.as_secs_f64();
            *r = (Instant::now(), total, r.2);
        }
        r.2
    }

    /// Compressed over raw bytes of command batches so far (1 when nothing was sent).
    pub fn compression_ratio(&self) -> f64 {
        let raw = self.wire_raw_bytes.get();
        if raw == 0 {
            1.0
        } else {
            self.wire_compressed_bytes.get() as f64 / raw as f64
        }
    }

    /// The process's uptime.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// The metrics as OpenMetrics text (what Prometheus scrapes).
pub fn render() -> String {
    let m = metrics();
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
    out
}

/// Lines for an in-app overlay: commands/s, rejections, verification, compression, and the
/// slowest systems.
pub fn overlay() -> Vec<String> {
    let m = metrics();
    let mut lines = vec![
        format!("commands/s {:.1}", m.commands_per_second()),
        format!("rejected {}", m.rejected_total.get()),
        format!("pending {}", m.pending.get()),
        format!("signatures verified {}", m.signatures.get()),
        format!("wire compression {:.1}%", m.compression_ratio() * 100.0),
    ];
    let mut systems = system_times();
    systems.sort_by_key(|s| std::cmp::Reverse(s.mean));
    for s in systems.iter().take(5) {
        lines.push(format!(
            "system {} mean {:.3} ms max {:.3} ms",
            s.name,
            s.mean.as_secs_f64() * 1e3,
            s.max.as_secs_f64() * 1e3
        ));
    }
    lines
}

/// Serves `GET /metrics` on `addr` from a background thread; returns the bound address (so
/// port 0 picks a free one).
pub fn serve(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("theta-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(s) => {
                        // One request at a time: a scraper asks every few seconds.
                        let _ = answer(s);
                    }
                    Err(e) => tracing::warn!("metrics endpoint: {e}"),
                }
            }
        })?;
    Ok(bound)
}

fn answer(mut s: TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 8192];
    let mut n = 0;
    // The request head only; a request without one, or a bigger one, is refused.
    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        if n == buf.len() {
            return respond(
                &mut s,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            );
        }
        let r = s.read(&mut buf[n..])?;
        if r == 0 {
            return Ok(());
        }
        n += r;
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    match (first.next(), first.next()) {
        (Some("GET"), Some("/metrics")) => respond(
            &mut s,
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            &render(),
        ),
        (Some("GET"), Some(_)) => respond(&mut s, "404 Not Found", "text/plain", "try /metrics\n"),
        _ => respond(&mut s, "405 Method Not Allowed", "text/plain", ""),
    }
}

fn respond(s: &mut TcpStream, status: &str, ctype: &str, body: &str) -> std::io::Result<()> {
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

// ---- Per-system timing from bevy_ecs's `system` spans ----

/// Timing of one system (or any span named `system`).
#[derive(Clone, Debug, PartialEq)]
pub struct SystemTime {
    /// The system's name.
    pub name: String,
    /// Runs.
    pub calls: u64,
    /// The last run.
    pub last: Duration,
    /// Mean over all runs.
    pub mean: Duration,
    /// The slowest run.
    pub max: Duration,
}

#[derive(Default)]
struct Acc {
    calls: u64,
    total: Duration,
    last: Duration,
    max: Duration,
}

fn table() -> &'static Mutex<HashMap<String, Acc>> {
    static T: OnceLock<Mutex<HashMap<String, Acc>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// Per-system timing so far (empty unless [`init`] or [`SystemTimer`] is installed).
pub fn system_times() -> Vec<SystemTime> {
    let t = table().lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<SystemTime> = t
        .iter()
        .map(|(name, a)| SystemTime {
            name: name.clone(),
            calls: a.calls,
            last: a.last,
            mean: a.total / a.calls.max(1) as u32,
            max: a.max,
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// A tracing layer that times spans named `system` (bevy_ecs opens one per system run, with
/// the system's name) into [`system_times`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemTimer;

struct SpanName(String);
struct Entered(Instant);

struct NameVisitor<'a>(&'a mut Option<String>);

impl tracing::field::Visit for NameVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "name" {
            *self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "name" {
            *self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for SystemTimer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() != "system" {
            return;
        }
        let mut name = None;
        attrs.record(&mut NameVisitor(&mut name));
        if let (Some(name), Some(span)) = (name, ctx.span(id)) {
            span.extensions_mut().insert(SpanName(name));
        }
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && span.extensions().get::<SpanName>().is_some()
        {
            span.extensions_mut().replace(Entered(Instant::now()));
        }
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let ext = span.extensions();
        let (Some(name), Some(at)) = (ext.get::<SpanName>(), ext.get::<Entered>()) else {
            return;
        };
        let d = at.0.elapsed();
        let mut t = table().lock().unwrap_or_else(|e| e.into_inner());
        let a = t.entry(name.0.clone()).or_default();
        a.calls += 1;
        a.total += d;
        a.last = d;
        a.max = a.max.max(d);
    }
}

/// Installs the process's subscriber: events to standard error as `RUST_LOG` says (nothing by
/// default), and per-system timing. Calling it again does nothing.
pub fn init() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter);
        let timer = SystemTimer.with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.name() == "system"
        }));
        let _ = tracing_subscriber::registry()
            .with(fmt)
            .with(timer)
            .try_init();
    });
}
