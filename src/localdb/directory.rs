//! The throwaway server's directory: made reachable for the server's user, its start-up lock,
//! the files written in it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::command::{run, RunAs};
use super::LocalDbError;

/// How long to wait for another process that is starting the same throwaway server.
const LOCK_WAIT: Duration = Duration::from_secs(180);

pub(super) enum DirError {
    /// The unprivileged user cannot reach the directory.
    Unreachable(String),
    Other(LocalDbError),
}

impl DirError {
    pub(super) fn into_error(self) -> LocalDbError {
        match self {
            DirError::Unreachable(why) => LocalDbError(why),
            DirError::Other(e) => e,
        }
    }
}

/// Creates `dir` and its socket directory and, as root, hands them to the server's user and
/// checks that user can reach them.
pub(super) async fn prepare_dir(dir: &Path, run_as: Option<&RunAs>) -> Result<(), DirError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        DirError::Other(LocalDbError(format!("{what} {}: {e}", p.display())))
    };
    let sock = dir.join("sock");
    std::fs::create_dir_all(&sock).map_err(|e| io("cannot create", &sock, e))?;
    let Some(user) = run_as else { return Ok(()) };
    for path in [dir, &sock] {
        let meta = std::fs::symlink_metadata(path).map_err(|e| io("cannot inspect", path, e))?;
        if meta.uid() == user.uid {
            continue;
        }
        // Never take over a directory someone else made (e.g. a planted /tmp path).
        if meta.uid() != 0 || meta.file_type().is_symlink() {
            return Err(DirError::Other(LocalDbError(format!(
                "{} belongs to uid {}, expected root or {}: remove it",
                path.display(),
                meta.uid(),
                user.name
            ))));
        }
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| io("cannot chown", path, e))?;
    }
    let out = run(
        Some(user),
        Path::new("/"),
        Path::new("test"),
        &["-w".as_ref(), sock.as_os_str()],
    )
    .await
    .map_err(DirError::Other)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DirError::Unreachable(format!(
            "user {} cannot reach {} (a parent directory is not searchable by it)",
            user.name,
            dir.display()
        )))
    }
}

/// Takes the exclusive start-up lock, waiting for another process holding it.
pub(super) async fn lock(path: &Path) -> Result<std::fs::File, LocalDbError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| LocalDbError(format!("cannot open {}: {e}", path.display())))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LocalDbError(format!(
                    "another process has held {} for {}s",
                    path.display(),
                    LOCK_WAIT.as_secs()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(LocalDbError(format!("cannot lock {}: {e}", path.display())))
            }
        }
    }
}

pub(super) fn write_file(path: &Path, text: &str) -> Result<(), LocalDbError> {
    std::fs::write(path, text)
        .map_err(|e| LocalDbError(format!("cannot write {}: {e}", path.display())))
}
