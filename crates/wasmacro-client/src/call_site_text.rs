//! Runs of output tokens that all carry the call-site span, rebuilt by
//! rustc's lexer from their text in one bridge call rather than one tree at
//! a time: `TokenStream::from_str` gives every token `Span::call_site()`,
//! which is exactly what these tokens carry (most of what `quote!` makes).
//!
//! Only text that lexes back to the same tokens is written: identifiers,
//! literals that do not start with `-` (rustc would lex `-1` as two tokens),
//! puncts whose spacing the text reproduces (a joint punct directly before a
//! punct, or `'` before an identifier: a lifetime; never `//` or `/*`), and
//! groups with a visible delimiter whose contents qualify. Anything else, or
//! text rustc refuses, takes the tree-by-tree path.

use wasmacro_protocol::{Delimiter, Token};

/// The handle of `Span::call_site()`: the first span the shim records.
const CALL_SITE: u32 = 0;

/// Groups nested deeper than this go tree by tree (which has its own limit),
/// so checking a subtree never recurses far on rustc's stack.
const MAX_DEPTH: usize = 64;

/// The length in tokens of the run starting at `position` of a sequence
/// ending at `end` that can be written as text: one tree, or a chain of
/// joint puncts with the token they glue to (all in the same text, since
/// the text is what gives them their spacing).
pub(crate) fn plain_len(tokens: &[Token], position: usize, end: usize) -> Option<usize> {
    run_len(tokens, position, end, 0)
}

fn run_len(tokens: &[Token], position: usize, end: usize, depth: usize) -> Option<usize> {
    let mut at = position;
    loop {
        let len = plain_tree(tokens, at, end, depth)?;
        let joint = matches!(tokens.get(at), Some(Token::Punct { joint: true, .. }));
        at += len;
        if !joint {
            return Some(at - position);
        }
    }
}

/// The length in tokens of the tree at `position` (the token, or the group
/// with its subtree), if it can be written as text; a joint punct only if
/// the token after it is one its text glues to.
fn plain_tree(tokens: &[Token], position: usize, end: usize, depth: usize) -> Option<usize> {
    if position >= end {
        return None;
    }
    match tokens.get(position)? {
        Token::Group {
            delimiter,
            span,
            open,
            close,
            len,
        } => {
            let inner_end = position.checked_add(1)?.checked_add(*len as usize)?;
            let plain = depth < MAX_DEPTH
                && *delimiter != Delimiter::None
                && [*span, *open, *close].iter().all(|h| *h == CALL_SITE)
                && inner_end <= end
                && plain_sequence(tokens, position + 1, inner_end, depth + 1);
            plain.then_some(1 + *len as usize)
        }
        // `$crate` would lex as `$` and `crate`.
        Token::Ident { name, span, .. } => {
            (*span == CALL_SITE && !name.starts_with('$')).then_some(1)
        }
        // `-1` would lex as two tokens; `c"…"` depends on the edition.
        Token::Literal { text, span } => {
            (*span == CALL_SITE && !text.starts_with(['-', 'c'])).then_some(1)
        }
        Token::Punct { ch, joint, span } => {
            if *span != CALL_SITE {
                return None;
            }
            let next = tokens.get(position + 1).filter(|_| position + 1 < end);
            let plain = match (ch, joint) {
                // Only a lifetime: `'` glued to a plain identifier. Alone,
                // or before anything else, it would start a char literal.
                ('\'', true) => matches!(
                    next,
                    Some(Token::Ident { name, is_raw: false, span })
                        if *span == CALL_SITE && !name.starts_with('$')
                ),
                ('\'', false) => false,
                (_, false) => true,
                // Glued to the next punct; not to a `'` (the text would
                // make it "joint hidden", which proc_macro calls alone), and
                // never into a comment.
                (_, true) => matches!(
                    next,
                    Some(Token::Punct { ch: next, span, .. })
                        if *span == CALL_SITE
                            && *next != '\''
                            && !(*ch == '/' && matches!(next, '/' | '*'))
                ),
            };
            plain.then_some(1)
        }
    }
}

