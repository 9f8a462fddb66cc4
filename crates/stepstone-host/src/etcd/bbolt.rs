//! Just enough of the bbolt file format to check an etcd snapshot without etcd's tools: both
//! meta pages (magic, version, FNV-1a checksum), every page reachable from the root and from
//! each bucket (ids, flags, bounds, key order, no page used twice), the file length against the
//! high-water mark, and the SHA-256 trailer etcd appends to snapshots it streams.
//!
//! It also computes what `etcdctl snapshot status` prints (revision, total keys, CRC-32C hash,
//! total size) with the same definitions, so the two can be compared. Pages are read on demand
//! from the file, so a multi-gigabyte snapshot is never held in memory.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const PAGE_HEADER: usize = 16;
const META_SIZE: usize = 64;
const ELEMENT_SIZE: usize = 16;
const BUCKET_HEADER: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const FREELIST: u16 = 0x10;
const BUCKET_LEAF_FLAG: u32 = 0x01;
/// etcd runs bbolt with `NoFreelistSync`: the meta page then names this id instead of a page.
const NO_FREELIST: u64 = u64::MAX;

/// Why a file is not a sound bbolt database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoltError {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("too short to be an etcd snapshot ({0} bytes)")]
    TooShort(u64),
    #[error("no valid meta page: {0}")]
    BadMeta(String),
    #[error(
        "truncated: the database needs {needed} bytes ({pages} pages of {page_size}) but the file has {have} \
         (copy or download the snapshot again)"
    )]
    Truncated { needed: u64, have: u64, pages: u64, page_size: u32 },
    #[error("the SHA-256 trailer etcd appended does not match the data: the file was changed after it was taken")]
    TrailerMismatch,
    #[error("page {page}: {problem}")]
    BadPage { page: u64, problem: String },
}

/// What a snapshot holds, with `etcdctl snapshot status` semantics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbStatus {
    pub page_size: u32,
    pub txid: u64,
    /// Bytes of the database proper (high-water mark x page size), without the trailer.
    pub total_size: u64,
    /// The newest revision in the `key` bucket.
    pub revision: i64,
    /// Entries across all buckets (what `etcdctl snapshot status` calls total keys).
    pub total_keys: u64,
    /// CRC-32C over bucket names, keys and values (etcdctl's `hash`).
    pub hash: u32,
    pub buckets: Vec<String>,
    /// Whether the file ends with the SHA-256 trailer of a streamed snapshot (checked if so).
    pub sha256_trailer: bool,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    page_size: u32,
    root: u64,
    freelist: u64,
    high_water: u64,
    txid: u64,
}

struct Db {
    file: File,
    page_size: u32,
    high_water: u64,
}

struct Page {
    id: u64,
    flags: u16,
    bytes: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// CRC-32C (Castagnoli), the checksum etcdctl reports as a snapshot's hash.
#[derive(Clone)]
pub struct Crc32c {
    table: [u32; 256],
    crc: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        let mut table = [0u32; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            }
            *slot = c;
        }
        Crc32c { table, crc: !0 }
    }
}

impl Crc32c {
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.crc;
        for b in data {
            c = self.table[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.crc = c;
    }

    pub fn finish(&self) -> u32 {
        !self.crc
    }
}

fn parse_meta(b: &[u8]) -> Result<Meta, String> {
    if b.len() < PAGE_HEADER + META_SIZE {
        return Err("short meta page".into());
    }
    if u16_at(b, 8) & META == 0 {
        return Err(format!("page flags {:#x} are not a meta page", u16_at(b, 8)));
    }
    let m = &b[PAGE_HEADER..PAGE_HEADER + META_SIZE];
    if u32_at(m, 0) != MAGIC {
        return Err(format!("magic {:#x} is not bbolt's {MAGIC:#x}", u32_at(m, 0)));
    }
    if u32_at(m, 4) != VERSION {
        return Err(format!("format version {} (expected {VERSION})", u32_at(m, 4)));
    }
    if fnv1a64(&m[..56]) != u64_at(m, 56) {
        return Err("checksum mismatch".into());
    }
    let page_size = u32_at(m, 8);
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("implausible page size {page_size}"));
    }
    Ok(Meta { page_size, root: u64_at(m, 16), freelist: u64_at(m, 32), high_water: u64_at(m, 40), txid: u64_at(m, 48) })
}

impl Db {
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, BoltError> {
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset).map_err(|e| BoltError::Io(e.to_string()))?;
        Ok(buf)
    }

    /// Read page `id` including its overflow pages, checking its header.
    fn page(&self, id: u64) -> Result<Page, BoltError> {
        let bad = |problem: String| BoltError::BadPage { page: id, problem };
        if id < 2 || id >= self.high_water {
            return Err(bad(format!("id outside the database (high-water mark {})", self.high_water)));
        }
        let ps = u64::from(self.page_size);
        let head = self.read_at(id * ps, PAGE_HEADER)?;
        if u64_at(&head, 0) != id {
            return Err(bad(format!("header names page {}", u64_at(&head, 0))));
        }
        let overflow = u64::from(u32_at(&head, 12));
        if id + overflow >= self.high_water {
            return Err(bad(format!("{overflow} overflow pages run past the end of the database")));
        }
        let bytes = self.read_at(id * ps, ((overflow + 1) * ps) as usize)?;
        Ok(Page { id, flags: u16_at(&head, 8), bytes })
    }
}

