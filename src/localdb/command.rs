//! Running PostgreSQL's programs, as an unprivileged user when we are root (initdb and pg_ctl
//! refuse root).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use tokio::process::Command;

use super::LocalDbError;

/// The unprivileged user PostgreSQL runs as when we are root.
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    pub(super) name: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

impl RunAs {
    /// None unless root. Else the owner of an existing `dir/data`, or `postgres`, or `nobody`.
    pub(super) async fn for_dir(dir: &Path) -> Result<Option<RunAs>, LocalDbError> {
        if current_uid().await? != 0 {
            return Ok(None);
        }
        if let Ok(meta) = std::fs::metadata(dir.join("data")) {
            if meta.uid() != 0 {
                if let Some(name) = id(&["-nu", &meta.uid().to_string()]).await {
                    return Ok(Some(RunAs {
                        name,
                        uid: meta.uid(),
                        gid: meta.gid(),
                    }));
                }
            }
        }
        for name in ["postgres", "nobody"] {
            let (Some(uid), Some(gid)) = (id(&["-u", name]).await, id(&["-g", name]).await) else {
                continue;
            };
            if let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) {
                return Ok(Some(RunAs {
                    name: name.to_string(),
                    uid,
                    gid,
                }));
            }
        }
        Err(LocalDbError(
            "running as root, and there is no `postgres` or `nobody` user to run PostgreSQL as \
             (initdb refuses root): create one (`useradd --system postgres`) or run as an \
             ordinary user"
                .into(),
        ))
    }
}

async fn id(args: &[&str]) -> Option<String> {
    let out = Command::new("id").args(args).output().await.ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

pub(super) async fn current_uid() -> Result<u32, LocalDbError> {
    id(&["-u"])
        .await
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| LocalDbError("cannot tell the current user id (`id -u` failed)".into()))
}

/// Runs `program args` in `cwd`, as `run_as` when given (we are root then).
pub(super) async fn run(
    run_as: Option<&RunAs>,
    cwd: &Path,
    program: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<Output, LocalDbError> {
    let mut cmd = match run_as {
        None => Command::new(program),
        Some(user) if on_path("runuser") => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", &user.name, "--"]).arg(program);
            cmd
        }
        Some(user) if on_path("setpriv") => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .args(["--clear-groups", "--"])
                .arg(program);
            cmd
        }
        Some(user) => {
            let mut cmd = Command::new("su");
            cmd.args([
                "-s",
                "/bin/sh",
                "-c",
                "exec \"$0\" \"$@\"",
                "--",
                &user.name,
            ])
            .arg(program);
            cmd
        }
    };
    cmd.args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd.output()
        .await
        .map_err(|e| LocalDbError(format!("cannot run {}: {e}", program.display())))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// A command's stderr (else stdout) on one line.
pub(super) fn one_line(out: &Output) -> String {
    let text = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &out.stderr
    } else {
        &out.stdout
    };
    let text = String::from_utf8_lossy(text);
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    format!("{} ({joined})", out.status)
}
