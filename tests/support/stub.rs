//! A loopback stand-in registry for the faults a real one does not make:
//! wrong statuses, throttling, replies cut short or longer than announced,
//! connections dropped mid-upload, odd auth challenges.
//!
//! Each connection is served on its own thread, one request per connection
//! (`Connection: close`). The handler sees the request and how many times
//! the same method and path came before, so "fail twice, then answer" is
//! one line. Every request line is logged with its `Authorization` header
//! as `METHOD PATH HTTP/1.1 | AUTH` (empty when none was sent), which is how
//! tests check where credentials went. Used by the registry client's unit
//! tests and by `tests/cli/registry_faults.rs`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request as the stand-in saw it.
pub struct Request {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The `Authorization` header, as sent (empty when none).
    pub auth: String,
}

/// What the stand-in answers.
pub enum Reply {
    /// Status, extra header lines (each ending in `\r\n`), body.
    Full(u16, String, Vec<u8>),
    /// A whole HTTP response, written as it is.
    Raw(String),
    /// Announce the whole body, send only its first `n` bytes, close.
    Truncated(Vec<u8>, usize),
    /// The body in chunked encoding (no `Content-Length`).
    Chunked(Vec<u8>),
    /// Read `n` bytes of the request body, then close without a reply.
    Hangup(usize),
}

/// `200 OK` with `body`.
pub fn ok(body: &[u8]) -> Reply {
    Reply::Full(200, String::new(), body.to_vec())
}

/// The handler: the request and how many times its method and path came
/// before.
pub type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A running stand-in; it lives as long as the test process.
pub struct Stub {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Every request line with its `Authorization` header.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    /// Serve every request with `handler`.
    pub fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let host = listener.local_addr().expect("local address").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let l = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, l) = (handler.clone(), l.clone());
                std::thread::spawn(move || serve_one(stream, &*h, &l));
            }
        });
        Stub { host, log }
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

    /// The requests so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Read one request (line, headers, `Content-Length` body), log it, answer.
fn serve_one(mut stream: TcpStream, handler: &Handler, log: &Mutex<Vec<String>>) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let (mut auth, mut len) = (String::new(), 0usize);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((&h, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" => auth = value.trim().to_string(),
            "content-length" => len = value.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut parts = first.split_whitespace();
    let req = Request {
        method: parts.next().unwrap_or("").to_string(),
        path: parts.next().unwrap_or("").to_string(),
        auth,
    };
    let nth = {
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{} {} ", req.method, req.path);
        let n = log.iter().filter(|l| l.starts_with(&key)).count();
        log.push(format!("{} | {}", first.trim(), req.auth));
        n
    };
    let reply = handler(&req, nth);
    let mut body = vec![0u8; len];
    if let Reply::Hangup(n) = reply {
        let _ = reader.read_exact(&mut body[..n.min(len)]);
        return;
    }
    let _ = reader.read_exact(&mut body);
    let _ = stream.write_all(&render(reply));
}

fn render(reply: Reply) -> Vec<u8> {
    let head = |status: u16, extra: &str, len: Option<usize>| {
        let len = len.map_or("Transfer-Encoding: chunked\r\n".to_string(), |n| {
            format!("Content-Length: {n}\r\n")
        });
        format!("HTTP/1.1 {status} Stub\r\n{extra}{len}Connection: close\r\n\r\n").into_bytes()
    };
    match reply {
        Reply::Full(status, extra, body) => [head(status, &extra, Some(body.len())), body].concat(),
        Reply::Raw(text) => text.into_bytes(),
        Reply::Truncated(body, n) => [head(200, "", Some(body.len())), body[..n].to_vec()].concat(),
        Reply::Chunked(body) => {
            let mut out = head(200, "", None);
            for c in body.chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend_from_slice(c);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        Reply::Hangup(_) => Vec::new(),
    }
}
