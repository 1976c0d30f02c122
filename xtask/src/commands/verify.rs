//! `cargo xtask verify`.

use crate::{exit, flags};

pub fn run(_flags: flags::Verify) -> anyhow::Result<exit::Outcome> {
    Err(exit::usage("todo"))
}
