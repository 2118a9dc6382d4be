//! One agent run: the user's words go to the model; each tool call it proposes passes the
//! [gates](crate::gates) and then the sandbox; results go back; until the model answers, the turn
//! limit is reached, or it cannot go on. Every step is an audit record in the hash chain, and
//! the run always ends with an answer a person can read — never an empty or silent one.

//!
//! The loop is here; [`calls`](self) gates, runs and records a turn's tool calls, `pause`
//! keeps a run for human approval and resumes it, `alerts` raises `[alerts]` thresholds, and
//! [`crate::telemetry`] traces it.

mod alerts;
mod calls;
mod pause;
mod report;

pub use crate::calls::CallDecision;
pub use pause::{PausedRun, paused_run};
pub use report::{Event, RunReport, RunStatus};

use pause::Paused;
/// Cancels runs: checked between steps, and it interrupts a model call or a batch of tool calls
/// in flight (their sandboxes are dropped); the run ends recorded as cancelled.
pub use tokio_util::sync::CancellationToken;

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tracing::{Instrument, Span};

use harness_sandbox::Host;
use sha2::{Digest, Sha256};

use crate::calls::{ToolGate, new_run_id};
use crate::config::{AgentSettings, Config};
use crate::gates::Principal;
use crate::guards::pii::Screened;
use crate::models::{
    Message, Model, ModelRequest, ModelResponse, TokenUsage, ToolCall, ToolChoice, ToolSpec,
};
use crate::routing::{KeywordRouter, Route, Router};
use crate::state::ledger::{Budget, Exhausted, Reservation};
use crate::state::records::{AuditRecord, ModelResponded, PromptUsed, RunEnded, RunStarted};
use crate::state::switches::Target;
use crate::state::{StateError, StateStore};
use crate::telemetry;

/// An agent ready to run: its settings, its model (with retries and fallbacks), the host its
/// tools run in, and the state its runs are recorded in. It owns what it needs (clones of shared
/// handles), so a run can be spawned onto its own task.
#[derive(Clone)]
pub struct Agent {
    gate: ToolGate,
    settings: AgentSettings,
    model: Arc<dyn Model>,
    router: Arc<dyn Router>,
    cancel: CancellationToken,
    steps: Option<UnboundedSender<Event>>,
}

/// A run whose first steps are recorded ([`Agent::begin`], [`Agent::take_up`]): ended already
/// (its input rejected, its agent switched off), or ready for [`Agent::proceed`] to drive.
pub struct Begun(Beginning);

enum Beginning {
    Ended(RunReport),
    Going(Box<Going>),
}

/// A run about to go on: the conversation so far, and for a resumed run, the turn its
/// approvals were decided in.
struct Going {
    run: Run,
    principal: Principal,
    request: ModelRequest,
    decided: Option<pause::Decided>,
    span: Span,
}

