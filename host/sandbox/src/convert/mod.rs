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
