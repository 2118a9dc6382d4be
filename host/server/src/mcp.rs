//! The MCP server: every tool function of the whitelist as an MCP tool, and every `tools/call`
//! through the same [`ToolGate`] as an agent's calls — kill switch, routing, role, rate, budget,
//! arguments, approval, then the sandbox — recorded in the same hash chain.
//!
//! What a client sees:
//! - the result of a function as `structuredContent` (wrapped as `{"result": …}` when it is not
//!   an object) plus its JSON text in `content`;
//! - the `err` of a `result` as `isError: true` with the error's JSON;
//! - a sandbox stop (fuel, timeout, memory, output size, trap) as `isError: true` with a
//!   sentence naming the limit;
//! - a refusal by the kill switch, role, rate or budget gate as `isError: true` naming the
//!   gate;
//! - an unknown tool or invalid arguments as the protocol error `-32602` naming the problem;
//! - a call that needs a human's approval as `isError: true` naming the approval; once a
//!   person decides it (`harness approvals approve|deny`), the same call again runs or is
//!   refused, once;
//! - a call that needs its user's confirmation as a question to the user, by elicitation or an
//!   `input_required` result, as the README's MCP section tells.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::http::request::Parts;
use harness_agent::calls::{CallDecision, Confirmation, ToolGate, new_run_id};
use harness_agent::gates::{Admitted, Principal};
use harness_agent::guards::pii::PiiPolicy;
use harness_agent::models::ToolCall;
use harness_agent::routing::Route;
use harness_agent::state::StateError;
use harness_agent::state::records::{AuditRecord, Gate, ToolCancelled};
use harness_agent::state::switches::Target;
use harness_sandbox::Outcome;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog;
use crate::confirm::{Asking, Confirmations};
use crate::metrics::ServerMetrics;
use crate::settings::ServerSettings;
use crate::trace::{self, Carrier};
use tracing::Instrument;

/// Tools per page of `tools/list`.
pub const PAGE_SIZE: usize = 100;

/// An MCP server over a [`ToolGate`]. Calls run for the client an HTTP request authenticated
/// as, or else for the server's own principal (the local user, on stdio).
#[derive(Clone)]
pub struct McpServer {
    current: Arc<RwLock<Current>>,
    principal: Principal,
    /// How the audit log masks results when `[mcp] pii` says nothing: every kind.
    record_pii: PiiPolicy,
    /// The clients connected with a session (stdio, legacy HTTP), to tell when tools change.
    peers: Arc<Mutex<Vec<Peer<RoleServer>>>>,
    /// Questions to users for the tools' `confirm` gates.
    confirmations: Arc<Confirmations>,
    /// The calls in flight, to wait for on the way out.
    in_flight: TaskTracker,
    /// What the calls came to, for Prometheus.
    metrics: ServerMetrics,
    /// This server among the replicas sharing the state: the owner of its run leases.
    replica: Arc<str>,
}

/// The whitelist being served: the gate its calls go through, the route of every tool, and
/// the HTTP clients.
#[derive(Clone)]
pub(crate) struct Current {
    pub(crate) gate: ToolGate,
    route: Arc<Route>,
    pub(crate) settings: Arc<ServerSettings>,
}

/// Why [`McpServer::decide`] came to no decision.
pub(crate) enum Undecided {
    /// The state could not be read or written.
    State(StateError),
    /// The call was cancelled (and recorded so).
    Cancelled,
}

impl From<StateError> for Undecided {
    fn from(error: StateError) -> Undecided {
        Undecided::State(error)
    }
}

impl Current {
    fn new(gate: ToolGate, settings: ServerSettings) -> Current {
        let route = Route {
            name: "mcp".into(),
            tools: gate.config().policy().tools().keys().cloned().collect(),
        };
        Current {
            gate,
            route: Arc::new(route),
            settings: Arc::new(settings),
        }
    }
}

/// A name no other server process shares: the host, the process id and when it started.
fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{host}:{}:{started:x}", std::process::id())
}

