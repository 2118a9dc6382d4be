//! Versioned schemas: each [`Migration`] takes a schema one version up, written once per
//! engine. SQLite keeps the version in the file (`user_version`); PostgreSQL in the table
//! `harness_schema`, one row per schema.

use crate::DbError;

/// The tables of one part of Harness, and how they came to be.
#[derive(Debug)]
pub struct Schema {
    /// Its name, as `harness_schema` and messages write it.
    pub name: &'static str,
    /// Every migration, oldest first, versions counting from 1 without gaps.
    pub migrations: &'static [Migration],
}

/// One step of a schema, from version `version - 1` to `version`.
#[derive(Debug)]
pub struct Migration {
    /// The version it leads to.
    pub version: u32,
    /// The step as SQLite statements.
    pub sqlite: &'static str,
    /// The step as PostgreSQL statements.
    pub postgres: &'static str,
}

/// What [`Db::migrate`](crate::Db::migrate) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The version found.
    pub from: u32,
    /// The version now.
    pub to: u32,
}

impl Schema {
    /// The version its last migration leads to.
    pub fn newest(&self) -> u32 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    /// The migrations past `version` up to `to`; an error if `version` is newer than any.
    pub(crate) fn pending(
        &self,
        version: u32,
        to: u32,
        location: &str,
    ) -> Result<&[Migration], DbError> {
        if version > self.newest() {
            return Err(DbError::Schema {
                location: location.to_owned(),
                message: format!(
                    "its {} schema is at version {version}, newer than this harness knows ({}); run a newer harness",
                    self.name,
                    self.newest()
                ),
            });
        }
        let to = to.clamp(version, self.newest());
        Ok(&self.migrations[version as usize..to as usize])
    }
}
