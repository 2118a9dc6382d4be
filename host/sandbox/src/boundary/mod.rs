//! The call boundary: one metered run of one function in a fresh store.
//!
//! Each call gets a fresh instance from the tool's pre-instantiated component, with fuel, an
//! epoch deadline, a memory cap, bounded stdout/stderr, bounded host-call copying and handle
//! counts, and only the linked capabilities. Whatever the tool does, the result is one
//! [`Outcome`]; traps become named [`Stop`]s.

mod outcome;

use std::time::{Duration, Instant};

use serde_json::Value;
use wasmtime::component::{ResourceTable, Val};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpCtx;

pub use outcome::{CallReport, Outcome, OutputKind, Stop, Usage};

use crate::capabilities;
use crate::capabilities::caller::CallContext;
use crate::capabilities::denials::DenialLog;
use crate::capabilities::http::HttpHooks;
use crate::capabilities::kv::KvCtx;
use crate::capabilities::log::LogBuffer;
use crate::capabilities::stdio::{Capture, StreamName};
use crate::contract::ResultShape;
use crate::convert;
use crate::registry::LoadedTool;
use crate::store::{CallLimiter, CallState};

/// Extra wall time after the deadline before the host abandons a call that is blocked in a host
/// call (where epochs cannot interrupt it).
const DEADLINE_GRACE: Duration = Duration::from_millis(100);

/// Most live component-model handles (resources) one call may hold.
const MAX_HANDLES: usize = 10_000;

/// Runs function number `index` of `tool` with already validated `params`, and reports how it
/// went.
pub(crate) async fn run(
    tool: &LoadedTool,
    index: usize,
    params: Vec<Val>,
    caller: CallContext,
) -> CallReport {
    let function = &tool.functions[index];
    let limits = tool.policy.limits;
    let max_output = limits.max_output.as_usize();
    let stdout = Capture::new(StreamName::Stdout, max_output);
    let stderr = Capture::new(StreamName::Stderr, max_output);
    let denials = DenialLog::default();
    let wasi = match capabilities::wasi_ctx(&tool.policy.grants, &stdout, &stderr, &denials) {
        Ok(wasi) => wasi,
        Err(e) => {
            return CallReport::not_run(Stop::GrantUnavailable {
                message: e.to_string(),
            });
        }
    };
    let state = CallState {
        wasi,
        table: ResourceTable::new(),
        denials: denials.clone(),
        limiter: CallLimiter::new(limits.memory.0),
        log: LogBuffer::default(),
        caller,
        http: http_ctx(&tool.policy.grants.http_limits),
        http_hooks: HttpHooks::new(tool.egress.clone(), denials.clone()),
        kv: KvCtx::new(tool.kv.clone(), denials.clone()),
    };

    let mut store = Store::new(tool.pre.engine(), state);
    store.limiter(|s| &mut s.limiter);
    store
        .set_fuel(limits.fuel)
        .expect("fuel is enabled on the host engine");
    let started = Instant::now();
    let deadline = started + limits.timeout;
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store.set_epoch_deadline(1);
    // Lifting the result into host values costs about one `Val` per element; bound it so a huge
    // return value is refused before the host allocates for it.
    store.set_hostcall_fuel(
        max_output
            .saturating_mul(std::mem::size_of::<Val>())
            .max(1 << 20),
    );
    store.set_max_component_handles(MAX_HANDLES);

    let run = async {
        let instance = tool.pre.instantiate_async(&mut store).await?;
        let func = instance
            .get_func(&mut store, tool.exports[index])
            .ok_or_else(|| {
                wasmtime::format_err!("export `{}` disappeared from the instance", function.name)
            })?;
        let mut results = vec![Val::Bool(false); func.ty(&store).results().len()];
        func.call_async(&mut store, &params, &mut results).await?;
        wasmtime::Result::Ok(results.pop())
    };
    let ran = tokio::time::timeout(limits.timeout + DEADLINE_GRACE, run).await;
    let wall = started.elapsed();

    let outcome = match ran {
        Err(_elapsed) => Outcome::Stopped {
            stop: Stop::TimedOut {
                limit: limits.timeout,
            },
        },
        Ok(Err(error)) => Outcome::Stopped {
            stop: classify(&error, &store, &[&stdout, &stderr], &limits),
        },
        Ok(Ok(result)) => shape(&function.signature.result, result),
    };
    let (outcome, output_bytes) = cap_output(outcome, max_output);
    let fuel = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let state = store.into_data();
    let (denials, denials_dropped) = denials.take();
    CallReport {
        outcome,
        usage: Usage {
            fuel,
            wall,
            peak_memory: state.limiter.peak,
            output_bytes,
        },
        stdout: stdout.text(),
        stderr: stderr.text(),
        logs: state.log.lines,
        logs_dropped: state.log.dropped,
        denials,
        denials_dropped,
    }
}

