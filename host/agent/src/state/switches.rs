//! Kill switches: a tool or an agent taken out of service at run time, by another process
//! (`harness kill`) or another thread, without a restart. Every flip is an audit record.

use harness_db::{DbError, Tx, Wait, params};

use super::audit::now;
use super::records::AuditRecord;
use super::{StateError, StateStore};

/// What a switch stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every call of one tool, by any agent.
    Tool(String),
    /// Every run of one agent.
    Agent(String),
}

impl Target {
    /// `tool:NAME` or `agent:NAME`, as stored.
    pub fn key(&self) -> String {
        match self {
            Target::Tool(name) => format!("tool:{name}"),
            Target::Agent(name) => format!("agent:{name}"),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tool(name) => write!(f, "tool {name}"),
            Target::Agent(name) => write!(f, "agent {name}"),
        }
    }
}

/// A switch that is off.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Killed {
    /// `tool:NAME` or `agent:NAME`.
    pub target: String,
    /// Why, as given.
    pub reason: String,
    /// When.
    pub at: String,
}

fn read_killed(row: &harness_db::Row) -> Result<Killed, DbError> {
    Ok(Killed {
        target: row.text(0)?,
        reason: row.text(1)?,
        at: row.text(2)?,
    })
}

/// The switch of `target`, if it is off, as `tx` sees it (inside a write transaction, say).
pub(crate) fn killed_in(tx: &mut Tx<'_>, target: &Target) -> Result<Option<Killed>, DbError> {
    tx.query_opt(
        "SELECT target, reason, at FROM switches WHERE target = $1",
        params![&target.key()],
    )?
    .map(|row| read_killed(&row))
    .transpose()
}

impl StateStore {
    /// Takes `target` out of service for `reason`, by `who`.
    pub fn kill(&self, target: &Target, reason: &str, who: &str) -> Result<(), StateError> {
        self.update(Wait::Disk, |tx| {
            tx.execute(
                "INSERT INTO switches (target, reason, at) VALUES ($1, $2, $3)
                 ON CONFLICT (target) DO UPDATE SET reason = excluded.reason, at = excluded.at",
                params![&target.key(), reason, &now()],
            )
        })?;
        self.append_audit(
            "-",
            AuditRecord::SwitchKilled {
                target: target.key(),
                reason: reason.to_owned(),
                by: who.to_owned(),
            },
        )?;
        Ok(())
    }

    /// Puts `target` back in service; says whether it was killed.
    pub fn enable(&self, target: &Target, who: &str) -> Result<bool, StateError> {
        let removed = self.update(Wait::Disk, |tx| {
            tx.execute(
                "DELETE FROM switches WHERE target = $1",
                params![&target.key()],
            )
        })?;
        if removed > 0 {
            self.append_audit(
                "-",
                AuditRecord::SwitchEnabled {
                    target: target.key(),
                    by: who.to_owned(),
                },
            )?;
        }
        Ok(removed > 0)
    }

    /// The switch of `target`, if it is off.
    pub fn killed(&self, target: &Target) -> Result<Option<Killed>, StateError> {
        self.read(|tx| Ok(killed_in(tx, target)?))
    }

    /// Every switch that is off.
    pub fn switches(&self) -> Result<Vec<Killed>, StateError> {
        self.read(|tx| {
            tx.query(
                "SELECT target, reason, at FROM switches ORDER BY target",
                &[],
            )?
            .iter()
            .map(|row| Ok(read_killed(row)?))
            .collect()
        })
    }
}
