//! NumPy `.npy` files (format versions 1–3): float32/float64 arrays of points or images, and
//! uint8/int32/int64 arrays (8-bit images, labels), all read as f32.

use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Error, Result};

fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// Converts one little-endian element to f32.
type Decode = fn(&[u8]) -> f32;

/// The element types read: NumPy `descr`, bytes per element, and the conversion of one
/// little-endian element to f32 (integers beyond 2²⁴ round to the nearest f32).
const DTYPES: [(&str, usize, Decode); 5] = [
    ("'<f4'", 4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    ("'<f8'", 8, |c| f64::from_le_bytes(le8(c)) as f32),
    ("'|u1'", 1, |c| c[0] as f32),
    ("'<i4'", 4, |c| {
        i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32
    }),
    ("'<i8'", 8, |c| i64::from_le_bytes(le8(c)) as f32),
];

fn le8(c: &[u8]) -> [u8; 8] {
    [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

/// An n-dimensional array read from a `.npy` file, as f32.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
    /// Whether the file stored unsigned bytes (`|u1`), e.g. 8-bit images.
    pub is_u8: bool,
}

/// Reads a C-ordered little-endian float32/float64, uint8, int32 or int64 `.npy` array of any
/// shape.
pub fn read_npy_array(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: &str| Error::data(path, format!("not a valid .npy file: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(hstart..hstart + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated header"))?;
    let descr = header_field(header, "descr").ok_or_else(|| bad("no descr"))?;
    let Some(&(_, width, decode)) = DTYPES.iter().find(|(d, _, _)| descr.starts_with(d)) else {
        return Err(Error::data(
            path,
            format!(
                "dtype {} is not supported (need float32 '<f4', float64 '<f8', uint8 '|u1', \
                 int32 '<i4' or int64 '<i8')",
                descr.split(',').next().unwrap_or(descr)
            ),
        ));
    };
    if header_field(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(Error::data(
            path,
            "Fortran-ordered arrays are not supported; save with order='C'",
        ));
    }
    let shape_txt = header_field(header, "shape").ok_or_else(|| bad("no shape"))?;
    let inner = shape_txt
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("malformed shape"))?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("malformed shape")))
        .collect::<Result<_>>()?;
    let need = super::byte_len(&shape, width)
        .ok_or_else(|| bad(&format!("shape {shape:?} is too large (corrupt header?)")))?;
    let body = &bytes[hstart + hlen..];
    if body.len() != need {
        return Err(Error::data(
            path,
            format!(
                "data is {} bytes, shape {shape:?} needs {need} (truncated file?)",
                body.len(),
            ),
        ));
    }
    Ok(NpyArray {
        shape,
        data: body.chunks_exact(width).map(decode).collect(),
        is_u8: width == 1,
    })
}

/// Reads an (N, d) or (N,) array of points from a `.npy` file.
pub fn read_npy(path: &Path) -> Result<Dataset> {
    let a = read_npy_array(path)?;
    let dim = match a.shape.as_slice() {
        [_] => 1,
        [_, d] => *d,
        other => {
            return Err(Error::data(
                path,
                format!("array of shape {other:?}; expected (N, d) points"),
            ))
        }
    };
    Ok(Dataset::new(a.data, dim))
}

/// Writes an (N, d) float32 `.npy` file (format 1.0).
pub fn write_npy(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    write_npy_shaped(path, data, &[data.len() / dim.max(1), dim])
}

/// Writes row-major float32 `data` of the given shape as a little-endian NPY (version 1.0)
/// file, atomically.
pub fn write_npy_shaped(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so that magic + 4 + header (+ newline) is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    crate::train::atomic_write(path, &out)
}

/// `dir/<stem>-<what>.npy` beside `path`: where scoregen writes the companion arrays of an NPY
/// file (`-labels`: one class per image, the file `--data npy:<images>,<labels>` reads;
/// `-pixels`: pixel labels). A path without a file name gets the stem `data`.
pub fn sibling_npy(path: &Path, what: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    path.with_file_name(format!("{stem}-{what}.npy"))
}

