//! Connections that a handler can cut. hyper always answers a request it has read, so to
//! simulate a network failure the handler trips a per-connection switch; from then on every
//! write fails, hyper gives up on the connection and closes the socket: the client sees the
//! connection close with no HTTP answer at all.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Handed to handlers through `ConnectInfo`.
#[derive(Clone, Default)]
pub(super) struct DropSwitch(Arc<AtomicBool>);

impl DropSwitch {
    pub fn trip(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn tripped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

pub(super) struct SandboxListener(pub TcpListener);

impl Listener for SandboxListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((tcp, addr)) => {
                    // Small JSON answers must not wait for Nagle's algorithm.
                    let _ = tcp.set_nodelay(true);
                    let stream = CuttableStream {
                        tcp,
                        switch: DropSwitch::default(),
                    };
                    return (stream, addr);
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(err) if !is_per_connection(&err) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(_) => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl Connected<IncomingStream<'_, SandboxListener>> for DropSwitch {
    fn connect_info(stream: IncomingStream<'_, SandboxListener>) -> Self {
        stream.io().switch.clone()
    }
}

pub(super) struct CuttableStream {
    tcp: TcpStream,
    switch: DropSwitch,
}

impl CuttableStream {
    fn cut(&self) -> Option<io::Error> {
        self.switch.tripped().then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "sandbox dropped the connection",
            )
        })
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(err) = self.cut() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(err) = self.cut() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(err) = self.cut() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(err) = self.cut() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
