//! `theta vr` as a test's child process: the test's directory as its home and configuration,
//! no display, and no loader diagnostics unless the test asks for them.

use std::path::Path;
use std::process::Command;

/// `theta vr s.theta` in `dir`, isolated; the caller adds its arguments and environment.
pub(crate) fn theta_vr_in(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_theta"));
    c.args(["vr", "s.theta"])
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env_remove("XR_LOADER_DEBUG")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    c
}
