//! n-grams of word hashes, shared by the repetition rules and decontamination.

/// The 64-bit hash of one word.
pub fn word_hash(word: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(word.as_bytes())
}

/// The multiplier of the n-gram hash polynomial.
const P: u64 = 0x100_0000_01b3;

/// The hash of one n-gram of word hashes, the value [`ngram_hashes`] gives it.
#[inline]
pub fn ngram_hash(ids: &[u64]) -> u64 {
    ids.iter()
        .fold(0u64, |acc, &w| acc.wrapping_mul(P).wrapping_add(w))
}

/// Rolling hashes of every n-gram of `ids` (a polynomial in the word hashes), one per
/// position `0..=ids.len() - n`; nothing when there are fewer than `n` words or `n` is 0.
pub fn ngram_hashes(ids: &[u64], n: usize) -> impl Iterator<Item = u64> + '_ {
    let top = (1..n.max(1)).fold(1u64, |acc, _| acc.wrapping_mul(P));
    let start = if n == 0 || ids.len() < n {
        ids.len()
    } else {
        n - 1
    };
    let mut h = ids[..start.min(ids.len())]
        .iter()
        .fold(0u64, |acc, &w| acc.wrapping_mul(P).wrapping_add(w));
    (start..ids.len()).map(move |end| {
        h = h.wrapping_mul(P).wrapping_add(ids[end]);
        let out = h;
        // Take the first word of this n-gram out for the next one.
        h = h.wrapping_sub(ids[end + 1 - n].wrapping_mul(top));
        out
    })
}

/// A hasher for keys that are already well mixed 64-bit hashes: one multiply.
#[derive(Default, Clone, Copy)]
pub struct BuildMix;

impl std::hash::BuildHasher for BuildMix {
    type Hasher = Mix;
    fn build_hasher(&self) -> Mix {
        Mix(0)
    }
}

/// The hasher of [`BuildMix`].
pub struct Mix(u64);

impl std::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_hashes_match_direct_hashes() {
        let ids: Vec<u64> = (0..20u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i % 3))
            .collect();
        for n in 1..6 {
            let rolled: Vec<u64> = ngram_hashes(&ids, n).collect();
            let direct: Vec<u64> = ids.windows(n).map(ngram_hash).collect();
            assert_eq!(rolled, direct, "n = {n}");
        }
        assert_eq!(ngram_hashes(&ids[..3], 5).count(), 0);
        assert_eq!(ngram_hashes(&ids, 0).count(), 0);
    }
}
