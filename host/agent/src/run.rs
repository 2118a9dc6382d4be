//! One agent run: the user's words go to the model; each tool call it proposes passes the
//! [gates](crate::gates) and then the sandbox; results go back; until the model answers, the turn
//! limit is reached, or it cannot go on. Every step is an audit record in the hash chain, and
//! the run always ends with an answer a person can read — never an empty or silent one.

use std::sync::Arc;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{AgentSettings, Config};
use crate::gates::{self, Admitted, Principal, Refusal};
use crate::guards::pii::{Kind, Screened};
use crate::models::{
    Message, Model, ModelRequest, ModelResponse, TokenUsage, ToolCall, ToolChoice, ToolResult,
    ToolSpec,
};
use crate::routing::{KeywordRouter, Route, Router};
use crate::state::approvals::ApprovalRequest;
use crate::state::ledger::{Budget, Exhausted, Reservation};
use crate::state::switches::Target;
use crate::state::{StateError, StateStore};
use harness_sandbox::{CallContext, CallReport, Host, Outcome};
/// Cancels runs: checked between steps, and it interrupts a model call or a batch of tool calls
/// in flight (their sandboxes are dropped); the run ends recorded as cancelled.
pub use tokio_util::sync::CancellationToken;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The model gave its final answer.
    Answered,
    /// The model was still calling tools when the turn limit came.
    TurnLimit,
    /// The model kept sending malformed or invalid tool arguments.
    ArgumentErrors,
    /// No model answered (after retries and fallbacks).
    ModelFailed,
    /// The agent is switched off.
    AgentKilled,
    /// A token budget cannot cover the next model call.
    BudgetExhausted,
    /// The input was too long, or held personal data the agent blocks; nothing reached the model.
    InputRejected,
    /// Waiting for human approval of tool calls; `harness approvals` resumes it.
    Paused,
    /// The final answer kept missing the agent's output schema.
    OutputInvalid,
    /// Cancelled through its [`CancellationToken`].
    Cancelled,
}

/// What happened to one proposed tool call.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum CallDecision {
    /// A gate refused it; it never reached the sandbox.
    Refused {
        /// The gate.
        gate: &'static str,
        /// Why, as the model was told.
        reason: String,
    },
    /// It waits for a human to approve it (the run is paused).
    AwaitingApproval {
        /// The approval's number.
        approval: i64,
    },
    /// It ran in the sandbox.
    Ran {
        /// `tool.function`.
        function: String,
        /// The host's report: outcome, fuel, time, denials.
        report: Box<CallReport>,
    },
}

/// One step of a run, in order, for display and tests (the audit log has the same steps).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Personal data or secrets were masked before text reached the model.
    Masked {
        /// `input`, or the id of the tool call whose result was masked.
        place: String,
        /// How many of each kind.
        found: BTreeMap<Kind, u32>,
    },
    /// The model's turn.
    Model {
        /// Its text.
        text: Option<String>,
        /// How many tool calls it made.
        calls: usize,
        /// Tokens used.
        usage: TokenUsage,
    },
    /// A tool call and its decision.
    Call {
        /// The call as proposed.
        call: ToolCall,
        /// What the harness did with it.
        decision: CallDecision,
        /// What the model was told.
        result: ToolResult,
    },
}

/// The end of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunReport {
    /// The run's id (in the audit log and in `caller.run-id` for its tools).
    pub run_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// The answer for the user: the model's, or a plain account of why there is none.
    pub answer: String,
    /// Model turns taken.
    pub turns: u32,
    /// Tokens used across turns.
    pub usage: TokenUsage,
    /// The version of the system prompt it ran with.
    pub prompt_version: String,
    /// Every step.
    pub events: Vec<Event>,
}

/// An agent ready to run: its settings, its model (with retries and fallbacks), the host its
/// tools run in, and the state its runs are recorded in. It owns what it needs (clones of shared
/// handles), so a run can be spawned onto its own task.
#[derive(Clone)]
pub struct Agent {
    host: Host,
    state: Arc<StateStore>,
    config: Arc<Config>,
    settings: AgentSettings,
    model: Arc<dyn Model>,
    router: Arc<dyn Router>,
    cancel: CancellationToken,
}

