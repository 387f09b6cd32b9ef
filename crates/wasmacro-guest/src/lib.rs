//! The stable `proc_macro` API of rustc 1.95, implemented for proc macros that
//! run as `wasm32-wasip2` components under a wasmacro host.
//!
//! This crate is handed to every crate of a wasm macro build as
//! `--extern proc_macro=…`, so `proc-macro2`, `quote`, `syn` and the macro crate
//! itself compile unchanged against it. Token streams live in the guest: lexing,
//! printing and literal escaping happen here. Only what needs the compiler
//! (the source text or location behind a span, hygiene changes) goes to the host
//! through [`bridge::Host`], and spans are opaque `u32` handles into the host's
//! span table.
//!
//! It must never: depend on another crate (it would have to be injected into
//! every crate of the build), expose API that stable rustc's `proc_macro` does
//! not have (code that compiles against it must compile natively), or print
//! anything differently from rustc's `proc_macro`.

#![warn(missing_docs)]

mod bridge;
mod escape;
mod lexer;
mod print;
mod unicode_ident;

use std::ffi::CStr;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::rc::Rc;
use std::str::FromStr;
use std::{error, fmt};

#[doc(hidden)]
pub use bridge::__private;

/// Makes a type `!Send` and `!Sync`, as rustc's `proc_macro` types are: code
/// that compiles against this crate must also compile natively.
type NotThreadSafe = PhantomData<Rc<()>>;

/// Whether proc-macro APIs can be used by the running code: true while a
/// wasmacro host is running an expansion, false otherwise.
pub fn is_available() -> bool {
    bridge::is_available()
}

/// The main type provided by this crate, representing an abstract stream of
/// tokens, or, more specifically, a sequence of token trees.
#[derive(Clone)]
pub struct TokenStream {
    trees: Rc<Vec<TokenTree>>,
}

/// Error returned from `TokenStream::from_str` and `Literal::from_str`.
#[derive(Debug)]
pub struct LexError {
    message: String,
    _marker: NotThreadSafe,
}

impl LexError {
    pub(crate) fn new(message: impl Into<String>) -> LexError {
        LexError {
            message: message.into(),
            _marker: PhantomData,
        }
    }
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl error::Error for LexError {}

impl TokenStream {
    /// Returns an empty `TokenStream` containing no token trees.
    pub fn new() -> TokenStream {
        TokenStream {
            trees: Rc::new(Vec::new()),
        }
    }

    /// Checks if this `TokenStream` is empty.
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    pub(crate) fn from_trees(trees: Vec<TokenTree>) -> TokenStream {
        TokenStream {
            trees: Rc::new(trees),
        }
    }

    pub(crate) fn trees(&self) -> &[TokenTree] {
        &self.trees
    }

    fn trees_mut(&mut self) -> &mut Vec<TokenTree> {
        Rc::make_mut(&mut self.trees)
    }
}

/// Attempts to break the string into tokens and parse those tokens into a token
/// stream. Every token gets `Span::call_site()`.
impl FromStr for TokenStream {
    type Err = LexError;

    fn from_str(src: &str) -> Result<TokenStream, LexError> {
        lexer::token_stream(src, Span::call_site())
    }
}

/// Prints the token stream as a string that is supposed to be losslessly
/// convertible back into the same token stream (modulo spans).
impl fmt::Display for TokenStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print::token_stream(self))
    }
}

/// Prints tokens in a form convenient for debugging.
impl fmt::Debug for TokenStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenStream ")?;
        f.debug_list().entries(self.trees.iter()).finish()
    }
}

impl Default for TokenStream {
    fn default() -> Self {
        TokenStream::new()
    }
}

/// Creates a token stream containing a single token tree.
impl From<TokenTree> for TokenStream {
    fn from(tree: TokenTree) -> TokenStream {
        TokenStream::from_trees(vec![tree])
    }
}

