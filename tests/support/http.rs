//! The one loopback HTTP/1.1 server of the tests, for what real servers do
//! not do on cue: wrong statuses, throttling, replies cut short, stalled or
//! longer than announced, connections dropped mid-upload, odd auth
//! challenges, redirects, huge streamed bodies, conditional answers.
//!
//! Two ways to drive it:
//! - [`Stub`]: a handler sees each request and how many times the same
//!   method and path came before ("fail twice, then answer" is one line);
//!   used by the registry client's unit tests and `tests/cli/registry_faults.rs`;
//! - [`Server`]: a table of routes, a path listed several times answering
//!   with its replies in turn; used by the download and feed tests.
//!
//! Each connection is served on its own thread, one request per connection
//! (`Connection: close`). Every request is recorded with its headers and the
//! status answered; [`Stub::log`] gives each as `METHOD PATH HTTP/1.1 |
//! AUTH` (empty when no `Authorization` was sent), which is how tests check
//! where credentials went.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// The `Authorization` header, as sent (empty when none).
    pub auth: String,
    /// Header lines, lowercased names: `name: value`.
    pub headers: Vec<(String, String)>,
    /// The status answered (0 while the handler runs, and when the
    /// connection is dropped unanswered).
    pub status: u16,
    /// The request line.
    line: String,
}

impl Request {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with the whole body.
    Full(Vec<u8>),
    /// Status, extra header lines (each ending in `\r\n`), body.
    Status(u16, String, Vec<u8>),
    /// A whole HTTP response, written as it is.
    Raw(String),
    /// 200 announcing the whole body, then only its first `n` bytes; close.
    Truncated(Vec<u8>, usize),
    /// 200 announcing the whole body, its first `n` bytes, then silence for
    /// a minute with the connection open.
    Stall(Vec<u8>, usize),
    /// The body in chunked encoding (no `Content-Length`).
    Chunked(Vec<u8>),
    /// 200 with this many bytes streamed, no `Content-Length`.
    Huge(usize),
    /// 200 with `ETag` and `Last-Modified`; 304 when the request's
    /// `If-None-Match` names the tag.
    Tagged(Vec<u8>, &'static str),
    /// 302 to the given location.
    Redirect(String),
    /// Read `n` bytes of the request body, then close without a reply.
    Hangup(usize),
}

/// `200 OK` with `body`.
pub fn ok(body: &[u8]) -> Reply {
    Reply::Full(body.to_vec())
}

impl Reply {
    /// The status this reply gives `req` (0: none).
    fn status(&self, req: &Request) -> u16 {
        match self {
            Reply::Status(s, _, _) => *s,
            Reply::Raw(text) => text
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            Reply::Tagged(_, tag) if req.header("if-none-match") == Some(*tag) => 304,
            Reply::Redirect(_) => 302,
            Reply::Hangup(_) => 0,
            _ => 200,
        }
    }
}

/// The handler: the request and how many times its method and path came
/// before.
pub type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A running server; it lives as long as the test process.
pub struct Stub {
    /// `127.0.0.1:PORT`.
    pub host: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    /// Serve every request with `handler`.
    pub fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let host = listener.local_addr().expect("local address").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, seen) = (handler.clone(), seen.clone());
                std::thread::spawn(move || serve_one(stream, &*h, &seen));
            }
        });
        Stub { host, requests }
    }

    /// Answer the n-th request with `responses[n]` (whole HTTP responses);
    /// requests past the end are dropped unanswered.
    pub fn script(responses: Vec<String>) -> Stub {
        let next = AtomicUsize::new(0);
        Stub::start(
            move |_, _| match responses.get(next.fetch_add(1, Ordering::SeqCst)) {
                Some(r) => Reply::Raw(r.clone()),
                None => Reply::Hangup(0),
            },
        )
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every request line so far with its `Authorization` header.
    pub fn log(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} | {}", r.line, r.auth))
            .collect()
    }
}

/// A server answering from a table of routes; 404 for any other path.
pub struct Server {
    stub: Stub,
    routes: Arc<Mutex<Vec<(String, Reply)>>>,
}

