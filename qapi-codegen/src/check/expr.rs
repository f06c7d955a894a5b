//! The shape of each top-level expression: keys, value types, names,
//! conditions, features and flags — QEMU's context-free checks.
//!
//! Each definition comes out as a [`Definition`] in canonical form (sugar
//! such as `'member': 'type'` or a bare feature name expanded), still
//! referring to types by name.  Errors are worded as QEMU's `expr.py` words
//! them and located at the start of the definition, where QEMU reports them.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;
use crate::doc::{DocBlock, SectionKind};
use crate::model::{Condition, Info};
use crate::naming;
use crate::parser::{ExprKind, Node, Object, ParsedSchema, Pragmas, Value};
use crate::rules::Rules;

/// A reference to a type: a name, or an array of a named type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    /// A named type.
    Name(String),
    /// `['Element']`.
    Array(String),
}

/// A member of a struct, argument list or union base, canonical form.
#[derive(Debug, Clone)]
pub struct RawMember {
    pub name: String,
    pub optional: bool,
    pub ty: TypeRef,
    pub ifcond: Option<Condition>,
    pub features: Vec<RawFeature>,
}

/// A feature, canonical form.
#[derive(Debug, Clone)]
pub struct RawFeature {
    pub name: String,
    pub ifcond: Option<Condition>,
}

/// An enum value, canonical form.
#[derive(Debug, Clone)]
pub struct RawEnumValue {
    pub name: String,
    pub ifcond: Option<Condition>,
    pub features: Vec<RawFeature>,
}

/// A union branch or alternative, canonical form.
#[derive(Debug, Clone)]
pub struct RawVariant {
    pub name: String,
    pub ty: TypeRef,
    pub ifcond: Option<Condition>,
}

/// A type given by name or inline as members.
#[derive(Debug, Clone)]
pub enum TypeOrMembers {
    Name(String),
    Members(Vec<RawMember>),
}

/// What a definition defines.
#[derive(Debug, Clone)]
pub enum Body {
    Enum {
        values: Vec<RawEnumValue>,
        prefix: Option<String>,
    },
    Struct {
        base: Option<String>,
        members: Vec<RawMember>,
    },
    Union {
        base: TypeOrMembers,
        discriminator: String,
        branches: Vec<RawVariant>,
    },
    /// QEMU 5.2's simple union: branches wrap their type as `data`, the
    /// tag is an implicit enum.
    SimpleUnion {
        branches: Vec<RawVariant>,
    },
    Alternate {
        alternatives: Vec<RawVariant>,
    },
    Command {
        data: Option<TypeOrMembers>,
        returns: Option<TypeRef>,
        gen: bool,
        success_response: bool,
        boxed: bool,
        allow_oob: bool,
        allow_preconfig: bool,
        coroutine: bool,
    },
    Event {
        data: Option<TypeOrMembers>,
        boxed: bool,
    },
}

/// A top-level item in canonical form.
#[derive(Debug, Clone)]
pub enum Item {
    /// An `include` directive: where it is and the included path.
    Include(Info, PathBuf),
    /// A definition.
    Definition(Definition),
}

/// A definition in canonical form.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub info: Info,
    pub doc: Option<usize>,
    pub ifcond: Option<Condition>,
    pub features: Vec<RawFeature>,
    pub body: Body,
}

const METAS: [&str; 6] = ["enum", "struct", "union", "alternate", "command", "event"];

/// Where errors about the current definition go.
struct Ctx<'a> {
    info: Option<&'a Info>,
    loc: crate::source::Location,
    pragmas: &'a Pragmas,
    rules: Rules,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> Diagnostic {
        let d = Diagnostic::new(self.loc, message);
        match self.info {
            Some(info) => d.in_definition(info.meta, &info.defn),
            None => d,
        }
    }
}

type Result<T> = std::result::Result<T, Diagnostic>;

