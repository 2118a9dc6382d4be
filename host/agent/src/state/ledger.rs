//! The budget ledger: amounts (model tokens, tool fuel) reserved before each model or tool call
//! and settled with what it really used. A reservation is checked against every budget it
//! counts toward and written in one transaction, so no number of concurrent runs can overspend;
//! what is reserved counts until it is settled.

use rusqlite::{TransactionBehavior, params};
use serde::Serialize;

use super::audit::{now, since};
use super::{StateError, StateStore};
use crate::config::Rate;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reservation INTEGER NOT NULL,
    scope TEXT NOT NULL,
    run_id TEXT NOT NULL,
    reserved INTEGER NOT NULL,
    used INTEGER,
    at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_by_scope ON ledger (scope, at);";

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
        self.durable(|db| self.reserve_on(db, run_id, budgets, amount))
    }

    /// [`StateStore::reserve`] on the locked connection.
    fn reserve_on(
        &self,
        db: &mut rusqlite::Connection,
        run_id: &str,
        budgets: &[Budget],
        amount: u64,
    ) -> Result<Result<Reservation, Exhausted>, StateError> {
        let tx = db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sqlite(e))?;
        for budget in budgets {
            let spent: u64 = tx
                .prepare_cached(
                    "SELECT COALESCE(SUM(COALESCE(used, reserved)), 0) FROM ledger
                     WHERE scope = ?1 AND at > ?2",
                )
                .and_then(|mut spent| {
                    spent.query_row(params![budget.scope, since(budget.limit.per)], |row| {
                        row.get(0)
                    })
                })
                .map_err(|e| self.sqlite(e))?;
            let left = budget.limit.count.saturating_sub(spent);
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
        let reservation: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(reservation), 0) + 1 FROM ledger")
            .and_then(|mut next| next.query_row([], |row| row.get(0)))
            .map_err(|e| self.sqlite(e))?;
        let at = now();
        for budget in budgets {
            tx.prepare_cached(
                "INSERT INTO ledger (reservation, scope, run_id, reserved, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut insert| {
                insert.execute(params![reservation, budget.scope, run_id, amount, at])
            })
            .map_err(|e| self.sqlite(e))?;
        }
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(Ok(Reservation(reservation)))
    }

    /// Records what a reserved call really used; from now on that, not the reservation, counts.
    /// Until it reaches the disk, the reservation counts: a power loss can only overcount.
    pub fn settle(&self, reservation: Reservation, used: u64) -> Result<(), StateError> {
        self.after_the_fact(|db| {
            db.prepare_cached("UPDATE ledger SET used = ?2 WHERE reservation = ?1")
                .and_then(|mut settle| settle.execute(params![reservation.0, used]))
                .map_err(|e| self.sqlite(e))
        })?;
        Ok(())
    }

    /// Every scope with spending in the last `window`, and what it spent.
    pub fn spending(&self, window: std::time::Duration) -> Result<Vec<(String, u64)>, StateError> {
        let db = self.lock();
        let mut statement = db
            .prepare(
                "SELECT scope, SUM(COALESCE(used, reserved)) FROM ledger WHERE at > ?1
                 GROUP BY scope ORDER BY scope",
            )
            .map_err(|e| self.sqlite(e))?;
        statement
            .query_map(params![since(window)], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e))
    }

    /// What `scope` has spent in the last `window` (unsettled reservations included).
    pub fn spent(&self, scope: &str, window: std::time::Duration) -> Result<u64, StateError> {
        self.lock()
            .query_row(
                "SELECT COALESCE(SUM(COALESCE(used, reserved)), 0) FROM ledger WHERE scope = ?1 AND at > ?2",
                params![scope, since(window)],
                |row| row.get(0),
            )
            .map_err(|e| self.sqlite(e))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn budget(scope: &str, count: u64) -> Budget {
        Budget {
            scope: scope.into(),
            limit: Rate {
                count,
                per: Duration::from_secs(86_400),
            },
        }
    }

    #[test]
    fn reservations_count_until_settled_and_never_overspend() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let budgets = [
            budget("tokens:user:ana", 1000),
            budget("tokens:global", 1500),
        ];
        let first = store.reserve("r1", &budgets, 800).unwrap().unwrap();
        let refused = store.reserve("r1", &budgets, 300).unwrap().unwrap_err();
        assert_eq!(
            (refused.scope.as_str(), refused.left),
            ("tokens:user:ana", 200)
        );
        store.settle(first, 120).unwrap();
        assert_eq!(
            store
                .spent("tokens:user:ana", Duration::from_secs(60))
                .unwrap(),
            120
        );
        store.reserve("r1", &budgets, 300).unwrap().unwrap();
        // Bob has his own user budget but shares the global one.
        let bob = [
            budget("tokens:user:bob", 2000),
            budget("tokens:global", 1500),
        ];
        let refused = store.reserve("r2", &bob, 1100).unwrap().unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the budget tokens:global (1500 per 1day) has 1080 left, and this needs 1100"
        );
        store.reserve("r2", &bob, 1080).unwrap().unwrap();
    }
}
