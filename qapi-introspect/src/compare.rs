//! Structural comparison of two introspection documents, from their
//! commands and events down through every type they use.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use crate::schema::{Entity, Member, Meta, Schema};

/// Features worth reporting when they appear or disappear.
const SPECIAL_FEATURES: [&str; 2] = ["deprecated", "unstable"];

/// The comparison of a `left` document with a `right` one: the bindings
/// with a live QEMU, or an older release with a newer one.  "Removed"
/// means in `left` only, "added" in `right` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// What the left side is (for display): "the bindings (10.2.2)".
    pub left: String,
    /// What the right side is: "QEMU 7.2.22".
    pub right: String,
    /// Every command of either side, by name.
    pub commands: BTreeMap<String, Item>,
    /// Every event of either side, by name.
    pub events: BTreeMap<String, Item>,
}

/// One command or event in the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Which sides have it.
    pub presence: Presence,
    /// Its condition on the left (documents written by `qapi-codegen`):
    /// why a build of QEMU may lack it.
    pub condition: Option<String>,
    /// Its `deprecated` / `unstable` features on the right side.
    pub right_features: Vec<String>,
    /// What differs, when both sides have it.
    pub changes: Vec<Change>,
}

/// Which sides have a command or event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Both sides.
    Both,
    /// Only the left side (removed / missing on the right).
    LeftOnly,
    /// Only the right side (added / unknown to the left).
    RightOnly,
}

/// One difference inside a command or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Where: `arguments.node-name`, `return[].inserted.children`,
    /// `arguments{driver=qcow2}.file`, `data.reason`.
    pub path: String,
    /// What.
    pub kind: ChangeKind,
}

/// What differs at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// A member only the left side has.
    MemberRemoved {
        /// Whether it was optional on the left.
        optional: bool,
        /// Its condition on the left, if any.
        condition: Option<String>,
    },
    /// A member only the right side has.
    MemberAdded {
        /// Whether it is optional on the right.
        optional: bool,
    },
    /// Required on the left, optional on the right.
    BecameOptional,
    /// Optional on the left, required on the right.
    BecameRequired,
    /// Enum values only the left side has.
    ValuesRemoved(Vec<Named>),
    /// Enum values only the right side has.
    ValuesAdded(Vec<String>),
    /// Union branches only the left side has.
    VariantsRemoved(Vec<Named>),
    /// Union branches only the right side has.
    VariantsAdded(Vec<String>),
    /// Alternatives (by JSON type) only the left side has.
    AlternativesRemoved(Vec<String>),
    /// Alternatives (by JSON type) only the right side has.
    AlternativesAdded(Vec<String>),
    /// A different kind of type.
    TypeChanged {
        /// The left kind: `int`, `string`, `enum`, `object`, `array`, ….
        left: String,
        /// The right kind.
        right: String,
    },
    /// A union's discriminator member differs.
    TagChanged {
        /// The left tag.
        left: Option<String>,
        /// The right tag.
        right: Option<String>,
    },
    /// A `deprecated` or `unstable` feature only the right side has.
    FeatureAdded(String),
    /// A `deprecated` or `unstable` feature only the left side has.
    FeatureRemoved(String),
    /// `allow-oob` differs.
    OobChanged {
        /// On the left.
        left: bool,
        /// On the right.
        right: bool,
    },
    /// A type the document does not define (a broken document).
    Undefined(String),
}

/// An enum value or union branch, with its condition on the left side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The value or branch.
    pub name: String,
    /// Its condition on the left (`CONFIG_LINUX_IO_URING`), when it has one.
    pub condition: Option<String>,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.condition {
            Some(condition) => write!(f, "{} (if {condition})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl ChangeKind {
    /// Whether the change is only that the right side lacks things the left
    /// side has under a condition (`if`): what a QEMU built without that
    /// feature or for another target looks like.
    pub fn is_conditional(&self) -> bool {
        match self {
            ChangeKind::MemberRemoved { condition, .. } => condition.is_some(),
            ChangeKind::ValuesRemoved(named) | ChangeKind::VariantsRemoved(named) => {
                named.iter().all(|n| n.condition.is_some())
            }
            _ => false,
        }
    }
}

impl Item {
    /// The changes that a build condition does not explain.
    pub fn unconditional_changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| !c.kind.is_conditional())
    }
}

