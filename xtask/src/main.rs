use std::process::ExitCode;

use clap::Parser;
use xtask::{commands, flags};

fn main() -> ExitCode {
    let flags = flags::Xtask::parse();
    let result = match flags.cmd {
        flags::Cmd::BackendStage(f) => commands::backend_stage::run(f),
        flags::Cmd::Verify(f) => commands::verify::run(f),
        flags::Cmd::CheckMigrations(f) => commands::check_migrations::run(f),
        flags::Cmd::InstallHooks(f) => commands::install_hooks::run(f),
        flags::Cmd::Init(f) => commands::init::run(f),
    };
    xtask::exit::finish(result)
}
