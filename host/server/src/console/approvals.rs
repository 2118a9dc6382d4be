//! The approvals queue: each waiting call with its function's description, its arguments
//! (readable and as raw JSON), the tool's grants and risk as `harness audit --tool` words them,
//! who asked, and the run's conversation so far (masked as the model saw it); approve, or deny
//! with a reason, as an approver. Recent decisions say who decided what.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use harness_agent::state::approvals::ApprovalRequest;
use harness_agent::state::records::Decision;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::session::Viewer;
use super::{Console, layout, runs, tools};
use crate::api::APPROVER;

/// Recent decisions shown under the queue.
const RECENT: usize = 20;

/// `GET /console/approvals`.
pub(crate) async fn queue(State(console): State<Console>, viewer: Viewer) -> Response {
    let gate = console.server.gate();
    let all = match gate.state().approvals(true) {
        Ok(all) => all,
        Err(error) => return layout::forbidden(&viewer, &error.to_string()),
    };
    let (pending, decided): (Vec<_>, Vec<_>) = all.into_iter().partition(|a| a.decision.is_none());
    let may_decide = viewer.holds(APPROVER);
    let cards: Vec<Markup> = pending
        .iter()
        .map(|a| card(&console, &viewer, a, may_decide))
        .collect();
    layout::page(
        "Approvals",
        &viewer,
        html! {
            h1 data-live="/console/approvals/version" data-version=(fingerprint(&pending, &decided)) {
                "Approvals"
            }
            @if !may_decide {
                p.muted { "You can read the queue; deciding needs the " code { (APPROVER) } " role." }
            }
            @if pending.is_empty() { p #empty { "Nothing waits for a decision." } }
            @for card in cards { (card) }
            h2 { "Recent decisions" }
            @if decided.is_empty() { p { "None yet." } } @else {
                table {
                    thead { tr { th { "#" } th { "Call" } th { "For" } th { "Decision" } th { "By" } th { "Why" } } }
                    tbody {
                        @for a in decided.iter().rev().take(RECENT) {
                            tr {
                                td { (a.id) }
                                td { code { (a.function) } }
                                td { (a.principal) }
                                td.decision { (a.decision.map(Decision::as_str).unwrap_or("")) }
                                td { (a.decided_by.as_deref().unwrap_or("")) }
                                td { (a.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// What the queue shows, as a short text that changes when it changes (for live reloads).
fn fingerprint(pending: &[ApprovalRequest], decided: &[ApprovalRequest]) -> String {
    let ids: Vec<String> = pending.iter().map(|a| a.id.to_string()).collect();
    format!("{}/{}", ids.join(","), decided.len())
}

/// `GET /console/approvals/version`: the queue's fingerprint.
pub(crate) async fn version(State(console): State<Console>, _viewer: Viewer) -> String {
    let all = console
        .server
        .gate()
        .state()
        .approvals(true)
        .unwrap_or_default();
    let (pending, decided): (Vec<_>, Vec<_>) = all.into_iter().partition(|a| a.decision.is_none());
    fingerprint(&pending, &decided)
}

/// One waiting call.
fn card(
    console: &Console,
    viewer: &Viewer,
    approval: &ApprovalRequest,
    may_decide: bool,
) -> Markup {
    let gate = console.server.gate();
    let found = gate.host().function(&approval.function).ok();
    let description = found.and_then(|(_, f)| f.description.clone());
    let review = found.and_then(|(tool, _)| tools::review(console, tool));
    let arguments: Value = serde_json::from_str(&approval.arguments)
        .unwrap_or(Value::String(approval.arguments.clone()));
    let conversation = approval
        .run_id
        .starts_with("run-")
        .then(|| gate.state().audit_of_run(&approval.run_id).ok())
        .flatten();
    html! {
        article #(format!("approval-{}", approval.id)) aria-labelledby=(format!("approval-{}-title", approval.id)) {
            h2 #(format!("approval-{}-title", approval.id)) {
                "#" (approval.id) " " code { (approval.function) } " for " (approval.principal)
            }
            p.muted { "Asked " (approval.requested_at) " in " (approval.run_id) }
            @if let Some(description) = description { p.description { (description) } }
            h3 { "Arguments" }
            @match &arguments {
                Value::Object(fields) => {
                    dl.arguments {
                        @for (name, value) in fields {
                            dt { (name) }
                            dd { @match value { Value::String(text) => { (text) }, other => { code { (other.to_string()) } } } }
                        }
                    }
                },
                _ => {},
            }
            details { summary { "Raw JSON" } pre { (serde_json::to_string_pretty(&arguments).unwrap_or_default()) } }
            @if let Some(review) = review {
                h3 { "Grants and risk" }
                ul {
                    @for c in &review.capabilities {
                        li { (c.capability) ": " (c.verdict) "; grants [" (c.grants.join(", ")) "]" }
                    }
                }
                p.risk { "Risk: " (review.risk) }
            }
            @if let Some(records) = conversation {
                details open {
                    summary { "The run so far" }
                    (runs::timeline(&records))
                }
            }
            @if may_decide {
                form method="post" action=(format!("/console/approvals/{}", approval.id)) {
                    (viewer.csrf_field())
                    label for=(format!("reason-{}", approval.id)) { "Reason (required to deny)" }
                    textarea id=(format!("reason-{}", approval.id)) name="reason" rows="2" {}
                    button.approve type="submit" name="decision" value="approve" { "Approve" }
                    button.deny type="submit" name="decision" value="deny" { "Deny" }
                }
            }
        }
    }
}

/// What the decision form sends.
#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/approvals/{id}`.
pub(crate) async fn decide(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Some(refused) = viewer.refuse_stale(&form.csrf) {
        return refused;
    }
    if !viewer.holds(APPROVER) {
        return layout::forbidden(&viewer, &format!("Deciding needs the `{APPROVER}` role."));
    }
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approved,
        "deny" => Decision::Denied,
        other => return layout::forbidden(&viewer, &format!("`{other}` is not a decision.")),
    };
    let notice = if decision == Decision::Denied && form.reason.trim().is_empty() {
        format!("Approval {id} was not denied: say why, the caller is told.")
    } else {
        let by = &viewer.session.principal.name;
        match console
            .server
            .decide_approval(id, decision, by, form.reason.trim(), &console.cancel)
        {
            Ok((decided, resumed)) => format!(
                "Approval {id} ({}) {decision} by {by}.{}",
                decided.function,
                if resumed { " Its run goes on." } else { "" }
            ),
            Err(error) => format!("Approval {id}: {error}."),
        }
    };
    console.sessions.notify(&viewer.token, notice);
    Redirect::to("/console/approvals").into_response()
}
