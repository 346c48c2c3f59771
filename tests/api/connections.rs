//! Slow and silent clients: each timeout closes its connection within its bound while normal
//! requests go on being served, and the connection cap makes room for a real request.
//! Raw TCP, since an HTTP client will not misbehave on purpose.

use std::time::{Duration, Instant};

use quire::config::ConnectionLimits;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Short bounds so that the tests take seconds; the bounds checked are these values with slack
/// for a loaded machine.
fn limits(header: u64, keep_alive: u64, body: u64, max: usize) -> Options {
    Options {
        connections: Some(ConnectionLimits {
            header_timeout: Duration::from_millis(header),
            keep_alive_timeout: Duration::from_millis(keep_alive),
            body_timeout: Duration::from_millis(body),
            max_connections: max,
        }),
        ..Options::default()
    }
}

/// How late a close may come on a machine shared by several test runs.
const SLACK: Duration = Duration::from_millis(1500);

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    let stream = TcpStream::connect(address).await.expect("the server accepts");
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads until the server closes the connection (EOF or reset), or `max` passes. Returns what
/// was received and when the connection closed, `None` if it stayed open.
async fn read_until_closed(stream: &mut TcpStream, max: Duration) -> (Vec<u8>, Option<Instant>) {
    read_until_closed_from(stream, max).await
}

/// [`read_until_closed`] from any reader (such as the reading half of a split stream).
async fn read_until_closed_from(
    stream: &mut (impl AsyncReadExt + Unpin),
    max: Duration,
) -> (Vec<u8>, Option<Instant>) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + max;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, Some(Instant::now())),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (received, None),
        }
    }
}

/// Reads one response (head and a Content-Length body); returns its status line and body.
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    read_response_from(stream).await
}

/// [`read_response`] from any reader (such as the reading half of a split stream). Reads byte
/// runs as they come, so it may take a part of a next response: only for one response at a time.
async fn read_response_from(stream: &mut (impl AsyncReadExt + Unpin)) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(n > 0, "the connection closed before a response: {:?}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
        })
        .expect("a Content-Length")
        .parse()
        .unwrap();
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the body was cut");
        data.extend_from_slice(&buf[..n]);
    }
    (head.lines().next().unwrap_or_default().to_owned(), data[head_end..].to_vec())
}

/// Feeds `chunks` to the server `every` apart (after `first`) until it closes the connection;
/// returns what the server sent and when it closed (`None`: still open after 10 s).
async fn trickle_until_closed(
    stream: TcpStream,
    first: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    every: Duration,
) -> (Vec<u8>, Option<Instant>) {
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        if writer.write_all(&first).await.is_err() {
            return;
        }
        for chunk in chunks {
            tokio::time::sleep(every).await;
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // Everything sent: stay silent, holding the connection open.
        std::future::pending::<()>().await;
    });
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let closed = loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break Some(Instant::now()),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => break None,
        }
    };
    writing.abort();
    (received, closed)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: quire.test\r\n\r\n")
}

/// A normal request, on its own connection, answers promptly.
async fn assert_still_served(app: &TestApp) {
    let started = Instant::now();
    let response = app.new_browser().get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2), "a normal request took {:?}", started.elapsed());
}

/// A POST head for `path` announcing a form body of `length` bytes.
fn form_head(path: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: quire.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
    )
}

async fn a_refused_body_is_read_so_the_client_gets_the_answer_and_the_connection_goes_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let stream = connect(&app).await;
    let (mut stream_reader, mut writer) = stream.into_split();
    // Over the form limit, so the answer comes before the body is read: the client is still
    // sending it when the 413 is made.
    let length = quire::app::FORM_BODY_LIMIT + 1024 * 1024;
    let mut request = form_head("/login", length).into_bytes();
    request.extend(std::iter::repeat_n(b'x', length));
    let writing = tokio::spawn(async move {
        writer.write_all(&request).await.expect("the whole body is taken");
        writer
    });
    let (status, body) = read_response_from(&mut stream_reader).await;
    assert!(status.contains(" 413 "), "{status}");
    assert!(!body.is_empty(), "the refusal says why");
    let mut writer = tokio::time::timeout(Duration::from_secs(10), writing).await.unwrap().unwrap();
    // The same connection serves the next request.
    writer.write_all(get("/healthz").as_bytes()).await.unwrap();
    let (status, body) = read_response_from(&mut stream_reader).await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, b"ok\n");
    assert_still_served(&app).await;
}

