//! Moving a corrupt cursor database aside so that a fresh one can start in its place.
//!
//! Losing the cursors is safe: the engine re-reads peers' streams from where the new
//! (empty) store says, re-applying is idempotent, and the cold path repairs whatever a
//! stream no longer holds. The bad file is kept for inspection, never deleted.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The files SQLite keeps next to a database, by suffix. The WAL must move with the main
/// file: left behind, SQLite would replay its pages into the fresh database.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Renames `path` to `<path>.corrupt-<unix-ms>` and each companion file `<path>-wal` etc.
/// to `<path>.corrupt-<unix-ms>-wal`, so that `sqlite3 <path>.corrupt-<ms>` still sees
/// them together. Returns the new main path, or `None` if the main file was gone already
/// (another process opening it at the same time moved it first).
///
/// Companions move first: if the process dies half-way, the corrupt main file is still
/// in place and is moved at the next open, never a fresh file with a stale WAL.
pub(super) fn move_aside(path: &Path) -> io::Result<Option<PathBuf>> {
    let mut millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // Never overwrite an earlier corrupt copy (two recoveries within one millisecond).
    while suffixed(path, &format!(".corrupt-{millis}")).exists() {
        millis += 1;
    }
    let aside = suffixed(path, &format!(".corrupt-{millis}"));
    for companion in COMPANIONS {
        match std::fs::rename(suffixed(path, companion), suffixed(&aside, companion)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    match std::fs::rename(path, &aside) {
        Ok(()) => Ok(Some(aside)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `path` with `suffix` appended to its file name.
pub(super) fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_main_file_and_companions_together() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cursors.db");
        std::fs::write(&db, b"main").unwrap();
        std::fs::write(suffixed(&db, "-wal"), b"wal").unwrap();
        let aside = move_aside(&db).unwrap().unwrap();

        assert!(!db.exists() && !suffixed(&db, "-wal").exists());
        let name = aside.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("cursors.db.corrupt-"), "{name}");
        assert_eq!(std::fs::read(&aside).unwrap(), b"main");
        assert_eq!(std::fs::read(suffixed(&aside, "-wal")).unwrap(), b"wal");
        assert!(
            !suffixed(&aside, "-shm").exists(),
            "absent companions are skipped"
        );
    }

    #[test]
    fn never_overwrites_an_earlier_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        std::fs::write(&db, b"first").unwrap();
        let first = move_aside(&db).unwrap().unwrap();
        std::fs::write(&db, b"second").unwrap();
        let second = move_aside(&db).unwrap().unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(first).unwrap(), b"first");
        assert_eq!(std::fs::read(second).unwrap(), b"second");
        assert_eq!(move_aside(&db).unwrap(), None, "nothing left to move");
    }
}
