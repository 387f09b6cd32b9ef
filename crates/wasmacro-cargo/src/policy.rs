//! Which proc macros run as wasm and what they may read: the project's
//! policy (`[workspace.metadata.wasmacro]`, or the root package's
//! `[package.metadata.wasmacro]`) and the macro author's opt-in
//! (`[package.metadata.wasmacro] wasm = true` in the macro's own manifest).
//!
//! ```toml
//! [workspace.metadata.wasmacro]
//! run = "all"                 # or "opted-in", or ["serde_derive", "thiserror-impl"]
//! deny = ["sqlx-macros"]      # run natively: the only way out of the sandbox
//! strict = true               # a macro that cannot run as wasm is an error
//! stateless = ["my-derive"]   # a fresh instance per expansion; see `stateless`
//! expansion-cache = false     # run every expansion (the cache is on by default)
//! debug-info = ["my-derive"]  # or true: components keep file:line for backtraces
//! build-scripts = "all"       # or "opted-in" (the default), or a list: see `build_script_unit`
//!
//! [workspace.metadata.wasmacro.grants]   # what macros may read; see `grants`
//! askama_macros = { read = ["$CARGO_MANIFEST_DIR/templates"] }
//!
//! [workspace.metadata.wasmacro.limits]   # per expansion; see `Limits`
//! fuel = 20_000_000_000
//! memory = "2GiB"
//! ```

use crate::grants::{GrantDecl, ProjectGrant};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use wasmacro_host::Limits;

/// Which macros the policy runs as wasm.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunSet {
    /// Every proc macro (the default).
    #[default]
    All,
    /// Those whose author opted in.
    OptedIn,
    /// The listed packages.
    Listed(BTreeSet<String>),
}

/// A project's policy. Serialised (compactly, with sorted sets) it is the
/// value of [`Policy::ENV`], which cargo tracks for every proc-macro unit:
/// changing the policy rebuilds exactly the proc-macro crates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Which macros run as wasm.
    pub run: RunSet,
    /// Packages that never run as wasm.
    pub deny: BTreeSet<String>,
    /// Whether a macro that cannot run as wasm is an error rather than run
    /// natively, as `--strict` makes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
    /// What the project grants each macro package, by package name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, ProjectGrant>,
    /// The `limits` table in [`Limits`]' text form, or empty for the
    /// defaults. Part of the policy so that cargo tracks it: new limits can
    /// change what a macro does, so they rebuild the proc-macro units.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub limits: String,
    /// Packages the project declares stateless (see `stateless.rs`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub stateless: BTreeSet<String>,
    /// Packages the project declares stateful, whatever their author or the
    /// built-in table says.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub stateful: BTreeSet<String>,
    /// Whether expansions are cached (`expansion-cache`, on unless `false`).
    /// Not carried to the wrapper: it changes no artifact, only whether the
    /// runtime looks results up, which `cargo wasmacro` tells it through
    /// `WASMACRO_EXPANSION_CACHE`.
    #[serde(skip)]
    pub expansion_cache: Option<bool>,
    /// Whose components keep DWARF line tables (`debug-info = true` for
    /// every macro, or a list): a backtrace (`RUST_BACKTRACE=1`) then gives
    /// file and line. Off by default; a component without it is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_info: Option<RunSet>,
    /// Whose build scripts run as wasm (`build-scripts`); `None` is the
    /// default, those whose author opted in (`wasm-build-script = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_scripts: Option<RunSet>,
}

/// A policy that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct PolicyError {
    origin: String,
    reason: String,
}

/// Where a proc macro runs, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "runs", content = "why")]
pub enum Placement {
    /// As a wasm component.
    Wasm(String),
    /// Natively, by the project's choice (`--strict` accepts this).
    Native(String),
    /// Natively, because it cannot run as wasm (`--strict` rejects this).
    Fallback(String),
}

impl Placement {
    /// `wasm` or `native`.
    pub fn runs_as(&self) -> &'static str {
        match self {
            Placement::Wasm(_) => "wasm",
            Placement::Native(_) | Placement::Fallback(_) => "native",
        }
    }

    /// The one-line reason.
    pub fn why(&self) -> &str {
        match self {
            Placement::Wasm(why) | Placement::Native(why) | Placement::Fallback(why) => why,
        }
    }
}

