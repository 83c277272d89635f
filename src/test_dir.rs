//! Temporary folders for the unit tests: unique per process and name, removed when the test
//! passes, kept for inspection when it panics.

use std::path::{Path, PathBuf};

/// A fresh, empty folder `scoregen-<name>-<pid>` in the system's temporary directory.
pub struct TestDir(PathBuf);

impl TestDir {
    /// Creates the folder (replacing a leftover of the same name).
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("scoregen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TestDir(d)
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_exists_while_held_and_is_removed_after() {
        let path = {
            let d = TestDir::new("testdir-self");
            std::fs::write(d.join("f"), "x").unwrap();
            assert!(d.join("f").exists());
            d.to_path_buf()
        };
        assert!(!path.exists());
    }
}
