//! Writing a file the user named (`--report FILE`, the installed hook) without being turned
//! against them: a temporary file with a random name, created exclusively and never through a
//! symbolic link (`O_CREAT | O_EXCL | O_NOFOLLOW`), then renamed over the target, so a reader
//! never sees half a file, a killed run leaves the old one intact, and nobody who can write
//! in the directory can make the tool write somewhere else.
//!
//! `--report` is checked before the run starts ([`check_report_target`]): a device (as root,
//! `/dev/null` would be replaced by a regular file), a FIFO, a socket, a directory or a
//! symbolic link is refused, and so is a directory that is missing or not writable, so a bad
//! path costs nothing and never loses the verdict of a long run.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Why `path` cannot be the report: it exists and is not a regular file, or its directory is
/// missing or not writable. `Ok` for a regular file (replaced) or a new name.
pub fn check_report_target(path: &Path) -> Result<(), String> {
    if path.file_name().is_none() {
        return Err("it names no file".into());
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let t = meta.file_type();
            let what = if t.is_symlink() {
                "a symbolic link (it would be replaced, or followed to a file you did not name): give the path of a regular file"
            } else if t.is_dir() {
                "a directory"
            } else if t.is_fifo() {
                "a FIFO (named pipe)"
            } else if t.is_socket() {
                "a socket"
            } else if t.is_char_device() {
                "a character device"
            } else if t.is_block_device() {
                "a block device"
            } else {
                ""
            };
            if !what.is_empty() {
                return Err(format!(
                    "it is {what}; the report replaces a regular file or creates a new one"
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot look at it: {e}")),
    }
    let dir = dir_of(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(e) => {
            return Err(format!(
                "its directory {} cannot be used: {e}",
                dir.display()
            ))
        }
    }
    // Writable: the only sure test is to create a file there (read-only mounts, ACLs).
    let (probe, _) =
        create_temp(path).map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Write `path` atomically through a temporary file beside it, then a rename. The rename
/// replaces the directory entry itself: an existing symbolic link is replaced, never
/// followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (tmp, mut file) = create_temp(path)?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.<name>.<random>.tmp` beside `path`, created new (never an existing file, never through
/// a link), readable as a file made by `File::create` would be.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the path has no file name"))?
        .to_string_lossy();
    // Keep the name short enough for NAME_MAX with the prefix and suffix around it.
    let short: String = name.chars().take(64).collect();
    let dir = dir_of(path);
    let mut last = None;
    for _ in 0..8 {
        let token = crate::actions::random_token();
        let tmp = dir.join(format!(".{short}.{}.tmp", &token[..token.len().min(16)]));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_refused_before_anything_is_written() {
        let err = check_report_target(Path::new("/dev/null")).unwrap_err();
        assert!(err.contains("a character device"), "{err}");
        let meta = std::fs::symlink_metadata("/dev/null").unwrap();
        assert!(meta.file_type().is_char_device(), "/dev/null untouched");
        let err = check_report_target(Path::new("/")).unwrap_err();
        assert!(
            err.contains("names no file") || err.contains("a directory"),
            "{err}"
        );
    }
}
