//! The introspection document: what `query-qmp-schema` returns.
//!
//! Every entity has a `name` and a `meta-type`; commands and events name
//! their argument and return types, which QEMU masks as numbers (`"123"`)
//! — so two documents can only be compared by structure, starting from
//! commands and events, never by type name.  Documents written by
//! `qapi-codegen` use the real names and carry an extra `if` string on
//! conditional entities, members, enum values and variants.

use std::collections::HashMap;

use serde::Deserialize;

/// A parsed introspection document.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    entities: HashMap<String, Entity>,
    commands: Vec<String>,
    events: Vec<String>,
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
#[error("introspection document: {0}")]
pub struct Error(#[from] serde_json::Error);

/// One `SchemaInfo` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entity {
    /// The entity's name (masked as a number for QEMU's types).
    pub name: String,
    /// What it is.
    #[serde(flatten)]
    pub meta: Meta,
    /// Its features (`deprecated`, `unstable`, …).
    #[serde(default)]
    pub features: Vec<String>,
    /// Its condition, in documents written by `qapi-codegen`.
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
}

/// The meta-type of an entity, with what that meta-type carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "meta-type", rename_all = "kebab-case")]
pub enum Meta {
    /// A built-in type: `int`, `str`, `any`, ….
    Builtin {
        /// `string`, `number`, `int`, `boolean`, `null` or `value`.
        #[serde(rename = "json-type")]
        json_type: String,
    },
    /// An enumeration.
    Enum {
        /// The values.
        values: Vec<String>,
        /// The values with their features (QEMU 6.2 and later).
        #[serde(default)]
        members: Vec<EnumMember>,
    },
    /// An array type.
    Array {
        /// The element type's name.
        #[serde(rename = "element-type")]
        element_type: String,
    },
    /// An object type: a struct, or a union with a tag and variants.
    Object {
        /// Its members, base members first.
        members: Vec<Member>,
        /// The discriminator member of a union.
        #[serde(default)]
        tag: Option<String>,
        /// The branches of a union.
        #[serde(default)]
        variants: Vec<Variant>,
    },
    /// An alternate: one of several types, told apart by JSON type.
    Alternate {
        /// The alternatives.
        members: Vec<Alternative>,
    },
    /// A command.
    Command {
        /// Its argument type.
        #[serde(rename = "arg-type")]
        arg_type: String,
        /// Its return type.
        #[serde(rename = "ret-type")]
        ret_type: String,
        /// Whether it can run out of band.
        #[serde(default, rename = "allow-oob")]
        allow_oob: bool,
    },
    /// An event.
    Event {
        /// Its data type.
        #[serde(rename = "arg-type")]
        arg_type: String,
    },
    /// A meta-type newer than this crate.
    #[serde(other)]
    Unknown,
}

/// A value of an enumeration, with its features.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EnumMember {
    /// The value.
    pub name: String,
    /// Its features.
    #[serde(default)]
    pub features: Vec<String>,
    /// Its condition (documents written by `qapi-codegen`).
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
}

/// A member of an object type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    /// The member's name.
    pub name: String,
    /// Its type's name.
    #[serde(rename = "type")]
    pub type_: String,
    /// Present (as `null`) when the member is optional.
    #[serde(default, deserialize_with = "present")]
    pub default: Option<serde_json::Value>,
    /// Its features.
    #[serde(default)]
    pub features: Vec<String>,
    /// Its condition (documents written by `qapi-codegen`).
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
}

impl Member {
    /// Whether the member may be left out.
    pub fn optional(&self) -> bool {
        self.default.is_some()
    }
}

fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// A branch of a union.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Variant {
    /// The tag value that selects it.
    pub case: String,
    /// The type holding the branch's own members.
    #[serde(rename = "type")]
    pub type_: String,
    /// Its condition (documents written by `qapi-codegen`).
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
}

/// One alternative of an alternate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Alternative {
    /// Its type's name.
    #[serde(rename = "type")]
    pub type_: String,
    /// Its condition (documents written by `qapi-codegen`).
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
}

impl Schema {
    /// Reads a document: the JSON array `query-qmp-schema` returns.
    pub fn from_json(text: &str) -> Result<Schema, Error> {
        let entities: Vec<Entity> = serde_json::from_str(text)?;
        Ok(Schema::from_entities(entities))
    }

    /// Builds a schema from entities.
    pub fn from_entities(entities: impl IntoIterator<Item = Entity>) -> Schema {
        let mut schema = Schema::default();
        for entity in entities {
            match entity.meta {
                Meta::Command { .. } => schema.commands.push(entity.name.clone()),
                Meta::Event { .. } => schema.events.push(entity.name.clone()),
                _ => {}
            }
            schema.entities.insert(entity.name.clone(), entity);
        }
        schema.commands.sort();
        schema.events.sort();
        schema
    }

    /// The entity called `name`.
    pub fn get(&self, name: &str) -> Option<&Entity> {
        self.entities.get(name)
    }

    /// The command names, sorted.
    pub fn commands(&self) -> &[String] {
        &self.commands
    }

    /// The event names, sorted.
    pub fn events(&self) -> &[String] {
        &self.events
    }

    /// How many entities the document has.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether the document is empty.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }
}
