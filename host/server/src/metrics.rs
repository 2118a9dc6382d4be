//! Prometheus metrics of a serving process at `GET /metrics` (text format): what every call
//! through `/mcp` and `/v1` (and every tool call of the runs it runs) came to, how long the
//! sandbox took, how runs ended and the tokens they used, what is in flight, what waits for a
//! person, and how reloads went.

use std::sync::Arc;
use std::time::Duration;

use harness_agent::calls::CallDecision;
use harness_agent::run::{Event, RunReport};
use harness_agent::state::StateStore;
use harness_agent::state::records::RunFeedback;
use harness_agent::state::runs::RunState;
use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The counters of one server; cheap to clone.
#[derive(Clone)]
pub struct ServerMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    calls: IntCounterVec,
    refusals: IntCounterVec,
    stops: IntCounterVec,
    call_seconds: HistogramVec,
    in_flight: IntGauge,
    pending_approvals: IntGauge,
    reloads: IntCounterVec,
    runs: IntCounterVec,
    run_seconds: HistogramVec,
    tokens: IntCounterVec,
    feedback: IntCounterVec,
    feedback_score: CounterVec,
}

impl Default for ServerMetrics {
    fn default() -> ServerMetrics {
        let calls = IntCounterVec::new(
            Opts::new("harness_tool_calls_total", "Calls that ran in the sandbox"),
            &["tool", "function", "outcome"],
        )
        .expect("a valid metric");
        let refusals = IntCounterVec::new(
            Opts::new("harness_refusals_total", "Calls a gate refused"),
            &["gate"],
        )
        .expect("a valid metric");
        let stops = IntCounterVec::new(
            Opts::new("harness_stops_total", "Calls the sandbox stopped, by limit"),
            &["kind"],
        )
        .expect("a valid metric");
        let call_seconds = HistogramVec::new(
            HistogramOpts::new(
                "harness_tool_call_seconds",
                "Wall time of calls in the sandbox",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
            ]),
            &["tool"],
        )
        .expect("a valid metric");
        let in_flight = IntGauge::new("harness_calls_in_flight", "Calls being handled now")
            .expect("a valid metric");
        let pending_approvals = IntGauge::new(
            "harness_pending_approvals",
            "Approvals waiting for a person (read at scrape time)",
        )
        .expect("a valid metric");
        let reloads = IntCounterVec::new(
            Opts::new("harness_reloads_total", "Whitelist reloads, by result"),
            &["result"],
        )
        .expect("a valid metric");
        let runs = IntCounterVec::new(
            Opts::new(
                "harness_runs_total",
                "Agent runs run in this server, by how they ended or paused",
            ),
            &["agent", "status"],
        )
        .expect("a valid metric");
        let run_seconds = HistogramVec::new(
            HistogramOpts::new(
                "harness_run_seconds",
                "Wall time of agent runs, from start or resumption to end or pause",
            )
            .buckets(vec![
                0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0,
            ]),
            &["agent"],
        )
        .expect("a valid metric");
        let tokens = IntCounterVec::new(
            Opts::new("harness_model_tokens_total", "Model tokens used by runs"),
            &["agent", "model", "prompt_version", "direction"],
        )
        .expect("a valid metric");
        let feedback = IntCounterVec::new(
            Opts::new(
                "harness_run_feedback_total",
                "Feedback given on runs through this server",
            ),
            &["agent", "prompt_version", "canary"],
        )
        .expect("a valid metric");
        let feedback_score = CounterVec::new(
            Opts::new(
                "harness_run_feedback_score_sum",
                "The sum of the feedback scores (0 to 1); divide by harness_run_feedback_total",
            ),
            &["agent", "prompt_version", "canary"],
        )
        .expect("a valid metric");
        let registry = Registry::new();
        for metric in [
            Box::new(calls.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(refusals.clone()),
            Box::new(stops.clone()),
            Box::new(call_seconds.clone()),
            Box::new(in_flight.clone()),
            Box::new(pending_approvals.clone()),
            Box::new(reloads.clone()),
            Box::new(runs.clone()),
            Box::new(run_seconds.clone()),
            Box::new(tokens.clone()),
            Box::new(feedback.clone()),
            Box::new(feedback_score.clone()),
        ] {
            registry
                .register(metric)
                .expect("each metric registered once");
        }
        ServerMetrics {
            inner: Arc::new(Inner {
                registry,
                calls,
                refusals,
                stops,
                call_seconds,
                in_flight,
                pending_approvals,
                reloads,
                runs,
                run_seconds,
                tokens,
                feedback,
                feedback_score,
            }),
        }
    }
}