impl Comparison {
    /// Compares `left` with `right`; `left_label` and `right_label` name
    /// them in the display.
    pub fn new(
        left: &Schema,
        right: &Schema,
        left_label: impl Into<String>,
        right_label: impl Into<String>,
    ) -> Comparison {
        Comparison {
            left: left_label.into(),
            right: right_label.into(),
            commands: compare_items(left, right, left.commands(), right.commands()),
            events: compare_items(left, right, left.events(), right.events()),
        }
    }

    /// The command called `name`, if either side has it.
    pub fn command(&self, name: &str) -> Option<&Item> {
        self.commands.get(name)
    }

    /// Names of commands with the given presence.
    pub fn commands_with(&self, presence: Presence) -> impl Iterator<Item = &str> {
        with(&self.commands, presence)
    }

    /// Names of events with the given presence.
    pub fn events_with(&self, presence: Presence) -> impl Iterator<Item = &str> {
        with(&self.events, presence)
    }

    /// Whether the two sides agree on everything.
    pub fn is_identical(&self) -> bool {
        self.commands
            .values()
            .chain(self.events.values())
            .all(|item| item.presence == Presence::Both && item.changes.is_empty())
    }
}

fn with(items: &BTreeMap<String, Item>, presence: Presence) -> impl Iterator<Item = &str> {
    items
        .iter()
        .filter(move |(_, item)| item.presence == presence)
        .map(|(name, _)| name.as_str())
}

fn compare_items(
    left: &Schema,
    right: &Schema,
    left_names: &[String],
    right_names: &[String],
) -> BTreeMap<String, Item> {
    let right_set: HashSet<&str> = right_names.iter().map(String::as_str).collect();
    let left_set: HashSet<&str> = left_names.iter().map(String::as_str).collect();
    let mut items = BTreeMap::new();
    for name in left_names {
        let (Some(l), presence) = (left.get(name), right_set.contains(name.as_str())) else {
            continue;
        };
        let item = if presence {
            let r = right.get(name).expect("listed");
            let mut walker = Walker {
                left,
                right,
                seen: HashSet::new(),
                changes: Vec::new(),
            };
            walker.entity_pair(l, r);
            Item {
                presence: Presence::Both,
                condition: l.condition.clone(),
                right_features: special(&r.features),
                changes: walker.changes,
            }
        } else {
            Item {
                presence: Presence::LeftOnly,
                condition: l.condition.clone(),
                right_features: Vec::new(),
                changes: Vec::new(),
            }
        };
        items.insert(name.clone(), item);
    }
    for name in right_names {
        if !left_set.contains(name.as_str()) {
            let features = right.get(name).map(|r| special(&r.features));
            items.insert(
                name.clone(),
                Item {
                    presence: Presence::RightOnly,
                    condition: None,
                    right_features: features.unwrap_or_default(),
                    changes: Vec::new(),
                },
            );
        }
    }
    items
}

fn special(features: &[String]) -> Vec<String> {
    features
        .iter()
        .filter(|f| SPECIAL_FEATURES.contains(&f.as_str()))
        .cloned()
        .collect()
}

/// Walks one command or event on both sides at once.
struct Walker<'a> {
    left: &'a Schema,
    right: &'a Schema,
    /// Type pairs already compared (types are shared and may recurse).
    seen: HashSet<(&'a str, &'a str)>,
    changes: Vec<Change>,
}

impl<'a> Walker<'a> {
    fn push(&mut self, path: &str, kind: ChangeKind) {
        self.changes.push(Change {
            path: path.to_owned(),
            kind,
        });
    }

    fn features(&mut self, path: &str, left: &[String], right: &[String]) {
        for feature in SPECIAL_FEATURES {
            let (l, r) = (
                left.iter().any(|f| f == feature),
                right.iter().any(|f| f == feature),
            );
            if r && !l {
                self.push(path, ChangeKind::FeatureAdded(feature.to_owned()));
            } else if l && !r {
                self.push(path, ChangeKind::FeatureRemoved(feature.to_owned()));
            }
        }
    }

