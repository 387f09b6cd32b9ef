//! Serves one component to one shim over a byte stream (the shim's pipes to
//! `wasmacro serve`): the shim sends `Hello`, then `Expand` requests; while
//! the guest runs, its span queries go back to the shim, which holds rustc's
//! real spans.
//!
//! The server ends when the shim closes its end, which happens when rustc
//! exits: nothing outlives the compilation.

use crate::cache::ComponentHash;
use crate::error::ExpandError;
use crate::instance::{
    Isolation, LoadedComponent, MacroInstance, Runtime, SpanOracle, SpanOracleError,
};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use wasmacro_protocol::{
    ExpandFailure, PROTOCOL_VERSION, ServerMessage, ShimMessage, SpanAnswer, SpanQuery, Token,
    read_frame, write_frame,
};

/// The two ends of the connection, shared by the serve loop and the span
/// oracle of the running expansion (never at the same time).
struct Channel {
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
}

impl Channel {
    fn send(&mut self, message: &ServerMessage) -> io::Result<()> {
        write_frame(&mut self.writer, &message.encode())
    }

    fn receive(&mut self) -> io::Result<Option<ShimMessage>> {
        let Some(frame) = read_frame(&mut self.reader)? else {
            return Ok(None);
        };
        ShimMessage::decode(&frame).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad message from shim: {e}"),
            )
        })
    }
}

type SharedChannel = Arc<Mutex<Channel>>;

fn lock(channel: &SharedChannel) -> std::sync::MutexGuard<'_, Channel> {
    // A poisoned lock only means an earlier holder panicked; the pipes are
    // still usable.
    channel
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Forwards a guest's span queries to the shim and waits for the answers.
struct ShimOracle(SharedChannel);

impl SpanOracle for ShimOracle {
    fn query(&mut self, query: SpanQuery) -> Result<SpanAnswer, SpanOracleError> {
        let mut channel = lock(&self.0);
        channel
            .send(&ServerMessage::SpanQuery(query))
            .map_err(|e| SpanOracleError(format!("lost the connection to rustc: {e}")))?;
        match channel.receive() {
            Ok(Some(ShimMessage::SpanAnswer(answer))) => Ok(answer),
            Ok(Some(other)) => Err(SpanOracleError(format!(
                "expected a span answer, got {}",
                variant_name(&other)
            ))),
            Ok(None) => Err(SpanOracleError("rustc closed the connection".into())),
            Err(e) => Err(SpanOracleError(format!(
                "lost the connection to rustc: {e}"
            ))),
        }
    }
}

/// What one server has done so far, reported after every expansion.
#[derive(Clone, Debug, Default)]
pub struct ServeStats {
    /// The macro crate the shim is for.
    pub crate_name: String,
    /// The component's hash.
    pub component: String,
    /// Expansions run.
    pub expansions: u64,
    /// Expansions that failed (panic, trap, limit).
    pub failures: u64,
    /// Time spent in expansions, including instantiation and span queries.
    pub busy: std::time::Duration,
}

/// Serves until the shim hangs up. Errors are I/O or protocol failures; every
/// failure of a macro is reported to the shim as an expansion result.
pub fn serve(
    runtime: &Runtime,
    reader: impl Read + Send + 'static,
    writer: impl Write + Send + 'static,
) -> io::Result<()> {
    serve_with_stats(runtime, reader, writer, |_| {})
}

