//! Rules over source code (not SQL): each module reads changed files and yields findings.

pub mod contracts;
pub mod interpolation;
pub mod routes;
pub mod secrets;