/// Checks every top-level expression in order, stopping at the first error
/// as QEMU does.
pub fn check_exprs(parsed: &ParsedSchema, rules: Rules) -> Result<Vec<Item>> {
    let mut items = Vec::with_capacity(parsed.exprs.len());
    for expr in &parsed.exprs {
        match &expr.kind {
            ExprKind::Include(path) => items.push(Item::Include(
                Info {
                    loc: expr.loc,
                    meta: "include",
                    defn: String::new(),
                },
                path.clone(),
            )),
            ExprKind::Definition(object) => {
                let doc = expr.doc.map(|i| (i, &parsed.docs[i]));
                let def = check_definition(object, expr.loc, doc, &parsed.pragmas, rules)?;
                items.push(Item::Definition(def));
            }
        }
    }
    Ok(items)
}

fn check_definition(
    expr: &Object,
    loc: crate::source::Location,
    doc: Option<(usize, &DocBlock)>,
    pragmas: &Pragmas,
    rules: Rules,
) -> Result<Definition> {
    let mut ctx = Ctx {
        info: None,
        loc,
        pragmas,
        rules,
    };
    let meta = if rules < Rules::V7_2 {
        // 5.2 took the first meta key it knew and reported the others as
        // unknown keys.
        const ORDER_5_2: [&str; 6] = ["enum", "union", "alternate", "struct", "command", "event"];
        match ORDER_5_2.iter().find(|m| expr.contains(m)) {
            Some(meta) => *meta,
            None => return Err(ctx.err("expression is missing metatype")),
        }
    } else {
        let metas: Vec<&str> = METAS.iter().copied().filter(|m| expr.contains(m)).collect();
        if metas.len() != 1 {
            return Err(ctx.err(
                "expression must have exactly one key 'enum', 'struct', 'union', \
                 'alternate', 'command', 'event'",
            ));
        }
        metas[0]
    };
    let name = require_name_str(expr.get(meta), &ctx, &format!("'{meta}'"))?.to_owned();
    let info = Info {
        loc,
        meta,
        defn: name.clone(),
    };
    ctx.info = Some(&info);
    check_defn_name(&name, &ctx, meta)?;

    if let Some((_, doc)) = doc {
        if doc.symbol.as_deref() != Some(name.as_str()) {
            return Err(ctx.err(format!(
                "documentation comment is for '{}'",
                doc.symbol.as_deref().unwrap_or("")
            )));
        }
        check_doc_sections(doc, expr, meta, rules)?;
    } else if pragmas.doc_required {
        return Err(ctx.err("documentation comment required"));
    }

    let body = match meta {
        "enum" => {
            check_keys(
                expr,
                &ctx,
                meta,
                &["enum", "data"],
                &["if", "features", "prefix"],
            )?;
            check_enum(expr, &name, &ctx)?
        }
        "union" if rules < Rules::V7_2 => {
            check_keys(
                expr,
                &ctx,
                meta,
                &["union", "data"],
                &["base", "discriminator", "if", "features"],
            )?;
            check_union_5_2(expr, &name, &ctx)?
        }
        "union" => {
            check_keys(
                expr,
                &ctx,
                meta,
                &["union", "base", "discriminator", "data"],
                &["if", "features"],
            )?;
            check_union(expr, &name, &ctx)?
        }
        "alternate" => {
            check_keys(
                expr,
                &ctx,
                meta,
                &["alternate", "data"],
                &["if", "features"],
            )?;
            check_alternate(expr, &ctx)?
        }
        "struct" => {
            check_keys(
                expr,
                &ctx,
                meta,
                &["struct", "data"],
                &["base", "if", "features"],
            )?;
            let members = check_type_implicit(get(expr, "data"), &ctx, "'data'", Some(&name))?
                .unwrap_or_default();
            let base = check_type_name(get(expr, "base"), &ctx, "'base'")?;
            Body::Struct { base, members }
        }
        "command" => {
            check_keys(
                expr,
                &ctx,
                meta,
                &["command"],
                &[
                    "data",
                    "returns",
                    "boxed",
                    "if",
                    "features",
                    "gen",
                    "success-response",
                    "allow-oob",
                    "allow-preconfig",
                    "coroutine",
                ],
            )?;
            let boxed = truthy(get(expr, "boxed"));
            let data = check_arguments(expr, &ctx, boxed)?;
            let returns = check_type_name_or_array(get(expr, "returns"), &ctx, "'returns'")?;
            Body::Command {
                data,
                returns,
                gen: flag(expr, "gen", true),
                success_response: flag(expr, "success-response", true),
                boxed,
                allow_oob: flag(expr, "allow-oob", false),
                allow_preconfig: flag(expr, "allow-preconfig", false),
                coroutine: flag(expr, "coroutine", false),
            }
        }
        _ => {
            check_keys(
                expr,
                &ctx,
                meta,
                &["event"],
                &["data", "boxed", "if", "features"],
            )?;
            let boxed = truthy(get(expr, "boxed"));
            let data = check_arguments(expr, &ctx, boxed)?;
            Body::Event { data, boxed }
        }
    };
    let ifcond = check_if(expr, &ctx, meta)?;
    let features = check_features(get(expr, "features"), &ctx)?;
    check_flags(expr, &ctx)?;
    Ok(Definition {
        name,
        info,
        doc: doc.map(|(i, _)| i),
        ifcond,
        features,
        body,
    })
}