impl Policy {
    /// The policy of the workspace rooted at `workspace`, from its
    /// `Cargo.toml`.
    pub fn of_workspace(workspace: &std::path::Path) -> Result<Policy, PolicyError> {
        let manifest = workspace.join("Cargo.toml");
        let origin = manifest.display().to_string();
        let text = std::fs::read_to_string(&manifest).map_err(|e| PolicyError {
            origin: origin.clone(),
            reason: format!("cannot read the wasmacro policy: {e}"),
        })?;
        Policy::from_manifest(&text, &origin)
    }

    /// The environment variable carrying the policy to the rustc wrapper.
    pub const ENV: &'static str = "WASMACRO_POLICY";

    /// The policy in a manifest: the workspace table if there is one, else
    /// the package table, else the default (everything runs as wasm).
    pub fn from_manifest(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let error = |reason: String| PolicyError {
            origin: origin.to_string(),
            reason,
        };
        let document: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| error(e.to_string()))?;
        let table = ["workspace", "package"].iter().find_map(|section| {
            document
                .get(section)?
                .get("metadata")?
                .get("wasmacro")?
                .as_table_like()
        });
        let Some(table) = table else {
            return Ok(Policy::default());
        };
        let mut policy = Policy::default();
        for (key, value) in table.iter() {
            match key {
                "run" => {
                    policy.run = match (value.as_str(), value.as_array()) {
                        (Some("all"), _) => RunSet::All,
                        (Some("opted-in"), _) => RunSet::OptedIn,
                        (_, Some(list)) => {
                            RunSet::Listed(names(list).map_err(|r| error(format!("`run`: {r}")))?)
                        }
                        _ => {
                            return Err(error(format!(
                                "`run` must be \"all\", \"opted-in\" or a list of package names, not `{}`",
                                value.to_string().trim()
                            )));
                        }
                    }
                }
                "deny" => {
                    let list = value.as_array().ok_or_else(|| {
                        error("`deny` must be a list of package names".to_string())
                    })?;
                    policy.deny = names(list).map_err(|r| error(format!("`deny`: {r}")))?;
                }
                "strict" => {
                    policy.strict = value
                        .as_bool()
                        .ok_or_else(|| error("`strict` must be true or false".to_string()))?;
                }
                // A macro package's own `stateless = true`: the author's word.
                "stateless" if value.as_bool().is_some() => {}
                "stateless" | "stateful" => {
                    let list = value
                        .as_array()
                        .ok_or_else(|| error(format!("`{key}` must be a list of package names")))?;
                    let list = names(list).map_err(|r| error(format!("`{key}`: {r}")))?;
                    if key == "stateless" {
                        policy.stateless = list;
                    } else {
                        policy.stateful = list;
                    }
                }
                "expansion-cache" => {
                    policy.expansion_cache = Some(value.as_bool().ok_or_else(|| {
                        error("`expansion-cache` must be true or false".to_string())
                    })?);
                }
                "debug-info" => {
                    policy.debug_info = match (value.as_bool(), value.as_array()) {
                        (Some(true), _) => Some(RunSet::All),
                        (Some(false), _) => None,
                        (_, Some(list)) => Some(RunSet::Listed(
                            names(list).map_err(|r| error(format!("`debug-info`: {r}")))?,
                        )),
                        _ => {
                            return Err(error(
                                "`debug-info` must be true, false or a list of package names"
                                    .to_string(),
                            ));
                        }
                    }
                }
                "build-scripts" => {
                    policy.build_scripts = Some(match (value.as_str(), value.as_array()) {
                        (Some("all"), _) => RunSet::All,
                        (Some("opted-in"), _) => RunSet::OptedIn,
                        (_, Some(list)) => RunSet::Listed(
                            names(list).map_err(|r| error(format!("`build-scripts`: {r}")))?,
                        ),
                        _ => {
                            return Err(error(format!(
                                "`build-scripts` must be \"all\", \"opted-in\" or a list of \
                                 package names, not `{}`",
                                value.to_string().trim()
                            )));
                        }
                    })
                }
                "sandbox" => {
                    return Err(error(
                        "`sandbox` is no longer needed: every macro runs in the sandbox unless \
                         `deny` names it, and reads only what `grants` allow"
                            .to_string(),
                    ));
                }
                "grants" => {
                    let table = value.as_table_like().ok_or_else(|| {
                        error("`grants` must be a table of package names".to_string())
                    })?;
                    for (package, value) in table.iter() {
                        let entry = value.as_table_like().ok_or_else(|| {
                            error(format!(
                                "`grants.{package}` must be a table, e.g. \
                                 `{package} = {{ read = [\"$CARGO_MANIFEST_DIR/templates\"] }}`"
                            ))
                        })?;
                        let mut defaults = true;
                        for (key, value) in entry.iter() {
                            match key {
                                "read" | "env" => {}
                                "defaults" => {
                                    defaults = value.as_bool().ok_or_else(|| {
                                        error(format!(
                                            "`grants.{package}.defaults` must be true or false"
                                        ))
                                    })?;
                                }
                                other => {
                                    return Err(error(format!(
                                        "unknown key `{other}` in `grants.{package}` (expected \
                                         `read`, `env` or `defaults`)"
                                    )));
                                }
                            }
                        }
                        let grants = GrantDecl::from_table(entry)
                            .map_err(|e| error(format!("`grants.{package}`: {e}")))?;
                        policy
                            .grants
                            .insert(package.to_string(), ProjectGrant { grants, defaults });
                    }
                }
                "limits" => {
                    let table = value.as_table_like().ok_or_else(|| {
                        error("`limits` must be a table, e.g. `limits = { fuel = 20e9 }`".into())
                    })?;
                    let mut limits = Limits::default();
                    for (key, value) in table.iter() {
                        let text = match (value.as_integer(), value.as_float(), value.as_str()) {
                            (Some(n), _, _) => n.to_string(),
                            // `fuel = 2e10` is a float in TOML.
                            (_, Some(x), _) if x.fract() == 0.0 && (0.0..1.8e19).contains(&x) => {
                                format!("{}", x as u64)
                            }
                            (_, _, Some(text)) => text.to_string(),
                            _ => {
                                return Err(error(format!(
                                    "limit `{key}` must be a number or a string, not `{}`",
                                    value.to_string().trim()
                                )));
                            }
                        };
                        limits
                            .set(key, &text)
                            .map_err(|e| error(format!("[metadata.wasmacro.limits]: {e}")))?;
                    }
                    policy.limits = limits.to_string();
                }
                // The author's opt-in and grants live in the same table of a
                // macro package's own manifest.
                "wasm" | "read" | "env" | AUTHOR_BUILD_SCRIPT => {}
                other => {
                    return Err(error(format!(
                        "unknown key `{other}` in [metadata.wasmacro] (expected `run`, `deny`, \
                         `strict`, `stateless`, `stateful`, `expansion-cache`, `debug-info`, \
                         `build-scripts`, `grants` or `limits`)"
                    )));
                }
            }
        }
        Ok(policy)
    }

    /// The policy as [`Policy::ENV`] carries it.
    pub fn to_env(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The policy a wrapper or launcher works under: what `cargo wasmacro`
    /// passed down in [`Policy::ENV`], else (plain cargo under the
    /// permanent opt-in) the manifest of the workspace at `workspace`.
    pub fn in_force(workspace: &std::path::Path) -> Result<Policy, PolicyError> {
        match std::env::var(Policy::ENV) {
            Ok(value) => Policy::from_env(&value),
            Err(_) => Policy::of_workspace(workspace),
        }
    }

    /// The variable carrying what of the policy decides how build scripts
    /// run, which cargo tracks for build-script units: a change to a
    /// macro's grants must not rerun every build script (and rebuild
    /// everything after them).
    pub const BUILD_SCRIPTS_ENV: &'static str = "WASMACRO_BUILD_SCRIPT_POLICY";

    /// [`Policy::BUILD_SCRIPTS_ENV`]'s value: which scripts run as wasm, and,
    /// of the packages `with_scripts` names (those with a build script), the
    /// denied ones and the variables granted; the limits.
    pub fn build_scripts_env(&self, with_scripts: &BTreeSet<String>) -> String {
        let granted_env: BTreeMap<&String, &Vec<String>> = self
            .grants
            .iter()
            .filter(|(package, grant)| {
                with_scripts.contains(*package) && !grant.grants.env.is_empty()
            })
            .map(|(package, grant)| (package, &grant.grants.env))
            .collect();
        let denied: BTreeSet<&String> = self.deny.intersection(with_scripts).collect();
        serde_json::json!({
            "build-scripts": self.build_scripts,
            "deny": denied,
            "limits": self.limits,
            "env": granted_env,
        })
        .to_string()
    }

    /// The policy from [`Policy::ENV`]'s value.
    pub fn from_env(value: &str) -> Result<Policy, PolicyError> {
        serde_json::from_str(value).map_err(|e| PolicyError {
            origin: Self::ENV.to_string(),
            reason: e.to_string(),
        })
    }

    /// What the policy sets for the runtime, as `(variable, value)`: the
    /// limits and the expansion-cache switch. Whoever starts a rustc (or the
    /// server) passes those the environment does not set itself: the user's
    /// environment wins, as cargo's does over its configuration.
    pub fn runtime_env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if !self.limits.is_empty() {
            env.push((Limits::ENV, self.limits.clone()));
        }
        if self.expansion_cache == Some(false) {
            env.push((wasmacro_host::expansion_cache::ENV, "off".to_string()));
        }
        env
    }

    /// [`Policy::runtime_env`] applied to `command`, but for what the
    /// environment already sets.
    pub fn apply_runtime_env(&self, command: &mut std::process::Command) {
        for (name, value) in self.runtime_env() {
            if std::env::var_os(name).is_none() {
                command.env(name, value);
            }
        }
    }

    /// Whether `package`'s component keeps debug info.
    pub fn debug_info_for(&self, package: &str) -> bool {
        match &self.debug_info {
            None | Some(RunSet::OptedIn) => false,
            Some(RunSet::All) => true,
            Some(RunSet::Listed(names)) => names.contains(package),
        }
    }

    /// What the project says about `package`'s grants.
    pub fn grants_of(&self, package: &str) -> Option<&ProjectGrant> {
        self.grants.get(package)
    }

    /// Where `package` runs, given whether its author opted in.
    pub fn place(&self, package: &str, author_opted_in: bool) -> Placement {
        if self.deny.contains(package) {
            return Placement::Native("denied by the project's policy".into());
        }
        match &self.run {
            RunSet::All => Placement::Wasm("policy: all".into()),
            RunSet::OptedIn if author_opted_in => Placement::Wasm("opted in by its author".into()),
            RunSet::OptedIn => Placement::Native("its author has not opted in".into()),
            RunSet::Listed(list) if list.contains(package) => {
                Placement::Wasm("listed in the project's policy".into())
            }
            RunSet::Listed(_) => Placement::Native("not listed in the project's policy".into()),
        }
    }
}

