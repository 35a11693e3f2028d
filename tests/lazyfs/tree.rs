//! The model: every file and directory as written and as of its last sync, and what
//! a cut keeps of them (the rules are in the module above).

use fuser::{Errno, FileAttr, FileType, INodeNo};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::SystemTime;

use super::Cut;

/// Unsynced writes are remembered by page, and a sync copies the pages written since.
pub(super) const PAGE: u64 = 4096;

/// A file or a directory, each as written and as of its last sync.
pub(super) enum Body {
    File {
        /// As written.
        data: Vec<u8>,
        /// As of the last sync.
        synced: Vec<u8>,
        /// Pages written since the last sync.
        dirty: BTreeSet<u64>,
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        synced: BTreeMap<OsString, u64>,
    },
}

pub(super) struct Node {
    pub(super) body: Body,
    pub(super) perm: u16,
    pub(super) mtime: SystemTime,
}

/// What the file system holds, and counts of what a cut finds.
#[derive(Default)]
pub(super) struct Tree {
    pub(super) nodes: HashMap<u64, Node>,
    next: u64,
    syncs: u64,
}

impl Tree {
    pub(super) fn load(backing: &Path) -> Tree {
        let mut tree = Tree {
            next: 2,
            ..Tree::default()
        };
        tree.load_dir(INodeNo::ROOT.0, backing);
        tree
    }

    fn load_dir(&mut self, ino: u64, path: &Path) {
        let mut entries = BTreeMap::new();
        for e in std::fs::read_dir(path).unwrap() {
            let e = e.unwrap();
            let child = self.next;
            self.next += 1;
            if e.file_type().unwrap().is_dir() {
                self.load_dir(child, &e.path());
            } else {
                let data = std::fs::read(e.path()).unwrap();
                self.nodes.insert(child, Node::file(data.clone(), data));
            }
            entries.insert(e.file_name(), child);
        }
        self.nodes.insert(
            ino,
            Node {
                body: Body::Dir {
                    synced: entries.clone(),
                    entries,
                },
                perm: 0o755,
                mtime: SystemTime::now(),
            },
        );
    }

    /// Writes what is durable into `backing`, replacing what it held.
    pub(super) fn store(&self, backing: &Path) {
        std::fs::remove_dir_all(backing).unwrap();
        std::fs::create_dir(backing).unwrap();
        let mut seen = HashSet::new();
        self.store_dir(INodeNo::ROOT.0, backing, &mut seen);
    }

    fn store_dir(&self, ino: u64, path: &Path, seen: &mut HashSet<u64>) {
        // A directory renamed into its own subtree with only some of the directories
        // synced can appear twice: once is what a disk would keep.
        if !seen.insert(ino) {
            return;
        }
        let Some(Body::Dir { synced, .. }) = self.nodes.get(&ino).map(|n| &n.body) else {
            return;
        };
        for (name, child) in synced {
            let p = path.join(name);
            match &self.nodes[child].body {
                Body::File { synced, .. } => std::fs::write(&p, synced).unwrap(),
                Body::Dir { .. } => {
                    std::fs::create_dir(&p).unwrap();
                    self.store_dir(*child, &p, seen);
                }
            }
        }
    }

    pub(super) fn pending(&self) -> Cut {
        let mut cut = Cut {
            syncs: self.syncs,
            ..Cut::default()
        };
        for n in self.nodes.values() {
            match &n.body {
                Body::File { dirty, .. } => cut.pages += dirty.len() as u64,
                Body::Dir { entries, synced } => {
                    let changed = entries.iter().filter(|(k, v)| synced.get(*k) != Some(v));
                    let removed = synced.keys().filter(|k| !entries.contains_key(*k));
                    cut.entries += (changed.count() + removed.count()) as u64;
                }
            }
        }
        cut
    }

