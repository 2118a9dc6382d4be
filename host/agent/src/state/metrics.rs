//! Counters read back from the audit log: runs, their endings and the feedback on them per
//! prompt version, calls and errors per tool function, refusals per gate — the numbers to compare a canary against the
//! stable prompt, or to spot a failing tool.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::params;
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

/// Calls per tool function since `after`, of one function when `only` names it.
const TOOL_STATS: &str = "SELECT json_extract(record, '$.function'), COUNT(*),
        SUM(json_extract(record, '$.outcome.kind') != 'ok'),
        SUM(json_extract(record, '$.fuel'))
    FROM audit WHERE kind = 'tool.called' AND at > ?1
        AND (?2 IS NULL OR json_extract(record, '$.function') = ?2)
    GROUP BY 1 ORDER BY 1";

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
        let db = self.lock();
        let mut statement = db
            .prepare(
                "SELECT substr(at, 1, 13), SUM(kind = 'tool.called'), SUM(kind = 'tool.refused')
                 FROM audit WHERE kind IN ('tool.called', 'tool.refused') AND at > ?1
                 GROUP BY 1 ORDER BY 1",
            )
            .map_err(|e| self.sqlite(e))?;
        statement
            .query_map(params![since(window)], |row| {
                Ok(Activity {
                    hour: row.get(0)?,
                    calls: row.get(1)?,
                    refusals: row.get(2)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))
    }

    /// The calls of one tool function over the last `window` (what the error-rate alert reads
    /// after each call, without computing every other counter).
    pub fn tool_stats(
        &self,
        function: &str,
        window: Duration,
    ) -> Result<Option<ToolStats>, StateError> {
        let db = self.lock();
        Ok(self
            .tool_stats_where(&db, &since(window), Some(function))?
            .pop())
    }

    fn tool_stats_where(
        &self,
        db: &rusqlite::Connection,
        after: &str,
        only: Option<&str>,
    ) -> Result<Vec<ToolStats>, StateError> {
        let mut statement = db.prepare(TOOL_STATS).map_err(|e| self.sqlite(e))?;
        statement
            .query_map(params![after, only], |row| {
                Ok(ToolStats {
                    function: row.get(0)?,
                    calls: row.get(1)?,
                    errors: row.get(2)?,
                    fuel: row.get::<_, Option<u64>>(3)?.unwrap_or(0),
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))
    }

    /// The counters over the last `window`.
    pub fn metrics(&self, window: Duration) -> Result<Metrics, StateError> {
        let db = self.lock();
        let after = since(window);
        let query = |sql: &str| db.prepare(sql).map_err(|e| self.sqlite(e));
        let mut prompts = query(
            "SELECT json_extract(record, '$.prompt_version'), COUNT(*),
                    SUM(json_extract(record, '$.status') = 'answered'),
                    SUM(json_extract(record, '$.\"gen_ai.usage.input_tokens\"')
                        + json_extract(record, '$.\"gen_ai.usage.output_tokens\"'))
             FROM audit WHERE kind = 'run.ended' AND at > ?1 GROUP BY 1 ORDER BY 1",
        )?;
        let mut prompts: BTreeMap<String, PromptStats> = prompts
            .query_map(params![after], |row| {
                let version = row.get::<_, Option<String>>(0)?.unwrap_or_default();
                Ok((
                    version.clone(),
                    PromptStats {
                        version,
                        canary: false,
                        runs: row.get(1)?,
                        answered: row.get(2)?,
                        tokens: row.get::<_, Option<u64>>(3)?.unwrap_or(0),
                        feedback: 0,
                        mean_score: None,
                    },
                ))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))?;
        let mut feedback = query(
            "SELECT json_extract(record, '$.prompt.version'), COUNT(*),
                    AVG(json_extract(record, '$.score'))
             FROM audit WHERE kind = 'run.feedback' AND at > ?1 GROUP BY 1",
        )?;
        let feedback: Vec<(String, u64, f64)> = feedback
            .query_map(params![after], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))?;
        for (version, count, mean) in feedback {
            let stats = prompts
                .entry(version.clone())
                .or_insert_with(|| PromptStats {
                    version,
                    canary: false,
                    runs: 0,
                    answered: 0,
                    tokens: 0,
                    feedback: 0,
                    mean_score: None,
                });
            stats.feedback = count;
            stats.mean_score = Some(mean);
        }
        let mut canaries = query(
            "SELECT DISTINCT json_extract(record, '$.prompt.version') FROM audit
             WHERE kind = 'run.started' AND json_extract(record, '$.prompt.canary') AND at > ?1",
        )?;
        let canaries: Vec<String> = canaries
            .query_map(params![after], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))?;
        for version in canaries {
            if let Some(stats) = prompts.get_mut(&version) {
                stats.canary = true;
            }
        }
        let prompts = prompts.into_values().collect();
        let tools = self.tool_stats_where(&db, &after, None)?;
        let mut refusals = query(
            "SELECT json_extract(record, '$.gate'), COUNT(*) FROM audit
             WHERE kind = 'tool.refused' AND at > ?1 GROUP BY 1 ORDER BY 1",
        )?;
        let refusals = refusals
            .query_map(params![after], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))?;
        Ok(Metrics {
            prompts,
            tools,
            refusals,
        })
    }
}
