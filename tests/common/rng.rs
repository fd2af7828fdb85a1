//! The tests' seeded generator (xorshift64*, seeded through splitmix64): random inputs that a
//! failing run can reproduce from its seed, without a dependency. Included with `#[path]` by
//! the test crates that need it.
// Not every crate that includes it uses every method.
#![allow(dead_code)]

/// A deterministic pseudo-random sequence.
pub struct Rng(u64);

impl Rng {
    /// The sequence for `seed`; every seed, 0 included, gives its own.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index into something `len` long (0 when it is empty).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A coin toss.
    pub fn bool(&mut self) -> bool {
        self.below(2) == 0
    }

    /// One of `xs`, which must not be empty.
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.index(xs.len())]
    }
}

/// A seed or an iteration count from the environment (`EDGEMQ_FUZZ_SEED`,
/// `EDGEMQ_FUZZ_ITERS`, …), so a run can be widened or replayed by hand.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
