//! Output files written so that a reader never sees a mix: each file goes to a temporary file
//! created new (`O_EXCL`) in the destination folder, and only when every file is complete are
//! they renamed over their names, in the order staged (a run's marker file, such as
//! `recompute`'s `summary.json`, last). A run killed or failing part-way leaves the previous
//! files as they were, minus the marker, which is removed first; so a folder with a marker
//! holds one run's complete set. A symlink in the folder at an output's name is refused rather
//! than followed or replaced (a planted link must not redirect a write outside the folder).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A folder being written (see the module docs).
pub struct OutputDir {
    dir: PathBuf,
    staged: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl OutputDir {
    /// Creates `dir` if needed and removes its `marker` file (`None`: no marker), so that an
    /// interrupted run does not leave the previous run's marker beside new files.
    ///
    /// Errors: the folder cannot be created, or `marker` is a symlink or cannot be removed.
    pub fn open(dir: &Path, marker: Option<&str>) -> io::Result<OutputDir> {
        std::fs::create_dir_all(dir)?;
        let out = OutputDir {
            dir: dir.to_path_buf(),
            staged: Vec::new(),
        };
        if let Some(m) = marker {
            let path = out.target(m)?;
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(out)
    }

    /// The final path of output `name`.
    ///
    /// Errors: a symlink is at that name.
    fn target(&self, name: &str) -> io::Result<PathBuf> {
        let path = self.dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} is a symbolic link: refusing to write through or over it (remove it, or write to another folder)",
                    path.display()
                ),
            )),
            _ => Ok(path),
        }
    }

    /// Writes output `name` with `write` into a new temporary file beside it (buffered; flushed
    /// and synced here). Nothing is visible under `name` until [`OutputDir::commit`].
    ///
    /// Errors: `name` is a symlink; I/O errors, including `write`'s.
    pub fn stage(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let target = self.target(name)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&self.dir)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        write(&mut w)?;
        w.flush()?;
        drop(w);
        tmp.as_file().sync_data()?;
        self.staged.push((tmp, target));
        Ok(())
    }

    /// Renames every staged file over its name, in the order staged.
    ///
    /// Errors: a rename fails (the files renamed before it stay; the marker, staged last, is
    /// then not written).
    pub fn commit(self) -> io::Result<()> {
        for (tmp, target) in self.staged {
            // Checked again: a link planted while the files were written is not replaced.
            if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is a symbolic link: refusing to replace it",
                        target.display()
                    ),
                ));
            }
            tmp.persist(&target).map_err(|e| e.error)?;
        }
        Ok(())
    }
}

/// Writes one file at `path` as [`OutputDir`] does: a temporary file beside it, renamed over it
/// when complete; a symlink at `path` is refused.
///
/// Errors: as [`OutputDir::stage`] and [`OutputDir::commit`].
pub fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut out = OutputDir::open(dir, None)?;
    out.stage(name, write)?;
    out.commit()
}