/// One key/value in a leaf, or a child pointer in a branch.
enum Element {
    Branch { key: Vec<u8>, child: u64 },
    Leaf { flags: u32, key: Vec<u8>, value: Vec<u8> },
}

/// Decode the elements of a page held in `bytes` (a whole page or an inline bucket page).
fn elements(page_id: u64, bytes: &[u8]) -> Result<Vec<Element>, BoltError> {
    let bad = |problem: String| BoltError::BadPage { page: page_id, problem };
    if bytes.len() < PAGE_HEADER {
        return Err(bad("shorter than a page header".into()));
    }
    let flags = u16_at(bytes, 8);
    let count = usize::from(u16_at(bytes, 10));
    if PAGE_HEADER + count * ELEMENT_SIZE > bytes.len() {
        return Err(bad(format!("{count} elements do not fit in the page")));
    }
    let mut out = Vec::with_capacity(count);
    let mut last_key: Option<Vec<u8>> = None;
    for i in 0..count {
        let at = PAGE_HEADER + i * ELEMENT_SIZE;
        let slice = |from: usize, len: usize| -> Result<Vec<u8>, BoltError> {
            let end = from.checked_add(len).filter(|e| *e <= bytes.len());
            end.map(|e| bytes[from..e].to_vec()).ok_or_else(|| bad(format!("element {i} points outside the page")))
        };
        let el = match flags {
            BRANCH => {
                let (pos, ksize) = (u32_at(bytes, at) as usize, u32_at(bytes, at + 4) as usize);
                Element::Branch { key: slice(at + pos, ksize)?, child: u64_at(bytes, at + 8) }
            }
            LEAF => {
                let (eflags, pos) = (u32_at(bytes, at), u32_at(bytes, at + 4) as usize);
                let (ksize, vsize) = (u32_at(bytes, at + 8) as usize, u32_at(bytes, at + 12) as usize);
                Element::Leaf { flags: eflags, key: slice(at + pos, ksize)?, value: slice(at + pos + ksize, vsize)? }
            }
            other => return Err(bad(format!("flags {other:#x}: expected a branch or leaf page"))),
        };
        let key = match &el {
            Element::Branch { key, .. } | Element::Leaf { key, .. } => key,
        };
        if let Some(prev) = &last_key
            && prev.as_slice() >= key.as_slice()
        {
            return Err(bad(format!("keys out of order at element {i}")));
        }
        last_key = Some(key.clone());
        out.push(el);
    }
    Ok(out)
}

/// Called for each leaf element: flags, key, value.
type LeafVisitor<'v> = dyn FnMut(u32, &[u8], &[u8]) -> Result<(), BoltError> + 'v;

struct Walker<'a> {
    db: &'a Db,
    seen: std::collections::HashSet<u64>,
}

impl Walker<'_> {
    fn mark(&mut self, page: &Page) -> Result<(), BoltError> {
        let overflow = (page.bytes.len() as u64 / u64::from(self.db.page_size)).saturating_sub(1);
        for id in page.id..=page.id + overflow {
            if !self.seen.insert(id) {
                return Err(BoltError::BadPage { page: id, problem: "reachable twice (corrupt tree)".into() });
            }
        }
        Ok(())
    }

    /// Visit every leaf element of the tree rooted at `root` in key order.
    fn walk(&mut self, root: u64, visit: &mut LeafVisitor<'_>) -> Result<(), BoltError> {
        let page = self.db.page(root)?;
        self.mark(&page)?;
        match page.flags {
            BRANCH => {
                for el in elements(page.id, &page.bytes)? {
                    if let Element::Branch { child, .. } = el {
                        self.walk(child, visit)?;
                    }
                }
            }
            LEAF => {
                for el in elements(page.id, &page.bytes)? {
                    if let Element::Leaf { flags, key, value } = el {
                        visit(flags, &key, &value)?;
                    }
                }
            }
            other => {
                return Err(BoltError::BadPage { page: root, problem: format!("flags {other:#x} inside a tree") });
            }
        }
        Ok(())
    }

    /// Visit the key/values of a bucket whose header is `value` (inline or on its own pages).
    fn bucket(&mut self, name: &[u8], value: &[u8], visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), BoltError> {
        if value.len() < BUCKET_HEADER {
            return Err(BoltError::BadPage {
                page: 0,
                problem: format!("bucket {} has a short header", String::from_utf8_lossy(name)),
            });
        }
        let root = u64_at(value, 0);
        if root == 0 {
            for el in elements(0, &value[BUCKET_HEADER..])? {
                if let Element::Leaf { key, value, .. } = el {
                    visit(&key, &value);
                }
            }
            Ok(())
        } else {
            self.walk(root, &mut |_, k, v| {
                visit(k, v);
                Ok(())
            })
        }
    }
}

