//! Golden datasets: cases of input, scripted model responses and expectations (tool calls made,
//! calls refused by which gate, how the run ends, what the answer says), run through the real
//! loop, gates and sandbox, with a pass/fail per case and tool-selection precision and recall.
//!
//! A dataset is JSON Lines, one case per line:
//!
//! ```json
//! {"name": "role", "input": "Open a ticket", "principal": "bob",
//!  "responses": [{"calls": [{"name": "tickets__create", "arguments": {...}}]}, {"text": "I can't."}],
//!  "expect": {"refused": {"tickets__create": "role"}, "status": "answered", "answer_contains": "can't"}}
//! ```
//!
//! Without `responses`, the agent's configured model answers (an evaluation of a real model).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::gates::Principal;
use crate::models::scripted::{ScriptedModel, Step};
use crate::models::{Model, ModelError};
use crate::run::{Agent, CallDecision, Event, RunReport, RunStatus};
use crate::state::StateError;
use crate::state::switches::Target;

/// One case of a dataset.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// A short name for the report.
    pub name: String,
    /// What the user says.
    pub input: String,
    /// Who asks (default `eval`).
    #[serde(default = "default_principal")]
    pub principal: String,
    /// Their roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tools switched off for this case.
    #[serde(default)]
    pub killed: Vec<String>,
    /// The model's answers, in order; absent: ask the agent's model.
    pub responses: Option<Vec<Step>>,
    /// What must happen.
    #[serde(default)]
    pub expect: Expect,
}

fn default_principal() -> String {
    "eval".into()
}

/// What a case expects; every field given must hold.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Tool names (as the model calls them) that must run in the sandbox, in any order.
    pub calls: Option<BTreeSet<String>>,
    /// Tool names that must be refused, and by which gate (`role`, `rate`, `kill_switch`, ...;
    /// `awaiting_approval` for a call that paused the run).
    #[serde(default)]
    pub refused: BTreeMap<String, String>,
    /// How the run must end (`answered`, `budget_exhausted`, ...).
    pub status: Option<RunStatus>,
    /// Text the answer must contain.
    pub answer_contains: Option<String>,
    /// Kinds of personal data that must have been masked (`email`, `card`, ...).
    #[serde(default)]
    pub masked: BTreeSet<String>,
}

/// How one case went.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Every expectation that failed, in words; empty when it passed.
    pub failures: Vec<String>,
    /// Tools it expected to run, when the case says (only such cases count toward precision and
    /// recall).
    pub expected_calls: Option<BTreeSet<String>>,
    /// Tools that did run.
    pub actual_calls: BTreeSet<String>,
    /// The run's id, to look it up in the audit log.
    pub run_id: String,
}

/// A whole evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Each case.
    pub cases: Vec<CaseResult>,
    /// Of the tools run in cases that name their calls, the share that was expected (1 when
    /// none ran).
    pub precision: f64,
    /// Of the tools those cases expected, the share that ran (1 when none was expected).
    pub recall: f64,
}

impl EvalReport {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.failures.is_empty())
    }
}

/// Reads a JSON Lines dataset; errors name the file and line.
pub fn load(path: &Path) -> Result<Vec<Case>, ModelError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ModelError::Config(format!("reading {}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| ModelError::Config(format!("{}, line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Runs every case with `agent`: scripted responses, or `model` for cases without them (such a
/// case fails when there is no model). Give it an agent over scratch state: cases switch tools
/// off and count toward rates and budgets.
pub async fn evaluate(
    agent: &Agent,
    model: Option<Arc<dyn Model>>,
    cases: &[Case],
) -> Result<EvalReport, StateError> {
    let state = agent.state();
    let mut results = Vec::new();
    for case in cases {
        let case_model: Arc<dyn Model> = match (&case.responses, &model) {
            (Some(steps), _) => Arc::new(ScriptedModel::new(&case.name, steps.clone())),
            (None, Some(model)) => model.clone(),
            (None, None) => {
                results.push(CaseResult {
                    name: case.name.clone(),
                    failures: vec!["the case has no `responses` and no model was given".into()],
                    expected_calls: None,
                    actual_calls: BTreeSet::new(),
                    run_id: String::new(),
                });
                continue;
            }
        };
        for tool in &case.killed {
            state.kill(
                &Target::Tool(tool.clone()),
                "switched off by the eval case",
                "eval",
            )?;
        }
        let principal = Principal {
            name: case.principal.clone(),
            roles: case.roles.iter().cloned().collect(),
        };
        let report = agent
            .clone()
            .with_model(case_model)
            .run(&principal, &case.input)
            .await?;
        for tool in &case.killed {
            state.enable(&Target::Tool(tool.clone()), "eval")?;
        }
        results.push(judge(case, &report));
    }
    let judged = results
        .iter()
        .filter_map(|r| Some((r.expected_calls.as_ref()?, &r.actual_calls)));
    let (mut expected, mut actual, mut hits) = (0, 0, 0);
    for (wanted, ran) in judged {
        expected += wanted.len();
        actual += ran.len();
        hits += wanted.intersection(ran).count();
    }
    let ratio = |n: usize, d: usize| if d == 0 { 1.0 } else { n as f64 / d as f64 };
    Ok(EvalReport {
        precision: ratio(hits, actual),
        recall: ratio(hits, expected),
        cases: results,
    })
}

fn judge(case: &Case, report: &RunReport) -> CaseResult {
    let mut actual_calls = BTreeSet::new();
    let mut refused = BTreeMap::new();
    let mut masked = BTreeSet::new();
    for event in &report.events {
        match event {
            Event::Call {
                call,
                decision: CallDecision::Ran { .. },
                ..
            } => {
                actual_calls.insert(call.name.clone());
            }
            Event::Call {
                call,
                decision: CallDecision::Refused { gate, .. },
                ..
            } => {
                refused.insert(call.name.clone(), gate.as_str().to_owned());
            }
            Event::Call {
                call,
                decision: CallDecision::AwaitingApproval { .. },
                ..
            } => {
                refused.insert(call.name.clone(), "awaiting_approval".to_owned());
            }
            Event::Masked { found, .. } => masked.extend(found.keys().map(|k| k.name().to_owned())),
            Event::Model { .. } => {}
        }
    }
    let expect = &case.expect;
    let mut failures = Vec::new();
    if let Some(calls) = &expect.calls
        && calls != &actual_calls
    {
        failures.push(format!("expected calls {calls:?}, ran {actual_calls:?}"));
    }
    for (tool, gate) in &expect.refused {
        match refused.get(tool) {
            Some(got) if got == gate => {}
            Some(got) => failures.push(format!(
                "expected {tool} refused by {gate}, refused by {got}"
            )),
            None => failures.push(format!(
                "expected {tool} refused by {gate}, it was not refused"
            )),
        }
    }
    if let Some(status) = expect.status
        && status != report.status
    {
        failures.push(format!(
            "expected status {status:?}, got {:?}: {}",
            report.status, report.answer
        ));
    }
    if let Some(text) = &expect.answer_contains
        && !report.answer.contains(text.as_str())
    {
        failures.push(format!(
            "expected the answer to contain {text:?}: {}",
            report.answer
        ));
    }
    if !expect.masked.is_subset(&masked) {
        failures.push(format!(
            "expected {:?} masked, masked {masked:?}",
            expect.masked
        ));
    }
    CaseResult {
        name: case.name.clone(),
        failures,
        expected_calls: expect.calls.clone(),
        actual_calls,
        run_id: report.run_id.clone(),
    }
}
