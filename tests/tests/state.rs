//! The state store's suite, run against both engines: a SQLite file, and a database of its own
//! on the run's PostgreSQL 15. Concurrency goes through two handles on the same database, as
//! two processes (or replicas) would.

use std::collections::BTreeSet;
use std::time::Duration;

use harness_agent::config::Rate;
use harness_agent::state::approvals::Claim;
use harness_agent::state::ledger::Budget;
use harness_agent::state::records::{AuditRecord, Decision, Gate, ToolAdmitted, ToolRefused};
use harness_agent::state::runs::RunFilter;
use harness_agent::state::switches::Target as Switch;
use harness_agent::state::{SCHEMA, StateStore, Target};
use harness_db::{Db, Options};
use harness_e2e::postgres::{Database, Postgres};
use serde_json::json;

/// One engine holding one state database.
enum Engine {
    Sqlite(tempfile::TempDir),
    Postgres(Database),
}

impl Engine {
    fn both() -> [Engine; 2] {
        [
            Engine::Sqlite(tempfile::tempdir().unwrap()),
            Engine::Postgres(Postgres::get().database()),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    fn target(&self) -> Target {
        match self {
            Engine::Sqlite(dir) => Target::sqlite(dir.path().join("state.sqlite3")),
            Engine::Postgres(db) => Target::postgres(&db.url).unwrap(),
        }
    }

    /// A new handle on the database, migrated first.
    fn open(&self) -> StateStore {
        StateStore::migrate(&self.target(), Options::default()).unwrap();
        StateStore::open_target(&self.target(), Options::default()).unwrap()
    }

    /// Runs `sql` as written, behind the store's back.
    fn tamper(&self, sql: &str) {
        match self {
            Engine::Sqlite(dir) => rusqlite::Connection::open(dir.path().join("state.sqlite3"))
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Engine::Postgres(db) => {
                db.psql(sql);
            }
        }
    }
}

/// Runs `test` on each engine, naming the engine when it fails.
fn on_both(test: impl Fn(&Engine)) {
    for engine in Engine::both() {
        let name = engine.name();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&engine)));
        if let Err(panic) = outcome {
            eprintln!("failed on {name}");
            std::panic::resume_unwind(panic);
        }
    }
}

fn admitted(i: usize, principal: &str) -> AuditRecord {
    AuditRecord::ToolAdmitted(ToolAdmitted {
        call_id: format!("call_{i}"),
        tool: "calc".into(),
        function: "calc.apply".into(),
        principal: principal.into(),
    })
}

fn record(kind: &str, details: serde_json::Value) -> AuditRecord {
    serde_json::from_value(json!({"kind": kind, "record": details})).unwrap()
}

#[test]
fn the_audit_chain_verifies_and_names_the_record_that_was_changed() {
    on_both(|engine| {
        let store = engine.open();
        for i in 0..5 {
            store
                .append_audit(&format!("run-{}", i % 2), admitted(i, "ana"))
                .unwrap();
        }
        let verified = store.verify_audit(None).unwrap().unwrap();
        assert_eq!(verified.records, 5);
        assert_eq!(verified.head, store.audit_head().unwrap());
        assert_eq!(store.audit_of_run("run-1").unwrap().len(), 2);
        let reopened = engine.open();
        let next = reopened.append_audit("run-9", admitted(9, "bob")).unwrap();
        assert_eq!(
            (next.seq, next.prev_hash.as_str()),
            (6, verified.head.as_str())
        );
        assert!(
            store
                .verify_audit(Some(&verified.head))
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("not at the anchored head")
        );

        engine
            .tamper("UPDATE audit SET record = replace(record, 'call_2', 'call_7') WHERE seq = 3");
        assert_eq!(
            store.verify_audit(None).unwrap().unwrap_err().to_string(),
            "record 3 was edited: its content does not match its hash"
        );
        engine.tamper("DELETE FROM audit WHERE seq = 3");
        assert_eq!(
            store.verify_audit(None).unwrap().unwrap_err().to_string(),
            "records 3 to 3: missing (the log jumps to 4)"
        );
    });
}

