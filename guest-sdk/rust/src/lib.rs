//! Write [Harness](https://github.com/harness) tools in Rust.
//!
//! A tool is a WebAssembly component whose exported functions an agent can call. With this
//! crate a tool is a module of plain typed functions: its WIT world (in `wit/`) declares the
//! functions, their doc comments (what the model reads) and the host interfaces it imports;
//! `#[harness_guest::tool]` generates the bindings and exports the module's functions.
//!
//! ```wit
//! // wit/world.wit
//! package example:greet@0.1.0;
//!
//! world greet {
//!   import harness:tool/log@0.1.0;
//!   import harness:tool/caller@0.1.0;
//!   import harness:tool/kv@0.1.0;
//!
//!   /// Greet `name`, and count how often the caller has greeted anyone.
//!   export greet: func(name: string) -> result<string, string>;
//! }
//! ```
//!
//! ```no_run
//! # // The crate's own copy of the world above lives in `doc/greet`.
//! #[harness_guest::tool(wit = "doc/greet")]
//! mod greet {
//!     use harness_guest::{caller, kv, log};
//!
//!     /// WIT `result<string, string>` is `Result<String, String>`; SDK errors convert with `?`.
//!     pub fn greet(name: String) -> Result<String, String> {
//!         let who = caller::current();
//!         let key = format!("greetings/{}", who.principal);
//!         let count = kv::get_json::<u64>(&key)?.unwrap_or(0) + 1;
//!         kv::set_json(&key, &count)?;
//!         log::info(format!("{} greeted {name}", who.principal));
//!         Ok(format!("Hello, {name}! ({count} greetings from {})", who.principal))
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Build it (`crate-type = ["cdylib"]`) with `cargo build --target wasm32-wasip2 --release`,
//! or with `harness build`, which also prints the whitelist entry that pins the component.
//!
//! The helpers map the host's interfaces: [`log`] (audit-trail lines), [`caller`] (who
//! asked), [`kv`] (private durable storage), [`http`] (outgoing requests, checked against the
//! tool's grant) and [`fs`] (granted directories). Their failures are one [`Error`] type.

pub mod caller;
mod error;
pub mod fs;
pub mod http;
pub mod kv;
pub mod log;

pub use error::Error;
pub use harness_guest_macros::tool;
/// WASI 0.2 bindings (the `wasip2` crate), for interfaces the helpers do not cover.
pub use wasip2 as wasi;

/// Raw bindings of the `harness:tool` interfaces; the helper modules wrap them.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "harness:tool/imports",
    });
}

/// What the `tool` attribute's expansion refers to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}
