//! Running a test inside its own network namespace with only loopback, shared by the suites
//! that start real peers (`net.rs`, `desktop.rs`).

use std::process::Command;

const NETNS_ENV: &str = "THETA_TEST_IN_NETNS";

/// Runs the calling test again inside a fresh network namespace with only loopback up; returns
/// true if the caller is already inside one (and should run its body).
pub(crate) fn in_loopback_netns(test: &str) -> bool {
    if std::env::var_os(NETNS_ENV).is_some() {
        return true;
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .arg(if root { "-n" } else { "-rn" })
        .args(["--", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .status()
        .expect("unshare (util-linux) and ip (iproute2) are needed for network tests");
    assert!(
        status.success(),
        "{test} failed inside its network namespace"
    );
    false
}
