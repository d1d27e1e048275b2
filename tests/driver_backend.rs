//! `--device npu`'s path with the simulator in place of XRT: the sim backend's tensor ops with
//! a driver [`aiec::driver::install`]ed, so every kernel launch goes through the trait
//! (artefacts made from the spec, loaded once per spec hash, BOs written and read back) —
//! everything `aiec run --device npu` does but the XRT calls. The results must match the
//! f64 references. Its own test binary: the installed driver is process-wide.

use aiec::driver::sim::SimDriver;
use aiec::driver::{install, installed, Loader};
use aiec::simdevice::SimBackend;
use aiec_runtime::backend::{Backend, NormWeights, OpKind, Precision};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn normal(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() - 1.5) * scale)
        .collect()
}

/// `x + y` in f32 on the `add` design: within one f32 rounding of the f64 sum.
fn check_add(sim: &SimBackend, rng: &mut ChaCha8Rng, n: usize) {
    let mut x = normal(rng, n, 3.0);
    let y = normal(rng, n, 40.0);
    let refs: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(a, b)| f64::from(*a) + f64::from(*b))
        .collect();
    sim.add(&mut x, &y);
    let mut inexact = 0;
    for (i, (got, want)) in x.iter().zip(&refs).enumerate() {
        let err = (f64::from(*got) - want).abs();
        assert!(
            err <= want.abs() * 2f64.powi(-24),
            "x[{i}] = {got} vs {want}"
        );
        inexact += usize::from(err > 0.0);
    }
    assert!(inexact > n / 4, "only {inexact} of {n} sums rounded");
}

/// Layer norm (bf16 design) against the f64 formula, with the bound tests/sim_device.rs
/// derives for the design's bf16 roundings.
fn check_layer_norm(sim: &SimBackend, rng: &mut ChaCha8Rng) {
    let (rows, cols) = (6, 512);
    let x: Vec<f32> = normal(rng, rows * cols, 2.0)
        .iter()
        .map(|v| v + 0.3)
        .collect();
    let gamma = normal(rng, cols, 1.0);
    let beta = normal(rng, cols, 0.5);
    let w = NormWeights {
        name: "test/ln".into(),
        gamma: gamma.clone(),
        beta: beta.clone(),
    };
    let prepared = sim.prepare_layer_norm(w).unwrap();
    let mut y = vec![0.0; rows * cols];
    sim.layer_norm(&*prepared, &x, &mut y);
    for r in 0..rows {
        let row: Vec<f64> = x[r * cols..][..cols]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let mean = row.iter().sum::<f64>() / cols as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / cols as f64;
        let sigma = (var + 1e-5).sqrt();
        for j in 0..cols {
            let (g, b) = (f64::from(gamma[j]), f64::from(beta[j]));
            let z = (row[j] - mean) / sigma;
            let refv = z * g + b;
            let bound = (refv.abs() + (g * z).abs() + b.abs()) / 256.0
                + g.abs() * (row[j].abs() + mean.abs()) / sigma / 256.0
                + 1e-4;
            let got = f64::from(y[r * cols + j]);
            assert!(
                (got - refv).abs() <= bound,
                "y[{r}, {j}] = {got} vs {refv} (bound {bound})"
            );
        }
    }
}

#[test]
fn the_sim_backend_runs_its_kernels_through_an_installed_driver() {
    assert!(install(Loader::new(Box::new(SimDriver::default()))));
    let loader = installed().unwrap();
    assert_eq!(loader.loaded(), 0);
    let sim = SimBackend::new(Precision::Bf16).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);

    check_add(&sim, &mut rng, 1007);
    assert_eq!(
        loader.loaded(),
        1,
        "the add kernel was not launched on the driver"
    );
    check_layer_norm(&sim, &mut rng);
    let after_both = loader.loaded();
    assert!(after_both >= 2, "layer norm did not go through the driver");

    // The same shapes again: no kernel is loaded a second time.
    check_add(&sim, &mut rng, 1007);
    check_layer_norm(&sim, &mut rng);
    assert_eq!(loader.loaded(), after_both);
    let add = sim.stats().get(OpKind::Add);
    assert_eq!(add.launches, 2);
    assert!(add.device.as_nanos() > 0);
}
