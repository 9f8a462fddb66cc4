//! The lab's accept loop: HTTP/1.1 and HTTP/2 (prior knowledge) on every accepted connection,
//! with the connection timeouts a real apiserver has, and graceful shutdown.
//!
//! `axum::serve` sets no timer, so a client that sends half a request line (or nothing) holds
//! its connection, a task and a file descriptor for ever. Here every connection must send a
//! complete request head within [`LabOptions::header_timeout`](crate::LabOptions): the first
//! bytes (before hyper can tell HTTP/1 from HTTP/2) and each request's headers. hyper starts
//! the header-read timer again when a keep-alive connection goes idle after a response, so the
//! same limit closes idle keep-alive connections. A response that is still being written, such
//! as a watch, is not a header read: it streams for as long as the watch lasts.

use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What an HTTP/2 client sends first; anything else is HTTP/1.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serve `app` on `listener` until `stop` turns true, then stop accepting, let every connection
/// finish its requests in flight and return when all have closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // Each connection holds a receiver; the sender's `closed()` resolves when all are gone.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of file descriptors or a connection reset before accept: keep serving
                // the others, after a pause so a persistent error does not spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Without TCP_NODELAY, multi-write responses meet the client's delayed ACKs and every
        // paged request stalls for tens of milliseconds.
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(tcp, app.clone(), header_timeout, stop.clone(), open_rx.clone()));
    }
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
}

async fn connection(
    tcp: TcpStream,
    app: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) {
    if !tokio::time::timeout(header_timeout, version_known(&tcp)).await.unwrap_or(false) {
        return;
    }
    let service = TowerToHyperService::new(app);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(tcp), service));
    let mut stopping = pin!(stopped(&mut stop));
    let mut asked_to_stop = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = &mut stopping, if !asked_to_stop => {
                asked_to_stop = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once the lab is told to stop (or the lab is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Wait until the client has sent enough to tell HTTP/1 from HTTP/2 (what hyper's version
/// detection reads without a timer of its own); `false` if it closed first.
async fn version_known(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = match tcp.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        if n == buf.len() || buf[..n] != H2_PREFACE[..n] {
            return true;
        }
        // A prefix of the HTTP/2 preface: `peek` returns at once while those bytes wait unread,
        // so poll for the rest.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
