//! Personal data and secrets, found before any text reaches the model: e-mail addresses, phone
//! numbers, card numbers (Luhn-checked), IBANs (mod-97-checked), API keys and tokens, and
//! national-id-like numbers. Each kind is masked (`[email]`), blocked (the text is withheld), or
//! allowed, as the agent's `pii` table says; the default is to mask every kind.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A kind of sensitive text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// API keys, access tokens, bearer tokens, JWTs.
    Secret,
    /// E-mail addresses.
    Email,
    /// International bank account numbers with a valid check.
    Iban,
    /// Payment card numbers with a valid Luhn check.
    Card,
    /// National-id-like numbers (US SSN format).
    NationalId,
    /// Phone numbers in international, bracketed or 3-3-4 form.
    Phone,
}

impl Kind {
    /// Every kind, in the order they are looked for.
    pub const ALL: [Kind; 6] = [
        Kind::Secret,
        Kind::Email,
        Kind::Iban,
        Kind::Card,
        Kind::NationalId,
        Kind::Phone,
    ];

    /// The name used in the whitelist and in masks: `email`, `card`, ...
    pub fn name(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Email => "email",
            Kind::Iban => "iban",
            Kind::Card => "card",
            Kind::NationalId => "national_id",
            Kind::Phone => "phone",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// `text` with this kind's confirmed matches replaced by `[name]`, and how many there were.
    fn mask(self, text: &str) -> (String, u32) {
        let mut count = 0;
        let replaced = self.pattern().replace_all(text, |m: &regex::Captures<'_>| {
            if self.confirms(&m[0]) {
                count += 1;
                format!("[{}]", self.name())
            } else {
                m[0].to_owned()
            }
        });
        (replaced.into_owned(), count)
    }

    fn pattern(self) -> &'static Regex {
        static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
            [
                r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bAKIA[0-9A-Z]{16}\b|\bxox[abpr]-[A-Za-z0-9-]{10,}|(?i:\bbearer\s+)[A-Za-z0-9._~+/-]{16,}=*|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
                r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b",
                r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
                r"\b\d(?:[ -]?\d){12,18}\b",
                r"\b\d{3}-\d{2}-\d{4}\b",
                r"\+\d[\d ().-]{6,}\d|\(\d{2,4}\) ?\d[\d .-]{5,}\d|\b\d{3}[ .-]\d{3}[ .-]\d{4}\b",
            ]
            .iter()
            .map(|p| Regex::new(p).expect("the PII patterns are valid"))
            .collect()
        });
        &PATTERNS[Kind::ALL.iter().position(|k| *k == self).unwrap_or(0)]
    }

    /// Whether a match of the pattern is really this kind (checksums).
    fn confirms(self, found: &str) -> bool {
        match self {
            Kind::Card => luhn(found),
            Kind::Iban => iban_checks(found),
            Kind::Phone => (8..=15).contains(&found.chars().filter(char::is_ascii_digit).count()),
            Kind::Secret | Kind::Email | Kind::NationalId => true,
        }
    }
}

/// What to do with a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replace it with `[kind]`.
    Mask,
    /// Withhold the whole text.
    Block,
    /// Leave it.
    Allow,
}

/// The action per kind (every kind not listed is masked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PiiPolicy {
    actions: BTreeMap<Kind, Action>,
}

impl PiiPolicy {
    /// A policy from `kind = "mask" | "block" | "allow"` entries; errors name the bad entry.
    pub fn parse(entries: &BTreeMap<String, String>) -> Result<PiiPolicy, (String, String)> {
        let mut actions = BTreeMap::new();
        for (name, action) in entries {
            let kind = Kind::from_name(name).ok_or_else(|| {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                (
                    name.clone(),
                    format!("`{name}` is not a kind; use {}", names.join(", ")),
                )
            })?;
            let action = match action.as_str() {
                "mask" => Action::Mask,
                "block" => Action::Block,
                "allow" => Action::Allow,
                other => {
                    return Err((
                        name.clone(),
                        format!("`{other}` is not an action; use mask, block or allow"),
                    ));
                }
            };
            actions.insert(kind, action);
        }
        Ok(PiiPolicy { actions })
    }

    fn action(&self, kind: Kind) -> Action {
        self.actions.get(&kind).copied().unwrap_or(Action::Mask)
    }

