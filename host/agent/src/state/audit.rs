//! The audit log as a hash chain: each record carries the SHA-256 of the one before it, so an
//! edited, inserted, deleted or reordered record breaks the chain at that point, and
//! [`StateStore::verify_audit`] names it.
//!
//! A chain proves order and integrity, not absence of a complete rewrite by someone who can write
//! the file: anchor the head ([`StateStore::audit_head`]) somewhere else and pass it to
//! verification, which then also detects records removed from the end.

use std::ops::ControlFlow;

use harness_db::{DbError, Tx, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::records::AuditRecord;
use super::{StateError, StateStore};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Its position, from 1, without gaps.
    pub seq: u64,
    /// When it was written (RFC 3339, UTC).
    pub at: String,
    /// The run it belongs to (`-` for records outside a run, such as switches).
    pub run_id: String,
    /// What happened: `run.started`, `tool.refused`, `tool.called`, ... (the record's kind).
    pub kind: String,
    /// The details.
    pub record: AuditRecord,
    /// The hash of the record before it ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 over all the fields above.
    pub hash: String,
}

/// What verification found on an intact log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// How many records it holds.
    pub records: u64,
    /// The hash of the last record ([`GENESIS`] when empty).
    pub head: String,
}

/// Where and how the chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Tampering {
    /// A record's content no longer matches its hash.
    #[error("record {seq} was edited: its content does not match its hash")]
    Edited {
        /// The record.
        seq: u64,
    },
    /// A record does not follow the one before it.
    #[error("record {seq} does not follow record {}: a record was deleted, inserted or reordered before it", .seq - 1)]
    Unlinked {
        /// The first record out of place.
        seq: u64,
    },
    /// Sequence numbers skip.
    #[error("records {expected} to {}: missing (the log jumps to {found})", .found - 1)]
    Missing {
        /// The number that should have come next.
        expected: u64,
        /// The number that came.
        found: u64,
    },
    /// The log does not end at the head anchored elsewhere.
    #[error(
        "the log ends at {actual}, not at the anchored head {anchored}: records were removed from its end, or it was rewritten"
    )]
    HeadMismatch {
        /// The head passed in.
        anchored: String,
        /// The log's own head.
        actual: String,
    },
}

impl StateStore {
    /// Appends a record to the chain and returns it, hashed.
    pub fn append_audit(
        &self,
        run_id: &str,
        record: AuditRecord,
    ) -> Result<AuditEntry, StateError> {
        let appended =
            self.append_audit_if(run_id, record, |_| Ok(None::<std::convert::Infallible>))?;
        Ok(match appended {
            Ok(entry) => entry,
            Err(never) => match never {},
        })
    }

    /// Appends a record unless `refuse`, run in the same write transaction, returns a reason
    /// (`Err(reason)`): a check and its record are one atomic step, whatever runs concurrently,
    /// in this process or another sharing the database.
    pub fn append_audit_if<R>(
        &self,
        run_id: &str,
        record: AuditRecord,
        refuse: impl FnOnce(&mut Tx<'_>) -> Result<Option<R>, DbError>,
    ) -> Result<Result<AuditEntry, R>, StateError> {
        let (kind, details) = record.to_parts().map_err(|m| self.corrupt(m))?;
        let stored = details.to_string();
        let outcome = record.is_outcome();
        let append = |tx: &mut Tx<'_>| {
            if let Some(reason) = refuse(tx)? {
                return Ok::<_, StateError>(Err(reason));
            }
            Ok(Ok(insert(tx, run_id, kind, record, &stored)?))
        };
        if outcome {
            self.after_the_fact(append)
        } else {
            self.durable(append)
        }
    }

    /// Appends `record` inside the write transaction `tx`, with the writes it goes with.
    pub(super) fn append_in(
        &self,
        tx: &mut Tx<'_>,
        run_id: &str,
        record: AuditRecord,
    ) -> Result<AuditEntry, StateError> {
        let (kind, details) = record.to_parts().map_err(|m| self.corrupt(m))?;
        Ok(insert(tx, run_id, kind, record, &details.to_string())?)
    }

    /// The records of `run_id`, in order.
    pub fn audit_of_run(&self, run_id: &str) -> Result<Vec<AuditEntry>, StateError> {
        self.read(|tx| {
            let mut entries = Vec::new();
            tx.for_each(
                &format!("SELECT {COLUMNS} FROM audit WHERE run_id = $1 ORDER BY seq"),
                params![run_id],
                |row| {
                    let row = Stored::read(&row)?;
                    let record = AuditRecord::from_parts(&row.kind, row.details())
                        .map_err(|m| self.corrupt(format!("audit record {}: {m}", row.seq)))?;
                    entries.push(row.into_entry(record));
                    Ok::<_, StateError>(ControlFlow::Continue(()))
                },
            )?;
            Ok(entries)
        })
    }

