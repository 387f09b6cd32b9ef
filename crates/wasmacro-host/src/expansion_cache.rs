//! The expansion cache: what an expansion returned, keyed by everything that
//! decides it, with the evidence that must still hold for the result to be
//! reused — the span queries the guest made with their answers, and what it
//! read with content digests. This module alone knows the key and the entry
//! format; `layout.rs` owns where the entries live (`expansions/<key>`).
//!
//! A guest is deterministic: fixed clocks and seeds, fuel rather than time,
//! only granted inputs, all recorded. So an expansion's result is a function
//! of the component, the backend and limits it ran under, the grants'
//! shape, the state its instance was in (its [`History`]), the request (the
//! shim's handles are plain indices, the same for the same tokens), the
//! answers to its span queries and the inputs it read. The key covers the
//! first five; the entry records the last two, and a hit is taken only when
//! asking the same queries of the current compilation gives the same
//! answers and the inputs still hash the same ([`Evidence`]).

use crate::cache::ComponentHash;
use crate::limits::Limits;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use wasmacro_protocol::{
    Decoder, Encoder, Grants, Input, Root, ServerMessage, ShimMessage, SpanAnswer, SpanQuery,
};

/// The first bytes of every entry; a format change changes them.
const MAGIC: &[u8; 8] = b"WMXC0001";

/// The environment variable that turns the cache off (`off`) or on (`on`,
/// the default).
pub const ENV: &str = "WASMACRO_EXPANSION_CACHE";

/// Whether `WASMACRO_EXPANSION_CACHE` leaves the cache on.
pub fn enabled_by_env() -> Result<bool, String> {
    match std::env::var(ENV) {
        Err(std::env::VarError::NotPresent) => Ok(true),
        Ok(value) if value.is_empty() || value == "on" => Ok(true),
        Ok(value) if value == "off" => Ok(false),
        Ok(value) => Err(format!("{ENV} must be `on` or `off`, not `{value}`")),
        Err(std::env::VarError::NotUnicode(value)) => {
            Err(format!("{ENV} must be `on` or `off`, not {value:?}"))
        }
    }
}

/// The state of the instance an expansion runs in: a fresh one, or the
/// compilation's instance after a given sequence of expansions. Two
/// expansions with equal histories start from the same guest state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct History(blake3::Hash);

impl History {
    /// A fresh instance.
    pub fn fresh() -> History {
        History(blake3::hash(b"wasmacro: a fresh instance"))
    }

    /// The state after running the expansion `key` in this state, with
    /// `evidence` (what it was told and read) deciding its course.
    pub fn after(self, key: &ExpansionKey, evidence: &Evidence) -> History {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.0.as_bytes());
        hasher.update(key.0.as_bytes());
        hasher.update(&evidence.encode());
        History(hasher.finalize())
    }
}

/// What identifies an expansion's result, short of the evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpansionKey(blake3::Hash);

impl ExpansionKey {
    /// The one key function. `engine` names the wasmtime build and its
    /// configuration, backend included (`ComponentCache::engine_key`);
    /// `request` is the encoded `Expand` message (its span handles are the
    /// shim's table indices). Absolute root paths are not part of it, so
    /// checkouts of a project at different paths share entries; an entry
    /// records them when its result may depend on them.
    pub fn new(
        component: &ComponentHash,
        engine: &str,
        limits: &Limits,
        grants: &Grants,
        history: History,
        request: &[u8],
    ) -> ExpansionKey {
        let mut e = Encoder::new();
        e.str("wasmacro expansion key 1");
        // What the runtime itself does with a result (its checks, its error
        // texts) is part of it.
        e.str(env!("WASMACRO_RUNTIME_SOURCES"));
        e.str(engine);
        e.str(&component.to_string());
        // The wall-clock timeout is left out: an expansion it stopped is
        // never cached, and it changes no other outcome.
        for limit in [limits.fuel, limits.memory, limits.stack, limits.output] {
            e.byte_string(&limit.to_le_bytes());
        }
        // The shape of the grants: what may be read decides what is refused
        // (and its message); the values read are evidence.
        e.str(&grants.package);
        for root in &grants.roots {
            e.str(&root.name);
        }
        e.u32(u32::try_from(grants.read.len()).unwrap_or(u32::MAX));
        for grant in &grants.read {
            e.u32(grant.root);
            e.str(&grant.relative);
            e.str(&grant.origin);
        }
        e.u32(u32::try_from(grants.env_patterns.len()).unwrap_or(u32::MAX));
        for pattern in &grants.env_patterns {
            e.str(pattern);
        }
        // Which granted variables are set: a guest that lists its
        // environment sees one appear, which no recorded value would show.
        e.u32(u32::try_from(grants.env.len()).unwrap_or(u32::MAX));
        for (name, _) in &grants.env {
            e.str(name);
        }
        e.byte_string(history.0.as_bytes());
        e.byte_string(request);
        ExpansionKey(blake3::hash(&e.into_bytes()))
    }

