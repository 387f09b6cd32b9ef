//! The guest's side of the bridge: the per-expansion state (call-site spans and
//! the host that answers span queries) and the private API the export glue uses
//! to move token streams across the component boundary.
//!
//! The guest is single-threaded (`wasm32-wasip2` components have one thread),
//! so the state is a thread-local set for the duration of one expansion.

use std::cell::RefCell;
use std::rc::Rc;

/// Answers the span queries that need the compiler.
///
/// The export glue implements this with the component's `host` imports. Span
/// arguments are handles the host handed out; results are new handles.
pub trait Host {
    /// The source text behind `span`, if it covers real source.
    fn source_text(&self, span: u32) -> Option<String>;
    /// An empty span at the start of `span`.
    fn start(&self, span: u32) -> u32;
    /// An empty span at the end of `span`.
    fn end(&self, span: u32) -> u32;
    /// The 1-based line where `span` starts.
    fn line(&self, span: u32) -> u32;
    /// The 1-based column where `span` starts.
    fn column(&self, span: u32) -> u32;
    /// The display path of the file `span` is in.
    fn file(&self, span: u32) -> String;
    /// The path on disk of the file `span` is in, if it is a real file.
    fn local_file(&self, span: u32) -> Option<String>;
    /// `span` with the hygiene of `other`.
    fn resolved_at(&self, span: u32, other: u32) -> u32;
    /// `span` as rustc's `Debug` prints it.
    fn debug(&self, span: u32) -> String;
}

/// The host used outside an expansion (for example when the guest crate is
/// compiled natively for its own tests): every span is the one call-site span
/// and knows nothing about source.
struct Detached;

impl Host for Detached {
    fn source_text(&self, _: u32) -> Option<String> {
        None
    }
    fn start(&self, span: u32) -> u32 {
        span
    }
    fn end(&self, span: u32) -> u32 {
        span
    }
    fn line(&self, _: u32) -> u32 {
        1
    }
    fn column(&self, _: u32) -> u32 {
        1
    }
    fn file(&self, _: u32) -> String {
        String::from("<detached>")
    }
    fn local_file(&self, _: u32) -> Option<String> {
        None
    }
    fn resolved_at(&self, span: u32, _: u32) -> u32 {
        span
    }
    fn debug(&self, span: u32) -> String {
        format!("#{span}")
    }
}

struct Expansion {
    host: Rc<dyn Host>,
    call_site: u32,
    mixed_site: u32,
}

thread_local! {
    static CURRENT: RefCell<Option<Expansion>> = const { RefCell::new(None) };
}

pub(crate) fn is_available() -> bool {
    CURRENT.with(|current| current.borrow().is_some())
}

pub(crate) fn call_site() -> u32 {
    CURRENT.with(|current| current.borrow().as_ref().map_or(0, |e| e.call_site))
}

pub(crate) fn mixed_site() -> u32 {
    CURRENT.with(|current| current.borrow().as_ref().map_or(0, |e| e.mixed_site))
}

pub(crate) fn host() -> Rc<dyn Host> {
    CURRENT.with(|current| match current.borrow().as_ref() {
        Some(expansion) => Rc::clone(&expansion.host),
        None => Rc::new(Detached),
    })
}

/// The API of this crate that only the wasmacro export glue may use. It is not
/// part of `proc_macro` and carries no stability promise.
pub mod __private {
    use super::{CURRENT, Expansion};
    use crate::{
        DelimSpan, Delimiter, Group, Ident, LexError, Literal, Punct, Spacing, Span, TokenStream,
        TokenTree,
    };
    use std::rc::Rc;

    pub use super::Host;

    /// Marks the duration of one expansion: while it lives, `Span::call_site()`
    /// and friends answer for this expansion and span queries go to `host`.
    pub struct ExpansionScope(());

    impl ExpansionScope {
        /// Starts an expansion.
        pub fn enter(host: Rc<dyn Host>, call_site: u32, mixed_site: u32) -> ExpansionScope {
            CURRENT.with(|current| {
                *current.borrow_mut() = Some(Expansion {
                    host,
                    call_site,
                    mixed_site,
                });
            });
            ExpansionScope(())
        }
    }

    impl Drop for ExpansionScope {
        fn drop(&mut self) {
            CURRENT.with(|current| *current.borrow_mut() = None);
        }
    }

    /// Tokens a macro cannot make through `proc_macro`'s API: what a
    /// hand-written or malicious component could return. They exist so that
    /// tests can check that hosts reject them; no macro should use them.
    pub mod forge {
        use crate::{Ident, LitKind, Literal, Punct, Spacing, Span};

        /// A span with an arbitrary handle.
        pub fn span(handle: u32) -> Span {
            Span::from_handle(handle)
        }

        /// An identifier that skips validation.
        pub fn ident(name: &str) -> Ident {
            Ident::new_unchecked(name, false, Span::call_site())
        }

        /// A punctuation token with any character.
        pub fn punct(ch: char) -> Punct {
            Punct::with_span(ch, Spacing::Alone, Span::call_site())
        }

        /// An "integer" literal whose text is `text`, unchecked.
        pub fn literal(text: &str) -> Literal {
            Literal::from_parts(LitKind::Integer, text, None, Span::call_site())
        }
    }

