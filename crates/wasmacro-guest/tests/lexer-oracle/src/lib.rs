//! The oracle for `wasmacro-guest`'s lexer test (`tests/lexer.rs`): macros
//! that run rustc's real lexer — `proc_macro::TokenStream::from_str`,
//! `Literal::from_str` and `Ident::new`/`Ident::new_raw` — while the test is
//! being compiled, and expand to what it produced, in a canonical text dump
//! that the test reproduces with the guest crate and compares.
//!
//! Dump format (spans are not compared), one token per line, group contents
//! indented by two spaces:
//!
//! ```text
//! (                      group: `(` `[` `{` or `«` (none), then its contents,
//!   ident r#fn           then the closing `)` `]` `}` `»`
//!   punct + joint        punct: char and `joint`/`alone`
//!   literal Literal { kind: Str, symbol: "a", suffix: None }
//! )                      literal: its `Debug` without the span
//! ```
//!
//! or `LexError: message` when lexing fails.
//!
//! Lexing errors other than delimiter errors are compile errors in rustc (not
//! `Err`), so cases expected to fail that way are not run here; the test
//! checks them by compiling [`probe!`] invocations with rustc one at a time.

extern crate proc_macro;

use proc_macro::{Delimiter, Ident, Literal, Spacing, Span, TokenStream, TokenTree};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;

include!("../../common/dump.rs");

/// Runs the oracle for one case of the case file.
fn run(kind: &str, input: &str) -> String {
    match kind {
        "ts" => dump_token_stream(input),
        "lit" => dump_literal(input),
        "ident" | "ident~" => dump_ident(input),
        // Cases rustc rejects with a compile error are not run here.
        _ => String::new(),
    }
}

/// The string value of a string literal token (just the escapes the case
/// file and the test need).
fn string_argument(tree: &TokenTree) -> Result<String, String> {
    let text = tree.to_string();
    if let Some(body) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return unescape(body);
    }
    let raw = text.strip_prefix('r').ok_or("expected a string literal")?;
    let hashes = raw.len() - raw.trim_start_matches('#').len();
    Ok(raw[hashes + 1..raw.len() - hashes - 1].to_string())
}

/// Undoes the escapes of a Rust string literal (as `{:?}` writes them) and of
/// the case file: `\n \r \t \0 \\ \" \' \u{…}`.
fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(c @ ('\\' | '"' | '\'')) => out.push(c),
            Some('u') => {
                let rest = chars.as_str();
                let close = rest.find('}').ok_or("unterminated \\u{…}")?;
                let hex = rest.get(1..close).ok_or("bad \\u{…}")?;
                let value = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                out.push(char::from_u32(value).ok_or("bad \\u{…} value")?);
                chars = rest[close + 1..].chars();
            }
            other => return Err(format!("unknown escape \\{other:?} in {text:?}")),
        }
    }
    Ok(out)
}

/// A `&'static str` expression for `value`.
fn str_literal(value: &str) -> TokenTree {
    TokenTree::Literal(Literal::string(value))
}

fn compile_error(message: &str) -> TokenStream {
    format!("compile_error!({message:?})")
        .parse()
        .unwrap_or_default()
}

/// `probe!("ts" | "lit" | "ident", "input")`: the dump for one input, as a
/// string literal. The test compiles these one at a time with rustc to check
/// the inputs that rustc rejects with a compile error.
#[proc_macro]
pub fn probe(input: TokenStream) -> TokenStream {
    let args: Vec<TokenTree> = input
        .into_iter()
        .filter(|t| !matches!(t, TokenTree::Punct(_)))
        .collect();
    let [kind, src] = args.as_slice() else {
        return compile_error("usage: probe!(\"ts\", \"input\")");
    };
    match (string_argument(kind), string_argument(src)) {
        (Ok(kind), Ok(src)) => str_literal(&run(&kind, &src)).into(),
        (Err(e), _) | (_, Err(e)) => compile_error(&e),
    }
}

