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

use fuser::{
    BackgroundSession, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Unsynced writes are remembered by page, and a sync copies the pages written since.
const PAGE: u64 = 4096;

/// The free space `statfs` reports: clicktap refuses appends below its floor.
const FREE_BYTES: u64 = 16 << 30;

/// How long the kernel may cache names and attributes: only this file system
/// changes them while it is mounted.
const TTL: Duration = Duration::from_secs(1);

enum Body {
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

struct Node {
    body: Body,
    perm: u16,
    mtime: SystemTime,
}

/// What the file system holds, and counts of what a cut finds.
#[derive(Default)]
struct Tree {
    nodes: HashMap<u64, Node>,
    next: u64,
    syncs: u64,
}

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

impl Tree {
    fn load(backing: &Path) -> Tree {
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
    fn store(&self, backing: &Path) {
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

    fn pending(&self) -> Cut {
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

    fn attr(&self, ino: u64) -> Option<FileAttr> {
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

    fn entries(&mut self, ino: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::Dir { entries, .. }) => Ok(entries),
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn lookup(&mut self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.entries(parent)?
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    /// A new node named `name` in `parent`.
    fn add(&mut self, parent: u64, name: &OsStr, node: Node) -> Result<FileAttr, Errno> {
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

    fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
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

    fn touch(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.mtime = SystemTime::now();
        }
    }

    fn file(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        match self.nodes.get_mut(&ino) {
            Some(n) if matches!(n.body, Body::File { .. }) => Ok(n),
            Some(_) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn write(&mut self, ino: u64, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
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

    fn truncate(&mut self, ino: u64, size: u64) -> Result<(), Errno> {
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
    fn sync(&mut self, ino: u64) -> Result<(), Errno> {
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
    fn file(data: Vec<u8>, synced: Vec<u8>) -> Node {
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

/// The FUSE side: each call takes the tree's lock for its length.
struct Fs(Arc<Mutex<Tree>>);

impl Fs {
    fn tree(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut t = self.tree();
        match t.lookup(parent.0, name) {
            Ok(ino) => reply.entry(&TTL, &t.attr(ino).unwrap(), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<FileHandle>, reply: ReplyAttr) {
        match self.tree().attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut t = self.tree();
        if let Some(size) = size
            && let Err(e) = t.truncate(ino.0, size)
        {
            return reply.error(e);
        }
        if let Some(mode) = mode
            && let Some(n) = t.nodes.get_mut(&ino.0)
        {
            n.perm = (mode & 0o7777) as u16;
        }
        match t.attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mkdir(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let node = Node {
            body: Body::Dir {
                entries: BTreeMap::new(),
                synced: BTreeMap::new(),
            },
            perm: (mode & !umask & 0o7777) as u16,
            mtime: SystemTime::now(),
        };
        match self.tree().add(parent.0, name, node) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut node = Node::file(Vec::new(), Vec::new());
        node.perm = (mode & !umask & 0o7777) as u16;
        match self.tree().add(parent.0, name, node) {
            Ok(a) => reply.created(&TTL, &a, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.tree().remove(parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.tree().remove(parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let mut t = self.tree();
        let result = (|| {
            let ino = t.lookup(parent.0, name)?;
            if let Ok(old) = t.lookup(newparent.0, newname) {
                if old == ino {
                    return Ok(());
                }
                let is_dir = matches!(t.nodes[&old].body, Body::Dir { .. });
                t.remove(newparent.0, newname, is_dir)?;
            }
            t.entries(parent.0)?.remove(name);
            t.entries(newparent.0)?.insert(newname.to_os_string(), ino);
            t.touch(parent.0);
            t.touch(newparent.0);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut t = self.tree();
        if flags.0 & libc::O_TRUNC != 0
            && let Err(e) = t.truncate(ino.0, 0)
        {
            return reply.error(e);
        }
        match t.nodes.get(&ino.0) {
            Some(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        size: u32,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut t = self.tree();
        match t.file(ino.0).map(|n| &n.body) {
            Ok(Body::File { data, .. }) => {
                let from = (offset as usize).min(data.len());
                let to = (from + size as usize).min(data.len());
                reply.data(&data[from..to]);
            }
            Ok(_) => unreachable!(),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        data: &[u8],
        _: WriteFlags,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.tree().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _: &Request, _: INodeNo, _: FileHandle, _: LockOwner, reply: ReplyEmpty) {
        // A close is not a sync.
        reply.ok();
    }

    fn fsync(&self, _: &Request, ino: INodeNo, _: FileHandle, _: bool, reply: ReplyEmpty) {
        match self.tree().sync(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&self, _: &Request, ino: INodeNo, _: FileHandle, _: bool, reply: ReplyEmpty) {
        match self.tree().sync(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let t = self.tree();
        let Some(Body::Dir { entries, .. }) = t.nodes.get(&ino.0).map(|n| &n.body) else {
            return reply.error(Errno::ENOTDIR);
        };
        let all = [(ino.0, FileType::Directory, OsString::from("."))]
            .into_iter()
            .chain([(ino.0, FileType::Directory, OsString::from(".."))])
            .chain(entries.iter().map(|(name, child)| {
                let kind = match t.nodes[child].body {
                    Body::File { .. } => FileType::RegularFile,
                    Body::Dir { .. } => FileType::Directory,
                };
                (*child, kind, name.clone())
            }));
        for (i, (child, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _: &Request, _: INodeNo, reply: ReplyStatfs) {
        let blocks = FREE_BYTES / PAGE;
        reply.statfs(
            blocks,
            blocks,
            blocks,
            1 << 20,
            1 << 20,
            PAGE as u32,
            255,
            PAGE as u32,
        );
    }

    fn access(&self, _: &Request, _: INodeNo, _: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}
