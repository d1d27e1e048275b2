//! The simulator as an NPU: a kernel's instruction words are decoded and drive the shim DMAs
//! of the design's simulation (`SequenceSource::Stream`), exactly the words an XRT run would
//! put in the instruction BO; the design's JIT-compiled cores stand in for the xclbin's PDI.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{
    check_run_inputs, Artefacts, BoLayout, Driver, DriverError, LoadedKernel, KERNEL_NAME,
};
use crate::npu::Stream;
use crate::sim::{HostData, Prepared, SequenceSource, SimOptions};

/// Runs artefacts on the host simulator.
#[derive(Debug, Clone)]
pub struct SimDriver {
    /// Wall-clock limit of one run.
    pub timeout: Duration,
    /// LLVM optimisation level of the cores' JIT.
    pub opt_level: usize,
}

impl Default for SimDriver {
    fn default() -> Self {
        let defaults = SimOptions::default();
        SimDriver {
            timeout: defaults.timeout,
            opt_level: defaults.opt_level,
        }
    }
}

impl Driver for SimDriver {
    fn name(&self) -> &'static str {
        "the simulator"
    }

    fn load(&self, a: &Artefacts) -> Result<Box<dyn LoadedKernel>, DriverError> {
        let fail = |message: String| DriverError::Load {
            kernel: a.name.clone(),
            driver: self.name(),
            message,
        };
        // The xclbin is checked as XRT's load would need it; without one the simulated
        // device has exactly one kernel, aiecc's.
        match &a.xclbin {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                a.check_xclbin(&bytes)?;
            }
            None if a.kernel != KERNEL_NAME => {
                return Err(fail(format!(
                    "no kernel `{}`: the simulated device has only `{KERNEL_NAME}`",
                    a.kernel
                )))
            }
            None => {}
        }
        let stream = Stream::decode(&a.insts_bytes())
            .map_err(|e| fail(format!("the instruction words do not decode: {e}")))?;
        let options = SimOptions {
            timeout: self.timeout,
            opt_level: self.opt_level,
            sequence: SequenceSource::Stream(Arc::new(stream)),
        };
        let prepared = Prepared::new(&a.design, &options).map_err(|e| fail(e.to_string()))?;
        let bos = a.bos();
        Ok(Box::new(SimKernel {
            name: a.name.clone(),
            bo_memory: Mutex::new(bos.iter().map(|b| vec![0; b.bytes()]).collect()),
            bos,
            prepared,
        }))
    }
}

struct SimKernel {
    name: String,
    bos: Vec<BoLayout>,
    /// The BOs' host memory, allocated once at load; a run holds the lock (one run of a
    /// kernel at a time, as with one set of device buffers).
    bo_memory: Mutex<Vec<Vec<u8>>>,
    prepared: Prepared,
}

impl LoadedKernel for SimKernel {
    fn run(&self, inputs: &[Option<&[u8]>]) -> Result<Vec<Vec<u8>>, DriverError> {
        check_run_inputs(&self.name, "the simulator", &self.bos, inputs)?;
        let mut memory = self.bo_memory.lock().unwrap_or_else(|p| p.into_inner());
        // "Sync to device": the filled BOs' bytes become the simulation's argument buffers.
        for (bo, data) in memory.iter_mut().zip(inputs) {
            if let Some(data) = data {
                bo.copy_from_slice(data);
            }
        }
        let args: Vec<HostData> = self
            .bos
            .iter()
            .zip(memory.iter())
            .filter(|(b, _)| b.filled)
            .map(|(b, bytes)| HostData::from_le_bytes(b.elem, bytes))
            .collect();
        let run = self.prepared.run(args).map_err(|e| DriverError::Run {
            kernel: self.name.clone(),
            driver: "the simulator",
            message: e.to_string(),
        })?;
        // "Sync from device": the drained buffers land in their BOs and are read back.
        let drained: Vec<usize> = (0..self.bos.len())
            .filter(|&i| self.bos[i].drained)
            .collect();
        for (&i, out) in drained.iter().zip(&run.outputs) {
            memory[i].copy_from_slice(out.as_le_bytes());
        }
        Ok(drained.iter().map(|&i| memory[i].clone()).collect())
    }
}