/// `oracle_cases!("path/relative/to/the/calling/crate.txt")`: every case of
/// the case file as `&[(kind, input, dump)]`, where `dump` is what rustc
/// gives (empty for the cases rustc rejects with a compile error).
///
/// Case file: one case per line, `kind: input`, where `kind` is `ts`, `lit`
/// or `ident` (compared with rustc here; `ident~` the same but only
/// acceptance must agree), or `ts!`/`lit!` (rustc reports a
/// compile error; the guest must return `Err` with the same message) or
/// `ts!~`/`lit!~` (the same, but the message may differ). The input is the
/// rest of the line after `: ` (`kind:` alone is the empty input), with the
/// escapes `\n \r \t \0 \\ \u{…}`.
/// Empty lines and lines starting with `#` are ignored.
#[proc_macro]
pub fn oracle_cases(input: TokenStream) -> TokenStream {
    let Some(path) = input.into_iter().next() else {
        return compile_error("usage: oracle_cases!(\"path\")");
    };
    let path = match string_argument(&path) {
        Ok(path) => manifest_dir().join(path),
        Err(e) => return compile_error(&e),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => return compile_error(&format!("{}: {e}", path.display())),
    };
    let mut out = String::from("{ const _: &str = include_str!(");
    // Makes cargo rebuild the test when the case file changes.
    let _ = write!(out, "{:?}); &[", path.display().to_string());
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((kind, raw_input)) = line.split_once(':') else {
            return compile_error(&format!(
                "{}:{}: expected `kind: input`",
                path.display(),
                number + 1
            ));
        };
        let raw_input = raw_input.strip_prefix(' ').unwrap_or(raw_input);
        let case_input = match unescape(raw_input) {
            Ok(case_input) => case_input,
            Err(e) => return compile_error(&format!("{}:{}: {e}", path.display(), number + 1)),
        };
        if !matches!(
            kind,
            "ts" | "lit" | "ident" | "ident~" | "ts!" | "lit!" | "ts!~" | "lit!~"
        ) {
            return compile_error(&format!(
                "{}:{}: unknown kind {kind:?}",
                path.display(),
                number + 1
            ));
        }
        let dump = run(kind, &case_input);
        let _ = write!(out, "({kind:?}, {case_input:?}, {dump:?}),");
    }
    out.push_str("] }");
    out.parse()
        .unwrap_or_else(|_| compile_error("oracle_cases: generated code does not parse"))
}

/// `oracle_files!()`: `&[(path, dump)]` for every `.rs` file under `src/` of
/// the newest `syn`, `serde`, `serde_derive`, `proc-macro2` and `quote` in the
/// cargo registry (none if there is no registry: the test then fails on the
/// count, so it cannot pass silently).
#[proc_macro]
pub fn oracle_files(_input: TokenStream) -> TokenStream {
    let mut files = Vec::new();
    for name in ["syn", "serde", "serde_derive", "proc-macro2", "quote"] {
        if let Some(dir) = newest_registry_crate(name) {
            collect_rs_files(&dir.join("src"), &mut files);
        }
    }
    files.sort();
    let mut out = String::from("&[");
    for file in &files {
        let Ok(source) = std::fs::read_to_string(file) else {
            continue;
        };
        let path = file.display().to_string();
        let _ = write!(out, "({path:?}, {:?}),", dump_token_stream(&source));
    }
    out.push(']');
    out.parse()
        .unwrap_or_else(|_| compile_error("oracle_files: generated code does not parse"))
}

fn manifest_dir() -> PathBuf {
    // The calling crate's, as cargo sets it for the rustc compiling it.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `$CARGO_HOME/registry/src/*/NAME-VERSION` with the highest version.
fn newest_registry_crate(name: &str) -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for index in std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .flatten()
    {
        let Ok(entries) = std::fs::read_dir(index.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(version) = file_name.to_str().and_then(|n| n.strip_prefix(name)) else {
                continue;
            };
            let Some(version) = version.strip_prefix('-') else {
                continue;
            };
            // `serde-1.0.0` but not `serde-value-0.7`; pre-releases sort
            // by their numeric parts only.
            if !version.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            let key: Vec<u64> = version
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|part| part.parse().ok())
                .collect();
            if best.as_ref().is_none_or(|(best_key, _)| key > *best_key) {
                best = Some((key, entry.path()));
            }
        }
    }
    best.map(|(_, path)| path)
}

fn collect_rs_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}
