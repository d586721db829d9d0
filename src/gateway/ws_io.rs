//! WebSocket frames on the TCP stream a socket owns after the HTTP upgrade ([`super::upgrade`]),
//! with no buffer held while the socket is idle.
//!
//! Why not the HTTP server's connection: actix-http's h1 dispatcher keeps an 8 KiB read and an
//! 8 KiB write buffer for the whole life of a connection it serves, a WebSocket included, which
//! was most of an idle socket's memory. Here the reader waits for the stream to be readable
//! before it allocates, and gives its buffer back once every whole frame in it is decoded; the
//! writer encodes each frame into a buffer that lives only while the frame is written.
//!
//! Frames are decoded and encoded by actix-http's WebSocket codec (the one `actix-ws` uses);
//! fragmented messages are joined here exactly as `actix-ws`'s aggregation does (same limit,
//! same errors), so the socket actor sees the same [`AggregatedMessage`]s either way.

use actix_http::ws::{Codec, Frame, Item, Message, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use actix_ws::{AggregatedMessage, CloseReason};
use bytestring::ByteString;
use futures_util::Stream;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{Decoder, Encoder};

/// What one read asks the kernel for at most (a bigger frame takes several reads).
const READ_CHUNK: usize = 4096;

/// The connection is gone (or a frame could not be encoded): nothing more can be sent.
#[derive(Debug)]
pub struct Closed;

/// The sending half: one frame at a time, each written whole before the next.
pub struct WsWriter {
    io: OwnedWriteHalf,
    codec: Codec,
}

impl WsWriter {
    pub fn new(io: OwnedWriteHalf) -> WsWriter {
        WsWriter {
            io,
            codec: Codec::new(),
        }
    }

    async fn send(&mut self, msg: Message) -> Result<(), Closed> {
        let mut buf = BytesMut::new();
        self.codec.encode(msg, &mut buf).map_err(|_| Closed)?;
        self.io.write_all(&buf).await.map_err(|_| Closed)
    }

    pub async fn text(&mut self, text: impl Into<ByteString>) -> Result<(), Closed> {
        self.send(Message::Text(text.into())).await
    }

    pub async fn binary(&mut self, bytes: impl Into<Bytes>) -> Result<(), Closed> {
        self.send(Message::Binary(bytes.into())).await
    }

    pub async fn ping(&mut self, bytes: &[u8]) -> Result<(), Closed> {
        self.send(Message::Ping(Bytes::copy_from_slice(bytes)))
            .await
    }

    pub async fn pong(&mut self, bytes: &[u8]) -> Result<(), Closed> {
        self.send(Message::Pong(Bytes::copy_from_slice(bytes)))
            .await
    }

    /// Sends a close frame and shuts the sending side down.
    pub async fn close(mut self, reason: Option<CloseReason>) -> Result<(), Closed> {
        self.send(Message::Close(reason)).await?;
        self.io.shutdown().await.map_err(|_| Closed)
    }
}

/// A fragmented message being joined.
struct Partial {
    text: bool,
    parts: Vec<Bytes>,
    size: usize,
}

/// The receiving half: decodes frames and joins fragmented messages.
struct WsReader {
    io: OwnedReadHalf,
    buf: BytesMut,
    codec: Codec,
    max_message: usize,
    partial: Option<Partial>,
    done: bool,
}

/// The messages a client sends on `io` (`leftover`: bytes read past the upgrade request),
/// frames capped at `max_frame` bytes and joined messages at `max_message`. Ends when the
/// client closes the connection or after the first error.
pub fn messages(
    io: OwnedReadHalf,
    leftover: BytesMut,
    max_frame: usize,
    max_message: usize,
) -> impl Stream<Item = Result<AggregatedMessage, ProtocolError>> {
    let reader = WsReader {
        io,
        buf: leftover,
        codec: Codec::new().max_size(max_frame),
        max_message,
        partial: None,
        done: false,
    };
    futures_util::stream::unfold(reader, |mut r| async move {
        let item = r.next().await?;
        Some((item, r))
    })
}

fn size_error() -> ProtocolError {
    ProtocolError::Io(std::io::Error::other("Exceeded maximum continuation size"))
}

impl WsReader {
    async fn next(&mut self) -> Option<Result<AggregatedMessage, ProtocolError>> {
        while !self.done {
            match self.codec.decode(&mut self.buf) {
                Err(e) => return self.fail(e),
                Ok(Some(frame)) => match self.join(frame) {
                    Some(Err(e)) => return self.fail(e),
                    Some(ok) => return Some(ok),
                    None => continue,
                },
                Ok(None) => {}
            }
            if self.buf.is_empty() {
                // Idle: hold no buffer while waiting.
                self.buf = BytesMut::new();
            }
            if let Err(e) = self.io.readable().await {
                return self.fail(ProtocolError::Io(e));
            }
            self.buf.reserve(READ_CHUNK);
            match self.io.try_read_buf(&mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return self.fail(ProtocolError::Io(e)),
            }
        }
        None
    }

    fn fail(&mut self, e: ProtocolError) -> Option<Result<AggregatedMessage, ProtocolError>> {
        self.done = true;
        Some(Err(e))
    }

    /// A whole message from `frame`, or `None` while a fragmented one is incomplete.
    fn join(&mut self, frame: Frame) -> Option<Result<AggregatedMessage, ProtocolError>> {
        let whole = match frame {
            Frame::Text(bytes) => text(bytes).map(AggregatedMessage::Text),
            Frame::Binary(bytes) => Ok(AggregatedMessage::Binary(bytes)),
            Frame::Ping(bytes) => Ok(AggregatedMessage::Ping(bytes)),
            Frame::Pong(bytes) => Ok(AggregatedMessage::Pong(bytes)),
            Frame::Close(reason) => Ok(AggregatedMessage::Close(reason)),
            Frame::Continuation(item) => return self.continuation(item),
        };
        Some(whole)
    }

    /// Joins a fragment; the message once its last fragment came (the codec refuses
    /// fragments out of order). Past `max_message` bytes: an error, which ends the stream.
    fn continuation(&mut self, item: Item) -> Option<Result<AggregatedMessage, ProtocolError>> {
        let (bytes, last) = match item {
            Item::FirstText(b) => {
                self.partial = Some(Partial::new(true));
                (b, false)
            }
            Item::FirstBinary(b) => {
                self.partial = Some(Partial::new(false));
                (b, false)
            }
            Item::Continue(b) => (b, false),
            Item::Last(b) => (b, true),
        };
        let Some(p) = self.partial.as_mut() else {
            return Some(Err(ProtocolError::ContinuationNotStarted));
        };
        p.size += bytes.len();
        if p.size > self.max_message {
            return Some(Err(size_error()));
        }
        if !bytes.is_empty() {
            p.parts.push(bytes);
        }
        if !last {
            return None;
        }
        let p = self.partial.take()?;
        let mut joined = BytesMut::with_capacity(p.size);
        for part in &p.parts {
            joined.extend_from_slice(part);
        }
        let joined = joined.freeze();
        Some(if p.text {
            text(joined).map(AggregatedMessage::Text)
        } else {
            Ok(AggregatedMessage::Binary(joined))
        })
    }
}

impl Partial {
    fn new(text: bool) -> Partial {
        Partial {
            text,
            parts: Vec::new(),
            size: 0,
        }
    }
}

fn text(bytes: Bytes) -> Result<ByteString, ProtocolError> {
    ByteString::try_from(bytes)
        .map_err(|e| ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: (the client's stream, the server's halves).
    async fn pair() -> (TcpStream, OwnedReadHalf, OwnedWriteHalf) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (r, w) = server.into_split();
        (client, r, w)
    }

    /// A masked client frame (`fin`, `opcode`, `payload`).
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![(fin as u8) << 7 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[tokio::test]
    async fn bytes_past_the_upgrade_are_decoded_and_fragments_joined() {
        let (mut client, r, _w) = pair().await;
        let leftover = BytesMut::from(&client_frame(true, 1, b"first")[..]);
        let mut messages = Box::pin(messages(r, leftover, 1024, 1024));
        let mut wire = client_frame(false, 1, b"he");
        wire.extend(client_frame(false, 0, b"ll"));
        wire.extend(client_frame(true, 0, b"o"));
        wire.extend(client_frame(true, 2, b"\x00\x01"));
        client.write_all(&wire).await.unwrap();
        let got: Vec<_> = (&mut messages).take(3).collect().await;
        assert!(matches!(&got[0], Ok(AggregatedMessage::Text(t)) if t == "first"));
        assert!(matches!(&got[1], Ok(AggregatedMessage::Text(t)) if t == "hello"));
        assert!(matches!(&got[2], Ok(AggregatedMessage::Binary(b)) if &b[..] == b"\x00\x01"));
        drop(client);
        assert!(
            messages.next().await.is_none(),
            "ends when the client closes"
        );
    }

    #[tokio::test]
    async fn a_joined_message_over_the_limit_is_an_error() {
        let (mut client, r, _w) = pair().await;
        let mut messages = Box::pin(messages(r, BytesMut::new(), 1024, 4));
        let mut wire = client_frame(false, 1, b"abc");
        wire.extend(client_frame(true, 0, b"def"));
        client.write_all(&wire).await.unwrap();
        match messages.next().await {
            Some(Err(ProtocolError::Io(e))) => {
                assert!(e.to_string().contains("maximum continuation size"))
            }
            other => panic!("expected the size error, got {other:?}"),
        }
        assert!(messages.next().await.is_none());
    }

    #[tokio::test]
    async fn an_idle_reader_holds_no_buffer() {
        let (mut client, r, _w) = pair().await;
        let mut reader = WsReader {
            io: r,
            buf: BytesMut::new(),
            codec: Codec::new(),
            max_message: 1024,
            partial: None,
            done: false,
        };
        client
            .write_all(&client_frame(true, 1, b"ping"))
            .await
            .unwrap();
        assert!(matches!(
            reader.next().await,
            Some(Ok(AggregatedMessage::Text(_)))
        ));
        // Waiting for the next frame, the reader gives its buffer back first.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), reader.next());
        assert!(waiting.await.is_err(), "nothing more was sent");
        assert_eq!(reader.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn the_writer_sends_unmasked_frames_and_a_close() {
        let (mut client, _r, w) = pair().await;
        let mut writer = WsWriter::new(w);
        writer.text("hi").await.unwrap();
        writer.close(None).await.unwrap();
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut client, &mut got)
            .await
            .unwrap();
        assert_eq!(got, vec![0x81, 2, b'h', b'i', 0x88, 0]);
    }
}
