//! A file system that forgets what was not synced, for the power-cut suite (in the
//! spirit of Jepsen's LazyFS): [`Disk`] serves a backing directory through FUSE, and
//! [`Disk::cut`] is the power cut, after which the backing directory holds exactly
//! what had been synced, and nothing else, and is mounted again.
//!
//! The model is the strictest that POSIX allows, so that a program passing on it
//! passes on any file system that keeps its promises:
//! - a file's data and size are durable only as of its last `fsync`/`fdatasync`
//!   (writes, truncations and extensions since are lost);
//! - a directory's entries (a file or directory created, renamed, removed) are durable
//!   only as of the last `fsync` of that directory: a file synced but never named in a
//!   synced directory is gone, a name synced for a file never synced is an empty file;
//! - after a cut, the directories and files reachable from the root through durable
//!   entries are what the machine finds at boot.
//!
//! What the model does not do: a real disk may keep some unsynced writes (a torn
//! page, one write of two); this one keeps none, so it shows what depends on a sync,
//! not every order a disk may keep. It serves from memory (two copies of each file:
//! as written and as synced), loaded from the backing directory at mount and written
//! back at the cut: a test's queue of a few MiB, not a disk's worth. Extended
//! attributes, links, special files and `fallocate` are refused; locks are the
//! kernel's own (FUSE keeps `flock` locally when the file system does not take it).

mod fuse;
mod tree;

use fuser::{BackgroundSession, MountOption};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fuse::Fs;
use tree::Tree;

/// What a cut threw away.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cut {
    /// Pages written and never synced.
    pub pages: u64,
    /// Directory entries created, renamed or removed and never synced.
    pub entries: u64,
    /// Syncs (of files and directories) seen while mounted.
    pub syncs: u64,
}

/// The file system over a backing directory, mounted.
pub struct Disk {
    backing: PathBuf,
    mountpoint: PathBuf,
    tree: Arc<Mutex<Tree>>,
    session: Option<BackgroundSession>,
}

impl Disk {
    /// A new, empty disk: `dir/backing` mounted at `dir/disk`. Fails the test, naming
    /// what to install, when FUSE cannot mount here.
    pub fn new(dir: &Path) -> Disk {
        let (backing, mountpoint) = (dir.join("backing"), dir.join("disk"));
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mountpoint).unwrap();
        let mut disk = Disk {
            backing,
            mountpoint,
            tree: Arc::default(),
            session: None,
        };
        disk.mount();
        disk
    }

    /// Where the file system is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Where what survives a cut is kept (read it between cuts only through
    /// [`Disk::path`]: this is the state of the last cut).
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    fn mount(&mut self) {
        self.tree = Arc::new(Mutex::new(Tree::load(&self.backing)));
        let mut config = fuser::Config::default();
        config.mount_options = vec![MountOption::FSName("lazyfs".into()), MountOption::RW];
        let session = fuser::spawn_mount(Fs(self.tree.clone()), &self.mountpoint, &config)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot mount the power-cut file system at {} ({e}): it needs /dev/fuse \
                     and, unless run as root, fusermount3 (Debian/Ubuntu: apt-get install fuse3)",
                    self.mountpoint.display()
                )
            });
        self.session = Some(session);
    }

    /// The power cut, and the power back: unmounts (every process writing here must be
    /// gone), leaves in the backing directory only what was synced, and mounts that.
    pub fn cut(&mut self) -> Cut {
        let session = self.session.take().expect("mounted");
        session
            .umount_and_join()
            .expect("unmount the power-cut file system (a process still using it?)");
        let cut = {
            let tree = self.tree.lock().unwrap();
            tree.store(&self.backing);
            tree.pending()
        };
        self.mount();
        cut
    }
}
