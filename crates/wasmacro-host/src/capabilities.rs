//! What a guest may read: the files, directories and environment variables
//! its [`Grants`] name, read-only, at their real absolute locations, and
//! nothing else — with every read recorded as an [`Input`].
//!
//! The guest's `wasi:filesystem` sees one preopened directory per granted
//! path (a granted file: its parent) plus `/`, backed by an empty directory.
//! wasi-libc resolves a path against the preopen with the longest matching
//! prefix, so a path outside every grant arrives here, through `/`, with its
//! full name. Each `wasi:filesystem` function that takes a path is wrapped: it
//! checks the path against the grants (an attempt outside them, or to write,
//! ends the expansion with an error naming the path and the policy line that
//! would grant it), calls wasmtime-wasi's own implementation, and records
//! what was read. Timestamps read as the epoch, as the clocks do.

use crate::wasi::SandboxAttempt;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use wasmacro_protocol::{Grants, Input, below, normalize};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as _;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    self as fs, Descriptor, DescriptorFlags, DescriptorStat, DirectoryEntryStream, ErrorCode,
    MetadataHashValue, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{FsError, FsResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder, WasiView};

/// The `wasi:filesystem` version wasmtime-wasi 48 defines.
const TYPES: &str = "wasi:filesystem/types@0.2.12";
const PREOPENS: &str = "wasi:filesystem/preopens@0.2.12";
const ENVIRONMENT: &str = "wasi:cli/environment@0.2.12";

/// The guest path of the preopen that catches every path outside the grants.
const ROOT: &str = "/";

/// The sandbox's view of one instance's grants and what it has read.
pub(crate) struct Capabilities {
    grants: Grants,
    /// The guest path of every descriptor handed out, by resource index.
    paths: HashMap<u32, String>,
    /// What the running expansion read.
    inputs: BTreeSet<Input>,
    /// The files already recorded in `inputs`: a macro that opens or stats
    /// one file many times (askama does) has it read and hashed once.
    recorded_files: BTreeSet<String>,
    /// Whether the guest has fetched its environment (wasi-libc does it once
    /// per instance and keeps it, so every later expansion may read it).
    environment_read: bool,
    /// Directories the guest may also write below (a build script's
    /// `OUT_DIR`; never anything for a macro), absolute and normalised.
    writable: Vec<String>,
}

/// What `path` holds now, as the input named `name`: a file with the digest
/// of its contents (`unreadable` if it cannot be read), a directory with the
/// digest of its listing, or a missing path. Whatever a macro looked at
/// leaves one, so the expansion cache can tell it changed.
fn file_input(path: &str, name: String) -> Option<Input> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => Some(Input::Directory {
            path: name,
            digest: directory_digest(path).unwrap_or_else(|| "unreadable".into()),
        }),
        Ok(_) => Some(Input::File {
            path: name,
            digest: std::fs::read(path)
                .map(|bytes| blake3::hash(&bytes).to_hex().to_string())
                .unwrap_or_else(|_| "unreadable".into()),
        }),
        Err(_) => Some(Input::Missing { path: name }),
    }
}

/// The digest of a directory's listing: its entry names, sorted, each
/// directory's with a `/`.
fn directory_digest(path: &str) -> Option<String> {
    let entries = std::fs::read_dir(path).ok()?;
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                name + "/"
            } else {
                name
            }
        })
        .collect();
    names.sort();
    Some(
        blake3::hash(names.join("\n").as_bytes())
            .to_hex()
            .to_string(),
    )
}

/// Whether an input an earlier expansion recorded is still what this
/// compilation would give the guest: the same file contents, listing,
/// absence or variable value (named from the roots as recorded).
pub(crate) fn still_holds(input: &Input, grants: &Grants) -> bool {
    let located = |name: &str| {
        if name.starts_with('/') {
            Some(name.to_string())
        } else {
            grants.path_of(name)
        }
    };
    match input {
        Input::File { path, .. } | Input::Missing { path } => located(path)
            .and_then(|real| file_input(&real, path.clone()))
            .is_some_and(|now| now == *input),
        Input::Directory { path, .. } => located(path)
            .and_then(|real| file_input(&real, path.clone()))
            .is_some_and(|now| now == *input),
        Input::Env { name, value } => {
            let now = grants
                .env
                .iter()
                .find(|(granted, _)| granted == name)
                .map(|(_, value)| grants.name_of(value).unwrap_or_else(|| value.clone()));
            now == *value
        }
    }
}

