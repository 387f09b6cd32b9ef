//! A small, explicit binary encoding: little-endian integers, length-prefixed
//! UTF-8 strings and lists, one tag byte per enum. Hand-written rather than
//! serde + bincode because every generated shim compiles this crate with a
//! bare rustc invocation, without cargo or a registry.

use crate::{
    Delimiter, ExpandFailure, ExpandRequest, Grants, Hello, Input, MAX_FRAME_LEN, ReadGrant, Root,
    ServerMessage, ShimMessage, SpanAnswer, SpanQuery, Token,
};
use std::fmt;
use std::io::{self, Read, Write};

/// Why bytes could not be decoded into a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    Truncated,
    /// An enum tag that no variant has.
    InvalidTag {
        /// What was being decoded.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A string that is not UTF-8, or a `char` that is not a scalar value.
    InvalidText,
    /// Bytes were left over after the message.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("message truncated"),
            DecodeError::InvalidTag { what, tag } => write!(f, "invalid {what} tag {tag}"),
            DecodeError::InvalidText => f.write_str("invalid UTF-8 text or char"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the message"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Writes values into a byte buffer.
#[derive(Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Length-prefixed bytes.
    pub fn byte_string(&mut self, v: &[u8]) {
        self.len(v.len());
        self.bytes.extend_from_slice(v);
    }

    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    fn len(&mut self, len: usize) {
        // Every list and string is bounded by `MAX_FRAME_LEN`, far below u32.
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) {
        self.len(v.len());
        self.bytes.extend_from_slice(v.as_bytes());
    }

    fn opt_str(&mut self, v: Option<&str>) {
        match v {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    fn strs<S: AsRef<str>>(&mut self, items: &[S]) {
        self.len(items.len());
        for item in items {
            self.str(item.as_ref());
        }
    }

    fn grants(&mut self, grants: &Grants) {
        self.str(&grants.package);
        self.len(grants.roots.len());
        for root in &grants.roots {
            self.str(&root.name);
            self.str(&root.path);
        }
        self.len(grants.read.len());
        for grant in &grants.read {
            self.u32(grant.root);
            self.str(&grant.relative);
            self.str(&grant.origin);
        }
        self.len(grants.env.len());
        for (name, value) in &grants.env {
            self.str(name);
            self.str(value);
        }
        self.strs(&grants.env_patterns);
    }

    /// What an expansion read, as `Expanded` carries it.
    pub fn inputs(&mut self, inputs: &[Input]) {
        self.len(inputs.len());
        for input in inputs {
            match input {
                Input::File { path, digest } => {
                    self.u8(0);
                    self.str(path);
                    self.str(digest);
                }
                Input::Directory { path, digest } => {
                    self.u8(1);
                    self.str(path);
                    self.str(digest);
                }
                Input::Missing { path } => {
                    self.u8(2);
                    self.str(path);
                }
                Input::Env { name, value } => {
                    self.u8(3);
                    self.str(name);
                    self.opt_str(value.as_deref());
                }
            }
        }
    }

    fn tokens(&mut self, tokens: &[Token]) {
        self.len(tokens.len());
        for token in tokens {
            match token {
                Token::Group {
                    delimiter,
                    span,
                    open,
                    close,
                    len,
                } => {
                    self.u8(0);
                    self.u8(match delimiter {
                        Delimiter::Parenthesis => 0,
                        Delimiter::Brace => 1,
                        Delimiter::Bracket => 2,
                        Delimiter::None => 3,
                    });
                    self.u32(*span);
                    self.u32(*open);
                    self.u32(*close);
                    self.u32(*len);
                }
                Token::Ident { name, is_raw, span } => {
                    self.u8(1);
                    self.str(name);
                    self.bool(*is_raw);
                    self.u32(*span);
                }
                Token::Punct { ch, joint, span } => {
                    self.u8(2);
                    self.u32(u32::from(*ch));
                    self.bool(*joint);
                    self.u32(*span);
                }
                Token::Literal { text, span } => {
                    self.u8(3);
                    self.str(text);
                    self.u32(*span);
                }
            }
        }
    }
}

/// Reads values from untrusted bytes.
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// A decoder over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes }
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what: "bool", tag }),
        }
    }

    /// A length, checked against what is left so a corrupt prefix fails fast
    /// instead of allocating.
    fn len(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let len = self.u32()? as usize;
        if len.saturating_mul(min_item_size) > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(len)
    }

    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.len(1)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidText)
    }

    /// Length-prefixed bytes, borrowed.
    pub fn byte_string(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.len(1)?;
        self.take(len)
    }

    fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            tag => Err(DecodeError::InvalidTag {
                what: "option",
                tag,
            }),
        }
    }

    fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
        let len = self.len(4)?;
        (0..len).map(|_| self.string()).collect()
    }

    fn grants(&mut self) -> Result<Grants, DecodeError> {
        let package = self.string()?;
        let len = self.len(8)?;
        let roots = (0..len)
            .map(|_| {
                Ok(Root {
                    name: self.string()?,
                    path: self.string()?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        let len = self.len(12)?;
        let read = (0..len)
            .map(|_| {
                Ok(ReadGrant {
                    root: self.u32()?,
                    relative: self.string()?,
                    origin: self.string()?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        let len = self.len(8)?;
        let env = (0..len)
            .map(|_| Ok((self.string()?, self.string()?)))
            .collect::<Result<_, DecodeError>>()?;
        Ok(Grants {
            package,
            roots,
            read,
            env,
            env_patterns: self.strings()?,
        })
    }

    /// What an expansion read, as `Expanded` carries it.
    pub fn inputs(&mut self) -> Result<Vec<Input>, DecodeError> {
        let len = self.len(5)?;
        let mut inputs = Vec::with_capacity(len);
        for _ in 0..len {
            inputs.push(match self.u8()? {
                0 => Input::File {
                    path: self.string()?,
                    digest: self.string()?,
                },
                1 => Input::Directory {
                    path: self.string()?,
                    digest: self.string()?,
                },
                2 => Input::Missing {
                    path: self.string()?,
                },
                3 => Input::Env {
                    name: self.string()?,
                    value: self.opt_string()?,
                },
                tag => return Err(DecodeError::InvalidTag { what: "input", tag }),
            });
        }
        Ok(inputs)
    }

    fn tokens(&mut self) -> Result<Vec<Token>, DecodeError> {
        let len = self.len(6)?;
        let mut tokens = Vec::with_capacity(len);
        for _ in 0..len {
            let token = match self.u8()? {
                0 => Token::Group {
                    delimiter: match self.u8()? {
                        0 => Delimiter::Parenthesis,
                        1 => Delimiter::Brace,
                        2 => Delimiter::Bracket,
                        3 => Delimiter::None,
                        tag => {
                            return Err(DecodeError::InvalidTag {
                                what: "delimiter",
                                tag,
                            });
                        }
                    },
                    span: self.u32()?,
                    open: self.u32()?,
                    close: self.u32()?,
                    len: self.u32()?,
                },
                1 => Token::Ident {
                    name: self.string()?,
                    is_raw: self.bool()?,
                    span: self.u32()?,
                },
                2 => Token::Punct {
                    ch: char::from_u32(self.u32()?).ok_or(DecodeError::InvalidText)?,
                    joint: self.bool()?,
                    span: self.u32()?,
                },
                3 => Token::Literal {
                    text: self.string()?,
                    span: self.u32()?,
                },
                tag => return Err(DecodeError::InvalidTag { what: "token", tag }),
            };
            tokens.push(token);
        }
        Ok(tokens)
    }
}

impl ShimMessage {
    /// Encodes the message (without the frame header).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        match self {
            ShimMessage::Hello(hello) => {
                e.u8(0);
                e.u32(hello.version);
                e.str(&hello.component);
                e.str(&hello.crate_name);
                e.grants(&hello.grants);
                e.bool(hello.stateless);
            }
            ShimMessage::Expand(request) => {
                e.u8(1);
                e.str(&request.macro_name);
                e.tokens(&request.input);
                match &request.attribute_args {
                    None => e.u8(0),
                    Some(args) => {
                        e.u8(1);
                        e.tokens(args);
                    }
                }
                e.u32(request.call_site);
                e.u32(request.mixed_site);
            }
            ShimMessage::SpanAnswer(answer) => {
                e.u8(2);
                match answer {
                    SpanAnswer::Span(s) => {
                        e.u8(0);
                        e.u32(*s);
                    }
                    SpanAnswer::Number(n) => {
                        e.u8(1);
                        e.u32(*n);
                    }
                    SpanAnswer::Text(t) => {
                        e.u8(2);
                        e.str(t);
                    }
                    SpanAnswer::MaybeText(t) => {
                        e.u8(3);
                        e.opt_str(t.as_deref());
                    }
                    SpanAnswer::InvalidHandle(s) => {
                        e.u8(4);
                        e.u32(*s);
                    }
                }
            }
        }
        e.into_bytes()
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<ShimMessage, DecodeError> {
        let mut d = Decoder::new(bytes);
        let message = match d.u8()? {
            0 => ShimMessage::Hello(Hello {
                version: d.u32()?,
                component: d.string()?,
                crate_name: d.string()?,
                grants: d.grants()?,
                stateless: d.bool()?,
            }),
            1 => ShimMessage::Expand(ExpandRequest {
                macro_name: d.string()?,
                input: d.tokens()?,
                attribute_args: match d.u8()? {
                    0 => None,
                    1 => Some(d.tokens()?),
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            what: "option",
                            tag,
                        });
                    }
                },
                call_site: d.u32()?,
                mixed_site: d.u32()?,
            }),
            2 => ShimMessage::SpanAnswer(match d.u8()? {
                0 => SpanAnswer::Span(d.u32()?),
                1 => SpanAnswer::Number(d.u32()?),
                2 => SpanAnswer::Text(d.string()?),
                3 => SpanAnswer::MaybeText(d.opt_string()?),
                4 => SpanAnswer::InvalidHandle(d.u32()?),
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "span answer",
                        tag,
                    });
                }
            }),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "shim message",
                    tag,
                });
            }
        };
        d.finish()?;
        Ok(message)
    }
}

