//! Opening a trace (plain or gzip, detected by magic) and reading it line by
//! line with bounded memory.

use crate::TraceError;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest accepted line; longer lines are reported as unparsable (their
/// excess bytes are skipped, memory stays bounded).
pub const MAX_LINE: usize = 64 * 1024;

/// Where a trace comes from: a file, or bytes in memory (tests, benches).
#[derive(Debug, Clone)]
pub enum TraceInput {
    /// A file on disk, plain or gzip.
    Path(PathBuf),
    /// In-memory content, plain or gzip; `name` is used in messages and
    /// for finding a sidecar.
    Bytes {
        /// Name used in error messages.
        name: PathBuf,
        /// The content.
        data: Arc<[u8]>,
    },
}

impl TraceInput {
    /// The path used in messages.
    pub fn name(&self) -> &Path {
        match self {
            TraceInput::Path(p) => p,
            TraceInput::Bytes { name, .. } => name,
        }
    }
}

impl From<&Path> for TraceInput {
    fn from(p: &Path) -> Self {
        TraceInput::Path(p.to_path_buf())
    }
}

impl From<PathBuf> for TraceInput {
    fn from(p: PathBuf) -> Self {
        TraceInput::Path(p)
    }
}

/// Line reader over a (possibly gzip) stream.
pub(crate) struct LineSource {
    path: PathBuf,
    inner: Box<dyn BufRead + Send>,
    gzip: bool,
    /// 1-based number of the line last returned.
    pub line: u64,
    pub buf: Vec<u8>,
    /// The last line returned was longer than [`MAX_LINE`].
    pub too_long: bool,
}

struct SliceReader {
    data: Arc<[u8]>,
    pos: usize,
}

impl Read for SliceReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl LineSource {
    pub fn open(input: &TraceInput) -> Result<Self, TraceError> {
        let path = input.name().to_path_buf();
        let raw: Box<dyn Read + Send> = match input {
            TraceInput::Path(p) => {
                Box::new(std::fs::File::open(p).map_err(|e| TraceError::io(p, e))?)
            }
            TraceInput::Bytes { data, .. } => Box::new(SliceReader {
                data: data.clone(),
                pos: 0,
            }),
        };
        let mut br = BufReader::with_capacity(256 * 1024, raw);
        let head = br.fill_buf().map_err(|e| TraceError::io(&path, e))?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let inner: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                flate2::bufread::MultiGzDecoder::new(br),
            ))
        } else {
            Box::new(br)
        };
        Ok(LineSource {
            path,
            inner,
            gzip,
            line: 0,
            buf: Vec::with_capacity(512),
            too_long: false,
        })
    }

    /// Reads the next line into `self.buf` (without the newline). Returns
    /// `false` at end of input.
    pub fn next_line(&mut self) -> Result<bool, TraceError> {
        self.buf.clear();
        self.too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let cause = if self.gzip {
                        format!("gzip stream truncated or corrupt: {e}")
                    } else {
                        format!("read error: {e}")
                    };
                    return Err(TraceError::input(&self.path, self.line + 1, cause));
                }
            };
            if chunk.is_empty() {
                if any {
                    self.line += 1;
                }
                return Ok(any);
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, i + 1),
                None => (chunk.len(), chunk.len()),
            };
            let room = MAX_LINE.saturating_sub(self.buf.len());
            if take > room {
                self.too_long = true;
            }
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            let found = done == take + 1;
            self.inner.consume(done);
            if found {
                self.line += 1;
                return Ok(true);
            }
        }
    }
}
