//! `finstream import`: a CSV or JSON Lines file of transactions (a bank statement export, say)
//! into `transactions`. Each line is mapped ([`ImportMapping`]), validated against the contract
//! and produced keyed by account with its event time; a line that fails goes to the report with
//! its line number and reason, and the import carries on. Nothing valid is dropped: the run fails
//! unless every valid line was acknowledged by the cluster.
//!
//! Importing a statement again is safe: a line without a transaction id column gets one derived
//! from the statement's account, the line's content and its occurrence in the file
//! ([`derived_transaction_id`]), so the copy carries the same ids and finstream's dedupe drops
//! it, however old the statement is (docs/money-rules.md, "Re-imports").

mod convert;
mod mapping;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use schemas::{AvroSerde, TransactionEvent};
use serde::Serialize;
use streams::serde::Serde;

pub use convert::{derived_transaction_id, parse_amount, Cells, Converter, Rejection, MISSING_VALUE, UNREADABLE};
pub use mapping::{FileFormat, ImportColumns, ImportDefaults, ImportMapping};

use crate::produce::EventProducer;
use crate::ConnectorError;

/// What to import and where the report goes.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub path: PathBuf,
    /// Rejected lines, one JSON object per line: `{"line", "reason", "message", "content"}`.
    pub report_path: PathBuf,
    /// Destination topic (the contract's `transactions` unless renamed in `[finance]`).
    pub topic: String,
    pub mapping: ImportMapping,
    pub progress: bool,
}

/// The outcome of an import.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    /// Data lines read (header and blank lines not counted).
    pub lines: u64,
    pub imported: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RejectedLine {
    /// 1-based line number in the file (a CSV header is line 1).
    pub line: u64,
    pub reason: String,
    pub message: String,
    /// The line as read (CSV: its cells joined by the delimiter).
    pub content: String,
}

/// Where imported records go: a Kafka cluster ([`EventProducer`], `finstream import`), or
/// anything else that takes records of a topic (the test driver, in tests of the whole path).
pub trait ImportTarget {
    /// The serializer of the values (Confluent Avro wire format through the registry).
    fn transaction_serde(&self) -> &AvroSerde<TransactionEvent>;
    /// Queues one record with its key and timestamp.
    fn send_raw(&mut self, topic: &str, key: &str, payload: &[u8], timestamp: i64) -> Result<(), ConnectorError>;
    /// Waits until every queued record is stored; fails unless all were.
    fn flush(&mut self) -> Result<(), ConnectorError>;
}

impl ImportTarget for EventProducer {
    fn transaction_serde(&self) -> &AvroSerde<TransactionEvent> {
        EventProducer::transaction_serde(self)
    }
    fn send_raw(&mut self, topic: &str, key: &str, payload: &[u8], timestamp: i64) -> Result<(), ConnectorError> {
        EventProducer::send_raw(self, topic, key, payload, timestamp)
    }
    fn flush(&mut self) -> Result<(), ConnectorError> {
        EventProducer::flush(self, Duration::from_secs(60)).map(drop)
    }
}

/// Separates cells in a line's identity (no text cell contains it).
const CELL_SEPARATOR: char = '\u{1f}';

struct CsvCells<'a> {
    header: &'a HashMap<String, usize>,
    fields: Vec<String>,
}

impl Cells for CsvCells<'_> {
    fn cell(&self, column: &str) -> Option<String> {
        let v = self.fields.get(*self.header.get(column)?)?.trim();
        (!v.is_empty()).then(|| v.to_string())
    }
}

struct JsonCells(serde_json::Map<String, serde_json::Value>);

impl Cells for JsonCells {
    fn cell(&self, column: &str) -> Option<String> {
        let s = match self.0.get(column)? {
            serde_json::Value::Null => return None,
            serde_json::Value::String(s) => s.trim().to_string(),
            // Numbers keep serde_json's shortest exact rendering; amounts are safest as strings.
            other => other.to_string(),
        };
        (!s.is_empty()).then_some(s)
    }
}

struct Run<'a> {
    converter: &'a Converter,
    producer: &'a mut dyn ImportTarget,
    topic: &'a str,
    report: BufWriter<File>,
    report_path: &'a Path,
    summary: ImportSummary,
    /// Lines seen so far per content (by a hash of it): the occurrence of the next identical one.
    occurrences: HashMap<u64, u32>,
}

