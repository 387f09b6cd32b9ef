//! Which of the files under a package's directory make up the package: its
//! `include` or `exclude` rules, read and matched as cargo does (gitignore
//! patterns relative to the package root, `include` taking precedence, both
//! inheritable from `[workspace.package]`).
//!
//! Native cargo compiles a path package from its directory whatever these
//! say, but it only counts the selected files when it decides whether a
//! build script must run again; here they decide what is copied into the
//! work directory and so what the component's key covers. An edit to an
//! excluded file then rebuilds no component. The files cargo itself names
//! (the manifest, every target's root) are always kept, so a rule that
//! leaves one out cannot break a build native cargo can do.

use crate::BuildError;
use cargo_metadata::{Metadata, Package};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::collections::BTreeSet;
use std::path::Path;

/// A package's file selection.
pub(crate) struct Selection {
    rules: Rules,
    /// Files kept whatever the rules say, `/`-separated, relative to the root.
    always: BTreeSet<String>,
}

enum Rules {
    /// Neither `include` nor `exclude`: every file.
    All,
    /// Only the files `include` matches.
    Include(Gitignore),
    /// Every file `exclude` does not match.
    Exclude(Gitignore),
}

impl Selection {
    /// Every file under the package's directory.
    pub(crate) fn all() -> Selection {
        Selection {
            rules: Rules::All,
            always: BTreeSet::new(),
        }
    }

    /// The selection `package`'s manifest declares. `metadata` is where it
    /// was found: a member of its workspace inherits from its root.
    pub(crate) fn of(package: &Package, metadata: &Metadata) -> Result<Selection, BuildError> {
        let manifest_path = package.manifest_path.as_std_path();
        let root = manifest_path.parent().unwrap_or(Path::new("."));
        let invalid = |reason: String| BuildError::Locate {
            what: package.name.to_string(),
            reason: format!("{}: {reason}", manifest_path.display()),
        };
        let manifest = read_manifest(manifest_path).map_err(invalid)?;
        let inherited = |field: &str| -> Result<Option<Vec<String>>, BuildError> {
            let workspace = workspace_manifest(package, metadata, root).map_err(invalid)?;
            let value = workspace
                .as_ref()
                .and_then(|w| w.get("workspace")?.get("package")?.get(field));
            match value {
                Some(value) => patterns(value).map(Some).map_err(|reason| {
                    invalid(format!(
                        "`workspace.package.{field}` of its workspace: {reason}"
                    ))
                }),
                None => Err(invalid(format!(
                    "`{field}.workspace = true`, but its workspace declares no `workspace.package.{field}`"
                ))),
            }
        };
        let field = |name: &str| -> Result<Option<Vec<String>>, BuildError> {
            match manifest.get("package").and_then(|p| p.get(name)) {
                None => Ok(None),
                Some(value) if is_inherited(value) => inherited(name),
                Some(value) => patterns(value)
                    .map(Some)
                    .map_err(|reason| invalid(format!("`package.{name}`: {reason}"))),
            }
        };
        let matcher = |rules: Vec<String>| -> Result<Gitignore, BuildError> {
            let mut builder = GitignoreBuilder::new(root);
            for rule in &rules {
                builder
                    .add_line(None, rule)
                    .map_err(|e| invalid(format!("pattern {rule:?}: {e}")))?;
            }
            builder.build().map_err(|e| invalid(e.to_string()))
        };
        let rules = match (field("include")?, field("exclude")?) {
            (Some(include), _) => Rules::Include(matcher(include)?),
            (None, Some(exclude)) => Rules::Exclude(matcher(exclude)?),
            (None, None) => Rules::All,
        };
        let mut always = BTreeSet::from(["Cargo.toml".to_string()]);
        always.extend(package.targets.iter().filter_map(|target| {
            let relative = target.src_path.as_std_path().strip_prefix(root).ok()?;
            Some(relative.to_string_lossy().replace('\\', "/"))
        }));
        Ok(Selection { rules, always })
    }

