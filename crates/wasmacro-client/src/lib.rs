//! The code inside every generated shim proc macro: it runs in rustc's
//! process, turns rustc's token streams into flat protocol tokens (keeping the
//! real spans in a [`SpanTable`]), sends them to a `wasmacro serve` process it
//! starts once per compilation, answers the guest's span queries, and turns
//! the result back into rustc tokens.
//!
//! It must never: crash rustc (every failure becomes a `compile_error!` or, for
//! a guest panic, the same panic a native macro would raise), trust a token or
//! span handle coming back from the server without validating it, or leave the
//! server running after rustc exits (the server ends when its stdin closes).

extern crate proc_macro;

mod call_site_text;
mod grants;
mod in_process;

pub use grants::GrantSpec;

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use std::io::{BufReader, BufWriter};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use wasmacro_protocol as protocol;
pub use wasmacro_protocol::MacroKind as Kind;
use wasmacro_protocol::{
    ExpandFailure, ExpandRequest, MacroKind, PROTOCOL_VERSION, SERVER_ENV, ServerMessage,
    ShimMessage, SpanAnswer, SpanHandle, SpanQuery, read_frame, write_frame,
};

/// The real spans of one expansion; the guest only ever sees indices.
///
/// It also remembers the input's groups: stable `proc_macro` cannot set a
/// group's delimiter spans separately, so a group the macro hands back
/// unchanged is returned as rustc's original `Group`, delimiter spans intact.
///
/// Handles are plain indices into the table, the same in every expansion of
/// the same tokens, so the runtime can key expansions by them. A handle a
/// guest kept in a `static` from an earlier expansion is caught by the
/// runtime, which tags the handles it gives each guest expansion with a
/// generation (native rustc panics with "use-after-free in `proc_macro`
/// handle" on such a span); here, a handle past the table's end is refused.
#[derive(Default)]
pub struct SpanTable {
    spans: Vec<Span>,
    /// Input groups by the handle of their whole span: the group and the
    /// range of its subtree (the group token included) in `input`.
    groups: Vec<Option<(Group, std::ops::Range<usize>)>>,
    input: Vec<protocol::Token>,
}

impl SpanTable {
    /// The table of a new expansion.
    pub fn new() -> SpanTable {
        SpanTable::default()
    }

    /// Records a span and returns its handle. A table holds at most
    /// [`protocol::MAX_SPANS`] spans; past that, new spans are recorded as the
    /// call site (degraded locations rather than a failure).
    pub fn insert(&mut self, span: Span) -> SpanHandle {
        if self.spans.len() >= protocol::MAX_SPANS as usize {
            return 0;
        }
        let index = self.spans.len() as u32;
        self.spans.push(span);
        index
    }

    /// The table index of a handle of this expansion.
    fn index(&self, handle: SpanHandle) -> Option<usize> {
        let index = handle as usize;
        (index < self.spans.len()).then_some(index)
    }

    /// The span behind a handle, if this expansion handed it out.
    pub fn get(&self, handle: SpanHandle) -> Option<Span> {
        self.spans.get(self.index(handle)?).copied()
    }

    /// The original group whose subtree is exactly `subtree`, if any.
    fn original_group(&self, subtree: &[protocol::Token]) -> Option<Group> {
        let protocol::Token::Group { span, .. } = subtree.first()? else {
            return None;
        };
        let (group, range) = self.groups.get(self.index(*span)?)?.as_ref()?;
        (self.input.get(range.clone())? == subtree).then(|| group.clone())
    }
}

/// What a shim says about the macro it is expanding.
pub struct Invocation<'a> {
    /// The component's hash.
    pub component: &'a str,
    /// The macro crate's name, for messages.
    pub crate_name: &'a str,
    /// The macro's name.
    pub macro_name: &'a str,
    /// Its kind.
    pub kind: MacroKind,
    /// What the project's policy lets it read.
    pub grants: &'a GrantSpec<'a>,
    /// Whether the policy declares the macro crate stateless (with the
    /// expansion cache on, a fresh instance per expansion).
    pub stateless: bool,
}

impl Invocation<'_> {
    fn describe(&self) -> String {
        let kind = match self.kind {
            MacroKind::Derive => "derive macro",
            MacroKind::Attribute => "attribute macro",
            MacroKind::Function => "function-like macro",
        };
        format!(
            "{kind} `{}` of `{}` (wasm)",
            self.macro_name, self.crate_name
        )
    }
}

