//! Tools and switches: every tool of the whitelist with its functions, grants (reviewed as
//! `harness audit --tool` does), limits, digest and MCP annotations, and whether it is switched
//! off; operators switch tools and agents off (with a reason) and on again.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use harness_agent::state::switches::Target;
use harness_sandbox::LoadedTool;
use harness_sandbox::inspect::{inspect, review};
use harness_sandbox::signing::Verdict;
use maud::html;
use serde::Deserialize;

use super::session::Viewer;
use super::{Console, layout};
use crate::api::OPERATOR;
use crate::catalog;

/// `tool`'s review against its grants, computed once per component.
pub(super) fn review(console: &Console, tool: &LoadedTool) -> Option<Arc<review::Review>> {
    let mut reviews = console.reviews.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(review) = reviews.get(&tool.digest) {
        return Some(review.clone());
    }
    let bytes = std::fs::read(&tool.policy.component).ok()?;
    let inspection = inspect(&bytes).ok()?;
    let review = Arc::new(review::review(&inspection, &tool.policy));
    reviews.insert(tool.digest, review.clone());
    Some(review)
}

/// The switches that are off, as text that changes when they change (for live reloads).
fn fingerprint(console: &Console) -> String {
    console
        .server
        .gate()
        .state()
        .switches()
        .map(|switches| {
            switches
                .iter()
                .map(|s| s.target.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `GET /console/tools/version`.
pub(crate) async fn version(State(console): State<Console>, _viewer: Viewer) -> String {
    fingerprint(&console)
}

/// `GET /console/tools`.
pub(crate) async fn list(State(console): State<Console>, viewer: Viewer) -> Response {
    let gate = console.server.gate();
    let switches = gate.state().switches().unwrap_or_default();
    let off = |target: &Target| switches.iter().find(|s| s.target == target.key());
    let operator = viewer.holds(OPERATOR);
    let agents: Vec<String> = gate.config().agents().keys().cloned().collect();
    layout::page(
        "Tools",
        &viewer,
        html! {
            h1 data-live="/console/tools/version" data-version=(fingerprint(&console)) { "Tools" }
            @if !operator {
                p.muted { "Switching needs the " code { (OPERATOR) } " role." }
            }
            @for tool in gate.host().tools() {
                @let name = &tool.policy.name;
                @let target = Target::Tool(name.clone());
                @let (read_only, open_world) = catalog::hints(&tool.policy.grants);
                article #(format!("tool-{name}")) {
                    h2 { (name) " " span.muted { (tool.world) } }
                    @if let Some(summary) = &tool.summary { p { (summary) } }
                    @match off(&target) {
                        Some(switch) => p.problem.switch { "Switched off: " (switch.reason) " (" (switch.at) ")" },
                        None => p.switch { "In service" },
                    }
                    dl {
                        dt { "Digest" } dd { code { (tool.digest) } }
                        @if let Some(source) = &tool.policy.registry {
                            dt { "Source" } dd { code { (source) } }
                        }
                        dt { "Signature" } dd.signature {
                            @match &tool.signature {
                                Verdict::Signed { key, key_id } => { "signed by " (key) " (key ID " code { (key_id) } ")" },
                                _ => "unsigned",
                            }
                        }
                        dt { "Limits" } dd {
                            (tool.policy.limits.fuel) " fuel · " (tool.policy.limits.memory) " memory · "
                            (humantime::format_duration(tool.policy.limits.timeout)) " · output ≤ " (tool.policy.limits.max_output)
                        }
                        dt { "Annotations" } dd {
                            @if read_only { "read-only" } @else { "may change things" }
                            @if open_world { ", reaches beyond the host" }
                        }
                    }
                    h3 { "Functions" }
                    ul {
                        @for f in &tool.functions {
                            li { code { (f.qualified_name) } @if let Some(d) = &f.description { " — " (d) } }
                        }
                    }
                    @if let Some(review) = review(&console, tool) {
                        h3 { "Grants" }
                        ul {
                            @for c in &review.capabilities {
                                li { (c.capability) ": " (c.verdict) "; grants [" (c.grants.join(", ")) "]" }
                            }
                        }
                        p.risk { "Risk: " (review.risk) }
                    }
                    @if operator { (switch_form(&viewer, "tool", name, off(&target).is_some())) }
                }
            }
            h2 { "Agents" }
            @if agents.is_empty() { p { "The whitelist defines no agents." } }
            @for agent in &agents {
                @let target = Target::Agent(agent.clone());
                article #(format!("agent-{agent}")) {
                    h3 { (agent) }
                    @match off(&target) {
                        Some(switch) => p.problem.switch { "Switched off: " (switch.reason) },
                        None => p.switch { "In service" },
                    }
                    @if operator { (switch_form(&viewer, "agent", agent, off(&target).is_some())) }
                }
            }
        },
    )
    .into_response()
}

/// The form that switches `kind` `name` off (with a reason) or back on.
fn switch_form(viewer: &Viewer, kind: &str, name: &str, is_off: bool) -> maud::Markup {
    let field = format!("reason-{kind}-{name}");
    html! {
        form method="post" action="/console/switches" {
            (viewer.csrf_field())
            input type="hidden" name="kind" value=(kind);
            input type="hidden" name="name" value=(name);
            @if is_off {
                button type="submit" name="action" value="enable" { "Switch on" }
            } @else {
                label for=(field) { "Reason to switch " (name) " off" }
                input id=(field) type="text" name="reason";
                button.kill type="submit" name="action" value="kill" { "Switch off" }
            }
        }
    }
}

/// What a switch form sends.
#[derive(Deserialize)]
pub(crate) struct SwitchForm {
    csrf: String,
    kind: String,
    name: String,
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/switches`.
pub(crate) async fn switch(
    State(console): State<Console>,
    viewer: Viewer,
    Form(form): Form<SwitchForm>,
) -> Response {
    if let Some(refused) = viewer.refuse_stale(&form.csrf) {
        return refused;
    }
    if !viewer.holds(OPERATOR) {
        return layout::forbidden(&viewer, &format!("Switching needs the `{OPERATOR}` role."));
    }
    let gate = console.server.gate();
    let target = match form.kind.as_str() {
        "tool" if gate.config().policy().tools().contains_key(&form.name) => {
            Target::Tool(form.name.clone())
        }
        "agent" if gate.config().agents().contains_key(&form.name) => {
            Target::Agent(form.name.clone())
        }
        _ => {
            return layout::forbidden(
                &viewer,
                &format!("There is no {} `{}` to switch.", form.kind, form.name),
            );
        }
    };
    let who = &viewer.session.principal.name;
    let notice = match form.action.as_str() {
        "kill" if form.reason.trim().is_empty() => format!(
            "{} was not switched off: say why, callers are told.",
            form.name
        ),
        "kill" => match gate.state().kill(&target, form.reason.trim(), who) {
            Ok(()) => format!("{} is switched off.", form.name),
            Err(error) => error.to_string(),
        },
        "enable" => match gate.state().enable(&target, who) {
            Ok(_) => format!("{} is back in service.", form.name),
            Err(error) => error.to_string(),
        },
        other => return layout::forbidden(&viewer, &format!("`{other}` is not a switch action.")),
    };
    console.server.notify_tools_changed().await;
    console.sessions.notify(&viewer.token, notice);
    Redirect::to("/console/tools").into_response()
}