impl Run<'_> {
    /// One line: `content` is reported when it is rejected, `identity` (its normalized content)
    /// feeds a derived transaction id.
    fn line(
        &mut self,
        line: u64,
        content: &str,
        identity: &str,
        cells: Result<&dyn Cells, Rejection>,
    ) -> Result<(), ConnectorError> {
        self.summary.lines += 1;
        let seen = self.occurrences.entry(convert::fnv1a_128(&[identity.as_bytes()]) as u64).or_insert(0);
        let occurrence = *seen;
        *seen += 1;
        let result = cells.and_then(|c| self.converter.convert(c, identity, occurrence));
        let event = match result {
            Ok(e) => e,
            Err(r) => return self.reject(line, content, r),
        };
        let payload = match self.producer.transaction_serde().serialize(self.topic, &event) {
            Ok(p) => p,
            // A registry outage is not the line's fault: stop rather than reject good lines.
            Err(e) if e.retriable => {
                return Err(ConnectorError::Serialize {
                    topic: self.topic.to_string(),
                    reason: e.reason,
                    message: e.message,
                })
            }
            Err(e) => return self.reject(line, content, Rejection { reason: e.reason, message: e.message }),
        };
        self.producer.send_raw(self.topic, &event.account_id, &payload, event.occurred_at.0)?;
        self.summary.imported += 1;
        Ok(())
    }

    fn reject(&mut self, line: u64, content: &str, r: Rejection) -> Result<(), ConnectorError> {
        *self.summary.rejected_by_reason.entry(r.reason.clone()).or_default() += 1;
        self.summary.rejected += 1;
        let entry = RejectedLine { line, reason: r.reason, message: r.message, content: content.to_string() };
        let json = serde_json::to_string(&entry).map_err(|e| ConnectorError::Config(e.to_string()))?;
        writeln!(self.report, "{json}").map_err(|e| ConnectorError::io(self.report_path, e))
    }
}

fn format_of(opts: &ImportOptions) -> FileFormat {
    match opts.mapping.format {
        FileFormat::Auto => {
            let ext = opts.path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
            if matches!(ext.as_str(), "jsonl" | "ndjson" | "json") {
                FileFormat::JsonLines
            } else {
                FileFormat::Csv
            }
        }
        f => f,
    }
}

fn progress_bar(show: bool, len: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} eta {eta}") {
        bar.set_style(style);
    }
    bar
}

/// Imports `opts.path` into `producer`; returns the counts once every imported line is
/// delivered.
pub fn import(opts: &ImportOptions, producer: &mut dyn ImportTarget) -> Result<ImportSummary, ConnectorError> {
    let converter = Converter::new(opts.mapping.clone())?;
    let file = File::open(&opts.path).map_err(|e| ConnectorError::io(&opts.path, e))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let report = File::create(&opts.report_path).map_err(|e| ConnectorError::io(&opts.report_path, e))?;
    let bar = progress_bar(opts.progress, len);
    let start = Instant::now();
    let mut run = Run {
        converter: &converter,
        producer,
        topic: &opts.topic,
        report: BufWriter::new(report),
        report_path: &opts.report_path,
        summary: ImportSummary::default(),
        occurrences: HashMap::new(),
    };
    match format_of(opts) {
        FileFormat::JsonLines => import_json_lines(&mut run, &opts.path, file, &bar)?,
        _ => import_csv(&mut run, &opts.path, file, &bar)?,
    }
    bar.set_message("flushing");
    run.report.flush().map_err(|e| ConnectorError::io(&opts.report_path, e))?;
    let mut summary = std::mem::take(&mut run.summary);
    run.producer.flush()?;
    bar.finish_and_clear();
    summary.elapsed = start.elapsed();
    Ok(summary)
}

