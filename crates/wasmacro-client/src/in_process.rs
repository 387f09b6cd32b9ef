//! The runtime loaded into rustc's process (`runtime_abi`): the library the
//! wrapper names is opened once per shim with `dlopen` (the dynamic loader
//! hands every shim of one rustc the same copy, so they share one engine),
//! and each expansion is a call; the guest's span queries come back as
//! callbacks on the same thread, answered from the span table.
//!
//! The library is never unloaded: it installs signal handlers for wasm traps
//! that must outlive any one shim.

use crate::{Failure, SpanTable, answer, finish};
use std::ffi::{CString, OsStr, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use wasmacro_protocol::runtime_abi::{
    self, CloseFn, ExpandFn, OpenFn, SYMBOL_CLOSE, SYMBOL_EXPAND, SYMBOL_OPEN, SYMBOL_VERSION,
    VersionFn,
};
use wasmacro_protocol::{self as protocol, ExpandRequest, ServerMessage, ShimMessage};

#[cfg(unix)]
mod dl {
    use std::ffi::{c_char, c_int, c_void};

    /// Resolve every symbol at load time: a broken library fails here, not
    /// in the middle of an expansion.
    pub const RTLD_NOW: c_int = 2;

    #[cfg_attr(target_os = "linux", link(name = "dl"))]
    unsafe extern "C" {
        pub fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
        pub fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
        pub fn dlerror() -> *const c_char;
    }
}

/// The library's entry points.
struct Library {
    open: OpenFn,
    expand: ExpandFn,
    close: CloseFn,
}

/// Loads the library `path` names (once per shim): whether it can serve.
pub(crate) fn loads(path: &OsStr) -> Result<(), String> {
    library(path).map(drop)
}

/// The library `path` names, loaded once per shim.
fn library(path: &OsStr) -> Result<&'static Library, String> {
    static LIBRARY: OnceLock<Result<Library, String>> = OnceLock::new();
    LIBRARY
        .get_or_init(|| load(path))
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(unix)]
fn load(path: &OsStr) -> Result<Library, String> {
    use std::os::unix::ffi::OsStrExt as _;
    let shown = std::path::Path::new(path).display().to_string();
    let name = CString::new(path.as_bytes())
        .map_err(|_| format!("the runtime library path {shown} contains a NUL byte"))?;
    let last_error = || {
        // SAFETY: `dlerror` returns null or a C string valid until the next
        // `dl*` call on this thread.
        let text = unsafe { dl::dlerror() };
        if text.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: as above.
            unsafe { std::ffi::CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        }
    };
    // SAFETY: loading runs the library's initialisers; it is ours, named by
    // the wrapper that started rustc.
    let handle = unsafe { dl::dlopen(name.as_ptr(), dl::RTLD_NOW) };
    if handle.is_null() {
        return Err(format!(
            "could not load the wasmacro runtime {shown}: {}",
            last_error()
        ));
    }
    let symbol = |name: &[u8]| -> Result<*mut c_void, String> {
        // SAFETY: `name` is a NUL-terminated constant of `runtime_abi`.
        let found = unsafe { dl::dlsym(handle, name.as_ptr().cast()) };
        if found.is_null() {
            Err(format!(
                "the wasmacro runtime {shown} has no `{}`: {}",
                String::from_utf8_lossy(&name[..name.len() - 1]),
                last_error()
            ))
        } else {
            Ok(found)
        }
    };
    // SAFETY: each symbol has the type `runtime_abi` gives it, checked by the
    // version number first.
    unsafe {
        let version: VersionFn = std::mem::transmute(symbol(SYMBOL_VERSION)?);
        let found = version();
        if found != runtime_abi::VERSION {
            return Err(format!(
                "the wasmacro runtime {shown} implements ABI version {found}, this shim version \
                 {}; rebuild with the same wasmacro",
                runtime_abi::VERSION
            ));
        }
        Ok(Library {
            open: std::mem::transmute::<*mut c_void, OpenFn>(symbol(SYMBOL_OPEN)?),
            expand: std::mem::transmute::<*mut c_void, ExpandFn>(symbol(SYMBOL_EXPAND)?),
            close: std::mem::transmute::<*mut c_void, CloseFn>(symbol(SYMBOL_CLOSE)?),
        })
    }
}

#[cfg(not(unix))]
fn load(path: &OsStr) -> Result<Library, String> {
    Err(format!(
        "loading the wasmacro runtime {} in process is not supported on this platform; unset \
         `{}` to use the server",
        std::path::Path::new(path).display(),
        runtime_abi::RUNTIME_ENV
    ))
}

