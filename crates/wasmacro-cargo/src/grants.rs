//! What each macro may read: the grants its author declares, the built-in
//! ones for well-known crates whose authors have not declared yet, and the
//! project's policy, which has the last word.
//!
//! ```toml
//! # The macro's own Cargo.toml: what it needs.
//! [package.metadata.wasmacro]
//! read = ["$CARGO_MANIFEST_DIR/templates", "$CARGO_MANIFEST_DIR/askama.toml"]
//! env = ["TEMPLATE_DEBUG"]
//!
//! # The project's Cargo.toml: more, or only these (`defaults = false`
//! # drops the author's and the built-in grants).
//! [workspace.metadata.wasmacro.grants]
//! askama_macros = { read = ["$CARGO_WORKSPACE_DIR/shared-templates"] }
//! rust-embed-impl = { read = ["$CARGO_MANIFEST_DIR/assets"], defaults = false }
//! ```
//!
//! Paths start at a named root, never at `/`, so a policy means the same
//! wherever the project is checked out: `$CARGO_MANIFEST_DIR` (the crate
//! being compiled, the one *using* the macro), `$CARGO_WORKSPACE_DIR` (the
//! workspace root) or `$OUT_DIR` (its build script's output). Reading is all
//! a grant gives: nothing is ever writable.

use serde::{Deserialize, Serialize};
use wasmacro_protocol::ROOTS;
use wasmacro_shim::ShimGrants;

/// Variables every macro sees: those cargo sets for the crate being compiled,
/// which `env!` in the crate could read as well and cargo already tracks.
pub const EVERY_MACRO_ENV: &[&str] = &[
    "CARGO_PKG_*",
    "CARGO_CRATE_NAME",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PRIMARY_PACKAGE",
    "OUT_DIR",
];

/// Grants for well-known macro crates whose authors have not declared any:
/// package, readable paths, variables. Each follows what the crate's
/// documentation says it reads.
pub const BUILT_IN: &[(&str, &[&str], &[&str])] = &[
    // The proc-macro-crate family: the crate's manifest, to find how the
    // facade crate was renamed.
    ("num_enum_derive", &["$CARGO_MANIFEST_DIR/Cargo.toml"], &[]),
    ("borsh-derive", &["$CARGO_MANIFEST_DIR/Cargo.toml"], &[]),
    (
        "frame-support-procedural",
        &["$CARGO_MANIFEST_DIR/Cargo.toml"],
        &[],
    ),
    (
        "parity-scale-codec-derive",
        &["$CARGO_MANIFEST_DIR/Cargo.toml"],
        &[],
    ),
    (
        "scale-info-derive",
        &["$CARGO_MANIFEST_DIR/Cargo.toml"],
        &[],
    ),
    (
        "document-features",
        &["$CARGO_MANIFEST_DIR/Cargo.toml"],
        &[],
    ),
    // Templates, embedded files, grammars and test directories, named
    // relative to the crate's manifest directory by the crate's own code.
    ("askama_macros", &["$CARGO_MANIFEST_DIR"], &[]),
    ("askama_derive", &["$CARGO_MANIFEST_DIR"], &[]),
    ("rinja_derive", &["$CARGO_MANIFEST_DIR"], &[]),
    ("sailfish-macros", &["$CARGO_MANIFEST_DIR"], &[]),
    ("rust-embed-impl", &["$CARGO_MANIFEST_DIR"], &[]),
    ("include_dir_macros", &["$CARGO_MANIFEST_DIR"], &[]),
    ("pest_derive", &["$CARGO_MANIFEST_DIR"], &[]),
    ("automod", &["$CARGO_MANIFEST_DIR"], &[]),
    ("rstest_macros", &["$CARGO_MANIFEST_DIR"], &[]),
    ("wasm-bindgen-macro", &["$CARGO_MANIFEST_DIR"], &[]),
    // sqlx's offline mode: the saved queries, its settings and `.env`.
    (
        "sqlx-macros",
        &[
            "$CARGO_MANIFEST_DIR/.sqlx",
            "$CARGO_WORKSPACE_DIR/.sqlx",
            "$CARGO_MANIFEST_DIR/.env",
            "$CARGO_WORKSPACE_DIR/.env",
        ],
        &["SQLX_OFFLINE", "SQLX_OFFLINE_DIR", "DATABASE_URL"],
    ),
];

