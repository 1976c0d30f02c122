//! Rules over source code (not SQL): each module reads changed files and yields findings.

pub mod routes;
pub mod secrets;