    /// The key in hex, as entries are named.
    pub fn to_hex(&self) -> String {
        self.0.to_hex().to_string()
    }
}

/// What an expansion was told and read: the conditions under which its
/// result holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Its span queries and their answers, in order (handles as the shim
    /// numbers them).
    pub queries: Vec<(SpanQuery, SpanAnswer)>,
    /// What it read, named from roots, with digests.
    pub inputs: Vec<Input>,
    /// The roots' absolute paths, when the guest could have seen them (it
    /// read its environment or a file, or it failed with a message that may
    /// name one); `None` when its result cannot depend on where the project
    /// lives.
    pub roots: Option<Vec<Root>>,
}

impl Evidence {
    fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u32(u32::try_from(self.queries.len()).unwrap_or(u32::MAX));
        for (query, answer) in &self.queries {
            e.byte_string(&ServerMessage::SpanQuery(query.clone()).encode());
            e.byte_string(&ShimMessage::SpanAnswer(answer.clone()).encode());
        }
        e.inputs(&self.inputs);
        match &self.roots {
            None => e.u32(0),
            Some(roots) => {
                e.u32(1);
                e.u32(u32::try_from(roots.len()).unwrap_or(u32::MAX));
                for root in roots {
                    e.str(&root.name);
                    e.str(&root.path);
                }
            }
        }
        e.into_bytes()
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Evidence, String> {
        let bad = |e: wasmacro_protocol::DecodeError| e.to_string();
        let count = d.u32().map_err(bad)?;
        let mut queries = Vec::new();
        for _ in 0..count {
            let query = match ServerMessage::decode(d.byte_string().map_err(bad)?) {
                Ok(ServerMessage::SpanQuery(query)) => query,
                _ => return Err("a span query that does not decode".into()),
            };
            let answer = match ShimMessage::decode(d.byte_string().map_err(bad)?) {
                Ok(ShimMessage::SpanAnswer(answer)) => answer,
                _ => return Err("a span answer that does not decode".into()),
            };
            queries.push((query, answer));
        }
        let inputs = d.inputs().map_err(bad)?;
        let roots = match d.u32().map_err(bad)? {
            0 => None,
            1 => {
                let count = d.u32().map_err(bad)?;
                let mut roots = Vec::new();
                for _ in 0..count {
                    roots.push(Root {
                        name: d.string().map_err(bad)?,
                        path: d.string().map_err(bad)?,
                    });
                }
                Some(roots)
            }
            _ => return Err("an invalid roots tag".into()),
        };
        Ok(Evidence {
            queries,
            inputs,
            roots,
        })
    }

    /// Whether what was read is still the same in this compilation (the
    /// span queries are checked by asking them again, by the session).
    pub fn inputs_hold(&self, grants: &Grants) -> bool {
        if let Some(roots) = &self.roots
            && *roots != grants.roots
        {
            return false;
        }
        self.inputs
            .iter()
            .all(|input| crate::capabilities::still_holds(input, grants))
    }
}

/// One cached expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The conditions under which the result holds.
    pub evidence: Evidence,
    /// Whether the expansion failed (for the statistics).
    pub failed: bool,
    /// The encoded `Expanded` message, as the session returned it.
    pub expanded: Vec<u8>,
}

impl Entry {
    fn encode(&self, key: &ExpansionKey) -> Vec<u8> {
        let mut body = Encoder::new();
        body.byte_string(key.0.as_bytes());
        body.byte_string(&self.evidence.encode());
        body.u32(u32::from(self.failed));
        body.byte_string(&self.expanded);
        let body = body.into_bytes();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 32 + body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(blake3::hash(&body).as_bytes());
        bytes.extend_from_slice(&body);
        bytes
    }