impl Policy {
    /// Where `package`'s build script runs, given whether its author opted
    /// in (`wasm-build-script = true`). `deny` covers build scripts too: a
    /// denied package never runs in the sandbox.
    pub fn place_build_script(&self, package: &str, author_opted_in: bool) -> Placement {
        if self.deny.contains(package) {
            return Placement::Native("denied by the project's policy".into());
        }
        match self.build_scripts.as_ref().unwrap_or(&RunSet::OptedIn) {
            RunSet::All => Placement::Wasm("policy: build-scripts = all".into()),
            RunSet::OptedIn if author_opted_in => Placement::Wasm("opted in by its author".into()),
            RunSet::OptedIn => Placement::Native(
                "build scripts run as wasm when their author opts in or `build-scripts` says so"
                    .into(),
            ),
            RunSet::Listed(list) if list.contains(package) => {
                Placement::Wasm("listed in the project's `build-scripts`".into())
            }
            RunSet::Listed(_) => {
                Placement::Native("not listed in the project's `build-scripts`".into())
            }
        }
    }
}

/// The key of a package's own `[package.metadata.wasmacro]` by which its
/// author says its build script runs as wasm.
pub const AUTHOR_BUILD_SCRIPT: &str = "wasm-build-script";

fn names(list: &toml_edit::Array) -> Result<BTreeSet<String>, String> {
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("expected package names, found `{}`", v.to_string().trim()))
        })
        .collect()
}