/// The section checks QEMU makes when it pairs a block with its definition.
fn check_doc_sections(doc: &DocBlock, expr: &Object, meta: &str, rules: Rules) -> Result<()> {
    let returns = doc.section(SectionKind::Returns);
    if rules < Rules::V10_0 {
        // Before 10.0 only a `Returns:` outside a command was an error.
        if meta != "command" && returns.is_some() {
            return Err(Diagnostic::new(
                doc.loc,
                "'Returns:' is only valid for commands",
            ));
        }
        return Ok(());
    }
    if meta == "command" {
        if let Some(section) = returns {
            if !expr.contains("returns") {
                return Err(Diagnostic::new(
                    section.loc,
                    "'Returns' section, but command doesn't return anything",
                ));
            }
        }
    } else {
        if let Some(section) = returns {
            return Err(Diagnostic::new(
                section.loc,
                "'Returns' section is only valid for commands",
            ));
        }
        if let Some(section) = doc.section(SectionKind::Errors) {
            return Err(Diagnostic::new(
                section.loc,
                "'Errors' section is only valid for commands",
            ));
        }
    }
    Ok(())
}

fn get<'a>(expr: &'a Object, key: &str) -> Option<&'a Node> {
    expr.get(key)
}

/// Python truthiness of an optional value.
fn truthy(node: Option<&Node>) -> bool {
    match node.map(|n| &n.value) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Str(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

fn flag(expr: &Object, key: &str, default: bool) -> bool {
    match get(expr, key).map(|n| &n.value) {
        Some(Value::Bool(b)) => *b,
        _ => default,
    }
}

fn require_name_str<'a>(node: Option<&'a Node>, ctx: &Ctx<'_>, source: &str) -> Result<&'a str> {
    match node.map(|n| &n.value) {
        Some(Value::Str(s)) => Ok(s),
        _ => Err(ctx.err(format!("{source} requires a string name"))),
    }
}

fn check_name_str<'a>(name: &'a str, ctx: &Ctx<'_>, source: &str) -> Result<&'a str> {
    naming::name_stem(name).ok_or_else(|| ctx.err(format!("{source} has an invalid name")))
}

/// QEMU 5.2's name rule: a valid name, and no upper case unless permitted
/// (`_` was allowed everywhere).
fn check_name_5_2(name: &str, ctx: &Ctx<'_>, source: &str, permit_upper: bool) -> Result<()> {
    check_name_str(name, ctx, source)?;
    if !permit_upper && name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ctx.err(format!("{source} uses uppercase in name")));
    }
    Ok(())
}

fn check_name_upper(name: &str, ctx: &Ctx<'_>, source: &str) -> Result<()> {
    let stem = check_name_str(name, ctx, source)?;
    if !naming::is_upper_stem(stem) {
        return Err(ctx.err(format!("name of {source} must not use lowercase or '-'")));
    }
    Ok(())
}

fn check_name_lower(
    name: &str,
    ctx: &Ctx<'_>,
    source: &str,
    permit_upper: bool,
    permit_underscore: bool,
) -> Result<()> {
    if ctx.rules < Rules::V7_2 {
        return check_name_5_2(name, ctx, source, permit_upper);
    }
    let stem = check_name_str(name, ctx, source)?;
    if !naming::is_lower_stem(stem, permit_upper, permit_underscore) {
        return Err(ctx.err(format!("name of {source} must not use uppercase or '_'")));
    }
    Ok(())
}

