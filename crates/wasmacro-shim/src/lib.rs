//! Delivery into stable rustc: rustc only loads native proc-macro dylibs, so
//! for each component this crate generates a tiny proc-macro crate declaring
//! the same macros, each forwarding to the wasmacro runtime through
//! `wasmacro-client`, and compiles it with the consumer's own rustc.
//!
//! Shims are cached by (component, rustc version, client sources): building
//! one takes three rustc invocations, once per machine.
//!
//! It must never: put anything but the component's hash, declarations and
//! grants in a shim (no absolute paths: grants name paths from roots, and the
//! runtime and the roots are found through the environment at expansion
//! time), or leave a half-written shim where a concurrent build could load it.

#![warn(missing_docs)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use wasmacro_protocol::{MacroDecl, MacroKind};

/// The sources compiled into every shim, embedded so an installed `wasmacro`
/// needs no source checkout.
/// Every embedded source, by its path in a shim's build directory.
const SOURCES: [(&str, &str); 9] = [
    (
        "protocol/lib.rs",
        include_str!("../../wasmacro-protocol/src/lib.rs"),
    ),
    (
        "protocol/codec.rs",
        include_str!("../../wasmacro-protocol/src/codec.rs"),
    ),
    (
        "protocol/flat.rs",
        include_str!("../../wasmacro-protocol/src/flat.rs"),
    ),
    (
        "protocol/grants.rs",
        include_str!("../../wasmacro-protocol/src/grants.rs"),
    ),
    (
        "protocol/runtime_abi.rs",
        include_str!("../../wasmacro-protocol/src/runtime_abi.rs"),
    ),
    (
        "client/lib.rs",
        include_str!("../../wasmacro-client/src/lib.rs"),
    ),
    (
        "client/call_site_text.rs",
        include_str!("../../wasmacro-client/src/call_site_text.rs"),
    ),
    (
        "client/grants.rs",
        include_str!("../../wasmacro-client/src/grants.rs"),
    ),
    (
        "client/in_process.rs",
        include_str!("../../wasmacro-client/src/in_process.rs"),
    ),
];

