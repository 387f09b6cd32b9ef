//! `wasmacro expand`: runs one macro of a component on source text, outside
//! rustc, for macro authors. Input spans come from proc-macro2's lexer with
//! span locations, so `source_text`, `line` and `column` answer from the
//! input; the output is printed with the guest's own (rustc-compatible)
//! printer.

use anyhow::{Context, Result, bail};
use guest_proc_macro::__private::{self as guest, FlatToken};
use proc_macro2::{Delimiter as Pm2Delimiter, Spacing as Pm2Spacing, TokenTree as Pm2Tree};
use std::path::Path;
use std::str::FromStr;
use wasmacro_host::{Runtime, SpanOracle, SpanOracleError};
use wasmacro_protocol::flat::{TokenTrees, TreeParts};
use wasmacro_protocol::{
    Delimiter, ExpandRequest, MacroKind, SpanAnswer, SpanHandle, SpanQuery, Token,
};

/// Where a span is in the input: plain data, so the oracle can live in the
/// sandbox's store.
#[derive(Clone)]
struct Location {
    start: (u32, u32),
    end: (u32, u32),
    bytes: Option<std::ops::Range<usize>>,
}

struct InputSpans {
    source: String,
    file: String,
    spans: Vec<Location>,
}

impl InputSpans {
    fn insert(&mut self, span: proc_macro2::Span) -> u32 {
        let (start, end) = (span.start(), span.end());
        let location = Location {
            // proc-macro2 columns are 0-based; rustc's are 1-based.
            start: (start.line as u32, start.column as u32 + 1),
            end: (end.line as u32, end.column as u32 + 1),
            bytes: Some(span.byte_range()),
        };
        self.spans.push(location);
        self.spans.len() as u32 - 1
    }

    fn push(&mut self, location: Location) -> u32 {
        self.spans.push(location);
        self.spans.len() as u32 - 1
    }
}

impl SpanOracle for InputSpans {
    fn query(&mut self, query: SpanQuery) -> Result<SpanAnswer, SpanOracleError> {
        let get = |spans: &[Location], handle: u32| spans.get(handle as usize).cloned();
        let handle = match query {
            SpanQuery::SourceText(h)
            | SpanQuery::Start(h)
            | SpanQuery::End(h)
            | SpanQuery::Line(h)
            | SpanQuery::Column(h)
            | SpanQuery::File(h)
            | SpanQuery::LocalFile(h)
            | SpanQuery::ResolvedAt(h, _)
            | SpanQuery::Debug(h) => h,
        };
        let Some(location) = get(&self.spans, handle) else {
            return Ok(SpanAnswer::InvalidHandle(handle));
        };
        Ok(match query {
            SpanQuery::SourceText(_) => SpanAnswer::MaybeText(
                location
                    .bytes
                    .and_then(|range| self.source.get(range))
                    .map(str::to_string),
            ),
            SpanQuery::Start(_) => SpanAnswer::Span(self.push(Location {
                end: location.start,
                bytes: None,
                ..location
            })),
            SpanQuery::End(_) => SpanAnswer::Span(self.push(Location {
                start: location.end,
                bytes: None,
                ..location
            })),
            SpanQuery::Line(_) => SpanAnswer::Number(location.start.0),
            SpanQuery::Column(_) => SpanAnswer::Number(location.start.1),
            SpanQuery::File(_) => SpanAnswer::Text(self.file.clone()),
            SpanQuery::LocalFile(_) => SpanAnswer::MaybeText(None),
            // Outside rustc there is no hygiene to change.
            SpanQuery::ResolvedAt(h, _) => SpanAnswer::Span(h),
            SpanQuery::Debug(_) => SpanAnswer::Text(format!(
                "{}:{}:{}",
                self.file, location.start.0, location.start.1
            )),
        })
    }
}

/// proc-macro2 tokens as protocol tokens (pre-order, groups with their
/// subtree length), each span replaced by the handle `span_of` gives it: what
/// a shim sends for tokens it got from rustc. `wasmacro expand` and the
/// benchmark build their requests with it.
pub fn protocol_tokens(
    stream: proc_macro2::TokenStream,
    span_of: &mut dyn FnMut(proc_macro2::Span) -> SpanHandle,
) -> Vec<Token> {
    wasmacro_protocol::flat::flatten::<ProcMacro2>(
        stream,
        &mut |span| span_of(span),
        &mut |_, _, _| {},
    )
}

/// proc-macro2's trees, for [`wasmacro_protocol::flat`].
struct ProcMacro2;

impl TokenTrees for ProcMacro2 {
    type Stream = proc_macro2::TokenStream;
    type Tree = Pm2Tree;
    type Group = ();
    type Span = proc_macro2::Span;

