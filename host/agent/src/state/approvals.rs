//! Human approval: a call that needs it becomes a pending approval, and its run is paused with
//! everything needed to resume it — in this process or another, before or after a restart.

use harness_db::{DbError, Tx, Wait, params};
use serde::Serialize;

use super::audit::now;
use super::records::{ApprovalDecided, ApprovalRequested, AuditRecord, Decision};
use super::{StateError, StateStore};

/// A claim on an approval for a call made again: the decision (now used), or the approval it
/// still waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A person decided this call; the decision is now used and will not apply again.
    Decided {
        /// The approval.
        id: i64,
        /// The decision.
        decision: Decision,
        /// Who decided.
        by: String,
        /// Why.
        reason: String,
    },
    /// It still waits for a person.
    Pending {
        /// The approval.
        id: i64,
    },
}

/// One approval, pending or decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalRequest {
    /// Its number, for `harness approvals approve N`.
    pub id: i64,
    /// The paused run.
    pub run_id: String,
    /// The model's id for the call.
    pub call_id: String,
    /// `tool.function`.
    pub function: String,
    /// The arguments, as JSON text.
    pub arguments: String,
    /// Who the run acts for.
    pub principal: String,
    /// When it was asked for.
    pub requested_at: String,
    /// The decision, once made.
    pub decision: Option<Decision>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Why, as the reviewer said.
    pub reason: Option<String>,
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// No approval has this number.
    #[error("there is no approval {0}")]
    Unknown(i64),
    /// It was decided already.
    #[error("approval {id} was already {decision} by {by}")]
    Decided {
        /// The approval.
        id: i64,
        /// The earlier decision.
        decision: Decision,
        /// Who made it.
        by: String,
    },
}

const COLUMNS: &str = "id, run_id, call_id, function, arguments, principal, requested_at, decision, decided_by, reason";

/// A stored decision (`NULL` while pending).
fn read_decision(row: &harness_db::Row, index: usize) -> Result<Option<Decision>, DbError> {
    Ok(match row.opt_text(index)?.as_deref() {
        None => None,
        Some("approved") => Some(Decision::Approved),
        Some("denied") => Some(Decision::Denied),
        Some(_) => {
            return Err(DbError::Column {
                index,
                expected: "a decision (approved or denied)",
                found: "other text",
            });
        }
    })
}

fn read(row: &harness_db::Row) -> Result<ApprovalRequest, DbError> {
    Ok(ApprovalRequest {
        id: row.int(0)?,
        run_id: row.text(1)?,
        call_id: row.text(2)?,
        function: row.text(3)?,
        arguments: row.text(4)?,
        principal: row.text(5)?,
        requested_at: row.text(6)?,
        decision: read_decision(row, 7)?,
        decided_by: row.opt_text(8)?,
        reason: row.opt_text(9)?,
    })
}

/// Approval `id` as `tx` sees it.
fn find(tx: &mut Tx<'_>, id: i64) -> Result<Option<ApprovalRequest>, DbError> {
    tx.query_opt(
        &format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"),
        params![id],
    )?
    .map(|row| read(&row))
    .transpose()
}

impl From<DbError> for DecideError {
    fn from(error: DbError) -> Self {
        DecideError::State(error.into())
    }
}

impl StateStore {
    /// Records that a call waits for a human, and returns its number.
    pub fn request_approval(
        &self,
        run_id: &str,
        call_id: &str,
        function: &str,
        arguments: &str,
        principal: &str,
    ) -> Result<i64, StateError> {
        let id = self.durable(|tx| {
            tx.query_one(
                "INSERT INTO approvals (run_id, call_id, function, arguments, principal, requested_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                params![run_id, call_id, function, arguments, principal, &now()],
            )?
            .int(0)
        })?;
        self.append_audit(
            run_id,
            AuditRecord::ApprovalRequested(ApprovalRequested {
                approval: id,
                call_id: call_id.to_owned(),
                function: function.to_owned(),
            }),
        )?;
        Ok(id)
    }

    /// Approvals not decided yet, oldest first; with `all`, every approval.
    pub fn approvals(&self, all: bool) -> Result<Vec<ApprovalRequest>, StateError> {
        let filter = if all { "" } else { "WHERE decision IS NULL" };
        self.list(
            &format!("SELECT {COLUMNS} FROM approvals {filter} ORDER BY id"),
            &[],
        )
    }

    /// Approval `id`, pending or decided; `None` when there is none.
    pub fn approval(&self, id: i64) -> Result<Option<ApprovalRequest>, StateError> {
        self.read(|tx| Ok(find(tx, id)?))
    }

