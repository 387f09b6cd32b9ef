//! What sessions leave behind for whoever ran rustc: statistics for the
//! summary table (one file per session, in [`STATS_ENV`]'s directory) and
//! one line per expansion in the log [`EXPANSION_LOG_ENV`] names. The server
//! and an in-process runtime record the same way.

use crate::session::{ExpansionDigest, ServeStats};
use std::path::{Path, PathBuf};

/// Where the paths come from, read once.
pub struct Records {
    stats_dir: Option<PathBuf>,
    log: Option<PathBuf>,
}

impl Records {
    /// The directories and files the environment names.
    pub fn from_env() -> Records {
        Records {
            stats_dir: std::env::var_os(STATS_ENV).map(PathBuf::from),
            log: std::env::var_os(EXPANSION_LOG_ENV).map(PathBuf::from),
        }
    }

    /// Records a session's state after an expansion.
    pub fn record(&self, stats: &ServeStats) {
        if let Some(dir) = &self.stats_dir {
            record_stats(dir, stats);
        }
        if let (Some(log), Some(last)) = (&self.log, &stats.last) {
            log_expansion(log, &stats.crate_name, last);
        }
    }
}

/// Where sessions record their statistics for the summary.
pub const STATS_ENV: &str = "WASMACRO_STATS_DIR";

/// Writes a server's statistics (one file per server, replaced after every
/// expansion, so it is complete by the time rustc exits).
pub fn record_stats(dir: &Path, stats: &ServeStats) {
    let line = format!(
        "{}\t{}\t{}\t{}\t{}\t{}\n",
        stats.crate_name,
        stats.component,
        stats.expansions,
        stats.hits,
        stats.failures,
        stats.busy.as_micros()
    );
    let path = dir.join(format!("{}-{}.stats", stats.crate_name, std::process::id()));
    if let Err(e) = std::fs::write(&path, line) {
        tracing::warn!("could not record statistics in {}: {e}", path.display());
    }
}

/// One server's statistics, as [`record_stats`] wrote them.
pub struct RecordedStats {
    /// The macro crate the server served.
    pub crate_name: String,
    /// The component's hash.
    pub component: String,
    /// Expansions answered.
    pub expansions: u64,
    /// Of those, taken from the expansion cache.
    pub hits: u64,
    /// Expansions that failed.
    pub failures: u64,
    /// Time spent expanding, in microseconds.
    pub micros: u128,
}

/// Every statistics file in `dir`; unreadable or malformed ones are skipped
/// (a server killed mid-write leaves nothing worth reporting).
pub fn read_stats(dir: &Path) -> Vec<RecordedStats> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let fields: Vec<&str> = text.trim_end().split('\t').collect();
        let [crate_name, component, expansions, hits, failures, micros] = fields[..] else {
            continue;
        };
        all.push(RecordedStats {
            crate_name: crate_name.to_string(),
            component: component.to_string(),
            expansions: expansions.parse().unwrap_or(0),
            hits: hits.parse().unwrap_or(0),
            failures: failures.parse().unwrap_or(0),
            micros: micros.parse().unwrap_or(0),
        });
    }
    all
}

/// A file to which every server appends one line per expansion: crate,
/// macro, the BLAKE3 of its request and of its result, and what it read
/// (`PATH#DIGEST` for a file or a directory listing, `NAME=VALUE` for a
/// variable, `PATH (missing)`; paths from their roots, space-separated). Two
/// builds with equal logs (as sorted lines) expanded every macro to the same
/// bytes from the same inputs.
pub const EXPANSION_LOG_ENV: &str = "WASMACRO_EXPANSION_LOG";

/// Appends one expansion's line to the log.
pub fn log_expansion(log: &Path, crate_name: &str, digest: &ExpansionDigest) {
    use std::io::Write as _;
    use wasmacro_protocol::Input;
    let read: Vec<String> = digest
        .read
        .iter()
        .map(|input| match input {
            Input::File { path, digest } | Input::Directory { path, digest } => {
                format!("{path}#{digest}")
            }
            Input::Missing { path } => format!("{path} (missing)"),
            Input::Env {
                name,
                value: Some(value),
            } => format!("{name}={}", value.escape_debug()),
            Input::Env { name, value: None } => format!("{name} (unset)"),
        })
        .collect();
    let line = format!(
        "{crate_name}\t{}\t{}\t{}\t{}\n",
        digest.macro_name,
        digest.input,
        digest.output,
        read.join(" ")
    );
    // One `write` of a short line to a file opened for appending: lines from
    // concurrent servers do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        tracing::warn!("could not append to {}: {e}", log.display());
    }
}
