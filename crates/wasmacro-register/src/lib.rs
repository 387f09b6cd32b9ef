//! Declaration recording for the component build.
//!
//! rustc rejects `#[proc_macro…]` outside proc-macro crates, and some crates
//! generate those attributes with `macro_rules!` or `cfg_attr`, so their
//! declarations only exist after expansion. The build renames each attribute
//! to its `wasm_macro…` twin (same length: no position in the file moves);
//! rustc then expands it here, where the function's name and the macro's
//! name are known, and each declaration is written to `$WASMACRO_DECLS_DIR`.
//! The generated wrapper's [`export_table!`] turns the recorded declarations
//! into the component's macro table.
//!
//! It must never change the function it is applied to: the item is returned
//! token for token, so the wasm code is the code the author wrote.

use proc_macro::{Delimiter, TokenStream, TokenTree};
use std::path::PathBuf;

const DIR_ENV: &str = "WASMACRO_DECLS_DIR";

/// `#[proc_macro_derive(Name, attributes(a, b))]`, renamed.
#[proc_macro_attribute]
pub fn wasm_macro_derive(args: TokenStream, item: TokenStream) -> TokenStream {
    record(&item, "proc_macro_derive", || derive_args(args))
}

/// `#[proc_macro_attribute]`, renamed.
#[proc_macro_attribute]
pub fn wasm_macro_attribute(args: TokenStream, item: TokenStream) -> TokenStream {
    record(&item, "proc_macro_attribute", || {
        no_args(args, "proc_macro_attribute").map(|()| ("attribute", None, Vec::new()))
    })
}

/// `#[proc_macro]`, renamed.
#[proc_macro_attribute]
pub fn wasm_macro(args: TokenStream, item: TokenStream) -> TokenStream {
    record(&item, "proc_macro", || {
        no_args(args, "proc_macro").map(|()| ("function", None, Vec::new()))
    })
}

/// (kind, derive name, helper attributes)
type Declared = (&'static str, Option<String>, Vec<String>);

fn record(
    item: &TokenStream,
    attribute: &str,
    parse: impl FnOnce() -> Result<Declared, String>,
) -> TokenStream {
    let result = function_name(item)
        .ok_or_else(|| format!("`#[{attribute}]` must be on a function"))
        .and_then(|function| {
            let (kind, name, helpers) = parse()?;
            let name = name.unwrap_or_else(|| function.clone());
            let dir = std::env::var_os(DIR_ENV)
                .map(PathBuf::from)
                .ok_or_else(|| {
                    format!("{DIR_ENV} is not set: this crate only works inside `wasmacro build`")
                })?;
            std::fs::create_dir_all(&dir)
                .and_then(|()| {
                    std::fs::write(
                        dir.join(&function),
                        format!("{kind}\t{name}\t{function}\t{}\n", helpers.join(",")),
                    )
                })
                .map_err(|e| format!("cannot record `{function}` in {}: {e}", dir.display()))
        });
    match result {
        Ok(()) => item.clone(),
        Err(message) => {
            let mut out = item.clone();
            out.extend(compile_error(&message));
            out
        }
    }
}

fn compile_error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?});")
        .parse()
        .unwrap_or_default()
}

/// The name after `fn` at the item's top level.
fn function_name(item: &TokenStream) -> Option<String> {
    let mut tokens = item.clone().into_iter();
    while let Some(token) = tokens.next() {
        if matches!(&token, TokenTree::Ident(i) if i.to_string() == "fn") {
            return match tokens.next() {
                Some(TokenTree::Ident(name)) => Some(name.to_string()),
                _ => None,
            };
        }
    }
    None
}

fn no_args(args: TokenStream, attribute: &str) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!("`#[{attribute}]` takes no arguments"))
    }
}

/// `Name` or `Name, attributes(a, b)`, with an optional trailing comma.
fn derive_args(args: TokenStream) -> Result<Declared, String> {
    let malformed = |why: &str| format!("malformed `#[proc_macro_derive]`: {why}");
    let tokens: Vec<TokenTree> = args.into_iter().collect();
    let name = match tokens.first() {
        Some(TokenTree::Ident(name)) => name.to_string(),
        _ => return Err(malformed("expected the derive's name")),
    };
    let mut helpers = Vec::new();
    match &tokens[1..] {
        [] => {}
        [TokenTree::Punct(p)] if p.as_char() == ',' => {}
        [
            TokenTree::Punct(comma),
            TokenTree::Ident(kw),
            TokenTree::Group(group),
            rest @ ..,
        ] if comma.as_char() == ','
            && kw.to_string() == "attributes"
            && group.delimiter() == Delimiter::Parenthesis
            && matches!(rest, [] | [TokenTree::Punct(_)]) =>
        {
            for token in group.stream() {
                match token {
                    TokenTree::Ident(helper) => helpers.push(helper.to_string()),
                    TokenTree::Punct(p) if p.as_char() == ',' => {}
                    _ => return Err(malformed("helper attributes must be identifiers")),
                }
            }
        }
        _ => return Err(malformed("expected `Name` or `Name, attributes(…)`")),
    }
    Ok(("derive", Some(name), helpers))
}

/// The wrapper's macro table: every declaration recorded while the macro
/// crate (`macro_crate`) was compiled, sorted by function name.
#[proc_macro]
pub fn export_table(_input: TokenStream) -> TokenStream {
    match table() {
        Ok(tokens) => tokens,
        Err(message) => compile_error(&message),
    }
}

fn table() -> Result<TokenStream, String> {
    let dir = std::env::var_os(DIR_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{DIR_ENV} is not set"))?;
    let mut entries: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("no declarations were recorded in {}: {e}", dir.display()))?
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .collect();
    entries.sort();
    let mut table = String::from("::wasmacro_guest_glue::export_macros!(&[");
    for entry in &entries {
        let fields: Vec<&str> = entry.trim_end_matches('\n').split('\t').collect();
        let [kind, name, function, helpers] = fields[..] else {
            return Err(format!("malformed declaration record {entry:?}"));
        };
        let expander = match kind {
            "derive" => "Derive",
            "attribute" => "Attribute",
            "function" => "Function",
            other => return Err(format!("unknown macro kind {other:?}")),
        };
        let helpers: Vec<&str> = helpers.split(',').filter(|h| !h.is_empty()).collect();
        table.push_str(&format!(
            "::wasmacro_guest_glue::Macro {{ name: {name:?}, helper_attributes: &{helpers:?}, \
             expander: ::wasmacro_guest_glue::Expander::{expander}(::macro_crate::{function}) }},"
        ));
    }
    table.push_str("]);");
    table
        .parse()
        .map_err(|e| format!("generated an invalid table: {e:?}"))
}
