//! `cargo xtask check-migrations`: static migration checks only.

use crate::{exit, flags};

pub fn run(_flags: flags::CheckMigrations) -> anyhow::Result<exit::Outcome> {
    Err(exit::usage(
        "check-migrations is not built yet: migration analysis comes in a later change",
    ))
}
