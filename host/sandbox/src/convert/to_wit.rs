//! JSON arguments to WIT values, validated against the function's WIT types on the way.

use std::fmt;

use serde_json::{Map, Value};
use wasmtime::component::Val;
use wit_parser::{Resolve, Type, TypeDefKind};

use super::json_kind;

/// Why a JSON argument does not fit its WIT type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("argument `{path}`: {problem}")]
pub struct ArgumentError {
    /// Where in the arguments: `query`, `filter.tags[2]`, `shape.circle.radius`.
    pub path: String,
    /// What is wrong there.
    pub problem: Problem,
}

/// What is wrong with one argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The arguments are not a JSON object.
    NotAnObject(&'static str),
    /// A required parameter or record field is absent.
    Missing,
    /// A key that the type does not have.
    Unknown { expected: Vec<String> },
    /// A JSON value of the wrong kind.
    WrongType {
        expected: String,
        found: &'static str,
    },
    /// A number outside the integer type's range, or not whole.
    OutOfRange {
        ty: &'static str,
        min: String,
        max: String,
    },
    /// A string that is not one of the enum's, variant's or flags' names.
    UnknownCase { case: String, expected: Vec<String> },
    /// An array of the wrong length for a tuple or fixed-length list.
    WrongLength { expected: usize, found: usize },
    /// The same flag twice.
    DuplicateFlag(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotAnObject(found) => write!(
                f,
                "the arguments must be a JSON object with one key per parameter, not {found}"
            ),
            Problem::Missing => write!(f, "missing (required)"),
            Problem::Unknown { expected } if expected.is_empty() => {
                write!(f, "unknown key (none are accepted here)")
            }
            Problem::Unknown { expected } => {
                write!(f, "unknown key; expected one of: {}", expected.join(", "))
            }
            Problem::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            Problem::OutOfRange { ty, min, max } => write!(
                f,
                "out of range for {ty}: expected a whole number from {min} to {max}"
            ),
            Problem::UnknownCase { case, expected } => write!(
                f,
                "unknown case \"{case}\"; expected one of: {}",
                expected.join(", ")
            ),
            Problem::WrongLength { expected, found } => write!(
                f,
                "expected an array of exactly {expected} items, found {found}"
            ),
            Problem::DuplicateFlag(flag) => write!(f, "flag \"{flag}\" is given twice"),
        }
    }
}

/// Converts a JSON arguments object into the parameter values of a function with `params`.
pub fn args_to_wit(
    resolve: &Resolve,
    params: &[(String, Type)],
    args: &Value,
) -> Result<Vec<Val>, ArgumentError> {
    let obj = match args {
        Value::Object(obj) => obj,
        Value::Null if params.is_empty() => return Ok(Vec::new()),
        other => {
            return Err(ArgumentError {
                path: "$".into(),
                problem: Problem::NotAnObject(json_kind(other)),
            });
        }
    };
    check_keys(obj, params.iter().map(|(n, _)| n.as_str()), &Path::Root)?;
    params
        .iter()
        .map(|(name, ty)| {
            let path = Path::Key(&Path::Root, name);
            match obj.get(name) {
                Some(value) => convert(resolve, ty, value, &path),
                None if crate::contract::schema::is_option(resolve, ty) => Ok(Val::Option(None)),
                None => Err(path.error(Problem::Missing)),
            }
        })
        .collect()
}

/// A location inside the arguments, built lazily so the happy path allocates no strings.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn error(&self, problem: Problem) -> ArgumentError {
        ArgumentError {
            path: self.to_string(),
            problem,
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn wrong(path: &Path<'_>, expected: impl Into<String>, found: &Value) -> ArgumentError {
    path.error(Problem::WrongType {
        expected: expected.into(),
        found: json_kind(found),
    })
}

fn check_keys<'n>(
    obj: &Map<String, Value>,
    names: impl Iterator<Item = &'n str> + Clone,
    path: &Path<'_>,
) -> Result<(), ArgumentError> {
    for key in obj.keys() {
        if !names.clone().any(|n| n == key) {
            let expected = names.clone().map(str::to_owned).collect();
            return Err(Path::Key(path, key).error(Problem::Unknown { expected }));
        }
    }
    Ok(())
}

