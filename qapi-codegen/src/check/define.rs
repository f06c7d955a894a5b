//! Definitions to entities: built-ins, implicit types, unique names.
//!
//! This follows the order in which QEMU creates its schema entities, since
//! that order decides module contents, the order of checks and so which
//! error comes first: for each definition, its features, then the implicit
//! types its members need (arrays, argument and base types), then the
//! definition itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::expr::{
    Body, Definition, Item, RawEnumValue, RawFeature, RawMember, RawVariant, TypeOrMembers, TypeRef,
};
use crate::diagnostic::Diagnostic;
use crate::doc::DocBlock;
use crate::model::Entity;
use crate::model::{
    Branches, Command, Condition, EntityId, EntityKind, EnumValue, Feature, Info, JsonType, Member,
    Variant,
};
use crate::parser::{ParsedSchema, Pragmas};
use crate::rules::Rules;
use crate::source::{absolute, SourceMap};

/// Placeholder for a type not resolved yet.
pub(crate) const UNRESOLVED: EntityId = EntityId(u32::MAX);

/// The type names an entity refers to, resolved during semantic checks.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    None,
    Array {
        element: String,
    },
    Object {
        base: Option<String>,
        /// Type names of the local members, in order.
        member_types: Vec<String>,
        /// Type names of the union branches, in order.
        variant_types: Vec<String>,
    },
    Alternate {
        variant_types: Vec<String>,
    },
    Command {
        arg: Option<String>,
        ret: Option<String>,
    },
    Event {
        arg: Option<String>,
    },
}

/// An entry of QEMU's entity list: a definition or an include directive.
#[derive(Debug, Clone)]
pub(crate) enum Listed {
    Entity(EntityId),
    Include { info: Info, module: String },
}

/// Entities under construction.
pub(crate) struct Builder {
    pub rules: Rules,
    pub pragmas: Pragmas,
    pub sources: SourceMap,
    pub root_dir: PathBuf,
    pub entities: Vec<Entity>,
    pub pending: Vec<Pending>,
    pub by_name: HashMap<String, EntityId>,
    pub docs: Vec<DocBlock>,
    /// Every feature name, with where it was first used (`None` for the
    /// special features).
    pub features: Vec<(String, Option<Info>)>,
    pub listed: Vec<Listed>,
    /// Module names in creation order.
    pub module_names: Vec<String>,
}

impl Builder {
    pub fn new(parsed: ParsedSchema, rules: Rules) -> Self {
        let root_path = parsed.sources.path(parsed.root).to_owned();
        let root_dir = absolute(root_path.parent().unwrap_or(Path::new("")));
        let mut builder = Builder {
            rules,
            pragmas: parsed.pragmas,
            sources: parsed.sources,
            root_dir,
            entities: Vec::new(),
            pending: Vec::new(),
            by_name: HashMap::new(),
            docs: parsed.docs,
            features: ["deprecated", "unstable"]
                .iter()
                .map(|n| (n.to_string(), None))
                .collect(),
            listed: Vec::new(),
            module_names: Vec::new(),
        };
        builder.module_names.push("./builtin".to_owned());
        let root_module = builder.module_name(&root_path);
        builder.module_names.push(root_module);
        builder
    }

    /// The module name of a file: its path relative to the root file's
    /// directory.
    pub fn module_name(&self, path: &Path) -> String {
        relative_path(&absolute(path), &self.root_dir)
    }

    fn make_module(&mut self, path: &Path) -> String {
        let name = self.module_name(path);
        if !self.module_names.contains(&name) {
            self.module_names.push(name.clone());
        }
        name
    }

    pub fn lookup(&self, name: &str) -> Option<EntityId> {
        self.by_name.get(name).copied()
    }

    pub fn entity(&self, id: EntityId) -> &Entity {
        &self.entities[id.0 as usize]
    }

    pub fn entity_mut(&mut self, id: EntityId) -> &mut Entity {
        &mut self.entities[id.0 as usize]
    }