fn check_name_camel(name: &str, ctx: &Ctx<'_>, source: &str) -> Result<()> {
    let stem = check_name_str(name, ctx, source)?;
    if !naming::is_camel_stem(stem) {
        return Err(ctx.err(format!("name of {source} must use CamelCase")));
    }
    Ok(())
}

fn check_defn_name(name: &str, ctx: &Ctx<'_>, meta: &str) -> Result<()> {
    if ctx.rules < Rules::V7_2 {
        // 5.2: any case for definitions; `Kind` was reserved for the
        // implicit enums of simple unions.
        check_name_5_2(name, ctx, meta, true)?;
        if let Some(suffix) = ["Kind", "List"].iter().find(|s| name.ends_with(*s)) {
            return Err(ctx.err(format!("{meta} name should not end in '{suffix}'")));
        }
        return Ok(());
    }
    match meta {
        "event" => check_name_upper(name, ctx, meta),
        "command" => {
            let permit_underscore = ctx
                .pragmas
                .command_name_exceptions
                .iter()
                .any(|n| n == name);
            check_name_lower(name, ctx, meta, false, permit_underscore)
        }
        _ => {
            check_name_camel(name, ctx, meta)?;
            if name.ends_with("List") {
                return Err(ctx.err(format!("{meta} name should not end in 'List'")));
            }
            Ok(())
        }
    }
}

fn quoted_sorted(keys: &[&str]) -> String {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    keys.iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_keys(
    value: &Object,
    ctx: &Ctx<'_>,
    source: &str,
    required: &[&str],
    optional: &[&str],
) -> Result<()> {
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !value.contains(k))
        .collect();
    if !missing.is_empty() {
        return Err(ctx.err(format!(
            "{source} misses key{} {}",
            if missing.len() > 1 { "s" } else { "" },
            quoted_sorted(&missing)
        )));
    }
    let unknown: Vec<&str> = value
        .keys()
        .filter(|k| !required.contains(k) && !optional.contains(k))
        .collect();
    if !unknown.is_empty() {
        let allowed: Vec<&str> = required.iter().chain(optional).copied().collect();
        return Err(ctx.err(format!(
            "{source} has unknown key{} {}\nValid keys are {}.",
            if unknown.len() > 1 { "s" } else { "" },
            quoted_sorted(&unknown),
            quoted_sorted(&allowed)
        )));
    }
    Ok(())
}

fn check_flags(expr: &Object, ctx: &Ctx<'_>) -> Result<()> {
    for key in ["gen", "success-response"] {
        if let Some(node) = get(expr, key) {
            if node.value != Value::Bool(false) {
                return Err(ctx.err(format!("flag '{key}' may only use false value")));
            }
        }
    }
    for key in ["boxed", "allow-oob", "allow-preconfig", "coroutine"] {
        if let Some(node) = get(expr, key) {
            if node.value != Value::Bool(true) {
                return Err(ctx.err(format!("flag '{key}' may only use true value")));
            }
        }
    }
    if expr.contains("allow-oob") && expr.contains("coroutine") {
        return Err(ctx.err("flags 'allow-oob' and 'coroutine' are incompatible"));
    }
    Ok(())
}

/// Checks the `if` key of `expr` and returns the condition.
fn check_if(expr: &Object, ctx: &Ctx<'_>, source: &str) -> Result<Option<Condition>> {
    match get(expr, "if") {
        None => Ok(None),
        Some(node) => check_condition(node, ctx, source).map(Some),
    }
}

