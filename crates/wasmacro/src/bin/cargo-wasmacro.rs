//! `cargo wasmacro …`: cargo runs this as `cargo-wasmacro wasmacro …`.

fn main() -> std::process::ExitCode {
    wasmacro::cargo_main()
}
