//! `harness:tool/kv`: each granted tool gets its own namespace in the host's store (a SQLite file
//! in the data directory, or the PostgreSQL database the replicas share), with the quotas of its
//! grant. An ungranted tool gets `denied` from every function, and each attempt is recorded as a
//! [`Denial`](super::denials::Denial).

mod store;

pub(crate) use store::KvStore;
pub use store::SCHEMA;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::Capability;
use super::denials::DenialLog;
use super::harness::tool::kv::{self, Error, Host};
use crate::policy::{KvGrant, MAX_KEY_BYTES};

/// Why a write was refused or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KvError {
    /// Keys plus values would exceed the quota.
    #[error("the write would exceed the quota")]
    QuotaExceeded,
    /// The namespace already holds its maximum number of keys.
    #[error("the namespace holds its maximum number of keys")]
    TooManyKeys,
    /// A key or value over its size limit.
    #[error("the key or value is too large")]
    TooLarge,
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<KvError> for Error {
    fn from(e: KvError) -> Self {
        match e {
            KvError::QuotaExceeded => Error::QuotaExceeded,
            KvError::TooManyKeys => Error::TooManyKeys,
            KvError::TooLarge => Error::TooLarge,
            KvError::Storage(message) => Error::Unavailable(message),
        }
    }
}

/// One tool's namespace: the shared store, the tool's name, and its quotas.
#[derive(Debug)]
pub(crate) struct Namespace {
    store: Arc<KvStore>,
    tool: String,
    grant: KvGrant,
}

impl Namespace {
    /// The namespace of `tool` in `store`, within `grant`.
    pub(crate) fn new(store: Arc<KvStore>, tool: &str, grant: KvGrant) -> Self {
        Self {
            store,
            tool: tool.to_owned(),
            grant,
        }
    }
}

/// The key-value state of one call: its tool's namespace, if granted, and where denials go.
pub(crate) struct KvCtx {
    namespace: Option<Arc<Namespace>>,
    denials: DenialLog,
}

impl KvCtx {
    /// A call's context: `namespace` when the tool has a `kv` grant.
    pub(crate) fn new(namespace: Option<Arc<Namespace>>, denials: DenialLog) -> Self {
        Self { namespace, denials }
    }

    /// The call's namespace, or `denied` (recorded) when the tool has no `kv` grant.
    fn namespace(&self, operation: &str, key: &str) -> Result<&Namespace, Error> {
        self.namespace.as_deref().ok_or_else(|| {
            self.denials
                .deny(Capability::KeyValue, format!("{operation} {key:?}"));
            Error::Denied
        })
    }
}

/// Store data that holds a call's [`KvCtx`].
pub(crate) trait KvView {
    /// The call's key-value context.
    fn kv(&mut self) -> &mut KvCtx;
}

/// Links `harness:tool/kv` to the [`KvCtx`] of `T`.
pub(crate) fn add_to_linker<T: KvView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, HasSelf<KvCtx>>(linker, T::kv)
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::TooLarge);
    }
    Ok(())
}

impl Host for KvCtx {
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
