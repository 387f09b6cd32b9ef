//! Serves one component to one shim over a byte stream (the shim's pipes to
//! `wasmacro serve`): the shim sends `Hello`, then `Expand` requests; while
//! the guest runs, its span queries go back to the shim, which holds rustc's
//! real spans.
//!
//! The server ends when the shim closes its end, which happens when rustc
//! exits: nothing outlives the compilation.

use crate::instance::{Runtime, SpanOracle, SpanOracleError};
use crate::session::Session;
pub use crate::session::{ExpansionDigest, ServeStats};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use wasmacro_protocol::{
    ServerMessage, ShimMessage, SpanAnswer, SpanQuery, read_frame, write_frame,
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
    let Some(mut session) = handshake(runtime, &channel)? else {
        return Ok(());
    };
    let watchdog = Watchdog::start(&session.stats().crate_name, session.limits().timeout);
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
        watchdog.enter(&request.macro_name);
        let digest = blake3::hash(&frame);
        drop(frame);
        let oracle = Box::new(ShimOracle(Arc::clone(&channel)));
        let bytes = session.expand(&request, digest, oracle);
        watchdog.leave();
        on_expansion(session.stats());
        let mut channel = lock(&channel);
        write_frame(&mut channel.writer, &bytes)?;
    }
}

/// A message's kind, for errors (never its contents, which may be huge).
fn variant_name(message: &ShimMessage) -> &'static str {
    match message {
        ShimMessage::Hello(_) => "a hello",
        ShimMessage::Expand(_) => "an expansion request",
        ShimMessage::SpanAnswer(_) => "a span answer",
    }
}

/// Reads `Hello`, opens the session, answers `Ready` or `Fatal`.
fn handshake<'r>(runtime: &'r Runtime, channel: &SharedChannel) -> io::Result<Option<Session<'r>>> {
    let mut channel = lock(channel);
    let opened = match channel.receive()? {
        None => return Ok(None),
        Some(ShimMessage::Hello(hello)) => Session::open(runtime, hello),
        Some(other) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected a hello, got {}", variant_name(&other)),
            ));
        }
    };
    match opened {
        Ok(session) => {
            channel.send(&ServerMessage::Ready)?;
            Ok(Some(session))
        }
        Err(text) => {
            channel.send(&ServerMessage::Fatal(text))?;
            Ok(None)
        }
    }
}
