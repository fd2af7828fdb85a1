//! One client's byte stream: a read buffer that yields whole frames and a
//! write buffer flushed once per wakeup (many packets, one write).

use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{FrameError, Header, take_frame};

/// Initial read buffer; grows up to the frame being read.
const READ_BUF: usize = 8 * 1024;
/// Write buffer capacity kept between flushes.
const WRITE_BUF: usize = 8 * 1024;

/// Any byte stream a client can arrive on: TCP, TLS over TCP, Unix socket.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The socket failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not MQTT.
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// The peer closed in the middle of a packet.
    #[error("connection closed mid-packet ({0} bytes buffered)")]
    Truncated(usize),
}

/// Framed reader/writer over a client stream.
pub struct Connection {
    io: Box<dyn Io>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    max_packet: usize,
}

impl Connection {
    /// Wraps a stream; packets over `max_packet` bytes are refused.
    pub fn new(io: Box<dyn Io>, max_packet: usize) -> Self {
        Connection {
            io,
            rbuf: BytesMut::with_capacity(READ_BUF),
            wbuf: BytesMut::with_capacity(WRITE_BUF),
            max_packet,
        }
    }

    /// Next complete frame; `Ok(None)` on a clean close between packets.
    /// Cancel-safe: bytes read so far stay buffered.
    pub async fn read_frame(&mut self) -> Result<Option<(Header, BytesMut)>, ReadError> {
        loop {
            if let Some(frame) = take_frame(&mut self.rbuf, self.max_packet)? {
                return Ok(Some(frame));
            }
            if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                self.rbuf.reserve(READ_BUF);
            }
            if self.io.read_buf(&mut self.rbuf).await? == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated(self.rbuf.len()))
                };
            }
        }
    }

    /// The write buffer; packets are encoded into it and sent by [`Connection::flush`].
    pub fn out(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything buffered. Cancel-safe: bytes already written are
    /// consumed from the buffer, so a later flush continues the stream
    /// instead of repeating part of it.
    pub async fn flush(&mut self) -> io::Result<usize> {
        let n = self.wbuf.len();
        while !self.wbuf.is_empty() {
            let w = self.io.write(&self.wbuf).await?;
            if w == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.wbuf.advance(w);
        }
        if self.wbuf.capacity() > 16 * WRITE_BUF {
            self.wbuf = BytesMut::with_capacity(WRITE_BUF);
        }
        self.io.flush().await?;
        Ok(n)
    }

    /// Flushes and closes the write side.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}
