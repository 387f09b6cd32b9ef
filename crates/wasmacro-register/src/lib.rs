//! Declaration recording for the component build.
//!
//! rustc rejects `#[proc_macro…]` outside proc-macro crates, and some crates
//! generate those attributes with `macro_rules!` or `cfg_attr`, so their
//! declarations only exist after expansion. The build renames each attribute
//! to its `wasm_macro…` twin (same length: no line of the file moves) and
//! makes it the item's first attribute; rustc then expands it here, where the
//! function's name and the macro's name are known, and each declaration is
//! written to `$WASMACRO_DECLS_DIR` ([`record`] is the format). The generated
//! wrapper's [`export_table!`] turns the recorded declarations into the
//! component's macro table.
//!
//! Attribute macros further down the item may look for the function's own
//! `#[proc_macro…]` attribute (proc-macro-error's `#[proc_macro_error]`
//! refuses a function without one): the twin puts the original attribute
//! back and adds [`macro@wasm_macro_strip`] as the item's last attribute, so they see
//! what they would see natively, and rustc never sees it after expansion.
//!
//! It must never change the function it is applied to: once expanded, the
//! item is the one the author wrote, token for token, less the attribute.

use proc_macro::{Delimiter, TokenStream, TokenTree};
use std::path::PathBuf;

mod record;
use record::{Kind, Record};

const DIR_ENV: &str = "WASMACRO_DECLS_DIR";

/// The attributes the twins stand for.
const DECLARING: [&str; 3] = ["proc_macro", "proc_macro_derive", "proc_macro_attribute"];

/// `#[proc_macro_derive(Name, attributes(a, b))]`, renamed.
#[proc_macro_attribute]
pub fn wasm_macro_derive(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = args.clone();
    record(item, "proc_macro_derive", original, || derive_args(args))
}

/// `#[proc_macro_attribute]`, renamed.
#[proc_macro_attribute]
pub fn wasm_macro_attribute(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = args.clone();
    record(item, "proc_macro_attribute", original, || {
        no_args(args, "proc_macro_attribute").map(|()| (Kind::Attribute, None, Vec::new()))
    })
}

/// `#[proc_macro]`, renamed.
#[proc_macro_attribute]
pub fn wasm_macro(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = args.clone();
    record(item, "proc_macro", original, || {
        no_args(args, "proc_macro").map(|()| (Kind::Function, None, Vec::new()))
    })
}

/// Removes the `#[proc_macro…]` attributes a twin put back, once every
/// attribute macro between them has seen the item.
#[proc_macro_attribute]
pub fn wasm_macro_strip(_args: TokenStream, item: TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let mut kept = Vec::with_capacity(tokens.len());
    let mut index = 0;
    while index < tokens.len() {
        if let (TokenTree::Punct(pound), Some(TokenTree::Group(group))) =
            (&tokens[index], tokens.get(index + 1))
            && pound.as_char() == '#'
            && group.delimiter() == Delimiter::Bracket
            && matches!(group.stream().into_iter().next(),
                Some(TokenTree::Ident(name)) if DECLARING.iter().any(|d| name.to_string() == *d))
        {
            index += 2;
            continue;
        }
        kept.push(tokens[index].clone());
        index += 1;
    }
    kept.into_iter().collect()
}

/// (kind, derive name, helper attributes)
type Declared = (Kind, Option<String>, Vec<String>);

/// Records the declaration, then gives back the item with the original
/// `#[attribute(args)]` first and [`macro@wasm_macro_strip`] last.
fn record(
    item: TokenStream,
    attribute: &str,
    args: TokenStream,
    parse: impl FnOnce() -> Result<Declared, String>,
) -> TokenStream {
    let result = function_name(&item)
        .ok_or_else(|| format!("`#[{attribute}]` must be on a function"))
        .and_then(|function| {
            let (kind, name, helpers) = parse()?;
            let record = Record {
                kind,
                name: name.unwrap_or_else(|| function.clone()),
                function,
                helpers,
            };
            let dir = std::env::var_os(DIR_ENV)
                .map(PathBuf::from)
                .ok_or_else(|| {
                    format!("{DIR_ENV} is not set: this crate only works inside `wasmacro build`")
                })?;
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join(&record.function), record.encode()))
                .map_err(|e| {
                    format!(
                        "cannot record `{}` in {}: {e}",
                        record.function,
                        dir.display()
                    )
                })
        });
    if let Err(message) = result {
        let mut out = item;
        out.extend(compile_error(&message));
        return out;
    }
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let attributes = outer_attributes_len(&tokens);
    let restored = if args.is_empty() {
        format!("#[{attribute}]")
    } else {
        format!("#[{attribute}({args})]")
    };
    let mut out: TokenStream = restored.parse().unwrap_or_default();
    out.extend(tokens[..attributes].iter().cloned());
    out.extend(
        "#[wasm_macro_strip]"
            .parse::<TokenStream>()
            .unwrap_or_default(),
    );
    out.extend(tokens[attributes..].iter().cloned());
    out
}

/// How many tokens the item's outer attributes (`#` and a bracketed group
/// each) take at its start.
fn outer_attributes_len(tokens: &[TokenTree]) -> usize {
    let mut len = 0;
    while let (Some(TokenTree::Punct(pound)), Some(TokenTree::Group(group))) =
        (tokens.get(len), tokens.get(len + 1))
    {
        if pound.as_char() != '#' || group.delimiter() != Delimiter::Bracket {
            break;
        }
        len += 2;
    }
    len
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
    Ok((Kind::Derive, Some(name), helpers))
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
    let mut records = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .map_err(|e| format!("no declarations were recorded in {}: {e}", dir.display()))?
    {
        let path = entry
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        records.push(Record::decode(&text)?);
    }
    records.sort_by(|a, b| a.function.cmp(&b.function));
    let mut table = String::from("::wasmacro_guest_glue::export_macros!(&[");
    for Record {
        kind,
        name,
        function,
        helpers,
    } in &records
    {
        let expander = match kind {
            Kind::Derive => "Derive",
            Kind::Attribute => "Attribute",
            Kind::Function => "Function",
        };
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
