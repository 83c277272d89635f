//! Run-time device selection: `cpu` (flex backend) or `cuda[:N]` (cubecl CUDA backend, built
//! with the `cuda` cargo feature).

use std::str::FromStr;

use crate::error::{Error, Result};

/// A device requested on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The flex CPU backend.
    Cpu,
    /// CUDA device with this index.
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| {
                    Error::config(
                        "device",
                        format!("`{other}` is not a device (expected cpu, cuda or cuda:N)"),
                    )
                }),
        }
    }
}

impl DeviceSpec {
    /// Errors unless this binary can run on the device (CUDA built in and a driver present).
    pub fn check_available(self) -> Result<()> {
        match self {
            DeviceSpec::Cpu => Ok(()),
            DeviceSpec::Cuda(i) => cuda_available(i),
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_available(index: usize) -> Result<()> {
    use burn::backend::cuda::{Cuda, CudaDevice};
    use burn::tensor::Tensor;
    crate::kernel_cache::configure_cuda_kernel_cache();
    crate::cuda_conv::configure_cuda_conv()?;
    // cubecl panics (in its device thread, too) when the driver is missing; silence the panic
    // messages during the probe and turn the failure into an error.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| {
        let dev = CudaDevice::new(index);
        let t = Tensor::<Cuda, 1>::from_floats([1.0f32, 2.0], &dev);
        crate::tensor::scalar(t.sum())
    });
    std::panic::set_hook(previous);
    match probe {
        Ok(v) if (v - 3.0).abs() < 1e-6 => Ok(()),
        Ok(v) => Err(Error::Unsupported(format!("CUDA device {index} computed 1 + 2 = {v}"))),
        Err(_) => Err(Error::Unsupported(format!(
            "CUDA device {index} could not be initialised (no NVIDIA driver, or no such GPU); use --device cpu"
        ))),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_available(_index: usize) -> Result<()> {
    Err(Error::Unsupported(
        "this scoregen was built without CUDA support; rebuild with `cargo build --release --features cuda` or use --device cpu".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_explains_missing_cuda() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda:2".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(2));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        #[cfg(not(feature = "cuda"))]
        assert!(DeviceSpec::Cuda(0)
            .check_available()
            .unwrap_err()
            .to_string()
            .contains("--features cuda"));
    }
}
