//! Decoding tests of the core on generated types.

#[cfg(all(
    test,
    feature = "introspect",
    feature = "run_state",
    feature = "job",
    feature = "sockets"
))]
mod decoding {
    use serde_json::json;

    use serde::Deserialize;

    use crate::qapi_core::*;
    use crate::{
        AnyEvent, SchemaInfo, SchemaInfoBranch, SchemaInfoObject, SchemaInfoObjectMember,
        SocketAddress, SocketAddressBranch,
    };

    fn object(members: Vec<SchemaInfoObjectMember>) -> SchemaInfoBranch {
        SchemaInfoBranch::Object(SchemaInfoObject {
            members,
            tag: None,
            variants: None,
        })
    }

    fn member(name: &str, ty: &str) -> SchemaInfoObjectMember {
        SchemaInfoObjectMember {
            name: name.into(),
            r#type: ty.into(),
            default: None,
            features: None,
        }
    }

    #[test]
    fn union_members_decode_in_any_order() {
        let expected = SchemaInfo {
            name: "o".into(),
            features: Some(vec!["f".into()]),
            branch: object(vec![member("m", "int")]),
        };
        // As QEMU sends it (branch members before the discriminator), with
        // the discriminator first, and with a base member last.
        for text in [
            r#"{"name": "o", "members": [{"name": "m", "type": "int"}], "meta-type": "object", "features": ["f"]}"#,
            r#"{"meta-type": "object", "features": ["f"], "members": [{"name": "m", "type": "int"}], "name": "o"}"#,
            r#"{"members": [{"type": "int", "name": "m"}], "features": ["f"], "name": "o", "meta-type": "object"}"#,
        ] {
            let info: SchemaInfo = serde_json::from_str(text).unwrap();
            assert_eq!(info, expected, "{text}");
            let back = serde_json::to_value(&info).unwrap();
            assert_eq!(
                back,
                serde_json::from_str::<serde_json::Value>(text).unwrap()
            );
        }
    }

