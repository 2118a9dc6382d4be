//! `wasi:sockets`: denied unless granted. A grant names an exact address and its uses; socket
//! creation is refused when no grant covers the protocol, name lookups are always refused (grants
//! are addresses), and every refusal is a [`Denial`](super::denials::Denial).

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, Error, ErrorCode, IpAddress, IpAddressFamily,
};
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{DynPollable, Network, SocketError, SocketResult, TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

use super::Capability;
use super::denials::{DenialLog, RecordedView};
use crate::policy::{SocketGrant, SocketUse};

/// Configures `wasi` so the tool reaches exactly the addresses in `grants`.
pub(crate) fn grant(wasi: &mut WasiCtxBuilder, grants: &[SocketGrant], denials: &DenialLog) {
    let has = |u: SocketUse| grants.iter().any(|g| g.uses.contains(&u));
    wasi.allow_tcp(has(SocketUse::Connect) || has(SocketUse::Listen))
        .allow_udp(has(SocketUse::Udp))
        .allow_ip_name_lookup(false);
    if grants.is_empty() {
        return;
    }
    let grants: Arc<[SocketGrant]> = grants.into();
    let denials = denials.clone();
    wasi.socket_addr_check(move |addr, usage| {
        let allowed = allows(&grants, addr, usage);
        if !allowed {
            denials.deny(Capability::Sockets, format!("{} {addr}", describe(usage)));
        }
        Box::pin(std::future::ready(allowed))
    });
}

/// Links socket creation and name lookup over wasmtime-wasi's own, so that each refusal (no grant
/// for the protocol; lookups are never granted) is recorded as a denial. Replaces what
/// `wasmtime_wasi::p2::add_to_linker_async` linked for these interfaces.
pub(crate) fn add_to_linker<T: RecordedView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    tcp_create_socket::add_to_linker::<T, Recorded>(linker, recorded::<T>)?;
    udp_create_socket::add_to_linker::<T, Recorded>(linker, recorded::<T>)?;
    ip_name_lookup::add_to_linker::<T, Recorded>(linker, recorded::<T>)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// wasmtime-wasi's sockets view plus the call's denial log.
pub(crate) struct RecordedSockets<'a> {
    inner: WasiSocketsCtxView<'a>,
    denials: &'a DenialLog,
}

struct Recorded;

impl HasData for Recorded {
    type Data<'a> = RecordedSockets<'a>;
}

fn recorded<T: RecordedView>(state: &mut T) -> RecordedSockets<'_> {
    let (wasi, denials) = state.recorded();
    RecordedSockets {
        inner: WasiSocketsCtxView {
            ctx: wasi.ctx.sockets(),
            table: wasi.table,
        },
        denials,
    }
}

impl RecordedSockets<'_> {
    /// Passes `result` on, recording an access-denied error as a denial of `target`.
    fn record<T>(
        &self,
        result: SocketResult<T>,
        target: impl FnOnce() -> String,
    ) -> SocketResult<T> {
        self.denials.record(
            result,
            Capability::Sockets,
            |code| matches!(code, ErrorCode::AccessDenied),
            |_| target(),
        )
    }
}

impl network::Host for RecordedSockets<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        self.inner.convert_error_code(error)
    }

    fn network_error_code(&mut self, err: Resource<Error>) -> wasmtime::Result<Option<ErrorCode>> {
        self.inner.network_error_code(err)
    }
}

impl network::HostNetwork for RecordedSockets<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.inner, this)
    }
}

impl tcp_create_socket::Host for RecordedSockets<'_> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        let result = self.inner.create_tcp_socket(address_family);
        self.record(result, || "create tcp socket".into())
    }
}

impl udp_create_socket::Host for RecordedSockets<'_> {
    async fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        let result = self.inner.create_udp_socket(address_family).await;
        self.record(result, || "create udp socket".into())
    }
}

impl ip_name_lookup::Host for RecordedSockets<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        let target = format!("resolve {name}");
        let result = self.inner.resolve_addresses(network, name);
        self.record(result, || target)
    }
}

impl HostResolveAddressStream for RecordedSockets<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        self.inner.resolve_next_address(stream)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.inner.subscribe(stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        HostResolveAddressStream::drop(&mut self.inner, stream)
    }
}