/// Runs one expansion in the component and returns rustc tokens. A guest
/// panic is re-raised as a panic with the same message, so rustc reports it
/// exactly as it would for the native macro; anything else becomes a
/// `compile_error!` naming the macro.
pub fn expand(
    invocation: Invocation<'_>,
    args: Option<TokenStream>,
    input: TokenStream,
) -> TokenStream {
    // A failed attribute macro keeps its item, so the error is not buried
    // under "cannot find …" errors for everything the item defined.
    let item = (invocation.kind == MacroKind::Attribute).then(|| input.clone());
    let started = std::time::Instant::now();
    let outcome = run(&invocation, args, input);
    timing::record(started.elapsed());
    match outcome {
        Ok(tokens) => tokens,
        Err(Failure::Panicked(message)) => match message {
            Some(message) => std::panic::resume_unwind(Box::new(message)),
            None => std::panic::resume_unwind(Box::new(())),
        },
        Err(Failure::Error(reason)) => {
            let mut tokens = compile_error(&format!(
                "wasmacro could not run the {}: {reason}",
                invocation.describe()
            ));
            tokens.extend(item);
            tokens
        }
    }
}

/// For the benchmark: what an expansion costs on the macro's side of
/// rustc's bridge (flattening, the runtime, rebuilding rustc's tokens),
/// which rustc's own timings cannot separate from its work on the result.
mod timing {
    use std::io::Write as _;
    use std::sync::OnceLock;

    /// A file to which each expansion appends its time in nanoseconds.
    const ENV: &str = "WASMACRO_SHIM_TIMES";

    pub(crate) fn record(elapsed: std::time::Duration) {
        static FILE: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();
        let Some(path) = FILE.get_or_init(|| std::env::var_os(ENV)) else {
            return;
        };
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{}", elapsed.as_nanos());
        }
    }
}

enum Failure {
    Panicked(Option<String>),
    Error(String),
}

fn run(
    invocation: &Invocation<'_>,
    args: Option<TokenStream>,
    input: TokenStream,
) -> Result<TokenStream, Failure> {
    let mut table = SpanTable::new();
    let call_site = table.insert(Span::call_site());
    let mixed_site = table.insert(Span::mixed_site());
    let request = ExpandRequest {
        macro_name: invocation.macro_name.to_string(),
        input: flatten(input, &mut table),
        attribute_args: args.map(|args| flatten(args, &mut table)),
        call_site,
        mixed_site,
    };

    // One connection per macro crate and what it may read, kept for the
    // process: in rustc that is one, for the crate being compiled. A host
    // that expands for many crates (rust-analyzer's proc-macro server sets
    // each crate's environment before expanding) needs one per crate: the
    // grants are resolved from that environment (roots, variable values),
    // and the sandbox is built from them once. A connection that could not
    // start is remembered, so each later expansion reports the same reason
    // instead of trying again.
    const MAX_CONNECTIONS: usize = 16;
    static CONNECTIONS: Mutex<Vec<(protocol::Grants, Result<Connection, String>)>> =
        Mutex::new(Vec::new());
    let grants = grants::resolve(invocation.grants);
    let mut slots = CONNECTIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let index = match slots.iter().position(|(g, _)| *g == grants) {
        Some(index) => index,
        None => {
            if slots.len() >= MAX_CONNECTIONS {
                // The least recently started; its server ends with its pipe.
                drop(slots.remove(0));
            }
            let connection = Connection::start(invocation, grants.clone());
            slots.push((grants, connection));
            slots.len() - 1
        }
    };
    let connection = match &mut slots[index].1 {
        Ok(connection) => connection,
        Err(reason) => return Err(Failure::Error(reason.clone())),
    };
    let outcome = connection.expand(request, &mut table);
    if outcome.is_err() && !connection.alive() {
        // The server died mid-expansion: the next expansion starts a new one.
        drop(slots.remove(index));
    }
    drop(slots);
    let tokens = outcome?;
    unflatten(&tokens, &table).map_err(|why| {
        Failure::Error(format!(
            "it returned {why}\nhelp: rustc cannot accept these tokens; this is a bug in the \
             macro or its component (`proc_macro` itself cannot make them)"
        ))
    })
}

