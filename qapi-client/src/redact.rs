//! What the `TRACE` log shows of a message: the one rule that keeps
//! passwords and secret data out of logs.
//!
//! The engine logs every message it sends and receives at `TRACE` level,
//! through [`Redacted`]: the message is parsed, the values below are
//! replaced by the string `"<redacted>"`, and the result is written as
//! compact JSON (members in name order, as `serde_json` keeps them).  A
//! message that does not parse (junk from a guest agent) is logged as its
//! length alone, never as its bytes.  A leading 0xFF (the guest agent's
//! sync) is not shown.  None of this runs unless `TRACE` is enabled: the
//! call sites pass `%Redacted(bytes)` as a field of `trace!`, which
//! formats its fields only for a subscriber that wants the event.
//!
//! The rule goes by member name, and for requests by command as well.
//! Ids of other objects (`key-secret`, `password-secret`, `cookie-secret`,
//! `proxy-password-secret`, `passwordid`, `tls-creds`, `tls-authz`,
//! `keyid`, `new-secret`, `old-secret`, a `secret_keyring`'s `serial`)
//! are kept: they name where a secret is, not what it is, and they are
//! what one looks for when something does not open.  The members were
//! found by going through QEMU's `qapi/*.json` and `qga/qapi-schema.json`
//! (`schemas/` in the repository) for passwords, secrets, keys, cookies,
//! encoded data and free-form input.
//!
//! # Everywhere, at any depth, in requests, replies and events
//!
//! - `password`: `set_password`, `change-vnc-password`,
//!   `guest-set-user-password` (also when `crypted`: a hash can be
//!   cracked).
//! - `passphrase`: no schema member has this name today; it is here so
//!   that one added later for a LUKS key is hidden from the start.
//! - `cookie`: the HTTP cookie of the `http`/`https` block drivers
//!   (`blockdev-add`, `blockdev-reopen`), often a session credential.
//!   A rocker switch's flow `cookie` (a number, in
//!   `query-rocker-of-dpa-flows`) is hidden too: the rule stays one name.
//! - `buf-b64`: file contents, in `guest-file-write` and the reply to
//!   `guest-file-read`.
//! - `input-data`, `out-data`, `err-data`: a guest process's standard
//!   input (`guest-exec`), output and errors (the reply to
//!   `guest-exec-status`).
//!
//! These names are nowhere else in the schemas, and replies do not name
//! their command, so the names alone decide for replies.
//!
//! # By command, in the request's `arguments`
//!
//! - `object-add`: `data`, the secret of a `secret` object, whatever the
//!   `qom-type` (no other type has a `data` member; a new one would as
//!   likely be sensitive).  A secret's `iv` is kept: an initialisation
//!   vector is not secret, and it is useless without the key `keyid`
//!   names.  A `secret_keyring` has no inline secret (its `serial` is the
//!   kernel key's id).
//! - `qom-set`: `value`, when `property` is `data` (a secret's) or one of
//!   the names above.
//! - `sev-inject-launch-secret`: `secret` (`packet-header` and `gpa` are
//!   kept).
//! - `guest-exec`: the value of each `env` entry (`NAME=<redacted>`, so
//!   the names stay), besides `input-data`.  `path` and `arg` are kept:
//!   without them the log does not say what ran, and a program that takes
//!   a secret on its command line shows it in the guest's process list
//!   anyway.
//! - `human-monitor-command`: `command-line` keeps its first word, the
//!   HMP command, and the rest is replaced (`set_password <redacted>`):
//!   HMP takes secrets in many forms (`set_password`, `change vnc
//!   password`, `object_add secret,…`) and no list of them would be
//!   sure.  An `info …` line is kept whole: it only reads, and its
//!   arguments are what it shows.
//! - `ringbuf-write`: `data`, typed into a guest's serial console (a
//!   login prompt takes passwords there).
//! - `send-key`: `keys`; `input-send-event`: `events`.  Keystrokes sent to
//!   a guest are how automation types passwords at a login prompt.
//!
//! # Replies whose `return` is a bare string
//!
//! Replaced whole: these are the replies of `qom-get` (a `secret`'s
//! `data` reads back this way), `ringbuf-read` (console output) and
//! `human-monitor-command` (HMP output), the only commands of the schemas
//! that return a string.
//!
//! # Kept
//!
//! - Public keys (`guest-ssh-add-authorized-keys`,
//!   `guest-ssh-remove-authorized-keys`, the reply to
//!   `guest-ssh-get-authorized-keys`): public by design, and which key
//!   was given access is what an audit of the log looks for.
//! - Usernames, TLS and PSK settings (the keys themselves live in files
//!   QEMU reads), SEV certificates and measurements, `query-vnc` and
//!   `query-spice` (they report the kind of authentication, never a
//!   password).
//! - Strings are not searched inside: a URL with a password in it
//!   (`https://user:password@host/`) or a `json:{…}` file name is shown as
//!   it is.  QEMU's drivers take credentials as secret objects
//!   (`password-secret`), which is what keeps them out of such strings.

