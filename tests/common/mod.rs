//! Helpers shared by the CLI test files: run the binary, temporary folders, and one small
//! trained point model.
#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scoregen"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run scoregen")
}

pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "scoregen {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert!(!o.status.success(), "scoregen {args:?} should fail");
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A fresh folder under Cargo's `target/tmp` for one test, removed when the test passes (kept
/// for inspection when it panics).
pub struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TmpDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scoregen-cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fresh folder for one test, named after the test binary's process so that concurrent runs
/// do not collide.
pub fn tmp(name: &str) -> TmpDir {
    TmpDir(fresh_dir(&format!("{}-{name}", std::process::id())))
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small VP model trained once for all tests: 3-D data so that dimension checks bite.
pub fn checkpoint() -> &'static PathBuf {
    static CK: OnceLock<PathBuf> = OnceLock::new();
    CK.get_or_init(|| {
        // Lives as long as the test process (a static is never dropped): named after the test
        // binary, so that the next run replaces it instead of leaving one per process.
        let exe = std::env::current_exe().unwrap();
        let stem = exe.file_stem().unwrap().to_string_lossy().to_string();
        let dir = fresh_dir(&format!("ck-{stem}"));
        let mut csv = String::from("a,b,c\n");
        for i in 0..300 {
            let t = i as f64 / 300.0 * 6.0;
            csv.push_str(&format!("{},{},{}\n", t.cos(), t.sin(), 0.5 * t));
        }
        let data = dir.join("points.csv");
        std::fs::write(&data, csv).unwrap();
        let cfg = dir.join("small.toml");
        std::fs::write(
            &cfg,
            "steps = 40\nbatch = 64\n[model]\nhidden = 32\nblocks = 1\n",
        )
        .unwrap();
        let out = dir.join("run");
        ok(&[
            "train",
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--config",
            s(&cfg),
            "--sde",
            "vp",
            "--seed",
            "3",
        ]);
        out
    })
}

/// Copies the files of the checkpoint directory `from` into `to` (created if missing).
pub fn copy_checkpoint(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

pub fn read_rows(p: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect()
}

/// Writes 40 raw (uncompressed) IDX images of 8×8 bars and their labels (4 classes) into `dir`
/// and returns the `idx:<images>,<labels>` data argument.
pub fn bars_idx(dir: &Path) -> String {
    let mut idx = vec![0u8, 0, 8, 3];
    for d in [40u32, 8, 8] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    for k in 0..40 {
        for y in 0..8 {
            for x in 0..8 {
                idx.push(if (x + k) % 4 == 0 || y == k % 8 {
                    255
                } else {
                    0
                });
            }
        }
    }
    std::fs::write(dir.join("img.idx"), &idx).unwrap();
    let mut lab = vec![0u8, 0, 8, 1];
    lab.extend_from_slice(&40u32.to_be_bytes());
    lab.extend((0..40).map(|k| (k % 4) as u8));
    std::fs::write(dir.join("lab.idx"), &lab).unwrap();
    format!(
        "idx:{},{}",
        s(&dir.join("img.idx")),
        s(&dir.join("lab.idx"))
    )
}

/// The configuration of a `steps`-step training of a tiny point model (an MLP with 8 hidden
/// units and one block, batch 8, one checkpoint at the end).
pub fn tiny_point_config(steps: u64) -> scoregen::train::TrainConfig {
    let mut c = scoregen::train::TrainConfig {
        steps,
        batch: 8,
        checkpoint_every: steps,
        ..Default::default()
    };
    c.model.hidden = 8;
    c.model.blocks = 1;
    c
}
