//! The line-oriented files authentication reads (password files, ACL files): reading one, and
//! the error that names the file and, for a bad line, its number.

use std::path::{Path, PathBuf};

/// A password or ACL file that could not be read, or a line in it that is refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line that is refused, as Mosquitto would refuse it.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl FileError {
    /// The error for line `line` (1-based) of `path`.
    pub fn line(path: &Path, line: usize, reason: String) -> FileError {
        FileError::Line {
            path: path.to_path_buf(),
            line,
            reason,
        }
    }
}

/// The file's text. Mosquitto reads bytes, so invalid UTF-8 is replaced rather than refused:
/// a stray byte in a comment must not lock everyone out.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    let bytes = std::fs::read(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}
