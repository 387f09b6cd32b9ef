//! The rustc wrapper cargo would have run without wasmacro (sccache, …).
//! `cargo wasmacro` takes cargo's `RUSTC_WRAPPER` slot; rather than replace
//! what was there, it names it in [`ENV`] and the wrapper runs each rustc
//! through it. With the permanent opt-in (`rustc-wrapper = "wasmacro"` in
//! `.cargo/config.toml`) the project names it in `[env]`.
//!
//! A build cache keys a compilation by its sources, arguments, `CARGO_*`
//! variables and the libraries named by `--extern`, shims included; it does
//! not see the files and variables a macro read through its grants. A
//! compilation that loads such a macro therefore runs rustc directly: a cache
//! hit there could be stale. "Loads" is transitive: a facade crate (askama,
//! serde with `derive`) re-exports its derive, and rustc finds the macro by
//! `-L` search, which no cache keys; so each library built while loading such
//! a macro is marked, and so is everything built against a marked library.

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

/// Runs `rustc` through the next wrapper when there is one and the
/// compilation may go through a build cache (`bypass`: [`must_bypass`] of
/// its arguments), else directly.
pub fn command(rustc: &Path, bypass: bool) -> std::process::Command {
    match from_env() {
        Some(wrapper) if !bypass => {
            let mut command = std::process::Command::new(wrapper);
            command.arg(rustc);
            // A wrapper that is wasmacro under another name must not come
            // back here.
            command.env_remove(ENV);
            command
        }
        _ => std::process::Command::new(rustc),
    }
}

/// The wrapper cargo would run in `cwd`: `[ENV]` if already set, else
/// `RUSTC_WRAPPER`, `CARGO_BUILD_RUSTC_WRAPPER`, or `build.rustc-wrapper` from
/// cargo's configuration files (the nearest to `cwd` first, then
/// `$CARGO_HOME`), as cargo reads them: a variable set to nothing means no
/// wrapper, a relative path with a slash is relative to `cwd` (a variable)
/// or to the directory holding `.cargo` (a file). wasmacro itself is never
/// its own next wrapper.
pub fn configured(cwd: &Path) -> Option<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name).map(|value| {
            let path = PathBuf::from(&value);
            let relative = path.is_relative() && path.components().count() > 1;
            (!value.is_empty()).then(|| if relative { cwd.join(path) } else { path })
        })
    };
    let wrapper = match from_env(ENV)
        .or_else(|| from_env("RUSTC_WRAPPER"))
        .or_else(|| from_env("CARGO_BUILD_RUSTC_WRAPPER"))
    {
        Some(set) => set?,
        None => from_config_files(cwd)?,
    };
    (!is_wasmacro(&wrapper)).then_some(wrapper)
}

/// The extension of the file beside a library saying that it was built
/// while a macro with read grants was loaded (see the module's comment).
const UNTRACKED: &str = "wasmacro-untracked";

/// Whether a compilation must run rustc directly: one of its `--extern`s is a
/// shim of a macro with read grants, or a library marked as built with one.
/// Arguments it cannot read (not UTF-8, an `@file`) count as such.
pub fn must_bypass(args: &[std::ffi::OsString]) -> bool {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str() else {
            return true;
        };
        let value = if arg == "--extern" {
            match args.next().map(|v| v.to_str()) {
                Some(Some(value)) => value,
                Some(None) => return true,
                None => break,
            }
        } else if let Some(value) = arg.strip_prefix("--extern=") {
            value
        } else if arg.starts_with('@') {
            return true;
        } else {
            continue;
        };
        if let Some((_, path)) = value.split_once('=')
            && marker(Path::new(path)).exists()
        {
            return true;
        }
    }
    false
}

