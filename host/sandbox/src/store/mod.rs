//! The data of one call's store: the state of each capability (reached through its view, the
//! way wasmtime-wasi's `WasiView` works) and the limiter that caps its memory. The registry
//! pre-instantiates tools for it and the boundary fills it for each call.

mod limits;

pub(crate) use limits::CallLimiter;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::caller::{CallContext, CallerView};
use crate::capabilities::denials::{DenialLog, RecordedView};
use crate::capabilities::http::HttpHooks;
use crate::capabilities::kv::{KvCtx, KvView};
use crate::capabilities::log::{LogBuffer, LogView};

/// The data of one call's store: each capability's state, the memory limiter, what the tool
/// logged.
pub(crate) struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) denials: DenialLog,
    pub(crate) limiter: CallLimiter,
    pub(crate) log: LogBuffer,
    pub(crate) caller: CallContext,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_hooks: HttpHooks,
    pub(crate) kv: KvCtx,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl RecordedView for CallState {
    fn recorded(&mut self) -> (WasiCtxView<'_>, &DenialLog) {
        let wasi = WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        };
        (wasi, &self.denials)
    }
}

impl LogView for CallState {
    fn log(&mut self) -> &mut LogBuffer {
        &mut self.log
    }
}

impl CallerView for CallState {
    fn caller(&mut self) -> &mut CallContext {
        &mut self.caller
    }
}

impl KvView for CallState {
    fn kv(&mut self) -> &mut KvCtx {
        &mut self.kv
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}