async fn a_refused_body_too_large_to_read_is_answered_and_the_connection_closed(backend: Backend) {
    let app = spawn_app(backend).await;
    let stream = connect(&app).await;
    let (mut reader, mut writer) = stream.into_split();
    // Far more than the front reads and drops after a refusal: the answer closes the connection,
    // and the client, still sending when it was made, reads it all the same.
    let length = usize::try_from(quire::app::DRAIN_MAX).unwrap() * 4;
    let writing = tokio::spawn(async move {
        writer.write_all(form_head("/login", length).as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..length / chunk.len() {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
        writer
    });
    let (received, closed) = read_until_closed_from(&mut reader, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 413 "), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert!(closed.is_some(), "the connection is closed after the answer");
    drop(writing.await);
    assert_still_served(&app).await;
}

async fn a_client_trickling_its_headers_is_closed_after_the_header_timeout(backend: Backend) {
    let app = spawn_with(backend, limits(1000, 10_000, 10_000, 64)).await;
    let stream = connect(&app).await;
    let started = Instant::now();
    let headers = (0..100).map(|i| format!("X-Slow-{i}: a\r\n").into_bytes()).collect();
    let trickled = trickle_until_closed(
        stream,
        b"GET / HTTP/1.1\r\nHost: quire.test\r\n".to_vec(),
        headers,
        Duration::from_millis(150),
    );
    let served_meanwhile = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_still_served(&app).await;
    };
    let ((received, closed), ()) = tokio::join!(trickled, served_meanwhile);
    let closed_after = closed.expect("the trickling connection was closed").duration_since(started);
    assert!(!String::from_utf8_lossy(&received).contains("200 OK"), "the trickled request was served");
    assert!(closed_after >= Duration::from_millis(900), "closed too early: {closed_after:?}");
    assert!(closed_after <= Duration::from_millis(1000) + SLACK, "closed after {closed_after:?}");
}

async fn a_silent_socket_is_closed_after_the_header_timeout(backend: Backend) {
    let app = spawn_with(backend, limits(1000, 10_000, 10_000, 64)).await;
    let mut silent = connect(&app).await;
    let started = Instant::now();
    assert_still_served(&app).await;
    let (received, closed) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    let closed_after = closed.expect("the silent socket was closed").duration_since(started);
    assert!(received.is_empty(), "nothing is sent to a silent socket");
    assert!(closed_after >= Duration::from_millis(900), "closed too early: {closed_after:?}");
    assert!(closed_after <= Duration::from_millis(1000) + SLACK, "closed after {closed_after:?}");
}

async fn a_slow_body_is_answered_408_and_nothing_is_stored(backend: Backend) {
    let app = spawn_with(backend, limits(5000, 10_000, 1000, 64)).await;
    let browser = app.new_browser();
    let token = browser.csrf("/register").await;
    let body = format!(
        "username=slowpoke&password={p}&confirm_password={p}&csrf_token={token}",
        p = PASSWORD.replace(' ', "+")
    );
    let stream = connect(&app).await;
    let head = format!(
        "POST /register HTTP/1.1\r\nHost: quire.test\r\nCookie: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        browser.cookies(),
        body.len()
    );
    let started = Instant::now();
    let chunks = body.as_bytes().chunks(4).map(<[u8]>::to_vec).collect();
    let trickled = trickle_until_closed(stream, head.into_bytes(), chunks, Duration::from_millis(200));
    let served_meanwhile = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_still_served(&app).await;
    };
    let ((received, closed), ()) = tokio::join!(trickled, served_meanwhile);
    let closed_after = closed.expect("the slow body's connection was closed").duration_since(started);
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("took too long"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(closed_after >= Duration::from_millis(900), "closed too early: {closed_after:?}");
    assert!(closed_after <= Duration::from_millis(1000) + SLACK, "closed after {closed_after:?}");
    assert_eq!(app.user_count().await, 0, "nothing was stored");
}

async fn a_body_that_arrives_within_the_timeout_is_served(backend: Backend) {
    let app = spawn_with(backend, limits(5000, 10_000, 3000, 64)).await;
    let browser = app.new_browser();
    let token = browser.csrf("/register").await;
    let body = format!(
        "username=patient&password={p}&confirm_password={p}&csrf_token={token}",
        p = PASSWORD.replace(' ', "+")
    );
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /register HTTP/1.1\r\nHost: quire.test\r\nCookie: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        browser.cookies(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (first, second) = body.as_bytes().split_at(body.len() / 2);
    stream.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream.write_all(second).await.unwrap();
    let (status, _) = read_response(&mut stream).await;
    assert_eq!(status, "HTTP/1.1 303 See Other");
    assert_eq!(app.user_count().await, 1);
}

async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(backend: Backend) {
    // The keep-alive bound (1 s) is well below the header bound (6 s): it is the one that acts.
    let app = spawn_with(backend, limits(6000, 1000, 10_000, 64)).await;
    let mut stream = connect(&app).await;
    stream.write_all(get("/").as_bytes()).await.unwrap();
    let (status, _) = read_response(&mut stream).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    // A request soon after is served on the same connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(get("/login").as_bytes()).await.unwrap();
    let (status, _) = read_response(&mut stream).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let idle_since = Instant::now();
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let closed_after = closed.expect("the idle connection was closed").duration_since(idle_since);
    assert!(received.is_empty());
    assert!(closed_after >= Duration::from_millis(800), "closed too early: {closed_after:?}");
    assert!(closed_after <= Duration::from_millis(1000) + SLACK, "closed after {closed_after:?}");
}

async fn the_next_request_on_a_kept_alive_connection_gets_the_header_timeout(backend: Backend) {
    // Keep-alive 1 s, header 2.5 s: a next request that starts at 0.3 s and then trickles is
    // cut by the header bound counted from its first byte, not by the keep-alive bound.
    let app = spawn_with(backend, limits(2500, 1000, 10_000, 64)).await;
    let mut stream = connect(&app).await;
    stream.write_all(get("/").as_bytes()).await.unwrap();
    read_response(&mut stream).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first_byte = Instant::now();
    let mut bytes = b"GET / HTTP/1.1\r\nHost: quire.test\r\nX-Slow: ".iter().map(|b| vec![*b]);
    let first = bytes.next().unwrap_or_default();
    let chunks = bytes.chain(std::iter::repeat_n(b"a".to_vec(), 100)).collect();
    let (received, closed) = trickle_until_closed(stream, first, chunks, Duration::from_millis(100)).await;
    assert!(received.is_empty(), "the trickled request was answered");
    let closed = closed.expect("the connection was closed");
    let closed_after = closed.duration_since(first_byte);
    assert!(
        closed_after >= Duration::from_millis(2000),
        "the keep-alive bound cut a request: {closed_after:?}"
    );
    assert!(closed_after <= Duration::from_millis(2500) + SLACK, "closed after {closed_after:?}");
}

async fn past_the_connection_cap_idle_connections_make_room_for_a_request(backend: Backend) {
    let cap = 16;
    let app = spawn_with(backend, limits(30_000, 30_000, 30_000, cap)).await;
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(connect(&app).await);
    }
    // Connections are accepted in order; the first ones to arrive are the first evicted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let response = app.new_browser().get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(3), "the request waited {:?}", started.elapsed());
    let mut closed = 0;
    for stream in &mut idle {
        if read_until_closed(stream, Duration::from_millis(50)).await.1.is_some() {
            closed += 1;
        }
    }
    assert!(closed >= 60 - cap, "only {closed} of 60 idle sockets were closed with a cap of {cap}");
    assert!(closed < 60, "the newest idle sockets stay open: {closed} closed");
}

async fn when_every_connection_is_busy_new_ones_wait_for_a_slot(backend: Backend) {
    // Cap 2, both slots held by requests whose bodies trickle: a third client waits until the
    // body timeout frees a slot; the busy requests are not cut to make room.
    let app = spawn_with(backend, limits(5000, 5000, 2000, 2)).await;
    let head = "POST /login HTTP/1.1\r\nHost: quire.test\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=";
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&app).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        busy.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let waiting = tokio::spawn({
        let browser = app.new_browser();
        async move { browser.get("/").await.status() }
    });
    let mut answers = Vec::new();
    for stream in &mut busy {
        let (received, closed) = read_until_closed(stream, Duration::from_secs(6)).await;
        assert!(closed.is_some(), "the slow body was closed");
        answers.push(String::from_utf8_lossy(&received).into_owned());
    }
    assert_eq!(waiting.await.unwrap(), StatusCode::OK);
    let waited = started.elapsed();
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 408"), "a busy connection was cut: {answer:?}");
    }
    assert!(waited >= Duration::from_millis(1500), "served before a slot was free: {waited:?}");
    assert!(waited <= Duration::from_millis(2000) + SLACK, "waited {waited:?}");
}

