//! Streaming reading of interaction files (the formats themselves are in `formats`).
//!
//! Every reader goes through one driver ([`read_interactions`]): it opens the source, hashes its raw
//! bytes (for `split.json`), decompresses gzip when the first two bytes are the gzip magic (whatever the
//! file is called), and feeds each non-blank line to a [`Parser`] that borrows the user and item ids
//! straight out of the line buffer — no allocation per line. Ids are interned to `u32` codes at once;
//! the first malformed record stops the read with `file:line: expected …, found "…"`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::util::hex;
use flate2::bufread::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::error::{DataError, shorten};
use super::formats::{DelimitedSpec, Format, Header, Parser, detect_format, resolve_delimited};
use super::intern::Interner;

/// Where the bytes come from: a file, a dataset embedded in the binary, or a stream read once into
/// memory (`/dev/stdin`, a pipe: detection and parsing each need a pass).
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Embedded {
        name: &'static str,
        bytes: &'static [u8],
    },
    Memory {
        path: PathBuf,
        bytes: std::sync::Arc<Vec<u8>>,
    },
}

/// Longest line a reader accepts: no interaction record comes near it, and a file without newlines
/// (`/dev/zero`, a binary) stops here instead of filling memory.
pub const MAX_LINE: usize = 1 << 20;

impl Source {
    /// A regular file is read from disk (as often as needed); anything else — a pipe, `/dev/stdin`, a
    /// device — is read once into memory, with the line-length cap applied as it arrives (gzip streams
    /// are buffered whole and capped after decompression).
    pub fn open_path(path: PathBuf) -> Result<Source, DataError> {
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Source::File(path)),
            Ok(m) if m.is_dir() => Err(DataError::Invalid(format!(
                "{}: is a directory, expected a file",
                path.display()
            ))),
            Ok(_) => {
                let bytes = read_stream(&path)?;
                Ok(Source::Memory {
                    path,
                    bytes: std::sync::Arc::new(bytes),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DataError::NotFound { path }),
            Err(e) => Err(DataError::Io { path, error: e }),
        }
    }

    /// The name errors and reports use: the path as given, or `<embedded NAME>`.
    pub fn display_name(&self) -> String {
        match self {
            Source::File(p) | Source::Memory { path: p, .. } => p.display().to_string(),
            Source::Embedded { name, .. } => format!("<embedded {name}>"),
        }
    }

    /// The file name without directories and without a trailing `.gz`, lower-cased (detection hint).
    fn base_name(&self) -> String {
        let name = match self {
            Source::File(p) | Source::Memory { path: p, .. } => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Source::Embedded { name, .. } => name.to_string(),
        };
        let lower = name.to_ascii_lowercase();
        lower.strip_suffix(".gz").unwrap_or(&lower).to_string()
    }

    fn open_raw(&self) -> Result<Box<dyn Read + '_>, DataError> {
        match self {
            Source::File(p) => match File::open(p) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err(DataError::NotFound { path: p.clone() })
                }
                Err(e) => Err(DataError::Io {
                    path: p.clone(),
                    error: e,
                }),
            },
            Source::Embedded { bytes, .. } => Ok(Box::new(*bytes)),
            Source::Memory { bytes, .. } => Ok(Box::new(io::Cursor::new(bytes.as_slice()))),
        }
    }

    fn io_err(&self, e: io::Error) -> DataError {
        DataError::Io {
            path: PathBuf::from(self.display_name()),
            error: e,
        }
    }
}

/// Reads a non-regular file once. Plain text stops at the first line longer than [`MAX_LINE`].
fn read_stream(path: &Path) -> Result<Vec<u8>, DataError> {
    let io_err = |e: io::Error| DataError::Io {
        path: path.to_path_buf(),
        error: e,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let (mut line, mut run) = (1u64, 0usize);
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        out.extend_from_slice(&buf[..n]);
        if out.starts_with(&GZIP_MAGIC) {
            continue; // compressed: lines are checked after decompression
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                line += 1;
                run = 0;
            } else {
                run += 1;
                if run > MAX_LINE {
                    return Err(line_too_long(&path.display().to_string(), line));
                }
            }
        }
    }
}

fn line_too_long(file: &str, line: u64) -> DataError {
    DataError::Invalid(format!(
        "{file}:{line}: line longer than {} MiB: not an interaction file",
        MAX_LINE >> 20
    ))
}

/// Passes bytes through while hashing them, so the input's sha256 costs no second read.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BUF_SIZE: usize = 1 << 17;