/// Collects a number of token trees into a single stream.
impl FromIterator<TokenTree> for TokenStream {
    fn from_iter<I: IntoIterator<Item = TokenTree>>(trees: I) -> Self {
        TokenStream::from_trees(trees.into_iter().collect())
    }
}

/// A "flattening" operation on token streams, collects token trees
/// from multiple token streams into a single stream.
impl FromIterator<TokenStream> for TokenStream {
    fn from_iter<I: IntoIterator<Item = TokenStream>>(streams: I) -> Self {
        let mut stream = TokenStream::new();
        stream.extend(streams);
        stream
    }
}

impl Extend<TokenTree> for TokenStream {
    fn extend<I: IntoIterator<Item = TokenTree>>(&mut self, trees: I) {
        self.trees_mut().extend(trees);
    }
}

impl Extend<TokenStream> for TokenStream {
    fn extend<I: IntoIterator<Item = TokenStream>>(&mut self, streams: I) {
        for stream in streams {
            if self.trees.is_empty() {
                *self = stream;
            } else if !stream.trees.is_empty() {
                let trees = Rc::try_unwrap(stream.trees).unwrap_or_else(|rc| (*rc).clone());
                self.trees_mut().extend(trees);
            }
        }
    }
}

macro_rules! extend_items {
    ($($item:ident)*) => {
        $(
            impl Extend<$item> for TokenStream {
                fn extend<T: IntoIterator<Item = $item>>(&mut self, iter: T) {
                    self.extend(iter.into_iter().map(TokenTree::$item));
                }
            }
        )*
    };
}

extend_items!(Group Literal Punct Ident);

/// Public implementation details for the `TokenStream` type, such as iterators.
pub mod token_stream {
    use crate::{TokenStream, TokenTree};
    use std::rc::Rc;

    /// An iterator over `TokenStream`'s `TokenTree`s.
    /// The iteration is "shallow", e.g., the iterator doesn't recurse into
    /// delimited groups, and returns whole groups as token trees.
    #[derive(Clone)]
    pub struct IntoIter(std::vec::IntoIter<TokenTree>);

    impl Iterator for IntoIter {
        type Item = TokenTree;

        fn next(&mut self) -> Option<TokenTree> {
            self.0.next()
        }

        fn size_hint(&self) -> (usize, Option<usize>) {
            self.0.size_hint()
        }

        fn count(self) -> usize {
            self.0.count()
        }
    }

    impl IntoIterator for TokenStream {
        type Item = TokenTree;
        type IntoIter = IntoIter;

        fn into_iter(self) -> IntoIter {
            let trees = Rc::try_unwrap(self.trees).unwrap_or_else(|rc| (*rc).clone());
            IntoIter(trees.into_iter())
        }
    }
}

/// A region of source code, along with macro expansion information.
///
/// Here a span is a handle into the host's span table for the running
/// expansion; every query that needs the compiler is answered by the host.
#[derive(Copy, Clone)]
pub struct Span {
    handle: u32,
    _marker: NotThreadSafe,
}

impl Span {
    pub(crate) const fn from_handle(handle: u32) -> Span {
        Span {
            handle,
            _marker: PhantomData,
        }
    }

    pub(crate) fn handle(self) -> u32 {
        self.handle
    }

    /// The span of the invocation of the current procedural macro.
    /// Identifiers created with this span will be resolved as if they were
    /// written directly at the macro call location (call-site hygiene) and
    /// other code at the macro call site will be able to refer to them as well.
    pub fn call_site() -> Span {
        Span::from_handle(bridge::call_site())
    }

    /// A span that represents `macro_rules` hygiene, and sometimes resolves at
    /// the macro definition site (local variables, labels, `$crate`) and
    /// sometimes at the macro call site (everything else).
    pub fn mixed_site() -> Span {
        Span::from_handle(bridge::mixed_site())
    }

    /// Creates an empty span pointing to directly before this span.
    pub fn start(&self) -> Span {
        Span::from_handle(bridge::host().start(self.handle))
    }

