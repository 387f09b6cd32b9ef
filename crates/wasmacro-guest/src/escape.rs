//! Escaping for the `Literal` constructors, exactly as rustc 1.95's
//! `proc_macro` escapes (library/proc_macro/src/escape.rs).

#[derive(Copy, Clone)]
pub(crate) struct EscapeOptions {
    /// Produce \'.
    escape_single_quote: bool,
    /// Produce \".
    escape_double_quote: bool,
    /// Produce \x escapes for non-ASCII, and use \x rather than \u for ASCII
    /// control characters.
    escape_nonascii: bool,
}

pub(crate) const STRING: EscapeOptions = EscapeOptions {
    escape_single_quote: false,
    escape_double_quote: true,
    escape_nonascii: false,
};
pub(crate) const CHAR: EscapeOptions = EscapeOptions {
    escape_single_quote: true,
    escape_double_quote: false,
    escape_nonascii: false,
};
pub(crate) const BYTE_CHAR: EscapeOptions = EscapeOptions {
    escape_single_quote: true,
    escape_double_quote: false,
    escape_nonascii: true,
};
pub(crate) const BYTE_STRING: EscapeOptions = EscapeOptions {
    escape_single_quote: false,
    escape_double_quote: true,
    escape_nonascii: true,
};

pub(crate) fn escape_bytes(bytes: &[u8], opt: EscapeOptions) -> String {
    let mut repr = String::new();
    if opt.escape_nonascii {
        for &byte in bytes {
            escape_single_byte(byte, opt, &mut repr);
        }
    } else {
        for chunk in bytes.utf8_chunks() {
            for ch in chunk.valid().chars() {
                escape_single_char(ch, opt, &mut repr);
            }
            for &byte in chunk.invalid() {
                escape_single_byte(byte, opt, &mut repr);
            }
        }
    }
    repr
}

fn escape_single_byte(byte: u8, opt: EscapeOptions, repr: &mut String) {
    if byte == b'\0' {
        repr.push_str("\\0");
    } else if (byte == b'\'' && !opt.escape_single_quote)
        || (byte == b'"' && !opt.escape_double_quote)
    {
        repr.push(byte as char);
    } else {
        // \t, \r, \n, \\, \', \" and \x## for non-ASCII and ASCII controls.
        repr.extend(byte.escape_ascii().map(char::from));
    }
}

fn escape_single_char(ch: char, opt: EscapeOptions, repr: &mut String) {
    if (ch == '\'' && !opt.escape_single_quote) || (ch == '"' && !opt.escape_double_quote) {
        repr.push(ch);
    } else {
        // \0, \t, \r, \n, \\, \', \" and \u{...} for non-printable and
        // Grapheme_Extend characters.
        repr.extend(ch.escape_debug());
    }
}
