//! The shim's side of grants: what the project's policy lets a macro read is
//! compiled into its shim relative to named roots; here, inside rustc, the
//! roots and variables are looked up in the crate's environment, and what an
//! expansion read is written where the rustc wrapper adds it to the crate's
//! dep-info.

use std::io::Write as _;
use wasmacro_protocol::{
    self as protocol, Grants, INPUTS_ENV, Input, ROOTS, env_matches, normalize,
};

/// What a macro may read, as its shim declares it.
pub struct GrantSpec<'a> {
    /// The macro's package, as policies name it.
    pub package: &'a str,
    /// Readable paths: the root (`$CARGO_MANIFEST_DIR`), the path below it
    /// (`/`-separated, empty for the root itself) and who granted it.
    pub read: &'a [(&'a str, &'a str, &'a str)],
    /// Variable names, or prefixes ending in `*`.
    pub env: &'a [&'a str],
}

/// The grants of `spec` in this compilation: the roots its environment
/// names, and the values of the granted variables that are set.
pub fn resolve(spec: &GrantSpec<'_>) -> Grants {
    let mut roots = Vec::new();
    for (name, variable) in ROOTS {
        let Some(path) = std::env::var_os(variable).and_then(|v| v.into_string().ok()) else {
            continue;
        };
        if let Some(path) = normalize(&path).filter(|p| p.starts_with('/')) {
            roots.push(protocol::Root {
                name: name.to_string(),
                path,
            });
        }
    }
    let read = spec
        .read
        .iter()
        .filter_map(|(root, relative, origin)| {
            let index = roots.iter().position(|r| r.name == *root)?;
            Some(protocol::ReadGrant {
                root: u32::try_from(index).ok()?,
                relative: normalize(relative)?,
                origin: origin.to_string(),
            })
        })
        .collect();
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| spec.env.iter().any(|pattern| env_matches(pattern, name)))
        .collect();
    env.sort();
    Grants {
        package: spec.package.to_string(),
        roots,
        read,
        env,
        env_patterns: spec.env.iter().map(|p| p.to_string()).collect(),
    }
}

/// Appends what an expansion read to the wrapper's inputs file, one line
/// each: `path PATH` for a file or directory, `env NAME=VALUE` for a
/// variable (`\`, newline and carriage return escaped as rustc escapes them
/// in dep-info), `env NAME` for a granted one that is not set. Missing paths are left out: a dependency that does not
/// exist would make cargo rebuild every time.
pub fn record(grants: &Grants, inputs: &[Input]) {
    let Some(file) = std::env::var_os(INPUTS_ENV) else {
        return;
    };
    let mut text = String::new();
    for input in inputs {
        match input {
            Input::File { path, .. } | Input::Directory { path, .. } => {
                if let Some(path) = grants.path_of(path).filter(|p| !p.contains('\n')) {
                    text.push_str(&format!("path {path}\n"));
                }
            }
            // The value as this process has it: the server names paths
            // from their roots.
            Input::Env {
                name,
                value: Some(_),
            } => {
                let Some((_, value)) = grants.env.iter().find(|(n, _)| n == name) else {
                    continue;
                };
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('\n', "\\n")
                    .replace('\r', "\\r");
                text.push_str(&format!("env {name}={escaped}\n"));
            }
            // As rustc writes `option_env!` of an unset variable.
            Input::Env { name, value: None } => text.push_str(&format!("env {name}\n")),
            Input::Missing { .. } => {}
        }
    }
    if text.is_empty() {
        return;
    }
    // One appending write per expansion: lines of concurrent shims in one
    // rustc do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "warning: wasmacro could not record what a macro read in {}: {e}; cargo may not \
             rebuild when those files change",
            std::path::Path::new(&file).display()
        );
    }
}
