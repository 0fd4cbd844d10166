//! Request path normalization.

/// Removes `.` and `..` segments and repeated slashes, so that a path can
/// neither escape a route's prefix (`/public/../admin`) nor dodge it
/// (`//admin`). The result starts with `/`.
pub fn normalize(path: &str) -> String {
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
    use super::normalize;

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
}
