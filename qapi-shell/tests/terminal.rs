//! The interactive shell driven as a person drives it: in a real terminal
//! (tmux: `send-keys`, then `capture-pane`), against real QEMU 10.0 (and
//! the newest release) and a real qemu-ga.  Without tmux these tests skip
//! with a SKIPPED line, or fail under `QAPI_TEST_REQUIRE_QEMU=1` (`.ci/run`
//! installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::SHELL;

/// A tmux server of its own (`-L`), killed on drop.
struct Terminal {
    server: String,
}

impl Terminal {
    /// Runs `command` in a new 120×50 terminal; `None` (skip) without tmux.
    fn start(test: &str, command: &str) -> Option<Terminal> {
        let tmux = common::require("QAPI_TEST_TMUX", "tmux", test)?;
        assert!(tmux.is_file());
        // A server of its own each time: one just killed may still be
        // going away.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let server = format!("qapi-shell-{}-{n}-{test}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "-L",
                &server,
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "50",
                command,
            ])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Some(Terminal { server })
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.server])
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types keys (tmux key names such as `Tab`, `Enter`, `C-d`, `Up`).
    fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.tmux(&["send-keys", "-t", "0", key]);
            // A person does not type faster than the screen redraws.
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// The screen and its scrollback.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "0", "-S", "-500"])
    }

    /// Waits until the screen shows `text`; panics with the screen after
    /// 10 s.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal did not show {text:?} in 10 s; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the last line is the empty prompt: keys typed before
    /// the shell reads them would meet the terminal in its cooked mode
    /// (where Ctrl-D, say, is the terminal's own end-of-file).
    fn wait_for_prompt(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.last_line() != "(qapi)" {
            assert!(
                Instant::now() < deadline,
                "no prompt after 10 s; the terminal shows:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last line of the screen that is not empty.
    fn last_line(&self) -> String {
        self.screen()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.server, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

fn shell_command(history: &Path, args: &str) -> String {
    format!(
        "env QAPI_SHELL_HISTORY={} {SHELL} {args}; echo shell-exited=$?; sleep 60",
        history.display()
    )
}

/// QEMU with two QMP monitors: the shell takes the first, the test the
/// second (to act on QEMU while the shell sits at its prompt).
fn qemu_with_two_monitors(binary: &Path, dir: &Path) -> (qapi_testkit::Qemu, PathBuf) {
    let second = dir.join("second.sock");
    let qemu = common::qemu_with(
        binary,
        &[
            "-qmp",
            &format!("unix:{},server=on,wait=off", second.display()),
        ],
    );
    common::wait_for_socket(&second);
    (qemu, second)
}

/// Sends `signal` (`-STOP`, `-CONT`) to process `pid`.
fn signal(pid: &str, signal: &str) {
    let status = Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Sends one command on a QMP socket of its own and returns the reply line.
fn qmp_once(socket: &Path, command: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap(); // greeting
    let mut writer = stream;
    writer
        .write_all(b"{\"execute\":\"qmp_capabilities\"}")
        .unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    writer
        .write_all(format!("{{\"execute\":\"{command}\"}}").as_bytes())
        .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.contains("\"return\"") || line.contains("\"error\"") {
            return line;
        }
    }
}

#[test]
fn a_person_at_the_shell_against_real_qemu() {
    let test = "a_person_at_the_shell_against_real_qemu";
    let Some(binary) = common::require("QAPI_TEST_QEMU", "qemu-system-x86_64", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (qemu, second) = qemu_with_two_monitors(&binary, dir.path());
    let history = dir.path().join("history");
    let command = shell_command(&history, qemu.qmp_socket().to_str().unwrap());
    let Some(term) = Terminal::start(test, &command) else {
        return;
    };
    term.wait_for_prompt();

    // Command names: `query-sta` is also query-stats and
    // query-stats-schemas, so Tab goes as far as they agree, a second Tab
    // lists them, and one more letter settles it.
    term.keys(&["query-sta", "Tab"]);
    assert_eq!(term.last_line(), "(qapi) query-stat");
    term.keys(&["Tab"]);
    term.wait_for("query-stats-schemas  query-status");
    term.keys(&["u", "Tab"]);
    assert_eq!(term.last_line(), "(qapi) query-status");
    term.keys(&["Enter"]);
    term.wait_for("\"status\": \"running\"");

    // Enum values, then the members of the branch they chose.
    term.keys(&["blockdev-add driver=nul", "Tab"]);
    assert_eq!(term.last_line(), "(qapi) blockdev-add driver=null-");
    term.keys(&["c", "Tab"]);
    assert_eq!(term.last_line(), "(qapi) blockdev-add driver=null-co");
    term.keys(&["Tab", "Tab"]);
    let screen = term.wait_for("read-zeroes");
    let listed = screen
        .rsplit("(qapi) blockdev-add driver=null-co")
        .nth(1)
        .unwrap_or_default();
    assert!(
        listed.contains("size") && listed.contains("node-name") && !listed.contains("filename"),
        "the null-co branch's members and the common ones, not other branches':\n{listed}"
    );

    // A bad argument is refused before anything is sent.
    term.keys(&["node-name=bad0 size=big", "Enter"]);
    term.wait_for("blockdev-add: not sent: size: expected an integer, got string \"big\"");
    assert_eq!(
        qmp_once(&second, "query-named-block-nodes").trim(),
        "{\"return\": []}"
    );

    // An event shows while the shell waits at its prompt, with no key
    // pressed: another monitor stops the VM.
    let before = term.screen();
    assert!(!before.contains("event STOP"));
    qmp_once(&second, "stop");
    term.wait_for("event STOP");
    assert!(
        term.last_line().starts_with("(qapi)"),
        "the prompt is back below the event"
    );

    // qmp-shell's transaction mode: actions typed by their branch, sent
    // together.
    term.keys(&["blockdev-add driver=null-co node-name=n0", "Enter"]);
    term.wait_for_prompt();
    term.keys(&["transaction(", "Enter"]);
    term.wait_for("one action a line");
    // Tab completes action names (`abort` is no command) and the action's
    // own members there.
    term.keys(&["ab", "Tab"]);
    term.wait_for("(qapi transaction) abort");
    term.keys(&["C-u", "block-dirty-bitmap-a", "Tab"]);
    term.wait_for("(qapi transaction) block-dirty-bitmap-add");
    term.keys(&["node=n0 name=b0 granu", "Tab"]);
    term.wait_for("(qapi transaction) block-dirty-bitmap-add node=n0 name=b0 granularity=");
    term.keys(&["65536", "Enter"]);
    term.keys(&["block-dirty-bitmap-add node=n0 name=b1", "Enter"]);
    term.keys(&[")", "Enter"]);
    term.wait_for_prompt();
    let nodes = qmp_once(&second, "query-named-block-nodes");
    assert!(
        nodes.contains("\"name\": \"b0\"")
            && nodes.contains("\"granularity\": 65536")
            && nodes.contains("\"name\": \"b1\""),
        "{nodes}"
    );

    // Help from the schema's documentation.
    term.keys(&["help blockdev-add", "Enter"]);
    term.wait_for("Creates a new block device.");
    term.wait_for("node-name: string (optional) — the node name of the new node");

    // Long JSON over several lines: an open bracket continues the line.
    term.wait_for_prompt();
    term.keys(&["blockdev-add {\"driver\": \"null-co\",", "Enter"]);
    term.keys(&["\"node-name\": \"n9\"}", "Enter"]);
    term.wait_for_prompt();
    assert!(qmp_once(&second, "query-named-block-nodes").contains("\"node-name\": \"n9\""));

    // Ctrl-C drops the line being typed.
    term.keys(&["system_reset", "C-c"]);
    term.wait_for_prompt();
    term.keys(&["query-name", "Enter"]);
    term.wait_for_prompt();
    let screen = term.screen();
    assert!(!screen.contains("system_resetquery-name"), "{screen}");

    // Ctrl-C while a call waits gives up on it: QEMU is frozen (SIGSTOP)
    // so that `query-status` cannot be answered.  Its late reply, once
    // QEMU runs again, must not be taken for the next command's.
    term.wait_for_prompt();
    let pid = qemu.pid().to_string();
    signal(&pid, "-STOP");
    term.keys(&["query-status", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    term.keys(&["C-c"]);
    term.wait_for("cancelled: the command may still run");
    term.wait_for_prompt();
    signal(&pid, "-CONT");
    term.keys(&["query-name", "Enter"]);
    term.wait_for_prompt();
    let screen = term.screen();
    let after = &screen[screen.rfind("(qapi) query-name").unwrap()..];
    assert!(
        after.contains("{}") && !after.contains("running"),
        "{after}"
    );

    // Colour on a terminal: errors in red (ESC[31m).
    term.keys(&["query-nothing", "Enter"]);
    term.wait_for("no command 'query-nothing'");
    let coloured = term.tmux(&["capture-pane", "-e", "-p", "-t", "0"]);
    assert!(
        coloured.contains("\u{1b}[31mno command 'query-nothing'"),
        "{coloured}"
    );

    // Ctrl-D leaves; history survives into the next session.
    term.wait_for_prompt();
    term.keys(&["C-d"]);
    term.wait_for("shell-exited=0");
    drop(term);
    let Some(term) = Terminal::start(test, &command) else {
        return;
    };
    term.wait_for_prompt();
    term.keys(&["Up"]);
    assert_eq!(term.last_line(), "(qapi) query-nothing");

    // QEMU goes away: the shell says so at once, and leaves with status 2.
    term.keys(&["C-u"]);
    drop(qemu);
    term.wait_for("qapi-shell: QEMU closed the connection; press Enter to leave");
    term.keys(&["Enter"]);
    term.wait_for("shell-exited=2");
}

#[test]
fn a_person_at_the_shell_against_real_qemu_ga() {
    let test = "a_person_at_the_shell_against_real_qemu_ga";
    let Some(binary) = common::require("QAPI_TEST_QEMU_GA", "qemu-ga", test) else {
        return;
    };
    let agent = common::qemu_ga(&binary);
    let history = agent.dir().join("history");
    let command = shell_command(&history, &format!("--qga {}", agent.socket().display()));
    let Some(term) = Terminal::start(test, &command) else {
        return;
    };
    term.wait_for_prompt();
    term.keys(&["guest-pi", "Tab"]);
    assert_eq!(term.last_line(), "(qapi) guest-ping");
    term.keys(&["Enter"]);
    let screen = term.wait_for("{}");
    assert!(!screen.contains("error"), "{screen}");
}

/// QEMU 11.1 has members these bindings (10.2.2) lack; the live schema
/// completes them.
#[test]
fn a_newer_qemus_member_completes_from_its_live_schema() {
    let test = "a_newer_qemus_member_completes_from_its_live_schema";
    let Some(binary) = common::require("QAPI_TEST_QEMU_NEW", "qemu-system-x86_64-new", test) else {
        return;
    };
    let qemu = common::qemu(&binary);
    let history = qemu.dir().join("history");
    let Some(term) = Terminal::start(
        test,
        &shell_command(&history, qemu.qmp_socket().to_str().unwrap()),
    ) else {
        return;
    };
    term.wait_for_prompt();
    term.keys(&["object-add qom-type=iothread id=io0 poll-w", "Tab"]);
    assert_eq!(
        term.last_line(),
        "(qapi) object-add qom-type=iothread id=io0 poll-weight="
    );
    term.keys(&["2", "Enter"]);
    term.wait_for("{}");
    term.keys(&["qom-get path=/objects/io0 property=poll-weight", "Enter"]);
    let screen = term.wait_for("(qapi) qom-get");
    assert!(!screen.contains("not sent"), "{screen}");
}
