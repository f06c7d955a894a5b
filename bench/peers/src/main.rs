//! Other Rust QMP and guest-agent clients, measured by `bench/client.sh`
//! side by side with `qapi-client/benches/client.rs` (the raw loop and
//! qapi-client itself), on the same servers and with the same method: a
//! connection, its negotiation, 200 warm-up commands, then a fixed count
//! timed.  A crate of its own (excluded from the workspace, with its own
//! lock file) so that the library's dev-dependencies do not grow; only the
//! script builds it.
//!
//! ```text
//! qapi-client-bench-peers qmp SOCKET PEER N [--window W]   query-status
//! qapi-client-bench-peers qga SOCKET PEER N [--window W]   guest-ping
//! qapi-client-bench-peers idle-memory SOCKET PEER CONNECTIONS
//! ```
//!
//! PEER is one of:
//!
//! - `arcnmx-async`: the `qapi` crate's tokio client (`qapi::futures`:
//!   `QmpStreamTokio::open_uds`, `negotiate`, `spawn_tokio`, then
//!   `QapiService::execute`), on a multi-threaded tokio runtime, the loop
//!   in a spawned task; W tasks share the service through an `Arc`.  On a
//!   guest agent it sends no ids and holds its write lock until the reply,
//!   so calls cannot overlap there (W must be 1);
//! - `arcnmx-sync`: the `qapi` crate's blocking client (`qapi::Qmp` or
//!   `qapi::Qga` made with `from_stream(&UnixStream)`, as its examples
//!   do), called from the main thread; `execute` takes `&mut self`, so
//!   one call at a time (W must be 1);
//! - `lvillis`: the `qmp` crate's client (`qmp::Client::connect`, then
//!   `execute("query-status", None)` into a `serde_json::Value`, as its
//!   docs do), with its default options (a 30 s limit per call), on a
//!   multi-threaded tokio runtime; W tasks share clones of the client.
//!   QMP only: it has no guest-agent client.
//!
//! Each measurement prints one line, `commands_per_second=…` or
//! `kib_per_connection=…`, like the main bench binary.

use std::future::Future;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const WARM_UP: usize = 200;