    /// Adds a definition; its name must be new.
    fn define(&mut self, entity: Entity, pending: Pending) -> Result<EntityId, Diagnostic> {
        if let Some(&other) = self.by_name.get(&entity.name) {
            let other = self.entity(other);
            let info = entity.info.as_ref().expect("only built-ins lack info");
            let diag = match &other.info {
                Some(prev) => {
                    Diagnostic::new(info.loc, format!("'{}' is already defined", entity.name))
                        .in_definition(info.meta, &info.defn)
                        .with_note_in(prev.loc, "previous definition", prev.meta, &prev.defn)
                }
                None => Diagnostic::new(
                    info.loc,
                    format!("{} is already defined", describe_entity(other)),
                )
                .in_definition(info.meta, &info.defn),
            };
            return Err(diag);
        }
        let id = EntityId(self.entities.len() as u32);
        self.by_name.insert(entity.name.clone(), id);
        self.entities.push(entity);
        self.pending.push(pending);
        self.listed.push(Listed::Entity(id));
        Ok(id)
    }

    /// Defines the built-in types, their arrays, `q_empty` and `QType`.
    fn define_predefined(&mut self) {
        const BUILTINS: [(&str, JsonType); 15] = [
            ("str", JsonType::String),
            ("number", JsonType::Number),
            ("int", JsonType::Int),
            ("int8", JsonType::Int),
            ("int16", JsonType::Int),
            ("int32", JsonType::Int),
            ("int64", JsonType::Int),
            ("uint8", JsonType::Int),
            ("uint16", JsonType::Int),
            ("uint32", JsonType::Int),
            ("uint64", JsonType::Int),
            ("size", JsonType::Int),
            ("bool", JsonType::Boolean),
            ("any", JsonType::Value),
            ("null", JsonType::Null),
        ];
        for (name, json) in BUILTINS {
            self.define(
                builtin_entity(name, EntityKind::Builtin(json)),
                Pending::None,
            )
            .expect("built-in names are distinct");
            self.make_array(name, None)
                .expect("built-in arrays are new");
        }
        self.define(
            builtin_entity(
                "q_empty",
                EntityKind::Object {
                    base: None,
                    local_members: Vec::new(),
                    branches: None,
                },
            ),
            Pending::Object {
                base: None,
                member_types: Vec::new(),
                variant_types: Vec::new(),
            },
        )
        .expect("q_empty is new");
        let qtypes = [
            "none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool",
        ];
        let values = qtypes
            .iter()
            .map(|n| EnumValue {
                name: n.to_string(),
                ifcond: None,
                features: Vec::new(),
            })
            .collect();
        self.define(
            builtin_entity(
                "QType",
                EntityKind::Enum {
                    values,
                    prefix: None,
                },
            ),
            Pending::None,
        )
        .expect("QType is new");
    }

    /// Records feature names schema-wide and converts them.
    fn make_features(&mut self, features: &[RawFeature], info: &Info) -> Vec<Feature> {
        for f in features {
            if !self.features.iter().any(|(n, _)| *n == f.name) {
                self.features.push((f.name.clone(), Some(info.clone())));
            }
        }
        features
            .iter()
            .map(|f| Feature {
                name: f.name.clone(),
                ifcond: f.ifcond.clone(),
            })
            .collect()
    }

    /// The array type `ElementList`, defined on first use.
    fn make_array(&mut self, element: &str, info: Option<&Info>) -> Result<String, Diagnostic> {
        let name = format!("{element}List");
        if self
            .lookup(&name)
            .is_some_and(|id| self.entity(id).is_type())
        {
            return Ok(name);
        }
        let entity = Entity {
            name: name.clone(),
            info: info.cloned(),
            doc: None,
            ifcond: None,
            features: Vec::new(),
            kind: EntityKind::Array {
                element: UNRESOLVED,
            },
            module: 0,
        };
        self.define(
            entity,
            Pending::Array {
                element: element.to_owned(),
            },
        )?;
        Ok(name)
    }

