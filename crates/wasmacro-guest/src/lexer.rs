//! The lexer behind `TokenStream::from_str`, `Literal::from_str` and the
//! identifier check of `Ident::new`, reproducing what rustc 1.95 does for them
//! (`rustc_lexer`, `rustc_parse::lexer` and `rustc_expand::proc_macro_server`).
//!
//! The differential test `tests/lexer.rs` compares it with rustc's own
//! implementation. What it reproduces, beyond the obvious:
//!
//! - The text is normalized first as rustc does for every source file: a
//!   leading byte order mark is dropped and `\r\n` becomes `\n` (also inside
//!   literals). `TokenStream::from_str` also drops a leading `#!` shebang line.
//! - Identifiers (plain, raw, lifetimes) are NFC-normalized.
//! - A punct is `Joint` exactly when the next token follows it without
//!   whitespace or comment and is itself a punct: rustc's token trees only
//!   remember `Joint` for punct-punct pairs (`&'a` gives an `Alone` `&`,
//!   because a lifetime is not a punct token).
//! - Doc comments become `#[doc = "…"]` (or `#![…]`) with the comment text
//!   escaped by `char::escape_debug`.
//! - Delimiter errors recover the way rustc's token tree builder does, so the
//!   error reported is the one rustc reports.
//!
//! Errors: rustc returns `Err(LexError)` only for delimiter errors; every other
//! lexing error (bad escape, unknown prefix, unterminated literal, ...) is
//! reported by rustc as a compile error at the macro call site (a few even
//! crash rustc). Here all of them are `Err(LexError)` carrying rustc's message,
//! which a macro typically turns into a panic and so into a compile error too.
//!
//! Edition: rustc lexes with the edition of the proc-macro crate. This lexer
//! implements the 2021 rules: `#"…"` and `##` lex as `#` puncts (2024 makes
//! them errors); raw lifetimes, C strings and reserved prefixes (`foo"…"` is an
//! error) are as in 2021 and later.

use std::borrow::Cow;

use crate::unicode_ident::{is_xid_continue, is_xid_start, nfc};
use crate::{
    DelimSpan, Delimiter, Group, Ident, LexError, LitKind, Literal, Punct, Spacing, Span,
    TokenStream, TokenTree,
};

/// `TokenStream::from_str`: lexes `src` into token trees, all spanned `span`.
pub(crate) fn token_stream(src: &str, span: Span) -> Result<TokenStream, LexError> {
    let text = normalize_source(src);
    token_trees(strip_shebang(&text), span)
}

/// `Literal::from_str`: exactly one literal, optionally preceded by `-` for a
/// number, with nothing else around it (not even whitespace).
pub(crate) fn literal(src: &str, span: Span) -> Result<Literal, LexError> {
    // rustc builds a parser over the whole string, which lexes all of it into
    // token trees first: lexing and delimiter errors take precedence. Unlike
    // `TokenStream::from_str`, no shebang is stripped.
    let text = normalize_source(src);
    token_trees(&text, span)?;

    let mut lexer = Lexer::new(&text);
    let not_a_literal = || LexError::new("not a literal");
    let first = lexer.next_token()?.ok_or_else(not_a_literal)?;
    let (first_start, first_end) = (first.start, first.end);
    let minus = matches!(first.kind, TokenKind::Punct('-'));
    let token = if minus {
        lexer.next_token()?.ok_or_else(not_a_literal)?
    } else {
        first
    };
    let TokenKind::Literal {
        kind,
        symbol,
        suffix,
    } = token.kind
    else {
        return Err(not_a_literal());
    };
    // Positions are in the normalized text but rustc compares them with the
    // length of the original string, so a BOM or a `\r\n` also fails here.
    if token.end - first_start != src.len() {
        return Err(LexError::new("comment or whitespace around literal"));
    }
    if !minus {
        return Ok(Literal::from_parts(kind, symbol, suffix, span));
    }
    if first_end != token.start {
        return Err(LexError::new("comment or whitespace after minus"));
    }
    if !matches!(kind, LitKind::Integer | LitKind::Float) {
        return Err(LexError::new("non-numeric literal may not be negated"));
    }
    // rustc makes the minus part of the symbol.
    let symbol = format!("-{symbol}");
    Ok(Literal::from_parts(kind, &symbol, suffix, span))
}

/// The check behind `Ident::new` (`is_raw == false`) and `Ident::new_raw`;
/// the error is rustc's panic message.
///
/// rustc also NFC-normalizes a non-ASCII name; `crate::unicode_ident::nfc`
/// gives the name it would store.
pub(crate) fn validate_ident(string: &str, is_raw: bool) -> Result<(), String> {
    // rustc's client checks ASCII names itself (and accepts `$crate`, which
    // only macro expansion could otherwise produce); others go to the server.
    let is_ascii_ident = |s: &str| {
        let mut bytes = s.bytes();
        bytes
            .next()
            .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
            && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
    };
    if is_ascii_ident(string) || string == "$crate" {
        if is_raw && !can_be_raw(string) {
            return Err(format!("`{string}` cannot be a raw identifier"));
        }
        return Ok(());
    }
    if !string.is_ascii() && is_ident(&nfc(string)) {
        return Ok(());
    }
    Err(format!("`{string:?}` is not a valid identifier"))
}

/// `rustc_lexer::is_ident`.
fn is_ident(string: &str) -> bool {
    let mut chars = string.chars();
    chars.next().is_some_and(is_id_start) && chars.all(is_id_continue)
}

/// Keywords that are path segments cannot be raw (`r#self` would be
/// meaningless), nor can `_`.
fn can_be_raw(name: &str) -> bool {
    !matches!(name, "_" | "super" | "self" | "Self" | "crate" | "$crate")
}

fn is_id_start(ch: char) -> bool {
    // `_` is not XID_Start, but starts identifiers.
    ch == '_' || is_xid_start(ch)
}

fn is_id_continue(ch: char) -> bool {
    is_xid_continue(ch)
}

