//! Writing files so that no reader and no crash ever sees half of one: a temporary file
//! beside the target, synced, then renamed into place.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it into place:
/// a reader (or a crash) never sees a half-written file. A symbolic link is written through
/// (its target is replaced, the link kept); anything else that is not a regular file (a
/// folder, a FIFO, a device) is refused, never replaced. Temporary files that killed runs
/// left beside `path` are removed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let path = &writable_target(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::data(path, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    remove_stale_temporaries(&dir, &name);
    let temporary = dir.join(temporary_name(&name, std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // Make the rename itself durable (best effort: not every platform can open a folder).
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&temporary);
        Error::io(path, e)
    })
}

/// The file a write to `path` replaces: `path` itself, or a symbolic link's final target;
/// an error when that is anything but a regular file or absent.
pub fn writable_target(path: &Path) -> Result<PathBuf> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(resolved) => resolved,
            // A dangling link: write the file it names.
            Err(_) => {
                let link = std::fs::read_link(path).map_err(|e| Error::io(path, e))?;
                path.parent().unwrap_or(Path::new(".")).join(link)
            }
        },
        _ => path.to_path_buf(),
    };
    match std::fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => Err(Error::data(
            path,
            "is not a regular file; refusing to replace it",
        )),
        _ => Ok(target),
    }
}

/// `.NAME.tmp-PID`: where process PID writes NAME before renaming it.
fn temporary_name(name: &str, pid: u32) -> String {
    format!(".{name}.tmp-{pid}")
}

/// Removes `.NAME.tmp-PID` files in `dir` whose process no longer runs (a run killed mid-write).
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_runs(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id runs (Linux's /proc; elsewhere assumed to, so nothing is
/// removed that might still be written).
fn process_runs(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_files_writes_through_links_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.bin");
        write_atomically(&file, b"one").unwrap();
        write_atomically(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        // A link stays a link; its target gets the bytes.
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        write_atomically(&link, b"three").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&file).unwrap(), b"three");
        // A folder is not replaced.
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        let err = write_atomically(&folder, b"x").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(folder.is_dir());
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(
            entries, 3,
            "model.bin, link.bin and folder: no temporary left"
        );
    }

    #[test]
    fn a_killed_run_s_temporary_is_removed_and_a_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Process ids above the kernel's maximum (4194304) never run.
        let dead = dir.path().join(temporary_name("m.bin", 999_999_999));
        let alive = dir.path().join(temporary_name("m.bin", 1));
        std::fs::write(&dead, b"half").unwrap();
        std::fs::write(&alive, b"busy").unwrap();
        write_atomically(&dir.path().join("m.bin"), b"whole").unwrap();
        assert!(!dead.exists(), "stale temporary removed");
        assert!(alive.exists(), "pid 1 runs: its file is left alone");
    }
}