fn check_condition(node: &Node, ctx: &Ctx<'_>, source: &str) -> Result<Condition> {
    match &node.value {
        Value::Str(name) => {
            if ctx.rules < Rules::V7_2 {
                // 5.2 wrote conditions as C preprocessor expressions:
                // 'defined(CONFIG_X)'.  Keep them as they are.
                if name.trim().is_empty() {
                    return Err(ctx.err(format!(
                        "'if' condition '{name}' of {source} makes no sense"
                    )));
                }
                return Ok(c_condition(name));
            }
            if !naming::is_condition_name(name) {
                return Err(ctx.err(format!(
                    "'if' condition '{name}' of {source} is not a valid identifier"
                )));
            }
            Ok(Condition::Name(name.clone()))
        }
        Value::Array(items) if ctx.rules < Rules::V7_2 => {
            // 5.2: a list of preprocessor conditions that must all hold.
            if items.is_empty() {
                return Err(ctx.err(format!("'if' condition [] of {source} is useless")));
            }
            let mut all = Vec::new();
            for item in items {
                match &item.value {
                    Value::Str(s) if !s.trim().is_empty() => all.push(c_condition(s)),
                    Value::Str(s) => {
                        return Err(
                            ctx.err(format!("'if' condition '{s}' of {source} makes no sense"))
                        );
                    }
                    _ => {
                        return Err(ctx.err(format!(
                            "'if' condition of {source} must be a string or a list of strings"
                        )));
                    }
                }
            }
            Ok(if all.len() == 1 {
                all.pop().expect("one element")
            } else {
                Condition::All(all)
            })
        }
        _ if ctx.rules < Rules::V7_2 => Err(ctx.err(format!(
            "'if' condition of {source} must be a string or a list of strings"
        ))),
        Value::Object(cond) => {
            let what = format!("'if' condition of {source}");
            check_keys(cond, ctx, &what, &[], &["all", "any", "not"])?;
            if cond.len() != 1 {
                return Err(ctx.err(format!("'if' condition of {source} has conflicting keys")));
            }
            let (op, operand) = cond.iter().next().expect("one key");
            match op {
                "not" => Ok(Condition::Not(Box::new(check_condition(
                    operand, ctx, source,
                )?))),
                _ => {
                    let Value::Array(operands) = &operand.value else {
                        return Err(
                            ctx.err(format!("'{op}' condition of {source} must be an array"))
                        );
                    };
                    if operands.is_empty() {
                        return Err(ctx.err(format!("'if' condition [] of {source} is useless")));
                    }
                    let list = operands
                        .iter()
                        .map(|o| check_condition(o, ctx, source))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(if op == "all" {
                        Condition::All(list)
                    } else {
                        Condition::Any(list)
                    })
                }
            }
        }
        _ => Err(ctx.err(format!(
            "'if' condition of {source} must be a string or an object"
        ))),
    }
}

/// Features in canonical form: a bare name stands for `{'name': NAME}`.
fn check_features(node: Option<&Node>, ctx: &Ctx<'_>) -> Result<Vec<RawFeature>> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = &node.value else {
        return Err(ctx.err("'features' must be an array"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let sugar;
        let feat = match &item.value {
            Value::Object(o) => o,
            _ => {
                sugar = desugar("name", item);
                &sugar
            }
        };
        let source = "'features' member";
        check_keys(feat, ctx, source, &["name"], &["if"])?;
        let name = require_name_str(get(feat, "name"), ctx, source)?;
        let source = format!("{source} '{name}'");
        check_name_lower(name, ctx, &source, false, false)?;
        let ifcond = check_if(feat, ctx, &source)?;
        out.push(RawFeature {
            name: name.to_owned(),
            ifcond,
        });
    }
    Ok(out)
}

/// `value` as the object `{key: value}`: QEMU's sugar for a member given by
/// its type only, a feature or enum value given by its name only.
fn desugar(key: &str, value: &Node) -> Object {
    Object {
        members: vec![(key.to_owned(), value.loc, value.clone())],
    }
}

fn check_type_name(node: Option<&Node>, ctx: &Ctx<'_>, source: &str) -> Result<Option<String>> {
    match node.map(|n| &n.value) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ctx.err(format!("{source} should be a type name"))),
    }
}

fn check_type_name_or_array(
    node: Option<&Node>,
    ctx: &Ctx<'_>,
    source: &str,
) -> Result<Option<TypeRef>> {
    match node.map(|n| &n.value) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(TypeRef::Name(s.clone()))),
        Some(Value::Array(items)) => match items.as_slice() {
            [Node {
                value: Value::Str(s),
                ..
            }] => Ok(Some(TypeRef::Array(s.clone()))),
            _ => Err(ctx.err(format!(
                "{source}: array type must contain single type name"
            ))),
        },
        Some(_) => Err(ctx.err(format!("{source} should be a type name or array"))),
    }
}