/// Rust's whitespace: Unicode `Pattern_White_Space`.
fn is_whitespace(ch: char) -> bool {
    matches!(
        ch,
        '\t' | '\n'
            | '\u{000B}'
            | '\u{000C}'
            | '\r'
            | ' '
            | '\u{0085}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// The characters that are single-character punctuation tokens. (`'` is a
/// legal `Punct` too, but in source it always starts a lifetime or a char.)
fn is_punct_char(ch: char) -> bool {
    matches!(
        ch,
        ';' | ','
            | '.'
            | '@'
            | '#'
            | '~'
            | '?'
            | ':'
            | '$'
            | '='
            | '!'
            | '<'
            | '>'
            | '-'
            | '&'
            | '|'
            | '+'
            | '*'
            | '/'
            | '^'
            | '%'
    )
}

/// What rustc does to every source text it loads (`normalize_src`).
fn normalize_source(src: &str) -> Cow<'_, str> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    if src.contains("\r\n") {
        Cow::Owned(src.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(src)
    }
}

/// `rustc_lexer::strip_shebang`: a first line starting with `#!` is dropped,
/// unless the next token after `#!` (skipping whitespace and plain comments)
/// is `[`, which makes it an inner attribute.
fn strip_shebang(src: &str) -> &str {
    let Some(tail) = src.strip_prefix("#!") else {
        return src;
    };
    let mut cursor = Lexer::new(tail);
    cursor.skip_whitespace_and_plain_comments();
    if cursor.first() == Some('[') {
        return src;
    }
    let line_end = tail.find('\n').unwrap_or(tail.len());
    &tail[line_end..]
}

// ---------------------------------------------------------------------------
// Token trees

/// An open group while its contents are being lexed.
struct Frame {
    /// `None` for the top level.
    delimiter: Option<Delimiter>,
    trees: Vec<TokenTree>,
}

/// Lexes `text` (already normalized) into token trees, with rustc's
/// delimiter error recovery (`rustc_parse::lexer::tokentrees`).
///
/// rustc lexes one token at a time and stops at the first closing delimiter
/// that closes nothing; tokens after it are never lexed (so their errors are
/// never seen). This lexes lazily in the same order. Groups are kept on an
/// explicit stack so deep nesting cannot overflow the call stack.
fn token_trees(text: &str, span: Span) -> Result<TokenStream, LexError> {
    let mut lexer = Lexer::new(text);
    let mut stack = vec![Frame {
        delimiter: None,
        trees: Vec::new(),
    }];
    // The first closing delimiter that did not match its group. rustc keeps
    // going after one (closing the group anyway) and reports it at the end.
    let mut mismatch: Option<Delimiter> = None;

    let mut next = lexer.next_token()?;
    while let Some(token) = next.take() {
        match token.kind {
            TokenKind::Open(delimiter) => {
                stack.push(Frame {
                    delimiter: Some(delimiter),
                    trees: Vec::new(),
                });
                next = lexer.next_token()?;
            }
            TokenKind::Close(delimiter) => {
                if stack.len() == 1 {
                    return Err(LexError::new(format!(
                        "unexpected closing delimiter: `{}`",
                        close_char(delimiter)
                    )));
                }
                let Some(frame) = stack.pop() else { break };
                let group_delimiter = frame.delimiter.unwrap_or(delimiter);
                let group = Group::with_spans(
                    group_delimiter,
                    TokenStream::from_trees(frame.trees),
                    DelimSpan::from_single(span),
                );
                push(&mut stack, TokenTree::Group(group));
                if group_delimiter == delimiter {
                    next = lexer.next_token()?;
                } else {
                    mismatch.get_or_insert(delimiter);
                    // A wrong delimiter that matches an enclosing group is
                    // left to close that group (`{ ( }`); otherwise it is
                    // dropped (`( ]`).
                    let closes_outer = stack.iter().any(|frame| frame.delimiter == Some(delimiter));
                    next = if closes_outer {
                        Some(token)
                    } else {
                        lexer.next_token()?
                    };
                }
            }
            TokenKind::Punct(ch) => {
                next = lexer.next_token()?;
                let joint = next
                    .as_ref()
                    .is_some_and(|n| !n.after_trivia && matches!(n.kind, TokenKind::Punct(_)));
                let spacing = if joint {
                    Spacing::Joint
                } else {
                    Spacing::Alone
                };
                push(
                    &mut stack,
                    TokenTree::Punct(Punct::with_span(ch, spacing, span)),
                );
            }
            TokenKind::Ident { name, is_raw } => {
                push(
                    &mut stack,
                    TokenTree::Ident(Ident::new_unchecked(&name, is_raw, span)),
                );
                next = lexer.next_token()?;
            }
            TokenKind::Lifetime { name, is_raw } => {
                // rustc splits a lifetime into a joint `'` and an identifier.
                push(
                    &mut stack,
                    TokenTree::Punct(Punct::with_span('\'', Spacing::Joint, span)),
                );
                push(
                    &mut stack,
                    TokenTree::Ident(Ident::new_unchecked(&name, is_raw, span)),
                );
                next = lexer.next_token()?;
            }
            TokenKind::Literal {
                kind,
                symbol,
                suffix,
            } => {
                let literal = Literal::from_parts(kind, symbol, suffix, span);
                push(&mut stack, TokenTree::Literal(literal));
                next = lexer.next_token()?;
            }
            TokenKind::DocComment { inner, text } => {
                push_doc_comment(&mut stack, inner, text, span);
                next = lexer.next_token()?;
            }
        }
    }

    if stack.len() > 1 {
        return Err(LexError::new("this file contains an unclosed delimiter"));
    }
    if let Some(delimiter) = mismatch {
        // rustc 1.95 crashes here ("no diagnostic has a message"): the only
        // error it has is a mismatch diagnostic it cannot turn into a string.
        return Err(LexError::new(format!(
            "mismatched closing delimiter: `{}`",
            close_char(delimiter)
        )));
    }
    let trees = stack.pop().map(|frame| frame.trees).unwrap_or_default();
    Ok(TokenStream::from_trees(trees))
}

fn push(stack: &mut [Frame], tree: TokenTree) {
    // The top-level frame is never popped while lexing, so there is a last.
    if let Some(frame) = stack.last_mut() {
        frame.trees.push(tree);
    }
}

/// `/// text` becomes `#[doc = "text"]`, `//! text` becomes `#![doc = "text"]`,
/// as rustc's proc-macro server converts a doc comment token.
fn push_doc_comment(stack: &mut [Frame], inner: bool, text: &str, span: Span) {
    let mut escaped = String::with_capacity(text.len());
    for ch in text.chars() {
        escaped.extend(ch.escape_debug());
    }
    push(
        stack,
        TokenTree::Punct(Punct::with_span('#', Spacing::Alone, span)),
    );
    if inner {
        push(
            stack,
            TokenTree::Punct(Punct::with_span('!', Spacing::Alone, span)),
        );
    }
    let stream = TokenStream::from_trees(vec![
        TokenTree::Ident(Ident::new_unchecked("doc", false, span)),
        TokenTree::Punct(Punct::with_span('=', Spacing::Alone, span)),
        TokenTree::Literal(Literal::from_parts(LitKind::Str, &escaped, None, span)),
    ]);
    let group = Group::with_spans(Delimiter::Bracket, stream, DelimSpan::from_single(span));
    push(stack, TokenTree::Group(group));
}

fn close_char(delimiter: Delimiter) -> char {
    match delimiter {
        Delimiter::Parenthesis => ')',
        Delimiter::Bracket => ']',
        Delimiter::Brace => '}',
        // Never produced by the lexer.
        Delimiter::None => ' ',
    }
}

// ---------------------------------------------------------------------------
// Tokens

struct Token<'a> {
    kind: TokenKind<'a>,
    /// Byte range in the (normalized) text.
    start: usize,
    end: usize,
    /// Whether whitespace or a plain comment comes right before the token.
    after_trivia: bool,
}

enum TokenKind<'a> {
    /// Already NFC-normalized; without `r#`.
    Ident {
        name: Cow<'a, str>,
        is_raw: bool,
    },
    /// Already NFC-normalized; without `'` and `r#`.
    Lifetime {
        name: Cow<'a, str>,
        is_raw: bool,
    },
    Literal {
        kind: LitKind,
        symbol: &'a str,
        suffix: Option<&'a str>,
    },
    Punct(char),
    DocComment {
        inner: bool,
        text: &'a str,
    },
    Open(Delimiter),
    Close(Delimiter),
}