/// How long a stopping server waits for alerts still being delivered to their webhooks.
pub const ALERT_DELIVERY: Duration = Duration::from_secs(10);

/// How often the server looks for switches flipped by another process.
pub const SWITCH_POLL: Duration = Duration::from_millis(250);

impl McpServer {
    /// A server whose calls go through `gate`, for the HTTP clients of `settings` or else for
    /// `principal`.
    pub fn new(gate: ToolGate, settings: ServerSettings, principal: Principal) -> McpServer {
        McpServer {
            current: Arc::new(RwLock::new(Current::new(gate, settings))),
            principal,
            record_pii: PiiPolicy::default(),
            peers: Arc::default(),
            confirmations: Arc::default(),
            in_flight: TaskTracker::new(),
            metrics: ServerMetrics::default(),
            replica: replica_name().into(),
        }
    }

    /// This server's name among the replicas sharing the state (`HOST:PID:START`).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Watches the kill switches (set by any process sharing the state) until `stop`, and sends
    /// `notifications/tools/list_changed` to every connected client when they change: a
    /// switched-off tool leaves `tools/list`, and a call to it is refused anyway.
    pub async fn watch_switches(&self, stop: CancellationToken) {
        let mut seen = self.switched_off();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(SWITCH_POLL) => {}
            }
            let now = self.switched_off();
            if now != seen {
                seen = now;
                self.notify_tools_changed().await;
            }
        }
    }

    /// The targets switched off now (empty when the state cannot be read: the gates still
    /// refuse at call time).
    fn switched_off(&self) -> Vec<String> {
        self.gate()
            .state()
            .switches()
            .map(|switches| switches.into_iter().map(|s| s.target).collect())
            .unwrap_or_default()
    }

    /// Sends `notifications/tools/list_changed` to every connected client, forgetting those
    /// that left.
    pub async fn notify_tools_changed(&self) {
        self.lock_peers().retain(|peer| !peer.is_transport_closed());
        let peers: Vec<Peer<RoleServer>> = self.lock_peers().clone();
        for peer in peers {
            if let Err(error) = peer.notify_tool_list_changed().await {
                tracing::debug!(target: "harness::serve", %error, "a client missed list_changed");
            }
        }
    }

    /// Waits until no call or run is in flight, and lets no new one start: once the calls were
    /// cancelled, for their `tool.cancelled` records to be written before the process ends;
    /// then up to [`ALERT_DELIVERY`] for alerts still on their way to webhooks.
    pub async fn finish_calls(&self) {
        self.in_flight.close();
        self.in_flight.wait().await;
        self.gate().webhooks().finish(ALERT_DELIVERY).await;
    }

    /// `call`, counted among the calls in flight that [`McpServer::finish_calls`] waits for.
    pub(crate) fn track<F: std::future::Future>(
        &self,
        call: F,
    ) -> tokio_util::task::task_tracker::TrackedFuture<F> {
        self.in_flight.track_future(call)
    }

    /// Tells `peer` too when tools change.
    pub fn add_peer(&self, peer: Peer<RoleServer>) {
        self.lock_peers().push(peer);
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, Vec<Peer<RoleServer>>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server's Prometheus metrics.
    pub fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }

    /// Whom calls run for when the request names no client: the local user.
    pub(crate) fn local_principal(&self) -> &Principal {
        &self.principal
    }

    /// The gate calls go through now (a reload replaces it; a call keeps the one it began with).
    pub fn gate(&self) -> ToolGate {
        self.current().gate
    }

    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The HTTP clients allowed now.
    pub fn settings(&self) -> Arc<ServerSettings> {
        self.current().settings
    }

    /// Serves `gate` and `settings` from now on (a reloaded whitelist) and tells the clients the
    /// tools may have changed. Calls in flight finish on the gate they began with.
    pub async fn replace(&self, gate: ToolGate, settings: ServerSettings) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Current::new(gate, settings);
        self.notify_tools_changed().await;
    }

    /// Every tool function of the whitelist that is not switched off, as MCP tools, in order.
    pub fn tools(&self) -> Result<Vec<Tool>, StateError> {
        tools_of(&self.gate())
    }

    /// One call of tool `name` (as models and MCP clients name it, or `tool.function`) with
    /// `arguments` for `principal`, through the gate served now, as `ToolGate::call` makes it
    /// (`ask` asks the user where the tool's `confirm` applies), in a run of its own named
    /// `PREFIX-…`. When `cancel` fires first (the client cancelled, or the server's grace period
    /// ran out), the call stops where it is and is recorded as `tool.cancelled`. The decision
    /// comes with the whitelist it was made under, to word it.
    pub(crate) async fn decide(
        &self,
        prefix: &str,
        principal: &Principal,
        name: &str,
        arguments: &Value,
        ask: impl AsyncFnOnce(&Admitted) -> Confirmation,
        cancel: CancellationToken,
    ) -> Result<(CallDecision, Current), Undecided> {
        let _in_flight = self.metrics.in_flight();
        let run_id = new_run_id(prefix, &principal.name);
        let call = ToolCall {
            id: run_id.clone(),
            name: name.to_owned(),
            raw_arguments: arguments.to_string(),
        };
        let current = self.current();
        // The log keeps results masked by `[mcp] pii` when set, by every kind otherwise.
        let recorded = current.settings.pii.as_ref().unwrap_or(&self.record_pii);
        let gate = &current.gate;
        let decision = tokio::select! {
            decided = gate.call(&current.route, principal, &run_id, &call, recorded, ask) => decided?,
            () = cancel.cancelled() => {
                let record = AuditRecord::ToolCancelled(ToolCancelled {
                    call_id: call.id,
                    name: call.name,
                });
                gate.state().append_audit(&run_id, record)?;
                return Err(Undecided::Cancelled);
            }
        };
        self.metrics.decided(&decision);
        Ok((decision, current))
    }

    /// Calls tool `name` with `arguments` for `principal`, asking its user through `asking`
    /// where the tool's `confirm` gate applies, and says how it went, as MCP words it. When
    /// `cancel` fires first, the call is cancelled (see [`McpServer::decide`]).
    async fn call(
        &self,
        principal: &Principal,
        name: &str,
        arguments: Value,
        asking: Asking,
        cancel: CancellationToken,
    ) -> Result<CallToolResponse, ErrorData> {
        let within = self.settings().confirm_within();
        let mut question = None;
        let ask = async |admitted: &Admitted| {
            self.confirmations
                .ask(asking, principal, admitted, within, &mut question)
                .await
        };
        let decided = self
            .decide("mcp", principal, name, &arguments, ask, cancel)
            .await;
        let (decision, Current { gate, settings, .. }) = match decided {
            Ok(decided) => decided,
            Err(Undecided::State(error)) => {
                return Err(ErrorData::internal_error(error.to_string(), None));
            }
            Err(Undecided::Cancelled) => {
                return Err(ErrorData::internal_error(
                    "the call was cancelled: its client cancelled it, or the server is shutting down",
                    None,
                ));
            }
        };
        if let Some(question) = question {
            return Ok(CallToolResponse::InputRequired(question));
        }
        let result = match decision {
            CallDecision::Refused { gate, reason } => match gate {
                Gate::Routing | Gate::Arguments => Err(ErrorData::invalid_params(reason, None)),
                gate => Ok(error_text(format!(
                    "refused by the harness ({gate}): {reason}"
                ))),
            },
            CallDecision::AwaitingApproval { approval } => Ok(error_text(format!(
                "waiting for human approval {approval}: a person decides with `harness approvals \
                 approve {approval}` or `deny {approval}`; then call again with the same arguments"
            ))),
            CallDecision::Ran { function, report } => Ok(match report.outcome {
                Outcome::Ok { value } => {
                    let value = match screen(&settings, value) {
                        Ok(value) => value,
                        Err(kind) => return Ok(withheld(kind).into()),
                    };
                    let schema = gate
                        .host()
                        .function(&function)
                        .map(|(_, f)| f.result_schema.clone())
                        .unwrap_or(Value::Null);
                    let structured = catalog::structured(&schema, value.clone());
                    let mut result = CallToolResult::structured(structured);
                    result.content = vec![ContentBlock::text(value.to_string())];
                    result
                }
                Outcome::ToolError { error } => match screen(&settings, error) {
                    Ok(error) => error_text(error.to_string()),
                    Err(kind) => withheld(kind),
                },
                Outcome::Stopped { stop } => {
                    error_text(format!("the sandbox stopped the call: {stop}"))
                }
                other => error_text(format!("the call ended as {}", other.kind())),
            }),
        };
        result.map(CallToolResponse::Complete)
    }
}