    /// A token of a flattened (pre-order) token stream, borrowed from the
    /// glue's wire representation. Fields mirror the WIT `token` variant.
    #[allow(missing_docs)]
    pub enum FlatToken<'a> {
        /// A group; the next `len` tokens (whole subtree) are its contents.
        Group {
            delimiter: Delimiter,
            span: u32,
            open: u32,
            close: u32,
            len: u32,
        },
        /// An identifier, without `r#`.
        Ident {
            name: &'a str,
            is_raw: bool,
            span: u32,
        },
        /// A punctuation character.
        Punct { ch: char, joint: bool, span: u32 },
        /// A literal as written in source.
        Literal { text: &'a str, span: u32 },
    }

    /// Rebuilds a token stream from its flattened form, validating it: group
    /// lengths must nest, identifiers, puncts and literals must be valid.
    pub fn decode<'a>(tokens: &[FlatToken<'a>]) -> Result<TokenStream, LexError> {
        let mut position = 0;
        let trees = decode_trees(tokens, &mut position, tokens.len())?;
        Ok(TokenStream::from_trees(trees))
    }

    fn decode_trees(
        tokens: &[FlatToken<'_>],
        position: &mut usize,
        end: usize,
    ) -> Result<Vec<TokenTree>, LexError> {
        let mut trees = Vec::new();
        while *position < end {
            let token = &tokens[*position];
            *position += 1;
            let tree = match *token {
                FlatToken::Group {
                    delimiter,
                    span,
                    open,
                    close,
                    len,
                } => {
                    let inner_end = position
                        .checked_add(len as usize)
                        .filter(|&inner_end| inner_end <= end)
                        .ok_or_else(|| LexError::new("group length overruns its parent"))?;
                    let inner = decode_trees(tokens, position, inner_end)?;
                    let spans = DelimSpan {
                        entire: Span::from_handle(span),
                        open: Span::from_handle(open),
                        close: Span::from_handle(close),
                    };
                    TokenTree::Group(Group::with_spans(
                        delimiter,
                        TokenStream::from_trees(inner),
                        spans,
                    ))
                }
                FlatToken::Ident { name, is_raw, span } => {
                    crate::lexer::validate_ident(name, is_raw).map_err(LexError::new)?;
                    TokenTree::Ident(Ident::new_unchecked(name, is_raw, Span::from_handle(span)))
                }
                FlatToken::Punct { ch, joint, span } => {
                    if !crate::LEGAL_PUNCT_CHARS.contains(&ch) {
                        return Err(LexError::new(format!("unsupported character `{ch:?}`")));
                    }
                    let spacing = if joint {
                        Spacing::Joint
                    } else {
                        Spacing::Alone
                    };
                    TokenTree::Punct(Punct::with_span(ch, spacing, Span::from_handle(span)))
                }
                FlatToken::Literal { text, span } => {
                    TokenTree::Literal(crate::lexer::literal(text, Span::from_handle(span))?)
                }
            };
            trees.push(tree);
        }
        Ok(trees)
    }

    /// Where [`encode`] puts a flattened stream.
    pub trait FlatSink {
        /// The next token, in pre-order. A group arrives with `len` 0;
        /// [`set_group_len`](FlatSink::set_group_len) follows its contents.
        fn push(&mut self, token: FlatToken<'_>);
        /// Sets the `len` of the group that was the `index`-th token pushed.
        fn set_group_len(&mut self, index: usize, len: u32);
    }

    /// Flattens a token stream (pre-order) into `sink`. Linear in the
    /// number of tokens: a group's length is set once its contents are out,
    /// not counted ahead (which costs a pass per level of nesting).
    pub fn encode(stream: &TokenStream, sink: &mut dyn FlatSink) {
        encode_from(stream, sink, 0);
    }

    /// Pushes `stream` as tokens `first..`, returning how many.
    fn encode_from(stream: &TokenStream, sink: &mut dyn FlatSink, first: usize) -> usize {
        let mut next = first;
        for tree in stream.trees() {
            let index = next;
            next += 1;
            match tree {
                TokenTree::Group(group) => {
                    sink.push(FlatToken::Group {
                        delimiter: group.delimiter(),
                        span: group.span().handle(),
                        open: group.span_open().handle(),
                        close: group.span_close().handle(),
                        len: 0,
                    });
                    let len = encode_from(&group.stream, sink, next);
                    next += len;
                    sink.set_group_len(
                        index,
                        u32::try_from(len).expect("a token stream of more than 4 billion tokens"),
                    );
                }
                TokenTree::Ident(ident) => sink.push(FlatToken::Ident {
                    name: ident.name(),
                    is_raw: ident.is_raw(),
                    span: ident.span().handle(),
                }),
                TokenTree::Punct(punct) => sink.push(FlatToken::Punct {
                    ch: punct.as_char(),
                    joint: punct.spacing() == Spacing::Joint,
                    span: punct.span().handle(),
                }),
                TokenTree::Literal(literal) => {
                    let text = literal.to_string();
                    sink.push(FlatToken::Literal {
                        text: &text,
                        span: literal.span().handle(),
                    })
                }
            }
        }
        next - first
    }

    /// Parses `text` as one literal (used by hosts that validate literals).
    pub fn parse_literal(text: &str) -> Result<Literal, LexError> {
        crate::lexer::literal(text, Span::call_site())
    }

    /// Whether `Punct::new` accepts `ch`.
    pub fn is_valid_punct(ch: char) -> bool {
        crate::LEGAL_PUNCT_CHARS.contains(&ch)
    }

    /// The check behind `Ident::new` / `Ident::new_raw`, with rustc's message.
    pub fn validate_ident(name: &str, is_raw: bool) -> Result<(), String> {
        crate::lexer::validate_ident(name, is_raw)
    }
}
