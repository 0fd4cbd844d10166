//! Serde helpers shared by the document types: fields left at their
//! default stay out of the canonical form.

/// Whether a field holds its type's default, for `skip_serializing_if`.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
