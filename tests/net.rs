//! Networked sessions with real `theta` processes over real QUIC on loopback.
//!
//! Every test re-runs itself inside a new network namespace that has only a loopback interface
//! (`unshare -n`), so nothing can reach the internet even by mistake; each process gets its own
//! temporary home directory. Tests wait on the lines processes print, never on sleeps.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "common/netns.rs"]
mod netns;
use netns::in_loopback_netns;

struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

fn theta() -> Command {
    Command::new(env!("CARGO_BIN_EXE_theta"))
}

impl Peer {
    fn start(name: &str, home: &Path, args: &[&str]) -> Peer {
        Peer::start_on(name, home, args, &["--local", "--bind", "127.0.0.1:0"])
    }

    fn start_on(name: &str, home: &Path, args: &[&str], net: &[&str]) -> Peer {
        std::fs::create_dir_all(home).unwrap();
        let mut child = theta()
            .args(args)
            .args(net)
            .args(["--display-name", name])
            .env("HOME", home)
            .env_remove("XDG_DATA_HOME")
            .env("XDG_RUNTIME_DIR", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Peer {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    fn host(name: &str, root: &Path) -> Peer {
        let home = root.join(name);
        let file = home.join("s.theta");
        std::fs::create_dir_all(&home).unwrap();
        Peer::start(name, &home, &["host", file.to_str().unwrap()])
    }

    fn join(name: &str, root: &Path, ticket: &str) -> Peer {
        Peer::join_with(name, root, ticket, &[])
    }

    /// [`Peer::join`] with extra command-line flags.
    fn join_with(name: &str, root: &Path, ticket: &str, extra: &[&str]) -> Peer {
        let home = root.join(name);
        let file = home.join("s.theta");
        let mut net = vec!["--local", "--bind", "127.0.0.1:0"];
        net.extend_from_slice(extra);
        Peer::start_on(
            name,
            &home,
            &["join", ticket, "--file", file.to_str().unwrap()],
            &net,
        )
    }

    fn send(&mut self, line: &str) {
        let s = self.stdin.as_mut().expect("stdin open");
        writeln!(s, "{line}").unwrap();
        s.flush().unwrap();
    }

    /// The next line starting with `prefix` (other lines are kept in the transcript); fails on
    /// an `error` line or after `timeout`.
    fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                    assert!(
                        !l.starts_with("error"),
                        "{}: {l}\ntranscript:\n{}",
                        self.name,
                        self.seen.join("\n")
                    );
                }
                Err(_) => panic!(
                    "{}: no line starting {prefix:?} within {timeout:?}\ntranscript:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn ask(&mut self, cmd: &str, prefix: &str) -> String {
        self.send(cmd);
        self.expect(prefix, Duration::from_secs(90))
    }

    fn ticket(&mut self) -> String {
        self.expect("ticket ", Duration::from_secs(30))[7..].to_owned()
    }

    fn id(&mut self) -> String {
        self.expect("id ", Duration::from_secs(30))[3..].to_owned()
    }

    /// `hash <state> <len>` once the log holds `len` commands.
    fn settled_hash(&mut self, len: usize) -> String {
        self.ask(&format!("wait-len {len} 90"), "len ");
        self.ask("hash", "hash ")
    }

    /// One `stats` line per connected peer.
    fn stats(&mut self) -> Vec<String> {
        self.send("stats");
        let mut out = Vec::new();
        loop {
            let l = self.expect("stats", Duration::from_secs(30));
            if l == "stats-end" {
                return out;
            }
            out.push(l);
        }
    }

    /// Waits until exactly `n` peers' presences are shown; their `presence …` lines.
    fn presences(&mut self, n: usize) -> Vec<String> {
        self.send(&format!("wait-presence {n} 60"));
        let mut out = Vec::new();
        loop {
            let l = self.expect("presence", Duration::from_secs(90));
            if l.starts_with("presence-end") {
                return out;
            }
            if l.starts_with("presence ") {
                out.push(l);
            }
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn quit(self) {
        quit_all(vec![self]);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks every peer to quit at once, and waits for each to say goodbye and exit cleanly.
fn quit_all(mut peers: Vec<Peer>) {
    for p in &mut peers {
        p.send("quit");
    }
    for mut p in peers {
        p.expect("bye", Duration::from_secs(30));
        drop(p.stdin.take());
        assert!(
            p.child.wait().unwrap().success(),
            "{} exited with an error",
            p.name
        );
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Starts a host and `n` joiners on its ticket, all connected to each other.
fn swarm(root: &Path, n: usize) -> Vec<Peer> {
    let mut host = Peer::host("p0", root);
    host.id();
    let t = host.ticket();
    let mut peers = vec![host];
    for i in 1..=n {
        let mut p = Peer::join(&format!("p{i}"), root, &t);
        p.id();
        peers.push(p);
    }
    let t0 = Instant::now();
    for p in &mut peers {
        p.ask(&format!("wait-peers {n} 90"), "peers ");
    }
    eprintln!("{} peers in a full mesh after {:?}", n + 1, t0.elapsed());
    peers
}

fn all_equal(hashes: &[String]) {
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "peers diverged: {hashes:#?}"
    );
}

/// Everyone edits at once; the genesis, one invite redemption per joiner and every edit reach
/// every peer, which all end with the same state hash.
fn converge(n_joiners: usize, edits: usize) {
    let dir = tmp();
    let mut peers = swarm(dir.path(), n_joiners);
    for (i, p) in peers.iter_mut().enumerate() {
        p.send(&format!("edit random {edits} {}", 100 + i));
    }
    for p in peers.iter_mut() {
        p.expect("edited", Duration::from_secs(90));
    }
    let total = 1 + n_joiners + (n_joiners + 1) * edits;
    let t0 = Instant::now();
    let hashes: Vec<String> = peers.iter_mut().map(|p| p.settled_hash(total)).collect();
    eprintln!("converged on {total} commands after {:?}", t0.elapsed());
    all_equal(&hashes);
    assert!(hashes[0].ends_with(&format!(" {total}")), "{}", hashes[0]);
    // Heartbeats measured every link.
    peers[0].ask("wait-heartbeats 60", "heartbeats ");
    let stats = peers[0].stats();
    assert_eq!(stats.len(), n_joiners, "{stats:#?}");
    for l in &stats {
        let field = |k: &str| -> u64 {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {k} in {l}"))
        };
        assert!(field("pongs=") > 0 && field("rtt_us=") > 0, "{l}");
        // Jitter is the smoothed deviation of the round trips: present, and under a second on
        // loopback.
        assert!(field("jitter_us=") < 1_000_000, "{l}");
        assert!(
            field("bytes_sent=") > 0 && field("packets_received=") > 0,
            "{l}"
        );
        assert!(
            field("bytes_received=") > 0 && field("packets_sent=") > 0,
            "{l}"
        );
    }
    quit_all(peers);
}

#[test]
fn three_peers_edit_concurrently_and_converge() {
    if in_loopback_netns("three_peers_edit_concurrently_and_converge") {
        converge(2, 40);
    }
}

/// Heavy concurrent editing: big sync batches cross re-sync requests on every control stream,
/// and nobody mistakes a healthy peer for a hostile one (a connection replaced by the duplicate
/// rule while the mesh forms is not a failure).
#[test]
fn three_peers_under_load_converge_without_bans() {
    if !in_loopback_netns("three_peers_under_load_converge_without_bans") {
        return;
    }
    let dir = tmp();
    let mut peers = swarm(dir.path(), 2);
    for (i, p) in peers.iter_mut().enumerate() {
        p.send(&format!("edit random 1500 {}", 7 + i));
    }
    for p in peers.iter_mut() {
        p.expect("edited", Duration::from_secs(300));
    }
    let total = 3 + 3 * 1500;
    let hashes: Vec<String> = peers.iter_mut().map(|p| p.settled_hash(total)).collect();
    all_equal(&hashes);
    for p in &peers {
        assert!(
            !p.seen
                .iter()
                .any(|l| l.starts_with("banned")
                    || (l.starts_with("peer-down") && l.contains("ban"))),
            "{}:\n{}",
            p.name,
            p.seen.join("\n")
        );
    }
    quit_all(peers);
}

#[test]
fn sixteen_peers_edit_concurrently_and_converge() {
    if in_loopback_netns("sixteen_peers_edit_concurrently_and_converge") {
        converge(15, 8);
    }
}

#[test]
fn killed_peer_catches_up_and_offline_edits_merge() {
    if !in_loopback_netns("killed_peer_catches_up_and_offline_edits_merge") {
        return;
    }
    let dir = tmp();
    let mut peers = swarm(dir.path(), 2);
    let ticket = {
        let a = &mut peers[0];
        a.ask("ticket", "ticket ")[7..].to_owned()
    };
    for (i, p) in peers.iter_mut().enumerate() {
        p.ask(&format!("edit random 10 {i}"), "edited");
    }
    let mut total = 1 + 2 + 30;
    for p in peers.iter_mut() {
        p.settled_hash(total);
    }
    let c = peers.pop().unwrap();
    let b = peers.pop().unwrap();
    let mut a = peers.pop().unwrap();
    // B dies mid-session; A edits on while it is gone.
    b.kill();
    a.ask("edit random 25 7", "edited");
    total += 25;
    // C leaves and edits offline: it resumes its file as a session nobody knows about.
    c.quit();
    let mut c = Peer::start(
        "p2",
        &dir.path().join("p2"),
        &["host", dir.path().join("p2/s.theta").to_str().unwrap()],
    );
    c.ask("edit random 15 8", "edited");
    total += 15;
    c.quit();
    // Both come back from their files; everyone converges.
    let mut b = Peer::join("p1", dir.path(), &ticket);
    let mut c = Peer::join("p2", dir.path(), &ticket);
    let hashes = vec![
        a.settled_hash(total),
        b.settled_hash(total),
        c.settled_hash(total),
    ];
    all_equal(&hashes);
    // And the session goes on live.
    b.ask("edit random 5 9", "edited");
    total += 5;
    let hashes = vec![
        a.settled_hash(total),
        b.settled_hash(total),
        c.settled_hash(total),
    ];
    all_equal(&hashes);
    quit_all(vec![a, b, c]);
}

#[test]
fn host_killed_others_go_on_and_a_newcomer_joins_through_them() {
    if !in_loopback_netns("host_killed_others_go_on_and_a_newcomer_joins_through_them") {
        return;
    }
    let dir = tmp();
    let mut peers = swarm(dir.path(), 2);
    let mut c = peers.pop().unwrap();
    let mut b = peers.pop().unwrap();
    let a = peers.pop().unwrap();
    a.kill();
    b.ask("edit random 10 1", "edited");
    c.ask("edit random 10 2", "edited");
    let mut total = 1 + 2 + 20;
    let t = b.ask("ticket", "ticket ")[7..].to_owned();
    let mut d = Peer::join("p3", dir.path(), &t);
    d.id();
    // The newcomer redeems the invite the ticket passed on, then edits.
    total += 1;
    d.settled_hash(total);
    d.ask("edit random 5 3", "edited");
    total += 5;
    let hashes = vec![
        b.settled_hash(total),
        c.settled_hash(total),
        d.settled_hash(total),
    ];
    all_equal(&hashes);
    quit_all(vec![b, c, d]);
}

#[test]
fn a_view_only_invite_cannot_edit() {
    if !in_loopback_netns("a_view_only_invite_cannot_edit") {
        return;
    }
    let dir = tmp();
    let mut a = Peer::host("p0", dir.path());
    a.ticket();
    let t = a.ask("ticket viewer", "ticket ")[7..].to_owned();
    a.ask("edit random 10 1", "edited");
    let mut v = Peer::join("viewer", dir.path(), &t);
    v.id();
    let before = v.settled_hash(1 + 10 + 1);
    // The CLI refuses with a clear message.
    v.send("edit random 1 5");
    let err = v.expect("error", Duration::from_secs(30));
    assert!(err.contains("viewer"), "{err}");
    // A crafted edit is kept by everyone and folds to nothing.
    v.ask("inject unauthorized", "injected");
    let after_a = a.settled_hash(1 + 10 + 2);
    let after_v = v.settled_hash(1 + 10 + 2);
    assert_eq!(after_a, after_v);
    let state = |h: &str| h.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(state(&after_a), state(&before));
    a.quit();
    v.quit();
}

#[test]
fn version_mismatch_and_expired_tickets_are_refused() {
    if !in_loopback_netns("version_mismatch_and_expired_tickets_are_refused") {
        return;
    }
    let dir = tmp();
    let mut a = Peer::host("p0", dir.path());
    let t = a.ticket();
    // Another protocol version: both sides say why.
    let home = dir.path().join("old");
    std::fs::create_dir_all(&home).unwrap();
    let out = theta()
        .args(["join", &t, "--local", "--bind", "127.0.0.1:0"])
        .args(["--protocol-version", "2"])
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("protocol version mismatch"), "{err}");
    let refused = a.expect("refused", Duration::from_secs(30));
    assert!(refused.contains("protocol version mismatch"), "{refused}");
    // An expired invite.
    let expired = a.ask("ticket editor 0", "ticket ")[7..].to_owned();
    let out = theta()
        .args(["join", &expired, "--local"])
        .env("HOME", &home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expired"), "{err}");
    // A malformed and a truncated ticket.
    for bad in ["thetanotbase32!!", &t[..t.len() / 2], "hello"] {
        let out = theta()
            .args(["join", bad, "--local"])
            .env("HOME", &home)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ticket"), "{bad}: {err}");
    }
    a.quit();
}

#[test]
fn a_peer_injecting_forged_or_malformed_commands_is_disconnected() {
    if !in_loopback_netns("a_peer_injecting_forged_or_malformed_commands_is_disconnected") {
        return;
    }
    for what in ["forged", "malformed"] {
        let dir = tmp();
        let mut peers = swarm(dir.path(), 2);
        for (i, p) in peers.iter_mut().enumerate() {
            p.ask(&format!("edit random 5 {i}"), "edited");
        }
        let total = 1 + 2 + 15;
        let before: Vec<String> = peers.iter_mut().map(|p| p.settled_hash(total)).collect();
        all_equal(&before);
        let mut bad = peers.pop().unwrap();
        let bad_id = bad
            .seen
            .iter()
            .find_map(|l| l.strip_prefix("id "))
            .unwrap()
            .to_owned();
        bad.ask(&format!("inject {what}"), "injected");
        for p in peers.iter_mut() {
            let l = p.expect(&format!("banned {bad_id}"), Duration::from_secs(30));
            assert!(l.contains("invalid command"), "{l}");
        }
        // The others' state is unchanged, and they still work together.
        for (p, h) in peers.iter_mut().zip(&before) {
            assert_eq!(&p.ask("hash", "hash "), h);
        }
        peers[0].ask("edit random 3 9", "edited");
        let hashes: Vec<String> = peers
            .iter_mut()
            .map(|p| p.settled_hash(total + 3))
            .collect();
        all_equal(&hashes);
        quit_all(peers);
        bad.kill();
    }
}

/// A real iroh relay server on loopback (a self-signed certificate that the peers are told to
/// trust), and two peers that have no IP transport at all: everything between them goes through
/// the relay, and they converge.
#[test]
fn two_peers_converge_through_a_relay_alone() {
    if !in_loopback_netns("two_peers_converge_through_a_relay_alone") {
        return;
    }
    use iroh_relay::server::{CertConfig, RelayConfig, Server, ServerConfig, TlsConfig, testing};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (certs, tls) = testing::self_signed_tls_certs_and_config();
    let server = rt.block_on(async {
        let mut relay = RelayConfig::new((std::net::Ipv4Addr::LOCALHOST, 0));
        relay.tls = Some(TlsConfig::new(
            (std::net::Ipv4Addr::LOCALHOST, 0),
            CertConfig::Manual { server_config: tls },
        ));
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        Server::spawn(config).await.unwrap()
    });
    let url = format!("https://{}", server.https_addr().unwrap());
    let dir = tmp();
    let ca = dir.path().join("relay-ca.der");
    std::fs::write(&ca, certs[0].as_ref()).unwrap();
    let net = [
        "--relay",
        url.as_str(),
        "--relay-ca",
        ca.to_str().unwrap(),
        "--relay-only",
    ];
    let home_a = dir.path().join("a");
    let file_a = home_a.join("s.theta");
    let mut a = Peer::start_on("a", &home_a, &["host", file_a.to_str().unwrap()], &net);
    a.id();
    let t = a.ticket();
    a.ask("edit random 10 1", "edited");
    let home_b = dir.path().join("b");
    let file_b = home_b.join("s.theta");
    let mut b = Peer::start_on(
        "b",
        &home_b,
        &["join", &t, "--file", file_b.to_str().unwrap()],
        &net,
    );
    b.id();
    b.ask("edit random 10 2", "edited");
    let total = 1 + 10 + 1 + 10;
    let hashes = vec![a.settled_hash(total), b.settled_hash(total)];
    all_equal(&hashes);
    quit_all(vec![a, b]);
    drop(server);
}

/// The names in `presence <id> <name> …` lines, sorted.
fn names(lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn presence_follows_interest_and_vanishes_with_its_peer() {
    if !in_loopback_netns("presence_follows_interest_and_vanishes_with_its_peer") {
        return;
    }
    let dir = tmp();
    let mut peers = swarm(dir.path(), 2);
    for (p, x) in peers.iter_mut().zip([0, 10, 20]) {
        p.ask(&format!("presence {x} 1.7 0 2"), "presence-set");
        p.ask("presence-rate 90", "presence-rate 90");
    }
    // With no subscription everyone sees everyone.
    let seen = peers[0].presences(2);
    assert_eq!(names(&seen), ["p1", "p2"], "{seen:?}");
    assert!(seen[0].ends_with(" 1.7 0 2"), "{seen:?}");
    assert_eq!(names(&peers[1].presences(2)), ["p0", "p2"]);

    // p0 looks only at the box around p1: p2's presence leaves it and p2 stops sending to it.
    assert_eq!(
        peers[0].ask("subscribe 8 0 -2 12 3 2", "region "),
        "region 1"
    );
    assert_eq!(names(&peers[0].presences(1)), ["p1"]);
    // p1 still sees p2: interest is per receiver.
    assert_eq!(names(&peers[1].presences(2)), ["p0", "p2"]);
    // Its next update towards p0 is withheld (the update goes out asynchronously: watch the
    // counter move).
    peers[2].ask("presence 21 1.7 0 2", "presence-set");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = peers[2].stats();
        let to_p0 = stats
            .iter()
            .find(|l| l.split_whitespace().nth(2) == Some("p0"))
            .unwrap()
            .clone();
        let withheld: u64 = to_p0
            .split_whitespace()
            .find_map(|w| w.strip_prefix("presence_withheld="))
            .unwrap()
            .parse()
            .unwrap();
        if withheld > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing withheld: {to_p0}");
    }

    // p2 walks into the box: p0 sees it again.
    peers[2].ask("presence 9.5 1.5 1 7", "presence-set");
    let seen = peers[0].presences(2);
    assert_eq!(names(&seen), ["p1", "p2"]);
    assert!(seen.iter().any(|l| l.ends_with(" 9.5 1.5 1 7")), "{seen:?}");

    // Ending the subscription brings back everything, out-of-box peers included.
    peers[2].ask("presence 30 1.7 0 2", "presence-set");
    assert_eq!(names(&peers[0].presences(1)), ["p1"]);
    peers[0].ask("unsubscribe 1", "unsubscribed 1");
    assert_eq!(names(&peers[0].presences(2)), ["p1", "p2"]);
    assert!(
        peers[0]
            .ask("unsubscribe 1", "error")
            .contains("no region 1")
    );

    // No ghosts: a killed peer's presence goes, and so does one that quits.
    let p2 = peers.pop().unwrap();
    p2.kill();
    assert_eq!(names(&peers[0].presences(1)), ["p1"]);
    assert_eq!(names(&peers[1].presences(1)), ["p0"]);
    let p1 = peers.pop().unwrap();
    p1.quit();
    assert!(peers[0].presences(0).is_empty());
    quit_all(peers);
}

#[test]
fn peers_with_and_without_the_dictionary_converge() {
    if !in_loopback_netns("peers_with_and_without_the_dictionary_converge") {
        return;
    }
    let dir = tmp();
    let mut host = Peer::host("p0", dir.path());
    host.id();
    let t = host.ticket();
    let with = Peer::join("p1", dir.path(), &t);
    let without = Peer::join_with("p2", dir.path(), &t, &["--no-dictionary"]);
    let mut peers = vec![host];
    peers.push(with);
    peers.push(without);
    for p in &mut peers {
        p.ask("wait-peers 2 90", "peers ");
    }
    // One at a time, so most of it travels live (gossip) rather than by catch-up.
    for round in 0..3 {
        for (i, p) in peers.iter_mut().enumerate() {
            p.ask(&format!("edit random 5 {}", 10 * round + i), "edited");
        }
    }
    let total = 3 + 3 * 3 * 5;
    let hashes: Vec<String> = peers.iter_mut().map(|p| p.settled_hash(total)).collect();
    all_equal(&hashes);
    quit_all(peers);
}

#[test]
fn a_flooding_neighbour_is_rate_limited_and_nothing_is_lost() {
    if !in_loopback_netns("a_flooding_neighbour_is_rate_limited_and_nothing_is_lost") {
        return;
    }
    let dir = tmp();
    let mut host = Peer::host("p0", dir.path());
    host.id();
    let t = host.ticket();
    // This peer takes at most 20 gossip messages a second from any one neighbour.
    let limited = Peer::join_with("p1", dir.path(), &t, &["--max-gossip-per-s", "20"]);
    let mut peers = vec![host, limited];
    for p in &mut peers {
        p.ask("wait-peers 1 90", "peers ");
    }
    peers[0].ask("inject burst 200", "injected burst 200");
    let total = 2 + 200;
    let hashes: Vec<String> = peers.iter_mut().map(|p| p.settled_hash(total)).collect();
    all_equal(&hashes);
    let stats = peers[1].stats();
    let dropped: u64 = stats[0]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("gossip_dropped="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(dropped > 0, "the limit never applied: {}", stats[0]);
    quit_all(peers);
}

/// One HTTP GET on loopback; returns the status line and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of a metric line that starts with `series`.
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn the_metrics_endpoint_reports_commands_verification_peers_and_compression() {
    if !in_loopback_netns(
        "the_metrics_endpoint_reports_commands_verification_peers_and_compression",
    ) {
        return;
    }
    let dir = tmp();
    let home = dir.path().join("p0");
    let file = home.join("s.theta");
    std::fs::create_dir_all(&home).unwrap();
    let mut host = Peer::start(
        "p0",
        &home,
        &["host", file.to_str().unwrap(), "--metrics", "127.0.0.1:0"],
    );
    let addr = host.expect("metrics ", Duration::from_secs(30))[8..].to_owned();
    let t = host.ticket();
    let mut joiner = Peer::join("p1", dir.path(), &t);
    host.ask("wait-peers 1 90", "peers ");
    joiner.ask("wait-peers 1 90", "peers ");
    host.ask("edit random 20 1", "edited");
    joiner.ask("edit random 30 2", "edited");
    host.settled_hash(2 + 20 + 30);
    host.ask("wait-heartbeats 30", "heartbeats ");
    // The link figures are sampled once a second: wait for the sample that saw the peer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = http_get(&addr, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        if metric(&body, "theta_peers ") == Some(1.0) && body.contains("theta_peer_rtt_seconds{") {
            break body;
        }
        assert!(Instant::now() < deadline, "no peer figures:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metric(&body, "theta_commands_total{origin=\"local\"}").unwrap() >= 20.0,
        "{body}"
    );
    assert!(
        metric(&body, "theta_commands_total{origin=\"remote\"}").unwrap() >= 30.0,
        "{body}"
    );
    assert!(metric(&body, "theta_signatures_verified_total").unwrap() >= 30.0);
    assert!(metric(&body, "theta_signature_verify_seconds_count").unwrap() >= 1.0);
    let raw = metric(&body, "theta_wire_raw_bytes_total").unwrap();
    let packed = metric(&body, "theta_wire_compressed_bytes_total").unwrap();
    assert!(raw > 0.0 && packed < raw, "compression: {packed} of {raw}");
    assert!(body.contains("theta_peer_sent_bytes{"));
    assert!(
        body.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    // Other paths and methods are refused, and the server goes on.
    assert_eq!(http_get(&addr, "/").0, "HTTP/1.1 404 Not Found");
    assert_eq!(http_get(&addr, "/metrics").0, "HTTP/1.1 200 OK");
    quit_all(vec![host, joiner]);
}
