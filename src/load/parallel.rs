//! The parallel load: files read in chunks of whole records, each chunk parsed on the rayon pool
//! into a part of the table (the scanner first, serde where the scanner bails), parts appended
//! in order.

use super::*;

pub(super) struct LoadCx {
    pub(super) object: ObjectType,
    pub(super) chunk_bytes: usize,
    pub(super) max_line: usize,
    pub(super) builder: TableBuilder,
    pub(super) keys: KeyMap,
    pub(super) skip_invalid: bool,
    pub(super) skipped: Vec<LoadError>,
    pub(super) warnings: Vec<String>,
    pub(super) bar: indicatif::ProgressBar,
    /// `@odata.count` of the first Graph page that has one.
    pub(super) expected: Option<u64>,
    /// Records in the Graph page and array files read.
    pub(super) records: u64,
}

/// Bytes of a JSON Lines file parsed as one task (a part of the table built on one thread).
pub(super) const CHUNK_BYTES: usize = 4 << 20;

/// Records of a JSON array or page file parsed as one task.
pub(super) const CHUNK_RECORDS: usize = 2_048;

/// Records parsed into a builder of their own (a [`TableBuilder::fork`]), to be appended in
/// file order.
pub(super) struct Part {
    pub(super) builder: TableBuilder,
    /// Bad records, in order; a part stops at its first unless skipping.
    pub(super) errors: Vec<LoadError>,
    /// Lines the part's text held (JSON Lines chunks: how far the next chunk's lines start).
    pub(super) lines: usize,
}

impl LoadCx {
    pub(super) fn file(&mut self, file: &Path, is_last: bool) -> Result<(), LoadError> {
        let fmt = format_of(file).unwrap_or(Format::Json);
        if fmt != Format::Csv {
            check_kind(file, self.object)?;
        }
        match fmt {
            Format::JsonLines => self.json_lines(file),
            Format::Json => {
                let (bytes, bad) = utf8_marked(read_utf8(file)?);
                let (units, page) = json_units(file, &bytes, Format::Json)?;
                check_not_partial(file, &page, is_last)?;
                if let Some(c) = page.count {
                    self.expected.get_or_insert(c);
                }
                self.records += units.len() as u64;
                self.bar.inc(bytes.len() as u64);
                let (keys, template, skip) = (&self.keys, &self.builder, self.skip_invalid);
                let parts: Vec<Part> = units
                    .par_chunks(CHUNK_RECORDS)
                    .map(|c| parse_part(keys, template, file, Source::Units(c, &bad), skip))
                    .collect();
                for part in parts {
                    Self::absorb(&mut self.builder, &mut self.skipped, skip, part, 0)?;
                }
                Ok(())
            }
            Format::Csv => {
                let bytes = read_utf8(file)?;
                let rows = csv_values(file, &bytes, &self.keys)?;
                self.bar.inc(bytes.len() as u64);
                let unused = csv_unused_headers(&bytes, self.object);
                if rows
                    .iter()
                    .any(|(_, r)| r.as_ref().is_ok_and(|v| v.get(CSV_ID_FROM_UPN).is_some()))
                {
                    self.warnings.push(format!(
                        "{}: no id column: rows are identified by userPrincipalName (the portal's bulk-create template lists users not created yet)",
                        file.display()
                    ));
                }
                if !unused.is_empty() {
                    self.warnings.push(format!(
                        "{}: columns that name no property dynrule reads (ignored): {}",
                        file.display(),
                        unused.join(", ")
                    ));
                }
                let keys = &self.keys;
                let parsed: Vec<Result<Record<'_>, LoadError>> = rows
                    .par_iter()
                    .map(|(line, v)| match v {
                        Ok(v) => RecordSeed { keys }.deserialize(v).map_err(|e| LoadError {
                            file: file.to_path_buf(),
                            line: *line,
                            column: 0,
                            message: e.to_string(),
                        }),
                        Err(e) => Err(e.clone()),
                    })
                    .collect();
                let mut ok = Vec::with_capacity(parsed.len());
                for r in parsed {
                    match r {
                        Ok(rec) => ok.push(rec),
                        Err(e) if self.skip_invalid => self.skipped.push(e),
                        Err(e) => return Err(e),
                    }
                }
                self.builder.push_batch(&ok);
                Ok(())
            }
        }
    }

