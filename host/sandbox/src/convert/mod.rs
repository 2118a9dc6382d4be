//! Conversion between the JSON a model speaks and the WIT values a component takes.
//!
//! [`to_wit`] validates while it converts: every error names the argument path (`items[2].kind`)
//! and what is wrong with it. [`to_json`] is the way back, for results.

mod to_json;
mod to_wit;

pub use to_json::to_json;
pub use to_wit::{ArgumentError, Problem, args_to_wit};

/// The kind of a JSON value in words (`an object`, `a string`, ...), for messages that say what
/// was found instead of what was expected.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `value` with every object's keys in sorted order, so it serializes one way only: the same text
/// for the same arguments or entry however they were written.
pub fn canonical_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| (k.clone(), canonical_json(&map[k])))
                .collect::<serde_json::Map<_, _>>()
                .into()
        }
        Value::Array(items) => items.iter().map(canonical_json).collect(),
        other => other.clone(),
    }
}

/// The length of `value` as JSON text, counted without writing the text.
pub(crate) fn json_size(value: &serde_json::Value) -> u64 {
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).map_or(u64::MAX, |()| counter.0)
}

/// Counts the bytes written to it.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
