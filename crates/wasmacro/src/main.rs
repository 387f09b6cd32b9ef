//! The `wasmacro` executable; everything lives in the library.

fn main() -> std::process::ExitCode {
    wasmacro::main()
}
