//! The custom resources users write: `DataSource` and `Pipeline`, group `tributary.dev/v1alpha1`.

mod common;
mod datasource;
mod pipeline;
mod status;

pub use common::*;
pub use datasource::*;
pub use pipeline::*;
pub use status::*;

/// API group of every Tributary resource.
pub const GROUP: &str = "tributary.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Upper bound on tasks in one Pipeline: keeps status (one entry per task) well under etcd's object limit.
pub const MAX_TASKS: usize = 200;
/// Upper bound on `historyLimit`: earlier runs kept as summaries in status.
pub const MAX_HISTORY: u32 = 50;
/// Upper bound on lineage entries kept on a DataSource's status.
pub const MAX_DATASOURCE_LINEAGE: usize = 20;
/// Longest task message kept in status; runner detail beyond it lives in the run manifest.
pub const MAX_MESSAGE_LEN: usize = 1024;
