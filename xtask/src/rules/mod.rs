//! Rules over the evidence. The SQL rules (`policy`, `tenant`) judge the schema model and do
//! not know whether a migration reader or a live catalog filled it; the code rules
//! (`contracts`, `interpolation`, `routes`, `secrets`) read changed source files.

pub mod catalog;
pub mod contracts;
pub mod interpolation;
pub mod policy;
pub mod routes;
pub mod secrets;
pub mod storage;
pub mod suppress;
pub mod tenant;
pub mod trust;
pub mod views;
pub mod weakened;
