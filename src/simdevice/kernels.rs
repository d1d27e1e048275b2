//! The process-wide kernel cache: a spec's TOML text -> its built design, JIT-compiled once
//! ([`crate::sim::Prepared`]), with the emitted MLIR written to
//! `$AIEC_HOME/kernels/<hash>.mlir` so every design a transcription used can be inspected.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use half::bf16;
use sha2::{Digest, Sha256};

use super::SimDeviceError;
use crate::design::ElemType;
use crate::sim::{self, HostData, Prepared, SimOptions};
use crate::spec::Spec;

/// One compiled design and the element types of the host buffers it fills.
pub struct Kernel {
    pub spec: Spec,
    pub prepared: Prepared,
    /// Element type of each filled argument, in argument order.
    pub input_elems: Vec<ElemType>,
    pub hash: String,
    /// The performance model's time of one launch on the design's own device (one XRT
    /// dispatch included), added up by `--timings` ([`super::predicted`]).
    pub predicted: Duration,
}

/// What one launch returns: the drained buffers widened to f32, and the simulated time.
pub struct Launch {
    pub outputs: Vec<Vec<f32>>,
    pub device: Duration,
}

impl Kernel {
    /// Runs the design on `inputs` (one per filled argument, already in its element type).
    pub fn launch(&self, inputs: Vec<HostData>) -> Result<Launch, SimDeviceError> {
        self.launch_ref(&inputs.iter().collect::<Vec<_>>())
    }

    /// [`Kernel::launch`] on borrowed inputs (persistent weights are not copied per launch).
    pub fn launch_ref(&self, inputs: &[&HostData]) -> Result<Launch, SimDeviceError> {
        let (outputs, device) = self.launch_host(inputs)?;
        Ok(Launch {
            outputs: outputs.into_iter().map(widen).collect(),
            device,
        })
    }

    /// The drained buffers as the design wrote them (to feed another design unconverted),
    /// and the simulated time.
    pub fn launch_host(
        &self,
        inputs: &[&HostData],
    ) -> Result<(Vec<HostData>, Duration), SimDeviceError> {
        // `--device npu`: the same design's artefacts on the installed driver.
        if let Some(npu) = crate::driver::installed() {
            let name = self.spec.name();
            return npu
                .launch_design(&self.hash, name, self.prepared.design(), inputs)
                .map_err(|e| SimDeviceError::Sim {
                    spec: name.to_string(),
                    message: e.to_string(),
                });
        }
        let run = self
            .prepared
            .run_ref(inputs)
            .map_err(|e| SimDeviceError::Sim {
                spec: self.spec.name().to_string(),
                message: e.to_string(),
            })?;
        super::predicted::add(self.predicted);
        Ok((run.outputs, run.run_time))
    }
}

/// Converts f32 values to a host buffer of `elem` (bf16: round to nearest even).
pub fn narrow(elem: ElemType, x: &[f32]) -> HostData {
    match elem {
        ElemType::F32 => HostData::F32(x.to_vec()),
        ElemType::Bf16 => HostData::Bf16(x.iter().map(|&v| bf16::from_f32(v)).collect()),
        other => {
            let wide: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            HostData::from_f64(other, &wide)
        }
    }
}

/// A drained buffer as f32 (an f32 buffer as it is).
fn widen(h: HostData) -> Vec<f32> {
    match h {
        HostData::F32(v) => v,
        HostData::Bf16(v) => v.iter().map(|x| x.to_f32()).collect(),
        other => other.to_f64().iter().map(|&v| v as f32).collect(),
    }
}

fn cache() -> &'static Mutex<HashMap<String, Arc<Kernel>>> {
    static KERNELS: OnceLock<Mutex<HashMap<String, Arc<Kernel>>>> = OnceLock::new();
    KERNELS.get_or_init(Default::default)
}

