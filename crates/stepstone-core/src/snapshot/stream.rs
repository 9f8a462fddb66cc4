//! Reading snapshot files as a stream: the `items` of a List are cut out of the text as it is
//! read, and each batch of items is pruned to what the parsers use ([`crate::wire::read_object`])
//! and parsed on a worker thread while the next batch is read.
//!
//! A 5,000-node snapshot is about 700 MB of JSON. Reading it whole into a `serde_json::Value`
//! held the text and a tree of every field at once (4.5 GB); here memory holds a few batches of
//! text and the parsed inventory. Everything outside `items` (the List's `kind`, `metadata`, or
//! a single object) is collected as the document's envelope and read with
//! [`ObjectSet::add_document`], so every document shape the whole-text reader accepts is read
//! the same way, and a test checks that both readers give identical inventories.
//!
//! Files are checked before they are opened: only regular files are read (a FIFO would block, a
//! device like `/dev/zero` never ends), and a single item or the envelope may not exceed
//! [`MAX_OBJECT_BYTES`].

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{InventoryBuilder, ObjectSet, Parsed, ParsedObject, SnapshotError, SnapshotOptions};
use crate::inventory::Inventory;
use crate::wire::read_object;

/// The largest item (or envelope) read: the apiserver stores objects of at most 1.5 MiB, so
/// anything near this is not a Kubernetes object.
pub const MAX_OBJECT_BYTES: usize = 64 << 20;

/// Items are handed to the workers in batches of about this many bytes of text.
const BATCH_BYTES: usize = 1 << 20;

/// Bytes read from the file at a time.
const READ_BYTES: usize = 1 << 20;

/// Batch texts kept for reuse: a fresh buffer is pages the kernel must clear first.
const SPARE_TEXTS: usize = 16;

/// Batch texts the workers are done with, for the splitter to fill again.
type Spares = Arc<Mutex<Vec<Vec<u8>>>>;

/// Read snapshot files or directories (every `*.json` file, in name order) into an inventory.
pub fn load_paths(paths: &[PathBuf], opts: &SnapshotOptions) -> Result<Inventory, SnapshotError> {
    let source = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let mut builder = InventoryBuilder::new(&format!("snapshot {source}"), opts);
    let mut server_version = None;
    for file in snapshot_files(paths)? {
        read_file(&file, opts, &mut builder, &mut server_version)?;
    }
    builder.server_version(server_version.as_deref());
    builder.finish()
}

/// The files to read: each path given, or the `*.json` files of a directory in name order.
/// Anything but a regular file (after following a symlink once) is refused.
pub fn snapshot_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut files = Vec::new();
    for path in paths {
        let io = |source| SnapshotError::Io { path: path.clone(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(SnapshotError::EmptyDir { path: path.display().to_string() });
            }
            for f in found {
                let meta = std::fs::metadata(&f).map_err(|source| SnapshotError::Io { path: f.clone(), source })?;
                if !meta.is_file() {
                    return Err(not_regular(&f, &meta));
                }
                files.push(f);
            }
        } else if meta.is_file() {
            files.push(path.clone());
        } else {
            return Err(not_regular(path, &meta));
        }
    }
    Ok(files)
}

fn not_regular(path: &Path, meta: &std::fs::Metadata) -> SnapshotError {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    SnapshotError::NotRegular { path: path.display().to_string(), what }
}

/// One batch of the file's text as it was read, with the items found in it, in file order.
struct Batch {
    seq: usize,
    text: Vec<u8>,
    /// Per item: where it is in `text`, its index in `items`, and where it starts in the file.
    items: Vec<ItemSpan>,
}

#[derive(Clone, Copy)]
struct ItemSpan {
    start: usize,
    end: usize,
    index: usize,
    /// Byte offset of the item's first byte in the file: its line and column are counted from
    /// it only when the item is broken, so reading never counts lines.
    offset: u64,
}

/// Where a batch's pods lie in the file: from the first pod's first byte to the last item's
/// end, and how many pods that is (none when the batch failed or holds no pod).
#[derive(Clone, Copy, Default)]
struct Extent {
    start: u64,
    end: u64,
    pods: u64,
}

impl Extent {
    /// `items` are what the worker made of `batch`'s items, one for one.
    fn of_pods(batch: &Batch, items: &[ItemResult]) -> Extent {
        let first = items.iter().position(is_pod);
        match (first.map(|i| &batch.items[i]), batch.items.last()) {
            (Some(first), Some(last)) => Extent {
                start: first.offset,
                end: last.offset + (last.end - last.start) as u64,
                pods: items.iter().filter(|i| is_pod(i)).count() as u64,
            },
            _ => Extent::default(),
        }
    }
}

/// A parsed batch as a worker hands it back: its number, where it lies, what its items became.
type BatchDone = (usize, Extent, Result<Vec<ItemResult>, Failure>);

