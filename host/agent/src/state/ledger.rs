//! The budget ledger: amounts (model tokens, tool fuel) reserved before each model or tool call
//! and settled with what it really used. A reservation is checked against every budget it
//! counts toward and written in one transaction, so no number of concurrent runs can overspend;
//! what is reserved counts until it is settled.

use harness_db::{DbError, Tx, Wait, params};
use serde::Serialize;

use super::audit::{now, since};
use super::{StateError, StateStore};
use crate::config::Rate;

/// One budget a reservation counts toward: `tokens:user:ana`, `tokens:global`, `fuel:user:ana`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// What it limits and for whom.
    pub scope: String,
    /// How much per window.
    pub limit: Rate,
}

/// A budget that cannot take a reservation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, thiserror::Error)]
#[error("the budget {scope} ({limit} per {}) has {left} left, and this needs {asked}", humantime::format_duration(*window))]
pub struct Exhausted {
    /// The budget.
    pub scope: String,
    /// Its limit per window.
    pub limit: u64,
    /// The window.
    pub window: std::time::Duration,
    /// What remains in the window (reservations included).
    pub left: u64,
    /// What the call needed.
    pub asked: u64,
}

/// A reservation to settle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Reservation(i64);

impl StateStore {
    /// Reserves `amount` against each of `budgets`, or says which one cannot take it.
    pub fn reserve(
        &self,
        run_id: &str,
        budgets: &[Budget],
        amount: u64,
    ) -> Result<Result<Reservation, Exhausted>, StateError> {
        Ok(self.durable(|tx| reserve(tx, run_id, budgets, amount))?)
    }

    /// Records what a reserved call really used; from now on that, not the reservation, counts.
    /// Until it reaches the disk, the reservation counts: a power loss can only overcount.
    pub fn settle(&self, reservation: Reservation, used: u64) -> Result<(), StateError> {
        self.update(Wait::Later, |tx| {
            tx.execute(
                "UPDATE ledger SET used = $2 WHERE reservation = $1",
                params![reservation.0, used],
            )
        })?;
        Ok(())
    }

    /// Every scope with spending in the last `window`, and what it spent.
    pub fn spending(&self, window: std::time::Duration) -> Result<Vec<(String, u64)>, StateError> {
        self.read(|tx| {
            tx.query(
                "SELECT scope, CAST(SUM(COALESCE(used, reserved)) AS BIGINT) FROM ledger
                 WHERE at > $1 GROUP BY scope ORDER BY scope",
                params![&since(window)],
            )?
            .iter()
            .map(|row| Ok((row.text(0)?, row.count(1)?)))
            .collect()
        })
    }

    /// What `scope` has spent in the last `window` (unsettled reservations included).
    pub fn spent(&self, scope: &str, window: std::time::Duration) -> Result<u64, StateError> {
        self.read(|tx| Ok(spent(tx, scope, window)?))
    }
}

/// What `scope` spent in the last `window`, as `tx` sees it.
fn spent(tx: &mut Tx<'_>, scope: &str, window: std::time::Duration) -> Result<u64, DbError> {
    tx.query_one(
        "SELECT CAST(COALESCE(SUM(COALESCE(used, reserved)), 0) AS BIGINT) FROM ledger
         WHERE scope = $1 AND at > $2",
        params![scope, &since(window)],
    )?
    .count(0)
}

/// [`StateStore::reserve`] inside a write transaction.
fn reserve(
    tx: &mut Tx<'_>,
    run_id: &str,
    budgets: &[Budget],
    amount: u64,
) -> Result<Result<Reservation, Exhausted>, DbError> {
    for budget in budgets {
        let left = budget
            .limit
            .count
            .saturating_sub(spent(tx, &budget.scope, budget.limit.per)?);
        if amount > left {
            return Ok(Err(Exhausted {
                scope: budget.scope.clone(),
                limit: budget.limit.count,
                window: budget.limit.per,
                left,
                asked: amount,
            }));
        }
    }
    let reservation = tx
        .query_one(
            "SELECT CAST(COALESCE(MAX(reservation), 0) + 1 AS BIGINT) FROM ledger",
            &[],
        )?
        .int(0)?;
    let at = now();
    for budget in budgets {
        tx.execute(
            "INSERT INTO ledger (reservation, scope, run_id, reserved, at) VALUES ($1, $2, $3, $4, $5)",
            params![reservation, &budget.scope, run_id, amount, &at],
        )?;
    }
    Ok(Ok(Reservation(reservation)))
}