/// How a shim reaches the runtime: the library loaded into rustc's process,
/// when the wrapper names one, else a `wasmacro serve` child process. Chosen
/// once, here.
/// Set by the user to insist on one transport (`server` or `in-process`).
const TRANSPORT_ENV: &str = "WASMACRO_TRANSPORT";

enum Connection {
    Server(ServerConnection),
    InProcess(in_process::Session),
}

impl Connection {
    fn start(invocation: &Invocation<'_>, grants: protocol::Grants) -> Result<Connection, String> {
        let hello = ShimMessage::Hello(protocol::Hello {
            version: PROTOCOL_VERSION,
            component: invocation.component.to_string(),
            crate_name: invocation.crate_name.to_string(),
            grants: grants.clone(),
            stateless: invocation.stateless,
        });
        match std::env::var_os(protocol::runtime_abi::RUNTIME_ENV) {
            // A library that does not load (another wasmacro's, a platform
            // without it) means the server, unless in process was asked for
            // by name: then its error is the answer.
            Some(library)
                if in_process::loads(&library).is_err()
                    && std::env::var(TRANSPORT_ENV).as_deref() != Ok("in-process") =>
            {
                ServerConnection::start(&hello, grants).map(Connection::Server)
            }
            Some(library) => {
                in_process::Session::open(&library, &hello, grants).map(Connection::InProcess)
            }
            None => ServerConnection::start(&hello, grants).map(Connection::Server),
        }
    }

    /// Whether the connection can serve another expansion.
    fn alive(&self) -> bool {
        match self {
            Connection::Server(server) => server.alive,
            Connection::InProcess(_) => true,
        }
    }

    fn expand(
        &mut self,
        request: ExpandRequest,
        table: &mut SpanTable,
    ) -> Result<Vec<protocol::Token>, Failure> {
        match self {
            Connection::Server(server) => server.expand(request, table),
            Connection::InProcess(session) => session.expand(request, table),
        }
    }
}

/// What an `Expanded` message means for rustc: what the guest printed goes
/// where a native macro's output would be seen (rustc's stderr), what it read
/// is recorded for the dep-info, and the result becomes tokens or a failure.
fn finish(
    message: ServerMessage,
    grants: &protocol::Grants,
) -> Result<Vec<protocol::Token>, Failure> {
    let ServerMessage::Expanded {
        result,
        output,
        inputs,
        backtrace,
    } = message
    else {
        return Err(Failure::Error(format!(
            "the wasmacro runtime answered with {message:?} instead of an expansion"
        )));
    };
    if !output.is_empty() {
        eprint!("{output}");
    }
    grants::record(grants, &inputs);
    // Where the guest trapped, when asked for as a program's backtrace is:
    // otherwise the error reads exactly as the native macro's.
    let backtrace = (!backtrace.is_empty() && backtrace_wanted()).then_some(backtrace);
    let with_backtrace = |text: String| match &backtrace {
        Some(backtrace) => format!("{text}\n{}", backtrace.trim_end()),
        None => text,
    };
    result.map_err(|failure| match failure {
        ExpandFailure::Panicked(message) => Failure::Panicked(match (message, &backtrace) {
            (Some(message), _) => Some(with_backtrace(message)),
            (None, Some(backtrace)) => Some(backtrace.trim_end().to_string()),
            (None, None) => None,
        }),
        ExpandFailure::Error(text) => Failure::Error(with_backtrace(text)),
    })
}

/// Whether `RUST_BACKTRACE` asks for backtraces (set, and not `0`).
fn backtrace_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A running `wasmacro serve` for one component.
struct ServerConnection {
    child: Child,
    writer: BufWriter<ChildStdin>,
    reader: BufReader<ChildStdout>,
    alive: bool,
    grants: protocol::Grants,
}