    pub(super) fn attr(&self, ino: u64) -> Option<FileAttr> {
        let n = self.nodes.get(&ino)?;
        let (kind, size, nlink) = match &n.body {
            Body::File { data, .. } => (FileType::RegularFile, data.len() as u64, 1),
            Body::Dir { .. } => (FileType::Directory, 0, 2),
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: n.mtime,
            mtime: n.mtime,
            ctime: n.mtime,
            crtime: n.mtime,
            kind,
            perm: n.perm,
            nlink,
            uid: owner().0,
            gid: owner().1,
            rdev: 0,
            blksize: PAGE as u32,
            flags: 0,
        })
    }

    pub(super) fn entries(&mut self, ino: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::Dir { entries, .. }) => Ok(entries),
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    pub(super) fn lookup(&mut self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.entries(parent)?
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    /// A new node named `name` in `parent`.
    pub(super) fn add(&mut self, parent: u64, name: &OsStr, node: Node) -> Result<FileAttr, Errno> {
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(ino, node);
        self.entries(parent)?.insert(name.to_os_string(), ino);
        self.touch(parent);
        Ok(self.attr(ino).expect("just added"))
    }

    pub(super) fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        match (&self.nodes[&ino].body, dir) {
            (Body::Dir { entries, .. }, true) if !entries.is_empty() => {
                return Err(Errno::ENOTEMPTY);
            }
            (Body::Dir { .. }, false) => return Err(Errno::EISDIR),
            (Body::File { .. }, true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        self.entries(parent)?.remove(name);
        self.touch(parent);
        Ok(())
    }

    pub(super) fn touch(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.mtime = SystemTime::now();
        }
    }

    pub(super) fn file(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        match self.nodes.get_mut(&ino) {
            Some(n) if matches!(n.body, Body::File { .. }) => Ok(n),
            Some(_) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    pub(super) fn write(&mut self, ino: u64, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
        let n = self.file(ino)?;
        n.mtime = SystemTime::now();
        let Body::File { data, dirty, .. } = &mut n.body else {
            unreachable!()
        };
        let end = offset as usize + bytes.len();
        if data.len() < end {
            dirty.extend(data.len() as u64 / PAGE..=end as u64 / PAGE);
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(bytes);
        if !bytes.is_empty() {
            dirty.extend(offset / PAGE..=(end as u64 - 1) / PAGE);
        }
        Ok(())
    }

    pub(super) fn truncate(&mut self, ino: u64, size: u64) -> Result<(), Errno> {
        let n = self.file(ino)?;
        n.mtime = SystemTime::now();
        let Body::File { data, dirty, .. } = &mut n.body else {
            unreachable!()
        };
        let (from, to) = (data.len().min(size as usize), data.len().max(size as usize));
        dirty.extend(from as u64 / PAGE..=to as u64 / PAGE);
        data.resize(size as usize, 0);
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file, `fsync` of a directory.
    pub(super) fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        self.syncs += 1;
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File {
                data,
                synced,
                dirty,
            }) => {
                synced.resize(data.len(), 0);
                for page in std::mem::take(dirty) {
                    let from = ((page * PAGE) as usize).min(data.len());
                    let to = (((page + 1) * PAGE) as usize).min(data.len());
                    synced[from..to].copy_from_slice(&data[from..to]);
                }
                Ok(())
            }
            Some(Body::Dir { entries, synced }) => {
                *synced = entries.clone();
                Ok(())
            }
            None => Err(Errno::ENOENT),
        }
    }
}

impl Node {
    pub(super) fn file(data: Vec<u8>, synced: Vec<u8>) -> Node {
        Node {
            body: Body::File {
                data,
                synced,
                dirty: BTreeSet::new(),
            },
            perm: 0o644,
            mtime: SystemTime::now(),
        }
    }
}

/// The owner every node reports: the mounting user, who is the only one let in.
fn owner() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory of ours.
    unsafe { (libc::getuid(), libc::getgid()) }
}