const USAGE: &str = "usage: qapi-client-bench-peers (qmp|qga) SOCKET PEER N [--window W]\n       \
                     qapi-client-bench-peers idle-memory SOCKET PEER CONNECTIONS\n\
                     PEER: arcnmx-async, arcnmx-sync, lvillis";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Peer {
    ArcnmxAsync,
    ArcnmxSync,
    Lvillis,
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Qmp,
    Qga,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = run(&args) {
        eprintln!("qapi-client-bench-peers: {error}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [protocol @ ("qmp" | "qga"), socket, peer, count, rest @ ..] => {
            let protocol = if *protocol == "qmp" {
                Protocol::Qmp
            } else {
                Protocol::Qga
            };
            let window = match rest {
                [] => 1,
                ["--window", w] => w.parse::<usize>()?.max(1),
                _ => return Err(USAGE.into()),
            };
            let rate = measure(
                protocol,
                Path::new(socket),
                peer.parse()?,
                count.parse()?,
                window,
            )?;
            println!("commands_per_second={rate:.1}");
        }
        ["idle-memory", socket, peer, connections] => {
            let kib = idle_memory(Path::new(socket), peer.parse()?, connections.parse()?)?;
            println!("kib_per_connection={kib:.2}");
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

impl std::str::FromStr for Peer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Peer> {
        match s {
            "arcnmx-async" => Ok(Peer::ArcnmxAsync),
            "arcnmx-sync" => Ok(Peer::ArcnmxSync),
            "lvillis" => Ok(Peer::Lvillis),
            _ => Err(format!("unknown peer '{s}'\n{USAGE}").into()),
        }
    }
}

/// The runtime the async peers run on: what `#[tokio::main]` gives, like
/// the main bench's "ours".
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Commands per second for one peer on one server.
fn measure(
    protocol: Protocol,
    socket: &Path,
    peer: Peer,
    count: usize,
    window: usize,
) -> Result<f64> {
    match (peer, protocol) {
        (Peer::ArcnmxSync, _) if window > 1 => {
            Err("arcnmx-sync makes one call at a time (execute takes &mut self)".into())
        }
        (Peer::ArcnmxSync, protocol) => arcnmx_sync(protocol, socket, count),
        (Peer::ArcnmxAsync, Protocol::Qga) if window > 1 => Err(
            "arcnmx-async cannot overlap guest-agent calls (no ids: it holds its write lock \
             until the reply)"
                .into(),
        ),
        (Peer::Lvillis, Protocol::Qga) => {
            Err("lvillis's qmp crate has no guest-agent client".into())
        }
        (Peer::ArcnmxAsync, protocol) => {
            let socket = socket.to_owned();
            runtime()?.block_on(async move {
                tokio::spawn(async move {
                    match protocol {
                        Protocol::Qmp => {
                            drive(ArcnmxQmp::connect(&socket).await?, count, window).await
                        }
                        Protocol::Qga => {
                            drive(ArcnmxQga::connect(&socket).await?, count, window).await
                        }
                    }
                })
                .await?
            })
        }
        (Peer::Lvillis, Protocol::Qmp) => {
            let socket = socket.to_owned();
            runtime()?.block_on(async move {
                tokio::spawn(
                    async move { drive(Lvillis::connect(&socket).await?, count, window).await },
                )
                .await?
            })
        }
    }
}

/// One command through an async peer's session.
trait Call: Clone + Send + Sync + 'static {
    fn call(&self) -> impl Future<Output = Result<()>> + Send + '_;
}

/// Warms up, then times `count` calls: in a loop, or `window` tasks each
/// calling in a loop on clones of the session.
async fn drive<S: Call>(session: S, count: usize, window: usize) -> Result<f64> {
    for _ in 0..WARM_UP {
        session.call().await?;
    }
    let per_task = count.div_ceil(window);
    let started = Instant::now();
    if window == 1 {
        for _ in 0..per_task {
            session.call().await?;
        }
    } else {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..window {
            let session = session.clone();
            tasks.spawn(async move {
                for _ in 0..per_task {
                    session.call().await?;
                }
                Ok::<(), Error>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
    }
    Ok((per_task * window) as f64 / started.elapsed().as_secs_f64())
}

// ---- arcnmx's qapi, async ---------------------------------------------------

type ArcnmxQmpService = qapi::futures::QapiService<
    qapi::futures::QmpStreamTokio<tokio::io::WriteHalf<tokio::net::UnixStream>>,
>;
type ArcnmxQgaService = qapi::futures::QapiService<
    qapi::futures::QgaStreamTokio<tokio::io::WriteHalf<tokio::net::UnixStream>>,
>;

/// A negotiated QMP session whose reader runs in a spawned task.
#[derive(Clone)]
struct ArcnmxQmp(Arc<ArcnmxQmpService>);

impl ArcnmxQmp {
    async fn connect(socket: &Path) -> Result<ArcnmxQmp> {
        let stream = qapi::futures::QmpStreamTokio::open_uds(socket)
            .await?
            .negotiate()
            .await?;
        let (service, _reader) = stream.spawn_tokio();
        Ok(ArcnmxQmp(Arc::new(service)))
    }
}

impl Call for ArcnmxQmp {
    async fn call(&self) -> Result<()> {
        let status = self.0.execute(qapi::qmp::query_status {}).await?;
        std::hint::black_box(status);
        Ok(())
    }
}

/// A guest-agent session whose reader runs in a spawned task.
#[derive(Clone)]
struct ArcnmxQga(Arc<ArcnmxQgaService>);

impl ArcnmxQga {
    async fn connect(socket: &Path) -> Result<ArcnmxQga> {
        let stream = qapi::futures::QgaStreamTokio::open_uds(socket).await?;
        let (service, _reader) = stream.spawn_tokio();
        Ok(ArcnmxQga(Arc::new(service)))
    }
}

impl Call for ArcnmxQga {
    async fn call(&self) -> Result<()> {
        self.0.execute(qapi::qga::guest_ping {}).await?;
        Ok(())
    }
}

// ---- lvillis's qmp ------------------------------------------------------------

#[derive(Clone)]
struct Lvillis(qmp::Client);

impl Lvillis {
    async fn connect(socket: &Path) -> Result<Lvillis> {
        Ok(Lvillis(
            qmp::Client::connect(qmp::Endpoint::unix(socket)).await?,
        ))
    }
}

impl Call for Lvillis {
    async fn call(&self) -> Result<()> {
        let status: serde_json::Value = self.0.execute("query-status", Option::<()>::None).await?;
        std::hint::black_box(status);
        Ok(())
    }
}

// ---- arcnmx's qapi, blocking ------------------------------------------------

/// The blocking client, one call at a time from this thread.
fn arcnmx_sync(protocol: Protocol, socket: &Path, count: usize) -> Result<f64> {
    let stream = UnixStream::connect(socket)?;
    let mut call: Box<dyn FnMut() -> Result<()>> = match protocol {
        Protocol::Qmp => {
            let mut qmp = qapi::Qmp::from_stream(&stream);
            qmp.handshake()?;
            Box::new(move || {
                let status = qmp.execute(&qapi::qmp::query_status {})?;
                std::hint::black_box(status);
                Ok(())
            })
        }
        Protocol::Qga => {
            let mut qga = qapi::Qga::from_stream(&stream);
            Box::new(move || {
                qga.execute(&qapi::qga::guest_ping {})?;
                Ok(())
            })
        }
    };
    for _ in 0..WARM_UP {
        call()?;
    }
    let started = Instant::now();
    for _ in 0..count {
        call()?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

// ---- Idle memory ------------------------------------------------------------------

/// Resident set size of this process in KiB (VmRSS).
fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS in /proc/self/status")?;
    Ok(line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?)
}

/// (RSS with `connections` idle negotiated QMP sessions − RSS before) per
/// session, in KiB, measured as the main bench's `idle-memory` does: one
/// session opened, used and dropped first so that one-time costs are not
/// counted, then the sessions opened and left idle for half a second.
fn idle_memory(socket: &Path, peer: Peer, connections: usize) -> Result<f64> {
    let (before, after) = match peer {
        Peer::ArcnmxSync => {
            {
                let stream = UnixStream::connect(socket)?;
                let mut qmp = qapi::Qmp::from_stream(&stream);
                qmp.handshake()?;
                qmp.execute(&qapi::qmp::query_status {})?;
            }
            std::thread::sleep(Duration::from_millis(100));
            let before = rss_kib()?;
            // The client borrows its socket: the sockets live beside it.
            let mut streams = Vec::with_capacity(connections);
            for _ in 0..connections {
                streams.push(UnixStream::connect(socket)?);
            }
            let mut sessions = Vec::with_capacity(connections);
            for stream in &streams {
                let mut qmp = qapi::Qmp::from_stream(stream);
                qmp.handshake()?;
                sessions.push(qmp);
            }
            std::thread::sleep(Duration::from_millis(500));
            (before, rss_kib()?)
        }
        Peer::ArcnmxAsync => {
            let socket = socket.to_owned();
            runtime()?.block_on(async move {
                tokio::spawn(idle_async(socket, connections, |socket| async move {
                    ArcnmxQmp::connect(&socket).await
                }))
                .await?
            })?
        }
        Peer::Lvillis => {
            let socket = socket.to_owned();
            runtime()?.block_on(async move {
                tokio::spawn(idle_async(socket, connections, |socket| async move {
                    Lvillis::connect(&socket).await
                }))
                .await?
            })?
        }
    };
    eprintln!(
        "idle-memory ({peer:?}): VmRSS {before} KiB before, {after} KiB with {connections} sessions"
    );
    Ok(after.saturating_sub(before) as f64 / connections as f64)
}

/// VmRSS before and after opening `connections` sessions of an async peer.
async fn idle_async<S, F, Fut>(
    socket: PathBuf,
    connections: usize,
    connect: F,
) -> Result<(u64, u64)>
where
    S: Call,
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Result<S>>,
{
    let warm = connect(socket.clone()).await?;
    warm.call().await?;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss_kib()?;
    let mut sessions = Vec::with_capacity(connections);
    for _ in 0..connections {
        sessions.push(connect(socket.clone()).await?);
    }
    // Let every reader task settle into its idle read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib()?;
    // One call on the last session: it is still open.
    sessions.last().ok_or("no sessions")?.call().await?;
    Ok((before, after))
}
