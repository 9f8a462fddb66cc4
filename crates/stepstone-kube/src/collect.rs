//! Reading a live cluster into an inventory (not built yet).

use std::path::Path;

use stepstone_core::inventory::Inventory;
use stepstone_core::snapshot::SnapshotOptions;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("live collection is not available in this build")]
    Unavailable,
}

pub async fn collect_inventory(
    _kubeconfig: Option<&Path>,
    _context: Option<&str>,
    _opts: &SnapshotOptions,
) -> Result<Inventory, CollectError> {
    Err(CollectError::Unavailable)
}
