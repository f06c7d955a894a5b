//! What these bindings expect on the wire.

/// The introspection document of the guest agent schema these bindings
/// were generated from (in `query-qmp-schema`'s format, which qemu-ga
/// itself does not offer: compare its `guest-info` command list with the
/// commands listed here).  Read it with the `qapi-introspect` crate.
pub const SCHEMA: &str = include_str!("generated/introspection.json");

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_lists_the_guest_agent_commands() {
        let document: serde_json::Value = serde_json::from_str(super::SCHEMA).unwrap();
        let commands: Vec<&str> = document
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["meta-type"] == "command")
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert!(commands.contains(&"guest-ping") && commands.contains(&"guest-sync-delimited"));
        for name in &commands {
            assert!(
                crate::command_codec(name).is_some(),
                "{name} has no binding"
            );
        }
    }
}
