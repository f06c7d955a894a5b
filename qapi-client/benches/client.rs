//! Client benchmarks: our client against a minimal raw socket loop, on real
//! QEMU, real qemu-ga and a fast fake QMP server this program provides.
//!
//! `bench/client.sh` drives it (building it with `cargo bench --no-run`,
//! starting the servers, alternating the sides, computing the ratios); run
//! by hand, each subcommand does one measurement and prints one line,
//! `commands_per_second=…` or `kib_per_connection=…`:
//!
//! ```text
//! client fake-server SOCKET                      serve QMP until killed
//! client qmp SOCKET CLIENT N [--window W]        query-status, W in flight
//! client qga SOCKET CLIENT N [--window W]        guest-ping, W in flight
//! client idle-memory SOCKET CONNECTIONS [--client blocking]
//!                                                RSS per idle QMP session
//! ```
//!
//! CLIENT is `ours` (the async API; W tasks), `blocking` (the blocking API;
//! W threads), `raw`, `tokio-raw` (the raw loop on a tokio socket) or
//! `tokio-mux` (a bare session shared by W tasks, see [`tokio_mux`]).
//!
//! Without a subcommand (as `cargo bench -p qapi-client` runs it) it does a
//! short run of ours against raw on the fake server, in one process.
//!
//! "Raw" is the least a client can do: a blocking std socket that writes
//! the least a request can be, the bytes our client writes
//! (`{"execute":"query-status","id":N}`, ids counting up from 0 in each
//! session, no newline after the closing brace), and reads until the
//! reply's line ends (QEMU and qemu-ga end every reply with `\r\n`);
//! pipelined, it keeps W requests in flight, writes each batch of requests
//! in one call and counts reply lines, without looking at the JSON.
//! "Ours" runs on a tokio runtime, multi-threaded by default like
//! `#[tokio::main]` (`--runtime current` for a current-thread one), in a
//! spawned task; pipelined, W tasks share one session, each calling in a
//! loop.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use qapi_client::{Qga, Qmp};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Parser)]
#[command(about = "qapi-client benchmarks (see bench/client.sh)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Sub {
    /// Serves QMP on a Unix socket until killed: a greeting, then an answer
    /// to every request (`query-status` like QEMU's), read as a JSON stream.
    FakeServer { socket: PathBuf },
    /// `query-status` round trips to a QMP server.
    Qmp(Run),
    /// `guest-ping` round trips to a guest agent.
    Qga(Run),
    /// Opens CONNECTIONS negotiated QMP sessions (async ones on one
    /// runtime, or blocking ones) and prints the growth of this process's
    /// resident set per session.
    IdleMemory {
        socket: PathBuf,
        connections: usize,
        #[arg(long, value_enum, default_value_t = Flavor::Multi)]
        runtime: Flavor,
        /// `ours` (the async API) or `blocking`.
        #[arg(long, value_enum, default_value_t = Client::Ours)]
        client: Client,
    },
}

#[derive(clap::Args)]
struct Run {
    socket: PathBuf,
    client: Client,
    /// Commands to time (after a short warm-up).
    count: usize,
    /// Requests in flight at once; 1 is sequential.
    #[arg(long, default_value_t = 1)]
    window: usize,
    #[arg(long, value_enum, default_value_t = Flavor::Multi)]
    runtime: Flavor,
}

#[derive(Clone, Copy, ValueEnum)]
enum Client {
    Ours,
    Raw,
    /// The raw loop waiting in `poll` for input before each read, so that
    /// it is not woken when the peer reads its request (a blocked `recv`
    /// on a Unix socket is), as our client is not (sequential only).
    RawPoll,
    /// The raw loop on tokio's `UnixStream` in one task (which, unlike our
    /// client, is also woken each time the peer reads a request).
    TokioRaw,
    /// Our blocking client (`qapi_client::blocking`), called from this
    /// thread (sequential only).
    Blocking,
    /// The bare bones of a session shared by W tasks, on tokio's
    /// `UnixStream` (see [`tokio_mux`]).
    TokioMux,
    /// Our async client with the W calls in flight made by one task (as
    /// `join_all` or `FuturesUnordered` would), not by W tasks.
    OursOneTask,
}