/// How the contents of a quoted literal are checked (rustc's
/// `rustc_literal_escaper::Mode`).
#[derive(Copy, Clone, PartialEq, Eq)]
enum Mode {
    Char,
    Byte,
    Str,
    ByteStr,
    CStr,
    RawStr,
    RawByteStr,
    RawCStr,
}

impl Mode {
    fn is_byte(self) -> bool {
        matches!(self, Mode::Byte | Mode::ByteStr | Mode::RawByteStr)
    }

    /// `\x80`..`\xFF`: only where the value is a byte.
    fn allows_high_bytes(self) -> bool {
        matches!(self, Mode::Byte | Mode::ByteStr | Mode::CStr)
    }

    fn is_c_str(self) -> bool {
        matches!(self, Mode::CStr | Mode::RawCStr)
    }

    /// The literal's name in rustc's messages.
    fn description(self) -> &'static str {
        match self {
            Mode::Char => "character literal",
            Mode::Byte => "byte literal",
            Mode::Str | Mode::RawStr => "string literal",
            Mode::ByteStr => "byte string literal",
            Mode::RawByteStr => "raw byte string literal",
            Mode::CStr | Mode::RawCStr => "C string literal",
        }
    }
}

fn error<T>(message: impl Into<String>) -> Result<T, LexError> {
    Err(LexError::new(message))
}

