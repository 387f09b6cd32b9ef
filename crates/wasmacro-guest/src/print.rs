//! `Display` for token streams, following rustc's pretty printer
//! (`rustc_ast_pretty::pprust::State::print_tts` and `space_between`).
//!
//! Tokens that cross the proc-macro bridge carry only `Punct` spacing: rustc
//! converts every other token it receives from a macro with `Spacing::Alone`,
//! so a stream a macro built prints with a space between tokens except where a
//! `Joint` punct or `space_between` says otherwise.

use crate::{Delimiter, Spacing, TokenStream, TokenTree};

pub(crate) fn token_stream(stream: &TokenStream) -> String {
    let mut out = String::new();
    print_trees(stream.trees(), &mut out);
    out
}

/// One token as rustc's printer sees it: rustc glues a `Joint` punct with the
/// next punct into one compound token (`..=`, `->`, `::`) when converting a
/// macro's output, and its printing rules look at those compound tokens.
enum PrintToken<'a> {
    Op {
        text: String,
        spacing: Spacing,
    },
    /// `'` (joint) + ident: rustc's lifetime token, neither punct nor ident.
    Lifetime(String),
    Tree(&'a TokenTree),
}

impl PrintToken<'_> {
    fn is_punct(&self) -> bool {
        matches!(self, PrintToken::Op { .. })
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self, PrintToken::Op { text, .. } if text == op)
    }
}

/// `rustc_ast::token::Token::glue`: the compound token `op` + `next` forms.
fn glues(op: &str, next: char) -> bool {
    matches!(
        (op, next),
        ("=", '=' | '>')
            | ("<", '=' | '<' | '-')
            | ("<<", '=')
            | (">", '=' | '>')
            | (">>", '=')
            | ("!", '=')
            | ("-", '=' | '>')
            | ("+" | "*" | "/" | "%" | "^", '=')
            | ("&", '&' | '=')
            | ("|", '|' | '=')
            | (".", '.')
            | ("..", '.' | '=')
            | (":", ':')
    )
}

fn glue(trees: &[TokenTree]) -> Vec<PrintToken<'_>> {
    let mut tokens: Vec<PrintToken<'_>> = Vec::with_capacity(trees.len());
    for tree in trees {
        if let TokenTree::Punct(punct) = tree {
            if let Some(PrintToken::Op { text, spacing }) = tokens.last_mut()
                && *spacing == Spacing::Joint
                && glues(text, punct.as_char())
            {
                text.push(punct.as_char());
                *spacing = punct.spacing();
                continue;
            }
            tokens.push(PrintToken::Op {
                text: punct.as_char().to_string(),
                spacing: punct.spacing(),
            });
        } else if let TokenTree::Ident(ident) = tree {
            if let Some(PrintToken::Op {
                text,
                spacing: Spacing::Joint,
            }) = tokens.last()
                && text == "'"
            {
                tokens.pop();
                tokens.push(PrintToken::Lifetime(format!("'{ident}")));
                continue;
            }
            tokens.push(PrintToken::Tree(tree));
        } else {
            tokens.push(PrintToken::Tree(tree));
        }
    }
    tokens
}

fn print_trees(trees: &[TokenTree], out: &mut String) {
    let tokens = glue(trees);
    let mut iter = tokens.iter().peekable();
    while let Some(token) = iter.next() {
        let spacing = match token {
            PrintToken::Op { text, spacing } => {
                out.push_str(text);
                *spacing
            }
            PrintToken::Lifetime(text) => {
                out.push_str(text);
                Spacing::Alone
            }
            PrintToken::Tree(tree) => print_tree(tree, out),
        };
        if let Some(next) = iter.peek()
            && spacing == Spacing::Alone
            && space_between(token, next)
        {
            out.push(' ');
        }
    }
}