/// The `wasi:http` context of one call: header fields the tool builds are capped like responses.
fn http_ctx(limits: &crate::policy::HttpLimits) -> WasiHttpCtx {
    let mut ctx = WasiHttpCtx::new();
    ctx.set_field_size_limit(limits.headers.as_usize());
    ctx
}

/// Names the stop behind a failed instantiation or call.
fn classify(
    error: &wasmtime::Error,
    store: &Store<CallState>,
    captures: &[&Capture],
    limits: &crate::policy::Limits,
) -> Stop {
    if store.data().limiter.exceeded {
        return Stop::MemoryLimit {
            limit: limits.memory.0,
        };
    }
    if let Some(capture) = captures.iter().find(|c| c.overflowed()) {
        return Stop::OutputTooLarge {
            what: OutputKind::Stream(capture.stream()),
            limit: capture.limit() as u64,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Stop::OutOfFuel { limit: limits.fuel },
        Some(Trap::Interrupt) => Stop::TimedOut {
            limit: limits.timeout,
        },
        Some(Trap::StackOverflow) => Stop::StackOverflow,
        Some(trap) => Stop::Trap {
            message: trap.to_string(),
        },
        // wasmtime's own message when lifting a result would copy more than the host-call budget.
        None if error
            .to_string()
            .contains("fuel allocated for hostcalls has been exhausted") =>
        {
            Stop::OutputTooLarge {
                what: OutputKind::Result,
                limit: limits.max_output.0,
            }
        }
        None => Stop::Trap {
            message: format!("{error:#}"),
        },
    }
}

/// Maps the function's return value to an outcome.
fn shape(shape: &ResultShape, result: Option<Val>) -> Outcome {
    match (shape, result) {
        (ResultShape::Fallible, Some(Val::Result(Ok(v)))) => Outcome::Ok {
            value: v.as_deref().map_or(Value::Null, convert::to_json),
        },
        (ResultShape::Fallible, Some(Val::Result(Err(e)))) => Outcome::ToolError {
            error: e.as_deref().map_or(Value::Null, convert::to_json),
        },
        (_, Some(v)) => Outcome::Ok {
            value: convert::to_json(&v),
        },
        (_, None) => Outcome::Ok { value: Value::Null },
    }
}

/// Replaces a result larger than `max` bytes of JSON with an output-too-large stop.
fn cap_output(outcome: Outcome, max: usize) -> (Outcome, usize) {
    let value = match &outcome {
        Outcome::Ok { value } => value,
        Outcome::ToolError { error } => error,
        Outcome::Stopped { .. } => return (outcome, 0),
    };
    let size = usize::try_from(convert::json_size(value)).unwrap_or(usize::MAX);
    if size > max {
        return (
            Outcome::Stopped {
                stop: Stop::OutputTooLarge {
                    what: OutputKind::Result,
                    limit: max as u64,
                },
            },
            size,
        );
    }
    (outcome, size)
}
