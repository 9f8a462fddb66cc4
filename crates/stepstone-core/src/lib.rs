//! stepstone-core: the pure planning core. Values in, values out: no async, no network,
//! no clock reads (the day is always passed in).

pub mod addons;
pub mod api_status;
pub mod capacity;
pub mod dice;
pub mod drain;
pub mod etcd_backup;
pub mod fasthash;
pub mod findings;
pub mod inventory;
pub mod object_key;
pub mod path;
pub mod pdb;
pub mod plan;
pub mod progress;
pub mod quantity;
pub mod releases;
pub mod selector;
pub mod skew;
pub mod snapshot;
pub mod version;
pub mod volumes;
pub mod wire;

/// The `apiVersion` of every document stepstone prints.
pub const API_VERSION: &str = "stepstone/v1alpha1";