async fn stopping_closes_idle_connections_at_once(backend: Backend) {
    let mut app = spawn_with(backend, limits(30_000, 30_000, 30_000, 64)).await;
    let mut silent = connect(&app).await;
    let mut kept_alive = connect(&app).await;
    kept_alive.write_all(get("/").as_bytes()).await.unwrap();
    read_response(&mut kept_alive).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), app.stop()).await.expect("the server stopped");
    assert!(started.elapsed() < Duration::from_secs(2), "stopping took {:?}", started.elapsed());
    for stream in [&mut silent, &mut kept_alive] {
        assert!(read_until_closed(stream, Duration::from_secs(1)).await.1.is_some(), "left open");
    }
}

crate::tests![
    a_client_trickling_its_headers_is_closed_after_the_header_timeout,
    a_silent_socket_is_closed_after_the_header_timeout,
    a_refused_body_is_read_so_the_client_gets_the_answer_and_the_connection_goes_on,
    a_refused_body_too_large_to_read_is_answered_and_the_connection_closed,
    a_slow_body_is_answered_408_and_nothing_is_stored,
    a_body_that_arrives_within_the_timeout_is_served,
    an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout,
    the_next_request_on_a_kept_alive_connection_gets_the_header_timeout,
    past_the_connection_cap_idle_connections_make_room_for_a_request,
    when_every_connection_is_busy_new_ones_wait_for_a_slot,
    stopping_closes_idle_connections_at_once,
];
