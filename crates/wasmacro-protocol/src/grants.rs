//! The path and name rules of [`Grants`], shared by the shim that resolves
//! them and the server that enforces them.

use crate::{Grants, ReadGrant};

/// The roots a grant's path may start from, and the environment variable of
/// the compilation that says where each one is. `WASMACRO_WORKSPACE` is the
/// workspace root `cargo wasmacro` (or the permanent opt-in) runs for.
pub const ROOTS: &[(&str, &str)] = &[
    ("$CARGO_MANIFEST_DIR", "CARGO_MANIFEST_DIR"),
    ("$CARGO_WORKSPACE_DIR", "WASMACRO_WORKSPACE"),
    ("$OUT_DIR", "OUT_DIR"),
];

impl Grants {
    /// The absolute path `grant` names, if its root exists.
    pub fn absolute(&self, grant: &ReadGrant) -> Option<String> {
        let root = self.roots.get(grant.root as usize)?;
        Some(join(&root.path, &grant.relative))
    }

    /// `path` (absolute, normalised) as `$ROOT/relative`, from the most
    /// specific root containing it (the first listed, when two are the same
    /// directory, as a single-package workspace's are).
    pub fn name_of(&self, path: &str) -> Option<String> {
        let mut best: Option<(&crate::Root, &str)> = None;
        for root in &self.roots {
            let Some(relative) = below(&root.path, path) else {
                continue;
            };
            if best.is_none_or(|(b, _)| root.path.len() > b.path.len()) {
                best = Some((root, relative));
            }
        }
        best.map(|(root, relative)| join(&root.name, relative))
    }

    /// `$ROOT/relative` back to an absolute path.
    pub fn path_of(&self, name: &str) -> Option<String> {
        let (root, relative) = name.split_once('/').unwrap_or((name, ""));
        let root = self.roots.iter().find(|r| r.name == root)?;
        Some(join(&root.path, relative))
    }

    /// Whether `path` (absolute, normalised) may be read: it is a granted
    /// path or lies below a granted directory.
    pub fn covers(&self, path: &str) -> bool {
        self.read
            .iter()
            .filter_map(|grant| self.absolute(grant))
            .any(|granted| below(&granted, path).is_some())
    }

    /// The grant covering `path`, for messages.
    pub fn grant_of(&self, path: &str) -> Option<&ReadGrant> {
        self.read.iter().find(|grant| {
            self.absolute(grant)
                .is_some_and(|granted| below(&granted, path).is_some())
        })
    }
}

/// Whether an environment variable name matches a granted name or pattern
/// (a trailing `*` matches any rest).
pub fn env_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// `path` below `base`, as the rest after it (`""` for `base` itself).
pub fn below<'a>(base: &str, path: &'a str) -> Option<&'a str> {
    let base = base.trim_end_matches('/');
    let rest = path.strip_prefix(base)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

fn join(base: &str, relative: &str) -> String {
    if relative.is_empty() {
        base.to_string()
    } else {
        format!("{}/{relative}", base.trim_end_matches('/'))
    }
}

/// `path` with `.` and `..` resolved lexically; `None` if `..` would climb
/// above the start of a relative path. Above `/`, `..` stays at `/`, as in
/// POSIX (`/../x` is `/x`).
pub fn normalize(path: &str) -> Option<String> {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && !absolute {
                    return None;
                }
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    Some(if absolute {
        format!("/{joined}")
    } else {
        joined
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Root;

    fn grants() -> Grants {
        Grants {
            package: "m".into(),
            roots: vec![
                Root {
                    name: "$CARGO_MANIFEST_DIR".into(),
                    path: "/w/app".into(),
                },
                Root {
                    name: "$CARGO_WORKSPACE_DIR".into(),
                    path: "/w".into(),
                },
            ],
            read: vec![
                ReadGrant {
                    root: 0,
                    relative: "templates".into(),
                    origin: "test".into(),
                },
                ReadGrant {
                    root: 1,
                    relative: "askama.toml".into(),
                    origin: "test".into(),
                },
            ],
            env: vec![],
            env_patterns: vec![],
        }
    }

    #[test]
    fn paths_are_named_from_the_most_specific_root() {
        let g = grants();
        assert_eq!(
            g.name_of("/w/app/templates/a.html").as_deref(),
            Some("$CARGO_MANIFEST_DIR/templates/a.html")
        );
        assert_eq!(
            g.name_of("/w/askama.toml").as_deref(),
            Some("$CARGO_WORKSPACE_DIR/askama.toml")
        );
        assert_eq!(g.name_of("/w").as_deref(), Some("$CARGO_WORKSPACE_DIR"));
        assert_eq!(g.name_of("/wx/a"), None);
        assert_eq!(
            g.path_of("$CARGO_MANIFEST_DIR/templates/a.html").as_deref(),
            Some("/w/app/templates/a.html")
        );
    }

    #[test]
    fn grants_cover_their_path_and_what_is_below_a_directory() {
        let g = grants();
        assert!(g.covers("/w/app/templates"));
        assert!(g.covers("/w/app/templates/x/y.html"));
        assert!(g.covers("/w/askama.toml"));
        assert!(!g.covers("/w/app/templates2"));
        assert!(!g.covers("/w/app"));
        assert!(!g.covers("/w/askama.toml.bak"));
        assert!(!g.covers("/etc/hostname"));
    }

    #[test]
    fn normalisation_never_climbs_out() {
        assert_eq!(normalize("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(normalize("/a/b/").as_deref(), Some("/a/b"));
        assert_eq!(normalize("/..").as_deref(), Some("/"));
        assert_eq!(normalize("//../x").as_deref(), Some("/x"));
        assert_eq!(normalize("a/../.."), None);
        assert!(env_matches("CARGO_PKG_*", "CARGO_PKG_NAME"));
        assert!(!env_matches("CARGO_PKG_NAME", "CARGO_PKG_NAMES"));
    }
}