/// What a worker made of an item.
// Nearly every item is `Parsed`: boxing it would only add an allocation per item.
#[allow(clippy::large_enum_variant)]
enum ItemResult {
    Parsed(usize, ParsedObject),
    /// An item without `kind` (a raw API list's): parsed once the list's kind is known.
    Unkinded(usize, Value),
}

/// Why reading stopped: a snapshot error, or broken JSON whose line and column in the file are
/// still to be counted.
enum Failure {
    Snapshot(SnapshotError),
    /// Broken JSON in the text that starts at byte `offset` of the file, at `line` and `column`
    /// of that text (both from 1).
    Json {
        path: String,
        offset: u64,
        line: usize,
        column: usize,
        message: String,
    },
}

impl From<SnapshotError> for Failure {
    fn from(e: SnapshotError) -> Self {
        Failure::Snapshot(e)
    }
}

impl Failure {
    /// The error to show, counting lines in `file` (read again from the start) for broken JSON.
    fn into_error(self, file: impl Read) -> SnapshotError {
        match self {
            Failure::Snapshot(e) => e,
            Failure::Json { path, offset, line, column, message } => {
                // Reading the file a second time is only an error's cost; if that fails, the
                // place within the item still helps.
                let (at_line, at_column) = line_and_column(file, offset).unwrap_or((1, 1));
                let (in_file_line, in_file_column) =
                    (at_line + line - 1, if line <= 1 { at_column + column - 1 } else { column });
                // The JSON reader's message ends with the place in the item; say the place in
                // the file instead, as the whole-text reader does.
                let message = match message.strip_suffix(&format!(" at line {line} column {column}")) {
                    Some(what) => format!("{what} at line {in_file_line} column {in_file_column}"),
                    None => message,
                };
                SnapshotError::Json { path, line: in_file_line, column: in_file_column, message }
            }
        }
    }
}

/// The line and column (both from 1) of byte `offset` of a text.
fn line_and_column(mut text: impl Read, offset: u64) -> std::io::Result<(usize, usize)> {
    let mut buf = vec![0u8; READ_BYTES];
    let (mut line, mut line_start, mut at) = (1, 0u64, 0u64);
    while at < offset {
        let n = text.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let upto = n.min((offset - at) as usize);
        for nl in memchr::memchr_iter(b'\n', &buf[..upto]) {
            line += 1;
            line_start = at + nl as u64 + 1;
        }
        at += n as u64;
    }
    Ok((line, (offset - line_start) as usize + 1))
}

fn read_file(
    path: &Path,
    opts: &SnapshotOptions,
    builder: &mut InventoryBuilder,
    server_version: &mut Option<String>,
) -> Result<(), SnapshotError> {
    let reopen = || File::open(path).map_err(|source| SnapshotError::Io { path: path.to_path_buf(), source });
    let mut early = EarlyAdds::default();
    let mut split = split_file(path, reopen()?, opts, true, Some((&mut early, &mut *builder)));
    if split.jumped && !split.is_clean() {
        // A cut at a closing line can only be wrong in a file laid out unlike its first item
        // (see `closing_line`): read it again cutting exactly, so the error is the exact one.
        // The items added early came before any failure, so they were cut right: they are
        // not added again.
        split = split_file(path, reopen()?, opts, false, None);
    }
    match add_items(path, split.result, early, opts, builder, server_version) {
        Ok(()) => Ok(()),
        Err(failure) => Err(failure.into_error(reopen()?)),
    }
}

/// Items added to the inventory in file order while the file is still being read, so the main
/// thread does it while the workers parse (and the inventory's memory is taken then too), not
/// after. A batch that failed, or that holds an item without `kind` (whose kind comes from the
/// list's envelope, known only at the end), stops it: from there on, batches wait for the end.
#[derive(Default)]
struct EarlyAdds {
    /// The number of the next batch to add.
    next: usize,
    /// Batches that came before their turn, or after a stop.
    waiting: std::collections::BTreeMap<usize, (Extent, Result<Vec<ItemResult>, Failure>)>,
    stopped: bool,
    /// The file's size, for the room the pods will take.
    file_bytes: u64,
    /// Room for the pods was made, from the first batch that held pods.
    reserved: bool,
    /// Items `0..added` are in the inventory.
    added: usize,
    /// Adding an item failed (an object given twice): the answer, unless the envelope is
    /// broken, which is said first, as when everything is added at the end.
    error: Option<SnapshotError>,
}

impl EarlyAdds {
    fn offer(&mut self, (seq, extent, batch): BatchDone, origin: &str, builder: &mut InventoryBuilder) {
        self.waiting.insert(seq, (extent, batch));
        while !self.stopped {
            let Some((extent, batch)) = self.waiting.remove(&self.next) else { return };
            let addable = matches!(&batch, Ok(items) if items.iter().all(|i| matches!(i, ItemResult::Parsed(..))));
            if !addable {
                self.waiting.insert(self.next, (extent, batch));
                self.stopped = true;
                return;
            }
            self.reserve(extent, builder);
            for item in batch.into_iter().flatten() {
                let ItemResult::Parsed(index, object) = item else { unreachable!("checked above") };
                if let Err(e) = builder.add_item(origin, index, object) {
                    self.error = Some(e);
                    self.stopped = true;
                    return;
                }
                self.added = index + 1;
            }
            self.next += 1;
        }
    }

