//! Live drain: cordon, classify with the plan's rule chain, evict through `policy/v1` with our
//! own retry loop, wait (by watching) for pods to be gone and replaced by Ready pods elsewhere,
//! and report precisely what is left when it stops short.
//!
//! The decisions live in pure submodules ([`eviction`], [`retry`], [`budget`], [`watch`],
//! [`event`], [`report`]); [`engine`] is the thin layer that talks to the API server.

pub mod budget;
pub mod event;
pub mod eviction;
pub mod report;
pub mod retry;
pub mod watch;
