//! Runs: a filtered list, and a run's timeline read from its audit records: each model turn
//! with its tokens, each proposed call with the gate's decision or the sandbox's outcome (fuel,
//! time, denials), masking, approvals, the answer, and the prompt version (canary or not),
//! with a button that replays the run without side effects and says whether it matched.
//! A person reads their own principal's runs; approvers and operators read everyone's.

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use harness_agent::replay;
use harness_agent::state::audit::AuditEntry;
use harness_agent::state::records::AuditRecord;
use harness_agent::state::runs::{RunFilter, RunState, RunSummary};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::session::{Csrf, Viewer};
use super::{Console, layout};
use crate::api::{APPROVER, OPERATOR};

/// Runs per page.
const PAGE: usize = 50;

/// The list's filters, as the form sends them (empty fields mean no filter).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    principal: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    within: String,
}

/// Whether `viewer` reads everyone's runs, not only their own.
fn reads_all(viewer: &Viewer) -> bool {
    viewer.holds(APPROVER) || viewer.holds(OPERATOR)
}

/// `GET /console/runs`.
pub(crate) async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    filters: Result<Query<Filters>, QueryRejection>,
) -> Response {
    // Every filter is text, so only a malformed query string fails; it filters nothing.
    let filters = filters.map(|q| q.0).unwrap_or_default();
    let own = viewer.session.principal.name.clone();
    let principal = match (reads_all(&viewer), filters.principal.trim()) {
        (true, "") => None,
        (true, asked) => Some(asked.to_owned()),
        (false, _) => Some(own),
    };
    let mut problems = Vec::new();
    let status = match filters.status.as_str() {
        "" => None,
        name => RunState::parse(name).or_else(|| {
            problems.push(format!("`{name}` is not a run status"));
            None
        }),
    };
    let since = match filters.within.trim() {
        "" => None,
        span => match humantime::parse_duration(span) {
            Ok(span) => Some(harness_agent::state::audit::since(span)),
            Err(e) => {
                problems.push(format!("`{span}` is not a span such as 1h or 7days: {e}"));
                None
            }
        },
    };
    let filter = RunFilter {
        principal,
        status,
        since,
        before: None,
        limit: PAGE,
    };
    let runs = match console.server.gate().state().runs(&filter) {
        Ok(runs) => runs,
        Err(error) => return layout::forbidden(&viewer, &error.to_string()),
    };
    let agent = filters.agent.trim();
    let runs: Vec<&RunSummary> = runs
        .iter()
        .filter(|r| agent.is_empty() || r.agent == agent)
        .collect();
    let statuses = [
        "running",
        "paused",
        "answered",
        "turn_limit",
        "argument_errors",
        "model_failed",
        "agent_killed",
        "budget_exhausted",
        "input_rejected",
        "output_invalid",
        "cancelled",
        "abandoned",
    ];
    layout::page(
        "Runs",
        &viewer,
        html! {
            h1 { "Runs" }
            @for problem in &problems { p.problem role="alert" { (problem) } }
            form method="get" action="/console/runs" {
                label for="agent" { "Agent" }
                input #agent type="text" name="agent" value=(filters.agent);
                @if reads_all(&viewer) {
                    label for="principal" { "Principal" }
                    input #principal type="text" name="principal" value=(filters.principal);
                }
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "any" }
                    @for name in statuses {
                        option value=(name) selected[filters.status == name] { (name) }
                    }
                }
                label for="within" { "Begun within (1h, 7days)" }
                input #within type="text" name="within" value=(filters.within);
                button type="submit" { "Filter" }
            }
            @if runs.is_empty() {
                p { "No runs." }
            } @else {
                table {
                    thead { tr { th { "Run" } th { "Agent" } th { "For" } th { "Began" } th { "Status" } th { "Answer" } } }
                    tbody {
                        @for run in &runs {
                            tr {
                                td { a href=(format!("/console/runs/{}", run.run_id)) { (run.run_id) } }
                                td { (run.agent) }
                                td { (run.principal) }
                                td { (run.started_at) }
                                td.status { (run.status.name()) }
                                td { (run.answer.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// `GET /console/runs/{id}`.
pub(crate) async fn timeline_page(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let gate = console.server.gate();
    let state = gate.state();
    let run = match state.run_summary(&id) {
        Ok(Some(run)) => run,
        Ok(None) => return layout::forbidden(&viewer, &format!("There is no run {id}.")),
        Err(error) => return layout::forbidden(&viewer, &error.to_string()),
    };
    if !reads_all(&viewer) && run.principal != viewer.session.principal.name {
        return layout::forbidden(
            &viewer,
            &format!(
                "Run {id} is {}'s; you read only your own runs.",
                run.principal
            ),
        );
    }
    let records = match state.audit_of_run(&id) {
        Ok(records) => records,
        Err(error) => return layout::forbidden(&viewer, &error.to_string()),
    };
    layout::page(
        "Run",
        &viewer,
        html! {
            h1 { "Run " (run.run_id) }
            dl {
                dt { "Agent" } dd { (run.agent) }
                dt { "For" } dd { (run.principal) }
                dt { "Status" } dd #status { (run.status.name()) }
                dt { "Prompt version" } dd { (run.prompt_version) @if run.canary { " (canary)" } }
                @if let Some(answer) = &run.answer { dt { "Answer" } dd #answer { (answer) } }
            }
            form method="post" action=(format!("/console/runs/{}/replay", run.run_id)) {
                (viewer.csrf_field())
                button type="submit" { "Replay" }
                span.muted { " its recorded model responses, its tools re-run in scratch state with no grant reaching outside it" }
            }
            h2 { "Timeline" }
            (timeline(&records))
        },
    )
    .into_response()
}

/// `POST /console/runs/{id}/replay`: replays the run without side effects and says whether
/// it matched.
pub(crate) async fn replay(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    if let Some(refused) = viewer.refuse_stale(&form.csrf) {
        return refused;
    }
    let gate = console.server.gate();
    match gate.state().run_summary(&id) {
        Ok(Some(run)) if reads_all(&viewer) || run.principal == viewer.session.principal.name => {}
        Ok(_) => return layout::forbidden(&viewer, &format!("There is no run {id} of yours.")),
        Err(error) => return layout::forbidden(&viewer, &error.to_string()),
    }
    // Loading the scratch host blocks; the replay itself is async.
    let runtime = tokio::runtime::Handle::current();
    let run_id = id.clone();
    let replayed = tokio::task::spawn_blocking(move || {
        runtime.block_on(replay::replay_run(
            gate.config(),
            gate.state(),
            &run_id,
            &|var| std::env::var(var).ok(),
        ))
    })
    .await;
    let notice = match replayed {
        Ok(Ok((report, restricted))) => {
            let withheld = if restricted.is_empty() {
                String::new()
            } else {
                format!(" Withheld: {}.", restricted.join("; "))
            };
            match report.divergence {
                None => format!(
                    "Replayed {id}: matched ({} model responses, {} tool calls compared).{withheld}",
                    report.responses, report.compared
                ),
                Some(divergence) => format!("Replayed {id}: DIVERGED at {divergence}.{withheld}"),
            }
        }
        Ok(Err(error)) => format!("{id} could not be replayed: {error}"),
        Err(error) => format!("{id} could not be replayed: {error}"),
    };
    console.sessions.notify(&viewer.token, notice);
    Redirect::to(&format!("/console/runs/{id}")).into_response()
}

/// A run's records as a list of steps.
pub(super) fn timeline(records: &[AuditEntry]) -> Markup {
    html! {
        ol.timeline {
            @for entry in records {
                li data-kind=(entry.kind) {
                    span.kind { (entry.kind) } " " (step(&entry.record))
                }
            }
        }
    }
}

/// One record in words.
fn step(record: &AuditRecord) -> Markup {
    match record {
        AuditRecord::RunStarted(r) => html! {
            "for " (r.principal) ", model " (r.model) ", prompt " (r.prompt.version)
            @if r.prompt.canary { " (canary)" }
            @match &r.input { Some(input) => { ": " q { (input) } }, None => { " (the input did not reach the model)" } }
        },
        AuditRecord::ModelResponded(r) => html! {
            (r.input_tokens) " in / " (r.output_tokens) " out tokens"
            @if let Some(text) = &r.text { ": " q { (text) } }
            @for call in &r.calls { br; "asks for " code { (call.name) " " (call.raw_arguments) } }
        },
        AuditRecord::ToolCalled(r) => html! {
            code { (r.function) } " → " code { (r.outcome.to_string()) }
            " · " (r.fuel) " fuel · " (format!("{:.1}", r.wall_us as f64 / 1000.0)) " ms"
            @for denial in &r.denials { br; "denied inside the tool: " code { (format!("{denial:?}")) } }
        },
        AuditRecord::ToolRefused(r) => html! {
            code { (r.name) } " refused by the " strong { (r.gate.as_str()) } " gate: " (r.reason)
        },
        other => html! { code { (details(other)) } },
    }
}

/// A record's details as compact JSON.
fn details(record: &AuditRecord) -> String {
    serde_json::to_value(record)
        .ok()
        .and_then(|mut tagged| tagged.get_mut("record").map(Value::take))
        .map(|details| details.to_string())
        .unwrap_or_default()
}
