//! `cargo xtask install-hooks`: install the pre-push hook.

use crate::{exit, flags};

pub fn run(_flags: flags::InstallHooks) -> anyhow::Result<exit::Outcome> {
    Err(exit::usage(
        "install-hooks is not built yet: the hook templates come in a later change",
    ))
}
