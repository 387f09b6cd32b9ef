//! What a build script's component calls that WASI cannot do. On
//! `wasm32-wasip2` the standard library's process and thread functions
//! compile, and fail only when called, with an error a script may well
//! swallow (`Command::new(rustc).output().ok()` then takes the branch of an
//! old compiler): a script that calls them must not run as wasm at all.
//!
//! Build scripts are built unoptimised, as cargo builds them natively, so
//! nothing is inlined away: every function called is in the component's
//! name section under its own name.

/// The standard library's functions a script cannot use in WASI, by
/// demangled path prefix, with what calling one means.
const UNAVAILABLE: &[(&str, &str)] = &[
    ("std::process::Command::", "runs processes"),
    ("std::process::Child::", "runs processes"),
    ("std::thread::spawn", "starts threads"),
    ("std::thread::Builder::spawn", "starts threads"),
    ("std::thread::scope", "starts threads"),
];

/// Why the component cannot run as wasm (`runs processes
/// (std::process::Command::output)`), or `None`; `Err` when its bytes do not
/// parse.
pub(crate) fn unavailable_calls(component: &[u8]) -> Result<Option<String>, String> {
    let mut found: Vec<(String, &str)> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| format!("the component does not parse: {e}"))?;
        let wasmparser::Payload::CustomSection(section) = payload else {
            continue;
        };
        let wasmparser::KnownCustom::Name(names) = section.as_known() else {
            continue;
        };
        for name in names {
            let Ok(wasmparser::Name::Function(map)) = name else {
                continue;
            };
            for naming in map.into_iter().flatten() {
                let demangled = format!("{:#}", rustc_demangle::demangle(naming.name));
                if let Some((_, what)) = UNAVAILABLE
                    .iter()
                    .find(|(prefix, _)| demangled.starts_with(prefix))
                {
                    found.push((demangled, what));
                }
            }
        }
    }
    // The calls that do it first (`output` says more than `arg`).
    let rank = |name: &str| {
        let doing = ["::output", "::status", "::spawn", "::scope"];
        (!doing.iter().any(|d| name.ends_with(d)), name.to_string())
    };
    found.sort_by_key(|(name, _)| rank(name));
    found.dedup();
    let Some((call, what)) = found.first() else {
        return Ok(None);
    };
    Ok(Some(format!(
        "it {what} (it calls `{call}`), which WASI cannot"
    )))
}
