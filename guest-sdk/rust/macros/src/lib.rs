//! The `#[harness_guest::tool]` attribute (re-exported by `harness-guest`; use it from there).
//!
//! It reads the tool's WIT world, generates its bindings with wit-bindgen (sharing the
//! `harness:tool` and WASI bindings of `harness-guest`, so SDK errors and types are the tool's
//! own), and exports the module's functions as the world's functions. A function the world
//! exports but the module lacks is a compile error that names it.

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, Item, ItemFn, ItemMod, LitStr, Token, Visibility};
use wit_bindgen_core::wit_parser::{Resolve, WorldId, WorldItem};

/// Turns an inline module of plain functions into a Harness tool: one `pub fn` per function
/// the tool's WIT world exports, with the world's types in scope.
///
/// Options: `world = "name"` (default: the only world of the tool's package),
/// `wit = "folder"` (default: `wit`, relative to the crate's `Cargo.toml`), and
/// `derive = [serde::Serialize, ...]` (extra derives on the world's generated types, e.g. to
/// store them as JSON).
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = syn::parse_macro_input!(attr as Options);
    let module = syn::parse_macro_input!(item as ItemMod);
    expand(options, module)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The attribute's arguments.
#[derive(Default)]
struct Options {
    world: Option<LitStr>,
    wit: Option<LitStr>,
    derives: Vec<syn::Path>,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            match key.to_string().as_str() {
                "world" => set_once(&mut options.world, &key, input.parse()?)?,
                "wit" => set_once(&mut options.wit, &key, input.parse()?)?,
                "derive" => {
                    let paths;
                    syn::bracketed!(paths in input);
                    options
                        .derives
                        .extend(paths.parse_terminated(syn::Path::parse_mod_style, Token![,])?);
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown option `{other}`: expected `world`, `wit` or `derive`"),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(options)
    }
}

fn set_once(slot: &mut Option<LitStr>, key: &Ident, value: LitStr) -> syn::Result<()> {
    match slot.replace(value) {
        Some(_) => Err(syn::Error::new(key.span(), format!("`{key}` given twice"))),
        None => Ok(()),
    }
}

/// The `harness:tool` package shipped with the SDK.
fn harness_wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../wit")
}