/// The tool functions of `gate`'s whitelist that are not switched off, as MCP tools, in order.
pub(crate) fn tools_of(gate: &ToolGate) -> Result<Vec<Tool>, StateError> {
    let mut tools = Vec::new();
    for tool in gate.host().tools() {
        let target = Target::Tool(tool.policy.name.clone());
        if gate.state().killed(&target)?.is_some() {
            continue;
        }
        tools.extend(tool.functions.iter().map(|f| catalog::tool(tool, f)));
    }
    Ok(tools)
}

/// `value` as it may leave under `[mcp] pii`: masked, or withheld (`Err` names the kind).
pub(crate) fn screen(settings: &ServerSettings, value: Value) -> Result<Value, &'static str> {
    let Some(pii) = &settings.pii else {
        return Ok(value);
    };
    settings
        .screen(value.to_string())
        .map(|_| pii.mask_json(&value))
}

/// The result of a call whose result holds personal data of `kind`, which blocks it.
fn withheld(kind: &str) -> CallToolResult {
    error_text(format!(
        "the tool's result was withheld: it contains {kind} data"
    ))
}

fn error_text(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("harness", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Sandboxed WebAssembly tools. Every call passes the whitelist's gates (kill switch, \
             role, rate, budget, arguments, human approval) and runs metered in a fresh sandbox.",
        )
    }

    /// An HTTP session began (stdio's one client is added when it connects, in any era).
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if context.extensions.get::<Parts>().is_some() {
            self.add_peer(context.peer);
        }
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self
            .tools()
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .ok()
                .filter(|&at| at <= tools.len())
                .ok_or_else(|| {
                    ErrorData::invalid_params(
                        format!("`{cursor}` is not a cursor of this list"),
                        None,
                    )
                })?,
        };
        let end = (start + PAGE_SIZE).min(tools.len());
        let mut page = ListToolsResult::with_all_items(tools[start..end].to_vec());
        page.next_cursor = (end < tools.len()).then(|| end.to_string());
        Ok(page)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Over HTTP, the client the request authenticated as; on stdio, the local user.
        let principal = context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .unwrap_or(&self.principal)
            .clone();
        let asking = Asking::of(&context, &request);
        let span = trace::tools_call_span(
            &request.name,
            &context.id,
            || {
                request
                    .meta
                    .as_ref()
                    .map(|meta| Carrier::from_meta(meta))
                    .filter(|carrier| !carrier.is_empty())
                    .unwrap_or_else(|| Carrier::from_meta(&context.meta))
            },
            || {
                context
                    .extensions
                    .get::<Parts>()
                    .map(|parts| Carrier::from_headers(&parts.headers))
                    .unwrap_or_default()
            },
        );
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let response = self
            .track(
                self.call(&principal, &request.name, arguments, asking, context.ct)
                    .instrument(span.clone()),
            )
            .await;
        match &response {
            Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
                trace::tool_error(&span, "tool_error");
            }
            Err(_) => trace::tool_error(&span, "protocol_error"),
            Ok(_) => {}
        }
        response
    }
}
