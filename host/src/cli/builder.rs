//! `upshift build`: runs each component's `build.command`, like `spin build`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::manifest::{App, BuildConfig};

/// A failed build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The shell could not be started.
    #[error("cannot run the build command of `{component}`")]
    Spawn {
        /// Component name.
        component: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The build command failed.
    #[error("build of component `{component}` failed ({status})")]
    Failed {
        /// Component name.
        component: String,
        /// The command's exit status.
        status: std::process::ExitStatus,
    },
}

impl BuildError {
    /// The process exit code to report: the build command's own when it has one.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Failed { status, .. } => status.code().unwrap_or(1),
            Self::Spawn { .. } => 1,
        }
    }
}

/// Runs every component's build command (`sh -c`) in its working directory
/// (the manifest directory unless `workdir` says otherwise), stopping at the
/// first failure.
pub fn build(app: &App) -> Result<(), BuildError> {
    for (name, component) in &app.manifest.component {
        let Some(build) = &component.build else {
            tracing::info!(component = %name, "no build command, skipping");
            continue;
        };
        run(name, &build.command, &workdir(app, build))?;
    }
    Ok(())
}

/// The directory `build` runs in.
pub fn workdir(app: &App, build: &BuildConfig) -> PathBuf {
    match &build.workdir {
        Some(dir) => app.resolve(dir),
        None => app.dir.clone(),
    }
}

/// Runs the build `command` of component `name` (`sh -c`) in `workdir`.
pub fn run(name: &str, command: &str, workdir: &Path) -> Result<(), BuildError> {
    tracing::info!(component = %name, %command, "building");
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(workdir)
        .status()
        .map_err(|source| BuildError::Spawn {
            component: name.to_owned(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed {
            component: name.to_owned(),
            status,
        })
    }
}
