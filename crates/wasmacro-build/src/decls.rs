//! The declarations the register macros recorded while the macro crate
//! compiled, read back to check the loaded component against them.

use crate::{BuildError, io_error};
use std::path::Path;
use wasmacro_protocol::{MacroDecl, MacroKind};

// The record format's one definition lives with its writer.
#[path = "../../wasmacro-register/src/record.rs"]
#[allow(dead_code)]
mod record;

/// Where the register macros write, in the work directory.
pub(crate) const DECLS_DIR: &str = "decls";

/// The declarations recorded in `dir`, sorted by macro name.
pub(crate) fn recorded_declarations(dir: &Path) -> Result<Vec<MacroDecl>, BuildError> {
    let mut decls = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_error(format!("reading {}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(io_error(format!("reading {}", dir.display())))?
            .path();
        let text = std::fs::read_to_string(&path)
            .map_err(io_error(format!("reading {}", path.display())))?;
        let record = record::Record::decode(&text).map_err(|reason| BuildError::Invalid {
            package: path.display().to_string(),
            reason,
        })?;
        decls.push(MacroDecl {
            name: record.name,
            kind: match record.kind {
                record::Kind::Derive => MacroKind::Derive,
                record::Kind::Attribute => MacroKind::Attribute,
                record::Kind::Function => MacroKind::Function,
            },
            helper_attributes: record.helpers,
        });
    }
    decls.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(decls)
}
