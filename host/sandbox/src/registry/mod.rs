//! Loading whitelisted tools: digest check, component check, import check, compile (through the
//! cache), discovery of functions, and pre-instantiation.
//!
//! Loading is all or nothing: the first tool that fails stops the load with an error that names
//! the whitelist, the tool and the problem.

pub mod cache;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker};
use wit_parser::{InterfaceId, Resolve, Type, TypeDefKind, WorldItem};

use crate::capabilities::kv::{KvStore, Namespace};
use crate::capabilities::{self, Capability};
use crate::contract::{self, ContractError, ToolFunction};
use crate::digest::Sha256Digest;
use crate::engine::HostEngine;
use crate::oci::OciError;
use crate::policy::{Policy, PolicyError, ToolPolicy};
use crate::signing::{SignatureError, Verdict};
use crate::store::CallState;
pub use cache::{CacheError, CacheOutcome, CompileCache};

/// A tool ready to be called.
pub struct LoadedTool {
    /// Its whitelist entry.
    pub policy: ToolPolicy,
    /// The digest of the component that was loaded (equal to the pinned one).
    pub digest: Sha256Digest,
    /// The name of the component's WIT world.
    pub world: String,
    /// The first line of the world's doc comment: what the tool is, in a phrase.
    pub summary: Option<String>,
    /// Its callable functions, in WIT order.
    pub functions: Vec<ToolFunction>,
    /// The interfaces it imports.
    pub imports: Vec<String>,
    /// Who signed it, if anyone (its signature was checked before it was compiled).
    pub signature: Verdict,
    /// Whether it was compiled now or loaded from the cache.
    pub cache: CacheOutcome,
    /// Linear memories one instance uses (pool permits per call).
    pub memories: u32,
    pub(crate) pre: InstancePre<CallState>,
    /// What it may send over `wasi:http`, shared by its calls.
    pub(crate) egress: Arc<crate::capabilities::http::Egress>,
    /// Its key-value namespace, when granted one.
    pub(crate) kv: Option<Arc<Namespace>>,
    /// The export of each entry of `functions`, at the same index.
    pub(crate) exports: Vec<ComponentExportIndex>,
}

/// Why a whitelisted tool could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The whitelist itself is wrong.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The engine could not be created.
    #[error("cannot start the wasm engine: {0}")]
    Engine(String),
    /// The compile cache is unusable.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The key-value store (`host.data_dir`) is unusable.
    #[error(transparent)]
    Storage(#[from] harness_db::OpenError),
    /// The component file could not be read.
    #[error("{policy}: tools.{tool}.component: cannot read {component}: {source}")]
    Read {
        policy: PathBuf,
        tool: String,
        component: PathBuf,
        source: std::io::Error,
    },
    /// The file is not the one the whitelist pins.
    #[error(
        "{policy}: tools.{tool}.sha256: {component} has sha256 {actual}, but the whitelist pins {expected}; the file changed — if that is intended, review it and update the digest"
    )]
    DigestMismatch {
        policy: PathBuf,
        tool: String,
        component: PathBuf,
        expected: String,
        actual: String,
    },
    /// The component could not be pulled from its registry.
    #[error("{policy}: tools.{tool}.component: {source}")]
    Fetch {
        policy: PathBuf,
        tool: String,
        source: Box<OciError>,
    },
    /// The signature is missing, unknown, or covers something else.
    #[error("{policy}: tools.{tool}: {source}")]
    Signature {
        policy: PathBuf,
        tool: String,
        source: Box<SignatureError>,
    },
    /// The file is not a component.
    #[error("{policy}: tools.{tool}.component: {component} {problem}")]
    NotAComponent {
        policy: PathBuf,
        tool: String,
        component: PathBuf,
        problem: NotAComponent,
    },
    /// The component imports interfaces the host does not link.
    #[error(
        "{policy}: tools.{tool}: {component} imports what the host does not provide: {}; remove those imports from the tool's world",
        imports.join(", ")
    )]
    UnsupportedImports {
        policy: PathBuf,
        tool: String,
        component: PathBuf,
        imports: Vec<String>,
    },
    /// The whitelist grants something the component does not import.
    #[error(
        "{policy}: tools.{tool}.{key}: granted, but {component} does not import that capability; remove the grant"
    )]
    OverGranted {
        policy: PathBuf,
        tool: String,
        component: PathBuf,
        key: &'static str,
    },
    /// A `strict` tool imports a capability it is not granted.
    #[error(
        "{policy}: tools.{tool}: strict, and {component} imports what it is not granted: {}; grant it or set `strict = false` to deny each use at run time",
        imports.join(", ")
    )]
    StrictUngranted {
        policy: PathBuf,
        tool: String,
        component: PathBuf,
        imports: Vec<String>,
    },
    /// The component's exports cannot be offered to a model.
    #[error("{policy}: tools.{tool}: {component}: {source}")]
    Contract {
        policy: PathBuf,
        tool: String,
        component: PathBuf,
        source: Box<ContractError>,
    },
    /// Compilation or linking failed.
    #[error("{policy}: tools.{tool}: {component}: {message}")]
    Compile {
        policy: PathBuf,
        tool: String,
        component: PathBuf,
        message: String,
    },
}