    /// Streams a JSON Lines file: chunks (cut at line ends) are read a wave at a time, and each
    /// wave's chunks are parsed in parallel, one part each, while the next wave is read; the
    /// parts are then appended in file order.
    pub(super) fn json_lines(&mut self, file: &Path) -> Result<(), LoadError> {
        let f = std::fs::File::open(file).map_err(|e| io_err(file, &e))?;
        let mut reader = ChunkReader {
            file: f,
            path: file,
            chunk_bytes: self.chunk_bytes,
            carry: Vec::new(),
            eof: false,
            first: true,
            spare: Vec::new(),
            bar: &self.bar,
            offset: 0,
            max_line: self.max_line,
        };
        let per_wave = 4 * rayon::current_num_threads().max(1);
        let LoadCx {
            builder,
            keys,
            skip_invalid,
            skipped,
            ..
        } = self;
        let skip = *skip_invalid;
        let mut wave = reader.wave(per_wave)?;
        let mut line_base = 0usize;
        // Three things at once: the next wave is read, this wave parsed (against a template of
        // the table's storage decisions, a wave behind), and the last wave's parts appended.
        let mut parsed: Vec<Part> = Vec::new();
        while !wave.is_empty() || !parsed.is_empty() {
            let template = builder.fork();
            let ((next, merged), parts) = rayon::join(
                || {
                    rayon::join(
                        || reader.wave(per_wave),
                        || -> Result<(), LoadError> {
                            for part in parsed.drain(..) {
                                let lines = part.lines;
                                Self::absorb(builder, skipped, skip, part, line_base)?;
                                line_base += lines;
                            }
                            Ok(())
                        },
                    )
                },
                || -> Vec<Part> {
                    wave.par_iter()
                        .map(|chunk| parse_part(keys, &template, file, Source::Lines(chunk), skip))
                        .collect()
                },
            );
            merged?;
            parsed = parts;
            reader.spare.append(&mut wave);
            wave = next?;
        }
        Ok(())
    }

    /// Appends a part's rows and takes its errors (their lines shifted by `line_base`): the
    /// first one ends the load unless skipping.
    pub(super) fn absorb(
        builder: &mut TableBuilder,
        skipped: &mut Vec<LoadError>,
        skip: bool,
        part: Part,
        line_base: usize,
    ) -> Result<(), LoadError> {
        for mut e in part.errors {
            e.line += line_base;
            if !skip {
                return Err(e);
            }
            skipped.push(e);
        }
        builder.append(part.builder);
        Ok(())
    }
}

/// The longest JSON Lines line read (a user record is a few KiB; Graph's largest, with
/// hundreds of `assignedPlans`, well under 1 MiB).
pub(super) const MAX_LINE_BYTES: usize = 256 << 20;

/// Reads a file in chunks that end at a line end (or the file's end).
pub(super) struct ChunkReader<'a> {
    pub(super) file: std::fs::File,
    pub(super) path: &'a Path,
    pub(super) chunk_bytes: usize,
    /// The start of a line the last chunk cut off.
    pub(super) carry: Vec<u8>,
    pub(super) eof: bool,
    pub(super) first: bool,
    /// Buffers of parsed chunks, reused.
    pub(super) spare: Vec<Vec<u8>>,
    pub(super) bar: &'a indicatif::ProgressBar,
    /// Bytes of the file before the current chunk.
    pub(super) offset: usize,
    /// See [`LoadOptions::max_line_bytes`].
    pub(super) max_line: usize,
}

