//! A Beats client that speaks what Filebeat speaks: `W(n)` then one zlib-compressed
//! frame holding `J(1)..J(n)` (sequence numbers restart in every window), several
//! windows in flight before their ACKs. Used by the integration tests and the bench.
#![allow(dead_code)]

use bytes::BytesMut;
use sluice::inputs::beats::protocol::{decode_ack, encode_frame, Frame, V2};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One Filebeat-like document; `id` makes every event traceable in the output.
pub fn document(id: u64, message: &str) -> Vec<u8> {
    let doc = serde_json::json!({
        "@timestamp": "2024-01-02T03:04:05.678Z",
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.13.4"},
        "message": message,
        "host": {"name": "web-01"},
        "agent": {"type": "filebeat", "version": "8.13.4"},
        "ecs": {"version": "8.0.0"},
        "log": {"file": {"path": "/var/log/app.log"}, "offset": id},
        "id": id,
    });
    serde_json::to_vec(&doc).unwrap()
}

/// The bytes of one window: `W(n)` and the documents as J frames numbered from 1,
/// compressed into one C frame (zlib level 3, Filebeat's default) or bare.
pub fn window(docs: &[Vec<u8>], compressed: bool) -> BytesMut {
    let frames: Vec<Frame> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| Frame::json(i as u32 + 1, d.clone()))
        .collect();
    let mut out = BytesMut::new();
    let level = flate2::Compression::new(3);
    encode_frame(
        &Frame::Window {
            version: V2,
            size: docs.len() as u32,
        },
        level,
        &mut out,
    )
    .unwrap();
    if compressed {
        encode_frame(&Frame::Compressed(frames), level, &mut out).unwrap();
    } else {
        for f in &frames {
            encode_frame(f, level, &mut out).unwrap();
        }
    }
    out
}

/// A connection to a beats server.
pub struct Client<S> {
    pub stream: S,
    buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream,
            buf: BytesMut::with_capacity(64),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// The next ACK's sequence number; `None` once the server closed the connection.
    pub async fn ack(&mut self) -> Option<u32> {
        loop {
            match decode_ack(&mut self.buf) {
                Ok(Some((_, seq))) => return Some(seq),
                Ok(None) => {}
                Err(e) => panic!("the server sent something else than an ACK: {e}"),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads ACKs until one for `seq`, returning the keep-alives (`ACK 0`) seen on the
    /// way. Panics on any other sequence number: Sluice only ACKs whole windows.
    pub async fn await_ack(&mut self, seq: u32) -> Option<usize> {
        let mut keepalives = 0;
        loop {
            match self.ack().await? {
                s if s == seq => return Some(keepalives),
                0 => keepalives += 1,
                other => panic!("ACK {other} while waiting for {seq}"),
            }
        }
    }
}

/// Sends `windows` with up to `pipelining` of them in flight, as Filebeat does, and
/// waits for each window's ACK (its last sequence number). Returns the keep-alives seen.
pub async fn send_pipelined<S>(
    client: &mut Client<S>,
    windows: &[(BytesMut, u32)],
    pipelining: usize,
) -> Option<usize>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut keepalives = 0;
    let mut sent = 0;
    for acked in 0..windows.len() {
        while sent < windows.len() && sent < acked + pipelining.max(1) {
            client.send(&windows[sent].0).await.ok()?;
            sent += 1;
        }
        keepalives += client.await_ack(windows[acked].1).await?;
    }
    Some(keepalives)
}
