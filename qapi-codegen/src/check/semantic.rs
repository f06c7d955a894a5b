//! Semantic checks on entities: resolution, bases, branches, alternatives,
//! clashes, and documentation connected to what it documents.
//!
//! Entities are checked in definition order.  An object type is checked on
//! first use (as a base or a branch) or in turn, whichever comes first, and
//! using one while it is being checked is a cycle.

use std::collections::{HashMap, HashSet};

use super::define::{describe_entity, Builder, Listed, Pending};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::doc::SectionKind;
use crate::model::{
    Branches, Entity, EntityId, EntityKind, Feature, Info, JsonType, Member, Module, ModuleItem,
    Schema, Variant,
};
use crate::naming::c_name;
use crate::rules::Rules;

type Result<T> = std::result::Result<T, Diagnostic>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unchecked,
    InProgress,
    Done,
}

/// A member as the clash check sees it.
#[derive(Debug, Clone)]
struct Seen {
    role: &'static str,
    name: String,
    defined_in: String,
    /// For members: the declaring entity and the index among its locals.
    member: Option<(EntityId, usize)>,
}

/// How deep bases and branches may nest: a bound on recursion, far beyond
/// any real schema (QEMU's deepest is a handful of levels).
const MAX_TYPE_NESTING: usize = 100;

struct Checker {
    b: Builder,
    /// Object types being checked, innermost last.
    nesting: usize,
    /// Per entity: how deep a checked object type nests.
    depth: Vec<usize>,
    state: Vec<State>,
    /// Per documentation block: the member and feature names connected.
    connected: HashMap<usize, (HashSet<String>, HashSet<String>)>,
}

fn err(info: &Info, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(info.loc, message).in_definition(info.meta, &info.defn)
}

/// How QEMU names a member, value, feature or branch in messages, relative
/// to the definition being checked.
fn describe_member(role: &str, name: &str, defined_in: &str, info: &Info) -> String {
    let mut role = role.to_owned();
    let mut meta = "type";
    let mut owner = defined_in;
    if let Some(rest) = owner.strip_prefix("q_obj_") {
        if let Some(cmd) = rest.strip_suffix("-arg") {
            role = "parameter".to_owned();
            meta = "command";
            owner = cmd;
        } else if let Some(ty) = rest.strip_suffix("-base") {
            role = format!("base {role}");
            owner = ty;
        } else {
            owner = rest;
        }
    }
    if owner != info.defn {
        format!("{role} '{name}' of {meta} '{owner}'")
    } else {
        format!("{role} '{name}'")
    }
}

fn seen_describe(s: &Seen, info: &Info) -> String {
    describe_member(s.role, &s.name, &s.defined_in, info)
}

/// Adds `item` to `seen`, failing if its C name is taken.
fn check_clash(item: Seen, info: &Info, seen: &mut Vec<(String, Seen)>) -> Result<()> {
    let cname = c_name(&item.name, true);
    if let Some((_, other)) = seen.iter().find(|(c, _)| *c == cname) {
        return Err(err(
            info,
            format!(
                "{} collides with {}",
                seen_describe(&item, info),
                seen_describe(other, info)
            ),
        ));
    }
    seen.push((cname, item));
    Ok(())
}

fn feature_clashes(features: &[Feature], defined_in: &str, info: &Info) -> Result<()> {
    let mut seen = Vec::new();
    for f in features {
        check_clash(
            Seen {
                role: "feature",
                name: f.name.clone(),
                defined_in: defined_in.to_owned(),
                member: None,
            },
            info,
            &mut seen,
        )?;
    }
    Ok(())
}

impl Checker {
    fn info(&self, id: EntityId) -> Info {
        self.b
            .entity(id)
            .info
            .clone()
            .expect("only built-ins lack info, and they need no checks")
    }

    fn resolve(&self, name: &str, info: &Info, what: &str) -> Result<EntityId> {
        self.resolve_with(name, info, || what.to_owned())
    }

