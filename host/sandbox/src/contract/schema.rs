//! JSON Schema (draft 2020-12) for WIT types: what a model must send and what it gets back.

use serde_json::{Map, Value, json};
use wit_parser::{Resolve, Type, TypeDefKind};

/// A type that a model cannot send or receive as JSON (resources, futures, streams, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// The JSON Schema of `ty`.
pub fn schema_of(resolve: &Resolve, ty: &Type) -> Result<Value, Unsupported> {
    let schema = match ty {
        Type::Bool => json!({ "type": "boolean" }),
        Type::U8 => int(u8::MIN.into(), u8::MAX.into()),
        Type::U16 => int(u16::MIN.into(), u16::MAX.into()),
        Type::U32 => int(u32::MIN.into(), u32::MAX.into()),
        Type::U64 => json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX }),
        Type::S8 => int(i8::MIN.into(), i8::MAX.into()),
        Type::S16 => int(i16::MIN.into(), i16::MAX.into()),
        Type::S32 => int(i32::MIN.into(), i32::MAX.into()),
        Type::S64 => int(i64::MIN, i64::MAX),
        Type::F32 | Type::F64 => json!({ "type": "number" }),
        Type::Char => json!({ "type": "string", "minLength": 1, "maxLength": 1 }),
        Type::String => json!({ "type": "string" }),
        Type::ErrorContext => return Err(Unsupported("error-context".into())),
        Type::Id(id) => {
            let def = &resolve.types[*id];
            let mut schema = kind_schema(resolve, &def.kind)?;
            if let (Some(docs), Value::Object(obj)) = (&def.docs.contents, &mut schema) {
                describe(obj, docs);
            }
            schema
        }
    };
    Ok(schema)
}

fn kind_schema(resolve: &Resolve, kind: &TypeDefKind) -> Result<Value, Unsupported> {
    Ok(match kind {
        TypeDefKind::Type(inner) => schema_of(resolve, inner)?,
        TypeDefKind::Record(record) => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for field in &record.fields {
                let mut field_schema = schema_of(resolve, &field.ty)?;
                if let (Some(docs), Value::Object(obj)) = (&field.docs.contents, &mut field_schema)
                {
                    describe(obj, docs);
                }
                if !is_option(resolve, &field.ty) {
                    required.push(Value::String(field.name.clone()));
                }
                properties.insert(field.name.clone(), field_schema);
            }
            json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
        }
        TypeDefKind::Tuple(tuple) => {
            let items = tuple
                .types
                .iter()
                .map(|t| schema_of(resolve, t))
                .collect::<Result<Vec<_>, _>>()?;
            let n = items.len();
            json!({ "type": "array", "prefixItems": items, "items": false, "minItems": n, "maxItems": n })
        }
        TypeDefKind::Variant(variant) => {
            let cases = variant
                .cases
                .iter()
                .map(|case| {
                    let mut schema = match &case.ty {
                        None => json!({ "const": case.name }),
                        Some(ty) => single_key(&case.name, schema_of(resolve, ty)?),
                    };
                    if let (Some(docs), Value::Object(obj)) = (&case.docs.contents, &mut schema) {
                        describe(obj, docs);
                    }
                    Ok(schema)
                })
                .collect::<Result<Vec<_>, _>>()?;
            json!({ "oneOf": cases })
        }
        TypeDefKind::Enum(e) => {
            let names: Vec<&str> = e.cases.iter().map(|c| c.name.as_str()).collect();
            let mut schema = json!({ "type": "string", "enum": names });
            let case_docs: Vec<String> = e
                .cases
                .iter()
                .filter_map(|c| {
                    c.docs
                        .contents
                        .as_ref()
                        .map(|d| format!("`{}`: {}", c.name, d.trim()))
                })
                .collect();
            if !case_docs.is_empty() {
                describe(
                    schema.as_object_mut().expect("object literal"),
                    &case_docs.join("; "),
                );
            }
            schema
        }
        TypeDefKind::Flags(flags) => {
            let names: Vec<&str> = flags.flags.iter().map(|f| f.name.as_str()).collect();
            json!({ "type": "array", "items": { "type": "string", "enum": names }, "uniqueItems": true })
        }
        TypeDefKind::Option(inner) => {
            let inner_schema = schema_of(resolve, inner)?;
            let some = if is_option(resolve, inner) {
                single_key("some", inner_schema)
            } else {
                inner_schema
            };
            json!({ "anyOf": [some, { "type": "null" }] })
        }
        TypeDefKind::Result(result) => {
            let side = |name: &str, ty: &Option<Type>| -> Result<Value, Unsupported> {
                Ok(single_key(
                    name,
                    match ty {
                        Some(ty) => schema_of(resolve, ty)?,
                        None => json!({ "type": "null" }),
                    },
                ))
            };
            json!({ "oneOf": [side("ok", &result.ok)?, side("err", &result.err)?] })
        }
        TypeDefKind::List(inner) => json!({ "type": "array", "items": schema_of(resolve, inner)? }),
        TypeDefKind::FixedLengthList(inner, n) => {
            json!({ "type": "array", "items": schema_of(resolve, inner)?, "minItems": n, "maxItems": n })
        }
        TypeDefKind::Map(key, value) => {
            if !matches!(key, Type::String) {
                return Err(Unsupported("map with non-string keys".into()));
            }
            json!({ "type": "object", "additionalProperties": schema_of(resolve, value)? })
        }
        TypeDefKind::Resource | TypeDefKind::Handle(_) => {
            return Err(Unsupported("resource handle".into()));
        }
        TypeDefKind::Future(_) => return Err(Unsupported("future".into())),
        TypeDefKind::Stream(_) => return Err(Unsupported("stream".into())),
        TypeDefKind::Unknown => return Err(Unsupported("unresolved type".into())),
    })
}

/// Whether `ty` is (an alias of) an `option`.
pub fn is_option(resolve: &Resolve, ty: &Type) -> bool {
    match ty {
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Option(_) => true,
            TypeDefKind::Type(inner) => is_option(resolve, inner),
            _ => false,
        },
        _ => false,
    }
}

fn int(min: i64, max: i64) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max })
}

fn single_key(key: &str, schema: Value) -> Value {
    json!({ "type": "object", "properties": { key: schema }, "required": [key], "additionalProperties": false })
}

fn describe(obj: &mut Map<String, Value>, docs: &str) {
    let docs = docs.trim();
    if !docs.is_empty() && !obj.contains_key("description") {
        obj.insert("description".into(), Value::String(docs.to_owned()));
    }
}