/// An inline object type: `{'member': 'type', '*optional': {'type': …}}`.
fn check_type_implicit(
    node: Option<&Node>,
    ctx: &Ctx<'_>,
    source: &str,
    parent: Option<&str>,
) -> Result<Option<Vec<RawMember>>> {
    let Some(node) = node else {
        return Ok(None);
    };
    let Value::Object(members) = &node.value else {
        return Err(ctx.err(format!("{source} should be an object or type name")));
    };
    let permissive =
        parent.is_some_and(|p| ctx.pragmas.member_name_exceptions.iter().any(|n| n == p));
    let mut out = Vec::with_capacity(members.len());
    for (key, value) in members.iter() {
        let key_source = format!("{source} member '{key}'");
        let (name, optional) = match key.strip_prefix('*') {
            Some(rest) => (rest, true),
            None => (key, false),
        };
        check_name_lower(name, ctx, &key_source, permissive, permissive)?;
        let c = naming::c_name(name, false);
        if c == "u" || c.starts_with("has_") {
            return Err(ctx.err(format!("{key_source} uses reserved name")));
        }
        let sugar;
        let arg = match &value.value {
            Value::Object(o) => o,
            _ => {
                sugar = desugar("type", value);
                &sugar
            }
        };
        check_keys(arg, ctx, &key_source, &["type"], &["if", "features"])?;
        let ifcond = check_if(arg, ctx, &key_source)?;
        let features = check_features(get(arg, "features"), ctx)?;
        let ty = check_type_name_or_array(get(arg, "type"), ctx, &key_source)?
            .expect("'type' is required");
        out.push(RawMember {
            name: name.to_owned(),
            optional,
            ty,
            ifcond,
            features,
        });
    }
    Ok(Some(out))
}

fn check_arguments(expr: &Object, ctx: &Ctx<'_>, boxed: bool) -> Result<Option<TypeOrMembers>> {
    let data = get(expr, "data");
    if boxed {
        if data.is_none() {
            return Err(ctx.err("'boxed': true requires 'data'"));
        }
        return Ok(check_type_name(data, ctx, "'data'")?.map(TypeOrMembers::Name));
    }
    type_name_or_implicit(data, ctx, "'data'", None)
}

fn type_name_or_implicit(
    node: Option<&Node>,
    ctx: &Ctx<'_>,
    source: &str,
    parent: Option<&str>,
) -> Result<Option<TypeOrMembers>> {
    if let Some(Value::Str(s)) = node.map(|n| &n.value) {
        return Ok(Some(TypeOrMembers::Name(s.clone())));
    }
    Ok(check_type_implicit(node, ctx, source, parent)?.map(TypeOrMembers::Members))
}

fn check_enum(expr: &Object, name: &str, ctx: &Ctx<'_>) -> Result<Body> {
    let data = get(expr, "data").expect("'data' is required");
    let Value::Array(items) = &data.value else {
        return Err(ctx.err("'data' must be an array"));
    };
    let prefix = match get(expr, "prefix").map(|n| &n.value) {
        None => None,
        Some(Value::Str(s)) => Some(s.clone()),
        Some(_) => return Err(ctx.err("'prefix' must be a string")),
    };
    let permissive = ctx.pragmas.member_name_exceptions.iter().any(|n| n == name);
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        let sugar;
        let member = match &item.value {
            Value::Object(o) => o,
            _ => {
                sugar = desugar("name", item);
                &sugar
            }
        };
        let source = "'data' member";
        let optional: &[&str] = if ctx.rules < Rules::V7_2 {
            &["if"]
        } else {
            &["if", "features"]
        };
        check_keys(member, ctx, source, &["name"], optional)?;
        let value_name = require_name_str(get(member, "name"), ctx, source)?;
        let source = format!("{source} '{value_name}'");
        // Values may start with a digit: check them as if they did not.
        let checked = if value_name.starts_with(|c: char| c.is_ascii_digit()) {
            format!("d{value_name}")
        } else {
            value_name.to_owned()
        };
        check_name_lower(&checked, ctx, &source, permissive, permissive)?;
        let ifcond = check_if(member, ctx, &source)?;
        let features = check_features(get(member, "features"), ctx)?;
        values.push(RawEnumValue {
            name: value_name.to_owned(),
            ifcond,
            features,
        });
    }
    Ok(Body::Enum { values, prefix })
}

