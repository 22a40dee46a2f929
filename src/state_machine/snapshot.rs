//! Snapshots: one self-checking file format serves Raft snapshot transfer, `batata snapshot
//! save/restore/inspect` and `GET/PUT /v1/snapshot`.
//!
//! ```text
//! magic "BATASNAP" | u8 format version | u32 LE header length | header (postcard SnapshotHeader)
//! records: u8 tag 1 | u8 column family id | u32 LE key length | key | u32 LE value length | value
//! end:     u8 tag 0 | u64 LE record count
//! trailer: u32 LE crc32 of every byte before it
//! ```
//!
//! A snapshot is built from a RocksDB checkpoint (a point-in-time, hard-linked copy taken on the
//! state-machine worker, i.e. serialized with apply), so the data and the `SnapshotMeta` in its
//! header describe the same instant. Records are RocksDB-version independent, which keeps the
//! file usable for disaster recovery across upgrades.
//!
//! On-disk layout under `<data-dir>`:
//! `sm/CURRENT` names the live generation `sm/gen-NNNNNNNNNN/`; `snapshots/snap-<index>-<term>.bsnap`
//! holds the newest snapshot; `snapshots/tmp-*` are partial builds or transfers, removed at start.

use std::fs;
use std::fs::File;
use std::io;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Read;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use rocksdb::IteratorMode;
use rocksdb::WriteBatch;
use rocksdb::DB;
use serde::Deserialize;
use serde::Serialize;

use super::io_err;
use super::schema;
use super::StoreResult;
use crate::raft::types::SnapshotMeta;

const MAGIC: &[u8; 8] = b"BATASNAP";
const FILE_VERSION: u8 = 1;
/// Refuse headers larger than this (a corrupt length must not allocate gigabytes).
const MAX_HEADER: u32 = 16 * 1024 * 1024;
/// Refuse keys or values larger than this inside a snapshot.
const MAX_RECORD_PART: u32 = 256 * 1024 * 1024;

/// The snapshot handle openraft passes between the state machine and the network.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotHeader {
    pub cluster_id: String,
    pub meta: SnapshotMeta,
    pub created_ms: u64,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// fsync a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams a snapshot file out of a database (a checkpoint, opened read-only).
pub fn write_snapshot_file(db: &DB, header: &SnapshotHeader, out: &Path) -> StoreResult<()> {
    let f = File::create(out)?;
    let mut w = CrcWriter { inner: BufWriter::new(f), crc: crc32fast::Hasher::new() };
    w.write_all(MAGIC)?;
    w.write_all(&[FILE_VERSION])?;
    let hb = postcard::to_allocvec(header).map_err(io_err)?;
    w.write_all(&(hb.len() as u32).to_le_bytes())?;
    w.write_all(&hb)?;
    let mut count = 0u64;
    for (id, name) in schema::ALL_CFS.iter().enumerate() {
        let h = super::cf(db, name)?;
        for item in db.iterator_cf(h, IteratorMode::Start) {
            let (k, v) = item.map_err(io_err)?;
            w.write_all(&[1u8, id as u8])?;
            w.write_all(&(k.len() as u32).to_le_bytes())?;
            w.write_all(&k)?;
            w.write_all(&(v.len() as u32).to_le_bytes())?;
            w.write_all(&v)?;
            count += 1;
        }
    }
    w.write_all(&[0u8])?;
    w.write_all(&count.to_le_bytes())?;
    let crc = w.crc.clone().finalize();
    let mut inner = w.inner;
    inner.write_all(&crc.to_le_bytes())?;
    inner.flush()?;
    inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Reads the header only (cheap; no checksum verification).
pub fn read_header(path: &Path) -> StoreResult<SnapshotHeader> {
    let mut r = BufReader::new(File::open(path)?);
    read_header_from(&mut r)
}

fn read_header_from<R: Read>(r: &mut R) -> StoreResult<SnapshotHeader> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|_| bad("not a batata snapshot: file too short"))?;
    if &magic != MAGIC {
        return Err(bad("not a batata snapshot: bad magic"));
    }
    let mut v = [0u8; 1];
    r.read_exact(&mut v)?;
    if v[0] != FILE_VERSION {
        return Err(bad(format!("unsupported snapshot format version {}", v[0])));
    }
    let len = read_u32(r)?;
    if len > MAX_HEADER {
        return Err(bad("snapshot header too large"));
    }
    let mut hb = vec![0u8; len as usize];
    r.read_exact(&mut hb)?;
    postcard::from_bytes(&hb).map_err(|e| bad(format!("corrupt snapshot header: {e}")))
}

fn read_u32<R: Read>(r: &mut R) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Verifies the trailing checksum of a whole file. Returns the file size.
pub fn verify_file(path: &Path) -> StoreResult<u64> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if len < 4 + 8 + 1 + 4 {
        return Err(bad("snapshot file truncated"));
    }
    let mut crc = crc32fast::Hasher::new();
    let mut remaining = len - 4;
    let mut buf = vec![0u8; 1 << 20];
    while remaining > 0 {
        let n = (remaining as usize).min(buf.len());
        f.read_exact(&mut buf[..n])?;
        crc.update(&buf[..n]);
        remaining -= n as u64;
    }
    let want = read_u32(&mut f)?;
    if crc.finalize() != want {
        return Err(bad("snapshot checksum mismatch"));
    }
    Ok(len)
}