/// Hex SHA-256 of the spec text (the cache key on disk).
pub fn spec_hash(toml: &str) -> String {
    Sha256::digest(toml.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `$AIEC_HOME/kernels` (the runtime's cache root).
fn kernels_dir() -> Option<PathBuf> {
    aiec_runtime::model::install::cache_dir()
        .ok()
        .map(|d| d.join("kernels"))
}

/// The compiled kernel of `toml`, built and JIT-compiled on the first request of the process.
pub fn kernel(toml: &str) -> Result<Arc<Kernel>, SimDeviceError> {
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = map.get(toml) {
        return Ok(k.clone());
    }
    let k = Arc::new(compile(toml)?);
    map.insert(toml.to_string(), k.clone());
    Ok(k)
}

fn compile(toml: &str) -> Result<Kernel, SimDeviceError> {
    let hash = spec_hash(toml);
    let spec = Spec::parse(toml, Path::new(&format!("{hash}.toml")))?;
    let design = spec.build()?;
    if let Some(dir) = kernels_dir() {
        // The on-disk copy is for inspection only: a read-only cache must not stop a run.
        if let Ok(mlir) = crate::mlir::print::emit(&design) {
            let _ = std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(dir.join(format!("{hash}.mlir")), mlir))
                .and_then(|_| std::fs::write(dir.join(format!("{hash}.toml")), toml));
        }
    }
    let options = SimOptions {
        timeout: Duration::from_secs(600),
        // The shim DMAs are driven by the design's NPU instruction stream (`insts.bin`,
        // decoded), not by the Design's sequence: what a transcription runs is what the NPU
        // would be sent.
        sequence: sim::SequenceSource::Instructions,
        ..SimOptions::default()
    };
    let prepared = Prepared::new(&design, &options).map_err(|e| SimDeviceError::Sim {
        spec: spec.name().to_string(),
        message: e.to_string(),
    })?;
    let (inputs, _) = sim::io_args(&design);
    let input_elems = inputs
        .iter()
        .map(|&a| design.sequence.args[a].ty.elem)
        .collect();
    let predicted = crate::perf::predict(&design, &design.device)
        .ok()
        .and_then(|p| Duration::try_from_secs_f64(p.total()).ok())
        .unwrap_or_default();
    Ok(Kernel {
        spec,
        prepared,
        input_elems,
        hash,
        predicted,
    })
}

fn chosen() -> &'static Mutex<HashMap<String, Arc<Kernel>>> {
    static CHOSEN: OnceLock<Mutex<HashMap<String, Arc<Kernel>>>> = OnceLock::new();
    CHOSEN.get_or_init(Default::default)
}

/// The kernel for the op and shape `key`: the first of `candidates()` (spec texts, best
/// first) whose spec builds, compiled. The choice is remembered per key, so the tiling search
/// runs once per shape and process.
pub fn first_that_builds<I: IntoIterator<Item = String>>(
    key: &str,
    candidates: impl FnOnce() -> I,
) -> Result<Arc<Kernel>, SimDeviceError> {
    if let Some(k) = chosen().lock().unwrap_or_else(|p| p.into_inner()).get(key) {
        return Ok(k.clone());
    }
    let mut last = String::from("no tiling divides the shape");
    for toml in candidates() {
        // A candidate must also pass our verifier: a design whose shim transfers no BD can
        // encode (e.g. a stride beyond 20 bits) runs in the simulator from the Design's
        // sequence but has no instruction stream, so it could never run on the NPU.
        let built = Spec::parse(&toml, Path::new(key))
            .and_then(|s| s.build())
            .map_err(|e| aiec_runtime::errors::chain(&e))
            .and_then(|d| {
                crate::mlir::verify::verify(&d).map_err(|e| aiec_runtime::errors::chain(&e))
            });
        match built {
            Ok(_) => {
                let k = kernel(&toml)?;
                chosen()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.to_string(), k.clone());
                return Ok(k);
            }
            Err(e) => last = e,
        }
    }
    Err(SimDeviceError::NoTiling {
        what: key.to_string(),
        last,
    })
}