impl ServerConnection {
    fn start(hello: &ShimMessage, grants: protocol::Grants) -> Result<ServerConnection, String> {
        let Some(server) = std::env::var_os(SERVER_ENV) else {
            return Err(format!(
                "`{SERVER_ENV}` is not set; this shim must run under `wasmacro rustc` \
                 (or with `RUSTC_WRAPPER=wasmacro`)"
            ));
        };
        let mut child = Command::new(&server)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not start `{} serve`: {e}", server.to_string_lossy()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the wasmacro server has no pipes".into());
        };
        let mut connection = ServerConnection {
            child,
            writer: BufWriter::new(stdin),
            reader: BufReader::new(stdout),
            alive: true,
            grants,
        };
        connection.send(hello)?;
        match connection.receive()? {
            ServerMessage::Ready => Ok(connection),
            ServerMessage::Fatal(text) => Err(text),
            other => Err(format!(
                "the wasmacro server answered the handshake with {other:?}"
            )),
        }
    }

    fn send(&mut self, message: &ShimMessage) -> Result<(), String> {
        write_frame(&mut self.writer, &message.encode()).map_err(|e| self.lost(e.to_string()))
    }

    fn receive(&mut self) -> Result<ServerMessage, String> {
        match read_frame(&mut self.reader) {
            Ok(Some(frame)) => ServerMessage::decode(&frame)
                .map_err(|e| self.lost(format!("it sent a malformed message ({e})"))),
            Ok(None) => Err(self.lost("it exited".into())),
            Err(e) => Err(self.lost(e.to_string())),
        }
    }

    fn lost(&mut self, why: String) -> String {
        self.alive = false;
        let _ = self.child.kill();
        let status = self
            .child
            .wait()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        format!("lost the connection to the wasmacro server{status}: {why}")
    }

    fn expand(
        &mut self,
        request: ExpandRequest,
        table: &mut SpanTable,
    ) -> Result<Vec<protocol::Token>, Failure> {
        self.send(&ShimMessage::Expand(request))
            .map_err(Failure::Error)?;
        loop {
            match self.receive().map_err(Failure::Error)? {
                ServerMessage::SpanQuery(query) => {
                    let answer = answer(query, table);
                    self.send(&ShimMessage::SpanAnswer(answer))
                        .map_err(Failure::Error)?;
                }
                expanded @ ServerMessage::Expanded { .. } => {
                    return finish(expanded, &self.grants);
                }
                other => {
                    return Err(Failure::Error(
                        self.lost(format!("unexpected message {other:?}")),
                    ));
                }
            }
        }
    }
}

