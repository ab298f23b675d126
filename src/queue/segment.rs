//! The one on-disk record format of the persisted queue and the dead letter queue, and
//! the small durability helpers both need.
//!
//! A segment ("page") is a file of records, each framed as
//!
//! ```text
//! +----------------+------------------+-------------------+
//! | length: u32 LE | CRC32C: u32 LE   | payload (length)  |
//! +----------------+------------------+-------------------+
//! ```
//!
//! The CRC covers the payload. A crash in the middle of an append leaves a short or
//! damaged last record: [`scan`] finds where the intact records end, so the writer can
//! cut the tail off instead of gluing the next record to a fragment. A record of length
//! zero is never written, so a run of zero bytes (what some filesystems show after a
//! crash) never reads as valid.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Bytes of framing before each payload.
pub const HEADER: usize = 8;
/// A length above this is damage, not a record (no batch or entry is this large).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// Appends one framed record to `out`.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Frames a record whose payload was written after [`HEADER`] bytes of room: fills in
/// the header, as [`frame`] would have written it.
pub fn seal(record: &mut [u8]) {
    let Some((header, payload)) = record.split_at_mut_checked(HEADER) else {
        return;
    };
    header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
}

/// The record at `at`, if one is complete and intact there: its payload range.
pub fn record_at(bytes: &[u8], at: usize) -> Option<Range<usize>> {
    let header = bytes.get(at..at.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_PAYLOAD {
        return None;
    }
    let payload = at + HEADER..at + HEADER + len;
    let data = bytes.get(payload.clone())?;
    (crc32c::crc32c(data) == crc).then_some(payload)
}

/// The length a header at `at` claims, if the header is there at all.
fn claimed_len(bytes: &[u8], at: usize) -> Option<usize> {
    let h = bytes.get(at..at + HEADER)?;
    Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize)
}

/// What [`scan`] found in a segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Payload ranges of the intact records, in order.
    pub records: Vec<Range<usize>>,
    /// Byte ranges that did not read as records.
    pub damaged: Vec<Range<usize>>,
    /// Where the last intact record ends (or where the scan started).
    pub valid_end: usize,
}

impl Scan {
    /// Only the end is damaged: what a crash in the middle of an append leaves.
    pub fn torn_tail(&self, len: usize) -> bool {
        matches!(self.damaged.as_slice(), [d] if d.end == len && d.start == self.valid_end)
    }

    pub fn damaged_bytes(&self) -> usize {
        self.damaged.iter().map(|d| d.end - d.start).sum()
    }
}

/// Reads the records of `bytes` from `start`. A record whose CRC fails is skipped when
/// its length leads to an intact record, since then only its payload was damaged;
/// when its length is damaged too, the scan looks for the next offset where an intact
/// record starts (length and CRC32C both matching) and goes on from there, so one bad
/// header does not take the records after it along. Only when no intact record
/// follows is the rest reported damaged as a whole (a torn tail when nothing intact
/// came after the damage).
pub fn scan(bytes: &[u8], start: usize) -> Scan {
    let mut out = Scan {
        valid_end: start.min(bytes.len()),
        ..Scan::default()
    };
    let mut at = out.valid_end;
    while at < bytes.len() {
        if let Some(payload) = record_at(bytes, at) {
            at = payload.end;
            out.records.push(payload);
            out.valid_end = at;
            continue;
        }
        let next = claimed_len(bytes, at)
            .filter(|&l| l > 0 && l <= MAX_PAYLOAD)
            .map(|l| at + HEADER + l);
        match next {
            Some(n) if n < bytes.len() && record_at(bytes, n).is_some() => {
                out.damaged.push(at..n);
                at = n;
            }
            _ => match (at + 1..bytes.len()).find(|&n| record_at(bytes, n).is_some()) {
                Some(n) => {
                    out.damaged.push(at..n);
                    at = n;
                }
                None => {
                    out.damaged.push(at..bytes.len());
                    break;
                }
            },
        }
    }
    out
}

/// Makes a directory's entries (created, renamed, deleted files) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the new
/// file, never a mix: write a temporary file, fsync it, rename it over, fsync the
/// directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Cuts `path` at `len` and makes the cut durable.
pub fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