impl Server {
    /// Serve `routes`; a path listed several times answers with its replies
    /// in turn (the last one repeats).
    pub fn start<S: Into<String>>(routes: Vec<(S, Reply)>) -> Server {
        let routes = Arc::new(Mutex::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.into(), r))
                .collect::<Vec<_>>(),
        ));
        let table = routes.clone();
        let stub = Stub::start(move |req, _| {
            let mut routes = table.lock().unwrap_or_else(|e| e.into_inner());
            let matching: Vec<usize> = (0..routes.len())
                .filter(|&i| routes[i].0 == req.path)
                .collect();
            match matching.as_slice() {
                [] => Reply::Status(404, String::new(), Vec::new()),
                [only] => routes[*only].1.clone(),
                [first, ..] => routes.remove(*first).1,
            }
        });
        Server { stub, routes }
    }

    /// Add a route while running.
    pub fn route(&self, path: impl Into<String>, reply: Reply) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((path.into(), reply));
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.stub.host)
    }

    /// The paths asked for, in order.
    pub fn hits(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }

    /// Every request, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.stub.requests()
    }
}

/// The request line and headers; `None` when the peer sent nothing.
fn read_head(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut parts = line.split_whitespace();
    let mut req = Request {
        method: parts.next().unwrap_or("").to_string(),
        path: parts.next().unwrap_or("").to_string(),
        auth: String::new(),
        headers,
        status: 0,
        line: line.trim().to_string(),
    };
    req.auth = req.header("authorization").unwrap_or("").to_string();
    Some(req)
}

/// Read one request (line, headers, `Content-Length` body), answer, record.
fn serve_one(mut stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Request>>) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let Some(mut req) = read_head(&mut reader) else {
        return;
    };
    // Recorded before the handler runs (which may stall), its status after.
    let (nth, index) = {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let nth = seen
            .iter()
            .filter(|r| r.method == req.method && r.path == req.path)
            .count();
        seen.push(req.clone());
        (nth, seen.len() - 1)
    };
    let reply = handler(&req, nth);
    req.status = reply.status(&req);
    seen.lock().unwrap_or_else(|e| e.into_inner())[index].status = req.status;
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if let Reply::Hangup(n) = reply {
        let _ = reader.read_exact(&mut body[..n.min(len)]);
        return;
    }
    let _ = reader.read_exact(&mut body);
    let _ = send(&mut stream, reply, &req);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn head(status: u16, extra: &str, len: Option<usize>) -> String {
    let reason = match status {
        200 => "OK",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        _ => "Status",
    };
    let len = len.map_or("Transfer-Encoding: chunked\r\n".to_string(), |n| {
        format!("Content-Length: {n}\r\n")
    });
    format!("HTTP/1.1 {status} {reason}\r\n{extra}{len}Connection: close\r\n\r\n")
}

/// A whole reply with its length.
fn whole(stream: &mut TcpStream, status: u16, extra: &str, body: &[u8]) -> std::io::Result<()> {
    stream.write_all(head(status, extra, Some(body.len())).as_bytes())?;
    stream.write_all(body)
}

fn send(stream: &mut TcpStream, reply: Reply, req: &Request) -> std::io::Result<()> {
    match reply {
        Reply::Full(body) => whole(stream, 200, "", &body),
        Reply::Status(status, extra, body) => whole(stream, status, &extra, &body),
        Reply::Raw(text) => stream.write_all(text.as_bytes()),
        Reply::Truncated(body, n) => {
            stream.write_all(head(200, "", Some(body.len())).as_bytes())?;
            stream.write_all(&body[..n])
        }
        Reply::Stall(body, n) => {
            stream.write_all(head(200, "", Some(body.len())).as_bytes())?;
            stream.write_all(&body[..n])?;
            stream.flush()?;
            std::thread::sleep(std::time::Duration::from_secs(60));
            Ok(())
        }
        Reply::Chunked(body) => {
            stream.write_all(head(200, "", None).as_bytes())?;
            for c in body.chunks(1000) {
                write!(stream, "{:x}\r\n", c.len())?;
                stream.write_all(c)?;
                stream.write_all(b"\r\n")?;
            }
            stream.write_all(b"0\r\n\r\n")
        }
        Reply::Huge(len) => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![b'<'; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len());
                stream.write_all(&chunk[..n])?;
                left -= n;
            }
            Ok(())
        }
        Reply::Tagged(_, tag) if req.status == 304 => {
            whole(stream, 304, &format!("ETag: {tag}\r\n"), &[])
        }
        Reply::Tagged(body, tag) => {
            let extra = format!("ETag: {tag}\r\nLast-Modified: Sun, 29 Nov 2026 08:00:00 GMT\r\n");
            whole(stream, 200, &extra, &body)
        }
        Reply::Redirect(to) => whole(stream, 302, &format!("Location: {to}\r\n"), &[]),
        Reply::Hangup(_) => Ok(()),
    }
}
