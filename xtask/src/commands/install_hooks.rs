//! `cargo xtask install-hooks`: install the pre-push hook (`ci/hooks/pre-push`).
//!
//! Into the directory git runs hooks from — `git rev-parse --git-path hooks`, which follows
//! `core.hooksPath` and linked work trees. Idempotent. A different hook already there is
//! never replaced without `--force`, and then it is kept beside as `pre-push.xtask-backup`;
//! `--uninstall` removes our hook (recognised by its marker line) and puts the backup back.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::{
    exit::{self, Outcome},
    flags, repo,
};

/// The hook as shipped; `ci/hooks/pre-push` in this repository.
pub const TEMPLATE: &str = include_str!("../../../ci/hooks/pre-push");
/// The line that makes a hook ours.
pub const MARKER: &str = "# xtask-managed-hook: pre-push";
pub const BACKUP_SUFFIX: &str = ".xtask-backup";

pub fn run(flags: flags::InstallHooks) -> anyhow::Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let start = match &flags.repo {
        Some(dir) if !dir.is_dir() => {
            return Err(exit::usage(format!(
                "--repo {}: no such directory",
                dir.display()
            )))
        }
        Some(dir) => dir.clone(),
        None => cwd,
    };
    let root = repo::toplevel(&start)?;
    let hooks = hooks_dir(&root)?;
    let mut out = std::io::stdout().lock();
    let said = if flags.uninstall {
        uninstall(&hooks)?
    } else {
        install(&hooks, &hook_text(&root), flags.force)?
    };
    writeln!(out, "{said}")?;
    Ok(Outcome::Clean)
}

/// Where git looks for hooks in this repository (`core.hooksPath` respected).
pub fn hooks_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let out = repo::git_command(root)
        .args(["rev-parse", "--git-path", "hooks"])
        .output()
        .map_err(|e| exit::tool(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(exit::usage(format!(
            "{}: git cannot name the hooks directory: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'));
    Ok(if path.is_absolute() {
        path
    } else {
        root.join(path)
    })
}

/// The hook for this repository. When the xtask crate lives in another cargo workspace
/// than the repository (a tool checkout beside the monorepo), that workspace is written in.
pub fn hook_text(root: &Path) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let same = match (
        std::fs::canonicalize(workspace),
        std::fs::canonicalize(root),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => true,
    };
    if same || !workspace.join("Cargo.toml").is_file() {
        return TEMPLATE.to_string();
    }
    TEMPLATE.replacen(
        "workspace_default=$root\n",
        &format!(
            "workspace_default={}\n",
            shell_quote(&workspace.to_string_lossy())
        ),
        1,
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn is_ours(text: &str) -> bool {
    text.lines().any(|l| l.trim_end() == MARKER)
}

fn backup_path(hook: &Path) -> PathBuf {
    let mut name = hook.file_name().unwrap_or_default().to_os_string();
    name.push(BACKUP_SUFFIX);
    hook.with_file_name(name)
}

/// Install `text` as `hooks/pre-push`: what happened, in one line.
pub fn install(hooks: &Path, text: &str, force: bool) -> anyhow::Result<String> {
    let hook = hooks.join("pre-push");
    let backup = backup_path(&hook);
    let existing = match std::fs::symlink_metadata(&hook) {
        Ok(_) => Some(std::fs::read(&hook).unwrap_or_default()),
        Err(_) => None,
    };
    let mut said = format!("installed the pre-push hook: {}", hook.display());
    match existing {
        Some(old) if old == text.as_bytes() => {
            ensure_executable(&hook)?;
            return Ok(format!(
                "the pre-push hook is already installed: {}",
                hook.display()
            ));
        }
        Some(old) if is_ours(&String::from_utf8_lossy(&old)) => {
            said = format!("updated the pre-push hook: {}", hook.display());
        }
        Some(_) if !force => {
            return Err(exit::usage(format!(
                "{} is a different pre-push hook, left as it is. Run `cargo xtask install-hooks --force` to replace it (it is kept as {}), or call `ci/hooks/pre-push` from it.",
                hook.display(),
                backup.display()
            )));
        }
        Some(_) => {
            if std::fs::symlink_metadata(&backup).is_ok() {
                return Err(exit::usage(format!(
                    "{} exists already: move it away first, so that no hook is lost",
                    backup.display()
                )));
            }
            std::fs::rename(&hook, &backup).with_context(|| {
                format!("cannot move {} to {}", hook.display(), backup.display())
            })?;
            said = format!(
                "installed the pre-push hook: {} (the one that was there is kept as {})",
                hook.display(),
                backup.display()
            );
        }
        None => {}
    }
    std::fs::create_dir_all(hooks).with_context(|| format!("cannot create {}", hooks.display()))?;
    crate::outfile::write_atomic(&hook, text.as_bytes())
        .with_context(|| format!("cannot write {}", hook.display()))?;
    ensure_executable(&hook)?;
    Ok(said)
}

fn ensure_executable(path: &Path) -> anyhow::Result<()> {
    let mut perm = std::fs::metadata(path)?.permissions();
    if perm.mode() & 0o111 != 0o111 {
        perm.set_mode(perm.mode() | 0o755);
        std::fs::set_permissions(path, perm)
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

/// Remove our hook and put the backup back: what happened, in one line.
pub fn uninstall(hooks: &Path) -> anyhow::Result<String> {
    let hook = hooks.join("pre-push");
    let backup = backup_path(&hook);
    let ours = match std::fs::symlink_metadata(&hook) {
        Ok(_) => {
            let text = std::fs::read(&hook).unwrap_or_default();
            if !is_ours(&String::from_utf8_lossy(&text)) {
                return Err(exit::usage(format!(
                    "{} is not the hook install-hooks installed: left as it is",
                    hook.display()
                )));
            }
            true
        }
        Err(_) => false,
    };
    if ours {
        std::fs::remove_file(&hook).with_context(|| format!("cannot remove {}", hook.display()))?;
    }
    let restored = std::fs::symlink_metadata(&backup).is_ok();
    if restored {
        std::fs::rename(&backup, &hook).with_context(|| {
            format!(
                "cannot move {} back to {}",
                backup.display(),
                hook.display()
            )
        })?;
    }
    Ok(match (ours, restored) {
        (true, true) => format!(
            "removed the pre-push hook and restored the one it replaced: {}",
            hook.display()
        ),
        (true, false) => format!("removed the pre-push hook: {}", hook.display()),
        (false, true) => format!("restored the backed-up pre-push hook: {}", hook.display()),
        (false, false) => format!("no pre-push hook to remove in {}", hooks.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_hook_carries_the_marker_and_a_default_workspace_line() {
        assert!(is_ours(TEMPLATE));
        assert!(TEMPLATE.contains("workspace_default=$root\n"));
        assert!(!is_ours("#!/bin/sh\n# xtask-managed-hook: pre-push-ish\n"));
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
