//! The integration tests, one crate (one link of oxc, squawk and the Postgres client): one
//! module per area. Support code is in `common` (temp dirs, git, the built binary, the real
//! tools provisioned under `target/`) and `agent_support` (the scripted model server).

mod agent_support;
mod common;

mod backend_stage;
mod bench_migrations;
mod changes;
mod check_migrations_cli;
mod ci;
mod cli;
mod commands;
mod example;
mod hostile_live;
mod init;
mod live;
mod live_probe;
mod migrations;
mod prompt;
mod render;
mod robustness;
mod suppress;
mod tidy;
mod weakened;