fn convert(
    resolve: &Resolve,
    ty: &Type,
    value: &Value,
    path: &Path<'_>,
) -> Result<Val, ArgumentError> {
    Ok(match ty {
        Type::Bool => Val::Bool(
            value
                .as_bool()
                .ok_or_else(|| wrong(path, "a boolean", value))?,
        ),
        Type::U8 => Val::U8(integer(value, path, "u8")?),
        Type::U16 => Val::U16(integer(value, path, "u16")?),
        Type::U32 => Val::U32(integer(value, path, "u32")?),
        Type::U64 => Val::U64(integer(value, path, "u64")?),
        Type::S8 => Val::S8(integer(value, path, "s8")?),
        Type::S16 => Val::S16(integer(value, path, "s16")?),
        Type::S32 => Val::S32(integer(value, path, "s32")?),
        Type::S64 => Val::S64(integer(value, path, "s64")?),
        Type::F32 => Val::Float32(float(value, path)? as f32),
        Type::F64 => Val::Float64(float(value, path)?),
        Type::Char => {
            let s = value
                .as_str()
                .ok_or_else(|| wrong(path, "a one-character string", value))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => {
                    return Err(path.error(Problem::WrongLength {
                        expected: 1,
                        found: s.chars().count(),
                    }));
                }
            }
        }
        Type::String => Val::String(
            value
                .as_str()
                .ok_or_else(|| wrong(path, "a string", value))?
                .to_owned(),
        ),
        Type::ErrorContext => {
            return Err(wrong(path, "nothing (error-context cannot be sent)", value));
        }
        Type::Id(id) => convert_def(resolve, &resolve.types[*id].kind, value, path)?,
    })
}

