//! Per-event SSNet observables as a CSV table: one row per event with its track pixels, shower
//! pixels, zero-suppressed charge and (when known) event class, and a first comment line naming
//! the SSNet that labelled the events and how (symmetrised, on zero-suppressed images).
//! `physics ssnet apply --observables` writes it, so that a reference set is labelled once;
//! `physics select --real-observables` reads it back, and it is the per-event input of a user's
//! own histograms.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::metrics::Observables;
use super::params::EVENT_CLASSES;
use crate::error::{Error, Result};

/// The column header of the table.
pub const HEADER: &str = "event,track_pixels,shower_pixels,total_charge,class";

/// How a table's events were labelled: two tables compare only when these agree.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    /// The SSNet directory, as an absolute path where it could be resolved.
    pub ssnet: PathBuf,
    /// Whether SSNet's logits were averaged over the eight symmetries of the square.
    pub symmetric: bool,
    /// Whether the pixels below SSNet's threshold were zeroed before labelling
    /// (`metrics::zero_suppress`); tables written before this was recorded read as `false`.
    pub zero_suppressed: bool,
}

impl Provenance {
    /// The provenance of labelling with the SSNet in `ssnet` (resolved to an absolute path when
    /// it exists, so that the same directory named two ways compares equal).
    pub fn new(ssnet: &Path, symmetric: bool, zero_suppressed: bool) -> Self {
        Self {
            ssnet: ssnet.canonicalize().unwrap_or_else(|_| ssnet.to_path_buf()),
            symmetric,
            zero_suppressed,
        }
    }

    /// `SSNet <dir> (symmetric = …, zero_suppressed = …)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "SSNet {} (symmetric = {}, zero_suppressed = {})",
            self.ssnet.display(),
            self.symmetric,
            self.zero_suppressed
        )
    }

    fn comment(&self) -> String {
        format!(
            "# scoregen physics observables; ssnet = {}; symmetric = {}; zero_suppressed = {}",
            self.ssnet.display(),
            self.symmetric,
            self.zero_suppressed
        )
    }

    fn parse(path: &Path, line: &str) -> Result<Self> {
        let bad = || {
            Error::data(
                path,
                format!(
                    "line 1: expected `# scoregen physics observables; ssnet = <dir>; symmetric = <true|false>; zero_suppressed = <true|false>`, found `{line}` (write the table with `physics ssnet apply --observables`)"
                ),
            )
        };
        let flag = |v: &str| match v.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad()),
        };
        let rest = line
            .strip_prefix("# scoregen physics observables; ssnet = ")
            .ok_or_else(bad)?;
        let (rest, zero_suppressed) = match rest.rsplit_once("; zero_suppressed = ") {
            Some((rest, z)) => (rest, flag(z)?),
            None => (rest, false),
        };
        let (ssnet, symmetric) = rest.rsplit_once("; symmetric = ").ok_or_else(bad)?;
        Ok(Self {
            ssnet: PathBuf::from(ssnet),
            symmetric: flag(symmetric)?,
            zero_suppressed,
        })
    }
}

/// A table read back: the observables of every event, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservableTable {
    /// Track pixels per event.
    pub track_pixels: Vec<f64>,
    /// Shower pixels per event.
    pub shower_pixels: Vec<f64>,
    /// Zero-suppressed charge per event.
    pub total_charge: Vec<f64>,
    /// Event class per event, when the table has them (all rows or none).
    pub classes: Option<Vec<u8>>,
    /// How the events were labelled.
    pub provenance: Provenance,
}

impl ObservableTable {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.track_pixels.len()
    }

    /// Whether the table has no events.
    pub fn is_empty(&self) -> bool {
        self.track_pixels.is_empty()
    }

    /// The first `n` events (all of them when there are fewer).
    pub fn truncate(&mut self, n: usize) {
        self.track_pixels.truncate(n);
        self.shower_pixels.truncate(n);
        self.total_charge.truncate(n);
        if let Some(c) = self.classes.as_mut() {
            c.truncate(n);
        }
    }
}

/// Writes the per-event observables of `o` (and `classes`, one per event, when known) to the CSV
/// file `path`, atomically.
pub fn write_observable_table(
    path: &Path,
    o: &Observables,
    classes: Option<&[u8]>,
    provenance: &Provenance,
) -> Result<()> {
    let n = o.track_pixels.len();
    if let Some(c) = classes.filter(|c| c.len() != n) {
        return Err(Error::Shape(format!(
            "{} event classes for {n} events written to {}",
            c.len(),
            path.display()
        )));
    }
    let mut text = format!("{}\n{HEADER}\n", provenance.comment());
    for i in 0..n {
        let class = classes.map(|c| c[i].to_string()).unwrap_or_default();
        // `+ 0.0` writes an empty event's charge, the sum −0.0 of nothing, as 0.
        let [t, s, q] = [&o.track_pixels, &o.shower_pixels, &o.total_charge].map(|c| c[i] + 0.0);
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{i},{t},{s},{q},{class}");
    }
    crate::train::atomic_write(path, text.as_bytes())
}