/// What is wrong with a file that should be a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAComponent {
    /// Not WebAssembly at all.
    NotWasm,
    /// A core wasm module, not a component.
    CoreModule,
}

impl std::fmt::Display for NotAComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotAComponent::NotWasm => "is not a WebAssembly file",
            NotAComponent::CoreModule => {
                "is a core wasm module, not a component; turn it into one with `wasm-tools component new` (and the WASI adapter) or build for wasm32-wasip2"
            }
        })
    }
}

/// Tells a component from a core module or anything else by the binary header.
pub fn sniff(bytes: &[u8]) -> Result<(), NotAComponent> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(NotAComponent::CoreModule),
        _ => Err(NotAComponent::NotWasm),
    }
}

/// Something worth telling a person while tools load (compiling a big component takes seconds).
#[derive(Debug, Clone)]
pub enum LoadEvent {
    /// Compilation of `tool` (of `bytes` bytes) is starting.
    Compiling { tool: String, bytes: usize },
    /// `tool` is ready.
    Loaded {
        tool: String,
        cache: CacheOutcome,
        elapsed: Duration,
    },
}

/// All loaded tools, by name and by model-facing function name.
pub struct Registry {
    pub(crate) tools: BTreeMap<String, Arc<LoadedTool>>,
    pub(crate) by_qualified: HashMap<String, (Arc<LoadedTool>, usize)>,
}

impl Registry {
    /// Loads every tool of `policy`, stopping at the first failure.
    pub fn load(
        policy: &Policy,
        engine: &HostEngine,
        linker: &Linker<CallState>,
        progress: &mut dyn FnMut(LoadEvent),
    ) -> Result<Self, LoadError> {
        let cache = CompileCache::open(policy.host().cache_dir(), &engine.engine)?;
        let mut tools = BTreeMap::new();
        let mut by_qualified = HashMap::new();
        let mut kv_store: Option<Arc<KvStore>> = None;
        for tool_policy in policy.tools().values() {
            let kv = match tool_policy.grants.kv {
                Some(grant) => {
                    let store = match &kv_store {
                        Some(store) => store.clone(),
                        None => kv_store
                            .insert(Arc::new(KvStore::open(
                                &policy.host().database("kv.sqlite3"),
                            )?))
                            .clone(),
                    };
                    Some(Arc::new(Namespace::new(store, &tool_policy.name, grant)))
                }
                None => None,
            };
            let tool = Arc::new(load_tool(
                policy,
                tool_policy,
                kv,
                engine,
                linker,
                &cache,
                progress,
            )?);
            for (i, f) in tool.functions.iter().enumerate() {
                by_qualified.insert(f.qualified_name.clone(), (tool.clone(), i));
            }
            tools.insert(tool_policy.name.clone(), tool);
        }
        Ok(Self {
            tools,
            by_qualified,
        })
    }
}

