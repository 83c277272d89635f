//! End-to-end tests of image models: IDX data, U-Net training, sample grids, class
//! conditioning with guidance, image likelihood and inpainting.

mod common;

use common::*;

#[test]
fn image_models_train_on_idx_data_and_write_sample_grids() {
    let dir = tmp("images");
    let cfg = dir.join("unet.toml");
    std::fs::write(
        &cfg,
        "steps = 4\nbatch = 8\n[unet]\nbase = 8\nmult = [1, 2]\nattn_levels = [1]\ngroups = 4\n",
    )
    .unwrap();
    let run = dir.join("run");
    let data = bars_idx(&dir);
    let o = common::run(&[
        "train",
        "--data",
        &data,
        "--first",
        "32",
        "--out",
        s(&run),
        "--config",
        s(&cfg),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("training on 32 images of 1×8×8 |"), "{err}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(
        (
            meta["dim"].as_u64(),
            meta["config"]["unet"]["height"].as_u64()
        ),
        (Some(64), Some(8))
    );
    assert!(
        run.join("samples-00000004.png").is_file(),
        "a sample grid is written with each checkpoint"
    );
    let grid = dir.join("grid.png");
    ok(&[
        "sample",
        "--checkpoint",
        s(&run),
        "--num",
        "9",
        "--sampler",
        "ddim",
        "--steps",
        "3",
        "--out",
        s(&grid),
    ]);
    let bytes = std::fs::read(&grid).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // 3×3 grid of 8×8 images at 2× with 2-pixel borders: (3·18 + 2)² pixels.
    let dec = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    assert_eq!((dec.info().width, dec.info().height), (56, 56));
    let npy = dir.join("x.npy");
    ok(&[
        "sample",
        "--checkpoint",
        s(&run),
        "--num",
        "2",
        "--sampler",
        "heun",
        "--steps",
        "2",
        "--out",
        s(&npy),
    ]);
    // A trajectory figure: one row per sample, the final samples in the last column.
    let (y, traj) = (dir.join("y.npy"), dir.join("traj.png"));
    let traj_args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "sample",
            "--checkpoint",
            s(&run),
            "--num",
            "3",
            "--sampler",
            "ddim",
            "--steps",
            "12",
            "--seed",
            "7",
            "--out",
            s(&y),
            "--trajectory",
            s(&traj),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        v.extend(extra.iter().map(|a| a.to_string()));
        v
    };
    let said = common::run(
        &traj_args(&["--frames", "5"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&said.stderr);
    assert!(
        said.status.success() && err.contains("3 samples × 5 moments"),
        "{err}"
    );
    // The speed line: "… (12 NFE each) in 0.05 s (720.0 image evaluations/s, …".
    let speed: f64 = err
        .rsplit(" s (")
        .next()
        .and_then(|r| r.split(" image evaluations/s").next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no image evaluations/s in {err}"));
    assert!(speed > 0.0, "{err}");
    // The columns' diffusion times: from near T down to the final samples at 0.
    let times: Vec<f64> = err
        .split("at t = ")
        .nth(1)
        .and_then(|r| r.split(" →").next())
        .map(|r| r.split(", ").map(|t| t.parse().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(times.len(), 5, "{err}");
    assert!(times[0] > 0.75 && times[4] == 0.0, "{times:?}");
    assert!(times.windows(2).all(|w| w[1] < w[0]), "{times:?}");
    let final_images = scoregen::data::read_npy_array(&y).unwrap();
    assert_eq!(final_images.shape, vec![3, 1, 8, 8]);
    let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(&traj).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    // 5 columns × 3 rows of 8×8 images at 2× with 2-pixel borders.
    assert_eq!((w, h), (5 * 18 + 2, 3 * 18 + 2));
    let mut rgb = vec![0u8; reader.output_buffer_size()];
    reader.next_frame(&mut rgb).unwrap();
    // Tile (row i, column j), pixel (py, px) of the 8×8 image: its red byte.
    let byte = |i: usize, j: usize, py: usize, px: usize| {
        let (x, yy) = (2 + j * 18 + 2 * px, 2 + i * 18 + 2 * py);
        rgb[(yy * w + x) * 3] as f32
    };
    let mut last_diff: f32 = 0.0;
    let mut first_vs_last = 0.0;
    for i in 0..3 {
        for py in 0..8 {
            for px in 0..8 {
                // The .npy holds the final samples in [0, 1].
                let want = final_images.data[i * 64 + py * 8 + px] * 255.0;
                last_diff = last_diff.max((byte(i, 4, py, px) - want).abs());
                first_vs_last += (byte(i, 0, py, px) - byte(i, 4, py, px)).abs() / 192.0;
            }
        }
    }
    assert!(last_diff <= 1.0, "last column vs the samples: {last_diff}");
    // The first column is the prior's noise, far from the final images.
    assert!(
        first_vs_last > 30.0,
        "first vs last column: {first_vs_last}"
    );
    for (extra, needle) in [
        (vec!["--frames", "1"], "frames"),
        (vec!["--frames", "101"], "frames"),
    ] {
        let args = traj_args(&extra);
        let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(e.contains(needle), "{extra:?}: {e}");
    }
    let gif = dir.join("traj.gif");
    let mut args = traj_args(&[]);
    let at = args.iter().position(|a| a == s(&traj)).unwrap();
    args[at] = s(&gif).to_string();
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("traj.gif") && e.contains(".png"), "{e}");
    let points = dir.join("p.csv");
    let e = fails(&[
        "sample",
        "--checkpoint",
        s(checkpoint()),
        "--num",
        "3",
        "--out",
        s(&points),
        "--trajectory",
        s(&traj),
    ]);
    assert!(e.contains("image models"), "{e}");
    // The same samples as one PNG per image in a new folder, which png: reads back.
    let folder = dir.join("pngs");
    let mut args = traj_args(&[]);
    let at = args.iter().position(|a| a == s(&y)).unwrap();
    args[at] = s(&folder).to_string();
    args.truncate(args.len() - 2); // no --trajectory
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    let back = scoregen::data::read_png_dir(&folder).unwrap();
    assert!(folder.join("000002.png").is_file() && back.labels.is_none());
    assert_eq!(back.pixels.len(), final_images.data.len());
    for (a, u) in back.pixels.iter().zip(&final_images.data) {
        assert!(
            (a - (2.0 * u - 1.0)).abs() <= 1.0 / 127.5 + 1e-5,
            "{a} vs {u}"
        );
    }
    // A folder is not written into twice.
    let e = fails(&args);
    assert!(e.contains("not empty"), "{e}");
    // Class-conditional training on the labels, then guided sampling of one class.
    let cond = dir.join("cond");
    ok(&[
        "train",
        "--data",
        &data,
        "--out",
        s(&cond),
        "--config",
        s(&cfg),
        "--class-conditional",
    ]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cond.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(meta["config"]["unet"]["num_classes"].as_u64(), Some(4));
    let g2 = dir.join("class2.png");
    // Samples of the conditional model (`--class class`); returns what it printed on stderr.
    let conditional = |num: &str, class: &str, out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "sample",
            "--checkpoint",
            s(&cond),
            "--num",
            num,
            "--sampler",
            "ddim",
            "--steps",
            "3",
            "--class",
            class,
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        let o = common::run(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err
    };
    conditional("4", "2", &g2, &["--guidance", "1.5"]);
    assert!(g2.is_file());
    // Per-class guidance weights: class 2 at w = 1.5 in a list draws what one weight of 1.5 draws
    // (the same seed), and differs from no guidance; a list of the wrong length is refused.
    let read = |p: &std::path::Path| scoregen::data::read_npy_array(p).unwrap().data;
    let [uniform, listed, unguided] =
        ["uniform.npy", "listed.npy", "unguided.npy"].map(|f| dir.join(f));
    conditional("3", "2", &uniform, &["--guidance", "1.5", "--seed", "3"]);
    conditional(
        "3",
        "2",
        &listed,
        &["--guidance", "0,0,1.5,0", "--seed", "3"],
    );
    conditional("3", "2", &unguided, &["--seed", "3"]);
    // Only unguided rows in the batch: the same as no guidance.
    let none = dir.join("none-guided.npy");
    conditional("3", "2", &none, &["--guidance", "1,1,0,1", "--seed", "3"]);
    let (u, l, n) = (read(&uniform), read(&listed), read(&unguided));
    let gap = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(
        gap(&u, &l) < 1e-3,
        "per-class list against one weight: {}",
        gap(&u, &l)
    );
    assert!(
        gap(&u, &n) > 1e-2,
        "guidance must change the samples: {}",
        gap(&u, &n)
    );
    assert_eq!(
        read(&none),
        n,
        "rows of a class with w = 0 follow the unguided path"
    );
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&cond),
        "--num",
        "2",
        "--class",
        "2",
        "--guidance",
        "1,2",
        "--out",
        s(&listed),
    ]);
    assert!(
        err.contains("guidance") && err.contains("4 classes"),
        "{err}"
    );
    // One class sub-folder per class, even without samples, so that png: reads the classes back.
    let by_class = dir.join("by-class");
    conditional("3", "2", &by_class, &[]);
    let back = scoregen::data::read_png_dir(&by_class).unwrap();
    assert_eq!(back.class_names, vec!["0", "1", "2", "3"]);
    assert_eq!(back.labels, Some(vec![2, 2, 2]));
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&cond),
        "--num",
        "4",
        "--class",
        "7",
        "--out",
        s(&g2),
    ]);
    assert!(err.contains("class 7 does not exist"), "{err}");
    // In batches: 7 samples 3 at a time, one progress line per batch, the classes cycled over
    // all 7, and the first batch the same samples as a run of 3 from the same seed.
    let (batched, three) = (dir.join("batched.npy"), dir.join("three.npy"));
    let said = conditional("7", "all", &batched, &["--seed", "5", "--batch", "3"]);
    for line in [
        "batch 1 of 3: 3 of 7",
        "batch 2 of 3: 6 of 7",
        "batch 3 of 3: 7 of 7",
    ] {
        assert!(said.contains(line), "{line}: {said}");
    }
    conditional("3", "all", &three, &["--seed", "5"]);
    let (b, t) = (
        scoregen::data::read_npy_array(&batched).unwrap(),
        scoregen::data::read_npy_array(&three).unwrap(),
    );
    assert_eq!(b.shape, vec![7, 1, 8, 8]);
    assert_eq!(b.data[..3 * 64], t.data[..]);
    assert_ne!(
        b.data[3 * 64..6 * 64],
        t.data[..],
        "later batches draw new noise"
    );
    let labels = scoregen::data::read_npy_array(&dir.join("batched-labels.npy")).unwrap();
    assert_eq!(labels.data, vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0]);
    let e = fails(&[
        "sample",
        "--checkpoint",
        s(&cond),
        "--num",
        "4",
        "--batch",
        "0",
        "--out",
        s(&batched),
    ]);
    assert!(e.contains("--batch"), "{e}");
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&run),
        "--num",
        "4",
        "--class",
        "1",
        "--out",
        s(&g2),
    ]);
    assert!(err.contains("unconditional"), "{err}");
    let unlabelled = format!("idx:{}", s(&dir.join("img.idx")));
    let err = fails(&[
        "train",
        "--data",
        &unlabelled,
        "--out",
        s(&dir.join("c2")),
        "--config",
        s(&cfg),
        "--class-conditional",
    ]);
    assert!(err.contains("labelled"), "{err}");
    // Bits/dim of dequantised 8-bit pixels (Hutchinson trace: 64 > 16 dimensions).
    let out = ok(&[
        "likelihood",
        "--checkpoint",
        s(&run),
        "--data",
        &data,
        "--first",
        "3",
        "--json",
        "--tol",
        "1e-2",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let (nats, bits) = (
        v["nll_nats_per_dim"].as_f64().unwrap(),
        v["bits_per_dim"].as_f64().unwrap(),
    );
    assert_eq!(v["num_points"], 3);
    assert!(
        (bits - (nats / std::f64::consts::LN_2 + 7.0)).abs() < 1e-9,
        "{v}"
    );
    assert!(v["divergence"].to_string().contains("rademacher"), "{v}");
    // Inpainting with the unconditional image model.
    let filled = dir.join("inpaint.png");
    let inpaint = |mask: &str| {
        let args = [
            "inpaint",
            "--checkpoint",
            s(&run),
            "--image",
            &data,
            "--mask",
            mask,
            "--num",
            "2",
            "--steps",
            "4",
            "--out",
            s(&filled),
        ];
        args.map(String::from)
    };
    for mask in ["half", "centre", "random:0.5"] {
        let a = inpaint(mask);
        ok(&a.each_ref().map(String::as_str));
        assert_eq!(&std::fs::read(&filled).unwrap()[1..4], b"PNG");
    }
    for (mask, needle) in [("random:x", "random:x"), ("nope", "named mask")] {
        let a = inpaint(mask);
        let err = fails(&a.each_ref().map(String::as_str));
        assert!(err.contains(mask) && err.contains(needle), "{err}");
    }
    let err = fails(&[
        "inpaint",
        "--checkpoint",
        s(checkpoint()),
        "--image",
        &data,
        "--out",
        s(&filled),
    ]);
    assert!(err.contains("image model"), "{err}");
    // A point model cannot write a PNG grid; a mismatched image size is refused.
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(checkpoint()),
        "--num",
        "2",
        "--out",
        s(&dir.join("p.png")),
    ]);
    assert!(err.contains("image model"), "{err}");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "steps = 2\n[unet]\ngroups = 5\n").unwrap();
    let err = fails(&[
        "train",
        "--data",
        &data,
        "--out",
        s(&dir.join("r2")),
        "--config",
        s(&bad),
    ]);
    assert!(err.contains("groups"), "{err}");
}