    fn type_name(&mut self, ty: &TypeRef, info: &Info) -> Result<String, Diagnostic> {
        match ty {
            TypeRef::Name(n) => Ok(n.clone()),
            TypeRef::Array(element) => self.make_array(element, Some(info)),
        }
    }

    fn make_members(
        &mut self,
        members: &[RawMember],
        info: &Info,
    ) -> Result<(Vec<Member>, Vec<String>), Diagnostic> {
        let mut out = Vec::with_capacity(members.len());
        let mut types = Vec::with_capacity(members.len());
        for m in members {
            let features = self.make_features(&m.features, info);
            types.push(self.type_name(&m.ty, info)?);
            out.push(Member {
                name: m.name.clone(),
                ty: UNRESOLVED,
                optional: m.optional,
                ifcond: m.ifcond.clone(),
                features,
                defined_in: UNRESOLVED,
            });
        }
        Ok((out, types))
    }

    fn make_variants(
        &mut self,
        variants: &[RawVariant],
        info: &Info,
    ) -> Result<(Vec<Variant>, Vec<String>), Diagnostic> {
        let mut out = Vec::with_capacity(variants.len());
        let mut types = Vec::with_capacity(variants.len());
        for v in variants {
            types.push(self.type_name(&v.ty, info)?);
            out.push(Variant {
                name: v.name.clone(),
                ty: UNRESOLVED,
                ifcond: v.ifcond.clone(),
            });
        }
        Ok((out, types))
    }

    /// `q_obj_NAME-ROLE`, the implicit type of inline members; none when
    /// there are no members.
    fn make_implicit_object(
        &mut self,
        owner: &str,
        role: &str,
        info: &Info,
        ifcond: &Option<Condition>,
        members: &[RawMember],
    ) -> Result<Option<String>, Diagnostic> {
        let (members, member_types) = self.make_members(members, info)?;
        if members.is_empty() {
            return Ok(None);
        }
        let name = format!("q_obj_{owner}-{role}");
        if self.lookup(&name).is_none() {
            let entity = Entity {
                name: name.clone(),
                info: Some(info.clone()),
                doc: None,
                ifcond: ifcond.clone(),
                features: Vec::new(),
                kind: EntityKind::Object {
                    base: None,
                    local_members: members,
                    branches: None,
                },
                module: 0,
            };
            let id = self.define(
                entity,
                Pending::Object {
                    base: None,
                    member_types,
                    variant_types: Vec::new(),
                },
            )?;
            self.set_defined_in(id);
        }
        Ok(Some(name))
    }

    /// Marks the local members of an object type as declared there.
    fn set_defined_in(&mut self, id: EntityId) {
        if let EntityKind::Object { local_members, .. } = &mut self.entity_mut(id).kind {
            for m in local_members {
                m.defined_in = id;
            }
        }
    }

    fn arg_type(
        &mut self,
        data: &Option<TypeOrMembers>,
        def: &Definition,
    ) -> Result<Option<String>, Diagnostic> {
        match data {
            None => Ok(None),
            Some(TypeOrMembers::Name(n)) => Ok(Some(n.clone())),
            Some(TypeOrMembers::Members(m)) => {
                self.make_implicit_object(&def.name, "arg", &def.info, &def.ifcond, m)
            }
        }
    }

    /// Defines everything, in QEMU's order.
    pub fn define_all(&mut self, items: Vec<Item>) -> Result<(), Diagnostic> {
        self.define_predefined();
        for item in items {
            match item {
                Item::Include(info, path) => {
                    let module = self.make_module(&path);
                    self.listed.push(Listed::Include { info, module });
                }
                Item::Definition(def) => self.define_definition(def)?,
            }
        }
        Ok(())
    }

