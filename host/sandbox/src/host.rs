//! [`Host`]: the library's front door. Load a whitelist, list tools, call them.

use std::sync::Arc;

use serde_json::Value;

use crate::boundary::{self, CallReport};
use crate::capabilities::{self, caller::CallContext};
use crate::contract::ToolFunction;
use crate::convert::{self, ArgumentError};
use crate::digest::Sha256Digest;
use crate::engine::HostEngine;
use crate::policy::{Bytes, Policy};
use crate::record::CallRecord;
use crate::registry::{LoadError, LoadEvent, LoadedTool, Registry};

/// A running host: the engine, the loaded tools, and the call boundary in front of them.
///
/// Cheap to clone; clones share everything. Calls from many tasks run concurrently, up to
/// `host.max_concurrency`; further calls wait for a free slot instead of failing.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use harness_sandbox::{CallContext, Host, Policy};
///
/// let host = Host::load(Policy::load("harness.toml")?)?;
/// let report = host.call("calc.eval", r#"{"expression": "6 * 7"}"#, &CallContext::new("alice", "run-1")).await?;
/// println!("{:?}", report.outcome);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    engine: HostEngine,
    registry: Registry,
}

/// Why a call was refused before it ran. Every refusal is also an audit record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No whitelisted tool has that name.
    #[error("unknown tool `{name}`; whitelisted tools: {}", known.join(", "))]
    UnknownTool { name: String, known: Vec<String> },
    /// The tool has no such function.
    #[error("tool `{tool}` has no function `{function}`; it has: {}", known.join(", "))]
    UnknownFunction {
        tool: String,
        function: String,
        known: Vec<String>,
    },
    /// The arguments are not valid JSON, or too large.
    #[error("arguments of `{function}`: {message}")]
    BadJson { function: String, message: String },
    /// The arguments do not match the function's parameters.
    #[error("arguments of `{function}`: {source}")]
    InvalidArguments {
        function: String,
        source: ArgumentError,
    },
}

impl CallError {
    fn kind(&self) -> &'static str {
        match self {
            CallError::UnknownTool { .. } => "unknown_tool",
            CallError::UnknownFunction { .. } => "unknown_function",
            CallError::BadJson { .. } => "bad_json",
            CallError::InvalidArguments { .. } => "invalid_arguments",
        }
    }
}

impl Host {
    /// Loads and compiles every tool of `policy`.
    pub fn load(policy: Policy) -> Result<Self, LoadError> {
        Self::load_with_progress(policy, &mut |_| {})
    }

    /// Like [`Host::load`], reporting progress (compiling a large component takes seconds).
    pub fn load_with_progress(
        policy: Policy,
        progress: &mut dyn FnMut(LoadEvent),
    ) -> Result<Self, LoadError> {
        let max_memory = policy
            .tools()
            .values()
            .map(|t| t.limits.memory.0)
            .max()
            .unwrap_or(64 << 20);
        let engine = HostEngine::new(policy.host().max_concurrency(), max_memory)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let linker = capabilities::linker(&engine.engine)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let registry = Registry::load(&policy, &engine, &linker, progress)?;
        Ok(Self {
            inner: Arc::new(Inner { engine, registry }),
        })
    }

    /// The loaded tools, by name.
    pub fn tools(&self) -> impl Iterator<Item = &LoadedTool> {
        self.inner.registry.tools.values().map(|t| t.as_ref())
    }

    /// Finds a function by `tool.function` (`calc.eval`, `calc.ops.add`) or by its model-facing
    /// name (`calc__eval`).
    pub fn function(&self, name: &str) -> Result<(&LoadedTool, &ToolFunction), CallError> {
        let (tool, index) = self.lookup(name)?;
        Ok((tool, &tool.functions[index]))
    }

    fn lookup(&self, name: &str) -> Result<(&Arc<LoadedTool>, usize), CallError> {
        let registry = &self.inner.registry;
        if let Some((tool, index)) = registry.by_qualified.get(name) {
            return Ok((tool, *index));
        }
        let (tool_name, function) = name.split_once('.').unwrap_or((name, ""));
        let tool = registry
            .tools
            .get(tool_name)
            .ok_or_else(|| CallError::UnknownTool {
                name: tool_name.to_owned(),
                known: registry.tools.keys().cloned().collect(),
            })?;
        let index = tool
            .functions
            .iter()
            .position(|f| f.name == function)
            .ok_or_else(|| CallError::UnknownFunction {
                tool: tool_name.to_owned(),
                function: function.to_owned(),
                known: tool.functions.iter().map(|f| f.name.clone()).collect(),
            })?;
        Ok((tool, index))
    }

