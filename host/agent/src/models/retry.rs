//! Graceful degradation: retry a model on transient errors with exponential backoff (honouring
//! the provider's `retry-after`), then move to the next model of a fallback chain, and fail with
//! one error that lists every attempt — never silently.

use std::sync::Arc;
use std::time::Duration;

use super::{Model, ModelError, ModelFuture, ModelId, ModelRequest};

/// How hard to try one model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per model, the first included.
    pub attempts: u32,
    /// The wait before the first retry; it doubles each time.
    pub initial_backoff: Duration,
    /// The longest wait. A provider asking for more is skipped for the next model.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based), given what the provider asked for; `None`
    /// when the provider asks for longer than `max_backoff`.
    fn delay(&self, retry: u32, asked: Option<Duration>) -> Option<Duration> {
        let backoff = self
            .initial_backoff
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        match asked {
            Some(asked) if asked > self.max_backoff => None,
            Some(asked) => Some(backoff.max(asked)),
            None => Some(backoff),
        }
    }
}

/// A primary model with fallbacks, each retried per [`RetryPolicy`].
pub struct Resilient {
    chain: Vec<Arc<dyn Model>>,
    policy: RetryPolicy,
}

impl Resilient {
    /// `primary`, then each of `fallbacks` in order.
    pub fn new(
        primary: Arc<dyn Model>,
        fallbacks: Vec<Arc<dyn Model>>,
        policy: RetryPolicy,
    ) -> Resilient {
        let mut chain = vec![primary];
        chain.extend(fallbacks);
        Resilient { chain, policy }
    }
}

impl Model for Resilient {
    fn id(&self) -> ModelId {
        self.chain[0].id()
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> ModelFuture<'a> {
        Box::pin(async move {
            let mut failures = Vec::new();
            for model in &self.chain {
                let mut attempt = 1;
                loop {
                    match model.complete(request).await {
                        Ok(response) => return Ok(response),
                        Err(error) => {
                            let delay = (error.is_transient() && attempt < self.policy.attempts)
                                .then(|| self.policy.delay(attempt, error.retry_after()))
                                .flatten();
                            tracing::warn!(
                                target: "harness::model",
                                model = %model.id(),
                                attempt,
                                error = %error,
                                retry_in_ms = delay.map(|d| d.as_millis() as u64),
                                "model call failed"
                            );
                            let Some(delay) = delay else {
                                failures.push(format!(
                                    "{} after {attempt} attempt(s): {error}",
                                    model.id()
                                ));
                                break;
                            };
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                        }
                    }
                }
            }
            Err(ModelError::Exhausted(failures))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::scripted::{ScriptedModel, parse_steps};
    use super::*;

    fn scripted(name: &str, lines: &str) -> Arc<ScriptedModel> {
        Arc::new(ScriptedModel::new(name, parse_steps(lines, name).unwrap()))
    }

    const FAST: RetryPolicy = RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(200),
    };

    #[test]
    fn backoff_doubles_honours_retry_after_and_gives_up_on_long_waits() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, None), Some(Duration::from_millis(500)));
        assert_eq!(policy.delay(3, None), Some(Duration::from_secs(2)));
        assert_eq!(policy.delay(30, None), Some(Duration::from_secs(20)));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(policy.delay(1, Some(Duration::from_secs(60))), None);
    }

    #[tokio::test]
    async fn transient_errors_are_retried_then_the_fallback_answers() {
        let busy = r#"{"error": {"status": 429, "message": "slow down", "retry_after_ms": 2}}"#;
        let primary = scripted("primary", &format!("{busy}\n{busy}\n{busy}\n"));
        let fallback = scripted("fallback", "{\"text\": \"from the fallback\"}\n");
        let model = Resilient::new(primary.clone(), vec![fallback.clone()], FAST);
        let answer = model.complete(&ModelRequest::default()).await.unwrap();
        assert_eq!(answer.text.as_deref(), Some("from the fallback"));
        assert_eq!((primary.used(), fallback.used()), (3, 1));
    }

    #[tokio::test]
    async fn a_permanent_error_skips_to_the_fallback_and_total_failure_lists_each_attempt() {
        let denied = r#"{"error": {"status": 401, "message": "invalid key"}}"#;
        let down = r#"{"error": {"status": 503, "message": "overloaded"}}"#;
        let primary = scripted("primary", &format!("{denied}\n"));
        let fallback = scripted("fallback", &format!("{down}\n{down}\n{down}\n"));
        let model = Resilient::new(primary.clone(), vec![fallback.clone()], FAST);
        let error = model.complete(&ModelRequest::default()).await.unwrap_err();
        assert_eq!(primary.used(), 1, "a 401 is not retried");
        assert_eq!(
            error.to_string(),
            "no model answered: scripted/primary after 1 attempt(s): scripted answered 401: invalid key; \
             scripted/fallback after 3 attempt(s): scripted answered 503: overloaded"
        );
    }
}
