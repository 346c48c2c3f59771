//! The HTTP server under the router: the accept loop, the cap on open connections, how long a
//! connection may take to send a request head or sit idle between requests, and graceful
//! shutdown.
//!
//! `axum::serve` has none of these bounds, so Quire runs hyper's HTTP/1 connection itself (as
//! axum's `serve-with-hyper` example does) and watches each connection:
//!
//! - **Header timeout**: the head of the first request must arrive within `header_timeout` of
//!   the connection's opening; on a kept-alive connection, within `header_timeout` of the next
//!   request's first byte. Silent sockets and trickled headers are closed.
//! - **Keep-alive timeout**: a connection that sends nothing for `keep_alive_timeout` after a
//!   response is closed. (hyper's own `header_read_timeout` starts its clock as soon as a
//!   connection waits for a request, so it cannot tell an idle kept-alive connection from a slow
//!   head; the two bounds are kept apart here, as Go's `ReadHeaderTimeout` / `IdleTimeout` and
//!   nginx's `client_header_timeout` / `keepalive_timeout` do.)
//! - **Body timeout**: a layer of the router (`app::body_deadline`), answering 408.
//! - **Connection cap**: at most `max_connections` open. At the cap the connection that has
//!   waited longest without a request in flight is closed to make room; when every connection
//!   has a request in flight, new ones wait in the kernel's listen backlog.
//!
//! A request in flight is never cut by these timers: it is bounded by the body timeout and by
//! the work limits of the handlers. On shutdown, idle connections close at once and the others
//! finish their request first.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use crate::app::Front;
use crate::config::ConnectionLimits;

/// `first_byte` when no byte has arrived since the connection started waiting.
const NONE: u64 = u64::MAX;

/// Serves `front` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    front: Front,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; `closed()` resolves when the last one ends.
    let (done_tx, done_rx) = watch::channel(());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let lingering = Arc::new(Semaphore::new(MAX_LINGERING));
    let registry = Arc::new(Registry::new());
    let mut shutdown = pin!(shutdown);

    'accept: loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_error(err, &registry).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            // At the cap: make room by closing the connection that has waited longest for a
            // request. Until a slot frees, this client waits, and the next ones wait in the
            // listen backlog. (An evicted connection that got a request meanwhile finishes it
            // first, so another is asked after a short while.)
            Err(_) => loop {
                registry.evict_idlest();
                tokio::select! {
                    permit = permits.clone().acquire_owned() => {
                        break permit.map_err(|_| io::Error::other("the connection semaphore closed"))?;
                    }
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    () = &mut shutdown => break 'accept,
                }
            },
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::warn!(error = %err, "could not set TCP_NODELAY");
        }
        let activity = registry.open();
        let connection = Connection {
            front: front.clone(),
            limits,
            activity,
            registry: registry.clone(),
            stop: stop_rx.clone(),
        };
        let done = done_rx.clone();
        let lingering = lingering.clone();
        tokio::spawn(async move {
            let rest = connection.run(stream, remote).await;
            // A lingering socket holds no slot under the cap (it serves nothing more) and does
            // not delay a shutdown; their own bound keeps them few.
            drop(permit);
            drop(done);
            if let Some(stream) = rest
                && let Ok(_slot) = lingering.try_acquire()
            {
                linger(stream).await;
            }
        });
    }

    tracing::info!(open = registry.len(), "shutting down: no new connections");
    stop_tx.send_replace(true);
    drop(listener);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// Accept errors: a connection reset before it was accepted is nothing; running out of file
/// descriptors frees one (the idlest connection) and pauses briefly instead of spinning.
async fn accept_error(err: io::Error, registry: &Registry) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(err.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::warn!(error = %err, "accept failed");
    registry.evict_idlest();
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The open connections, so that the idlest can be closed when the cap is reached.
struct Registry {
    /// The clock every connection's times are measured on.
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn new() -> Self {
        Self { epoch: Instant::now(), next_id: AtomicU64::new(0), open: Mutex::new(HashMap::new()) }
    }

    fn open(&self) -> Arc<Activity> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(id, self.epoch));
        self.lock().insert(id, activity.clone());
        activity
    }

    fn close(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        // The map stays consistent whatever a panicking holder did: take it back.
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the connection that has waited longest for a request to close.
    fn evict_idlest(&self) {
        let open = self.lock();
        let idlest = open
            .values()
            .filter(|activity| activity.is_idle() && !activity.evicted.load(Ordering::Relaxed))
            .min_by_key(|activity| activity.waiting_since.load(Ordering::Relaxed));
        if let Some(activity) = idlest {
            activity.evicted.store(true, Ordering::Relaxed);
            activity.wake.notify_one();
        }
    }
}