/// Iterates the records of a verified snapshot file, calling `f(cf_id, key, value)`.
/// Returns the header and the record count.
pub fn read_records(
    path: &Path,
    mut f: impl FnMut(u8, Vec<u8>, Vec<u8>) -> StoreResult<()>,
) -> StoreResult<(SnapshotHeader, u64)> {
    verify_file(path)?;
    let mut r = BufReader::new(File::open(path)?);
    let header = read_header_from(&mut r)?;
    let mut n = 0u64;
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)?;
        match tag[0] {
            0 => {
                let mut c = [0u8; 8];
                r.read_exact(&mut c)?;
                if u64::from_le_bytes(c) != n {
                    return Err(bad("snapshot record count mismatch"));
                }
                return Ok((header, n));
            }
            1 => {
                let mut id = [0u8; 1];
                r.read_exact(&mut id)?;
                let k = read_part(&mut r)?;
                let v = read_part(&mut r)?;
                f(id[0], k, v)?;
                n += 1;
            }
            t => return Err(bad(format!("corrupt snapshot: record tag {t}"))),
        }
    }
}

fn read_part<R: Read>(r: &mut R) -> io::Result<Vec<u8>> {
    let len = read_u32(r)?;
    if len > MAX_RECORD_PART {
        return Err(bad("snapshot record too large"));
    }
    let mut b = vec![0u8; len as usize];
    r.read_exact(&mut b)?;
    Ok(b)
}

/// Loads a verified snapshot file into a fresh database at `dir`, with `sm_meta` set from the
/// header so the new generation reports exactly the snapshot's applied id and membership.
pub fn load_into_new_db(path: &Path, dir: &Path) -> StoreResult<DB> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    let db = super::open_db(dir)?;
    let mut batch = WriteBatch::default();
    let (header, _) = read_records(path, |id, k, v| {
        let name = schema::ALL_CFS.get(id as usize).ok_or_else(|| bad(format!("unknown column family id {id}")))?;
        batch.put_cf(super::cf(&db, name)?, k, v);
        if batch.len() >= 10_000 {
            db.write(std::mem::take(&mut batch)).map_err(io_err)?;
        }
        Ok(())
    })?;
    let meta = super::cf(&db, schema::CF_META)?;
    batch.put_cf(meta, schema::META_LAST_APPLIED, schema::encode(&header.meta.last_log_id));
    batch.put_cf(meta, schema::META_MEMBERSHIP, schema::encode(&header.meta.last_membership));
    db.write(batch).map_err(io_err)?;
    db.flush().map_err(io_err)?;
    Ok(db)
}

pub fn snapshots_dir(root: &Path) -> PathBuf {
    root.join("snapshots")
}

pub fn snapshot_file_name(meta: &SnapshotMeta) -> String {
    match &meta.last_log_id {
        Some(l) => format!("snap-{:020}-{:010}.bsnap", l.index, l.leader_id.term),
        None => "snap-00000000000000000000-0000000000.bsnap".to_string(),
    }
}

/// The newest complete snapshot file, if any.
pub fn newest_snapshot(root: &Path) -> StoreResult<Option<PathBuf>> {
    let dir = snapshots_dir(root);
    let mut names: Vec<String> = fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("snap-") && n.ends_with(".bsnap"))
        .collect();
    names.sort();
    Ok(names.pop().map(|n| dir.join(n)))
}

/// Keeps only `keep` (the newest snapshot) in the snapshots directory.
pub fn remove_other_snapshots(root: &Path, keep: &Path) -> StoreResult<()> {
    for e in fs::read_dir(snapshots_dir(root))?.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p != keep && name.starts_with("snap-") {
            let _ = fs::remove_file(&p);
        }
    }
    Ok(())
}

fn sm_dir(root: &Path) -> PathBuf {
    root.join("sm")
}

/// Creates the directory layout, removes partial builds/transfers and superseded generations,
/// and returns the path of the live state-machine database.
pub fn prepare_dirs(root: &Path) -> StoreResult<PathBuf> {
    let sm = sm_dir(root);
    fs::create_dir_all(&sm)?;
    fs::create_dir_all(snapshots_dir(root))?;
    for e in fs::read_dir(snapshots_dir(root))?.flatten() {
        if e.file_name().to_string_lossy().starts_with("tmp-") {
            let p = e.path();
            let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        }
    }
    let current = current_generation(root)?;
    for e in fs::read_dir(&sm)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("gen-") && name != current {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(sm.join(current))
}

/// Name of the live generation (`sm/CURRENT`), creating `gen-0000000001` on a fresh node.
pub fn current_generation(root: &Path) -> StoreResult<String> {
    let cur = sm_dir(root).join("CURRENT");
    match fs::read_to_string(&cur) {
        Ok(s) => {
            let name = s.trim().to_string();
            if !name.starts_with("gen-") || name.contains('/') {
                return Err(bad(format!("corrupt {}", cur.display())));
            }
            Ok(name)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let name = "gen-0000000001".to_string();
            write_atomic(&cur, name.as_bytes())?;
            Ok(name)
        }
        Err(e) => Err(e),
    }
}

/// Allocates the next generation directory (not yet current).
pub fn next_generation(root: &Path) -> StoreResult<(String, PathBuf)> {
    let cur = current_generation(root)?;
    let n: u64 = cur.trim_start_matches("gen-").parse().map_err(|_| bad("corrupt generation name"))?;
    let name = format!("gen-{:010}", n + 1);
    Ok((name.clone(), sm_dir(root).join(name)))
}

/// Makes `name` the live generation, durably.
pub fn set_current_generation(root: &Path, name: &str) -> StoreResult<()> {
    write_atomic(&sm_dir(root).join("CURRENT"), name.as_bytes())
}
