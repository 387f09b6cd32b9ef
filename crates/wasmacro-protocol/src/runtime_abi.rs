//! The C ABI of the in-process runtime (`libwasmacro_runtime`): what a shim
//! loads into rustc's process instead of starting `wasmacro serve`. Every
//! message crossing it is a protocol message in this crate's encoding, so the
//! in-process and the server paths exchange the same bytes.
//!
//! Bytes travel through sinks: whoever produces a message calls the other
//! side's sink, which copies it. Neither side frees what the other allocated,
//! so the two libraries need not share an allocator.

use std::ffi::c_void;

/// Bumped whenever a function below changes; a shim refuses a runtime whose
/// [`VersionFn`] answers another number.
pub const VERSION: u32 = 1;

/// The environment variable naming the runtime library a shim loads. When it
/// is unset, shims start `wasmacro serve` instead.
pub const RUNTIME_ENV: &str = "WASMACRO_RUNTIME";

/// The library's file name on this platform.
pub fn library_file_name() -> String {
    format!(
        "{}wasmacro_runtime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// `wasmacro_runtime_abi_version`: [`VERSION`] of the library.
pub const SYMBOL_VERSION: &[u8] = b"wasmacro_runtime_abi_version\0";
/// `wasmacro_runtime_open`: see [`OpenFn`].
pub const SYMBOL_OPEN: &[u8] = b"wasmacro_runtime_open\0";
/// `wasmacro_runtime_expand`: see [`ExpandFn`].
pub const SYMBOL_EXPAND: &[u8] = b"wasmacro_runtime_expand\0";
/// `wasmacro_runtime_close`: see [`CloseFn`].
pub const SYMBOL_CLOSE: &[u8] = b"wasmacro_runtime_close\0";

/// Receives one message: `bytes[..len]`, valid only during the call.
pub type Sink = unsafe extern "C" fn(context: *mut c_void, bytes: *const u8, len: usize);

/// Returns the library's [`VERSION`].
pub type VersionFn = unsafe extern "C" fn() -> u32;

/// Opens a session. `hello` is an encoded `ShimMessage::Hello`; the answer
/// (`ServerMessage::Ready` or `Fatal`, encoded) goes to `reply`. Returns the
/// session, or null when the answer is `Fatal`.
pub type OpenFn = unsafe extern "C" fn(
    hello: *const u8,
    len: usize,
    reply: Sink,
    reply_context: *mut c_void,
) -> *mut c_void;

/// Answers one span query: `query` is an encoded `ServerMessage::SpanQuery`;
/// the answer, an encoded `ShimMessage::SpanAnswer`, goes to `answer`.
pub type QueryFn = unsafe extern "C" fn(
    context: *mut c_void,
    query: *const u8,
    len: usize,
    answer: Sink,
    answer_context: *mut c_void,
);

/// Runs one expansion of `session`. `request` is an encoded
/// `ShimMessage::Expand`; the guest's span queries go to `query`, on the
/// calling thread, while it runs; the result (`ServerMessage::Expanded`,
/// encoded) goes to `reply`. Returns 0, or nonzero when the request could not
/// be decoded (nothing was sent to `reply`).
pub type ExpandFn = unsafe extern "C" fn(
    session: *mut c_void,
    request: *const u8,
    len: usize,
    query: QueryFn,
    query_context: *mut c_void,
    reply: Sink,
    reply_context: *mut c_void,
) -> i32;

/// Ends a session (its instance and its guest memory go).
pub type CloseFn = unsafe extern "C" fn(session: *mut c_void);