/// Whether `grants` allow `usage` of `addr`.
fn allows(grants: &[SocketGrant], addr: SocketAddr, usage: SocketAddrUse) -> bool {
    let exact = |u: SocketUse| grants.iter().any(|g| g.addr == addr && g.uses.contains(&u));
    let any = |u: SocketUse| grants.iter().any(|g| g.uses.contains(&u));
    // The OS picks the local address of an outgoing socket: wasmtime checks that implicit bind
    // with the wildcard address before it checks the remote address itself.
    let implicit_bind = addr.ip().is_unspecified() && addr.port() == 0;
    match usage {
        SocketAddrUse::TcpConnect => exact(SocketUse::Connect),
        SocketAddrUse::TcpBind => {
            (implicit_bind && any(SocketUse::Connect)) || exact(SocketUse::Listen)
        }
        SocketAddrUse::TcpListen => exact(SocketUse::Listen),
        SocketAddrUse::TcpAccept => any(SocketUse::Listen),
        SocketAddrUse::UdpBind => implicit_bind && any(SocketUse::Udp),
        SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => exact(SocketUse::Udp),
    }
}

fn describe(usage: SocketAddrUse) -> &'static str {
    match usage {
        SocketAddrUse::TcpBind => "tcp bind",
        SocketAddrUse::TcpListen => "tcp listen",
        SocketAddrUse::TcpAccept => "tcp accept from",
        SocketAddrUse::TcpConnect => "tcp connect",
        SocketAddrUse::UdpBind => "udp bind",
        SocketAddrUse::UdpSend => "udp send to",
        SocketAddrUse::UdpReceive => "udp receive from",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(addr: &str, uses: &[SocketUse]) -> SocketGrant {
        SocketGrant {
            addr: addr.parse().unwrap(),
            uses: uses.to_vec(),
        }
    }

    #[test]
    fn connect_grants_allow_that_address_only() {
        let grants = [grant("127.0.0.1:5432", &[SocketUse::Connect])];
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert!(allows(
            &grants,
            at("127.0.0.1:5432"),
            SocketAddrUse::TcpConnect
        ));
        assert!(allows(&grants, at("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(!allows(
            &grants,
            at("127.0.0.1:5433"),
            SocketAddrUse::TcpConnect
        ));
        assert!(!allows(
            &grants,
            at("10.0.0.1:5432"),
            SocketAddrUse::TcpConnect
        ));
        assert!(!allows(
            &grants,
            at("127.0.0.1:5432"),
            SocketAddrUse::TcpBind
        ));
        assert!(!allows(
            &grants,
            at("127.0.0.1:5432"),
            SocketAddrUse::TcpListen
        ));
        assert!(!allows(
            &grants,
            at("127.0.0.1:5432"),
            SocketAddrUse::UdpSend
        ));
        assert!(!allows(&grants, at("0.0.0.0:0"), SocketAddrUse::UdpBind));
    }

    #[test]
    fn listen_and_udp_grants() {
        let grants = [
            grant("127.0.0.1:8080", &[SocketUse::Listen]),
            grant("127.0.0.1:53", &[SocketUse::Udp]),
        ];
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert!(allows(
            &grants,
            at("127.0.0.1:8080"),
            SocketAddrUse::TcpBind
        ));
        assert!(allows(
            &grants,
            at("127.0.0.1:8080"),
            SocketAddrUse::TcpListen
        ));
        assert!(allows(
            &grants,
            at("127.0.0.1:40000"),
            SocketAddrUse::TcpAccept
        ));
        assert!(!allows(&grants, at("0.0.0.0:8080"), SocketAddrUse::TcpBind));
        assert!(!allows(
            &grants,
            at("127.0.0.1:8080"),
            SocketAddrUse::TcpConnect
        ));
        assert!(allows(&grants, at("0.0.0.0:0"), SocketAddrUse::UdpBind));
        assert!(allows(&grants, at("127.0.0.1:53"), SocketAddrUse::UdpSend));
        assert!(!allows(&grants, at("127.0.0.1:54"), SocketAddrUse::UdpSend));
    }
}
