//! The one wasmtime engine of a host: fuel, epoch deadlines, a bounded wasm stack and a pooling
//! allocator sized from the whitelist.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; deadlines are checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Largest wasm stack a call may use before it stops with a stack overflow.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Linear memories one call may hold; the pool reserves this many per concurrent call.
pub const MEMORIES_PER_CALL: u32 = 4;

/// Table elements one table may hold (the pool's slot size and each store's cap).
pub const MAX_TABLE_ELEMENTS: usize = 20_000;

/// A configured engine plus the back-pressure that keeps calls within its pool.
pub struct HostEngine {
    /// The wasmtime engine every tool is compiled for.
    pub engine: Engine,
    /// One permit per concurrent call (component instance and fiber stack in the pool).
    pub call_slots: Arc<Semaphore>,
    /// One permit per pooled linear memory; a call takes as many as its component declares.
    pub memory_slots: Arc<Semaphore>,
    /// Pooled linear memories in total.
    pub total_memories: u32,
}

impl HostEngine {
    /// Builds the engine for `max_concurrency` concurrent calls (1 to 4096, as the whitelist
    /// checks) whose largest memory cap is `max_memory` bytes, and starts the epoch ticker.
    pub fn new(max_concurrency: u32, max_memory: u64) -> wasmtime::Result<Self> {
        let total_memories = max_concurrency.saturating_mul(MEMORIES_PER_CALL);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(max_concurrency)
            .total_stacks(max_concurrency)
            .total_core_instances(max_concurrency.saturating_mul(32))
            .total_memories(total_memories)
            .total_tables(max_concurrency.saturating_mul(8))
            .max_memories_per_module(MEMORIES_PER_CALL)
            .max_tables_per_module(4)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        start_epoch_ticker(&engine)?;
        Ok(Self {
            engine,
            call_slots: Arc::new(Semaphore::new(max_concurrency as usize)),
            memory_slots: Arc::new(Semaphore::new(total_memories as usize)),
            total_memories,
        })
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a plain thread, so deadlines hold even when
/// every tokio worker is busy. The thread holds only a weak reference and ends with the engine.
fn start_epoch_ticker(engine: &Engine) -> wasmtime::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("harness-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| wasmtime::format_err!("cannot start the epoch thread: {e}"))?;
    Ok(())
}
