//! An NPU that runs a design's artefacts, behind one small trait with two implementations:
//!
//! - [`sim::SimDriver`]: the host simulator executing the same instruction stream
//!   (`insts.bin` words, decoded by [`crate::sim`]'s `SequenceSource::Stream`) against the
//!   design's compiled cores (the simulator's stand-in for the PDI);
//! - `xrt::XrtDriver` (cargo feature `xrt`): the XRT host flow of mlir-aie's test utilities,
//!   through the C++ shim `xrt_shim.cpp`.
//!
//! Everything above the trait is shared, so the sim exercises it all but the final ioctl:
//! the artefacts a kernel is loaded from ([`Artefacts`]: xclbin, kernel name `MLIR_AIE`,
//! instruction words), the layout of its buffer objects (one per runtime-sequence argument, in
//! argument order = `group_id(3 + i)`), the conversion of typed host data into BO bytes and
//! back ([`NpuKernel`]), and the once-per-model cache of loaded kernels ([`Loader`]).

pub mod probe;
pub mod sim;
#[cfg(feature = "xrt")]
pub mod xrt;
pub mod xrt_headers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::design::{Design, ElemType};
use crate::sim::HostData;

/// The kernel aiecc's xclbin declares (and that `xrt::kernel(ctx, name)` looks up).
pub const KERNEL_NAME: &str = "MLIR_AIE";

/// The first kernel argument of an NPU run: opcode 3 = "execute the instruction buffer"
/// (mlir-aie's test utilities pass 3; the xclbin declares it as `opcode` u64 @0).
pub const OPCODE: u64 = 3;

/// Why a kernel could not be loaded or run.
#[derive(thiserror::Error, Debug)]
pub enum DriverError {
    #[error("kernel `{kernel}`: {message}")]
    Artefact { kernel: String, message: String },
    #[error("kernel `{kernel}`: loading on {driver} failed: {message}")]
    Load {
        kernel: String,
        driver: &'static str,
        message: String,
    },
    #[error("kernel `{kernel}`: run on {driver} failed: {message}")]
    Run {
        kernel: String,
        driver: &'static str,
        message: String,
    },
    #[error("kernel `{kernel}` input {index}: {message}")]
    Input {
        kernel: String,
        index: usize,
        message: String,
    },
}

/// One buffer object: a runtime-sequence argument of the design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoLayout {
    pub name: String,
    pub elem: ElemType,
    pub len: usize,
    /// The host writes it before a run (the sequence fills a FIFO from it).
    pub filled: bool,
    /// The host reads it after a run (the sequence drains a FIFO into it).
    pub drained: bool,
}

impl BoLayout {
    pub fn bytes(&self) -> usize {
        self.len * self.elem.bytes()
    }
}

/// What one kernel is loaded from.
#[derive(Debug, Clone)]
pub struct Artefacts {
    /// The spec's name, for messages.
    pub name: String,
    /// The design the artefacts were built from: the BO layout, and what the simulator runs
    /// in place of the xclbin's PDI.
    pub design: Design,
    /// `final.xclbin` (XRT needs it; the simulator checks it when given).
    pub xclbin: Option<PathBuf>,
    /// The kernel to look up in the xclbin.
    pub kernel: String,
    /// `insts.bin` as 32-bit words, the instruction BO's contents.
    pub insts: Vec<u32>,
}

impl Artefacts {
    /// The artefacts of `design` with our own instruction stream ([`crate::npu::insts_bin`]).
    pub fn for_design(
        name: &str,
        design: &Design,
        xclbin: Option<PathBuf>,
    ) -> Result<Self, DriverError> {
        let bytes = crate::npu::insts_bin(design).map_err(|e| DriverError::Artefact {
            kernel: name.to_string(),
            message: format!("no instruction stream: {}", aiec_runtime::errors::chain(&e)),
        })?;
        Ok(Artefacts {
            name: name.to_string(),
            design: design.clone(),
            xclbin,
            kernel: KERNEL_NAME.to_string(),
            insts: insts_words(name, &bytes)?,
        })
    }

