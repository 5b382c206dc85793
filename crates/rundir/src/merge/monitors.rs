//! Every share's monitor records in the merged run, each named after its generator.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use super::{io, Share};
use crate::meta::Generator;
use crate::monitor::MonitorRecord;
use crate::RunDirError;

/// The name a generator's monitors go by in the merged run: `MONITOR@HOST`, with `#I` (its
/// segment) when one host ran several shares.
fn monitor_label(generators: &[Generator], i: usize) -> String {
    let g = &generators[i];
    if generators.iter().filter(|x| x.host == g.host).count() > 1 {
        format!("{}#{}", g.host, g.segment.index)
    } else {
        g.host.clone()
    }
}

/// Every share's `monitors.jsonl` and `generator.jsonl` records (the system's monitors, and
/// each generator's own health), one after another, each monitor renamed after its generator
/// (analysis puts records in time order itself). Unreadable lines are left out.
pub(super) fn merge_monitors(shares: &[Share], generators: &[Generator], dir: &Path) -> Result<(), RunDirError> {
    for file in ["monitors.jsonl", "generator.jsonl"] {
        merge_records(shares, generators, dir, file)?;
    }
    Ok(())
}

fn merge_records(shares: &[Share], generators: &[Generator], dir: &Path, file: &str) -> Result<(), RunDirError> {
    let mut out: Option<BufWriter<File>> = None;
    let path = dir.join(file);
    for (i, s) in shares.iter().enumerate() {
        let src = s.dir.join(file);
        let file = match File::open(&src) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&src)(e)),
        };
        let w = match &mut out {
            Some(w) => w,
            None => out.insert(BufWriter::new(File::create_new(&path).map_err(io(&path))?)),
        };
        let label = monitor_label(generators, i);
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io(&src))?;
            let Ok(mut rec) = serde_json::from_str::<MonitorRecord>(&line) else {
                continue;
            };
            rec.monitor = format!("{}@{label}", rec.monitor);
            let text = serde_json::to_string(&rec).map_err(|source| RunDirError::Serialize {
                path: path.display().to_string(),
                source,
            })?;
            writeln!(w, "{text}").map_err(io(&path))?;
        }
    }
    if let Some(mut w) = out {
        w.flush().map_err(io(&path))?;
    }
    Ok(())
}
