//! The merged run's directory while it is written: beside `OUT`, renamed into place whole.

use std::fs;
use std::path::{Path, PathBuf};

use crate::RunDirError;

/// A directory being written beside its final place: it becomes `out` by one rename when
/// complete ([`Staging::commit`]) and is removed if dropped before, so `out` holds a complete
/// run or nothing. Refuses an `out` that exists.
pub struct Staging {
    tmp: PathBuf,
    out: PathBuf,
    committed: bool,
}

impl Staging {
    pub fn create(out: &Path) -> Result<Staging, RunDirError> {
        let exists = || RunDirError::Exists {
            path: out.display().to_string(),
        };
        if out.exists() {
            return Err(exists());
        }
        let name = out.file_name().ok_or_else(|| RunDirError::Invalid {
            path: out.display().to_string(),
            reason: "not a directory name".into(),
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".merging-{}", std::process::id()));
        let tmp = out.with_file_name(tmp_name);
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|source| RunDirError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        fs::create_dir(&tmp).map_err(|source| RunDirError::Io {
            path: tmp.display().to_string(),
            source,
        })?;
        Ok(Staging {
            tmp,
            out: out.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write until [`Staging::commit`].
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Renames the staged directory to `out`. An `out` made meanwhile is not replaced.
    pub fn commit(mut self) -> Result<PathBuf, RunDirError> {
        if self.out.exists() {
            return Err(RunDirError::Exists {
                path: self.out.display().to_string(),
            });
        }
        fs::rename(&self.tmp, &self.out).map_err(|source| RunDirError::Io {
            path: self.out.display().to_string(),
            source,
        })?;
        self.committed = true;
        Ok(self.out.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}