    /// One BO per runtime-sequence argument, in argument order.
    pub fn bos(&self) -> Vec<BoLayout> {
        let (filled, drained) = crate::sim::io_args(&self.design);
        self.design
            .sequence
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| BoLayout {
                name: a.name.clone(),
                elem: a.ty.elem,
                len: a.ty.shape.iter().product(),
                filled: filled.contains(&i),
                drained: drained.contains(&i),
            })
            .collect()
    }

    /// The instruction words as the bytes of `insts.bin` (little-endian).
    pub fn insts_bytes(&self) -> Vec<u8> {
        self.insts.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> DriverError {
        DriverError::Artefact {
            kernel: self.name.clone(),
            message: message.into(),
        }
    }

    /// Checks `final.xclbin` with our AXLF reader before a driver loads it: the kernel is
    /// there, is a DPU kernel, and takes (opcode, instr, ninstr) and a `bo` per BO at
    /// aiecc's positions. XRT would fail later and less precisely.
    pub fn check_xclbin(&self, bytes: &[u8]) -> Result<(), DriverError> {
        let x = crate::npu::xclbin::read(bytes)
            .map_err(|e| self.error(format!("its xclbin cannot be read: {e}")))?;
        let kernels = x.kernels.unwrap_or_default();
        let Some(k) = kernels.iter().find(|k| k.name == self.kernel) else {
            let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
            return Err(self.error(format!(
                "its xclbin has no kernel `{}` (it has: {})",
                self.kernel,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        };
        if k.kernel_type != "dpu" {
            return Err(self.error(format!(
                "xclbin kernel `{}` is of type `{}`, not `dpu`",
                k.name, k.kernel_type
            )));
        }
        let bos = self.bos().len();
        let want: Vec<String> = ["opcode", "instr", "ninstr"]
            .iter()
            .map(|s| s.to_string())
            .chain((0..bos).map(|i| format!("bo{i}")))
            .collect();
        let got: Vec<&str> = k.args.iter().map(|a| a.name.as_str()).collect();
        if got.len() < want.len() || got[..want.len()] != want {
            return Err(self.error(format!(
                "xclbin kernel `{}` takes ({}), but the design needs ({}) for its {bos} host \
                 buffers",
                k.name,
                got.join(", "),
                want.join(", ")
            )));
        }
        Ok(())
    }
}

/// `insts.bin` bytes as the instruction BO's 32-bit words.
pub fn insts_words(name: &str, bytes: &[u8]) -> Result<Vec<u32>, DriverError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return Err(DriverError::Artefact {
            kernel: name.to_string(),
            message: format!(
                "an instruction stream of {} bytes is not a whole number of 32-bit words",
                bytes.len()
            ),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The byte-level contract of [`LoadedKernel::run`], checked by every driver before data
/// moves: one entry per BO, present exactly for the filled ones, each the BO's size.
pub(crate) fn check_run_inputs(
    kernel: &str,
    driver: &'static str,
    bos: &[BoLayout],
    inputs: &[Option<&[u8]>],
) -> Result<(), DriverError> {
    let fail = |message: String| DriverError::Run {
        kernel: kernel.to_string(),
        driver,
        message,
    };
    if inputs.len() != bos.len() {
        return Err(fail(format!(
            "{} BO contents for {} BOs",
            inputs.len(),
            bos.len()
        )));
    }
    for (i, (bo, data)) in bos.iter().zip(inputs).enumerate() {
        match (bo.filled, data) {
            (true, None) => {
                return Err(fail(format!(
                    "BO {i} (`{}`) is filled but not given",
                    bo.name
                )))
            }
            (false, Some(_)) => {
                return Err(fail(format!(
                    "BO {i} (`{}`) is not read by the design",
                    bo.name
                )))
            }
            (true, Some(d)) if d.len() != bo.bytes() => {
                return Err(fail(format!(
                    "BO {i} (`{}`) has {} bytes, {} were given",
                    bo.name,
                    bo.bytes(),
                    d.len()
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// An NPU that runs artefacts.
pub trait Driver: Send + Sync {
    /// For messages: `simulator`, `XRT device 0`.
    fn name(&self) -> &'static str;
    /// Loads `artefacts` once: registers the xclbin and opens the kernel, makes the instruction
    /// BO from the words and one BO per entry of `artefacts.bos()`.
    fn load(&self, artefacts: &Artefacts) -> Result<Box<dyn LoadedKernel>, DriverError>;
}

/// A kernel on a driver, with its buffer objects.
pub trait LoadedKernel: Send + Sync {
    /// One run: `inputs[i]` (the bytes of BO `i`, `Some` for every filled BO) written and
    /// synced to the device; `run(OPCODE, instr BO, n_words, every BO)` waited for; every
    /// drained BO synced back. Returns the drained BOs' bytes, in argument order.
    fn run(&self, inputs: &[Option<&[u8]>]) -> Result<Vec<Vec<u8>>, DriverError>;
}

/// A loaded kernel with typed inputs and outputs (what a tensor op launches).
pub struct NpuKernel {
    pub name: String,
    pub bos: Vec<BoLayout>,
    loaded: Box<dyn LoadedKernel>,
}

impl NpuKernel {
    pub fn load(driver: &dyn Driver, artefacts: &Artefacts) -> Result<Self, DriverError> {
        Ok(NpuKernel {
            name: artefacts.name.clone(),
            bos: artefacts.bos(),
            loaded: driver.load(artefacts)?,
        })
    }

    /// Runs on `inputs` (one per filled BO, in argument order, each of the BO's type and
    /// length); the drained BOs in argument order, and the wall time of the run.
    pub fn launch(&self, inputs: &[&HostData]) -> Result<(Vec<HostData>, Duration), DriverError> {
        let filled: Vec<usize> = (0..self.bos.len())
            .filter(|&i| self.bos[i].filled)
            .collect();
        let input_error = |index, message: String| DriverError::Input {
            kernel: self.name.clone(),
            index,
            message,
        };
        if inputs.len() != filled.len() {
            return Err(input_error(
                inputs.len(),
                format!(
                    "the kernel takes {} inputs, {} were given",
                    filled.len(),
                    inputs.len()
                ),
            ));
        }
        let mut bytes: Vec<Option<&[u8]>> = vec![None; self.bos.len()];
        for (index, (&bo, data)) in filled.iter().zip(inputs).enumerate() {
            let want = &self.bos[bo];
            if data.elem() != want.elem || data.len() != want.len {
                return Err(input_error(
                    index,
                    format!(
                        "BO {bo} (`{}`) holds {} {:?} elements, the input has {} {:?}",
                        want.name,
                        want.len,
                        want.elem,
                        data.len(),
                        data.elem()
                    ),
                ));
            }
            bytes[bo] = Some(data.as_le_bytes());
        }
        let started = Instant::now();
        let drained = self.loaded.run(&bytes)?;
        let time = started.elapsed();
        let outputs = self
            .bos
            .iter()
            .filter(|b| b.drained)
            .zip(drained)
            .map(|(b, bytes)| HostData::from_le_bytes(b.elem, &bytes))
            .collect();
        Ok((outputs, time))
    }
}

/// Loaded kernels by spec hash: each kernel and its BOs are made once per model (process),
/// however many times a transcription launches it.
pub struct Loader {
    driver: Box<dyn Driver>,
    kernels: Mutex<HashMap<String, Arc<NpuKernel>>>,
}

impl Loader {
    pub fn new(driver: Box<dyn Driver>) -> Self {
        Loader {
            driver,
            kernels: Mutex::default(),
        }
    }

    pub fn driver(&self) -> &dyn Driver {
        self.driver.as_ref()
    }

    /// The kernel of spec hash `key`, loaded from `artefacts()` on the first request.
    pub fn kernel(
        &self,
        key: &str,
        artefacts: impl FnOnce() -> Result<Artefacts, DriverError>,
    ) -> Result<Arc<NpuKernel>, DriverError> {
        let mut map = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = map.get(key) {
            return Ok(k.clone());
        }
        let k = Arc::new(NpuKernel::load(self.driver.as_ref(), &artefacts()?)?);
        map.insert(key.to_string(), k.clone());
        Ok(k)
    }

    /// Runs `design` (spec `name`, hash `hash`) on `inputs`: the kernel is loaded on its first
    /// launch from our instruction stream and `$AIEC_HOME/kernels/<hash>.xclbin` when that
    /// exists ([`probe::xclbin_path`]).
    pub fn launch_design(
        &self,
        hash: &str,
        name: &str,
        design: &Design,
        inputs: &[&HostData],
    ) -> Result<(Vec<HostData>, Duration), DriverError> {
        let kernel = self.kernel(hash, || {
            let xclbin = aiec_runtime::model::install::cache_dir()
                .ok()
                .map(|d| probe::xclbin_path(&d.join("kernels"), hash))
                .filter(|p| p.is_file());
            Artefacts::for_design(name, design, xclbin)
        })?;
        kernel.launch(inputs)
    }

    /// How many kernels are loaded.
    pub fn loaded(&self) -> usize {
        self.kernels.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

static INSTALLED: OnceLock<Loader> = OnceLock::new();

/// Makes every simdevice kernel launch of this process go through `loader` (`--device npu`);
/// false if a loader was installed already.
pub fn install(loader: Loader) -> bool {
    INSTALLED.set(loader).is_ok()
}

/// The driver of `--device npu`, or the one message naming what this build and machine lack
/// ([`probe::missing`]).
pub fn open_npu() -> Result<Loader, String> {
    if let Some(message) = probe::missing(&probe::probe()) {
        return Err(message);
    }
    open_xrt()
}

#[cfg(feature = "xrt")]
fn open_xrt() -> Result<Loader, String> {
    let device = xrt::open_default().map_err(|m| format!("--device npu: {m}"))?;
    Ok(Loader::new(Box::new(device)))
}

#[cfg(not(feature = "xrt"))]
fn open_xrt() -> Result<Loader, String> {
    // probe::missing always names the feature when it is off.
    Err("--device npu: this aiec was built without cargo feature `xrt`".to_string())
}

/// The loader [`install`]ed, if any.
pub fn installed() -> Option<&'static Loader> {
    INSTALLED.get()
}
