//! The frame of every console page: the head (stylesheet and script from this server only),
//! the navigation, the signed-in person, and the notice the last action left. Everything
//! interpolated is escaped by maud; nothing a tool or model says can become markup.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::Viewer;

/// The pages, in navigation order: path and name.
const PAGES: [(&str, &str); 4] = [
    ("/console/approvals", "Approvals"),
    ("/console/runs", "Runs"),
    ("/console/tools", "Tools"),
    ("/console/figures", "Budgets and metrics"),
];

/// A page for `viewer` titled `title`, with `body`.
pub(crate) fn page(title: &str, viewer: &Viewer, body: Markup) -> Markup {
    let principal = &viewer.session.principal;
    let roles: Vec<&str> = principal.roles.iter().map(String::as_str).collect();
    frame(
        title,
        html! {
            header {
                nav aria-label="Console" {
                    ul {
                        @for (path, name) in PAGES {
                            li { a href=(path) aria-current=[(name == title).then_some("page")] { (name) } }
                        }
                    }
                }
                form.signout method="post" action="/console/logout" {
                    span { "Signed in as " strong #who { (principal.name) } }
                    @if !roles.is_empty() { span.roles { " (" (roles.join(", ")) ")" } }
                    (viewer.csrf_field())
                    button type="submit" { "Sign out" }
                }
            }
            main {
                @if let Some(notice) = &viewer.session.notice {
                    p.notice role="status" { (notice) }
                }
                (body)
            }
        },
    )
}

/// A page without navigation (sign-in).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    frame(title, html! { main { (body) } })
}

fn frame(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Harness" }
                link rel="stylesheet" href="/console/console.css";
                script src="/console/console.js" defer {}
            }
            body { (body) }
        }
    }
}

/// `403` with a page saying why.
pub(crate) fn forbidden(viewer: &Viewer, why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        page(
            "Not allowed",
            viewer,
            html! { h1 { "Not allowed" } p.problem role="alert" { (why) } },
        ),
    )
        .into_response()
}
