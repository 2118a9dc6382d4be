//! The values that cross the interface: query parameters in, rows out. Both engines store
//! integers as 64 bits and text as UTF-8; nothing else is needed.

use crate::DbError;

/// A query parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param<'a> {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Bytes (SQLite `BLOB`, PostgreSQL `BYTEA`).
    Bytes(&'a [u8]),
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<u64> for Param<'_> {
    /// Counts above `i64::MAX` (no budget or size comes near) are stored as `i64::MAX`.
    fn from(value: u64) -> Self {
        Param::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<u32> for Param<'_> {
    fn from(value: u32) -> Self {
        Param::Int(value.into())
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Param::Text(value)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(value: &'a [u8]) -> Self {
        Param::Bytes(value)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(value: &'a String) -> Self {
        Param::Text(value)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Param::Null, Into::into)
    }
}

/// A column's value in a row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// SQL `NULL`.
    Null,
    /// An integer (booleans are 0 and 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a number",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
        }
    }
}

/// One row of a query's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(pub(crate) Vec<Value>);

impl Row {
    fn get(&self, index: usize) -> &Value {
        self.0.get(index).unwrap_or(&Value::Null)
    }

    fn wrong(&self, index: usize, expected: &'static str) -> DbError {
        DbError::Column {
            index,
            expected,
            found: self.get(index).kind(),
        }
    }

    /// Column `index` as an integer.
    pub fn int(&self, index: usize) -> Result<i64, DbError> {
        self.opt_int(index)?
            .ok_or_else(|| self.wrong(index, "an integer"))
    }

    /// Column `index` as an integer, or `None` for `NULL`.
    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, DbError> {
        match self.get(index) {
            Value::Null => Ok(None),
            Value::Int(value) => Ok(Some(*value)),
            _ => Err(self.wrong(index, "an integer")),
        }
    }

    /// Column `index` as a count (a non-negative integer; `NULL` counts as 0, as an empty
    /// `SUM` gives).
    pub fn count(&self, index: usize) -> Result<u64, DbError> {
        let value = self.opt_int(index)?.unwrap_or(0);
        u64::try_from(value).map_err(|_| self.wrong(index, "a count"))
    }

    /// Column `index` as a number (integers convert), or `None` for `NULL`.
    pub fn opt_real(&self, index: usize) -> Result<Option<f64>, DbError> {
        match self.get(index) {
            Value::Null => Ok(None),
            Value::Int(value) => Ok(Some(*value as f64)),
            Value::Real(value) => Ok(Some(*value)),
            Value::Text(_) | Value::Bytes(_) => Err(self.wrong(index, "a number")),
        }
    }

    /// Column `index` as text.
    pub fn text(&self, index: usize) -> Result<String, DbError> {
        self.opt_text(index)?
            .ok_or_else(|| self.wrong(index, "text"))
    }

    /// Column `index` as text, or `None` for `NULL`.
    pub fn opt_text(&self, index: usize) -> Result<Option<String>, DbError> {
        match self.get(index) {
            Value::Null => Ok(None),
            Value::Text(value) => Ok(Some(value.clone())),
            _ => Err(self.wrong(index, "text")),
        }
    }
}

impl Row {
    /// Column `index` as bytes.
    pub fn bytes(&self, index: usize) -> Result<Vec<u8>, DbError> {
        match self.get(index) {
            Value::Bytes(value) => Ok(value.clone()),
            _ => Err(self.wrong(index, "bytes")),
        }
    }
}
