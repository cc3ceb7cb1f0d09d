//! A tiny HTTP/1.1 server on 127.0.0.1 for tests: fixed routes, recorded
//! requests (path and headers), and the misbehaviours tests need (cut and
//! stalled bodies, redirects, huge streamed bodies, conditional answers).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// What the server answers for one path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with the whole body.
    Full(Vec<u8>),
    /// 200 announcing the whole body's length, then the connection is closed
    /// after `send` bytes.
    Cut(Vec<u8>, usize),
    /// 200 announcing the whole body's length, `send` bytes, then silence for
    /// a minute with the connection open.
    Stall(Vec<u8>, usize),
    /// 200 with `ETag` and `Last-Modified`; 304 when the request's
    /// `If-None-Match` names the tag.
    Tagged(Vec<u8>, &'static str),
    /// 302 to the given location.
    Redirect(String),
    /// 200 with this many bytes streamed, no `Content-Length`.
    Huge(usize),
    /// This status with an empty body.
    Status(u16),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request target (path and query).
    pub path: String,
    /// Header lines, lowercased names: `name: value`.
    pub headers: Vec<(String, String)>,
    /// The status answered.
    pub status: u16,
}

type Routes = Arc<Mutex<Vec<(String, Reply)>>>;

/// The server; it lives until the test process ends.
pub struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    routes: Routes,
}

impl Server {
    /// Serve `routes`; a path listed several times answers with its replies
    /// in turn (the last one repeats).
    pub fn start<S: Into<String>>(routes: Vec<(S, Reply)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let routes: Routes = Arc::new(Mutex::new(
            routes.into_iter().map(|(p, r)| (p.into(), r)).collect(),
        ));
        let r2 = routes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen.clone();
                let routes = r2.clone();
                std::thread::spawn(move || answer(stream, &seen, &routes));
            }
        });
        Server {
            port,
            requests,
            routes,
        }
    }

    /// Add a route while running.
    pub fn route(&self, path: impl Into<String>, reply: Reply) {
        self.routes.lock().unwrap().push((path.into(), reply));
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The paths asked for, in order.
    pub fn hits(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }

    /// Every request, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<(String, Vec<(String, String)>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request = String::new();
    reader.read_line(&mut request).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some((request.split(' ').nth(1).unwrap_or("").to_string(), headers))
}

fn answer(mut stream: std::net::TcpStream, seen: &Mutex<Vec<Request>>, routes: &Routes) {
    let Some((path, headers)) = read_request(&stream) else {
        return;
    };
    let reply = {
        let mut routes = routes.lock().unwrap();
        let matching: Vec<usize> = (0..routes.len()).filter(|&i| routes[i].0 == path).collect();
        match matching.as_slice() {
            [] => None,
            [only] => Some(routes[*only].1.clone()),
            [first, ..] => Some(routes.remove(*first).1),
        }
    };
    let if_none_match = headers
        .iter()
        .find(|(k, _)| k == "if-none-match")
        .map(|(_, v)| v.clone());
    let status = match &reply {
        Some(Reply::Tagged(_, tag)) if if_none_match.as_deref() == Some(*tag) => 304,
        Some(Reply::Redirect(_)) => 302,
        Some(Reply::Status(s)) => *s,
        Some(_) => 200,
        None => 404,
    };
    seen.lock().unwrap().push(Request {
        path,
        headers,
        status,
    });
    let _ = send(&mut stream, reply, status);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn send(
    stream: &mut std::net::TcpStream,
    reply: Option<Reply>,
    status: u16,
) -> std::io::Result<()> {
    match reply {
        Some(Reply::Full(body)) => {
            stream.write_all(header(200, body.len()).as_bytes())?;
            stream.write_all(&body)
        }
        Some(Reply::Cut(body, send)) => {
            stream.write_all(header(200, body.len()).as_bytes())?;
            stream.write_all(&body[..send])
        }
        Some(Reply::Stall(body, send)) => {
            stream.write_all(header(200, body.len()).as_bytes())?;
            stream.write_all(&body[..send])?;
            stream.flush()?;
            std::thread::sleep(std::time::Duration::from_secs(60));
            Ok(())
        }
        Some(Reply::Tagged(_, tag)) if status == 304 => write!(
            stream,
            "HTTP/1.1 304 Not Modified\r\nETag: {tag}\r\nConnection: close\r\n\r\n"
        ),
        Some(Reply::Tagged(body, tag)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {tag}\r\nLast-Modified: Sun, 29 Nov 2026 08:00:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        Some(Reply::Redirect(to)) => write!(
            stream,
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Some(Reply::Huge(len)) => {
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
        Some(Reply::Status(s)) => stream.write_all(header(s, 0).as_bytes()),
        None => stream.write_all(header(404, 0).as_bytes()),
    }
}

fn header(status: u16, len: usize) -> String {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Status",
    };
    format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
}
