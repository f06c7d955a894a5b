//! When schema members appeared, from the "(since X.Y)" notes in their
//! documentation, and which members a reply from an older QEMU will lack.
//!
//! A binding generated from a new schema meets older QEMUs; a member that
//! the new schema requires in a reply, but that was added after the oldest
//! release a program supports, is absent from that release's replies.  The
//! generator makes such members optional (see [`late_reply_members`]) so
//! that the rest of the reply still decodes.

use std::collections::{BTreeMap, HashSet};

use crate::doc::DocBlock;
use crate::model::{EntityId, EntityKind, Schema};

/// A QEMU release, as (major, minor).
pub type Release = (u32, u32);

/// The doc block that describes the members of `id`: its own, or for an
/// implicit type (`q_obj_NAME-arg`, `q_obj_NAME-base`) that of the
/// command, event or union it belongs to.
pub fn member_doc_block(schema: &Schema, id: EntityId) -> Option<&DocBlock> {
    let entity = schema.entity(id);
    if let Some(rest) = entity.name.strip_prefix("q_obj_") {
        let owner = rest.rsplit_once('-').map_or(rest, |(o, _)| o);
        return schema.lookup_id(owner).and_then(|o| schema.doc(o));
    }
    schema.doc(id)
}

/// The release in the first "(since X.Y" of `text` (any case, an optional
/// colon), if there is one.
pub fn parse_since(text: &str) -> Option<Release> {
    let lower = text.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("(since") {
        let after = rest[at + "(since".len()..].trim_start_matches([':', ' ', '\n']);
        let mut parts = after.splitn(3, |c: char| !c.is_ascii_digit());
        let major = parts.next().and_then(|m| m.parse().ok());
        let minor = parts.next().and_then(|m| m.parse().ok());
        let dot = after
            .find(|c: char| !c.is_ascii_digit())
            .map(|i| &after[i..i + 1]);
        if let (Some(major), Some(minor), Some(".")) = (major, minor, dot) {
            return Some((major, minor));
        }
        rest = &rest[at + 1..];
    }
    None
}

/// The release a member of type `id` appeared in, from its description.
pub fn member_since(schema: &Schema, id: EntityId, member: &str) -> Option<Release> {
    let block = member_doc_block(schema, id)?;
    parse_since(&block.member(member)?.text)
}

/// Every type a command's reply or an event's data can contain.
pub fn reply_types(schema: &Schema) -> HashSet<EntityId> {
    let mut todo: Vec<EntityId> = Vec::new();
    for entity in &schema.entities {
        match &entity.kind {
            EntityKind::Command(command) => todo.extend(command.ret_type),
            EntityKind::Event { arg_type, .. } => todo.extend(*arg_type),
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        match &schema.entity(id).kind {
            EntityKind::Array { element } => todo.push(*element),
            EntityKind::Object { base, branches, .. } => {
                todo.extend(*base);
                todo.extend(schema.members(id).iter().map(|m| m.ty));
                if let Some(branches) = branches {
                    todo.extend(branches.variants.iter().map(|v| v.ty));
                }
            }
            EntityKind::Alternate { alternatives } => {
                todo.extend(alternatives.iter().map(|a| a.ty));
            }
            _ => {}
        }
    }
    seen
}

/// The required members of reply types that appeared after `baseline`:
/// (type, member) → the release that added it.  Members are listed under
/// the type that defines them (a base type's members under the base).
pub fn late_reply_members(
    schema: &Schema,
    baseline: Release,
) -> BTreeMap<(EntityId, String), Release> {
    let mut late = BTreeMap::new();
    for id in reply_types(schema) {
        let EntityKind::Object { local_members, .. } = &schema.entity(id).kind else {
            continue;
        };
        for member in local_members.iter().filter(|m| !m.optional) {
            if let Some(since) = member_since(schema, id, &member.name) {
                if since > baseline {
                    late.insert((id, member.name.clone()), since);
                }
            }
        }
    }
    late
}

// `late_reply_members` on the vendored QMP schema is tested in
// tests/vendored.rs, which skips when `schemas/` is not there (a packaged crate).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_notes_in_their_usual_spellings() {
        assert_eq!(parse_since("the children (since 10.1)"), Some((10, 1)));
        assert_eq!(parse_since("x (Since: 2.12)"), Some((2, 12)));
        assert_eq!(parse_since("x (since 2.5, was 'foo' before)"), Some((2, 5)));
        assert_eq!(parse_since("(since\n   8.0)"), Some((8, 0)));
        assert_eq!(parse_since("since 8.0"), None);
        assert_eq!(parse_since("(since the start) (since 9.2)"), Some((9, 2)));
        assert_eq!(parse_since("(since 7)"), None);
    }
}
