//! Keys of the whitelist that belong to a layer above the sandbox.
//!
//! One file configures everything. The sandbox reads `[host]`, `[defaults]` and its own keys of
//! each `[tools.NAME]`; a layer above it (the agent's `[models]`, `[agents]`, a tool's `roles`)
//! declares the keys it owns as an [`Extension`]. The file is parsed once, in one pass: each key
//! goes to its owner, and a key that nobody owns is an error naming it and its line.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};

use super::Policy;

/// The keys of one whitelist table that a layer above the sandbox reads.
pub trait ExtraKeys: Default {
    /// The keys it owns.
    fn keys() -> Vec<&'static str>;

    /// Reads the value of `key`, one of [`keys`](Self::keys).
    fn read<'de, D: Deserializer<'de>>(&mut self, key: &str, value: D) -> Result<(), D::Error>;
}

/// A layer above the sandbox that configures itself from the same whitelist: its top-level
/// tables (its [`ExtraKeys`]) and its keys in each `[tools.NAME]` table ([`Extension::Tool`]).
///
/// ```
/// use std::collections::BTreeMap;
/// use harness_sandbox::policy::{Extension, ExtraKeys, Policy};
/// use serde::{Deserialize, Deserializer};
///
/// /// `[owners]`: who answers for each tool.
/// #[derive(Default)]
/// struct Owners(BTreeMap<String, String>);
///
/// impl ExtraKeys for Owners {
///     fn keys() -> Vec<&'static str> {
///         vec!["owners"]
///     }
///     fn read<'de, D: Deserializer<'de>>(&mut self, _key: &str, value: D) -> Result<(), D::Error> {
///         self.0 = BTreeMap::deserialize(value)?;
///         Ok(())
///     }
/// }
///
/// impl Extension for Owners {
///     type Tool = ();
///     type Checked = BTreeMap<String, String>;
///     fn check(self, _tools: BTreeMap<String, ()>, policy: &Policy) -> Result<Self::Checked, (String, String)> {
///         match self.0.keys().find(|tool| !policy.tools().contains_key(*tool)) {
///             Some(unknown) => Err((format!("owners.{unknown}"), "not a whitelisted tool".into())),
///             None => Ok(self.0),
///         }
///     }
/// }
///
/// let path = std::path::Path::new("harness.toml");
/// let (_policy, owners) = Policy::parse_extended::<Owners>("[owners]\n", path, &|_| None)?;
/// assert!(owners.is_empty());
/// let error = Policy::parse("[owners]\n", path).unwrap_err();
/// assert!(error.to_string().contains("unknown field `owners`"), "{error}");
/// # Ok::<(), harness_sandbox::PolicyError>(())
/// ```
pub trait Extension: ExtraKeys {
    /// What it reads from each `[tools.NAME]` table.
    type Tool: ExtraKeys;
    /// Its configuration, once checked against the sandbox's part of the file.
    type Checked;

    /// Checks what was read, with each tool's part by tool name. An error is the dotted key
    /// from the top of the file (`agents.support.model`) and what is wrong with it.
    fn check(
        self,
        tools: BTreeMap<String, Self::Tool>,
        policy: &Policy,
    ) -> Result<Self::Checked, (String, String)>;
}

/// No extension: the sandbox alone, which owns every key it accepts.
impl ExtraKeys for () {
    fn keys() -> Vec<&'static str> {
        Vec::new()
    }

    fn read<'de, D: Deserializer<'de>>(&mut self, key: &str, _value: D) -> Result<(), D::Error> {
        Err(de::Error::custom(format!("unknown field `{key}`")))
    }
}

impl Extension for () {
    type Tool = ();
    type Checked = ();

    fn check(self, _tools: BTreeMap<String, ()>, _policy: &Policy) -> Result<(), (String, String)> {
        Ok(())
    }
}

