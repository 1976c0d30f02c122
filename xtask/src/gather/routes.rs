//! Route and code checks. Not built yet: every item that depends on it is `unknown`.

use std::path::Path;

use crate::{config::Config, model::RouteEvidence, repo::Changes};

use super::{Missing, NOT_BUILT};

pub fn analyze(
    _repo: &Path,
    _config: &Config,
    _changes: &Changes,
) -> Result<RouteEvidence, Missing> {
    Err(format!("route checks are {NOT_BUILT}"))
}