fn check_union(expr: &Object, name: &str, ctx: &Ctx<'_>) -> Result<Body> {
    let base = type_name_or_implicit(get(expr, "base"), ctx, "'base'", Some(name))?
        .expect("'base' is required");
    let discriminator =
        require_name_str(get(expr, "discriminator"), ctx, "'discriminator'")?.to_owned();
    let data = get(expr, "data").expect("'data' is required");
    let Value::Object(members) = &data.value else {
        return Err(ctx.err("'data' must be an object"));
    };
    let mut branches = Vec::with_capacity(members.len());
    for (key, value) in members.iter() {
        let source = format!("'data' member '{key}'");
        let sugar;
        let value = match &value.value {
            Value::Object(o) => o,
            _ => {
                sugar = desugar("type", value);
                &sugar
            }
        };
        check_keys(value, ctx, &source, &["type"], &["if"])?;
        let ifcond = check_if(value, ctx, &source)?;
        let ty = check_type_name(get(value, "type"), ctx, &source)?.expect("'type' is required");
        branches.push(RawVariant {
            name: key.to_owned(),
            ty: TypeRef::Name(ty),
            ifcond,
        });
    }
    Ok(Body::Union {
        base,
        discriminator,
        branches,
    })
}

fn check_alternate(expr: &Object, ctx: &Ctx<'_>) -> Result<Body> {
    let data = get(expr, "data").expect("'data' is required");
    if !truthy(Some(data)) {
        return Err(ctx.err("'data' must not be empty"));
    }
    let Value::Object(members) = &data.value else {
        return Err(ctx.err("'data' must be an object"));
    };
    let mut alternatives = Vec::with_capacity(members.len());
    for (key, value) in members.iter() {
        let source = format!("'data' member '{key}'");
        check_name_lower(key, ctx, &source, false, false)?;
        let sugar;
        let value = match &value.value {
            Value::Object(o) => o,
            _ => {
                sugar = desugar("type", value);
                &sugar
            }
        };
        check_keys(value, ctx, &source, &["type"], &["if"])?;
        let ifcond = check_if(value, ctx, &source)?;
        if ctx.rules < Rules::V7_2 {
            if let Some(Value::Array(_)) = get(value, "type").map(|n| &n.value) {
                return Err(ctx.err(format!("{source} cannot be an array")));
            }
        }
        let ty = check_type_name_or_array(get(value, "type"), ctx, &source)?
            .expect("'type' is required");
        alternatives.push(RawVariant {
            name: key.to_owned(),
            ty,
            ifcond,
        });
    }
    Ok(Body::Alternate { alternatives })
}

/// A union with QEMU 5.2's rules: flat (`base` and `discriminator`) or
/// simple (neither; each branch's type is wrapped as member `data`).
fn check_union_5_2(expr: &Object, name: &str, ctx: &Ctx<'_>) -> Result<Body> {
    let base = get(expr, "base");
    let discriminator = get(expr, "discriminator");
    let simple = discriminator.is_none();
    if simple {
        if base.is_some() {
            return Err(ctx.err("'base' requires 'discriminator'"));
        }
    } else {
        if let Some(Value::Array(_)) = base.map(|n| &n.value) {
            return Err(ctx.err("'base' cannot be an array"));
        }
        type_name_or_implicit(base, ctx, "'base'", Some(name))?;
        if !truthy(base) {
            return Err(ctx.err("'discriminator' requires 'base'"));
        }
        require_name_str(discriminator, ctx, "'discriminator'")?;
    }
    let data = get(expr, "data").expect("'data' is required");
    let Value::Object(members) = &data.value else {
        return Err(ctx.err("'data' must be an object"));
    };
    let mut branches = Vec::with_capacity(members.len());
    for (key, value) in members.iter() {
        let source = format!("'data' member '{key}'");
        check_name_5_2(key, ctx, &source, false)?;
        let sugar;
        let value = match &value.value {
            Value::Object(o) => o,
            _ => {
                sugar = desugar("type", value);
                &sugar
            }
        };
        check_keys(value, ctx, &source, &["type"], &["if"])?;
        let ifcond = check_if(value, ctx, &source)?;
        if !simple {
            if let Some(Value::Array(_)) = get(value, "type").map(|n| &n.value) {
                return Err(ctx.err(format!("{source} cannot be an array")));
            }
        }
        let ty = check_type_name_or_array(get(value, "type"), ctx, &source)?
            .expect("'type' is required");
        branches.push(RawVariant {
            name: key.to_owned(),
            ty,
            ifcond,
        });
    }
    if simple {
        return Ok(Body::SimpleUnion { branches });
    }
    let base = type_name_or_implicit(base, ctx, "'base'", Some(name))?.expect("checked above");
    let discriminator = require_name_str(discriminator, ctx, "'discriminator'")?.to_owned();
    Ok(Body::Union {
        base,
        discriminator,
        branches,
    })
}