impl ServerMessage {
    /// Encodes the message (without the frame header).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        match self {
            ServerMessage::Ready => e.u8(0),
            ServerMessage::Fatal(text) => {
                e.u8(1);
                e.str(text);
            }
            ServerMessage::SpanQuery(query) => {
                e.u8(2);
                let (tag, a, b) = match *query {
                    SpanQuery::SourceText(s) => (0, s, 0),
                    SpanQuery::Start(s) => (1, s, 0),
                    SpanQuery::End(s) => (2, s, 0),
                    SpanQuery::Line(s) => (3, s, 0),
                    SpanQuery::Column(s) => (4, s, 0),
                    SpanQuery::File(s) => (5, s, 0),
                    SpanQuery::LocalFile(s) => (6, s, 0),
                    SpanQuery::ResolvedAt(s, o) => (7, s, o),
                    SpanQuery::Debug(s) => (8, s, 0),
                };
                e.u8(tag);
                e.u32(a);
                e.u32(b);
            }
            ServerMessage::Expanded {
                result,
                output,
                inputs,
                backtrace,
            } => {
                e.u8(3);
                match result {
                    Ok(tokens) => {
                        e.u8(0);
                        e.tokens(tokens);
                    }
                    Err(ExpandFailure::Panicked(message)) => {
                        e.u8(1);
                        e.opt_str(message.as_deref());
                    }
                    Err(ExpandFailure::Error(text)) => {
                        e.u8(2);
                        e.str(text);
                    }
                }
                e.str(output);
                e.inputs(inputs);
                e.str(backtrace);
            }
        }
        e.into_bytes()
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<ServerMessage, DecodeError> {
        let mut d = Decoder::new(bytes);
        let message = match d.u8()? {
            0 => ServerMessage::Ready,
            1 => ServerMessage::Fatal(d.string()?),
            2 => {
                let tag = d.u8()?;
                let (a, b) = (d.u32()?, d.u32()?);
                ServerMessage::SpanQuery(match tag {
                    0 => SpanQuery::SourceText(a),
                    1 => SpanQuery::Start(a),
                    2 => SpanQuery::End(a),
                    3 => SpanQuery::Line(a),
                    4 => SpanQuery::Column(a),
                    5 => SpanQuery::File(a),
                    6 => SpanQuery::LocalFile(a),
                    7 => SpanQuery::ResolvedAt(a, b),
                    8 => SpanQuery::Debug(a),
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            what: "span query",
                            tag,
                        });
                    }
                })
            }
            3 => {
                let result = match d.u8()? {
                    0 => Ok(d.tokens()?),
                    1 => Err(ExpandFailure::Panicked(d.opt_string()?)),
                    2 => Err(ExpandFailure::Error(d.string()?)),
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            what: "expansion result",
                            tag,
                        });
                    }
                };
                ServerMessage::Expanded {
                    result,
                    output: d.string()?,
                    inputs: d.inputs()?,
                    backtrace: d.string()?,
                }
            }
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "server message",
                    tag,
                });
            }
        };
        d.finish()?;
        Ok(message)
    }
}

