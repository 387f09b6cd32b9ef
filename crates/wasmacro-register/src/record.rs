//! The declaration record: one line per `#[proc_macro…]` function, written by
//! the register macros while the macro crate compiles for wasm and read by
//! `export_table!` and by `wasmacro-build`'s check of the loaded component.
//!
//! This file is the format's one definition: `wasmacro-build` compiles it too
//! (`#[path]`), because a proc-macro crate can export nothing but macros.

/// What one `#[proc_macro…]` function declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `derive`, `attribute` or `function`.
    pub kind: Kind,
    /// The macro's name (the derive's name, or the function's).
    pub name: String,
    /// The Rust function implementing it.
    pub function: String,
    /// A derive's helper attributes.
    pub helpers: Vec<String>,
}

/// The three kinds of proc macro.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `#[proc_macro_derive]`
    Derive,
    /// `#[proc_macro_attribute]`
    Attribute,
    /// `#[proc_macro]`
    Function,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Derive => "derive",
            Kind::Attribute => "attribute",
            Kind::Function => "function",
        }
    }
}

impl Record {
    /// The record's text: tab-separated fields and a newline.
    pub fn encode(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\n",
            self.kind.as_str(),
            self.name,
            self.function,
            self.helpers.join(",")
        )
    }

    /// Parses what [`Record::encode`] wrote.
    pub fn decode(text: &str) -> Result<Record, String> {
        let fields: Vec<&str> = text.trim_end_matches('\n').split('\t').collect();
        let [kind, name, function, helpers] = fields[..] else {
            return Err(format!("malformed declaration record {text:?}"));
        };
        let kind = match kind {
            "derive" => Kind::Derive,
            "attribute" => Kind::Attribute,
            "function" => Kind::Function,
            other => {
                return Err(format!(
                    "unknown macro kind {other:?} in a declaration record"
                ));
            }
        };
        Ok(Record {
            kind,
            name: name.to_string(),
            function: function.to_string(),
            helpers: helpers
                .split(',')
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}