impl ChunkReader<'_> {
    /// Up to `n` chunks (none at the end of the file).
    pub(super) fn wave(&mut self, n: usize) -> Result<Vec<Vec<u8>>, LoadError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.chunk()? {
                Some(c) => out.push(c),
                None => break,
            }
        }
        Ok(out)
    }

    pub(super) fn chunk(&mut self) -> Result<Option<Vec<u8>>, LoadError> {
        if self.eof && self.carry.is_empty() {
            return Ok(None);
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.append(&mut self.carry);
        // Bytes already searched for a line end (a line longer than a chunk reads on, in
        // doubling steps, searching only what is new).
        let mut searched = 0usize;
        loop {
            if !self.eof {
                let want = if searched == 0 {
                    self.chunk_bytes
                        .max(1)
                        .saturating_sub(buf.len())
                        .max(1 << 12)
                } else {
                    buf.len().max(self.chunk_bytes).max(1 << 12)
                };
                buf.reserve(want);
                let got = (&mut self.file)
                    .take(want as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| io_err(self.path, &e))?;
                self.bar.inc(got as u64);
                if got < want {
                    self.eof = true;
                }
            }
            if self.first {
                check_encoding(self.path, &buf)?;
                if buf.starts_with(b"\xEF\xBB\xBF") {
                    buf.drain(..3);
                }
                self.first = false;
            }
            if self.eof {
                break;
            }
            if searched > self.max_line {
                return Err(LoadError {
                    file: self.path.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "a line longer than {} MiB (starting at byte {} of the file): a JSON Lines record is one object per line; if the file is one JSON array, name it .json",
                        self.max_line as f64 / f64::from(1u32 << 20),
                        self.offset
                    ),
                });
            }
            // Cut after the last line end.
            if let Some(i) = memchr::memrchr(b'\n', buf.get(searched..).unwrap_or(&[])) {
                let i = searched + i;
                self.carry
                    .extend_from_slice(buf.get(i + 1..).unwrap_or(&[]));
                buf.truncate(i + 1);
                break;
            }
            searched = buf.len();
        }
        self.offset += buf.len();
        Ok(Some(buf))
    }
}

/// What a part parses.
#[derive(Clone, Copy)]
pub(super) enum Source<'b> {
    /// A chunk of a JSON Lines file (whole lines; numbered from 1 within the chunk).
    Lines(&'b [u8]),
    /// Records of a JSON array or page, each with its first line, and the addresses of the
    /// bytes [`utf8_marked`] replaced (a record holding one is malformed).
    Units(&'b [(usize, &'b str)], &'b [usize]),
}

/// Parses records into a part: the fast scanner first, serde for what it declines (and for
/// the error message).
pub(super) fn parse_part(
    keys: &KeyMap,
    template: &TableBuilder,
    file: &Path,
    source: Source<'_>,
    skip_invalid: bool,
) -> Part {
    let mut p = PartParser {
        keys,
        file,
        skip_invalid,
        stored: template.stored_columns(),
        part: Part {
            builder: template.fork(),
            errors: Vec::new(),
            lines: 0,
        },
    };
    match source {
        Source::Lines(chunk) => p.lines(chunk),
        Source::Units(units, bad) => {
            let mut rec = p.empty_record();
            let mut primary = vec![false; keys.layout_len];
            let mut s = scan::Scanner::new("", false);
            for &(line, text) in units {
                if let Some((l, column)) = first_marked(text, bad) {
                    p.part.errors.push(utf8_error(file, line + l, column));
                    if !skip_invalid {
                        break;
                    }
                    continue;
                }
                s.reset(text, 0);
                if !p.fast(&mut s, &mut rec, &mut primary) && !p.slow(text.as_bytes(), line) {
                    break;
                }
            }
        }
    }
    p.part
}

pub(super) struct PartParser<'k, 'f> {
    pub(super) keys: &'k KeyMap,
    pub(super) file: &'f Path,
    pub(super) skip_invalid: bool,
    /// Columns the table stores (the only cells a projected scan sets).
    pub(super) stored: Vec<usize>,
    pub(super) part: Part,
}

