//! The `wasmacro` and `cargo-wasmacro` executables: build proc macros into
//! WebAssembly components, run them inside stable rustc through generated
//! shims, and put cargo projects' proc macros in wasm.
//!
//! The library is the command line; it has one job per subcommand and adds
//! context to the other crates' typed errors. It must never swallow an error,
//! change a rustc or cargo exit code, or write to the user's `Cargo.lock`.

mod expand;

pub use expand::protocol_tokens;
pub use wasmacro_cargo::{grants, policy};

use wasmacro_cargo::{cargo_command, macro_unit, policy_command, rustc_wrapper};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wasmacro_build::{BuildOptions, PackageSource};
use wasmacro_host::{Backend, CacheDir, Limits, Runtime, RuntimeConfig};

#[derive(Parser)]
#[command(
    name = "wasmacro",
    version,
    about = "Rust proc macros as deterministic WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum CacheAction {
    /// What each section of the cache holds.
    Stats,
    /// Check every component and precompiled entry; remove the corrupt ones
    /// (they are rebuilt when next needed). Fails if any were found.
    Verify,
    /// Remove entries not used for a while.
    Gc {
        /// Remove what was not used for this many days.
        #[arg(long, default_value_t = 30)]
        max_age_days: u64,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Collect components too. `cargo wasmacro` target directories refer
        /// to their components by hash: after this, such a project needs
        /// `cargo clean -p NAME` for the macros whose components went.
        #[arg(long)]
        include_components: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Build a proc-macro package into a wasm32-wasip2 component.
    Build {
        /// The package directory (default: the current directory).
        path: Option<PathBuf>,
        /// Build `NAME@VERSION` from the registry instead of a path.
        #[arg(long = "crate", value_name = "NAME@VERSION", conflicts_with = "path")]
        krate: Option<String>,
        /// Features to enable (comma- or space-separated; repeatable).
        #[arg(long, short = 'F', value_delimiter = ',')]
        features: Vec<String>,
        /// Do not enable the package's default features.
        #[arg(long)]
        no_default_features: bool,
        /// Keep DWARF line tables in the component, so that a backtrace of a
        /// panic (`RUST_BACKTRACE=1`) gives file and line.
        #[arg(long)]
        debug_info: bool,
        /// Where to write `<name>.wasm` and `<name>.macros.json`.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Run one macro of a component on Rust source (a file, or stdin) and
    /// print what it expands to.
    Expand {
        /// The component.
        component: PathBuf,
        /// The macro's name (the derive's trait name for a derive).
        #[arg(value_name = "MACRO")]
        macro_name: String,
        /// The input file; stdin if absent.
        input: Option<PathBuf>,
        /// An attribute macro's own arguments, e.g. `--args 'rename = "x"'`.
        #[arg(long)]
        args: Option<String>,
    },
    /// Show what a component exports and imports.
    Inspect {
        /// The component.
        component: PathBuf,
    },
    /// Run rustc, replacing every `--extern NAME=PATH.wasm` with a native shim
    /// (`wasmacro rustc RUSTC ARGS…`; also works as `RUSTC_WRAPPER=wasmacro`).
    #[command(disable_help_flag = true)]
    Rustc {
        /// The rustc to run, then its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<OsString>,
    },
    /// Run a cargo command with every proc macro compiled to wasm
    /// (what `cargo wasmacro …` runs).
    #[command(disable_help_flag = true)]
    Cargo {
        /// `[--strict] COMMAND [cargo args…]`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Show where each proc macro of the project runs and what it may read
    /// (the project's policy, its authors' declarations, the built-in grants).
    Policy {
        /// The project's manifest (default: the current directory's).
        #[arg(long)]
        manifest_path: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Look after the cache: `stats`, `verify`, `gc`.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Serve one component to a shim over stdin/stdout (started by shims).
    #[command(hide = true)]
    Serve,
    /// Run a build script's component in the sandbox (what the launcher
    /// cargo runs in place of a build script does).
    #[command(hide = true)]
    RunBuildScript {
        /// The package whose build script it is.
        #[arg(long)]
        package: String,
        /// The component's hash in the cache.
        #[arg(long)]
        component: String,
        /// The cache directory.
        #[arg(long)]
        cache: PathBuf,
    },
}

/// `cargo-wasmacro`: cargo runs it as `cargo-wasmacro wasmacro ARGS…`. As a
/// rustc wrapper or server it behaves like `wasmacro`.
pub fn cargo_main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "wasmacro") {
        init_logging();
        return report(cargo_command::run(args[2..].to_vec()));
    }
    main()
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WASMACRO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

/// `wasmacro ARGS…`, or a rustc wrapper when the first argument is a rustc.
pub fn main() -> ExitCode {
    init_logging();

    // Cargo runs a `RUSTC_WRAPPER` as `wrapper /path/to/rustc args…`, which
    // collides with the subcommand `wasmacro rustc RUSTC args…` when cargo's
    // rustc is plain `rustc`: a second rustc-looking argument means the
    // subcommand form.
    let args: Vec<OsString> = std::env::args_os().collect();
    let is_rustc = |i: usize| {
        args.get(i)
            .is_some_and(|arg| rustc_wrapper::looks_like_rustc(arg))
    };
    if is_rustc(1) {
        let start = if args[1] == "rustc" && is_rustc(2) {
            2
        } else {
            1
        };
        return report(rustc_wrapper::run(args[start..].to_vec()));
    }

    let cli = Cli::parse();
    report(match cli.command {
        Command::Build {
            path,
            krate,
            features,
            no_default_features,
            debug_info,
            out_dir,
        } => {
            let flags = BuildFlags {
                features,
                no_default_features,
                debug_info,
            };
            build(path, krate, flags, out_dir).map(|()| ExitCode::SUCCESS)
        }
        Command::Inspect { component } => inspect(component).map(|()| ExitCode::SUCCESS),
        Command::Expand {
            component,
            macro_name,
            input,
            args,
        } => run_expand(component, macro_name, input, args).map(|()| ExitCode::SUCCESS),
        Command::Rustc { args } => rustc_wrapper::run(args),
        Command::Cargo { args } => cargo_command::run(args),
        Command::Serve => serve().map(|()| ExitCode::SUCCESS),
        Command::RunBuildScript {
            package,
            component,
            cache,
        } => wasmacro_cargo::build_script_run::run(&package, &component, &cache),
        Command::Cache { action } => cache_command(action),
        Command::Policy {
            manifest_path,
            json,
        } => policy_command::run(manifest_path.as_deref(), json).map(|()| ExitCode::SUCCESS),
    })
}

fn report(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<Runtime> {
    let config = RuntimeConfig {
        limits: limits_from_env()?,
        backend: Backend::from_env()?,
        ..RuntimeConfig::default()
    };
    Runtime::new(CacheDir::from_env(), config).context("starting the wasm runtime")
}

/// `WASMACRO_LIMITS` (set by `cargo wasmacro` from the policy), else the
/// `limits` table of the workspace the permanent opt-in names
/// (`WASMACRO_WORKSPACE`), else the defaults.
fn limits_from_env() -> Result<Limits> {
    if std::env::var_os(Limits::ENV).is_some() {
        return Limits::from_env().with_context(|| format!("reading `{}`", Limits::ENV));
    }
    let Some(workspace) = std::env::var_os(macro_unit::WORKSPACE_ENV) else {
        return Ok(Limits::default());
    };
    let policy = policy::Policy::of_workspace(Path::new(&workspace))?;
    Ok(Limits::parse(&policy.limits)?)
}

/// How `wasmacro build` builds a component.
struct BuildFlags {
    features: Vec<String>,
    no_default_features: bool,
    debug_info: bool,
}

fn build(
    path: Option<PathBuf>,
    krate: Option<String>,
    flags: BuildFlags,
    out_dir: PathBuf,
) -> Result<()> {
    let source = match krate {
        Some(spec) => {
            let Some((name, version)) = spec.split_once('@') else {
                bail!("`--crate {spec}`: expected NAME@VERSION, e.g. serde_derive@1.0.228");
            };
            PackageSource::Registry {
                name: name.to_string(),
                version: version.to_string(),
            }
        }
        None => PackageSource::Path(path.unwrap_or_else(|| PathBuf::from("."))),
    };
    let cache = CacheDir::from_env();
    cache.ensure_writable()?;
    let mut options = BuildOptions::new(source, cache);
    options.features = flags
        .features
        .into_iter()
        .flat_map(|f| f.split_whitespace().map(String::from).collect::<Vec<_>>())
        .collect();
    options.no_default_features = flags.no_default_features;
    options.debug_info = flags.debug_info;
    let runtime = runtime()?;
    eprintln!(
        "   Compiling component ({})",
        describe_source(&options.source)
    );
    let built = wasmacro_build::build_component(&options, &runtime)?;
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let wasm = out_dir.join(format!("{}.wasm", built.package));
    std::fs::write(&wasm, &built.bytes).with_context(|| format!("writing {}", wasm.display()))?;
    let listing = out_dir.join(format!("{}.macros.json", built.package));
    let text = serde_json::to_string_pretty(&built.listing())? + "\n";
    std::fs::write(&listing, text).with_context(|| format!("writing {}", listing.display()))?;
    eprintln!(
        "    Finished {} v{} -> {} ({} bytes, {} macros)",
        built.package,
        built.version,
        wasm.display(),
        built.bytes.len(),
        built.macros.len()
    );
    println!("{}", built.hash);
    Ok(())
}

fn cache_command(action: CacheAction) -> Result<ExitCode> {
    use wasmacro_host::{ApproxSize, maintenance};
    let cache = CacheDir::from_env();
    let root = cache.root().display();
    match action {
        CacheAction::Stats => {
            println!("wasmacro cache at {root}");
            let sections = maintenance::stats(&cache);
            for stats in &sections {
                println!(
                    "  {:<12} {:>6} entries  {:>10}  {}",
                    stats.section.name(),
                    stats.entries,
                    ApproxSize(stats.bytes),
                    stats.section.description()
                );
            }
            let total: u64 = sections.iter().map(|s| s.bytes).sum();
            println!(
                "  {:<12} {:>6}          {:>10}",
                "total",
                "",
                ApproxSize(total)
            );
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Verify => {
            let problems = maintenance::verify(&cache)
                .with_context(|| format!("verifying the wasmacro cache at {root}"))?;
            for problem in &problems {
                println!("removed {}: {}", problem.path.display(), problem.what);
            }
            if problems.is_empty() {
                println!("wasmacro cache at {root}: every entry is intact");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: {} corrupt or leftover cache entries (removed; they are rebuilt \
                     when next needed)",
                    problems.len()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        CacheAction::Gc {
            max_age_days,
            dry_run,
            include_components,
        } => {
            let max_age = std::time::Duration::from_secs(max_age_days.saturating_mul(86_400));
            let report = maintenance::gc(&cache, max_age, include_components, dry_run)
                .with_context(|| format!("collecting the wasmacro cache at {root}"))?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for path in &report.removed {
                println!("{verb} {}", path.display());
            }
            println!(
                "{verb} {} entries ({}) not used for {max_age_days} days",
                report.removed.len(),
                ApproxSize(report.bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn describe_source(source: &PackageSource) -> String {
    match source {
        PackageSource::Path(path) => path.display().to_string(),
        PackageSource::Registry { name, version } => format!("{name} v{version} from the registry"),
    }
}

fn inspect(component: PathBuf) -> Result<()> {
    let bytes =
        std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?;
    let runtime = runtime()?;
    let what = component.display().to_string();
    let imports = runtime.imports(&bytes, &what)?;
    let loaded = runtime.load_bytes(&bytes, &what)?;
    let macros = wasmacro_build::macros_json(loaded.declarations());
    let listing = serde_json::json!({
        "component": wasmacro_host::ComponentHash::of(&bytes).as_str(),
        "size": bytes.len(),
        "macros": macros,
        "imports": imports,
    });
    println!("{}", serde_json::to_string_pretty(&listing)?);
    Ok(())
}

fn run_expand(
    component: PathBuf,
    macro_name: String,
    input: Option<PathBuf>,
    args: Option<String>,
) -> Result<()> {
    let (source, file) = match &input {
        Some(path) => (
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let mut source = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut source)
                .context("reading stdin")?;
            (source, "<stdin>".to_string())
        }
    };
    let runtime = runtime()?;
    let expanded = expand::run(
        &runtime,
        &component,
        &macro_name,
        &source,
        args.as_deref(),
        &file,
    )?;
    println!("{expanded}");
    Ok(())
}

fn serve() -> Result<()> {
    // What the in-process runtime reads (isolation, backend, the expansion
    // cache), with the limits also found through the policy under the
    // permanent opt-in. Set by whoever runs rustc; shims pass it on.
    let mut config = RuntimeConfig::from_env().context("configuring the wasm runtime")?;
    config.limits = limits_from_env()?;
    // Under the permanent opt-in (rust-analyzer, rustdoc) nobody passed the
    // policy's expansion-cache switch; the environment still wins.
    if std::env::var_os(wasmacro_host::expansion_cache::ENV).is_none()
        && std::env::var_os(policy::Policy::ENV).is_none()
        && let Some(workspace) = std::env::var_os(macro_unit::WORKSPACE_ENV)
        && policy::Policy::of_workspace(Path::new(&workspace))?.expansion_cache == Some(false)
    {
        config.expansion_cache = false;
    }
    let runtime =
        Runtime::new(CacheDir::from_env(), config).context("starting the wasm runtime")?;
    let records = wasmacro_host::records::Records::from_env();
    let record = |stats: &wasmacro_host::server::ServeStats| records.record(stats);
    wasmacro_host::server::serve_with_stats(&runtime, std::io::stdin(), std::io::stdout(), record)
        .context("serving a shim")
}