/// A QEMU 5.2 condition: a C preprocessor expression such as
/// `defined(CONFIG_A) || defined(CONFIG_B)`, mapped to the structured form
/// QEMU 6.0 introduced (`{'any': ['CONFIG_A', 'CONFIG_B']}`), as QEMU's own
/// conversion of its schemas did.  An expression outside that subset
/// (`defined`, `!`, `&&`, `||`, parentheses) is kept whole as one name.
pub(crate) fn c_condition(text: &str) -> Condition {
    parse_c_or(text, 0).unwrap_or_else(|| Condition::Name(text.to_owned()))
}

/// Nesting beyond this is not a condition anyone writes: keep it whole.
const MAX_C_CONDITION_DEPTH: usize = 32;

fn parse_c_or(s: &str, depth: usize) -> Option<Condition> {
    if depth > MAX_C_CONDITION_DEPTH {
        return None;
    }
    let parts = split_top_level(s, "||")?;
    if parts.len() > 1 {
        return parts
            .iter()
            .map(|p| parse_c_and(p, depth))
            .collect::<Option<Vec<_>>>()
            .map(Condition::Any);
    }
    parse_c_and(s, depth)
}

fn parse_c_and(s: &str, depth: usize) -> Option<Condition> {
    let parts = split_top_level(s, "&&")?;
    if parts.len() > 1 {
        return parts
            .iter()
            .map(|p| parse_c_unary(p, depth))
            .collect::<Option<Vec<_>>>()
            .map(Condition::All);
    }
    parse_c_unary(s, depth)
}

fn parse_c_unary(s: &str, depth: usize) -> Option<Condition> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('!') {
        return parse_c_unary(rest, depth + 1).map(|c| Condition::Not(Box::new(c)));
    }
    if let Some(inner) = s.strip_prefix("defined").map(str::trim_start) {
        if let Some(name) = inner.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            let name = name.trim();
            return naming::is_condition_name(name).then(|| Condition::Name(name.to_owned()));
        }
    }
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        // Only when these parentheses enclose the whole expression.
        if split_top_level(inner, "||").is_some() {
            return parse_c_or(inner, depth + 1);
        }
    }
    naming::is_condition_name(s).then(|| Condition::Name(s.to_owned()))
}

/// Splits `s` at `op` outside parentheses; `None` if the parentheses do not
/// balance.
fn split_top_level<'a>(s: &'a str, op: &str) -> Option<Vec<&'a str>> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with('(') {
            depth += 1;
        } else if rest.starts_with(')') {
            depth = depth.checked_sub(1)?;
        } else if depth == 0 && rest.starts_with(op) {
            parts.push(&s[start..i]);
            i += op.len();
            start = i;
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    (depth == 0).then(|| {
        parts.push(&s[start..]);
        parts
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_preprocessor_conditions_map_to_structured_ones() {
        let name = |n: &str| Condition::Name(n.to_owned());
        assert_eq!(c_condition("defined(CONFIG_SPICE)"), name("CONFIG_SPICE"));
        assert_eq!(
            c_condition("defined(TARGET_I386) || defined(TARGET_S390X)"),
            Condition::Any(vec![name("TARGET_I386"), name("TARGET_S390X")])
        );
        assert_eq!(
            c_condition("!defined(CONFIG_X) && defined(CONFIG_Y)"),
            Condition::All(vec![
                Condition::Not(Box::new(name("CONFIG_X"))),
                name("CONFIG_Y")
            ])
        );
        assert_eq!(c_condition("FOO > 2"), name("FOO > 2"));
        assert_eq!(c_condition("(((x"), name("(((x"));
    }
}