#[derive(Clone, Copy, ValueEnum)]
enum Flavor {
    /// Multi-threaded, one worker per CPU (what `#[tokio::main]` gives).
    Multi,
    /// Current-thread.
    Current,
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Qmp,
    Qga,
}

const WARM_UP: usize = 200;

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        None => quick_run(),
        Some(Sub::FakeServer { socket }) => fake_server(&socket),
        Some(Sub::Qmp(run)) => measure(Protocol::Qmp, &run).map(print_rate),
        Some(Sub::Qga(run)) => measure(Protocol::Qga, &run).map(print_rate),
        Some(Sub::IdleMemory {
            socket,
            connections,
            runtime,
            client,
        }) => match client {
            Client::Ours => idle_memory(&socket, connections, runtime),
            Client::Blocking => idle_memory_blocking(&socket, connections),
            _ => Err("idle-memory measures ours or blocking".into()),
        }
        .map(|kib| {
            println!("kib_per_connection={kib:.2}");
        }),
    };
    if let Err(error) = result {
        eprintln!("client bench: {error}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn print_rate(rate: f64) {
    println!("commands_per_second={rate:.1}");
}

fn runtime(flavor: Flavor) -> Result<tokio::runtime::Runtime> {
    let mut builder = match flavor {
        Flavor::Multi => tokio::runtime::Builder::new_multi_thread(),
        Flavor::Current => tokio::runtime::Builder::new_current_thread(),
    };
    Ok(builder.enable_all().build()?)
}

/// Commands per second for one client on one server.
fn measure(protocol: Protocol, run: &Run) -> Result<f64> {
    let window = run.window.max(1);
    match run.client {
        Client::Raw => raw(protocol, &run.socket, run.count, window, Wait::InRecv),
        Client::RawPoll => raw(protocol, &run.socket, run.count, 1, Wait::InPoll),
        Client::TokioRaw => {
            let socket = run.socket.clone();
            let count = run.count;
            let rt = runtime(run.runtime)?;
            rt.block_on(
                async move { tokio::spawn(tokio_raw(protocol, socket, count, window)).await? },
            )
        }
        Client::Blocking => blocking(protocol, &run.socket, run.count, window),
        Client::TokioMux => {
            let socket = run.socket.clone();
            let count = run.count;
            let rt = runtime(run.runtime)?;
            rt.block_on(
                async move { tokio::spawn(tokio_mux(protocol, socket, count, window)).await? },
            )
        }
        Client::OursOneTask => {
            let socket = run.socket.clone();
            let count = run.count;
            let rt = runtime(run.runtime)?;
            rt.block_on(async move {
                tokio::spawn(ours_one_task(protocol, socket, count, window)).await?
            })
        }
        Client::Ours => {
            let socket = run.socket.clone();
            let count = run.count;
            let rt = runtime(run.runtime)?;
            // Spawned, so that it runs on a worker like an application's
            // tasks, not on the thread that blocks on it.
            rt.block_on(async move { tokio::spawn(ours(protocol, socket, count, window)).await? })
        }
    }
}

async fn ours(protocol: Protocol, socket: PathBuf, count: usize, window: usize) -> Result<f64> {
    #[derive(Clone)]
    enum Session {
        Qmp(Qmp),
        Qga(Qga),
    }
    impl Session {
        async fn call(&self) -> qapi_client::Result<()> {
            match self {
                Session::Qmp(qmp) => {
                    let status = qmp.execute(&qapi_types::commands::QueryStatus {}).await?;
                    std::hint::black_box(status);
                }
                Session::Qga(qga) => {
                    qga.execute(&qga_types::commands::GuestPing {}).await?;
                }
            }
            Ok(())
        }
    }
    let session = match protocol {
        Protocol::Qmp => Session::Qmp(Qmp::connect_unix(&socket).await?),
        Protocol::Qga => Session::Qga(Qga::connect_unix(&socket).await?),
    };
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
                Ok::<(), qapi_client::Error>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
    }
    Ok((per_task * window) as f64 / started.elapsed().as_secs_f64())
}

