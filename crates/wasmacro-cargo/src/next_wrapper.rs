//! The rustc wrapper cargo would have run without wasmacro (sccache, …).
//! `cargo wasmacro` takes cargo's `RUSTC_WRAPPER` slot; rather than replace
//! what was there, it names it in [`ENV`] and the wrapper runs each rustc
//! through it. With the permanent opt-in (`rustc-wrapper = "wasmacro"` in
//! `.cargo/config.toml`) the project names it in `[env]`.
//!
//! A build cache keys a compilation by its sources, arguments, `CARGO_*`
//! variables and the libraries it links, shims included; it does not see the
//! files and variables a macro read through its grants. A compilation that
//! loads such a macro therefore runs rustc directly: a cache hit there could
//! be stale.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Names the wrapper each rustc runs through.
pub const ENV: &str = "WASMACRO_RUSTC_WRAPPER";

/// The wrapper named in [`ENV`], if any.
pub fn from_env() -> Option<PathBuf> {
    std::env::var_os(ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .filter(|wrapper| !is_wasmacro(wrapper))
}

/// The wrapper cargo would run in `cwd`: `[ENV]` if already set, else
/// `RUSTC_WRAPPER`, `CARGO_BUILD_RUSTC_WRAPPER`, or `build.rustc-wrapper` from
/// cargo's configuration files (the nearest to `cwd` first, then
/// `$CARGO_HOME`), as cargo reads them. wasmacro itself is never its own next
/// wrapper.
pub fn configured(cwd: &Path) -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let wrapper = from_env(ENV)
        .or_else(|| from_env("RUSTC_WRAPPER"))
        .or_else(|| from_env("CARGO_BUILD_RUSTC_WRAPPER"))
        .map(PathBuf::from)
        .or_else(|| from_config_files(cwd))?;
    (!is_wasmacro(&wrapper)).then_some(wrapper)
}

fn is_wasmacro(program: &Path) -> bool {
    program
        .file_stem()
        .and_then(OsStr::to_str)
        .is_some_and(|stem| stem == "wasmacro" || stem == "cargo-wasmacro")
}

/// `build.rustc-wrapper` from the configuration files cargo reads in `cwd`.
fn from_config_files(cwd: &Path) -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let project = cwd
        .ancestors()
        .map(|dir| (dir.join(".cargo"), dir.to_path_buf()));
    let home = cargo_home.map(|home| {
        let parent = home.parent().map(Path::to_path_buf).unwrap_or_default();
        (home, parent)
    });
    project.chain(home).find_map(|(dot_cargo, base)| {
        ["config.toml", "config"].iter().find_map(|name| {
            let text = std::fs::read_to_string(dot_cargo.join(name)).ok()?;
            rustc_wrapper_in(&text, &base)
        })
    })
}

/// The `build.rustc-wrapper` of one configuration file, resolved as cargo
/// resolves a program path: a relative path with a slash from `base` (the
/// directory holding `.cargo`), a bare name from `PATH`. An empty value
/// means no wrapper.
fn rustc_wrapper_in(text: &str, base: &Path) -> Option<PathBuf> {
    let document: toml_edit::DocumentMut = text.parse().ok()?;
    let value = document.get("build")?.get("rustc-wrapper")?.as_str()?;
    if value.is_empty() {
        return None;
    }
    let path = Path::new(value);
    Some(if path.is_relative() && value.contains('/') {
        base.join(path)
    } else {
        path.to_path_buf()
    })
}

#[cfg(test)]
mod tests {
    use super::{is_wasmacro, rustc_wrapper_in};
    use std::path::Path;

    #[test]
    fn a_configured_wrapper_is_resolved_as_cargo_resolves_it() {
        let base = Path::new("/project");
        let read = |text: &str| rustc_wrapper_in(text, base);
        assert_eq!(
            read("[build]\nrustc-wrapper = \"sccache\""),
            Some("sccache".into())
        );
        assert_eq!(
            read("[build]\nrustc-wrapper = \"tools/cache\""),
            Some("/project/tools/cache".into())
        );
        assert_eq!(
            read("build.rustc-wrapper = \"/usr/bin/sccache\""),
            Some("/usr/bin/sccache".into())
        );
        assert_eq!(read("[build]\nrustc-wrapper = \"\""), None);
        assert_eq!(read("[build]\njobs = 2"), None);
        assert_eq!(read("not toml ["), None);
    }

    #[test]
    fn wasmacro_is_not_its_own_next_wrapper() {
        assert!(is_wasmacro(Path::new("/home/u/.cargo/bin/wasmacro")));
        assert!(is_wasmacro(Path::new("wasmacro")));
        assert!(!is_wasmacro(Path::new("sccache")));
    }
}
