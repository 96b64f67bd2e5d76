//! The HTTP/1 serve loop: every client is bounded.
//!
//! `axum::serve` has no deadlines and no connection cap, so a client sending half a head
//! would hold its socket (and a file descriptor) for ever. Here:
//!
//! ```text
//!  accept ──cap full──▶ 503, close
//!    │
//!    ▼          header timeout            request timeout      body timeout
//!  waiting ─────────────────────▶ closed   handler ──▶ 503      body ──▶ closed
//!    │  ▲ head parsed                        ▲                    ▲
//!    ▼  │ response sent                      │                    │
//!  in request ───────────────────────────────┴────────────────────┘
//!    waiting with no request for the keep-alive timeout ──▶ closed
//! ```
//!
//! Shutdown stops accepting, lets in-flight requests finish (each is bounded by the
//! request timeout) and then drops whatever is left.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, header};
use axum::response::IntoResponse;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tessera_server::problem::{Problem, ProblemCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bounds the edge puts on every client, from `TESSERA_HTTP_*` (docs/configuration.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From accepting a connection, or from its previous response, to a complete request head.
    pub header_timeout: Duration,
    /// From a complete head to the response, handler included; then 503.
    pub request_timeout: Duration,
    /// From a complete head to the last byte of its body; then the connection is closed.
    pub body_timeout: Duration,
    /// An open connection with no request in progress is closed after this; zero turns
    /// keep-alive off (one request per connection).
    pub keepalive_timeout: Duration,
    /// Connections served at once; the ones over it get a 503 and are closed.
    pub max_connections: u32,
}

impl HttpLimits {
    /// From the configured seconds; the names in errors are the settings'.
    pub(crate) fn checked(
        header: i64,
        request: i64,
        body: i64,
        keepalive: i64,
        max: u32,
    ) -> anyhow::Result<Self> {
        // hyper starts the header clock as soon as a kept-alive connection goes idle, so a
        // longer keep-alive would silently be the header timeout instead.
        if keepalive > header {
            anyhow::bail!(
                "TESSERA_HTTP_KEEPALIVE_TIMEOUT ({keepalive}) must not exceed \
                 TESSERA_HTTP_HEADER_TIMEOUT ({header}): an idle connection is already closed \
                 when the header timeout runs out"
            );
        }
        let secs = |s: i64| Duration::from_secs(s.unsigned_abs());
        Ok(Self {
            header_timeout: secs(header),
            request_timeout: secs(request),
            body_timeout: secs(body),
            keepalive_timeout: secs(keepalive),
            max_connections: max,
        })
    }
}

/// What the accept loop tells the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the request in progress, then close.
    Draining,
    /// The grace period is over: close now.
    Closing,
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains for at most the
/// request timeout (plus a second for the last response to be written).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = usize::try_from(limits.max_connections).unwrap_or(usize::MAX);
    let slots = Arc::new(Semaphore::new(permits));
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    let mut shutdown = pin!(shutdown);
    // Warn once per episode of a full cap, not once per refused socket.
    let mut refusing = false;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning, and let
                    // closing connections free some.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if !refusing {
                tracing::warn!(
                    max = limits.max_connections,
                    "connection cap reached: refusing new connections with 503"
                );
                refusing = true;
            }
            refuse(&stream);
            continue;
        };
        refusing = false;
        let router = router.clone();
        let phase = phase_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits, phase).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = phase_tx.send(Phase::Draining);
    let grace = limits.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, slots.acquire_many(limits.max_connections))
        .await
        .is_err()
    {
        tracing::warn!(
            open = permits - slots.available_permits(),
            "closing connections still open after the shutdown grace period"
        );
    }
    let _ = phase_tx.send(Phase::Closing);
    Ok(())
}