/// Two layers at once (the agent's tables and a server's, say): each key goes to the one that
/// owns it.
impl<A: ExtraKeys, B: ExtraKeys> ExtraKeys for (A, B) {
    fn keys() -> Vec<&'static str> {
        let mut keys = A::keys();
        keys.extend(B::keys());
        keys
    }

    fn read<'de, D: Deserializer<'de>>(&mut self, key: &str, value: D) -> Result<(), D::Error> {
        if A::keys().contains(&key) {
            self.0.read(key, value)
        } else {
            self.1.read(key, value)
        }
    }
}

impl<A: Extension, B: Extension> Extension for (A, B) {
    type Tool = (A::Tool, B::Tool);
    type Checked = (A::Checked, B::Checked);

    fn check(
        self,
        tools: BTreeMap<String, (A::Tool, B::Tool)>,
        policy: &Policy,
    ) -> Result<Self::Checked, (String, String)> {
        let (mut first, mut second) = (BTreeMap::new(), BTreeMap::new());
        for (name, (a, b)) in tools {
            first.insert(name.clone(), a);
            second.insert(name, b);
        }
        Ok((self.0.check(first, policy)?, self.1.check(second, policy)?))
    }
}

/// A table read as `S` (the sandbox's keys, strictly) plus the keys `X` owns.
pub(super) struct WithExtra<S, X> {
    pub(super) known: S,
    pub(super) extra: X,
}

impl<'de, S: Deserialize<'de>, X: ExtraKeys> Deserialize<'de> for WithExtra<S, X> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TableVisitor(PhantomData))
    }
}

struct TableVisitor<S, X>(PhantomData<(S, X)>);

impl<'de, S: Deserialize<'de>, X: ExtraKeys> Visitor<'de> for TableVisitor<S, X> {
    type Value = WithExtra<S, X>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut extra = X::default();
        let known = S::deserialize(MapAccessDeserializer::new(Split {
            map,
            extra: &mut extra,
        }))?;
        Ok(WithExtra { known, extra })
    }
}

/// A map whose keys owned by `extra` are read into it; the others pass on.
struct Split<'a, A, X> {
    map: A,
    extra: &'a mut X,
}

impl<'de, A: MapAccess<'de>, X: ExtraKeys> MapAccess<'de> for Split<'_, A, X> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        mut seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            // The key is read inside the map's own key deserializer, so an unknown key's error
            // points at the key.
            match self.map.next_key_seed(Key::<K, X>(seed, PhantomData))? {
                None => return Ok(None),
                Some(KeyOf::Known(value)) => return Ok(Some(value)),
                Some(KeyOf::Extra(key, unused)) => {
                    self.map.next_value_seed(Claim {
                        extra: &mut *self.extra,
                        key: &key,
                    })?;
                    seed = unused;
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A key of the table: what the key seed `K` read (`V`), or a key the extension owns, with the
/// seed still unused.
enum KeyOf<V, K> {
    Known(V),
    Extra(String, K),
}

/// Reads one key: the extension's keys are set aside; any other goes to the seed `K`, whose
/// unknown-key error then also lists the extension's keys.
struct Key<K, X>(K, PhantomData<X>);

impl<'de, K: DeserializeSeed<'de>, X: ExtraKeys> DeserializeSeed<'de> for Key<K, X> {
    type Value = KeyOf<K::Value, K>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let key = String::deserialize(d)?;
        let extra = X::keys();
        if extra.contains(&key.as_str()) {
            return Ok(KeyOf::Extra(key, self.0));
        }
        let deserializer: de::value::StringDeserializer<D::Error> = key.into_deserializer();
        self.0
            .deserialize(deserializer)
            .map(KeyOf::Known)
            .map_err(|e| {
                if extra.is_empty() {
                    e
                } else {
                    let known = e.to_string();
                    de::Error::custom(format!(
                        "{}, or one of `{}`",
                        known.trim_end(),
                        extra.join("`, `")
                    ))
                }
            })
    }
}

/// The value of one extension key, read into the extension.
struct Claim<'a, X> {
    extra: &'a mut X,
    key: &'a str,
}

impl<'de, X: ExtraKeys> DeserializeSeed<'de> for Claim<'_, X> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.extra.read(self.key, d)
    }
}
