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
use crate::limits::{ApproxSize, Size};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use wasmacro_protocol::{
    ExpandFailure, Grants, PROTOCOL_VERSION, ServerMessage, ShimMessage, SpanAnswer, SpanQuery,
    Token, read_frame, write_frame,
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
        Ok(self.receive_frame()?.map(|(message, _)| message))
    }

    /// A message and the frame it came in, whose hash names the request.
    fn receive_frame(&mut self) -> io::Result<Option<(ShimMessage, Vec<u8>)>> {
        let Some(frame) = read_frame(&mut self.reader)? else {
            return Ok(None);
        };
        let message = ShimMessage::decode(&frame).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad message from shim: {e}"),
            )
        })?;
        Ok(Some((message, frame)))
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
    /// The latest expansion, by content.
    pub last: Option<ExpansionDigest>,
}

/// An expansion identified by content: BLAKE3 of the encoded request and of
/// the encoded result (tokens with their span handles, or the error, what
/// the guest printed and what it read), and what it read. Equal digests
/// across builds mean byte-identical expansions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpansionDigest {
    /// The macro expanded.
    pub macro_name: String,
    /// Hash of the request.
    pub input: blake3::Hash,
    /// Hash of the result.
    pub output: blake3::Hash,
    /// What the expansion read, named from its roots, with content digests.
    pub read: Vec<wasmacro_protocol::Input>,
}

/// How long past its `timeout` an expansion may run before the server gives
/// up on it and exits: the guest is stuck somewhere the epoch interrupt does
/// not reach (a blocking host call), and rustc must not wait forever.
const WATCHDOG_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Ends the process if an expansion outlives its timeout by [`WATCHDOG_GRACE`].
struct Watchdog {
    running: Arc<Mutex<Option<(std::time::Instant, String)>>>,
}

impl Watchdog {
    fn start(crate_name: &str, timeout: std::time::Duration) -> Watchdog {
        let running: Arc<Mutex<Option<(std::time::Instant, String)>>> = Arc::default();
        let watched = Arc::downgrade(&running);
        let crate_name = crate_name.to_string();
        let limit = timeout.saturating_add(WATCHDOG_GRACE);
        let spawned = std::thread::Builder::new()
            .name("wasmacro-watchdog".into())
            .spawn(move || {
                while let Some(running) = watched.upgrade() {
                    let overdue = running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                        .filter(|(started, _)| started.elapsed() > limit)
                        .map(|(_, name)| name.clone());
                    drop(running);
                    if let Some(name) = overdue {
                        eprintln!(
                            "error: wasmacro: the expansion of `{name}` of `{crate_name}` is still \
                             running {} s after its timeout, in a host call the interrupt cannot \
                             reach; stopping its server",
                            WATCHDOG_GRACE.as_secs()
                        );
                        std::process::exit(70);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("could not start the watchdog thread: {e}");
        }
        Watchdog { running }
    }

    fn enter(&self, macro_name: &str) {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), macro_name.to_string()));
    }

    fn leave(&self) {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
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
    let Some((component, grants, mut stats)) = handshake(runtime, &channel)? else {
        return Ok(());
    };
    let isolation = runtime.config().isolation;
    let limits = runtime.limits().clone();
    let watchdog = Watchdog::start(&stats.crate_name, limits.timeout);
    let mut instance: Option<MacroInstance> = None;
    loop {
        let message = lock(&channel).receive_frame()?;
        let (request, frame) = match message {
            None => return Ok(()),
            Some((ShimMessage::Expand(request), frame)) => (request, frame),
            Some((other, _)) => {
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
        watchdog.enter(&request.macro_name);
        let input_digest = blake3::hash(&frame);
        drop(frame);
        let reusable = instance
            .take()
            .filter(|i| !i.is_poisoned() && isolation == Isolation::PerCompilation);
        let fresh = || component.instantiate_with(&grants);
        let (result, output, inputs) = match reusable.map(Ok).unwrap_or_else(fresh) {
            Ok(mut live) => {
                let oracle = Box::new(ShimOracle(Arc::clone(&channel)));
                let (result, output, _oracle) = live.expand(&request, oracle);
                let inputs = live.inputs();
                instance = Some(live);
                (result, output, inputs)
            }
            Err(e) => (Err(e), String::new(), Vec::new()),
        };
        watchdog.leave();
        let result = result.and_then(validate_output).map_err(|e| match e {
            ExpandError::Panicked(message) => ExpandFailure::Panicked(message),
            other => ExpandFailure::Error(other.to_string()),
        });
        let mut failed = result.is_err();
        let printed = output.len() as u64;
        let read = inputs.clone();
        let mut bytes = ServerMessage::Expanded {
            result,
            output,
            inputs,
        }
        .encode();
        // The limit is on the tokens: what the guest printed is bounded by its
        // pipe, and an error's text is small. `Limits` keeps `output` under
        // the frame cap.
        let tokens = (bytes.len() as u64).saturating_sub(printed);
        if !failed && tokens > limits.output {
            failed = true;
            let text = format!(
                "it returned {} of tokens, more than the `output` limit of {}{}",
                ApproxSize(tokens),
                Size(limits.output),
                crate::limits::raise_hint("output")
            );
            let message = ServerMessage::Expanded {
                result: Err(ExpandFailure::Error(text)),
                output: String::new(),
                inputs: Vec::new(),
            };
            bytes = message.encode();
        }
        stats.expansions += 1;
        stats.failures += u64::from(failed);
        stats.busy += started.elapsed();
        stats.last = Some(ExpansionDigest {
            macro_name: request.macro_name.clone(),
            input: input_digest,
            output: blake3::hash(&bytes),
            read,
        });
        on_expansion(&stats);
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
) -> io::Result<Option<(LoadedComponent, Grants, ServeStats)>> {
    let mut channel = lock(channel);
    let (version, component, crate_name, grants) = match channel.receive()? {
        None => return Ok(None),
        Some(ShimMessage::Hello {
            version,
            component,
            crate_name,
            grants,
        }) => (version, component, crate_name, grants),
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
    if let Err(reason) = crate::capabilities::validate(&grants) {
        channel.send(&ServerMessage::Fatal(format!(
            "the shim for `{crate_name}` sent invalid grants: {reason}"
        )))?;
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
            Ok(Some((loaded, grants, stats)))
        }
        Err(e) => {
            channel.send(&ServerMessage::Fatal(format!(
                "cannot load the component of `{crate_name}`: {e}"
            )))?;
            Ok(None)
        }
    }
}
