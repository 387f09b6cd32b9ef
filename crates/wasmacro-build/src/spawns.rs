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
/// parse. Without function names (the script's own `main` among them) it
/// cannot tell, and says so: a script is never let run unseen.
pub(crate) fn unavailable_calls(component: &[u8]) -> Result<Option<String>, String> {
    let mut found: Vec<(String, &str)> = Vec::new();
    let mut saw_main = false;
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
                let demangled = plain_path(naming.name);
                saw_main |= demangled.ends_with(crate::rewrite::BUILD_SCRIPT_MAIN);
                if let Some((_, what)) = UNAVAILABLE
                    .iter()
                    .find(|(prefix, _)| demangled.starts_with(prefix))
                {
                    found.push((demangled, what));
                }
            }
        }
    }
    if !saw_main {
        return Ok(Some(
            "its component names no functions, so what it calls cannot be seen".to_string(),
        ));
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

/// A symbol's demangled path without hash or the angle brackets v0 mangling
/// puts around a type (`<std::process::Command>::output` in v0,
/// `std::process::Command::output` in legacy mangling).
fn plain_path(symbol: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(symbol)).replace(['<', '>'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_manglings_name_the_same_path() {
        // `std::process::Command::output`, legacy and v0.
        let legacy = "_ZN3std7process7Command6output17h0123456789abcdefE";
        let v0 = "_RNvMNtCs1234_3std7processNtNtCs1234_3std7process7Command6output";
        assert_eq!(plain_path(legacy), "std::process::Command::output");
        assert_eq!(plain_path(v0), "std::process::Command::output");
    }

    #[test]
    fn a_module_without_names_cannot_be_cleared() {
        // An empty core module: no name section.
        let module = b"\0asm\x01\0\0\0";
        let why = unavailable_calls(module).unwrap().unwrap();
        assert!(why.contains("names no functions"), "{why}");
    }
}