/// Marks the library a compilation with `args` writes (`--out-dir`,
/// `--crate-name`, `-C extra-filename`) when `untracked`, and unmarks it
/// otherwise. Done before rustc starts: cargo starts dependents as soon as
/// the metadata is out.
pub fn mark_output(args: &[std::ffi::OsString], untracked: bool) -> std::io::Result<()> {
    let value = |flag: &str| {
        args.iter()
            .zip(args.iter().skip(1))
            .find_map(|(a, v)| (a == flag).then(|| v.to_str()).flatten())
            .or_else(|| {
                let prefix = format!("{flag}=");
                args.iter()
                    .find_map(|a| a.to_str()?.strip_prefix(prefix.as_str()))
            })
    };
    let extra = args
        .iter()
        .filter_map(|a| a.to_str())
        .find_map(|a| a.strip_prefix("extra-filename="))
        .unwrap_or("");
    let (Some(out_dir), Some(name)) = (value("--out-dir"), value("--crate-name")) else {
        return Ok(());
    };
    mark(
        &Path::new(out_dir).join(format!("lib{name}{extra}.rlib")),
        untracked,
    )
}

/// Marks or unmarks `library` (a shim, an rlib).
pub fn mark(library: &Path, untracked: bool) -> std::io::Result<()> {
    let marker = marker(library);
    if untracked {
        std::fs::write(marker, b"")
    } else {
        match std::fs::remove_file(marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn marker(library: &Path) -> PathBuf {
    library.with_extension(UNTRACKED)
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
    // cargo reads `config` when both it and `config.toml` exist.
    project.chain(home).find_map(|(dot_cargo, base)| {
        ["config", "config.toml"].iter().find_map(|name| {
            let text = std::fs::read_to_string(dot_cargo.join(name)).ok()?;
            rustc_wrapper_in(&text, &base)
        })
    })?
}

/// The `build.rustc-wrapper` of one configuration file, resolved as cargo
/// resolves a program path: a relative path with a slash from `base` (the
/// directory holding `.cargo`), a bare name from `PATH`. `Some(None)`: the
/// file sets it to nothing (no wrapper, whatever files further out say).
fn rustc_wrapper_in(text: &str, base: &Path) -> Option<Option<PathBuf>> {
    let document: toml_edit::DocumentMut = text.parse().ok()?;
    let value = document.get("build")?.get("rustc-wrapper")?;
    let Some(value) = value.as_str() else {
        tracing::warn!("`build.rustc-wrapper` is not a string; cargo will refuse it");
        return None;
    };
    if value.is_empty() {
        return Some(None);
    }
    let path = Path::new(value);
    Some(Some(
        if path.is_relative() && path.components().count() > 1 {
            base.join(path)
        } else {
            path.to_path_buf()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::{is_wasmacro, mark, must_bypass, rustc_wrapper_in};
    use std::ffi::OsString;
    use std::path::Path;

    #[test]
    fn a_marked_library_or_unreadable_arguments_bypass_the_next_wrapper() {
        let dir = tempfile::tempdir().unwrap();
        let facade = dir.path().join("libfacade-1.rlib");
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let extern_facade = format!("facade={}", facade.display());
        let joined = format!("--extern={extern_facade}");
        assert!(!must_bypass(&args(&["--extern", &extern_facade])));
        mark(&facade, true).unwrap();
        assert!(must_bypass(&args(&["--extern", &extern_facade])));
        assert!(must_bypass(&args(&["-O", &joined])));
        mark(&facade, false).unwrap();
        mark(&facade, false).unwrap();
        assert!(!must_bypass(&args(&[&joined, "--extern"])));
        assert!(must_bypass(&args(&["@args.txt"])));
    }

    #[test]
    fn a_configured_wrapper_is_resolved_as_cargo_resolves_it() {
        let base = Path::new("/project");
        let read = |text: &str| rustc_wrapper_in(text, base);
        assert_eq!(
            read("[build]\nrustc-wrapper = \"sccache\""),
            Some(Some("sccache".into()))
        );
        assert_eq!(
            read("[build]\nrustc-wrapper = \"tools/cache\""),
            Some(Some("/project/tools/cache".into()))
        );
        assert_eq!(
            read("build.rustc-wrapper = \"/usr/bin/sccache\""),
            Some(Some("/usr/bin/sccache".into()))
        );
        assert_eq!(read("[build]\nrustc-wrapper = \"\""), Some(None));
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