impl Capabilities {
    /// The capabilities `grants` give; `context` gets the preopens and the
    /// variables. `empty` is an empty directory that backs `/`.
    pub(crate) fn new(
        grants: &Grants,
        context: &mut WasiCtxBuilder,
        empty: &Path,
    ) -> Result<Capabilities, String> {
        Capabilities::with_writable(grants, &[], context, empty)
    }

    /// [`Capabilities::new`], with `writable` directories (absolute,
    /// normalised, existing) the guest may also create, change and remove
    /// files below: a build script's `OUT_DIR`.
    pub(crate) fn with_writable(
        grants: &Grants,
        writable: &[String],
        context: &mut WasiCtxBuilder,
        empty: &Path,
    ) -> Result<Capabilities, String> {
        let mut preopened = BTreeSet::new();
        for directory in writable {
            if preopened.insert(directory.clone()) {
                context
                    .preopened_dir(directory, directory, FsPerms::ReadWrite)
                    .map_err(|e| format!("cannot open writable directory {directory}: {e:#}"))?;
            }
        }
        for grant in &grants.read {
            let Some(path) = grants.absolute(grant) else {
                continue;
            };
            let Ok(metadata) = std::fs::metadata(&path) else {
                // A granted path that does not exist: looking for it goes to
                // `/`, which finds nothing there either.
                continue;
            };
            let directory = if metadata.is_dir() {
                path
            } else {
                match Path::new(&path).parent().and_then(Path::to_str) {
                    Some(parent) => parent.to_string(),
                    None => continue,
                }
            };
            if preopened.insert(directory.clone()) {
                context
                    .preopened_dir(&directory, &directory, FsPerms::ReadOnly)
                    .map_err(|e| format!("cannot open granted directory {directory}: {e:#}"))?;
            }
        }
        context
            .preopened_dir(empty, ROOT, FsPerms::ReadOnly)
            .map_err(|e| format!("cannot open {}: {e:#}", empty.display()))?;
        context.envs(&grants.env);
        Ok(Capabilities {
            grants: grants.clone(),
            paths: HashMap::new(),
            inputs: BTreeSet::new(),
            recorded_files: BTreeSet::new(),
            environment_read: false,
            writable: writable.to_vec(),
        })
    }

    /// Whether the guest may do `access` to `path`: read or list what its
    /// grants cover, and anything below a writable directory.
    fn allows(&self, path: &str, access: Access) -> bool {
        self.writable(path) || (access != Access::Write && self.grants.covers(path))
    }

    /// Whether `path` lies in a writable directory.
    fn writable(&self, path: &str) -> bool {
        self.writable.iter().any(|dir| below(dir, path).is_some())
    }

    /// The grants in force.
    pub(crate) fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Starts a new expansion's record.
    pub(crate) fn begin(&mut self) {
        self.inputs.clear();
        self.recorded_files.clear();
    }

    /// What the expansion since [`Capabilities::begin`] read, sorted.
    pub(crate) fn inputs(&self) -> Vec<Input> {
        let mut inputs: BTreeSet<Input> = self.inputs.clone();
        if self.environment_read {
            // A value that is a path below a root (`CARGO_MANIFEST_DIR`,
            // `OUT_DIR`) is named from it, as read paths are: the record
            // stays the same wherever the project is checked out.
            inputs.extend(self.grants.env.iter().map(|(name, value)| Input::Env {
                name: name.clone(),
                value: Some(self.grants.name_of(value).unwrap_or_else(|| value.clone())),
            }));
            // A variable granted by name but not set was read too: its
            // absence decided the result as much as a value would.
            let unset = self.grants.env_patterns.iter().filter(|pattern| {
                !pattern.ends_with('*') && !self.grants.env.iter().any(|(name, _)| name == *pattern)
            });
            inputs.extend(unset.map(|name| Input::Env {
                name: name.clone(),
                value: None,
            }));
        }
        inputs.into_iter().collect()
    }

