//! `format-spec/blob.md`: opening a blob read from a pack (unseal, bounded decompress,
//! re-hash) with a fixed key.
//!
//! ```text
//! input = kind u8 ‖ compression u8 ‖ raw_len u32 (LE, taken mod 1 MiB + 1) ‖ mode u8
//!         ‖ id [32] ‖ rest
//! mode bit 0 clear: `rest` is the sealed blob as read from a pack (it cannot be forged, so
//!                   only the seeds' genuine blobs open);
//! mode bit 0 set:   `rest` is the payload, sealed here first, so that decompression and the
//!                   re-hash see arbitrary authenticated bytes (a zstd or RAM bug at seal time);
//! mode bit 1 set:   the id is the keyed hash of `rest` instead of the 32 bytes given.
//! ```
//! `open` must not panic, must return exactly `raw_len` bytes that hash to the id when it
//! succeeds, and no single allocation may exceed `max(raw_len, sealed length)` (DESIGN.md:
//! "cap decompression at the authenticated length").

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use larder::blob::open;
use larder::crypto::{Keys, MasterKey};
use larder::format::{BlobKind, Compression};
use larder::id::{BlobId, RepoId};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

/// The largest `raw_len` tried; real blobs are at most the chunker's 16 MiB maximum.
const MAX_RAW_LEN: u32 = 1024 * 1024;

/// Records the largest single allocation since the last reset (libFuzzer runs inputs on one
/// thread). Only Rust allocations are seen; zstd's own are left to libFuzzer's
/// `-malloc_limit_mb`.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the wrapper only records sizes.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new_size` is the caller's, passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    Keys::derive(
        RepoId([1; 32]),
        MasterKey::from_bytes(Zeroizing::new([2; 32])),
    )
});

fuzz_target!(|data: &[u8]| {
    // Derive the keys before anything is measured: their first use allocates.
    let keys = &*KEYS;
    let Some((head, rest)) = data.split_first_chunk::<{ 1 + 1 + 4 + 1 + 32 }>() else {
        return;
    };
    let kind = if head[0] & 1 == 0 {
        BlobKind::Data
    } else {
        BlobKind::ContentList
    };
    let compression = if head[1] & 1 == 0 {
        Compression::None
    } else {
        Compression::Zstd
    };
    let raw_len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) % (MAX_RAW_LEN + 1);
    let mode = head[6];
    let id = if mode & 2 == 0 {
        let mut id = [0; 32];
        id.copy_from_slice(&head[7..]);
        BlobId(id)
    } else {
        keys.blob_id(kind, rest)
    };
    let mut sealed_here = Vec::new();
    let sealed = if mode & 1 == 0 {
        rest
    } else {
        keys.seal_blob(&mut sealed_here, kind, &id, compression, rest);
        sealed_here.as_slice()
    };

    LARGEST.store(0, Ordering::Relaxed);
    let opened = open(keys, kind, id, compression, raw_len, sealed);
    let largest = LARGEST.load(Ordering::Relaxed);
    let limit = usize::try_from(raw_len)
        .expect("u32 fits usize")
        .max(sealed.len());
    assert!(
        largest <= limit,
        "open allocated {largest} bytes at once (raw_len {raw_len}, sealed {} bytes)",
        sealed.len()
    );
    if let Ok(plain) = opened {
        assert_eq!(plain.len() as u64, u64::from(raw_len));
        assert_eq!(keys.blob_id(kind, &plain), id);
    }
});
