//! The state's tables, version by version, for SQLite and PostgreSQL. A SQLite file migrates
//! when it is opened; a PostgreSQL database with `harness state migrate`.

use harness_db::{Migration, Schema};

/// The state schema.
pub static STATE: Schema = Schema {
    name: "state",
    migrations: &[
        Migration {
            version: 1,
            sqlite: V1_SQLITE,
            postgres: V1_POSTGRES,
        },
        Migration {
            version: 2,
            sqlite: V2_SQLITE,
            postgres: V2_POSTGRES,
        },
        Migration {
            version: 3,
            sqlite: V3,
            postgres: V3,
        },
        Migration {
            version: 4,
            sqlite: V4,
            postgres: V4,
        },
    ],
};

/// Version 1: the audit chain, kill switches, the budget ledger, approvals and paused runs.
/// The hash of each audit record covers `seq`, `at`, `run_id`, `kind`, `record` and `prev_hash`
/// as stored. (`IF NOT EXISTS`: files from before versioning hold these tables already.)
pub(super) const V1_SQLITE: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_run ON audit (run_id, seq);
CREATE INDEX IF NOT EXISTS audit_by_kind ON audit (kind, at);
CREATE TABLE IF NOT EXISTS switches (
    target TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reservation INTEGER NOT NULL,
    scope TEXT NOT NULL,
    run_id TEXT NOT NULL,
    reserved INTEGER NOT NULL,
    used INTEGER,
    at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_by_scope ON ledger (scope, at);
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

const V1_POSTGRES: &str = "
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL);
CREATE INDEX audit_by_run ON audit (run_id, seq);
CREATE INDEX audit_by_kind ON audit (kind, at);
CREATE TABLE switches (
    target TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TABLE ledger (
    id BIGSERIAL PRIMARY KEY,
    reservation BIGINT NOT NULL,
    scope TEXT NOT NULL,
    run_id TEXT NOT NULL,
    reserved BIGINT NOT NULL,
    used BIGINT,
    at TEXT NOT NULL);
CREATE INDEX ledger_by_scope ON ledger (scope, at);
CREATE TABLE approvals (
    id BIGSERIAL PRIMARY KEY,
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
CREATE TABLE paused_runs (
    run_id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    state TEXT NOT NULL,
    paused_at TEXT NOT NULL);";

/// Version 2: the principal and tool an audit record is about, as columns the rate gate
/// filters on, filled in for the records already there. Derived from the record and checked by
/// verification, so the chain format is unchanged and every version-1 record still verifies.
const V2_SQLITE: &str = "
ALTER TABLE audit ADD COLUMN principal TEXT;
ALTER TABLE audit ADD COLUMN tool TEXT;
UPDATE audit SET principal = json_extract(record, '$.principal')
    WHERE kind IN ('run.started', 'tool.admitted');
UPDATE audit SET tool = json_extract(record, '$.tool') WHERE kind = 'tool.admitted';
UPDATE audit SET tool = substr(json_extract(record, '$.function'), 1,
        instr(json_extract(record, '$.function'), '.') - 1)
    WHERE kind = 'tool.called';
CREATE INDEX IF NOT EXISTS audit_by_principal_tool ON audit (kind, principal, tool, at);";

const V2_POSTGRES: &str = "
ALTER TABLE audit ADD COLUMN principal TEXT;
ALTER TABLE audit ADD COLUMN tool TEXT;
UPDATE audit SET principal = record::jsonb ->> 'principal'
    WHERE kind IN ('run.started', 'tool.admitted');
UPDATE audit SET tool = record::jsonb ->> 'tool' WHERE kind = 'tool.admitted';
UPDATE audit SET tool = split_part(record::jsonb ->> 'function', '.', 1)
    WHERE kind = 'tool.called';
CREATE INDEX audit_by_principal_tool ON audit (kind, principal, tool, at);";

/// Version 3: an approval is used once. A decision is consumed when the paused run it belongs
/// to resumes, or when the same call comes again outside a run (MCP, the HTTP API); approvals
/// decided before this version count as used.
const V3: &str = "
ALTER TABLE approvals ADD COLUMN consumed_at TEXT;
UPDATE approvals SET consumed_at = decided_at WHERE decision IS NOT NULL;
CREATE INDEX IF NOT EXISTS approvals_by_call ON approvals (principal, function, arguments);";

/// Version 4: leases on the runs servers drive, so a run whose server died mid-run is ended
/// (as abandoned) by another, once.
const V4: &str = "
CREATE TABLE run_leases (
    run_id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    owner TEXT NOT NULL,
    leased_until TEXT NOT NULL);
CREATE INDEX run_leases_by_expiry ON run_leases (leased_until);";