    /// Resolves a type name; `what` names the user in the error (built only
    /// when needed: most lookups succeed).
    fn resolve_with(
        &self,
        name: &str,
        info: &Info,
        what: impl FnOnce() -> String,
    ) -> Result<EntityId> {
        match self.b.lookup(name) {
            Some(id) if self.b.entity(id).is_type() => Ok(id),
            _ => Err(err(info, format!("{} uses unknown type '{name}'", what()))),
        }
    }

    fn json_type(&self, id: EntityId) -> JsonType {
        match &self.b.entity(id).kind {
            EntityKind::Builtin(j) => *j,
            EntityKind::Enum { .. } => JsonType::String,
            // Arrays and objects are told apart by name below.
            _ => JsonType::Value,
        }
    }

    /// The checks every definition gets: its features must not clash, and
    /// types may not carry the special features.
    fn check_definition(&self, id: EntityId) -> Result<()> {
        let entity = self.b.entity(id);
        let Some(info) = &entity.info else {
            return Ok(());
        };
        feature_clashes(&entity.features, &entity.name, info)?;
        if entity.is_type() {
            // 5.2 knew only the `deprecated` special feature.
            let special = |f: &&Feature| {
                f.is_special() && (self.b.rules >= Rules::V7_2 || f.name == "deprecated")
            };
            if let Some(f) = entity.features.iter().find(special) {
                return Err(err(
                    info,
                    format!("feature '{}' is not supported for types", f.name),
                ));
            }
        }
        Ok(())
    }

    fn check_entity(&mut self, id: EntityId) -> Result<()> {
        match self.b.pending[id.0 as usize].clone() {
            Pending::Object { .. } => self.check_object(id),
            Pending::Array { element } => {
                self.state[id.0 as usize] = State::Done;
                self.check_definition(id)?;
                let entity = self.b.entity(id);
                let resolved = match &entity.info {
                    Some(info) => self.resolve(&element, info, info.meta)?,
                    None => self.b.lookup(&element).expect("built-in element exists"),
                };
                if matches!(self.b.entity(resolved).kind, EntityKind::Array { .. }) {
                    let info = self.info(id);
                    return Err(err(
                        &info,
                        format!("array type ['{element}'] has an array as element type"),
                    ));
                }
                let ifcond = self.b.entity(resolved).ifcond.clone();
                let entity = self.b.entity_mut(id);
                entity.kind = EntityKind::Array { element: resolved };
                entity.ifcond = ifcond;
                Ok(())
            }
            Pending::Alternate { variant_types } => {
                self.state[id.0 as usize] = State::Done;
                self.check_definition(id)?;
                self.check_alternate(id, &variant_types)
            }
            Pending::Command { arg, ret } => {
                self.state[id.0 as usize] = State::Done;
                self.check_definition(id)?;
                self.check_command(id, arg, ret)
            }
            Pending::Event { arg } => {
                self.state[id.0 as usize] = State::Done;
                self.check_definition(id)?;
                self.check_event(id, arg)
            }
            Pending::None => {
                self.state[id.0 as usize] = State::Done;
                self.check_definition(id)?;
                let entity = self.b.entity(id);
                if let (EntityKind::Enum { values, .. }, Some(info)) = (&entity.kind, &entity.info)
                {
                    let mut seen = Vec::new();
                    for v in values {
                        check_clash(
                            Seen {
                                role: "value",
                                name: v.name.clone(),
                                defined_in: entity.name.clone(),
                                member: None,
                            },
                            info,
                            &mut seen,
                        )?;
                    }
                }
                Ok(())
            }
        }
    }

    /// All members of a checked object type as clash entries, base first.
    fn members_seen(&self, id: EntityId) -> Vec<Seen> {
        let mut out = Vec::new();
        self.collect_seen(id, &mut out);
        out
    }

