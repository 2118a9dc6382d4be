//! Runs as the audit log tells them: each begins with `run.started`, and its latest
//! `run.paused`, `run.resumed` or `run.ended` says where it stands. Listed newest first, for
//! whoever reads runs back (the HTTP API, a console), and judged by the people they answered
//! (`run.feedback`, once per author).

use std::ops::ControlFlow;

use harness_db::{DbError, params};
use serde::{Serialize, Serializer};

use super::records::{AuditRecord, RunEnded, RunFeedback, RunStarted};
use super::{StateError, StateStore};
use crate::run::RunStatus;

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Still going, or its process stopped before it ended.
    Running,
    /// Ended, or paused for approval ([`RunStatus::Paused`]).
    Stopped(RunStatus),
}

impl RunState {
    /// `running`, or the status's snake-case name (`answered`, `paused`, …).
    pub fn name(self) -> String {
        match self {
            RunState::Running => "running".to_owned(),
            RunState::Stopped(status) => serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        }
    }

    /// The state named `name` ([`RunState::name`]), or `None`.
    pub fn parse(name: &str) -> Option<RunState> {
        if name == "running" {
            return Some(RunState::Running);
        }
        serde_json::from_value(serde_json::Value::String(name.to_owned()))
            .ok()
            .map(RunState::Stopped)
    }
}

impl Serialize for RunState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

/// One run, as listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// The position of its `run.started` record: the listing's cursor.
    pub seq: u64,
    /// Its id.
    pub run_id: String,
    /// Its agent.
    pub agent: String,
    /// Whom it runs for.
    pub principal: String,
    /// When it began (RFC 3339).
    pub started_at: String,
    /// Where it stands.
    pub status: RunState,
    /// The prompt version it runs with.
    pub prompt_version: String,
    /// Whether that prompt is the agent's canary.
    pub canary: bool,
    /// The answer (masked like the log keeps it), once ended.
    pub answer: Option<String>,
}

/// Which runs to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Only this principal's.
    pub principal: Option<String>,
    /// Only runs standing so.
    pub status: Option<RunState>,
    /// Only runs begun at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only runs begun before the one at this position (the previous page's last `seq`).
    pub before: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

/// Why feedback was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// There is no such run.
    #[error("there is no run {0}")]
    UnknownRun(String),
    /// The author already judged the run.
    #[error("{author} already gave feedback on run {run_id}")]
    Given {
        /// The run.
        run_id: String,
        /// The author.
        author: String,
    },
    /// The score is outside 0..=1.
    #[error("score {0} is out of range: give a number from 0 (useless) to 1 (exactly right)")]
    Score(f64),
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Each run's `run.started` record joined to its latest `run.paused`, `run.resumed` or
/// `run.ended` record, with the conditions each query adds after it.
const SUMMARIES: &str = "
SELECT s.seq, s.run_id, s.at, s.record, e.kind, e.record
FROM audit s
LEFT JOIN audit e ON e.seq = (
    SELECT max(x.seq) FROM audit x
    WHERE x.run_id = s.run_id AND x.kind IN ('run.paused', 'run.resumed', 'run.ended'))
WHERE s.kind = 'run.started'";