/// Writes one frame: a little-endian `u32` length, then the payload.
pub fn write_frame(writer: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&len| len <= MAX_FRAME_LEN)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    writer.write_all(&len.to_le_bytes())?;
    writer.write_all(payload)?;
    writer.flush()
}

/// Reads one frame. `Ok(None)` means the peer closed the stream cleanly
/// between frames.
pub fn read_frame(reader: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(header);
    if len > MAX_FRAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit"),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload)?;
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tokens() -> Vec<Token> {
        vec![
            Token::Group {
                delimiter: Delimiter::Brace,
                span: 1,
                open: 2,
                close: 3,
                len: 3,
            },
            Token::Ident {
                name: "ß_x".into(),
                is_raw: true,
                span: 4,
            },
            Token::Punct {
                ch: '\'',
                joint: true,
                span: 5,
            },
            Token::Literal {
                text: "\"a\\n\"".into(),
                span: 6,
            },
        ]
    }

    #[test]
    fn messages_round_trip() {
        let shim = [
            ShimMessage::Hello(Hello {
                version: 1,
                component: "ab".into(),
                crate_name: "x".into(),
                grants: Grants {
                    package: "x".into(),
                    roots: vec![Root {
                        name: "$CARGO_MANIFEST_DIR".into(),
                        path: "/w/app".into(),
                    }],
                    read: vec![ReadGrant {
                        root: 0,
                        relative: "templates".into(),
                        origin: "built in".into(),
                    }],
                    env: vec![("CARGO_PKG_NAME".into(), "app".into())],
                    env_patterns: vec!["CARGO_PKG_*".into()],
                },
                stateless: true,
            }),
            ShimMessage::Expand(ExpandRequest {
                macro_name: "Serialize".into(),
                input: sample_tokens(),
                attribute_args: Some(vec![]),
                call_site: 7,
                mixed_site: 8,
            }),
            ShimMessage::SpanAnswer(SpanAnswer::MaybeText(Some("src/lib.rs".into()))),
            ShimMessage::SpanAnswer(SpanAnswer::InvalidHandle(9)),
        ];
        for message in shim {
            assert_eq!(ShimMessage::decode(&message.encode()), Ok(message));
        }
        let server = [
            ServerMessage::Ready,
            ServerMessage::SpanQuery(SpanQuery::ResolvedAt(1, 2)),
            ServerMessage::Expanded {
                result: Ok(sample_tokens()),
                output: "hi".into(),
                inputs: vec![
                    Input::File {
                        path: "$CARGO_MANIFEST_DIR/a".into(),
                        digest: "00".into(),
                    },
                    Input::Directory {
                        path: "$CARGO_MANIFEST_DIR".into(),
                        digest: "11".into(),
                    },
                    Input::Missing {
                        path: "$OUT_DIR/b".into(),
                    },
                    Input::Env {
                        name: "A".into(),
                        value: Some("1".into()),
                    },
                    Input::Env {
                        name: "B".into(),
                        value: None,
                    },
                ],
                backtrace: String::new(),
            },
            ServerMessage::Expanded {
                result: Err(ExpandFailure::Panicked(None)),
                output: String::new(),
                inputs: vec![],
                backtrace: "   0: m::expand\n".into(),
            },
        ];
        for message in server {
            assert_eq!(ServerMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = ShimMessage::Expand(ExpandRequest {
            macro_name: "m".into(),
            input: sample_tokens(),
            attribute_args: None,
            call_site: 0,
            mixed_site: 0,
        })
        .encode();
        for cut in 0..bytes.len() {
            assert!(
                ShimMessage::decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(
            ShimMessage::decode(&extra),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn huge_lengths_fail_without_allocating() {
        // Tag 3 (literal) list claiming u32::MAX tokens in a 9-byte message.
        let mut bytes = vec![3, 0];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ServerMessage::decode(&bytes), Err(DecodeError::Truncated));
        let mut reader: &[u8] = &(MAX_FRAME_LEN + 1).to_le_bytes();
        assert!(read_frame(&mut reader).is_err());
    }

    #[test]
    fn invalid_chars_and_utf8_are_rejected() {
        let mut e = Encoder::new();
        e.u8(1);
        e.str("m");
        e.len(1);
        e.u8(2);
        e.u32(0xD800); // a surrogate is not a char
        e.bool(false);
        e.u32(0);
        let mut bytes = e.into_bytes();
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ShimMessage::decode(&bytes), Err(DecodeError::InvalidText));
    }
}