/// Grants as a manifest writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantDecl {
    /// Readable paths, each `$ROOT` or `$ROOT/relative`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// Variable names, or prefixes ending in `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

/// The project's word on one macro package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectGrant {
    /// What it adds.
    #[serde(flatten)]
    pub grants: GrantDecl,
    /// Whether the author's and the built-in grants still apply.
    pub defaults: bool,
}

/// A grant that cannot be read; the text names the key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GrantError(pub String);

impl GrantDecl {
    /// Reads `read` and `env` from a manifest table; other keys are the
    /// caller's.
    pub fn from_table(table: &dyn toml_edit::TableLike) -> Result<GrantDecl, GrantError> {
        let mut decl = GrantDecl::default();
        for (key, value) in table.iter() {
            let list = || -> Result<Vec<String>, GrantError> {
                let array = value
                    .as_array()
                    .ok_or_else(|| GrantError(format!("`{key}` must be a list of strings")))?;
                array
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            GrantError(format!("`{key}` must be a list of strings, not `{v}`"))
                        })
                    })
                    .collect()
            };
            match key {
                "read" => {
                    decl.read = list()?;
                    for path in &decl.read {
                        split_rooted(path)?;
                    }
                }
                "env" => {
                    decl.env = list()?;
                    for name in &decl.env {
                        check_env_name(name)?;
                    }
                }
                _ => {}
            }
        }
        Ok(decl)
    }

    fn is_empty(&self) -> bool {
        self.read.is_empty() && self.env.is_empty()
    }
}

/// `$ROOT/relative` into its root and normalised relative part.
pub fn split_rooted(path: &str) -> Result<(&'static str, String), GrantError> {
    let (root, relative) = path.split_once('/').unwrap_or((path, ""));
    let Some((root, _)) = ROOTS.iter().find(|(name, _)| *name == root) else {
        let roots: Vec<&str> = ROOTS.iter().map(|(name, _)| *name).collect();
        return Err(GrantError(format!(
            "`{path}` must start with one of {} (paths are relative to a root, so the policy \
             works wherever the project is checked out)",
            roots.join(", ")
        )));
    };
    let normalized = wasmacro_protocol::normalize(relative)
        .filter(|n| !n.starts_with('/'))
        .ok_or_else(|| GrantError(format!("`{path}` climbs out of {root} with `..`")))?;
    Ok((root, normalized))
}

fn check_env_name(name: &str) -> Result<(), GrantError> {
    let bare = name.strip_suffix('*').unwrap_or(name);
    let valid = !name.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(GrantError(format!(
            "`{name}` is not a variable name (or a prefix ending in `*`)"
        )))
    }
}

/// The author's declaration in a macro package's manifest
/// (`[package.metadata.wasmacro]`, keys `read` and `env`).
pub fn declared_by_author(manifest: &str) -> Result<GrantDecl, GrantError> {
    let document: toml_edit::DocumentMut = manifest
        .parse()
        .map_err(|e: toml_edit::TomlError| GrantError(e.to_string()))?;
    let table = document
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("wasmacro"))
        .and_then(|w| w.as_table_like());
    match table {
        Some(table) => GrantDecl::from_table(table),
        None => Ok(GrantDecl::default()),
    }
}

/// The built-in grants of `package`, if it has any.
pub fn built_in(package: &str) -> Option<GrantDecl> {
    BUILT_IN
        .iter()
        .find(|(name, _, _)| *name == package)
        .map(|(_, read, env)| GrantDecl {
            read: read.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
        })
}