/// A digest of the sources compiled into every shim: what changes when a new
/// wasmacro makes different shims.
pub fn embedded_sources_digest() -> String {
    let mut hasher = blake3::Hasher::new();
    for (_, text) in SOURCES {
        hasher.update(&(text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.finalize().to_hex()[..16].to_string()
}

/// Why a shim could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A declaration's name cannot be a Rust identifier.
    #[error("the component declares a macro named `{0}`, which is not a valid identifier")]
    InvalidName(String),
    /// rustc failed on the generated code.
    #[error("rustc failed to compile the shim for `{crate_name}` ({step}):\n{stderr}")]
    Compile {
        /// The macro crate.
        crate_name: String,
        /// Which of the three crates.
        step: &'static str,
        /// rustc's diagnostics.
        stderr: String,
    },
    /// rustc could not be run or files could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// What a shim declares.
pub struct ShimSpec<'a> {
    /// The macro crate's name; also the shim crate's name.
    pub crate_name: &'a str,
    /// The component's hash.
    pub component: &'a str,
    /// The component's macros.
    pub macros: &'a [MacroDecl],
    /// The macro crate's edition (`2015` … `2024`): rustc gives expansions
    /// the edition of the crate defining the macro, which is the shim.
    pub edition: &'a str,
    /// What the macro may read.
    pub grants: &'a ShimGrants,
    /// Whether the policy declares the macro crate stateless: a fresh
    /// instance per expansion, and expansions cached one by one.
    pub stateless: bool,
}

/// What a macro may read, as the project's policy grants it: paths relative
/// to named roots (`$CARGO_MANIFEST_DIR`), never absolute, so a shim serves
/// the same project wherever it is checked out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShimGrants {
    /// The macro's package, as policies name it.
    pub package: String,
    /// Readable paths: root, path below it, who granted it.
    pub read: Vec<(String, String, String)>,
    /// Variable names, or prefixes ending in `*`.
    pub env: Vec<String>,
}

/// Whether `name` is a plain (non-raw) Rust identifier: the shim source only
/// ever contains names that pass this.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// The shim's source.
pub fn shim_source(spec: &ShimSpec<'_>) -> Result<String, ShimError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! wasmacro shim for `{}`: generated, do not edit.",
        spec.crate_name
    );
    if !["2015", "2018", "2021", "2024"].contains(&spec.edition) {
        return Err(ShimError::InvalidName(format!("edition {}", spec.edition)));
    }
    let _ = writeln!(out, "//! edition {}", spec.edition);
    let _ = writeln!(out, "extern crate proc_macro;");
    let _ = writeln!(out, "extern crate wasmacro_client;");
    let _ = writeln!(out, "use proc_macro::TokenStream;");
    let _ = writeln!(out, "const COMPONENT: &str = {:?};", spec.component);
    let _ = writeln!(out, "const CRATE: &str = {:?};", spec.crate_name);
    let _ = writeln!(out, "const STATELESS: bool = {};", spec.stateless);
    let grants = spec.grants;
    let read: Vec<String> = grants
        .read
        .iter()
        .map(|(root, relative, origin)| format!("({root:?}, {relative:?}, {origin:?})"))
        .collect();
    let env: Vec<String> = grants.env.iter().map(|name| format!("{name:?}")).collect();
    let _ = writeln!(
        out,
        "static GRANTS: ::wasmacro_client::GrantSpec<'static> = ::wasmacro_client::GrantSpec {{ \
         package: {:?}, read: &[{}], env: &[{}] }};",
        grants.package,
        read.join(", "),
        env.join(", ")
    );
    for (index, decl) in spec.macros.iter().enumerate() {
        if !is_identifier(&decl.name) {
            return Err(ShimError::InvalidName(decl.name.clone()));
        }
        let name = &decl.name;
        let invocation = |kind: &str| {
            format!(
                "::wasmacro_client::Invocation {{ component: COMPONENT, crate_name: CRATE, \
                 macro_name: {name:?}, kind: ::wasmacro_client::Kind::{kind}, grants: &GRANTS, \
                 stateless: STATELESS }}"
            )
        };
        match decl.kind {
            MacroKind::Derive => {
                for helper in &decl.helper_attributes {
                    if !is_identifier(helper) {
                        return Err(ShimError::InvalidName(helper.clone()));
                    }
                }
                let helpers = if decl.helper_attributes.is_empty() {
                    String::new()
                } else {
                    format!(", attributes({})", decl.helper_attributes.join(", "))
                };
                let _ = writeln!(
                    out,
                    "#[proc_macro_derive({name}{helpers})]\npub fn __wasmacro_derive_{index}(input: TokenStream) -> TokenStream {{\n    ::wasmacro_client::expand({}, None, input)\n}}",
                    invocation("Derive")
                );
            }
            MacroKind::Attribute => {
                let _ = writeln!(
                    out,
                    "#[proc_macro_attribute]\npub fn {name}(args: TokenStream, input: TokenStream) -> TokenStream {{\n    ::wasmacro_client::expand({}, Some(args), input)\n}}",
                    invocation("Attribute")
                );
            }
            MacroKind::Function => {
                let _ = writeln!(
                    out,
                    "#[proc_macro]\npub fn {name}(input: TokenStream) -> TokenStream {{\n    ::wasmacro_client::expand({}, None, input)\n}}",
                    invocation("Function")
                );
            }
        }
    }
    Ok(out)
}

