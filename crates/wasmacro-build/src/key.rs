//! The one way the component build names things by their content: BLAKE3
//! over length-prefixed parts, separated by what the key is for. Work
//! directories, build records and the guest rlib's directory are all named
//! with it, never with a path, a time or a hash map's order.

/// A content key: 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key(String);

impl Key {
    /// The key of `parts`, for `purpose` (keys for different purposes never
    /// collide, whatever their parts).
    pub(crate) fn of<P: AsRef<[u8]>>(purpose: &str, parts: impl IntoIterator<Item = P>) -> Key {
        let mut hasher = blake3::Hasher::new();
        let mut part = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        part(purpose.as_bytes());
        for p in parts {
            part(p.as_ref());
        }
        Key(hasher.finalize().to_hex().to_string())
    }

    /// The first 16 hex digits: enough to name a directory.
    pub(crate) fn short(&self) -> &str {
        &self.0[..16]
    }

    /// All 64 hex digits.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Key;

    #[test]
    fn parts_are_delimited_and_purposes_separated() {
        assert_ne!(Key::of("a", ["ab", "c"]), Key::of("a", ["a", "bc"]));
        assert_ne!(Key::of("a", ["x"]), Key::of("b", ["x"]));
        assert_eq!(Key::of("a", ["x"]), Key::of("a", [b"x".to_vec()]));
    }
}