    /// The approvals of one run, in order.
    pub fn approvals_of_run(&self, run_id: &str) -> Result<Vec<ApprovalRequest>, StateError> {
        self.list(
            &format!("SELECT {COLUMNS} FROM approvals WHERE run_id = $1 ORDER BY id"),
            params![run_id],
        )
    }

    fn list(
        &self,
        sql: &str,
        params: &[harness_db::Param<'_>],
    ) -> Result<Vec<ApprovalRequest>, StateError> {
        self.read(|tx| {
            tx.query(sql, params)?
                .iter()
                .map(|row| Ok(read(row)?))
                .collect()
        })
    }

    /// Approves or denies approval `id`, once (by whichever replica decides first).
    pub fn decide(
        &self,
        id: i64,
        decision: Decision,
        by: &str,
        reason: &str,
    ) -> Result<ApprovalRequest, DecideError> {
        let decided = self.durable(|tx| {
            let current = find(tx, id)?.ok_or(DecideError::Unknown(id))?;
            if let Some(earlier) = current.decision {
                return Err(DecideError::Decided {
                    id,
                    decision: earlier,
                    by: current.decided_by.unwrap_or_default(),
                });
            }
            tx.execute(
                "UPDATE approvals SET decision = $2, decided_by = $3, reason = $4, decided_at = $5
                 WHERE id = $1",
                params![id, decision.as_str(), by, reason, &now()],
            )?;
            Ok::<_, DecideError>(ApprovalRequest {
                decision: Some(decision),
                decided_by: Some(by.into()),
                reason: Some(reason.into()),
                ..current
            })
        })?;
        let details = ApprovalDecided {
            approval: id,
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        self.append_audit(
            &decided.run_id,
            match decision {
                Decision::Approved => AuditRecord::ApprovalApproved(details),
                Decision::Denied => AuditRecord::ApprovalDenied(details),
            },
        )?;
        Ok(decided)
    }

    /// The approval of `principal`'s call of `function` with `arguments` (canonical JSON) that is
    /// neither used nor part of a paused run: a decided one is marked used in the same
    /// transaction, so it applies to exactly one call; `None` when there is none.
    pub fn claim_approval(
        &self,
        principal: &str,
        function: &str,
        arguments: &str,
    ) -> Result<Option<Claim>, StateError> {
        self.durable(|tx| {
            let Some(found) = tx.query_opt(
                "SELECT id, decision, decided_by, reason FROM approvals
                 WHERE principal = $1 AND function = $2 AND arguments = $3
                   AND consumed_at IS NULL
                   AND run_id NOT IN (SELECT run_id FROM paused_runs)
                 ORDER BY id LIMIT 1",
                params![principal, function, arguments],
            )?
            else {
                return Ok(None);
            };
            let id = found.int(0)?;
            let Some(decision) = read_decision(&found, 1)? else {
                return Ok(Some(Claim::Pending { id }));
            };
            tx.execute(
                "UPDATE approvals SET consumed_at = $2 WHERE id = $1",
                params![id, &now()],
            )?;
            Ok(Some(Claim::Decided {
                id,
                decision,
                by: found.opt_text(2)?.unwrap_or_default(),
                reason: found.opt_text(3)?.unwrap_or_default(),
            }))
        })
    }

    /// Keeps a paused run's state until it resumes.
    pub fn pause_run(&self, run_id: &str, agent: &str, state: &str) -> Result<(), StateError> {
        self.update(Wait::Disk, |tx| {
            tx.execute(
                "INSERT INTO paused_runs (run_id, agent, state, paused_at) VALUES ($1, $2, $3, $4)",
                params![run_id, agent, state, &now()],
            )
        })?;
        Ok(())
    }

    /// The agent and state of paused run `run_id`, left in place.
    pub fn paused_run(&self, run_id: &str) -> Result<Option<(String, String)>, StateError> {
        self.read(|tx| {
            tx.query_opt(
                "SELECT agent, state FROM paused_runs WHERE run_id = $1",
                params![run_id],
            )?
            .map(|row| Ok((row.text(0)?, row.text(1)?)))
            .transpose()
        })
    }

    /// The state of `agent`'s paused run `run_id` once none of its approvals is pending, removed
    /// in the same statement that checks the decisions: exactly one resumer gets it, on any
    /// replica, and a resumer that comes too early leaves it in place.
    pub fn take_decided_run(
        &self,
        run_id: &str,
        agent: &str,
    ) -> Result<Option<String>, StateError> {
        self.durable(|tx| {
            tx.query_opt(
                "DELETE FROM paused_runs WHERE run_id = $1 AND agent = $2 AND NOT EXISTS
                     (SELECT 1 FROM approvals WHERE run_id = $1 AND decision IS NULL)
                 RETURNING state",
                params![run_id, agent],
            )?
            .map(|row| Ok(row.text(0)?))
            .transpose()
        })
    }
}
