//! Making a throwaway cluster (`initdb`) and writing its settings before every start.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::binaries::PgBin;
use super::command::{one_line, run, RunAs};
use super::directory::write_file;
use super::quoting::quote_literal;
use super::{LocalDbError, ServerTls, SUPERUSER};

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

/// The unix socket directory of a server on `port`, unless its socket's path would be too
/// long (~107 bytes at most): then the server listens on TCP only.
pub(super) fn socket_dir(dir: &Path, port: u16) -> Option<PathBuf> {
    let sock = dir.join("sock");
    let sock_path = sock.join(format!(".s.PGSQL.{port}"));
    (sock_path.as_os_str().len() < 100).then_some(sock)
}

/// Writes `data/serai.conf`: port, addresses, socket directory and the speed settings; with
/// `tls`, also the certificate and key, `ssl = on` and a pg_hba.conf that takes TCP only
/// over TLS.
pub(super) fn write_settings(
    dir: &Path,
    port: u16,
    run_as: Option<&RunAs>,
    tls: Option<&ServerTls>,
) -> Result<(), LocalDbError> {
    let sockets = socket_dir(dir, port)
        .map(|sock| sock.display().to_string())
        .unwrap_or_default();
    let mut text = format!(
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
    let data = dir.join("data");
    if let Some(tls) = tls {
        // The server refuses a key file others can read.
        write_owned(&data.join("server.crt"), &tls.cert_pem, 0o644, run_as)?;
        write_owned(&data.join("server.key"), &tls.key_pem, 0o600, run_as)?;
        text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    }
    write_hba(&data.join("pg_hba.conf"), tls.is_some(), run_as)?;
    write_owned(&data.join("serai.conf"), &text, 0o644, run_as)
}

/// First line of the pg_hba.conf written for a TLS server.
const TLS_HBA: &str = "# Written by serai's localdb: TCP only over TLS.";

/// With `tls`, a pg_hba.conf that trusts the unix socket and TCP only over TLS (`hostssl`);
/// without, initdb's own (`--auth=trust`) again if this directory had the TLS one.
fn write_hba(path: &Path, tls: bool, run_as: Option<&RunAs>) -> Result<(), LocalDbError> {
    let had_tls = std::fs::read_to_string(path).is_ok_and(|t| t.starts_with(TLS_HBA));
    if !tls && !had_tls {
        return Ok(());
    }
    let (head, host) = if tls {
        (TLS_HBA, "hostssl")
    } else {
        ("# Written by serai's localdb.", "host")
    };
    let mut text = format!("{head}\n");
    for db in ["all", "replication"] {
        text.push_str(&format!("local {db} all trust\n"));
        for net in ["127.0.0.1/32", "::1/128"] {
            text.push_str(&format!("{host} {db} all {net} trust\n"));
        }
    }
    write_owned(path, &text, 0o600, run_as)
}

/// Writes `path` with `mode` from the start, owned by the server's user.
fn write_owned(
    path: &Path,
    text: &str,
    mode: u32,
    run_as: Option<&RunAs>,
) -> Result<(), LocalDbError> {
    let failed = |what: &str, e: std::io::Error| {
        LocalDbError(format!("cannot {what} {}: {e}", path.display()))
    };
    // A file left by an earlier run may have a looser mode: start afresh.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed("replace", e)),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| failed("write", e))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| failed("chown", e))?;
    }
    Ok(())
}