/// What a connection is doing, shared by its task, its socket and its requests.
struct Activity {
    id: u64,
    /// The registry's clock: the times below are milliseconds since `epoch`.
    epoch: Instant,
    /// When the connection was accepted.
    opened: u64,
    /// Requests whose response has not been written out whole.
    in_flight: AtomicU32,
    /// Whether a request has been answered on this connection.
    served: AtomicBool,
    /// Since when the connection has been waiting for a request (its opening, or its last
    /// response).
    waiting_since: AtomicU64,
    /// The first byte received while waiting, or `NONE`.
    first_byte: AtomicU64,
    /// Set when the cap needs this connection's slot.
    evicted: AtomicBool,
    /// Set when an answer closes the connection before its request's body was read whole (too
    /// large, too slow): the connection then lingers ([`linger`]) once the answer is out.
    linger: AtomicBool,
    /// Something changed: the connection task recomputes its deadline.
    wake: Notify,
}

impl Activity {
    fn new(id: u64, epoch: Instant) -> Self {
        let opened = millis(epoch.elapsed());
        Self {
            id,
            epoch,
            opened,
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            waiting_since: AtomicU64::new(opened),
            first_byte: AtomicU64::new(NONE),
            evicted: AtomicBool::new(false),
            linger: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Bytes arrived on the socket.
    fn received(&self) {
        if self.is_idle() && self.first_byte.load(Ordering::Relaxed) == NONE {
            self.first_byte.store(self.now(), Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// A request head was read: the connection is busy until its response is written.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.first_byte.store(NONE, Ordering::Relaxed);
        self.wake.notify_one();
        InFlight(self.clone())
    }

    /// When the connection must be closed if nothing changes (ms on its clock), or `None`
    /// while a request is in flight.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<u64> {
        if !self.is_idle() {
            return None;
        }
        let first_byte = self.first_byte.load(Ordering::Relaxed);
        Some(if !self.served.load(Ordering::Relaxed) {
            self.opened.saturating_add(millis(limits.header_timeout))
        } else if first_byte != NONE {
            first_byte.saturating_add(millis(limits.header_timeout))
        } else {
            self.waiting_since.load(Ordering::Relaxed).saturating_add(millis(limits.keep_alive_timeout))
        })
    }
}

/// A duration in whole milliseconds (saturating far beyond any timeout).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(NONE / 4)
}

/// Held by a request from its head until its response body is written (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.waiting_since.store(activity.now(), Ordering::Relaxed);
        activity.first_byte.store(NONE, Ordering::Relaxed);
        activity.served.store(true, Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        activity.wake.notify_one();
    }
}

/// The socket, telling the connection's `Activity` when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// One accepted connection and what it needs to serve itself.
struct Connection {
    front: Front,
    limits: ConnectionLimits,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    /// Serves the connection; returns its stream when it is to linger ([`linger`]).
    async fn run(mut self, stream: TcpStream, remote: SocketAddr) -> Option<TcpStream> {
        let activity = self.activity.clone();
        let io = TokioIo::new(Watched { stream, activity: activity.clone() });
        let front = self.front.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = activity.begin();
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            let (front, activity) = (front.clone(), activity.clone());
            async move {
                let response = front.answer(request).await;
                if response.headers().get(header::CONNECTION).is_some_and(|v| v == "close") {
                    activity.linger.store(true, Ordering::Relaxed);
                }
                // The request stays in flight until hyper has written (and dropped) the body.
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    }))
                }))
            }
        });

        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.keep_alive(!self.limits.keep_alive_timeout.is_zero());
        // The timeouts are kept by this task (see the module's comment), not by hyper's timer.
        builder.header_read_timeout(None);
        let mut conn = builder.serve_connection(io, service);
        let activity = &self.activity;
        let mut draining = false;
        let mut lingering = false;
        loop {
            let deadline = activity.deadline(&self.limits);
            let sleep_until = activity.epoch + Duration::from_millis(deadline.unwrap_or(NONE / 4));
            tokio::select! {
                served = &mut conn => {
                    match served {
                        // Hyper closed it after an answer, or the client did: what the client
                        // may still be sending is read and dropped for a while, so that the
                        // answer it has not read yet is not lost to a reset.
                        Ok(()) => lingering = activity.linger.load(Ordering::Relaxed),
                        Err(err) => {
                            tracing::debug!(connection = activity.id, error = %err, "connection ended with an error");
                        }
                    }
                    break;
                }
                () = activity.wake.notified() => {
                    if activity.evicted.load(Ordering::Relaxed) && activity.is_idle() {
                        tracing::debug!(connection = activity.id, "closed to make room under the connection cap");
                        break;
                    }
                }
                () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                    if activity.deadline(&self.limits).is_some_and(|at| at <= activity.now()) {
                        tracing::debug!(connection = activity.id, "closed: no request within the timeout");
                        break;
                    }
                }
                stopping = self.stop.wait_for(|stop| *stop), if !draining => {
                    let sender_gone = stopping.is_err();
                    drop(stopping);
                    if sender_gone || activity.is_idle() {
                        break;
                    }
                    // Finish the request in flight, then close.
                    draining = true;
                    Pin::new(&mut conn).graceful_shutdown();
                }
            }
        }
        self.registry.close(activity.id);
        lingering.then(|| conn.into_parts().io.into_inner().stream)
    }
}

