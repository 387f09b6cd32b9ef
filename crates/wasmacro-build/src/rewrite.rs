//! The crate-root rewrite: the only change made to a macro's sources.
//!
//! rustc rejects `#[proc_macro…]` attributes outside proc-macro crates, so they
//! are blanked out — replaced by spaces in place, so every line and column of
//! the file stays where it was — and the declarations they made are recorded.

use syn::punctuated::Punctuated;
use syn::{Attribute, Item, Meta, Token};
use wasmacro_protocol::{MacroDecl, MacroKind};

/// A proc macro found in the crate root: its declaration and the Rust function
/// that implements it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootMacro {
    /// What the component will declare.
    pub decl: MacroDecl,
    /// The implementing function's name in the crate root.
    pub function: String,
}

/// The rewritten root and the macros it declared.
#[derive(Debug)]
pub struct RewrittenRoot {
    /// The new source of the crate root.
    pub source: String,
    /// The macros, in source order.
    pub macros: Vec<RootMacro>,
}

/// Why the root could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The root does not parse.
    #[error("cannot parse the crate root: {0}")]
    Parse(String),
    /// An attribute was not of the form rustc accepts.
    #[error("malformed `#[{attribute}]` on `{function}`: {reason}")]
    Malformed {
        /// The attribute's name.
        attribute: String,
        /// The function it is on.
        function: String,
        /// What is wrong.
        reason: String,
    },
    /// Nothing to build.
    #[error(
        "the crate root declares no `#[proc_macro]`, `#[proc_macro_derive]` or `#[proc_macro_attribute]` functions"
    )]
    NoMacros,
}

/// Rewrites a proc-macro crate root.
pub fn rewrite_root(source: &str) -> Result<RewrittenRoot, RewriteError> {
    let file = syn::parse_file(source).map_err(|e| {
        let start = e.span().start();
        RewriteError::Parse(format!(
            "{e} (line {}, column {})",
            start.line,
            start.column + 1
        ))
    })?;
    let mut blank = Vec::new();
    let mut macros = Vec::new();
    for item in &file.items {
        let Item::Fn(function) = item else { continue };
        let name = function.sig.ident.to_string();
        for attr in &function.attrs {
            let Some(kind) = proc_macro_kind(attr) else {
                continue;
            };
            let start = attr.pound_token.span.byte_range().start;
            let end = attr.bracket_token.span.close().byte_range().end;
            blank.push(start..end);
            let decl = match kind {
                MacroKind::Derive => derive_decl(attr, &name)?,
                MacroKind::Attribute | MacroKind::Function => {
                    if !matches!(attr.meta, Meta::Path(_)) {
                        return Err(RewriteError::Malformed {
                            attribute: path_name(attr),
                            function: name.clone(),
                            reason: "it takes no arguments".into(),
                        });
                    }
                    MacroDecl {
                        name: name.clone(),
                        kind,
                        helper_attributes: Vec::new(),
                    }
                }
            };
            macros.push(RootMacro {
                decl,
                function: name.clone(),
            });
        }
    }
    if macros.is_empty() {
        return Err(RewriteError::NoMacros);
    }
    let mut bytes = source.as_bytes().to_vec();
    for range in blank {
        for byte in &mut bytes[range] {
            // Keep line breaks so positions after the attribute do not move;
            // every other byte (multi-byte UTF-8 included) becomes a space.
            if *byte != b'\n' && *byte != b'\r' {
                *byte = b' ';
            }
        }
    }
    let source = String::from_utf8(bytes)
        .map_err(|_| RewriteError::Parse("an attribute boundary split a character".into()))?;
    Ok(RewrittenRoot { source, macros })
}

fn path_name(attr: &Attribute) -> String {
    attr.path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

fn proc_macro_kind(attr: &Attribute) -> Option<MacroKind> {
    let ident = attr.path().get_ident()?;
    if ident == "proc_macro" {
        Some(MacroKind::Function)
    } else if ident == "proc_macro_derive" {
        Some(MacroKind::Derive)
    } else if ident == "proc_macro_attribute" {
        Some(MacroKind::Attribute)
    } else {
        None
    }
}

/// `#[proc_macro_derive(Name)]` or `#[proc_macro_derive(Name, attributes(a, b))]`.
fn derive_decl(attr: &Attribute, function: &str) -> Result<MacroDecl, RewriteError> {
    let malformed = |reason: &str| RewriteError::Malformed {
        attribute: "proc_macro_derive".into(),
        function: function.to_string(),
        reason: reason.to_string(),
    };
    let args = attr
        .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        .map_err(|e| malformed(&e.to_string()))?;
    let mut args = args.into_iter();
    let name = match args.next() {
        Some(Meta::Path(path)) => path.get_ident().map(|i| i.to_string()),
        _ => None,
    }
    .ok_or_else(|| malformed("expected the derive's name first"))?;
    let mut helper_attributes = Vec::new();
    for arg in args {
        match arg {
            Meta::List(list) if list.path.is_ident("attributes") => {
                let helpers = list
                    .parse_args_with(Punctuated::<syn::Ident, Token![,]>::parse_terminated)
                    .map_err(|e| malformed(&e.to_string()))?;
                helper_attributes.extend(helpers.iter().map(|h| h.to_string()));
            }
            _ => return Err(malformed("expected `attributes(...)`")),
        }
    }
    Ok(MacroDecl {
        name,
        kind: MacroKind::Derive,
        helper_attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = r#"//! Docs.
extern crate proc_macro;
use proc_macro::TokenStream;

#[proc_macro_derive(Serialize, attributes(serde))]
pub fn derive_serialize(input: TokenStream) -> TokenStream { input }

/// An attribute: ünïcödé before it.
#[proc_macro_attribute]
pub fn route(_args: TokenStream, item: TokenStream) -> TokenStream { item }

#[doc(hidden)]
#[proc_macro]
pub fn html(input: TokenStream) -> TokenStream { input }

fn helper() {}
"#;

    #[test]
    fn records_declarations_and_keeps_positions() {
        let rewritten = rewrite_root(ROOT).unwrap();
        let decls: Vec<_> = rewritten
            .macros
            .iter()
            .map(|m| (m.decl.name.as_str(), m.decl.kind, m.function.as_str()))
            .collect();
        assert_eq!(
            decls,
            [
                ("Serialize", MacroKind::Derive, "derive_serialize"),
                ("route", MacroKind::Attribute, "route"),
                ("html", MacroKind::Function, "html"),
            ]
        );
        assert_eq!(rewritten.macros[0].decl.helper_attributes, ["serde"]);
        assert!(!rewritten.source.contains("proc_macro_derive"));
        assert!(!rewritten.source.contains("#[proc_macro"));
        assert!(rewritten.source.contains("#[doc(hidden)]"));
        // Same length and same line structure: nothing after an attribute moved.
        assert_eq!(rewritten.source.len(), ROOT.len());
        let lines = |s: &str| s.lines().count();
        assert_eq!(lines(&rewritten.source), lines(ROOT));
        syn::parse_file(&rewritten.source).unwrap();
    }

    #[test]
    fn a_root_without_macros_is_an_error() {
        assert!(matches!(
            rewrite_root("fn main() {}"),
            Err(RewriteError::NoMacros)
        ));
    }

    #[test]
    fn malformed_derives_are_errors() {
        let err = rewrite_root("#[proc_macro_derive(attributes(x))] pub fn f(){}").unwrap_err();
        assert!(
            err.to_string().contains("expected the derive's name first"),
            "{err}"
        );
    }
}
