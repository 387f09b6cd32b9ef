//! The Rust edition of a component's macro crate, carried in a custom
//! section (`wasmacro-edition`) of the component.
//!
//! rustc gives a proc macro's expansions the edition of the crate that
//! defines it: it decides whether `try` or `async` in the output are keywords.
//! The shim stands in for the macro crate, so it must be compiled with that
//! crate's edition (serde_derive 1.0.137, edition 2015, emits `try!(…)`).

/// The custom section's name.
const SECTION: &str = "wasmacro-edition";

/// The editions rustc knows, oldest first.
pub const EDITIONS: [&str; 4] = ["2015", "2018", "2021", "2024"];

/// `bytes` with a custom section naming `edition` appended.
pub fn with_edition(bytes: &[u8], edition: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    leb128(&mut payload, SECTION.len() as u32);
    payload.extend_from_slice(SECTION.as_bytes());
    payload.extend_from_slice(edition.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(&mut out, payload.len() as u32);
    out.extend_from_slice(&payload);
    out
}

/// The edition a component's shim is compiled with: the recorded one, else
/// 2021, which every shim had before the edition was recorded.
pub fn shim_edition(bytes: &[u8]) -> &str {
    edition_of(bytes).unwrap_or("2021")
}

/// The edition recorded in a component, if it has a valid one. Reads only
/// the top-level section headers, with every length checked.
pub fn edition_of(bytes: &[u8]) -> Option<&str> {
    let mut at = 8; // magic and version/layer
    while at < bytes.len() {
        let id = *bytes.get(at)?;
        at += 1;
        let size = read_leb128(bytes, &mut at)? as usize;
        let end = at.checked_add(size).filter(|&end| end <= bytes.len())?;
        if id == 0 {
            let mut name_at = at;
            let name_len = read_leb128(bytes, &mut name_at)? as usize;
            let name_end = name_at.checked_add(name_len).filter(|&e| e <= end)?;
            if bytes.get(name_at..name_end) == Some(SECTION.as_bytes()) {
                let edition = std::str::from_utf8(bytes.get(name_end..end)?).ok()?;
                return EDITIONS.iter().find(|e| **e == edition).copied();
            }
        }
        at = end;
    }
    None
}

fn leb128(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edition_round_trips_and_bad_bytes_give_none() {
        let header = b"\0asm\x0d\0\x01\0".to_vec();
        let marked = with_edition(&header, "2015");
        assert_eq!(edition_of(&marked), Some("2015"));
        assert_eq!(edition_of(&header), None);
        assert_eq!(edition_of(&marked[..marked.len() - 1]), None);
        assert_eq!(edition_of(&with_edition(&header, "1999")), None);
        assert_eq!(edition_of(&[0xff; 20]), None);
    }
}
