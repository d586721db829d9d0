//! Making a throwaway cluster (`initdb`) and writing its settings before every start.

use std::path::Path;

use super::binaries::PgBin;
use super::command::{one_line, run, RunAs};
use super::directory::write_file;
use super::quoting::quote_literal;
use super::{LocalDbError, SUPERUSER};

pub(super) async fn initdb(
    dir: &Path,
    bin: &PgBin,
    run_as: Option<&RunAs>,
) -> Result<(), LocalDbError> {
    let data = dir.join("data");
    // A half-made cluster (interrupted initdb) has no PG_VERSION: start over.
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .map_err(|e| LocalDbError(format!("cannot remove {}: {e}", data.display())))?;
    }
    let out = run(
        run_as,
        dir,
        &bin.initdb,
        &[
            "-D".as_ref(),
            data.as_os_str(),
            "-U".as_ref(),
            SUPERUSER.as_ref(),
            "--auth=trust".as_ref(),
            "--encoding=UTF8".as_ref(),
            "--no-locale".as_ref(),
            "--no-sync".as_ref(),
        ],
    )
    .await?;
    if !out.status.success() {
        return Err(LocalDbError(format!(
            "initdb {} failed: {}",
            data.display(),
            one_line(&out)
        )));
    }
    // Our settings live in serai.conf, rewritten before every start.
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)
        .map_err(|e| LocalDbError(format!("cannot read {}: {e}", conf.display())))?;
    text.push_str("\ninclude_if_exists = 'serai.conf'\n");
    write_file(&conf, &text)
}

/// Writes `data/serai.conf`: port, addresses, socket directory and the speed settings.
pub(super) fn write_settings(
    dir: &Path,
    port: u16,
    run_as: Option<&RunAs>,
) -> Result<(), LocalDbError> {
    let sock = dir.join("sock");
    // A unix socket path is limited to ~107 bytes; past that, TCP only.
    let sock_path = sock.join(format!(".s.PGSQL.{port}"));
    let sockets = if sock_path.as_os_str().len() < 100 {
        sock.display().to_string()
    } else {
        String::new()
    };
    let text = format!(
        "# Written by serai's localdb before every start; edits are overwritten.\n\
         port = {port}\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = {}\n\
         max_connections = 300\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n",
        quote_literal(&sockets)
    );
    let path = dir.join("data").join("serai.conf");
    write_file(&path, &text)?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid))
            .map_err(|e| LocalDbError(format!("cannot chown {}: {e}", path.display())))?;
    }
    Ok(())
}
