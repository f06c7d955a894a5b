//! The checked schema: plain data, every reference resolved.
//!
//! A [`Schema`] holds every definition ([`Entity`]) in definition order —
//! the built-in types first, then the schema's own definitions with the
//! implicit types QEMU derives from them (array types `FooList`, argument
//! types `q_obj_foo-arg`, union base types `q_obj_Foo-base`) — and the
//! modules (one per schema file) that list them in QEMU's order.  Code
//! generation reads only this model.

use std::collections::HashMap;
use std::fmt;

use crate::doc::DocBlock;
use crate::parser::Pragmas;
use crate::source::{Location, SourceMap};

/// Index of an entity in [`Schema::entities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId(pub u32);

/// An `if` condition on QEMU's build configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    /// A configuration symbol, such as `CONFIG_SPICE`.
    Name(String),
    /// Negation.
    Not(Box<Condition>),
    /// All of the conditions hold.
    All(Vec<Condition>),
    /// Any of the conditions holds.
    Any(Vec<Condition>),
}

impl Condition {
    /// Both conditions: `a` and `b` (either may be absent).
    pub fn and(a: Option<&Condition>, b: Option<&Condition>) -> Option<Condition> {
        match (a, b) {
            (None, None) => None,
            (Some(x), None) | (None, Some(x)) => Some(x.clone()),
            (Some(x), Some(y)) => Some(Condition::All(vec![x.clone(), y.clone()])),
        }
    }
}

impl fmt::Display for Condition {
    /// Prints the condition as QEMU's test harness does (a Python literal:
    /// `NAME` at the top, `{'all': ['A', {'not': 'B'}]}` for operators).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn nested(c: &Condition, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match c {
                Condition::Name(n) => write!(f, "'{n}'"),
                Condition::Not(inner) => {
                    f.write_str("{'not': ")?;
                    nested(inner, f)?;
                    f.write_str("}")
                }
                Condition::All(list) | Condition::Any(list) => {
                    let op = if matches!(c, Condition::All(_)) {
                        "all"
                    } else {
                        "any"
                    };
                    write!(f, "{{'{op}': [")?;
                    for (i, item) in list.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        nested(item, f)?;
                    }
                    f.write_str("]}")
                }
            }
        }
        match self {
            Condition::Name(n) => f.write_str(n),
            other => nested(other, f),
        }
    }
}

/// Where a definition comes from: its location and the definition QEMU
/// names in error messages about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Where the defining expression starts.
    pub loc: Location,
    /// The kind of the defining expression (`struct`, `command`, …).
    pub meta: &'static str,
    /// The name of the defining expression.
    pub defn: String,
}

/// A feature of a definition, member or enum value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The feature's name.
    pub name: String,
    /// Its condition.
    pub ifcond: Option<Condition>,
}

impl Feature {
    /// Whether this is one of the features QEMU gives a meaning:
    /// `deprecated` or `unstable`.
    pub fn is_special(&self) -> bool {
        matches!(self.name.as_str(), "deprecated" | "unstable")
    }
}

/// A value of an enum type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    /// The value as it appears on the wire.
    pub name: String,
    /// Its condition.
    pub ifcond: Option<Condition>,
    /// Its features.
    pub features: Vec<Feature>,
}

/// A member of an object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's name (without the `*` that marks it optional).
    pub name: String,
    /// Its type.
    pub ty: EntityId,
    /// Whether it may be absent.
    pub optional: bool,
    /// Its condition.
    pub ifcond: Option<Condition>,
    /// Its features.
    pub features: Vec<Feature>,
    /// The type that declares it (for base members, the base).
    pub defined_in: EntityId,
}

/// A branch of a union or an alternative of an alternate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The discriminator value (unions) or the alternative's name.
    pub name: String,
    /// The branch's type (`q_empty` for union branches the schema omits).
    pub ty: EntityId,
    /// Its condition.
    pub ifcond: Option<Condition>,
}

/// The branches of a union, selected by a discriminator member of enum type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branches {
    /// The discriminator member's name.
    pub tag: String,
    /// The branches, as written, then one with type `q_empty` for each enum
    /// value the schema gives no branch.
    pub variants: Vec<Variant>,
}

/// How a built-in type appears in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// A JSON string.
    String,
    /// A JSON number (floating point).
    Number,
    /// A JSON number (integer).
    Int,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
    /// Any JSON value.
    Value,
}

/// What a definition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityKind {
    /// A built-in type (`str`, `int8`, `any`, …).
    Builtin(JsonType),
    /// An enumeration.
    Enum {
        /// The values, in order.
        values: Vec<EnumValue>,
        /// The `prefix` QEMU's C generator uses, if given.
        prefix: Option<String>,
    },
    /// An array of another type.
    Array {
        /// The element type.
        element: EntityId,
    },
    /// A struct, or a union (with branches).
    Object {
        /// The base type.
        base: Option<EntityId>,
        /// The members declared here (not the base's).
        local_members: Vec<Member>,
        /// The union's branches.
        branches: Option<Branches>,
    },
    /// An alternate: a value of one of several types told apart by their
    /// JSON type.
    Alternate {
        /// The alternatives.
        alternatives: Vec<Variant>,
    },
    /// A command.
    Command(Command),
    /// An event.
    Event {
        /// The event's data type.
        arg_type: Option<EntityId>,
        /// Whether the data type is passed whole (`boxed`).
        boxed: bool,
    },
}