    /// Creates an empty span pointing to directly after this span.
    pub fn end(&self) -> Span {
        Span::from_handle(bridge::host().end(self.handle))
    }

    /// The one-indexed line of the source file where the span starts.
    pub fn line(&self) -> usize {
        bridge::host().line(self.handle) as usize
    }

    /// The one-indexed column of the source file where the span starts.
    pub fn column(&self) -> usize {
        bridge::host().column(self.handle) as usize
    }

    /// The path to the source file in which this span occurs, for display
    /// purposes.
    pub fn file(&self) -> String {
        bridge::host().file(self.handle)
    }

    /// The path to the source file in which this span occurs on the local file
    /// system.
    pub fn local_file(&self) -> Option<PathBuf> {
        bridge::host().local_file(self.handle).map(PathBuf::from)
    }

    /// Creates a new span with the same line/column information as `self` but
    /// that resolves symbols as though it were at `other`.
    pub fn resolved_at(&self, other: Span) -> Span {
        Span::from_handle(bridge::host().resolved_at(self.handle, other.handle))
    }

    /// Creates a new span with the same name resolution behavior as `self` but
    /// with the line/column information of `other`.
    pub fn located_at(&self, other: Span) -> Span {
        other.resolved_at(*self)
    }

    /// Returns the source text behind a span. This preserves the original source
    /// code, including spaces and comments. It only returns a result if the span
    /// corresponds to real source code.
    pub fn source_text(&self) -> Option<String> {
        bridge::host().source_text(self.handle)
    }
}

/// Prints a span in a form convenient for debugging.
impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bridge::host().debug(self.handle))
    }
}

/// A single token or a delimited sequence of token trees (e.g., `[1, (), ..]`).
#[derive(Clone)]
pub enum TokenTree {
    /// A token stream surrounded by bracket delimiters.
    Group(Group),
    /// An identifier.
    Ident(Ident),
    /// A single punctuation character (`+`, `,`, `$`, etc.).
    Punct(Punct),
    /// A literal character (`'a'`), string (`"hello"`), number (`2.3`), etc.
    Literal(Literal),
}

impl TokenTree {
    /// Returns the span of this tree, delegating to the `span` method of
    /// the contained token or a delimited stream.
    pub fn span(&self) -> Span {
        match self {
            TokenTree::Group(t) => t.span(),
            TokenTree::Ident(t) => t.span(),
            TokenTree::Punct(t) => t.span(),
            TokenTree::Literal(t) => t.span(),
        }
    }

    /// Configures the span for *only this token*.
    pub fn set_span(&mut self, span: Span) {
        match self {
            TokenTree::Group(t) => t.set_span(span),
            TokenTree::Ident(t) => t.set_span(span),
            TokenTree::Punct(t) => t.set_span(span),
            TokenTree::Literal(t) => t.set_span(span),
        }
    }
}

/// Prints token tree in a form convenient for debugging.
impl fmt::Debug for TokenTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenTree::Group(tt) => tt.fmt(f),
            TokenTree::Ident(tt) => tt.fmt(f),
            TokenTree::Punct(tt) => tt.fmt(f),
            TokenTree::Literal(tt) => tt.fmt(f),
        }
    }
}

impl From<Group> for TokenTree {
    fn from(g: Group) -> TokenTree {
        TokenTree::Group(g)
    }
}

impl From<Ident> for TokenTree {
    fn from(g: Ident) -> TokenTree {
        TokenTree::Ident(g)
    }
}

impl From<Punct> for TokenTree {
    fn from(g: Punct) -> TokenTree {
        TokenTree::Punct(g)
    }
}

impl From<Literal> for TokenTree {
    fn from(g: Literal) -> TokenTree {
        TokenTree::Literal(g)
    }
}

/// Prints the token tree as a string that is supposed to be losslessly
/// convertible back into the same token tree (modulo spans).
impl fmt::Display for TokenTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenTree::Group(t) => write!(f, "{t}"),
            TokenTree::Ident(t) => write!(f, "{t}"),
            TokenTree::Punct(t) => write!(f, "{t}"),
            TokenTree::Literal(t) => write!(f, "{t}"),
        }
    }
}

