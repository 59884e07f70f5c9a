//! What job handlers can reach: the store (and, as pools grow, the outbound clients).

use std::sync::Arc;

use fleet_store::Store;

/// Shared by every job of a process; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub store: Arc<dyn Store>,
}