/// Answers one span query from the table; unknown handles are reported, not
/// trusted.
fn answer(query: SpanQuery, table: &mut SpanTable) -> SpanAnswer {
    fn span(table: &SpanTable, handle: SpanHandle) -> Result<Span, SpanAnswer> {
        table.get(handle).ok_or(SpanAnswer::InvalidHandle(handle))
    }
    let result = (|| {
        Ok(match query {
            SpanQuery::SourceText(h) => SpanAnswer::MaybeText(span(table, h)?.source_text()),
            SpanQuery::Start(h) => {
                let start = span(table, h)?.start();
                SpanAnswer::Span(table.insert(start))
            }
            SpanQuery::End(h) => {
                let end = span(table, h)?.end();
                SpanAnswer::Span(table.insert(end))
            }
            SpanQuery::Line(h) => SpanAnswer::Number(clamp(span(table, h)?.line())),
            SpanQuery::Column(h) => SpanAnswer::Number(clamp(span(table, h)?.column())),
            SpanQuery::File(h) => SpanAnswer::Text(span(table, h)?.file()),
            SpanQuery::LocalFile(h) => SpanAnswer::MaybeText(
                span(table, h)?
                    .local_file()
                    .map(|p| p.to_string_lossy().into_owned()),
            ),
            SpanQuery::ResolvedAt(h, other) => {
                let resolved = span(table, h)?.resolved_at(span(table, other)?);
                SpanAnswer::Span(table.insert(resolved))
            }
            SpanQuery::Debug(h) => SpanAnswer::Text(format!("{:?}", span(table, h)?)),
        })
    })();
    result.unwrap_or_else(|invalid| invalid)
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Flattens a rustc token stream into pre-order protocol tokens, recording
/// its groups in `table` so unchanged ones can be handed back as they were.
pub fn flatten(stream: TokenStream, table: &mut SpanTable) -> Vec<protocol::Token> {
    let mut groups = Vec::new();
    let tokens = protocol::flat::flatten::<Rustc>(
        stream,
        &mut |span| table.insert(span),
        &mut |handle, group, range| groups.push((handle, group, range)),
    );
    let base = table.input.len();
    for (handle, group, range) in groups {
        let Some(slot) = table.index(handle) else {
            continue;
        };
        if table.groups.len() <= slot {
            table.groups.resize(slot + 1, None);
        }
        table.groups[slot] = Some((group, range.start + base..range.end + base));
    }
    table.input.extend_from_slice(&tokens);
    tokens
}

/// rustc's `proc_macro`, for [`protocol::flat`].
struct Rustc;

impl protocol::flat::TokenTrees for Rustc {
    type Stream = TokenStream;
    type Tree = TokenTree;
    type Group = Group;
    type Span = Span;

    fn parts(tree: TokenTree) -> protocol::flat::TreeParts<Rustc> {
        use protocol::flat::TreeParts;
        match tree {
            TokenTree::Group(group) => TreeParts::Group {
                delimiter: match group.delimiter() {
                    Delimiter::Parenthesis => protocol::Delimiter::Parenthesis,
                    Delimiter::Brace => protocol::Delimiter::Brace,
                    Delimiter::Bracket => protocol::Delimiter::Bracket,
                    Delimiter::None => protocol::Delimiter::None,
                },
                span: group.span(),
                open: group.span_open(),
                close: group.span_close(),
                stream: group.stream(),
                group,
            },
            TokenTree::Ident(ident) => TreeParts::Ident {
                text: ident.to_string(),
                span: ident.span(),
            },
            TokenTree::Punct(punct) => TreeParts::Punct {
                ch: punct.as_char(),
                joint: punct.spacing() == Spacing::Joint,
                span: punct.span(),
            },
            TokenTree::Literal(literal) => TreeParts::Literal {
                text: literal.to_string(),
                span: literal.span(),
            },
        }
    }
}

/// Rebuilds rustc tokens from untrusted protocol tokens: every span handle,
/// group length, identifier, punct and literal is checked.
pub fn unflatten(tokens: &[protocol::Token], table: &SpanTable) -> Result<TokenStream, String> {
    let mut position = 0;
    let stream = unflatten_range(tokens, &mut position, tokens.len(), table, 0)?;
    Ok(stream)
}

/// Deeper nesting than this is refused rather than risking rustc's stack
/// (rustc's own parser gives up far earlier).
const MAX_GROUP_DEPTH: usize = 4096;

fn unflatten_range(
    tokens: &[protocol::Token],
    position: &mut usize,
    end: usize,
    table: &SpanTable,
    depth: usize,
) -> Result<TokenStream, String> {
    if depth > MAX_GROUP_DEPTH {
        return Err(format!("groups nested more than {MAX_GROUP_DEPTH} deep"));
    }
    let mut pieces = Pieces::default();
    while *position < end {
        let start = *position;
        match call_site_text::plain_len(tokens, start, end) {
            Some(len) => {
                pieces.text(tokens, start, start + len);
                *position += len;
            }
            None => {
                pieces.flush_text(tokens, table, depth)?;
                let tree = unflatten_tree(tokens, position, end, table, depth)?;
                pieces.trees.push(tree);
            }
        }
    }
    pieces.flush_text(tokens, table, depth)?;
    Ok(pieces.finish())
}

/// What one sequence of trees becomes: streams for rustc to concatenate,
/// trees not yet made a stream, and a run of call-site tokens as text.
#[derive(Default)]
struct Pieces {
    streams: Vec<TokenStream>,
    trees: Vec<TokenTree>,
    text: String,
    /// Where the text's tokens are, for the way back if rustc refuses it.
    text_range: std::ops::Range<usize>,
}

impl Pieces {
    fn text(&mut self, tokens: &[protocol::Token], start: usize, end: usize) {
        if self.text.is_empty() {
            self.text_range = start..start;
        }
        // Between runs (a run never ends with a joint punct), and first:
        // never `#!` first, which rustc's lexer would take for a shebang.
        self.text.push(' ');
        call_site_text::write(&mut self.text, tokens, start, end);
        self.text_range.end = end;
    }

    fn flush_text(
        &mut self,
        tokens: &[protocol::Token],
        table: &SpanTable,
        depth: usize,
    ) -> Result<(), String> {
        if self.text.is_empty() {
            return Ok(());
        }
        if !self.trees.is_empty() {
            self.streams
                .push(std::mem::take(&mut self.trees).into_iter().collect());
        }
        let lexed = catch_unwind(AssertUnwindSafe(|| self.text.parse::<TokenStream>()));
        self.text.clear();
        match lexed {
            Ok(Ok(stream)) => self.streams.push(stream),
            // Not what it should be: tree by tree, which names the culprit.
            _ => {
                let range = self.text_range.clone();
                let mut at = range.start;
                while at < range.end {
                    let tree = unflatten_tree(tokens, &mut at, range.end, table, depth)?;
                    self.trees.push(tree);
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> TokenStream {
        if self.streams.is_empty() {
            return self.trees.into_iter().collect();
        }
        if !self.trees.is_empty() {
            self.streams.push(self.trees.into_iter().collect());
        }
        let mut stream = TokenStream::new();
        stream.extend(self.streams);
        stream
    }
}

/// One tree, at `position`, advancing past it.
fn unflatten_tree(
    tokens: &[protocol::Token],
    position: &mut usize,
    end: usize,
    table: &SpanTable,
    depth: usize,
) -> Result<TokenTree, String> {
    let span = |handle: SpanHandle| {
        table.get(handle).ok_or_else(|| format!("span handle {handle:#x}, which this expansion never handed out (a span kept from an earlier expansion?)"))
    };
    let Some(token) = tokens.get(*position) else {
        return Err("a group that ends early".to_string());
    };
    *position += 1;
    let tree = match token {
        protocol::Token::Group {
            delimiter,
            span: whole,
            open: _,
            close: _,
            len,
        } => {
            let inner_end = position
                .checked_add(*len as usize)
                .filter(|&e| e <= end)
                .ok_or_else(|| format!("a group whose length {len} overruns its parent"))?;
            if let Some(original) = table.original_group(&tokens[*position - 1..inner_end]) {
                *position = inner_end;
                return Ok(TokenTree::Group(original));
            }
            let stream = unflatten_range(tokens, position, inner_end, table, depth + 1)?;
            let delimiter = match delimiter {
                protocol::Delimiter::Parenthesis => Delimiter::Parenthesis,
                protocol::Delimiter::Brace => Delimiter::Brace,
                protocol::Delimiter::Bracket => Delimiter::Bracket,
                protocol::Delimiter::None => Delimiter::None,
            };
            let mut group = Group::new(delimiter, stream);
            // Stable proc_macro can only set a group's whole span; rustc
            // derives the delimiter spans from it, as for a native macro
            // that calls `set_span`.
            group.set_span(span(*whole)?);
            TokenTree::Group(group)
        }
        protocol::Token::Ident {
            name,
            is_raw,
            span: handle,
        } => {
            let span = span(*handle)?;
            let made = catch_unwind(AssertUnwindSafe(|| {
                if *is_raw {
                    Ident::new_raw(name, span)
                } else {
                    Ident::new(name, span)
                }
            }));
            TokenTree::Ident(made.map_err(|_| format!("an invalid identifier `{name}`"))?)
        }
        protocol::Token::Punct {
            ch,
            joint,
            span: handle,
        } => {
            let span = span(*handle)?;
            let spacing = if *joint {
                Spacing::Joint
            } else {
                Spacing::Alone
            };
            let made = catch_unwind(AssertUnwindSafe(|| Punct::new(*ch, spacing)));
            let mut punct = made.map_err(|_| format!("an invalid punctuation character {ch:?}"))?;
            punct.set_span(span);
            TokenTree::Punct(punct)
        }
        protocol::Token::Literal { text, span: handle } => {
            let span = span(*handle)?;
            // The server has already checked the text with the guest lexer;
            // `catch_unwind` is the second line of defence.
            let parsed = catch_unwind(AssertUnwindSafe(|| text.parse::<Literal>()));
            let invalid = || format!("an invalid literal `{}`", text.escape_debug());
            let mut literal = parsed.map_err(|_| invalid())?.map_err(|_| invalid())?;
            literal.set_span(span);
            TokenTree::Literal(literal)
        }
    };
    Ok(tree)
}

/// `compile_error!("…")` at the call site.
fn compile_error(message: &str) -> TokenStream {
    let span = Span::call_site();
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    let mut literal = Literal::string(message);
    literal.set_span(span);
    let mut body = Group::new(Delimiter::Parenthesis, TokenTree::Literal(literal).into());
    body.set_span(span);
    let mut semi = Punct::new(';', Spacing::Alone);
    semi.set_span(span);
    [
        TokenTree::Ident(Ident::new("compile_error", span)),
        TokenTree::Punct(bang),
        TokenTree::Group(body),
        TokenTree::Punct(semi),
    ]
    .into_iter()
    .collect()
}
