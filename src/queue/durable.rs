//! What makes a flush of the queue survive a power cut, not only a SIGKILL.
//!
//! sled 0.34's `Db::flush` ends in `sync_file_range` over what it wrote: the pages go
//! to the disk, but neither the file's metadata (its size, new extents) nor the
//! device's write cache is committed. sled calls `sync_all` only from its background
//! flusher, which clicktap turns off so that flushes are its own, and for a snapshot.
//! And sled never syncs a directory. So each flush of the queue ends here, in an
//! `fdatasync` of everything sled wrote since the last one, in the order that keeps
//! what is on the disk consistent at every moment:
//!
//! - `blobs/<lsn>`: a value too large for the log gets a file of its own, created and
//!   written before the log points at it, never synced by sled. New ones are synced,
//!   then the directory that names them, before the log.
//! - `db`: the log itself, written in place. One descriptor held open for it.
//! - the queue directory: sled writes a snapshot (`snap.<lsn>`, synced by sled) under
//!   another name and renames it into place, then removes the older ones; the
//!   directory's sync makes that rename and those removals durable.
//!
//! At open: `conf` (written once when the database is created, never synced by sled),
//! `blobs/`, the queue directory and each directory created to hold it (their entries
//! in their parents), up to the first one that existed before.
//!
//! A sync that fails is an I/O error like sled's own: the database is taken out of
//! service and opened again ([`super::store`]), which counts what never reached the
//! disk as dropped.
//!
//! clicktap's own files (the pid file and the upgrade socket beside the queue) say
//! which process runs now, which a power cut ends anyway: they are not synced.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The descriptors a flush syncs, held open for the life of one opened database.
pub struct Durable {
    db: File,
    /// The queue directory (snapshots come and go in it).
    dir: Dir,
    /// `blobs/`.
    blobs: Dir,
}

/// A directory and the names it held at its last sync. A sync of a directory costs a
/// flush of the device's cache even when nothing changed (2.2-2.5 ms on the development
/// VM's disk), so it is synced only when names came or went.
struct Dir {
    path: PathBuf,
    handle: File,
    names: HashSet<OsString>,
}

impl Dir {
    fn open(path: PathBuf) -> io::Result<Dir> {
        Ok(Dir {
            handle: File::open(&path)?,
            names: names(&path)?,
            path,
        })
    }

    /// Syncs the directory if names came or went since the last time, after
    /// `sync_new` for each new one (those present at open are [`Durable::open`]'s).
    fn sync(&mut self, mut sync_new: impl FnMut(&Path) -> io::Result<()>) -> io::Result<()> {
        let now = names(&self.path)?;
        let mut changed = false;
        for name in now.difference(&self.names) {
            sync_new(&self.path.join(name))?;
            changed = true;
        }
        changed |= self.names.iter().any(|n| !now.contains(n));
        if changed {
            self.handle.sync_all()?;
            self.names = now;
        }
        Ok(())
    }
}

/// The directory holding `path`'s entry (`.` for a relative name of one part).
fn parent(path: &Path) -> Option<&Path> {
    match path.parent()? {
        p if p.as_os_str().is_empty() => Some(Path::new(".")),
        p => Some(p),
    }
}

fn names(dir: &Path) -> io::Result<HashSet<OsString>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// Syncs the data of the file at `path`, unless it is gone already (sled removed a
/// blob or an old snapshot since the listing: nothing points at it any more).
fn sync_file(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(f) => f.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Durable {
    /// The first directory on the way up from `path` that exists: what opening a
    /// database at `path` will create below it is not yet durable.
    pub fn existing_ancestor(path: &Path) -> PathBuf {
        let mut dir = path;
        while !dir.exists() {
            match parent(dir) {
                Some(p) => dir = p,
                None => break,
            }
        }
        dir.to_path_buf()
    }

    /// Makes what opening sled at `dir` created durable (`conf`, `blobs/`, `dir` and its
    /// new ancestors up to `existed`, which existed before) and holds the descriptors
    /// each flush syncs.
    pub fn open(dir: &Path, existed: &Path) -> io::Result<Durable> {
        File::open(dir.join("conf"))?.sync_all()?;
        let blobs = Dir::open(dir.join("blobs"))?;
        for name in &blobs.names {
            sync_file(&blobs.path.join(name))?;
        }
        blobs.handle.sync_all()?;
        let queue_dir = Dir::open(dir.to_path_buf())?;
        queue_dir.handle.sync_all()?;
        // Each new directory's entry lives in its parent.
        let mut child = dir;
        while child != existed {
            let Some(parent) = parent(child) else { break };
            File::open(parent)?.sync_all()?;
            child = parent;
        }
        Ok(Durable {
            db: File::open(dir.join("db"))?,
            dir: queue_dir,
            blobs,
        })
    }

    /// Called right after sled's own flush: commits what it wrote, new blob files
    /// first, so that the log never points at a blob the disk does not have.
    pub fn sync(&mut self) -> io::Result<()> {
        self.blobs.sync(sync_file)?;
        self.db.sync_data()?;
        // Snapshots are synced by sled before their rename.
        self.dir.sync(|_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directories_a_new_queue_needs_synced_are_those_created_and_the_first_that_existed() {
        let tmp = tempfile::tempdir().unwrap();
        let queue = tmp.path().join("a/b/queue");
        assert_eq!(Durable::existing_ancestor(&queue), tmp.path());
        std::fs::create_dir_all(&queue).unwrap();
        assert_eq!(Durable::existing_ancestor(&queue), queue);
        // A relative name of one part lives in the working directory.
        assert_eq!(parent(Path::new("queue")), Some(Path::new(".")));
        assert_eq!(parent(Path::new("/")), None);
    }

    #[test]
    fn a_directory_is_synced_again_only_when_names_came_or_went() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = Dir::open(tmp.path().to_path_buf()).unwrap();
        let mut seen = Vec::new();
        let mut record = |p: &Path| {
            seen.push(p.to_path_buf());
            Ok(())
        };
        dir.sync(&mut record).unwrap();
        std::fs::write(tmp.path().join("blob"), b"x").unwrap();
        dir.sync(&mut record).unwrap();
        dir.sync(&mut record).unwrap();
        assert_eq!(seen, [tmp.path().join("blob")], "a new name is synced once");
        std::fs::remove_file(tmp.path().join("blob")).unwrap();
        dir.sync(|_| Ok(())).unwrap();
        assert!(dir.names.is_empty());
    }
}
