//! How object types encode and decode through the core's `object!` macro
//! (which replaced serde's derives): member names, optional and nullable
//! members, open-ended arguments, boxed members, and the errors.

use qapi_types::commands::{DeviceAdd, QueryStatus};
use qapi_types::{
    decode_with_path, Command, ImageInfo, MigrateSetParameters, StrOrNull, YankInstanceBlockNode,
};
use serde_json::{json, Value};

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    decode_with_path(value)
}

#[test]
fn members_use_wire_names_both_ways() {
    let node: YankInstanceBlockNode = decode(json!({ "node-name": "disk0" })).unwrap();
    assert_eq!(node.node_name, "disk0");
    assert_eq!(
        serde_json::to_value(&node).unwrap(),
        json!({ "node-name": "disk0" })
    );
    // From text too, where keys are borrowed from the input, and with an
    // escaped key, which is not.
    let node: YankInstanceBlockNode = serde_json::from_str(r#"{"node\u002dname":"a"}"#).unwrap();
    assert_eq!(node.node_name, "a");
}

#[test]
fn a_missing_required_member_is_named() {
    let error = decode::<YankInstanceBlockNode>(json!({ "node_name": "disk0" })).unwrap_err();
    assert!(error.contains("missing field `node-name`"), "{error}");
}

#[test]
fn a_member_of_the_wrong_type_is_located() {
    let error = decode::<YankInstanceBlockNode>(json!({ "node-name": 5 })).unwrap_err();
    assert!(error.starts_with("at node-name: invalid type"), "{error}");
    let error = decode::<<QueryStatus as Command>::Returns>(json!({
        "running": "yes", "status": "running"
    }))
    .unwrap_err();
    assert!(error.starts_with("at running:"), "{error}");
}

#[test]
fn a_non_object_names_the_type() {
    let error = decode::<YankInstanceBlockNode>(json!(["disk0"])).unwrap_err();
    assert!(
        error.contains("an object (YankInstanceBlockNode)"),
        "{error}"
    );
}

#[test]
fn the_last_of_a_repeated_member_counts() {
    let node: YankInstanceBlockNode =
        serde_json::from_str(r#"{"node-name":"a","node-name":"b"}"#).unwrap();
    assert_eq!(node.node_name, "b");
}

#[test]
fn optional_members_null_or_absent_are_none_and_are_not_encoded() {
    let add: DeviceAdd = decode(json!({ "driver": "e1000", "bus": null })).unwrap();
    assert_eq!(add.bus, None);
    assert_eq!(add.id, None);
    assert_eq!(
        serde_json::to_value(&add).unwrap(),
        json!({ "driver": "e1000" })
    );
}

#[test]
fn nullable_members_tell_null_from_absent() {
    let set: MigrateSetParameters = decode(json!({ "tls-creds": null })).unwrap();
    assert_eq!(set.tls_creds, Some(StrOrNull::N(())));
    assert_eq!(set.tls_hostname, None);
    assert_eq!(
        serde_json::to_value(&set).unwrap(),
        json!({ "tls-creds": null })
    );
    let set: MigrateSetParameters = decode(json!({ "tls-creds": "creds0" })).unwrap();
    assert_eq!(set.tls_creds, Some(StrOrNull::S("creds0".into())));
    let set: MigrateSetParameters = decode(json!({})).unwrap();
    assert_eq!(set.tls_creds, None);
    assert_eq!(serde_json::to_value(&set).unwrap(), json!({}));
}

#[test]
fn open_ended_arguments_keep_unlisted_members() {
    let text = r#"{"driver":"virtio-net-pci","addr":"0x4","id":"net0","netdev":"n0"}"#;
    let add: DeviceAdd = serde_json::from_str(text).unwrap();
    assert_eq!(add.driver, "virtio-net-pci");
    assert_eq!(add.id.as_deref(), Some("net0"));
    assert_eq!(add.extra.get("addr"), Some(&json!("0x4")));
    assert_eq!(add.extra.get("netdev"), Some(&json!("n0")));
    assert_eq!(add.extra.len(), 2);
    // Listed members first, in schema order, then the others.
    assert_eq!(
        serde_json::to_string(&add).unwrap(),
        r#"{"driver":"virtio-net-pci","id":"net0","addr":"0x4","netdev":"n0"}"#
    );
}

#[test]
fn boxed_members_nest() {
    let info = json!({
        "filename": "top.qcow2", "format": "qcow2", "virtual-size": 1024,
        "dirty-flag": false,
        "backing-image": {
            "filename": "base.raw", "format": "raw", "virtual-size": 1024,
            "dirty-flag": false
        }
    });
    let image: ImageInfo = decode(info.clone()).unwrap();
    let backing = image.backing_image.as_deref().unwrap();
    assert_eq!(backing.filename, "base.raw");
    assert!(backing.backing_image.is_none());
    assert_eq!(serde_json::to_value(&image).unwrap(), info);
}

#[test]
fn commands_without_arguments_say_so() {
    use qapi_types::commands::Yank;
    // Checked when this test compiles.
    const {
        assert!(!QueryStatus::HAS_ARGUMENTS);
        assert!(Yank::HAS_ARGUMENTS);
        // Open-ended: no listed arguments may still mean extra ones.
        assert!(DeviceAdd::HAS_ARGUMENTS);
    }
    assert_eq!(serde_json::to_string(&QueryStatus {}).unwrap(), "{}");
}
