//! The compute term: each worker program walked with its loop trip counts, every kernel
//! call priced from its [`KernelWork`], and the FIFO buffers each program moves counted on
//! the way (the DMA term needs them).

use std::collections::HashMap;

use super::constants::*;
use crate::design::visit::{walk, CoreVisitor, FifoUse};
use crate::design::{BufArg, CoreStmt, Design, Kernel, KernelWork, MacWork, Port, Worker};
use crate::device::DeviceModel;

/// Cycles and work of one core's program.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoreCompute {
    pub cycles: f64,
    /// Cycles the same work would take at the peak MAC rate (MAC kernels only).
    pub ideal_mac_cycles: f64,
    pub macs: f64,
    /// Kernel calls whose op declared no work (priced by the fallback rule).
    pub undeclared_calls: f64,
    /// Per kernel name: (calls, cycles).
    pub per_kernel: Vec<(String, f64, f64)>,
    /// Buffers acquired per (FIFO, port) over the whole program.
    pub buffers: HashMap<(String, Port), f64>,
}

/// The cycles of one `mmul`-blocked MAC call on `device`, and the ideal cycles at the peak
/// rate: `mmuls x max(1 issue, operand loads / load units) + accumulator blocks x (load and
/// store of the block + pipeline) + call`.
pub fn mac_cycles(mac: &MacWork, device: &DeviceModel) -> (f64, f64) {
    let rate = if mac.int8 {
        device.int8_macs_per_cycle
    } else {
        device.bf16_macs_per_cycle
    } as f64;
    let ideal = mac.macs() as f64 / rate;
    let Some([bm, bk, bn]) = mac.block else {
        return (mac.macs() as f64 * SCALAR_MAC_CYCLES, ideal);
    };
    let elem = if mac.int8 { 1.0 } else { 2.0 };
    let block_macs = (bm * bk * bn) as f64;
    let issue = block_macs / rate;
    let loads = ((bm * bk) as f64 * elem / LOAD_BYTES_PER_CYCLE).ceil()
        + ((bk * bn) as f64 * elem / LOAD_BYTES_PER_CYCLE).ceil();
    let per_mmul = issue.max(loads / LOAD_UNITS);
    let mmuls = mac.macs() as f64 / block_macs;
    let acc_blocks = ((mac.m / bm) * (mac.n / bn)) as f64;
    let acc_bytes = (bm * bn * 4) as f64;
    let per_acc = acc_bytes / (LOAD_BYTES_PER_CYCLE * LOAD_UNITS)
        + acc_bytes / STORE_BYTES_PER_CYCLE
        + MMUL_PIPELINE_CYCLES;
    (mmuls * per_mmul + acc_blocks * per_acc, ideal)
}

/// Cycles of one call of `work` (its call overhead included); `largest_bytes` is the body's
/// largest buffer, which prices an undeclared body (one vector op per 16 elements of it,
/// taken as 4-byte elements).
pub fn call_cycles(work: &KernelWork, largest_bytes: usize, device: &DeviceModel) -> f64 {
    let body = if work.declared {
        let mac = work.mac.map_or(0.0, |m| mac_cycles(&m, device).0);
        mac + work.vector_ops as f64 + work.scalar_ops as f64
    } else {
        (largest_bytes as f64 / 4.0 / crate::design::work::F32_LANES as f64).ceil()
    };
    body + KERNEL_CALL_CYCLES
}

struct Walker<'d> {
    design: &'d Design,
    device: &'d DeviceModel,
    /// The trip count of the loops around the statement being visited.
    times: f64,
    /// Binding -> FIFO it acquired from.
    bindings: HashMap<String, String>,
    out: CoreCompute,
}

impl Walker<'_> {
    fn buffer_bytes(&self, arg: &BufArg) -> usize {
        self.bindings
            .get(&arg.binding)
            .and_then(|f| self.design.fifos.iter().find(|x| &x.name == f))
            .map_or(0, |f| f.ty.bytes())
    }
}

impl CoreVisitor for Walker<'_> {
    type Error = std::convert::Infallible;

    fn visit_loop(&mut self, count: u64, body: &[CoreStmt]) -> Result<(), Self::Error> {
        let outer = self.times;
        self.times *= count as f64;
        walk(self, body)?;
        self.times = outer;
        Ok(())
    }

    fn visit_acquire(&mut self, u: FifoUse, binding: &str) -> Result<(), Self::Error> {
        self.bindings
            .insert(binding.to_string(), u.fifo.to_string());
        *self
            .out
            .buffers
            .entry((u.fifo.to_string(), u.port))
            .or_default() += self.times * u.count as f64;
        Ok(())
    }

    fn visit_kernel(&mut self, kernel: &Kernel, args: &[BufArg]) -> Result<(), Self::Error> {
        let largest = args.iter().map(|a| self.buffer_bytes(a)).max().unwrap_or(0);
        let cycles = call_cycles(&kernel.work, largest, self.device) * self.times;
        let out = &mut self.out;
        out.cycles += cycles;
        if let Some(mac) = kernel.work.mac {
            out.macs += mac.macs() as f64 * self.times;
            out.ideal_mac_cycles += mac_cycles(&mac, self.device).1 * self.times;
        }
        if !kernel.work.declared {
            out.undeclared_calls += self.times;
        }
        match out
            .per_kernel
            .iter_mut()
            .find(|(n, _, _)| *n == kernel.name)
        {
            Some(entry) => {
                entry.1 += self.times;
                entry.2 += cycles;
            }
            None => out
                .per_kernel
                .push((kernel.name.clone(), self.times, cycles)),
        }
        Ok(())
    }
}

/// The compute of one worker on `device`.
pub fn core_compute(design: &Design, worker: &Worker, device: &DeviceModel) -> CoreCompute {
    let mut w = Walker {
        design,
        device,
        times: 1.0,
        bindings: HashMap::new(),
        out: CoreCompute::default(),
    };
    let Ok(()) = walk(&mut w, &worker.program);
    w.out
}
