//! Idempotent reads (GET and LIST) with bounded retries: the one place where a read command
//! rides out an API server that is restarting, overloaded or throttling.
//!
//! A 5xx answer, a 429 (after its `Retry-After`, within a bound) and a connection that fails
//! (refused, reset, closed mid-body) are retried with exponential backoff; a failure that
//! outlasts the retries becomes a [`ServerError`], which the CLI gives its own exit code,
//! because "the server is unhealthy" is neither bad input nor a finding. Every other answer
//! (403, 404, 410, a malformed request) is returned at once: asking again changes nothing.

use std::time::Duration;

use kube::Client;

/// How often and how long to retry a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Requests in all, the first included.
    pub attempts: u32,
    /// The wait before the first retry; each later wait doubles, up to `max_wait`.
    pub first_wait: Duration,
    pub max_wait: Duration,
    /// The longest `Retry-After` honoured; a server asking for more gets this.
    pub max_retry_after: Duration,
    /// How long one second of a `Retry-After` lasts: a second, except in a faster lab.
    pub server_second: Duration,
}

impl Default for Retry {
    /// Eight attempts over about eleven seconds: at a 20 % failure rate a read fails for good
    /// once in 390,000; a server that is down for good is reported within a quarter minute.
    fn default() -> Self {
        Retry {
            attempts: 8,
            first_wait: Duration::from_millis(100),
            max_wait: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
            server_second: Duration::from_secs(1),
        }
    }
}

impl Retry {
    /// Every wait divided by `speed` (at least 1 ms), the attempts unchanged: for a lab whose
    /// clock runs `speed` times faster, where a `Retry-After` of one second is one lab second.
    pub fn scaled(&self, speed: f64) -> Retry {
        let scale = |d: Duration| Duration::from_secs_f64((d.as_secs_f64() / speed.max(1e-9)).max(0.001));
        Retry {
            attempts: self.attempts,
            first_wait: scale(self.first_wait),
            max_wait: scale(self.max_wait),
            max_retry_after: scale(self.max_retry_after),
            server_second: scale(self.server_second),
        }
    }

    /// The wait for a `Retry-After` of `seconds`, within the bound.
    fn retry_after(&self, seconds: u32) -> Duration {
        self.server_second.saturating_mul(seconds).min(self.max_retry_after)
    }

    /// The wait before retry number `retry` (1-based), unless the server named one.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first_wait.saturating_mul(factor).min(self.max_wait)
    }
}

/// A read the server kept failing, with every attempt spent.
#[derive(Debug, thiserror::Error)]
#[error(
    "GET {url} failed {attempts} times in a row, last with {}; the API server is unhealthy or overloaded: check `kubectl get --raw '/readyz?verbose'` and the apiserver's logs, then run the command again",
    summary(last)
)]
pub struct ServerError {
    pub url: String,
    pub attempts: u32,
    /// The last failure (not a `source`: [`summary`] already says it, once).
    pub last: kube::Error,
}

/// One line for a failed request: the status code, reason and message of an API answer
/// (kube's own text repeats the whole Status), or the transport error.
pub fn summary(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} {}: {}", status.code, status.reason, status.message),
        other => other.to_string(),
    }
}

/// What a failed read was.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Retried until [`Retry::attempts`] ran out.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// An answer that retrying would not change (forbidden, not found, invalid).
    #[error(transparent)]
    Refused(kube::Error),
}

impl ReadError {
    /// The API's answer, whether retried or not.
    pub fn kube(&self) -> &kube::Error {
        match self {
            ReadError::Server(e) => &e.last,
            ReadError::Refused(e) => e,
        }
    }
}

/// Whether asking again may get another answer.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) => transport_hiccup(e),
        _ => false,
    }
}

/// A connection refused, reset or closed before the whole answer came, or a timeout; not a
/// TLS or credential failure, which fails the same way every time.
fn transport_hiccup(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut
            );
        }
        if let Some(h) = c.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_closed() || h.is_canceled() || h.is_timeout())
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// How many seconds the server asked to wait (`details.retryAfterSeconds`, which the apiserver
/// sets along with the `Retry-After` header).
fn retry_after(e: &kube::Error) -> Option<u32> {
    match e {
        kube::Error::Api(status) => status.details.as_ref().map(|d| d.retry_after_seconds).filter(|s| *s > 0),
        _ => None,
    }
}

/// GET `request` (a get or a list; its body is empty) and return the body text, retrying as
/// [`Retry`] says. `server` is the API server URL, for the error.
pub async fn get_text(
    client: &Client,
    server: &str,
    request: http::Request<Vec<u8>>,
    retry: &Retry,
) -> Result<String, ReadError> {
    let url = format!("{server}{}", request.uri());
    let mut attempt = 1;
    loop {
        let copy = copy_request(&request);
        match client.request_text(copy).await {
            Ok(text) => return Ok(text),
            Err(e) if !is_transient(&e) => return Err(ReadError::Refused(e)),
            Err(source) if attempt >= retry.attempts => {
                return Err(ServerError { url, attempts: attempt, last: source }.into());
            }
            Err(e) => {
                let wait = retry_after(&e).map_or_else(|| retry.backoff(attempt), |s| retry.retry_after(s));
                tracing::debug!(url, attempt, ?wait, error = %e, "read failed; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

/// A copy of a bodiless request (`http::Request` is not `Clone`).
fn copy_request(request: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure("m", "r").with_code(code)))
    }

    #[test]
    fn server_errors_and_throttling_are_retried_and_answers_are_not() {
        for code in [500, 502, 503, 504, 429] {
            assert!(is_transient(&api(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 422] {
            assert!(!is_transient(&api(code)), "{code}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_bound() {
        let r = Retry::default();
        let waits: Vec<u128> = (1..r.attempts).map(|n| r.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000]);
        assert_eq!(r.backoff(40), r.max_wait);
        assert_eq!(r.backoff(u32::MAX), r.max_wait);
    }

    #[test]
    fn the_servers_wait_is_bounded() {
        // As the apiserver sends it.
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 429, "reason": "TooManyRequests",
            "message": "Too many requests, please try again later.", "details": {"retryAfterSeconds": 3}
        }))
        .unwrap();
        assert_eq!(retry_after(&kube::Error::Api(Box::new(status))), Some(3));
        assert_eq!(retry_after(&api(500)), None);
        let r = Retry::default();
        assert_eq!(r.retry_after(3), Duration::from_secs(3));
        assert_eq!(r.retry_after(3600), Duration::from_secs(10));
    }

    #[test]
    fn a_faster_lab_shortens_every_wait_but_not_the_attempts() {
        let r = Retry::default().scaled(100.0);
        assert_eq!(r.attempts, 8);
        assert_eq!(r.backoff(1), Duration::from_millis(1));
        assert_eq!(r.backoff(7), Duration::from_millis(50));
        // The lab's `Retry-After: 1` is one lab second.
        assert_eq!(r.retry_after(1), Duration::from_millis(10));
        assert_eq!(r.retry_after(3600), Duration::from_millis(100));
        assert_eq!(Retry::default().scaled(1.0), Retry::default());
    }
}
