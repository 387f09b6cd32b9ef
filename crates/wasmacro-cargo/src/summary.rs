//! The summary of a run: one row per proc-macro crate and build script, where
//! it ran, why, and what its expansions cost. `cargo wasmacro` and `wasmacro rustc` (with
//! `WASMACRO_SUMMARY`) print it as one table on stderr, and write it as JSON
//! where [`JSON_ENV`] says, for build systems and tests to read rather than
//! scrape.

use crate::macro_unit::UnitKind;
use serde::Serialize;
use std::path::Path;

/// A file to write the summary to as JSON (an array of [`SummaryRow`]s).
pub const JSON_ENV: &str = "WASMACRO_SUMMARY_JSON";

/// One proc-macro crate of the run.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    /// The crate: `name vVERSION` where the version is known, else its name.
    #[serde(rename = "crate")]
    pub krate: String,
    /// A proc-macro crate or a build script (`proc-macro`, `build-script`).
    pub kind: UnitKind,
    /// `wasm` or `native`.
    pub runs: &'static str,
    /// Why it runs there, where the run knows.
    pub why: Option<String>,
    /// Whether cargo found the unit fresh (its row comes from an earlier
    /// run's record; it expanded nothing now).
    pub fresh: bool,
    /// Expansions answered as wasm (run, or taken from the expansion cache).
    pub expansions: u64,
    /// Of those, taken from the expansion cache (the rest ran: misses).
    pub hits: u64,
    /// Of those, how many failed.
    pub failures: u64,
    /// Time spent in them, in microseconds.
    pub micros: u128,
}

impl SummaryRow {
    /// A crate that has run nothing yet, natively until found otherwise.
    pub fn new(krate: String) -> SummaryRow {
        SummaryRow {
            krate,
            kind: UnitKind::ProcMacro,
            runs: "native",
            why: None,
            fresh: false,
            expansions: 0,
            hits: 0,
            failures: 0,
            micros: 0,
        }
    }
}

/// Writes the JSON file if one is asked for, and prints the table unless
/// `quiet` (or the run had no proc macros).
pub fn report(rows: &[SummaryRow], quiet: bool) {
    if let Some(path) = std::env::var_os(JSON_ENV).filter(|p| !p.is_empty()) {
        write_json(rows, Path::new(&path));
    }
    if !quiet && !rows.is_empty() {
        eprint!("{}", table(rows));
    }
}

fn write_json(rows: &[SummaryRow], path: &Path) {
    // Whole or not at all, for a reader polling the file.
    let written = serde_json::to_vec_pretty(rows)
        .map_err(std::io::Error::other)
        .and_then(|json| wasmacro_host::write_atomically(path, &[&json]));
    if let Err(e) = written {
        crate::status::warn(&format!(
            "could not write the summary to {} (`{JSON_ENV}`): {e}",
            path.display()
        ));
    }
}

/// A reason cut to fit a table column; the full text is in the warning cargo
/// printed when the unit compiled, and in the JSON.
fn shorten(why: &str) -> String {
    const WIDTH: usize = 64;
    if why.chars().count() <= WIDTH {
        why.to_string()
    } else {
        let cut: String = why.chars().take(WIDTH - 1).collect();
        format!("{cut}…")
    }
}

/// The table, cargo-style: a right-aligned `wasmacro` heading column, then
/// the crate, where it runs, why (a column only where some row has a
/// reason), expansions, how many of them the expansion cache answered, and
/// time.
fn table(rows: &[SummaryRow]) -> String {
    let why_of = |row: &SummaryRow| {
        let why = row.why.as_deref().map(shorten).unwrap_or_default();
        if row.fresh {
            format!("{why} (fresh)").trim_start().to_string()
        } else {
            why
        }
    };
    let width = |header: &str, cell: &dyn Fn(&SummaryRow) -> String| {
        rows.iter()
            .map(|r| cell(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(header.len())
    };
    let name_of = |row: &SummaryRow| match row.kind {
        UnitKind::BuildScript => format!("{} (build script)", row.krate),
        UnitKind::ProcMacro => row.krate.clone(),
    };
    let crate_width = width("crate", &name_of);
    let show_why = rows.iter().any(|r| r.why.is_some() || r.fresh);
    let why_width = width("why", &why_of);
    let line = |lead: &str,
                name: &str,
                runs: &str,
                why: &str,
                expansions: &str,
                cached: &str,
                time: &str| {
        let why = if show_why {
            format!("  {why:<why_width$}")
        } else {
            String::new()
        };
        format!(
            "{lead:>12} {name:<crate_width$}  {runs:<6}{why}  {expansions:>10}  {cached:>6}  \
             {time:>10}\n"
        )
    };
    let mut out = line(
        "wasmacro",
        "crate",
        "runs",
        "why",
        "expansions",
        "cached",
        "time",
    );
    for row in rows {
        let (expansions, cached, time) = if row.runs == "wasm" && row.kind == UnitKind::ProcMacro {
            (
                if row.failures > 0 {
                    format!("{} ({} failed)", row.expansions, row.failures)
                } else {
                    row.expansions.to_string()
                },
                row.hits.to_string(),
                format!("{:.1} ms", row.micros as f64 / 1000.0),
            )
        } else {
            ("-".into(), "-".into(), "-".into())
        };
        out.push_str(&line(
            "",
            &name_of(row),
            row.runs,
            &why_of(row),
            &expansions,
            &cached,
            &time,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(krate: &str, runs: &'static str, why: Option<&str>) -> SummaryRow {
        SummaryRow {
            krate: krate.into(),
            kind: UnitKind::ProcMacro,
            runs,
            why: why.map(Into::into),
            fresh: false,
            expansions: 3,
            hits: 2,
            failures: 1,
            micros: 2500,
        }
    }

    #[test]
    fn the_table_has_a_why_column_only_when_a_row_has_a_reason() {
        let with = table(&[
            row("serde_derive v1.0.0", "wasm", Some("policy: all")),
            row(
                "other v0.1.0",
                "native",
                Some("denied by the project's policy"),
            ),
        ]);
        assert_eq!(
            with.lines()
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            [
                "wasmacro",
                "crate",
                "runs",
                "why",
                "expansions",
                "cached",
                "time"
            ]
        );
        assert!(
            with.contains("3 (1 failed)") && with.contains("2.5 ms"),
            "{with}"
        );
        let without = table(&[row("serde_derive", "wasm", None)]);
        assert!(!without.contains("why"), "{without}");
    }
}