/// Whether a macro package's manifest says it can run as wasm
/// (`[package.metadata.wasmacro] wasm = true`).
pub fn author_opted_in(manifest: &str) -> bool {
    author_says(manifest, "wasm")
}

/// Whether a macro package's own manifest sets `key = true` in
/// `[package.metadata.wasmacro]`.
pub fn author_says(manifest: &str, key: &str) -> bool {
    manifest
        .parse::<toml_edit::DocumentMut>()
        .ok()
        .and_then(|d| {
            d.get("package")?
                .get("metadata")?
                .get("wasmacro")?
                .get(key)?
                .as_bool()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_part_of_the_policy() {
        let policy = Policy::from_manifest(
            "[workspace.metadata.wasmacro.limits]\nfuel = 2e9\nmemory = \"64MiB\"\ntimeout = 30\n",
            "Cargo.toml",
        )
        .unwrap();
        let limits = Limits::parse(&policy.limits).unwrap();
        assert_eq!(limits.fuel, 2_000_000_000);
        assert_eq!(limits.memory, 64 << 20);
        assert_eq!(limits.timeout, std::time::Duration::from_secs(30));
        assert_eq!(Policy::from_env(&policy.to_env()).unwrap(), policy);

        let error = Policy::from_manifest(
            "[workspace.metadata.wasmacro.limits]\nmemory = \"a lot\"\n",
            "Cargo.toml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "Cargo.toml: [metadata.wasmacro.limits]: limit `memory`: `a lot` is not a size, e.g. 512MiB"
        );
    }

    #[test]
    fn debug_info_names_every_macro_or_some() {
        let read = |value: &str| {
            Policy::from_manifest(
                &format!("[workspace.metadata.wasmacro]\ndebug-info = {value}\n"),
                "Cargo.toml",
            )
        };
        let all = read("true").unwrap();
        assert!(all.debug_info_for("serde_derive"));
        let some = read("[\"my-derive\"]").unwrap();
        assert!(some.debug_info_for("my-derive") && !some.debug_info_for("serde_derive"));
        assert!(!read("false").unwrap().debug_info_for("my-derive"));
        assert!(!Policy::default().debug_info_for("my-derive"));
        // Carried to the wrapper, so cargo rebuilds the macro units it names.
        assert_eq!(Policy::from_env(&some.to_env()).unwrap(), some);
        assert_ne!(some.to_env(), Policy::default().to_env());
        assert!(read("\"yes\"").is_err());
    }

    #[test]
    fn reads_workspace_then_package_tables() {
        let policy = Policy::from_manifest(
            "[workspace.metadata.wasmacro]\nrun = [\"serde_derive\"]\ndeny = [\"b\"]\n",
            "Cargo.toml",
        )
        .unwrap();
        assert_eq!(
            policy.run,
            RunSet::Listed(["serde_derive".to_string()].into())
        );
        assert_eq!(policy.place("serde_derive", false).runs_as(), "wasm");
        assert_eq!(policy.place("other", true).runs_as(), "native");
        assert_eq!(
            policy.place("b", true),
            Placement::Native("denied by the project's policy".into())
        );
        let policy =
            Policy::from_manifest("[package.metadata.wasmacro]\nrun = \"opted-in\"\n", "x")
                .unwrap();
        assert_eq!(policy.place("a", true).runs_as(), "wasm");
        assert_eq!(policy.place("a", false).runs_as(), "native");
        assert_eq!(
            Policy::from_manifest("[package]\n", "x").unwrap(),
            Policy::default()
        );
        assert_eq!(Policy::from_env(&policy.to_env()).unwrap(), policy);
    }

    #[test]
    fn bad_policies_name_the_key() {
        let error = Policy::from_manifest("[workspace.metadata.wasmacro]\nrun = 3\n", "Cargo.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`run` must be"), "{error}");
        let error =
            Policy::from_manifest("[workspace.metadata.wasmacro]\nallow = []\n", "Cargo.toml")
                .unwrap_err()
                .to_string();
        assert!(error.contains("unknown key `allow`"), "{error}");
    }

    #[test]
    fn the_expansion_cache_switch_is_read_but_not_carried_to_the_wrapper() {
        let off = Policy::from_manifest(
            "[workspace.metadata.wasmacro]\nexpansion-cache = false\n",
            "Cargo.toml",
        )
        .unwrap();
        assert_eq!(off.expansion_cache, Some(false));
        // Switching it changes no artifact: the policy cargo tracks is the
        // same, so nothing is rebuilt.
        assert_eq!(off.to_env(), Policy::default().to_env());
        let error = Policy::from_manifest(
            "[workspace.metadata.wasmacro]\nexpansion-cache = \"no\"\n",
            "Cargo.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("`expansion-cache` must be true or false"),
            "{error}"
        );
        // A macro package's own `stateless = true` is its author's word, not
        // a project list.
        let own = Policy::from_manifest(
            "[package]\nname = \"m\"\n[package.metadata.wasmacro]\nstateless = true\n",
            "Cargo.toml",
        )
        .unwrap();
        assert!(own.stateless.is_empty());
    }

    #[test]
    fn author_opt_in() {
        assert!(author_opted_in(
            "[package.metadata.wasmacro]\nwasm = true\n"
        ));
        assert!(!author_opted_in("[package]\nname = \"x\"\n"));
    }
}