fn expand(options: Options, module: ItemMod) -> syn::Result<proc_macro2::TokenStream> {
    let Some((_, items)) = &module.content else {
        return Err(syn::Error::new_spanned(
            &module,
            "#[harness_guest::tool] needs an inline module: `mod my_tool { ... }`",
        ));
    };
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| syn::Error::new(Span::call_site(), "CARGO_MANIFEST_DIR is not set"))?;
    let wit_dir = Path::new(&manifest_dir).join(
        options
            .wit
            .as_ref()
            .map_or_else(|| "wit".to_string(), LitStr::value),
    );
    let error_span = options
        .wit
        .as_ref()
        .or(options.world.as_ref())
        .map_or_else(Span::call_site, LitStr::span);
    let world = World::resolve(
        &wit_dir,
        options.world.as_ref().map(LitStr::value).as_deref(),
    )
    .map_err(|e| syn::Error::new(error_span, format!("{e:#}")))?;

    let functions: Vec<&ItemFn> = items
        .iter()
        .filter_map(|item| match item {
            Item::Fn(f) if matches!(f.vis, Visibility::Public(_)) => Some(f),
            _ => None,
        })
        .collect();
    let mut forwards = Vec::new();
    for export in &world.exports {
        if clashes_with_libc(export) {
            return Err(syn::Error::new(
                error_span,
                format!(
                    "world `{}` exports `{export}`, which is also a C library function linked \
                     into every tool, so the component cannot link: rename it in the WIT \
                     (e.g. `{export}-item`; names with a hyphen never clash)",
                    world.name
                ),
            ));
        }
        let rust_name = wit_bindgen_rust::to_rust_ident(export);
        let Some(function) = functions.iter().find(|f| f.sig.ident == rust_name) else {
            return Err(syn::Error::new_spanned(
                &module.ident,
                format!(
                    "world `{}` exports `{export}`, so this module needs `pub fn {rust_name}(...)` with the signature its WIT gives",
                    world.name
                ),
            ));
        };
        forwards.push(forward(function)?);
    }

    let paths = [harness_wit_dir(), wit_dir]
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>();
    let qualified = &world.qualified_name;
    let derives = &options.derives;
    let with_keys = world.shared.iter().map(|(key, _)| key);
    let with_paths = world
        .shared
        .iter()
        .map(|(_, path)| syn::parse_str::<syn::Path>(path))
        .collect::<syn::Result<Vec<_>>>()?;
    let ItemMod {
        attrs,
        vis,
        ident,
        unsafety,
        ..
    } = &module;
    Ok(quote! {
        #(#attrs)*
        #vis #unsafety mod #ident {
            ::harness_guest::__private::wit_bindgen::generate!({
                path: [#(#paths),*],
                world: #qualified,
                with: { #(#with_keys: #with_paths,)* },
                runtime_path: "::harness_guest::__private::wit_bindgen::rt",
                bitflags_path: "::harness_guest::__private::wit_bindgen::bitflags",
                additional_derives: [#(#derives),*],
            });

            #(#items)*

            /// The component's exports: each forwards to the module's function of that name.
            struct __HarnessTool;

            impl self::Guest for __HarnessTool {
                #(#forwards)*
            }

            export!(__HarnessTool);
        }
    })
}

/// Whether a world-level export would be linked under a symbol wasi-libc already defines.
fn clashes_with_libc(export: &str) -> bool {
    include_str!("libc_names.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .any(|name| name == export)
}

/// `fn name(a: A, b: B) -> R { self::name(a, b) }`, with the user's signature.
fn forward(function: &ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let sig = &function.sig;
    if let Some(bad) = sig
        .asyncness
        .as_ref()
        .map(|a| a.span)
        .or(sig.generics.lt_token.map(|t| t.span))
    {
        return Err(syn::Error::new(
            bad,
            "tool functions are plain synchronous functions without generics",
        ));
    }
    let mut params = Vec::new();
    let mut args = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        let syn::FnArg::Typed(typed) = input else {
            return Err(syn::Error::new_spanned(
                input,
                "tool functions take no `self`",
            ));
        };
        let arg = format_ident!("arg{i}");
        let ty = &typed.ty;
        params.push(quote!(#arg: #ty));
        args.push(arg);
    }
    let name = &sig.ident;
    let output = &sig.output;
    Ok(quote! {
        fn #name(#(#params),*) #output {
            self::#name(#(#args),*)
        }
    })
}

/// What the macro needs from the tool's WIT world.
struct World {
    name: String,
    /// `package:name/world@version`, unambiguous among the pushed packages.
    qualified_name: String,
    /// The names of the functions the world exports.
    exports: Vec<String>,
    /// Imported interfaces whose bindings `harness-guest` already has: WIT name → Rust path.
    shared: Vec<(String, String)>,
}

impl World {
    fn resolve(wit_dir: &Path, world: Option<&str>) -> anyhow::Result<World> {
        use anyhow::Context as _;
        let mut resolve = Resolve::default();
        let harness = harness_wit_dir();
        resolve
            .push_path(&harness)
            .with_context(|| format!("reading the harness:tool WIT in {}", harness.display()))?;
        let (package, _) = resolve
            .push_path(wit_dir)
            .with_context(|| format!("reading the tool's WIT in {}", wit_dir.display()))?;
        let id = resolve
            .select_world(&[package], world)
            .with_context(|| format!("choosing the world in {}", wit_dir.display()))?;
        Ok(World::describe(&resolve, id))
    }

    fn describe(resolve: &Resolve, id: WorldId) -> World {
        let world = &resolve.worlds[id];
        let exports = world
            .exports
            .values()
            .filter_map(|item| match item {
                WorldItem::Function(f) => Some(f.name.clone()),
                _ => None,
            })
            .collect();
        let shared = world
            .imports
            .values()
            .filter_map(|item| match item {
                WorldItem::Interface { id, .. } => shared_binding(resolve, *id),
                _ => None,
            })
            .collect();
        World {
            name: world.name.clone(),
            qualified_name: resolve.id_of_name(
                world.package.expect("a parsed world has a package"),
                &world.name,
            ),
            exports,
            shared,
        }
    }
}

/// The `harness-guest` module holding bindings for an interface: `harness:tool/*` from the
/// SDK's own bindings, `wasi:*` from the `wasip2` crate it re-exports.
fn shared_binding(
    resolve: &Resolve,
    id: wit_bindgen_core::wit_parser::InterfaceId,
) -> Option<(String, String)> {
    let interface = &resolve.interfaces[id];
    let package = &resolve.packages[interface.package?].name;
    let module = wit_bindgen_rust::to_rust_ident(interface.name.as_ref()?);
    let package_module = wit_bindgen_rust::to_rust_ident(&package.name);
    let path = match package.namespace.as_str() {
        "harness" => format!("::harness_guest::bindings::harness::{package_module}::{module}"),
        "wasi" => format!("::harness_guest::wasi::{package_module}::{module}"),
        _ => return None,
    };
    Some((resolve.id_of(id)?, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_name_mistakes() {
        let options: Options =
            syn::parse_str(r#"world = "greet", derive = [serde::Serialize, Clone]"#).unwrap();
        assert_eq!(options.world.unwrap().value(), "greet");
        assert_eq!(options.derives.len(), 2);
        let unknown = syn::parse_str::<Options>(r#"wrold = "greet""#)
            .err()
            .unwrap();
        assert_eq!(
            unknown.to_string(),
            "unknown option `wrold`: expected `world`, `wit` or `derive`"
        );
        let twice = syn::parse_str::<Options>(r#"wit = "a", wit = "b""#)
            .err()
            .unwrap();
        assert_eq!(twice.to_string(), "`wit` given twice");
    }

    #[test]
    fn the_doc_world_shares_the_sdk_bindings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../doc/greet");
        let world = World::resolve(&dir, None).unwrap();
        assert_eq!(world.qualified_name, "example:greet/greet@0.1.0");
        assert_eq!(world.exports, ["greet"]);
        let shared: Vec<_> = world.shared.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            shared,
            [
                "harness:tool/log@0.1.0",
                "harness:tool/caller@0.1.0",
                "harness:tool/kv@0.1.0"
            ]
        );
        assert_eq!(
            world.shared[2].1,
            "::harness_guest::bindings::harness::tool::kv"
        );
    }

    #[test]
    fn libc_names_are_caught_and_hyphenated_names_never_are() {
        assert!(clashes_with_libc("open"));
        assert!(clashes_with_libc("read"));
        assert!(!clashes_with_libc("create"));
        assert!(!clashes_with_libc("open-ticket"));
    }
}
