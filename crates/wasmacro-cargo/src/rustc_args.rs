//! Reading the rustc arguments cargo passes for a unit: the flags the
//! wrapper decides by (crate type, what is emitted, features, output names).

use std::ffi::OsString;

/// One rustc command line, as text (a unit with a non-UTF-8 argument is
/// never one the wrapper takes over).
pub(crate) struct RustcArgs<'a>(Vec<&'a str>);

impl<'a> RustcArgs<'a> {
    /// The arguments (without rustc), if all are UTF-8.
    pub(crate) fn parse(args: &'a [OsString]) -> Option<RustcArgs<'a>> {
        args.iter()
            .map(|a| a.to_str())
            .collect::<Option<_>>()
            .map(RustcArgs)
    }

    /// The value after `flag` (`--crate-type bin`).
    pub(crate) fn value(&self, flag: &str) -> Option<&'a str> {
        self.0.windows(2).find(|w| w[0] == flag).map(|w| w[1])
    }

    /// Whether the unit links an artifact (not a check, not a test harness).
    pub(crate) fn links(&self) -> bool {
        let emit = self
            .0
            .iter()
            .find_map(|a| a.strip_prefix("--emit="))
            .unwrap_or("link");
        emit.split(',').any(|e| e == "link") && !self.0.contains(&"--test")
    }

    /// The value of `-C KEY…` (`key` with its `=`).
    pub(crate) fn codegen(&self, key: &str) -> Option<&'a str> {
        self.0
            .windows(2)
            .filter(|w| w[0] == "-C")
            .find_map(|w| w[1].strip_prefix(key))
    }

    /// `-C extra-filename=…`, or empty.
    pub(crate) fn extra_filename(&self) -> &'a str {
        self.codegen("extra-filename=").unwrap_or("")
    }

    /// The features cargo turned on (`--cfg feature="…"`): the complete
    /// resolved set.
    pub(crate) fn features(&self) -> Vec<String> {
        self.0
            .windows(2)
            .filter(|w| w[0] == "--cfg")
            .filter_map(|w| w[1].strip_prefix("feature=\"")?.strip_suffix('"'))
            .map(str::to_string)
            .collect()
    }

    /// The crate names of the `--extern`s.
    pub(crate) fn externs(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match *a {
                "--extern" => self.0.get(i + 1).copied(),
                _ => a.strip_prefix("--extern="),
            })
            .map(|value| value.split_once('=').map_or(value, |(name, _)| name))
            .map(|name| name.rsplit(':').next().unwrap_or(name))
    }
}