/// rustc's `escaped_char` for messages: printable ASCII as is, the rest
/// escaped.
fn escaped_char(ch: char) -> String {
    if (' '..='~').contains(&ch) {
        ch.to_string()
    } else {
        ch.escape_default().to_string()
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Lexer<'a> {
        Lexer { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn nth(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn first(&self) -> Option<char> {
        self.nth(0)
    }

    fn second(&self) -> Option<char> {
        self.nth(1)
    }

    fn third(&self) -> Option<char> {
        self.nth(2)
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.first()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn eat_while(&mut self, mut predicate: impl FnMut(char) -> bool) {
        let rest = self.rest();
        let len = rest.find(|ch| !predicate(ch)).unwrap_or(rest.len());
        self.pos += len;
    }

    /// `rustc_lexer`'s `eat_identifier` (also used for literal suffixes).
    fn eat_identifier(&mut self) {
        if self.first().is_some_and(is_id_start) {
            self.bump();
            self.eat_while(is_id_continue);
        }
    }

    /// At `//` or `/*`: whether the comment is a doc comment, and if so
    /// whether it is an inner one. `////…` and `/***…` (and `/**/`) are plain.
    fn comment_doc_style(&self) -> Option<bool> {
        let line = self.second() == Some('/');
        match (self.third(), self.nth(3)) {
            (Some('!'), _) => Some(true),
            (Some('/'), fourth) if line && fourth != Some('/') => Some(false),
            (Some('*'), fourth) if !line && !matches!(fourth, Some('*' | '/')) => Some(false),
            _ => None,
        }
    }

    /// For shebang detection: skips what `rustc_lexer` would not count as a
    /// token there (whitespace and plain comments, even unterminated ones).
    fn skip_whitespace_and_plain_comments(&mut self) {
        loop {
            match (self.first(), self.second()) {
                (Some(ch), _) if is_whitespace(ch) => self.eat_while(is_whitespace),
                (Some('/'), Some('/' | '*')) if self.comment_doc_style().is_none() => {
                    if self.second() == Some('/') {
                        self.eat_while(|ch| ch != '\n');
                    } else {
                        self.pos += 2;
                        let _ = self.block_comment_body();
                    }
                }
                _ => return,
            }
        }
    }

    /// After `/*`: skips to the end of the (nested) block comment; false if
    /// it is unterminated.
    fn block_comment_body(&mut self) -> bool {
        let mut depth = 1usize;
        while let Some(ch) = self.bump() {
            match ch {
                '/' if self.first() == Some('*') => {
                    self.bump();
                    depth += 1;
                }
                '*' if self.first() == Some('/') => {
                    self.bump();
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// The next token, or `None` at the end.
    fn next_token(&mut self) -> Result<Option<Token<'a>>, LexError> {
        let mut after_trivia = false;
        loop {
            let start = self.pos;
            let Some(ch) = self.first() else {
                return Ok(None);
            };
            let kind = match ch {
                '/' if matches!(self.second(), Some('/' | '*')) => match self.comment(start)? {
                    Some(kind) => kind,
                    None => {
                        after_trivia = true;
                        continue;
                    }
                },
                ch if is_whitespace(ch) => {
                    self.eat_while(is_whitespace);
                    after_trivia = true;
                    continue;
                }
                _ => {
                    self.bump();
                    self.token(start, ch)?
                }
            };
            return Ok(Some(Token {
                kind,
                start,
                end: self.pos,
                after_trivia,
            }));
        }
    }

    /// At `//` or `/*`: a doc comment token, or `None` for a plain comment.
    fn comment(&mut self, start: usize) -> Result<Option<TokenKind<'a>>, LexError> {
        let doc_style = self.comment_doc_style();
        let line = self.second() == Some('/');
        self.pos += 2;
        let text = if line {
            self.eat_while(|ch| ch != '\n');
            self.src.get(start + 3..self.pos)
        } else {
            if !self.block_comment_body() {
                let what = if doc_style.is_some() {
                    "block doc-comment"
                } else {
                    "block comment"
                };
                return error(format!("unterminated {what}"));
            }
            self.src.get(start + 3..self.pos - 2)
        };
        let Some(inner) = doc_style else {
            return Ok(None);
        };
        // A doc comment is at least `///` or `/**x*/`, so the range exists.
        let text = text.unwrap_or_default();
        if text.contains('\r') {
            let what = if line {
                "doc-comment"
            } else {
                "block doc-comment"
            };
            return error(format!("bare CR not allowed in {what}"));
        }
        Ok(Some(TokenKind::DocComment { inner, text }))
    }

    /// The token starting with `ch` (already consumed) at `start`.
    fn token(&mut self, start: usize, ch: char) -> Result<TokenKind<'a>, LexError> {
        Ok(match ch {
            'r' => match (self.first(), self.second()) {
                (Some('#'), Some(next)) if is_id_start(next) => self.raw_ident(start)?,
                (Some('#' | '"'), _) => self.raw_string(Mode::RawStr)?,
                _ => self.ident_or_unknown_prefix(start)?,
            },
            'b' | 'c' => {
                let (quoted, raw) = if ch == 'b' {
                    (Mode::ByteStr, Mode::RawByteStr)
                } else {
                    (Mode::CStr, Mode::RawCStr)
                };
                match (self.first(), self.second()) {
                    (Some('\''), _) if ch == 'b' => {
                        self.bump();
                        self.single_quoted(start, Mode::Byte)?
                    }
                    (Some('"'), _) => {
                        self.bump();
                        self.double_quoted(start, quoted)?
                    }
                    (Some('r'), Some('"' | '#')) => {
                        self.bump();
                        self.raw_string(raw)?
                    }
                    _ => self.ident_or_unknown_prefix(start)?,
                }
            }
            ch if is_id_start(ch) => self.ident_or_unknown_prefix(start)?,
            '0'..='9' => self.number(start, ch)?,
            '\'' => self.lifetime_or_char(start)?,
            '"' => self.double_quoted(start, Mode::Str)?,
            '(' => TokenKind::Open(Delimiter::Parenthesis),
            '[' => TokenKind::Open(Delimiter::Bracket),
            '{' => TokenKind::Open(Delimiter::Brace),
            ')' => TokenKind::Close(Delimiter::Parenthesis),
            ']' => TokenKind::Close(Delimiter::Bracket),
            '}' => TokenKind::Close(Delimiter::Brace),
            // `#"` and `##` are reserved in edition 2024 only; before, the
            // `#` is an ordinary punct (see the module docs).
            ch if is_punct_char(ch) => TokenKind::Punct(ch),
            ch => return error(format!("unknown start of token: {}", escaped_char(ch))),
        })
    }

    /// After `r`, at `#` + identifier start.
    fn raw_ident(&mut self, start: usize) -> Result<TokenKind<'a>, LexError> {
        self.bump();
        self.eat_identifier();
        let name = nfc(&self.src[start + 2..self.pos]);
        if !can_be_raw(&name) {
            return error(format!("`{name}` cannot be a raw identifier"));
        }
        Ok(TokenKind::Ident { name, is_raw: true })
    }

    /// After an identifier start at `start`.
    fn ident_or_unknown_prefix(&mut self, start: usize) -> Result<TokenKind<'a>, LexError> {
        self.eat_while(is_id_continue);
        let text = &self.src[start..self.pos];
        // `foo"…"`, `foo'…'` and `foo#…` are reserved since edition 2021 (the
        // known prefixes `r`, `b`, `br`, `c`, `cr` never get here).
        if matches!(self.first(), Some('#' | '"' | '\'')) {
            return error(format!("prefix `{}` is unknown", nfc(text)));
        }
        Ok(TokenKind::Ident {
            name: nfc(text),
            is_raw: false,
        })
    }

    /// After `'` at `start`: a lifetime or a character literal, decided as
    /// `rustc_lexer` does.
    fn lifetime_or_char(&mut self, start: usize) -> Result<TokenKind<'a>, LexError> {
        let can_be_lifetime = self.second() != Some('\'')
            && self
                .first()
                .is_some_and(|ch| is_id_start(ch) || ch.is_ascii_digit());
        if !can_be_lifetime {
            return self.single_quoted(start, Mode::Char);
        }

        if self.first() == Some('r')
            && self.second() == Some('#')
            && self.third().is_some_and(is_id_start)
        {
            self.pos += 2;
            self.eat_identifier();
            if self.first() == Some('\'') {
                // `'r#a'`: rustc lexes a lifetime, then rejects it as an
                // over-long character literal.
                return error("character literal may only contain one codepoint");
            }
            let name = nfc(&self.src[start + 3..self.pos]);
            if !can_be_raw(&name) {
                return error(format!("`{name}` cannot be a raw lifetime"));
            }
            return Ok(TokenKind::Lifetime { name, is_raw: true });
        }

        let starts_with_number = self.first().is_some_and(|ch| ch.is_ascii_digit());
        self.bump();
        self.eat_while(is_id_continue);
        match self.first() {
            // `'ab'`: a character literal of several characters (an error).
            Some('\'') => {
                self.bump();
                self.finish_quoted(start, 1, self.pos - 1, Mode::Char)
            }
            Some('#') if !starts_with_number => error(format!(
                "prefix `{}` is unknown",
                nfc(&self.src[start..self.pos])
            )),
            _ if starts_with_number => error("lifetimes cannot start with a number"),
            _ => Ok(TokenKind::Lifetime {
                name: nfc(&self.src[start + 1..self.pos]),
                is_raw: false,
            }),
        }
    }

    /// After the opening `'` of a char or byte literal starting at `start`
    /// (`rustc_lexer`'s `single_quoted_string`).
    fn single_quoted(&mut self, start: usize, mode: Mode) -> Result<TokenKind<'a>, LexError> {
        let content_start = self.pos;
        let terminated = if self.second() == Some('\'') && self.first() != Some('\\') {
            // The common one-character case.
            self.bump();
            self.bump();
            true
        } else {
            loop {
                match self.first() {
                    Some('\'') => {
                        self.bump();
                        break true;
                    }
                    // Probably the start of a comment: not part of the literal.
                    Some('/') | None => break false,
                    Some('\n') if self.second() != Some('\'') => break false,
                    Some('\\') => {
                        self.bump();
                        self.bump();
                    }
                    Some(_) => {
                        self.bump();
                    }
                }
            }
        };
        if !terminated {
            let what = if mode == Mode::Byte {
                "byte constant"
            } else {
                "character literal"
            };
            return error(format!("unterminated {what}"));
        }
        self.finish_quoted(start, content_start - start, self.pos - 1, mode)
    }

    /// After the opening `"` of a string literal starting at `start`.
    fn double_quoted(&mut self, start: usize, mode: Mode) -> Result<TokenKind<'a>, LexError> {
        let content_start = self.pos;
        loop {
            match self.bump() {
                Some('"') => break,
                Some('\\') if matches!(self.first(), Some('\\' | '"')) => {
                    self.bump();
                }
                Some(_) => {}
                None => {
                    let what = match mode {
                        Mode::ByteStr => "double quote byte string",
                        Mode::CStr => "C string",
                        _ => "double quote string",
                    };
                    return error(format!("unterminated {what}"));
                }
            }
        }
        self.finish_quoted(start, content_start - start, self.pos - 1, mode)
    }

    /// After `r` (of `r`, `br` or `cr`) of a raw string starting at `start`.
    fn raw_string(&mut self, mode: Mode) -> Result<TokenKind<'a>, LexError> {
        let hashes_start = self.pos;
        self.eat_while(|ch| ch == '#');
        let n_hashes = self.pos - hashes_start;
        match self.bump() {
            Some('"') => {}
            other => {
                return error(format!(
                    "found invalid character; only `#` is allowed in raw string delimitation: {}",
                    escaped_char(other.unwrap_or('\0'))
                ));
            }
        }
        let content_start = self.pos;
        let content_end = loop {
            let Some(quote) = self.rest().find('"') else {
                return error("unterminated raw string");
            };
            self.pos += quote;
            let content_end = self.pos;
            self.bump();
            // Extra `#`s after the closing ones are separate tokens.
            let closing = self
                .rest()
                .bytes()
                .take(n_hashes)
                .take_while(|&b| b == b'#')
                .count();
            self.pos += closing;
            if closing == n_hashes {
                break content_end;
            }
        };
        let Ok(n) = u8::try_from(n_hashes) else {
            return error(format!(
                "too many `#` symbols: raw strings may be delimited by up to 255 `#` symbols, but found {n_hashes}"
            ));
        };
        let kind = match mode {
            Mode::RawByteStr => LitKind::ByteStrRaw(n),
            Mode::RawCStr => LitKind::CStrRaw(n),
            _ => LitKind::StrRaw(n),
        };
        let symbol = &self.src[content_start..content_end];
        let suffix = self.suffix();
        check_quoted(symbol, mode)?;
        check_suffix(suffix)?;
        Ok(TokenKind::Literal {
            kind,
            symbol,
            suffix,
        })
    }

    /// The end of a quoted literal starting at `start`, whose contents start
    /// `prefix` bytes into it and end at `content_end`: eats the suffix and
    /// checks the contents.
    fn finish_quoted(
        &mut self,
        start: usize,
        prefix: usize,
        content_end: usize,
        mode: Mode,
    ) -> Result<TokenKind<'a>, LexError> {
        let symbol = &self.src[start + prefix..content_end];
        let suffix = self.suffix();
        check_quoted(symbol, mode)?;
        check_suffix(suffix)?;
        let kind = match mode {
            Mode::Char => LitKind::Char,
            Mode::Byte => LitKind::Byte,
            Mode::ByteStr => LitKind::ByteStr,
            Mode::CStr => LitKind::CStr,
            _ => LitKind::Str,
        };
        Ok(TokenKind::Literal {
            kind,
            symbol,
            suffix,
        })
    }

    /// A literal suffix: any identifier right after the literal.
    fn suffix(&mut self) -> Option<&'a str> {
        let start = self.pos;
        self.eat_identifier();
        (self.pos > start).then(|| &self.src[start..self.pos])
    }

    /// After the first digit `first` of a number starting at `start`
    /// (`rustc_lexer`'s `number`).
    fn number(&mut self, start: usize, first: char) -> Result<TokenKind<'a>, LexError> {
        let mut base = 10;
        let mut empty_int = false;
        let mut only_digits = false;
        if first == '0' {
            match self.first() {
                Some(prefix @ ('b' | 'o' | 'x')) => {
                    self.bump();
                    base = match prefix {
                        'b' => 2,
                        'o' => 8,
                        _ => 16,
                    };
                    let has_digits = if base == 16 {
                        self.eat_hex_digits()
                    } else {
                        self.eat_decimal_digits()
                    };
                    // `0x` without digits: no fraction or exponent is looked for.
                    empty_int = !has_digits;
                    only_digits = empty_int;
                }
                Some('0'..='9' | '_') => {
                    self.eat_decimal_digits();
                }
                Some('.' | 'e' | 'E') => {}
                // Just `0`.
                _ => only_digits = true,
            }
        } else {
            self.eat_decimal_digits();
        }

        let mut float = false;
        let mut empty_exponent = false;
        if !only_digits {
            match self.first() {
                // `1.` and `1.5` are floats, but `1..2`, `1.foo` and `1.e3` are
                // an integer followed by `..` or `.`.
                Some('.')
                    if self.second() != Some('.') && !self.second().is_some_and(is_id_start) =>
                {
                    self.bump();
                    float = true;
                    if self.first().is_some_and(|ch| ch.is_ascii_digit()) {
                        self.eat_decimal_digits();
                        if matches!(self.first(), Some('e' | 'E')) {
                            self.bump();
                            empty_exponent = !self.eat_float_exponent();
                        }
                    }
                }
                Some('e' | 'E') => {
                    self.bump();
                    float = true;
                    empty_exponent = !self.eat_float_exponent();
                }
                _ => {}
            }
        }

        let symbol = &self.src[start..self.pos];
        let suffix = self.suffix();
        if float {
            if empty_exponent {
                return error("expected at least one digit in exponent");
            }
            if let Some(name) = base_name(base) {
                return error(format!("{name} float literal is not supported"));
            }
        } else if empty_int {
            return error("no valid digits found for number");
        } else if base == 2 || base == 8 {
            // The digits were eaten as decimal ones.
            let digits = symbol.get(2..).unwrap_or_default();
            if digits
                .chars()
                .any(|ch| ch != '_' && ch.to_digit(base).is_none())
            {
                return error(format!("invalid digit for a base {base} literal"));
            }
        }
        check_suffix(suffix)?;
        let kind = if float {
            LitKind::Float
        } else {
            LitKind::Integer
        };
        Ok(TokenKind::Literal {
            kind,
            symbol,
            suffix,
        })
    }

    /// Eats `[0-9_]*`; whether there was a digit.
    fn eat_decimal_digits(&mut self) -> bool {
        let start = self.pos;
        self.eat_while(|ch| ch == '_' || ch.is_ascii_digit());
        self.src[start..self.pos].bytes().any(|b| b != b'_')
    }

    /// Eats `[0-9a-fA-F_]*`; whether there was a digit.
    fn eat_hex_digits(&mut self) -> bool {
        let start = self.pos;
        self.eat_while(|ch| ch == '_' || ch.is_ascii_hexdigit());
        self.src[start..self.pos].bytes().any(|b| b != b'_')
    }

    /// After `e`/`E`: an optional sign and digits; whether there was a digit.
    fn eat_float_exponent(&mut self) -> bool {
        if matches!(self.first(), Some('-' | '+')) {
            self.bump();
        }
        self.eat_decimal_digits()
    }
}

