//! `wasi:sockets`: denied unless granted. A grant names an exact address and its uses; socket
//! creation is refused when no grant covers the protocol, name lookups are always refused (grants
//! are addresses), and every refused address is a [`Denial`](super::denials::Denial).

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use super::Capability;
use super::denials::DenialLog;
use crate::policy::{SocketGrant, SocketUse};

/// Configures `wasi` so the tool reaches exactly the addresses in `grants`.
pub fn grant(wasi: &mut WasiCtxBuilder, grants: &[SocketGrant], denials: &DenialLog) {
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
