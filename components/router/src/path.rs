//! Request path normalization.

use std::borrow::Cow;

/// Removes `.` and `..` segments and repeated slashes, so that a path can
/// neither escape a route's prefix (`/public/../admin`) nor dodge it
/// (`//admin`). The result starts with `/`; a path that is already so is
/// borrowed, not copied.
pub fn normalize(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(rebuild(path))
    }
}

/// Whether `path` is what [`normalize`] makes of it: a leading `/` and no
/// empty, `.` or `..` segments (a trailing slash aside).
fn is_normal(path: &str) -> bool {
    let Some(inner) = path.strip_prefix('/') else {
        return false;
    };
    if inner.is_empty() {
        return true;
    }
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    !inner.is_empty() && inner.split('/').all(|s| !matches!(s, "" | "." | ".."))
}

fn rebuild(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (path.ends_with('/') && !segments.is_empty()) {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{is_normal, normalize};

    #[test]
    fn removes_dot_segments_and_repeated_slashes() {
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("/a/b"), "/a/b");
        assert_eq!(normalize("/a/b/"), "/a/b/");
        assert_eq!(normalize("//a///b"), "/a/b");
        assert_eq!(normalize("/public/../admin"), "/admin");
        assert_eq!(normalize("/../../etc"), "/etc");
        assert_eq!(normalize("/a/./b/."), "/a/b");
    }

    #[test]
    fn normal_paths_are_borrowed_and_others_rebuilt() {
        for path in [
            "/",
            "",
            "//",
            "/a",
            "/a/",
            "/a//b",
            "/./a",
            "/a/.",
            "/a/..",
            "a/b",
            "/a/b/c/",
            "/..",
            "/a.b/c..d",
        ] {
            let normalized = normalize(path);
            assert_eq!(is_normal(path), normalized == path, "{path:?}");
            assert_eq!(
                matches!(normalized, std::borrow::Cow::Borrowed(_)),
                is_normal(path)
            );
        }
    }
}