    fn collect_seen(&self, id: EntityId, out: &mut Vec<Seen>) {
        let entity = self.b.entity(id);
        if let EntityKind::Object {
            base,
            local_members,
            ..
        } = &entity.kind
        {
            if let Some(base) = base {
                self.collect_seen(*base, out);
            }
            for (i, m) in local_members.iter().enumerate() {
                out.push(Seen {
                    role: "member",
                    name: m.name.clone(),
                    defined_in: self.b.entity(m.defined_in).name.clone(),
                    member: Some((m.defined_in, i)),
                });
            }
        }
    }

    /// QEMU's `check_clash` of an object type against `seen`: its members,
    /// then each branch's members (each branch against its own copy).
    fn object_clash(
        &self,
        id: EntityId,
        info: &Info,
        seen: &mut Vec<(String, Seen)>,
    ) -> Result<()> {
        for s in self.members_seen(id) {
            check_clash(s, info, seen)?;
        }
        if let EntityKind::Object {
            branches: Some(branches),
            ..
        } = &self.b.entity(id).kind
        {
            for v in &branches.variants {
                let mut copy = seen.clone();
                self.object_clash(v.ty, info, &mut copy)?;
            }
        }
        Ok(())
    }

    fn member(&self, owner: EntityId, index: usize) -> &Member {
        match &self.b.entity(owner).kind {
            EntityKind::Object { local_members, .. } => &local_members[index],
            _ => unreachable!("members belong to object types"),
        }
    }

    fn check_object(&mut self, id: EntityId) -> Result<()> {
        match self.state[id.0 as usize] {
            State::Done => return Ok(()),
            State::InProgress => {
                let info = self.info(id);
                let name = self.b.entity(id).name.clone();
                return Err(err(&info, format!("object {name} contains itself")));
            }
            State::Unchecked => {}
        }
        if self.nesting >= MAX_TYPE_NESTING {
            let info = self.info(id);
            return Err(err(
                &info,
                format!(
                    "types nest deeper than {MAX_TYPE_NESTING} levels through bases and branches"
                ),
            ));
        }
        self.nesting += 1;
        let result = self.check_object_inner(id);
        self.nesting -= 1;
        result
    }

    fn check_object_inner(&mut self, id: EntityId) -> Result<()> {
        self.state[id.0 as usize] = State::InProgress;
        self.check_definition(id)?;
        let Pending::Object {
            base,
            member_types,
            variant_types,
        } = self.b.pending[id.0 as usize].clone()
        else {
            unreachable!("check_object on an object");
        };
        let Some(info) = self.b.entity(id).info.clone() else {
            // q_empty: nothing to check.
            self.state[id.0 as usize] = State::Done;
            return Ok(());
        };
        let mut seen: Vec<(String, Seen)> = Vec::new();
        // How deep this type nests through bases and branches.
        let mut depth = 1;
        if let Some(base_name) = base {
            let base_id = self.resolve(&base_name, &info, "'base'")?;
            let base_entity = self.b.entity(base_id);
            let is_struct = matches!(&base_entity.kind, EntityKind::Object { branches: None, .. });
            if !is_struct {
                return Err(err(
                    &info,
                    format!(
                        "'base' requires a struct type, {} isn't",
                        describe_entity(base_entity)
                    ),
                ));
            }
            if let EntityKind::Object { base, .. } = &mut self.b.entity_mut(id).kind {
                *base = Some(base_id);
            }
            self.check_object(base_id)?;
            depth = self.depth[base_id.0 as usize] + 1;
            self.check_depth(depth, &info)?;
            self.object_clash(base_id, &info, &mut seen)?;
        }
        let owner_name = self.b.entity(id).name.clone();
        for (i, ty_name) in member_types.iter().enumerate() {
            let member = self.member(id, i);
            let ty = self.resolve_with(ty_name, &info, || {
                describe_member("member", &member.name, &owner_name, &info)
            })?;
            feature_clashes(&member.features, &member.name, &info)?;
            let member_name = member.name.clone();
            if let EntityKind::Object { local_members, .. } = &mut self.b.entity_mut(id).kind {
                local_members[i].ty = ty;
            }
            check_clash(
                Seen {
                    role: "member",
                    name: member_name,
                    defined_in: owner_name.clone(),
                    member: Some((id, i)),
                },
                &info,
                &mut seen,
            )?;
        }
        if !variant_types.is_empty() || self.has_branches(id) {
            self.check_branches(id, &info, &variant_types, &seen)?;
            if let EntityKind::Object {
                branches: Some(branches),
                ..
            } = &self.b.entity(id).kind
            {
                for v in &branches.variants {
                    depth = depth.max(self.depth[v.ty.0 as usize] + 1);
                }
                self.check_depth(depth, &info)?;
                for v in &branches.variants {
                    let mut copy = seen.clone();
                    self.object_clash(v.ty, &info, &mut copy)?;
                }
            }
        }
        self.depth[id.0 as usize] = depth;
        self.state[id.0 as usize] = State::Done;
        Ok(())
    }

