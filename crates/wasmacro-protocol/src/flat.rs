//! The one flattening of token trees into protocol [`Token`]s: pre-order,
//! each group followed by its contents and carrying their count, each span
//! replaced by the handle the caller gives it. The shim flattens rustc's
//! `proc_macro` trees with it and `wasmacro expand` proc-macro2's; each
//! describes its trees through [`TokenTrees`].

use crate::{Delimiter, SpanHandle, Token};
use std::ops::Range;

/// One token tree of some `proc_macro`-like API, taken apart.
pub enum TreeParts<A: TokenTrees + ?Sized> {
    /// A group: its delimiter, spans, contents, and the group itself (for
    /// callers that keep the original, see [`flatten`]).
    Group {
        /// The delimiter.
        delimiter: Delimiter,
        /// The whole group's span.
        span: A::Span,
        /// The opening delimiter's span.
        open: A::Span,
        /// The closing delimiter's span.
        close: A::Span,
        /// The contents.
        stream: A::Stream,
        /// The group as it was.
        group: A::Group,
    },
    /// An identifier as printed (`r#` included for a raw one).
    Ident {
        /// The text.
        text: String,
        /// Its span.
        span: A::Span,
    },
    /// A punctuation character.
    Punct {
        /// The character.
        ch: char,
        /// Whether it joins the next one.
        joint: bool,
        /// Its span.
        span: A::Span,
    },
    /// A literal as printed.
    Literal {
        /// The text.
        text: String,
        /// Its span.
        span: A::Span,
    },
}

/// A `proc_macro`-like token API.
pub trait TokenTrees {
    /// A token stream, iterated by value.
    type Stream: IntoIterator<Item = Self::Tree>;
    /// A token tree.
    type Tree;
    /// A group.
    type Group;
    /// A span.
    type Span;

    /// Takes a tree apart.
    fn parts(tree: Self::Tree) -> TreeParts<Self>;
}

/// Flattens `stream`, naming each span by `span_of`; `on_group` sees every
/// group with its handle and the range of the returned tokens it became
/// (its own token included), innermost first.
pub fn flatten<A: TokenTrees>(
    stream: A::Stream,
    span_of: &mut impl FnMut(A::Span) -> SpanHandle,
    on_group: &mut impl FnMut(SpanHandle, A::Group, Range<usize>),
) -> Vec<Token> {
    let mut tokens = Vec::new();
    flatten_into::<A>(stream, span_of, on_group, &mut tokens);
    tokens
}

fn flatten_into<A: TokenTrees>(
    stream: A::Stream,
    span_of: &mut impl FnMut(A::Span) -> SpanHandle,
    on_group: &mut impl FnMut(SpanHandle, A::Group, Range<usize>),
    tokens: &mut Vec<Token>,
) {
    for tree in stream {
        match A::parts(tree) {
            TreeParts::Group {
                delimiter,
                span,
                open,
                close,
                stream,
                group,
            } => {
                let index = tokens.len();
                let whole = span_of(span);
                tokens.push(Token::Group {
                    delimiter,
                    span: whole,
                    open: span_of(open),
                    close: span_of(close),
                    len: 0,
                });
                flatten_into::<A>(stream, span_of, on_group, tokens);
                let inner = u32::try_from(tokens.len() - index - 1).unwrap_or(u32::MAX);
                if let Some(Token::Group { len, .. }) = tokens.get_mut(index) {
                    *len = inner;
                }
                on_group(whole, group, index..tokens.len());
            }
            TreeParts::Ident { text, span } => {
                let (name, is_raw) = match text.strip_prefix("r#") {
                    Some(name) => (name.to_string(), true),
                    None => (text, false),
                };
                tokens.push(Token::Ident {
                    name,
                    is_raw,
                    span: span_of(span),
                });
            }
            TreeParts::Punct { ch, joint, span } => tokens.push(Token::Punct {
                ch,
                joint,
                span: span_of(span),
            }),
            TreeParts::Literal { text, span } => tokens.push(Token::Literal {
                text,
                span: span_of(span),
            }),
        }
    }
}
