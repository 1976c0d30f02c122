//! Migration analysis: replays each migration history into the schema model and judges
//! tenant isolation. Not built yet: every item that depends on it is `unknown`.

use std::path::Path;

use crate::{config::Config, model::MigrationEvidence, repo::Changes};

use super::{Missing, NOT_BUILT};

pub fn analyze(
    _repo: &Path,
    _config: &Config,
    _changes: &Changes,
) -> Result<MigrationEvidence, Missing> {
    Err(format!("migration analysis is {NOT_BUILT}"))
}
