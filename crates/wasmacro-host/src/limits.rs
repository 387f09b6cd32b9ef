//! The limits every expansion runs under, and their text form.
//!
//! Fuel is the limit that matters: it counts wasm instructions, so a macro
//! that exceeds it fails the same way on every machine. The wall-clock
//! timeout is only a backstop for the case fuel cannot see (a host call that
//! blocks); the default fuel runs out long before it on any machine that can
//! build Rust.
//!
//! The text form is what `WASMACRO_LIMITS` holds and what `cargo wasmacro`
//! passes down from `[workspace.metadata.wasmacro.limits]`:
//! `fuel=4000000000,memory=1GiB,stack=1MiB,timeout=120s,output=64MiB`.

use crate::instance::GuestKind;
use std::fmt;
use std::time::Duration;

/// The largest `output` limit: what fits in a protocol frame with room for
/// the guest's printed output.
const MAX_OUTPUT: u64 = 192 << 20;

/// Per-expansion limits. Every field has a default generous enough for real
/// macros (serde_derive on a 500-field struct uses a small fraction of each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) one expansion may use.
    pub fuel: u64,
    /// The most linear memory one instance may grow to, in bytes.
    pub memory: u64,
    /// The deepest wasm stack, in bytes.
    pub stack: u64,
    /// Wall-clock backstop for one expansion.
    pub timeout: Duration,
    /// The most one expansion may return, in bytes of encoded tokens.
    pub output: u64,
}

impl Limits {
    /// The environment variable holding limits in their text form.
    pub const ENV: &'static str = "WASMACRO_LIMITS";

    /// Sets one limit from its text (`fuel=2e9`, `memory=256MiB`,
    /// `timeout=30s`; plain integers are counts, bytes and seconds).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), LimitError> {
        let bad = |expected: &'static str| LimitError::Value {
            key: key.to_string(),
            value: value.to_string(),
            expected,
        };
        match key {
            "fuel" => self.fuel = parse_count(value).ok_or_else(|| bad("a count, e.g. 4e9"))?,
            "memory" | "stack" | "output" => {
                let bytes = parse_bytes(value).ok_or_else(|| bad("a size, e.g. 512MiB"))?;
                match key {
                    "memory" => self.memory = bytes,
                    "stack" => self.stack = bytes,
                    _ => self.output = bytes,
                }
            }
            "timeout" => {
                self.timeout = parse_duration(value).ok_or_else(|| bad("a duration, e.g. 60s"))?
            }
            _ => return Err(LimitError::Key(key.to_string())),
        }
        self.check(key)
    }

    /// Limits from the text form, on top of the defaults.
    pub fn parse(text: &str) -> Result<Limits, LimitError> {
        let mut limits = Limits::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(LimitError::Pair(pair.to_string()));
            };
            limits.set(key.trim(), value.trim())?;
        }
        Ok(limits)
    }

    /// Limits from `WASMACRO_LIMITS`, or the defaults when it is unset.
    pub fn from_env() -> Result<Limits, LimitError> {
        match std::env::var(Self::ENV) {
            Ok(text) => Limits::parse(&text),
            Err(_) => Ok(Limits::default()),
        }
    }

    fn check(&self, key: &str) -> Result<(), LimitError> {
        let fail = |why: &'static str| {
            Err(LimitError::Range {
                key: key.to_string(),
                why,
            })
        };
        match key {
            "fuel" if self.fuel == 0 => fail("must be more than 0"),
            // A wasm page is 64 KiB; a Rust guest needs a few pages to start.
            "memory" if self.memory < 1 << 20 => fail("must be at least 1MiB"),
            // Guests run on the calling thread's native stack (8 MiB for a
            // main thread), which must also hold the host's frames: past a
            // few MiB, deep recursion would hit the native guard page instead
            // of trapping.
            "stack" if !(64 << 10..=4 << 20).contains(&self.stack) => {
                fail("must be between 64KiB and 4MiB")
            }
            "timeout" if self.timeout < Duration::from_millis(100) => {
                fail("must be at least 100ms")
            }
            "timeout" if self.timeout > Duration::from_secs(86_400) => {
                fail("must be at most a day")
            }
            // The protocol's frames are at most 256 MiB, printed output included.
            "output" if !(1..=MAX_OUTPUT).contains(&self.output) => {
                fail("must be between 1B and 192MiB")
            }
            _ => Ok(()),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // serde_derive on a 500-field struct uses about 1% of this; an
            // endless loop spends it in seconds (`hostile` test suite).
            fuel: 10_000_000_000,
            memory: 1 << 30,
            stack: 1 << 20,
            timeout: Duration::from_secs(120),
            output: 64 << 20,
        }
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fuel={},memory={},stack={},timeout={},output={}",
            self.fuel,
            Size(self.memory),
            Size(self.stack),
            Seconds(self.timeout),
            Size(self.output)
        )
    }
}

