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
