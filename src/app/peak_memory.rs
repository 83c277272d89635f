//! Peak resident memory of this process over a measurement window (Linux): writing `5` to
//! `/proc/self/clear_refs` resets the high-water mark `VmHWM` of `/proc/self/status`
//! (proc(5)). Elsewhere, or where the kernel refuses the reset, nothing is reported rather than
//! a figure that covers the whole run.

use std::fs;

/// A window over which the peak resident set size is measured.
#[derive(Debug)]
pub struct PeakRss {
    reset: bool,
}

impl PeakRss {
    /// Starts a window: resets the process's high-water mark.
    pub fn start() -> Self {
        PeakRss {
            reset: fs::write("/proc/self/clear_refs", "5").is_ok(),
        }
    }

    /// Peak resident set size since [`PeakRss::start`], in MiB; `None` where it cannot be
    /// measured.
    pub fn peak_mib(&self) -> Option<f64> {
        if !self.reset {
            return None;
        }
        let status = fs::read_to_string("/proc/self/status").ok()?;
        parse_kib(&status, "VmHWM:").map(|kib| kib / 1024.0)
    }
}

/// The value in kiB of a `/proc/self/status` line such as `VmHWM:   123456 kB`.
fn parse_kib(status: &str, key: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tx\nVmPeak:\t  999 kB\nVmHWM:\t   2048 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_kib(s, "VmHWM:"), Some(2048.0));
        assert_eq!(parse_kib(s, "VmSwap:"), None);
    }
}
