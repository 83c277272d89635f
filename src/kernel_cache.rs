//! Where the CUDA backend keeps its compiled kernels between runs.
//!
//! cubecl compiles every GPU kernel at run time through NVRTC; without a cache each process
//! pays that again (about 220 kernels and 40 s for a U-Net training step on an H100 host, measured
//! in BENCHMARKS.md). scoregen points cubecl's compilation cache at a per-user directory unless
//! the user configures cubecl with a `cubecl.toml` (or `burn.toml`) of their own.

use std::path::{Path, PathBuf};

/// cubecl's configuration files, looked for from the working directory upwards.
const CONFIG_FILES: [&str; 4] = ["cubecl.toml", "CubeCL.toml", "burn.toml", "Burn.toml"];

/// The kernel cache directory: `$SCOREGEN_KERNEL_CACHE`, else `$XDG_CACHE_HOME/scoregen/kernels`,
/// else `$HOME/.cache/scoregen/kernels`; `None` when none of them is set (no cache then).
/// `var` reads an environment variable.
pub fn kernel_cache_dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("SCOREGEN_KERNEL_CACHE")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("scoregen").join("kernels")))
        .or_else(|| set("HOME").map(|h| h.join(".cache").join("scoregen").join("kernels")))
}

/// Whether a cubecl configuration file lies in `dir` or one of its parents (cubecl then reads
/// it, and scoregen leaves the configuration alone).
pub fn has_cubecl_config(dir: &Path) -> bool {
    dir.ancestors()
        .any(|d| CONFIG_FILES.iter().any(|f| d.join(f).is_file()))
}

/// Turns on cubecl's compilation cache in [`kernel_cache_dir`], once, before the first CUDA
/// device is created; does nothing when the user has a cubecl configuration file, or when no
/// cache directory can be named or created.
#[cfg(feature = "cuda")]
pub fn configure_cuda_kernel_cache() {
    use cubecl::config::cache::CacheConfig;
    use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        if has_cubecl_config(&cwd) {
            return;
        }
        let Some(dir) = kernel_cache_dir(|k| std::env::var(k).ok()) else {
            return;
        };
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let mut config = CubeClRuntimeConfig::default().override_from_env();
        config.compilation.cache = Some(CacheConfig::File(dir));
        // `set` panics when cubecl has read its configuration already; the first CUDA call
        // comes after this one, so that would be a bug here, not a user error.
        CubeClRuntimeConfig::set(config);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_directory_follows_the_environment_in_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let all = env(&[
            ("SCOREGEN_KERNEL_CACHE", "/k"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(kernel_cache_dir(all), Some(PathBuf::from("/k")));
        let xdg = env(&[
            ("SCOREGEN_KERNEL_CACHE", ""),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            kernel_cache_dir(xdg),
            Some(PathBuf::from("/x/scoregen/kernels"))
        );
        let home = env(&[("HOME", "/h")]);
        assert_eq!(
            kernel_cache_dir(home),
            Some(PathBuf::from("/h/.cache/scoregen/kernels"))
        );
        assert_eq!(kernel_cache_dir(env(&[])), None);
    }

    #[test]
    fn a_cubecl_file_in_a_parent_directory_is_found() {
        let root = std::env::temp_dir().join(format!("scoregen-kc-{}", std::process::id()));
        let deep = root.join("a").join("b");
        std::fs::create_dir_all(&deep).unwrap();
        assert!(!has_cubecl_config(&deep) || has_cubecl_config(&std::env::temp_dir()));
        std::fs::write(root.join("cubecl.toml"), "").unwrap();
        assert!(has_cubecl_config(&deep));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
