//! Files that may hold cluster secrets (etcd snapshots hold every Secret, node logs and cluster
//! snapshots hold names and configuration): created 0600 in directories created 0700, whatever
//! the process umask is, and tightened to those modes when they already existed.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file this module creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory this module creates.
pub const DIR_MODE: u32 = 0o700;

/// Create `dir` and any missing parents with mode 0700. An existing directory is left as it is
/// (it may be shared, such as `.`); a path that exists but is not a directory is an error.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists and is not a directory"));
    }
    if let Some(parent) = dir.parent() {
        create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        // Another process made it in between: fine, it is a directory now.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    // The umask can only have removed bits from 0700; set them explicitly all the same.
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

fn private(file: File) -> io::Result<File> {
    // An existing file keeps its old mode through open(O_CREAT); tighten it.
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Create (or truncate) `path` for writing, mode 0600.
pub fn create_file(path: &Path) -> io::Result<File> {
    private(OpenOptions::new().write(true).create(true).truncate(true).mode(FILE_MODE).open(path)?)
}

/// Open `path` for appending, creating it with mode 0600.
pub fn append_file(path: &Path) -> io::Result<File> {
    private(OpenOptions::new().append(true).create(true).mode(FILE_MODE).open(path)?)
}

/// Write `contents` to `path`, mode 0600.
pub fn write_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = create_file(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_directories_are_private_and_existing_files_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let f = dir.join("x");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, Permissions::from_mode(0o666)).unwrap();
        write_file(&f, b"new").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        drop(append_file(&dir.join("log")).unwrap());
        assert_eq!(mode(&dir.join("log")), 0o600);
        assert!(create_dir_all(&f).is_err(), "a file is not a directory");
    }
}