/// Check `path` and compute its status. Any structural problem is an error naming the page.
pub fn inspect(path: &Path) -> Result<DbStatus, BoltError> {
    let file = File::open(path).map_err(|e| BoltError::Io(e.to_string()))?;
    let len = file.metadata().map_err(|e| BoltError::Io(e.to_string()))?.len();
    if len < (PAGE_HEADER + META_SIZE) as u64 {
        return Err(BoltError::TooShort(len));
    }
    let mut first = vec![0u8; PAGE_HEADER + META_SIZE];
    file.read_exact_at(&mut first, 0).map_err(|e| BoltError::Io(e.to_string()))?;
    let meta0 = parse_meta(&first);
    // The second meta page sits one page in; use the first page's size if it is readable.
    let page_size = meta0.as_ref().map(|m| m.page_size).unwrap_or(4096);
    let mut second = vec![0u8; PAGE_HEADER + META_SIZE];
    let meta1 = file
        .read_exact_at(&mut second, u64::from(page_size))
        .map_err(|e| e.to_string())
        .and_then(|_| parse_meta(&second));
    let meta = match (&meta0, &meta1) {
        (Ok(a), Ok(b)) => {
            if b.txid > a.txid {
                *b
            } else {
                *a
            }
        }
        (Ok(a), Err(_)) => *a,
        (Err(_), Ok(b)) => *b,
        (Err(a), Err(b)) => return Err(BoltError::BadMeta(format!("page 0: {a}; page 1: {b}"))),
    };
    let needed = meta.high_water * u64::from(meta.page_size);
    if len < needed {
        return Err(BoltError::Truncated { needed, have: len, pages: meta.high_water, page_size: meta.page_size });
    }
    let sha256_trailer = len == needed + 32;
    if sha256_trailer {
        let mut hasher = Sha256::new();
        let mut reader = std::io::BufReader::new(&file).take(needed);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(|e| BoltError::Io(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let mut trailer = [0u8; 32];
        file.read_exact_at(&mut trailer, needed).map_err(|e| BoltError::Io(e.to_string()))?;
        if hasher.finalize().as_slice() != trailer {
            return Err(BoltError::TrailerMismatch);
        }
    } else if len != needed && len % u64::from(meta.page_size) != 0 {
        return Err(BoltError::BadMeta(format!(
            "the file has {len} bytes: neither the database size {needed} nor that plus a 32-byte SHA-256 trailer"
        )));
    }
    let db = Db { file, page_size: meta.page_size, high_water: meta.high_water };
    let mut walker = Walker { db: &db, seen: [0u64, 1].into_iter().collect() };

    // Collect the top-level buckets first (names and headers), then walk each one.
    let mut top: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    walker.walk(meta.root, &mut |flags, k, v| {
        if flags & BUCKET_LEAF_FLAG == 0 {
            return Err(BoltError::BadPage { page: meta.root, problem: "a plain key in the root bucket".into() });
        }
        top.push((k.to_vec(), v.to_vec()));
        Ok(())
    })?;
    let mut crc = Crc32c::default();
    let mut total_keys = 0u64;
    let mut revision = 0i64;
    let mut buckets = Vec::new();
    for (name, header) in &top {
        crc.update(name);
        let is_key_bucket = name.as_slice() == b"key";
        walker.bucket(name, header, &mut |k, v| {
            crc.update(k);
            crc.update(v);
            if is_key_bucket && k.len() >= 8 {
                revision = i64::from_be_bytes(k[..8].try_into().expect("8 bytes"));
            }
            total_keys += 1;
        })?;
        buckets.push(String::from_utf8_lossy(name).into_owned());
    }
    if meta.freelist != NO_FREELIST {
        let page = db.page(meta.freelist)?;
        if page.flags & FREELIST == 0 {
            return Err(BoltError::BadPage {
                page: meta.freelist,
                problem: "the meta page's freelist is not a freelist page".into(),
            });
        }
    }
    Ok(DbStatus {
        page_size: meta.page_size,
        txid: meta.txid,
        total_size: needed,
        revision,
        total_keys,
        hash: crc.finish(),
        buckets,
        sha256_trailer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        let mut c = Crc32c::default();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xE306_9283);
    }

    #[test]
    fn fnv1a_matches_the_reference() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn garbage_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        std::fs::write(&p, vec![7u8; 10_000]).unwrap();
        assert!(matches!(inspect(&p), Err(BoltError::BadMeta(_))));
        std::fs::write(&p, b"short").unwrap();
        assert!(matches!(inspect(&p), Err(BoltError::TooShort(5))));
    }
}
