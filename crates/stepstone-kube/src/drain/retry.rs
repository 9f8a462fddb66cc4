//! When to try an eviction again: a fixed interval while a budget blocks (kubectl's 5 s), an
//! exponential backoff while the API server throttles, the same backoff for a bounded number of
//! server errors in a row (500, 502, 503, 504), never for configuration errors.
//!
//! The server errors differ from `kubectl drain`, which retries only 429 and stops at a 500: the
//! eviction handler answers 500 when etcd times out or a write conflicts before the pod is
//! touched, and an eviction that did go through answers 404 (or a UID precondition 409) the next
//! time, so asking again is safe. A server that keeps failing still stops the node's drain, with
//! the code and message in the report.
//!
//! Pure: the engine asks [`RetryPolicy::after`] and sleeps (or watches) for the answer.

use std::time::Duration;

use super::eviction::EvictionOutcome;

/// Retry intervals; tests scale them down together with the lab's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Between attempts while a PodDisruptionBudget refuses (kubectl: 5 s).
    pub budget_interval: Duration,
    /// First wait after API throttling or a transport error; doubles per attempt.
    pub throttle_base: Duration,
    /// Cap of the throttling backoff.
    pub throttle_max: Duration,
    /// Server errors in a row on one pod's eviction before its drain gives up (the last one
    /// included): 8, as many attempts as every other request gets.
    pub server_error_attempts: u32,
    /// How long one second of a `Retry-After` lasts: a second, except in a faster lab.
    pub server_second: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            budget_interval: Duration::from_secs(5),
            throttle_base: Duration::from_millis(500),
            throttle_max: Duration::from_secs(30),
            server_error_attempts: 8,
            server_second: Duration::from_secs(1),
        }
    }
}

/// The decision after one eviction answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The eviction went through (or the pod is already gone): watch it disappear.
    Done,
    /// Try again after this long.
    RetryAfter(Duration),
    /// Give up on this pod; the report says why.
    GiveUp,
}

impl RetryPolicy {
    /// Every interval divided by `factor` (at least 1 ms), for a lab running `factor` times faster.
    pub fn scaled(self, factor: f64) -> Self {
        let scale = |d: Duration| Duration::from_secs_f64((d.as_secs_f64() / factor.max(1e-9)).max(0.001));
        RetryPolicy {
            budget_interval: scale(self.budget_interval),
            throttle_base: scale(self.throttle_base),
            throttle_max: scale(self.throttle_max),
            server_error_attempts: self.server_error_attempts,
            server_second: scale(self.server_second),
        }
    }

    /// What to do after `outcome`, the `attempt`-th consecutive answer of this kind (1-based).
    pub fn after(&self, outcome: &EvictionOutcome, attempt: u32) -> Next {
        match outcome {
            EvictionOutcome::Accepted | EvictionOutcome::Gone => Next::Done,
            EvictionOutcome::BudgetBlocked(_) | EvictionOutcome::NamespaceTerminating => {
                Next::RetryAfter(self.budget_interval)
            }
            EvictionOutcome::Throttled { retry_after_seconds } => {
                let backoff = self.backoff(attempt);
                // The server's hint is a floor, never a reason to wait past the cap.
                let hinted = retry_after_seconds.map(|s| self.server_second.saturating_mul(s)).unwrap_or_default();
                Next::RetryAfter(backoff.max(hinted.min(self.throttle_max)))
            }
            EvictionOutcome::ServerError { .. } if attempt >= self.server_error_attempts => Next::GiveUp,
            EvictionOutcome::ServerError { .. } => Next::RetryAfter(self.backoff(attempt)),
            EvictionOutcome::MultipleBudgets { .. } | EvictionOutcome::Failed { .. } => Next::GiveUp,
        }
    }

    /// The wait before the `attempt`-th retry (1-based) after throttling or a transient error.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        self.throttle_base.saturating_mul(1u32 << doublings).min(self.throttle_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::eviction::BudgetRefusal;

    #[test]
    fn budget_blocks_retry_at_a_fixed_interval() {
        let p = RetryPolicy::default();
        let blocked = EvictionOutcome::BudgetBlocked(BudgetRefusal {
            pdb: "web".into(),
            needs: Some(2),
            has: Some(2),
            message: String::new(),
        });
        assert_eq!(p.after(&blocked, 1), Next::RetryAfter(Duration::from_secs(5)));
        assert_eq!(p.after(&blocked, 40), Next::RetryAfter(Duration::from_secs(5)));
    }

    #[test]
    fn throttling_backs_off_to_the_cap_and_honours_the_hint() {
        let p = RetryPolicy::default();
        let t = EvictionOutcome::Throttled { retry_after_seconds: None };
        assert_eq!(p.after(&t, 1), Next::RetryAfter(Duration::from_millis(500)));
        assert_eq!(p.after(&t, 3), Next::RetryAfter(Duration::from_secs(2)));
        assert_eq!(p.after(&t, 99), Next::RetryAfter(Duration::from_secs(30)));
        let hinted = EvictionOutcome::Throttled { retry_after_seconds: Some(7) };
        assert_eq!(p.after(&hinted, 1), Next::RetryAfter(Duration::from_secs(7)));
        let huge = EvictionOutcome::Throttled { retry_after_seconds: Some(3600) };
        assert_eq!(p.after(&huge, 1), Next::RetryAfter(Duration::from_secs(30)));
    }

    #[test]
    fn server_errors_back_off_up_to_the_cap_then_give_up() {
        let p = RetryPolicy::default();
        let e = EvictionOutcome::ServerError { code: 500, message: "etcdserver: request timed out".into() };
        assert_eq!(p.after(&e, 1), Next::RetryAfter(Duration::from_millis(500)));
        assert_eq!(p.after(&e, 2), Next::RetryAfter(Duration::from_secs(1)));
        assert_eq!(p.after(&e, 7), Next::RetryAfter(Duration::from_secs(30)));
        assert_eq!(p.after(&e, 8), Next::GiveUp);
        let one_try = RetryPolicy { server_error_attempts: 1, ..p };
        assert_eq!(one_try.after(&e, 1), Next::GiveUp);
        assert_eq!(p.scaled(100.0).server_error_attempts, 8);
    }

    #[test]
    fn configuration_errors_are_not_retried() {
        let p = RetryPolicy::default();
        assert_eq!(p.after(&EvictionOutcome::MultipleBudgets { message: String::new() }, 1), Next::GiveUp);
        assert_eq!(p.after(&EvictionOutcome::Failed { code: 403, message: String::new() }, 1), Next::GiveUp);
        assert_eq!(p.after(&EvictionOutcome::Gone, 1), Next::Done);
        assert_eq!(p.after(&EvictionOutcome::NamespaceTerminating, 1), Next::RetryAfter(Duration::from_secs(5)));
    }

    #[test]
    fn scaling_divides_every_interval() {
        let p = RetryPolicy::default().scaled(100.0);
        assert_eq!(p.budget_interval, Duration::from_millis(50));
        assert_eq!(p.throttle_base, Duration::from_millis(5));
        let hinted = EvictionOutcome::Throttled { retry_after_seconds: Some(1) };
        assert_eq!(p.after(&hinted, 1), Next::RetryAfter(Duration::from_millis(10)));
    }
}
