//! `cargo xtask`: evidence-based checks for the backend stage of a multi-tenant
//! Next.js + Supabase monorepo.
//!
//! The flow runs one way, and the modules follow it:
//! `config` + `repo` (what changed) → `gather` (facts: migrations, live Postgres, routes,
//! commands, the agent run) → `judge` (the one rule catalogue, `rules`, turns facts into
//! verdicts and findings) → `checklist` (the contract's eight items) → `render`
//! (markdown handover, json, text, github, sarif, junit); `actions` keeps GitHub
//! Actions' log safe from what children print. `commands` holds one module per subcommand.

pub mod actions;
pub mod agent;
pub mod checklist;
pub mod commands;
pub mod config;
pub mod exit;
pub mod flags;
pub mod gather;
pub mod judge;
pub mod memory;
pub mod model;
pub mod outfile;
pub mod proc;
pub mod render;
pub mod repo;
pub mod rules;
pub mod schema;
pub mod sql;
pub mod ts;
pub mod ui;