    /// Applies the policy to `text`.
    pub fn apply(&self, text: &str) -> Screened {
        let mut out = text.to_owned();
        let mut found = BTreeMap::new();
        for kind in Kind::ALL {
            let action = self.action(kind);
            if action == Action::Allow {
                continue;
            }
            let (replaced, count) = kind.mask(&out);
            if count > 0 {
                if action == Action::Block {
                    *found.entry(kind).or_insert(0) += count;
                    return Screened::Blocked { kind, found };
                }
                out = replaced;
                found.insert(kind, count);
            }
        }
        Screened::Passed { text: out, found }
    }

    /// `text` with every kind this policy does not allow masked, blocked kinds included: what
    /// the audit log keeps of text that came from a tool or a model.
    pub fn mask(&self, text: &str) -> String {
        Kind::ALL
            .into_iter()
            .filter(|kind| self.action(*kind) != Action::Allow)
            .fold(text.to_owned(), |text, kind| kind.mask(&text).0)
    }

    /// `value` with [`PiiPolicy::mask`] applied to every string, and every number whose digits
    /// hold personal data (a card number sent as a number) replaced by its mask.
    pub fn mask_json(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.mask(text)),
            Value::Number(n) => {
                let digits = n.to_string();
                let masked = self.mask(&digits);
                if masked == digits {
                    value.clone()
                } else {
                    Value::String(masked)
                }
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (self.mask(k), self.mask_json(v)))
                    .collect(),
            ),
            Value::Null | Value::Bool(_) => value.clone(),
        }
    }
}

/// The result of screening a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screened {
    /// The text may go to the model (masked where needed); `found` counts what was masked.
    Passed {
        /// The text to send.
        text: String,
        /// Masked matches per kind.
        found: BTreeMap<Kind, u32>,
    },
    /// The text holds a kind that blocks it.
    Blocked {
        /// The kind that blocked it.
        kind: Kind,
        /// Matches per kind found so far.
        found: BTreeMap<Kind, u32>,
    },
}

fn luhn(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_checks(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder = 0u32;
    for c in tail.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        for digit in value.to_string().chars() {
            remainder = (remainder * 10 + digit.to_digit(10).unwrap_or(0)) % 97;
        }
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(text: &str) -> String {
        match PiiPolicy::default().apply(text) {
            Screened::Passed { text, .. } => text,
            Screened::Blocked { .. } => panic!("blocked"),
        }
    }

    #[test]
    fn each_kind_is_masked() {
        assert_eq!(
            mask("Mail ana.lopez@example.co.uk or call +34 612 345 678."),
            "Mail [email] or call [phone]."
        );
        assert_eq!(
            mask("Card 4111 1111 1111 1111, exp 12/29"),
            "Card [card], exp 12/29"
        );
        assert_eq!(
            mask("IBAN DE89 3704 0044 0532 0130 00 please"),
            "IBAN [iban] please"
        );
        assert_eq!(
            mask("key sk-proj-abcdefghijklmnop1234 and AKIAABCDEFGHIJKLMNOP"),
            "key [secret] and [secret]"
        );
        assert_eq!(
            mask("Authorization: Bearer abc.def-ghi_jkl~mnop123"),
            "Authorization: [secret]"
        );
        assert_eq!(mask("SSN 078-05-1120"), "SSN [national_id]");
        assert_eq!(
            mask("US (415) 555-0134 or 415.555.0134"),
            "US [phone] or [phone]"
        );
    }

    #[test]
    fn checksums_and_shapes_keep_ordinary_numbers() {
        let plain = "Order 4111 1111 1111 1112 on 2026-11-24, 6 × 7 = 42, build 1.2.3, DE89 3704 0044 0532 0130 02";
        assert_eq!(mask(plain), plain);
    }

    #[test]
    fn a_blocking_kind_withholds_the_text_and_allow_leaves_it() {
        let entries = BTreeMap::from([
            ("card".to_owned(), "block".to_owned()),
            ("email".to_owned(), "allow".to_owned()),
        ]);
        let policy = PiiPolicy::parse(&entries).unwrap();
        assert!(matches!(
            policy.apply("pay with 4111111111111111"),
            Screened::Blocked {
                kind: Kind::Card,
                ..
            }
        ));
        assert_eq!(
            policy.apply("write to a@b.io"),
            Screened::Passed {
                text: "write to a@b.io".into(),
                found: BTreeMap::new()
            }
        );
        let bad = BTreeMap::from([("emails".to_owned(), "mask".to_owned())]);
        assert!(
            PiiPolicy::parse(&bad)
                .unwrap_err()
                .1
                .starts_with("`emails` is not a kind")
        );
        let bad = BTreeMap::from([("email".to_owned(), "hide".to_owned())]);
        assert_eq!(
            PiiPolicy::parse(&bad).unwrap_err().1,
            "`hide` is not an action; use mask, block or allow"
        );
    }
}