    /// Bounds nesting through bases and branches, which the member and
    /// clash walks recurse through: the bound keeps them shallow and fast
    /// whatever order the types come in.
    fn check_depth(&self, depth: usize, info: &Info) -> Result<()> {
        if depth > MAX_TYPE_NESTING {
            return Err(err(
                info,
                format!(
                    "types nest deeper than {MAX_TYPE_NESTING} levels through bases and branches"
                ),
            ));
        }
        Ok(())
    }

    fn has_branches(&self, id: EntityId) -> bool {
        matches!(
            self.b.entity(id).kind,
            EntityKind::Object {
                branches: Some(_),
                ..
            }
        )
    }

    fn check_branches(
        &mut self,
        id: EntityId,
        info: &Info,
        variant_types: &[String],
        seen: &[(String, Seen)],
    ) -> Result<()> {
        let EntityKind::Object {
            branches: Some(branches),
            ..
        } = &self.b.entity(id).kind
        else {
            unreachable!("checked by the caller");
        };
        let tag_name = branches.tag.clone();
        let mut variants = branches.variants.clone();
        let tag = seen
            .iter()
            .find(|(c, _)| *c == c_name(&tag_name, true))
            .map(|(_, s)| s.clone())
            .filter(|s| s.name == tag_name);
        let Some(tag) = tag else {
            return Err(err(
                info,
                format!("discriminator '{tag_name}' is not a member of 'base'"),
            ));
        };
        let (owner, index) = tag.member.expect("members carry their owner");
        let owner_entity = self.b.entity(owner);
        let base_desc = if owner_entity.is_implicit() {
            "'base'".to_owned()
        } else {
            format!("base type '{}'", owner_entity.name)
        };
        let tag_member = self.member(owner, index).clone();
        let tag_type = self.b.entity(tag_member.ty);
        let EntityKind::Enum { values, .. } = &tag_type.kind else {
            return Err(err(
                info,
                format!("discriminator member '{tag_name}' of {base_desc} must be of enum type"),
            ));
        };
        if tag_member.optional {
            return Err(err(
                info,
                format!("discriminator member '{tag_name}' of {base_desc} must not be optional"),
            ));
        }
        if tag_member.ifcond.is_some() {
            return Err(err(
                info,
                format!("discriminator member '{tag_name}' of {base_desc} must not be conditional"),
            ));
        }
        let values = values.clone();
        let tag_type_desc = describe_entity(tag_type);
        let mut types: Vec<String> = variant_types.to_vec();
        // Values without a branch get an empty one.
        for v in &values {
            if !variants.iter().any(|b| b.name == v.name) {
                variants.push(Variant {
                    name: v.name.clone(),
                    ty: super::define::UNRESOLVED,
                    ifcond: v.ifcond.clone(),
                });
                types.push("q_empty".to_owned());
            }
        }
        if variants.is_empty() {
            return Err(err(info, "union has no branches"));
        }
        let union_name = self.b.entity(id).name.clone();
        for (v, ty_name) in variants.iter_mut().zip(&types) {
            let describe = || describe_member("branch", &v.name, &union_name, info);
            v.ty = self.resolve_with(ty_name, info, describe)?;
            if !values.iter().any(|e| e.name == v.name) {
                return Err(err(
                    info,
                    format!("branch '{}' is not a value of {tag_type_desc}", v.name),
                ));
            }
            let ty = self.b.entity(v.ty);
            // Before 10.0 a branch could not itself be a union.
            let union_branch = matches!(
                ty.kind,
                EntityKind::Object {
                    branches: Some(_),
                    ..
                }
            ) && self.b.rules < Rules::V10_0;
            if !matches!(ty.kind, EntityKind::Object { .. }) || union_branch {
                return Err(err(
                    info,
                    format!("{} cannot use {}", describe(), describe_entity(ty)),
                ));
            }
            self.check_object(v.ty)?;
        }
        if let EntityKind::Object {
            branches: Some(b), ..
        } = &mut self.b.entity_mut(id).kind
        {
            *b = Branches {
                tag: tag_name,
                variants,
            };
        }
        Ok(())
    }