    fn define_definition(&mut self, def: Definition) -> Result<(), Diagnostic> {
        let info = def.info.clone();
        let features = self.make_features(&def.features, &info);
        let entity = |kind| Entity {
            name: def.name.clone(),
            info: Some(info.clone()),
            doc: def.doc,
            ifcond: def.ifcond.clone(),
            features: features.clone(),
            kind,
            module: 0,
        };
        match &def.body {
            Body::Enum { values, prefix } => {
                let values = self.make_enum_values(values, &info);
                self.define(
                    entity(EntityKind::Enum {
                        values,
                        prefix: prefix.clone(),
                    }),
                    Pending::None,
                )?;
            }
            Body::Struct { base, members } => {
                let (members, member_types) = self.make_members(members, &info)?;
                let id = self.define(
                    entity(EntityKind::Object {
                        base: None,
                        local_members: members,
                        branches: None,
                    }),
                    Pending::Object {
                        base: base.clone(),
                        member_types,
                        variant_types: Vec::new(),
                    },
                )?;
                self.set_defined_in(id);
            }
            Body::Union {
                base,
                discriminator,
                branches,
            } => {
                let base = match base {
                    TypeOrMembers::Name(n) => Some(n.clone()),
                    TypeOrMembers::Members(m) => {
                        self.make_implicit_object(&def.name, "base", &info, &def.ifcond, m)?
                    }
                };
                let (variants, variant_types) = self.make_variants(branches, &info)?;
                self.define(
                    entity(EntityKind::Object {
                        base: None,
                        local_members: Vec::new(),
                        branches: Some(Branches {
                            tag: discriminator.clone(),
                            variants,
                        }),
                    }),
                    Pending::Object {
                        base,
                        member_types: Vec::new(),
                        variant_types,
                    },
                )?;
            }
            Body::SimpleUnion { branches } => {
                self.define_simple_union(&def, features.clone(), branches)?;
            }
            Body::Alternate { alternatives } => {
                let (variants, variant_types) = self.make_variants(alternatives, &info)?;
                self.define(
                    entity(EntityKind::Alternate {
                        alternatives: variants,
                    }),
                    Pending::Alternate { variant_types },
                )?;
            }
            Body::Command {
                data,
                returns,
                gen,
                success_response,
                boxed,
                allow_oob,
                allow_preconfig,
                coroutine,
            } => {
                let arg = self.arg_type(data, &def)?;
                let ret = match returns {
                    None => None,
                    Some(r) => Some(self.type_name(r, &info)?),
                };
                self.define(
                    entity(EntityKind::Command(Command {
                        arg_type: None,
                        ret_type: None,
                        gen: *gen,
                        success_response: *success_response,
                        boxed: *boxed,
                        allow_oob: *allow_oob,
                        allow_preconfig: *allow_preconfig,
                        coroutine: *coroutine,
                    })),
                    Pending::Command { arg, ret },
                )?;
            }
            Body::Event { data, boxed } => {
                let arg = self.arg_type(data, &def)?;
                self.define(
                    entity(EntityKind::Event {
                        arg_type: None,
                        boxed: *boxed,
                    }),
                    Pending::Event { arg },
                )?;
            }
        }
        Ok(())
    }

