//! CUDA devices (only with the `cuda` feature): the NVIDIA driver probed before candle
//! touches it, and device memory and peak throughput for the training summary.
//!
//! `Device::new_cuda` panics inside cudarc when the driver library is missing, and a
//! driver older than the CUDA version the kernels were built with fails later with a
//! less clear message. So `--device cuda` first opens the driver library itself, asks it
//! for its version and device count, and turns each failure into an error that says
//! what is missing.

use candle_core::Device;
use libloading::Library;
use std::ffi::{CStr, c_char, c_int, c_uint};
use std::sync::OnceLock;

/// The driver library cudarc opens too.
const DRIVER_LIB: &str = if cfg!(windows) {
    "nvcuda.dll"
} else {
    "libcuda.so.1"
};

/// The CUDA version the kernels are built with (scripts/build-cuda.sh pins 13.0): an
/// older driver cannot load their PTX. 13.0 is NVIDIA driver 580 or newer.
pub const MIN_DRIVER_CUDA: i32 = 13000;

/// What the driver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverInfo {
    /// CUDA version the driver supports, as `1000 * major + 10 * minor` (13000 = 13.0).
    pub cuda_version: i32,
    /// Devices visible to this process.
    pub devices: usize,
}

/// Opens the driver once per process and asks for its version and device count. The
/// library stays loaded (cudarc opens the same one later).
pub fn probe() -> Result<DriverInfo, String> {
    static PROBE: OnceLock<Result<DriverInfo, String>> = OnceLock::new();
    PROBE.get_or_init(probe_once).clone()
}

fn probe_once() -> Result<DriverInfo, String> {
    type Init = unsafe extern "C" fn(c_uint) -> c_int;
    type GetInt = unsafe extern "C" fn(*mut c_int) -> c_int;
    type ErrName = unsafe extern "C" fn(c_int, *mut *const c_char) -> c_int;
    // SAFETY: loading the driver library runs its initialisers, as cudarc's own loading
    // would; nothing else of this process depends on it not being loaded.
    let lib = unsafe { Library::new(DRIVER_LIB) }
        .map_err(|e| format!("no NVIDIA driver: cannot load {DRIVER_LIB} ({e})"))?;
    // Never unloaded: the driver keeps state for the process once initialised.
    let lib: &'static Library = Box::leak(Box::new(lib));
    // SAFETY: the symbols are looked up with the signatures of the CUDA driver API
    // (cuda.h), which has kept them unchanged since CUDA 2.
    unsafe {
        let sym = |name: &str| -> Result<*const (), String> {
            lib.get::<*const ()>(name.as_bytes())
                .map(|s| *s)
                .map_err(|e| format!("{DRIVER_LIB} has no {name} ({e})"))
        };
        let init: Init = std::mem::transmute(sym("cuInit")?);
        let version: GetInt = std::mem::transmute(sym("cuDriverGetVersion")?);
        let count: GetInt = std::mem::transmute(sym("cuDeviceGetCount")?);
        let err_name: Option<ErrName> = sym("cuGetErrorName").ok().map(|p| std::mem::transmute(p));
        let describe = |code: c_int| -> String {
            let mut p: *const c_char = std::ptr::null();
            match err_name {
                Some(f) if f(code, &mut p) == 0 && !p.is_null() => {
                    format!("{} ({code})", CStr::from_ptr(p).to_string_lossy())
                }
                _ => format!("error {code}"),
            }
        };
        let rc = init(0);
        if rc != 0 {
            return Err(format!(
                "the NVIDIA driver did not initialise: cuInit returned {}",
                describe(rc)
            ));
        }
        let mut v: c_int = 0;
        let rc = version(&mut v);
        if rc != 0 {
            return Err(format!("cuDriverGetVersion returned {}", describe(rc)));
        }
        if v < MIN_DRIVER_CUDA {
            return Err(format!(
                "the NVIDIA driver supports CUDA {}.{}, this build needs {}.{} (driver 580 or newer)",
                v / 1000,
                (v % 1000) / 10,
                MIN_DRIVER_CUDA / 1000,
                (MIN_DRIVER_CUDA % 1000) / 10
            ));
        }
        let mut n: c_int = 0;
        let rc = count(&mut n);
        if rc != 0 {
            return Err(format!("cuDeviceGetCount returned {}", describe(rc)));
        }
        Ok(DriverInfo {
            cuda_version: v,
            devices: n.max(0) as usize,
        })
    }
}

/// The CUDA device `ordinal`, after checking that the driver is there and has it.
/// `name` is the device as written on the command line (for errors).
pub fn open(name: &str, ordinal: usize) -> Result<Device, String> {
    let info = probe().map_err(|cause| format!("--device {name}: {cause}"))?;
    if info.devices == 0 {
        return Err(format!(
            "--device {name}: the NVIDIA driver sees no CUDA device (check CUDA_VISIBLE_DEVICES)"
        ));
    }
    if ordinal >= info.devices {
        return Err(format!(
            "--device {name}: this machine has {} CUDA device{} (cuda:0 to cuda:{})",
            info.devices,
            if info.devices == 1 { "" } else { "s" },
            info.devices - 1
        ));
    }
    libraries().map_err(|cause| format!("--device {name}: {cause}"))?;
    Device::new_cuda(ordinal).map_err(|e| format!("--device {name}: {e}"))
}

/// The CUDA libraries candle opens when it creates a device (cuBLAS, cuBLASLt for its
/// matrix products, cuRAND for its generator), and the pip wheel that ships each. With
/// cudarc's `dynamic-loading` a missing one is a panic inside cudarc; here it is an error
/// that names it.
const LIBRARIES: &[(&str, &str)] = &[
    ("cublas", "nvidia-cublas"),
    ("cublasLt", "nvidia-cublas"),
    ("curand", "nvidia-curand"),
];

/// Checks that each of [`LIBRARIES`] can be opened under one of the names cudarc tries.
fn libraries() -> Result<(), String> {
    for (lib, wheel) in LIBRARIES {
        let names = library_names(lib);
        // SAFETY: as for the driver: loading runs the library's initialisers only.
        if !names.iter().any(|n| unsafe { Library::new(n) }.is_ok()) {
            return Err(format!(
                "cannot load the CUDA library {lib} (tried {}): install CUDA 13's, e.g. \
                 `pip install {wheel}` (13.x), and put its lib folder on LD_LIBRARY_PATH",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

/// File names of a CUDA library: the subset of cudarc's candidates for this platform
/// that CUDA 9 to 13 installs and wheels use.
fn library_names(lib: &str) -> Vec<String> {
    if cfg!(windows) {
        return vec![
            format!("{lib}64_13.dll"),
            format!("{lib}64_12.dll"),
            format!("{lib}.dll"),
        ];
    }
    let mut v = vec![format!("lib{lib}.so")];
    v.extend(["13", "12", "11", "10", "9", "1"].map(|m| format!("lib{lib}.so.{m}")));
    v
}

/// `(used, total)` bytes of the device's memory as the driver reports them (all
/// processes, and memory candle's allocator holds for reuse); None on other devices.
pub fn memory(device: &Device) -> Option<(u64, u64)> {
    let Device::Cuda(d) = device else {
        return None;
    };
    let (free, total) = d.cuda_stream().context().mem_get_info().ok()?;
    Some(((total - free) as u64, total as u64))
}

/// The device's name as the driver reports it (`NVIDIA H100 80GB HBM3`, ...).
pub fn name(device: &Device) -> Option<String> {
    let Device::Cuda(d) = device else {
        return None;
    };
    d.cuda_stream().context().name().ok()
}
