//! Running cargo for the component build: `cargo metadata` to see packages
//! the way cargo does, and `cargo build` for `wasm32-wasip2`. Neither may
//! inherit the settings of a cargo build the component build runs inside.

use crate::{BuildError, BuildEvent, BuildOptions, WASM_TARGET, io_error};
use std::path::{Path, PathBuf};
use std::process::Command;
use wasmacro_host::Section;
use wasmacro_host::maintenance::mark_used;

/// The component build's complete cargo output, in its work directory: the
/// fallback warning names it.
pub(crate) const BUILD_LOG: &str = "build.log";

/// `CARGO_*` variables nested cargo runs keep: where cargo lives, how it
/// reaches registries, and the jobserver that bounds parallelism.
const INHERITED_CARGO_ENV: &[&str] = &[
    "CARGO_HOME",
    "CARGO_MAKEFLAGS",
    "CARGO_NET_",
    "CARGO_HTTP_",
    "CARGO_REGISTRIES_",
    "CARGO_REGISTRY_",
];

/// When run from a build script or rustc wrapper, the environment carries
/// cargo's settings for *that* build (profile overrides, the package being
/// compiled, flags, wrappers…): none of them may reach a nested cargo.
fn scrub_cargo_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && !INHERITED_CARGO_ENV.iter().any(|p| name.starts_with(p)) {
            command.env_remove(&*name);
        }
    }
    command
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .stdin(std::process::Stdio::null());
}

/// `cargo metadata` (with dependencies, for the host and for wasm) of the
/// workspace `manifest` belongs to.
pub(crate) fn metadata(
    options: &BuildOptions,
    manifest: &Path,
    what: &str,
) -> Result<cargo_metadata::Metadata, BuildError> {
    let mut platforms = vec!["--filter-platform".to_string(), WASM_TARGET.to_string()];
    if let Some(host) = host_triple(&options.rustc) {
        platforms.extend(["--filter-platform".to_string(), host]);
    }
    let mut command = cargo_metadata::MetadataCommand::new()
        .cargo_path(&options.cargo)
        .manifest_path(manifest)
        .other_options(platforms)
        .env("RUSTC", &options.rustc)
        .cargo_command();
    scrub_cargo_env(&mut command);
    let output = command.output().map_err(io_error(format!(
        "running {} metadata",
        options.cargo.display()
    )))?;
    let locate = |reason: String| BuildError::Locate {
        what: what.to_string(),
        reason,
    };
    if !output.status.success() {
        return Err(locate(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    let stdout = String::from_utf8(output.stdout)
        .map_err(|_| locate("cargo metadata printed invalid UTF-8".into()))?;
    let json = stdout
        .lines()
        .find(|line| line.starts_with('{'))
        .ok_or_else(|| locate("cargo metadata printed no JSON".into()))?;
    cargo_metadata::MetadataCommand::parse(json)
        .map_err(|e| locate(format!("cargo metadata printed invalid JSON: {e}")))
}

/// The root directory of the workspace `manifest` belongs to.
pub(crate) fn workspace_root(options: &BuildOptions, manifest: &Path) -> Option<PathBuf> {
    let mut command = Command::new(&options.cargo);
    command
        .args([
            "locate-project",
            "--workspace",
            "--message-format",
            "plain",
            "--manifest-path",
        ])
        .arg(manifest);
    scrub_cargo_env(&mut command);
    let output = command.output().ok().filter(|o| o.status.success())?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    path.parent().map(Path::to_path_buf)
}

/// `rustc -vV` of `rustc`, run once per process and compiler: the guest's
/// key and the host triple both come from it.
pub(crate) fn rustc_version(rustc: &Path) -> std::io::Result<Vec<u8>> {
    static SEEN: std::sync::Mutex<Vec<(PathBuf, Vec<u8>)>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, version)) = seen.iter().find(|(path, _)| path == rustc) {
        return Ok(version.clone());
    }
    let output = Command::new(rustc).arg("-vV").output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "`{} -vV` failed: {}",
            rustc.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    seen.push((rustc.to_path_buf(), output.stdout.clone()));
    Ok(output.stdout)
}

/// The host's target triple, from `rustc -vV`.
fn host_triple(rustc: &Path) -> Option<String> {
    String::from_utf8(rustc_version(rustc).ok()?)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
}

/// What [`build`] makes in a work directory.
pub(crate) enum Wasm<'a> {
    /// The proc-macro component: the wrapper crate, with the guest
    /// `proc_macro` given to every crate and declarations recorded.
    Component {
        /// The guest `proc_macro` rlib.
        guest_rlib: &'a Path,
        /// Where the register macros record declarations.
        decls_dir: &'a Path,
    },
    /// A build script's command component, with these features.
    BuildScript {
        /// The package's features, as cargo gave them to the native script.
        features: &'a [String],
    },
}