/// Reads a table written by [`write_observable_table`]; errors name the file, line and column.
pub fn read_observable_table(path: &Path) -> Result<ObservableTable> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    let provenance = Provenance::parse(path, lines.next().unwrap_or_default())?;
    let header = lines.next().unwrap_or_default();
    if header.trim() != HEADER {
        return Err(Error::data(
            path,
            format!("line 2: expected the header `{HEADER}`, found `{header}`"),
        ));
    }
    let mut t = ObservableTable {
        track_pixels: vec![],
        shower_pixels: vec![],
        total_charge: vec![],
        classes: None,
        provenance,
    };
    let mut classes = vec![];
    let mut with_class = None;
    for (k, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = k + 3;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 5 {
            return Err(Error::data(
                path,
                format!("line {at}: {} fields; expected 5 ({HEADER})", fields.len()),
            ));
        }
        let columns = [
            &mut t.track_pixels,
            &mut t.shower_pixels,
            &mut t.total_charge,
        ];
        for (j, column) in columns.into_iter().enumerate() {
            let name = HEADER.split(',').nth(j + 1).unwrap_or_default();
            let v: f64 = fields[j + 1]
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    Error::data(
                        path,
                        format!(
                            "line {at}, {name}: `{}` is not a non-negative number",
                            fields[j + 1]
                        ),
                    )
                })?;
            column.push(v);
        }
        let has = !fields[4].is_empty();
        if *with_class.get_or_insert(has) != has {
            return Err(Error::data(
                path,
                format!("line {at}: a class is given for some events and not others"),
            ));
        }
        if has {
            let c = fields[4]
                .parse::<u8>()
                .ok()
                .filter(|&c| (c as usize) < EVENT_CLASSES.len())
                .ok_or_else(|| {
                    Error::data(
                        path,
                        format!(
                            "line {at}, class: `{}` is not an event class 0..{}",
                            fields[4],
                            EVENT_CLASSES.len() - 1
                        ),
                    )
                })?;
            classes.push(c);
        }
    }
    if with_class == Some(true) {
        t.classes = Some(classes);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observables() -> Observables {
        Observables {
            track_pixels: vec![150.0, 0.0, 42.0],
            shower_pixels: vec![10.0, 81.0, 0.0],
            total_charge: vec![20.25, 12.5, -0.0],
            ..Default::default()
        }
    }

    #[test]
    fn a_table_reads_back_what_was_written() {
        let dir = crate::test_dir::TestDir::new("observable-table");
        let p = dir.join("obs.csv");
        let prov = Provenance::new(&dir.join("ssnet; odd name"), true, true);
        write_observable_table(&p, &observables(), Some(&[0, 1, 2]), &prov).unwrap();
        let t = read_observable_table(&p).unwrap();
        assert_eq!(t.track_pixels, vec![150.0, 0.0, 42.0]);
        assert_eq!(t.shower_pixels, vec![10.0, 81.0, 0.0]);
        assert_eq!(t.total_charge, vec![20.25, 12.5, 0.0]);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.ends_with("\n2,42,0,0,2\n"), "{text}");
        assert_eq!(t.classes, Some(vec![0, 1, 2]));
        assert_eq!(t.provenance, prov);
        // A table written before zero suppression was recorded: labelled without it.
        let old = text.replacen("; zero_suppressed = true", "", 1);
        std::fs::write(&p, &old).unwrap();
        let before = read_observable_table(&p).unwrap().provenance;
        assert_eq!(
            before,
            Provenance::new(&dir.join("ssnet; odd name"), true, false)
        );
        assert!(before.describe().contains("zero_suppressed = false"));
        write_observable_table(&p, &observables(), None, &prov).unwrap();
        let mut t = read_observable_table(&p).unwrap();
        assert_eq!((t.classes.clone(), t.len()), (None, 3));
        t.truncate(2);
        assert_eq!(t.total_charge, vec![20.25, 12.5]);
        let err = write_observable_table(&p, &observables(), Some(&[0]), &prov).unwrap_err();
        assert!(
            err.to_string().contains("1 event classes for 3 events"),
            "{err}"
        );
    }

    #[test]
    fn malformed_tables_are_refused_naming_the_line() {
        let dir = crate::test_dir::TestDir::new("observable-table-bad");
        let p = dir.join("obs.csv");
        let prov = Provenance::new(Path::new("ssnet"), false, false);
        write_observable_table(&p, &observables(), Some(&[0, 1, 2]), &prov).unwrap();
        let good = std::fs::read_to_string(&p).unwrap();
        for (from, to, needle) in [
            ("150,10", "150,-10", "line 3, shower_pixels"),
            ("12.5,1", "12.5,7", "line 4, class"),
            ("42,0,0,2", "42,0,0,", "some events and not others"),
            ("0,150,10", "0,150", "line 3: 4 fields"),
            ("event,", "id,", "line 2"),
            ("# scoregen", "# other", "line 1"),
            ("symmetric = false", "symmetric = maybe", "line 1"),
            ("zero_suppressed = false", "zero_suppressed = 1", "line 1"),
        ] {
            assert_eq!(good.matches(from).count(), 1, "{from}");
            std::fs::write(&p, good.replacen(from, to, 1)).unwrap();
            let err = read_observable_table(&p).unwrap_err().to_string();
            assert!(
                err.contains(needle) && err.contains("obs.csv"),
                "{needle}: {err}"
            );
        }
    }
}
