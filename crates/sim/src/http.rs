//! The HTTP plumbing every simulator shares: the accept loop (HTTP/1.1 over
//! loopback, until shutdown) and the error that makes hyper close a
//! connection without answering (an injected "dropped connection" fault).

use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Returned by a handler to make hyper close the connection unanswered.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// Serves `listener` with `handle` until `shutdown` changes. `name` goes
/// into the log of a failed accept.
pub(crate) async fn serve<H, F>(
    name: &'static str,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, DropConnection>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handle = handle.clone();
                    connections.spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service_fn(handle))
                            .await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, sim = name, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// A simulator listening on a free loopback port. Clones share it; the
/// last one dropped stops the listener.
#[derive(Clone)]
pub(crate) struct LoopbackServer {
    _stop: std::sync::Arc<Stop>,
    addr: std::net::SocketAddr,
}

struct Stop {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

impl LoopbackServer {
    /// Binds 127.0.0.1:0 and serves `handle` there (see [`serve`]).
    pub(crate) async fn start<H, F>(name: &'static str, handle: H) -> std::io::Result<LoopbackServer>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response<Full<Bytes>>, DropConnection>> + Send + 'static,
    {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(serve(name, listener, rx, handle));
        Ok(LoopbackServer { _stop: std::sync::Arc::new(Stop { shutdown, task }), addr })
    }

    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}