#[test]
fn many_writers_on_two_handles_extend_one_chain_without_a_fork() {
    on_both(|engine| {
        let handles = [engine.open(), engine.open()];
        let (threads, each) = (8, 25);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let store = &handles[t % 2];
                scope.spawn(move || {
                    for i in 0..each {
                        store
                            .append_audit(&format!("run-{t}"), admitted(t * each + i, "ana"))
                            .unwrap();
                    }
                });
            }
        });
        let verified = handles[1].verify_audit(None).unwrap().unwrap();
        assert_eq!(verified.records, (threads * each) as u64);
        for t in 0..threads {
            assert_eq!(
                handles[0].audit_of_run(&format!("run-{t}")).unwrap().len(),
                each
            );
        }
    });
}

#[test]
fn reservations_from_two_handles_never_overspend_a_shared_budget() {
    on_both(|engine| {
        let handles = [engine.open(), engine.open()];
        let budget = |scope: &str, count| Budget {
            scope: scope.into(),
            limit: Rate {
                count,
                per: Duration::from_secs(3600),
            },
        };
        let granted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (store, granted) = (&handles[t % 2], &granted);
                let budgets = [
                    budget(&format!("tokens:user:u{t}"), 10_000),
                    budget("tokens:global", 1_000),
                ];
                scope.spawn(move || {
                    for _ in 0..20 {
                        if let Ok(reservation) = store.reserve("r", &budgets, 30).unwrap() {
                            granted.fetch_add(30, std::sync::atomic::Ordering::SeqCst);
                            store.settle(reservation, 20).unwrap();
                        }
                    }
                });
            }
        });
        let spent = handles[0]
            .spent("tokens:global", Duration::from_secs(3600))
            .unwrap();
        assert!(spent <= 1_000, "spent {spent} of 1000");
        let reserved = granted.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(spent, reserved / 30 * 20, "each grant settled at 20");
        // Settling at 20 freed 10 per grant: the budget ran out only once nearly all of it was used.
        assert!(spent > 1_000 - 30, "spent {spent}");
        let refused = handles[1]
            .reserve("r", &[budget("tokens:global", 1_000)], 30)
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.left, 1_000 - spent);
    });
}

#[test]
fn a_kill_switch_set_on_one_handle_is_seen_by_the_other_and_audited() {
    on_both(|engine| {
        let (operator, agent) = (engine.open(), engine.open());
        let tool = Switch::Tool("tickets".into());
        assert_eq!(agent.killed(&tool).unwrap(), None);
        operator.kill(&tool, "incident 42", "ops").unwrap();
        assert_eq!(agent.killed(&tool).unwrap().unwrap().reason, "incident 42");
        assert_eq!(agent.switches().unwrap().len(), 1);
        assert!(operator.enable(&tool, "ops").unwrap());
        assert!(!agent.enable(&tool, "ops").unwrap());
        assert_eq!(agent.killed(&tool).unwrap(), None);
        let kinds: Vec<_> = agent
            .audit_of_run("-")
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["switch.killed", "switch.enabled"]);
    });
}