    #[test]
    fn union_ignores_extra_members_and_a_repeated_discriminator() {
        let text = r#"{"new": {"x": [1]}, "name": "o", "meta-type": "object", "members": [],
                       "meta-type": "object", "newer": null}"#;
        let info: SchemaInfo = serde_json::from_str(text).unwrap();
        assert_eq!(info.branch, object(vec![]));
        assert_eq!(info.name, "o");
    }

    #[test]
    fn union_unknown_branch_keeps_members_from_before_and_after_the_discriminator() {
        let value = json!({ "type": "quantum", "qubits": 3, "entangled": [true] });
        let text = r#"{"qubits": 3, "type": "quantum", "entangled": [true]}"#;
        let addr: SocketAddress = serde_json::from_str(text).unwrap();
        let SocketAddressBranch::Unrecognized(members) = &addr.branch else {
            panic!("decoded as a known branch: {addr:?}");
        };
        assert_eq!(members.len(), 3);
        assert_eq!(serde_json::to_value(&addr).unwrap(), value);
    }

    #[test]
    fn union_without_discriminator_is_unrecognized() {
        let info: SchemaInfo =
            serde_json::from_value(json!({ "name": "x", "json-type": "int" })).unwrap();
        assert_eq!(info.name, "x");
        let SchemaInfoBranch::Unrecognized(members) = &info.branch else {
            panic!("decoded as a known branch: {info:?}");
        };
        assert_eq!(members.get("json-type"), Some(&json!("int")));
        assert!(
            !members.contains_key("name"),
            "base members are not repeated"
        );
    }

    #[test]
    fn union_errors_name_the_member() {
        // decode_with_path reads a `Value`, whose members come in name order:
        // `json-type` before `meta-type` (kept, then decoded), `variants`
        // after it (decoded directly).
        let early = json!({ "name": "b", "meta-type": "builtin", "json-type": 5 });
        let err = decode_with_path::<SchemaInfo>(early).unwrap_err();
        assert!(err.contains("in member `json-type`"), "{err}");
        assert!(err.contains("invalid type: integer `5`"), "{err}");
        let late = json!({ "name": "o", "meta-type": "object", "members": [],
                           "variants": [{ "case": 1, "type": "t" }] });
        let err = decode_with_path::<SchemaInfo>(late).unwrap_err();
        assert!(
            err.starts_with("at variants[0].case: invalid type"),
            "{err}"
        );
        let nameless = json!({ "meta-type": "builtin", "json-type": "int" });
        let err = decode_with_path::<SchemaInfo>(nameless).unwrap_err();
        assert_eq!(err, "missing field `name`");
        let err = decode_with_path::<SchemaInfo>(json!([1])).unwrap_err();
        assert!(err.contains("expected an object (SchemaInfo)"), "{err}");
    }

    fn event(text: &str) -> EventMessage<AnyEvent> {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn event_members_decode_in_any_order() {
        let stamp = r#""timestamp": {"seconds": 1, "microseconds": 2}"#;
        let data = r#""data": {"id": "j", "status": "running"}"#;
        let name = r#""event": "JOB_STATUS_CHANGE""#;
        for text in [
            format!("{{{stamp}, {name}, {data}}}"),
            format!("{{{data}, {name}, {stamp}}}"),
            format!("{{{name}, {stamp}, \"extra\": 1, {data}}}"),
        ] {
            let message = event(&text);
            assert_eq!(message.timestamp.microseconds, 2, "{text}");
            let AnyEvent::JobStatusChange(change) = &message.event else {
                panic!("{text}: {message:?}");
            };
            assert_eq!(change.id, "j");
        }
    }

    #[test]
    fn events_without_data_and_unknown_events() {
        let stop = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#;
        assert_eq!(event(stop).event, AnyEvent::Stop);
        let stop =
            r#"{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}"#;
        assert_eq!(event(stop).event, AnyEvent::Stop);
        let new = r#"{"event": "NEW", "timestamp": {"seconds": 1, "microseconds": 2}}"#;
        let message = event(new);
        assert_eq!(
            message.event,
            AnyEvent::Unrecognized {
                event: "NEW".into(),
                data: None
            }
        );
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            serde_json::from_str::<serde_json::Value>(new).unwrap()
        );
        let early =
            r#"{"data": [1], "event": "NEW", "timestamp": {"seconds": 1, "microseconds": 2}}"#;
        let AnyEvent::Unrecognized { data, .. } = event(early).event else {
            panic!("NEW is known");
        };
        assert_eq!(data, Some(json!([1])));
    }

    #[test]
    fn event_errors() {
        let no_stamp = json!({ "event": "STOP" });
        let err = decode_with_path::<EventMessage<AnyEvent>>(no_stamp).unwrap_err();
        assert_eq!(err, "missing field `timestamp`");
        let no_name = json!({ "timestamp": { "seconds": 1, "microseconds": 2 } });
        let err = decode_with_path::<EventMessage<AnyEvent>>(no_name).unwrap_err();
        assert_eq!(err, "missing field `event`");
        // From a `Value`, `data` comes before `event` and is kept.
        let bad = json!({ "event": "JOB_STATUS_CHANGE", "data": { "id": 5, "status": "null" },
                          "timestamp": { "seconds": 1, "microseconds": 2 } });
        let err = decode_with_path::<EventMessage<AnyEvent>>(bad.clone()).unwrap_err();
        assert!(err.starts_with("in member `data`: invalid type"), "{err}");
        // As QEMU sends it, `data` is decoded directly.
        let text = r#"{"timestamp": {"seconds": 1, "microseconds": 2},
                       "event": "JOB_STATUS_CHANGE", "data": {"id": 5, "status": "null"}}"#;
        let de = &mut serde_json::Deserializer::from_str(text);
        let err = serde_path_to_error::deserialize::<_, EventMessage<AnyEvent>>(de).unwrap_err();
        assert_eq!(err.path().to_string(), "data.id", "{text}");
    }

    #[test]
    fn kept_values_decode_as_they_came() {
        use crate::private::{Content, ContentDeserializer};
        let text = r#"{"a": [1, -2, 3.5, "s\n", "t", null, true, {}], "b": {"c": []}}"#;
        let kept: Content = serde_json::from_str(text).unwrap();
        let de = ContentDeserializer::<serde_json::Error>::new(kept.clone());
        let value = serde_json::Value::deserialize(de).unwrap();
        assert_eq!(
            value,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        let de = ContentDeserializer::<serde_json::Error>::new(Content::Str("running"));
        assert_eq!(
            crate::RunState::deserialize(de).unwrap(),
            crate::RunState::Running
        );
        let de = ContentDeserializer::<serde_json::Error>::new(kept);
        assert!(Option::<Vec<u8>>::deserialize(de).is_err());
    }
}

/// The captures of the decoding benchmark (real QEMU output, members in
/// QEMU's order) decode and encode again to the same JSON: the decoders
/// lose nothing, whatever the order of members.
#[cfg(all(test, feature = "introspect", feature = "block_core"))]
mod capture_tests {
    use std::path::Path;

    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use crate::commands::{QueryBlockstats, QueryQmpSchema};
    use crate::{AnyEvent, Command, EventMessage};

    fn capture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches/data")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn round_trip<T: DeserializeOwned + serde::Serialize>(what: &str, text: &str) {
        let value: Value = serde_json::from_str(text).unwrap();
        let typed: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
        let again = serde_json::to_value(&typed).unwrap();
        assert!(again == value, "{what} does not encode back to its JSON");
    }

    /// The text of a reply's return value, as it came.
    fn return_of(file: &str) -> String {
        let reply = capture(file);
        let ret = reply
            .trim_end()
            .strip_prefix(r#"{"return": "#)
            .and_then(|r| r.strip_suffix('}'));
        ret.unwrap_or_else(|| panic!("{file} is not a reply"))
            .to_owned()
    }

    #[test]
    fn captured_replies_and_events_round_trip() {
        let file = "query-qmp-schema.json";
        round_trip::<<QueryQmpSchema as Command>::Returns>(file, &return_of(file));
        let file = "query-blockstats.json";
        round_trip::<<QueryBlockstats as Command>::Returns>(file, &return_of(file));
        for (n, line) in capture("events.jsonl").lines().enumerate() {
            round_trip::<EventMessage<AnyEvent>>(&format!("events.jsonl:{}", n + 1), line);
        }
    }
}
