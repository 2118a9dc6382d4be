//! Conversion between the JSON a model speaks and the WIT values a component takes.
//!
//! [`to_wit`] validates while it converts: every error names the argument path (`items[2].kind`)
//! and what is wrong with it. [`to_json`] is the way back, for results.

mod to_json;
mod to_wit;

pub use to_json::to_json;
pub use to_wit::{ArgumentError, Problem, args_to_wit};
