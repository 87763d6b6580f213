//! Writing files so that no reader and no crash ever sees half of one: a temporary file
//! beside the target, synced, then renamed into place.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it into place:
/// a reader (or a crash) never sees a half-written file. A symbolic link is written through
/// (its target is replaced, the link kept); anything else that is not a regular file (a
/// folder, a FIFO, a device) is refused, never replaced. Temporary files that killed runs
/// left beside `path` are removed. In a data-parallel job only rank 0 writes: elsewhere this
/// does nothing (every rank holds the same model, history and report).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if !crate::distributed::is_root() {
        return Ok(());
    }
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

/// Checks, before any long work starts, that a run may later write `path`: it is a regular
/// file or absent (see [`writable_target`]), its folder exists and can be written, and it is
/// none of `inputs` — neither one of the input files nor a file inside an input folder —
/// so that no run destroys what it reads. Nothing is left behind.
pub fn check_output(path: &Path, inputs: &[&Path]) -> Result<()> {
    let target = writable_target(path)?;
    if target.file_name().is_none() {
        return Err(Error::data(path, "is not a file name"));
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::data(
                path,
                format!("{} is not a folder", dir.display()),
            ))
        }
        Err(_) => {
            return Err(Error::data(
                path,
                format!("the folder {} does not exist", dir.display()),
            ))
        }
    }
    if target.exists() {
        let resolved = std::fs::canonicalize(&target).map_err(|e| Error::io(path, e))?;
        for input in inputs {
            let Ok(input_resolved) = std::fs::canonicalize(input) else {
                continue;
            };
            if input_resolved == resolved {
                return Err(Error::data(
                    path,
                    format!(
                        "is also an input ({}); refusing to overwrite it",
                        input.display()
                    ),
                ));
            }
            if input_resolved.is_dir() && resolved.starts_with(&input_resolved) {
                return Err(Error::data(
                    path,
                    format!(
                        "is a file of the input folder {}; refusing to overwrite it",
                        input.display()
                    ),
                ));
            }
        }
    }
    // Can the folder be written? Create and remove a probe beside the target.
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let probe = dir.join(format!(".{name}.probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Error::data(
            path,
            format!("cannot write in {}: {e}", dir.display()),
        )),
    }
}

/// Checks, before any long work starts, that files can later be written into the folder
/// `dir` (created then if absent): it is a folder, or absent with a parent folder that
/// exists, and it can be written.
pub fn check_output_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(Error::data(dir, "is not a folder")),
        Ok(_) => check_output(&dir.join(".ember-write-check"), &[]),
        Err(_) => {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                return Err(Error::data(
                    dir,
                    format!("the folder {} does not exist", parent.display()),
                ));
            }
            check_output(&parent.join(".ember-write-check"), &[])
        }
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

    #[test]
    fn an_output_is_checked_before_the_work_starts() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let idx = data.join("train-images.idx");
        std::fs::write(&idx, b"pixels").unwrap();
        let model_file = dir.path().join("m.toml");
        std::fs::write(&model_file, b"[model]").unwrap();
        let inputs = [model_file.as_path(), data.as_path()];
        // A new file beside the inputs, or an old output, is fine; nothing is left behind.
        check_output(&dir.path().join("out.safetensors"), &inputs).unwrap();
        std::fs::write(dir.path().join("old.safetensors"), b"old").unwrap();
        check_output(&dir.path().join("old.safetensors"), &inputs).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 3, "data, m.toml, old.safetensors");
        // An input, the same input through another path or a link, a file of an input
        // folder: refused, and untouched.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&model_file, &link).unwrap();
        let roundabout = data.join("..").join("m.toml");
        for (output, says) in [
            (&model_file, "is also an input"),
            (&roundabout, "is also an input"),
            (&link, "is also an input"),
            (&idx, "is a file of the input folder"),
        ] {
            let err = check_output(output, &inputs).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            assert!(err.contains(&output.display().to_string()), "{err}");
        }
        assert_eq!(std::fs::read(&model_file).unwrap(), b"[model]");
        // A new file in an input folder adds to it, destroying nothing.
        check_output(&data.join("model.safetensors"), &inputs).unwrap();
        // Missing folders, folders and non-files.
        let err = check_output(&dir.path().join("nowhere/m.safetensors"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = check_output(&data, &[]).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = check_output(&idx.join("m.safetensors"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a folder"), "{err}");
        // A folder for a report: absent under an existing one, or a folder; not a file.
        check_output_dir(&dir.path().join("report")).unwrap();
        check_output_dir(&data).unwrap();
        assert!(check_output_dir(&idx).is_err());
        assert!(check_output_dir(&dir.path().join("a/b")).is_err());
        assert!(!dir.path().join("report").exists());
    }

    #[test]
    fn a_read_only_folder_is_refused_before_the_work() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root writes anywhere: the check is then right to pass.
        let root_writes = std::fs::write(locked.join("x"), b"").is_ok();
        let result = check_output(&locked.join("m.safetensors"), &[]);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        if root_writes {
            assert!(result.is_ok());
        } else {
            let err = result.unwrap_err().to_string();
            assert!(err.contains("cannot write in"), "{err}");
        }
    }
}
