//! Realistic random inputs, reproducible from a seed, never all zeros: int8 uniform over the
//! whole range, floats normal (Box-Muller over ChaCha8), rounded to the buffer's type.

use half::bf16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::HostData;
use crate::design::ElemType;

/// A seeded source of test data.
pub struct InputGen {
    rng: ChaCha8Rng,
}

impl InputGen {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// One standard-normal draw.
    pub fn normal(&mut self) -> f64 {
        // Box-Muller; 1 - u keeps the logarithm finite.
        let u: f64 = 1.0 - self.rng.random::<f64>();
        let v: f64 = self.rng.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// `len` int8 values uniform over [-128, 127].
    pub fn int8(&mut self, len: usize) -> Vec<i8> {
        (0..len).map(|_| self.rng.random::<i8>()).collect()
    }

    /// `len` values of `mean + std * N(0, 1)` as `elem` (integers are rounded and clamped).
    pub fn normal_data(&mut self, elem: ElemType, len: usize, mean: f64, std: f64) -> HostData {
        let mut draw = || mean + std * self.normal();
        match elem {
            ElemType::F32 => HostData::F32((0..len).map(|_| draw() as f32).collect()),
            ElemType::Bf16 => HostData::Bf16((0..len).map(|_| bf16::from_f64(draw())).collect()),
            ElemType::I8 => HostData::I8(
                (0..len)
                    .map(|_| draw().round().clamp(-128.0, 127.0) as i8)
                    .collect(),
            ),
            ElemType::I16 => HostData::I16(
                (0..len)
                    .map(|_| draw().round().clamp(-32768.0, 32767.0) as i16)
                    .collect(),
            ),
            ElemType::I32 => HostData::I32((0..len).map(|_| draw().round() as i32).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_spread_and_not_zero() {
        let a = InputGen::new(7).int8(4096);
        assert_eq!(a, InputGen::new(7).int8(4096));
        assert!(a.iter().any(|&x| x < -120) && a.iter().any(|&x| x > 120));
        let mut g = InputGen::new(1);
        let xs: Vec<f64> = (0..20000).map(|_| g.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
