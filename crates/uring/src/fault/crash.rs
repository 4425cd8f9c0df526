//! What a simulated crash writes to the inner file before it drops the rest of the pending
//! bytes: a torn prefix in write order, or a random subset of the dirty pages; and the
//! stable hashes that make both deterministic.

use crate::vfs::File;

/// The page size [`FaultVfs::crash_pages`](super::FaultVfs::crash_pages) persists or loses as a unit.
pub const FAULT_PAGE_BYTES: u64 = 4096;

/// How a simulated crash treats unsynced bytes beyond dropping them.
#[derive(Clone, Copy, Debug)]
pub(super) enum CrashKind {
    /// A prefix of the pending bytes, in write order, reaches the file.
    Torn(u64),
    /// A random subset of the dirty pages reaches the file.
    Pages(u64),
}

/// Writes a deterministic-random subset of the pages dirtied by `writes` through `writer`,
/// each page with the bytes the writes left in it (later writes win) and, where no pending
/// write covered a byte of a kept page, the inner file's current byte (read back first), so
/// that a kept page is exactly the page the process saw. Errors are ignored, as in
/// [`write_prefix`].
pub(super) fn write_page_subset(writer: &dyn File, writes: &[(u64, Vec<u8>)], seed: u64) {
    let mut pages: Vec<u64> = writes
        .iter()
        .filter(|(_, b)| !b.is_empty())
        .flat_map(|(at, b)| {
            let first = at / FAULT_PAGE_BYTES;
            let last = (at + b.len() as u64 - 1) / FAULT_PAGE_BYTES;
            first..=last
        })
        .collect();
    pages.sort_unstable();
    pages.dedup();
    for page in pages {
        if splitmix64(seed ^ splitmix64(page)) & 1 == 0 {
            continue;
        }
        let start = page * FAULT_PAGE_BYTES;
        let mut buf = vec![0u8; FAULT_PAGE_BYTES as usize];
        let got = writer.read_at(start, &mut buf).unwrap_or(0);
        let mut end = start + got as u64;
        for (at, data) in writes {
            let lo = (*at).max(start);
            let hi = (at + data.len() as u64).min(start + FAULT_PAGE_BYTES);
            if lo < hi {
                buf[(lo - start) as usize..(hi - start) as usize]
                    .copy_from_slice(&data[(lo - at) as usize..(hi - at) as usize]);
                end = end.max(hi);
            }
        }
        let _ = writer.write_at(start, &[&buf[..(end - start) as usize]], false);
    }
}

/// Writes the first `keep` bytes of `writes` (in order) through `writer`. Errors are ignored:
/// the machine is "crashing", whatever reached the file reached it.
pub(super) fn write_prefix(writer: &dyn File, writes: &[(u64, Vec<u8>)], mut keep: u64) {
    for (offset, bytes) in writes {
        if keep == 0 {
            break;
        }
        let n = usize::try_from(keep).unwrap_or(usize::MAX).min(bytes.len());
        let _ = writer.write_at(*offset, &[&bytes[..n]], false);
        keep -= n as u64;
    }
}

/// A well-mixed 64-bit hash of `x` (SplitMix64's finalizer): deterministic and stable.
pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of `bytes`: stable across runs and Rust versions (unlike `DefaultHasher`).
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable() {
        // Pinned: crash_torn prefixes must not change between releases.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
