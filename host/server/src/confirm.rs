//! A tool's `confirm` gate over MCP: asking the user of the calling client whether this call may
//! run, the way the client's protocol era allows.
//!
//! - A client in a session (stdio, legacy HTTP) that declared form elicitation gets an
//!   `elicitation/create` request while the call waits, for up to `[mcp] confirm_within`.
//! - A 2026-07-28 client that declared it gets an `input_required` result instead: it asks its
//!   user and calls again with the answer in `inputResponses` and the `requestState` it was
//!   given. That state is sealed (HMAC, a key of this process) to the principal, the function
//!   and the arguments, expires after `confirm_within`, and is good for one call.
//! - Any other client cannot ask its user: the call is refused, saying so.
//!
//! Accept runs the call (recorded as `tool.confirmed`); decline, cancel or no answer in time
//! refuse it (recorded as `tool.refused` by the `confirmation` gate).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use harness_agent::calls::{Confirmation, canonical};
use harness_agent::gates::{Admitted, Principal};
use rmcp::model::{
    CallToolRequestParams, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationSchema, InputRequest, InputRequiredResult, RequestStateCodec, SealOptions,
};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer, ServiceError};

/// The key of the answer in `inputRequests` and `inputResponses`.
const ANSWER: &str = "confirm";

/// How long a question shows the arguments before cutting them short.
const SHOWN_ARGUMENTS: usize = 2_000;

/// How the user of the client that made a call can be asked.
pub(crate) enum Asking {
    /// Over its session, with an `elicitation/create` request.
    Session(Peer<RoleServer>),
    /// In the answer to its call (2026-07-28): what it sent back from an earlier question, if
    /// anything.
    Stateless {
        /// `inputResponses.confirm`.
        answer: Option<serde_json::Value>,
        /// `requestState`.
        state: Option<String>,
    },
    /// Its client declared no form elicitation.
    Cannot,
}

impl Asking {
    /// How the client of `request` can be asked.
    pub(crate) fn of(
        context: &RequestContext<RoleServer>,
        request: &CallToolRequestParams,
    ) -> Asking {
        let forms = context
            .client_capabilities()
            .and_then(|capabilities| capabilities.elicitation)
            .is_some_and(|elicitation| elicitation.form.is_some() || elicitation.url.is_none());
        if !forms {
            return Asking::Cannot;
        }
        let stateless = context
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        if !stateless {
            return Asking::Session(context.peer.clone());
        }
        Asking::Stateless {
            answer: request
                .input_responses
                .as_ref()
                .and_then(|responses| responses.get(ANSWER).cloned()),
            state: request.request_state.clone(),
        }
    }
}

/// What the server needs to ask users and check their answers: the key sealing
/// `requestState`, and the states already used.
#[derive(Default)]
pub(crate) struct Confirmations {
    codec: OnceLock<Result<RequestStateCodec, String>>,
    used: Mutex<HashMap<String, Instant>>,
}

impl Confirmations {
    /// Asks the user of a call (`asking`) whether `admitted` may run for `principal`, waiting
    /// up to `within`. A stateless client's question goes into `question`, to be sent as the
    /// call's result.
    pub(crate) async fn ask(
        &self,
        asking: Asking,
        principal: &Principal,
        admitted: &Admitted,
        within: Duration,
        question: &mut Option<InputRequiredResult>,
    ) -> Confirmation {
        let refused = |reason: String| Confirmation::Refused { reason };
        match asking {
            Asking::Cannot => refused(
                "their client cannot ask them (it declared no form elicitation capability)".into(),
            ),
            Asking::Session(peer) => {
                let asked = peer
                    .create_elicitation_with_timeout(form(admitted), Some(within))
                    .await;
                match asked {
                    Ok(answer) => decided(&answer, "MCP elicitation"),
                    Err(ServiceError::Timeout { .. }) => refused(format!(
                        "they did not answer within {}",
                        humantime::format_duration(within)
                    )),
                    Err(error) => refused(format!("their client could not ask them: {error}")),
                }
            }
            Asking::Stateless { answer, state } => {
                let bound = binding(principal, admitted);
                let codec = match self.codec() {
                    Ok(codec) => codec,
                    Err(error) => return refused(error),
                };
                if let (Some(answer), Some(state)) = (answer, state)
                    && let Ok(nonce) = codec.open_with(&state, bound.as_bytes())
                    && self.first_use(hex::encode(nonce), within)
                {
                    return match serde_json::from_value::<ElicitResult>(answer) {
                        Ok(answer) => decided(&answer, "MCP input_required"),
                        Err(error) => refused(format!(
                            "their answer is not an elicitation result: {error}"
                        )),
                    };
                }
                // No answer yet, or one to another question: ask (again).
                let nonce = match crate::settings::random_bytes::<16>() {
                    Ok(nonce) => nonce,
                    Err(error) => return refused(format!("cannot make a question: {error}")),
                };
                let sealed = codec.seal_with(
                    &nonce,
                    &SealOptions::new()
                        .associated_data(bound.as_bytes())
                        .ttl(within),
                );
                let requests = BTreeMap::from([(
                    ANSWER.to_owned(),
                    InputRequest::Elicitation(ElicitRequest::new(form(admitted))),
                )]);
                *question = Some(InputRequiredResult::new(Some(requests), Some(sealed)));
                Confirmation::Asked
            }
        }
    }

