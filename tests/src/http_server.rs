//! A loopback HTTP/1.1 server for the HTTP capability tests. It counts every TCP connection that
//! reaches it (so a test can prove a refused request never connected), keeps the raw head of each
//! request it read, and answers each with bytes from the test's responder.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// The request line and headers, exactly as sent.
    pub head: String,
    /// The body (read by `Content-Length`).
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The request line, e.g. `GET /path HTTP/1.1`.
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
}

/// Writes the answer to one request onto its connection.
type Responder = dyn Fn(&ReceivedRequest, &mut TcpStream) + Send + Sync;

/// A running loopback server; it stops accepting when dropped with the test process.
pub struct HttpServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<ReceivedRequest>>>,
}

impl HttpServer {
    /// Starts a server on `127.0.0.1` whose answer to each request is `respond(request)`.
    pub fn start(respond: impl Fn(&ReceivedRequest) -> Vec<u8> + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0", respond)
    }

    /// Starts a server on `bind` (such as `[::1]:0`).
    pub fn start_on(
        bind: &str,
        respond: impl Fn(&ReceivedRequest) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        Self::streaming_on(bind, move |request, stream| {
            let _ = stream.write_all(&respond(request));
        })
    }

    /// Starts a server on `127.0.0.1` that writes its answer to each request itself (slowly, in
    /// pieces, or not at all).
    pub fn streaming(
        respond: impl Fn(&ReceivedRequest, &mut TcpStream) + Send + Sync + 'static,
    ) -> Self {
        Self::streaming_on("127.0.0.1:0", respond)
    }

    fn streaming_on(
        bind: &str,
        respond: impl Fn(&ReceivedRequest, &mut TcpStream) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(bind).expect("binding a loopback port");
        let addr = listener.local_addr().expect("local address");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Responder> = Arc::new(respond);
        let (count, seen) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let (respond, seen) = (respond.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &*respond, &seen));
            }
        });
        Self {
            addr,
            connections,
            requests,
        }
    }

    /// A server that answers every request with `200 OK` and `body`.
    pub fn ok(body: &'static str) -> Self {
        Self::start(move |_| response(200, &[], body.as_bytes()))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// TCP connections that reached it so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The requests it read so far.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// A complete response with `Content-Length` and `Connection: close`.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A response whose body is sent chunked, without a declared length.
pub fn chunked_response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
            .into_bytes();
    for chunk in body.chunks(16 << 10) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn serve(mut stream: TcpStream, respond: &Responder, seen: &Mutex<Vec<ReceivedRequest>>) {
    let mut reader = BufReader::new(&stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut request = ReceivedRequest {
        head,
        body: Vec::new(),
    };
    let length = request
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    request.body.resize(length, 0);
    if reader.read_exact(&mut request.body).is_err() {
        return;
    }
    seen.lock().unwrap().push(request.clone());
    respond(&request, &mut stream);
}