impl Begun {
    fn ended(report: RunReport) -> Begun {
        Begun(Beginning::Ended(report))
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        match &self.0 {
            Beginning::Ended(report) => &report.run_id,
            Beginning::Going(going) => &going.run.report.run_id,
        }
    }
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
        Agent::over(ToolGate::new(host, state, config), name, model)
    }

    /// Agent `name` of the gate's whitelist, calling its tools through `gate` (a server's
    /// gate, shared with its other front ends).
    pub fn over(gate: ToolGate, name: &str, model: Arc<dyn Model>) -> Result<Agent, UnknownAgent> {
        let agents = gate.config().agents();
        let settings = agents
            .get(name)
            .ok_or_else(|| UnknownAgent {
                name: name.to_owned(),
                known: agents.keys().cloned().collect(),
            })?
            .clone();
        Ok(Agent {
            router: Arc::new(KeywordRouter::new(&settings)),
            gate,
            settings,
            model,
            cancel: CancellationToken::new(),
            steps: None,
        })
    }

    /// The same agent, whose runs `cancel` can stop.
    pub fn with_cancel(self, cancel: CancellationToken) -> Agent {
        Agent { cancel, ..self }
    }

    /// The same agent, also sending each step of its runs to `steps` as it happens (for a
    /// live view; the report still has them all).
    pub fn with_steps(self, steps: UnboundedSender<Event>) -> Agent {
        Agent {
            steps: Some(steps),
            ..self
        }
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
        self.gate.state()
    }

    /// The gates and sandbox its tool calls go through.
    pub fn gate(&self) -> &ToolGate {
        &self.gate
    }

    /// Runs `input` for `principal` to its end.
    pub async fn run(&self, principal: &Principal, input: &str) -> Result<RunReport, StateError> {
        let begun = self.begin(principal, input)?;
        self.proceed(begun).await
    }

    /// The first steps of a run of `input` for `principal`, all recorded before it returns
    /// (its start, the screening of the input, the agent's kill switch, the route): a caller
    /// can give out the run's id and have it found, then [`Agent::proceed`] with it, on
    /// another task if it likes.
    pub fn begin(&self, principal: &Principal, input: &str) -> Result<Begun, StateError> {
        let run_id = new_run_id(
            "run",
            &format!("{}\n{}", self.settings.name, principal.name),
        );
        let mut run = Run::new(run_id.clone(), 0, TokenUsage::default(), 0);
        let (prompt, canary) = self.settings.prompt_for(&principal.name);
        run.report.prompt_version = prompt.version.clone();
        let span = telemetry::agent_span(
            &self.settings.name,
            &run_id,
            &self.model.id(),
            &prompt.version,
        );
        let _traced = span.enter();
        // The audit log keeps the input as the model would see it, never the unmasked text; an
        // input over the length limit is not even screened.
        let chars = input.chars().count();
        let too_long = chars > self.settings.max_input_chars;
        let screened = (!too_long).then(|| self.settings.pii.apply(input));
        let shown = match &screened {
            Some(Screened::Passed { text, .. }) => Some(text.as_str()),
            _ => None,
        };
        self.gate.state().append_audit(
            &run_id,
            AuditRecord::RunStarted(RunStarted {
                agent: self.settings.name.clone(),
                principal: principal.name.clone(),
                roles: principal.roles.iter().cloned().collect(),
                model: self.model.id().to_string(),
                prompt: PromptUsed {
                    version: prompt.version.clone(),
                    source: prompt.source.clone(),
                    canary,
                },
                input: shown.map(str::to_owned),
                input_chars: chars,
                input_sha256: hex::encode(Sha256::digest(input)),
            }),
        )?;
        let Some(screened) = screened else {
            let answer = format!(
                "Your message is {chars} characters long; this agent accepts at most {}. Nothing was sent to the model.",
                self.settings.max_input_chars
            );
            return self
                .finish(run, RunStatus::InputRejected, answer)
                .map(Begun::ended);
        };
        let input = match self.note_screening(&mut run, "input", screened)? {
            Ok(text) => text,
            Err(kind) => {
                let answer = format!(
                    "Your message was not sent to the model: it contains {} data, which this agent does not accept.",
                    kind.name()
                );
                return self
                    .finish(run, RunStatus::InputRejected, answer)
                    .map(Begun::ended);
            }
        };
        if let Some(killed) = self
            .gate
            .state()
            .killed(&Target::Agent(self.settings.name.clone()))?
        {
            return self
                .finish(
                    run,
                    RunStatus::AgentKilled,
                    format!(
                        "The agent `{}` is switched off: {}",
                        self.settings.name, killed.reason
                    ),
                )
                .map(Begun::ended);
        }
        run.route = self.router.route(&input);
        self.gate.state().append_audit(
            &run_id,
            AuditRecord::RunRouted {
                route: run.route.clone(),
            },
        )?;
        let request = ModelRequest {
            system: prompt.text.clone(),
            messages: vec![Message::User { text: input }],
            tools: self.offered(&run.route)?,
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: true,
            max_output_tokens: self.settings.max_output_tokens,
        };
        drop(_traced);
        Ok(Begun(Beginning::Going(Box::new(Going {
            run,
            principal: principal.clone(),
            request,
            decided: None,
            span,
        }))))
    }

    /// Drives a run [`Agent::begin`] or [`Agent::take_up`] recorded to its end (or its next
    /// pause).
    pub async fn proceed(&self, begun: Begun) -> Result<RunReport, StateError> {
        match begun.0 {
            Beginning::Ended(report) => Ok(report),
            Beginning::Going(going) => {
                let Going {
                    mut run,
                    principal,
                    mut request,
                    decided,
                    span,
                } = *going;
                async {
                    if let Some(decided) = decided {
                        self.finish_turn(&mut run, &principal, &mut request, decided)
                            .await?;
                    }
                    self.drive(run, &principal, request).await
                }
                .instrument(span)
                .await
            }
        }
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
                    self.gate.state().append_audit(
                        &run_id,
                        AuditRecord::BudgetExhausted {
                            budget: exhausted.clone(),
                        },
                    )?;
                    return self.finish(
                        run,
                        RunStatus::BudgetExhausted,
                        format!("Stopped before asking the model again: {exhausted}."),
                    );
                }
            };
            run.report.turns += 1;
            let chat = telemetry::chat_span(&run_id, &self.model.id());
            let started = std::time::Instant::now();
            let answered = tokio::select! {
                answered = self.model.complete(&request).instrument(chat.clone()) => Some(answered),
                () = self.cancel.cancelled() => None,
            };
            let Some(answered) = answered else {
                return self.cancelled(run);
            };
            let latency = started.elapsed();
            if let Some(reservation) = reservation {
                let used = answered.as_ref().map_or(0, |r| r.usage.total());
                self.gate.state().settle(reservation, used)?;
            }
            let response = match answered {
                Ok(response) => response,
                Err(error) => {
                    telemetry::model_failed(&chat, &error.to_string());
                    self.gate.state().append_audit(
                        &run_id,
                        AuditRecord::ModelFailed {
                            error: error.to_string(),
                        },
                    )?;
                    return self.finish(
                        run,
                        RunStatus::ModelFailed,
                        format!("No answer: the model could not be reached ({error})."),
                    );
                }
            };
            self.record_response(&mut run, &request, &response, (&chat, latency))?;
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
                self.gate.state().append_audit(
                    &run_id,
                    AuditRecord::AnswerInvalid {
                        problem: self.settings.pii.mask(&problem),
                    },
                )?;
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
        Ok(self.gate.state().reserve(run_id, &scopes, most)?.map(Some))
    }

    /// The functions of the route's tools that are not switched off, as the model sees them.
    fn offered(&self, route: &Route) -> Result<Vec<ToolSpec>, StateError> {
        let mut offered = Vec::new();
        for tool in self.gate.host().tools() {
            let name = &tool.policy.name;
            if !route.tools.contains(name)
                || self
                    .gate
                    .state()
                    .killed(&Target::Tool(name.clone()))?
                    .is_some()
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

    /// Counts the model's answer, records it (masked) in the audit log and on the `chat` span,
    /// and checks the run's token alert.
    fn record_response(
        &self,
        run: &mut Run,
        request: &ModelRequest,
        response: &ModelResponse,
        (chat, latency): (&Span, std::time::Duration),
    ) -> Result<(), StateError> {
        let usage = &mut run.report.usage;
        usage.input_tokens += response.usage.input_tokens;
        usage.output_tokens += response.usage.output_tokens;
        usage.cache_read_tokens += response.usage.cache_read_tokens;
        let id = self.model.id();
        // The log keeps what the model said masked, like everything that reaches it.
        let pii = &self.settings.pii;
        let text = response.text.as_deref().map(|t| pii.mask(t));
        let calls: Vec<ToolCall> = response
            .calls
            .iter()
            .map(|call| ToolCall {
                raw_arguments: pii.mask(&call.raw_arguments),
                ..call.clone()
            })
            .collect();
        let content = telemetry::capture_content().then(|| {
            let said = serde_json::json!([{"role": "assistant", "text": text, "calls": calls}]);
            (
                serde_json::to_string(&request.messages).unwrap_or_default(),
                said.to_string(),
            )
        });
        telemetry::model_responded(chat, response, content);
        let latency_ms = latency.as_secs_f64() * 1000.0;
        self.gate.state().append_audit(
            &run.report.run_id,
            AuditRecord::ModelResponded(ModelResponded {
                model: response.model.clone(),
                response_id: response.response_id.clone(),
                finish: response.finish.clone(),
                text,
                calls,
                provider: id.provider.clone(),
                request_model: id.model.clone(),
                input_tokens: response.usage.input_tokens,
                output_tokens: response.usage.output_tokens,
                latency_ms,
            }),
        )?;
        self.check_run_tokens(run)?;
        self.step(
            run,
            Event::Model {
                text: response.text.clone(),
                calls: response.calls.len(),
                usage: response.usage,
            },
        );
        Ok(())
    }

    /// Adds `event` to the run's report, and sends it to whoever follows the run.
    fn step(&self, run: &mut Run, event: Event) {
        if let Some(steps) = &self.steps {
            // A follower that went away does not stop the run.
            let _ = steps.send(event.clone());
        }
        run.report.events.push(event);
    }

    /// Ends a cancelled run. Budget reservations of interrupted calls stay as reserved.
    fn cancelled(&self, run: Run) -> Result<RunReport, StateError> {
        let answer = "Cancelled before the run finished.".to_owned();
        self.finish(run, RunStatus::Cancelled, answer)
    }

    fn finish(
        &self,
        mut run: Run,
        status: RunStatus,
        answer: String,
    ) -> Result<RunReport, StateError> {
        // Runs end inside their `invoke_agent` span.
        telemetry::run_ended(
            &Span::current(),
            &crate::state::runs::RunState::Stopped(status).name(),
            status != RunStatus::Answered,
        );
        self.gate.state().append_audit(
            &run.report.run_id,
            AuditRecord::RunEnded(RunEnded {
                status,
                answer: self.settings.pii.mask(&answer),
                turns: run.report.turns,
                prompt_version: run.report.prompt_version.clone(),
                input_tokens: run.report.usage.input_tokens,
                output_tokens: run.report.usage.output_tokens,
            }),
        )?;
        run.report.status = status;
        run.report.answer = answer;
        Ok(run.report)
    }
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