/// [`serve`], calling `on_expansion` after every expansion (before its result
/// is sent, so the caller's record is complete when rustc sees the result).
pub fn serve_with_stats(
    runtime: &Runtime,
    reader: impl Read + Send + 'static,
    writer: impl Write + Send + 'static,
    mut on_expansion: impl FnMut(&ServeStats),
) -> io::Result<()> {
    let channel: SharedChannel = Arc::new(Mutex::new(Channel {
        reader: Box::new(reader),
        writer: Box::new(writer),
    }));
    let Some((component, mut stats)) = handshake(runtime, &channel)? else {
        return Ok(());
    };
    let isolation = runtime.config().isolation;
    let mut instance: Option<MacroInstance> = None;
    loop {
        let message = lock(&channel).receive()?;
        let request = match message {
            None => return Ok(()),
            Some(ShimMessage::Expand(request)) => request,
            Some(other) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "expected an expansion request, got {}",
                        variant_name(&other)
                    ),
                ));
            }
        };
        let started = std::time::Instant::now();
        let reusable = instance
            .take()
            .filter(|i| !i.is_poisoned() && isolation == Isolation::PerCompilation);
        let (result, output) = match reusable.map(Ok).unwrap_or_else(|| component.instantiate()) {
            Ok(mut live) => {
                let oracle = Box::new(ShimOracle(Arc::clone(&channel)));
                let (result, output, _oracle) =
                    live.expand(&request, oracle, runtime.fuel_per_expansion());
                instance = Some(live);
                (result, output)
            }
            Err(e) => (Err(e), String::new()),
        };
        let result = result.and_then(validate_output);
        stats.expansions += 1;
        stats.failures += u64::from(result.is_err());
        stats.busy += started.elapsed();
        on_expansion(&stats);
        let result = result.map_err(|e| match e {
            ExpandError::Panicked(message) => ExpandFailure::Panicked(message),
            other => ExpandFailure::Error(other.to_string()),
        });
        let mut message = ServerMessage::Expanded { result, output };
        let mut bytes = message.encode();
        if bytes.len() > wasmacro_protocol::MAX_FRAME_LEN as usize {
            let text = format!(
                "the macro returned {} MiB of tokens, more than the {} MiB a proc macro may return",
                bytes.len() >> 20,
                wasmacro_protocol::MAX_FRAME_LEN >> 20
            );
            message = ServerMessage::Expanded {
                result: Err(ExpandFailure::Error(text)),
                output: String::new(),
            };
            bytes = message.encode();
        }
        let mut channel = lock(&channel);
        wasmacro_protocol::write_frame(&mut channel.writer, &bytes)?;
    }
}

/// Checks what a guest returned with the guest crate's own lexer, compiled
/// natively: rustc must never see a literal or identifier it would reject
/// (its `Literal::from_str` reports some errors fatally).
fn validate_output(tokens: Vec<Token>) -> Result<Vec<Token>, ExpandError> {
    for token in &tokens {
        match token {
            Token::Literal { text, .. } => {
                if let Err(e) = guest_proc_macro::__private::parse_literal(text) {
                    return Err(ExpandError::InvalidOutput(format!(
                        "an invalid literal `{}` ({e})",
                        text.escape_debug()
                    )));
                }
            }
            Token::Ident { name, is_raw, .. } => {
                if let Err(e) = guest_proc_macro::__private::validate_ident(name, *is_raw) {
                    return Err(ExpandError::InvalidOutput(format!(
                        "an invalid identifier: {e}"
                    )));
                }
            }
            Token::Punct { ch, .. } if !guest_proc_macro::__private::is_valid_punct(*ch) => {
                return Err(ExpandError::InvalidOutput(format!(
                    "an invalid punctuation character {ch:?}"
                )));
            }
            _ => {}
        }
    }
    Ok(tokens)
}

/// A message's kind, for errors (never its contents, which may be huge).
fn variant_name(message: &ShimMessage) -> &'static str {
    match message {
        ShimMessage::Hello { .. } => "a hello",
        ShimMessage::Expand(_) => "an expansion request",
        ShimMessage::SpanAnswer(_) => "a span answer",
    }
}

/// Reads `Hello`, loads the component, answers `Ready` or `Fatal`.
fn handshake(
    runtime: &Runtime,
    channel: &SharedChannel,
) -> io::Result<Option<(LoadedComponent, ServeStats)>> {
    let mut channel = lock(channel);
    let (version, component, crate_name) = match channel.receive()? {
        None => return Ok(None),
        Some(ShimMessage::Hello {
            version,
            component,
            crate_name,
        }) => (version, component, crate_name),
        Some(other) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected a hello, got {}", variant_name(&other)),
            ));
        }
    };
    if version != PROTOCOL_VERSION {
        let text = format!(
            "the shim for `{crate_name}` speaks protocol version {version}, but this wasmacro \
             speaks version {PROTOCOL_VERSION}; rebuild with the same wasmacro that generated it"
        );
        channel.send(&ServerMessage::Fatal(text))?;
        return Ok(None);
    }
    let Some(hash) = ComponentHash::parse(&component) else {
        channel.send(&ServerMessage::Fatal(format!(
            "`{component}` is not a component hash"
        )))?;
        return Ok(None);
    };
    match runtime.load(&hash) {
        Ok(loaded) => {
            channel.send(&ServerMessage::Ready(loaded.declarations().to_vec()))?;
            let stats = ServeStats {
                crate_name,
                component: hash.to_string(),
                ..ServeStats::default()
            };
            Ok(Some((loaded, stats)))
        }
        Err(e) => {
            channel.send(&ServerMessage::Fatal(format!(
                "cannot load the component of `{crate_name}`: {e}"
            )))?;
            Ok(None)
        }
    }
}