    /// Make room for the pods still to come once a batch holds pods, as many as the rest of
    /// the file would hold at this batch's density and an eighth more: grown pod by pod, the
    /// list (half a gigabyte at 5,000 nodes) would be copied to fresh memory at every doubling.
    /// A guess too small costs one copy at the end; room never used is never touched.
    fn reserve(&mut self, extent: Extent, builder: &mut InventoryBuilder) {
        let bytes = extent.end.saturating_sub(extent.start);
        if self.reserved || extent.pods == 0 || bytes == 0 {
            return;
        }
        self.reserved = true;
        let rest = self.file_bytes.saturating_sub(extent.start);
        let pods = u128::from(extent.pods) * u128::from(rest) / u128::from(bytes) * 9 / 8;
        let pods = usize::try_from(pods).unwrap_or(0);
        builder.reserve(pods, pods);
    }
}

fn is_pod(item: &ItemResult) -> bool {
    matches!(item, ItemResult::Parsed(_, ParsedObject { parsed: Parsed::Pod(_), .. }))
}

/// Every batch's items as parsed (by batch number), in file order.
type BatchResults = Vec<(usize, Result<Vec<ItemResult>, Failure>)>;

/// A file cut into items and parsed: the envelope's text and the items, or why cutting failed.
struct Split {
    result: Result<(Vec<u8>, BatchResults), Failure>,
    /// Some item was cut at its closing line rather than byte by byte.
    jumped: bool,
}

impl Split {
    fn is_clean(&self) -> bool {
        self.result.as_ref().is_ok_and(|(_, batches)| batches.iter().all(|(_, b)| b.is_ok()))
    }
}

/// Cut `file` into items and parse them on worker threads; `learn`: items may be cut at
/// their closing line. With `early`, batches are added to the inventory as they are parsed
/// (see [`EarlyAdds`]); the split's result holds only the batches that were not.
fn split_file(
    path: &Path,
    file: File,
    opts: &SnapshotOptions,
    learn: bool,
    mut early: Option<(&mut EarlyAdds, &mut InventoryBuilder)>,
) -> Split {
    let origin = path.display().to_string();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let (batch_tx, batch_rx) = sync_channel::<Batch>(workers * 2);
    let batch_rx = Arc::new(Mutex::new(batch_rx));
    let (result_tx, result_rx) = std::sync::mpsc::channel::<BatchDone>();
    if let Some((early, _)) = early.as_mut() {
        early.file_bytes = file.metadata().map_or(0, |m| m.len());
    }
    std::thread::scope(|scope| {
        let mut splitter = Splitter::new(&origin);
        splitter.learn = learn;
        for _ in 0..workers {
            let rx = Arc::clone(&batch_rx);
            let tx = result_tx.clone();
            let spares = Arc::clone(&splitter.spares);
            let origin = origin.as_str();
            scope.spawn(move || work(&rx, &tx, &spares, origin, opts));
        }
        drop(result_tx);
        let mut results: BatchResults = Vec::new();
        let mut take = |done: BatchDone| match early.as_mut() {
            Some((early, builder)) => early.offer(done, &origin, builder),
            None => results.push((done.0, done.2)),
        };
        let split = splitter.run(file, READ_BYTES, |batch| {
            while let Ok(done) = result_rx.try_recv() {
                take(done);
            }
            batch_tx.send(batch).is_ok()
        });
        drop(batch_tx);
        for done in result_rx.iter() {
            take(done);
        }
        if let Some((early, _)) = early {
            results.extend(std::mem::take(&mut early.waiting).into_iter().map(|(seq, (_, result))| (seq, result)));
        }
        results.sort_by_key(|(seq, _)| *seq);
        Split { result: split.map(|()| (std::mem::take(&mut splitter.envelope), results)), jumped: splitter.jumped }
    })
}