    fn parts(tree: Pm2Tree) -> TreeParts<ProcMacro2> {
        match tree {
            Pm2Tree::Group(group) => TreeParts::Group {
                delimiter: match group.delimiter() {
                    Pm2Delimiter::Parenthesis => Delimiter::Parenthesis,
                    Pm2Delimiter::Brace => Delimiter::Brace,
                    Pm2Delimiter::Bracket => Delimiter::Bracket,
                    Pm2Delimiter::None => Delimiter::None,
                },
                span: group.span(),
                open: group.span_open(),
                close: group.span_close(),
                stream: group.stream(),
                group: (),
            },
            Pm2Tree::Ident(ident) => TreeParts::Ident {
                text: ident.to_string(),
                span: ident.span(),
            },
            Pm2Tree::Punct(punct) => TreeParts::Punct {
                ch: punct.as_char(),
                joint: punct.spacing() == Pm2Spacing::Joint,
                span: punct.span(),
            },
            Pm2Tree::Literal(literal) => TreeParts::Literal {
                text: literal.to_string(),
                span: literal.span(),
            },
        }
    }
}

fn lex(text: &str, spans: &mut InputSpans, what: &str) -> Result<Vec<Token>> {
    let stream = proc_macro2::TokenStream::from_str(text)
        .map_err(|e| anyhow::anyhow!("{what} does not lex as Rust tokens: {e}"))?;
    Ok(protocol_tokens(stream, &mut |span| spans.insert(span)))
}

/// Prints protocol tokens the way rustc would print the macro's output.
fn print(tokens: &[Token]) -> Result<String> {
    let flat: Vec<FlatToken<'_>> = tokens
        .iter()
        .map(|token| match token {
            Token::Group {
                delimiter,
                span,
                open,
                close,
                len,
            } => FlatToken::Group {
                delimiter: match delimiter {
                    Delimiter::Parenthesis => guest_proc_macro::Delimiter::Parenthesis,
                    Delimiter::Brace => guest_proc_macro::Delimiter::Brace,
                    Delimiter::Bracket => guest_proc_macro::Delimiter::Bracket,
                    Delimiter::None => guest_proc_macro::Delimiter::None,
                },
                span: *span,
                open: *open,
                close: *close,
                len: *len,
            },
            Token::Ident { name, is_raw, span } => FlatToken::Ident {
                name,
                is_raw: *is_raw,
                span: *span,
            },
            Token::Punct { ch, joint, span } => FlatToken::Punct {
                ch: *ch,
                joint: *joint,
                span: *span,
            },
            Token::Literal { text, span } => FlatToken::Literal { text, span: *span },
        })
        .collect();
    let stream = guest::decode(&flat)
        .map_err(|e| anyhow::anyhow!("the macro returned invalid tokens: {e}"))?;
    Ok(stream.to_string())
}

/// Runs `macro_name` of `component` on `input` (and `args` for an attribute).
pub fn run(
    runtime: &Runtime,
    component: &Path,
    macro_name: &str,
    input: &str,
    args: Option<&str>,
    file: &str,
) -> Result<String> {
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let hash = runtime
        .cache()
        .insert(&bytes)
        .with_context(|| format!("caching {}", component.display()))?;
    let loaded = runtime
        .load(&hash)
        .with_context(|| format!("loading {}", component.display()))?;
    let Some(decl) = loaded.declarations().iter().find(|d| d.name == macro_name) else {
        let names: Vec<&str> = loaded
            .declarations()
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        bail!(
            "{} has no macro named `{macro_name}`; it has: {}",
            component.display(),
            names.join(", ")
        );
    };
    if decl.kind == MacroKind::Attribute && args.is_none() {
        tracing::debug!("attribute macro without --args: passing empty arguments");
    }
    let mut spans = InputSpans {
        source: input.to_string(),
        file: file.to_string(),
        spans: Vec::new(),
    };
    let call_site = spans.push(Location {
        start: (1, 1),
        end: (1, 1),
        bytes: None,
    });
    let input_tokens = lex(input, &mut spans, file)?;
    let attribute_args = match (decl.kind, args) {
        (MacroKind::Attribute, args) => Some(lex(args.unwrap_or(""), &mut spans, "--args")?),
        (_, Some(_)) => bail!("`--args` is only for attribute macros; `{macro_name}` is not one"),
        (_, None) => None,
    };
    let request = ExpandRequest {
        macro_name: macro_name.to_string(),
        input: input_tokens,
        attribute_args,
        call_site,
        mixed_site: call_site,
    };
    let mut instance = loaded.instantiate()?;
    let (result, output, _) = instance.expand(&request, Box::new(spans));
    if !output.is_empty() {
        eprint!("{output}");
    }
    let tokens = result.with_context(|| format!("expanding `{macro_name}`"))?;
    print(&tokens)
}