    fn entity_pair(&mut self, l: &'a Entity, r: &'a Entity) {
        self.features("", &l.features, &r.features);
        match (&l.meta, &r.meta) {
            (
                Meta::Command {
                    arg_type: la,
                    ret_type: lr,
                    allow_oob: lo,
                },
                Meta::Command {
                    arg_type: ra,
                    ret_type: rr,
                    allow_oob: ro,
                },
            ) => {
                if lo != ro {
                    self.push(
                        "",
                        ChangeKind::OobChanged {
                            left: *lo,
                            right: *ro,
                        },
                    );
                }
                self.types("arguments", la, ra);
                self.types("return", lr, rr);
            }
            (Meta::Event { arg_type: la }, Meta::Event { arg_type: ra }) => {
                self.types("data", la, ra);
            }
            _ => self.push(
                "",
                ChangeKind::TypeChanged {
                    left: kind_of(self.left, &l.name),
                    right: kind_of(self.right, &r.name),
                },
            ),
        }
    }

    fn types(&mut self, path: &str, left: &'a str, right: &'a str) {
        if !self.seen.insert((left, right)) {
            return;
        }
        let (Some(l), Some(r)) = (self.left.get(left), self.right.get(right)) else {
            let missing = if self.left.get(left).is_none() {
                left
            } else {
                right
            };
            self.push(path, ChangeKind::Undefined(missing.to_owned()));
            return;
        };
        match (&l.meta, &r.meta) {
            (Meta::Builtin { json_type: lj }, Meta::Builtin { json_type: rj }) => {
                if lj != rj {
                    self.type_changed(path, left, right);
                }
            }
            (
                Meta::Enum {
                    values: lv,
                    members: lm,
                },
                Meta::Enum {
                    values: rv,
                    members: rm,
                },
            ) => {
                let (removed, added) = set_difference(lv, rv);
                if !removed.is_empty() {
                    let condition = |name: &str| {
                        lm.iter()
                            .find(|m| m.name == name)
                            .and_then(|m| m.condition.clone())
                    };
                    let removed = removed
                        .into_iter()
                        .map(|name| Named {
                            condition: condition(&name),
                            name,
                        })
                        .collect();
                    self.push(path, ChangeKind::ValuesRemoved(removed));
                }
                if !added.is_empty() {
                    self.push(path, ChangeKind::ValuesAdded(added));
                }
                for l_member in lm {
                    if let Some(r_member) = rm.iter().find(|m| m.name == l_member.name) {
                        let at = format!("{path}={}", l_member.name);
                        self.features(&at, &l_member.features, &r_member.features);
                    }
                }
            }
            (Meta::Array { element_type: le }, Meta::Array { element_type: re }) => {
                self.types(&format!("{path}[]"), le, re);
            }
            (
                Meta::Object {
                    members: lm,
                    tag: lt,
                    variants: lv,
                },
                Meta::Object {
                    members: rm,
                    tag: rt,
                    variants: rv,
                },
            ) => {
                self.members(path, lm, rm);
                if lt != rt {
                    self.push(
                        path,
                        ChangeKind::TagChanged {
                            left: lt.clone(),
                            right: rt.clone(),
                        },
                    );
                    return;
                }
                let Some(tag) = lt else { return };
                let cases = |v: &[crate::schema::Variant]| -> Vec<String> {
                    v.iter().map(|v| v.case.clone()).collect()
                };
                let (removed, added) = set_difference(&cases(lv), &cases(rv));
                if !removed.is_empty() {
                    let removed = lv
                        .iter()
                        .filter(|v| removed.contains(&v.case))
                        .map(|v| Named {
                            name: v.case.clone(),
                            condition: v.condition.clone(),
                        })
                        .collect();
                    self.push(path, ChangeKind::VariantsRemoved(removed));
                }
                if !added.is_empty() {
                    self.push(path, ChangeKind::VariantsAdded(added));
                }
                for l_variant in lv {
                    if let Some(r_variant) = rv.iter().find(|v| v.case == l_variant.case) {
                        let at = format!("{path}{{{tag}={}}}", l_variant.case);
                        self.types(&at, &l_variant.type_, &r_variant.type_);
                    }
                }
            }
            (Meta::Alternate { members: la }, Meta::Alternate { members: ra }) => {
                let by_kind =
                    |schema: &'a Schema, alternatives: &'a [crate::schema::Alternative]| {
                        alternatives
                            .iter()
                            .map(|a| (kind_of(schema, &a.type_), a.type_.as_str()))
                            .collect::<BTreeMap<String, &'a str>>()
                    };
                let (lk, rk) = (by_kind(self.left, la), by_kind(self.right, ra));
                let removed: Vec<String> = lk
                    .keys()
                    .filter(|k| !rk.contains_key(*k))
                    .cloned()
                    .collect();
                let added: Vec<String> = rk
                    .keys()
                    .filter(|k| !lk.contains_key(*k))
                    .cloned()
                    .collect();
                if !removed.is_empty() {
                    self.push(path, ChangeKind::AlternativesRemoved(removed));
                }
                if !added.is_empty() {
                    self.push(path, ChangeKind::AlternativesAdded(added));
                }
                for (kind, l_type) in &lk {
                    if let Some(r_type) = rk.get(kind) {
                        self.types(&format!("{path}<{kind}>"), l_type, r_type);
                    }
                }
            }
            _ => self.type_changed(path, left, right),
        }
    }

