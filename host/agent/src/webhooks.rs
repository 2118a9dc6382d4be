//! Delivering raised alerts to the whitelist's `[alerts] webhooks`: each alert is POSTed as JSON
//! (with a Slack-compatible `text`) on a task of its own, so no call or run waits for it, and
//! retried with backoff while the receiver fails (a 5xx or 429 answer, or no answer).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::task::TaskTracker;

use crate::config::Webhook;
use crate::state::records::AlertRaised;

/// The waits before each retry of a delivery: six tries over about 15 seconds.
pub const RETRY_AFTER: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// How long one try may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The webhooks of one whitelist and the deliveries under way. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Webhooks {
    hooks: Arc<[Webhook]>,
    http: reqwest::Client,
    deliveries: TaskTracker,
}

impl Webhooks {
    /// Delivers to `hooks` (none: alerts are only recorded and logged).
    pub fn new(hooks: &[Webhook]) -> Webhooks {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*harness_sandbox::tls::client_config()).clone())
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .unwrap_or_default();
        Webhooks {
            hooks: hooks.into(),
            http,
            deliveries: TaskTracker::new(),
        }
    }

    /// Sends `alert`, raised in run `run_id` at `at`, to every webhook in the background. Out
    /// of a Tokio runtime (nothing could send it) it is only logged.
    pub fn deliver(&self, run_id: &str, at: &str, alert: &AlertRaised) {
        if self.hooks.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(target: "harness::alert", alert = %alert.alert, "no runtime to deliver the alert to its webhooks");
            return;
        };
        let body = json!({
            "text": format!(
                "Harness alert `{}` on {}: {} (threshold {}), run {run_id}",
                alert.alert, alert.subject, alert.value, alert.threshold
            ),
            "alert": alert.alert,
            "subject": alert.subject,
            "value": alert.value,
            "threshold": alert.threshold,
            "run_id": run_id,
            "at": at,
        });
        for hook in self.hooks.iter() {
            let (http, hook, body) = (self.http.clone(), hook.clone(), body.clone());
            runtime.spawn(self.deliveries.track_future(async move {
                post(&http, &hook, &body).await;
            }));
        }
    }

    /// Waits up to `within` for the deliveries under way (before a process exits).
    pub async fn finish(&self, within: Duration) {
        self.deliveries.close();
        let _ = tokio::time::timeout(within, self.deliveries.wait()).await;
        self.deliveries.reopen();
    }
}

/// POSTs `body` to `hook`, retrying while the receiver fails; the outcome is logged.
async fn post(http: &reqwest::Client, hook: &Webhook, body: &serde_json::Value) {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, var) in &hook.headers_from_env {
        let value = std::env::var(var).ok().and_then(|v| v.parse().ok());
        let (Ok(name), Some(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            value,
        ) else {
            tracing::error!(target: "harness::alert", url = %hook.url, header = %name, var = %var, "the alert was not sent: set the environment variable to the header's value");
            return;
        };
        headers.insert(name, value);
    }
    let mut waits = RETRY_AFTER.iter();
    loop {
        let sent = http
            .post(&hook.url)
            .headers(headers.clone())
            .json(body)
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response)
                if !response.status().is_server_error()
                    && response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                tracing::error!(target: "harness::alert", url = %hook.url, status = %response.status(), "the webhook refused the alert");
                return;
            }
            Ok(response) => response.status().to_string(),
            Err(error) => error.to_string(),
        };
        let Some(wait) = waits.next() else {
            tracing::error!(target: "harness::alert", url = %hook.url, %failure, "the alert was not delivered after every retry");
            return;
        };
        tracing::warn!(target: "harness::alert", url = %hook.url, %failure, retry_in = ?wait, "delivering an alert");
        tokio::time::sleep(*wait).await;
    }
}
