//! The messages between a shim proc macro inside rustc and the wasmacro
//! server that runs the component, and their binary encoding.
//!
//! A shim is a native proc-macro crate generated for one component; the first
//! time rustc calls one of its macros it starts `wasmacro serve` and then talks
//! to it over the child's stdin/stdout with length-prefixed frames:
//!
//! ```text
//! shim                                   server
//!  | Hello{version, component, grants} ->  |  load the component
//!  |  <-------  Ready | Fatal             |
//!  | Expand{macro, tokens, spans} ----->  |  run the guest
//!  |  <-------  SpanQuery{..}             |  (guest asked for source text, …)
//!  | SpanAnswer{..}  ------------------>  |
//!  |  <-------  Expanded{result, inputs}  |
//! ```
//!
//! This crate is compiled into every generated shim by invoking rustc
//! directly, so it must never depend on another crate, and it treats every
//! byte it reads as untrusted: decoding returns [`DecodeError`], never panics.

#![warn(missing_docs)]

mod codec;
pub mod flat;
mod grants;
pub mod runtime_abi;

pub use codec::{DecodeError, Decoder, Encoder, read_frame, write_frame};
pub use grants::{ROOTS, below, env_matches, normalize};

/// Bumped whenever a message changes shape. A shim and a server only talk if
/// their versions are equal.
pub const PROTOCOL_VERSION: u32 = 4;

/// The WIT package every component is built against (`wit/wasmacro.wit`).
pub const CONTRACT_PACKAGE: &str = "wasmacro:proc-macro";

/// The version of [`CONTRACT_PACKAGE`] this wasmacro implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The environment variable through which `wasmacro rustc` tells the shims
/// which `wasmacro` executable to start as their server.
pub const SERVER_ENV: &str = "WASMACRO_SERVER";

/// The environment variable through which `wasmacro rustc` names the file
/// shims append what expansions read to (for rustc's dep-info).
pub const INPUTS_ENV: &str = "WASMACRO_INPUTS";

/// The largest frame either side accepts (256 MiB), so a corrupt length prefix
/// cannot make the reader allocate without bound.
pub const MAX_FRAME_LEN: u32 = 256 << 20;

/// An index into the shim's span table for the current expansion.
pub type SpanHandle = u32;

/// The most spans one expansion's table holds: handles fit in 24 bits, and
/// the runtime tags the handles it gives a guest with the expansion's
/// generation in the 8 bits above.
pub const MAX_SPANS: u32 = 1 << 24;

/// How a group is delimited.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Delimiter {
    /// `( … )`
    Parenthesis,
    /// `{ … }`
    Brace,
    /// `[ … ]`
    Bracket,
    /// An invisible delimiter.
    None,
}

/// One token of a flattened (pre-order) token stream, as in the WIT contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// A group; the next `len` tokens (the whole subtree) are its contents.
    Group {
        /// The delimiter.
        delimiter: Delimiter,
        /// The span of the whole group.
        span: SpanHandle,
        /// The span of the opening delimiter.
        open: SpanHandle,
        /// The span of the closing delimiter.
        close: SpanHandle,
        /// The number of tokens in the subtree.
        len: u32,
    },
    /// An identifier.
    Ident {
        /// The name without `r#`.
        name: String,
        /// Whether it is a raw identifier.
        is_raw: bool,
        /// Its span.
        span: SpanHandle,
    },
    /// A punctuation character.
    Punct {
        /// The character.
        ch: char,
        /// Whether it joins with the next punct.
        joint: bool,
        /// Its span.
        span: SpanHandle,
    },
    /// A literal, as written in source.
    Literal {
        /// The literal's text, e.g. `"a"` or `1u8`.
        text: String,
        /// Its span.
        span: SpanHandle,
    },
}

/// What kind of proc macro a declaration is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MacroKind {
    /// `#[proc_macro_derive]`
    Derive,
    /// `#[proc_macro_attribute]`
    Attribute,
    /// `#[proc_macro]`
    Function,
}

/// A macro a component exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacroDecl {
    /// The name users write.
    pub name: String,
    /// Derive, attribute or function-like.
    pub kind: MacroKind,
    /// Helper attributes of a derive.
    pub helper_attributes: Vec<String>,
}

/// One expansion, as the shim asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandRequest {
    /// Which macro to run.
    pub macro_name: String,
    /// The item or the macro's arguments.
    pub input: Vec<Token>,
    /// An attribute macro's own arguments.
    pub attribute_args: Option<Vec<Token>>,
    /// `Span::call_site()`.
    pub call_site: SpanHandle,
    /// `Span::mixed_site()`.
    pub mixed_site: SpanHandle,
}

/// Why an expansion produced no tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpandFailure {
    /// The macro panicked, with the payload's message if it had one: rustc
    /// reports it as the native macro's panic.
    Panicked(Option<String>),
    /// The runtime could not run the macro (a trap, a limit, a broken
    /// component); the text is a complete, user-facing explanation.
    Error(String),
}

