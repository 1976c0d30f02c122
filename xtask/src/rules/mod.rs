//! Rules over the schema model. They do not know whether a migration reader or a live
//! catalog filled it.

pub mod policy;
pub mod tenant;