fn base_name(base: u32) -> Option<&'static str> {
    match base {
        2 => Some("binary"),
        8 => Some("octal"),
        16 => Some("hexadecimal"),
        _ => None,
    }
}

fn check_suffix(suffix: Option<&str>) -> Result<(), LexError> {
    if suffix == Some("_") {
        return error("underscore literal suffix is not allowed");
    }
    Ok(())
}

/// Checks the contents of a quoted literal as rustc's unescaper does; only
/// validity matters, since the symbol is the text as written.
fn check_quoted(content: &str, mode: Mode) -> Result<(), LexError> {
    match mode {
        Mode::RawStr | Mode::RawByteStr | Mode::RawCStr => {
            for ch in content.chars() {
                if ch == '\r' {
                    return error("bare CR not allowed in raw string");
                }
                check_char(ch, mode)?;
            }
            Ok(())
        }
        Mode::Char | Mode::Byte => {
            let mut chars = content.chars();
            // rustc says "character literal" for byte literals too.
            let Some(first) = chars.next() else {
                return error("empty character literal");
            };
            match first {
                '\\' => {
                    scan_escape(&mut chars, mode)?;
                }
                '\n' | '\t' | '\'' => {
                    let what = if mode == Mode::Byte {
                        "byte"
                    } else {
                        "character"
                    };
                    return error(format!(
                        "{what} constant must be escaped: `{}`",
                        escaped_char(first)
                    ));
                }
                // (Even for a byte literal, rustc says "character" here.)
                '\r' => return error("character constant must be escaped: `\\r`"),
                ch => check_char(ch, mode)?,
            }
            if chars.next().is_some() {
                return error("character literal may only contain one codepoint");
            }
            Ok(())
        }
        Mode::Str | Mode::ByteStr | Mode::CStr => {
            let mut chars = content.chars();
            while let Some(ch) = chars.next() {
                match ch {
                    // A `\` at the end of a line skips the line break and the
                    // whitespace after it.
                    '\\' if chars.as_str().starts_with('\n') => {
                        let rest = chars.as_str();
                        let skip = rest
                            .find(|ch| !matches!(ch, ' ' | '\t' | '\n' | '\r'))
                            .unwrap_or(rest.len());
                        chars = rest[skip..].chars();
                    }
                    '\\' => {
                        if scan_escape(&mut chars, mode)? == 0 && mode.is_c_str() {
                            return error(nul_in_c_str());
                        }
                    }
                    '\r' => return error(BARE_CR),
                    ch => check_char(ch, mode)?,
                }
            }
            Ok(())
        }
    }
}