fn import_json_lines(run: &mut Run<'_>, path: &Path, file: File, bar: &ProgressBar) -> Result<(), ConnectorError> {
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| ConnectorError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        bar.inc(n as u64);
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                let content = String::from_utf8_lossy(&buf).trim().to_string();
                run.line(
                    line_no,
                    &content,
                    &content,
                    Err(Rejection { reason: UNREADABLE.into(), message: format!("not UTF-8: {e}") }),
                )?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let cells = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => Ok(JsonCells(m)),
            Ok(_) => Err(Rejection { reason: UNREADABLE.into(), message: "not a JSON object".into() }),
            Err(e) => Err(Rejection { reason: UNREADABLE.into(), message: format!("not JSON: {e}") }),
        };
        let text = text.to_string();
        let identity = cells.as_ref().map_or_else(|_| text.clone(), json_identity);
        run.line(line_no, &text, &identity, cells.as_ref().map(|c| c as &dyn Cells).map_err(Clone::clone))?;
    }
}

fn import_csv(run: &mut Run<'_>, path: &Path, file: File, bar: &ProgressBar) -> Result<(), ConnectorError> {
    let delimiter = run.converter.mapping().delimiter;
    let delim = u8::try_from(delimiter).map_err(|_| {
        ConnectorError::Config(format!("import.delimiter {delimiter:?} is not a single-byte character"))
    })?;
    let mut reader = csv::ReaderBuilder::new().delimiter(delim).flexible(true).has_headers(false).from_reader(file);
    let mut record = csv::ByteRecord::new();
    let header = match reader.read_byte_record(&mut record) {
        Ok(true) => record
            .iter()
            .enumerate()
            .map(|(i, h)| (String::from_utf8_lossy(h).trim().trim_start_matches('\u{feff}').to_string(), i))
            .collect::<HashMap<String, usize>>(),
        Ok(false) => return Ok(()),
        Err(e) => return Err(ConnectorError::Config(format!("{}: unreadable header: {e}", path.display()))),
    };
    check_header(run.converter.mapping(), &header, path)?;
    loop {
        let read = reader.read_byte_record(&mut record);
        let line = reader.position().line();
        bar.set_position(reader.position().byte());
        match read {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(line);
                let fields: Result<Vec<String>, _> =
                    record.iter().map(|f| std::str::from_utf8(f).map(str::to_string)).collect();
                let content: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
                let identity = content.iter().map(|c| c.trim()).collect::<Vec<_>>().join(&CELL_SEPARATOR.to_string());
                let content = content.join(&delimiter.to_string());
                if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                    continue;
                }
                match fields {
                    Ok(fields) => run.line(line, &content, &identity, Ok(&CsvCells { header: &header, fields }))?,
                    Err(e) => {
                        let r = Rejection { reason: UNREADABLE.into(), message: format!("not UTF-8: {e}") };
                        run.line(line, &content, &identity, Err(r))?
                    }
                }
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                let r = Rejection { reason: UNREADABLE.into(), message: e.to_string() };
                run.line(line, "", &format!("\0unreadable line {line}"), Err(r))?;
            }
        }
    }
}

/// A JSON object's identity: its members sorted by name, values as JSON, so the order a tool
/// wrote the keys in does not matter.
fn json_identity(cells: &JsonCells) -> String {
    let mut members: Vec<(&String, &serde_json::Value)> = cells.0.iter().collect();
    members.sort_by(|a, b| a.0.cmp(b.0));
    members.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(&CELL_SEPARATOR.to_string())
}

/// A mapped column missing from the header, for a field with no default, would reject every
/// line: better to say so once.
fn check_header(mapping: &ImportMapping, header: &HashMap<String, usize>, path: &Path) -> Result<(), ConnectorError> {
    let c = &mapping.columns;
    let d = &mapping.defaults;
    let has = |col: &str| !col.is_empty() && header.contains_key(col);
    let mut missing = Vec::new();
    for (field, col, default) in [
        ("account_id", &c.account_id, &d.account_id),
        ("user_id", &c.user_id, &d.user_id),
        ("currency", &c.currency, &d.currency),
        ("occurred_at", &c.occurred_at, &String::new()),
    ] {
        if !has(col) && default.is_empty() {
            missing.push(format!("{field} (column {col:?})"));
        }
    }
    if !has(&c.amount) && !has(&c.debit) && !has(&c.credit) {
        missing.push(format!("amount (column {:?}, or debit {:?} / credit {:?})", c.amount, c.debit, c.credit));
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut cols: Vec<&String> = header.keys().collect();
    cols.sort();
    Err(ConnectorError::Config(format!(
        "{}: no column and no default for {}; the header has {cols:?} (see [import.columns] / [import.defaults])",
        path.display(),
        missing.join(", ")
    )))
}