impl ServerMetrics {
    /// Counts what a call came to.
    pub fn decided(&self, decision: &CallDecision) {
        let inner = &self.inner;
        match decision {
            CallDecision::Refused { gate, .. } => {
                inner.refusals.with_label_values(&[gate.as_str()]).inc();
            }
            CallDecision::AwaitingApproval { .. } => {
                inner
                    .refusals
                    .with_label_values(&["awaiting_approval"])
                    .inc();
            }
            CallDecision::Ran { function, report } => {
                let (tool, name) = function.split_once('.').unwrap_or((function, ""));
                let outcome = report.outcome.kind();
                inner.calls.with_label_values(&[tool, name, outcome]).inc();
                if let harness_sandbox::Outcome::Stopped { stop } = &report.outcome {
                    inner.stops.with_label_values(&[stop.kind()]).inc();
                }
                inner
                    .call_seconds
                    .with_label_values(&[tool])
                    .observe(report.usage.wall.as_secs_f64());
            }
        }
    }

    /// Counts what a run (or the rest of a resumed one) of `agent`, asking model `model`, came
    /// to in `elapsed`: its status, its tokens, and each of its tool calls.
    pub fn ran(&self, agent: &str, model: &str, report: &RunReport, elapsed: Duration) {
        let inner = &self.inner;
        let status = RunState::Stopped(report.status).name();
        inner.runs.with_label_values(&[agent, &status]).inc();
        inner
            .run_seconds
            .with_label_values(&[agent])
            .observe(elapsed.as_secs_f64());
        for event in &report.events {
            match event {
                Event::Model { usage, .. } => {
                    let version = report.prompt_version.as_str();
                    for (direction, count) in [
                        ("input", usage.input_tokens),
                        ("output", usage.output_tokens),
                    ] {
                        inner
                            .tokens
                            .with_label_values(&[agent, model, version, direction])
                            .inc_by(count);
                    }
                }
                Event::Call { decision, .. } => self.decided(decision),
                _ => {}
            }
        }
    }

    /// Counts feedback given on a run.
    pub fn judged(&self, feedback: &RunFeedback) {
        let canary = if feedback.prompt.canary {
            "true"
        } else {
            "false"
        };
        let labels = [
            feedback.agent.as_str(),
            feedback.prompt.version.as_str(),
            canary,
        ];
        self.inner.feedback.with_label_values(&labels).inc();
        self.inner
            .feedback_score
            .with_label_values(&labels)
            .inc_by(feedback.score);
    }

    /// Counts a call in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.inner.in_flight.inc();
        InFlight(self.inner.in_flight.clone())
    }

    /// Counts a reload that served the new whitelist (`ok`) or kept the old one (`failed`).
    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.inner.reloads.with_label_values(&[result]).inc();
    }

    /// Every metric in Prometheus's text format, the pending approvals read from `state` now.
    pub fn render(&self, state: &StateStore) -> String {
        if let Ok(pending) = state.approvals(false) {
            self.inner
                .pending_approvals
                .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        }
        let mut text = Vec::new();
        let families = self.inner.registry.gather();
        if TextEncoder::new().encode(&families, &mut text).is_err() {
            return String::new();
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

/// A call counted in flight; dropping it ends the count.
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