    fn type_changed(&mut self, path: &str, left: &str, right: &str) {
        let kind = ChangeKind::TypeChanged {
            left: kind_of(self.left, left),
            right: kind_of(self.right, right),
        };
        self.push(path, kind);
    }

    fn members(&mut self, path: &str, left: &'a [Member], right: &'a [Member]) {
        let join = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        for l in left {
            let at = join(&l.name);
            match right.iter().find(|r| r.name == l.name) {
                None => self.push(
                    &at,
                    ChangeKind::MemberRemoved {
                        optional: l.optional(),
                        condition: l.condition.clone(),
                    },
                ),
                Some(r) => {
                    match (l.optional(), r.optional()) {
                        (false, true) => self.push(&at, ChangeKind::BecameOptional),
                        (true, false) => self.push(&at, ChangeKind::BecameRequired),
                        _ => {}
                    }
                    self.features(&at, &l.features, &r.features);
                    self.types(&at, &l.type_, &r.type_);
                }
            }
        }
        for r in right {
            if !left.iter().any(|l| l.name == r.name) {
                self.push(
                    &join(&r.name),
                    ChangeKind::MemberAdded {
                        optional: r.optional(),
                    },
                );
            }
        }
    }
}

/// What kind of JSON a type is, for messages and for matching
/// alternatives: the built-in's JSON type, `enum` (a string), `object`,
/// `array`, `alternate`.
fn kind_of(schema: &Schema, name: &str) -> String {
    match schema.get(name).map(|e| &e.meta) {
        Some(Meta::Builtin { json_type }) => json_type.clone(),
        Some(Meta::Enum { .. }) => "string".to_owned(),
        Some(Meta::Object { .. }) => "object".to_owned(),
        Some(Meta::Array { .. }) => "array".to_owned(),
        Some(Meta::Alternate { .. }) => "alternate".to_owned(),
        Some(Meta::Command { .. }) => "command".to_owned(),
        Some(Meta::Event { .. }) => "event".to_owned(),
        Some(Meta::Unknown) => "unknown".to_owned(),
        None => format!("undefined {name}"),
    }
}

