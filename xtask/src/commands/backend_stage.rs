//! `cargo xtask backend-stage`: run the agent, then verify.

use crate::{exit, flags};

pub fn run(_flags: flags::BackendStage) -> anyhow::Result<exit::Outcome> {
    Err(exit::usage("backend-stage is not built yet: the agent stage comes in a later change; use `cargo xtask verify`"))
}
