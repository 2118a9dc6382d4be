//! Human approval: a call that needs it becomes a pending approval, and its run is paused with
//! everything needed to resume it — in this process or another, before or after a restart.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::audit::now;
use super::records::{ApprovalDecided, ApprovalRequested, AuditRecord, Decision};
use super::{StateError, StateStore};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    function TEXT NOT NULL,
    arguments TEXT NOT NULL,
    principal TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    reason TEXT,
    decided_at TEXT);
CREATE TABLE IF NOT EXISTS paused_runs (
    run_id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    state TEXT NOT NULL,
    paused_at TEXT NOT NULL);";

/// Version 2 → 3: an approval is used once. A decision is consumed when the paused run it
/// belongs to resumes, or when the same call comes again outside a run (MCP, the HTTP API);
/// approvals decided before this version count as used.
pub(super) const MIGRATE_TO_3: &str = "
ALTER TABLE approvals ADD COLUMN consumed_at TEXT;
UPDATE approvals SET consumed_at = decided_at WHERE decision IS NOT NULL;
CREATE INDEX IF NOT EXISTS approvals_by_call ON approvals (principal, function, arguments);";

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

impl ToSql for Decision {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Decision {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "approved" => Ok(Decision::Approved),
            "denied" => Ok(Decision::Denied),
            other => Err(FromSqlError::Other(
                format!("`{other}` is not a decision").into(),
            )),
        }
    }
}

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRequest> {
    Ok(ApprovalRequest {
        id: row.get(0)?,
        run_id: row.get(1)?,
        call_id: row.get(2)?,
        function: row.get(3)?,
        arguments: row.get(4)?,
        principal: row.get(5)?,
        requested_at: row.get(6)?,
        decision: row.get(7)?,
        decided_by: row.get(8)?,
        reason: row.get(9)?,
    })
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
        let id = self.durable(|db| {
            db.execute(
                "INSERT INTO approvals (run_id, call_id, function, arguments, principal, requested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run_id, call_id, function, arguments, principal, now()],
            )
            .map_err(|e| self.sqlite(e))?;
            Ok::<_, StateError>(db.last_insert_rowid())
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
        let db = self.lock();
        let filter = if all { "" } else { "WHERE decision IS NULL" };
        let mut statement = db
            .prepare(&format!(
                "SELECT {COLUMNS} FROM approvals {filter} ORDER BY id"
            ))
            .map_err(|e| self.sqlite(e))?;
        let rows = statement.query_map([], read).map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// Approval `id`, pending or decided; `None` when there is none.
    pub fn approval(&self, id: i64) -> Result<Option<ApprovalRequest>, StateError> {
        self.lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                read,
            )
            .optional()
            .map_err(|e| self.sqlite(e))
    }

    /// The approvals of one run, in order.
    pub fn approvals_of_run(&self, run_id: &str) -> Result<Vec<ApprovalRequest>, StateError> {
        let db = self.lock();
        let mut statement = db
            .prepare(&format!(
                "SELECT {COLUMNS} FROM approvals WHERE run_id = ?1 ORDER BY id"
            ))
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([run_id], read)
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// Approves or denies approval `id`, once.
    pub fn decide(
        &self,
        id: i64,
        decision: Decision,
        by: &str,
        reason: &str,
    ) -> Result<ApprovalRequest, DecideError> {
        let decided = self.durable(|db| {
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.sqlite(e))?;
            let current = tx
                .query_row(
                    &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                    [id],
                    read,
                )
                .optional()
                .map_err(|e| self.sqlite(e))?
                .ok_or(DecideError::Unknown(id))?;
            if let Some(earlier) = current.decision {
                return Err(DecideError::Decided {
                    id,
                    decision: earlier,
                    by: current.decided_by.unwrap_or_default(),
                });
            }
            tx.execute(
                "UPDATE approvals SET decision = ?2, decided_by = ?3, reason = ?4, decided_at = ?5 WHERE id = ?1",
                params![id, decision, by, reason, now()],
            )
            .map_err(|e| self.sqlite(e))?;
            tx.commit().map_err(|e| self.sqlite(e))?;
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
        self.durable(|db| {
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.sqlite(e))?;
            let found = tx
                .query_row(
                    "SELECT id, decision, decided_by, reason FROM approvals
                     WHERE principal = ?1 AND function = ?2 AND arguments = ?3
                       AND consumed_at IS NULL
                       AND run_id NOT IN (SELECT run_id FROM paused_runs)
                     ORDER BY id LIMIT 1",
                    params![principal, function, arguments],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, Option<Decision>>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, Option<String>>(3)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| self.sqlite(e))?;
            let claim = match found {
                None => None,
                Some((id, None, _, _)) => Some(Claim::Pending { id }),
                Some((id, Some(decision), by, reason)) => {
                    tx.execute(
                        "UPDATE approvals SET consumed_at = ?2 WHERE id = ?1",
                        params![id, now()],
                    )
                    .map_err(|e| self.sqlite(e))?;
                    Some(Claim::Decided {
                        id,
                        decision,
                        by: by.unwrap_or_default(),
                        reason: reason.unwrap_or_default(),
                    })
                }
            };
            tx.commit().map_err(|e| self.sqlite(e))?;
            Ok(claim)
        })
    }

    /// Keeps a paused run's state until it resumes.
    pub fn pause_run(&self, run_id: &str, agent: &str, state: &str) -> Result<(), StateError> {
        self.durable(|db| {
            db.execute(
                "INSERT INTO paused_runs (run_id, agent, state, paused_at) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, agent, state, now()],
            )
            .map_err(|e| self.sqlite(e))
        })?;
        Ok(())
    }

    /// The agent and state of paused run `run_id`, left in place.
    pub fn paused_run(&self, run_id: &str) -> Result<Option<(String, String)>, StateError> {
        self.lock()
            .query_row(
                "SELECT agent, state FROM paused_runs WHERE run_id = ?1",
                [run_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sqlite(e))
    }

    /// The state of `agent`'s paused run `run_id` once none of its approvals is pending, removed
    /// in the same statement that checks the decisions: exactly one resumer gets it, and a
    /// resumer that comes too early leaves it in place.
    pub fn take_decided_run(
        &self,
        run_id: &str,
        agent: &str,
    ) -> Result<Option<String>, StateError> {
        self.durable(|db| {
            db.query_row(
                "DELETE FROM paused_runs WHERE run_id = ?1 AND agent = ?2 AND NOT EXISTS
                     (SELECT 1 FROM approvals WHERE run_id = ?1 AND decision IS NULL)
                 RETURNING state",
                params![run_id, agent],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_is_decided_once_and_a_paused_run_resumed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let id = store
            .request_approval("run-1", "call_1", "tickets.create", "{}", "ana")
            .unwrap();
        store
            .pause_run("run-1", "support", "{\"turns\": 1}")
            .unwrap();
        let reopened = StateStore::open(dir.path()).unwrap();
        assert_eq!(reopened.approvals(false).unwrap()[0].id, id);
        assert_eq!(
            reopened.take_decided_run("run-1", "support").unwrap(),
            None,
            "undecided: the run stays paused"
        );
        let decided = reopened
            .decide(id, Decision::Approved, "lee", "looks fine")
            .unwrap();
        assert_eq!(decided.decision, Some(Decision::Approved));
        let again = reopened
            .decide(id, Decision::Denied, "kim", "no")
            .unwrap_err();
        assert_eq!(
            again.to_string(),
            format!("approval {id} was already approved by lee")
        );
        assert!(matches!(
            reopened.decide(99, Decision::Approved, "lee", ""),
            Err(DecideError::Unknown(99))
        ));
        assert!(reopened.approvals(false).unwrap().is_empty());
        assert_eq!(reopened.approvals(true).unwrap().len(), 1);
        assert_eq!(
            reopened.take_decided_run("run-1", "other").unwrap(),
            None,
            "another agent's run"
        );
        assert_eq!(
            reopened.take_decided_run("run-1", "support").unwrap(),
            Some("{\"turns\": 1}".into())
        );
        assert_eq!(store.take_decided_run("run-1", "support").unwrap(), None);
        let kinds: Vec<_> = store
            .audit_of_run("run-1")
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["approval.requested", "approval.approved"]);
    }
}
