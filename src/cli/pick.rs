//! Picking runs for `compare` and `report --update`: a run is named by its directory, or by its
//! id (directory name or a unique prefix) in a runs directory's history. Only finished runs are
//! compared, and never a run with itself: each refusal is one clear message (exit 2), given
//! before anything is written.

use std::path::{Path, PathBuf};

use crate::analysis::{analyze_dir_with_seconds, Analysis};
use crate::history::Index;
use crate::rundir::RunStatus;

/// The directory a run argument names: a directory as given, else an id in `runs_dir`'s history.
pub fn locate(arg: &str, runs_dir: &Path) -> Result<PathBuf, String> {
    let p = Path::new(arg);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    if p.exists() {
        return Err(format!("{arg}: not a directory, so not a run directory"));
    }
    if runs_dir.join(crate::history::INDEX_FILE).is_file() || runs_dir.is_dir() {
        let index = Index::open(runs_dir).map_err(|e| e.to_string())?;
        index.refresh().map_err(|e| e.to_string())?;
        if let Ok(id) = index.resolve(arg) {
            return Ok(index.dir_of(&id));
        }
    }
    Err(format!(
        "{arg}: no such run directory, nor a run id in {} (see `stampede runs`)",
        runs_dir.display()
    ))
}

/// Reads a finished run through the one pass.
pub fn load_finished(dir: &Path) -> Result<Analysis, String> {
    let a = analyze_dir_with_seconds(dir).map_err(|e| e.to_string())?;
    if a.meta.status == RunStatus::Running {
        return Err(format!(
            "{}: the run has not finished (meta.json says `running`: it is still going, or its process was killed before it ended); only finished runs are compared",
            dir.display()
        ));
    }
    Ok(a)
}

/// Refuses any run given twice: the same directory, or a copy of one (same plan, start, host,
/// segment, end and requests).
pub fn distinct(runs: &[(&Path, &Analysis)]) -> Result<(), String> {
    for (i, (pa, a)) in runs.iter().enumerate() {
        for (pb, b) in &runs[i + 1..] {
            let same_dir = match (pa.canonicalize(), pb.canonicalize()) {
                (Ok(x), Ok(y)) => x == y,
                _ => false,
            };
            // Two runs of one plan can start in the same millisecond on one host (side by side,
            // or segments with a common start): a copy is the same in what it measured too.
            let requests = |x: &Analysis| x.summary.phases.iter().map(|p| p.requests).collect::<Vec<_>>();
            let copy = a.meta.name == b.meta.name
                && a.meta.started_at == b.meta.started_at
                && a.meta.host == b.meta.host
                && a.meta.segment == b.meta.segment
                && a.meta.ended_at == b.meta.ended_at
                && requests(a) == requests(b);
            if same_dir || copy {
                return Err(format!(
                    "{} and {} are the same run{}: compare a run with another run (e.g. `stampede compare --previous {}`)",
                    pa.display(),
                    pb.display(),
                    if same_dir { "" } else { " (a copy: same plan, start, end, host and requests)" },
                    pb.display()
                ));
            }
        }
    }
    Ok(())
}

/// `--tolerance 5%` (or `5`): a percentage from 0 to 1000.
pub fn parse_tolerance(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let n = t.strip_suffix('%').unwrap_or(t).trim();
    match n.parse::<f64>() {
        Ok(v) if (0.0..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a percentage between 0% and 1000% (e.g. 5%)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_are_percentages() {
        assert_eq!(parse_tolerance("5%"), Ok(5.0));
        assert_eq!(parse_tolerance(" 2.5 "), Ok(2.5));
        assert!(parse_tolerance("-1%").is_err());
        assert!(parse_tolerance("five").is_err());
        assert!(parse_tolerance("NaN").is_err());
    }
}
