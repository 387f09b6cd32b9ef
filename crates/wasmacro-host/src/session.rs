//! One shim's session with one component, knowing no transport: it takes a
//! `Hello` and then expansion requests, and gives back the messages to send.
//! The server drives it over a pipe; an in-process entry point can drive it
//! with direct calls. Span queries go through the [`SpanOracle`] the caller
//! passes with each request.
//!
//! Each expansion is looked up in the expansion cache first
//! (`expansion_cache.rs`); the component is loaded only when one has to run.
//! In a stateful session (the instance lives for the compilation) an
//! expansion's key includes the [`History`] of the instance, and the
//! expansions taken from the cache are run again, their answers replayed,
//! before the next one that must run: the guest's state is then exactly what
//! running every expansion would have left.

use crate::cache::ComponentHash;
use crate::error::ExpandError;
use crate::expansion_cache::{Entry, Evidence, ExpansionCache, ExpansionKey, History};
use crate::instance::{
    Isolation, LoadedComponent, MacroInstance, Runtime, SpanOracle, SpanOracleError,
};
use crate::limits::{ApproxSize, Limits, Size};
use std::collections::VecDeque;
use wasmacro_protocol::{
    ExpandFailure, ExpandRequest, Grants, Hello, Input, PROTOCOL_VERSION, ServerMessage,
    SpanAnswer, SpanQuery, Token,
};

/// What one session has done so far.
#[derive(Clone, Debug, Default)]
pub struct ServeStats {
    /// The macro crate the shim is for.
    pub crate_name: String,
    /// The component's hash.
    pub component: String,
    /// Expansions answered (run, or taken from the expansion cache).
    pub expansions: u64,
    /// Of those, taken from the expansion cache.
    pub hits: u64,
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

/// An expansion taken from the cache that the live instance has not run.
struct Skipped {
    request: ExpandRequest,
    queries: Vec<(SpanQuery, SpanAnswer)>,
}

/// A component being served to one shim.
pub struct Session<'r> {
    runtime: &'r Runtime,
    hash: ComponentHash,
    /// Loaded at the first expansion that has to run.
    component: Option<Result<LoadedComponent, String>>,
    grants: Grants,
    isolation: Isolation,
    /// The instance kept between expansions of one compilation.
    instance: Option<MacroInstance>,
    /// The expansion cache, while this session can use it.
    cache: Option<&'r ExpansionCache>,
    /// The state the next expansion of a stateful session starts from.
    history: History,
    /// Cache hits the live instance has yet to run (stateful sessions).
    behind: Vec<Skipped>,
    stats: ServeStats,
}

