//! One agent run: the user's words go to the model; each tool call it proposes passes the
//! [gates](super::gates) and then the sandbox; results go back; until the model answers, the turn
//! limit is reached, or it cannot go on. Every step is an audit record in the hash chain, and
//! the run always ends with an answer a person can read — never an empty or silent one.

use std::sync::Arc;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::gates::{self, Principal, Refusal};
use super::guards::pii::{Kind, Screened};
use super::models::{
    Message, Model, ModelRequest, ModelResponse, TokenUsage, ToolCall, ToolChoice, ToolResult,
    ToolSpec,
};
use super::state::ledger::{Budget, Exhausted, Reservation};
use super::state::switches::Target;
use super::state::{StateError, StateStore};
use crate::policy::AgentSettings;
use crate::{CallContext, CallReport, Host, Outcome};

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
    /// Every step.
    pub events: Vec<Event>,
}

/// An agent ready to run: its settings, its model (with retries and fallbacks), the host its
/// tools run in, and the state its runs are recorded in.
pub struct Agent<'a> {
    host: &'a Host,
    state: &'a StateStore,
    settings: &'a AgentSettings,
    model: Arc<dyn Model>,
}

impl<'a> Agent<'a> {
    /// An agent over `host` and `state`.
    pub fn new(
        host: &'a Host,
        state: &'a StateStore,
        settings: &'a AgentSettings,
        model: Arc<dyn Model>,
    ) -> Agent<'a> {
        Agent {
            host,
            state,
            settings,
            model,
        }
    }

    /// Runs `input` for `principal` to its end.
    pub async fn run(&self, principal: &Principal, input: &str) -> Result<RunReport, StateError> {
        let run_id = new_run_id(&self.settings.name, &principal.name);
        let mut run = Run {
            report: RunReport {
                run_id: run_id.clone(),
                status: RunStatus::Answered,
                answer: String::new(),
                turns: 0,
                usage: TokenUsage::default(),
                events: Vec::new(),
            },
            argument_errors: 0,
        };
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
        let mut request = ModelRequest {
            system: self.settings.system.clone(),
            messages: vec![Message::User { text: input }],
            tools: self.offered()?,
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: true,
            max_output_tokens: self.settings.max_output_tokens,
        };
        while run.report.turns < self.settings.max_turns {
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
            let answered = self.model.complete(&request).await;
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
            self.record_response(&mut run, &response)?;
            if response.calls.is_empty() {
                let answer = response
                    .text
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| "The model ended its turn without an answer.".into());
                return self.finish(run, RunStatus::Answered, answer);
            }
            let results = self
                .call_tools(&mut run, principal, &response.calls)
                .await?;
            request.messages.push(Message::Assistant {
                text: response.text,
                calls: response.calls,
            });
            request.messages.push(Message::ToolResults { results });
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

    /// The functions of the agent's tools that are not switched off, as the model sees them.
    fn offered(&self) -> Result<Vec<ToolSpec>, StateError> {
        let mut offered = Vec::new();
        for tool in self.host.tools() {
            let name = &tool.policy.name;
            if !self.settings.tools.contains(name)
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

    fn record_response(&self, run: &mut Run, response: &ModelResponse) -> Result<(), StateError> {
        let usage = &mut run.report.usage;
        usage.input_tokens += response.usage.input_tokens;
        usage.output_tokens += response.usage.output_tokens;
        usage.cache_read_tokens += response.usage.cache_read_tokens;
        self.state.append_audit(
            &run.report.run_id,
            "model.responded",
            &json!({"model": response.model, "response_id": response.response_id,
                    "finish": response.finish, "text": response.text, "calls": response.calls,
                    "gen_ai.usage.input_tokens": response.usage.input_tokens,
                    "gen_ai.usage.output_tokens": response.usage.output_tokens}),
        )?;
        run.report.events.push(Event::Model {
            text: response.text.clone(),
            calls: response.calls.len(),
            usage: response.usage,
        });
        Ok(())
    }

    /// Gates each call in order, runs the admitted ones concurrently, and returns one result
    /// per call in the model's order.
    async fn call_tools(
        &self,
        run: &mut Run,
        principal: &Principal,
        calls: &[ToolCall],
    ) -> Result<Vec<ToolResult>, StateError> {
        let run_id = run.report.run_id.clone();
        let caller = CallContext {
            roles: principal.roles.iter().cloned().collect(),
            ..CallContext::new(&principal.name, &run_id)
        };
        let mut decisions: Vec<Option<CallDecision>> = Vec::new();
        let mut admitted = Vec::new();
        for (index, call) in calls.iter().enumerate() {
            match gates::check(
                self.host,
                self.state,
                self.settings,
                principal,
                &run_id,
                call,
            )? {
                Ok(ok) => {
                    admitted.push((index, ok));
                    decisions.push(None);
                }
                Err(refusal) => decisions.push(Some(refused(refusal))),
            }
        }
        let runs = admitted.iter().map(|(_, ok)| {
            let arguments = Value::Object(ok.arguments.clone()).to_string();
            let caller = &caller;
            async move { self.host.call(&ok.function, &arguments, caller).await }
        });
        let reports = futures::future::join_all(runs).await;
        for ((index, ok), report) in admitted.into_iter().zip(reports) {
            if let Some(reservation) = ok.fuel {
                let used = report.as_ref().map_or(0, |r| r.usage.fuel);
                self.state.settle(reservation, used)?;
            }
            decisions[index] = Some(match report {
                Ok(report) => CallDecision::Ran {
                    function: ok.function,
                    report: Box::new(report),
                },
                // The host validates arguments against the schema before running anything.
                Err(error) => refused(Refusal::InvalidArguments {
                    tool: calls[index].name.clone(),
                    message: error.to_string(),
                }),
            });
        }
        let mut results = Vec::new();
        for (call, decision) in calls.iter().zip(decisions) {
            let decision = decision.expect("every call was decided");
            let result = self.record_call(run, call, &decision)?;
            run.report.events.push(Event::Call {
                call: call.clone(),
                decision,
                result: result.clone(),
            });
            results.push(result);
        }
        Ok(results)
    }

    /// Audits one call's decision and words its result for the model.
    fn record_call(
        &self,
        run: &mut Run,
        call: &ToolCall,
        decision: &CallDecision,
    ) -> Result<ToolResult, StateError> {
        let (kind, record, content, is_error) = match decision {
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
                let (content, is_error) = match &report.outcome {
                    Outcome::Ok { value } => (value.to_string(), false),
                    Outcome::ToolError { error } => {
                        (format!("the tool returned an error: {error}"), true)
                    }
                    Outcome::Stopped { stop } => (format!("the tool was stopped: {stop}"), true),
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
                    "gen_ai.usage.input_tokens": run.report.usage.input_tokens,
                    "gen_ai.usage.output_tokens": run.report.usage.output_tokens}),
        )?;
        run.report.status = status;
        run.report.answer = answer;
        Ok(run.report)
    }
}

/// A run in progress.
struct Run {
    report: RunReport,
    argument_errors: u32,
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
