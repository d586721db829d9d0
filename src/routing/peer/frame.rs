//! Frames on a socket: bounded reads and whole-frame writes.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::peer::{self, Frame, FrameError, LEN_PREFIX};

/// Why no frame could be read; every case ends the link.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The peer closed the socket.
    #[error("connection closed by peer")]
    Eof,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Reads one frame, never allocating more than `max` bytes for its body.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Frame, ReadError> {
    let mut prefix = [0u8; LEN_PREFIX];
    read_exact(reader, &mut prefix).await?;
    let size = peer::body_len(prefix, max)?;
    let mut body = vec![0u8; size];
    read_exact(reader, &mut body).await?;
    Ok(peer::decode(&body)?)
}

async fn read_exact<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> Result<(), ReadError> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ReadError::Eof),
        Err(e) => Err(ReadError::Io(e)),
    }
}

/// Encodes and writes one frame, then flushes.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
    max: usize,
) -> io::Result<()> {
    let bytes = peer::encode(frame, max).map_err(io::Error::other)?;
    writer.write_all(&bytes).await?;
    writer.flush().await
}

/// Best effort: tells the peer why the link ends. Errors are ignored, the link is going anyway.
pub(crate) async fn send_close<W: AsyncWrite + Unpin>(writer: &mut W, version: u16, reason: &str) {
    let frame = Frame {
        version,
        body: peer::FrameBody::Close {
            reason: reason.to_string(),
        },
    };
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        write_frame(writer, &frame, peer::MAX_FRAME),
    )
    .await;
}

/// How long one batch of writes may stall before the link is given up.
const WRITE_STALL: std::time::Duration = std::time::Duration::from_secs(10);

/// The one writer of a link: writes queued frames (already encoded), batching whatever is
/// queued before each flush. Ends when every sender is gone, on a write error or stall, or when
/// `link` is cancelled (after writing what was already queued, e.g. a Close frame); cancels
/// `link` on the way out so the reader stops too.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    writer: W,
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    link: tokio_util::sync::CancellationToken,
) {
    let mut writer = tokio::io::BufWriter::with_capacity(64 * 1024, writer);
    let result: io::Result<()> = async {
        loop {
            let first = tokio::select! {
                biased;
                next = rx.recv() => match next {
                    Some(bytes) => bytes,
                    None => break,
                },
                _ = link.cancelled() => {
                    // Write out what is already queued (a Close frame), then stop.
                    rx.close();
                    break;
                }
            };
            let batch = async {
                writer.write_all(&first).await?;
                while let Ok(bytes) = rx.try_recv() {
                    writer.write_all(&bytes).await?;
                }
                writer.flush().await
            };
            match tokio::time::timeout(WRITE_STALL, batch).await {
                Ok(r) => r?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled")),
            }
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while let Ok(bytes) = rx.try_recv() {
                writer.write_all(&bytes).await?;
            }
            writer.flush().await?;
            writer.shutdown().await
        })
        .await;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "peer link write failed");
    }
    link.cancel();
}
