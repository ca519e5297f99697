//! File helpers: atomic writes, and the cleanup of the temporary files an
//! interrupted write leaves.
//!
//! Every file the CLI writes (model files, CSV outputs, PNGs, a run's
//! `config.json`, `checkpoint.safetensors` and `metrics.json`, downloaded
//! data) goes through [`write_atomic`]. A process killed at any moment
//! leaves the previous file or the new one, never a partial one; what it may
//! leave is a temporary file named after its target
//! (`.<target>.tinygen-tmp-<pid>-<6 random characters>`, see
//! [`temp_file_target`]), which [`remove_stale_temp_files`] removes: a run
//! folder opened by `tinygen fit` or `--resume`, the directory of `tinygen
//! data mnist`, and the target's own stale temporary files before each write.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// What follows the target's name in a temporary file's name.
const TEMP_MARKER: &str = ".tinygen-tmp-";
/// Random characters at the end of a temporary file's name.
const TEMP_RANDOM_CHARS: usize = 6;
/// The target's name is cut to this many bytes in a temporary file's name,
/// so that the name stays within file-system limits.
const TEMP_TARGET_MAX: usize = 100;

/// Checks, before any work, that a model file can go to `path`: it ends in
/// `.tgm` and its directory exists.
pub fn check_model_out(path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.extension().is_some_and(|e| e == "tgm"),
        "output file {} should have the .tgm extension",
        path.display()
    );
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    anyhow::ensure!(
        dir.is_dir(),
        "cannot write {}: the directory {} does not exist",
        path.display(),
        dir.display()
    );
    Ok(())
}

/// Writes a command's output: to `path` atomically (see [`write_atomic`]),
/// or to standard output when no path is given.
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(path) => write_atomic(path, bytes),
        None => Ok(std::io::stdout().lock().write_all(bytes)?),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, flushed and synced, then renamed over the target; on unix the
/// directory is synced too, so the rename itself survives a power cut
/// (file systems that cannot sync a directory are not an error). Readers see
/// the old file or the new one, never a partial write.
///
/// The temporary file is `.<name>.tinygen-tmp-<pid>-<random>` beside the
/// target. If the process dies before the rename, it stays; the next write
/// of the same target removes it (as do [`remove_stale_temp_files`]'s
/// callers), unless the process that made it is still running.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    // Best effort: a leftover that cannot be removed is no reason to fail
    // this write (creating the new temporary file reports real problems).
    let _ = remove_stale(dir, Some(name));
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(name, std::process::id()))
        .suffix("")
        .rand_bytes(TEMP_RANDOM_CHARS)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // Temporary files are private (0600); give the result the permissions
    // of the file it replaces, or the usual 0644 of a new file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::metadata(path)
            .map(|m| m.permissions())
            .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
        tmp.as_file()
            .set_permissions(perms)
            .with_context(|| format!("cannot set the permissions of {}", path.display()))?;
    }
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    sync_dir(dir).with_context(|| format!("cannot sync the directory {}", dir.display()))?;
    Ok(())
}

/// Syncs a directory, so that a rename in it is durable (unix only).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let synced = std::fs::File::open(dir).and_then(|d| d.sync_all());
        match synced {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::ENOTSUP | libc::EBADF | libc::EACCES)
                ) => {}
            other => other?,
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The target's name as it appears in its temporary files' names: lossy
/// UTF-8, cut to [`TEMP_TARGET_MAX`] bytes at a character boundary.
fn temp_target(name: &OsStr) -> String {
    let mut s = name.to_string_lossy().into_owned();
    if s.len() > TEMP_TARGET_MAX {
        let mut end = TEMP_TARGET_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The name of a temporary file for the target `name` made by process
/// `pid`, without its random characters.
fn temp_prefix(name: &OsStr, pid: u32) -> String {
    format!(".{}{TEMP_MARKER}{pid}-", temp_target(name))
}

/// If `file_name` is one of tinygen's temporary files
/// (`.<target>.tinygen-tmp-<pid>-<6 letters or digits>`), its target's name
/// (as [`write_atomic`] spells it: cut to 100 bytes) and the id of the
/// process that made it; `None` for any other name.
pub fn temp_file_target(file_name: &str) -> Option<(&str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let at = rest.rfind(TEMP_MARKER)?;
    let (target, tail) = (&rest[..at], &rest[at + TEMP_MARKER.len()..]);
    let (pid, random) = tail.split_once('-')?;
    let ok = !target.is_empty()
        && !pid.is_empty()
        && pid.len() <= 10
        && pid.bytes().all(|b| b.is_ascii_digit())
        && random.len() == TEMP_RANDOM_CHARS
        && random.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok {
        return None;
    }
    Some((target, pid.parse().ok()?))
}

/// Whether the process `pid` (other than this one) is running, so that its
/// temporary files may still be in use.
fn writer_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        // This process writes one file at a time and cleans before it
        // writes: a file with its id is left by an earlier process that had
        // the same id (as in containers, where every run may be pid 1).
        return false;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    false
}

/// Removes the temporary files that interrupted [`write_atomic`]s left in
/// `dir` (not in its subdirectories) and returns their paths. Only regular
/// files named like tinygen's temporary files (see [`temp_file_target`])
/// whose writing process is no longer running are removed; every other file
/// is left alone. A missing `dir` has nothing to remove.
pub fn remove_stale_temp_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    remove_stale(dir, None)
}

