//! `upshift-floor LISTEN UPSTREAM [multi-thread]`: a reverse proxy with
//! nothing but the bytes to move, built the way the host's native lane
//! moves them (one single-threaded runtime and `SO_REUSEPORT` socket per
//! core, hyper's server, the host's connection pool, bodies streamed). The
//! load benchmark measures Upshift against it: what the policy work costs
//! on top of Rust's floor on this machine. With `multi-thread`, one
//! work-stealing runtime with a worker per core serves one socket instead:
//! the other worker model the native lane could have.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::uri::{Authority, Scheme};
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use upshift_pool::{Pool, Pooled};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Upstreams = Pool<HttpConnector, Incoming>;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: upshift-floor LISTEN_ADDR UPSTREAM_AUTHORITY");
    };
    let listen: SocketAddr = listen.parse()?;
    let upstream: Authority = upstream.parse()?;
    if args.next().as_deref() == Some("multi-thread") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(async {
            serve(TcpListener::bind(listen).await?, upstream).await;
            Ok(())
        });
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    let socket = TcpSocket::new_v4().expect("a socket");
                    socket.set_reuseport(true).expect("SO_REUSEPORT");
                    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
                    socket.bind(listen).expect("the address is free");
                    serve(socket.listen(1024).expect("listening"), upstream).await
                });
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

async fn serve(listener: TcpListener, upstream: Authority) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Arc<Upstreams> = Arc::new(Pool::new(connector, 1));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (client, upstream) = (client.clone(), upstream.clone());
                async move { Ok::<_, Infallible>(forward(&client, upstream, request).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    client: &Upstreams,
    upstream: Authority,
    mut request: Request<Incoming>,
) -> Response<body::Body> {
    let mut parts = request.uri().clone().into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(upstream);
    *request.uri_mut() = Uri::from_parts(parts).expect("a URI");
    request.headers_mut().remove(http::header::HOST);
    match client.send(0, request, None).await {
        Ok(response) => response.map(body::Body::Upstream),
        Err(_) => {
            let mut response = Response::new(body::Body::Empty);
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            response
        }
    }
}

/// The response body: the upstream's, streamed, or nothing.
mod body {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use hyper::body::{Bytes, Frame, Incoming, SizeHint};

    use super::Pooled;

    /// The upstream's body, or none (a 502).
    pub enum Body {
        Upstream(Pooled<Incoming>),
        Empty,
    }

    impl hyper::body::Body for Body {
        type Data = Bytes;
        type Error = hyper::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
            match self.get_mut() {
                Body::Upstream(body) => Pin::new(body).poll_frame(cx),
                Body::Empty => Poll::Ready(None),
            }
        }

        fn is_end_stream(&self) -> bool {
            match self {
                Body::Upstream(body) => body.is_end_stream(),
                Body::Empty => true,
            }
        }

        fn size_hint(&self) -> SizeHint {
            match self {
                Body::Upstream(body) => body.size_hint(),
                Body::Empty => SizeHint::with_exact(0),
            }
        }
    }
}
