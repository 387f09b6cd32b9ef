//! Export glue between a proc-macro crate compiled to `wasm32-wasip2` and the
//! `wasmacro:proc-macro` WIT contract: it implements the component's `macros`
//! export on top of the guest `proc_macro` crate, answers the guest's span
//! queries through the `host` import, and reports panics.
//!
//! `wasmacro build` generates a cdylib that depends on this crate and on the
//! (rewritten) macro crate, and calls [`export_macros!`] with the macro table.
//!
//! It must never: expose anything to the macro crate, run macro code outside
//! an expansion scope, or let a panic pass unreported.

extern crate proc_macro;

use proc_macro::TokenStream;
use proc_macro::__private::{self as bridge, ExpansionScope, FlatToken};
use std::rc::Rc;

/// The WIT bindings, generated ahead of time by `scripts/generate-bindings.sh`
/// (the same code `wit_bindgen::generate!` would produce): the macro's own
/// dependencies would otherwise be built inside every component build, where
/// a project's `[patch]` can reach them.
#[doc(hidden)]
#[path = "bindings.rs"]
pub mod bindings;

mod size_classes;

/// Small blocks from free lists by size class: a macro's many small
/// allocations cost a fraction of dlmalloc's (see the module).
#[global_allocator]
static ALLOCATOR: size_classes::SizeClasses = size_classes::SizeClasses::new();

use bindings::wasmacro::proc_macro::host as wit_host;
use bindings::wasmacro::proc_macro::types as wit;

/// The function behind one exported macro.
#[derive(Copy, Clone)]
pub enum Expander {
    /// `#[proc_macro_derive]`: item in, items out.
    Derive(fn(TokenStream) -> TokenStream),
    /// `#[proc_macro_attribute]`: attribute arguments and item in.
    Attribute(fn(TokenStream, TokenStream) -> TokenStream),
    /// `#[proc_macro]`: arguments in.
    Function(fn(TokenStream) -> TokenStream),
}

/// One macro of the component's table.
pub struct Macro {
    /// The name users write.
    pub name: &'static str,
    /// Helper attributes of a derive.
    pub helper_attributes: &'static [&'static str],
    /// The macro function.
    pub expander: Expander,
}

