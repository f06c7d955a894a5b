//! Replies and events from a newer QEMU decode with these bindings: what
//! they do not know is kept, not an error.

use qapi_types::commands::{DeviceAdd, QueryStatus};
use qapi_types::{
    AnyEvent, BlockdevRef, Command, EventMessage, RunState, SocketAddress, SocketAddressBranch,
    StatusInfo, UnknownValue,
};
use serde_json::json;

#[test]
fn unknown_enum_value_is_kept() {
    let state: RunState = serde_json::from_value(json!("hibernating")).unwrap();
    assert_eq!(
        state,
        RunState::Unrecognized(UnknownValue("hibernating".into()))
    );
    assert_eq!(state.as_str(), "hibernating");
    assert_eq!(serde_json::to_value(&state).unwrap(), json!("hibernating"));
    let known: RunState = serde_json::from_value(json!("inmigrate")).unwrap();
    assert_eq!(known, RunState::Inmigrate);
}

#[test]
fn extra_members_in_a_reply_are_ignored() {
    let reply = json!({ "running": true, "status": "running", "added-in-qemu-99": [1, 2] });
    let status: <QueryStatus as Command>::Returns = serde_json::from_value(reply).unwrap();
    assert_eq!(
        status,
        StatusInfo {
            running: true,
            status: RunState::Running
        }
    );
}

#[test]
fn unknown_union_branch_keeps_its_members() {
    let value = json!({ "type": "quantum", "qubits": 3 });
    let addr: SocketAddress = serde_json::from_value(value.clone()).unwrap();
    let SocketAddressBranch::Unrecognized(members) = &addr.branch else {
        panic!("decoded as a known branch: {addr:?}");
    };
    assert_eq!(members["qubits"], json!(3));
    assert_eq!(serde_json::to_value(&addr).unwrap(), value);
}

#[test]
fn known_union_branch_round_trips() {
    let value = json!({ "type": "unix", "path": "/run/qmp.sock" });
    let addr: SocketAddress = serde_json::from_value(value.clone()).unwrap();
    assert!(matches!(addr.branch, SocketAddressBranch::Unix(_)));
    assert_eq!(serde_json::to_value(&addr).unwrap(), value);
}

#[test]
fn unknown_event_keeps_its_name_and_data() {
    let message = json!({
        "event": "QUANTUM_LEAP",
        "data": { "where": "elsewhere" },
        "timestamp": { "seconds": 1700000000, "microseconds": 5 }
    });
    let decoded: EventMessage<AnyEvent> = serde_json::from_value(message.clone()).unwrap();
    match &decoded.event {
        AnyEvent::Unrecognized { event, data } => {
            assert_eq!(event, "QUANTUM_LEAP");
            assert_eq!(data.as_ref().unwrap()["where"], json!("elsewhere"));
        }
        other => panic!("decoded as a known event: {other:?}"),
    }
    assert_eq!(decoded.event.name(), "QUANTUM_LEAP");
    assert_eq!(decoded.timestamp.seconds, 1700000000);
    assert_eq!(serde_json::to_value(&decoded).unwrap(), message);
}

#[test]
fn known_event_decodes_typed() {
    let message = json!({
        "event": "SHUTDOWN",
        "data": { "guest": true, "reason": "guest-shutdown" },
        "timestamp": { "seconds": 1, "microseconds": 2 }
    });
    let decoded: EventMessage<AnyEvent> = serde_json::from_value(message).unwrap();
    let AnyEvent::Shutdown(data) = decoded.event else {
        panic!("not SHUTDOWN");
    };
    assert!(data.guest);
}

#[test]
fn alternate_dispatches_on_json_type() {
    let by_name: BlockdevRef = serde_json::from_value(json!("node0")).unwrap();
    assert_eq!(by_name, BlockdevRef::Reference("node0".into()));
    let inline: BlockdevRef =
        serde_json::from_value(json!({ "driver": "null-co", "node-name": "n" })).unwrap();
    assert!(matches!(inline, BlockdevRef::Definition(_)));
    assert!(serde_json::from_value::<BlockdevRef>(json!(true)).is_err());
}

#[test]
fn requests_are_typed_and_open_ended_commands_take_extra_properties() {
    let mut add = DeviceAdd {
        driver: "virtio-net-pci".into(),
        bus: None,
        id: Some("net0".into()),
        extra: Default::default(),
    };
    add.extra.insert("mac".into(), json!("52:54:00:12:34:56"));
    assert_eq!(
        serde_json::to_value(&add).unwrap(),
        json!({ "driver": "virtio-net-pci", "id": "net0", "mac": "52:54:00:12:34:56" })
    );
    assert_eq!(DeviceAdd::NAME, "device_add");
    assert_eq!(serde_json::to_value(QueryStatus {}).unwrap(), json!({}));
}
