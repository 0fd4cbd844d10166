//! Prompt templates: finding and filling `{{variable}}` placeholders.

/// The `{{variable}}` placeholders of a template text, in order; `Err`
/// with the offending text when a placeholder is not closed or its name is
/// not made of letters, digits and `_`.
pub fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{:?} is not closed with }}}}", &rest[start..]))?;
        let name = after[..end].trim();
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "{:?} is not a variable name (letters, digits and _)",
                &after[..end]
            ));
        }
        found.push(name);
        rest = &after[end + 2..];
    }
    Ok(found)
}

/// Fills the `{{variable}}` placeholders of `text` with `value(name)`;
/// `Err` with the first name it has no value for. The text must have passed
/// [`placeholders`].
pub fn render(text: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let name = after[..end].trim();
        out.push_str(&value(name).ok_or_else(|| name.to_owned())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