    /// QEMU 5.2's simple union `U`: each branch's type `T` wrapped in an
    /// implicit struct `q_obj_T-wrapper` with the single member `data`, an
    /// implicit enum `UKind` of the branch names, and `U` itself with the
    /// local member `type: UKind` as its discriminator.  On the wire:
    /// `{"type": "branch", "data": …}`.
    fn define_simple_union(
        &mut self,
        def: &Definition,
        features: Vec<Feature>,
        branches: &[RawVariant],
    ) -> Result<(), Diagnostic> {
        let info = &def.info;
        let mut variants = Vec::with_capacity(branches.len());
        let mut variant_types = Vec::with_capacity(branches.len());
        for branch in branches {
            let ty = self.type_name(&branch.ty, info)?;
            let wrapper = format!("q_obj_{ty}-wrapper");
            if self.lookup(&wrapper).is_none() {
                // The wrapper takes the wrapped type's condition when that
                // type is already defined (as 5.2 did).
                let ifcond = self
                    .lookup(&ty)
                    .and_then(|id| self.entity(id).ifcond.clone());
                let entity = Entity {
                    name: wrapper.clone(),
                    info: Some(info.clone()),
                    doc: None,
                    ifcond,
                    features: Vec::new(),
                    kind: EntityKind::Object {
                        base: None,
                        local_members: vec![Member {
                            name: "data".to_owned(),
                            ty: UNRESOLVED,
                            optional: false,
                            ifcond: None,
                            features: Vec::new(),
                            defined_in: UNRESOLVED,
                        }],
                        branches: None,
                    },
                    module: 0,
                };
                let id = self.define(
                    entity,
                    Pending::Object {
                        base: None,
                        member_types: vec![ty.clone()],
                        variant_types: Vec::new(),
                    },
                )?;
                self.set_defined_in(id);
            }
            variants.push(Variant {
                name: branch.name.clone(),
                ty: UNRESOLVED,
                ifcond: branch.ifcond.clone(),
            });
            variant_types.push(wrapper);
        }
        let kind_name = format!("{}Kind", def.name);
        let values = branches
            .iter()
            .map(|b| EnumValue {
                name: b.name.clone(),
                ifcond: b.ifcond.clone(),
                features: Vec::new(),
            })
            .collect();
        self.define(
            Entity {
                name: kind_name.clone(),
                info: Some(info.clone()),
                doc: None,
                ifcond: def.ifcond.clone(),
                features: Vec::new(),
                kind: EntityKind::Enum {
                    values,
                    prefix: None,
                },
                module: 0,
            },
            Pending::None,
        )?;
        let id = self.define(
            Entity {
                name: def.name.clone(),
                info: Some(info.clone()),
                doc: def.doc,
                ifcond: def.ifcond.clone(),
                features,
                kind: EntityKind::Object {
                    base: None,
                    local_members: vec![Member {
                        name: "type".to_owned(),
                        ty: UNRESOLVED,
                        optional: false,
                        ifcond: None,
                        features: Vec::new(),
                        defined_in: UNRESOLVED,
                    }],
                    branches: Some(Branches {
                        tag: "type".to_owned(),
                        variants,
                    }),
                },
                module: 0,
            },
            Pending::Object {
                base: None,
                member_types: vec![kind_name],
                variant_types,
            },
        )?;
        self.set_defined_in(id);
        Ok(())
    }

    fn make_enum_values(&mut self, values: &[RawEnumValue], info: &Info) -> Vec<EnumValue> {
        values
            .iter()
            .map(|v| EnumValue {
                name: v.name.clone(),
                ifcond: v.ifcond.clone(),
                features: self.make_features(&v.features, info),
            })
            .collect()
    }
}

fn builtin_entity(name: &str, kind: EntityKind) -> Entity {
    Entity {
        name: name.to_owned(),
        info: None,
        doc: None,
        ifcond: None,
        features: Vec::new(),
        kind,
        module: 0,
    }
}

/// QEMU's description of a definition in messages: `struct type 'Foo'`,
/// `command 'bar'`, `array type ['Baz']`.
pub(crate) fn describe_entity(entity: &Entity) -> String {
    match &entity.kind {
        EntityKind::Command(_) | EntityKind::Event { .. } => {
            format!("{} '{}'", entity.meta(), entity.name)
        }
        EntityKind::Array { .. } => {
            let element = entity.name.strip_suffix("List").unwrap_or(&entity.name);
            format!("array type ['{element}']")
        }
        _ => format!("{} type '{}'", entity.meta(), entity.name),
    }
}

/// Like Python's `os.path.relpath` on absolute, normalized paths.
fn relative_path(path: &Path, base: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        out.to_string_lossy().into_owned()
    }
}