/// How long a connection closed by the server goes on reading (and dropping) what its client
/// still sends, as nginx's `lingering_close` does: closing a socket with unread data sends a
/// reset, and a reset makes the client's system drop the answer it has not read yet.
const LINGER_FOR: Duration = Duration::from_secs(2);

/// The most sockets that linger at once; past it, a closed connection is dropped at once.
const MAX_LINGERING: usize = 256;

/// Ends the server's side of `stream` and reads what the client still sends, until it closes
/// too or [`LINGER_FOR`] passes.
async fn linger(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_FOR;
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(Ok(read)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        if read == 0 {
            break;
        }
    }
}

/// The open-file limit of this process after raising its soft limit to the hard one (as Go and
/// nginx do), or `None` where it is not known.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current.is_some() && limit.current != limit.maximum {
            let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return limit.maximum;
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_millis(1000),
            keep_alive_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_secs(30),
            max_connections: 8,
        }
    }

    #[tokio::test]
    async fn each_phase_of_a_connection_has_its_own_deadline() {
        let registry = Registry::new();
        let activity = registry.open();
        let opened = activity.opened;
        // Waiting for its first request: the header bound from the opening, bytes or not.
        assert_eq!(activity.deadline(&limits()), Some(opened + 1000));
        activity.received();
        assert_eq!(activity.deadline(&limits()), Some(opened + 1000));
        // A request in flight is never cut by these timers.
        let in_flight = activity.begin();
        assert_eq!(activity.deadline(&limits()), None);
        activity.received(); // its body: not the next request's first byte
        assert_eq!(activity.first_byte.load(Ordering::Relaxed), NONE);
        drop(in_flight);
        // Kept alive: the keep-alive bound from the end of the response…
        let ended = activity.waiting_since.load(Ordering::Relaxed);
        assert_eq!(activity.deadline(&limits()), Some(ended + 300));
        // …until the next request's first byte, which starts the header bound.
        activity.first_byte.store(ended + 100, Ordering::Relaxed);
        assert_eq!(activity.deadline(&limits()), Some(ended + 100 + 1000));
    }

    #[tokio::test]
    async fn the_cap_evicts_the_connection_idle_longest_and_never_a_busy_one() {
        let registry = Registry::new();
        let busy = registry.open();
        let oldest_idle = registry.open();
        let newer_idle = registry.open();
        busy.waiting_since.store(0, Ordering::Relaxed);
        oldest_idle.waiting_since.store(10, Ordering::Relaxed);
        newer_idle.waiting_since.store(20, Ordering::Relaxed);
        let _request = busy.begin();
        busy.waiting_since.store(0, Ordering::Relaxed);

        registry.evict_idlest();
        assert!(!busy.evicted.load(Ordering::Relaxed));
        assert!(oldest_idle.evicted.load(Ordering::Relaxed));
        assert!(!newer_idle.evicted.load(Ordering::Relaxed));
        registry.evict_idlest();
        assert!(newer_idle.evicted.load(Ordering::Relaxed));
        // Nothing idle is left: nothing more is evicted.
        registry.evict_idlest();
        assert!(!busy.evicted.load(Ordering::Relaxed));
        registry.close(oldest_idle.id);
        assert_eq!(registry.len(), 2);
    }
}
