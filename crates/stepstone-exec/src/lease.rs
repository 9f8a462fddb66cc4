//! The rollout lock: a `coordination.k8s.io/v1` Lease in kube-system. The decision of whether a
//! run may take the lock is pure ([`decide`]); the engine renews the lease while it runs. A
//! second rollout is refused with the holder's identity; a lease that was not renewed within its
//! duration has expired and may be taken over; so may a lease whose holder is a process of this
//! machine that no longer exists (a crashed or killed run). Taking, renewing and giving back
//! the Lease through the cluster ([`acquire_lock`], [`spawn_renewal`], [`release_lock`]) live
//! here too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;

use crate::cluster::{ClusterApi, ClusterError};
pub use crate::cluster::{LEASE_NAME, LEASE_NAMESPACE, LeaseView};
use crate::error::ExecError;
use crate::events::{Clock, RolloutEvent, Sink};

/// Who is asking, as written into `holderIdentity`: `user@host/pid-N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub host: String,
    pub pid: u32,
}

impl Identity {
    /// This process.
    pub fn current() -> Self {
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        Identity { user, host, pid: std::process::id() }
    }

    pub fn holder(&self) -> String {
        format!("{}@{}/pid-{}", self.user, self.host, self.pid)
    }

    /// Parse `user@host/pid-N`; other holders' identities are kept as opaque strings.
    pub fn parse(s: &str) -> Option<Identity> {
        let (user, rest) = s.split_once('@')?;
        let (host, pid) = rest.rsplit_once("/pid-")?;
        Some(Identity { user: user.into(), host: host.into(), pid: pid.parse().ok()? })
    }
}

/// What may happen to the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No lease, or a released one: create or take it.
    Acquire,
    /// Ours already: renew it.
    Renew,
    /// Someone else's, expired (not renewed within its duration) or left by a dead process of
    /// this machine: take it over, saying so.
    TakeOver { previous: String, why: String },
    /// Someone else holds it and keeps it alive.
    Refuse { holder: String, renewed: Option<Timestamp>, expires: Option<Timestamp> },
}

/// Decide about the lock at `now`. `alive(pid)` says whether a process of this machine exists.
pub fn decide(lease: Option<&LeaseView>, me: &Identity, now: Timestamp, alive: &dyn Fn(u32) -> bool) -> LeaseDecision {
    let Some(lease) = lease else { return LeaseDecision::Acquire };
    let Some(holder) = lease.holder.as_deref().filter(|h| !h.is_empty()) else { return LeaseDecision::Acquire };
    if holder == me.holder() {
        return LeaseDecision::Renew;
    }
    let expires = lease.renewed.and_then(|r| r.checked_add(jiff::SignedDuration::try_from(lease.duration).ok()?).ok());
    match expires {
        Some(e) if e < now => {
            return LeaseDecision::TakeOver {
                previous: holder.into(),
                why: format!("it expired at {e} (not renewed for {}s)", lease.duration.as_secs()),
            };
        }
        None => {
            return LeaseDecision::TakeOver { previous: holder.into(), why: "it has no renew time".into() };
        }
        Some(_) => {}
    }
    if let Some(other) = Identity::parse(holder)
        && other.host == me.host
        && !alive(other.pid)
    {
        return LeaseDecision::TakeOver {
            previous: holder.into(),
            why: format!("process {} on this machine no longer exists", other.pid),
        };
    }
    LeaseDecision::Refuse { holder: holder.into(), renewed: lease.renewed, expires }
}

