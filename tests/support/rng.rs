//! One small deterministic generator for tests and benches (xorshift64*):
//! fixture contents, synthetic layers, and the kill delays of fault tests.
//!
//! A fault test takes its seed from `FORGE_TEST_SEED` when set, otherwise
//! from the clock, and prints it, so a failing run can be replayed exactly.
#![allow(dead_code)]

/// xorshift64*: fast, reproducible, not for anything secret.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is mapped to a fixed odd one).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// A generator seeded from `FORGE_TEST_SEED` or the clock; the seed is
    /// printed with `what` so the run can be repeated.
    pub fn from_env(what: &str) -> Rng {
        let seed = std::env::var("FORGE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{what}: seed {seed} (replay with FORGE_TEST_SEED={seed})");
        Rng::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// `len` incompressible bytes from `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).fill(&mut out);
    out
}