/// A delimited token stream.
#[derive(Clone)]
pub struct Group {
    delimiter: Delimiter,
    stream: TokenStream,
    span: DelimSpan,
}

/// The three spans of a group: the whole group and its two delimiters.
#[derive(Copy, Clone)]
pub(crate) struct DelimSpan {
    pub(crate) entire: Span,
    pub(crate) open: Span,
    pub(crate) close: Span,
}

impl DelimSpan {
    pub(crate) fn from_single(span: Span) -> DelimSpan {
        DelimSpan {
            entire: span,
            open: span,
            close: span,
        }
    }
}

/// Describes how a sequence of token trees is delimited.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Delimiter {
    /// `( ... )`
    Parenthesis,
    /// `{ ... }`
    Brace,
    /// `[ ... ]`
    Bracket,
    /// `∅ ... ∅`
    /// An invisible delimiter, that may, for example, appear around tokens
    /// coming from a "macro variable" `$var`.
    None,
}

impl Group {
    /// Creates a new `Group` with the given delimiter and token stream.
    ///
    /// The span of the group is set to `Span::call_site()`.
    pub fn new(delimiter: Delimiter, stream: TokenStream) -> Group {
        Group {
            delimiter,
            stream,
            span: DelimSpan::from_single(Span::call_site()),
        }
    }

    pub(crate) fn with_spans(delimiter: Delimiter, stream: TokenStream, span: DelimSpan) -> Group {
        Group {
            delimiter,
            stream,
            span,
        }
    }

    /// Returns the delimiter of this `Group`.
    pub fn delimiter(&self) -> Delimiter {
        self.delimiter
    }

    /// Returns the `TokenStream` of tokens that are delimited in this `Group`.
    ///
    /// Note that the returned token stream does not include the delimiter
    /// returned above.
    pub fn stream(&self) -> TokenStream {
        self.stream.clone()
    }

    /// Returns the span for the delimiters of this token stream, spanning the
    /// entire `Group`.
    pub fn span(&self) -> Span {
        self.span.entire
    }

    /// Returns the span pointing to the opening delimiter of this group.
    pub fn span_open(&self) -> Span {
        self.span.open
    }

    /// Returns the span pointing to the closing delimiter of this group.
    pub fn span_close(&self) -> Span {
        self.span.close
    }

    /// Configures the span for this `Group`'s delimiters, but not its internal
    /// tokens.
    pub fn set_span(&mut self, span: Span) {
        self.span = DelimSpan::from_single(span);
    }
}

/// Prints the group as a string that should be losslessly convertible back
/// into the same group (modulo spans).
impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", TokenStream::from(TokenTree::from(self.clone())))
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("delimiter", &self.delimiter())
            .field("stream", &self.stream())
            .field("span", &self.span())
            .finish()
    }
}

/// A `Punct` is a single punctuation character such as `+`, `-` or `#`.
#[derive(Clone)]
pub struct Punct {
    ch: char,
    spacing: Spacing,
    span: Span,
}

/// Indicates whether a `Punct` token can join with the following token
/// to form a multi-character operator.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Spacing {
    /// A `Punct` token can join with the following token to form a
    /// multi-character operator.
    Joint,
    /// A `Punct` token cannot join with the following token to form a
    /// multi-character operator.
    Alone,
}

/// The characters rustc accepts in a `Punct`.
pub(crate) const LEGAL_PUNCT_CHARS: &[char] = &[
    '=', '<', '>', '!', '~', '+', '-', '*', '/', '%', '^', '&', '|', '@', '.', ',', ';', ':', '#',
    '$', '?', '\'',
];

