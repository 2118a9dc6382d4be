//! The thresholds of `[alerts]`: a run that uses too many tokens, a tool function that fails
//! too often. Each raises an `alert.raised` record, a warning on `harness::alert` and a POST to
//! the webhooks ([`crate::webhooks`]), once per run and subject.

use super::{Agent, Run};
use crate::state::StateError;
use crate::state::records::{AlertRaised, AuditRecord};

impl Agent {
    /// Raises the run-tokens alert once the run's usage passes the threshold (once per run).
    pub(super) fn check_run_tokens(&self, run: &mut Run) -> Result<(), StateError> {
        let Some(limit) = self.settings.alerts.run_tokens else {
            return Ok(());
        };
        let used = run.report.usage.total();
        if used > limit && !run.alerted_tokens {
            run.alerted_tokens = true;
            self.raise_alert(
                &run.report.run_id,
                "run_tokens",
                &run.report.run_id,
                used as f64,
                limit as f64,
            )?;
        }
        Ok(())
    }

    /// Raises the tool-error-rate alert for `function` when its recent calls fail too often
    /// (once per run and function).
    pub(super) fn check_error_rate(&self, run: &mut Run, function: &str) -> Result<(), StateError> {
        let Some(rule) = &self.settings.alerts.tool_error_rate else {
            return Ok(());
        };
        if run.alerted_tools.contains(function) {
            return Ok(());
        }
        let Some(stats) = self.gate.state().tool_stats(function, rule.window)? else {
            return Ok(());
        };
        let rate = stats.errors as f64 / stats.calls as f64;
        if stats.calls >= rule.min_calls && rate >= rule.threshold {
            run.alerted_tools.insert(function.to_owned());
            self.raise_alert(
                &run.report.run_id,
                "tool_error_rate",
                function,
                rate,
                rule.threshold,
            )?;
        }
        Ok(())
    }

    /// An alert: an audit record (`alert.raised`), a warning on the `harness::alert` target,
    /// and a delivery to the whitelist's webhooks.
    pub(super) fn raise_alert(
        &self,
        run_id: &str,
        kind: &str,
        subject: &str,
        value: f64,
        threshold: f64,
    ) -> Result<(), StateError> {
        tracing::warn!(target: "harness::alert", alert = kind, subject, value, threshold, run_id, "alert raised");
        let alert = AlertRaised {
            alert: kind.to_owned(),
            subject: subject.to_owned(),
            value,
            threshold,
        };
        let entry = self
            .gate
            .state()
            .append_audit(run_id, AuditRecord::AlertRaised(alert.clone()))?;
        self.gate.webhooks().deliver(run_id, &entry.at, &alert);
        Ok(())
    }
}