/// A character written as itself in a literal.
fn check_char(ch: char, mode: Mode) -> Result<(), LexError> {
    if mode.is_byte() && !ch.is_ascii() {
        return error(format!("non-ASCII character in {}", mode.description()));
    }
    if mode.is_c_str() && ch == '\0' {
        return error(nul_in_c_str());
    }
    Ok(())
}

/// rustc's message for a `\r` in any non-raw quoted literal.
const BARE_CR: &str = "bare CR not allowed in string, use `\\r` instead";

fn nul_in_c_str() -> &'static str {
    "null characters in C string literals are not supported"
}

/// After a `\`: checks one escape and returns its value.
fn scan_escape(chars: &mut std::str::Chars<'_>, mode: Mode) -> Result<u32, LexError> {
    let Some(ch) = chars.next() else {
        return error("invalid trailing slash in literal");
    };
    let value = match ch {
        '"' | 'n' | 'r' | 't' | '\\' | '\'' => 1,
        '0' => 0,
        'x' => {
            let mut value = 0;
            for _ in 0..2 {
                let Some(ch) = chars.next() else {
                    return error("numeric character escape is too short");
                };
                let Some(digit) = ch.to_digit(16) else {
                    return error(format!(
                        "invalid character in numeric character escape: `{}`",
                        escaped_char(ch)
                    ));
                };
                value = value * 16 + digit;
            }
            if value > 0x7F && !mode.allows_high_bytes() {
                return error("out of range hex escape");
            }
            value
        }
        'u' => scan_unicode_escape(chars, mode)?,
        ch => {
            let what = if mode.is_byte() { "byte" } else { "character" };
            return error(format!("unknown {what} escape: `{}`", escaped_char(ch)));
        }
    };
    Ok(value)
}