/// The whitelist has no agent of the name asked for.
#[derive(Debug, thiserror::Error)]
#[error("no [agents.{name}] in the whitelist; it has: {}", known.join(", "))]
pub struct UnknownAgent {
    /// The name asked for.
    pub name: String,
    /// The agents it has.
    pub known: Vec<String>,
}

impl Agent {
    /// Agent `name` of `config`, running tools in `host` and recording in `state`.
    pub fn new(
        host: Host,
        state: Arc<StateStore>,
        config: Arc<Config>,
        name: &str,
        model: Arc<dyn Model>,
    ) -> Result<Agent, UnknownAgent> {
        let settings = config
            .agents()
            .get(name)
            .ok_or_else(|| UnknownAgent {
                name: name.to_owned(),
                known: config.agents().keys().cloned().collect(),
            })?
            .clone();
        Ok(Agent {
            host,
            state,
            router: Arc::new(KeywordRouter::new(&settings)),
            config,
            settings,
            model,
            cancel: CancellationToken::new(),
        })
    }

    /// The same agent, whose runs `cancel` can stop.
    pub fn with_cancel(self, cancel: CancellationToken) -> Agent {
        Agent { cancel, ..self }
    }

    /// The same agent with another intent router than its `routes`.
    pub fn with_router(self, router: Arc<dyn Router>) -> Agent {
        Agent { router, ..self }
    }

    /// The same agent asking `model` instead (a scripted model, for evaluation and replay).
    pub fn with_model(self, model: Arc<dyn Model>) -> Agent {
        Agent { model, ..self }
    }

    /// Its settings.
    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// The state its runs are recorded in.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// Runs `input` for `principal` to its end.
    pub async fn run(&self, principal: &Principal, input: &str) -> Result<RunReport, StateError> {
        let run_id = new_run_id(&self.settings.name, &principal.name);
        let mut run = Run::new(run_id.clone(), 0, TokenUsage::default(), 0);
        let (prompt, canary) = self.settings.prompt_for(&principal.name);
        run.report.prompt_version = prompt.version.clone();
        // The audit log keeps the input as the model would see it, never the unmasked text; an
        // input over the length limit is not even screened.
        let chars = input.chars().count();
        let too_long = chars > self.settings.max_input_chars;
        let screened = (!too_long).then(|| self.settings.pii.apply(input));
        let shown = match &screened {
            Some(Screened::Passed { text, .. }) => Some(text.as_str()),
            _ => None,
        };
        self.state.append_audit(
            &run_id,
            "run.started",
            &json!({"agent": self.settings.name, "principal": principal.name,
                    "roles": principal.roles, "model": self.model.id().to_string(),
                    "prompt": {"version": prompt.version, "source": prompt.source, "canary": canary},
                    "input": shown, "input_chars": chars,
                    "input_sha256": hex::encode(Sha256::digest(input))}),
        )?;
        let Some(screened) = screened else {
            let answer = format!(
                "Your message is {chars} characters long; this agent accepts at most {}. Nothing was sent to the model.",
                self.settings.max_input_chars
            );
            return self.finish(run, RunStatus::InputRejected, answer);
        };
        let input = match self.note_screening(&mut run, "input", screened)? {
            Ok(text) => text,
            Err(kind) => {
                let answer = format!(
                    "Your message was not sent to the model: it contains {} data, which this agent does not accept.",
                    kind.name()
                );
                return self.finish(run, RunStatus::InputRejected, answer);
            }
        };
        if let Some(killed) = self
            .state
            .killed(&Target::Agent(self.settings.name.clone()))?
        {
            return self.finish(
                run,
                RunStatus::AgentKilled,
                format!(
                    "The agent `{}` is switched off: {}",
                    self.settings.name, killed.reason
                ),
            );
        }
        run.route = self.router.route(&input);
        self.state
            .append_audit(&run_id, "run.routed", &json!({"route": run.route}))?;
        let request = ModelRequest {
            system: prompt.text.clone(),
            messages: vec![Message::User { text: input }],
            tools: self.offered(&run.route)?,
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: true,
            max_output_tokens: self.settings.max_output_tokens,
        };
        self.drive(run, principal, request).await
    }