    fn check_alternate(&mut self, id: EntityId, variant_types: &[String]) -> Result<()> {
        let info = self.info(id);
        let name = self.b.entity(id).name.clone();
        let EntityKind::Alternate { alternatives } = &self.b.entity(id).kind else {
            unreachable!("alternate");
        };
        let mut alternatives = alternatives.clone();
        for (v, ty_name) in alternatives.iter_mut().zip(variant_types) {
            v.ty = self.resolve_with(ty_name, &info, || {
                describe_member("branch", &v.name, &name, &info)
            })?;
        }
        let mut seen = Vec::new();
        // JSON type → the alternative that takes it.
        let mut types_seen: Vec<(&'static str, String)> = Vec::new();
        for v in &alternatives {
            check_clash(
                Seen {
                    role: "branch",
                    name: v.name.clone(),
                    defined_in: name.clone(),
                    member: None,
                },
                &info,
                &mut seen,
            )?;
            let ty = self.b.entity(v.ty);
            let qtype = match &ty.kind {
                EntityKind::Array { .. } => Some("QTYPE_QLIST"),
                EntityKind::Object { .. } => Some("QTYPE_QDICT"),
                EntityKind::Alternate { .. } => None,
                _ => match self.json_type(v.ty) {
                    JsonType::String => Some("QTYPE_QSTRING"),
                    JsonType::Number | JsonType::Int => Some("QTYPE_QNUM"),
                    JsonType::Boolean => Some("QTYPE_QBOOL"),
                    JsonType::Null => Some("QTYPE_QNULL"),
                    JsonType::Value => None,
                },
            };
            let describe = describe_member("branch", &v.name, &name, &info);
            let Some(qtype) = qtype else {
                return Err(err(
                    &info,
                    format!("{describe} cannot use {}", describe_entity(ty)),
                ));
            };
            let mut conflicting = vec![qtype];
            if qtype == "QTYPE_QSTRING" {
                // Strings also come from the command line (keyval), where
                // they can look like numbers and booleans.
                if let EntityKind::Enum { values, .. } = &ty.kind {
                    for m in values {
                        if (m.name == "on" || m.name == "off")
                            && !conflicting.contains(&"QTYPE_QBOOL")
                        {
                            conflicting.push("QTYPE_QBOOL");
                        }
                        if m.name.starts_with([
                            '-', '+', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '.',
                        ]) && !conflicting.contains(&"QTYPE_QNUM")
                        {
                            conflicting.push("QTYPE_QNUM");
                        }
                    }
                } else {
                    conflicting.push("QTYPE_QNUM");
                    conflicting.push("QTYPE_QBOOL");
                }
            }
            for qt in conflicting {
                if let Some((_, other)) = types_seen.iter().find(|(t, _)| *t == qt) {
                    return Err(err(
                        &info,
                        format!("{describe} can't be distinguished from '{other}'"),
                    ));
                }
                types_seen.push((qt, v.name.clone()));
            }
        }
        if let EntityKind::Alternate { alternatives: a } = &mut self.b.entity_mut(id).kind {
            *a = alternatives;
        }
        Ok(())
    }

    fn has_conditional_members(&self, id: EntityId) -> bool {
        self.members_seen(id).iter().any(|s| {
            let (owner, i) = s.member.expect("members");
            self.member(owner, i).ifcond.is_some()
        })
    }

    /// The checks shared by command and event arguments.
    fn check_arg_type(
        &mut self,
        id: EntityId,
        arg: &str,
        what: &str,
        boxed: bool,
    ) -> Result<EntityId> {
        let info = self.info(id);
        let arg_id = self.resolve(arg, &info, &format!("{what}'s 'data'"))?;
        let arg_entity = self.b.entity(arg_id);
        if !matches!(arg_entity.kind, EntityKind::Object { .. }) {
            return Err(err(
                &info,
                format!(
                    "{what}'s 'data' cannot take {}",
                    describe_entity(arg_entity)
                ),
            ));
        }
        if self.has_branches(arg_id) && !boxed {
            return Err(err(
                &info,
                format!(
                    "{what}'s 'data' can take {} only with 'boxed': true",
                    describe_entity(arg_entity)
                ),
            ));
        }
        self.check_object(arg_id)?;
        if self.has_conditional_members(arg_id) && !boxed && self.b.rules >= Rules::V10_0 {
            return Err(err(
                &info,
                format!("conditional {what} arguments require 'boxed': true"),
            ));
        }
        Ok(arg_id)
    }

    fn check_command(
        &mut self,
        id: EntityId,
        arg: Option<String>,
        ret: Option<String>,
    ) -> Result<()> {
        let info = self.info(id);
        let EntityKind::Command(cmd) = &self.b.entity(id).kind else {
            unreachable!("command");
        };
        let boxed = cmd.boxed;
        let arg_id = match arg {
            Some(arg) => Some(self.check_arg_type(id, &arg, "command", boxed)?),
            None => None,
        };
        let ret_id = match ret {
            Some(ret) => {
                let ret_id = self.resolve(&ret, &info, "command's 'returns'")?;
                let name = &self.b.entity(id).name;
                if !self.b.pragmas.command_returns_exceptions.contains(name) {
                    let mut ty = self.b.entity(ret_id);
                    if let EntityKind::Array { .. } = ty.kind {
                        let element = ty.name.strip_suffix("List").unwrap_or(&ty.name);
                        if let Some(e) = self.b.lookup(element) {
                            ty = self.b.entity(e);
                        }
                    }
                    if !matches!(ty.kind, EntityKind::Object { .. }) {
                        return Err(err(
                            &info,
                            format!(
                                "command's 'returns' cannot take {}",
                                describe_entity(self.b.entity(ret_id))
                            ),
                        ));
                    }
                }
                Some(ret_id)
            }
            None => None,
        };
        if let EntityKind::Command(cmd) = &mut self.b.entity_mut(id).kind {
            cmd.arg_type = arg_id;
            cmd.ret_type = ret_id;
        }
        Ok(())
    }

    fn check_event(&mut self, id: EntityId, arg: Option<String>) -> Result<()> {
        let EntityKind::Event { boxed, .. } = self.b.entity(id).kind else {
            unreachable!("event");
        };
        let arg_id = match arg {
            Some(arg) => Some(self.check_arg_type(id, &arg, "event", boxed)?),
            None => None,
        };
        if let EntityKind::Event { arg_type, .. } = &mut self.b.entity_mut(id).kind {
            *arg_type = arg_id;
        }
        Ok(())
    }

    // ----- documentation -----

    fn connect_member(&mut self, doc: usize, role: &str, name: &str, info: &Info) -> Result<()> {
        let block = &mut self.b.docs[doc];
        if !block.has_member(name) {
            let symbol = block.symbol.clone().unwrap_or_default();
            // Undocumented members became an error in 10.0.
            if self.b.rules >= Rules::V10_0
                && !self.b.pragmas.documentation_exceptions.contains(&symbol)
            {
                return Err(err(info, format!("{role} '{name}' lacks documentation")));
            }
            block.insert_member_stub(name);
        }
        self.connected
            .entry(doc)
            .or_default()
            .0
            .insert(name.to_owned());
        Ok(())
    }

    fn connect_features(&mut self, doc: usize, features: &[Feature], info: &Info) -> Result<()> {
        for f in features {
            if self.b.docs[doc].feature(&f.name).is_none() {
                return Err(err(
                    info,
                    format!("feature '{}' lacks documentation", f.name),
                ));
            }
            self.connected
                .entry(doc)
                .or_default()
                .1
                .insert(f.name.clone());
        }
        Ok(())
    }

    /// Connects the local members of an object type (and their features)
    /// to `doc`.
    fn connect_object_members(&mut self, doc: usize, id: EntityId) -> Result<()> {
        let entity = self.b.entity(id).clone();
        let info = entity.info.clone().expect("documented types have info");
        self.connect_features(doc, &entity.features, &info)?;
        if let EntityKind::Object {
            base,
            local_members,
            ..
        } = &entity.kind
        {
            if let Some(base) = base {
                if self.b.entity(*base).is_implicit() {
                    self.connect_object_members(doc, *base)?;
                }
            }
            for m in local_members {
                self.connect_member(doc, "member", &m.name, &info)?;
                self.connect_features(doc, &m.features, &info)?;
            }
        }
        Ok(())
    }

    fn connect_doc(&mut self, id: EntityId) -> Result<()> {
        let entity = self.b.entity(id).clone();
        let Some(doc) = entity.doc else {
            return Ok(());
        };
        let info = entity.info.clone().expect("documented entities have info");
        match &entity.kind {
            EntityKind::Enum { values, .. } => {
                self.connect_features(doc, &entity.features, &info)?;
                for v in values {
                    self.connect_member(doc, "value", &v.name, &info)?;
                    self.connect_features(doc, &v.features, &info)?;
                }
            }
            EntityKind::Object { .. } => self.connect_object_members(doc, id)?,
            EntityKind::Alternate { alternatives } => {
                self.connect_features(doc, &entity.features, &info)?;
                for v in alternatives {
                    self.connect_member(doc, "branch", &v.name, &info)?;
                }
            }
            EntityKind::Command(cmd) => {
                self.connect_features(doc, &entity.features, &info)?;
                if let Some(arg) = cmd.arg_type {
                    if self.b.entity(arg).is_implicit() {
                        self.connect_object_members(doc, arg)?;
                    }
                }
                if cmd.ret_type.is_some() && self.b.rules >= Rules::V10_2 {
                    self.b.docs[doc].ensure_returns(info.loc);
                }
            }
            EntityKind::Event { arg_type, .. } => {
                self.connect_features(doc, &entity.features, &info)?;
                if let Some(arg) = arg_type {
                    if self.b.entity(*arg).is_implicit() {
                        self.connect_object_members(doc, *arg)?;
                    }
                }
            }
            EntityKind::Builtin(_) | EntityKind::Array { .. } => {}
        }
        Ok(())
    }

    /// Descriptions of members or features that do not exist.
    fn check_docs(&self) -> Result<()> {
        for (i, doc) in self.b.docs.iter().enumerate() {
            let empty = (HashSet::new(), HashSet::new());
            let (members, features) = self.connected.get(&i).unwrap_or(&empty);
            for (kind, connected, what) in [
                (SectionKind::Member, members, "member"),
                (SectionKind::Feature, features, "feature"),
            ] {
                let bogus: Vec<&crate::doc::Section> = doc
                    .sections
                    .iter()
                    .filter(|s| s.kind == kind)
                    .filter(|s| !connected.contains(s.name.as_deref().unwrap_or("")))
                    .collect();
                if let Some(first) = bogus.first() {
                    let names: Vec<&str> = bogus
                        .iter()
                        .map(|s| s.name.as_deref().unwrap_or(""))
                        .collect();
                    let plural = bogus.len() > 1;
                    return Err(Diagnostic::new(
                        first.loc,
                        format!(
                            "documented {what}{} '{}' {} not exist",
                            if plural { "s" } else { "" },
                            names.join("', '"),
                            if plural { "do" } else { "does" }
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks every entity and builds the schema.
/// Checks every entity and builds the schema; on error, returns the files
/// read with the diagnostic.
pub(crate) fn check_all(builder: Builder) -> std::result::Result<Schema, Box<Diagnostics>> {
    let n = builder.entities.len();
    let mut checker = Checker {
        b: builder,
        nesting: 0,
        depth: vec![0; n],
        state: vec![State::Unchecked; n],
        connected: HashMap::new(),
    };
    match check_entities(&mut checker) {
        Ok(()) => Ok(finish(checker)),
        Err(d) => Err(Box::new(Diagnostics {
            sources: checker.b.sources,
            list: vec![d],
        })),
    }
}

fn check_entities(checker: &mut Checker) -> Result<()> {
    let listed = checker.b.listed.clone();
    for item in &listed {
        if let Listed::Entity(id) = item {
            checker.check_entity(*id)?;
            checker.connect_doc(*id)?;
        }
    }
    checker.check_docs()?;
    if checker.b.features.len() > 64 && checker.b.rules >= Rules::V10_0 {
        let (_, info) = &checker.b.features[64];
        let info = info.as_ref().expect("special features come first");
        return Err(err(info, "Maximum of 64 schema features is permitted"));
    }
    Ok(())
}

fn finish(mut checker: Checker) -> Schema {
    let listed = std::mem::take(&mut checker.b.listed);
    // Modules.
    let mut modules: Vec<Module> = checker
        .b
        .module_names
        .iter()
        .map(|name| Module {
            name: name.clone(),
            items: Vec::new(),
            free_docs: Vec::new(),
        })
        .collect();
    // The module of each file, computed once per file.
    let file_modules: Vec<usize> = checker
        .b
        .sources
        .files()
        .map(|(_, file)| {
            let name = checker.b.module_name(&file.path);
            checker
                .b
                .module_names
                .iter()
                .position(|m| *m == name)
                .unwrap_or(1)
        })
        .collect();
    let module_of_file = |_: &Checker, info: Option<&Info>| -> usize {
        info.map_or(0, |info| file_modules[info.loc.file.index()])
    };
    for item in &listed {
        match item {
            Listed::Entity(id) => {
                let entity: &Entity = checker.b.entity(*id);
                let info = match &entity.kind {
                    EntityKind::Array { element } => checker.b.entity(*element).info.as_ref(),
                    _ => entity.info.as_ref(),
                };
                let module = module_of_file(&checker, info);
                checker.b.entity_mut(*id).module = module;
                modules[module].items.push(ModuleItem::Entity(*id));
            }
            Listed::Include { info, module } => {
                let at = module_of_file(&checker, Some(info));
                modules[at].items.push(ModuleItem::Include(module.clone()));
            }
        }
    }
    for (index, doc) in checker.b.docs.iter().enumerate() {
        if doc.symbol.is_none() {
            modules[file_modules[doc.loc.file.index()]]
                .free_docs
                .push(index);
        }
    }
    let b = checker.b;
    let feature_names = b.features.iter().map(|(n, _)| n.clone()).collect();
    Schema {
        sources: b.sources,
        entities: b.entities,
        modules,
        docs: b.docs,
        feature_names,
        pragmas: b.pragmas,
        by_name: b.by_name,
    }
}