/// Add what a file was cut into to the inventory: the envelope's objects, then the items.
fn add_items(
    path: &Path,
    split: Result<(Vec<u8>, BatchResults), Failure>,
    early: EarlyAdds,
    opts: &SnapshotOptions,
    builder: &mut InventoryBuilder,
    server_version: &mut Option<String>,
) -> Result<(), Failure> {
    let origin = path.display().to_string();
    let (envelope, batches) = split?;
    // The envelope: a List's own fields, or a whole single object.
    let mut set = ObjectSet::default();
    set.add_json_text(&origin, &String::from_utf8_lossy(&envelope))?;
    let list_kind = set.list_kind.clone();
    for (origin_of, obj) in &set.objects {
        builder.add(origin_of, obj)?;
    }
    if set.server_version.is_some() {
        *server_version = set.server_version;
    }
    if let Some(e) = early.error {
        return Err(e.into());
    }
    // Room for every pod at once: grown pod by pod, the list would be copied over and over.
    let pods = batches.iter().filter_map(|(_, batch)| batch.as_ref().ok()).flatten().filter(|i| is_pod(i)).count();
    builder.reserve(pods, pods);
    for (_, batch) in batches {
        for item in batch? {
            match item {
                ItemResult::Parsed(index, _) | ItemResult::Unkinded(index, _) if index < early.added => {}
                ItemResult::Parsed(index, object) => builder.add_item(&origin, index, object)?,
                ItemResult::Unkinded(index, mut obj) => {
                    let item_origin = format!("{origin} items[{index}]");
                    if let (Some((kind, api_version)), Some(map)) = (&list_kind, obj.as_object_mut()) {
                        map.insert("kind".into(), Value::String(kind.clone()));
                        if let Some(av) = api_version {
                            map.insert("apiVersion".into(), Value::String(av.clone()));
                        }
                    }
                    builder.add_item(&origin, index, ParsedObject::parse(&item_origin, &obj, opts)?)?;
                }
            }
        }
    }
    Ok(())
}

/// A worker: parse batches until the reader is done; the first error ends the batch.
fn work(
    rx: &Mutex<Receiver<Batch>>,
    tx: &std::sync::mpsc::Sender<BatchDone>,
    spares: &Mutex<Vec<Vec<u8>>>,
    origin: &str,
    opts: &SnapshotOptions,
) {
    loop {
        // A poisoned lock means another worker panicked; the scope re-raises that panic.
        let Ok(guard) = rx.lock() else { return };
        let Ok(batch) = guard.recv() else { return };
        drop(guard);
        let result = parse_batch(&batch, origin, opts);
        let extent = result.as_ref().map_or_else(|_| Extent::default(), |items| Extent::of_pods(&batch, items));
        if tx.send((batch.seq, extent, result)).is_err() {
            return;
        }
        let mut text = batch.text;
        text.clear();
        if let Ok(mut spares) = spares.lock()
            && spares.len() < SPARE_TEXTS
        {
            spares.push(text);
        }
    }
}

fn parse_batch(batch: &Batch, origin: &str, opts: &SnapshotOptions) -> Result<Vec<ItemResult>, Failure> {
    let mut out = Vec::with_capacity(batch.items.len());
    for span in &batch.items {
        let text = &batch.text[span.start..span.end];
        if let Some(pod) = super::pods::read_pod(text) {
            out.push(ItemResult::Parsed(span.index, pod));
            continue;
        }
        let item_origin = || format!("{origin} items[{}]", span.index);
        let obj = read_object(text).map_err(|e| Failure::Json {
            path: item_origin(),
            offset: span.offset,
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if !obj.is_object() {
            return Err(SnapshotError::NotAnObject { path: item_origin(), found: super::type_name(&obj) }.into());
        }
        if obj.get("kind").is_none() {
            out.push(ItemResult::Unkinded(span.index, obj));
            continue;
        }
        out.push(ItemResult::Parsed(span.index, ParsedObject::parse(&item_origin(), &obj, opts)?));
    }
    Ok(out)
}

/// Where the scanner is in the document's structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Outside the `items` array: bytes go to the envelope.
    Envelope,
    /// Inside `items`, between items.
    BetweenItems,
    /// Inside `items`, within an item.
    InItem,
}

/// Bytes that end a run of plain bytes within an item, outside strings: quotes, brackets and
/// commas (whitespace, `:`, letters and digits change nothing there).
const ITEM_STOP: [bool; 256] = byte_set(b"\"{}[],");

/// Bytes that end a run within a string: its closing quote and the escape character.
const STRING_STOP: [bool; 256] = byte_set(b"\"\\");

const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        set[bytes[i] as usize] = true;
        i += 1;
    }
    set
}

/// Eight spaces: indentation is skipped a word at a time.
const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);

/// Cuts the items out of a document as its bytes arrive. Only strings and nesting are tracked;
/// the JSON itself is checked by the parsers (an item) or by the envelope's reader.
struct Splitter<'a> {
    origin: &'a str,
    envelope: Vec<u8>,
    place: Place,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Within the top-level object: the next string is a key.
    expect_key: bool,
    /// The last top-level key was `items`.
    after_items_key: bool,
    key: Vec<u8>,
    in_key: bool,
    /// File offset of the first byte of the text being scanned.
    offset: u64,
    item_index: usize,
    /// Where the current item starts in the text of the batch being read (the file is read
    /// straight into batches; only an item cut by a batch's end is copied, to the next).
    item_start: usize,
    item_offset: u64,
    /// The number of the batch being read, and the items found in it so far.
    seq: usize,
    items: Vec<ItemSpan>,
    spares: Spares,
    /// Whether items may be cut at their closing line (see [`closing_line`]).
    learn: bool,
    /// The first item's closing line (a newline, its indentation and `}`) once learnt, with
    /// its searcher, built once for every item.
    item_close: Option<memchr::memmem::Finder<'static>>,
    /// The spaces before the current item on its line, when it starts a line.
    item_indent: Option<usize>,
    /// Within an item, looking for its closing line.
    seeking: bool,
    /// Some item was cut at its closing line.
    jumped: bool,
}

