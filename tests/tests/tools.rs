//! The C example tools and the echo fixture, built from source with clang + wasi-libc +
//! wit-bindgen-c, called through the whole boundary.

use harness_e2e::{PolicyFile, c_fixture, example_tool};
use harness_sandbox::{CallContext, Host, Outcome, Policy};
use serde_json::{Value, json};

fn host(tmp: &tempfile::TempDir) -> Host {
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("calc", &example_tool("calc"), "")
        .tool("text", &example_tool("text"), "")
        .tool("echo", &c_fixture("echo"), "")
        .write(tmp.path());
    Host::load(Policy::load(policy).unwrap()).unwrap()
}

async fn call(host: &Host, name: &str, args: Value) -> harness_sandbox::CallReport {
    host.call(
        name,
        &args.to_string(),
        &CallContext::new("tester", "run-tools"),
    )
    .await
    .unwrap()
}

/// The message of a call refused before it ran.
async fn refusal(host: &Host, name: &str, args: Value) -> String {
    host.call(name, &args.to_string(), &CallContext::default())
        .await
        .expect_err("the call should be refused")
        .to_string()
}

async fn ok(host: &Host, name: &str, args: Value) -> Value {
    match call(host, name, args).await.outcome {
        Outcome::Ok { value } => value,
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wit_type_round_trips_through_a_real_component() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host(&tmp);
    let everything = json!({
        "b": true, "a-u8": 255, "a-u16": 65535, "a-u32": 4294967295u32, "a-u64": u64::MAX,
        "a-s8": -128, "a-s16": -32768, "a-s32": -2147483648i64, "a-s64": i64::MIN,
        "a-f32": 1.5, "a-f64": -0.25, "c": "é", "s": "hello, 世界",
        "l": [1, 2, 65535], "o": {"some": null}, "r": {"err": "green"},
        "t": [7, "seven"], "p": {"x": -1, "y": 2, "label": "origin"},
        "sh": {"rect": {"x": 1, "y": 2, "label": null}}, "col": "blue", "fl": ["read", "exec"],
        "bytes": [0, 1, 255], "nested": [[{"circle": 2.5}, "empty"], []],
    });
    assert_eq!(
        ok(&host, "echo.echo", json!({ "x": everything })).await,
        everything
    );

    let variations = json!({
        "b": false, "a-u8": 0, "a-u16": 0, "a-u32": 0, "a-u64": 0, "a-s8": 127, "a-s16": 32767,
        "a-s32": 2147483647, "a-s64": i64::MAX, "a-f32": "NaN", "a-f64": "-Infinity", "c": "x", "s": "",
        "l": [], "o": {"some": 9}, "r": {"ok": "fine"}, "t": [0, ""], "p": {"x": 0, "y": 0, "label": null},
        "sh": "empty", "col": "red", "fl": [], "bytes": [], "nested": [],
    });
    assert_eq!(
        ok(&host, "echo.echo", json!({ "x": variations })).await,
        variations
    );

    let mut outer_none = variations.clone();
    outer_none["o"] = Value::Null;
    assert_eq!(
        ok(&host, "echo.echo", json!({ "x": outer_none })).await,
        outer_none
    );

    for (field, value, says) in [
        (
            "nested",
            json!([[{"hexagon": 1}]]),
            "argument `x.nested[0][0]`: unknown case \"hexagon\"",
        ),
        (
            "fl",
            json!(["read", "read"]),
            "argument `x.fl[1]`: flag \"read\" is given twice",
        ),
    ] {
        let mut bad = variations.clone();
        bad[field] = value;
        let err = refusal(&host, "echo.echo", json!({ "x": bad })).await;
        assert!(err.contains(says), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calc_maps_results_to_outcomes_and_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host(&tmp);
    assert_eq!(
        ok(&host, "calc.apply", json!({"op": "mul", "a": 6, "b": 7})).await,
        json!(42.0)
    );
    assert_eq!(
        ok(&host, "calc.sum", json!({"values": [1, 2, 3]})).await,
        json!(6)
    );
    assert_eq!(
        ok(&host, "calc.range", json!({"values": [3, -1, 8]})).await,
        json!([-1.0, 8.0])
    );
    assert_eq!(
        ok(&host, "calc.range", json!({"values": []})).await,
        Value::Null
    );

    let report = call(&host, "calc.apply", json!({"op": "div", "a": 1, "b": 0})).await;
    assert_eq!(
        report.outcome,
        Outcome::ToolError {
            error: json!("division-by-zero")
        }
    );
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].level, "warn");
    assert_eq!(report.logs[0].message, "division by zero refused");

    let report = call(&host, "calc.sum", json!({"values": [i64::MAX, 1]})).await;
    assert_eq!(
        report.outcome,
        Outcome::ToolError {
            error: json!({"overflow": "adding item 1"})
        }
    );

    assert_eq!(
        refusal(&host, "calc.apply", json!({"op": "pow", "a": 1, "b": 2})).await,
        "arguments of `apply`: argument `op`: unknown case \"pow\"; expected one of: add, sub, mul, div"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_uses_records_variants_flags_options_and_tuples() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host(&tmp);
    assert_eq!(
        ok(
            &host,
            "text.transform",
            json!({"input": "  abc ", "style": ["trim", "upper", "reverse"]})
        )
        .await,
        json!("CBA")
    );
    assert_eq!(
        ok(&host, "text.stats", json!({"input": "one two\nthree"})).await,
        json!({"bytes": 13, "words": 3, "lines": 2, "longest-word": "three"})
    );
    assert_eq!(
        ok(&host, "text.stats", json!({"input": ""})).await,
        json!({"bytes": 0, "words": 0, "lines": 0, "longest-word": null})
    );
    assert_eq!(
        ok(
            &host,
            "text.find",
            json!({"input": "a1 bb c3 d4", "pattern": "has-digit", "limit": 2})
        )
        .await,
        json!([[0, "a1"], [6, "c3"]])
    );
    assert_eq!(
        ok(
            &host,
            "text.find",
            json!({"input": "pre prefix post", "pattern": {"prefix": "pre"}})
        )
        .await,
        json!([[0, "pre"], [4, "prefix"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_and_descriptions_come_from_the_wit() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host(&tmp);
    let (_, apply) = host.function("calc.apply").unwrap();
    assert_eq!(apply.qualified_name, "calc__apply");
    assert_eq!(
        apply.description.as_deref(),
        Some("Apply `op` to `a` and `b`. Dividing by zero is an error.")
    );
    assert_eq!(apply.parameters_schema["required"], json!(["op", "a", "b"]));
    assert_eq!(
        apply.parameters_schema["properties"]["op"]["enum"],
        json!(["add", "sub", "mul", "div"])
    );
    assert_eq!(apply.result_schema, json!({"type": "number"}));
    assert!(
        apply.error_schema.as_ref().unwrap()["oneOf"]
            .as_array()
            .unwrap()
            .len()
            == 2
    );

    let (_, stats) = host.function("text.stats").unwrap();
    let props = &stats.result_schema["properties"];
    assert_eq!(
        props["bytes"],
        json!({"type": "integer", "minimum": 0, "maximum": 4294967295u32, "description": "Bytes of UTF-8."})
    );
    assert_eq!(
        stats.result_schema["required"],
        json!(["bytes", "words", "lines"]),
        "option fields are not required"
    );
    let (_, find) = host.function("text.find").unwrap();
    assert_eq!(
        find.parameters_schema["required"],
        json!(["input", "pattern"])
    );
}
