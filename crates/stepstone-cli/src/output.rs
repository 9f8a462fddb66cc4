//! Rendering results: `-o table|json|yaml`, the `stepstone/v1alpha1` envelope, plain tables.

use serde::Serialize;

use stepstone_core::API_VERSION;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document with `apiVersion: stepstone/v1alpha1` and a stable field order.
    Json,
    /// The same document as YAML.
    Yaml,
}

/// `-o/--output`, flattened into every command that prints a result.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// Print `body` in the chosen format; `table` renders the human view. JSON and YAML documents
/// carry the envelope `{"apiVersion": "stepstone/v1alpha1", "kind": kind, ...}`.
pub fn emit<T: Serialize>(
    format: OutputFormat,
    kind: &str,
    body: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Table => table(),
        OutputFormat::Json => {
            // Written as it is serialised: the JSON of a 5,000-node inventory is hundreds of MB,
            // which need not be held as one string first.
            use std::io::Write;
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            serde_json::to_writer_pretty(&mut out, &Document { api_version: API_VERSION, kind, body })?;
            out.write_all(b"\n")?;
            out.flush()?;
            return Ok(());
        }
        OutputFormat::Yaml => serde_saphyr::to_string(&Document { api_version: API_VERSION, kind, body })?,
    };
    print!("{text}");
    Ok(())
}

/// `-o json` of a document whose field `field` is one large array (an inventory's pods), written
/// as [`emit`] writes it, byte for byte, but with the array's elements serialised on every core
/// in chunks that are written in order as they are ready. `body` is the document with that
/// array empty; `items` is the array.
///
/// At 5,000 nodes the pods' JSON is most of half a gigabyte: serialised on one thread after the
/// reading, it was a large share of `inventory -o json`.
pub fn emit_json_split<T: Serialize, E: Serialize + Sync>(
    out: impl std::io::Write,
    kind: &str,
    body: &T,
    field: &str,
    items: &[E],
) -> anyhow::Result<()> {
    emit_json_chunked(out, kind, body, field, items, SPLIT_CHUNK)
}

/// [`emit_json_split`] with `chunk` elements serialised at a time.
fn emit_json_chunked<T: Serialize, E: Serialize + Sync>(
    out: impl std::io::Write,
    kind: &str,
    body: &T,
    field: &str,
    items: &[E],
    chunk: usize,
) -> anyhow::Result<()> {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let chunks = items.chunks(chunk);
    let chunk_count = chunks.len();
    let next = AtomicUsize::new(0);
    // Texts written out, for the workers to fill again: fresh memory is pages the kernel clears.
    let spares = Mutex::new(Vec::<Vec<u8>>::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, serde_json::Result<Vec<u8>>)>(workers * 2);
        for _ in 0..workers.min(chunk_count) {
            let tx = tx.clone();
            let (next, items, spares) = (&next, items, &spares);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= chunk_count {
                        return;
                    }
                    let part = &items[index * chunk..((index + 1) * chunk).min(items.len())];
                    let text = spares.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
                    if tx.send((index, elements_text(text, part, index == 0))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // The rest of the document, serialised while the workers start on the elements.
        let rest = serde_json::to_string_pretty(&Document { api_version: API_VERSION, kind, body })?;
        // A string's newline is written `\n`, so a line break followed by the field's name can
        // only be the field of the top-level object.
        let empty = format!("\n  \"{field}\": []");
        let at = rest
            .find(&empty)
            .ok_or_else(|| anyhow::anyhow!("internal error: the document has no empty \"{field}\" array"))?;
        let brackets = at + empty.len() - 2;
        out.write_all(&rest.as_bytes()[..=brackets])?;
        if chunk_count > 0 {
            let mut ready = BTreeMap::new();
            let mut written = 0;
            for (index, text) in rx {
                ready.insert(index, text?);
                while let Some(mut text) = ready.remove(&written) {
                    out.write_all(&text)?;
                    written += 1;
                    text.clear();
                    if let Ok(mut spares) = spares.lock() {
                        spares.push(text);
                    }
                }
            }
            // A worker that stopped early (it cannot, short of a panic, which the scope raises)
            // would leave the array short: check rather than write a wrong document.
            anyhow::ensure!(written == chunk_count, "internal error: {written} of {chunk_count} chunks written");
            out.write_all(b"\n  ")?;
        }
        out.write_all(&rest.as_bytes()[brackets + 1..])?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    })
}

/// Elements serialised per chunk by [`emit_json_split`].
const SPLIT_CHUNK: usize = 1024;

/// The text of `items` as elements of an array that is a field of the top-level object in
/// serde_json's pretty layout (two spaces per level): each on its own line after a comma,
/// except the array's first; appended to `text`.
fn elements_text<E: Serialize>(mut text: Vec<u8>, items: &[E], first: bool) -> serde_json::Result<Vec<u8>> {
    use serde_json::ser::{Formatter, PrettyFormatter};
    for (i, item) in items.iter().enumerate() {
        text.extend_from_slice(if first && i == 0 { b"\n    " } else { b",\n    " });
        // Two levels deep (the document, the array): the formatter counts its indentation
        // from the arrays it has begun, so begin two where no one sees them.
        let mut formatter = PrettyFormatter::new();
        for _ in 0..2 {
            formatter.begin_array(&mut std::io::sink()).map_err(serde_json::Error::io)?;
        }
        item.serialize(&mut serde_json::Serializer::with_formatter(&mut text, formatter))?;
    }
    Ok(text)
}

/// A plain text table: columns padded to the widest cell, two spaces apart, like kubectl.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table { header: header.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    pub fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0usize; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(cols) {
                if i + 1 == cols {
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Render findings as a table, worst first (the caller sorts).
pub fn findings_table(findings: &[stepstone_core::findings::Finding]) -> String {
    if findings.is_empty() {
        return "No findings.\n".to_string();
    }
    let mut t = Table::new(["SEVERITY", "CODE", "SUBJECT", "MESSAGE"]);
    for f in findings {
        t.row([f.severity.to_string(), f.code.clone(), f.subject.clone(), f.message.clone()]);
    }
    let mut out = t.render();
    out.push('\n');
    for f in findings.iter().filter(|f| !f.hint.is_empty()) {
        out.push_str(&format!("- {} ({}): {}\n", f.subject, f.code, f.hint));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document as [`emit`] writes it with `-o json`.
    fn whole(body: &impl Serialize) -> Vec<u8> {
        let mut text =
            serde_json::to_vec_pretty(&Document { api_version: API_VERSION, kind: "Inventory", body }).unwrap();
        text.push(b'\n');
        text
    }

    #[test]
    fn the_split_document_is_the_whole_one_byte_for_byte() {
        for (name, text) in crate::source::EXAMPLES {
            let opts = stepstone_core::snapshot::SnapshotOptions::default();
            let mut inv = stepstone_core::snapshot::load_str(name, text, &opts).unwrap();
            assert!(inv.pods.len() > 3, "{name}");
            let want = whole(&inv);
            let pods = std::mem::take(&mut inv.pods);
            for chunk in [1, 2, 3, pods.len() - 1, pods.len(), SPLIT_CHUNK] {
                let mut got = Vec::new();
                emit_json_chunked(&mut got, "Inventory", &inv, "pods", &pods, chunk).unwrap();
                assert!(got == want, "{name}, chunks of {chunk}: the split document differs");
            }
            // No pods at all: the empty array as it was.
            let mut got = Vec::new();
            emit_json_split(&mut got, "Inventory", &inv, "pods", &pods[..0]).unwrap();
            assert!(got == whole(&inv), "{name}: without pods");
        }
    }
}