/// Exports the `macros` interface for a table of [`Macro`]s.
#[macro_export]
macro_rules! export_macros {
    ($table:expr) => {
        struct __WasmacroComponent;

        impl $crate::bindings::exports::wasmacro::proc_macro::macros::Guest for __WasmacroComponent {
            fn declarations() -> ::std::vec::Vec<$crate::__MacroDecl> {
                $crate::declarations($table)
            }

            fn expand(
                request: $crate::__ExpansionRequest,
            ) -> ::std::result::Result<$crate::__TokenStream, $crate::__ExpansionError> {
                $crate::expand($table, request)
            }
        }

        $crate::bindings::export_component!(__WasmacroComponent with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub use wit::{
    ExpansionError as __ExpansionError, ExpansionRequest as __ExpansionRequest,
    MacroDecl as __MacroDecl, TokenStream as __TokenStream,
};

#[doc(hidden)]
pub fn declarations(table: &[Macro]) -> Vec<wit::MacroDecl> {
    table
        .iter()
        .map(|m| wit::MacroDecl {
            name: m.name.to_string(),
            kind: match m.expander {
                Expander::Derive(_) => wit::MacroKind::Derive,
                Expander::Attribute(_) => wit::MacroKind::Attribute,
                Expander::Function(_) => wit::MacroKind::Function,
            },
            helper_attributes: m.helper_attributes.iter().map(|h| h.to_string()).collect(),
        })
        .collect()
}

#[doc(hidden)]
pub fn expand(
    table: &[Macro],
    request: wit::ExpansionRequest,
) -> Result<wit::TokenStream, wit::ExpansionError> {
    install_panic_hook();
    let Some(entry) = table.iter().find(|m| m.name == request.macro_name) else {
        return Err(wit::ExpansionError::UnknownMacro(request.macro_name));
    };
    let _scope = ExpansionScope::enter(Rc::new(HostSpans), request.call_site, request.mixed_site);
    let input = decode(&request.input)?;
    let output = match entry.expander {
        Expander::Derive(f) | Expander::Function(f) => f(input),
        Expander::Attribute(f) => {
            let args = match &request.attribute_args {
                Some(args) => decode(args)?,
                None => TokenStream::new(),
            };
            f(args, input)
        }
    };
    Ok(encode(&output))
}

fn decode(tokens: &[wit::Token]) -> Result<TokenStream, wit::ExpansionError> {
    let flat: Vec<FlatToken<'_>> = tokens
        .iter()
        .map(|token| match token {
            wit::Token::Group(g) => FlatToken::Group {
                delimiter: match g.delimiter {
                    wit::Delimiter::Parenthesis => proc_macro::Delimiter::Parenthesis,
                    wit::Delimiter::Brace => proc_macro::Delimiter::Brace,
                    wit::Delimiter::Bracket => proc_macro::Delimiter::Bracket,
                    wit::Delimiter::None => proc_macro::Delimiter::None,
                },
                span: g.span,
                open: g.span_open,
                close: g.span_close,
                len: g.len,
            },
            wit::Token::Ident(i) => FlatToken::Ident { name: &i.name, is_raw: i.is_raw, span: i.span },
            wit::Token::Punct(p) => FlatToken::Punct {
                ch: p.ch,
                joint: p.spacing == wit::Spacing::Joint,
                span: p.span,
            },
            wit::Token::Literal(l) => FlatToken::Literal { text: &l.text, span: l.span },
        })
        .collect();
    bridge::decode(&flat).map_err(|e| wit::ExpansionError::InvalidInput(e.to_string()))
}

fn encode(stream: &TokenStream) -> wit::TokenStream {
    let mut tokens = WitTokens(Vec::new());
    bridge::encode(stream, &mut tokens);
    tokens.0
}

/// The WIT token list [`bridge::encode`] fills.
struct WitTokens(Vec<wit::Token>);

impl bridge::FlatSink for WitTokens {
    fn push(&mut self, token: FlatToken<'_>) {
        self.0.push(match token {
            FlatToken::Group { delimiter, span, open, close, len } => wit::Token::Group(wit::Group {
                delimiter: match delimiter {
                    proc_macro::Delimiter::Parenthesis => wit::Delimiter::Parenthesis,
                    proc_macro::Delimiter::Brace => wit::Delimiter::Brace,
                    proc_macro::Delimiter::Bracket => wit::Delimiter::Bracket,
                    proc_macro::Delimiter::None => wit::Delimiter::None,
                },
                span,
                span_open: open,
                span_close: close,
                len,
            }),
            FlatToken::Ident { name, is_raw, span } => {
                wit::Token::Ident(wit::Ident { name: name.to_string(), is_raw, span })
            }
            FlatToken::Punct { ch, joint, span } => wit::Token::Punct(wit::Punct {
                ch,
                spacing: if joint { wit::Spacing::Joint } else { wit::Spacing::Alone },
                span,
            }),
            FlatToken::Literal { text, span } => {
                wit::Token::Literal(wit::Literal { text: text.to_string(), span })
            }
        })
    }

    fn set_group_len(&mut self, index: usize, len: u32) {
        if let Some(wit::Token::Group(group)) = self.0.get_mut(index) {
            group.len = len;
        }
    }
}

/// Span queries go to the host: only the compiler knows the source.
struct HostSpans;

impl bridge::Host for HostSpans {
    fn source_text(&self, span: u32) -> Option<String> {
        wit_host::source_text(span)
    }
    fn start(&self, span: u32) -> u32 {
        wit_host::start(span)
    }
    fn end(&self, span: u32) -> u32 {
        wit_host::end(span)
    }
    fn line(&self, span: u32) -> u32 {
        wit_host::line(span)
    }
    fn column(&self, span: u32) -> u32 {
        wit_host::column(span)
    }
    fn file(&self, span: u32) -> String {
        wit_host::file(span)
    }
    fn local_file(&self, span: u32) -> Option<String> {
        wit_host::local_file(span)
    }
    fn resolved_at(&self, span: u32, other: u32) -> u32 {
        wit_host::resolved_at(span, other)
    }
    fn debug(&self, span: u32) -> String {
        wit_host::debug(span)
    }
}

/// `wasm32-wasip2` aborts on panic, so the hook is the last chance to tell the
/// host what happened. It replaces std's hook, which would print "thread
/// panicked at …" — rustc does not print that for native proc macros either.
/// Installed before every expansion, in case a macro replaced it.
fn install_panic_hook() {
    {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            wit_host::report_panic(message.as_deref());
        }));
    }
}
