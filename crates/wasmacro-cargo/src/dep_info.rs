//! What wasm macros read, added to the dep-info rustc writes, so cargo
//! rebuilds a crate when a template, grammar, embedded file or granted
//! variable its macros read changes — as it does for `include_str!` and
//! `env!`, and as native proc macros on stable cannot ask for.
//!
//! Shims append one line per input to the file `WASMACRO_INPUTS` names
//! (`path PATH`, `env NAME=VALUE`); after rustc exits, the wrapper adds them
//! to the `.d` file in rustc's own syntax. cargo reads that file only once
//! the wrapper has exited.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The dep-info file a rustc command line writes, if it writes one.
pub fn dep_info_path(args: &[OsString]) -> Option<PathBuf> {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let value = |flag: &str| -> Option<&str> {
        let prefix = format!("{flag}=");
        args.windows(2)
            .find(|w| w[0] == flag)
            .map(|w| w[1])
            .or_else(|| args.iter().find_map(|a| a.strip_prefix(prefix.as_str())))
    };
    let emit = value("--emit")?;
    let kind = emit
        .split(',')
        .find(|kind| *kind == "dep-info" || kind.starts_with("dep-info="))?;
    if let Some(path) = kind.strip_prefix("dep-info=") {
        return Some(PathBuf::from(path));
    }
    let crate_name = value("--crate-name")?;
    let out_dir = value("--out-dir").unwrap_or(".");
    let extra = args
        .windows(2)
        .filter(|w| w[0] == "-C")
        .find_map(|w| w[1].strip_prefix("extra-filename="))
        .unwrap_or("");
    Some(Path::new(out_dir).join(format!("{crate_name}{extra}.d")))
}

/// Adds the inputs recorded in `inputs` to the dep-info file `dep_info`:
/// each path as a dependency of every target (cargo reads the first rule)
/// with an empty rule of its own, each variable as an `# env-dep:` line.
pub fn add_inputs(dep_info: &Path, inputs: &Path) -> std::io::Result<()> {
    let recorded = match std::fs::read_to_string(inputs) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut paths = BTreeSet::new();
    let mut variables = BTreeSet::new();
    for line in recorded.lines() {
        if let Some(path) = line.strip_prefix("path ") {
            paths.insert(path.to_string());
        } else if let Some(variable) = line.strip_prefix("env ") {
            variables.insert(variable.to_string());
        }
    }
    if paths.is_empty() && variables.is_empty() {
        return Ok(());
    }
    let text = std::fs::read_to_string(dep_info)?;
    let escaped: Vec<String> = paths.iter().map(|p| escape(p)).collect();
    let mut out = String::with_capacity(text.len() + recorded.len() * 2);
    for line in text.lines() {
        out.push_str(line);
        if !line.starts_with('#') && line.contains(": ") {
            for path in &escaped {
                out.push(' ');
                out.push_str(path);
            }
        }
        out.push('\n');
    }
    for path in &escaped {
        out.push_str(&format!("\n{path}:\n"));
    }
    for variable in &variables {
        out.push_str(&format!("# env-dep:{variable}\n"));
    }
    std::fs::write(dep_info, out)
}

/// A path as make (and cargo's dep-info parser) reads it: spaces escaped.
fn escape(path: &str) -> String {
    path.replace(' ', "\\ ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_dep_info_cargo_asks_for() {
        let args: Vec<OsString> = [
            "--crate-name",
            "app",
            "--emit=dep-info,metadata,link",
            "-C",
            "extra-filename=-0123",
            "--out-dir",
            "/t/deps",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            dep_info_path(&args),
            Some(PathBuf::from("/t/deps/app-0123.d"))
        );
        let args: Vec<OsString> = ["--emit=link,dep-info=/x/y.d"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(dep_info_path(&args), Some(PathBuf::from("/x/y.d")));
        let args: Vec<OsString> = ["--emit=link"].iter().map(OsString::from).collect();
        assert_eq!(dep_info_path(&args), None);
    }

    #[test]
    fn inputs_join_every_target_and_get_rules_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("app.d");
        std::fs::write(
            &d,
            "/t/libapp.rmeta: src/lib.rs\n\n/t/app.d: src/lib.rs\n\nsrc/lib.rs:\n\n# env-dep:X=1\n",
        )
        .unwrap();
        let inputs = dir.path().join("inputs");
        std::fs::write(
            &inputs,
            "path /p/a b.html\nenv GREETING=hi\\nthere\npath /p/a b.html\nenv UNSET\n",
        )
        .unwrap();
        add_inputs(&d, &inputs).unwrap();
        assert_eq!(
            std::fs::read_to_string(&d).unwrap(),
            "/t/libapp.rmeta: src/lib.rs /p/a\\ b.html\n\n/t/app.d: src/lib.rs /p/a\\ b.html\n\n\
             src/lib.rs:\n\n# env-dep:X=1\n\n/p/a\\ b.html:\n# env-dep:GREETING=hi\\nthere\n\
             # env-dep:UNSET\n"
        );
    }
}