fn print_tree(tree: &TokenTree, out: &mut String) -> Spacing {
    match tree {
        TokenTree::Group(group) => {
            let trees = group.stream.trees();
            match group.delimiter() {
                Delimiter::Parenthesis => bracketed('(', ')', trees, out),
                Delimiter::Bracket => bracketed('[', ']', trees, out),
                Delimiter::Brace => {
                    if trees.is_empty() {
                        out.push_str("{}");
                    } else {
                        out.push_str("{ ");
                        print_trees(trees, out);
                        out.push_str(" }");
                    }
                }
                Delimiter::None => print_trees(trees, out),
            }
            Spacing::Alone
        }
        TokenTree::Ident(ident) => {
            out.push_str(&ident.to_string());
            Spacing::Alone
        }
        TokenTree::Punct(punct) => {
            out.push(punct.as_char());
            punct.spacing()
        }
        TokenTree::Literal(literal) => {
            out.push_str(&literal.to_string());
            Spacing::Alone
        }
    }
}

fn bracketed(open: char, close: char, trees: &[TokenTree], out: &mut String) {
    out.push(open);
    print_trees(trees, out);
    out.push(close);
}

/// Whether the pretty printer puts a space between two adjacent tokens whose
/// first one is `Alone`. The default is a space; these are the exceptions.
fn space_between(first: &PrintToken<'_>, second: &PrintToken<'_>) -> bool {
    // `.` + NON-PUNCT: `x.y`, `tup.0`
    if first.is_op(".") && !second.is_punct() {
        return false;
    }
    // `$` + IDENT: `$e`
    if first.is_op("$") && matches!(second, PrintToken::Tree(TokenTree::Ident(_))) {
        return false;
    }
    // NON-PUNCT + `,` / `;` / `.`: `foo,`, `x = 3;`, `x.y`
    if !first.is_punct() && (second.is_op(",") || second.is_op(";") || second.is_op(".")) {
        return false;
    }
    // IDENT + `(` where the ident is not a reserved word (but `fn`, `Self`,
    // `pub` and raw identifiers are fine): `f(3)`, `fn(x: u8)`, `pub(crate)`;
    // `let (a, b)` keeps its space.
    if let (PrintToken::Tree(TokenTree::Ident(ident)), PrintToken::Tree(TokenTree::Group(group))) =
        (first, second)
        && group.delimiter() == Delimiter::Parenthesis
    {
        let name = ident.name();
        if ident.is_raw() || !is_reserved(name) || matches!(name, "fn" | "Self" | "pub") {
            return false;
        }
    }
    // `#` + `[`: `#[attr]`
    if first.is_op("#")
        && matches!(second, PrintToken::Tree(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket)
    {
        return false;
    }
    true
}

/// Keywords and reserved words, as `rustc_span::Ident::is_reserved` sees them
/// in the 2021 edition and later (strict, reserved, and `async`/`await`/`dyn`/
/// `try`; `_` and the empty symbol count too).
fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "_" | "as"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "self"
            | "Self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "abstract"
            | "become"
            | "box"
            | "do"
            | "final"
            | "macro"
            | "override"
            | "priv"
            | "typeof"
            | "unsized"
            | "virtual"
            | "yield"
            | "async"
            | "await"
            | "dyn"
            | "try"
            | "gen"
    )
}

#[cfg(test)]
mod tests {
    use crate::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

    fn ident(name: &str) -> TokenTree {
        Ident::new(name, Span::call_site()).into()
    }

    fn punct(ch: char, spacing: Spacing) -> TokenTree {
        Punct::new(ch, spacing).into()
    }

    // Expected strings are what rustc 1.95 prints for the same trees.
    #[test]
    fn lifetimes_print_as_one_token() {
        let stream: TokenStream = [
            punct('&', Spacing::Alone),
            punct('\'', Spacing::Joint),
            ident("a"),
            ident("str"),
            punct('.', Spacing::Alone),
            punct('\'', Spacing::Joint),
            ident("b"),
            punct('\'', Spacing::Joint),
            ident("c"),
            Group::new(Delimiter::Parenthesis, TokenStream::new()).into(),
        ]
        .into_iter()
        .collect();
        assert_eq!(stream.to_string(), "& 'a str.'b 'c ()");
    }

    #[test]
    fn joint_puncts_glue_before_the_spacing_rules() {
        let stream: TokenStream = [
            ident("x"),
            punct('.', Spacing::Joint),
            punct('.', Spacing::Joint),
            punct('=', Spacing::Alone),
            ident("y"),
            punct('.', Spacing::Alone),
            ident("z"),
        ]
        .into_iter()
        .collect();
        assert_eq!(stream.to_string(), "x ..= y.z");
    }
}
