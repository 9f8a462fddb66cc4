//! A fast, deterministic hasher for maps whose keys are the program's own (names read once from
//! an inventory, indices): SipHash's resistance to chosen keys buys nothing there and costs a
//! large share of the planner's and the reader's time.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's multiply-rotate over 8-byte words, with murmur3's finaliser. Deterministic: the
/// same keys give the same hashes in every run.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Whole words are read as they are; the last partial word is zero-padded.
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let word: [u8; 8] = word.try_into().unwrap_or_default();
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let word = rest.iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b));
            self.write_u64(word);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // murmur3's finaliser: the multiply above leaves the low bits (the bucket index) weak.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A `HashSet` with [`FastHasher`].
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: every 8-byte chunk, the last one zero-padded, read little-endian.
    fn by_chunks(bytes: &[u8]) -> u64 {
        let mut h = FastHasher::default();
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h.write_u64(u64::from_le_bytes(word));
        }
        h.finish()
    }

    #[test]
    fn words_are_read_as_the_definition_says_for_every_length() {
        let text: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        for len in 0..text.len() {
            let mut h = FastHasher::default();
            h.write(&text[..len]);
            assert_eq!(h.finish(), by_chunks(&text[..len]), "length {len}");
        }
    }
}
