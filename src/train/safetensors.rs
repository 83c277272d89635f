//! The safetensors format (Hugging Face): u64 header length, JSON header of
//! {name: {dtype, shape, data_offsets}} plus `__metadata__`, then raw little-endian data.
//! Reading validates every offset, so truncated or corrupt files are reported, not mis-read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::params::HostTensor;
use crate::error::{Error, Result};

/// Writes `tensors` (f32) and string `metadata` to `path` atomically.
pub fn write(
    path: &Path,
    tensors: &[(String, HostTensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        serde_json::to_value(metadata).unwrap_or_default(),
    );
    let mut offset = 0usize;
    for (name, t) in tensors {
        let len = t.data.len() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut h = serde_json::to_vec(&header).unwrap_or_default();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + offset);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for (_, t) in tensors {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    super::atomic_write(path, &out)
}

/// Tensors and metadata of a safetensors file.
pub type Contents = (HashMap<String, HostTensor>, BTreeMap<String, String>);

/// Reads an f32/f64 safetensors file, validating its structure.
pub fn read(path: &Path) -> Result<Contents> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::checkpoint(path, m);
    if bytes.len() < 8 {
        return Err(bad(format!(
            "file is {} bytes, too short for a safetensors header (truncated?)",
            bytes.len()
        )));
    }
    let hlen = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    if hlen > bytes.len() - 8 {
        return Err(bad(format!(
            "header claims {hlen} bytes but the file has {} (truncated?)",
            bytes.len()
        )));
    }
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + hlen])
            .map_err(|e| bad(format!("corrupt header: {e}")))?;
    let body = &bytes[8 + hlen..];
    let mut tensors = HashMap::new();
    let mut metadata = BTreeMap::new();
    for (name, v) in header {
        if name == "__metadata__" {
            if let Some(m) = v.as_object() {
                for (k, val) in m {
                    metadata.insert(k.clone(), val.as_str().unwrap_or_default().to_string());
                }
            }
            continue;
        }
        let dtype = v.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        let width = match dtype {
            "F16" | "BF16" => 2,
            "F32" | "I32" => 4,
            "F64" | "I64" => 8,
            other => {
                return Err(bad(format!(
                    "tensor `{name}` has dtype `{other}`; F16, BF16, F32, F64, I32 and I64 are supported"
                )))
            }
        };
        let shape: Vec<usize> = v
            .get("shape")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .ok_or_else(|| bad(format!("tensor `{name}` has no valid shape")))?;
        let offs: [usize; 2] = v
            .get("data_offsets")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .ok_or_else(|| bad(format!("tensor `{name}` has no valid data_offsets")))?;
        let need = crate::data::byte_len(&shape, width)
            .ok_or_else(|| bad(format!("tensor `{name}`: shape {shape:?} is too large")))?;
        if offs[1] < offs[0] || offs[1] - offs[0] != need {
            return Err(bad(format!(
                "tensor `{name}`: offsets {offs:?} do not fit shape {shape:?}"
            )));
        }
        let raw = body.get(offs[0]..offs[1]).ok_or_else(|| {
            bad(format!(
                "tensor `{name}` runs past the end of the file (truncated?)"
            ))
        })?;
        let data = decode(dtype, raw);
        tensors.insert(name, HostTensor { shape, data });
    }
    Ok((tensors, metadata))
}

/// Little-endian values of `dtype` (one the header check accepted) as f32.
fn decode(dtype: &str, raw: &[u8]) -> Vec<f32> {
    fn each<const W: usize>(raw: &[u8], f: impl Fn([u8; W]) -> f32) -> Vec<f32> {
        raw.chunks_exact(W)
            .map(|c| f(c.try_into().expect("chunks_exact gives W bytes")))
            .collect()
    }
    match dtype {
        "F16" => each(raw, |b| burn::tensor::f16::from_le_bytes(b).to_f32()),
        "BF16" => each(raw, |b| burn::tensor::bf16::from_le_bytes(b).to_f32()),
        "F32" => each(raw, f32::from_le_bytes),
        "I32" => each(raw, |b| i32::from_le_bytes(b) as f32),
        "I64" => each(raw, |b| i64::from_le_bytes(b) as f32),
        _ => each(raw, |b| f64::from_le_bytes(b) as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption_is_detected() {
        let dir = crate::test_dir::TestDir::new("st");
        let p = dir.join("w.safetensors");
        let t = vec![
            (
                "a.weight".to_string(),
                HostTensor {
                    shape: vec![2, 3],
                    data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                },
            ),
            (
                "b".to_string(),
                HostTensor {
                    shape: vec![1],
                    data: vec![-1.5],
                },
            ),
        ];
        let meta = BTreeMap::from([("step".to_string(), "7".to_string())]);
        write(&p, &t, &meta).unwrap();
        let (back, m) = read(&p).unwrap();
        assert_eq!(back["a.weight"], t[0].1);
        assert_eq!(back["b"], t[1].1);
        assert_eq!(m["step"], "7");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 2]).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("truncated"));
        std::fs::write(&p, &bytes[..5]).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("too short"));
        let mut garbled = bytes.clone();
        garbled[8] = b'#';
        std::fs::write(&p, &garbled).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("corrupt"));
        // A shape whose size overflows is reported, not multiplied out.
        let header =
            br#"{"t":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#;
        let mut huge = (header.len() as u64).to_le_bytes().to_vec();
        huge.extend_from_slice(header);
        huge.extend_from_slice(&[0; 4]);
        std::fs::write(&p, &huge).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("too large") && e.contains("`t`"), "{e}");
    }
}
