//! Budgets and metrics: spending per scope against its limit, runs, answers, tokens and
//! feedback per prompt version (the canary beside the stable prompt), refusals per gate, calls
//! and refusals per hour as a server-drawn SVG chart, and the audit chain's state with a button
//! to verify it now.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use harness_agent::state::metrics::Activity;
use maud::{Markup, html};

use super::session::{Csrf, Viewer};
use super::{Console, layout};
use crate::api::OPERATOR;

/// The window the page covers.
const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The last verification of the audit chain from the console.
#[derive(Clone, Debug)]
pub(crate) struct Verification {
    at: String,
    outcome: String,
    intact: bool,
}

/// `GET /console/figures` (role `operator`, like the API's figures).
pub(crate) async fn page(State(console): State<Console>, viewer: Viewer) -> Response {
    if !viewer.holds(OPERATOR) {
        return layout::forbidden(&viewer, &format!("The figures need the `{OPERATOR}` role."));
    }
    let gate = console.server.gate();
    let state = gate.state();
    let (standings, metrics, activity, head) = match (
        gate.config().budgets().standings(state),
        state.metrics(WINDOW),
        state.activity(WINDOW),
        state.audit_head(),
    ) {
        (Ok(s), Ok(m), Ok(a), Ok(h)) => (s, m, a, h),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
            return layout::forbidden(&viewer, &e.to_string());
        }
    };
    let verified = console
        .verified
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    layout::page(
        "Budgets and metrics",
        &viewer,
        html! {
            h1 { "Budgets and metrics" }
            h2 { "Budgets" }
            @if standings.is_empty() { p { "Nothing spent against a budget in its current window." } } @else {
                table {
                    thead { tr { th { "Scope" } th { "Spent" } th { "Limit" } th { "Window" } } }
                    tbody {
                        @for s in &standings {
                            tr { td { (s.scope) } td { (s.spent) } td { (s.limit) } td { (humantime::format_duration(s.window)) } }
                        }
                    }
                }
            }
            h2 { "Prompt versions, last 24 hours" }
            @if metrics.prompts.is_empty() { p { "No runs ended." } } @else {
                table {
                    thead { tr { th { "Version" } th { "Runs" } th { "Answered" } th { "Tokens" } th { "Feedback" } th { "Mean score" } } }
                    tbody {
                        @for p in &metrics.prompts {
                            tr {
                                td { code { (p.version) } @if p.canary { " (canary)" } @else { " (stable)" } }
                                td { (p.runs) } td { (p.answered) } td { (p.tokens) } td { (p.feedback) }
                                td { @if let Some(mean) = p.mean_score { (format!("{mean:.2}")) } }
                            }
                        }
                    }
                }
            }
            h2 { "Refusals per gate, last 24 hours" }
            @if metrics.refusals.is_empty() { p { "None." } } @else {
                ul { @for (gate, count) in &metrics.refusals { li { (gate) ": " (count) } } }
            }
            h2 { "Calls and refusals per hour" }
            (chart(&activity))
            h2 { "Audit chain" }
            p { "Head: " code #head { (head) } }
            @match &verified {
                Some(v) => p.(if v.intact { "notice" } else { "problem" }) #verified { "Verified " (v.at) ": " (v.outcome) },
                None => p #verified { "Not verified from this console since the server started." },
            }
            form method="post" action="/console/audit/verify" {
                (viewer.csrf_field())
                button type="submit" { "Verify now" }
            }
        },
    )
    .into_response()
}

/// Calls (bars) and refusals (darker bars) per hour, drawn on the server: no script.
fn chart(activity: &[Activity]) -> Markup {
    if activity.is_empty() {
        return html! { p { "No calls in the last 24 hours." } };
    }
    let most = activity
        .iter()
        .map(|a| a.calls.max(a.refusals))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (width, height, bar) = (40 * activity.len() as u32 + 40, 160u32, 16u32);
    let scale = |n: u64| (n as f64 / most * 110.0).round() as u32;
    html! {
        svg role="img" aria-labelledby="chart-title" width=(width) height=(height) viewBox=(format!("0 0 {width} {height}")) {
            title #chart-title { "Calls and refusals per hour" }
            @for (i, a) in activity.iter().enumerate() {
                @let x = 20 + 40 * i as u32;
                rect x=(x) y=(130 - scale(a.calls)) width=(bar) height=(scale(a.calls)) fill="#0b57d0" {
                    title { (a.hour) ": " (a.calls) " calls" }
                }
                rect x=(x + bar) y=(130 - scale(a.refusals)) width=(bar) height=(scale(a.refusals)) fill="#a50e0e" {
                    title { (a.hour) ": " (a.refusals) " refusals" }
                }
                text x=(x) y="148" { (a.hour.get(11..13).unwrap_or("")) "h" }
            }
        }
        p.muted { "Blue: calls that ran; red: calls refused. Hours in UTC." }
    }
}

/// `POST /console/audit/verify`: walks the whole chain now.
pub(crate) async fn verify(
    State(console): State<Console>,
    viewer: Viewer,
    Form(form): Form<Csrf>,
) -> Response {
    if let Some(refused) = viewer.refuse_stale(&form.csrf) {
        return refused;
    }
    if !viewer.holds(OPERATOR) {
        return layout::forbidden(&viewer, &format!("Verifying needs the `{OPERATOR}` role."));
    }
    let gate = console.server.gate();
    let checked = tokio::task::spawn_blocking(move || gate.state().verify_audit(None)).await;
    let (outcome, intact) = match checked {
        Ok(Ok(Ok(intact))) => (format!("{} records, chain intact", intact.records), true),
        Ok(Ok(Err(tampering))) => (format!("BROKEN: {tampering}"), false),
        Ok(Err(error)) => (format!("could not be read: {error}"), false),
        Err(error) => (format!("the verification stopped: {error}"), false),
    };
    let verification = Verification {
        at: harness_agent::state::audit::now(),
        outcome,
        intact,
    };
    *console.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some(verification);
    Redirect::to("/console/figures").into_response()
}
