//! `wasi:cli` stdout and stderr: captured in memory and bounded. Writing past the bound stops the
//! call with "output too large" instead of silently losing output or growing without limit.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Which captured stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamName {
    /// The tool's stdout.
    Stdout,
    /// The tool's stderr.
    Stderr,
}

/// Raised inside the guest when a stream's bound is passed.
#[derive(Debug, thiserror::Error)]
#[error("{stream:?} passed its limit of {limit} bytes")]
pub struct OutputLimitExceeded {
    /// The stream that overflowed.
    pub stream: StreamName,
    /// Its bound in bytes.
    pub limit: usize,
}

#[derive(Debug)]
struct Buffer {
    bytes: Vec<u8>,
    overflowed: bool,
}

/// A bounded in-memory stdout or stderr, shared between the store and the host.
#[derive(Clone, Debug)]
pub struct Capture {
    stream: StreamName,
    limit: usize,
    buffer: Arc<Mutex<Buffer>>,
}

impl Capture {
    /// An empty capture of `stream` holding at most `limit` bytes.
    pub fn new(stream: StreamName, limit: usize) -> Self {
        Self {
            stream,
            limit,
            buffer: Arc::new(Mutex::new(Buffer {
                bytes: Vec::new(),
                overflowed: false,
            })),
        }
    }

    /// What was written, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// Whether the tool tried to write past the bound.
    pub fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// The stream's name.
    pub fn stream(&self) -> StreamName {
        self.stream
    }

    /// The stream's bound in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, data: &[u8]) -> Result<(), OutputLimitExceeded> {
        let mut buffer = self.lock();
        if buffer.bytes.len() + data.len() > self.limit {
            buffer.overflowed = true;
            return Err(OutputLimitExceeded {
                stream: self.stream,
                limit: self.limit,
            });
        }
        buffer.bytes.extend_from_slice(data);
        Ok(())
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Never report zero: a full stream must fail the next write loudly, not block forever.
        Ok(self.limit.saturating_sub(self.lock().bytes.len()).max(1))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.append(buf)
                .map(|()| buf.len())
                .map_err(io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
