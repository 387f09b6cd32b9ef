//! Span handles as a guest sees them: the shim's table index (below
//! [`MAX_SPANS`]) with the expansion's generation in the 8 bits above.
//!
//! The shim's handles are plain indices, the same for the same tokens in
//! every build, which is what lets expansions be keyed by them. A guest that
//! keeps a span in a `static` and returns it from a later expansion would
//! name an unrelated span of that expansion; tagging catches it, as rustc's
//! "use-after-free in `proc_macro` handle" panic does natively. Generations
//! count the expansions of one instance, so they are deterministic.

use wasmacro_protocol::{MAX_SPANS, SpanHandle};

/// The generation of one guest expansion: 1 to 255, never 0, so small
/// made-up integers are never valid handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation(u32);

impl Generation {
    /// The first expansion of an instance.
    pub(crate) const FIRST: Generation = Generation(1);

    /// The expansion after this one (wrapping after 255: a handle kept from
    /// exactly 255 expansions earlier is not recognised).
    pub(crate) fn next(self) -> Generation {
        Generation(self.0 % 255 + 1)
    }

    /// The handle the guest sees for a table index.
    pub(crate) fn tag(self, index: SpanHandle) -> SpanHandle {
        self.0 << MAX_SPANS.trailing_zeros() | (index & (MAX_SPANS - 1))
    }

    /// The table index of a handle the guest gave back, if this expansion
    /// handed it out.
    pub(crate) fn untag(self, handle: SpanHandle) -> Option<SpanHandle> {
        (handle >> MAX_SPANS.trailing_zeros() == self.0).then_some(handle & (MAX_SPANS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_of_other_generations_are_refused() {
        let first = Generation::FIRST;
        let second = first.next();
        assert_eq!(first.untag(first.tag(7)), Some(7));
        assert_eq!(second.untag(first.tag(7)), None);
        assert_eq!(first.untag(7), None, "an untagged index is not a handle");
        let mut g = first;
        for _ in 0..255 {
            g = g.next();
            assert_ne!(g.0, 0);
        }
        assert_eq!(g, first);
    }
}