    /// The paths the running expansion looked for that do not exist.
    pub(crate) fn missing(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .filter_map(|input| match input {
                Input::Missing { path } => Some(path.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether the guest fetched its environment.
    pub(crate) fn environment_read(&self) -> bool {
        self.environment_read
    }

    /// `path` as the log names it: from its root, or as is.
    fn name(&self, path: &str) -> String {
        self.grants
            .name_of(path)
            .unwrap_or_else(|| path.to_string())
    }

    fn record_file(&mut self, path: &str) {
        // What a build script writes is its output, not an input.
        if self.writable(path) || !self.recorded_files.insert(path.to_string()) {
            return;
        }
        if let Some(input) = file_input(path, self.name(path)) {
            self.inputs.insert(input);
        }
    }

    fn record_directory(&mut self, path: &str) {
        if let Some(input) = file_input(path, self.name(path)) {
            self.inputs.insert(input);
        }
    }

    /// The guest path `path` names relative to descriptor `fd`.
    fn resolve(&self, fd: u32, path: &str) -> Option<String> {
        let base = self.paths.get(&fd)?;
        if path.starts_with('/') {
            return None;
        }
        normalize(&format!("{base}/{path}"))
    }

    /// The attempt to report for reading `path` without a grant.
    fn denied(&self, path: &str, action: Access) -> SandboxAttempt {
        SandboxAttempt::Read {
            path: path.to_string(),
            action,
            suggestion: self.suggestion(path),
            package: self.grants.package.clone(),
        }
    }

    /// The policy entry that would grant `path`: the path from its root, if
    /// it has one.
    fn suggestion(&self, path: &str) -> Option<String> {
        self.grants.name_of(path)
    }
}

/// Checks grants that came from a shim: absolute roots, root-relative paths
/// that never climb out, indices that name a root.
pub(crate) fn validate(grants: &Grants) -> Result<(), String> {
    for root in &grants.roots {
        if !root.path.starts_with('/') || normalize(&root.path).as_deref() != Some(&root.path) {
            return Err(format!(
                "root {} is not a normalised absolute path",
                root.name
            ));
        }
    }
    for grant in &grants.read {
        if grants.roots.get(grant.root as usize).is_none() {
            return Err(format!("grant {:?} names no root", grant.relative));
        }
        let relative_ok = grant.relative.is_empty()
            || (!grant.relative.starts_with('/')
                && normalize(&grant.relative).as_deref() == Some(&grant.relative));
        if !relative_ok {
            return Err(format!(
                "grant path {:?} is not a plain relative path",
                grant.relative
            ));
        }
    }
    Ok(())
}

/// What a guest tried to do with a path.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Access {
    /// Open or look up.
    Read,
    /// List.
    List,
    /// Create, change or remove.
    Write,
}

/// Access to the capabilities of a store's data.
pub(crate) trait HasCapabilities: WasiView + crate::wasi::SandboxLog {
    fn capabilities(&mut self) -> &mut Capabilities;
}

type Store<'a, T> = StoreContextMut<'a, T>;

/// The error a wasmtime-wasi filesystem failure becomes for the guest.
fn guest_error<T: HasCapabilities>(state: &mut T, error: FsError) -> wasmtime::Result<ErrorCode> {
    fs::Host::convert_error_code(&mut state.filesystem(), error)
}

/// A stat with the timestamps of the epoch: file times are not content, and
/// differ between two checkouts of the same files.
fn without_times(mut stat: DescriptorStat) -> DescriptorStat {
    let epoch = Some(wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime {
        seconds: 0,
        nanoseconds: 0,
    });
    stat.data_access_timestamp = epoch;
    stat.data_modification_timestamp = epoch;
    stat.status_change_timestamp = epoch;
    stat
}

/// Replaces the `wasi:filesystem` and `wasi:cli/environment` functions that
/// reach outside the guest with the checked, recording versions.
pub(crate) fn watch<T: HasCapabilities + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);

    let mut preopens = linker.instance(PREOPENS)?;
    preopens.func_wrap("get-directories", |mut store: Store<'_, T>, (): ()| {
        let state = store.data_mut();
        let directories = state.filesystem().get_directories()?;
        let capabilities = state.capabilities();
        for (fd, path) in &directories {
            capabilities.paths.insert(fd.rep(), path.clone());
        }
        Ok((directories,))
    })?;