/// Whether `grants` let a macro read files or variables beyond cargo's own
/// (what a build cache keyed on sources and `CARGO_*` cannot see).
pub fn reads_beyond_cargo(grants: &ShimGrants) -> bool {
    !grants.read.is_empty()
        || grants
            .env
            .iter()
            .any(|name| !EVERY_MACRO_ENV.contains(&name.as_str()))
}

/// What `package` may read: the variables every macro sees, its author's
/// declaration (or, without one, its built-in grants), and the project's
/// additions, unless the project says `defaults = false`.
pub fn effective(package: &str, author: &GrantDecl, project: Option<&ProjectGrant>) -> ShimGrants {
    let mut grants = ShimGrants {
        package: package.to_string(),
        read: Vec::new(),
        env: EVERY_MACRO_ENV.iter().map(|s| s.to_string()).collect(),
    };
    let mut add = |decl: &GrantDecl, origin: &str| {
        for path in &decl.read {
            // Declarations were checked when they were read.
            if let Ok((root, relative)) = split_rooted(path) {
                let entry = (root.to_string(), relative, origin.to_string());
                if !grants
                    .read
                    .iter()
                    .any(|(r, p, _)| (r, p) == (&entry.0, &entry.1))
                {
                    grants.read.push(entry);
                }
            }
        }
        for name in &decl.env {
            if !grants.env.contains(name) {
                grants.env.push(name.clone());
            }
        }
    };
    if project.is_none_or(|p| p.defaults) {
        if !author.is_empty() {
            add(author, &format!("declared by {package}'s author"));
        } else if let Some(builtin) = built_in(package) {
            add(&builtin, &format!("built in for {package}"));
        }
    }
    if let Some(project) = project {
        add(&project.grants, "granted by the project's policy");
    }
    grants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooted_paths_are_checked() {
        assert_eq!(
            split_rooted("$CARGO_MANIFEST_DIR/templates/../t").unwrap(),
            ("$CARGO_MANIFEST_DIR", "t".to_string())
        );
        assert_eq!(
            split_rooted("$OUT_DIR").unwrap(),
            ("$OUT_DIR", String::new())
        );
        let error = split_rooted("/etc/hostname").unwrap_err().to_string();
        assert!(
            error.contains("must start with one of $CARGO_MANIFEST_DIR"),
            "{error}"
        );
        let error = split_rooted("$CARGO_MANIFEST_DIR/../..")
            .unwrap_err()
            .to_string();
        assert!(error.contains("climbs out"), "{error}");
    }

    #[test]
    fn the_project_has_the_last_word() {
        let author = declared_by_author(
            "[package.metadata.wasmacro]\nread = [\"$CARGO_MANIFEST_DIR/t\"]\nenv = [\"A\"]\n",
        )
        .unwrap();
        let grants = effective("m", &author, None);
        assert_eq!(
            grants.read,
            [(
                "$CARGO_MANIFEST_DIR".to_string(),
                "t".to_string(),
                "declared by m's author".to_string()
            )]
        );
        assert!(grants.env.contains(&"A".to_string()));
        assert!(grants.env.contains(&"CARGO_PKG_*".to_string()));

        let project = ProjectGrant {
            grants: GrantDecl {
                read: vec!["$OUT_DIR/gen".into()],
                env: vec![],
            },
            defaults: false,
        };
        let grants = effective("m", &author, Some(&project));
        assert_eq!(grants.read.len(), 1);
        assert_eq!(grants.read[0].0, "$OUT_DIR");
        assert!(!grants.env.contains(&"A".to_string()));

        // Without a declaration, the built-in grants apply.
        let grants = effective("askama_macros", &GrantDecl::default(), None);
        assert_eq!(grants.read[0].2, "built in for askama_macros");
    }

    #[test]
    fn bad_declarations_name_the_key() {
        let error = declared_by_author("[package.metadata.wasmacro]\nread = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`read` must be a list"), "{error}");
        let error = declared_by_author("[package.metadata.wasmacro]\nenv = [\"A B\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not a variable name"), "{error}");
    }
}