/// Whether every tree of `tokens[start..end]` can be written as text.
fn plain_sequence(tokens: &[Token], start: usize, end: usize, depth: usize) -> bool {
    let mut position = start;
    while position < end {
        match run_len(tokens, position, end, depth) {
            Some(len) => position += len,
            None => return false,
        }
    }
    true
}

/// Appends `tokens[start..end]` (plain, as [`plain_len`] found) as text.
pub(crate) fn write(out: &mut String, tokens: &[Token], start: usize, end: usize) {
    let mut position = start;
    let mut glued = true;
    while position < end {
        let Some(token) = tokens.get(position) else {
            return;
        };
        if !glued {
            out.push(' ');
        }
        glued = false;
        position += 1;
        match token {
            Token::Group { delimiter, len, .. } => {
                let (open, close) = match delimiter {
                    Delimiter::Parenthesis => ('(', ')'),
                    Delimiter::Brace => ('{', '}'),
                    Delimiter::Bracket => ('[', ']'),
                    Delimiter::None => (' ', ' '),
                };
                let inner_end = (position + *len as usize).min(end);
                out.push(open);
                // A joint punct never ends a group's text (`plain_tree`).
                write(out, tokens, position, inner_end);
                out.push(close);
                position = inner_end;
            }
            Token::Ident { name, is_raw, .. } => {
                if *is_raw {
                    out.push_str("r#");
                }
                out.push_str(name);
            }
            Token::Literal { text, .. } => out.push_str(text),
            Token::Punct { ch, joint, .. } => {
                out.push(*ch);
                glued = *joint;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn punct(ch: char, joint: bool) -> Token {
        Token::Punct {
            ch,
            joint,
            span: CALL_SITE,
        }
    }

    fn ident(name: &str, span: u32) -> Token {
        Token::Ident {
            name: name.into(),
            is_raw: false,
            span,
        }
    }

    fn text(tokens: &[Token]) -> Option<String> {
        plain_sequence(tokens, 0, tokens.len(), 0).then(|| {
            let mut out = String::new();
            write(&mut out, tokens, 0, tokens.len());
            out
        })
    }

    #[test]
    fn only_text_that_lexes_back_to_the_same_tokens_is_written() {
        let lifetime = [
            punct('\'', true),
            ident("a", 0),
            punct('+', true),
            punct('=', false),
        ];
        assert_eq!(text(&lifetime).as_deref(), Some("'a +="));
        let group = [
            Token::Group {
                delimiter: Delimiter::Brace,
                span: 0,
                open: 0,
                close: 0,
                len: 2,
            },
            ident("x", 0),
            Token::Literal {
                text: "1u8".into(),
                span: 0,
            },
        ];
        assert_eq!(text(&group).as_deref(), Some("{x 1u8}"));
        // A span of the input, a negative literal, a comment opener, a joint
        // punct with nothing to join, an invisible group: not as text.
        assert_eq!(text(&[ident("x", 5)]), None);
        let negative = Token::Literal {
            text: "-1".into(),
            span: 0,
        };
        assert_eq!(text(&[negative]), None);
        assert_eq!(text(&[punct('/', true), punct('/', false)]), None);
        assert_eq!(text(&[punct('+', true)]), None);
        assert_eq!(text(&[punct('+', true), ident("x", 0)]), None);
        // `'` only as a lifetime, and nothing glued to it.
        assert_eq!(text(&[punct('\'', false), ident("a", 0)]), None);
        assert_eq!(text(&[punct('\'', true), punct('=', false)]), None);
        assert_eq!(
            text(&[punct('&', true), punct('\'', true), ident("a", 0)]),
            None
        );
        assert_eq!(text(&[ident("$crate", 0)]), None);
        let c_string = Token::Literal {
            text: "c\"x\"".into(),
            span: 0,
        };
        assert_eq!(text(&[c_string]), None);
        // A long chain of joint puncts is one run, checked without
        // recursion.
        let mut chain = vec![punct('+', true); 100_000];
        chain.push(punct('=', false));
        assert_eq!(plain_len(&chain, 0, chain.len()), Some(chain.len()));
        let invisible = Token::Group {
            delimiter: Delimiter::None,
            span: 0,
            open: 0,
            close: 0,
            len: 0,
        };
        assert_eq!(text(&[invisible]), None);
    }
}