/// The spaces before `text[at]` back to a newline, if only spaces are there.
fn indentation(text: &[u8], at: usize) -> Option<usize> {
    let line = &text[..at];
    let spaces = line.iter().rev().take_while(|&&b| b == b' ').count();
    (line.len() > spaces && line[line.len() - spaces - 1] == b'\n').then_some(spaces)
}

/// How an item laid out as kubectl writes it ends: a line of its own indentation and `}`.
///
/// In valid JSON a newline is never inside a string, and an object nested in the item is
/// indented deeper, so in a file laid out like its first item, the first such line after an
/// item's `{` is where it ends: the splitter jumps there instead of reading every byte. In a file
/// laid out otherwise, a wrong cut leaves text that is not one JSON value, which the item's
/// parser refuses; then the file is read again cutting exactly (see [`read_file`]), so the
/// answer and any error are always those of the exact cut.
fn closing_line(item: &[u8], indent: Option<usize>) -> Option<Vec<u8>> {
    let indent = indent?;
    let trimmed = item.trim_ascii_end();
    let close = [b"\n".as_slice(), &vec![b' '; indent], b"}"].concat();
    trimmed.ends_with(&close).then_some(close)
}

impl<'a> Splitter<'a> {
    fn new(origin: &'a str) -> Self {
        Splitter {
            origin,
            envelope: Vec::new(),
            place: Place::Envelope,
            depth: 0,
            in_string: false,
            escaped: false,
            expect_key: false,
            after_items_key: false,
            key: Vec::new(),
            in_key: false,
            offset: 0,
            item_index: 0,
            item_start: 0,
            item_offset: 0,
            seq: 0,
            items: Vec::new(),
            spares: Spares::default(),
            learn: true,
            item_close: None,
            item_indent: None,
            seeking: false,
            jumped: false,
        }
    }

