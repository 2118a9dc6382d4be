//! `wasi:http/outgoing-handler`: requests leave only to granted URLs, from the address the host
//! checked, with the host's secrets added on the way out and redacted on the way back. Every
//! refusal fails inside the tool with `http-request-denied` (or `destination-ip-prohibited`), is
//! recorded as a [`Denial`](super::denials::Denial), and opens no connection.

mod check;
mod send;

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

use super::Capability;
use super::denials::DenialLog;
use crate::policy::{Grants, HttpGrant, HttpLimits, Origin, Secret};

/// What one tool may send: its grants, caps and secrets, shared by all its calls.
#[derive(Debug, Default)]
pub(crate) struct Egress {
    grants: Vec<HttpGrant>,
    limits: HttpLimits,
    secrets: std::collections::BTreeMap<Origin, Secret>,
}

impl Egress {
    /// The egress `grants` allow.
    pub(crate) fn new(grants: &Grants) -> Arc<Self> {
        Arc::new(Self {
            grants: grants.http.clone(),
            limits: grants.http_limits,
            secrets: grants.secrets.clone(),
        })
    }
}

/// The `wasi:http` hooks of one call: the tool's egress, the requests sent so far, and the
/// call's denial log.
pub(crate) struct HttpHooks {
    egress: Arc<Egress>,
    sent: u32,
    denials: DenialLog,
}

impl HttpHooks {
    /// Hooks for one call of a tool with `egress`.
    pub(crate) fn new(egress: Arc<Egress>, denials: DenialLog) -> Self {
        Self {
            egress,
            sent: 0,
            denials,
        }
    }

    fn deny(&self, what: &str, why: &str) -> Error {
        self.denials
            .deny(Capability::Http, format!("{what}: {why}"));
        Error::HttpRequestDenied
    }
}

type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, send::IoFuture), Error>> + Send>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let egress = &self.egress;
        let what = check::describe(&egress.grants, request.method(), request.uri());
        if self.sent >= egress.limits.requests {
            let error = self.deny(
                &what,
                &format!(
                    "the call already sent its {} requests",
                    egress.limits.requests
                ),
            );
            return Box::new(std::future::ready(Err(error)));
        }
        let allowed = match check::authorize(&egress.grants, request.method(), request.uri()) {
            Ok(allowed) => allowed,
            Err(why) => {
                let error = self.deny(&what, &why);
                return Box::new(std::future::ready(Err(error)));
            }
        };
        self.sent += 1;
        let limits = egress.limits;
        let redaction = egress
            .secrets
            .get(&allowed.grant.origin)
            .map(|secret| send::Redaction {
                secret: secret.clone(),
                denials: self.denials.clone(),
                request: what.clone(),
            });
        let timeouts = send::Timeouts::capped(options, limits.timeout);
        let denials = self.denials.clone();
        Box::new(async move {
            let addrs = match check::resolve(&allowed, timeouts.connect).await {
                Ok(addrs) => addrs,
                Err(check::Refused::Unresolved(why)) => {
                    tracing::debug!(request = %what, "{why}");
                    return Err(Error::DestinationNotFound);
                }
                Err(check::Refused::Internal(why)) => {
                    denials.deny(Capability::Http, format!("{what}: {why}"));
                    return Err(Error::DestinationIpProhibited);
                }
            };
            send::send(allowed, addrs, request, timeouts, limits, redaction).await
        })
    }
}

/// Links `wasi:http/types` and `wasi:http/outgoing-handler`; `T`'s view carries the call's
/// [`HttpHooks`].
pub(crate) fn add_to_linker<T: WasiHttpView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}