/// Whether a process with this id exists on this machine.
pub fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Take the rollout lock or say who holds it.
pub async fn acquire_lock(
    cluster: &dyn ClusterApi,
    me: &Identity,
    duration: Duration,
    clock: &dyn Clock,
    sink: &Sink,
) -> Result<(), ExecError> {
    for _ in 0..3 {
        let lease = cluster.read_lease().await?;
        let now = clock.now();
        match decide(lease.as_ref().map(|l| &l.view), me, now, &process_alive) {
            LeaseDecision::Refuse { holder, renewed, expires } => {
                let show = |t: Option<jiff::Timestamp>| t.map_or("never".to_string(), |t| t.to_string());
                return Err(ExecError::Locked { holder, renewed: show(renewed), expires: show(expires) });
            }
            LeaseDecision::TakeOver { previous, why } => {
                sink(&RolloutEvent::LockTakenOver { previous, why });
            }
            LeaseDecision::Acquire | LeaseDecision::Renew => {}
        }
        match cluster.write_lease(&me.holder(), duration, now, lease.as_ref()).await {
            Ok(()) => return Ok(()),
            Err(ClusterError::LeaseConflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ClusterError::LeaseConflict.into())
}

/// Give the lock back (only if it is still ours).
pub async fn release_lock(cluster: &dyn ClusterApi, me: &Identity, clock: &dyn Clock) -> Result<(), ExecError> {
    if let Some(lease) = cluster.read_lease().await?
        && lease.view.holder.as_deref() == Some(me.holder().as_str())
    {
        cluster.write_lease("", lease.view.duration, clock.now(), Some(&lease)).await?;
    }
    Ok(())
}

/// Renew the lease every third of its duration while the run holds it; set `lost` and stop
/// when someone else holds it.
pub fn spawn_renewal(
    cluster: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    me: Identity,
    duration: Duration,
    lost: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(duration / 3).await;
            match cluster.read_lease().await {
                Ok(Some(l)) if l.view.holder.as_deref() == Some(me.holder().as_str()) => {
                    let _ = cluster.write_lease(&me.holder(), duration, clock.now(), Some(&l)).await;
                }
                Ok(_) => {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
                Err(e) => tracing::warn!("renewing the rollout lock: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn me() -> Identity {
        Identity { user: "ops".into(), host: "jump-1".into(), pid: 42 }
    }

    fn lease(holder: &str, renewed: &str) -> LeaseView {
        LeaseView { holder: Some(holder.into()), renewed: Some(at(renewed)), duration: Duration::from_secs(60) }
    }

    #[test]
    fn a_live_holder_is_named_in_the_refusal() {
        let l = lease("alice@laptop/pid-7", "2026-12-01T10:00:00Z");
        let d = decide(Some(&l), &me(), at("2026-12-01T10:00:30Z"), &|_| true);
        assert_eq!(
            d,
            LeaseDecision::Refuse {
                holder: "alice@laptop/pid-7".into(),
                renewed: Some(at("2026-12-01T10:00:00Z")),
                expires: Some(at("2026-12-01T10:01:00Z")),
            }
        );
    }

    #[test]
    fn an_expired_lease_is_taken_over() {
        let l = lease("alice@laptop/pid-7", "2026-12-01T10:00:00Z");
        let d = decide(Some(&l), &me(), at("2026-12-01T10:01:01Z"), &|_| true);
        assert!(matches!(d, LeaseDecision::TakeOver { ref previous, .. } if previous == "alice@laptop/pid-7"), "{d:?}");
    }

    #[test]
    fn a_dead_process_of_this_machine_leaves_the_lock_to_the_next_run() {
        let l = lease("ops@jump-1/pid-41", "2026-12-01T10:00:00Z");
        assert!(matches!(
            decide(Some(&l), &me(), at("2026-12-01T10:00:10Z"), &|_| false),
            LeaseDecision::TakeOver { .. }
        ));
        assert!(matches!(decide(Some(&l), &me(), at("2026-12-01T10:00:10Z"), &|_| true), LeaseDecision::Refuse { .. }));
        // The same pid on another machine says nothing about that machine's processes.
        let other = lease("ops@jump-2/pid-41", "2026-12-01T10:00:00Z");
        assert!(matches!(
            decide(Some(&other), &me(), at("2026-12-01T10:00:10Z"), &|_| false),
            LeaseDecision::Refuse { .. }
        ));
    }

    #[test]
    fn ours_is_renewed_and_none_is_acquired() {
        let l = lease("ops@jump-1/pid-42", "2026-12-01T10:00:00Z");
        assert_eq!(decide(Some(&l), &me(), at("2026-12-01T11:00:00Z"), &|_| true), LeaseDecision::Renew);
        assert_eq!(decide(None, &me(), at("2026-12-01T11:00:00Z"), &|_| true), LeaseDecision::Acquire);
        let released = LeaseView { holder: None, renewed: None, duration: Duration::from_secs(60) };
        assert_eq!(decide(Some(&released), &me(), at("2026-12-01T11:00:00Z"), &|_| true), LeaseDecision::Acquire);
        assert_eq!(Identity::parse(&me().holder()), Some(me()));
    }
}
