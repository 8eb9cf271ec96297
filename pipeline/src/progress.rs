//! The one progress bar of every long command (`corpus run`, `corpus vocab build`): drawn
//! on stderr only when it is a terminal and asked for, hidden otherwise.

pub use indicatif::ProgressBar;
use indicatif::{ProgressDrawTarget, ProgressStyle};

/// The template of a bar over bytes read.
pub const BYTES: &str =
    "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} (eta {eta})";

/// A bar to `total` with an indicatif `template`; hidden when not `enabled`.
pub fn bar(enabled: bool, total: u64, template: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}