    /// Resumes run `run_id`, paused for approvals, once every one of them is decided: approved
    /// calls run (unless their tool was switched off meanwhile), denied ones are reported to the
    /// model as denied, and the run goes on. `None` when the run is not this agent's paused run,
    /// still waits for a decision, or another resumer (in any process) took it first.
    pub async fn resume(&self, run_id: &str) -> Result<Option<RunReport>, StateError> {
        let Some(text) = self.state.take_decided_run(run_id, &self.settings.name)? else {
            return Ok(None);
        };
        let paused: Paused = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: self.state.path().to_owned(),
            message: format!("paused run {run_id}: {e}"),
        })?;
        let decided: BTreeMap<i64, ApprovalRequest> = self
            .state
            .approvals_of_run(run_id)?
            .into_iter()
            .filter(|a| a.decision.is_some())
            .map(|a| (a.id, a))
            .collect();
        let principal = Principal {
            name: paused.principal,
            roles: paused.roles,
        };
        let mut run = Run::new(
            run_id.to_owned(),
            paused.turns,
            paused.usage,
            paused.argument_errors,
        );
        run.report.prompt_version = paused.prompt_version.clone();
        run.route = paused.route;
        self.state.append_audit(
            run_id,
            "run.resumed",
            &json!({"approvals": decided.keys().collect::<Vec<_>>()}),
        )?;
        let mut decisions = Vec::new();
        let mut approved = Vec::new();
        for waiting in paused.waiting {
            let approval = &decided[&waiting.approval];
            let tool = waiting
                .admitted
                .function
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            let killed = self.state.killed(&Target::Tool(tool.clone()))?;
            if approval.decision.as_deref() == Some("approved") && killed.is_none() {
                approved.push((waiting.index, waiting.admitted));
                continue;
            }
            if let Some(reservation) = waiting.admitted.fuel {
                self.state.settle(reservation, 0)?;
            }
            decisions.push((
                waiting.index,
                match killed {
                    Some(killed) if approval.decision.as_deref() == Some("approved") => {
                        refused(Refusal::Killed {
                            tool,
                            reason: killed.reason,
                        })
                    }
                    _ => CallDecision::Refused {
                        gate: "approval",
                        reason: format!(
                            "denied by {}: {}",
                            approval.decided_by.as_deref().unwrap_or("a reviewer"),
                            approval.reason.as_deref().unwrap_or("no reason given")
                        ),
                    },
                },
            ));
        }
        decisions.extend(
            self.execute(&caller_context(&principal, run_id), &paused.calls, approved)
                .await?,
        );
        let mut results = paused.results;
        for (index, decision) in decisions {
            results[index] = Some(self.note_call(&mut run, &paused.calls[index], decision)?);
        }
        let mut request = paused.request;
        request.messages.push(Message::Assistant {
            text: paused.text,
            calls: paused.calls,
        });
        request.messages.push(Message::ToolResults {
            results: results.into_iter().flatten().collect(),
        });
        self.drive(run, &principal, request).await.map(Some)
    }

    /// Turns of model and tools until the run ends or pauses.
    async fn drive(
        &self,
        mut run: Run,
        principal: &Principal,
        mut request: ModelRequest,
    ) -> Result<RunReport, StateError> {
        let run_id = run.report.run_id.clone();
        while run.report.turns < self.settings.max_turns {
            if self.cancel.is_cancelled() {
                return self.cancelled(run);
            }
            let reservation = match self.reserve_tokens(&run_id, principal, &request)? {
                Ok(reservation) => reservation,
                Err(exhausted) => {
                    self.state.append_audit(
                        &run_id,
                        "budget.exhausted",
                        &json!({"budget": exhausted}),
                    )?;
                    return self.finish(
                        run,
                        RunStatus::BudgetExhausted,
                        format!("Stopped before asking the model again: {exhausted}."),
                    );
                }
            };
            run.report.turns += 1;
            let started = std::time::Instant::now();
            let answered = tokio::select! {
                answered = self.model.complete(&request) => Some(answered),
                () = self.cancel.cancelled() => None,
            };
            let Some(answered) = answered else {
                return self.cancelled(run);
            };
            let latency = started.elapsed();
            if let Some(reservation) = reservation {
                let used = answered.as_ref().map_or(0, |r| r.usage.total());
                self.state.settle(reservation, used)?;
            }
            let response = match answered {
                Ok(response) => response,
                Err(error) => {
                    self.state.append_audit(
                        &run_id,
                        "model.failed",
                        &json!({"error": error.to_string()}),
                    )?;
                    return self.finish(
                        run,
                        RunStatus::ModelFailed,
                        format!("No answer: the model could not be reached ({error})."),
                    );
                }
            };
            self.record_response(&mut run, &response, latency)?;
            if response.calls.is_empty() {
                let Some(answer) = response.text.filter(|t| !t.trim().is_empty()) else {
                    let answer = "The model ended its turn without an answer.".to_owned();
                    return self.finish(run, RunStatus::Answered, answer);
                };
                let Some(problem) = self
                    .settings
                    .output_schema
                    .as_ref()
                    .and_then(|s| s.problem(&answer))
                else {
                    return self.finish(run, RunStatus::Answered, answer);
                };
                run.output_errors += 1;
                self.state
                    .append_audit(&run_id, "answer.invalid", &json!({"problem": problem}))?;
                if run.output_errors > self.settings.max_output_retries {
                    let answer = format!(
                        "Stopped: the model's answer did not match the required format after {} tries ({problem}).",
                        run.output_errors
                    );
                    return self.finish(run, RunStatus::OutputInvalid, answer);
                }
                request.messages.push(Message::Assistant {
                    text: Some(answer),
                    calls: Vec::new(),
                });
                request.messages.push(Message::User {
                    text: format!(
                        "Your answer must be only JSON matching this JSON Schema: {}. It does not: {problem}. Answer again.",
                        self.settings.output_schema.as_ref().map(|s| s.schema.to_string()).unwrap_or_default()
                    ),
                });
                continue;
            }
            let called = tokio::select! {
                called = self.call_tools(&mut run, principal, &response.calls) => Some(called),
                () = self.cancel.cancelled() => None,
            };
            let Some(called) = called else {
                return self.cancelled(run);
            };
            let (results, waiting) = called?;
            if !waiting.is_empty() {
                let paused = Paused {
                    principal: principal.name.clone(),
                    prompt_version: run.report.prompt_version.clone(),
                    route: run.route.clone(),
                    roles: principal.roles.clone(),
                    request,
                    turns: run.report.turns,
                    usage: run.report.usage,
                    argument_errors: run.argument_errors,
                    text: response.text,
                    calls: response.calls,
                    results,
                    waiting,
                };
                return self.pause(run, paused);
            }
            request.messages.push(Message::Assistant {
                text: response.text,
                calls: response.calls,
            });
            request.messages.push(Message::ToolResults {
                results: results.into_iter().flatten().collect(),
            });
            if run.argument_errors > self.settings.max_argument_errors {
                let answer = format!(
                    "Stopped: the model sent invalid tool arguments {} times (the limit is {}).",
                    run.argument_errors, self.settings.max_argument_errors
                );
                return self.finish(run, RunStatus::ArgumentErrors, answer);
            }
        }
        let answer = format!(
            "Stopped after {} model turns without a final answer.",
            self.settings.max_turns
        );
        self.finish(run, RunStatus::TurnLimit, answer)
    }

    /// Records what screening found (an event and an audit record); returns the text to send,
    /// or the kind that blocks it.
    fn note_screening(
        &self,
        run: &mut Run,
        place: &str,
        screened: Screened,
    ) -> Result<Result<String, Kind>, StateError> {
        let run_id = run.report.run_id.clone();
        match screened {
            Screened::Passed { text, found } => {
                if !found.is_empty() {
                    self.state.append_audit(
                        &run_id,
                        "pii.masked",
                        &json!({"place": place, "found": found}),
                    )?;
                    run.report.events.push(Event::Masked {
                        place: place.to_owned(),
                        found,
                    });
                }
                Ok(Ok(text))
            }
            Screened::Blocked { kind, found } => {
                self.state.append_audit(
                    &run_id,
                    "pii.blocked",
                    &json!({"place": place, "kind": kind, "found": found}),
                )?;
                Ok(Err(kind))
            }
        }
    }

    /// Raises the tool-error-rate alert for `function` when its recent calls fail too often
    /// (once per run and function).
    fn check_error_rate(&self, run: &mut Run, function: &str) -> Result<(), StateError> {
        let Some(rule) = &self.settings.alerts.tool_error_rate else {
            return Ok(());
        };
        if run.alerted_tools.contains(function) {
            return Ok(());
        }
        let Some(stats) = self.state.tool_stats(function, rule.window)? else {
            return Ok(());
        };
        let rate = stats.errors as f64 / stats.calls as f64;
        if stats.calls >= rule.min_calls && rate >= rule.threshold {
            run.alerted_tools.insert(function.to_owned());
            self.raise_alert(
                &run.report.run_id,
                "tool_error_rate",
                function,
                rate,
                rule.threshold,
            )?;
        }
        Ok(())
    }

    /// An alert: an audit record (`alert.raised`) and a warning on the `harness::alert` target.
    fn raise_alert(
        &self,
        run_id: &str,
        kind: &str,
        subject: &str,
        value: f64,
        threshold: f64,
    ) -> Result<(), StateError> {
        tracing::warn!(target: "harness::alert", alert = kind, subject, value, threshold, run_id, "alert raised");
        self.state.append_audit(
            run_id,
            "alert.raised",
            &json!({"alert": kind, "subject": subject, "value": value, "threshold": threshold}),
        )?;
        Ok(())
    }

    /// Reserves the most the next model call can use against the token budgets: its request
    /// counted as one token per byte (no tokenizer yields more) plus the answer's limit.
    fn reserve_tokens(
        &self,
        run_id: &str,
        principal: &Principal,
        request: &ModelRequest,
    ) -> Result<Result<Option<Reservation>, Exhausted>, StateError> {
        let budgets = &self.settings.budgets;
        let scopes: Vec<Budget> = [
            (
                format!("tokens:user:{}", principal.name),
                budgets.user_tokens,
            ),
            ("tokens:global".to_owned(), budgets.global_tokens),
        ]
        .into_iter()
        .filter_map(|(scope, limit)| {
            Some(Budget {
                scope,
                limit: limit?,
            })
        })
        .collect();
        if scopes.is_empty() {
            return Ok(Ok(None));
        }
        let bytes = serde_json::to_vec(request).map_or(0, |b| b.len() as u64);
        let most = bytes + u64::from(request.max_output_tokens);
        Ok(self.state.reserve(run_id, &scopes, most)?.map(Some))
    }

    /// The functions of the route's tools that are not switched off, as the model sees them.
    fn offered(&self, route: &Route) -> Result<Vec<ToolSpec>, StateError> {
        let mut offered = Vec::new();
        for tool in self.host.tools() {
            let name = &tool.policy.name;
            if !route.tools.contains(name)
                || self.state.killed(&Target::Tool(name.clone()))?.is_some()
            {
                continue;
            }
            offered.extend(tool.functions.iter().map(|f| ToolSpec {
                name: f.qualified_name.clone(),
                description: f.description.clone().unwrap_or_default(),
                parameters: f.parameters_schema.clone(),
            }));
        }
        Ok(offered)
    }

    fn record_response(
        &self,
        run: &mut Run,
        response: &ModelResponse,
        latency: std::time::Duration,
    ) -> Result<(), StateError> {
        let usage = &mut run.report.usage;
        usage.input_tokens += response.usage.input_tokens;
        usage.output_tokens += response.usage.output_tokens;
        usage.cache_read_tokens += response.usage.cache_read_tokens;
        let id = self.model.id();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        tracing::info!(
            target: "harness::genai",
            latency_ms,
            "gen_ai.operation.name" = "chat",
            "gen_ai.provider.name" = %id.provider,
            "gen_ai.request.model" = %id.model,
            "gen_ai.response.model" = %response.model,
            "gen_ai.usage.input_tokens" = response.usage.input_tokens,
            "gen_ai.usage.output_tokens" = response.usage.output_tokens,
            "gen_ai.conversation.id" = %run.report.run_id,
            "prompt.version" = %run.report.prompt_version,
            "model call"
        );
        self.state.append_audit(
            &run.report.run_id,
            "model.responded",
            &json!({"model": response.model, "response_id": response.response_id,
                    "finish": response.finish, "text": response.text, "calls": response.calls,
                    "gen_ai.provider.name": id.provider, "gen_ai.request.model": id.model,
                    "gen_ai.usage.input_tokens": response.usage.input_tokens,
                    "gen_ai.usage.output_tokens": response.usage.output_tokens,
                    "latency_ms": latency_ms}),
        )?;
        if let Some(limit) = self.settings.alerts.run_tokens
            && run.report.usage.total() > limit
            && !run.alerted_tokens
        {
            run.alerted_tokens = true;
            self.raise_alert(
                &run.report.run_id,
                "run_tokens",
                &run.report.run_id,
                run.report.usage.total() as f64,
                limit as f64,
            )?;
        }
        run.report.events.push(Event::Model {
            text: response.text.clone(),
            calls: response.calls.len(),
            usage: response.usage,
        });
        Ok(())
    }

    /// Gates each call in order and runs the admitted ones concurrently. Returns, in the
    /// model's order, each call's result — or `None` for a call that waits for a human, listed
    /// in the second part.
    async fn call_tools(
        &self,
        run: &mut Run,
        principal: &Principal,
        calls: &[ToolCall],
    ) -> Result<(Vec<Option<ToolResult>>, Vec<Waiting>), StateError> {
        let run_id = run.report.run_id.clone();
        let mut decisions: Vec<Option<CallDecision>> = vec![None; calls.len()];
        let mut admitted = Vec::new();
        let mut waiting = Vec::new();
        for (index, call) in calls.iter().enumerate() {
            match gates::check(
                &self.host,
                &self.state,
                &self.config,
                &self.settings,
                &run.route,
                principal,
                &run_id,
                call,
            )? {
                Ok(ok) if ok.needs_approval => {
                    let arguments = Value::Object(ok.arguments.clone()).to_string();
                    let approval = self.state.request_approval(
                        &run_id,
                        &call.id,
                        &ok.function,
                        &arguments,
                        &principal.name,
                    )?;
                    waiting.push(Waiting {
                        index,
                        approval,
                        admitted: ok,
                    });
                }
                Ok(ok) => admitted.push((index, ok)),
                Err(refusal) => decisions[index] = Some(refused(refusal)),
            }
        }
        let caller = caller_context(principal, &run_id);
        for (index, decision) in self.execute(&caller, calls, admitted).await? {
            decisions[index] = Some(decision);
        }
        for w in &waiting {
            decisions[w.index] = Some(CallDecision::AwaitingApproval {
                approval: w.approval,
            });
        }
        let mut results = Vec::new();
        for (call, decision) in calls.iter().zip(decisions) {
            let decision = decision.expect("every call was decided or waits");
            let awaiting = matches!(decision, CallDecision::AwaitingApproval { .. });
            let result = self.note_call(run, call, decision)?;
            results.push((!awaiting).then_some(result));
        }
        Ok((results, waiting))
    }

    /// Runs admitted calls concurrently in the sandbox and settles their fuel.
    async fn execute(
        &self,
        caller: &CallContext,
        calls: &[ToolCall],
        admitted: Vec<(usize, Admitted)>,
    ) -> Result<Vec<(usize, CallDecision)>, StateError> {
        let runs = admitted.iter().map(|(_, ok)| {
            let arguments = Value::Object(ok.arguments.clone()).to_string();
            async move { self.host.call(&ok.function, &arguments, caller).await }
        });
        let reports = futures::future::join_all(runs).await;
        let mut decisions = Vec::new();
        for ((index, ok), report) in admitted.into_iter().zip(reports) {
            if let Some(reservation) = ok.fuel {
                let used = report.as_ref().map_or(0, |r| r.usage.fuel);
                self.state.settle(reservation, used)?;
            }
            decisions.push((
                index,
                match report {
                    Ok(report) => CallDecision::Ran {
                        function: ok.function,
                        report: Box::new(report),
                    },
                    // The host validates arguments against the schema before running anything.
                    Err(error) => refused(Refusal::InvalidArguments {
                        tool: calls[index].name.clone(),
                        message: error.to_string(),
                    }),
                },
            ));
        }
        Ok(decisions)
    }

    /// Records a call's decision (audit record and event) and returns what the model is told.
    fn note_call(
        &self,
        run: &mut Run,
        call: &ToolCall,
        decision: CallDecision,
    ) -> Result<ToolResult, StateError> {
        let result = self.record_call(run, call, &decision)?;
        run.report.events.push(Event::Call {
            call: call.clone(),
            decision,
            result: result.clone(),
        });
        Ok(result)
    }

    /// Ends a cancelled run. Budget reservations of interrupted calls stay as reserved.
    fn cancelled(&self, run: Run) -> Result<RunReport, StateError> {
        let answer = "Cancelled before the run finished.".to_owned();
        self.finish(run, RunStatus::Cancelled, answer)
    }

    /// Keeps the run's state for [`Agent::resume`] and reports it as paused.
    fn pause(&self, mut run: Run, paused: Paused) -> Result<RunReport, StateError> {
        let run_id = run.report.run_id.clone();
        let approvals: Vec<String> = paused
            .waiting
            .iter()
            .map(|w| format!("{} ({})", w.approval, w.admitted.function))
            .collect();
        let state = serde_json::to_string(&paused).map_err(|e| StateError::Corrupt {
            path: self.state.path().to_owned(),
            message: format!("cannot keep run {run_id}: {e}"),
        })?;
        self.state.pause_run(&run_id, &self.settings.name, &state)?;
        self.state.append_audit(
            &run_id,
            "run.paused",
            &json!({"approvals": paused.waiting.iter().map(|w| w.approval).collect::<Vec<_>>()}),
        )?;
        run.report.status = RunStatus::Paused;
        run.report.answer = format!(
            "Paused: waiting for human approval of {}. Decide with `harness approvals approve ID` or `harness approvals deny ID --reason ...`.",
            approvals.join(", ")
        );
        Ok(run.report)
    }

    /// Audits one call's decision and words its result for the model.
    fn record_call(
        &self,
        run: &mut Run,
        call: &ToolCall,
        decision: &CallDecision,
    ) -> Result<ToolResult, StateError> {
        let (kind, record, content, is_error) = match decision {
            // Its audit record is the approval request itself.
            CallDecision::AwaitingApproval { approval } => {
                return Ok(ToolResult {
                    call_id: call.id.clone(),
                    content: format!("waiting for human approval {approval}"),
                    is_error: false,
                });
            }
            CallDecision::Refused { gate, reason } => {
                if *gate == "arguments" {
                    run.argument_errors += 1;
                }
                (
                    "tool.refused",
                    json!({"call_id": call.id, "name": call.name, "gate": gate, "reason": reason}),
                    format!("refused by the harness ({gate}): {reason}"),
                    true,
                )
            }
            CallDecision::Ran { function, report } => {
                tracing::info!(
                    target: "harness::genai",
                    fuel = report.usage.fuel,
                    "gen_ai.operation.name" = "execute_tool",
                    "gen_ai.tool.name" = %function,
                    "gen_ai.tool.call.id" = %call.id,
                    "gen_ai.conversation.id" = %run.report.run_id,
                    outcome = report.outcome.kind(),
                    latency_ms = report.usage.wall.as_secs_f64() * 1000.0,
                    "tool call"
                );
                let (content, is_error) = match &report.outcome {
                    Outcome::Ok { value } => (value.to_string(), false),
                    Outcome::ToolError { error } => {
                        (format!("the tool returned an error: {error}"), true)
                    }
                    Outcome::Stopped { stop } => (format!("the tool was stopped: {stop}"), true),
                    other => (format!("the tool call ended as {}", other.kind()), true),
                };
                (
                    "tool.called",
                    json!({"call_id": call.id, "function": function, "outcome": report.outcome,
                           "fuel": report.usage.fuel, "wall_us": report.usage.wall.as_micros() as u64,
                           "denials": report.denials}),
                    content,
                    is_error,
                )
            }
        };
        self.state.append_audit(&run.report.run_id, kind, &record)?;
        if let CallDecision::Ran { function, .. } = decision {
            self.check_error_rate(run, function)?;
        }
        let screened = self.settings.pii.apply(&content);
        let (content, is_error) = match self.note_screening(run, &call.id, screened)? {
            Ok(content) => (content, is_error),
            Err(kind) => (
                format!(
                    "the tool's result was withheld: it contains {} data",
                    kind.name()
                ),
                true,
            ),
        };
        Ok(ToolResult {
            call_id: call.id.clone(),
            content,
            is_error,
        })
    }

    fn finish(
        &self,
        mut run: Run,
        status: RunStatus,
        answer: String,
    ) -> Result<RunReport, StateError> {
        self.state.append_audit(
            &run.report.run_id,
            "run.ended",
            &json!({"status": status, "answer": answer, "turns": run.report.turns,
                    "prompt_version": run.report.prompt_version,
                    "gen_ai.usage.input_tokens": run.report.usage.input_tokens,
                    "gen_ai.usage.output_tokens": run.report.usage.output_tokens}),
        )?;
        run.report.status = status;
        run.report.answer = answer;
        Ok(run.report)
    }
}