/// Copies a message the library hands over into the `Option<Vec<u8>>` at
/// `context`.
unsafe extern "C" fn collect(context: *mut c_void, bytes: *const u8, len: usize) {
    // SAFETY: `context` is the `Option<Vec<u8>>` of the call that passed it,
    // alive for that call.
    let slot = unsafe { &mut *context.cast::<Option<Vec<u8>>>() };
    let bytes = if bytes.is_null() || len == 0 {
        Vec::new()
    } else {
        // SAFETY: the library passes `len` readable bytes.
        unsafe { std::slice::from_raw_parts(bytes, len) }.to_vec()
    };
    *slot = Some(bytes);
}

/// Answers a span query from the `SpanTable` at `context`.
unsafe extern "C" fn answer_query(
    context: *mut c_void,
    query: *const u8,
    len: usize,
    sink: runtime_abi::Sink,
    sink_context: *mut c_void,
) {
    // Nothing may unwind into the library: a panic leaves the query
    // unanswered, which the runtime reports as an error.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `context` is the table of the expansion running on this
        // thread; the library calls back only during `expand`.
        let table = unsafe { &mut *context.cast::<SpanTable>() };
        let bytes = if query.is_null() || len == 0 {
            &[][..]
        } else {
            // SAFETY: the library passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(query, len) }
        };
        let Ok(ServerMessage::SpanQuery(query)) = ServerMessage::decode(bytes) else {
            return;
        };
        let reply = ShimMessage::SpanAnswer(answer(query, table)).encode();
        // SAFETY: the library's sink copies the bytes during the call.
        unsafe { sink(sink_context, reply.as_ptr(), reply.len()) };
    }));
}

/// One session of the in-process runtime.
pub(crate) struct Session {
    library: &'static Library,
    session: *mut c_void,
    grants: protocol::Grants,
}

// SAFETY: rustc may run proc macros on another thread than the first; the
// session is used by one thread at a time (behind the shim's mutex).
unsafe impl Send for Session {}

impl Session {
    /// Loads the library (once) and opens a session with `hello`.
    pub(crate) fn open(
        library_path: &OsStr,
        hello: &ShimMessage,
        grants: protocol::Grants,
    ) -> Result<Session, String> {
        let library = library(library_path)?;
        let bytes = hello.encode();
        let mut reply: Option<Vec<u8>> = None;
        // SAFETY: `open` has the ABI's type; `collect` copies the reply into
        // `reply` during the call.
        let session = unsafe {
            (library.open)(
                bytes.as_ptr(),
                bytes.len(),
                collect,
                (&raw mut reply).cast(),
            )
        };
        let reply = reply
            .ok_or_else(|| "the wasmacro runtime did not answer the hello".to_string())
            .and_then(|bytes| {
                ServerMessage::decode(&bytes)
                    .map_err(|e| format!("the wasmacro runtime sent a malformed answer ({e})"))
            });
        match (session.is_null(), reply) {
            (false, Ok(ServerMessage::Ready)) => Ok(Session {
                library,
                session,
                grants,
            }),
            (_, Ok(ServerMessage::Fatal(text))) => Err(text),
            (_, Err(e)) => Err(e),
            (_, Ok(other)) => Err(format!(
                "the wasmacro runtime answered the hello with {other:?}"
            )),
        }
    }

    /// Runs one expansion.
    pub(crate) fn expand(
        &mut self,
        request: ExpandRequest,
        table: &mut SpanTable,
    ) -> Result<Vec<protocol::Token>, Failure> {
        let bytes = ShimMessage::Expand(request).encode();
        let mut reply: Option<Vec<u8>> = None;
        // SAFETY: `expand` has the ABI's type; the table outlives the call
        // and is only touched by `answer_query` on this thread during it.
        let status = unsafe {
            (self.library.expand)(
                self.session,
                bytes.as_ptr(),
                bytes.len(),
                answer_query,
                (table as *mut SpanTable).cast(),
                collect,
                (&raw mut reply).cast(),
            )
        };
        let reply = match (status, reply) {
            (0, Some(reply)) => reply,
            (status, _) => {
                return Err(Failure::Error(format!(
                    "the wasmacro runtime refused the request (status {status})"
                )));
            }
        };
        let message = ServerMessage::decode(&reply).map_err(|e| {
            Failure::Error(format!(
                "the wasmacro runtime sent a malformed result ({e})"
            ))
        })?;
        finish(message, &self.grants)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: the session came from this library's `open` and is not
        // used again.
        unsafe { (self.library.close)(self.session) }
    }
}
