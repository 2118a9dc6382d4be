//! Files under the directories the tool was granted (`fs = [{ host, guest, mode }]`), with
//! errors that name the path. Paths outside every grant do not exist for the tool.

use std::path::{Path, PathBuf};

use crate::Error;

/// The whole file as UTF-8 text.
pub fn read_to_string(path: impl AsRef<Path>) -> Result<String, Error> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|error| file_error(path, error))
}

/// The whole file as bytes.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, Error> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|error| file_error(path, error))
}

/// Writes `contents` to `path`, replacing the file (needs a read-write grant).
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<(), Error> {
    let path = path.as_ref();
    std::fs::write(path, contents).map_err(|error| file_error(path, error))
}

/// Every regular file under `dir`, recursively, in path order. Symbolic links are not followed.
pub fn walk(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let mut pending = vec![dir.as_ref().to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|error| file_error(&dir, error))?;
        for entry in entries {
            let entry = entry.map_err(|error| file_error(&dir, error))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|error| file_error(&path, error))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn file_error(path: &Path, error: std::io::Error) -> Error {
    Error::File {
        path: path.to_path_buf(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_lists_files_in_order_and_skips_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/deep.md"), "deep").unwrap();
        std::fs::write(dir.path().join("a.md"), "top").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let files = walk(dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_owned())
            .collect();
        assert_eq!(names, [PathBuf::from("a.md"), PathBuf::from("b/c/deep.md")]);
        assert_eq!(read_to_string(&files[1]).unwrap(), "deep");
    }

    #[test]
    fn errors_name_the_path() {
        let error = read_to_string("/definitely/not/here.md").unwrap_err();
        assert!(
            error.to_string().starts_with("/definitely/not/here.md: "),
            "{error}"
        );
    }
}