/// Writes the rows `kept` of the row-major `rows` (each of shape `row_shape`), each value mapped
/// by `map`, to `out` as an NPY of shape `(kept.len(), row_shape…)`; when `classes` (one per row
/// of `rows`) is given, also writes the kept rows' classes to [`sibling_npy`]`(out, "labels")`
/// and returns that path. Used by the selection commands, which keep a subset of a sample.
pub fn write_npy_subset(
    out: &Path,
    rows: &[f32],
    row_shape: &[usize],
    kept: &[usize],
    map: impl Fn(f32) -> f32,
    classes: Option<&[f32]>,
) -> Result<Option<PathBuf>> {
    let d: usize = row_shape.iter().product();
    let n = rows.len() / d.max(1);
    if let Some(&i) = kept.iter().find(|&&i| i >= n) {
        return Err(Error::Shape(format!(
            "row {i} to keep for {} is out of range: there are {n} rows",
            out.display()
        )));
    }
    let subset: Vec<f32> = kept
        .iter()
        .flat_map(|&i| rows[i * d..(i + 1) * d].iter().map(|&v| map(v)))
        .collect();
    let mut shape = vec![kept.len()];
    shape.extend_from_slice(row_shape);
    write_npy_shaped(out, &subset, &shape)?;
    let Some(classes) = classes else {
        return Ok(None);
    };
    if classes.len() != n {
        return Err(Error::Shape(format!(
            "{} classes for {n} rows written to {}",
            classes.len(),
            out.display()
        )));
    }
    let path = sibling_npy(out, "labels");
    let kc: Vec<f32> = kept.iter().map(|&i| classes[i]).collect();
    write_npy_shaped(&path, &kc, &[kept.len()])?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_keeps_the_chosen_rows_and_their_classes() {
        let dir = crate::test_dir::TestDir::new("npy-subset");
        let out = dir.join("kept.npy");
        // Three rows of shape 1×2: row i holds (i, 10 i).
        let rows = [0.0, 0.0, 1.0, 10.0, 2.0, 20.0];
        let classes = [5.0, 6.0, 7.0];
        let lp = write_npy_subset(&out, &rows, &[1, 2], &[2, 0], |v| v + 1.0, Some(&classes))
            .unwrap()
            .unwrap();
        assert_eq!(lp, dir.join("kept-labels.npy"));
        let a = read_npy_array(&out).unwrap();
        assert_eq!(a.shape, vec![2, 1, 2]);
        assert_eq!(a.data, vec![3.0, 21.0, 1.0, 1.0]);
        assert_eq!(read_npy_array(&lp).unwrap().data, vec![7.0, 5.0]);
        let err = write_npy_subset(&out, &rows, &[1, 2], &[3], |v| v, None).unwrap_err();
        assert!(err.to_string().contains("row 3"), "{err}");
        let err = write_npy_subset(&out, &rows, &[1, 2], &[0], |v| v, Some(&classes[..2]));
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("2 classes for 3 rows"));
        assert_eq!(
            sibling_npy(Path::new("a/b.c.npy"), "pixels"),
            Path::new("a/b.c-pixels.npy")
        );
    }

    #[test]
    fn roundtrip_and_truncation_is_reported() {
        let dir = crate::test_dir::TestDir::new("npy");
        let p = dir.join("a.npy");
        let v = vec![1.0, -2.0, 3.5, 4.0, 5.0, 6.25];
        write_npy(&p, &v, 2).unwrap();
        let ds = read_npy(&p).unwrap();
        assert_eq!((ds.dim, ds.data), (2, v));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(read_npy(&p).unwrap_err().to_string().contains("truncated"));
        std::fs::write(&p, b"hello world").unwrap();
        assert!(read_npy(&p).unwrap_err().to_string().contains("magic"));
    }

    /// A version-1 NPY file of `descr` and `shape` with raw little-endian `body`.
    fn npy_bytes(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn integer_arrays_are_read_as_their_values() {
        let dir = crate::test_dir::TestDir::new("npy-int");
        let p = dir.join("labels.npy");
        let values: [i64; 4] = [0, 2, -7, 1 << 20];
        let i8s: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&p, npy_bytes("<i8", "(4,)", &i8s)).unwrap();
        let a = read_npy_array(&p).unwrap();
        assert_eq!(a.shape, vec![4]);
        assert_eq!(a.data, vec![0.0, 2.0, -7.0, 1048576.0]);
        // A corrupt shape whose size overflows is an error naming it, not an overflow.
        std::fs::write(
            &p,
            npy_bytes("<f4", "(4294967296, 4294967296, 16)", &[0; 8]),
        )
        .unwrap();
        let e = read_npy_array(&p).unwrap_err().to_string();
        assert!(e.contains("too large") && e.contains("labels.npy"), "{e}");
        assert!(!a.is_u8);
        let i4s: Vec<u8> = values
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect();
        std::fs::write(&p, npy_bytes("<i4", "(2, 2)", &i4s)).unwrap();
        let a = read_npy_array(&p).unwrap();
        assert_eq!(
            (a.shape, a.data),
            (vec![2, 2], vec![0.0, 2.0, -7.0, 1048576.0])
        );
        // Big-endian data are refused, naming the dtype.
        std::fs::write(&p, npy_bytes(">i8", "(4,)", &i8s)).unwrap();
        let err = read_npy_array(&p).unwrap_err().to_string();
        assert!(err.contains("'>i8'") && err.contains("int64"), "{err}");
    }
}
