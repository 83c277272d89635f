//! CSV of N×d numbers: one point per line, comma/semicolon/whitespace separated, optional header.

use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};

/// Reads an N×d CSV file. A first line that does not parse as numbers is taken as a header.
/// Errors name the line and column of a non-numeric or ragged row.
pub fn read_csv(path: &Path) -> Result<Dataset> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut data = Vec::new();
    let mut dim = 0usize;
    let mut seen_rows = 0usize;
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let parsed: std::result::Result<Vec<f32>, usize> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| f.trim_matches('"').parse::<f32>().map_err(|_| i))
            .collect();
        match parsed {
            Err(col)
                if seen_rows == 0
                    && data.is_empty()
                    && fields.iter().all(|f| f.parse::<f64>().is_err()) =>
            {
                let _ = col; // a header line
                dim = fields.len();
            }
            Err(col) => {
                return Err(Error::data(
                    path,
                    format!(
                        "line {}, column {}: `{}` is not a number",
                        lineno + 1,
                        col + 1,
                        fields[col]
                    ),
                ))
            }
            Ok(row) => {
                if seen_rows == 0 && dim == 0 {
                    dim = row.len();
                }
                if row.len() != dim {
                    return Err(Error::data(
                        path,
                        format!(
                            "line {}: {} values, expected {dim} (ragged rows)",
                            lineno + 1,
                            row.len()
                        ),
                    ));
                }
                data.extend(row);
                seen_rows += 1;
            }
        }
    }
    if seen_rows == 0 {
        return Err(Error::data(path, "no numeric rows"));
    }
    Ok(Dataset::new(data, dim))
}

/// Writes rows as CSV (no header), one point per line.
pub fn write_csv(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    let mut out = String::with_capacity(data.len() * 12);
    for row in data.chunks(dim) {
        let line: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    crate::train::atomic_write(path, out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The folder (removed when dropped) and the CSV file written in it.
    fn tmp(name: &str, content: &str) -> (crate::test_dir::TestDir, std::path::PathBuf) {
        let dir = crate::test_dir::TestDir::new(&format!("csv-{name}"));
        let p = dir.join("d.csv");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        (dir, p)
    }

    #[test]
    fn reads_headers_and_rejects_bad_rows_with_line_numbers() {
        let ds = read_csv(&tmp("ok", "x,y\n1,2\n3.5, -4\n").1).unwrap();
        assert_eq!((ds.dim, ds.data.clone()), (2, vec![1.0, 2.0, 3.5, -4.0]));
        let ds = read_csv(&tmp("nohdr", "1 2 3\n4 5 6\n").1).unwrap();
        assert_eq!((ds.dim, ds.len()), (3, 2));
        let e = read_csv(&tmp("bad", "1,2\n3,abc\n").1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("abc"), "{e}");
        let e = read_csv(&tmp("ragged", "1,2\n3\n").1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ragged") && e.contains("line 2"), "{e}");
        let e = read_csv(&tmp("missing", "").1).unwrap_err().to_string();
        assert!(e.contains("no numeric rows"));
    }
}