/// Opens `src`, decompressing when its first bytes are the gzip magic, and runs `f` over the text. The
/// remaining raw bytes are drained afterwards so the returned hash covers the whole file.
fn with_text<T>(
    src: &Source,
    f: impl FnOnce(&mut dyn BufRead) -> Result<T, DataError>,
) -> Result<(T, String, u64), DataError> {
    let mut raw = BufReader::with_capacity(
        BUF_SIZE,
        HashingReader {
            inner: src.open_raw()?,
            hasher: Sha256::new(),
            bytes: 0,
        },
    );
    let head = raw.fill_buf().map_err(|e| src.io_err(e))?;
    let gz = head.starts_with(&GZIP_MAGIC);
    let out = if gz {
        let mut text = BufReader::with_capacity(BUF_SIZE, MultiGzDecoder::new(&mut raw));
        f(&mut text)?
    } else {
        f(&mut raw)?
    };
    io::copy(&mut raw, &mut io::sink()).map_err(|e| src.io_err(e))?;
    let h = raw.into_inner();
    Ok((out, hex(&h.hasher.finalize()), h.bytes))
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Iterates non-blank lines with 1-based line numbers, reusing one buffer; strips `\n` / `\r\n`.
struct Lines<'r> {
    reader: &'r mut dyn BufRead,
    buf: Vec<u8>,
    line_no: u64,
    file: &'r str,
}

impl<'r> Lines<'r> {
    fn new(reader: &'r mut dyn BufRead, file: &'r str) -> Self {
        Lines {
            reader,
            buf: Vec::with_capacity(256),
            line_no: 0,
            file,
        }
    }