impl StateStore {
    /// The runs `filter` selects, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StateError> {
        let mut runs = Vec::new();
        self.read(|tx| {
            tx.for_each(
                &format!(
                    "{SUMMARIES} AND (CAST($1 AS TEXT) IS NULL OR s.principal = $1)
                     AND (CAST($2 AS TEXT) IS NULL OR s.at >= $2)
                     AND (CAST($3 AS BIGINT) IS NULL OR s.seq < $3) ORDER BY s.seq DESC"
                ),
                params![
                    filter.principal.as_deref(),
                    filter.since.as_deref(),
                    filter.before
                ],
                |row| {
                    let run = self.summary(SummaryRow::read(&row)?)?;
                    if filter.status.is_none_or(|status| status == run.status) {
                        runs.push(run);
                        if runs.len() >= filter.limit {
                            return Ok::<_, StateError>(ControlFlow::Break(()));
                        }
                    }
                    Ok(ControlFlow::Continue(()))
                },
            )
        })?;
        Ok(runs)
    }

    /// Run `run_id`, if it began.
    pub fn run_summary(&self, run_id: &str) -> Result<Option<RunSummary>, StateError> {
        let row = self.read(|tx| {
            tx.query_opt(&format!("{SUMMARIES} AND s.run_id = $1"), params![run_id])?
                .map(|row| Ok(SummaryRow::read(&row)?))
                .transpose()
        })?;
        row.map(|row| self.summary(row)).transpose()
    }

    /// Records `author`'s judgement of run `run_id`: once per author, whatever runs
    /// concurrently.
    pub fn add_feedback(
        &self,
        run_id: &str,
        author: &str,
        score: f64,
        comment: Option<String>,
    ) -> Result<RunFeedback, FeedbackError> {
        if !(0.0..=1.0).contains(&score) {
            return Err(FeedbackError::Score(score));
        }
        let started = self
            .started(run_id)?
            .ok_or_else(|| FeedbackError::UnknownRun(run_id.to_owned()))?;
        let feedback = RunFeedback {
            author: author.to_owned(),
            score,
            comment,
            agent: started.agent,
            prompt: started.prompt,
        };
        let appended =
            self.append_audit_if(run_id, AuditRecord::RunFeedback(feedback.clone()), |tx| {
                let given = tx.query_opt(
                    "SELECT 1 FROM audit WHERE run_id = $1 AND kind = 'run.feedback'
                     AND principal = $2",
                    params![run_id, author],
                )?;
                Ok(given.map(drop))
            })?;
        match appended {
            Ok(_) => Ok(feedback),
            Err(()) => Err(FeedbackError::Given {
                run_id: run_id.to_owned(),
                author: author.to_owned(),
            }),
        }
    }

    /// The `run.started` record of `run_id`, if it began.
    fn started(&self, run_id: &str) -> Result<Option<RunStarted>, StateError> {
        let stored = self.read(|tx| {
            tx.query_opt(
                "SELECT record FROM audit WHERE run_id = $1 AND kind = 'run.started'",
                params![run_id],
            )?
            .map(|row| Ok(row.text(0)?))
            .transpose()
        })?;
        stored
            .map(|stored| self.parse(run_id, "run.started", &stored))
            .transpose()
    }

    fn summary(&self, row: SummaryRow) -> Result<RunSummary, StateError> {
        let started: RunStarted = self.parse(&row.run_id, "run.started", &row.started)?;
        let (status, answer) = match (row.last_kind.as_deref(), row.last) {
            (Some("run.ended"), Some(last)) => {
                let ended: RunEnded = self.parse(&row.run_id, "run.ended", &last)?;
                (RunState::Stopped(ended.status), Some(ended.answer))
            }
            (Some("run.paused"), _) => (RunState::Stopped(RunStatus::Paused), None),
            _ => (RunState::Running, None),
        };
        Ok(RunSummary {
            seq: row.seq,
            run_id: row.run_id,
            agent: started.agent,
            principal: started.principal,
            started_at: row.at,
            status,
            prompt_version: started.prompt.version,
            canary: started.prompt.canary,
            answer,
        })
    }

    /// The details of a `kind` record of `run_id`, as stored.
    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        run_id: &str,
        kind: &str,
        stored: &str,
    ) -> Result<T, StateError> {
        serde_json::from_str(stored)
            .map_err(|e| self.corrupt(format!("the {kind} record of run {run_id}: {e}")))
    }
}

struct SummaryRow {
    seq: u64,
    run_id: String,
    at: String,
    started: String,
    last_kind: Option<String>,
    last: Option<String>,
}

impl SummaryRow {
    fn read(row: &harness_db::Row) -> Result<SummaryRow, DbError> {
        Ok(SummaryRow {
            seq: row.count(0)?,
            run_id: row.text(1)?,
            at: row.text(2)?,
            started: row.text(3)?,
            last_kind: row.opt_text(4)?,
            last: row.opt_text(5)?,
        })
    }
}
