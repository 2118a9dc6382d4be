//! Sending an allowed request: connect to the address that was checked (never a second lookup),
//! TLS for `https`, then one HTTP/1.1 exchange with capped headers and bodies, the host's secret
//! header added, and any echo of the secret redacted before the tool reads the response.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use tokio::net::TcpStream;
use url::Host;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

use super::check::Allowed;
use crate::capabilities::Capability;
use crate::capabilities::denials::DenialLog;
use crate::policy::{HttpLimits, HttpScheme, Secret};

/// What replaces the secret wherever a server echoes it.
const REDACTED: &[u8] = b"[redacted]";

/// A future that drives the connection after the response head arrived.
pub(super) type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// The timeouts of one exchange: the tool's request options, capped by the grant's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

impl Timeouts {
    /// The tool's `options`, each capped at `limit`.
    pub fn capped(options: Option<wasmtime_wasi_http::RequestOptions>, limit: Duration) -> Self {
        let cap = |asked: Option<Duration>| asked.map_or(limit, |d| d.min(limit));
        let options = options.unwrap_or_default();
        Self {
            connect: cap(options.connect_timeout),
            first_byte: cap(options.first_byte_timeout),
            between_bytes: cap(options.between_bytes_timeout).max(Duration::from_nanos(1)),
        }
    }
}

/// The secret of a request's origin, and where to record what redacting it dropped.
pub(super) struct Redaction {
    /// The secret to add to the request and to redact from the response.
    pub secret: Secret,
    /// The call's denial log.
    pub denials: DenialLog,
    /// The request, as denial records name it.
    pub request: String,
}

/// Sends `request` to `addrs` (tried in order) as `allowed` says, within `limits`.
pub(super) async fn send(
    allowed: Allowed,
    addrs: Vec<SocketAddr>,
    request: Request<WasiBody>,
    timeouts: Timeouts,
    limits: HttpLimits,
    redaction: Option<Redaction>,
) -> Result<(Response<WasiBody>, IoFuture), Error> {
    let tcp = connect(&addrs, timeouts.connect).await?;
    let stream: Box<dyn Stream> = match allowed.grant.origin.scheme {
        HttpScheme::Http => Box::new(tcp),
        HttpScheme::Https => {
            let name = server_name(&allowed.grant.origin.host)?;
            let connector = tokio_rustls::TlsConnector::from(crate::tls::client_config());
            let tls = tokio::time::timeout(timeouts.connect, connector.connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            Box::new(tls)
        }
    };
    let header_limit = limits.headers.as_usize();
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(header_limit)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_error(e, header_limit))?;

    let request = prepare(
        request,
        &allowed,
        redaction.as_ref().map(|r| &r.secret),
        limits,
    )?;
    let send = async {
        tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(|e| hyper_error(e, header_limit))
    };
    let mut send = std::pin::pin!(send);
    let mut conn = Some(conn);
    // Drive the connection until the response head arrives; the rest of it is the I/O future.
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = send.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        let Some(driver) = conn.as_mut() else {
            return Poll::Pending;
        };
        let done = ready!(Pin::new(driver).poll(cx));
        conn = None;
        match done {
            Ok(()) => send.as_mut().poll(cx),
            Err(e) => Poll::Ready(Err(hyper_error(e, header_limit))),
        }
    })
    .await?;

    let response = receive(response, limits, timeouts, redaction)?;
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(conn) => conn.await.map_err(Error::from),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let mut last = Error::DestinationNotFound;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

fn server_name(host: &Host<String>) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    use rustls::pki_types::ServerName;
    Ok(match host {
        Host::Domain(domain) => ServerName::try_from(domain.clone())?,
        Host::Ipv4(ip) => ServerName::from(std::net::IpAddr::V4(*ip)),
        Host::Ipv6(ip) => ServerName::from(std::net::IpAddr::V6(*ip)),
    })
}