    /// The hash of the last record, to anchor elsewhere.
    pub fn audit_head(&self) -> Result<String, StateError> {
        self.read(|tx| {
            let head = tx.query_opt("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
            Ok(match head {
                Some(row) => row.text(0)?,
                None => GENESIS.to_owned(),
            })
        })
    }

    /// Walks the whole chain; with `anchored_head`, also checks that it ends there. Besides
    /// each hash and link, the `principal` and `tool` columns must be what the record says.
    pub fn verify_audit(
        &self,
        anchored_head: Option<&str>,
    ) -> Result<Result<Verified, Tampering>, StateError> {
        let mut expected = 1;
        let mut head = GENESIS.to_owned();
        let mut broken = None;
        self.read(|tx| {
            tx.for_each(
                &format!("SELECT {COLUMNS} FROM audit ORDER BY seq"),
                &[],
                |row| {
                    let row = Stored::read(&row)?;
                    broken = if row.seq != expected {
                        Some(Tampering::Missing {
                            expected,
                            found: row.seq,
                        })
                    } else if row.prev_hash != head {
                        Some(Tampering::Unlinked { seq: row.seq })
                    } else if row.hash() != row.hash || !row.columns_match() {
                        Some(Tampering::Edited { seq: row.seq })
                    } else {
                        None
                    };
                    if broken.is_some() {
                        return Ok::<_, StateError>(ControlFlow::Break(()));
                    }
                    head = row.hash;
                    expected += 1;
                    Ok(ControlFlow::Continue(()))
                },
            )
        })?;
        if let Some(broken) = broken {
            return Ok(Err(broken));
        }
        if let Some(anchored) = anchored_head
            && anchored != head
        {
            return Ok(Err(Tampering::HeadMismatch {
                anchored: anchored.to_owned(),
                actual: head,
            }));
        }
        Ok(Ok(Verified {
            records: expected - 1,
            head,
        }))
    }
}

/// Links `record` to the head of the chain, inside a write transaction (which holds the
/// writer lock, so the head cannot move meanwhile).
fn insert(
    tx: &mut Tx<'_>,
    run_id: &str,
    kind: String,
    record: AuditRecord,
    stored: &str,
) -> Result<AuditEntry, DbError> {
    let last = tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
    let (seq, prev_hash) = match last {
        Some(row) => (row.count(0)? + 1, row.text(1)?),
        None => (1, GENESIS.to_owned()),
    };
    let mut entry = AuditEntry {
        seq,
        at: now(),
        run_id: run_id.to_owned(),
        kind,
        record,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = chain_hash(
        entry.seq,
        &entry.at,
        &entry.run_id,
        &entry.kind,
        stored,
        &entry.prev_hash,
    );
    tx.execute(
        "INSERT INTO audit (seq, at, run_id, kind, record, prev_hash, hash, principal, tool)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        params![
            entry.seq,
            &entry.at,
            &entry.run_id,
            &entry.kind,
            stored,
            &entry.prev_hash,
            &entry.hash,
            entry.record.principal(),
            entry.record.tool(),
        ],
    )?;
    Ok(entry)
}

/// The current time as the log writes it: RFC 3339 in UTC with microseconds, a fixed width, so
/// text order is time order.
pub fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// `now()` plus `ahead`, in the same format.
pub fn ahead(ahead: std::time::Duration) -> String {
    let then = std::time::SystemTime::now()
        .checked_add(ahead)
        .unwrap_or_else(std::time::SystemTime::now);
    humantime::format_rfc3339_micros(then).to_string()
}

/// `now()` minus `ago`, in the same format.
pub fn since(ago: std::time::Duration) -> String {
    // No record is older than 1970, which is also as far back as the format goes.
    let then = std::time::SystemTime::now()
        .checked_sub(ago)
        .filter(|then| *then >= std::time::UNIX_EPOCH)
        .unwrap_or(std::time::UNIX_EPOCH);
    humantime::format_rfc3339_micros(then).to_string()
}

/// The columns [`Stored::read`] reads, in order.
const COLUMNS: &str = "seq, at, run_id, kind, record, prev_hash, hash, principal, tool";

/// One row exactly as stored: the hash covers the stored text of the record.
struct Stored {
    seq: u64,
    at: String,
    run_id: String,
    kind: String,
    record: String,
    prev_hash: String,
    hash: String,
    principal: Option<String>,
    tool: Option<String>,
}

impl Stored {
    fn read(row: &harness_db::Row) -> Result<Stored, DbError> {
        Ok(Stored {
            seq: row.count(0)?,
            at: row.text(1)?,
            run_id: row.text(2)?,
            kind: row.text(3)?,
            record: row.text(4)?,
            prev_hash: row.text(5)?,
            hash: row.text(6)?,
            principal: row.opt_text(7)?,
            tool: row.opt_text(8)?,
        })
    }

