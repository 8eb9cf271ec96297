//! A small HTTP/1.1 file server on a loopback port, with ways to misbehave. It serves
//! GET and HEAD with `Range: bytes=N-` / `bytes=N-M` (206 + `Content-Range`), sends no
//! ETag (as many plain servers), and records every request.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// How the server treats requests.
#[derive(Debug, Clone, Copy)]
pub enum Behavior {
    /// Serves every request.
    Plain,
    /// Sends at most this many bytes of each body, then closes the connection (the
    /// headers promise the whole range).
    DropAfter(usize),
    /// Answers the first N requests for each path with 503.
    Unavailable(usize),
}

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    /// Paths whose every answer closes before the first body byte.
    broken: Vec<String>,
    /// Per path: (start of the requested range, status sent).
    log: HashMap<String, Vec<(u64, u16)>>,
}

/// The server; it stops when the test process ends.
pub struct HttpServer {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
}

impl HttpServer {
    /// Starts on a free port of 127.0.0.1.
    pub fn start(behavior: Behavior) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &state, behavior);
                });
            }
        });
        HttpServer { addr, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `bytes` at `path`.
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), bytes);
    }

    /// A path that exists (1000 bytes promised) but always breaks before the body.
    pub fn put_broken(&self, path: &str) {
        let mut s = self.state.lock().unwrap();
        s.files.insert(path.to_string(), vec![0; 1000]);
        s.broken.push(path.to_string());
    }

    /// Starts of the ranges asked for at `path`, in order (0 for a whole-file GET).
    pub fn range_starts(&self, path: &str) -> Vec<u64> {
        let s = self.state.lock().unwrap();
        s.log
            .get(path)
            .map(|v| v.iter().map(|r| r.0).collect())
            .unwrap_or_default()
    }

    /// Statuses sent for `path`, in order.
    pub fn statuses(&self, path: &str) -> Vec<u16> {
        let s = self.state.lock().unwrap();
        s.log
            .get(path)
            .map(|v| v.iter().map(|r| r.1).collect())
            .unwrap_or_default()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, behavior: Behavior) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut range: Option<(u64, Option<u64>)> = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.trim().eq_ignore_ascii_case("range")
                && let Some(spec) = v.trim().strip_prefix("bytes=")
                && let Some((a, b)) = spec.split_once('-')
            {
                range = Some((a.parse().unwrap_or(0), b.parse().ok()));
            }
        }
        let (body, status, broken) = {
            let mut s = state.lock().unwrap();
            let broken = s.broken.contains(&path);
            let file = s.files.get(&path).cloned();
            let earlier = s.log.get(&path).map_or(0, Vec::len);
            let status = match (&file, behavior) {
                (None, _) => 404,
                (Some(_), Behavior::Unavailable(n)) if earlier < n => 503,
                (Some(_), _) if range.is_some() => 206,
                _ => 200,
            };
            s.log
                .entry(path.clone())
                .or_default()
                .push((range.map_or(0, |r| r.0), status));
            (file, status, broken)
        };
        let (head, payload): (String, &[u8]) = match (status, &body) {
            (200, Some(b)) => (
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n",
                    b.len()
                ),
                b.as_slice(),
            ),
            (206, Some(b)) => {
                let (start, end) = range.unwrap();
                let end = end.map_or(b.len() as u64, |e| (e + 1).min(b.len() as u64));
                let start = start.min(end);
                (
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\n",
                        end - start,
                        start,
                        end.saturating_sub(1),
                        b.len()
                    ),
                    &b[start as usize..end as usize],
                )
            }
            (503, _) => (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n".to_string(),
                &[],
            ),
            _ => (
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".to_string(),
                &[],
            ),
        };
        out.write_all(head.as_bytes())?;
        out.write_all(b"Content-Type: application/octet-stream\r\n\r\n")?;
        if method == "HEAD" {
            continue;
        }
        if broken && !payload.is_empty() {
            return Ok(()); // Closes with the whole body owed.
        }
        match behavior {
            Behavior::DropAfter(n) if payload.len() > n => {
                out.write_all(&payload[..n])?;
                out.flush()?;
                return Ok(());
            }
            _ => out.write_all(payload)?,
        }
        out.flush()?;
    }
}
