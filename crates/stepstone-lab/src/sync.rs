//! The lab's one policy for poisoned mutexes: recover the data and keep serving. A leaf module,
//! so the store's helpers, metrics and node operations can lock without depending on the shared
//! state that holds them.

use std::sync::{Mutex, MutexGuard};

/// Lock a mutex, recovering the data if a panicking thread poisoned it (the lab keeps serving).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