    fn next_line(&mut self) -> Result<Option<(u64, &str)>, DataError> {
        loop {
            self.buf.clear();
            let n = (&mut *self.reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| {
                    DataError::Invalid(format!(
                        "{}:{}: read error: {e}",
                        self.file,
                        self.line_no + 1
                    ))
                })?;
            if n == 0 {
                return Ok(None);
            }
            if n > MAX_LINE && !self.buf.ends_with(b"\n") {
                return Err(line_too_long(self.file, self.line_no + 1));
            }
            self.line_no += 1;
            let mut end = self.buf.len();
            while end > 0 && matches!(self.buf[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first field.
            let start = if self.line_no == 1 && self.buf.starts_with(UTF8_BOM) {
                UTF8_BOM.len()
            } else {
                0
            };
            if self.buf[start..end].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line_no = self.line_no;
            return match std::str::from_utf8(&self.buf[start..end]) {
                Ok(s) => Ok(Some((line_no, s))),
                Err(_) => Err(DataError::Malformed {
                    file: self.file.to_string(),
                    line: line_no,
                    expected: "UTF-8 text".into(),
                    found: shorten(&String::from_utf8_lossy(&self.buf[start..end])),
                    detail: None,
                }),
            };
        }
    }
}

/// The first `n` non-blank lines (at most 1 MiB read), for detection.
pub(crate) fn sample_lines(src: &Source, n: usize) -> Result<Vec<String>, DataError> {
    let file = src.display_name();
    let (lines, _, _) = with_text(src, |r| {
        let mut limited = r.take(1 << 20);
        let mut lines = Lines::new(&mut limited, &file);
        let mut out = Vec::new();
        while out.len() < n {
            match lines.next_line() {
                Ok(Some((_, l))) => out.push(l.to_string()),
                Ok(None) => break,
                // A cut-off multi-byte character at the 1 MiB limit is not the file's fault.
                Err(DataError::Malformed { .. }) if !out.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    })?;
    Ok(lines)
}

/// What one file contributed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FileRead {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Records read (non-blank lines, header excluded), duplicates included.
    pub rows: u64,
    /// Records dropped by `--min-rating`.
    pub below_min_rating: u64,
    /// Records with a negative rating: explicit negative feedback, never a positive (dropped).
    #[serde(default)]
    pub negative_rating: u64,
}

/// Reads every record of `src`, interning ids and appending `user << 32 | item` keys to `out`
/// (records below `min_rating` are counted, interned for the raw statistics, and not appended).
pub(crate) fn read_interactions(
    src: &Source,
    parser: &Parser,
    min_rating: Option<f32>,
    users: &mut Interner,
    items: &mut Interner,
    out: &mut Vec<u64>,
) -> Result<FileRead, DataError> {
    let file = src.display_name();
    let need_rating = min_rating.is_some();
    let ((rows, below, negative), sha256, bytes) = with_text(src, |r| {
        let mut lines = Lines::new(r, &file);
        let mut rows = 0u64;
        let mut below = 0u64;
        let mut negative = 0u64;
        let mut first = true;
        // The header line, once skipped: a copy of it further down (files concatenated with their
        // headers) is an error, not a user named "user".
        let mut header: Option<String> = None;
        while let Some((line_no, line)) = lines.next_line()? {
            if header
                .as_deref()
                .is_some_and(|h| line.trim().eq_ignore_ascii_case(h))
            {
                return Err(DataError::Malformed {
                    file: file.clone(),
                    line: line_no,
                    expected: parser.expected.clone(),
                    found: shorten(line),
                    detail: Some(
                        "the header line again: a header is allowed on line 1 only".into(),
                    ),
                });
            }
            if first {
                first = false;
                match &parser.header {
                    Header::None => {}
                    Header::Skip => {
                        header = Some(line.trim().to_string());
                        continue;
                    }
                    Header::Expect(h) => {
                        if line.trim().eq_ignore_ascii_case(h) {
                            header = Some(line.trim().to_string());
                            continue;
                        }
                        return Err(DataError::Malformed {
                            file: file.clone(),
                            line: line_no,
                            expected: format!("the header {h}"),
                            found: shorten(line),
                            detail: None,
                        });
                    }
                }
            }
            let rec = parser
                .parse(line, need_rating)
                .map_err(|detail| DataError::Malformed {
                    file: file.clone(),
                    line: line_no,
                    expected: parser.expected.clone(),
                    found: shorten(line),
                    detail,
                })?;
            rows += 1;
            let u = users.intern(&rec.user);
            let i = items.intern(&rec.item);
            if rec.rating.is_some_and(|r| r < 0.0) {
                negative += 1;
                continue;
            }
            if let (Some(min), Some(r)) = (min_rating, rec.rating)
                && r < min
            {
                below += 1;
                continue;
            }
            out.push(((u as u64) << 32) | i as u64);
        }
        Ok((rows, below, negative))
    })?;
    if users.len() > u32::MAX as usize || items.len() > u32::MAX as usize {
        return Err(DataError::Invalid(format!(
            "{file}: more than {} distinct ids",
            u32::MAX
        )));
    }
    Ok(FileRead {
        path: file,
        bytes,
        sha256,
        rows,
        below_min_rating: below,
        negative_rating: negative,
    })
}

/// The parser for a single file: `format` if given, else detected; delimited layouts are resolved
/// from `spec` and the first lines. Errors when the file cannot be opened or has no records.
pub(crate) fn parser_for(
    src: &Source,
    format: Option<Format>,
    spec: &DelimitedSpec,
) -> Result<Parser, DataError> {
    let sample = sample_lines(src, 8)?;
    if sample.is_empty() {
        return Err(DataError::Empty {
            step: format!("reading {}", src.display_name()),
            hint: Some("the file has no records".into()),
        });
    }
    let format = format.unwrap_or_else(|| detect_format(&src.base_name(), &sample));
    match format {
        Format::Delimited => resolve_delimited(spec, &sample, &src.display_name()),
        Format::PreSplit => Err(DataError::Invalid(format!(
            "{}: --format pre-split needs a directory holding train.tsv, val.tsv and test.tsv",
            src.display_name()
        ))),
        f => Ok(Parser::fixed(f)),
    }
}

/// Whether `dir` holds the three files of a pre-split dataset; `Err` names the first missing one.
pub(crate) fn triple_in(dir: &Path) -> Result<[PathBuf; 3], String> {
    let mut out: [PathBuf; 3] = Default::default();
    for (slot, name) in out.iter_mut().zip(["train.tsv", "val.tsv", "test.tsv"]) {
        let plain = dir.join(name);
        let gz = dir.join(format!("{name}.gz"));
        *slot = if plain.is_file() {
            plain
        } else if gz.is_file() {
            gz
        } else {
            return Err(name.to_string());
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gzip_by_magic_and_hashes_the_raw_bytes() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"1::10::5::1\n\n2::10::3::2\r\n").unwrap();
        let bytes: &'static [u8] = Box::leak(gz.finish().unwrap().into_boxed_slice());
        let src = Source::Embedded {
            name: "ratings.dat",
            bytes,
        };
        let (mut u, mut i, mut out) = (Interner::default(), Interner::default(), Vec::new());
        let parser = parser_for(&src, None, &DelimitedSpec::default()).unwrap();
        assert_eq!(parser.format, Format::MovielensDat);
        let read = read_interactions(&src, &parser, Some(4.0), &mut u, &mut i, &mut out).unwrap();
        assert_eq!(read.rows, 2);
        assert_eq!(read.below_min_rating, 1);
        assert_eq!(out, vec![0]);
        assert_eq!(u.len(), 2);
        assert_eq!(read.bytes, bytes.len() as u64);
        assert_eq!(read.sha256, hex(&Sha256::digest(bytes)));
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let src = Source::Embedded {
            name: "ratings.csv",
            bytes: b"\xEF\xBB\xBFuserId,movieId,rating,timestamp\r\n1,2,4.5,3\r\n",
        };
        let parser = parser_for(&src, None, &DelimitedSpec::default()).unwrap();
        assert_eq!(parser.format, Format::MovielensCsv);
        let (mut u, mut i, mut out) = (Interner::default(), Interner::default(), Vec::new());
        let read = read_interactions(&src, &parser, None, &mut u, &mut i, &mut out).unwrap();
        assert_eq!((read.rows, u.name(0), i.name(0)), (1, "1", "2"));
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let src = Source::Embedded {
            name: "ratings.dat",
            bytes: b"1::10::5::1\n\n1::abc\n",
        };
        let parser = Parser::fixed(Format::MovielensDat);
        let (mut u, mut i, mut out) = (Interner::default(), Interner::default(), Vec::new());
        let err = read_interactions(&src, &parser, None, &mut u, &mut i, &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"<embedded ratings.dat>:3: expected user::item::rating::timestamp, found "1::abc""#
        );
    }
}