/// After `\u`: `{`, 1 to 6 hex digits (and `_`s, not first), `}`.
fn scan_unicode_escape(chars: &mut std::str::Chars<'_>, mode: Mode) -> Result<u32, LexError> {
    if chars.next() != Some('{') {
        return error("incorrect unicode escape sequence");
    }
    let mut value = match chars.next() {
        None => return error("unterminated unicode escape"),
        Some('_') => return error("invalid start of unicode escape: `_`"),
        Some('}') => return error("empty unicode escape"),
        Some(ch) => match ch.to_digit(16) {
            Some(digit) => digit,
            None => {
                return error(format!(
                    "invalid character in unicode escape: `{}`",
                    escaped_char(ch)
                ));
            }
        },
    };
    let mut n_digits = 1;
    loop {
        match chars.next() {
            None => return error("unterminated unicode escape"),
            Some('_') => {}
            Some('}') => break,
            Some(ch) => {
                let Some(digit) = ch.to_digit(16) else {
                    return error(format!(
                        "invalid character in unicode escape: `{}`",
                        escaped_char(ch)
                    ));
                };
                n_digits += 1;
                // Past 6 digits the value no longer matters (and could overflow).
                if n_digits <= 6 {
                    value = value * 16 + digit;
                }
            }
        }
    }
    if n_digits > 6 {
        return error("overlong unicode escape");
    }
    if mode.is_byte() {
        return error("unicode escape in byte string");
    }
    if char::from_u32(value).is_none() {
        return error("invalid unicode character escape");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compact rendering of a token stream for assertions.
    fn render(src: &str) -> String {
        match token_stream(src, Span::call_site()) {
            Ok(stream) => {
                let mut out = Vec::new();
                render_into(&stream, &mut out);
                out.join(" ")
            }
            Err(e) => format!("ERR {e}"),
        }
    }

    fn render_into(stream: &TokenStream, out: &mut Vec<String>) {
        for tree in stream.trees() {
            match tree {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::None => ("<", ">"),
                    };
                    out.push(open.into());
                    render_into(&g.stream(), out);
                    out.push(close.into());
                }
                TokenTree::Ident(i) => out.push(i.to_string()),
                TokenTree::Punct(p) => out.push(format!(
                    "{}{}",
                    p.as_char(),
                    if p.spacing() == Spacing::Joint {
                        "j"
                    } else {
                        ""
                    }
                )),
                TokenTree::Literal(l) => out.push(l.to_string()),
            }
        }
    }

    #[test]
    fn spacing() {
        assert_eq!(render("a+b"), "a + b");
        assert_eq!(render("+="), "+j =");
        assert_eq!(render("x.0"), "x . 0");
        assert_eq!(render("'a"), "'j a");
        assert_eq!(render("&'a"), "& 'j a");
        assert_eq!(render("->"), "-j >");
        assert_eq!(render("+ +"), "+ +");
        assert_eq!(render("+/**/+"), "+ +");
        assert_eq!(render("+//c\n+"), "+ +");
        assert_eq!(render("+///d\n"), "+ # [ doc = \"d\" ]");
        assert_eq!(render("$x"), "$ x");
        assert_eq!(render("#!x\n#!y"), "#j ! y");
    }

    #[test]
    fn numbers() {
        assert_eq!(render("1.foo"), "1 . foo");
        assert_eq!(render("1..2"), "1 .j . 2");
        assert_eq!(render("1."), "1.");
        assert_eq!(render("1.e3"), "1 . e3");
        assert_eq!(render("1.0.0"), "1.0 . 0");
        assert_eq!(render("x.0.1"), "x . 0.1");
        assert_eq!(
            render("0xffu32 1_e3 1e_3 0b1f32 1__"),
            "0xffu32 1_e3 1e_3 0b1f32 1__"
        );
        assert_eq!(render("0x"), "ERR no valid digits found for number");
        assert_eq!(render("0b102"), "ERR invalid digit for a base 2 literal");
        assert_eq!(
            render("0x1.0"),
            "ERR hexadecimal float literal is not supported"
        );
        assert_eq!(render("0b1e3"), "ERR binary float literal is not supported");
        assert_eq!(render("1e"), "ERR expected at least one digit in exponent");
        assert_eq!(render("1e_"), "ERR expected at least one digit in exponent");
        assert_eq!(render("1_"), "1_");
        assert_eq!(
            render("\"a\"_"),
            "ERR underscore literal suffix is not allowed"
        );
    }

    #[test]
    fn literal_parts() {
        let lit = |src: &str| {
            let l = literal(src, Span::call_site()).map_err(|e| e.to_string())?;
            Ok::<_, String>((
                l.kind,
                l.symbol.to_string(),
                l.suffix.as_deref().map(String::from),
            ))
        };
        let parts = |kind, symbol: &str, suffix: Option<&str>| {
            Ok((kind, symbol.to_string(), suffix.map(String::from)))
        };
        assert_eq!(lit("1u8"), parts(LitKind::Integer, "1", Some("u8")));
        assert_eq!(lit("1.5e3f64"), parts(LitKind::Float, "1.5e3", Some("f64")));
        assert_eq!(lit("1f32"), parts(LitKind::Integer, "1", Some("f32")));
        assert_eq!(lit("-1"), parts(LitKind::Integer, "-1", None));
        assert_eq!(lit("r#\"a\"#"), parts(LitKind::StrRaw(1), "a", None));
        assert_eq!(lit("br\"a\""), parts(LitKind::ByteStrRaw(0), "a", None));
        assert_eq!(
            lit("cr##\"a\"##x"),
            parts(LitKind::CStrRaw(2), "a", Some("x"))
        );
        assert_eq!(lit("b'x'"), parts(LitKind::Byte, "x", None));
        assert_eq!(lit("'\\n'x"), parts(LitKind::Char, "\\n", Some("x")));
        assert_eq!(
            lit("\"abc\"suffix"),
            parts(LitKind::Str, "abc", Some("suffix"))
        );
        assert_eq!(lit("- 1"), Err("comment or whitespace after minus".into()));
        assert_eq!(
            lit(" 1"),
            Err("comment or whitespace around literal".into())
        );
        assert_eq!(
            lit("\"a\r\nb\""),
            Err("comment or whitespace around literal".into())
        );
        assert_eq!(
            lit("-\"a\""),
            Err("non-numeric literal may not be negated".into())
        );
        assert_eq!(lit("--1"), Err("not a literal".into()));
        assert_eq!(lit("true"), Err("not a literal".into()));
        assert_eq!(lit(""), Err("not a literal".into()));
        assert_eq!(lit("1)"), Err("unexpected closing delimiter: `)`".into()));
    }

    #[test]
    fn lifetimes_and_chars() {
        assert_eq!(
            render("'a'x '\\n'x '\\u{1F600}' 'ab"),
            "'a'x '\\n'x '\\u{1F600}' 'j ab"
        );
        assert_eq!(render("'r#a 'static '_"), "'j r#a 'j static 'j _");
        assert_eq!(render("'''"), "ERR character constant must be escaped: `'`");
        assert_eq!(render("''"), "ERR empty character literal");
        assert_eq!(
            render("'ab'"),
            "ERR character literal may only contain one codepoint"
        );
        assert_eq!(render("'1"), "ERR lifetimes cannot start with a number");
        assert_eq!(render("'a#b"), "ERR prefix `'a` is unknown");
        assert_eq!(render("'r#self"), "ERR `self` cannot be a raw lifetime");
        assert_eq!(render("'\\n"), "ERR unterminated character literal");
    }

    #[test]
    fn idents() {
        assert_eq!(render("r#fn r#a _ Ж 日本"), "r#fn r#a _ Ж 日本");
        // NFC: a decomposed é, and the Ångström sign, are normalized.
        assert_eq!(
            render("e\u{301} \u{212b} 'e\u{301}"),
            "\u{e9} \u{c5} 'j \u{e9}"
        );
        assert_eq!(render("r#self"), "ERR `self` cannot be a raw identifier");
        assert_eq!(render("r#_"), "ERR `_` cannot be a raw identifier");
        assert_eq!(render("foo#bar"), "ERR prefix `foo` is unknown");
        assert_eq!(render("foo\"bar\""), "ERR prefix `foo` is unknown");
        assert_eq!(render("e\u{301}'x'"), "ERR prefix `\u{e9}` is unknown");
        assert_eq!(render("r#foo#bar"), "r#foo # bar");
        assert_eq!(
            validate_ident("1x", false),
            Err("`\"1x\"` is not a valid identifier".into())
        );
        assert_eq!(
            validate_ident("", true),
            Err("`\"\"` is not a valid identifier".into())
        );
        assert_eq!(
            validate_ident("self", true),
            Err("`self` cannot be a raw identifier".into())
        );
        assert_eq!(validate_ident("$crate", false), Ok(()));
        assert_eq!(validate_ident("e\u{301}", true), Ok(()));
        assert!(validate_ident("a\u{1F600}", false).is_err());
    }

    #[test]
    fn comments_and_docs() {
        assert_eq!(render("/* /* */ */ a"), "a");
        assert_eq!(render("//// x\n/***/ /**/ /*** x */ a"), "a");
        assert_eq!(render("/// a \"q\""), "# [ doc = \" a \\\"q\\\"\" ]");
        assert_eq!(render("//! i"), "# ! [ doc = \" i\" ]");
        assert_eq!(render("/**x/*y*/z*/"), "# [ doc = \"x/*y*/z\" ]");
        assert_eq!(render("/*! i */"), "# ! [ doc = \" i \" ]");
        assert_eq!(render("/// a\r\nb"), "# [ doc = \" a\" ] b");
        assert_eq!(render("/// a\rb"), "ERR bare CR not allowed in doc-comment");
        assert_eq!(render("/* a"), "ERR unterminated block comment");
    }

    #[test]
    fn source_normalization_and_shebang() {
        assert_eq!(render("\u{feff}a"), "a");
        assert_eq!(render("a\u{feff}"), "ERR unknown start of token: \\u{feff}");
        assert_eq!(render("\"a\r\nb\""), "\"a\nb\"");
        assert_eq!(render("#!/bin/x\nbar"), "bar");
        assert_eq!(render("#!"), "");
        assert_eq!(render("#! [x]"), "#j ! [ x ]");
        assert_eq!(render("#!//c\n[x]"), "#j ! [ x ]");
        assert_eq!(render("#!///c\n[x]"), "[ x ]");
        assert_eq!(render("a\u{85}b\u{200e}c"), "a b c");
        assert_eq!(render("a\u{a0}b"), "ERR unknown start of token: \\u{a0}");
    }

    #[test]
    fn delimiters() {
        assert_eq!(render("(a"), "ERR this file contains an unclosed delimiter");
        assert_eq!(render("a ) b"), "ERR unexpected closing delimiter: `)`");
        assert_eq!(render("(]"), "ERR mismatched closing delimiter: `]`");
        assert_eq!(render("{ ( } )"), "ERR unexpected closing delimiter: `)`");
        // Lexing stops at the unexpected delimiter, as rustc's does.
        assert_eq!(render(") 'ab'"), "ERR unexpected closing delimiter: `)`");
        assert_eq!(render("{[()]}"), "{ [ ( ) ] }");
        let deep = "(".repeat(100_000) + &")".repeat(100_000);
        let stream = token_stream(&deep, Span::call_site());
        assert!(stream.is_ok());
        std::mem::forget(stream);
    }

    #[test]
    fn strings() {
        assert_eq!(
            render("r#\"a\"## r\"\" br\"a\" b\"\\xff\" c\"\\xff\""),
            "r#\"a\"# # r\"\" br\"a\" b\"\\xff\" c\"\\xff\""
        );
        assert_eq!(render("\"a\\\n  b\""), "\"a\\\n  b\"");
        // rustc accepts these with a warning (not a lint, so the differential
        // test leaves them out to keep its build quiet).
        assert_eq!(render("\"a\\\n \u{a0} b\""), "\"a\\\n \u{a0} b\"");
        assert_eq!(render("\"a\\\n\n\n b\""), "\"a\\\n\n\n b\"");
        assert_eq!(render("\"\\q\""), "ERR unknown character escape: `q`");
        assert_eq!(render("\"\\xff\""), "ERR out of range hex escape");
        assert_eq!(
            render("c\"\\0\""),
            "ERR null characters in C string literals are not supported"
        );
        assert_eq!(
            render("b\"é\""),
            "ERR non-ASCII character in byte string literal"
        );
        assert_eq!(
            render("\"\\u{D800}\""),
            "ERR invalid unicode character escape"
        );
        assert_eq!(
            render("r#"),
            "ERR found invalid character; only `#` is allowed in raw string delimitation: \\u{0}"
        );
        assert_eq!(render("r#\"abc"), "ERR unterminated raw string");
        assert_eq!(render("\"abc"), "ERR unterminated double quote string");
        assert_eq!(render("#\"a\"# ##"), "# \"a\" # #j #");
    }

    /// No input may panic: lex every prefix (at char boundaries) of text full
    /// of tricky constructs, and every suffix too.
    #[test]
    fn no_panic_on_any_prefix_or_suffix() {
        let tricky = "#!x\n\u{feff}r#\"a\"# br##\"b\"## cr\"c\" b'\\x7f' '\\u{1F600}' 'r#a 'a' 'ab \
            0x1.0e+5f32 1..=2 x.0.1 /** d */ /*! /* n */ */ //! i\r\n/// o\n r#fn e\u{301} \
            \"\\\n s\\u{10FFFF}\" (a [b {c}]) 1e_ 0b 'r#self ''' '\\ \\";
        for (index, _) in tricky.char_indices().chain([(tricky.len(), ' ')]) {
            for src in [&tricky[..index], &tricky[index..]] {
                let _ = token_stream(src, Span::call_site());
                let _ = literal(src, Span::call_site());
                let _ = validate_ident(src, false);
                let _ = validate_ident(src, true);
            }
        }
    }
}
