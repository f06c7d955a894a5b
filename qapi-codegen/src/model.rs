//! Placeholder.
/// Schema.
pub struct Schema;
impl Schema {
    /// Commands.
    pub fn commands(&self) -> impl Iterator<Item = ()> { std::iter::empty() }
}
