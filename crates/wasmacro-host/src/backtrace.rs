//! Where a guest was when it trapped: the frames of wasmtime's
//! [`WasmBacktrace`], named from the component's name section and, when it
//! was built with debug info, located by its DWARF line tables.
//!
//! The text is a pure function of the component and the trap (no addresses
//! of this process, no absolute paths but the remapped ones the build wrote),
//! so it is cached with the expansion like the rest of the result. Frames are
//! trimmed as `RUST_BACKTRACE=1` trims a native panic's: the panic machinery
//! above the macro and the glue below it are not the macro's.

use std::fmt::Write as _;
use wasmtime::WasmBacktrace;

/// At most this many frames are captured (wasmtime's default is 20; a panic
/// deep in syn's parser needs more).
pub(crate) const MAX_FRAMES: usize = 64;

/// The backtrace of a trap, innermost frame first, or empty when wasmtime
/// recorded none.
pub(crate) fn describe(error: &wasmtime::Error) -> String {
    let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() else {
        return String::new();
    };
    let frames: Vec<Frame> = backtrace.frames().iter().flat_map(frames_of).collect();
    render(&frames, backtrace.frames().len() >= MAX_FRAMES)
}

/// One frame as shown: a function, and where in it if debug info says.
#[derive(Debug, PartialEq, Eq)]
struct Frame {
    function: String,
    location: Option<String>,
}

/// The frames of one wasm frame: one per function inlined into it (debug
/// info lists them innermost first), or the function's own name. The
/// function the frame physically is takes its name from the name section
/// (a full path; line tables name functions without their module).
fn frames_of(frame: &wasmtime::FrameInfo) -> Vec<Frame> {
    let demangled = |name: &str| format!("{:#}", rustc_demangle::demangle(name));
    let own_name = match frame.func_name() {
        Some(name) => demangled(name),
        None => format!("<function {}>", frame.func_index()),
    };
    let symbols = frame.symbols();
    if symbols.is_empty() {
        return vec![Frame {
            function: own_name,
            location: None,
        }];
    }
    symbols
        .iter()
        .enumerate()
        .map(|(i, symbol)| Frame {
            function: match symbol.name() {
                Some(name) if i + 1 < symbols.len() => demangled(name),
                _ => own_name.clone(),
            },
            location: symbol
                .file()
                .map(|file| match (symbol.line(), symbol.column()) {
                    (Some(line), Some(column)) if column > 0 => format!("{file}:{line}:{column}"),
                    (Some(line), _) => format!("{file}:{line}"),
                    _ => file.to_string(),
                }),
        })
        .collect()
}

/// The panic machinery a panic passes through before the trap (`panic!`,
/// `unwrap`, `expect` and the abort that follows them on `wasm32-wasip2`).
fn is_panic_machinery(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "core::panicking::",
        "std::panicking::",
        "std::sys::",
        "std::process::abort",
        "std::rt::",
        "__rustc::",
        "rust_begin_unwind",
        "rust_panic",
        "<function ",
    ];
    // wasi-libc's `abort`, by its exact name: a macro's own `abort_…`
    // (proc-macro-error's `abort_call_site`) is the macro's.
    function == "abort"
        || PREFIXES.iter().any(|p| function.starts_with(p))
        || function.contains("__rust_end_short_backtrace")
        || function.contains("__rust_abort")
}

/// Where the guest's own code ends: the glue that called the macro, by name
/// or, for functions inlined into it, by where the build put its sources.
fn is_glue(frame: &Frame) -> bool {
    let function = frame.function.trim_start_matches('<');
    let by_name = [
        "wasmacro_guest_glue::",
        "wasmacro_register::",
        "wasmacro_component_",
        // The component's export adapter.
        "wasmacro:proc-macro/",
    ]
    .iter()
    .any(|p| function.starts_with(p));
    let by_location = frame.location.as_deref().is_some_and(|file| {
        ["/wasmacro/component/glue/", "/wasmacro/component/lib.rs"]
            .iter()
            .any(|p| file.starts_with(p))
    });
    by_name || by_location
}

fn render(frames: &[Frame], truncated: bool) -> String {
    // Innermost first: skip the run of panic machinery the trap happened in
    // (machinery further out, a `catch_unwind` of the macro's own, is
    // shown), stop at the glue. If that leaves nothing, show everything.
    let start = frames
        .iter()
        .position(|f| !is_panic_machinery(&f.function))
        .unwrap_or(0);
    let end = frames[start..]
        .iter()
        .position(is_glue)
        .map_or(frames.len(), |i| start + i);
    let shown = if start < end {
        &frames[start..end]
    } else {
        frames
    };
    if shown.is_empty() {
        return String::new();
    }
    let mut text = String::from("wasm backtrace of the macro:\n");
    for (i, frame) in shown.iter().enumerate() {
        let _ = writeln!(text, "{i:>4}: {}", frame.function);
        if let Some(location) = &frame.location {
            let _ = writeln!(text, "             at {location}");
        }
    }
    if truncated && end == frames.len() {
        let _ = writeln!(text, "      … (more frames than the {MAX_FRAMES} captured)");
    }
    if shown.iter().all(|f| f.location.is_none()) {
        text.push_str(
            "note: build the component with debug info for file and line numbers \
             (`debug-info` in the project's wasmacro policy, or `wasmacro build --debug-info`)\n",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{Frame, render};

    fn frame(function: &str) -> Frame {
        Frame {
            function: function.into(),
            location: None,
        }
    }

    #[test]
    fn the_panic_machinery_and_the_glue_are_trimmed() {
        let frames = [
            frame("abort"),
            frame("std::sys::pal::wasi::helpers::abort_internal"),
            frame("std::panicking::rust_panic_with_hook"),
            frame("std::sys::backtrace::__rust_end_short_backtrace"),
            frame("__rustc::rust_begin_unwind"),
            frame("core::panicking::panic_fmt"),
            frame("my_macro::inner"),
            frame("std::panicking::catch_unwind"),
            frame("my_macro::expand"),
            frame("wasmacro_guest_glue::expand"),
            frame("wasmacro:proc-macro/macros@0.1.0#expand"),
        ];
        let text = render(&frames, false);
        assert!(
            text.starts_with(
                "wasm backtrace of the macro:\n   0: my_macro::inner\n   1: std::panicking::catch_unwind\n   2: my_macro::expand\n"
            ),
            "{text}"
        );
        assert!(text.contains("debug info"), "{text}");
    }

    #[test]
    fn locations_are_shown_and_nothing_recognised_shows_everything() {
        let frames = [Frame {
            function: "f".into(),
            location: Some("/wasmacro/m-0.1.0/src/lib.rs:3:5".into()),
        }];
        assert_eq!(
            render(&frames, false),
            "wasm backtrace of the macro:\n   0: f\n             at /wasmacro/m-0.1.0/src/lib.rs:3:5\n"
        );
        let all_machinery = [frame("abort"), frame("core::panicking::panic")];
        assert!(render(&all_machinery, false).contains("0: abort"));
        assert_eq!(render(&[], false), "");
    }
}