/// An exclusive lock on a directory, held while the value lives: a second process that
/// tries to use the same directory is refused instead of corrupting the first's files.
/// The lock is the operating system's (`flock`), so a killed process never leaves a
/// stale lock behind.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{dir} is in use by another sluice process (lock file {lock}); give each process its own --path.data")]
    Busy { dir: PathBuf, lock: PathBuf },
    #[error("cannot lock {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy {
                dir: dir.to_path_buf(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            frame(p, &mut out);
        }
        out
    }

    #[test]
    fn a_sealed_record_is_what_frame_writes() {
        let mut framed = Vec::new();
        frame(b"payload", &mut framed);
        let mut sealed = vec![0; HEADER];
        sealed.extend_from_slice(b"payload");
        seal(&mut sealed);
        assert_eq!(sealed, framed);
    }

    #[test]
    fn reads_back_what_was_framed() {
        let bytes = segment(&[b"one", b"two", b"three"]);
        let s = scan(&bytes, 0);
        let got: Vec<&[u8]> = s.records.iter().map(|r| &bytes[r.clone()]).collect();
        assert_eq!(got, vec![&b"one"[..], b"two", b"three"]);
        assert!(s.damaged.is_empty());
        assert_eq!(s.valid_end, bytes.len());
    }

    #[test]
    fn a_cut_at_any_byte_is_a_torn_tail() {
        let bytes = segment(&[b"first record", b"second record"]);
        let first_end = HEADER + 12;
        for cut in 1..bytes.len() {
            let s = scan(&bytes[..cut], 0);
            let intact = if cut >= first_end { 1 } else { 0 };
            assert_eq!(s.records.len(), intact, "cut at {cut}");
            if cut != first_end {
                assert!(s.torn_tail(cut), "cut at {cut}: {s:?}");
            }
        }
    }

    #[test]
    fn a_flipped_bit_costs_one_record_when_the_length_holds() {
        let mut bytes = segment(&[b"aaaa", b"bbbb", b"cccc"]);
        bytes[HEADER + 4 + HEADER + 1] ^= 0x10; // inside "bbbb"
        let s = scan(&bytes, 0);
        let got: Vec<&[u8]> = s.records.iter().map(|r| &bytes[r.clone()]).collect();
        assert_eq!(got, vec![&b"aaaa"[..], b"cccc"]);
        assert_eq!(s.damaged.len(), 1);
        assert!(!s.torn_tail(bytes.len()));
    }

    #[test]
    fn a_flipped_bit_in_a_length_costs_one_record_not_the_rest() {
        let mut bytes = segment(&[b"aaaa", b"bbbb", b"cccc", b"dddd"]);
        bytes[HEADER + 4 + 2] ^= 0x01; // the length of "bbbb": 65,540
        let s = scan(&bytes, 0);
        let got: Vec<&[u8]> = s.records.iter().map(|r| &bytes[r.clone()]).collect();
        assert_eq!(got, vec![&b"aaaa"[..], b"cccc", b"dddd"]);
        assert_eq!(s.damaged, vec![HEADER + 4..2 * (HEADER + 4)]);
        assert!(!s.torn_tail(bytes.len()));
    }

    #[test]
    fn zeros_are_never_records() {
        let mut bytes = segment(&[b"x"]);
        bytes.extend_from_slice(&[0; 64]);
        let s = scan(&bytes, 0);
        assert_eq!(s.records.len(), 1);
        assert!(s.torn_tail(bytes.len()));
    }

    #[test]
    fn a_second_lock_on_one_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(tmp.path()).unwrap();
        // flock locks belong to the open file, so a second open in this process
        // conflicts like another process would.
        assert!(matches!(
            DirLock::acquire(tmp.path()),
            Err(LockError::Busy { .. })
        ));
        drop(first);
        DirLock::acquire(tmp.path()).unwrap();
    }

    #[test]
    fn atomic_writes_replace_the_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("checkpoint");
        write_atomic(&p, b"1 100\n").unwrap();
        write_atomic(&p, b"2 0\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2 0\n");
    }
}