/// Values only in `left`, and only in `right`, each in their order.
fn set_difference(left: &[String], right: &[String]) -> (Vec<String>, Vec<String>) {
    let l: BTreeSet<&String> = left.iter().collect();
    let r: BTreeSet<&String> = right.iter().collect();
    (
        left.iter().filter(|v| !r.contains(v)).cloned().collect(),
        right.iter().filter(|v| !l.contains(v)).cloned().collect(),
    )
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| v.join(", ");
        let named = |v: &[Named]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            ChangeKind::MemberRemoved {
                optional,
                condition,
            } => {
                let how = if *optional { "optional" } else { "required" };
                write!(f, "member removed (was {how})")?;
                if let Some(condition) = condition {
                    write!(f, ", conditional on {condition}")?;
                }
                Ok(())
            }
            ChangeKind::MemberAdded { optional: true } => f.write_str("optional member added"),
            ChangeKind::MemberAdded { optional: false } => f.write_str("required member added"),
            ChangeKind::BecameOptional => f.write_str("became optional"),
            ChangeKind::BecameRequired => f.write_str("became required"),
            ChangeKind::ValuesRemoved(v) => write!(f, "enum values removed: {}", named(v)),
            ChangeKind::ValuesAdded(v) => write!(f, "enum values added: {}", list(v)),
            ChangeKind::VariantsRemoved(v) => write!(f, "union branches removed: {}", named(v)),
            ChangeKind::VariantsAdded(v) => write!(f, "union branches added: {}", list(v)),
            ChangeKind::AlternativesRemoved(v) => {
                write!(f, "alternatives removed: {}", list(v))
            }
            ChangeKind::AlternativesAdded(v) => write!(f, "alternatives added: {}", list(v)),
            ChangeKind::TypeChanged { left, right } => write!(f, "type {left} became {right}"),
            ChangeKind::TagChanged { left, right } => {
                write!(f, "discriminator {left:?} became {right:?}")
            }
            ChangeKind::FeatureAdded(feature) => write!(f, "now {feature}"),
            ChangeKind::FeatureRemoved(feature) => write!(f, "no longer {feature}"),
            ChangeKind::OobChanged { left, right } => {
                write!(f, "allow-oob {left} became {right}")
            }
            ChangeKind::Undefined(name) => write!(f, "type {name} is not defined"),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} → {}", self.left, self.right)?;
        for (what, items) in [("commands", &self.commands), ("events", &self.events)] {
            let count = |p: Presence| items.values().filter(|i| i.presence == p).count();
            let changed = items
                .values()
                .filter(|i| i.presence == Presence::Both && !i.changes.is_empty())
                .count();
            writeln!(
                f,
                "{what}: {} in both ({} identical, {changed} changed); {} only in {}; {} only in {}",
                count(Presence::Both),
                count(Presence::Both) - changed,
                count(Presence::LeftOnly),
                self.left,
                count(Presence::RightOnly),
                self.right,
            )?;
        }
        for (what, items) in [("commands", &self.commands), ("events", &self.events)] {
            for (presence, side) in [
                (Presence::LeftOnly, &self.left),
                (Presence::RightOnly, &self.right),
            ] {
                let names: Vec<String> = items
                    .iter()
                    .filter(|(_, i)| i.presence == presence)
                    .map(|(name, i)| match &i.condition {
                        Some(c) => format!("{name} (if {c})"),
                        None => name.clone(),
                    })
                    .collect();
                if !names.is_empty() {
                    writeln!(f, "\n{what} only in {side}:")?;
                    for name in names {
                        writeln!(f, "  {name}")?;
                    }
                }
            }
            let changed: Vec<_> = items
                .iter()
                .filter(|(_, i)| !i.changes.is_empty())
                .collect();
            if !changed.is_empty() {
                writeln!(f, "\n{what} that differ:")?;
                for (name, item) in changed {
                    writeln!(f, "  {name}")?;
                    for change in &item.changes {
                        let path = if change.path.is_empty() {
                            "(itself)"
                        } else {
                            &change.path
                        };
                        writeln!(f, "    {path}: {}", change.kind)?;
                    }
                }
            }
            let flagged: Vec<String> = items
                .iter()
                .filter(|(_, i)| !i.right_features.is_empty())
                .map(|(name, i)| format!("{name} ({})", i.right_features.join(", ")))
                .collect();
            if !flagged.is_empty() {
                writeln!(f, "\n{what} {} marks deprecated or unstable:", self.right)?;
                for line in flagged {
                    writeln!(f, "  {line}")?;
                }
            }
        }
        Ok(())
    }
}
