//! `wasmacro policy`: what the project's policy decides for each proc-macro
//! package it builds (where it runs, what it may read and who granted it,
//! whether it is stateless and who said so), and the built-in grants.

use crate::grants::{self, BUILT_IN, EVERY_MACRO_ENV};
use crate::policy::{Placement, Policy, author_opted_in};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// One proc-macro package, as the policy sees it.
#[derive(Debug, Serialize)]
pub struct PackageReport {
    /// `name`.
    pub package: String,
    /// `version`.
    pub version: String,
    /// Where it runs, and why.
    pub placement: Placement,
    /// Readable paths: `$ROOT/path` and who granted each.
    pub read: Vec<GrantReport>,
    /// Variables and patterns it sees.
    pub env: Vec<String>,
    /// Whether it runs stateless (a fresh instance per expansion).
    pub stateless: bool,
    /// Who decided that.
    pub stateless_origin: String,
}

/// One granted path.
#[derive(Debug, Serialize)]
pub struct GrantReport {
    /// `$ROOT/path`.
    pub path: String,
    /// Who granted it.
    pub origin: String,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct PolicyReport {
    /// The manifest the policy came from.
    pub manifest: String,
    /// Variables every macro sees.
    pub every_macro_env: Vec<String>,
    /// Every proc-macro package the project builds, by name.
    pub packages: Vec<PackageReport>,
    /// The built-in grants: package, paths, variables.
    pub built_in: Vec<(String, Vec<String>, Vec<String>)>,
}

/// Prints the report for the workspace of `manifest_path` (default: the
/// current directory's), as text or JSON.
pub fn run(manifest_path: Option<&Path>, json: bool) -> Result<()> {
    let mut command = cargo_metadata::MetadataCommand::new();
    if let Some(path) = manifest_path {
        command.manifest_path(path);
    }
    let metadata = command
        .exec()
        .context("running `cargo metadata` to find the project's proc macros")?;
    let root = metadata.workspace_root.as_std_path();
    let policy = Policy::of_workspace(root)?;
    let mut packages = Vec::new();
    let in_graph: std::collections::BTreeSet<_> = metadata
        .resolve
        .as_ref()
        .map(|r| r.nodes.iter().map(|n| &n.id).collect())
        .unwrap_or_default();
    for package in &metadata.packages {
        let is_macro = package.targets.iter().any(|t| t.is_proc_macro());
        if !is_macro || !in_graph.contains(&package.id) {
            continue;
        }
        let manifest = std::fs::read_to_string(&package.manifest_path)
            .with_context(|| format!("reading {}", package.manifest_path))?;
        let author = grants::declared_by_author(&manifest)
            .with_context(|| format!("{}: invalid grants", package.manifest_path))?;
        let effective = grants::effective(&package.name, &author, policy.grants_of(&package.name));
        let (stateless, stateless_origin) = crate::stateless::effective(
            &package.name,
            crate::stateless::declared_by_author(&manifest),
            &policy,
        );
        packages.push(PackageReport {
            package: package.name.to_string(),
            version: package.version.to_string(),
            placement: policy.place(&package.name, author_opted_in(&manifest)),
            read: effective
                .read
                .iter()
                .map(|(root, relative, origin)| GrantReport {
                    path: if relative.is_empty() {
                        root.clone()
                    } else {
                        format!("{root}/{relative}")
                    },
                    origin: origin.clone(),
                })
                .collect(),
            env: effective.env,
            stateless,
            stateless_origin: stateless_origin.to_string(),
        });
    }
    packages.sort_by(|a, b| (&a.package, &a.version).cmp(&(&b.package, &b.version)));
    let report = PolicyReport {
        manifest: root.join("Cargo.toml").display().to_string(),
        every_macro_env: EVERY_MACRO_ENV.iter().map(|s| s.to_string()).collect(),
        packages,
        built_in: BUILT_IN
            .iter()
            .map(|(name, read, env)| {
                (
                    name.to_string(),
                    read.iter().map(|s| s.to_string()).collect(),
                    env.iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn print_text(report: &PolicyReport) {
    println!("policy: {}", report.manifest);
    println!(
        "every macro sees the variables {}",
        report.every_macro_env.join(", ")
    );
    println!();
    for package in &report.packages {
        println!(
            "{} v{}: {} ({})",
            package.package,
            package.version,
            package.placement.runs_as(),
            package.placement.why()
        );
        for grant in &package.read {
            println!("    read {:<40} {}", grant.path, grant.origin);
        }
        let extra: Vec<&String> = package
            .env
            .iter()
            .filter(|e| !report.every_macro_env.contains(e))
            .collect();
        if !extra.is_empty() {
            let names: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
            println!("    env  {}", names.join(", "));
        }
        if package.stateless {
            println!(
                "    stateless: a fresh instance per expansion ({})",
                package.stateless_origin
            );
        }
    }
    println!();
    println!("built-in grants (for a package whose author declares none):");
    for (name, read, env) in &report.built_in {
        let mut parts: Vec<String> = read.iter().map(|p| format!("read {p}")).collect();
        parts.extend(env.iter().map(|e| format!("env {e}")));
        println!("    {name:<28} {}", parts.join(", "));
    }
}
