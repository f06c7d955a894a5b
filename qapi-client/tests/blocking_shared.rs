//! Blocking sessions share one runtime: fifty of them, opened from fifty
//! threads at once, add one thread to the process (the shared runtime's
//! worker), not one each; they all work, also from many threads at once;
//! they can be dropped, also inside an async runtime, and their sockets
//! close; and sessions opened after all others are gone still work.
//!
//! One test in its own binary, so that no other test's threads blur the
//! count (`Threads:` in `/proc/self/status`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use qapi_client::blocking::Qmp;
use qapi_types::commands as c;
use serde_json::json;
use tokio::io::AsyncWriteExt;

mod common;

const GREETING: &[u8] = br#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 10}, "package": ""}, "capabilities": []}}"#;

const SESSIONS: usize = 50;

/// The threads of this process.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
}

/// Waits up to 5 s for the process to have at most `most` threads.
fn threads_settle(most: usize, what: &str) -> usize {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let now = threads();
        if now <= most {
            return now;
        }
        assert!(Instant::now() < until, "{what}: {now} threads, not {most}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to 5 s for `done`, then asserts it with `what`.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A QMP server on one thread (a current-thread runtime), whatever the
/// number of connections: answers `query-status` and everything else
/// with `{}`, counting the connections open.
fn server(path: &std::path::Path) -> Arc<AtomicUsize> {
    let open = Arc::new(AtomicUsize::new(0));
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let counter = Arc::clone(&open);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let open = Arc::clone(&counter);
                open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut requests = common::wire::Requests::new();
                    let _ = stream.write_all(GREETING).await;
                    let _ = stream.write_all(b"\r\n").await;
                    while let Some(request) = requests.read_async(&mut stream).await {
                        let value = match request["execute"].as_str() {
                            Some("query-status") => json!({"status": "running", "running": true}),
                            _ => json!({}),
                        };
                        let mut reply =
                            serde_json::to_vec(&json!({"return": value, "id": request["id"]}))
                                .unwrap();
                        reply.extend_from_slice(b"\r\n");
                        if stream.write_all(&reply).await.is_err() {
                            break;
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    });
    open
}

fn works(qmp: &Qmp) {
    assert!(qmp.execute(&c::QueryStatus {}).unwrap().running);
    let raw = qmp.execute_raw("query-status", None).unwrap();
    assert_eq!(raw["status"], "running");
}

#[test]
fn many_blocking_sessions_share_one_runtime_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let open = server(&path);
    let before = threads();

    // Opened from many threads at once, as the process's first blocking
    // sessions: the threads race to start the shared runtime.
    let start = Barrier::new(SESSIONS);
    let mut sessions: Vec<Qmp> = std::thread::scope(|scope| {
        let openers: Vec<_> = (0..SESSIONS)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    Qmp::connect_unix(&path).unwrap()
                })
            })
            .collect();
        openers.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(open.load(Ordering::SeqCst), SESSIONS);
    // The openers are gone, and so is any runtime a thread that lost the
    // race started; one worker remains.
    let with = threads_settle(before + 1, "with the sessions open");
    eprintln!("threads: {before} before, {with} with {SESSIONS} blocking sessions");

    // Every session works: from this thread, then from a thread each at
    // once, direct calls and calls through the shared runtime (`block_on`
    // from all those threads at the same time).
    for qmp in &sessions {
        works(qmp);
    }
    std::thread::scope(|scope| {
        for qmp in &sessions {
            scope.spawn(move || {
                for _ in 0..20 {
                    works(qmp);
                }
            });
        }
    });
    // And one session from many threads at once.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let qmp = sessions[0].clone();
            scope.spawn(move || {
                for _ in 0..20 {
                    works(&qmp);
                }
            });
        }
    });

    // Dropped inside async runtimes: no runtime is dropped with them, so
    // tokio has nothing to refuse; their sockets close.
    let in_block_on = sessions.pop().unwrap();
    let events = in_block_on.events();
    let async_runtime = tokio::runtime::Runtime::new().unwrap();
    async_runtime.block_on(async move {
        drop(in_block_on);
        drop(events);
    });
    let in_task = sessions.pop().unwrap();
    async_runtime
        .block_on(async_runtime.spawn(async move { drop(in_task) }))
        .unwrap();
    drop(async_runtime);
    eventually("the sessions dropped in a runtime closed", || {
        open.load(Ordering::SeqCst) == SESSIONS - 2
    });
    for qmp in &sessions {
        works(qmp);
    }

    drop(sessions);
    eventually("every session closed", || open.load(Ordering::SeqCst) == 0);
    threads_settle(before + 1, "with the sessions dropped");

    // The runtime outlives its sessions: a new one starts no thread.
    let later = Qmp::connect_unix(&path).unwrap();
    works(&later);
    assert!(threads() <= before + 1);
    drop(later);
    eventually("the last session closed", || {
        open.load(Ordering::SeqCst) == 0
    });
}
