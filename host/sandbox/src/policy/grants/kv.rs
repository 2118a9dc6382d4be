//! `kv`: the tool's private key-value namespace and its quotas.

use serde::Deserialize;

use super::GrantError;
use crate::policy::units::Bytes;

/// Quotas of a tool's key-value namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvGrant {
    /// Most bytes of keys plus values the namespace may hold.
    pub quota: Bytes,
    /// Most keys it may hold.
    pub max_keys: u64,
    /// Largest single value.
    pub max_value: Bytes,
}

/// Longest key, in bytes: keys name things, values hold them.
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKv {
    quota: Bytes,
    max_keys: Option<u64>,
    max_value: Option<Bytes>,
}

impl RawKv {
    /// Checks the quotas: all non-zero, and a value no larger than the whole quota.
    pub(super) fn check(self) -> Result<KvGrant, GrantError> {
        let grant = KvGrant {
            quota: self.quota,
            max_keys: self.max_keys.unwrap_or(10_000),
            max_value: self.max_value.unwrap_or(Bytes(self.quota.0.min(1 << 20))),
        };
        for (key, value) in [
            ("quota", grant.quota.0),
            ("max_keys", grant.max_keys),
            ("max_value", grant.max_value.0),
        ] {
            if value == 0 {
                return Err((
                    format!("kv.{key}"),
                    "0 would refuse every write; remove the `kv` grant instead".into(),
                ));
            }
        }
        if grant.max_value > grant.quota {
            return Err((
                "kv.max_value".into(),
                format!(
                    "{} is larger than the whole quota of {}",
                    grant.max_value, grant.quota
                ),
            ));
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<KvGrant, GrantError> {
        toml::from_str::<super::super::RawGrants>(&format!("kv = {{ {text} }}"))
            .unwrap()
            .kv
            .unwrap()
            .check()
    }

    #[test]
    fn quotas_default_from_the_total() {
        let grant = check(r#"quota = "64 KiB""#).unwrap();
        assert_eq!(grant.max_keys, 10_000);
        assert_eq!(grant.max_value, Bytes(64 << 10));
        let grant = check(r#"quota = "10 MiB", max_keys = 5"#).unwrap();
        assert_eq!((grant.max_keys, grant.max_value), (5, Bytes(1 << 20)));
    }

    #[test]
    fn nonsense_quotas_name_the_key() {
        assert_eq!(check(r#"quota = 0"#).unwrap_err().0, "kv.quota");
        assert_eq!(
            check(r#"quota = 10, max_keys = 0"#).unwrap_err().0,
            "kv.max_keys"
        );
        assert_eq!(
            check(r#"quota = "1 KiB", max_value = "2 KiB""#)
                .unwrap_err()
                .0,
            "kv.max_value"
        );
    }
}