fn load_tool(
    whitelist: &Policy,
    tool: &ToolPolicy,
    kv: Option<Arc<Namespace>>,
    engine: &HostEngine,
    linker: &Linker<CallState>,
    cache: &CompileCache,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<LoadedTool, LoadError> {
    let started = Instant::now();
    let policy = whitelist.path().to_owned();
    let name = tool.name.clone();
    let component_path = tool.component.clone();
    let bytes = component_bytes(whitelist, tool)?;
    let signature = check_signature(whitelist, tool)?;
    let digest = tool.sha256;
    sniff(&bytes).map_err(|problem| LoadError::NotAComponent {
        policy: policy.clone(),
        tool: name.clone(),
        component: component_path.clone(),
        problem,
    })?;
    let contract_error = |source: ContractError| LoadError::Contract {
        policy: policy.clone(),
        tool: name.clone(),
        component: component_path.clone(),
        source: Box::new(source),
    };
    let decoded = contract::decode_world(&bytes).map_err(contract_error)?;
    let (world, summary) = {
        let world = &decoded.resolve.worlds[decoded.world];
        let summary = world
            .docs
            .contents
            .as_deref()
            .and_then(|docs| docs.lines().next())
            .map(|line| line.trim().to_owned());
        (world.name.clone(), summary)
    };
    let classified = imports(&decoded);
    let refused = capabilities::unlinked_imports(&classified);
    let imports: Vec<String> = classified.into_iter().map(|(name, _)| name).collect();
    if !refused.is_empty() {
        return Err(LoadError::UnsupportedImports {
            policy,
            tool: name,
            component: component_path,
            imports: refused,
        });
    }
    let grants = capabilities::match_grants(&tool.grants, imports.iter().map(String::as_str));
    if let Some(over) = grants.iter().find(|m| m.is_over_grant()) {
        return Err(LoadError::OverGranted {
            policy,
            tool: name,
            component: component_path,
            key: over.key.key(),
        });
    }
    let ungranted: Vec<String> = grants
        .iter()
        .filter(|m| m.is_ungranted())
        .flat_map(|m| {
            let capability = m.key.capability();
            m.imports.iter().map(move |i| format!("{i} ({capability})"))
        })
        .collect();
    if tool.strict && !ungranted.is_empty() {
        return Err(LoadError::StrictUngranted {
            policy,
            tool: name,
            component: component_path,
            imports: ungranted,
        });
    }
    let functions = contract::discover(&name, &decoded).map_err(contract_error)?;

    let compile_error = |e: wasmtime::Error| LoadError::Compile {
        policy: policy.clone(),
        tool: name.clone(),
        component: component_path.clone(),
        message: format!("{e:#}"),
    };
    let (component, cache_outcome) = cache
        .load_or_compile(&engine.engine, &digest, || {
            progress(LoadEvent::Compiling {
                tool: name.clone(),
                bytes: bytes.len(),
            });
            engine.engine.precompile_component(&bytes)
        })
        .map_err(compile_error)?;
    let memories = component
        .resources_required()
        .map_or(1, |r| r.num_memories)
        .max(1);
    if memories > engine.total_memories {
        return Err(compile_error(wasmtime::format_err!(
            "needs {memories} linear memories per instance, more than the pool's {}; raise host.max_concurrency",
            engine.total_memories
        )));
    }
    let pre = linker.instantiate_pre(&component).map_err(compile_error)?;
    let exports = functions
        .iter()
        .map(|def| {
            resolve_export(&component, def).ok_or_else(|| {
                compile_error(wasmtime::format_err!(
                    "function `{}` is in the WIT but not exported by the component",
                    def.name
                ))
            })
        })
        .collect::<Result<_, LoadError>>()?;
    progress(LoadEvent::Loaded {
        tool: name,
        cache: cache_outcome,
        elapsed: started.elapsed(),
    });
    Ok(LoadedTool {
        kv,
        egress: crate::capabilities::http::Egress::new(&tool.grants),
        policy: tool.clone(),
        digest,
        world,
        summary,
        functions,
        imports,
        signature,
        cache: cache_outcome,
        memories,
        pre,
        exports,
    })
}

/// The component of `tool`, pulled into the cache first when it comes from a registry (with the
/// signature attached to it), and checked against its pin.
pub fn component_bytes(whitelist: &Policy, tool: &ToolPolicy) -> Result<Vec<u8>, LoadError> {
    let policy = whitelist.path().to_owned();
    if let Some(source) = &tool.registry {
        let missing_component = !tool.component.is_file();
        let signature = tool
            .signing
            .from_registry
            .then_some(tool.signing.file.as_path());
        let missing_signature = tool.signing.required && signature.is_some_and(|f| !f.exists());
        if missing_component || missing_signature {
            let component = missing_component.then_some(tool.component.as_path());
            crate::oci::fetch(source, &tool.sha256, component, signature).map_err(|source| {
                LoadError::Fetch {
                    policy: policy.clone(),
                    tool: tool.name.clone(),
                    source: Box::new(source),
                }
            })?;
        }
    }
    let bytes = std::fs::read(&tool.component).map_err(|source| LoadError::Read {
        policy: policy.clone(),
        tool: tool.name.clone(),
        component: tool.component.clone(),
        source,
    })?;
    let digest = Sha256Digest::of(&bytes);
    if digest != tool.sha256 {
        return Err(LoadError::DigestMismatch {
            policy,
            tool: tool.name.clone(),
            component: tool.component.clone(),
            expected: tool.sha256.to_string(),
            actual: digest.to_string(),
        });
    }
    Ok(bytes)
}

/// Checks the signature of `tool` against the whitelist's trust: who signed it, or why it is
/// refused (missing while required, unknown key, altered, or over another digest or entry). A
/// registry tool whose cached signature fails is checked once more against the newest signature
/// attached in the registry (a reviewer may have signed a changed entry since it was cached).
pub fn check_signature(whitelist: &Policy, tool: &ToolPolicy) -> Result<Verdict, LoadError> {
    let checked = verify_signature(whitelist, tool);
    if let (Err(_), Some(source)) = (&checked, &tool.registry)
        && tool.signing.from_registry
        && crate::oci::fetch(source, &tool.sha256, None, Some(&tool.signing.file)).is_ok()
    {
        return verify_signature(whitelist, tool);
    }
    checked
}

fn verify_signature(whitelist: &Policy, tool: &ToolPolicy) -> Result<Verdict, LoadError> {
    let signature_error = |source| LoadError::Signature {
        policy: whitelist.path().to_owned(),
        tool: tool.name.clone(),
        source: Box::new(source),
    };
    let file = &tool.signing.file;
    let signature = crate::signing::SignatureFile::read(file).map_err(signature_error)?;
    if signature.is_none() && tool.signing.required {
        return Err(signature_error(SignatureError::Missing {
            tool: tool.name.clone(),
            file: file.clone(),
        }));
    }
    crate::signing::verify_file(
        &tool.signing.statement,
        signature.as_ref(),
        whitelist.trust(),
        file,
    )
    .map_err(signature_error)
}

fn resolve_export(component: &Component, def: &ToolFunction) -> Option<ComponentExportIndex> {
    let parent = match &def.export.interface {
        Some(iface) => Some(component.get_export_index(None, iface)?),
        None => None,
    };
    component.get_export_index(parent.as_ref(), &def.export.function)
}

/// Everything a component's world imports (`wasi:cli/stdout@0.2.6`, ...), each with its
/// capability. An interface that carries types only (what a world's `use types.{item}` imports)
/// needs nothing from the host: it is [`Capability::TypesOnly`].
pub(crate) fn imports(decoded: &contract::DecodedWorld) -> Vec<(String, Capability)> {
    let resolve = &decoded.resolve;
    resolve.worlds[decoded.world]
        .imports
        .iter()
        .filter(|(_, item)| !matches!(item, WorldItem::Type { .. }))
        .map(|(key, item)| {
            let name = resolve.name_world_key(key);
            let capability = match item {
                WorldItem::Interface { id, .. } if carries_types_only(resolve, *id) => {
                    Capability::TypesOnly
                }
                _ => Capability::of_import(&name),
            };
            (name, capability)
        })
        .collect()
}

/// Whether interface `id` has no functions and no resources (its own or used from elsewhere).
fn carries_types_only(resolve: &Resolve, id: InterfaceId) -> bool {
    let interface = &resolve.interfaces[id];
    interface.functions.is_empty()
        && interface.types.values().all(|&ty| {
            let mut ty = ty;
            loop {
                match &resolve.types[ty].kind {
                    TypeDefKind::Resource => return false,
                    TypeDefKind::Type(Type::Id(aliased)) => ty = *aliased,
                    _ => return true,
                }
            }
        })
}