impl Punct {
    /// Creates a new `Punct` from the given character and spacing.
    /// The `ch` argument must be a valid punctuation character permitted by the
    /// language, otherwise the function will panic.
    ///
    /// The returned `Punct` will have the default span of `Span::call_site()`.
    pub fn new(ch: char, spacing: Spacing) -> Punct {
        if !LEGAL_PUNCT_CHARS.contains(&ch) {
            panic!("unsupported character `{:?}`", ch);
        }
        Punct {
            ch,
            spacing,
            span: Span::call_site(),
        }
    }

    pub(crate) fn with_span(ch: char, spacing: Spacing, span: Span) -> Punct {
        Punct { ch, spacing, span }
    }

    /// Returns the value of this punctuation character as `char`.
    pub fn as_char(&self) -> char {
        self.ch
    }

    /// Returns the spacing of this punctuation character.
    pub fn spacing(&self) -> Spacing {
        self.spacing
    }

    /// Returns the span for this punctuation character.
    pub fn span(&self) -> Span {
        self.span
    }

    /// Configure the span for this punctuation character.
    pub fn set_span(&mut self, span: Span) {
        self.span = span;
    }
}

/// Prints the punctuation character as a string that should be losslessly
/// convertible back into the same character.
impl fmt::Display for Punct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

impl fmt::Debug for Punct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Punct")
            .field("ch", &self.as_char())
            .field("spacing", &self.spacing())
            .field("span", &self.span())
            .finish()
    }
}

impl PartialEq<char> for Punct {
    fn eq(&self, rhs: &char) -> bool {
        self.as_char() == *rhs
    }
}

impl PartialEq<Punct> for char {
    fn eq(&self, rhs: &Punct) -> bool {
        *self == rhs.as_char()
    }
}

/// An identifier (`ident`).
#[derive(Clone)]
pub struct Ident {
    sym: Rc<str>,
    is_raw: bool,
    span: Span,
}

impl Ident {
    /// Creates a new `Ident` with the given `string` as well as the specified
    /// `span`.
    /// The `string` argument must be a valid identifier permitted by the
    /// language (including keywords, e.g. `self` or `fn`). Otherwise, the
    /// function will panic.
    pub fn new(string: &str, span: Span) -> Ident {
        if let Err(message) = lexer::validate_ident(string, false) {
            panic!("{message}");
        }
        Ident::new_unchecked(string, false, span)
    }

    /// Same as `Ident::new`, but creates a raw identifier (`r#ident`).
    /// The `string` argument be a valid identifier permitted by the language
    /// (including keywords, e.g. `fn`). Keywords which are usable in path
    /// segments (e.g. `self`, `super`) are not supported, and will cause a
    /// panic.
    pub fn new_raw(string: &str, span: Span) -> Ident {
        if let Err(message) = lexer::validate_ident(string, true) {
            panic!("{message}");
        }
        Ident::new_unchecked(string, true, span)
    }

    /// Builds an identifier from a validated name, stored in NFC as rustc
    /// stores every identifier.
    pub(crate) fn new_unchecked(string: &str, is_raw: bool, span: Span) -> Ident {
        let sym = if string.is_ascii() {
            Rc::from(string)
        } else {
            Rc::from(&*unicode_ident::nfc(string))
        };
        Ident { sym, is_raw, span }
    }

    pub(crate) fn name(&self) -> &str {
        &self.sym
    }

    pub(crate) fn is_raw(&self) -> bool {
        self.is_raw
    }

    /// Returns the span of this `Ident`, encompassing the entire string returned
    /// by [`to_string`](ToString::to_string).
    pub fn span(&self) -> Span {
        self.span
    }

    /// Configures the span of this `Ident`, possibly changing its hygiene
    /// context.
    pub fn set_span(&mut self, span: Span) {
        self.span = span;
    }
}

/// Prints the identifier as a string that should be losslessly convertible back
/// into the same identifier.
impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_raw {
            f.write_str("r#")?;
        }
        f.write_str(&self.sym)
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ident")
            .field("ident", &self.to_string())
            .field("span", &self.span())
            .finish()
    }
}

