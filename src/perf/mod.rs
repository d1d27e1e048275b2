//! A performance model per design: the time one compiled [`Design`] takes on an NPU, as named
//! terms (compute, shim / memtile / core DMA, FIFO stalls, dispatch), from the design itself
//! (worker programs with their kernels' declared [`crate::design::KernelWork`], object FIFOs
//! with depths and sizes, the runtime sequence's transfers) and the target's rates
//! ([`DeviceModel`] and [`constants`]). The derivation, every constant's source and the
//! calibration against published GEMM figures are in docs/perf-model.md.
//!
//! A design is predicted as placed: a design placed on npu1's columns predicted on npu2 keeps
//! its tiles (it uses 4 of npu2's 8 columns) and gets npu2's clock, MAC rates and shim width.

pub mod compute;
pub mod constants;
pub mod dma;

use std::fmt;

use crate::design::info::TileKind;
use crate::design::Design;
use crate::device::{DeviceError, DeviceModel};

pub use compute::CoreCompute;
pub use dma::Traffic;

/// What limits a design's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Compute,
    Dma,
    Dispatch,
}

impl Bound {
    pub fn word(self) -> &'static str {
        match self {
            Bound::Compute => "compute",
            Bound::Dma => "DMA",
            Bound::Dispatch => "dispatch",
        }
    }
}

/// One design's predicted time on one device, by term (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub design: String,
    pub device: DeviceModel,
    /// The busiest core's compute.
    pub compute: f64,
    /// The busiest core's cycles at the peak MAC rate, over its actual cycles (MAC kernels
    /// only; 0 for a design without MACs).
    pub mac_efficiency: f64,
    /// MACs of the whole design (all cores).
    pub macs: f64,
    /// The busiest channel of each kind, and the busiest memtile memory port.
    pub shim_dma: f64,
    pub memtile_dma: f64,
    pub core_dma: f64,
    pub memtile_port: f64,
    /// Extra time of cores whose depth-1 FIFOs serialise transfer and compute (sum instead of
    /// max), beyond the overlapped time.
    pub fifo_stall: f64,
    pub dispatch: f64,
    /// Kernel calls (all cores) whose op declared no work.
    pub undeclared_calls: f64,
    pub cores: Vec<CoreCompute>,
    pub traffic: Traffic,
}

impl Prediction {
    /// The busiest DMA path.
    pub fn dma(&self) -> f64 {
        self.shim_dma
            .max(self.memtile_dma)
            .max(self.core_dma)
            .max(self.memtile_port)
    }

    /// Time on the array, one run: with depth >= 2 everywhere transfers overlap compute, so
    /// the slower of the two; depth-1 FIFOs add their stall.
    pub fn array(&self) -> f64 {
        self.compute.max(self.dma()) + self.fifo_stall
    }

    /// One XRT run: the array time plus the dispatch.
    pub fn total(&self) -> f64 {
        self.array() + self.dispatch
    }

    pub fn bound(&self) -> Bound {
        let (c, d) = (self.compute, self.dma() + self.fifo_stall);
        if self.dispatch >= c.max(d) {
            Bound::Dispatch
        } else if c >= d {
            Bound::Compute
        } else {
            Bound::Dma
        }
    }

    /// Achieved tera-operations a second (2 per MAC) over the whole run.
    pub fn tops(&self) -> f64 {
        2.0 * self.macs / self.total() / 1e12
    }
}

fn us(s: f64) -> String {
    format!("{:.1} us", s * 1e6)
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.device;
        writeln!(
            f,
            "  {} ({} MHz, {} int8 / {} bf16 MAC/cycle a core):",
            d.name, d.clock_mhz, d.int8_macs_per_cycle, d.bf16_macs_per_cycle
        )?;
        let eff = match self.macs {
            0.0 => String::new(),
            _ => format!(" ({:.0}% of the MAC peak)", 100.0 * self.mac_efficiency),
        };
        writeln!(f, "    compute      {:>12}{eff}", us(self.compute))?;
        writeln!(f, "    shim DMA     {:>12}", us(self.shim_dma))?;
        writeln!(f, "    memtile DMA  {:>12}", us(self.memtile_dma))?;
        writeln!(f, "    memtile port {:>12}", us(self.memtile_port))?;
        writeln!(f, "    core DMA     {:>12}", us(self.core_dma))?;
        writeln!(f, "    FIFO stall   {:>12}", us(self.fifo_stall))?;
        writeln!(f, "    dispatch     {:>12}", us(self.dispatch))?;
        let rate = match self.macs {
            0.0 => String::new(),
            _ => format!(", {:.3} TOPS", self.tops()),
        };
        writeln!(
            f,
            "    total        {:>12} ({}-bound{rate})",
            us(self.total()),
            self.bound().word()
        )?;
        if self.undeclared_calls > 0.0 {
            writeln!(
                f,
                "    note: {} kernel calls declare no work (priced at one vector op per 16 elements)",
                self.undeclared_calls
            )?;
        }
        Ok(())
    }
}

/// The prediction of `design` on `device`.
pub fn predict_on(design: &Design, device: &DeviceModel) -> Prediction {
    let clock = device.clock_mhz as f64 * 1e6;
    let cores: Vec<CoreCompute> = design
        .workers
        .iter()
        .map(|w| compute::core_compute(design, w, device))
        .collect();
    let traffic = dma::traffic(design, device, &cores);
    let busiest = cores
        .iter()
        .max_by(|a, b| a.cycles.total_cmp(&b.cycles))
        .cloned()
        .unwrap_or_default();
    let compute = busiest.cycles / clock;
    // A core's depth-1 FIFO transfers cannot overlap its compute: that core takes the sum.
    let serial = design
        .workers
        .iter()
        .zip(&cores)
        .map(|(w, c)| {
            let blocking: f64 = traffic
                .channels
                .iter()
                .filter(|ch| ch.tile == w.tile && ch.fifo_depth < 2)
                .map(|ch| ch.seconds)
                .sum();
            c.cycles / clock + blocking
        })
        .fold(0.0, f64::max);
    let overlapped = compute.max(
        traffic
            .channels
            .iter()
            .map(|c| c.seconds)
            .fold(traffic.memtile_port_seconds(), f64::max),
    );
    Prediction {
        design: design.name.clone(),
        device: device.clone(),
        compute,
        mac_efficiency: match busiest.cycles {
            0.0 => 0.0,
            c => busiest.ideal_mac_cycles / c,
        },
        macs: cores.iter().map(|c| c.macs).sum(),
        shim_dma: traffic.max_seconds(TileKind::Shim),
        memtile_dma: traffic.max_seconds(TileKind::Memtile),
        core_dma: traffic.max_seconds(TileKind::Core),
        memtile_port: traffic.memtile_port_seconds(),
        fifo_stall: (serial - overlapped).max(0.0),
        dispatch: constants::DISPATCH_SECONDS,
        undeclared_calls: cores.iter().map(|c| c.undeclared_calls).sum(),
        cores,
        traffic,
    }
}

/// The prediction of `design` on the device named `device` (`npu1`, `npu2`, ...).
pub fn predict(design: &Design, device: &str) -> Result<Prediction, DeviceError> {
    Ok(predict_on(design, &DeviceModel::get(device)?))
}

/// The "predicted time" section of `aiec build --emit plan`: npu1 and npu2, the design as
/// placed on both.
pub fn report(design: &Design) -> String {
    let mut out =
        String::from("predicted time (perf model, design as placed; docs/perf-model.md):\n");
    for name in ["npu1", "npu2"] {
        if let Ok(p) = predict(design, name) {
            out.push_str(&p.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests;
