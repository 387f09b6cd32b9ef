//! A package's build script as a `wasi:cli/command` component: the same
//! steps as a proc-macro component (locate, plan the work directory, build
//! in the shared target directory from the project's lockfile), with the
//! package's copy turned into a binary whose dependencies are the script's
//! build-dependencies ([`crate::Goal::BuildScript`]), and the script's
//! `fn main` wrapped to start in the package directory.
//!
//! It must never report a component that calls what WASI cannot do
//! (processes, threads), or whose sources ask `cfg!` about the platform they
//! run on (natively the host, as wasm wasm), as runnable:
//! [`BuiltBuildScript::unavailable`] says so, and the caller runs the script
//! natively or fails.

use crate::workdir;
use crate::{BuildError, BuildEvent, BuildOptions, Goal, cargo, files, io_error, key, locate};
use wasmacro_host::maintenance::mark_used;
use wasmacro_host::{ComponentHash, Runtime, Section};

/// A built build script.
#[derive(Clone, Debug)]
pub struct BuiltBuildScript {
    /// The package name.
    pub package: String,
    /// The package version.
    pub version: String,
    /// The component's content hash (in the cache).
    pub hash: ComponentHash,
    /// Why it cannot run as wasm (`it runs processes (…)`), if it cannot.
    pub unavailable: Option<String>,
}

/// Builds the build script of `options.source` ([`Goal::BuildScript`]) and
/// stores its component in the cache.
pub fn build_script_component(
    options: &BuildOptions,
    runtime: &Runtime,
    progress: &dyn Fn(BuildEvent),
) -> Result<BuiltBuildScript, BuildError> {
    debug_assert!(matches!(options.goal, Goal::BuildScript { .. }));
    let located = locate::locate(options)?;
    let plan = workdir::plan(&located, options)?;
    tracing::info!(package = %plan.name, version = %plan.version, "building build script");
    let key = plan.key(options);
    // The toolchain is in the key as the guest's key puts it in a macro's:
    // another rustc, another std in the component.
    let rustc = cargo::rustc_version(&options.rustc).map_err(io_error(format!(
        "running `{} -vV`",
        options.rustc.display()
    )))?;
    let record = options.cache.section(Section::Built).join(format!(
        "build-script-{}-{}-{}",
        plan.name,
        plan.version,
        key::Key::of(
            "built build script",
            [key.as_str().as_bytes(), rustc.as_slice()]
        )
        .short()
    ));
    let finish = |hash: ComponentHash, bytes: &[u8]| -> Result<BuiltBuildScript, BuildError> {
        let host_cfg = plan.host_cfg.as_ref().map(|cfg| {
            format!("it asks about the platform it runs on ({cfg}), which as wasm is wasm")
        });
        let calls =
            crate::spawns::unavailable_calls(bytes).map_err(|reason| BuildError::Invalid {
                package: plan.name.clone(),
                reason,
            })?;
        let unavailable = calls.or(host_cfg);
        Ok(BuiltBuildScript {
            package: plan.name.clone(),
            version: plan.version.clone(),
            hash,
            unavailable,
        })
    };
    let cached = std::fs::read_to_string(&record)
        .ok()
        .and_then(|text| ComponentHash::parse(text.trim()))
        .and_then(|hash| Some((runtime.cache().component_bytes(&hash).ok()?, hash)));
    if let Some((bytes, hash)) = cached {
        mark_used(&record);
        progress(BuildEvent::Cached);
        return finish(hash, &bytes);
    }
    let work = plan.work_dir(options, &key);
    mark_used(&work);
    plan.write(options, &work)?;
    let bytes = cargo::build(
        options,
        &work,
        (&plan.name, &plan.version),
        cargo::Wasm::BuildScript {
            features: plan.features(),
        },
        progress,
    )?;
    let hash = runtime
        .cache()
        .insert(&bytes)
        .map_err(|e| BuildError::Invalid {
            package: plan.name.clone(),
            reason: e.to_string(),
        })?;
    files::write_if_changed(&record, hash.as_str().as_bytes())?;
    finish(hash, &bytes)
}