/// Puts `request` in wire form: origin-form URI from the checked URL, the `Host` the grant
/// names (never the tool's spelling of it), the secret header for an origin that has one, and a
/// capped body.
fn prepare(
    request: Request<WasiBody>,
    allowed: &Allowed,
    secret: Option<&Secret>,
    limits: HttpLimits,
) -> Result<Request<WasiBody>, Error> {
    let (mut parts, body) = request.into_parts();
    parts.uri = allowed
        .path_and_query()
        .parse()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let authority = HeaderValue::from_str(&allowed.grant.origin.authority())
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    parts.headers.insert(http::header::HOST, authority);
    if let Some(secret) = secret {
        parts
            .headers
            .insert(secret.header.clone(), secret.value.header_value());
    }
    let cap = limits.request_body.as_usize();
    let body = Limited::new(body, cap)
        .map_err(move |e| match e.downcast::<Error>() {
            Ok(inner) => *inner,
            Err(_) => Error::HttpRequestBodySize(Some(cap as u64)),
        })
        .boxed_unsync();
    Ok(Request::from_parts(parts, body))
}

/// Checks the response head against the caps and wraps its body.
fn receive(
    response: Response<hyper::body::Incoming>,
    limits: HttpLimits,
    timeouts: Timeouts,
    redaction: Option<Redaction>,
) -> Result<Response<WasiBody>, Error> {
    let header_bytes: usize = response
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > limits.headers.as_usize() {
        return Err(Error::HttpResponseHeaderSectionSize(
            u32::try_from(limits.headers.0).ok(),
        ));
    }
    let cap = limits.response_body.0;
    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(Error::HttpResponseBodySize(Some(cap)));
    }
    let (mut parts, incoming) = response.into_parts();
    let redactor = redaction.map(Redactor::new);
    if let Some(redactor) = &redactor {
        redactor.headers(&mut parts.headers);
        // Redaction can change the body's length.
        parts.headers.remove(http::header::CONTENT_LENGTH);
    }
    let mut between = tokio::time::interval(timeouts.between_bytes);
    between.reset();
    let body = ResponseBody {
        incoming,
        between,
        left: cap,
        cap,
        redactor,
        trailers: None,
    };
    Ok(Response::from_parts(parts, body.boxed_unsync()))
}

/// Names a hyper failure; a request body refused by its cap stays that refusal.
fn hyper_error(e: hyper::Error, header_limit: usize) -> Error {
    let refused_body = std::error::Error::source(&e)
        .and_then(|cause| cause.downcast_ref::<Error>())
        .and_then(|cause| match cause {
            Error::HttpRequestBodySize(limit) => Some(Error::HttpRequestBodySize(*limit)),
            _ => None,
        });
    if let Some(refusal) = refused_body {
        refusal
    } else if e.is_parse_too_large() {
        Error::HttpResponseHeaderSectionSize(u32::try_from(header_limit).ok())
    } else if e.is_timeout() {
        Error::HttpResponseTimeout
    } else {
        Error::Hyper(e)
    }
}

