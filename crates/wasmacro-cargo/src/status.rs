//! Cargo-style status lines on stderr: a right-aligned, bold verb (green for
//! progress, yellow for warnings) and a message. Colour follows
//! [`COLOR_ENV`], which `cargo wasmacro` sets from its own terminal so the
//! wrapper's lines match cargo's around them.

use std::io::Write as _;

/// `always` or `never`.
pub const COLOR_ENV: &str = "WASMACRO_COLOR";

/// A file descriptor (inherited through cargo) on `cargo wasmacro`'s own
/// stderr. cargo stores everything a rustc (wrapper) prints on stderr and
/// replays it whenever the unit is fresh; status lines written here appear
/// once, when the work happens.
pub const STATUS_FD_ENV: &str = "WASMACRO_STATUS_FD";

/// A duplicate of stderr that child processes inherit (no close-on-exec),
/// for [`STATUS_FD_ENV`].
#[cfg(unix)]
pub fn inheritable_stderr() -> Option<i32> {
    // SAFETY: dup has no memory-safety preconditions; the result is checked.
    let fd = unsafe { libc::dup(2) };
    (fd >= 0).then_some(fd)
}

/// Not available off Unix: status lines go to stderr.
#[cfg(not(unix))]
pub fn inheritable_stderr() -> Option<i32> {
    None
}

fn write(text: &str) {
    #[cfg(unix)]
    if let Some(fd) = std::env::var(STATUS_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|fd| *fd > 2)
    {
        // SAFETY: the descriptor was inherited from `cargo wasmacro`; it is
        // wrapped without taking ownership (never closed here), and a write
        // to a descriptor that is not open just fails.
        let file = std::mem::ManuallyDrop::new(unsafe {
            <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
        });
        if (&*file).write_all(text.as_bytes()).is_ok() {
            return;
        }
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn color() -> bool {
    std::env::var(COLOR_ENV).is_ok_and(|v| v == "always")
}

fn line(verb: &str, ansi: &str, message: &str) {
    let text = if color() {
        format!("\x1b[1m\x1b[{ansi}m{verb:>12}\x1b[0m {message}\n")
    } else {
        format!("{verb:>12} {message}\n")
    };
    write(&text);
}

/// A progress line, e.g. `   Compiling serde_derive v1.0.228 (wasm)`.
pub fn print(verb: &str, message: &str) {
    line(verb, "32", message);
}

/// A warning line, `warning: …`, in cargo's style.
pub fn warn(message: &str) {
    warn_with_color(color(), message);
}

/// [`warn`] for a process that decides colour itself (`cargo wasmacro`).
pub fn warn_with_color(color: bool, message: &str) {
    let text = if color {
        format!("\x1b[1m\x1b[33mwarning\x1b[0m\x1b[1m:\x1b[0m {message}\n")
    } else {
        format!("warning: {message}\n")
    };
    write(&text);
}
