//! Leases on runs in flight. A server driving a run holds its lease and renews it while it
//! lives; when a server dies mid-run (a crash, `SIGKILL`, a lost machine), its leases run out
//! and whichever server looks first ends those runs as [abandoned](RunStatus::Abandoned), once,
//! in the transaction that removes the lease — never lost, never ended twice, and never run on
//! past the records they had written (re-running a tool call could repeat its side effects).

use std::time::Duration;

use harness_db::{DbError, Tx, Wait, params};

use super::audit::{ahead, now};
use super::records::{AuditRecord, RunEnded};
use super::{StateError, StateStore};
use crate::run::RunStatus;

/// A run whose server's lease ran out, now ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abandoned {
    /// The run.
    pub run_id: String,
    /// The server that held it.
    pub owner: String,
}

impl StateStore {
    /// Records that `owner` drives run `run_id` of `agent` for the next `lease`. It waits for no
    /// disk flush: the run's next admission or reservation, a moment later, carries it to the
    /// disk.
    pub fn lease_run(
        &self,
        run_id: &str,
        agent: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<(), StateError> {
        self.update(Wait::Later, |tx| {
            tx.execute(
                "INSERT INTO run_leases (run_id, agent, owner, leased_until) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (run_id) DO UPDATE SET agent = excluded.agent, owner = excluded.owner,
                     leased_until = excluded.leased_until",
                params![run_id, agent, owner, &ahead(lease)],
            )
        })?;
        Ok(())
    }

    /// Extends every lease `owner` holds by `lease` from now; returns how many it holds.
    pub fn renew_leases(&self, owner: &str, lease: Duration) -> Result<u64, StateError> {
        self.update(Wait::Later, |tx| {
            tx.execute(
                "UPDATE run_leases SET leased_until = $2 WHERE owner = $1",
                params![owner, &ahead(lease)],
            )
        })
    }

    /// Gives up the lease on run `run_id` (it ended or paused).
    pub fn release_run(&self, run_id: &str) -> Result<(), StateError> {
        self.update(Wait::Later, |tx| {
            tx.execute("DELETE FROM run_leases WHERE run_id = $1", params![run_id])
        })?;
        Ok(())
    }

    /// Ends every run whose lease ran out as abandoned (`run.ended`, with the turns and tokens
    /// its records show), and removes its lease, in one transaction.
    pub fn end_abandoned_runs(&self) -> Result<Vec<Abandoned>, StateError> {
        self.durable(|tx| {
            let expired = tx.query(
                "SELECT run_id, owner FROM run_leases WHERE leased_until < $1 ORDER BY run_id",
                params![&now()],
            )?;
            let mut ended = Vec::with_capacity(expired.len());
            for row in expired {
                let abandoned = Abandoned {
                    run_id: row.text(0)?,
                    owner: row.text(1)?,
                };
                tx.execute(
                    "DELETE FROM run_leases WHERE run_id = $1",
                    params![&abandoned.run_id],
                )?;
                let record = ending(tx, &abandoned)?;
                self.append_in(tx, &abandoned.run_id, AuditRecord::RunEnded(record))?;
                ended.push(abandoned);
            }
            Ok(ended)
        })
    }
}

/// The `run.ended` record of an abandoned run: its prompt, and the turns and tokens of the
/// model answers it recorded.
fn ending(tx: &mut Tx<'_>, abandoned: &Abandoned) -> Result<RunEnded, DbError> {
    let run_id = abandoned.run_id.as_str();
    let sql = tx.dialect();
    let prompt = tx
        .query_opt(
            &format!(
                "SELECT {} FROM audit WHERE run_id = $1 AND kind = 'run.started'",
                sql.json_text("record", &["prompt", "version"])
            ),
            params![run_id],
        )?
        .map(|row| row.opt_text(0))
        .transpose()?
        .flatten()
        .unwrap_or_default();
    let usage = tx.query_one(
        &format!(
            "SELECT COUNT(*), CAST(SUM({}) AS BIGINT), CAST(SUM({}) AS BIGINT) FROM audit
             WHERE run_id = $1 AND kind = 'model.responded'",
            sql.json_int("record", &["gen_ai.usage.input_tokens"]),
            sql.json_int("record", &["gen_ai.usage.output_tokens"]),
        ),
        params![run_id],
    )?;
    Ok(RunEnded {
        status: RunStatus::Abandoned,
        answer: format!(
            "The run stopped mid-way: the server driving it ({}) stopped, and its lease ran out. \
             Its records up to there are kept; it did not go on.",
            abandoned.owner
        ),
        turns: u32::try_from(usage.count(0)?).unwrap_or(u32::MAX),
        prompt_version: prompt,
        input_tokens: usage.count(1)?,
        output_tokens: usage.count(2)?,
    })
}