#[test]
fn an_approval_is_decided_once_and_its_paused_run_taken_by_exactly_one_resumer() {
    on_both(|engine| {
        let handles = [engine.open(), engine.open()];
        let id = handles[0]
            .request_approval("run-1", "call_1", "tickets.create", "{}", "ana")
            .unwrap();
        handles[0]
            .pause_run("run-1", "support", "{\"turns\": 1}")
            .unwrap();
        assert_eq!(
            handles[1].take_decided_run("run-1", "support").unwrap(),
            None
        );
        assert_eq!(handles[1].approvals(false).unwrap()[0].id, id);

        let decisions: Vec<_> = std::thread::scope(|scope| {
            let tries: Vec<_> = (0..6)
                .map(|t| {
                    let store = &handles[t % 2];
                    let decision = if t % 3 == 0 {
                        Decision::Denied
                    } else {
                        Decision::Approved
                    };
                    scope.spawn(move || store.decide(id, decision, &format!("r{t}"), "ok").is_ok())
                })
                .collect();
            tries.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(
            decisions.iter().filter(|ok| **ok).count(),
            1,
            "{decisions:?}"
        );

        let taken: Vec<_> = std::thread::scope(|scope| {
            let tries: Vec<_> = (0..6)
                .map(|t| {
                    let store = &handles[t % 2];
                    scope.spawn(move || store.take_decided_run("run-1", "support").unwrap())
                })
                .collect();
            tries
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .collect()
        });
        assert_eq!(taken, ["{\"turns\": 1}"]);
        assert_eq!(handles[0].approvals(true).unwrap().len(), 1);
        assert!(handles[0].approvals(false).unwrap().is_empty());
    });
}

#[test]
fn a_decided_approval_applies_to_one_call_made_again() {
    on_both(|engine| {
        let handles = [engine.open(), engine.open()];
        let id = handles[0]
            .request_approval("mcp-1", "c1", "tickets.create", "{\"a\":1}", "ana")
            .unwrap();
        assert_eq!(
            handles[1]
                .claim_approval("ana", "tickets.create", "{\"a\":1}")
                .unwrap(),
            Some(Claim::Pending { id })
        );
        handles[1]
            .decide(id, Decision::Approved, "lee", "fine")
            .unwrap();
        let claims: Vec<_> = std::thread::scope(|scope| {
            let tries: Vec<_> = (0..6)
                .map(|t| {
                    let store = &handles[t % 2];
                    scope.spawn(move || {
                        store
                            .claim_approval("ana", "tickets.create", "{\"a\":1}")
                            .unwrap()
                    })
                })
                .collect();
            tries
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .collect()
        });
        assert_eq!(claims.len(), 1, "{claims:?}");
        assert!(
            matches!(&claims[0], Claim::Decided { id: i, decision: Decision::Approved, by, .. } if *i == id && by == "lee")
        );
    });
}

#[test]
fn runs_are_listed_newest_first_and_judged_once_per_author() {
    on_both(|engine| {
        let store = engine.open();
        let prompt = json!({"version": "v1", "source": "inline", "canary": false});
        for (run, principal) in [("run-a", "ana"), ("run-b", "bob"), ("run-c", "ana")] {
            store
                .append_audit(
                    run,
                    record(
                        "run.started",
                        json!({"agent": "support", "principal": principal, "roles": [], "model": "scripted/s",
                               "prompt": prompt, "input": "hi", "input_chars": 2, "input_sha256": "00"}),
                    ),
                )
                .unwrap();
        }
        store
            .append_audit(
                "run-a",
                record(
                    "run.ended",
                    json!({"status": "answered", "answer": "42", "turns": 1, "prompt_version": "v1",
                           "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}),
                ),
            )
            .unwrap();
        let all = store
            .runs(&RunFilter {
                limit: 10,
                ..RunFilter::default()
            })
            .unwrap();
        let ids: Vec<_> = all.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["run-c", "run-b", "run-a"]);
        assert_eq!(all[2].answer.as_deref(), Some("42"));
        let anas = store
            .runs(&RunFilter {
                principal: Some("ana".into()),
                before: Some(all[0].seq),
                limit: 10,
                ..RunFilter::default()
            })
            .unwrap();
        assert_eq!(anas.len(), 1);
        assert_eq!(anas[0].run_id, "run-a");
        assert!(store.run_summary("nope").unwrap().is_none());

        store.add_feedback("run-a", "lee", 0.5, None).unwrap();
        let again = store.add_feedback("run-a", "lee", 1.0, None).unwrap_err();
        assert_eq!(again.to_string(), "lee already gave feedback on run run-a");
        store
            .add_feedback("run-a", "kim", 1.0, Some("great".into()))
            .unwrap();

        let metrics = store.metrics(Duration::from_secs(3600)).unwrap();
        let v1 = &metrics.prompts[0];
        assert_eq!(
            (
                v1.version.as_str(),
                v1.runs,
                v1.answered,
                v1.tokens,
                v1.feedback
            ),
            ("v1", 1, 1, 15, 2)
        );
        assert_eq!(v1.mean_score, Some(0.75));
    });
}

#[test]
fn metrics_count_calls_errors_fuel_and_refusals_per_gate() {
    on_both(|engine| {
        let store = engine.open();
        for (i, kind) in ["ok", "ok", "tool_error"].into_iter().enumerate() {
            store
                .append_audit(
                    "run-1",
                    record(
                        "tool.called",
                        json!({"call_id": format!("c{i}"), "function": "calc.apply",
                               "outcome": {"kind": kind}, "fuel": 100 + i, "wall_us": 5, "denials": []}),
                    ),
                )
                .unwrap();
        }
        for (i, gate) in [Gate::Rate, Gate::Rate, Gate::Role].into_iter().enumerate() {
            store
                .append_audit(
                    "run-1",
                    AuditRecord::ToolRefused(ToolRefused {
                        call_id: format!("r{i}"),
                        name: "calc__apply".into(),
                        gate,
                        reason: "no".into(),
                    }),
                )
                .unwrap();
        }
        let metrics = store.metrics(Duration::from_secs(3600)).unwrap();
        let calc = &metrics.tools[0];
        assert_eq!(
            (calc.function.as_str(), calc.calls, calc.errors, calc.fuel),
            ("calc.apply", 3, 1, 303)
        );
        assert_eq!(
            metrics.refusals,
            [("rate".to_owned(), 2), ("role".to_owned(), 1)]
        );
        assert_eq!(
            store
                .tool_stats("calc.apply", Duration::from_secs(3600))
                .unwrap(),
            Some(calc.clone())
        );
        let activity = store.activity(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            activity
                .iter()
                .fold((0, 0), |(c, r), a| (c + a.calls, r + a.refusals)),
            (3, 3)
        );
    });
}

#[test]
fn an_empty_database_migrates_and_one_at_an_older_version_migrates_and_verifies() {
    on_both(|engine| {
        let target = engine.target();
        let db = Db::connect(&target, Options::default()).unwrap();
        assert_eq!(db.version(&SCHEMA).unwrap(), 0);
        // Version 2: before decisions were used once (version 3) and runs leased (version 4).
        db.migrate_to(&SCHEMA, 2).unwrap();
        if let Engine::Postgres(_) = engine {
            let refused = StateStore::open_target(&target, Options::default()).unwrap_err();
            assert!(
                refused
                    .to_string()
                    .contains("run `harness state migrate` first"),
                "{refused}"
            );
        }
        // Version 2's rows: an approval decided before decisions were used once.
        engine.tamper(
            "INSERT INTO approvals (run_id, call_id, function, arguments, principal, requested_at, decision, decided_by, reason, decided_at)
             VALUES ('run-0', 'c0', 'tickets.create', '{}', 'ana', '2026-01-01T00:00:00.000000Z', 'approved', 'lee', '', '2026-01-01T00:00:01.000000Z')",
        );
        drop(db);
        let migrated = StateStore::migrate(&target, Options::default()).unwrap();
        assert_eq!((migrated.from, migrated.to), (2, StateStore::VERSION));
        let again = StateStore::migrate(&target, Options::default()).unwrap();
        assert_eq!(
            (again.from, again.to),
            (StateStore::VERSION, StateStore::VERSION)
        );
        let store = StateStore::open_target(&target, Options::default()).unwrap();
        assert_eq!(
            store.claim_approval("ana", "tickets.create", "{}").unwrap(),
            None,
            "a decision made before version 3 counts as used"
        );
        store.append_audit("run-1", admitted(1, "ana")).unwrap();
        assert_eq!(store.verify_audit(None).unwrap().unwrap().records, 1);

        match engine {
            Engine::Sqlite(_) => engine.tamper("PRAGMA user_version = 99"),
            Engine::Postgres(_) => {
                engine.tamper("UPDATE harness_schema SET version = 99 WHERE name = 'state'")
            }
        }
        let refused = StateStore::open_target(&target, Options::default()).unwrap_err();
        assert!(
            refused.to_string().contains(&format!(
                "at version 99, newer than this harness knows ({})",
                StateStore::VERSION
            )),
            "{refused}"
        );
    });
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let port = harness_e2e::registry::free_port();
    let target = Target::postgres(&format!("postgres://harness:s3cret@{port}/state")).unwrap();
    let error = StateStore::open_target(&target, Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "cannot open the database postgres://harness:***@{port}/state: unreachable"
        )),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "{error}");
    let names: BTreeSet<_> = ["refused", "Connection refused"].into_iter().collect();
    assert!(names.iter().any(|n| error.contains(n)), "{error}");
}