/// A response body read with a between-chunks timeout, cut at the cap, with the secret redacted.
///
/// It never yields an empty data frame: a guest's blocking read gives up after repeated wake-ups
/// without data, so while the redactor holds bytes back the body waits for more, the end, or the
/// timeout.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    between: tokio::time::Interval,
    left: u64,
    cap: u64,
    redactor: Option<Redactor>,
    /// Trailers that arrived while the redactor still held the body's tail: sent after it.
    trailers: Option<HeaderMap>,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        loop {
            let frame = match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Pending => {
                    ready!(this.between.poll_tick(cx));
                    return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
                }
                Poll::Ready(None) => {
                    let rest = this.redactor.as_mut().map(Redactor::finish);
                    return Poll::Ready(rest.filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(hyper_error(e, 0)))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            this.between.reset();
            let trailers = match frame.into_data() {
                Ok(data) => {
                    let len = data.len() as u64;
                    if len > this.left {
                        this.left = 0;
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.cap)))));
                    }
                    this.left -= len;
                    let data = match &mut this.redactor {
                        Some(r) => r.push(&data),
                        None => data,
                    };
                    if data.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => trailers,
                    Err(_) => return Poll::Ready(Some(Err(Error::HttpProtocolError))),
                },
            };
            let Some(redactor) = &mut this.redactor else {
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            };
            let mut trailers = trailers;
            redactor.headers(&mut trailers);
            let rest = redactor.finish();
            if rest.is_empty() {
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            // The guest stops reading data at the trailers: the held tail goes first.
            this.trailers = Some(trailers);
            return Poll::Ready(Some(Ok(Frame::data(rest))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
            && self.trailers.is_none()
            && self.redactor.as_ref().is_none_or(Redactor::is_empty)
    }

    fn size_hint(&self) -> SizeHint {
        match self.redactor {
            Some(_) => SizeHint::default(),
            None => self.incoming.size_hint(),
        }
    }
}

/// Replaces a secret in a stream of chunks, holding back a tail that could start it, and in
/// header values; drops headers whose name holds it, recording that.
struct Redactor {
    secret: Vec<u8>,
    pending: Vec<u8>,
    denials: DenialLog,
    request: String,
}

impl Redactor {
    fn new(redaction: Redaction) -> Self {
        Self {
            secret: redaction.secret.value.bytes().to_vec(),
            pending: Vec::new(),
            denials: redaction.denials,
            request: redaction.request,
        }
    }

    /// Takes the next chunk; returns what can be passed on.
    fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let n = self.secret.len();
        let mut out = Vec::with_capacity(self.pending.len());
        let mut i = 0;
        while i + n <= self.pending.len() {
            if self.pending[i..i + n] == self.secret[..] {
                out.extend_from_slice(REDACTED);
                i += n;
            } else {
                out.push(self.pending[i]);
                i += 1;
            }
        }
        self.pending.drain(..i);
        out.into()
    }

    /// The held-back tail (shorter than the secret, so never it), at the end of the body.
    fn finish(&mut self) -> Bytes {
        std::mem::take(&mut self.pending).into()
    }

    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Redacts every header value that holds the secret, and drops every header whose name
    /// holds it (names are case-insensitive, so any case of it).
    fn headers(&self, headers: &mut HeaderMap) {
        let holds = |bytes: &[u8]| bytes.windows(self.secret.len()).any(|w| w == self.secret);
        let named: Vec<http::HeaderName> = headers
            .keys()
            .filter(|name| {
                name.as_str()
                    .as_bytes()
                    .windows(self.secret.len())
                    .any(|w| w.eq_ignore_ascii_case(&self.secret))
            })
            .cloned()
            .collect();
        for name in &named {
            headers.remove(name);
        }
        if !named.is_empty() {
            self.denials.deny(
                Capability::Http,
                format!(
                    "{}: dropped {} response header(s) whose name holds the host's secret",
                    self.request,
                    named.len()
                ),
            );
        }
        for value in headers.values_mut() {
            if holds(value.as_bytes()) {
                *value = HeaderValue::from_static("[redacted]");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(secret: &str) -> Redactor {
        Redactor::new(Redaction {
            secret: Secret {
                header: http::header::AUTHORIZATION,
                value: crate::policy::SecretValue::new(secret).unwrap(),
                from_env: "TOKEN".into(),
                insecure: false,
            },
            denials: DenialLog::default(),
            request: "GET http://127.0.0.1:1/".into(),
        })
    }

    #[test]
    fn the_secret_is_redacted_across_chunk_boundaries() {
        let text = b"token=s3cr3t; again s3cr3t, and s3c";
        for split in 0..text.len() {
            let mut r = redactor("s3cr3t");
            let mut out = r.push(&text[..split]).to_vec();
            out.extend_from_slice(&r.push(&text[split..]));
            out.extend_from_slice(&r.finish());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "token=[redacted]; again [redacted], and s3c",
                "split at {split}"
            );
        }
    }

    #[test]
    fn header_values_holding_the_secret_are_replaced_and_names_dropped() {
        let r = redactor("S3cr3t");
        let mut headers = HeaderMap::new();
        headers.insert("x-echo", HeaderValue::from_static("Bearer S3cr3t"));
        headers.insert("x-other", HeaderValue::from_static("fine"));
        headers.insert("x-s3cr3t-echo", HeaderValue::from_static("1"));
        r.headers(&mut headers);
        assert_eq!(headers["x-echo"], "[redacted]");
        assert_eq!(headers["x-other"], "fine");
        assert!(!headers.contains_key("x-s3cr3t-echo"));
        let (denials, _) = r.denials.take();
        assert_eq!(
            denials[0].target,
            "GET http://127.0.0.1:1/: dropped 1 response header(s) whose name holds the host's secret"
        );
    }
}