/// Returns the path of the compiled shim dylib, building it under
/// `shims_dir` with `rustc` if it is not there yet.
pub fn ensure_shim(
    rustc: &Path,
    shims_dir: &Path,
    spec: &ShimSpec<'_>,
) -> Result<PathBuf, ShimError> {
    let source = shim_source(spec)?;
    let version = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|source| ShimError::Io {
            what: format!("could not run `{} -vV`", rustc.display()),
            source,
        })?;
    let mut key = blake3::Hasher::new();
    let parts = std::iter::once(&version.stdout[..])
        .chain(SOURCES.iter().map(|(_, text)| text.as_bytes()))
        .chain([source.as_bytes()]);
    for part in parts {
        key.update(&(part.len() as u64).to_le_bytes());
        key.update(part);
    }
    let key = key.finalize().to_hex();
    let dir = shims_dir.join(&key[..32]);
    let file_name = format!("lib{}{}", spec.crate_name, std::env::consts::DLL_SUFFIX);
    let dylib = dir.join(&file_name);
    if dylib.is_file() {
        return Ok(dylib);
    }
    let io = |what: &str| {
        let what = what.to_string();
        move |source| ShimError::Io { what, source }
    };
    std::fs::create_dir_all(shims_dir).map_err(io("could not create the shim cache"))?;
    let staging = tempfile::Builder::new()
        .prefix(".building-")
        .tempdir_in(shims_dir)
        .map_err(io("could not create a shim build directory"))?;
    let out = staging.path();
    for dir in ["protocol", "client"] {
        std::fs::create_dir_all(out.join(dir)).map_err(io("could not write shim sources"))?;
    }
    for (path, text) in SOURCES.into_iter().chain([("shim.rs", source.as_str())]) {
        std::fs::write(out.join(path), text).map_err(io("could not write shim sources"))?;
    }
    let compile = |step: &'static str, args: &[&str]| -> Result<(), ShimError> {
        let output = Command::new(rustc)
            .current_dir(out)
            .args(["-C", "opt-level=2", "--cap-lints", "allow", "-L"])
            .arg(format!("dependency={}", out.display()))
            .args(args)
            .output()
            .map_err(|source| ShimError::Io {
                what: format!("could not run {}", rustc.display()),
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ShimError::Compile {
                crate_name: spec.crate_name.to_string(),
                step,
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    };
    compile(
        "protocol",
        &[
            "--crate-name",
            "wasmacro_protocol",
            "--edition",
            "2024",
            "--crate-type",
            "rlib",
            "protocol/lib.rs",
        ],
    )?;
    compile(
        "client",
        &[
            "--crate-name",
            "wasmacro_client",
            "--edition",
            "2024",
            "--crate-type",
            "rlib",
            "client/lib.rs",
            "--extern",
            "wasmacro_protocol=libwasmacro_protocol.rlib",
        ],
    )?;
    compile(
        "shim",
        &[
            "--crate-name",
            spec.crate_name,
            "--edition",
            spec.edition,
            "--crate-type",
            "proc-macro",
            "shim.rs",
            "--extern",
            "wasmacro_client=libwasmacro_client.rlib",
            "-o",
            &file_name,
            // Two versions of one macro crate in one compilation need
            // distinct crate identities, as cargo gives native ones.
            "-C",
            &format!("metadata=wasmacro-{}", spec.component),
        ],
    )?;
    // Publish the finished directory in one rename; if another process won
    // the race its shim is identical, so ours is simply dropped.
    let staged = staging.keep();
    if std::fs::rename(&staged, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    if dylib.is_file() {
        Ok(dylib)
    } else {
        Err(ShimError::Io {
            what: format!("the shim was built but {} is missing", dylib.display()),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_of_the_protocol_and_the_client_is_embedded() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (krate, short) in [
            ("wasmacro-protocol", "protocol"),
            ("wasmacro-client", "client"),
        ] {
            for entry in std::fs::read_dir(crates.join(krate).join("src")).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                let embedded = format!("{short}/{name}");
                assert!(
                    SOURCES.iter().any(|(path, _)| *path == embedded),
                    "{krate}/src/{name} is not in the shim's SOURCES"
                );
            }
        }
    }

    #[test]
    fn shim_declares_every_kind() {
        let macros = [
            MacroDecl {
                name: "Serialize".into(),
                kind: MacroKind::Derive,
                helper_attributes: vec!["serde".into()],
            },
            MacroDecl {
                name: "route".into(),
                kind: MacroKind::Attribute,
                helper_attributes: vec![],
            },
            MacroDecl {
                name: "html".into(),
                kind: MacroKind::Function,
                helper_attributes: vec![],
            },
        ];
        let grants = ShimGrants {
            package: "m-pkg".into(),
            read: vec![(
                "$CARGO_MANIFEST_DIR".into(),
                "templates".into(),
                "a \"quoted\" origin".into(),
            )],
            env: vec!["CARGO_PKG_*".into()],
        };
        let source = shim_source(&ShimSpec {
            crate_name: "m",
            component: "00",
            macros: &macros,
            edition: "2021",
            grants: &grants,
            stateless: true,
        })
        .unwrap();
        assert!(source.contains("const STATELESS: bool = true;"));
        assert!(source.contains(
            r#"package: "m-pkg", read: &[("$CARGO_MANIFEST_DIR", "templates", "a \"quoted\" origin")], env: &["CARGO_PKG_*"]"#
        ));
        assert!(source.contains("#[proc_macro_derive(Serialize, attributes(serde))]"));
        assert!(source.contains("#[proc_macro_attribute]\npub fn route("));
        assert!(source.contains("#[proc_macro]\npub fn html("));
    }

    #[test]
    fn hostile_names_are_rejected() {
        for name in ["a b", "x(){}", "", "1x", "a\"b"] {
            let macros = [MacroDecl {
                name: name.into(),
                kind: MacroKind::Function,
                helper_attributes: vec![],
            }];
            let spec = ShimSpec {
                crate_name: "m",
                component: "00",
                macros: &macros,
                edition: "2021",
                grants: &ShimGrants::default(),
                stateless: false,
            };
            assert!(
                matches!(shim_source(&spec), Err(ShimError::InvalidName(_))),
                "{name:?}"
            );
        }
    }
}