    /// Calls function `name` with JSON `arguments` (text) on behalf of `caller`.
    ///
    /// `Err` means the call was refused before it ran; every way a running tool can fail is an
    /// [`Outcome`](crate::Outcome) inside the report.
    pub async fn call(
        &self,
        name: &str,
        arguments: &str,
        caller: &CallContext,
    ) -> Result<CallReport, CallError> {
        let sized = Sized {
            bytes: arguments.len() as u64,
            sha256: Sha256Digest::of(arguments.as_bytes()),
        };
        let parsed = self.lookup(name).and_then(|(tool, index)| {
            let function = &tool.functions[index];
            check_size(function, tool.policy.limits.max_input, sized.bytes)?;
            serde_json::from_str::<Value>(arguments).map_err(|e| CallError::BadJson {
                function: function.name.clone(),
                message: format!("not valid JSON: {e}"),
            })
        });
        match parsed {
            Ok(value) => self.call_sized(name, &value, &sized, caller).await,
            Err(e) => {
                self.record(name, caller, &sized.sha256)
                    .refused(e.kind(), &e.to_string());
                Err(e)
            }
        }
    }

    /// Calls function `name` with `arguments` already parsed (what a model's tool call or an
    /// MCP request carries), on behalf of `caller`. The size limit applies to their JSON text,
    /// and the call record holds the SHA-256 of that text, both measured without writing it.
    pub async fn call_json(
        &self,
        name: &str,
        arguments: &Value,
        caller: &CallContext,
    ) -> Result<CallReport, CallError> {
        let (sha256, bytes) = Sha256Digest::of_json_sized(arguments);
        self.call_sized(name, arguments, &Sized { bytes, sha256 }, caller)
            .await
    }

    async fn call_sized(
        &self,
        name: &str,
        arguments: &Value,
        sized: &Sized,
        caller: &CallContext,
    ) -> Result<CallReport, CallError> {
        let mut record = self.record(name, caller, &sized.sha256);
        let (tool, index, params) = match self.prepare(name, arguments, sized.bytes) {
            Ok(ok) => ok,
            Err(e) => {
                record.refused(e.kind(), &e.to_string());
                return Err(e);
            }
        };
        record.tool = &tool.policy.name;
        record.function = &tool.functions[index].name;
        record.digest = Some(&tool.digest);

        let engine = &self.inner.engine;
        let _call_slot = engine
            .call_slots
            .acquire()
            .await
            .expect("the host never closes its semaphores");
        let _memory_slots = engine
            .memory_slots
            .acquire_many(tool.memories)
            .await
            .expect("the host never closes its semaphores");
        let report = boundary::run(tool, index, params, caller.clone()).await;
        record.ran(&report);
        Ok(report)
    }

    /// The record of a call to `name`, as asked.
    fn record<'a>(
        &self,
        name: &'a str,
        caller: &'a CallContext,
        args_sha256: &'a Sha256Digest,
    ) -> CallRecord<'a> {
        let (tool, function) = name.split_once('.').unwrap_or((name, ""));
        CallRecord {
            tool,
            function,
            digest: None,
            caller,
            args_sha256,
        }
    }

    fn prepare(
        &self,
        name: &str,
        arguments: &Value,
        bytes: u64,
    ) -> Result<(&Arc<LoadedTool>, usize, Vec<wasmtime::component::Val>), CallError> {
        let (tool, index) = self.lookup(name)?;
        let function = &tool.functions[index];
        check_size(function, tool.policy.limits.max_input, bytes)?;
        let params = convert::args_to_wit(
            &function.signature.resolve,
            &function.signature.params,
            arguments,
        )
        .map_err(|source| CallError::InvalidArguments {
            function: function.name.clone(),
            source,
        })?;
        Ok((tool, index, params))
    }
}

/// The size and digest of a call's arguments as JSON text.
struct Sized {
    bytes: u64,
    sha256: Sha256Digest,
}

/// Refuses arguments of `bytes` bytes when they are over `max_input`.
fn check_size(function: &ToolFunction, max_input: Bytes, bytes: u64) -> Result<(), CallError> {
    if bytes > max_input.0 {
        return Err(CallError::BadJson {
            function: function.name.clone(),
            message: format!("{bytes} bytes is more than the limit of {max_input}"),
        });
    }
    Ok(())
}