/// The kind of a literal, as rustc's bridge records it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum LitKind {
    Byte,
    Char,
    Integer,
    Float,
    Str,
    /// A raw string with this many `#`s.
    StrRaw(u8),
    ByteStr,
    ByteStrRaw(u8),
    CStr,
    CStrRaw(u8),
}

/// A literal string (`"hello"`), byte string (`b"hello"`), C string (`c"hello"`),
/// character (`'a'`), byte character (`b'a'`), an integer or floating point
/// number with or without a suffix (`1`, `1u8`, `2.3`, `2.3f32`).
/// Boolean literals like `true` and `false` do not belong here, they are
/// `Ident`s.
#[derive(Clone)]
pub struct Literal {
    kind: LitKind,
    /// The contents between the quotes (or the digits), as written.
    symbol: Rc<str>,
    suffix: Option<Rc<str>>,
    span: Span,
}

macro_rules! suffixed_int_literals {
    ($($name:ident => $kind:ident,)*) => ($(
        /// Creates a new suffixed integer literal with the specified value.
        ///
        /// Literals created through this method have the `Span::call_site()`
        /// span by default, which can be configured with the `set_span` method
        /// below.
        pub fn $name(n: $kind) -> Literal {
            Literal::new(LitKind::Integer, &n.to_string(), Some(stringify!($kind)))
        }
    )*)
}

macro_rules! unsuffixed_int_literals {
    ($($name:ident => $kind:ident,)*) => ($(
        /// Creates a new unsuffixed integer literal with the specified value.
        ///
        /// Literals created through this method have the `Span::call_site()`
        /// span by default, which can be configured with the `set_span` method
        /// below.
        pub fn $name(n: $kind) -> Literal {
            Literal::new(LitKind::Integer, &n.to_string(), None)
        }
    )*)
}

impl Literal {
    fn new(kind: LitKind, symbol: &str, suffix: Option<&str>) -> Literal {
        Literal::from_parts(kind, symbol, suffix, Span::call_site())
    }

    pub(crate) fn from_parts(
        kind: LitKind,
        symbol: &str,
        suffix: Option<&str>,
        span: Span,
    ) -> Literal {
        Literal {
            kind,
            symbol: Rc::from(symbol),
            suffix: suffix.map(Rc::from),
            span,
        }
    }

    suffixed_int_literals! {
        u8_suffixed => u8,
        u16_suffixed => u16,
        u32_suffixed => u32,
        u64_suffixed => u64,
        u128_suffixed => u128,
        usize_suffixed => usize,
        i8_suffixed => i8,
        i16_suffixed => i16,
        i32_suffixed => i32,
        i64_suffixed => i64,
        i128_suffixed => i128,
        isize_suffixed => isize,
    }

    unsuffixed_int_literals! {
        u8_unsuffixed => u8,
        u16_unsuffixed => u16,
        u32_unsuffixed => u32,
        u64_unsuffixed => u64,
        u128_unsuffixed => u128,
        usize_unsuffixed => usize,
        i8_unsuffixed => i8,
        i16_unsuffixed => i16,
        i32_unsuffixed => i32,
        i64_unsuffixed => i64,
        i128_unsuffixed => i128,
        isize_unsuffixed => isize,
    }

    /// Creates a new unsuffixed floating-point literal.
    ///
    /// # Panics
    ///
    /// This function requires that the specified float is finite.
    pub fn f32_unsuffixed(n: f32) -> Literal {
        if !n.is_finite() {
            panic!("Invalid float literal {n}");
        }
        let mut repr = n.to_string();
        if !repr.contains('.') {
            repr.push_str(".0");
        }
        Literal::new(LitKind::Float, &repr, None)
    }

    /// Creates a new suffixed floating-point literal.
    ///
    /// # Panics
    ///
    /// This function requires that the specified float is finite.
    pub fn f32_suffixed(n: f32) -> Literal {
        if !n.is_finite() {
            panic!("Invalid float literal {n}");
        }
        Literal::new(LitKind::Float, &n.to_string(), Some("f32"))
    }