fn convert_def(
    resolve: &Resolve,
    kind_: &TypeDefKind,
    value: &Value,
    path: &Path<'_>,
) -> Result<Val, ArgumentError> {
    Ok(match kind_ {
        TypeDefKind::Type(inner) => convert(resolve, inner, value, path)?,
        TypeDefKind::Record(record) => {
            let obj = value
                .as_object()
                .ok_or_else(|| wrong(path, "an object", value))?;
            check_keys(obj, record.fields.iter().map(|f| f.name.as_str()), path)?;
            let fields = record
                .fields
                .iter()
                .map(|field| {
                    let field_path = Path::Key(path, &field.name);
                    let val = match obj.get(&field.name) {
                        Some(v) => convert(resolve, &field.ty, v, &field_path)?,
                        None if crate::contract::schema::is_option(resolve, &field.ty) => {
                            Val::Option(None)
                        }
                        None => return Err(field_path.error(Problem::Missing)),
                    };
                    Ok((field.name.clone(), val))
                })
                .collect::<Result<_, _>>()?;
            Val::Record(fields)
        }
        TypeDefKind::Tuple(tuple) => Val::Tuple(fixed_array(resolve, &tuple.types, value, path)?),
        TypeDefKind::Variant(variant) => {
            let (case_name, payload) = tagged(value, path)?;
            let case = variant
                .cases
                .iter()
                .find(|c| c.name == case_name)
                .ok_or_else(|| {
                    path.error(Problem::UnknownCase {
                        case: case_name.to_owned(),
                        expected: variant.cases.iter().map(|c| c.name.clone()).collect(),
                    })
                })?;
            let case_path = Path::Key(path, &case.name);
            let payload = match (&case.ty, payload) {
                (None, None) => None,
                (Some(ty), Some(p)) => Some(Box::new(convert(resolve, ty, p, &case_path)?)),
                (None, Some(p)) => {
                    return Err(wrong(
                        &case_path,
                        "no payload (write the case as a plain string)",
                        p,
                    ));
                }
                (Some(_), None) => return Err(case_path.error(Problem::Missing)),
            };
            Val::Variant(case.name.clone(), payload)
        }
        TypeDefKind::Enum(e) => {
            let s = value
                .as_str()
                .ok_or_else(|| wrong(path, "a string naming an enum case", value))?;
            let case = e.cases.iter().find(|c| c.name == s).ok_or_else(|| {
                path.error(Problem::UnknownCase {
                    case: s.to_owned(),
                    expected: e.cases.iter().map(|c| c.name.clone()).collect(),
                })
            })?;
            Val::Enum(case.name.clone())
        }
        TypeDefKind::Flags(flags) => {
            let items = value
                .as_array()
                .ok_or_else(|| wrong(path, "an array of flag names", value))?;
            let mut set: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_path = Path::Index(path, i);
                let name = item
                    .as_str()
                    .ok_or_else(|| wrong(&item_path, "a flag name", item))?;
                if !flags.flags.iter().any(|f| f.name == name) {
                    let expected = flags.flags.iter().map(|f| f.name.clone()).collect();
                    return Err(item_path.error(Problem::UnknownCase {
                        case: name.to_owned(),
                        expected,
                    }));
                }
                if set.iter().any(|s| s == name) {
                    return Err(item_path.error(Problem::DuplicateFlag(name.to_owned())));
                }
                set.push(name.to_owned());
            }
            Val::Flags(set)
        }
        TypeDefKind::Option(inner) => match value {
            Value::Null => Val::Option(None),
            _ if crate::contract::schema::is_option(resolve, inner) => {
                let obj = value
                    .as_object()
                    .filter(|o| o.len() == 1)
                    .ok_or_else(|| wrong(path, "null or {\"some\": ...}", value))?;
                let some = obj.get("some").ok_or_else(|| {
                    Path::Key(path, obj.keys().next().map_or("", |k| k)).error(Problem::Unknown {
                        expected: vec!["some".into()],
                    })
                })?;
                Val::Option(Some(Box::new(convert(
                    resolve,
                    inner,
                    some,
                    &Path::Key(path, "some"),
                )?)))
            }
            _ => Val::Option(Some(Box::new(convert(resolve, inner, value, path)?))),
        },
        TypeDefKind::Result(result) => {
            let (side, payload) = tagged(value, path)?;
            let (ty, is_ok) = match side {
                "ok" => (&result.ok, true),
                "err" => (&result.err, false),
                other => {
                    return Err(path.error(Problem::UnknownCase {
                        case: other.to_owned(),
                        expected: vec!["ok".into(), "err".into()],
                    }));
                }
            };
            let side_path = Path::Key(path, side);
            let payload = match (ty, payload) {
                (None, None | Some(Value::Null)) => None,
                (Some(ty), Some(p)) => Some(Box::new(convert(resolve, ty, p, &side_path)?)),
                (None, Some(p)) => return Err(wrong(&side_path, "null", p)),
                (Some(_), None) => return Err(side_path.error(Problem::Missing)),
            };
            Val::Result(if is_ok { Ok(payload) } else { Err(payload) })
        }
        TypeDefKind::List(inner) => {
            let items = value
                .as_array()
                .ok_or_else(|| wrong(path, "an array", value))?;
            Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| convert(resolve, inner, v, &Path::Index(path, i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        TypeDefKind::FixedLengthList(inner, n) => {
            let types = vec![*inner; *n as usize];
            Val::FixedLengthList(fixed_array(resolve, &types, value, path)?)
        }
        TypeDefKind::Map(_, value_ty) => {
            let obj = value
                .as_object()
                .ok_or_else(|| wrong(path, "an object", value))?;
            Val::Map(
                obj.iter()
                    .map(|(k, v)| {
                        Ok((
                            Val::String(k.clone()),
                            convert(resolve, value_ty, v, &Path::Key(path, k))?,
                        ))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        TypeDefKind::Resource
        | TypeDefKind::Handle(_)
        | TypeDefKind::Future(_)
        | TypeDefKind::Stream(_)
        | TypeDefKind::Unknown => {
            return Err(wrong(path, "nothing (this type cannot be sent)", value));
        }
    })
}

/// `"case"` or `{"case": payload}`.
fn tagged<'v>(
    value: &'v Value,
    path: &Path<'_>,
) -> Result<(&'v str, Option<&'v Value>), ArgumentError> {
    match value {
        Value::String(s) => Ok((s, None)),
        Value::Object(obj) if obj.len() == 1 => {
            let (k, v) = obj.iter().next().expect("one entry");
            Ok((k, Some(v)))
        }
        other => Err(wrong(
            path,
            "a case name, or an object with exactly one key naming the case",
            other,
        )),
    }
}

fn fixed_array(
    resolve: &Resolve,
    types: &[Type],
    value: &Value,
    path: &Path<'_>,
) -> Result<Vec<Val>, ArgumentError> {
    let items = value
        .as_array()
        .ok_or_else(|| wrong(path, format!("an array of {} items", types.len()), value))?;
    if items.len() != types.len() {
        return Err(path.error(Problem::WrongLength {
            expected: types.len(),
            found: items.len(),
        }));
    }
    types
        .iter()
        .zip(items)
        .enumerate()
        .map(|(i, (ty, v))| convert(resolve, ty, v, &Path::Index(path, i)))
        .collect()
}

fn integer<T>(value: &Value, path: &Path<'_>, ty: &'static str) -> Result<T, ArgumentError>
where
    T: TryFrom<i64> + TryFrom<u64> + Bounded,
{
    let out_of_range = || {
        let (min, max) = T::bounds();
        path.error(Problem::OutOfRange { ty, min, max })
    };
    let Value::Number(n) = value else {
        return Err(wrong(path, format!("an integer ({ty})"), value));
    };
    if let Some(u) = n.as_u64() {
        return T::try_from(u).map_err(|_| out_of_range());
    }
    if let Some(i) = n.as_i64() {
        return T::try_from(i).map_err(|_| out_of_range());
    }
    // A float: accept it only when it is a whole number that fits (models write `3.0`).
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        return T::try_from(f as i64).map_err(|_| out_of_range());
    }
    Err(out_of_range())
}

fn float(value: &Value, path: &Path<'_>) -> Result<f64, ArgumentError> {
    match value {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        other => Err(wrong(path, "a number", other)),
    }
}

/// The range of an integer type, printed for error messages.
trait Bounded {
    fn bounds() -> (String, String);
}

macro_rules! bounded {
    ($($t:ty),*) => {$(
        impl Bounded for $t {
            fn bounds() -> (String, String) {
                (<$t>::MIN.to_string(), <$t>::MAX.to_string())
            }
        }
    )*};
}

bounded!(u8, u16, u32, u64, i8, i16, i32, i64);