use std::fmt;

use serde_json::{Map, Value};

/// What a hidden value is replaced by.
const MARKER: &str = "<redacted>";

/// Member names whose values are hidden wherever they are (see the module
/// documentation).
const EVERYWHERE: &[&str] = &[
    "password",
    "passphrase",
    "cookie",
    "buf-b64",
    "input-data",
    "out-data",
    "err-data",
];

/// A message (request, reply or event) as the log shows it: formats as
/// the message with its secrets hidden (see the module documentation).
/// Formatting parses the message; building this does nothing.
pub(crate) struct Redacted<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0.strip_prefix(b"\xff").unwrap_or(self.0);
        match serde_json::from_slice::<Value>(bytes) {
            Ok(mut message) => {
                redact(&mut message);
                write!(f, "{message}")
            }
            Err(_) => write!(f, "<{} bytes that do not parse as JSON>", bytes.len()),
        }
    }
}

/// Hides the secrets of a parsed message, in place.
pub(crate) fn redact(message: &mut Value) {
    hide_everywhere(message);
    let Value::Object(members) = message else {
        return;
    };
    let command = members
        .get("execute")
        .or_else(|| members.get("exec-oob"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match command {
        Some(command) => {
            if let Some(Value::Object(arguments)) = members.get_mut("arguments") {
                redact_arguments(&command, arguments);
            }
        }
        None => {
            if let Some(value @ Value::String(_)) = members.get_mut("return") {
                *value = marker();
            }
        }
    }
}

/// The rules by command.
fn redact_arguments(command: &str, arguments: &mut Map<String, Value>) {
    match command {
        "object-add" => hide(arguments, "data"),
        "qom-set" => {
            let secret = arguments
                .get("property")
                .and_then(Value::as_str)
                .is_some_and(|property| property == "data" || EVERYWHERE.contains(&property));
            if secret {
                hide(arguments, "value");
            }
        }
        "sev-inject-launch-secret" => hide(arguments, "secret"),
        "guest-exec" => {
            if let Some(Value::Array(env)) = arguments.get_mut("env") {
                for entry in env {
                    let name = entry
                        .as_str()
                        .and_then(|entry| entry.split_once('='))
                        .map(|(name, _)| name);
                    *entry = match name {
                        Some(name) => Value::String(format!("{name}={MARKER}")),
                        None => marker(),
                    };
                }
            }
        }
        "human-monitor-command" => {
            if let Some(Value::String(line)) = arguments.get_mut("command-line") {
                let trimmed = line.trim_start();
                let word_end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
                let (word, rest) = trimmed.split_at(word_end);
                if word != "info" && !rest.trim().is_empty() {
                    *line = format!("{word} {MARKER}");
                }
            }
        }
        "ringbuf-write" => hide(arguments, "data"),
        "send-key" => hide(arguments, "keys"),
        "input-send-event" => hide(arguments, "events"),
        _ => {}
    }
}

/// Hides the members named in [`EVERYWHERE`], at any depth.
fn hide_everywhere(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                if EVERYWHERE.contains(&name.as_str()) {
                    *member = marker();
                } else {
                    hide_everywhere(member);
                }
            }
        }
        Value::Array(elements) => elements.iter_mut().for_each(hide_everywhere),
        _ => {}
    }
}

/// Hides one member, if present.
fn hide(members: &mut Map<String, Value>, name: &str) {
    if let Some(member) = members.get_mut(name) {
        *member = marker();
    }
}

