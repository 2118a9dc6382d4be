//! Counters read back from the audit log: runs, their endings and the feedback on them per
//! prompt version, calls and errors per tool function, refusals per gate — the numbers to compare a canary against the
//! stable prompt, or to spot a failing tool.

use std::collections::BTreeMap;
use std::time::Duration;

use harness_db::{DbError, Dialect, Tx, params};
use serde::Serialize;

use super::audit::since;
use super::{StateError, StateStore};

/// Runs that ended with one prompt version, and what people said of its runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PromptStats {
    /// The prompt version.
    pub version: String,
    /// Whether runs used it as an agent's canary.
    pub canary: bool,
    /// Runs that ended.
    pub runs: u64,
    /// Of those, runs the model answered.
    pub answered: u64,
    /// Tokens they used (`gen_ai.usage.input_tokens` + `output_tokens`).
    pub tokens: u64,
    /// Feedback given on its runs (`run.feedback`).
    pub feedback: u64,
    /// The mean score of that feedback, from 0 to 1.
    pub mean_score: Option<f64>,
}

/// Calls of one tool function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolStats {
    /// `tool.function`.
    pub function: String,
    /// Calls that ran.
    pub calls: u64,
    /// Of those, calls that did not end `ok` (tool errors and stops).
    pub errors: u64,
    /// Fuel they used.
    pub fuel: u64,
}

/// Everything [`StateStore::metrics`] counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// Per prompt version.
    pub prompts: Vec<PromptStats>,
    /// Per tool function.
    pub tools: Vec<ToolStats>,
    /// Refusals per gate.
    pub refusals: Vec<(String, u64)>,
}

/// Calls per tool function since `$1`, of one function when `$2` names it.
fn tool_stats_sql(sql: Dialect) -> String {
    let function = sql.json_text("record", &["function"]);
    format!(
        "SELECT {function}, COUNT(*),
                SUM(CASE WHEN {} <> 'ok' THEN 1 ELSE 0 END),
                CAST(SUM({}) AS BIGINT)
         FROM audit WHERE kind = 'tool.called' AND at > $1 AND (CAST($2 AS TEXT) IS NULL OR {function} = $2)
         GROUP BY 1 ORDER BY 1",
        sql.json_text("record", &["outcome", "kind"]),
        sql.json_int("record", &["fuel"]),
    )
}

/// Calls and refusals in one hour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// The hour, as the log writes times, to the hour (`2026-12-03T09`).
    pub hour: String,
    /// Calls that ran in the sandbox.
    pub calls: u64,
    /// Calls a gate refused.
    pub refusals: u64,
}

impl StateStore {
    /// Calls and refusals per hour over the last `window`, oldest first (hours without either
    /// left out).
    pub fn activity(&self, window: Duration) -> Result<Vec<Activity>, StateError> {
        self.read(|tx| {
            tx.query(
                "SELECT substr(at, 1, 13),
                        SUM(CASE WHEN kind = 'tool.called' THEN 1 ELSE 0 END),
                        SUM(CASE WHEN kind = 'tool.refused' THEN 1 ELSE 0 END)
                 FROM audit WHERE kind IN ('tool.called', 'tool.refused') AND at > $1
                 GROUP BY 1 ORDER BY 1",
                params![&since(window)],
            )?
            .iter()
            .map(|row| {
                Ok(Activity {
                    hour: row.text(0)?,
                    calls: row.count(1)?,
                    refusals: row.count(2)?,
                })
            })
            .collect()
        })
    }

    /// The calls of one tool function over the last `window` (what the error-rate alert reads
    /// after each call, without computing every other counter).
    pub fn tool_stats(
        &self,
        function: &str,
        window: Duration,
    ) -> Result<Option<ToolStats>, StateError> {
        self.read(|tx| Ok(tool_stats(tx, &since(window), Some(function))?.pop()))
    }

    /// The counters over the last `window`.
    pub fn metrics(&self, window: Duration) -> Result<Metrics, StateError> {
        self.read(|tx| Ok(metrics(tx, &since(window))?))
    }
}

fn tool_stats(tx: &mut Tx<'_>, after: &str, only: Option<&str>) -> Result<Vec<ToolStats>, DbError> {
    tx.query(&tool_stats_sql(tx.dialect()), params![after, only])?
        .iter()
        .map(|row| {
            Ok(ToolStats {
                function: row.opt_text(0)?.unwrap_or_default(),
                calls: row.count(1)?,
                errors: row.count(2)?,
                fuel: row.count(3)?,
            })
        })
        .collect()
}

fn metrics(tx: &mut Tx<'_>, after: &str) -> Result<Metrics, DbError> {
    let sql = tx.dialect();
    let mut prompts: BTreeMap<String, PromptStats> = BTreeMap::new();
    let ended = format!(
        "SELECT {}, COUNT(*), SUM(CASE WHEN {} = 'answered' THEN 1 ELSE 0 END),
                CAST(SUM({} + {}) AS BIGINT)
         FROM audit WHERE kind = 'run.ended' AND at > $1 GROUP BY 1 ORDER BY 1",
        sql.json_text("record", &["prompt_version"]),
        sql.json_text("record", &["status"]),
        sql.json_int("record", &["gen_ai.usage.input_tokens"]),
        sql.json_int("record", &["gen_ai.usage.output_tokens"]),
    );
    for row in tx.query(&ended, params![after])? {
        let version = row.opt_text(0)?.unwrap_or_default();
        let stats = prompts
            .entry(version.clone())
            .or_insert_with(|| PromptStats::new(version));
        stats.runs = row.count(1)?;
        stats.answered = row.count(2)?;
        stats.tokens = row.count(3)?;
    }
    let feedback = format!(
        "SELECT {}, COUNT(*), AVG({}) FROM audit
         WHERE kind = 'run.feedback' AND at > $1 GROUP BY 1",
        sql.json_text("record", &["prompt", "version"]),
        sql.json_real("record", &["score"]),
    );
    for row in tx.query(&feedback, params![after])? {
        let version = row.opt_text(0)?.unwrap_or_default();
        let stats = prompts
            .entry(version.clone())
            .or_insert_with(|| PromptStats::new(version));
        stats.feedback = row.count(1)?;
        stats.mean_score = row.opt_real(2)?;
    }
    let canaries = format!(
        "SELECT DISTINCT {} FROM audit WHERE kind = 'run.started' AND {} AND at > $1",
        sql.json_text("record", &["prompt", "version"]),
        sql.json_true("record", &["prompt", "canary"]),
    );
    for row in tx.query(&canaries, params![after])? {
        if let Some(stats) = prompts.get_mut(&row.opt_text(0)?.unwrap_or_default()) {
            stats.canary = true;
        }
    }
    let refusals = format!(
        "SELECT {}, COUNT(*) FROM audit WHERE kind = 'tool.refused' AND at > $1
         GROUP BY 1 ORDER BY 1",
        sql.json_text("record", &["gate"]),
    );
    let refusals = tx
        .query(&refusals, params![after])?
        .iter()
        .map(|row| Ok((row.opt_text(0)?.unwrap_or_default(), row.count(1)?)))
        .collect::<Result<_, DbError>>()?;
    Ok(Metrics {
        prompts: prompts.into_values().collect(),
        tools: tool_stats(tx, after, None)?,
        refusals,
    })
}

impl PromptStats {
    fn new(version: String) -> PromptStats {
        PromptStats {
            version,
            canary: false,
            runs: 0,
            answered: 0,
            tokens: 0,
            feedback: 0,
            mean_score: None,
        }
    }
}
