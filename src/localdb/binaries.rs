//! Finding PostgreSQL's server binaries (`initdb`, `pg_ctl`) and their version.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::LocalDbError;

/// What to do when no PostgreSQL can be found or started.
const INSTALL_HINT: &str = "install PostgreSQL's server binaries (Debian/Ubuntu: \
     `apt-get install postgresql`; Fedora: `dnf install postgresql-server`; macOS: \
     `brew install postgresql`) or set SERAI_DATABASE_URL";

/// The `initdb` and `pg_ctl` to use.
#[derive(Debug)]
pub(super) struct PgBin {
    pub(super) initdb: PathBuf,
    pub(super) pg_ctl: PathBuf,
}

impl PgBin {
    /// Binaries from `PATH` first, then the usual install directories (newest first). With
    /// `want` (the major version of an existing cluster), only binaries of that version.
    pub(super) async fn find(want: Option<&str>) -> Result<PgBin, LocalDbError> {
        let mut found = Vec::new();
        for dir in candidate_dirs() {
            let (initdb, pg_ctl) = (dir.join("initdb"), dir.join("pg_ctl"));
            if !initdb.is_file() || !pg_ctl.is_file() {
                continue;
            }
            let version = major_version(&pg_ctl).await;
            match (want, &version) {
                (None, _) => return Ok(PgBin { initdb, pg_ctl }),
                (Some(w), Some(v)) if w == v => return Ok(PgBin { initdb, pg_ctl }),
                _ => found.push(format!(
                    "{} ({})",
                    dir.display(),
                    version.as_deref().unwrap_or("unknown version")
                )),
            }
        }
        match want {
            Some(w) if !found.is_empty() => Err(LocalDbError(format!(
                "the throwaway cluster was made by PostgreSQL {w} but only {} is installed: \
                 delete it (scripts/pg-stop.sh --purge) or install PostgreSQL {w}",
                found.join(", ")
            ))),
            _ => Err(LocalDbError(format!(
                "no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
            ))),
        }
    }
}

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for (parent, prefix) in [("/usr/lib/postgresql", ""), ("/usr", "pgsql-")] {
        let mut versioned: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = name.strip_prefix(prefix)?;
                let key = version
                    .split('.')
                    .map(|n| n.parse::<u32>().ok())
                    .collect::<Option<Vec<_>>>()?;
                Some((key, entry.path().join("bin")))
            })
            .collect();
        versioned.sort_by(|a, b| b.0.cmp(&a.0));
        dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    }
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    dirs
}

/// Major version as written in `PG_VERSION` ("15", or "9.6" before 10), from `--version`.
async fn major_version(pg_ctl: &Path) -> Option<String> {
    let out = Command::new(pg_ctl).arg("--version").output().await.ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let number = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = number.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?;
    if major.parse::<u32>().ok()? >= 10 {
        Some(major.to_string())
    } else {
        Some(format!("{major}.{}", parts.next()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_binaries_name_what_to_install() {
        // No version of PostgreSQL is "0", so nothing matches; with nothing installed at all
        // the message is the install hint.
        let err = PgBin::find(Some("0")).await.unwrap_err().0;
        assert!(
            err.contains("PostgreSQL 0") || err.contains("apt-get install postgresql"),
            "{err}"
        );
        assert!(!INSTALL_HINT.contains('\n'));
        assert!(INSTALL_HINT.contains("apt-get install postgresql"));
    }

    #[tokio::test]
    async fn version_of_installed_binaries() {
        if let Ok(bin) = PgBin::find(None).await {
            let v = major_version(&bin.pg_ctl).await.expect("pg_ctl --version");
            assert!(v.chars().next().unwrap().is_ascii_digit(), "{v}");
        }
    }
}