    let mut environment = linker.instance(ENVIRONMENT)?;
    environment.func_wrap("get-environment", |mut store: Store<'_, T>, (): ()| {
        let capabilities = store.data_mut().capabilities();
        capabilities.environment_read = true;
        Ok((capabilities.grants.env.clone(),))
    })?;

    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]descriptor.open-at",
        |mut store: Store<'_, T>,
         (fd, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            let state = store.data_mut();
            let writes = flags
                .intersects(DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY)
                || open_flags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE);
            let access = if writes { Access::Write } else { Access::Read };
            let Some(full) = check(state, fd.rep(), &path, access)? else {
                return Ok((Err(ErrorCode::NoEntry),));
            };
            let opened = fs::HostDescriptor::open_at(
                &mut state.filesystem(),
                fd,
                path_flags,
                path,
                open_flags,
                flags,
            );
            let capabilities = state.capabilities();
            capabilities.record_file(&full);
            match opened {
                Ok(descriptor) => {
                    capabilities.paths.insert(descriptor.rep(), full);
                    Ok((Ok(descriptor),))
                }
                Err(error) => Ok((Err(guest_error(state, error)?),)),
            }
        },
    )?;
    types.func_wrap(
        "[method]descriptor.stat-at",
        |mut store: Store<'_, T>,
         (fd, path_flags, path): (Resource<Descriptor>, PathFlags, String)| {
            let state = store.data_mut();
            if let Some(ancestor) = ancestor(state, fd.rep(), &path) {
                tracing::debug!(ancestor, "stat of a granted path's ancestor");
                return Ok((Ok(ancestor_stat()),));
            }
            let Some(full) = check(state, fd.rep(), &path, Access::Read)? else {
                return Ok((Err(ErrorCode::NoEntry),));
            };
            let stat = fs::HostDescriptor::stat_at(&mut state.filesystem(), fd, path_flags, path);
            state.capabilities().record_file(&full);
            Ok((result(state, stat.map(without_times))?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.stat",
        |mut store: Store<'_, T>, (fd,): (Resource<Descriptor>,)| {
            let state = store.data_mut();
            let stat = fs::HostDescriptor::stat(&mut state.filesystem(), fd);
            Ok((result(state, stat.map(without_times))?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.readlink-at",
        |mut store: Store<'_, T>, (fd, path): (Resource<Descriptor>, String)| {
            let state = store.data_mut();
            if ancestor(state, fd.rep(), &path).is_some() {
                // Not a symbolic link, as far as the guest can tell.
                return Ok((Err(ErrorCode::Invalid),));
            }
            if check(state, fd.rep(), &path, Access::Read)?.is_none() {
                return Ok((Err(ErrorCode::NoEntry),));
            }
            let target = fs::HostDescriptor::readlink_at(&mut state.filesystem(), fd, path);
            Ok((result(state, target)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.metadata-hash-at",
        |mut store: Store<'_, T>,
         (fd, path_flags, path): (Resource<Descriptor>, PathFlags, String)| {
            let state = store.data_mut();
            if check(state, fd.rep(), &path, Access::Read)?.is_none() {
                return Ok((Err(ErrorCode::NoEntry),));
            }
            let hash: FsResult<MetadataHashValue> =
                fs::HostDescriptor::metadata_hash_at(&mut state.filesystem(), fd, path_flags, path);
            Ok((result(state, hash)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.read-directory",
        |mut store: Store<'_, T>, (fd,): (Resource<Descriptor>,)| {
            let state = store.data_mut();
            let path = state.capabilities().paths.get(&fd.rep()).cloned();
            let Some(path) = path else {
                return Ok((Err(ErrorCode::BadDescriptor),));
            };
            check_path(state, &path, Access::List)?;
            let entries: FsResult<Resource<DirectoryEntryStream>> =
                fs::HostDescriptor::read_directory(&mut state.filesystem(), fd);
            state.capabilities().record_directory(&path);
            Ok((result(state, entries)?,))
        },
    )?;
    // Every function that changes the filesystem: read-only preopens already
    // refuse them, but the guest should hear why, with the path. Below a
    // writable directory they do what they say.
    macro_rules! checked_write {
        ($name:literal, $method:ident) => {
            types.func_wrap(
                concat!("[method]descriptor.", $name),
                |mut store: Store<'_, T>,
                 (fd, path): (Resource<Descriptor>, String)|
                 -> wasmtime::Result<(Result<(), ErrorCode>,)> {
                    let state = store.data_mut();
                    check_writes(state, &[(fd.rep(), &path)])?;
                    let done = fs::HostDescriptor::$method(&mut state.filesystem(), fd, path);
                    Ok((result(state, done)?,))
                },
            )?;
        };
    }
    checked_write!("create-directory-at", create_directory_at);
    checked_write!("remove-directory-at", remove_directory_at);
    checked_write!("unlink-file-at", unlink_file_at);
    // Two paths: both must lie below a writable directory.
    types.func_wrap(
        "[method]descriptor.rename-at",
        |mut store: Store<'_, T>,
         (fd, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            String,
            Resource<Descriptor>,
            String,
        )|
         -> wasmtime::Result<(Result<(), ErrorCode>,)> {
            let state = store.data_mut();
            check_writes(state, &[(fd.rep(), &old_path), (new_fd.rep(), &new_path)])?;
            let done = fs::HostDescriptor::rename_at(
                &mut state.filesystem(),
                fd,
                old_path,
                new_fd,
                new_path,
            );
            Ok((result(state, done)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.link-at",
        |mut store: Store<'_, T>,
         (fd, flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )|
         -> wasmtime::Result<(Result<(), ErrorCode>,)> {
            let state = store.data_mut();
            check_writes(state, &[(fd.rep(), &old_path), (new_fd.rep(), &new_path)])?;
            let done = fs::HostDescriptor::link_at(
                &mut state.filesystem(),
                fd,
                flags,
                old_path,
                new_fd,
                new_path,
            );
            Ok((result(state, done)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.set-times-at",
        |mut store: Store<'_, T>,
         (fd, flags, path, atime, mtime): (
            Resource<Descriptor>,
            PathFlags,
            String,
            fs::NewTimestamp,
            fs::NewTimestamp,
        )|
         -> wasmtime::Result<(Result<(), ErrorCode>,)> {
            let state = store.data_mut();
            check_writes(state, &[(fd.rep(), &path)])?;
            let done = fs::HostDescriptor::set_times_at(
                &mut state.filesystem(),
                fd,
                flags,
                path,
                atime,
                mtime,
            );
            Ok((result(state, done)?,))
        },
    )?;
    // A symbolic link could lead a later open out of where it was made, and
    // no build script needs one: refused wherever it would be.
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: Store<'_, T>,
         (fd, _target, path): (Resource<Descriptor>, String, String)|
         -> wasmtime::Result<(Result<(), ErrorCode>,)> {
            let state = store.data_mut();
            let full = state
                .capabilities()
                .resolve(fd.rep(), &path)
                .unwrap_or(path);
            Err(refuse_path(state, &full, Access::Write))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Ends the call with the sandbox's error unless every `(descriptor, path)`
/// names a place below a writable directory.
fn check_writes<T: HasCapabilities>(state: &mut T, paths: &[(u32, &str)]) -> wasmtime::Result<()> {
    for (fd, path) in paths {
        let full = state.capabilities().resolve(*fd, path);
        match full {
            Some(full) if state.capabilities().allows(&full, Access::Write) => {}
            full => {
                let full = full.unwrap_or_else(|| path.to_string());
                return Err(refuse_path(state, &full, Access::Write));
            }
        }
    }
    Ok(())
}

/// The guest path of `path` relative to `fd` if it is a directory above a
/// granted path (`/home` for `/home/me/app/templates`). `realpath` (which
/// `canonicalize` uses) looks up every component of a path: such lookups see
/// a plain directory, the same on every machine, and nothing of its contents.
fn ancestor<T: HasCapabilities>(state: &mut T, fd: u32, path: &str) -> Option<String> {
    let capabilities = state.capabilities();
    let full = capabilities.resolve(fd, path)?;
    let grants = &capabilities.grants;
    let prefix = format!("{}/", full.trim_end_matches('/'));
    grants
        .read
        .iter()
        .filter_map(|grant| grants.absolute(grant))
        .any(|granted| granted.starts_with(&prefix))
        .then_some(full)
}

/// What a stat of a granted path's ancestor answers.
fn ancestor_stat() -> DescriptorStat {
    without_times(DescriptorStat {
        type_: fs::DescriptorType::Directory,
        link_count: 1,
        size: 0,
        data_access_timestamp: None,
        data_modification_timestamp: None,
        status_change_timestamp: None,
    })
}

/// The guest path of `path` relative to `fd`, if the grants allow `access`
/// to it; `None` if they do not but nothing exists there (the guest gets
/// "not found", as it would natively: a macro probing for an optional file
/// keeps working, and learns nothing it could not guess); otherwise the error
/// that ends the expansion.
fn check<T: HasCapabilities>(
    state: &mut T,
    fd: u32,
    path: &str,
    access: Access,
) -> wasmtime::Result<Option<String>> {
    let capabilities = state.capabilities();
    tracing::debug!(fd, base = ?capabilities.paths.get(&fd), path, ?access, "filesystem call");
    let Some(full) = capabilities.resolve(fd, path) else {
        let shown = match capabilities.paths.get(&fd) {
            Some(base) => format!("{base}/{path}"),
            None => path.to_string(),
        };
        return Err(refuse_path(state, &shown, access));
    };
    if capabilities.allows(&full, access) {
        return Ok(Some(full));
    }
    let missing = access != Access::Write
        && std::fs::symlink_metadata(&full)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if missing {
        let name = capabilities.name(&full);
        capabilities.inputs.insert(Input::Missing { path: name });
        return Ok(None);
    }
    Err(refuse_path(state, &full, access))
}

fn check_path<T: HasCapabilities>(
    state: &mut T,
    path: &str,
    access: Access,
) -> wasmtime::Result<()> {
    if state.capabilities().allows(path, access) {
        return Ok(());
    }
    Err(refuse_path(state, path, access))
}

fn refuse_path<T: HasCapabilities>(state: &mut T, path: &str, access: Access) -> wasmtime::Error {
    tracing::debug!(path, ?access, "refused");
    // That the path exists decided a refused read (a missing one is "not
    // found"): an input, so a cached refusal is not taken once it is gone.
    // A write is refused whatever is there.
    if access != Access::Write {
        let name = state.capabilities().name(path);
        if let Some(input) = file_input(path, name) {
            state.capabilities().inputs.insert(input);
        }
    }
    let attempt = state.capabilities().denied(path, access);
    state.refuse(attempt)
}

fn result<T: HasCapabilities, V>(
    state: &mut T,
    value: FsResult<V>,
) -> wasmtime::Result<Result<V, ErrorCode>> {
    match value {
        Ok(value) => Ok(Ok(value)),
        Err(error) => Ok(Err(guest_error(state, error)?)),
    }
}