    /// An empty text for the next batch, room enough for a batch and a read.
    fn spare_text(&self, read_bytes: usize) -> Vec<u8> {
        let spare = self.spares.lock().ok().and_then(|mut spares| spares.pop());
        spare.unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES + read_bytes + (64 << 10)))
    }

    /// Read `file` to its end, handing full batches to `send` (false: the workers are gone).
    fn run(
        &mut self,
        mut file: impl Read,
        read_bytes: usize,
        mut send: impl FnMut(Batch) -> bool,
    ) -> Result<(), Failure> {
        let mut text = self.spare_text(read_bytes);
        loop {
            let start = text.len();
            let n = (&mut file)
                .take(read_bytes as u64)
                .read_to_end(&mut text)
                .map_err(|source| SnapshotError::Io { path: self.origin.into(), source })?;
            if n == 0 {
                break;
            }
            self.scan(&text, start)?;
            if text.len() >= BATCH_BYTES {
                // The item being read, if any, carries over to the next batch.
                let mut next = self.spare_text(read_bytes);
                if self.place == Place::InItem {
                    next.extend_from_slice(&text[self.item_start..]);
                }
                self.item_start = 0;
                let batch = Batch {
                    seq: self.seq,
                    text: std::mem::replace(&mut text, next),
                    items: std::mem::take(&mut self.items),
                };
                self.seq += 1;
                if !send(batch) {
                    return Ok(());
                }
            }
        }
        if self.place != Place::Envelope {
            return Err(Failure::Json {
                path: self.origin.to_string(),
                offset: self.offset,
                line: 1,
                column: 1,
                message: "the file ends inside the \"items\" array".into(),
            });
        }
        if !self.items.is_empty() {
            send(Batch { seq: self.seq, text, items: std::mem::take(&mut self.items) });
        }
        Ok(())
    }

    fn too_large(&self, what: &str) -> SnapshotError {
        SnapshotError::TooLarge { path: self.origin.to_string(), what: what.to_string(), limit: MAX_OBJECT_BYTES }
    }

    /// Skip from `i` over the bytes of an item that cannot end it: strings, nested values,
    /// whitespace. Returns where a `,`, `]` or `}` at the item's own level is, or the end.
    fn skip_within_item(&mut self, bytes: &[u8], mut i: usize) -> usize {
        let n = bytes.len();
        while i < n {
            if self.in_string {
                if self.escaped {
                    // The byte right after a backslash is escaped, whatever it is.
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                while i < n && !STRING_STOP[bytes[i] as usize] {
                    i += 1;
                }
                if i == n {
                    break;
                }
                if bytes[i] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                }
                i += 1;
                continue;
            }
            while i + 8 <= n && u64::from_ne_bytes(bytes[i..i + 8].try_into().expect("eight bytes")) == SPACES {
                i += 8;
            }
            while i < n && !ITEM_STOP[bytes[i] as usize] {
                i += 1;
            }
            if i == n {
                break;
            }
            match bytes[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                // `}`, `]` or `,` at the item's level: the caller's.
                _ if self.depth == 2 => return i,
                b'}' | b']' => self.depth -= 1,
                _ => {}
            }
            i += 1;
        }
        n
    }

    /// Scan the batch's text from `base` on (the bytes just read).
    fn scan(&mut self, text: &[u8], base: usize) -> Result<(), Failure> {
        let bytes = &text[base..];
        let mut i = 0;
        // Start of the current run of bytes that belong to the same place.
        let mut run = 0;
        while i < bytes.len() {
            if self.seeking
                && let Some(close) = &self.item_close
            {
                // The item's closing line, searched from where the last search stopped.
                let close_len = close.needle().len();
                let from = self.item_start.max(base.saturating_sub(close_len - 1));
                match close.find(&text[from..]) {
                    Some(at) => {
                        let brace = from + at + close_len - 1;
                        self.seeking = false;
                        self.jumped = true;
                        self.depth = 2;
                        i = brace + 1 - base;
                    }
                    None => i = bytes.len(),
                }
                continue;
            }
            if self.place == Place::InItem && self.depth >= 2 && (self.in_string || self.depth > 2) {
                i = self.skip_within_item(bytes, i);
                continue;
            }
            if self.in_string {
                // Jump to the next quote or backslash.
                match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    None if self.escaped => {
                        self.escaped = false;
                        i += 1;
                        continue;
                    }
                    None => {
                        i = bytes.len();
                        continue;
                    }
                    Some(at) => {
                        if self.escaped {
                            self.escaped = false;
                            i += 1;
                            continue;
                        }
                        i += at;
                        if bytes[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                            if self.in_key {
                                self.in_key = false;
                                self.key.extend_from_slice(&bytes[run..i]);
                                self.after_items_key = self.key == b"\"items";
                            }
                        }
                        i += 1;
                        continue;
                    }
                }
            }
            let b = bytes[i];
            match b {
                b' ' | b'\t' | b'\r' | b'\n' | b':' => {}
                b'"' => {
                    if self.place == Place::BetweenItems {
                        self.begin_item(&mut run, i, base);
                    }
                    self.in_string = true;
                    if self.place == Place::Envelope && self.depth == 1 && self.expect_key {
                        self.flush(bytes, &mut run, i);
                        self.in_key = true;
                        self.key.clear();
                        self.expect_key = false;
                    }
                }
                b'{' | b'[' => {
                    if self.place == Place::Envelope && self.depth == 1 && self.after_items_key && b == b'[' {
                        // The items array: its contents leave the envelope.
                        self.after_items_key = false;
                        self.flush(bytes, &mut run, i + 1);
                        self.depth += 1;
                        self.place = Place::BetweenItems;
                        i += 1;
                        run = i;
                        continue;
                    }
                    if self.place == Place::BetweenItems {
                        self.begin_item(&mut run, i, base);
                        self.item_indent = indentation(text, base + i);
                        self.seeking = b == b'{' && self.item_close.is_some();
                    }
                    self.depth += 1;
                    if self.place == Place::Envelope && self.depth == 1 {
                        self.expect_key = b == b'{';
                    }
                }
                b'}' | b']' => {
                    if self.place != Place::Envelope && self.depth == 2 {
                        // The end of the items array.
                        if self.place == Place::InItem {
                            self.end_item(text, base + i)?;
                        }
                        run = i;
                        self.place = Place::Envelope;
                    }
                    self.depth = self.depth.saturating_sub(1);
                }
                b',' => {
                    if self.place == Place::InItem && self.depth == 2 {
                        self.end_item(text, base + i)?;
                        self.place = Place::BetweenItems;
                        run = i + 1;
                    } else if self.place == Place::BetweenItems {
                        // An empty element (`[,`): let the item's parser say so.
                        self.begin_item(&mut run, i, base);
                    } else if self.place == Place::Envelope && self.depth == 1 {
                        self.expect_key = true;
                        self.after_items_key = false;
                    }
                }
                _ => {
                    if self.place == Place::BetweenItems {
                        self.begin_item(&mut run, i, base);
                    } else if self.place == Place::Envelope && self.depth == 1 {
                        self.after_items_key = false;
                    }
                }
            }
            i += 1;
        }
        match self.place {
            Place::Envelope => self.flush(bytes, &mut run, bytes.len()),
            Place::InItem => {
                if base + bytes.len() - self.item_start > MAX_OBJECT_BYTES {
                    return Err(self.too_large(&format!("items[{}]", self.item_index)).into());
                }
            }
            Place::BetweenItems => {}
        }
        if self.envelope.len() > MAX_OBJECT_BYTES {
            return Err(self.too_large("the document outside \"items\"").into());
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Append `bytes[run..to]` to the envelope (only called in the envelope or a key in it).
    fn flush(&mut self, bytes: &[u8], run: &mut usize, to: usize) {
        if self.in_key {
            self.key.extend_from_slice(&bytes[*run..to]);
        }
        self.envelope.extend_from_slice(&bytes[*run..to]);
        *run = to;
    }

    fn begin_item(&mut self, run: &mut usize, at: usize, base: usize) {
        self.place = Place::InItem;
        self.item_start = base + at;
        self.item_offset = self.offset + at as u64;
        *run = at;
    }

    /// The item ends before `end` of the batch's text.
    fn end_item(&mut self, text: &[u8], end: usize) -> Result<(), SnapshotError> {
        if end - self.item_start > MAX_OBJECT_BYTES {
            return Err(self.too_large(&format!("items[{}]", self.item_index)));
        }
        if self.learn && self.item_index == 0 {
            self.item_close = closing_line(&text[self.item_start..end], self.item_indent)
                .map(|close| memchr::memmem::Finder::new(&close).into_owned());
        }
        self.items.push(ItemSpan { start: self.item_start, end, index: self.item_index, offset: self.item_offset });
        self.item_index += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Items and envelope as the splitter cuts them exactly, reading `chunk` bytes at a time.
    fn split(text: &str, chunk: usize) -> Result<(Vec<Value>, Value), SnapshotError> {
        split_learning(text, chunk, false).map(|(items, envelope)| {
            (items.into_iter().map(|i| i.expect("an item is one JSON value")).collect(), envelope)
        })
    }

    /// The same, cutting items at their closing line once learnt when `learn`; items whose
    /// text is not one JSON value are `None`.
    fn split_learning(text: &str, chunk: usize, learn: bool) -> Result<(Vec<Option<Value>>, Value), SnapshotError> {
        let mut splitter = Splitter::new("t.json");
        splitter.learn = learn;
        let mut batches = Vec::new();
        splitter
            .run(text.as_bytes(), chunk, |b| {
                batches.push(b);
                true
            })
            .map_err(|failure| failure.into_error(text.as_bytes()))?;
        let mut items = Vec::new();
        for b in batches {
            for span in b.items {
                items.push(serde_json::from_slice(&b.text[span.start..span.end]).ok());
            }
        }
        Ok((items, serde_json::from_slice(&splitter.envelope).expect("the envelope is JSON")))
    }

    #[test]
    fn items_are_cut_out_whatever_the_strings_hold_and_wherever_a_read_ends() {
        let doc = json!({
            "apiVersion": "v1",
            "a \"items\" key": {"items": [1, 2]},
            "items": [
                {"kind": "Pod", "metadata": {"name": "p{,}]\\", "annotations": {"x": "\"items\": [", "y": "\\\""}}},
                null,
                17,
                "a string, with a comma",
                [1, [2, {"z": "]"}]],
                {}
            ],
            "kind": "List",
            "metadata": {"resourceVersion": "", "note": "items"}
        });
        let want_items = doc["items"].as_array().unwrap().clone();
        let mut want_envelope = doc.clone();
        want_envelope["items"] = json!([]);
        for text in [doc.to_string(), serde_json::to_string_pretty(&doc).unwrap()] {
            for chunk in 1..=17 {
                let (items, envelope) = split(&text, chunk).unwrap();
                assert_eq!(items, want_items, "chunk {chunk}");
                assert_eq!(envelope, want_envelope, "chunk {chunk}");
                // Cutting at closing lines gives the same items, or fails (then the file is
                // read again exactly); it never gives other items.
                if let Ok((items, _)) = split_learning(&text, chunk, true)
                    && items.iter().all(Option::is_some)
                {
                    assert_eq!(items.into_iter().flatten().collect::<Vec<_>>(), want_items, "chunk {chunk}");
                }
            }
        }
    }

    #[test]
    fn items_laid_out_as_kubectl_writes_them_are_cut_at_their_closing_line() {
        let list = stepstone_fleet::generate(&stepstone_fleet::FleetSpec::synthetic(6, 2, 0.7));
        let text = stepstone_fleet::to_pretty_json(&list);
        let mut splitter = Splitter::new("t.json");
        let mut items = Vec::new();
        splitter
            .run(text.as_bytes(), 4096, |b| {
                for span in b.items {
                    items.push(serde_json::from_slice::<Value>(&b.text[span.start..span.end]).unwrap());
                }
                true
            })
            .map_err(|f| f.into_error(text.as_bytes()))
            .unwrap();
        assert!(splitter.jumped);
        assert_eq!(&items, list["items"].as_array().unwrap());
    }

    #[test]
    fn a_file_laid_out_unlike_its_first_item_is_read_again_cutting_exactly() {
        // items[1] closes its labels on a line of the items' own indentation: cut there, the
        // text is not one JSON value, and the file is read again byte by byte.
        let node = |name: &str, labels: &str| {
            format!(
                "    {{\n      \"kind\": \"Node\",\n      \"metadata\": {{\"name\": \"{name}\", \"labels\": {labels}}},\n      \"status\": {{\"nodeInfo\": {{\"kubeletVersion\": \"v1.33.4\"}}}}\n    }}"
            )
        };
        let text = format!(
            "{{\n  \"kind\": \"List\",\n  \"items\": [\n{},\n{},\n{}\n  ]\n}}\n",
            node("a", "{}"),
            node("b", "{\"x\": \"1\"\n    }"),
            node("c", "{}")
        );
        let streamed = read_as_whole(&text);
        let names: Vec<&str> = streamed.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(streamed.nodes[1].labels.get("x").map(String::as_str), Some("1"));
    }

    /// `text` as a file read by the streaming reader, after checking that the whole-text reader
    /// reads the same inventory from it.
    fn read_as_whole(text: &str) -> Inventory {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.json");
        std::fs::write(&path, text).unwrap();
        let opts = SnapshotOptions::default();
        let streamed = load_paths(std::slice::from_ref(&path), &opts).unwrap();
        let whole = super::super::load_paths_whole(&[path], &opts).unwrap();
        assert_eq!(serde_json::to_value(&streamed).unwrap(), serde_json::to_value(&whole).unwrap());
        streamed
    }

    /// A List of nodes laid out as kubectl writes them, with `labels` as the text of each node's
    /// labels.
    fn node_list(labels: &[String]) -> String {
        let nodes: Vec<String> = labels
            .iter()
            .enumerate()
            .map(|(i, labels)| {
                format!(
                    "    {{\n      \"kind\": \"Node\",\n      \"metadata\": {{\"name\": \"n-{i}\", \"labels\": {labels}}},\n      \"status\": {{\"nodeInfo\": {{\"kubeletVersion\": \"v1.33.4\"}}}}\n    }}"
                )
            })
            .collect();
        format!("{{\n  \"kind\": \"List\",\n  \"items\": [\n{}\n  ]\n}}\n", nodes.join(",\n"))
    }

    #[test]
    fn items_added_while_reading_are_not_added_again_when_the_file_is_read_again() {
        // Several batches of nodes laid out alike, then one whose labels close on a line of the
        // items' own indentation: the batches before it are added while reading, the file is
        // read again cutting exactly, and every node is in the inventory once.
        let mut labels = vec!["{}".to_string(); 30_000];
        labels[28_000] = "{\"x\": \"1\"\n    }".to_string();
        let text = node_list(&labels);
        assert!(text.len() > 3 * BATCH_BYTES, "{}", text.len());
        let streamed = read_as_whole(&text);
        assert_eq!(streamed.nodes.len(), 30_000);
    }

    #[test]
    fn a_broken_envelope_is_said_before_an_object_given_twice() {
        // The same node twice in the first batch (added while reading), and the List's own
        // fields after the items broken: the broken JSON is the answer, as when reading whole.
        let mut text = node_list(&vec!["{}".to_string(); 5_000]);
        text = text.replacen("\"n-1\"", "\"n-0\"", 1);
        let broken = text.trim_end().strip_suffix('}').unwrap().to_string() + ",\n  \"metadata\": {\"x\": tru}\n}\n";
        let dir = tempfile::tempdir().unwrap();
        let (twice, both) = (dir.path().join("twice.json"), dir.path().join("both.json"));
        std::fs::write(&twice, &text).unwrap();
        std::fs::write(&both, &broken).unwrap();
        let opts = SnapshotOptions::default();
        let err = load_paths(&[twice], &opts).unwrap_err();
        assert!(matches!(&err, SnapshotError::Duplicate { name, .. } if name == "n-0"), "{err:?}");
        assert!(err.to_string().contains("items[0]") && err.to_string().contains("items[1]"), "{err}");
        for reader in [load_paths, super::super::load_paths_whole] {
            let err = reader(std::slice::from_ref(&both), &opts).unwrap_err();
            assert!(matches!(err, SnapshotError::Json { .. }), "{err:?}");
        }
    }

    #[test]
    fn documents_without_items_stay_whole_in_the_envelope() {
        for doc in [json!({"kind": "Node", "metadata": {"name": "n"}}), json!([1, 2]), json!({"items": {"a": 1}})] {
            let (items, envelope) = split(&doc.to_string(), 3).unwrap();
            assert!(items.is_empty());
            assert_eq!(envelope, doc);
        }
    }

    #[test]
    fn an_unfinished_items_array_is_an_error_with_its_place() {
        let err = split("{\"items\": [\n  {\"kind\": \"Pod\"},\n  {\"kind\"", 5).unwrap_err();
        assert!(matches!(err, SnapshotError::Json { line: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("ends inside the \"items\" array"), "{err}");
    }
}