/// A command's properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The arguments type.
    pub arg_type: Option<EntityId>,
    /// The return type.
    pub ret_type: Option<EntityId>,
    /// False for commands whose marshalling QEMU writes by hand
    /// (`gen: false`), which accept arguments beyond the schema's.
    pub gen: bool,
    /// False for commands that send no reply on success.
    pub success_response: bool,
    /// Whether the arguments type is passed whole.
    pub boxed: bool,
    /// Whether the command may run out of band.
    pub allow_oob: bool,
    /// Whether the command may run before machine creation.
    pub allow_preconfig: bool,
    /// Whether QEMU runs the command in a coroutine.
    pub coroutine: bool,
}

/// A definition: a type, a command or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The name, as QEMU spells it.
    pub name: String,
    /// Where it is defined; `None` for built-ins.
    pub info: Option<Info>,
    /// Its documentation block (an index into [`Schema::docs`]).
    pub doc: Option<usize>,
    /// Its condition.  (For array types, the element type's.)
    pub ifcond: Option<Condition>,
    /// Its features.
    pub features: Vec<Feature>,
    /// What it is.
    pub kind: EntityKind,
    /// The module it belongs to (an index into [`Schema::modules`]).
    pub module: usize,
}

impl Entity {
    /// The kind's name as QEMU's messages use it: `enum`, `struct`, …
    pub fn meta(&self) -> &'static str {
        match &self.kind {
            EntityKind::Builtin(_) => "built-in",
            EntityKind::Enum { .. } => "enum",
            EntityKind::Array { .. } => "array",
            EntityKind::Object { branches, .. } => {
                if branches.is_some() {
                    "union"
                } else {
                    "struct"
                }
            }
            EntityKind::Alternate { .. } => "alternate",
            EntityKind::Command(_) => "command",
            EntityKind::Event { .. } => "event",
        }
    }

    /// Whether QEMU made this definition up rather than the schema
    /// declaring it: arrays, argument and base types, and `QType`.
    pub fn is_implicit(&self) -> bool {
        match &self.kind {
            EntityKind::Array { .. } => true,
            EntityKind::Object { .. } => self.name.starts_with("q_"),
            EntityKind::Enum { .. } => self.name == "QType",
            EntityKind::Builtin(_) => true,
            _ => false,
        }
    }

    /// Whether this is a type (not a command or event).
    pub fn is_type(&self) -> bool {
        !matches!(self.kind, EntityKind::Command(_) | EntityKind::Event { .. })
    }

    /// Whether the `deprecated` feature is present.
    pub fn is_deprecated(&self) -> bool {
        self.features.iter().any(|f| f.name == "deprecated")
    }
}

/// An item of a module, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleItem {
    /// An `include` directive, naming the included module.
    Include(String),
    /// A definition.
    Entity(EntityId),
}

/// A schema file and what it defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The file's path relative to the root file's directory, or
    /// `./builtin` for the built-in types.
    pub name: String,
    /// Its includes and definitions in order.
    pub items: Vec<ModuleItem>,
    /// Its free-form documentation blocks (module introductions, section
    /// headings), in source order, as indices into [`Schema::docs`].
    pub free_docs: Vec<usize>,
}

/// A checked schema.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The files read.
    pub sources: SourceMap,
    /// Every definition, built-ins first, in definition order.
    pub entities: Vec<Entity>,
    /// The modules: `./builtin`, the root file, then each included file in
    /// the order first included.
    pub modules: Vec<Module>,
    /// Documentation blocks in source order.
    pub docs: Vec<DocBlock>,
    /// Every feature name used, special features first.
    pub feature_names: Vec<String>,
    /// The pragmas.
    pub pragmas: Pragmas,
    pub(crate) by_name: HashMap<String, EntityId>,
}

impl Schema {
    /// The entity with this id.
    pub fn entity(&self, id: EntityId) -> &Entity {
        &self.entities[id.0 as usize]
    }

    /// The entity named `name`.
    pub fn lookup(&self, name: &str) -> Option<&Entity> {
        self.by_name.get(name).map(|&id| self.entity(id))
    }

    /// The id of the entity named `name`.
    pub fn lookup_id(&self, name: &str) -> Option<EntityId> {
        self.by_name.get(name).copied()
    }

    /// The name of an entity.
    pub fn name(&self, id: EntityId) -> &str {
        &self.entity(id).name
    }

    /// All commands, in definition order.
    pub fn commands(&self) -> impl Iterator<Item = &Entity> {
        self.entities
            .iter()
            .filter(|e| matches!(e.kind, EntityKind::Command(_)))
    }

    /// All events, in definition order.
    pub fn events(&self) -> impl Iterator<Item = &Entity> {
        self.entities
            .iter()
            .filter(|e| matches!(e.kind, EntityKind::Event { .. }))
    }

    /// All types, in definition order.
    pub fn types(&self) -> impl Iterator<Item = &Entity> {
        self.entities.iter().filter(|e| e.is_type())
    }

    /// The documentation block of an entity.
    pub fn doc(&self, id: EntityId) -> Option<&DocBlock> {
        self.entity(id).doc.map(|i| &self.docs[i])
    }

    /// All members of an object type, base members first.
    pub fn members(&self, id: EntityId) -> Vec<&Member> {
        let mut out = Vec::new();
        self.collect_members(id, &mut out);
        out
    }

    fn collect_members<'a>(&'a self, id: EntityId, out: &mut Vec<&'a Member>) {
        if let EntityKind::Object {
            base,
            local_members,
            ..
        } = &self.entity(id).kind
        {
            if let Some(base) = base {
                self.collect_members(*base, out);
            }
            out.extend(local_members.iter());
        }
    }
}
