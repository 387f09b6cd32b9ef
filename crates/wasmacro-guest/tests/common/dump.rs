// The dump format shared by the oracle (compiled against rustc's
// `proc_macro`) and the test (compiled against the guest `proc_macro`):
// `include!`d by both, so the two sides cannot drift apart. The including
// file provides the `proc_macro` and `std` imports.

/// Dumps `TokenStream::from_str(src)`.
fn dump_token_stream(src: &str) -> String {
    match TokenStream::from_str(src) {
        Ok(stream) => {
            let mut out = String::new();
            dump_trees(stream, 0, &mut out);
            out
        }
        Err(error) => format!("LexError: {error}\n"),
    }
}

fn dump_trees(stream: TokenStream, depth: usize, out: &mut String) {
    for tree in stream {
        let indent = "  ".repeat(depth);
        match tree {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("«", "»"),
                };
                let _ = writeln!(out, "{indent}{open}");
                dump_trees(group.stream(), depth + 1, out);
                let _ = writeln!(out, "{indent}{close}");
            }
            TokenTree::Ident(ident) => {
                let _ = writeln!(out, "{indent}ident {ident}");
            }
            TokenTree::Punct(punct) => {
                let spacing = match punct.spacing() {
                    Spacing::Joint => "joint",
                    Spacing::Alone => "alone",
                };
                let _ = writeln!(out, "{indent}punct {} {spacing}", punct.as_char());
            }
            TokenTree::Literal(literal) => {
                let _ = writeln!(out, "{indent}literal {}", literal_debug(&literal));
            }
        }
    }
}

/// `Literal`'s `Debug` (kind, symbol, suffix) without the span, which comes
/// last.
fn literal_debug(literal: &Literal) -> String {
    let debug = format!("{literal:?}");
    match debug.rfind(", span: ") {
        Some(index) => format!("{} }}", &debug[..index]),
        None => debug,
    }
}

/// Dumps `Literal::from_str(src)`.
fn dump_literal(src: &str) -> String {
    match Literal::from_str(src) {
        Ok(literal) => format!("{}\n", literal_debug(&literal)),
        Err(error) => format!("LexError: {error}\n"),
    }
}

/// Dumps `Ident::new(name)` and `Ident::new_raw(name)`: the identifier, or
/// the panic message.
fn dump_ident(name: &str) -> String {
    let new = catch(|| Ident::new(name, Span::call_site()).to_string());
    let raw = catch(|| Ident::new_raw(name, Span::call_site()).to_string());
    format!("new: {new}\nraw: {raw}\n")
}

fn catch(f: impl FnOnce() -> String) -> String {
    // Keep the expected panics quiet.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    match result {
        Ok(text) => text,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("panic: {message}")
        }
    }
}
