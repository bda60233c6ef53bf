//! Progress bars for long loads and exports, on standard error and only when it is a terminal
//! (a pipe or a test's capture gets none of it). A bar appears only once the work has taken
//! long enough to notice, so quick commands print nothing extra.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress indicator; finished (and erased) when dropped.
#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

fn target() -> Option<ProgressDrawTarget> {
    std::io::stderr()
        .is_terminal()
        .then(ProgressDrawTarget::stderr)
}

/// A spinner for work of unknown length ("opening s.theta").
pub fn spinner(message: impl Into<String>) -> Progress {
    Progress(target().map(|t| {
        let p = ProgressBar::with_draw_target(None, t);
        p.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        p.set_message(message.into());
        p.enable_steady_tick(Duration::from_millis(120));
        p
    }))
}

/// A bar over `len` steps ("exporting", objects).
pub fn bar(len: u64, message: impl Into<String>) -> Progress {
    Progress(target().map(|t| {
        let p = ProgressBar::with_draw_target(Some(len), t);
        p.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        p.set_message(message.into());
        p
    }))
}

impl Progress {
    /// Moves the bar on by `n` steps.
    pub fn inc(&self, n: u64) {
        if let Some(p) = &self.0 {
            p.inc(n);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            p.finish_and_clear();
        }
    }
}