/// Over the cap: a best-effort 503 (never waiting on a slow peer), then the socket closes.
fn refuse(stream: &TcpStream) {
    // Unread bytes at close turn the FIN into a reset, which can destroy the 503 before the
    // client reads it; whatever request already arrived is read and dropped first.
    let mut sink = [0u8; 4096];
    let _ = stream.try_read(&mut sink);
    const BODY: &str = r#"{"type":"urn:tessera:problem:service_unavailable","title":"Service unavailable","status":503,"detail":"too many open connections; retry shortly","code":"service_unavailable"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// Whether a connection has a request in progress, and since when it has had none.
struct Activity {
    started: Instant,
    in_request: AtomicUsize,
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn mark_idle(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection will have been idle for `timeout`, or None while in a request.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_request.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        Some(self.started + since + timeout)
    }
}

/// Counts a request as in progress for as long as it lives, even if hyper drops it.
struct InRequest(Arc<Activity>);

impl InRequest {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_request.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0.mark_idle();
        self.0.in_request.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The most a connection may buffer while reading a request head.
const MAX_HEAD_BYTES: usize = 32 * 1024;

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: HttpLimits,
    mut phase: watch::Receiver<Phase>,
) {
    let activity = Arc::new(Activity {
        started: Instant::now(),
        in_request: AtomicUsize::new(0),
        idle_since_ms: AtomicU64::new(0),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = InRequest::new(&activity);
            let router = router.clone();
            async move {
                let res = handle(router, peer, limits, req).await;
                drop(guard);
                res
            }
        })
    };
    let keep_alive = !limits.keepalive_timeout.is_zero();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // hyper's default lets one connection buffer ~400 KB of request head: times the
        // connection cap, hundreds of MB that a client can make us hold. A real request
        // head fits in a few KB.
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(keep_alive);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let mut closing = false;
    loop {
        let idle_at = activity
            .idle_deadline(limits.keepalive_timeout)
            .filter(|_| keep_alive && !closing);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            changed = phase.changed() => {
                match (changed, *phase.borrow()) {
                    (Ok(()), Phase::Serving) => {}
                    (Ok(()), Phase::Draining) => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    // Past the grace period, or the server is gone.
                    (Ok(()), Phase::Closing) | (Err(_), _) => break,
                }
            }
            () = sleep_until(idle_at) => {
                // Re-checked: a request may have started since the deadline was computed.
                if activity.idle_deadline(limits.keepalive_timeout).is_some_and(|d| d <= Instant::now()) {
                    // On an idle connection hyper closes at once; mid-response it finishes first.
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The body missed its deadline: hyper closes the connection without a response.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within the body timeout")
    }
}

impl std::error::Error for BodyTimedOut {}

/// One request through the router, with the client address the extractors read, a body
/// deadline and a deadline for the whole request.
async fn handle(
    router: Router,
    peer: SocketAddr,
    limits: HttpLimits,
    req: Request<Incoming>,
) -> Result<Response<Body>, BodyTimedOut> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let mut req = req.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
            timed_out: timed_out.clone(),
        })
    });
    req.extensions_mut().insert(ConnectInfo(peer));
    let outcome = tokio::time::timeout(limits.request_timeout, router.oneshot(req)).await;
    if timed_out.load(Ordering::Relaxed) {
        tracing::info!("request body too slow: connection closed");
        return Err(BodyTimedOut);
    }
    match outcome {
        Ok(Ok(res)) => Ok(res),
        Ok(Err(infallible)) => match infallible {},
        Err(_elapsed) => Ok(request_timed_out(limits.request_timeout)),
    }
}

fn request_timed_out(timeout: Duration) -> Response<Body> {
    tracing::warn!(
        timeout_secs = timeout.as_secs(),
        "request timed out: answered 503"
    );
    let mut res = Problem::new(
        ProblemCode::ServiceUnavailable,
        format!(
            "the request did not complete within {} seconds; retry shortly",
            timeout.as_secs()
        ),
    )
    .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// A request body that fails once its deadline passes while it still waits for bytes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;

    /// Far beyond the short timeouts used here; never a measure of speed.
    const BOUND: Duration = Duration::from_secs(20);

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(60),
            max_connections: 16,
        }
    }

    /// A server for `router` and the sender that shuts it down.
    async fn start(
        router: Router,
        limits: HttpLimits,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, limits, async move {
            let _ = rx.await;
        }));
        (addr, tx, server)
    }

    #[tokio::test]
    async fn a_request_that_outlasts_the_request_timeout_gets_503_with_retry_after() {
        let router = Router::new().route("/stuck", get(std::future::pending::<()>));
        let mut l = limits();
        l.request_timeout = Duration::from_secs(1);
        let (addr, _tx, _server) = start(router, l).await;
        let res = tokio::time::timeout(BOUND, reqwest::get(format!("http://{addr}/stuck")))
            .await
            .expect("answered before the bound")
            .unwrap();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "1");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "service_unavailable");
    }

    #[tokio::test]
    async fn handlers_see_the_client_address() {
        let router = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let (addr, _tx, _server) = start(router, limits()).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let local = stream.local_addr().unwrap();
        stream
            .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        assert!(text.ends_with(&local.to_string()), "{text}");
    }

    #[tokio::test]
    async fn shutdown_lets_the_request_in_progress_finish_closes_idle_connections_and_ends() {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let release_rx = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
        let (entered_tx, entered_rx) = oneshot::channel::<()>();
        let entered_tx = Arc::new(std::sync::Mutex::new(Some(entered_tx)));
        let router = Router::new().route("/ok", get(|| async { "ok" })).route(
            "/wait",
            get(move || {
                let release_rx = release_rx.clone();
                let entered_tx = entered_tx.clone();
                async move {
                    let rx = release_rx.lock().await.take().unwrap();
                    let _ = entered_tx.lock().unwrap().take().unwrap().send(());
                    let _ = rx.await;
                    "finished"
                }
            }),
        );
        let (addr, shutdown, server) = start(router, limits()).await;

        // One idle kept-alive connection, one with a request in progress.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let busy = tokio::spawn(reqwest::get(format!("http://{addr}/wait")));
        entered_rx.await.unwrap();

        shutdown.send(()).unwrap();
        let closed = tokio::time::timeout(BOUND, idle.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0) | Err(_))),
            "the idle connection stayed open: {closed:?}"
        );
        release_tx.send(()).unwrap();
        let res = busy.await.unwrap().unwrap();
        assert_eq!(res.text().await.unwrap(), "finished");
        let ended = tokio::time::timeout(BOUND, server).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }
}