impl<'r> Session<'r> {
    /// Opens a session for a shim's `Hello`, or returns the text of the
    /// `Fatal` message that refuses it.
    pub fn open(runtime: &'r Runtime, hello: Hello) -> Result<Session<'r>, String> {
        let crate_name = &hello.crate_name;
        if hello.version != PROTOCOL_VERSION {
            return Err(format!(
                "the shim for `{crate_name}` speaks protocol version {}, but this wasmacro \
                 speaks version {PROTOCOL_VERSION}; rebuild with the same wasmacro that \
                 generated it",
                hello.version
            ));
        }
        crate::capabilities::validate(&hello.grants).map_err(|reason| {
            format!("the shim for `{crate_name}` sent invalid grants: {reason}")
        })?;
        let hash = ComponentHash::parse(&hello.component)
            .ok_or_else(|| format!("`{}` is not a component hash", hello.component))?;
        let cache = runtime.expansion_cache();
        // A fresh instance is what lets a stateless macro's expansions be
        // cached one by one, whatever the declaration's truth; without the
        // cache it would only cost (~0.3 ms an expansion on the serde corpus:
        // instantiation, first-touch memory, the guest's start-up).
        let isolation = if hello.stateless && cache.is_some() {
            Isolation::PerExpansion
        } else {
            runtime.config().isolation
        };
        let component = hash.to_string();
        let mut session = Session {
            runtime,
            hash,
            component: None,
            grants: hello.grants,
            isolation,
            instance: None,
            cache,
            history: History::fresh(),
            behind: Vec::new(),
            stats: ServeStats {
                crate_name: hello.crate_name,
                component,
                ..ServeStats::default()
            },
        };
        if cache.is_none() {
            // Nothing can be answered without it: say now if it is broken.
            session.component()?;
        }
        Ok(session)
    }

    /// The limits every expansion runs under.
    pub fn limits(&self) -> &Limits {
        self.runtime.limits()
    }

    /// What the session has done so far.
    pub fn stats(&self) -> &ServeStats {
        &self.stats
    }

    fn component(&mut self) -> Result<&LoadedComponent, String> {
        let (runtime, hash, crate_name) = (self.runtime, &self.hash, &self.stats.crate_name);
        self.component
            .get_or_insert_with(|| {
                runtime
                    .load(hash)
                    .map_err(|e| format!("cannot load the component of `{crate_name}`: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Runs one expansion, or takes it from the expansion cache, and returns
    /// the encoded `Expanded` message. `request_digest` names the request
    /// (the BLAKE3 of its encoded frame) in the key and the expansion log.
    pub fn expand(
        &mut self,
        request: &ExpandRequest,
        request_digest: blake3::Hash,
        mut oracle: Box<dyn SpanOracle>,
    ) -> Vec<u8> {
        let started = std::time::Instant::now();
        let history = match self.isolation {
            Isolation::PerExpansion => History::fresh(),
            Isolation::PerCompilation => self.history,
        };
        let key = self.cache.map(|_| {
            ExpansionKey::new(
                &self.hash,
                self.runtime.cache().engine_key(),
                self.runtime.limits(),
                &self.grants,
                history,
                request_digest.as_bytes(),
            )
        });
        let mut asked = Vec::new();
        if let (Some(cache), Some(key)) = (self.cache, &key)
            && let Some(entry) = cache.get(key)
            && entry.evidence.inputs_hold(&self.grants)
        {
            match ask_again(&entry.evidence.queries, oracle.as_mut()) {
                Ok(()) => return self.hit(request, request_digest, key, history, entry, started),
                Err(prefix) => asked = prefix,
            }
        }
        if !asked.is_empty() {
            // The guest asks the same questions up to the first answer that
            // changed: give it the answers already had, so the shim's span
            // table grows exactly as in a run without the cache.
            oracle = Box::new(Prefetched {
                answers: asked.into(),
                inner: oracle,
            });
        }
        self.catch_up();
        let run = self.run(request, oracle);
        let mut failed = run.result.is_err();
        let printed = run.output.len() as u64;
        let evidence = Evidence {
            roots: (!run.inputs.is_empty() || !self.grants.read.is_empty() || failed)
                .then(|| self.grants.roots.clone()),
            queries: run.queries,
            inputs: run.inputs,
        };
        let mut bytes = ServerMessage::Expanded {
            result: run.result,
            output: run.output,
            inputs: evidence.inputs.clone(),
            backtrace: run.backtrace,
        }
        .encode();
        // The limit is on the tokens: what the guest printed is bounded by its
        // pipe, and an error's text is small. `Limits` keeps `output` under
        // the frame cap.
        let tokens = (bytes.len() as u64).saturating_sub(printed);
        let limit = self.runtime.limits().output;
        if !failed && tokens > limit {
            failed = true;
            let text = format!(
                "it returned {} of tokens, more than the `output` limit of {}{}",
                ApproxSize(tokens),
                Size(limit),
                crate::limits::raise_hint("output", crate::instance::GuestKind::Macro)
            );
            let message = ServerMessage::Expanded {
                result: Err(ExpandFailure::Error(text)),
                output: String::new(),
                inputs: Vec::new(),
                backtrace: String::new(),
            };
            bytes = message.encode();
        }
        let entry = Entry {
            evidence,
            failed,
            expanded: bytes,
        };
        match (self.cache, &key) {
            (Some(cache), Some(key)) if run.deterministic => {
                cache.put(key, &entry);
                self.history = history.after(key, &entry.evidence);
            }
            // What the guest's state is now is not a function of its
            // inputs: nothing later in this session can be keyed.
            _ if self.isolation == Isolation::PerCompilation => self.cache = None,
            _ => {}
        }
        self.record(
            request,
            request_digest,
            &entry.expanded,
            entry.evidence.inputs,
            failed,
            started,
        );
        entry.expanded
    }

    /// Answers from the cache.
    fn hit(
        &mut self,
        request: &ExpandRequest,
        request_digest: blake3::Hash,
        key: &ExpansionKey,
        history: History,
        entry: Entry,
        started: std::time::Instant,
    ) -> Vec<u8> {
        if self.isolation == Isolation::PerCompilation {
            self.history = history.after(key, &entry.evidence);
            self.behind.push(Skipped {
                request: request.clone(),
                queries: entry.evidence.queries,
            });
        }
        self.stats.hits += 1;
        self.record(
            request,
            request_digest,
            &entry.expanded,
            entry.evidence.inputs,
            entry.failed,
            started,
        );
        entry.expanded
    }

    fn record(
        &mut self,
        request: &ExpandRequest,
        request_digest: blake3::Hash,
        bytes: &[u8],
        read: Vec<Input>,
        failed: bool,
        started: std::time::Instant,
    ) {
        self.stats.expansions += 1;
        self.stats.failures += u64::from(failed);
        self.stats.busy += started.elapsed();
        self.stats.last = Some(ExpansionDigest {
            macro_name: request.macro_name.clone(),
            input: request_digest,
            output: blake3::hash(bytes),
            read,
        });
    }

    /// Runs, in the live instance, the expansions the cache answered since
    /// it last ran, with their recorded answers: afterwards the guest's
    /// state is what running every expansion would have left.
    fn catch_up(&mut self) {
        for skipped in std::mem::take(&mut self.behind) {
            let replay = Box::new(Replay {
                answers: skipped.queries.into(),
            });
            let run = self.run(&skipped.request, replay);
            if !run.deterministic {
                // Nothing this session stores could be trusted any more.
                self.cache = None;
                tracing::warn!(
                    crate_name = %self.stats.crate_name,
                    "replaying a cached expansion took another course; the macro's state may \
                     differ from a build without the expansion cache"
                );
            }
        }
    }

    /// Runs the guest, in the compilation's instance or a fresh one.
    fn run(&mut self, request: &ExpandRequest, oracle: Box<dyn SpanOracle>) -> Run {
        let reusable = self
            .instance
            .take()
            .filter(|i| !i.is_poisoned() && self.isolation == Isolation::PerCompilation);
        let live = match reusable {
            Some(live) => Ok(live),
            None => {
                let grants = self.grants.clone();
                self.component()
                    .map_err(ExpandError::Instantiate)
                    .and_then(|component| component.instantiate_with(&grants))
            }
        };
        let mut live = match live {
            Ok(live) => live,
            Err(e) => {
                return Run {
                    result: Err(failure(e)),
                    output: String::new(),
                    inputs: Vec::new(),
                    queries: Vec::new(),
                    backtrace: String::new(),
                    // Loading and instantiating fail for reasons of this
                    // machine (a missing cache entry, a full disk).
                    deterministic: false,
                };
            }
        };
        let (result, output, _oracle) = live.expand(request, oracle);
        let run = Run {
            result: result.and_then(validate_output).map_err(failure),
            output,
            inputs: live.inputs(),
            queries: live.take_queries(),
            backtrace: live.take_backtrace(),
            deterministic: live.was_deterministic(),
        };
        self.instance = Some(live);
        run
    }
}

/// What running the guest once gave.
struct Run {
    result: Result<Vec<Token>, ExpandFailure>,
    output: String,
    inputs: Vec<Input>,
    queries: Vec<(SpanQuery, SpanAnswer)>,
    backtrace: String,
    deterministic: bool,
}

fn failure(error: ExpandError) -> ExpandFailure {
    match error {
        ExpandError::Panicked(message) => ExpandFailure::Panicked(message),
        other => ExpandFailure::Error(other.to_string()),
    }
}

/// Asks a cached expansion's span queries of this compilation. `Err` holds
/// the questions asked and the answers got, up to the first that differs.
fn ask_again(
    queries: &[(SpanQuery, SpanAnswer)],
    oracle: &mut dyn SpanOracle,
) -> Result<(), Vec<(SpanQuery, SpanAnswer)>> {
    let mut asked = Vec::new();
    for (query, recorded) in queries {
        let Ok(answer) = oracle.query(query.clone()) else {
            // The guest will ask it again and fail the same way, uncached.
            return Err(asked);
        };
        let same = answer == *recorded;
        asked.push((query.clone(), answer));
        if !same {
            return Err(asked);
        }
    }
    Ok(())
}

/// Answers the guest's first queries with answers already had, then asks
/// the compiler.
struct Prefetched {
    answers: VecDeque<(SpanQuery, SpanAnswer)>,
    inner: Box<dyn SpanOracle>,
}

impl SpanOracle for Prefetched {
    fn query(&mut self, query: SpanQuery) -> Result<SpanAnswer, SpanOracleError> {
        match self.answers.pop_front() {
            Some((asked, answer)) if asked == query => Ok(answer),
            _ => {
                self.answers.clear();
                self.inner.query(query)
            }
        }
    }
}

/// Answers a replayed expansion's queries with what was recorded.
struct Replay {
    answers: VecDeque<(SpanQuery, SpanAnswer)>,
}

impl SpanOracle for Replay {
    fn query(&mut self, query: SpanQuery) -> Result<SpanAnswer, SpanOracleError> {
        match self.answers.pop_front() {
            Some((asked, answer)) if asked == query => Ok(answer),
            _ => Err(SpanOracleError(format!(
                "a replayed expansion asked {query:?}, which it did not ask when it ran"
            ))),
        }
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
