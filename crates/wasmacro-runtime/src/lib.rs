//! The wasmacro runtime inside rustc's process: a C-ABI library
//! (`wasmacro_protocol::runtime_abi`) that a shim loads instead of starting
//! `wasmacro serve`, so an expansion is a function call and a span query a
//! callback into the shim. One wasmtime engine per process, created on the
//! first session and shared by every shim rustc loads; each session is the
//! same transport-free `Session` the server drives.
//!
//! It must never: unwind into its caller (every entry point catches panics and
//! answers with an error), exit or abort rustc's process, or trust a byte it
//! is given without decoding it as a protocol message.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use wasmacro_host::records::Records;
use wasmacro_host::session::Session;
use wasmacro_host::{CacheDir, Runtime, RuntimeConfig, SpanOracle, SpanOracleError};
use wasmacro_protocol::runtime_abi::{self, QueryFn, Sink};
use wasmacro_protocol::{ExpandFailure, ServerMessage, ShimMessage, SpanAnswer, SpanQuery};

/// The process's runtime, or why it could not start.
fn runtime() -> &'static Result<Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let config = RuntimeConfig::from_env().map_err(|e| e.to_string())?;
        Runtime::new(CacheDir::from_env(), config)
            .map_err(|e| format!("the wasm runtime did not start: {e}"))
    })
}

/// The statistics and log files of this process, from its environment.
fn records() -> &'static Records {
    static RECORDS: OnceLock<Records> = OnceLock::new();
    RECORDS.get_or_init(Records::from_env)
}

/// A bytes slice from the caller.
///
/// # Safety
/// `bytes` points to `len` readable bytes (or `len` is 0).
unsafe fn slice<'a>(bytes: *const u8, len: usize) -> &'a [u8] {
    if bytes.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(bytes, len) }
}

fn send(sink: Sink, context: *mut c_void, message: &ServerMessage) {
    let bytes = message.encode();
    // SAFETY: the sink copies `bytes` during the call.
    unsafe { sink(context, bytes.as_ptr(), bytes.len()) }
}

/// [`runtime_abi::VersionFn`].
#[unsafe(no_mangle)]
pub extern "C" fn wasmacro_runtime_abi_version() -> u32 {
    runtime_abi::VERSION
}

/// [`runtime_abi::OpenFn`].
///
/// # Safety
/// `hello` points to `len` bytes; `reply` is callable with `reply_context`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmacro_runtime_open(
    hello: *const u8,
    len: usize,
    reply: Sink,
    reply_context: *mut c_void,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    let bytes = unsafe { slice(hello, len) };
    let opened = catch_unwind(|| {
        let runtime = runtime().as_ref().map_err(Clone::clone)?;
        match ShimMessage::decode(bytes) {
            Ok(ShimMessage::Hello(hello)) => Session::open(runtime, hello),
            Ok(_) => Err("the shim's first message was not a hello".to_string()),
            Err(e) => Err(format!("the shim sent a malformed hello ({e})")),
        }
    })
    .unwrap_or_else(|panic| {
        Err(format!(
            "the wasmacro runtime panicked: {}",
            text_of(&*panic)
        ))
    });
    match opened {
        Ok(session) => {
            send(reply, reply_context, &ServerMessage::Ready);
            Box::into_raw(Box::new(session)).cast()
        }
        Err(text) => {
            send(reply, reply_context, &ServerMessage::Fatal(text));
            std::ptr::null_mut()
        }
    }
}

/// Forwards a guest's span queries to the shim's callback.
struct CallbackOracle {
    query: QueryFn,
    context: *mut c_void,
}

// SAFETY: the oracle lives only for one expansion, on the thread that called
// `wasmacro_runtime_expand` (the guest runs synchronously on it).
unsafe impl Send for CallbackOracle {}

impl SpanOracle for CallbackOracle {
    fn query(&mut self, query: SpanQuery) -> Result<SpanAnswer, SpanOracleError> {
        unsafe extern "C" fn collect(context: *mut c_void, bytes: *const u8, len: usize) {
            // SAFETY: `context` is the `Vec` below, alive for this call.
            let answer = unsafe { &mut *context.cast::<Option<Vec<u8>>>() };
            // SAFETY: the shim passes `len` readable bytes.
            *answer = Some(unsafe { slice(bytes, len) }.to_vec());
        }
        let bytes = ServerMessage::SpanQuery(query).encode();
        let mut answer: Option<Vec<u8>> = None;
        // SAFETY: the shim's callback, with the context it gave for this
        // expansion; `collect` copies the answer out during the call.
        unsafe {
            (self.query)(
                self.context,
                bytes.as_ptr(),
                bytes.len(),
                collect,
                (&raw mut answer).cast(),
            )
        };
        let answer = answer.ok_or_else(|| SpanOracleError("the shim gave no answer".into()))?;
        match ShimMessage::decode(&answer) {
            Ok(ShimMessage::SpanAnswer(answer)) => Ok(answer),
            Ok(_) => Err(SpanOracleError(
                "the shim answered with another message".into(),
            )),
            Err(e) => Err(SpanOracleError(format!(
                "the shim's answer is malformed ({e})"
            ))),
        }
    }
}

/// [`runtime_abi::ExpandFn`].
///
/// # Safety
/// `session` came from [`wasmacro_runtime_open`] and is not closed; `request`
/// points to `len` bytes; the callbacks are callable with their contexts.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmacro_runtime_expand(
    session: *mut c_void,
    request: *const u8,
    len: usize,
    query: QueryFn,
    query_context: *mut c_void,
    reply: Sink,
    reply_context: *mut c_void,
) -> i32 {
    if session.is_null() {
        return 1;
    }
    // SAFETY: the caller's contract: a live session, used by one thread.
    let session = unsafe { &mut *session.cast::<Session<'static>>() };
    // SAFETY: the caller's contract.
    let frame = unsafe { slice(request, len) };
    let Ok(ShimMessage::Expand(request)) = ShimMessage::decode(frame) else {
        return 2;
    };
    let digest = blake3::hash(frame);
    let oracle = Box::new(CallbackOracle {
        query,
        context: query_context,
    });
    let expanded = catch_unwind(AssertUnwindSafe(|| {
        session.expand(&request, digest, oracle)
    }));
    match expanded {
        Ok(bytes) => {
            records().record(session.stats());
            // SAFETY: the sink copies `bytes` during the call.
            unsafe { reply(reply_context, bytes.as_ptr(), bytes.len()) };
        }
        Err(panic) => send(
            reply,
            reply_context,
            &ServerMessage::Expanded {
                result: Err(ExpandFailure::Error(format!(
                    "the wasmacro runtime panicked: {}",
                    text_of(&*panic)
                ))),
                output: String::new(),
                inputs: Vec::new(),
                backtrace: String::new(),
            },
        ),
    }
    0
}

/// [`runtime_abi::CloseFn`].
///
/// # Safety
/// `session` came from [`wasmacro_runtime_open`] and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmacro_runtime_close(session: *mut c_void) {
    if !session.is_null() {
        // SAFETY: the caller's contract: the box this library made.
        drop(unsafe { Box::from_raw(session.cast::<Session<'static>>()) });
    }
}

fn text_of(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}
