//! One shim's session with one component, knowing no transport: it takes a
//! `Hello` and then expansion requests, and gives back the messages to send.
//! The server drives it over a pipe; an in-process entry point can drive it
//! with direct calls. Span queries go through the [`SpanOracle`] the caller
//! passes with each request.

use crate::cache::ComponentHash;
use crate::error::ExpandError;
use crate::instance::{Isolation, LoadedComponent, MacroInstance, Runtime, SpanOracle};
use crate::limits::{ApproxSize, Limits, Size};
use wasmacro_protocol::{
    ExpandFailure, ExpandRequest, Grants, Input, MacroDecl, PROTOCOL_VERSION, ServerMessage, Token,
};

/// What one session has done so far.
#[derive(Clone, Debug, Default)]
pub struct ServeStats {
    /// The macro crate the shim is for.
    pub crate_name: String,
    /// The component's hash.
    pub component: String,
    /// Expansions run.
    pub expansions: u64,
    /// Expansions that failed (panic, trap, limit).
    pub failures: u64,
    /// Time spent in expansions, including instantiation and span queries.
    pub busy: std::time::Duration,
    /// The latest expansion, by content.
    pub last: Option<ExpansionDigest>,
}

/// An expansion identified by content: BLAKE3 of the encoded request and of
/// the encoded result (tokens with their span handles, or the error, what
/// the guest printed and what it read), and what it read. Equal digests
/// across builds mean byte-identical expansions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpansionDigest {
    /// The macro expanded.
    pub macro_name: String,
    /// Hash of the request.
    pub input: blake3::Hash,
    /// Hash of the result.
    pub output: blake3::Hash,
    /// What the expansion read, named from its roots, with content digests.
    pub read: Vec<Input>,
}

/// A component being served to one shim.
pub struct Session {
    component: LoadedComponent,
    grants: Grants,
    isolation: Isolation,
    limits: Limits,
    /// The instance kept between expansions of one compilation.
    instance: Option<MacroInstance>,
    stats: ServeStats,
}

impl Session {
    /// Opens a session for a shim's `Hello`, or returns the text of the
    /// `Fatal` message that refuses it.
    pub fn open(
        runtime: &Runtime,
        version: u32,
        component: &str,
        crate_name: &str,
        grants: Grants,
    ) -> Result<Session, String> {
        if version != PROTOCOL_VERSION {
            return Err(format!(
                "the shim for `{crate_name}` speaks protocol version {version}, but this \
                 wasmacro speaks version {PROTOCOL_VERSION}; rebuild with the same wasmacro that \
                 generated it"
            ));
        }
        crate::capabilities::validate(&grants).map_err(|reason| {
            format!("the shim for `{crate_name}` sent invalid grants: {reason}")
        })?;
        let hash = ComponentHash::parse(component)
            .ok_or_else(|| format!("`{component}` is not a component hash"))?;
        let loaded = runtime
            .load(&hash)
            .map_err(|e| format!("cannot load the component of `{crate_name}`: {e}"))?;
        Ok(Session {
            component: loaded,
            grants,
            isolation: runtime.config().isolation,
            limits: runtime.limits().clone(),
            instance: None,
            stats: ServeStats {
                crate_name: crate_name.to_string(),
                component: hash.to_string(),
                ..ServeStats::default()
            },
        })
    }

    /// The component's macros, for `Ready`.
    pub fn declarations(&self) -> &[MacroDecl] {
        self.component.declarations()
    }

    /// The limits every expansion runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What the session has done so far.
    pub fn stats(&self) -> &ServeStats {
        &self.stats
    }

    /// Runs one expansion and returns the encoded `Expanded` message.
    /// `request_digest` names the request in the expansion log (the BLAKE3
    /// of its encoded frame).
    pub fn expand(
        &mut self,
        request: &ExpandRequest,
        request_digest: blake3::Hash,
        oracle: Box<dyn SpanOracle>,
    ) -> Vec<u8> {
        let started = std::time::Instant::now();
        let reusable = self
            .instance
            .take()
            .filter(|i| !i.is_poisoned() && self.isolation == Isolation::PerCompilation);
        let fresh = || self.component.instantiate_with(&self.grants);
        let (result, output, inputs) = match reusable.map(Ok).unwrap_or_else(fresh) {
            Ok(mut live) => {
                let (result, output, _oracle) = live.expand(request, oracle);
                let inputs = live.inputs();
                self.instance = Some(live);
                (result, output, inputs)
            }
            Err(e) => (Err(e), String::new(), Vec::new()),
        };
        let result = result.and_then(validate_output).map_err(|e| match e {
            ExpandError::Panicked(message) => ExpandFailure::Panicked(message),
            other => ExpandFailure::Error(other.to_string()),
        });
        let mut failed = result.is_err();
        let printed = output.len() as u64;
        let read = inputs.clone();
        let mut bytes = ServerMessage::Expanded {
            result,
            output,
            inputs,
        }
        .encode();
        // The limit is on the tokens: what the guest printed is bounded by its
        // pipe, and an error's text is small. `Limits` keeps `output` under
        // the frame cap.
        let tokens = (bytes.len() as u64).saturating_sub(printed);
        if !failed && tokens > self.limits.output {
            failed = true;
            let text = format!(
                "it returned {} of tokens, more than the `output` limit of {}{}",
                ApproxSize(tokens),
                Size(self.limits.output),
                crate::limits::raise_hint("output")
            );
            let message = ServerMessage::Expanded {
                result: Err(ExpandFailure::Error(text)),
                output: String::new(),
                inputs: Vec::new(),
            };
            bytes = message.encode();
        }
        self.stats.expansions += 1;
        self.stats.failures += u64::from(failed);
        self.stats.busy += started.elapsed();
        self.stats.last = Some(ExpansionDigest {
            macro_name: request.macro_name.clone(),
            input: request_digest,
            output: blake3::hash(&bytes),
            read,
        });
        bytes
    }
}

/// Checks what a guest returned with the guest crate's own lexer, compiled
/// natively: rustc must never see a literal or identifier it would reject
/// (its `Literal::from_str` reports some errors fatally).
fn validate_output(tokens: Vec<Token>) -> Result<Vec<Token>, ExpandError> {
    for token in &tokens {
        match token {
            Token::Literal { text, .. } => {
                if let Err(e) = guest_proc_macro::__private::parse_literal(text) {
                    return Err(ExpandError::InvalidOutput(format!(
                        "an invalid literal `{}` ({e})",
                        text.escape_debug()
                    )));
                }
            }
            Token::Ident { name, is_raw, .. } => {
                if let Err(e) = guest_proc_macro::__private::validate_ident(name, *is_raw) {
                    return Err(ExpandError::InvalidOutput(format!(
                        "an invalid identifier: {e}"
                    )));
                }
            }
            Token::Punct { ch, .. } if !guest_proc_macro::__private::is_valid_punct(*ch) => {
                return Err(ExpandError::InvalidOutput(format!(
                    "an invalid punctuation character {ch:?}"
                )));
            }
            _ => {}
        }
    }
    Ok(tokens)
}