/// [`remove_stale_temp_files`], restricted to the temporary files of the
/// target `only` when given.
fn remove_stale(dir: &Path, only: Option<&OsStr>) -> std::io::Result<Vec<PathBuf>> {
    let only = only.map(temp_target);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some((target, pid)) = name.to_str().and_then(temp_file_target) else {
            continue;
        };
        if only.as_deref().is_some_and(|t| t != target)
            || !entry.file_type()?.is_file()
            || writer_alive(pid)
        {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn atomic_writes_are_readable_by_others_and_keep_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.png");
        write_atomic(&path, b"a").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o644);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, b"b").unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn temporary_names_tie_the_file_to_its_target_and_writer() {
        let name = format!(
            "{}AbC123",
            temp_prefix(OsStr::new("checkpoint.safetensors"), 42)
        );
        assert_eq!(name, ".checkpoint.safetensors.tinygen-tmp-42-AbC123");
        assert_eq!(
            temp_file_target(&name),
            Some(("checkpoint.safetensors", 42))
        );
        // A target whose name contains the marker is still found.
        let odd = format!("{}zzzzzz", temp_prefix(OsStr::new("a.tinygen-tmp-1-b"), 7));
        assert_eq!(temp_file_target(&odd), Some(("a.tinygen-tmp-1-b", 7)));
        // Long names are cut at a character boundary.
        let long = "é".repeat(80);
        let prefix = temp_prefix(OsStr::new(&long), 1);
        let full = format!("{prefix}000000");
        let (target, _) = temp_file_target(&full).unwrap();
        assert_eq!(target, "é".repeat(50));
        for other in [
            ".tmpAbC123",
            "m.tgm",
            "x.tinygen-tmp-1-abcdef",
            ".x.tinygen-tmp-1-abcde",
            ".x.tinygen-tmp-1-abcdefg",
            ".x.tinygen-tmp-1-abc_ef",
            ".x.tinygen-tmp--abcdef",
            ".x.tinygen-tmp-12a-abcdef",
            ".x.tinygen-tmp-12345678901-abcdef",
            ".tinygen-tmp-1-abcdef",
            ".x.tinygen-tmp-1-abcdef.bak",
            ".x.tinygen-tmp",
        ] {
            assert_eq!(temp_file_target(other), None, "{other}");
        }
    }

    #[test]
    fn stale_temporary_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let put = |name: &str| std::fs::write(dir.path().join(name), b"x").unwrap();
        let me = std::process::id();
        // pid_t is 32-bit: no running process has an id above i32::MAX.
        let dead = 4_000_000_000u32;
        let stale = [
            format!(".checkpoint.safetensors.tinygen-tmp-{me}-AbC123"),
            format!(".loss.png.tinygen-tmp-{dead}-000000"),
        ];
        let kept = [
            ".tmpAbC123",
            "checkpoint.safetensors",
            "notes.tinygen-tmp-1-abcdef",
            ".checkpoint.safetensors.tinygen-tmp-1-abcdef.bak",
            ".checkpoint.safetensors.tinygen-tmp-backup",
        ];
        for n in stale.iter().map(String::as_str).chain(kept) {
            put(n);
        }
        // A directory with a temporary file's name is not removed.
        let subdir = format!(".d.tinygen-tmp-{dead}-111111");
        std::fs::create_dir(dir.path().join(&subdir)).unwrap();
        #[cfg(unix)]
        let live = format!(
            ".m.tgm.tinygen-tmp-{}-aaaaaa",
            std::os::unix::process::parent_id()
        );
        #[cfg(unix)]
        put(&live);

        let removed = remove_stale_temp_files(dir.path()).unwrap();
        let mut expected: Vec<PathBuf> = stale.iter().map(|n| dir.path().join(n)).collect();
        expected.sort();
        assert_eq!(removed, expected);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want: Vec<String> = kept.iter().map(|s| s.to_string()).collect();
        want.push(subdir);
        #[cfg(unix)]
        want.push(live);
        want.sort();
        assert_eq!(left, want, "only stale temporary files go");
        assert!(
            remove_stale_temp_files(&dir.path().join("absent"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_write_removes_its_targets_stale_temporary_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join(".m.tgm.tinygen-tmp-4000000000-abcdef");
        let other = dir.path().join(".n.tgm.tinygen-tmp-4000000000-abcdef");
        std::fs::write(&mine, b"partial").unwrap();
        std::fs::write(&other, b"partial").unwrap();
        write_atomic(&dir.path().join("m.tgm"), b"model").unwrap();
        assert!(!mine.exists(), "the target's leftover is removed");
        assert!(other.exists(), "another target's leftover is not");
        assert_eq!(std::fs::read(dir.path().join("m.tgm")).unwrap(), b"model");
        // Long names get a temporary file too.
        let long = dir.path().join(format!("{}.csv", "x".repeat(240)));
        write_atomic(&long, b"a").unwrap();
        assert_eq!(std::fs::read(&long).unwrap(), b"a");
    }

    #[test]
    fn atomic_write_replaces_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.tgm");
        write_atomic(&path, b"first version, longer").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
