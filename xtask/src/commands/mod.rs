//! One module per subcommand.

pub mod backend_stage;
pub mod check_migrations;
pub mod init;
pub mod install_hooks;
pub mod verify;
