//! `harness:tool/kv`: each granted tool gets its own namespace in the host's SQLite store, with
//! the quotas of its grant. An ungranted tool gets `denied` from every function, and each attempt
//! is recorded as a [`Denial`](super::denials::Denial).

mod store;

pub use store::{KvError, KvStore, OpenError};

use std::sync::Arc;

use super::Capability;
use super::harness::tool::kv::{Error, Host};
use crate::boundary::CallState;
use crate::policy::{KvGrant, MAX_KEY_BYTES};

/// One tool's namespace: the shared store, the tool's name, and its quotas.
#[derive(Debug, Clone)]
pub struct Namespace {
    store: Arc<KvStore>,
    tool: String,
    grant: KvGrant,
}

impl Namespace {
    /// The namespace of `tool` in `store`, within `grant`.
    pub fn new(store: Arc<KvStore>, tool: &str, grant: KvGrant) -> Self {
        Self {
            store,
            tool: tool.to_owned(),
            grant,
        }
    }
}

impl From<KvError> for Error {
    fn from(e: KvError) -> Self {
        match e {
            KvError::QuotaExceeded => Error::QuotaExceeded,
            KvError::TooManyKeys => Error::TooManyKeys,
            KvError::TooLarge => Error::TooLarge,
            KvError::Sqlite(e) => Error::Unavailable(e.to_string()),
        }
    }
}

impl CallState {
    /// The call's namespace, or `denied` (recorded) when the tool has no `kv` grant.
    fn namespace(&self, operation: &str, key: &str) -> Result<&Namespace, Error> {
        self.kv.as_deref().ok_or_else(|| {
            self.denials
                .deny(Capability::KeyValue, format!("{operation} {key:?}"));
            Error::Denied
        })
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::TooLarge);
    }
    Ok(())
}

impl Host for CallState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        let ns = self.namespace("get", &key)?;
        Ok(ns.store.get(&ns.tool, &key)?)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        let ns = self.namespace("set", &key)?;
        check_key(&key)?;
        Ok(ns.store.set(&ns.tool, &ns.grant, &key, &value)?)
    }

    fn delete(&mut self, key: String) -> Result<bool, Error> {
        let ns = self.namespace("delete", &key)?;
        Ok(ns.store.delete(&ns.tool, &key)?)
    }

    fn keys(&mut self, prefix: String) -> Result<Vec<String>, Error> {
        let ns = self.namespace("keys", &prefix)?;
        Ok(ns.store.keys(&ns.tool, &prefix)?)
    }
}
