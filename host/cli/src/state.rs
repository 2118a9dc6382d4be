//! `harness state migrate|status`: the schemas of the state database — the agent's state and
//! the tools' key-value storage, in one PostgreSQL database or in two SQLite files.

use anyhow::{Context, Result};
use harness_agent::config::Config;
use harness_agent::state::{SCHEMA, StateStore};
use harness_db::{Db, Schema, Target};
use harness_sandbox::KV_SCHEMA;

use crate::exit::Exit;

/// Each schema and where the whitelist `config` keeps it.
fn schemas(config: &Config) -> [(&'static Schema, Target); 2] {
    let host = config.policy().host();
    [
        (&SCHEMA, StateStore::target(config)),
        (&KV_SCHEMA, host.database("kv.sqlite3")),
    ]
}

/// `harness state migrate`: brings each schema to this version.
pub fn migrate(config: &Config) -> Result<Exit> {
    for (schema, target) in schemas(config) {
        let db = Db::connect(&target, config.db_options())?;
        let migrated = db
            .migrate(schema)
            .with_context(|| format!("migrating the {} schema in {target}", schema.name))?;
        if migrated.from == migrated.to {
            println!(
                "{target}: the {} schema is at version {} already",
                schema.name, migrated.to
            );
        } else {
            println!(
                "{target}: migrated the {} schema from version {} to {}",
                schema.name, migrated.from, migrated.to
            );
        }
    }
    Ok(Exit::Success)
}

/// `harness state status`: where each schema is kept, and at which version.
pub fn status(config: &Config) -> Result<Exit> {
    let mut current = true;
    for (schema, target) in schemas(config) {
        let db = Db::connect(&target, config.db_options())?;
        let version = db.version(schema)?;
        let known = schema.newest();
        let verdict = match version.cmp(&known) {
            std::cmp::Ordering::Equal => "current".to_owned(),
            std::cmp::Ordering::Less => format!("needs `harness state migrate` (to {known})"),
            std::cmp::Ordering::Greater => format!("newer than this harness (knows {known})"),
        };
        println!(
            "{target}: {} schema version {version}, {verdict}",
            schema.name
        );
        current &= version == known;
    }
    Ok(if current { Exit::Success } else { Exit::Failed })
}