    /// The codec of this process, keyed on first use.
    fn codec(&self) -> Result<&RequestStateCodec, String> {
        self.codec
            .get_or_init(|| {
                let key = crate::settings::random_bytes::<32>()
                    .map_err(|e| format!("cannot make a key to seal questions: {e}"))?;
                RequestStateCodec::try_new(key.to_vec()).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the state numbered `nonce` is used now for the first time; it is remembered
    /// until it expires (`within` after it was made, at the latest).
    fn first_use(&self, nonce: String, within: Duration) -> bool {
        let now = Instant::now();
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.retain(|_, until| *until > now);
        used.insert(nonce, now + within).is_none()
    }
}

/// The question for `admitted`: a form with no fields, to accept or decline.
fn form(admitted: &Admitted) -> ElicitRequestParams {
    let mut arguments = admitted.arguments.to_string();
    if arguments.len() > SHOWN_ARGUMENTS {
        let mut end = SHOWN_ARGUMENTS;
        while !arguments.is_char_boundary(end) {
            end -= 1;
        }
        arguments.truncate(end);
        arguments.push('…');
    }
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!(
            "Allow `{}` to run with these arguments? {arguments}",
            admitted.function
        ),
        requested_schema: ElicitationSchema::new(BTreeMap::new()),
    }
}

/// What the associated data of a question binds it to: who, what, with which arguments.
fn binding(principal: &Principal, admitted: &Admitted) -> String {
    format!(
        "{}\n{}\n{}",
        principal.name,
        admitted.function,
        canonical(&admitted.arguments)
    )
}

/// The user's answer as the gate takes it.
fn decided(answer: &ElicitResult, how: &str) -> Confirmation {
    let reason = match answer.action {
        ElicitationAction::Accept => return Confirmation::Confirmed { how: how.into() },
        ElicitationAction::Decline => "they declined",
        ElicitationAction::Cancel => "they dismissed the question",
        _ => "they did not accept",
    };
    Confirmation::Refused {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(arguments: serde_json::Value) -> Admitted {
        Admitted {
            function: "tickets.create".into(),
            arguments,
            fuel: None,
            needs_approval: false,
            needs_confirmation: true,
        }
    }

    fn ana() -> Principal {
        Principal {
            name: "ana".into(),
            roles: Default::default(),
        }
    }

    /// Asks as a 2026-07-28 client would, returning the answer and the state of a new question.
    async fn ask(
        confirmations: &Confirmations,
        principal: &Principal,
        admitted: &Admitted,
        answer: Option<&str>,
        state: Option<&str>,
    ) -> (Confirmation, Option<String>) {
        let asking = Asking::Stateless {
            answer: answer.map(|action| json!({ "action": action })),
            state: state.map(str::to_owned),
        };
        let mut question = None;
        let within = Duration::from_secs(60);
        let answered = confirmations
            .ask(asking, principal, admitted, within, &mut question)
            .await;
        (answered, question.and_then(|q| q.request_state))
    }

    #[tokio::test]
    async fn a_sealed_question_is_good_once_for_its_own_call() {
        let confirmations = Confirmations::default();
        let urgent = call(json!({"priority": "urgent", "title": "VPN"}));
        let (first, state) = ask(&confirmations, &ana(), &urgent, None, None).await;
        assert_eq!(first, Confirmation::Asked);
        let state = state.expect("a question carries its state");

        // The same arguments in another order are the same call.
        let reordered = call(json!({"title": "VPN", "priority": "urgent"}));
        let other = call(json!({"priority": "urgent", "title": "Mail"}));
        let (answered, _) = ask(&confirmations, &ana(), &other, Some("accept"), Some(&state)).await;
        assert_eq!(answered, Confirmation::Asked, "another call's answer");
        let bob = Principal {
            name: "bob".into(),
            ..ana()
        };
        let (answered, _) = ask(&confirmations, &bob, &urgent, Some("accept"), Some(&state)).await;
        assert_eq!(answered, Confirmation::Asked, "another principal's answer");
        let mut forged = state.clone();
        forged.replace_range(..1, if forged.starts_with('A') { "B" } else { "A" });
        let (answered, _) = ask(
            &confirmations,
            &ana(),
            &urgent,
            Some("accept"),
            Some(&forged),
        )
        .await;
        assert_eq!(answered, Confirmation::Asked, "a tampered state");

        let (answered, _) = ask(
            &confirmations,
            &ana(),
            &reordered,
            Some("accept"),
            Some(&state),
        )
        .await;
        assert_eq!(
            answered,
            Confirmation::Confirmed {
                how: "MCP input_required".into()
            }
        );
        let (again, asked) = ask(
            &confirmations,
            &ana(),
            &urgent,
            Some("accept"),
            Some(&state),
        )
        .await;
        assert_eq!(again, Confirmation::Asked, "a state is used once");
        assert!(asked.is_some_and(|new| new != state));

        let (_, state) = ask(&confirmations, &ana(), &urgent, None, None).await;
        let (declined, _) = ask(
            &confirmations,
            &ana(),
            &urgent,
            Some("decline"),
            state.as_deref(),
        )
        .await;
        assert_eq!(
            declined,
            Confirmation::Refused {
                reason: "they declined".into()
            }
        );
    }
}