    /// Whether the file or directory at `relative` (`/`-separated, relative
    /// to the package root) belongs to the package. A directory that does
    /// not is not descended into.
    pub(crate) fn selects(&self, relative: &str, is_dir: bool) -> bool {
        match &self.rules {
            Rules::All => true,
            _ if !is_dir && self.always.contains(relative) => true,
            Rules::Exclude(exclude) => !exclude
                .matched_path_or_any_parents(relative, is_dir)
                .is_ignore(),
            // `include` lists files, rarely the directories above them
            // (`src/**/*.rs`): every directory is searched.
            Rules::Include(_) if is_dir => true,
            Rules::Include(include) => include
                .matched_path_or_any_parents(relative, false)
                .is_ignore(),
        }
    }
}

fn read_manifest(path: &Path) -> Result<toml_edit::DocumentMut, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    text.parse()
        .map_err(|e: toml_edit::TomlError| e.to_string())
}

fn is_inherited(value: &toml_edit::Item) -> bool {
    value
        .get("workspace")
        .and_then(toml_edit::Item::as_bool)
        .unwrap_or(false)
}

fn patterns(value: &toml_edit::Item) -> Result<Vec<String>, String> {
    let array = value
        .as_array()
        .ok_or_else(|| "expected an array of strings".to_string())?;
    array
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("expected a string, found {v}"))
        })
        .collect()
}

/// The manifest of the workspace `package` belongs to: the root cargo
/// reported for a member, else the nearest ancestor declaring `[workspace]`
/// (a path dependency outside the project, a git checkout), or the one its
/// `package.workspace` names.
fn workspace_manifest(
    package: &Package,
    metadata: &Metadata,
    root: &Path,
) -> Result<Option<toml_edit::DocumentMut>, String> {
    if metadata.workspace_members.contains(&package.id) {
        let path = metadata.workspace_root.as_std_path().join("Cargo.toml");
        return read_manifest(&path).map(Some);
    }
    let own = read_manifest(&root.join("Cargo.toml"))?;
    if let Some(named) = own
        .get("package")
        .and_then(|p| p.get("workspace"))
        .and_then(toml_edit::Item::as_str)
    {
        return read_manifest(&root.join(named).join("Cargo.toml")).map(Some);
    }
    for dir in root.ancestors() {
        let path = dir.join("Cargo.toml");
        if !path.is_file() {
            continue;
        }
        let manifest = read_manifest(&path)?;
        if manifest.get("workspace").is_some() {
            return Ok(Some(manifest));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::{Rules, Selection};
    use ignore::gitignore::GitignoreBuilder;

    fn selection(include: &[&str], exclude: &[&str]) -> Selection {
        let matcher = |rules: &[&str]| {
            let mut builder = GitignoreBuilder::new("/pkg");
            for rule in rules {
                builder.add_line(None, rule).unwrap();
            }
            builder.build().unwrap()
        };
        let rules = if !include.is_empty() {
            Rules::Include(matcher(include))
        } else {
            Rules::Exclude(matcher(exclude))
        };
        Selection {
            rules,
            always: ["Cargo.toml".to_string(), "build.rs".to_string()].into(),
        }
    }

    #[test]
    fn exclude_leaves_out_matched_files_and_directories() {
        let s = selection(&[], &["notes/", "*.md", "/bench"]);
        assert!(s.selects("src/lib.rs", false));
        assert!(!s.selects("notes", true));
        assert!(!s.selects("notes/design.txt", false));
        assert!(!s.selects("README.md", false));
        assert!(!s.selects("src/doc.md", false));
        assert!(!s.selects("bench", true));
        assert!(s.selects("src/bench", true));
    }

    #[test]
    fn include_keeps_only_matched_files_and_what_cargo_names() {
        let s = selection(&["src/**/*.rs", "/templates"], &["src/"]);
        assert!(s.selects("src", true));
        assert!(s.selects("src/a/b.rs", false));
        assert!(!s.selects("src/a/b.txt", false));
        assert!(s.selects("templates/page.html", false));
        assert!(!s.selects("README.md", false));
        assert!(s.selects("Cargo.toml", false));
        assert!(s.selects("build.rs", false));
    }
}
