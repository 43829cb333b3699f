//! The training device, chosen by cargo feature: `wgpu` (GPU, or CPU through Mesa lavapipe),
//! `ndarray` (CPU, deprecated upstream), else `flex` (Burn's pure-Rust CPU backend, the
//! default: level with ndarray on LeNet-300-100 and 30-50x faster to train LeNet-5, measured by
//! `cargo xtask bench backends`, see docs/BENCHMARKS.md).

use burn::tensor::Device;

/// The backend the examples were built for, by name.
pub fn name() -> &'static str {
    if cfg!(feature = "wgpu") {
        "wgpu"
    } else if cfg!(feature = "ndarray") {
        "ndarray"
    } else {
        "flex"
    }
}

/// The plain (inference) device of the selected backend.
///
/// ```
/// let device = sparse_examples::backend::device();
/// # let _ = device;
/// ```
#[allow(deprecated, unreachable_code)]
pub fn device() -> Device {
    #[cfg(feature = "wgpu")]
    return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    #[cfg(all(feature = "ndarray", not(feature = "wgpu")))]
    return Device::ndarray();
    #[cfg(all(feature = "flex", not(any(feature = "wgpu", feature = "ndarray"))))]
    return Device::flex();
    #[cfg(not(any(feature = "flex", feature = "wgpu", feature = "ndarray")))]
    compile_error!("enable one backend feature: flex (default), ndarray or wgpu");
}

/// The training (autodiff) device of the selected backend.
pub fn autodiff() -> Device {
    device().autodiff()
}