    /// The record's details as JSON (a string when the stored text is not JSON).
    fn details(&self) -> Value {
        serde_json::from_str(&self.record).unwrap_or_else(|_| Value::String(self.record.clone()))
    }

    /// SHA-256 over every field but the hash, each length-prefixed on its own line.
    fn hash(&self) -> String {
        chain_hash(
            self.seq,
            &self.at,
            &self.run_id,
            &self.kind,
            &self.record,
            &self.prev_hash,
        )
    }

    /// Whether the `principal` and `tool` columns are what the record says (a record of a kind
    /// this version does not know has neither).
    fn columns_match(&self) -> bool {
        let record = AuditRecord::from_parts(&self.kind, self.details()).ok();
        let principal = record.as_ref().and_then(AuditRecord::principal);
        let tool = record.as_ref().and_then(AuditRecord::tool);
        self.principal.as_deref() == principal && self.tool.as_deref() == tool
    }

    fn into_entry(self, record: AuditRecord) -> AuditEntry {
        AuditEntry {
            seq: self.seq,
            at: self.at,
            run_id: self.run_id,
            kind: self.kind,
            record,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// SHA-256 over every field but the hash, each on its own line, length-prefixed (`record` as
/// stored): the chain's format since version 1.
fn chain_hash(seq: u64, at: &str, run_id: &str, kind: &str, record: &str, prev: &str) -> String {
    let mut digest = Sha256::new();
    for field in [seq.to_string().as_str(), at, run_id, kind, record, prev] {
        digest.update(field.len().to_string().as_bytes());
        digest.update(b":");
        digest.update(field.as_bytes());
        digest.update(b"\n");
    }
    hex::encode(digest.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::records::ToolAdmitted;

    fn admitted(i: usize) -> AuditRecord {
        AuditRecord::ToolAdmitted(ToolAdmitted {
            call_id: format!("call_{i}"),
            tool: "calc".into(),
            function: "calc.apply".into(),
            principal: "ana".into(),
        })
    }

    fn store_with(records: usize) -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        for i in 0..records {
            store
                .append_audit(&format!("run-{}", i % 2), admitted(i))
                .unwrap();
        }
        (dir, store)
    }

    fn sql(store: &StateStore, statement: &str) {
        store.tamper(statement).unwrap();
    }

    #[test]
    fn a_window_reaching_before_1970_starts_at_1970() {
        let ages = 1_000_000 * 365 * 24 * 3600;
        assert_eq!(
            since(std::time::Duration::from_secs(ages)),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            since(std::time::Duration::MAX),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    fn verify(store: &StateStore) -> Result<Verified, Tampering> {
        store.verify_audit(None).unwrap()
    }

    #[test]
    fn an_intact_chain_verifies_and_survives_reopening() {
        let (dir, store) = store_with(5);
        let verified = verify(&store).unwrap();
        assert_eq!(verified.records, 5);
        assert_eq!(verified.head, store.audit_head().unwrap());
        assert_eq!(store.audit_of_run("run-1").unwrap().len(), 2);
        drop(store);
        let store = StateStore::open(dir.path()).unwrap();
        let next = store
            .append_audit(
                "run-9",
                AuditRecord::AnswerInvalid {
                    problem: "not JSON".into(),
                },
            )
            .unwrap();
        assert_eq!((next.seq, next.prev_hash), (6, verified.head));
        assert_eq!(verify(&store).unwrap().records, 6);
        let (_, empty) = store_with(0);
        assert_eq!(
            verify(&empty).unwrap(),
            Verified {
                records: 0,
                head: GENESIS.into()
            }
        );
    }

    #[test]
    fn an_edit_is_found_where_it_was_made() {
        let (_dir, store) = store_with(5);
        sql(
            &store,
            "UPDATE audit SET record = replace(record, 'call_2', 'call_9') WHERE seq = 3",
        );
        assert_eq!(verify(&store), Err(Tampering::Edited { seq: 3 }));

        // The columns the rate gate counts by are checked against the record too.
        let (_dir, store) = store_with(5);
        sql(&store, "UPDATE audit SET principal = 'bob' WHERE seq = 4");
        assert_eq!(verify(&store), Err(Tampering::Edited { seq: 4 }));
    }

    #[test]
    fn a_file_of_version_1_verifies_upgrades_and_goes_on() {
        // Version 1's table and records, exactly as it wrote them: no principal or tool columns.
        let dir = tempfile::tempdir().unwrap();
        {
            let db = rusqlite::Connection::open(dir.path().join("state.sqlite3")).unwrap();
            db.execute_batch(super::super::schema::V1_SQLITE).unwrap();
            let mut prev = GENESIS.to_owned();
            let records = [
                (
                    "run.started",
                    r#"{"agent":"support","principal":"ana","roles":[],"model":"scripted/s","prompt":{"version":"abc","source":"inline","canary":false},"input":"hi","input_chars":2,"input_sha256":"00"}"#,
                ),
                (
                    "tool.admitted",
                    r#"{"call_id":"c1","tool":"calc","function":"calc.apply","principal":"ana"}"#,
                ),
                (
                    "tool.called",
                    r#"{"call_id":"c1","function":"calc.apply","outcome":{"kind":"ok","value":42.0},"fuel":10,"wall_us":5,"denials":[]}"#,
                ),
                (
                    "tool.refused",
                    r#"{"call_id":"c2","name":"tickets__create","gate":"role","reason":"no"}"#,
                ),
            ];
            for (i, (kind, record)) in records.into_iter().enumerate() {
                let seq = i as u64 + 1;
                let at = now();
                let hash = chain_hash(seq, &at, "run-1", kind, record, &prev);
                db.execute(
                    "INSERT INTO audit (seq, at, run_id, kind, record, prev_hash, hash)
                     VALUES (?1, ?2, 'run-1', ?3, ?4, ?5, ?6)",
                    rusqlite::params![seq, at, kind, record, prev, hash],
                )
                .unwrap();
                prev = hash;
            }
        }
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(verify(&store).unwrap().records, 4);
        let file = rusqlite::Connection::open(dir.path().join("state.sqlite3")).unwrap();
        let version: u32 = file
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, StateStore::VERSION);
        let columns: Vec<(Option<String>, Option<String>)> = file
            .prepare("SELECT principal, tool FROM audit ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            columns,
            [
                (some("ana"), None),
                (some("ana"), some("calc")),
                (None, some("calc")),
                (None, None)
            ]
        );
        let entries = store.audit_of_run("run-1").unwrap();
        assert!(matches!(
            &entries[3].record,
            AuditRecord::ToolRefused(r) if r.gate == crate::state::records::Gate::Role
        ));
        store.append_audit("run-2", admitted(9)).unwrap();
        assert_eq!(verify(&store).unwrap().records, 5);

        // A file from a newer version is refused, not misread.
        drop(store);
        rusqlite::Connection::open(dir.path().join("state.sqlite3"))
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let error = StateStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&format!(
                "at version 99, newer than this harness knows ({})",
                StateStore::VERSION
            )),
            "{error}"
        );
    }

    #[test]
    fn a_deletion_is_found_in_the_middle_and_at_the_end_with_an_anchor() {
        let (_dir, store) = store_with(5);
        sql(&store, "DELETE FROM audit WHERE seq = 2");
        assert_eq!(
            verify(&store),
            Err(Tampering::Missing {
                expected: 2,
                found: 3
            })
        );

        let (_dir, store) = store_with(5);
        let anchored = store.audit_head().unwrap();
        sql(&store, "DELETE FROM audit WHERE seq = 5");
        assert!(
            verify(&store).is_ok(),
            "without an anchor a cut end looks whole"
        );
        let error = store.verify_audit(Some(&anchored)).unwrap().unwrap_err();
        assert!(matches!(error, Tampering::HeadMismatch { .. }));
    }

    #[test]
    fn reordering_or_renumbering_is_found() {
        let (_dir, store) = store_with(5);
        sql(
            &store,
            "UPDATE audit SET seq = 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 4;
             UPDATE audit SET seq = 4 WHERE seq = 100;",
        );
        assert_eq!(verify(&store), Err(Tampering::Unlinked { seq: 2 }));

        let (_dir, store) = store_with(5);
        sql(
            &store,
            "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3",
        );
        assert_eq!(verify(&store), Err(Tampering::Unlinked { seq: 3 }));
    }

    #[test]
    fn an_inserted_record_is_found() {
        let (_dir, store) = store_with(3);
        sql(
            &store,
            "UPDATE audit SET seq = seq + 1000 WHERE seq >= 2;
             UPDATE audit SET seq = seq - 999 WHERE seq >= 1000;
             INSERT INTO audit (seq, at, run_id, kind, record, prev_hash, hash)
             SELECT 2, at, run_id, kind, '{\"forged\":true}', hash, hash FROM audit WHERE seq = 1;",
        );
        let found = verify(&store).unwrap_err();
        assert!(
            matches!(
                found,
                Tampering::Edited { seq: 2 } | Tampering::Unlinked { seq: 3 }
            ),
            "{found}"
        );
    }
}
