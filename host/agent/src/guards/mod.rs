//! Guards on what reaches the model: [`pii`] finds personal data and secrets in the user's
//! words and in tool results, and masks them or blocks the text, per kind.

pub mod pii;