impl<'k> PartParser<'k, '_> {
    pub(super) fn empty_record<'a>(&self) -> Record<'a> {
        Record {
            cells: vec![Cell::Null; self.keys.layout_len],
            extensions: Vec::new(),
        }
    }

    /// A JSON Lines chunk, record by record straight from the buffer (no pass to find the
    /// lines first). The chunk is checked as UTF-8 once; a chunk that is not valid goes line
    /// by line (serde then reads the lines that are not, as it would any record).
    pub(super) fn lines(&mut self, chunk: &[u8]) {
        let Ok(text) = std::str::from_utf8(chunk) else {
            return self.lines_unchecked(chunk);
        };
        let mut rec = self.empty_record();
        let mut primary = vec![false; self.keys.layout_len];
        let mut pos = 0usize;
        let mut line = 0usize;
        let mut s = scan::Scanner::new(text, true);
        while pos < chunk.len() {
            let rest = chunk.get(pos..).unwrap_or(&[]);
            let blank = rest
                .iter()
                .position(|c| !matches!(c, b' ' | b'\t' | b'\r'))
                .unwrap_or(rest.len());
            match rest.get(blank) {
                None => break,
                Some(b'\n') => {
                    line += 1;
                    pos += blank + 1;
                    continue;
                }
                _ => {}
            }
            line += 1;
            // A byte-order mark opening a line (files joined with `cat`, each saved by
            // PowerShell with one) is not part of the record (D62).
            if rest.get(blank..).is_some_and(|r| r.starts_with(BOM)) {
                pos += blank + BOM.len();
            }
            s.reset(text, pos);
            if self.fast(&mut s, &mut rec, &mut primary) {
                pos = s.i + 1;
                continue;
            }
            let rest = chunk.get(pos..).unwrap_or(&[]);
            let end = memchr::memchr(b'\n', rest).map_or(chunk.len(), |k| pos + k);
            let text = chunk.get(pos..end).unwrap_or(&[]);
            pos = end + 1;
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if !self.slow(text, line) {
                break;
            }
        }
        self.part.lines = line;
    }

    /// [`PartParser::lines`] for a chunk with invalid UTF-8 somewhere: each line checked on
    /// its own.
    pub(super) fn lines_unchecked(&mut self, chunk: &[u8]) {
        let mut rec = self.empty_record();
        let mut primary = vec![false; self.keys.layout_len];
        let mut line = 0usize;
        let mut s = scan::Scanner::new("", true);
        for bytes in chunk.split(|&c| c == b'\n') {
            line += 1;
            let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let fast = match std::str::from_utf8(bytes) {
                Ok(t) => {
                    s.reset(t, 0);
                    self.fast(&mut s, &mut rec, &mut primary)
                }
                Err(e) => {
                    // Invalid UTF-8 anywhere in the record, read or not, makes it malformed.
                    self.part
                        .errors
                        .push(utf8_error(self.file, line, e.valid_up_to() + 1));
                    if !self.skip_invalid {
                        break;
                    }
                    continue;
                }
            };
            if !fast && !self.slow(bytes, line) {
                break;
            }
        }
        // `split` yields one piece past a final line end.
        self.part.lines = if chunk.ends_with(b"\n") {
            line - 1
        } else {
            line
        };
    }

    /// The fast path for the record at the scanner: true when it was read and stored (the
    /// scanner then at the end of its line or text).
    pub(super) fn fast<'a>(
        &mut self,
        s: &mut scan::Scanner<'a, 'k>,
        rec: &mut Record<'a>,
        primary: &mut [bool],
    ) -> bool {
        let ok = scan::record(self.keys, s, rec, primary).is_ok() && s.at_line_end();
        if ok {
            self.part.builder.push_row(rec);
        }
        for &c in &self.stored {
            if let Some(cell) = rec.cells.get_mut(c) {
                *cell = Cell::Null;
            }
            if let Some(p) = primary.get_mut(c) {
                *p = false;
            }
        }
        rec.extensions.clear();
        ok
    }

    /// The serde path for one record's text; false when the part must stop (an error, not
    /// skipping).
    pub(super) fn slow(&mut self, text: &[u8], line: usize) -> bool {
        match parse_record(self.keys, text, self.file, line) {
            Ok(r) => {
                self.part.builder.push_row(&r);
                true
            }
            Err(e) => {
                self.part.errors.push(e);
                self.skip_invalid
            }
        }
    }
}

pub(super) fn parse_record<'b>(
    keys: &KeyMap,
    bytes: &'b [u8],
    file: &Path,
    line: usize,
) -> Result<Record<'b>, LoadError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let rec = RecordSeed { keys }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r));
    rec.map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        LoadError {
            file: file.to_path_buf(),
            line: line + e.line().saturating_sub(1),
            column: e.column(),
            message: msg,
        }
    })
}
