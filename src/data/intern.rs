//! String interning of original ids with a fast, non-cryptographic hash.
//!
//! Readers see every id once per line (2 M look-ups for ML-1M). The standard SipHash is built to resist
//! hash flooding, which does not matter for local data files and costs several times more per short key;
//! an Fx-style multiply-rotate hash (the one rustc uses) makes interning a small part of the load time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The Fx hash (rustc's `FxHasher`): one rotate, xor and multiply per 8-byte word.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weakest; the table indexes by low bits, so fold high into low.
        self.hash ^ (self.hash >> 32)
    }
}

/// A `HashMap` using [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Maps original id strings to consecutive `u32` codes in order of first appearance. Allocates only
/// when it meets a new id, never per line.
#[derive(Debug, Default)]
pub struct Interner {
    map: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The code of `s`, assigning the next one if `s` is new.
    #[inline]
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&code) = self.map.get(s) {
            return code;
        }
        let code = self.names.len() as u32;
        let owned: Box<str> = s.into();
        self.names.push(owned.clone());
        self.map.insert(owned, code);
        code
    }

    /// The code of `s` if it has been seen.
    #[inline]
    pub fn get(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }

    /// The original id of `code`.
    pub fn name(&self, code: u32) -> &str {
        &self.names[code as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_in_order_of_first_appearance() {
        let mut it = Interner::default();
        assert_eq!(it.intern("10"), 0);
        assert_eq!(it.intern("2"), 1);
        assert_eq!(it.intern("10"), 0);
        assert_eq!(it.get("2"), Some(1));
        assert_eq!(it.get("3"), None);
        assert_eq!(it.name(1), "2");
        assert_eq!(it.len(), 2);
    }

    #[test]
    fn hash_distinguishes_lengths_and_prefixes() {
        let h = |s: &str| {
            let mut x = FxHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        assert_ne!(h("1"), h("1\0"));
        assert_ne!(h("12345678"), h("123456789"));
        assert_ne!(h("ab"), h("ba"));
    }
}