fn marker() -> Value {
    Value::String(MARKER.to_owned())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde_json::{json, Value};

    use super::Redacted;

    /// What the log shows of `message`, parsed back.
    fn shown(message: &Value) -> Value {
        let text = Redacted(message.to_string().as_bytes()).to_string();
        serde_json::from_str(&text).unwrap()
    }

    fn request(command: &str, arguments: Value) -> Value {
        json!({"execute": command, "arguments": arguments, "id": 7})
    }

    /// Asserts the request shows as `expected` arguments.
    fn check(command: &str, arguments: Value, expected: Value) {
        assert_eq!(
            shown(&request(command, arguments)),
            request(command, expected),
            "{command}"
        );
    }

    #[test]
    fn set_password() {
        check(
            "set_password",
            json!({"protocol": "vnc", "password": "pw1", "display": "vnc0"}),
            json!({"protocol": "vnc", "password": "<redacted>", "display": "vnc0"}),
        );
        check(
            "set_password",
            json!({"protocol": "spice", "password": "pw1", "connected": "keep"}),
            json!({"protocol": "spice", "password": "<redacted>", "connected": "keep"}),
        );
    }

    #[test]
    fn change_vnc_password() {
        check(
            "change-vnc-password",
            json!({"password": "pw"}),
            json!({"password": "<redacted>"}),
        );
    }

    #[test]
    fn object_add_of_a_secret_hides_its_data_and_keeps_ids_and_iv() {
        check(
            "object-add",
            json!({"qom-type": "secret", "id": "sec0", "data": "s3cr3t",
                   "format": "base64", "keyid": "master0", "iv": "AAAA"}),
            json!({"qom-type": "secret", "id": "sec0", "data": "<redacted>",
                   "format": "base64", "keyid": "master0", "iv": "AAAA"}),
        );
        check(
            "object-add",
            json!({"qom-type": "secret_keyring", "id": "sec1", "serial": 1234}),
            json!({"qom-type": "secret_keyring", "id": "sec1", "serial": 1234}),
        );
        // Other objects are left as they are.
        check(
            "object-add",
            json!({"qom-type": "tls-creds-x509", "id": "tls0", "dir": "/etc/pki",
                   "passwordid": "sec0", "endpoint": "client"}),
            json!({"qom-type": "tls-creds-x509", "id": "tls0", "dir": "/etc/pki",
                   "passwordid": "sec0", "endpoint": "client"}),
        );
    }

    #[test]
    fn exec_oob_is_a_request_too() {
        let message = json!({"exec-oob": "object-add",
                             "arguments": {"qom-type": "secret", "id": "s", "data": "x"}});
        assert_eq!(shown(&message)["arguments"]["data"], "<redacted>");
    }

    #[test]
    fn qom_set_of_a_secret_property() {
        check(
            "qom-set",
            json!({"path": "/objects/sec0", "property": "data", "value": "s3cr3t"}),
            json!({"path": "/objects/sec0", "property": "data", "value": "<redacted>"}),
        );
        check(
            "qom-set",
            json!({"path": "/machine", "property": "password", "value": "pw"}),
            json!({"path": "/machine", "property": "password", "value": "<redacted>"}),
        );
        check(
            "qom-set",
            json!({"path": "/machine", "property": "dump-guest-core", "value": false}),
            json!({"path": "/machine", "property": "dump-guest-core", "value": false}),
        );
    }

    #[test]
    fn block_secrets_are_ids_and_kept_but_a_cookie_is_hidden() {
        let luks = json!({"driver": "luks", "node-name": "disk0", "key-secret": "sec0",
                          "file": {"driver": "file", "filename": "/img"}});
        check("blockdev-add", luks.clone(), luks);
        let iscsi = json!({"driver": "iscsi", "transport": "tcp", "portal": "p",
                           "target": "t", "user": "u", "password-secret": "sec1"});
        check("blockdev-add", iscsi.clone(), iscsi);
        check(
            "blockdev-add",
            json!({"driver": "https", "node-name": "web", "url": "https://h/i",
                   "cookie": "SESSION=abc", "cookie-secret": "sec2",
                   "password-secret": "sec3", "proxy-password-secret": "sec4"}),
            json!({"driver": "https", "node-name": "web", "url": "https://h/i",
                   "cookie": "<redacted>", "cookie-secret": "sec2",
                   "password-secret": "sec3", "proxy-password-secret": "sec4"}),
        );
        // Nested: blockdev-reopen takes a list of options.
        check(
            "blockdev-reopen",
            json!({"options": [{"driver": "http", "node-name": "n", "cookie": "c"}]}),
            json!({"options": [{"driver": "http", "node-name": "n", "cookie": "<redacted>"}]}),
        );
        let create = json!({"job-id": "j", "options": {"driver": "luks",
                            "file": "disk0", "size": 1024, "key-secret": "sec0"}});
        check("blockdev-create", create.clone(), create);
        let medium = json!({"id": "cd0", "filename": "/img.iso", "format": "raw"});
        check("blockdev-change-medium", medium.clone(), medium);
        let amend = json!({"job-id": "j", "node-name": "disk0", "options": {
            "driver": "luks", "state": "active", "new-secret": "sec5", "old-secret": "sec0"}});
        check("x-blockdev-amend", amend.clone(), amend);
    }

    #[test]
    fn migration_tls_settings_are_ids_and_kept() {
        let parameters = json!({"tls-creds": "tls0", "tls-authz": "authz0",
                                "tls-hostname": "dst"});
        check("migrate-set-parameters", parameters.clone(), parameters);
    }

    #[test]
    fn sev_inject_launch_secret() {
        check(
            "sev-inject-launch-secret",
            json!({"packet-header": "hdr", "secret": "blob", "gpa": 4096}),
            json!({"packet-header": "hdr", "secret": "<redacted>", "gpa": 4096}),
        );
    }

    #[test]
    fn human_monitor_command_keeps_the_hmp_command_alone() {
        let hmp = |line: &str| json!({"command-line": line});
        check(
            "human-monitor-command",
            hmp("set_password vnc pw"),
            hmp("set_password <redacted>"),
        );
        check(
            "human-monitor-command",
            hmp("change vnc password pw"),
            hmp("change <redacted>"),
        );
        check(
            "human-monitor-command",
            hmp("  object_add secret,id=s,data=pw"),
            hmp("object_add <redacted>"),
        );
        check(
            "human-monitor-command",
            hmp("info block -v"),
            hmp("info block -v"),
        );
        check("human-monitor-command", hmp("stop"), hmp("stop"));
        check(
            "human-monitor-command",
            json!({"command-line": "stop ", "cpu-index": 1}),
            json!({"command-line": "stop ", "cpu-index": 1}),
        );
    }

    #[test]
    fn ringbuf_send_key_and_input_events() {
        check(
            "ringbuf-write",
            json!({"device": "serial0", "data": "pw\n", "format": "utf8"}),
            json!({"device": "serial0", "data": "<redacted>", "format": "utf8"}),
        );
        check(
            "send-key",
            json!({"keys": [{"type": "qcode", "data": "p"}], "hold-time": 100}),
            json!({"keys": "<redacted>", "hold-time": 100}),
        );
        check(
            "input-send-event",
            json!({"device": "kbd", "events": [{"type": "key",
                   "data": {"down": true, "key": {"type": "qcode", "data": "p"}}}]}),
            json!({"device": "kbd", "events": "<redacted>"}),
        );
    }

    #[test]
    fn guest_set_user_password() {
        check(
            "guest-set-user-password",
            json!({"username": "root", "password": "cHc=", "crypted": false}),
            json!({"username": "root", "password": "<redacted>", "crypted": false}),
        );
    }

    #[test]
    fn guest_file_write_and_read() {
        check(
            "guest-file-write",
            json!({"handle": 3, "buf-b64": "c2VjcmV0", "count": 6}),
            json!({"handle": 3, "buf-b64": "<redacted>", "count": 6}),
        );
        assert_eq!(
            shown(&json!({"return": {"count": 6, "buf-b64": "c2VjcmV0", "eof": true}, "id": 8})),
            json!({"return": {"count": 6, "buf-b64": "<redacted>", "eof": true}, "id": 8})
        );
    }

    #[test]
    fn guest_exec_hides_input_and_environment_values() {
        check(
            "guest-exec",
            json!({"path": "/bin/sh", "arg": ["-c", "cat"], "input-data": "cHc=",
                   "env": ["TOKEN=abc", "PATH=/bin", "ODD"], "capture-output": true}),
            json!({"path": "/bin/sh", "arg": ["-c", "cat"], "input-data": "<redacted>",
                   "env": ["TOKEN=<redacted>", "PATH=<redacted>", "<redacted>"],
                   "capture-output": true}),
        );
        assert_eq!(
            shown(&json!({"return": {"exited": true, "exitcode": 0,
                          "out-data": "b3V0", "err-data": "ZXJy"}, "id": 9})),
            json!({"return": {"exited": true, "exitcode": 0,
                   "out-data": "<redacted>", "err-data": "<redacted>"}, "id": 9})
        );
    }

    #[test]
    fn public_keys_are_kept() {
        let keys = json!({"username": "root", "keys": ["ssh-ed25519 AAAA root@h"]});
        check("guest-ssh-add-authorized-keys", keys.clone(), keys.clone());
        check("guest-ssh-remove-authorized-keys", keys.clone(), keys);
        let reply = json!({"return": {"keys": ["ssh-ed25519 AAAA root@h"]}, "id": 1});
        assert_eq!(shown(&reply), reply);
    }

    #[test]
    fn a_bare_string_return_is_hidden_and_other_returns_kept() {
        assert_eq!(
            shown(&json!({"return": "s3cr3t", "id": 1})),
            json!({"return": "<redacted>", "id": 1})
        );
        for reply in [
            json!({"return": 42, "id": 1}),
            json!({"return": {}, "id": 1}),
            json!({"return": {"status": "running", "running": true}, "id": 1}),
            json!({"return": {"enabled": true, "auth": "vnc", "clients": []}, "id": 1}),
            json!({"error": {"class": "GenericError", "desc": "no"}, "id": 1}),
            json!({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}),
        ] {
            assert_eq!(shown(&reply), reply);
        }
    }

    #[test]
    fn commands_without_secrets_are_shown_whole() {
        let plain = request("query-status", json!({}));
        assert_eq!(shown(&plain), plain);
        let bare = json!({"execute": "stop", "id": 1});
        assert_eq!(shown(&bare), bare);
        // A member named like a secret elsewhere is hidden by name.
        check(
            "some-future-command",
            json!({"nested": [{"password": "pw"}], "data": "kept"}),
            json!({"nested": [{"password": "<redacted>"}], "data": "kept"}),
        );
    }

    #[test]
    fn the_sync_byte_is_skipped() {
        let mut bytes = b"\xff".to_vec();
        bytes.extend_from_slice(
            br#"{"execute":"guest-set-user-password","arguments":{"username":"u","password":"pw","crypted":false},"id":3}"#,
        );
        bytes.push(b'\n');
        let text = Redacted(&bytes).to_string();
        assert!(!text.contains("\"pw\""), "{text}");
        assert!(text.starts_with('{'), "{text}");
        assert!(text.contains("guest-set-user-password"), "{text}");
    }

    #[test]
    fn what_does_not_parse_shows_as_its_length() {
        for junk in [
            &b"password=hunter2"[..],
            b"{\"password\": \"hunter2\"",
            b"{\"password\": \"hunter2\xc3(\"}",
            b"\xff\xff",
        ] {
            let text = Redacted(junk).to_string();
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("bytes that do not parse"), "{text}");
        }
        assert_eq!(
            Redacted(b"not json").to_string(),
            "<8 bytes that do not parse as JSON>"
        );
    }

    /// Counts how often it is formatted.
    struct Counting<'a>(&'a Cell<usize>);

    impl std::fmt::Display for Counting<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.set(self.0.get() + 1);
            f.write_str("counted")
        }
    }

    /// The call sites rely on this: a `%` field of a `trace!` that no
    /// subscriber wants is never formatted, so redaction costs nothing
    /// unless `TRACE` is on.
    #[test]
    fn a_disabled_trace_formats_nothing() {
        let formatted = Cell::new(0);
        let at = |level| {
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::sink)
                .finish()
        };
        tracing::subscriber::with_default(at(tracing::Level::DEBUG), || {
            tracing::trace!(message = %Counting(&formatted), "receive");
        });
        assert_eq!(formatted.get(), 0);
        tracing::subscriber::with_default(at(tracing::Level::TRACE), || {
            tracing::trace!(message = %Counting(&formatted), "receive");
        });
        assert_eq!(formatted.get(), 1);
    }
}
