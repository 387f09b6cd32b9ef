//! The component's global allocator: free lists by size class in front of
//! the standard one (dlmalloc on `wasm32-wasip2`).
//!
//! A macro allocates and frees many small objects — token trees, identifier
//! strings, syn's nodes — and dlmalloc's bookkeeping for them was 28% of the
//! guest's time on the serde corpus. Here a small block is a pop from or a
//! push onto a list: blocks of one class are carved from 64 KiB chunks and
//! never coalesced or returned, which a wasm memory could not do anyway (it
//! only grows) and which the instance's memory limit bounds like any other
//! allocation. Blocks over 1 KiB, or aligned beyond 16 bytes, go to dlmalloc.
//!
//! Not every block freed here was allocated here: wasi-libc frees with
//! dlmalloc's `free` what the host wrote into memory through `cabi_realloc`
//! (file contents, directory entries), so `cabi_realloc` below must allocate
//! from dlmalloc — and then the lists the host passes to the glue (tokens)
//! are dlmalloc's too, dropped by Rust code. So a
//! block is ours only if it lies in one of our chunks — which are aligned to
//! their size, so a bitmap over the 4 GiB address space (one bit per chunk,
//! 8 KiB) answers — and anything else is handed back to dlmalloc, whatever
//! its size.
//!
//! A component runs on one thread (`wasm32-wasip2` has none to spawn), which
//! is what makes the unsynchronised state sound; a build with atomics
//! (threads) fails to compile rather than race.

#[cfg(target_feature = "atomics")]
compile_error!("the size-class allocator is single-threaded");
#[cfg(not(target_pointer_width = "32"))]
compile_error!("the size-class allocator's chunk bitmap covers a 32-bit address space");

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Size classes are multiples of this, which is also the largest alignment
/// they serve.
const GRAIN: usize = 16;
/// Classes 16, 32, …, 1024 bytes.
const CLASSES: usize = 64;
/// The largest size served from the lists.
const LARGEST: usize = GRAIN * CLASSES;
/// How much is taken from dlmalloc at a time for small blocks, aligned to
/// its size.
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
/// One bit per possible chunk of a 32-bit address space.
const CHUNK_WORDS: usize = (1 << (32 - CHUNK_BITS)) / 64;

/// The allocator; see the module documentation.
pub struct SizeClasses {
    state: UnsafeCell<State>,
}

struct State {
    /// The first free block of each class; each free block's first word
    /// points to the next.
    free: [*mut u8; CLASSES],
    /// The unused rest of the current chunk.
    next: *mut u8,
    end: *mut u8,
    /// Which chunks are ours, by address.
    chunks: [u64; CHUNK_WORDS],
}

impl State {
    /// Whether `block` lies in one of our chunks.
    fn owns(&self, block: *mut u8) -> bool {
        let chunk = block as usize >> CHUNK_BITS;
        self.chunks
            .get(chunk / 64)
            .is_some_and(|word| word & (1 << (chunk % 64)) != 0)
    }

    fn adopt(&mut self, chunk: *mut u8) {
        let chunk = chunk as usize >> CHUNK_BITS;
        if let Some(word) = self.chunks.get_mut(chunk / 64) {
            *word |= 1 << (chunk % 64);
        }
    }
}

// SAFETY: a component has one thread (see the module documentation).
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    /// An allocator with no memory taken yet.
    pub const fn new() -> SizeClasses {
        SizeClasses {
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                next: ptr::null_mut(),
                end: ptr::null_mut(),
                chunks: [0; CHUNK_WORDS],
            }),
        }
    }
}

impl Default for SizeClasses {
    fn default() -> Self {
        SizeClasses::new()
    }
}

/// The class serving `layout`, if a class does.
fn class_of(layout: Layout) -> Option<usize> {
    (layout.size() <= LARGEST && layout.align() <= GRAIN)
        .then(|| layout.size().max(1).div_ceil(GRAIN) - 1)
}

unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: the caller's contract, passed on.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: one thread, and no call re-enters the allocator while the
        // state is borrowed.
        let state = unsafe { &mut *self.state.get() };
        let head = state.free[class];
        if !head.is_null() {
            // SAFETY: a free block's first word holds the next free block.
            state.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = (class + 1) * GRAIN;
        if (state.end as usize) - (state.next as usize) < size {
            // The rest of the old chunk (less than one block) is dropped.
            // SAFETY: a valid, non-zero layout.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, CHUNK)) };
            if chunk.is_null() {
                return chunk;
            }
            state.adopt(chunk);
            state.next = chunk;
            // SAFETY: within the chunk just allocated.
            state.end = unsafe { chunk.add(CHUNK) };
        }
        let block = state.next;
        // SAFETY: `size` bytes remain in the chunk.
        state.next = unsafe { block.add(size) };
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`.
        let state = unsafe { &mut *self.state.get() };
        match class_of(layout) {
            Some(class) if state.owns(block) => {
                // SAFETY: the block is at least `GRAIN` bytes, aligned, and
                // free.
                unsafe { block.cast::<*mut u8>().write(state.free[class]) };
                state.free[class] = block;
            }
            // SAFETY: the caller's contract: not ours, so dlmalloc's.
            _ => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract: `new_size` with `layout`'s alignment
        // is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as in `alloc`; the borrow ends before any other call.
        let ours = unsafe { &*self.state.get() }.owns(block);
        match (class_of(layout), class_of(new_layout)) {
            // A block of ours already has its class's full size.
            (Some(old), Some(new)) if old == new && ours => block,
            // SAFETY: both dlmalloc's, the caller's contract passed on.
            (_, None) if !ours => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: a valid layout; the copy stays within both blocks.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

/// The canonical ABI's allocator, through which the host writes every list
/// and string it passes in: dlmalloc's, since wasi-libc frees what it gets
/// this way with `free` (see the module documentation).
///
/// # Safety
/// Called by the host as the canonical ABI specifies: `old` with `old_len`
/// and `align` from an earlier call, or null with `old_len` 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: the canonical ABI's contract: a power-of-two alignment and,
    // with `old`, its earlier size.
    let block = unsafe {
        if old_len == 0 {
            System.alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            System.realloc(old, Layout::from_size_align_unchecked(old_len, align), new_len)
        }
    };
    if block.is_null() {
        // Out of memory inside the host's lowering: trap, as wit-bindgen's
        // does.
        std::process::abort();
    }
    block
}
