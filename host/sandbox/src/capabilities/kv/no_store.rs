//! Stands in for the SQLite store when the `kv` feature is off: no store can be opened, so a
//! tool with a `kv` grant is refused at load, and no namespace (hence no store) ever exists.

use std::path::Path;

use super::{KvError, OpenError};
use crate::policy::KvGrant;

/// A store that cannot exist.
#[derive(Debug)]
pub(crate) enum KvStore {}

impl KvStore {
    /// Refuses: this build has no key-value storage.
    pub(crate) fn open(data_dir: &Path) -> Result<Self, OpenError> {
        Err(OpenError {
            path: data_dir.join("kv.sqlite3"),
            message: "this build of harness-sandbox has no key-value storage (its `kv` feature \
                      is off); remove the `kv` grant or enable the feature"
                .into(),
        })
    }

    pub(crate) fn get(&self, _tool: &str, _key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match *self {}
    }

    pub(crate) fn set(
        &self,
        _tool: &str,
        _grant: &KvGrant,
        _key: &str,
        _value: &[u8],
    ) -> Result<(), KvError> {
        match *self {}
    }

    pub(crate) fn delete(&self, _tool: &str, _key: &str) -> Result<bool, KvError> {
        match *self {}
    }

    pub(crate) fn keys(&self, _tool: &str, _prefix: &str) -> Result<Vec<String>, KvError> {
        match *self {}
    }
}
