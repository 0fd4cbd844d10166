//! The admin token of a host started without one: generated on its first
//! start, shown once, and kept only as its digest in the state directory,
//! so that no host answers to a token anyone else knows.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use upshift_model::token;

/// The file in the state directory that keeps the generated token's digest.
const FILE: &str = "admin-token.sha256";

/// The digest of this host's generated admin token: read from `state_dir`,
/// or, on the first start, made from a new random token, which is printed
/// (once) on standard error.
pub fn generated(state_dir: &Path) -> anyhow::Result<String> {
    let path = state_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if token::is_digest(text.trim()) => return Ok(text.trim().to_owned()),
        Ok(_) => anyhow::bail!(
            "{} does not hold an admin token's digest (`sha256:` and 64 hex digits); \
             delete it to have a new token generated",
            path.display()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    }
    let secret = format!(
        "upshift_admin_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let digest = token::digest(&secret);
    let mut file = tempfile::NamedTempFile::new_in(state_dir)
        .with_context(|| format!("cannot write in {}", state_dir.display()))?;
    writeln!(file, "{digest}")?;
    file.persist(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "No admin token was configured: generated one. It is shown this once; \
         only its SHA-256 is kept ({}).\n  UPSHIFT_ADMIN_TOKEN={secret}",
        path.display()
    );
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_generated_once_and_kept_as_its_digest() {
        let state = tempfile::tempdir().unwrap();
        let first = generated(state.path()).unwrap();
        assert!(token::is_digest(&first));
        assert_eq!(generated(state.path()).unwrap(), first);
        std::fs::write(state.path().join(FILE), "upshift_admin_plain").unwrap();
        let refused = generated(state.path()).unwrap_err().to_string();
        assert!(
            refused.contains("does not hold an admin token's digest"),
            "{refused}"
        );
    }
}