/// `count` calls with `window` in flight, all made by this task: each slot
/// holds one call and starts the next when it ends.
async fn ours_one_task(
    protocol: Protocol,
    socket: PathBuf,
    count: usize,
    window: usize,
) -> Result<f64> {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;
    type Call = Pin<Box<dyn Future<Output = qapi_client::Result<()>> + Send>>;
    let start: Box<dyn Fn() -> Call + Send + Sync> = match protocol {
        Protocol::Qmp => {
            let qmp = Qmp::connect_unix(&socket).await?;
            Box::new(move || {
                let qmp = qmp.clone();
                Box::pin(async move {
                    let status = qmp.execute(&qapi_types::commands::QueryStatus {}).await?;
                    std::hint::black_box(status);
                    Ok(())
                })
            })
        }
        Protocol::Qga => {
            let qga = Qga::connect_unix(&socket).await?;
            Box::new(move || {
                let qga = qga.clone();
                Box::pin(async move {
                    qga.execute(&qga_types::commands::GuestPing {}).await?;
                    Ok(())
                })
            })
        }
    };
    for _ in 0..WARM_UP {
        start().await?;
    }
    let count = count.max(window);
    let started = Instant::now();
    let mut slots: Vec<Call> = (0..window).map(|_| start()).collect();
    let (mut begun, mut done) = (window, 0);
    std::future::poll_fn(|cx| {
        let mut index = 0;
        while index < slots.len() {
            match slots[index].as_mut().poll(cx) {
                Poll::Pending => index += 1,
                Poll::Ready(result) => {
                    result?;
                    done += 1;
                    if begun < count {
                        begun += 1;
                        slots[index] = start();
                    } else {
                        drop(slots.swap_remove(index));
                    }
                }
            }
        }
        if slots.is_empty() {
            Poll::Ready(Ok::<(), qapi_client::Error>(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// Our blocking client, one call at a time from this thread, or from
/// `threads` threads sharing the session.
fn blocking(protocol: Protocol, socket: &Path, count: usize, threads: usize) -> Result<f64> {
    #[derive(Clone)]
    enum Session {
        Qmp(qapi_client::blocking::Qmp),
        Qga(qapi_client::blocking::Qga),
    }
    let session = match protocol {
        Protocol::Qmp => Session::Qmp(qapi_client::blocking::Qmp::connect_unix(socket)?),
        Protocol::Qga => Session::Qga(qapi_client::blocking::Qga::connect_unix(socket)?),
    };
    let call = |session: &Session| -> qapi_client::Result<()> {
        match session {
            Session::Qmp(qmp) => {
                let status = qmp.execute(&qapi_types::commands::QueryStatus {})?;
                std::hint::black_box(status);
            }
            Session::Qga(qga) => {
                qga.execute(&qga_types::commands::GuestPing {})?;
            }
        }
        Ok(())
    };
    for _ in 0..WARM_UP {
        call(&session)?;
    }
    let per_thread = count.div_ceil(threads);
    let started = Instant::now();
    if threads == 1 {
        for _ in 0..per_thread {
            call(&session)?;
        }
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let session = session.clone();
                    scope.spawn(move || (0..per_thread).try_for_each(|_| call(&session)))
                })
                .collect();
            workers.into_iter().try_for_each(|worker| -> Result<()> {
                worker.join().map_err(|_| "a thread panicked")??;
                Ok(())
            })
        })?;
    }
    Ok((per_thread * threads) as f64 / started.elapsed().as_secs_f64())
}

/// How the raw loop waits for a reply.
#[derive(Clone, Copy, PartialEq)]
enum Wait {
    /// Blocked in `recv`, which on a Unix socket also wakes when the peer
    /// reads what this side wrote.
    InRecv,
    /// In `poll` for input, which does not (sequential loops only).
    InPoll,
}

/// The raw loop: request bytes as our client writes them (see
/// [`Requests`]), reply lines counted.
fn raw(protocol: Protocol, socket: &Path, count: usize, window: usize, wait: Wait) -> Result<f64> {
    let mut stream = UnixStream::connect(socket)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut requests = Requests::new(protocol);
    if protocol == Protocol::Qmp {
        read_lines(&mut stream, &mut buf, 1)?; // greeting
        stream.write_all(&requests.capabilities())?;
        read_lines(&mut stream, &mut buf, 1)?;
    }
    let mut out = Vec::with_capacity(64 * window);
    for _ in 0..WARM_UP {
        out.clear();
        requests.push(&mut out);
        stream.write_all(&out)?;
        read_lines(&mut stream, &mut buf, 1)?;
    }
    let started = Instant::now();
    if window == 1 {
        for _ in 0..count {
            out.clear();
            requests.push(&mut out);
            stream.write_all(&out)?;
            if wait == Wait::InPoll {
                wait_in_poll(&stream)?;
            }
            read_lines(&mut stream, &mut buf, 1)?;
        }
    } else {
        let mut pipeline = Pipeline::new(count, window);
        while !pipeline.done() {
            pipeline.top_up(&mut requests, &mut out);
            if !out.is_empty() {
                stream.write_all(&out)?;
            }
            let n = stream.read(&mut buf)?;
            pipeline.received(&buf[..n])?;
        }
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The raw loops' requests, the least a request can be and the bytes our
/// client writes: `{"execute":"query-status","id":N}`, with ids counting
/// up from 0 in each session (a QMP session's `qmp_capabilities` takes
/// id 0) and nothing after the closing brace (QEMU reads a request one
/// byte per `recvmsg`, so each byte costs it a system call).
struct Requests {
    name: &'static str,
    next_id: u64,
}

impl Requests {
    fn new(protocol: Protocol) -> Requests {
        let name = match protocol {
            Protocol::Qmp => "query-status",
            Protocol::Qga => "guest-ping",
        };
        Requests { name, next_id: 0 }
    }

    /// The QMP negotiation, `{"execute":"qmp_capabilities","id":0}`; only
    /// as a session's first request.
    fn capabilities(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        push_request(&mut out, "qmp_capabilities", self.take_id());
        out
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// Appends the next request.
    fn push(&mut self, out: &mut Vec<u8>) {
        let id = self.take_id();
        push_request(out, self.name, id);
    }
}

/// Appends request `id` for command `name`, as our client writes it: no
/// spaces, and nothing after the closing brace.
fn push_request(out: &mut Vec<u8>, name: &str, id: u64) {
    write!(out, "{{\"execute\":\"{name}\",\"id\":{id}}}").expect("write to a Vec");
}

/// A raw pipelined loop's window: tops it up to `window` requests in
/// flight, counts reply lines.
struct Pipeline {
    count: usize,
    window: usize,
    sent: usize,
    received: usize,
}

impl Pipeline {
    fn new(count: usize, window: usize) -> Pipeline {
        Pipeline {
            count,
            window,
            sent: 0,
            received: 0,
        }
    }

    fn done(&self) -> bool {
        self.received >= self.count
    }

    /// Replaces `out` with the requests that fill the window again.
    fn top_up(&mut self, requests: &mut Requests, out: &mut Vec<u8>) {
        out.clear();
        while self.sent < self.count && self.sent - self.received < self.window {
            requests.push(out);
            self.sent += 1;
        }
    }

    /// Counts the replies in what one read brought.
    fn received(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Err("server closed the connection".into());
        }
        self.received += bytes.iter().filter(|&&b| b == b'\n').count();
        Ok(())
    }
}

async fn tokio_raw(
    protocol: Protocol,
    socket: PathBuf,
    count: usize,
    window: usize,
) -> Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut requests = Requests::new(protocol);
    tokio_handshake(protocol, &mut stream, &mut buf, &mut requests).await?;
    let mut out = Vec::new();
    if window > 1 {
        // As the raw pipelined loop.
        let mut pipeline = Pipeline::new(count, window);
        let started = Instant::now();
        while !pipeline.done() {
            pipeline.top_up(&mut requests, &mut out);
            if !out.is_empty() {
                stream.write_all(&out).await?;
            }
            let n = stream.read(&mut buf).await?;
            pipeline.received(&buf[..n])?;
        }
        return Ok(count as f64 / started.elapsed().as_secs_f64());
    }
    let mut started = Instant::now();
    for i in 0..WARM_UP + count {
        if i == WARM_UP {
            started = Instant::now();
        }
        out.clear();
        requests.push(&mut out);
        stream.write_all(&out).await?;
        read_line(&mut stream, &mut buf).await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Reads until a reply line has ended (nothing else is in flight).
async fn read_line(stream: &mut tokio::net::UnixStream, buf: &mut [u8]) -> Result<()> {
    use tokio::io::AsyncReadExt;
    loop {
        let n = stream.read(buf).await?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        if buf[..n].contains(&b'\n') {
            return Ok(());
        }
    }
}

/// Negotiates a QMP session (a guest agent needs nothing), with the
/// first of `requests`' ids.
async fn tokio_handshake(
    protocol: Protocol,
    stream: &mut tokio::net::UnixStream,
    buf: &mut [u8],
    requests: &mut Requests,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    if protocol == Protocol::Qmp {
        read_line(stream, buf).await?;
        stream.write_all(&requests.capabilities()).await?;
        read_line(stream, buf).await?;
    }
    Ok(())
}

/// The least a session shared by `window` tasks can do on tokio, the
/// shape of our async client without its checks: each call registers a
/// oneshot under its id, queues its request for a writer task and waits;
/// a reader task splits the reply lines and hands each to the call its
/// trailing id names.  No JSON is parsed, nothing times out, nothing but
/// `{..., "id": N}` lines is expected.  So it shows what the shape of a
/// client whose calls come from many tasks through one cloneable handle
/// costs on tokio's `UnixStream`, as `tokio-raw` does for one loop.
async fn tokio_mux(
    protocol: Protocol,
    socket: PathBuf,
    count: usize,
    window: usize,
) -> Result<f64> {
    use std::collections::HashMap;
    use std::hash::BuildHasherDefault;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{oneshot, Notify};

    /// Ids are consecutive: multiplying spreads them well enough.
    #[derive(Default)]
    struct IdHash(u64);
    impl std::hash::Hasher for IdHash {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, _: &[u8]) {
            unreachable!("only u64 keys")
        }
        fn write_u64(&mut self, id: u64) {
            self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    type Waiting = HashMap<u64, oneshot::Sender<()>, BuildHasherDefault<IdHash>>;
    struct Mux {
        name: &'static str,
        next_id: AtomicU64,
        /// `None` once the reader or the writer has stopped.
        waiting: Mutex<Option<Waiting>>,
        queued: Mutex<Vec<u8>>,
        queued_some: Notify,
    }
    impl Mux {
        async fn call(&self) -> Result<()> {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (sender, receiver) = oneshot::channel();
            self.waiting
                .lock()
                .unwrap()
                .as_mut()
                .ok_or("the connection failed")?
                .insert(id, sender);
            push_request(&mut self.queued.lock().unwrap(), self.name, id);
            self.queued_some.notify_one();
            receiver.await.map_err(|_| "the connection failed".into())
        }
        /// Fails every call, waiting or to come.
        fn close(&self) {
            self.waiting.lock().unwrap().take();
        }
    }
    fn trailing_id(line: &[u8]) -> Option<u64> {
        let line = line
            .strip_suffix(b"\r")
            .unwrap_or(line)
            .strip_suffix(b"}")?;
        let start = line.iter().rposition(|b| !b.is_ascii_digit())? + 1;
        std::str::from_utf8(&line[start..]).ok()?.parse().ok()
    }

    let mut stream = tokio::net::UnixStream::connect(socket).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut requests = Requests::new(protocol);
    tokio_handshake(protocol, &mut stream, &mut buf, &mut requests).await?;
    let (mut read_half, mut write_half) = stream.into_split();
    let mux = Arc::new(Mux {
        name: requests.name,
        next_id: AtomicU64::new(requests.next_id),
        waiting: Mutex::new(Some(Waiting::default())),
        queued: Mutex::default(),
        queued_some: Notify::new(),
    });
    let writer = tokio::spawn({
        let mux = Arc::clone(&mux);
        async move {
            let mut out = Vec::new();
            loop {
                mux.queued_some.notified().await;
                std::mem::swap(&mut out, &mut mux.queued.lock().unwrap());
                if write_half.write_all(&out).await.is_err() {
                    break mux.close();
                }
                out.clear();
            }
        }
    });
    let reader = tokio::spawn({
        let mux = Arc::clone(&mux);
        async move {
            let mut filled = 0;
            while let Ok(n @ 1..) = read_half.read(&mut buf[filled..]).await {
                filled += n;
                let mut start = 0;
                while let Some(len) = buf[start..filled].iter().position(|&b| b == b'\n') {
                    let Some(id) = trailing_id(&buf[start..start + len]) else {
                        return mux.close();
                    };
                    let sender = mux
                        .waiting
                        .lock()
                        .unwrap()
                        .as_mut()
                        .and_then(|w| w.remove(&id));
                    if let Some(sender) = sender {
                        let _ = sender.send(());
                    }
                    start += len + 1;
                }
                buf.copy_within(start..filled, 0);
                filled -= start;
            }
            mux.close();
        }
    });
    for _ in 0..WARM_UP {
        mux.call().await?;
    }
    let per_task = count.div_ceil(window);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..window {
        let mux = Arc::clone(&mux);
        tasks.spawn(async move {
            for _ in 0..per_task {
                mux.call().await?;
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?.map_err(|e| e.to_string())?;
    }
    let rate = (per_task * window) as f64 / started.elapsed().as_secs_f64();
    writer.abort();
    reader.abort();
    Ok(rate)
}

/// Waits in `poll` until `stream` has input.
fn wait_in_poll(stream: &UnixStream) -> Result<()> {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(stream, PollFlags::IN)];
    rustix::event::poll(&mut fds, None)?;
    Ok(())
}

/// Reads until `lines` newlines have arrived (nothing else is in flight).
fn read_lines(stream: &mut UnixStream, buf: &mut [u8], lines: usize) -> Result<()> {
    let mut seen = 0;
    while seen < lines {
        let n = stream.read(buf)?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        seen += buf[..n].iter().filter(|&&b| b == b'\n').count();
    }
    Ok(())
}

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

/// (RSS with `connections` idle negotiated sessions − RSS before) per
/// session, in KiB.  One session is opened and dropped first so that
/// one-time costs (runtime threads, lazy statics) are not counted.
fn idle_memory(socket: &Path, connections: usize, flavor: Flavor) -> Result<f64> {
    let rt = runtime(flavor)?;
    let socket = socket.to_owned();
    rt.block_on(async move {
        tokio::spawn(async move {
            let warm = Qmp::connect_unix(&socket).await?;
            warm.execute(&qapi_types::commands::QueryStatus {}).await?;
            drop(warm);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let before = rss_kib()?;
            let mut sessions = Vec::with_capacity(connections);
            for _ in 0..connections {
                sessions.push(Qmp::connect_unix(&socket).await?);
            }
            // Let every reader task settle into its idle read.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = rss_kib()?;
            for session in &sessions {
                if session.is_closed() {
                    return Err("a session closed while idle".into());
                }
            }
            eprintln!(
                "idle-memory: VmRSS {before} KiB before, {after} KiB with {connections} sessions"
            );
            Ok((after.saturating_sub(before)) as f64 / connections as f64)
        })
        .await?
    })
}

/// [`idle_memory`] for blocking sessions, opened from this thread
/// (outside any runtime, as a blocking program would).  Each makes one
/// call before it idles: a direct call, which hands the socket to this
/// thread and back (async sessions are the same with or without one).
fn idle_memory_blocking(socket: &Path, connections: usize) -> Result<f64> {
    use qapi_client::blocking;
    let warm = blocking::Qmp::connect_unix(socket)?;
    warm.execute(&qapi_types::commands::QueryStatus {})?;
    drop(warm);
    std::thread::sleep(Duration::from_millis(100));
    let before = rss_kib()?;
    let mut sessions = Vec::with_capacity(connections);
    for _ in 0..connections {
        let session = blocking::Qmp::connect_unix(socket)?;
        session.execute(&qapi_types::commands::QueryStatus {})?;
        sessions.push(session);
    }
    // Let every reader task settle into its idle read.
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib()?;
    if sessions.iter().any(blocking::Qmp::is_closed) {
        return Err("a session closed while idle".into());
    }
    eprintln!(
        "idle-memory: VmRSS {before} KiB before, {after} KiB with {connections} blocking sessions"
    );
    Ok((after.saturating_sub(before)) as f64 / connections as f64)
}

// ---- The fake QMP server ------------------------------------------------

const GREETING: &[u8] =
    b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \
\"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n";

/// Serves until killed: one thread per connection (small stacks, so a
/// thousand idle clients cost little).
fn fake_server(socket: &Path) -> Result<()> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    serve(listener)
}

fn serve(listener: UnixListener) -> Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = serve_connection(stream);
            })?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct FakeRequest<'a> {
    #[serde(borrow, default)]
    execute: Option<&'a str>,
    #[serde(borrow, default, rename = "exec-oob")]
    exec_oob: Option<&'a str>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

/// Requests are found by JSON structure, not by lines (`qemu.qmp` ends
/// none with a newline); all replies to one read go out in one write.
fn serve_connection(mut stream: UnixStream) -> std::io::Result<()> {
    stream.write_all(GREETING)?;
    let mut chunk = [0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let mut scan = Scan::default();
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&chunk[..n]);
        let mut consumed = 0;
        while let Some(message) = scan.next(&pending) {
            answer(&pending[message.clone()], &mut out);
            consumed = message.end;
        }
        if scan.start.is_none() {
            consumed = pending.len();
        }
        pending.drain(..consumed);
        scan.rebase(consumed);
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
    }
}

fn answer(request: &[u8], out: &mut Vec<u8>) {
    let Ok(request) = serde_json::from_slice::<FakeRequest>(request) else {
        out.extend_from_slice(
            b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n",
        );
        return;
    };
    let reply: &[u8] = match request.execute.or(request.exec_oob) {
        Some("query-status") => b"{\"return\": {\"status\": \"running\", \"running\": true}",
        Some("qmp_capabilities") => b"{\"return\": {}",
        _ => b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"not in the fake server\"}",
    };
    out.extend_from_slice(reply);
    if let Some(id) = request.id {
        out.extend_from_slice(b", \"id\": ");
        out.extend_from_slice(id.get().as_bytes());
    }
    out.extend_from_slice(b"}\r\n");
}

/// Incremental JSON message finder over a buffer that is drained from the
/// front (offsets move with [`Scan::rebase`]).
#[derive(Default)]
struct Scan {
    scanned: usize,
    start: Option<usize>,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Scan {
    fn next(&mut self, buf: &[u8]) -> Option<std::ops::Range<usize>> {
        while self.scanned < buf.len() {
            let byte = buf[self.scanned];
            self.scanned += 1;
            let Some(start) = self.start else {
                if matches!(byte, b'{' | b'[') {
                    self.start = Some(self.scanned - 1);
                    self.depth = 1;
                }
                continue;
            };
            if self.in_string {
                match byte {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.start = None;
                        return Some(start..self.scanned);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn rebase(&mut self, consumed: usize) {
        self.scanned -= consumed;
        if let Some(start) = &mut self.start {
            *start -= consumed;
        }
    }
}

// ---- Without arguments: a short self-contained run -------------------------

fn quick_run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&socket)?;
    std::thread::spawn(move || serve(listener));
    println!("qapi-client against raw std-socket loop, fake QMP server in this process");
    println!("(unpinned, so noisy; the full comparison, with real QEMU, qemu-ga and");
    println!("qemu.qmp, all on one CPU: bench/client.sh)");
    for window in [1, 32] {
        let run = |client| Run {
            socket: socket.clone(),
            client,
            count: 20_000,
            window,
            runtime: Flavor::Multi,
        };
        let ours = measure(Protocol::Qmp, &run(Client::Ours))?;
        let raw = measure(Protocol::Qmp, &run(Client::Raw))?;
        println!(
            "query-status, {window:>2} in flight: ours {ours:>8.0}/s, raw {raw:>8.0}/s, {:.2}x",
            ours / raw
        );
    }
    let kib = idle_memory(&socket, 200, Flavor::Multi)?;
    println!(
        "idle session: {kib:.1} KiB each (200 sessions; counts the fake server's threads, \
         which bench/client.sh runs in another process)"
    );
    Ok(())
}
