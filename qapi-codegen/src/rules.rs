//! Which QEMU release's language and documentation rules to check with.

use std::fmt;
use std::str::FromStr;

/// A QEMU release whose QAPI rules the checker applies.
///
/// QEMU tightened its schema rules over time (documentation line length,
/// sentence spacing, section names, the syntax of `if` conditions).  A schema
/// from an older release is checked with that release's rules; the default is
/// the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum Rules {
    /// QEMU 5.2.
    V5_2,
    /// QEMU 7.2.
    V7_2,
    /// QEMU 10.0.
    V10_0,
    /// QEMU 10.2 (the default).
    #[default]
    V10_2,
}

impl Rules {
    /// Every supported rule set, oldest first.
    pub const ALL: [Rules; 4] = [Rules::V5_2, Rules::V7_2, Rules::V10_0, Rules::V10_2];

    /// The release number, such as `"10.2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rules::V5_2 => "5.2",
            Rules::V7_2 => "7.2",
            Rules::V10_0 => "10.0",
            Rules::V10_2 => "10.2",
        }
    }

    /// The rules for a full QEMU version such as `10.0.13`: the newest rule
    /// set not newer than it.
    pub fn for_version(version: &str) -> Option<Rules> {
        let mut parts = version.trim().split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next().unwrap_or("0").parse().ok()?;
        let v = (major, minor);
        Rules::ALL.iter().rev().copied().find(|r| r.version() <= v)
    }

    fn version(self) -> (u32, u32) {
        match self {
            Rules::V5_2 => (5, 2),
            Rules::V7_2 => (7, 2),
            Rules::V10_0 => (10, 0),
            Rules::V10_2 => (10, 2),
        }
    }
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown release name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown rules '{0}' (known: 5.2, 7.2, 10.0, 10.2)")]
pub struct UnknownRules(pub String);

impl FromStr for Rules {
    type Err = UnknownRules;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rules::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRules(s.to_owned()))
    }
}
