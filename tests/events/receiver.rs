//! A minimal CloudEvents HTTP receiver on 127.0.0.1 for the sink tests: HTTP/1.1 with
//! keep-alive and Content-Length bodies, answering a status the test sets, recording
//! every request it acknowledged with 2xx.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub content_type: String,
    pub body: Vec<u8>,
}

pub struct Receiver {
    pub port: u16,
    accepted: Arc<Mutex<Vec<Request>>>,
    requests: Arc<AtomicU16>,
    status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A port nothing listens on (for now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Receiver {
    pub fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU16::new(0));
        let (a, s, st, n) = (
            accepted.clone(),
            status.clone(),
            stop.clone(),
            requests.clone(),
        );
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (a, s, n) = (a.clone(), s.clone(), n.clone());
                std::thread::spawn(move || serve(conn, &a, &s, &n));
            }
        });
        Self {
            port,
            accepted,
            requests,
            status,
            stop,
            thread: Some(thread),
        }
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests received, whatever the answer.
    pub fn requests(&self) -> u16 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> Vec<Request> {
        self.accepted.lock().unwrap().clone()
    }

    /// The ids of the accepted events, in arrival order.
    pub fn ids(&self) -> Vec<String> {
        self.accepted()
            .iter()
            .map(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    accepted: &Mutex<Vec<Request>>,
    status: &AtomicU16,
    requests: &AtomicU16,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let code = status.load(Ordering::SeqCst);
        if (200..300).contains(&code) {
            accepted
                .lock()
                .unwrap()
                .push(Request { content_type, body });
        }
        let reply = if code == 429 || code == 503 {
            format!("HTTP/1.1 {code} Nope\r\ncontent-length: 4\r\nretry-after: 0\r\n\r\nbusy")
        } else {
            format!("HTTP/1.1 {code} X\r\ncontent-length: 7\r\n\r\nrefused")
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
