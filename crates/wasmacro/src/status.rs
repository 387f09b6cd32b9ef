//! Cargo-style status lines on stderr: a right-aligned, bold verb (green for
//! progress, yellow for warnings) and a message. Colour follows
//! [`COLOR_ENV`], which `cargo wasmacro` sets from its own terminal so the
//! wrapper's lines match cargo's around them.

use std::io::Write as _;

/// `always` or `never`.
pub const COLOR_ENV: &str = "WASMACRO_COLOR";

fn color() -> bool {
    std::env::var(COLOR_ENV).is_ok_and(|v| v == "always")
}

fn line(verb: &str, ansi: &str, message: &str) {
    let text = if color() {
        format!("\x1b[1m\x1b[{ansi}m{verb:>12}\x1b[0m {message}\n")
    } else {
        format!("{verb:>12} {message}\n")
    };
    // One write per line: cargo forwards a wrapper's stderr line by line.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A progress line, e.g. `   Compiling serde_derive v1.0.228 (wasm)`.
pub fn print(verb: &str, message: &str) {
    line(verb, "32", message);
}

/// A warning line, `warning: …`, in cargo's style.
pub fn warn(message: &str) {
    let text = if color() {
        format!("\x1b[1m\x1b[33mwarning\x1b[0m\x1b[1m:\x1b[0m {message}\n")
    } else {
        format!("warning: {message}\n")
    };
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