/// A call that waits for a human, as a paused run keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Waiting {
    /// Its position among the turn's calls.
    index: usize,
    /// The approval's number.
    approval: i64,
    /// What to run once approved.
    admitted: Admitted,
}

/// Everything needed to resume a paused run, stored as JSON.
#[derive(Serialize, Deserialize)]
struct Paused {
    principal: String,
    prompt_version: String,
    route: Route,
    roles: BTreeSet<String>,
    /// The conversation before the paused turn.
    request: ModelRequest,
    turns: u32,
    usage: TokenUsage,
    argument_errors: u32,
    /// The paused turn: the model's text and calls, and the results known so far.
    text: Option<String>,
    calls: Vec<ToolCall>,
    results: Vec<Option<ToolResult>>,
    waiting: Vec<Waiting>,
}

impl Run {
    /// A run with no events yet (its route and prompt version are set once known).
    fn new(run_id: String, turns: u32, usage: TokenUsage, argument_errors: u32) -> Run {
        Run {
            report: RunReport {
                run_id,
                status: RunStatus::Answered,
                answer: String::new(),
                turns,
                usage,
                prompt_version: String::new(),
                events: Vec::new(),
            },
            route: Route {
                name: "default".into(),
                tools: Vec::new(),
            },
            alerted_tokens: false,
            alerted_tools: BTreeSet::new(),
            argument_errors,
            output_errors: 0,
        }
    }
}

/// The context the host gives each tool call of a run.
fn caller_context(principal: &Principal, run_id: &str) -> CallContext {
    CallContext {
        roles: principal.roles.iter().cloned().collect(),
        ..CallContext::new(&principal.name, run_id)
    }
}

/// A run in progress.
struct Run {
    report: RunReport,
    route: Route,
    /// Whether the run-token alert was raised, and for which tools the error-rate one was.
    alerted_tokens: bool,
    alerted_tools: BTreeSet<String>,
    argument_errors: u32,
    output_errors: u32,
}

fn refused(refusal: Refusal) -> CallDecision {
    CallDecision::Refused {
        gate: refusal.gate(),
        reason: refusal.to_string(),
    }
}

/// `run-` and 16 hex digits, unique per agent, principal and instant.
fn new_run_id(agent: &str, principal: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let digest = Sha256::digest(format!(
        "{agent}\n{principal}\n{now}\n{}",
        std::process::id()
    ));
    format!("run-{}", &hex::encode(digest)[..16])
}
