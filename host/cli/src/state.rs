//! `harness state migrate|status`: the schema of the state database.

use anyhow::{Context, Result};
use harness_agent::config::Config;
use harness_agent::state::{SCHEMA, StateStore};
use harness_db::Db;

use crate::exit::Exit;

/// `harness state migrate`: brings the state database to this version's schema.
pub fn migrate(config: &Config) -> Result<Exit> {
    let target = StateStore::target(config);
    let migrated = StateStore::migrate(&target, config.db_options())
        .with_context(|| format!("migrating the state in {target}"))?;
    if migrated.from == migrated.to {
        println!(
            "{target}: the state schema is at version {} already",
            migrated.to
        );
    } else {
        println!(
            "{target}: migrated the state schema from version {} to {}",
            migrated.from, migrated.to
        );
    }
    Ok(Exit::Success)
}

/// `harness state status`: where the state is, and at which schema version.
pub fn status(config: &Config) -> Result<Exit> {
    let target = StateStore::target(config);
    let db = Db::connect(&target, config.db_options())?;
    let version = db.version(&SCHEMA)?;
    let known = StateStore::VERSION;
    let verdict = match version.cmp(&known) {
        std::cmp::Ordering::Equal => "current".to_owned(),
        std::cmp::Ordering::Less => format!("needs `harness state migrate` (to {known})"),
        std::cmp::Ordering::Greater => format!("newer than this harness (knows {known})"),
    };
    println!("{target}: state schema version {version}, {verdict}");
    Ok(if version == known {
        Exit::Success
    } else {
        Exit::Failed
    })
}
