//! What a live QEMU offers compared with what the bindings expect.

use std::fmt;

use qapi_introspect::{Change, Comparison, Item, Presence, Schema};
use qapi_types::QmpCommand;

use crate::error::{Error, Result};

/// The comparison of a live QEMU's `query-qmp-schema` with the bindings'
/// schema ([`qapi_types::introspection::SCHEMA`]).
///
/// "Removed" in the comparison means the bindings have it and this QEMU
/// does not; "added" means this QEMU has it and the bindings do not.
/// `Display` gives a readable report.
#[derive(Debug, Clone)]
pub struct SchemaReport {
    comparison: Comparison,
}

/// Whether this QEMU supports a command or event, and how well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support<'a> {
    /// It has it, exactly as the bindings expect.
    Same,
    /// It has it, with differences; a difference a build condition (`if`)
    /// explains is listed too.
    Changed(&'a [Change]),
    /// It lacks it: executing it fails with `CommandNotFound`.
    Missing,
    /// It has it, but the bindings do not know it (a newer QEMU): only
    /// `execute_raw` can run it.
    NotInBindings,
    /// Neither side has it.
    Unknown,
}

impl Support<'_> {
    /// Whether this QEMU has it at all.
    pub fn is_supported(&self) -> bool {
        matches!(
            self,
            Support::Same | Support::Changed(_) | Support::NotInBindings
        )
    }
}

impl SchemaReport {
    /// Compares a `query-qmp-schema` reply (its `return` value as JSON
    /// text) with the bindings; `qemu` names the QEMU in the display.
    pub fn new(live_schema: &str, qemu: &str) -> Result<SchemaReport> {
        let bindings = bindings_schema()?;
        let live = Schema::from_json(live_schema)
            .map_err(|e| Error::Protocol(format!("query-qmp-schema: {e}").into()))?;
        let left = format!(
            "the bindings (QEMU {} schema)",
            qapi_types::introspection::QEMU_VERSION
        );
        Ok(SchemaReport {
            comparison: Comparison::new(bindings, &live, left, qemu),
        })
    }

    /// The full comparison.
    pub fn comparison(&self) -> &Comparison {
        &self.comparison
    }

    /// How this QEMU supports the command called `name`.
    pub fn command(&self, name: &str) -> Support<'_> {
        support(self.comparison.command(name))
    }

    /// How this QEMU supports the event called `name`.
    pub fn event(&self, name: &str) -> Support<'_> {
        support(self.comparison.events.get(name))
    }

    /// Whether this QEMU has command `C`.
    pub fn supports<C: QmpCommand>(&self) -> bool {
        self.command(C::NAME).is_supported()
    }

    /// Commands the bindings know that this QEMU lacks.
    pub fn missing_commands(&self) -> impl Iterator<Item = &str> {
        self.comparison.commands_with(Presence::LeftOnly)
    }

    /// Commands this QEMU has that the bindings do not know.
    pub fn unknown_commands(&self) -> impl Iterator<Item = &str> {
        self.comparison.commands_with(Presence::RightOnly)
    }

    /// Events the bindings know that this QEMU lacks.
    pub fn missing_events(&self) -> impl Iterator<Item = &str> {
        self.comparison.events_with(Presence::LeftOnly)
    }
}

/// The bindings' schema, read once per process (it is 260 KB of JSON).
fn bindings_schema() -> Result<&'static Schema> {
    static BINDINGS: std::sync::OnceLock<Result<Schema, String>> = std::sync::OnceLock::new();
    BINDINGS
        .get_or_init(|| {
            Schema::from_json(qapi_types::introspection::SCHEMA).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Protocol(format!("the bindings' own schema: {e}").into()))
}

fn support(item: Option<&Item>) -> Support<'_> {
    match item {
        None => Support::Unknown,
        Some(item) => match item.presence {
            Presence::LeftOnly => Support::Missing,
            Presence::RightOnly => Support::NotInBindings,
            Presence::Both if item.changes.is_empty() => Support::Same,
            Presence::Both => Support::Changed(&item.changes),
        },
    }
}

impl fmt::Display for SchemaReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.comparison, f)
    }
}

/// What a guest agent offers compared with the guest-agent bindings, from
/// its `guest-info` command list (qemu-ga has no `query-qmp-schema`, so
/// only names can be compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReport {
    /// The agent's version.
    pub version: String,
    /// Commands the bindings know that the agent does not list.
    pub missing: Vec<String>,
    /// Commands the agent lists that the bindings do not know.
    pub unknown: Vec<String>,
    /// Commands the agent lists as disabled (blocked or not allowed).
    pub disabled: Vec<String>,
    /// Commands the agent lists as enabled.
    pub enabled: Vec<String>,
}

impl AgentReport {
    pub(crate) fn new(info: &qga_types::GuestAgentInfo) -> Result<AgentReport> {
        let bindings = Schema::from_json(qga_types::introspection::SCHEMA)
            .map_err(|e| Error::Protocol(format!("the bindings' own schema: {e}").into()))?;
        let known: std::collections::BTreeSet<&str> =
            bindings.commands().iter().map(String::as_str).collect();
        let listed: std::collections::BTreeSet<&str> = info
            .supported_commands
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let names = |filter: &dyn Fn(&qga_types::GuestAgentCommandInfo) -> bool| {
            let mut v: Vec<String> = info
                .supported_commands
                .iter()
                .filter(|c| filter(c))
                .map(|c| c.name.clone())
                .collect();
            v.sort();
            v
        };
        Ok(AgentReport {
            version: info.version.clone(),
            missing: known.difference(&listed).map(|s| (*s).to_owned()).collect(),
            unknown: listed.difference(&known).map(|s| (*s).to_owned()).collect(),
            disabled: names(&|c| !c.enabled),
            enabled: names(&|c| c.enabled),
        })
    }
}

impl fmt::Display for AgentReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "qemu-ga {} against the guest-agent bindings: {} enabled, {} disabled; {} missing, {} unknown to the bindings",
            self.version,
            self.enabled.len(),
            self.disabled.len(),
            self.missing.len(),
            self.unknown.len()
        )?;
        for (title, list) in [
            (
                "missing (in the bindings, not in this agent)",
                &self.missing,
            ),
            (
                "unknown (in this agent, not in the bindings)",
                &self.unknown,
            ),
        ] {
            if !list.is_empty() {
                writeln!(f, "{title}: {}", list.join(", "))?;
            }
        }
        Ok(())
    }
}
