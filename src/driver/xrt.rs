//! The NPU through XRT (cargo feature `xrt`): the C++ shim `xrt_shim.cpp` (built by build.rs
//! against XRT >= 2.17) behind the [`Driver`] trait.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use super::{check_run_inputs, Artefacts, BoLayout, Driver, DriverError, LoadedKernel, OPCODE};

#[repr(C)]
struct RawDevice {
    _opaque: [u8; 0],
}

#[repr(C)]
struct RawKernel {
    _opaque: [u8; 0],
}

extern "C" {
    fn aiec_xrt_open(index: u32, out: *mut *mut RawDevice, err: *mut c_char, len: usize) -> i32;
    fn aiec_xrt_close(device: *mut RawDevice);
    #[allow(clippy::too_many_arguments)]
    fn aiec_xrt_load(
        device: *mut RawDevice,
        xclbin: *const c_char,
        kernel: *const c_char,
        insts: *const u32,
        n_words: usize,
        bo_bytes: *const usize,
        n_bos: usize,
        out: *mut *mut RawKernel,
        err: *mut c_char,
        len: usize,
    ) -> i32;
    fn aiec_xrt_free(kernel: *mut RawKernel);
    fn aiec_xrt_run(
        kernel: *mut RawKernel,
        opcode: u64,
        inputs: *const *const u8,
        outputs: *const *mut u8,
        err: *mut c_char,
        len: usize,
    ) -> i32;
}

/// Calls `f` with an error buffer; the shim's message when it returns non-zero.
fn checked(f: impl FnOnce(*mut c_char, usize) -> i32) -> Result<(), String> {
    let mut err = vec![0 as c_char; 1024];
    if f(err.as_mut_ptr(), err.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim always NUL-terminates within the buffer it was given.
    Err(unsafe { CStr::from_ptr(err.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

/// One XRT device (`xrt::device(index)`).
pub struct XrtDriver {
    device: *mut RawDevice,
}

// SAFETY: xrt::device is a shared handle XRT documents as usable from any thread; the shim
// keeps no thread-local state.
unsafe impl Send for XrtDriver {}
unsafe impl Sync for XrtDriver {}

impl XrtDriver {
    pub fn open(index: u32) -> Result<Self, String> {
        let mut device = ptr::null_mut();
        // SAFETY: `device` is written only on success.
        checked(|e, n| unsafe { aiec_xrt_open(index, &mut device, e, n) })
            .map_err(|m| format!("xrt::device({index}): {m}"))?;
        Ok(XrtDriver { device })
    }
}

impl Drop for XrtDriver {
    fn drop(&mut self) {
        // SAFETY: made by aiec_xrt_open, freed once.
        unsafe { aiec_xrt_close(self.device) }
    }
}

impl Driver for XrtDriver {
    fn name(&self) -> &'static str {
        "the XRT device"
    }

    fn load(&self, a: &Artefacts) -> Result<Box<dyn LoadedKernel>, DriverError> {
        let fail = |message: String| DriverError::Load {
            kernel: a.name.clone(),
            driver: self.name(),
            message,
        };
        let path = a.xclbin.as_ref().ok_or_else(|| {
            a.error(format!(
                "no xclbin: it needs {}",
                super::probe::xclbin_hint()
            ))
        })?;
        let bytes = std::fs::read(path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        a.check_xclbin(&bytes)?;
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| fail(format!("{} contains a NUL byte", path.display())))?;
        let c_kernel = CString::new(a.kernel.as_str())
            .map_err(|_| fail("the kernel name contains a NUL byte".into()))?;
        let bos = a.bos();
        let sizes: Vec<usize> = bos.iter().map(BoLayout::bytes).collect();
        let mut kernel = ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the shim copies what it keeps.
        checked(|e, n| unsafe {
            aiec_xrt_load(
                self.device,
                c_path.as_ptr(),
                c_kernel.as_ptr(),
                a.insts.as_ptr(),
                a.insts.len(),
                sizes.as_ptr(),
                sizes.len(),
                &mut kernel,
                e,
                n,
            )
        })
        .map_err(fail)?;
        Ok(Box::new(XrtKernel {
            name: a.name.clone(),
            bos,
            kernel: std::sync::Mutex::new(KernelPtr(kernel)),
        }))
    }
}

struct KernelPtr(*mut RawKernel);

struct XrtKernel {
    name: String,
    bos: Vec<BoLayout>,
    /// One run at a time per kernel: its BOs are shared by every run.
    kernel: std::sync::Mutex<KernelPtr>,
}

// SAFETY: the raw kernel is only touched under the mutex.
unsafe impl Send for XrtKernel {}
unsafe impl Sync for XrtKernel {}

impl LoadedKernel for XrtKernel {
    fn run(&self, inputs: &[Option<&[u8]>]) -> Result<Vec<Vec<u8>>, DriverError> {
        check_run_inputs(&self.name, "the XRT device", &self.bos, inputs)?;
        let mut outputs: Vec<Vec<u8>> = self
            .bos
            .iter()
            .filter(|b| b.drained)
            .map(|b| vec![0; b.bytes()])
            .collect();
        let mut drained = outputs.iter_mut();
        let out_ptrs: Vec<*mut u8> = self
            .bos
            .iter()
            .map(|b| {
                if b.drained {
                    drained.next().map_or(ptr::null_mut(), |o| o.as_mut_ptr())
                } else {
                    ptr::null_mut()
                }
            })
            .collect();
        let in_ptrs: Vec<*const u8> = inputs
            .iter()
            .map(|d| d.map_or(ptr::null(), <[u8]>::as_ptr))
            .collect();
        let guard = self.kernel.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: one pointer per BO, each null or valid for the BO's size (checked above).
        checked(|e, n| unsafe {
            aiec_xrt_run(guard.0, OPCODE, in_ptrs.as_ptr(), out_ptrs.as_ptr(), e, n)
        })
        .map_err(|message| DriverError::Run {
            kernel: self.name.clone(),
            driver: "the XRT device",
            message,
        })?;
        Ok(outputs)
    }
}

impl Drop for XrtKernel {
    fn drop(&mut self) {
        let k = self.kernel.get_mut().unwrap_or_else(|p| p.into_inner());
        // SAFETY: made by aiec_xrt_load, freed once.
        unsafe { aiec_xrt_free(k.0) }
    }
}

/// The NPU driver `--device npu` uses: device 0.
pub fn open_default() -> Result<XrtDriver, String> {
    XrtDriver::open(0)
}