/// Builds the work directory `work` for wasm and returns the component's
/// bytes. cargo's output goes to [`BUILD_LOG`]; each crate it starts is
/// reported to `progress`.
///
/// Every build shares one target directory, where cargo puts the component
/// under its crate's name: the build holds a lock on the directory until it
/// has read the bytes, or another build of the same crate (other features,
/// another project) could replace them in between. cargo serialises builds
/// of one target directory anyway, so the lock costs no parallelism.
pub(crate) fn build(
    options: &BuildOptions,
    work: &Path,
    package: (&str, &str),
    what: Wasm<'_>,
    progress: &dyn Fn(BuildEvent),
) -> Result<Vec<u8>, BuildError> {
    let (name, version) = package;
    let target_dir = options.cache.section(Section::Target);
    std::fs::create_dir_all(&target_dir)
        .map_err(io_error(format!("creating {}", target_dir.display())))?;
    let lock_path = target_dir.join(".wasmacro-build.lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(io_error(format!("creating {}", lock_path.display())))?;
    lock.lock()
        .map_err(io_error(format!("locking {}", lock_path.display())))?;
    for dir in ["release", WASM_TARGET] {
        mark_used(&target_dir.join(dir));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut flags = Vec::new();
    if let Wasm::Component { guest_rlib, .. } = what {
        flags.extend([
            "--extern".to_string(),
            format!("proc_macro={}", guest_rlib.display()),
            // Crates that depend on proc_macro2 find *its* `proc_macro` by
            // searching, not by `--extern`: without this they would find the
            // sysroot's wasm `libproc_macro` and fail with E0460.
            "-L".to_string(),
            format!(
                "dependency={}",
                guest_rlib.parent().unwrap_or(Path::new(".")).display()
            ),
        ]);
    }
    flags.extend([
        "--cap-lints=warn".to_string(),
        format!(
            "--remap-path-prefix={}=/wasmacro",
            options.cache.root().display()
        ),
        // rustc applies the last matching prefix: these name the work
        // directories by what they are, not by their content-keyed names.
        format!("--remap-path-prefix={}=/wasmacro/component", work.display()),
        format!(
            "--remap-path-prefix={}=/wasmacro/{name}-{version}",
            work.join(crate::workdir::PACKAGE_DIR).display(),
        ),
        // cargo names a workspace member's sources relative to the work
        // directory, and debug info keeps them so (beside the remapped
        // working directory): name the package the same way there.
        format!(
            "--remap-path-prefix={}=/wasmacro/{name}-{version}",
            crate::workdir::PACKAGE_DIR
        ),
    ]);
    if let Some(home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    let log_path = work.join(BUILD_LOG);
    let mut command = Command::new(&options.cargo);
    command
        .current_dir(work)
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--message-format=short",
            "--color=never",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    scrub_cargo_env(&mut command);
    match what {
        Wasm::Component { decls_dir, .. } => {
            command.env("WASMACRO_DECLS_DIR", decls_dir);
        }
        Wasm::BuildScript { features } => {
            command
                .args(["--package", name, "--bin"])
                .arg(crate::manifest::build_script_bin(name, version));
            command.arg("--no-default-features");
            if !features.is_empty() {
                command.arg("--features").arg(features.join(","));
            }
        }
    }
    command
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"))
        .env("RUSTC", &options.rustc)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(io_error(format!("running {}", options.cargo.display())))?;
    let mut log = String::new();
    if let Some(pipe) = child.stderr.take() {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(pipe).lines() {
            let line = line.map_err(io_error("reading cargo's output"))?;
            if let Some(unit) = line.trim_start().strip_prefix("Compiling ") {
                progress(BuildEvent::Compiling(
                    unit.split(" (").next().unwrap_or(unit).to_string(),
                ));
            }
            log.push_str(&line);
            log.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(io_error(format!("running {}", options.cargo.display())))?;
    std::fs::write(&log_path, &log).map_err(io_error(format!("writing {}", log_path.display())))?;
    if !status.success() {
        return Err(BuildError::Cargo {
            package: name.to_string(),
            stderr: log,
            log: log_path,
        });
    }
    let artifact = match what {
        Wasm::Component { .. } => format!("wasmacro_component_{}.wasm", name.replace('-', "_")),
        Wasm::BuildScript { .. } => {
            format!("{}.wasm", crate::manifest::build_script_bin(name, version))
        }
    };
    let path = target_dir.join(WASM_TARGET).join("release").join(artifact);
    let bytes = std::fs::read(&path).map_err(io_error(format!("reading {}", path.display())))?;
    drop(lock);
    Ok(bytes)
}