    /// Decodes an entry's file, checking its checksum and that it is the
    /// entry of `key` (when given): the bytes come from a shared directory
    /// and are never trusted.
    fn decode(bytes: &[u8], key: Option<&ExpansionKey>) -> Result<Entry, String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("not an expansion cache entry (or one of another version)")?;
        if rest.len() < 32 {
            return Err("truncated".into());
        }
        let (sum, body) = rest.split_at(32);
        if blake3::hash(body).as_bytes() != sum {
            return Err("its contents do not match its checksum (truncated or modified?)".into());
        }
        let mut d = Decoder::new(body);
        let bad = |e: wasmacro_protocol::DecodeError| e.to_string();
        let stored_key = d.byte_string().map_err(bad)?;
        if key.is_some_and(|key| key.0.as_bytes() != stored_key) {
            return Err("it is the entry of another key".into());
        }
        let mut evidence_bytes = Decoder::new(d.byte_string().map_err(bad)?);
        let evidence = Evidence::decode(&mut evidence_bytes)?;
        evidence_bytes.finish().map_err(bad)?;
        let failed = match d.u32().map_err(bad)? {
            0 => false,
            1 => true,
            _ => return Err("an invalid failure flag".into()),
        };
        let expanded = d.byte_string().map_err(bad)?.to_vec();
        d.finish().map_err(bad)?;
        Ok(Entry {
            evidence,
            failed,
            expanded,
        })
    }
}

/// The cache's directory of entries.
#[derive(Clone, Debug)]
pub struct ExpansionCache {
    dir: PathBuf,
}

impl ExpansionCache {
    /// The cache whose entries live in `dir` (`CacheDir::section`).
    pub fn new(dir: PathBuf) -> ExpansionCache {
        ExpansionCache { dir }
    }

    fn path(&self, key: &ExpansionKey) -> PathBuf {
        self.dir.join(key.to_hex())
    }

    /// The entry for `key`, if there is an intact one. A corrupt entry is
    /// removed (and rebuilt by the expansion that follows), never used.
    pub fn get(&self, key: &ExpansionKey) -> Option<Entry> {
        let path = self.path(key);
        let bytes = std::fs::read(&path).ok()?;
        match Entry::decode(&bytes, Some(key)) {
            Ok(entry) => {
                crate::maintenance::mark_used_daily(&path);
                Some(entry)
            }
            Err(why) => {
                tracing::warn!(path = %path.display(), "expansion cache entry corrupt, ignoring it: {why}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores an entry. Concurrent builds may store the same key at once:
    /// each writes a temporary file and renames it into place, and the
    /// contents are the same. Not synced: a torn entry fails its checksum.
    pub fn put(&self, key: &ExpansionKey, entry: &Entry) {
        let path = self.path(key);
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(&self.dir))
            .and_then(|mut file| {
                file.write_all(&entry.encode(key))?;
                file.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        if let Err(e) = written {
            tracing::debug!(path = %path.display(), "could not store the expansion: {e}");
        }
    }
}

/// Checks one entry file for `wasmacro cache verify`.
pub fn check_file(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let entry_key = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| blake3::Hash::from_hex(n).ok())
        .ok_or("not named by a key")?;
    Entry::decode(&bytes, Some(&ExpansionKey(entry_key))).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (ExpansionKey, Entry) {
        let key = ExpansionKey(blake3::hash(b"k"));
        let entry = Entry {
            evidence: Evidence {
                queries: vec![(SpanQuery::Line(3), SpanAnswer::Number(7))],
                inputs: vec![Input::Missing {
                    path: "$CARGO_MANIFEST_DIR/x".into(),
                }],
                roots: Some(vec![Root {
                    name: "$CARGO_MANIFEST_DIR".into(),
                    path: "/w".into(),
                }]),
            },
            failed: true,
            expanded: vec![1, 2, 3],
        };
        (key, entry)
    }

    #[test]
    fn entries_round_trip_and_every_flipped_bit_is_caught() {
        let (key, entry) = sample();
        let bytes = entry.encode(&key);
        assert_eq!(Entry::decode(&bytes, Some(&key)), Ok(entry));
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                assert!(
                    Entry::decode(&flipped, Some(&key)).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..len], Some(&key)).is_err());
        }
        let other = ExpansionKey(blake3::hash(b"other"));
        assert!(Entry::decode(&bytes, Some(&other)).is_err());
    }

    #[test]
    fn histories_differ_by_what_ran() {
        let (key, entry) = sample();
        let fresh = History::fresh();
        let after = fresh.after(&key, &entry.evidence);
        assert_ne!(after, fresh);
        assert_eq!(after, History::fresh().after(&key, &entry.evidence));
        let mut other = entry.evidence.clone();
        other.queries[0].1 = SpanAnswer::Number(8);
        assert_ne!(after, fresh.after(&key, &other));
    }
}