/// The hint every limit error ends with: `; if the macro needs more, raise
/// `KEY` in …`.
pub(crate) fn raise_hint(key: &str, guest: GuestKind) -> String {
    let what = match guest {
        GuestKind::Macro => "macro",
        GuestKind::BuildScript => "build script",
    };
    format!("; if the {what} needs more, raise `{key}` in `[workspace.metadata.wasmacro.limits]`")
}

/// A byte count written as cargo writes sizes (`1GiB`, `512KiB`, `100B`).
#[derive(Copy, Clone, Debug)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// A byte count rounded for people (`117.3 MiB`, `2.0 KiB`, `12 B`).
#[derive(Copy, Clone, Debug)]
pub struct ApproxSize(pub u64);

impl fmt::Display for ApproxSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = [("GiB", 30), ("MiB", 20), ("KiB", 10)]
            .iter()
            .find(|(_, shift)| self.0 >= 1 << shift)
            .map(|(unit, shift)| format!("{:.1} {unit}", self.0 as f64 / (1u64 << shift) as f64))
            .unwrap_or_else(|| format!("{} B", self.0));
        // `pad`, so that widths in tables apply.
        f.pad(&text)
    }
}

struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_millis() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}ms", self.0.as_millis())
        }
    }
}

/// A limit could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    /// Not the name of a limit.
    #[error("unknown limit `{0}` (the limits are fuel, memory, stack, timeout and output)")]
    Key(String),
    /// Not `key=value`.
    #[error("`{0}` is not `limit=value`")]
    Pair(String),
    /// The value does not parse.
    #[error("limit `{key}`: `{value}` is not {expected}")]
    Value {
        /// The limit.
        key: String,
        /// What was given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The value parses but cannot work.
    #[error("limit `{key}` {why}")]
    Range {
        /// The limit.
        key: String,
        /// Why not.
        why: &'static str,
    },
}

/// `4000000000`, `4_000_000_000` or `4e9`.
fn parse_count(text: &str) -> Option<u64> {
    let text = text.replace('_', "");
    if let Some((mantissa, exponent)) = text.split_once(['e', 'E']) {
        let mantissa: u64 = mantissa.parse().ok()?;
        let exponent: u32 = exponent.parse().ok()?;
        return mantissa.checked_mul(10u64.checked_pow(exponent)?);
    }
    text.parse().ok()
}

/// `1048576`, `1024KiB`, `1 MiB`, `1GiB`, `512B` (also `KB`/`MB`/`GB`, taken
/// as binary units as cargo does).
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number = parse_count(number)?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

/// `60`, `60s`, `1500ms`, `2m`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(number)),
        "ms" => Some(Duration::from_millis(number)),
        "m" | "min" => Some(Duration::from_secs(number.checked_mul(60)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips() {
        let limits = Limits::parse("fuel=2e9, memory=256MiB,stack=2MiB,timeout=1500ms,output=1KiB")
            .expect("valid limits");
        assert_eq!(limits.fuel, 2_000_000_000);
        assert_eq!(limits.memory, 256 << 20);
        assert_eq!(limits.stack, 2 << 20);
        assert_eq!(limits.timeout, Duration::from_millis(1500));
        assert_eq!(limits.output, 1024);
        assert_eq!(Limits::parse(&limits.to_string()), Ok(limits));
        assert_eq!(Limits::parse(""), Ok(Limits::default()));
        assert_eq!(
            Limits::parse(&Limits::default().to_string()),
            Ok(Limits::default())
        );
    }

    #[test]
    fn bad_limits_say_what_is_wrong() {
        let error = |text: &str| Limits::parse(text).unwrap_err().to_string();
        assert_eq!(
            error("fuels=1"),
            "unknown limit `fuels` (the limits are fuel, memory, stack, timeout and output)"
        );
        assert_eq!(
            error("memory=lots"),
            "limit `memory`: `lots` is not a size, e.g. 512MiB"
        );
        assert_eq!(error("fuel"), "`fuel` is not `limit=value`");
        assert_eq!(
            error("stack=1GiB"),
            "limit `stack` must be between 64KiB and 4MiB"
        );
        assert_eq!(
            error("timeout=99999999"),
            "limit `timeout` must be at most a day"
        );
        assert_eq!(
            error("output=1GiB"),
            "limit `output` must be between 1B and 192MiB"
        );
        assert_eq!(error("fuel=0"), "limit `fuel` must be more than 0");
        assert_eq!(
            error("fuel=99e99"),
            "limit `fuel`: `99e99` is not a count, e.g. 4e9"
        );
    }
}
