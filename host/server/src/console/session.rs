//! Signing in to the console: a client key (a `[clients.NAME]` entry may be a person) becomes
//! a server-side session named by a random token in an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` behind TLS). Each session has its own CSRF token, which every form that changes
//! something carries and every such request must match.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, extract::FromRef};
use harness_agent::gates::Principal;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, layout};
use crate::settings::random_bytes;

/// The session cookie.
const COOKIE: &str = "harness_session";

/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The signed-in sessions of one server.
#[derive(Default)]
pub(crate) struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
}

/// Who is signed in, and the token their forms carry.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// Whom the session acts as: the client's principal and roles.
    pub(crate) principal: Principal,
    /// The token every state-changing form must carry.
    pub(crate) csrf: String,
    /// A line to show on the next page (what the last action did).
    pub(crate) notice: Option<String>,
    /// The local user of a server without clients, who may do everything (as in the API).
    local: bool,
    expires: Instant,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_token.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `principal` (the local user when `local`), and its token.
    fn open(&self, principal: Principal, local: bool) -> std::io::Result<String> {
        let token = hex::encode(random_bytes::<32>()?);
        let csrf = hex::encode(random_bytes::<32>()?);
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            token.clone(),
            Session {
                principal,
                csrf,
                notice: None,
                local,
                expires: now + LIFETIME,
            },
        );
        Ok(token)
    }

    /// The session of `token`, taking its notice.
    fn take(&self, token: &str) -> Option<Session> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(token)?;
        if session.expires <= Instant::now() {
            sessions.remove(token);
            return None;
        }
        let notice = session.notice.take();
        Some(Session {
            notice,
            ..session.clone()
        })
    }

    /// Leaves `notice` for the next page of `token`'s session.
    pub(crate) fn notify(&self, token: &str, notice: String) {
        if let Some(session) = self.lock().get_mut(token) {
            session.notice = Some(notice);
        }
    }

    fn close(&self, token: &str) {
        self.lock().remove(token);
    }
}

/// The signed-in person of a request; pages that need one redirect to sign-in without it.
pub(crate) struct Viewer {
    pub(crate) token: String,
    pub(crate) session: Session,
}

impl Viewer {
    /// Whether they hold `role` (the local user holds every role).
    pub(crate) fn holds(&self, role: &str) -> bool {
        self.session.local || self.session.principal.roles.contains(role)
    }

    /// Whether `form_token` is this session's CSRF token (compared in constant time).
    pub(crate) fn checks(&self, form_token: &str) -> bool {
        let expected = self.session.csrf.as_bytes();
        let given = form_token.as_bytes();
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |differ, (a, b)| differ | (a ^ b))
                == 0
    }

    /// The refusal page, when `form_token` is not this session's CSRF token.
    pub(crate) fn refuse_stale(&self, form_token: &str) -> Option<axum::response::Response> {
        (!self.checks(form_token)).then(|| {
            super::layout::forbidden(
                self,
                "This form is stale or came from elsewhere; reload the page and try again.",
            )
        })
    }

    /// The hidden field that carries the CSRF token in a form.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.session.csrf); }
    }
}

impl<S> FromRequestParts<S> for Viewer
where
    Console: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Viewer, Redirect> {
        let console = Console::from_ref(state);
        let token = cookie(&parts.headers).ok_or(Redirect::to("/console/login"))?;
        let session = console
            .sessions
            .take(&token)
            .ok_or(Redirect::to("/console/login"))?;
        Ok(Viewer { token, session })
    }
}

/// The session token in the request's cookies.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_owned())
        })
}

/// `GET /console/login`.
pub(crate) async fn form(State(console): State<Console>) -> Markup {
    sign_in_page(&console, None)
}

fn sign_in_page(console: &Console, problem: Option<&str>) -> Markup {
    let local = console.server.settings().clients.is_empty();
    layout::bare(
        "Sign in",
        html! {
            h1 { "Sign in to Harness" }
            @if let Some(problem) = problem { p.problem role="alert" { (problem) } }
            form method="post" action="/console/login" {
                @if local {
                    p { "This server has no clients: you act as the local user." }
                    input type="hidden" name="key" value="";
                } @else {
                    label for="key" { "Client key" }
                    input #key type="password" name="key" autocomplete="current-password" required;
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// What the sign-in form sends.
#[derive(Deserialize)]
pub(crate) struct SignIn {
    key: String,
}

/// `POST /console/login`: a session for the client whose key it is.
pub(crate) async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let settings = console.server.settings();
    let local = settings.clients.is_empty();
    let principal = if local {
        Some(console.server.local_principal().clone())
    } else {
        // Every client is compared, so the time taken does not say which key came close.
        settings
            .clients
            .values()
            .filter(|c| c.has_key(&form.key))
            .fold(None, |found, c| found.or(Some(c.principal.clone())))
    };
    let Some(principal) = principal else {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            sign_in_page(
                &console,
                Some("That key is not one of this server's clients."),
            ),
        )
            .into_response();
    };
    let token = match console.sessions.open(principal, local) {
        Ok(token) => token,
        Err(error) => {
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                sign_in_page(
                    &console,
                    Some(&format!("No session could be made: {error}")),
                ),
            )
                .into_response();
        }
    };
    let behind_tls = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if behind_tls { "; Secure" } else { "" }
    );
    let mut response = Redirect::to("/console/approvals").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// What a form that changes something carries.
#[derive(Deserialize)]
pub(crate) struct Csrf {
    pub(crate) csrf: String,
}

/// `POST /console/logout`.
pub(crate) async fn sign_out(
    State(console): State<Console>,
    viewer: Viewer,
    Form(form): Form<Csrf>,
) -> Response {
    if viewer.checks(&form.csrf) {
        console.sessions.close(&viewer.token);
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("harness_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}
