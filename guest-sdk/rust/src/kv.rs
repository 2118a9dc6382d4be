//! Durable key-value storage private to the tool (`harness:tool/kv`), granted with
//! `kv = { quota = "1 MiB" }`. Without a grant every call fails with [`KvError::Denied`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::harness::tool::kv as host;
pub use crate::bindings::harness::tool::kv::Error as KvError;

/// The bytes stored under `key`, if any.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    host::get(key).map_err(|error| kv_error(key, error))
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    host::set(key, value).map_err(|error| kv_error(key, error))
}

/// Removes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, Error> {
    host::delete(key).map_err(|error| kv_error(key, error))
}

/// The keys starting with `prefix`, in byte order.
pub fn keys(prefix: &str) -> Result<Vec<String>, Error> {
    host::keys(prefix).map_err(|error| kv_error(prefix, error))
}

/// The value stored under `key` as JSON, decoded into `T`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// Stores `value` under `key` as JSON.
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), Error> {
    set(key, &encode(key, value)?)
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|error| Error::Json {
        what: format!("key {key:?}"),
        error,
    })
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|error| Error::Json {
        what: format!("key {key:?}"),
        error,
    })
}

fn kv_error(key: &str, error: KvError) -> Error {
    Error::Kv {
        key: key.to_owned(),
        error,
    }
}

/// A sentence for each storage error, used in [`Error`]'s message.
pub(crate) fn describe(error: &KvError) -> String {
    match error {
        KvError::QuotaExceeded => "the tool's storage quota is used up".into(),
        KvError::TooManyKeys => "the tool holds its maximum number of keys".into(),
        KvError::TooLarge => "the key or value is larger than the grant allows".into(),
        KvError::Denied => "the tool has no key-value grant".into(),
        KvError::Unavailable(why) => format!("storage unavailable: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Ticket {
        id: u32,
        title: String,
    }

    #[test]
    fn json_round_trips_and_names_the_key_when_it_cannot() {
        let ticket = Ticket {
            id: 7,
            title: "printer".into(),
        };
        let bytes = encode("ticket/7", &ticket).unwrap();
        assert_eq!(decode::<Ticket>("ticket/7", &bytes).unwrap(), ticket);
        let error = decode::<Ticket>("ticket/8", b"{\"id\": \"x\"}").unwrap_err();
        assert!(
            error.to_string().starts_with("JSON of key \"ticket/8\": "),
            "{error}"
        );
    }
}