/// A question the guest asks about a span, forwarded to the shim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanQuery {
    /// `Span::source_text`
    SourceText(SpanHandle),
    /// `Span::start`
    Start(SpanHandle),
    /// `Span::end`
    End(SpanHandle),
    /// `Span::line`
    Line(SpanHandle),
    /// `Span::column`
    Column(SpanHandle),
    /// `Span::file`
    File(SpanHandle),
    /// `Span::local_file`
    LocalFile(SpanHandle),
    /// `Span::resolved_at`
    ResolvedAt(SpanHandle, SpanHandle),
    /// `Debug for Span`
    Debug(SpanHandle),
}

/// The shim's answer to a [`SpanQuery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanAnswer {
    /// A new or existing span handle.
    Span(SpanHandle),
    /// A number (line, column).
    Number(u32),
    /// A string (file, debug).
    Text(String),
    /// An optional string (source text, local file).
    MaybeText(Option<String>),
    /// The query named a handle the shim never handed out.
    InvalidHandle(SpanHandle),
}

/// What a macro may read during one compilation, resolved by the shim from
/// the crate's environment: the only files and variables its guest sees.
///
/// Paths are named relative to a root (`$CARGO_MANIFEST_DIR/templates`) in
/// everything the guest's result depends on, so a project checked out
/// elsewhere expands to the same bytes; only [`Root::path`] is absolute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// The macro's package, as policies name it.
    pub package: String,
    /// The named roots of this compilation that exist.
    pub roots: Vec<Root>,
    /// Files and directories the guest may read (a directory: everything
    /// below it), at their real locations.
    pub read: Vec<ReadGrant>,
    /// The environment variables the guest sees, sorted by name.
    pub env: Vec<(String, String)>,
    /// The variable names and patterns the policy grants (`CARGO_PKG_*`),
    /// for messages.
    pub env_patterns: Vec<String>,
}

/// A named root: `$CARGO_MANIFEST_DIR` and the like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// Its name, with the `$`.
    pub name: String,
    /// Its absolute path on this machine.
    pub path: String,
}

/// One readable path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadGrant {
    /// The index of its root in [`Grants::roots`].
    pub root: u32,
    /// The path below the root, `/`-separated, without `.` or `..`; empty
    /// for the root itself.
    pub relative: String,
    /// Who granted it, for messages (`built in for askama_macros`).
    pub origin: String,
}

/// Something an expansion read, named relative to its root.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Input {
    /// A file, with the BLAKE3 of its contents.
    File {
        /// `$ROOT/relative/path`.
        path: String,
        /// Hex BLAKE3 of the contents.
        digest: String,
    },
    /// A directory listed, with the BLAKE3 of its sorted entry names.
    Directory {
        /// `$ROOT/relative/path`.
        path: String,
        /// Hex BLAKE3 of the listing.
        digest: String,
    },
    /// A path looked up that does not exist.
    Missing {
        /// `$ROOT/relative/path`.
        path: String,
    },
    /// An environment variable, with its value (`None`: granted by name,
    /// but not set; a path below a root is named from it).
    Env {
        /// The name.
        name: String,
        /// The value.
        value: Option<String>,
    },
}

/// What a shim says first: which component to serve, and on what terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the shim.
    pub version: u32,
    /// The component's content hash (hex BLAKE3 of its bytes).
    pub component: String,
    /// The name of the macro crate, for messages.
    pub crate_name: String,
    /// What the macro may read in this compilation.
    pub grants: Grants,
    /// Whether the policy declares the macro stateless: with the expansion
    /// cache on, every expansion then gets a fresh instance, and its result
    /// depends on its own inputs alone (what makes a cached expansion
    /// reusable on its own). Otherwise the instance lives for the
    /// compilation, as native macro state does.
    pub stateless: bool,
}

/// A message from the shim to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShimMessage {
    /// The first message: which component to serve, and what it may read.
    Hello(Hello),
    /// Run one expansion.
    Expand(ExpandRequest),
    /// The answer to the last [`ServerMessage::SpanQuery`].
    SpanAnswer(SpanAnswer),
}

/// A message from the server to the shim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMessage {
    /// The session is open. (The component itself is loaded when an
    /// expansion first has to run: one that every expansion finds in the
    /// expansion cache is never loaded.)
    Ready,
    /// The server cannot serve this shim at all; the text explains why.
    Fatal(String),
    /// The guest needs the compiler's answer about a span.
    SpanQuery(SpanQuery),
    /// The expansion finished.
    Expanded {
        /// The output tokens or why there are none.
        result: Result<Vec<Token>, ExpandFailure>,
        /// What the guest wrote to stdout and stderr, to forward to rustc's
        /// stderr.
        output: String,
        /// What the expansion read, sorted, each once: the shim reports it
        /// so rustc's dep-info makes cargo rebuild when it changes.
        inputs: Vec<Input>,
        /// Where the guest was when it trapped (a panic included), innermost
        /// frame first, or empty. The shim shows it only when asked
        /// (`RUST_BACKTRACE`), so an error reads the same as a native one.
        backtrace: String,
    },
}
