//! The hasher of the rank cache's owner index (owner id → leaf).

use std::hash::{BuildHasher, Hasher};

/// The owner index's hasher: owner ids are 16 random-looking bytes, so a keyed multiply-mix of
/// its two halves is enough (the key comes from the process's `RandomState`).
#[derive(Clone, Copy, Debug)]
pub(super) struct OwnerHash(u64);

impl Default for OwnerHash {
    fn default() -> Self {
        OwnerHash(std::collections::hash_map::RandomState::new().hash_one(0x5e7a1u64) | 1)
    }
}

impl BuildHasher for OwnerHash {
    type Hasher = OwnerHasher;
    fn build_hasher(&self) -> OwnerHasher {
        OwnerHasher(self.0)
    }
}

pub(super) struct OwnerHasher(u64);

impl Hasher for OwnerHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(b))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(31);
        }
    }

    // The length prefix of the id's byte array carries nothing.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        // murmur3's fmix64.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}
