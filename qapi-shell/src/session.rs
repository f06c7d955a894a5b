//! The connection the shell drives: QMP or a guest agent, with the schema
//! that completes and checks what is typed.

use std::time::Duration;

use qapi_client::{Address, Error, Qga, QgaBuilder, Qmp, QmpBuilder, Recorder};
use qapi_introspect::Schema;
use serde_json::Value;

use crate::args;

/// Where the schema came from (the shell says so at start).
pub enum SchemaSource {
    /// The live QEMU's `query-qmp-schema`.
    Live,
    /// The bindings' (QEMU release named), for a guest agent or when the
    /// live one could not be read.
    Bindings(&'static str),
}

/// A connected session and what it knows.
pub struct Session {
    pub peer: Peer,
    /// Shared with the line editor's completion.
    pub schema: std::sync::Arc<Schema>,
    pub schema_source: SchemaSource,
    /// Sends lines through `human-monitor-command`.
    pub hmp: bool,
    /// Prints each request before it goes.
    pub verbose: bool,
}

/// QMP or the guest agent.
pub enum Peer {
    Qmp(Qmp),
    Qga(Qga),
}

/// How to connect.
pub struct Options {
    pub qga: bool,
    pub hmp: bool,
    pub verbose: bool,
    pub timeout: Duration,
    pub record: Option<Recorder>,
}

impl Session {
    /// Connects and reads the schema.
    pub async fn connect(address: &Address, options: Options) -> Result<Session, Error> {
        if options.qga {
            let mut builder = QgaBuilder::new().timeout(options.timeout);
            if let Some(recorder) = options.record {
                builder = builder.record(recorder);
            }
            let qga = builder.connect(address).await?;
            return Ok(Session {
                peer: Peer::Qga(qga),
                schema: std::sync::Arc::new(bindings_schema(qga_types::introspection::SCHEMA)),
                schema_source: SchemaSource::Bindings(qapi_types::introspection::QEMU_VERSION),
                hmp: false,
                verbose: options.verbose,
            });
        }
        let mut builder = QmpBuilder::new().command_timeout(Some(options.timeout));
        if let Some(recorder) = options.record {
            builder = builder.record(recorder);
        }
        let qmp = builder.connect(address).await?;
        let (schema, schema_source) = match qmp.execute_raw("query-qmp-schema", None).await {
            Ok(document) => {
                match serde_json::from_value::<Vec<qapi_introspect::Entity>>(document) {
                    Ok(entities) => (Schema::from_entities(entities), SchemaSource::Live),
                    Err(_) => bindings(),
                }
            }
            Err(_) => bindings(),
        };
        Ok(Session {
            peer: Peer::Qmp(qmp),
            schema: std::sync::Arc::new(schema),
            schema_source,
            hmp: options.hmp,
            verbose: options.verbose,
        })
    }

    /// Runs one line (`command args…`, or an HMP command line); the reply
    /// value.
    pub async fn run_line(&self, line: &str) -> Result<Value, LineError> {
        if self.hmp {
            let arguments = serde_json::json!({ "command-line": line });
            let output = self
                .execute("human-monitor-command", Some(&arguments))
                .await?;
            return Ok(output);
        }
        let words = args::words(line);
        let Some((command, rest)) = words.split_first() else {
            return Err(LineError::Usage("nothing to run".into()));
        };
        if self.schema.get(command).is_none() {
            return Err(LineError::Usage(format!(
                "no command '{command}' in {}",
                self.schema_name()
            )));
        }
        let arguments =
            args::parse(Some(&*self.schema), command, rest).map_err(|e| LineError::Usage(e.0))?;
        let problems = self.schema.check_arguments(command, &arguments);
        if !problems.is_empty() {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(LineError::Usage(format!(
                "{command}: not sent: {}",
                lines.join("; ")
            )));
        }
        let arguments = arguments
            .as_object()
            .filter(|o| !o.is_empty())
            .map(|_| &arguments);
        self.execute(command, arguments).await
    }

    /// Sends the actions collected in transaction mode as one
    /// `transaction`, after checking them against the schema.
    pub async fn run_transaction(&self, actions: Vec<Value>) -> Result<Value, LineError> {
        let arguments = serde_json::json!({ "actions": actions });
        let problems = self.schema.check_arguments("transaction", &arguments);
        if !problems.is_empty() {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(LineError::Usage(format!(
                "transaction: not sent: {}",
                lines.join("; ")
            )));
        }
        self.execute("transaction", Some(&arguments)).await
    }

    async fn execute(&self, command: &str, arguments: Option<&Value>) -> Result<Value, LineError> {
        if self.verbose {
            let mut request = serde_json::json!({ "execute": command });
            if let Some(arguments) = arguments {
                request["arguments"] = arguments.clone();
            }
            eprintln!("-> {request}");
        }
        let reply = match &self.peer {
            Peer::Qmp(qmp) => qmp.execute_raw(command, arguments).await,
            Peer::Qga(qga) => qga.execute_raw(command, arguments).await,
        };
        reply.map_err(LineError::Client)
    }

    /// "this QEMU's schema" or "the bindings' schema (QEMU 10.2.2)".
    pub fn schema_name(&self) -> String {
        match self.schema_source {
            SchemaSource::Live => "this QEMU's schema".into(),
            SchemaSource::Bindings(version) => format!("the bindings' schema (QEMU {version})"),
        }
    }
}

fn bindings_schema(document: &str) -> Schema {
    // The bindings' documents are generated and tested: they parse.
    Schema::from_json(document).unwrap_or_default()
}

fn bindings() -> (Schema, SchemaSource) {
    (
        bindings_schema(qapi_types::introspection::SCHEMA),
        SchemaSource::Bindings(qapi_types::introspection::QEMU_VERSION),
    )
}

/// Why a line did not give a reply.
pub enum LineError {
    /// The line was not sent: it does not fit the schema, or is not a
    /// command line.
    Usage(String),
    /// The call failed: an error reply (`Error::Qmp`) or anything else.
    Client(Error),
}