    /// Creates a new unsuffixed floating-point literal.
    ///
    /// # Panics
    ///
    /// This function requires that the specified float is finite.
    pub fn f64_unsuffixed(n: f64) -> Literal {
        if !n.is_finite() {
            panic!("Invalid float literal {n}");
        }
        let mut repr = n.to_string();
        if !repr.contains('.') {
            repr.push_str(".0");
        }
        Literal::new(LitKind::Float, &repr, None)
    }

    /// Creates a new suffixed floating-point literal.
    ///
    /// # Panics
    ///
    /// This function requires that the specified float is finite.
    pub fn f64_suffixed(n: f64) -> Literal {
        if !n.is_finite() {
            panic!("Invalid float literal {n}");
        }
        Literal::new(LitKind::Float, &n.to_string(), Some("f64"))
    }

    /// String literal.
    pub fn string(string: &str) -> Literal {
        let repr = escape::escape_bytes(string.as_bytes(), escape::STRING);
        Literal::new(LitKind::Str, &repr, None)
    }

    /// Character literal.
    pub fn character(ch: char) -> Literal {
        let repr = escape::escape_bytes(ch.encode_utf8(&mut [0u8; 4]).as_bytes(), escape::CHAR);
        Literal::new(LitKind::Char, &repr, None)
    }

    /// Byte character literal.
    pub fn byte_character(byte: u8) -> Literal {
        let repr = escape::escape_bytes(&[byte], escape::BYTE_CHAR);
        Literal::new(LitKind::Byte, &repr, None)
    }

    /// Byte string literal.
    pub fn byte_string(bytes: &[u8]) -> Literal {
        let repr = escape::escape_bytes(bytes, escape::BYTE_STRING);
        Literal::new(LitKind::ByteStr, &repr, None)
    }

    /// C string literal.
    pub fn c_string(string: &CStr) -> Literal {
        let repr = escape::escape_bytes(string.to_bytes(), escape::STRING);
        Literal::new(LitKind::CStr, &repr, None)
    }

    /// Returns the span encompassing this literal.
    pub fn span(&self) -> Span {
        self.span
    }

    /// Configures the span associated for this literal.
    pub fn set_span(&mut self, span: Span) {
        self.span = span;
    }
}

/// Parses a single literal, optionally preceded by `-` for a number.
impl FromStr for Literal {
    type Err = LexError;

    fn from_str(src: &str) -> Result<Self, LexError> {
        lexer::literal(src, Span::call_site())
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn hashes(n: u8) -> String {
            "#".repeat(usize::from(n))
        }
        let symbol = &*self.symbol;
        match self.kind {
            LitKind::Byte => write!(f, "b'{symbol}'")?,
            LitKind::Char => write!(f, "'{symbol}'")?,
            LitKind::Str => write!(f, "\"{symbol}\"")?,
            LitKind::StrRaw(n) => write!(f, "r{0}\"{symbol}\"{0}", hashes(n))?,
            LitKind::ByteStr => write!(f, "b\"{symbol}\"")?,
            LitKind::ByteStrRaw(n) => write!(f, "br{0}\"{symbol}\"{0}", hashes(n))?,
            LitKind::CStr => write!(f, "c\"{symbol}\"")?,
            LitKind::CStrRaw(n) => write!(f, "cr{0}\"{symbol}\"{0}", hashes(n))?,
            LitKind::Integer | LitKind::Float => f.write_str(symbol)?,
        }
        if let Some(suffix) = &self.suffix {
            f.write_str(suffix)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Literal")
            // format the kind on one line even in {:#?} mode
            .field("kind", &format_args!("{:?}", self.kind))
            .field("symbol", &&*self.symbol)
            // format `Some("...")` on one line even in {:#?} mode
            .field("suffix", &format_args!("{:?}", self.suffix.as_deref()))
            .field("span", &self.span)
            .finish()
    }
}
