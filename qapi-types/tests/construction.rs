//! Building commands as a user of the crate does: `Default`, `new`, struct
//! update syntax and `From`, in a crate of its own (this test) with every
//! warning an error, so that building a value without naming a deprecated
//! member never warns.

#![deny(warnings)]

use qapi_types::commands::{BlockCommit, BlockdevAdd, Eject, QueryMachines};
use qapi_types::{
    BlockdevOptions, BlockdevOptionsBranch, BlockdevOptionsQcow2, BlockdevRef, ObjectOptions,
    SecretProperties,
};
use serde_json::{json, to_value};

#[test]
fn blockdev_add_of_a_null_co_node_takes_one_statement() {
    let add = BlockdevAdd(BlockdevOptions {
        node_name: Some("null0".into()),
        ..BlockdevOptionsBranch::NullCo(Default::default()).into()
    });
    assert_eq!(
        to_value(&add).unwrap(),
        json!({"driver": "null-co", "node-name": "null0"})
    );
}

#[test]
fn a_command_builds_from_its_required_member_alone() {
    assert_eq!(
        to_value(BlockCommit::new("drive0")).unwrap(),
        json!({"device": "drive0"})
    );
    let with_speed = BlockCommit {
        speed: Some(1 << 20),
        ..BlockCommit::new("drive0")
    };
    assert_eq!(
        to_value(with_speed).unwrap(),
        json!({"device": "drive0", "speed": 1048576})
    );
}

#[test]
fn a_command_with_only_optional_members_is_default() {
    assert_eq!(to_value(QueryMachines::default()).unwrap(), json!({}));
    // `Eject::device` is deprecated: not naming it must not warn.
    let eject = Eject {
        id: Some("cd0".into()),
        ..Default::default()
    };
    assert_eq!(to_value(eject).unwrap(), json!({"id": "cd0"}));
}

#[test]
fn a_union_converts_from_a_branch_type_only_it_has() {
    // qcow2 is the only branch of type BlockdevOptionsQcow2; its `file` is a
    // boxed BlockdevRef alternate, built here from a node name.
    let options = BlockdevOptions::from(BlockdevOptionsQcow2::new("file0"));
    assert_eq!(
        to_value(&options).unwrap(),
        json!({"driver": "qcow2", "file": "file0"})
    );
    let nested = BlockdevOptionsQcow2::new(BlockdevOptions {
        node_name: Some("file0".into()),
        ..BlockdevOptionsBranch::NullAio(Default::default()).into()
    });
    assert!(matches!(*nested.file, BlockdevRef::Definition(_)));
}

#[test]
fn a_union_with_required_base_members_takes_them_and_its_branch() {
    // `id` is required; SecretProperties belongs to the `secret` branch
    // alone, so it converts into the branch enum.
    let object = ObjectOptions::new(
        "sec0",
        SecretProperties {
            data: Some("hunter2".into()),
            ..Default::default()
        }
        .into(),
    );
    assert_eq!(
        to_value(&object).unwrap(),
        json!({"qom-type": "secret", "id": "sec0", "data": "hunter2"})
    );
    // `null-aio` and `null-co` share BlockdevOptionsNull: the branch enum
    // names the driver (there is no `From<BlockdevOptionsNull>`).
    let aio = BlockdevOptions::new(BlockdevOptionsBranch::NullAio(Default::default()));
    assert_eq!(to_value(&aio).unwrap(), json!({"driver": "null-aio"}));
}
