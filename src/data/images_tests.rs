use std::io::Write;

use super::*;

fn tmp(name: &str) -> crate::test_dir::TestDir {
    crate::test_dir::TestDir::new(&format!("img-{name}"))
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_reads_gzip_and_raw_and_reports_bad_files() {
    let d = tmp("idx");
    let px: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 10) as u8).collect();
    std::fs::write(d.join("img.gz"), gzip(&idx_bytes(&[2, 3, 4], &px))).unwrap();
    std::fs::write(d.join("lab"), idx_bytes(&[2], &[7, 3])).unwrap();
    let s = read_idx(&d.join("img.gz"), Some(&d.join("lab"))).unwrap();
    assert_eq!((s.len(), s.channels, s.height, s.width), (2, 1, 3, 4));
    assert_eq!(s.labels, Some(vec![7, 3]));
    assert_eq!(s.pixels[0], -1.0);
    assert!((s.pixels[1] - (10.0 / 127.5 - 1.0)).abs() < 1e-6);
    std::fs::write(d.join("short"), &idx_bytes(&[2, 3, 4], &px)[..20]).unwrap();
    assert!(read_idx(&d.join("short"), None)
        .unwrap_err()
        .to_string()
        .contains("truncated"));
    std::fs::write(
        d.join("huge"),
        idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &px),
    )
    .unwrap();
    let e = read_idx(&d.join("huge"), None).unwrap_err().to_string();
    assert!(e.contains("too large") && e.contains("huge"), "{e}");
    std::fs::write(d.join("lab3"), idx_bytes(&[3], &[1, 2, 3])).unwrap();
    assert!(read_idx(&d.join("img.gz"), Some(&d.join("lab3")))
        .unwrap_err()
        .to_string()
        .contains("3 labels for 2 images"));
    std::fs::write(d.join("bad.gz"), [0x1f, 0x8b, 1, 2, 3]).unwrap();
    assert!(read_idx(&d.join("bad.gz"), None)
        .unwrap_err()
        .to_string()
        .contains("gzip"));
}

#[test]
fn the_shared_mnist_test_split_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    if !dir.is_dir() {
        eprintln!("skipped: ../shared/data/mnist is not present");
        return;
    }
    let s = load_images(&format!(
        "idx:{},{}",
        dir.join("t10k-images-idx3-ubyte.gz").display(),
        dir.join("t10k-labels-idx1-ubyte.gz").display()
    ))
    .unwrap();
    assert_eq!(
        (s.len(), s.height, s.width, s.class_names.len()),
        (10_000, 28, 28, 10)
    );
    let labels = s.labels.as_ref().unwrap();
    // The first test digit is a 7 (the published split); every class is present.
    assert_eq!(labels[0], 7);
    for c in 0..10 {
        assert!(labels.iter().filter(|&&l| l == c).count() > 800);
    }
    let mean = s.pixels.iter().map(|&v| v as f64).sum::<f64>() / s.pixels.len() as f64;
    // MNIST's mean intensity is ≈ 0.13 of full scale: (0.13·255)/127.5 − 1 ≈ −0.74.
    assert!((mean + 0.74).abs() < 0.03, "{mean}");
    assert_eq!(s.slice(8000..10_000).len(), 2000);
}

#[test]
fn cifar_png_and_npy_sources() {
    let d = tmp("other");
    let mut rec = vec![3u8];
    rec.extend((0..3072).map(|i| (i % 256) as u8));
    let two = [rec.clone(), rec].concat();
    std::fs::write(d.join("data_batch_1.bin"), &two).unwrap();
    let c = read_cifar(&d).unwrap();
    assert_eq!(
        (c.len(), c.channels, c.labels.clone().unwrap()),
        (2, 3, vec![3, 3])
    );
    std::fs::write(d.join("data_batch_1.bin"), &two[..100]).unwrap();
    assert!(read_cifar(&d)
        .unwrap_err()
        .to_string()
        .contains("truncated"));

    let pd = d.join("pngs");
    for (class, w) in [("a", 4u32), ("b", 4)] {
        std::fs::create_dir_all(pd.join(class)).unwrap();
        let f = std::fs::File::create(pd.join(class).join("x.png")).unwrap();
        let mut e = png::Encoder::new(f, w, 3);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Eight);
        e.write_header()
            .unwrap()
            .write_image_data(&[255u8; 12])
            .unwrap();
    }
    let p = read_png_dir(&pd).unwrap();
    assert_eq!((p.len(), p.channels, p.height, p.width), (2, 1, 3, 4));
    assert_eq!(
        (p.labels.clone().unwrap(), p.class_names.clone()),
        (vec![0, 1], vec!["a".to_string(), "b".to_string()])
    );
    assert!(p.pixels.iter().all(|&v| v == 1.0));
    let f = std::fs::File::create(pd.join("b").join("y.png")).unwrap();
    let mut e = png::Encoder::new(f, 5, 3);
    e.set_color(png::ColorType::Rgb);
    e.set_depth(png::BitDepth::Eight);
    e.write_header()
        .unwrap()
        .write_image_data(&[0u8; 45])
        .unwrap();
    let err = read_png_dir(&pd).unwrap_err().to_string();
    assert!(err.contains("y.png") && err.contains("3×3×5"), "{err}");

    // NPY: uint8 N×C×H×W.
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    let mut h = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 2, 2), }".to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&[0, 255, 0, 255, 255, 255, 0, 0]);
    std::fs::write(d.join("im.npy"), &b).unwrap();
    let n = load_images(&format!("npy:{}", d.join("im.npy").display())).unwrap();
    assert_eq!((n.len(), n.channels, n.height), (2, 1, 2));
    assert_eq!(n.pixels[..4], [-1.0, 1.0, -1.0, 1.0]);
    assert!(load_images("tiff:x").is_err());
}
