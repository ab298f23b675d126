//! Line framing for stream inputs (tcp, stdin) with a hard cap on line length, so a peer
//! that never sends a newline cannot make Sluice buffer without bound.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// Tag for a line cut at `max_line_bytes`.
pub const LINE_TOO_LONG: &str = "_linetoolong";

/// One line without its `\n` (and without a trailing `\r`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub bytes: BytesMut,
    /// The line was longer than the cap: `bytes` holds its first `max` bytes and the
    /// rest was skipped.
    pub truncated: bool,
}

/// A `tokio_util` decoder that yields [`Line`]s.
#[derive(Debug)]
pub struct LineFramer {
    max: usize,
    /// Bytes already searched for a newline in the current buffer.
    searched: usize,
    /// Skipping the rest of an over-long line until its newline.
    discarding: bool,
    /// Bytes of over-long lines skipped since [`LineFramer::take_discarded`].
    discarded: u64,
    /// The last line [`Decoder::decode_eof`] returned had no newline.
    unterminated: bool,
}

impl LineFramer {
    pub fn new(max_line_bytes: usize) -> LineFramer {
        LineFramer {
            max: max_line_bytes.max(1),
            searched: 0,
            discarding: false,
            discarded: 0,
            unterminated: false,
        }
    }

    /// Bytes of over-long lines skipped since the last call (for counters).
    pub fn take_discarded(&mut self) -> u64 {
        std::mem::take(&mut self.discarded)
    }

    /// Cuts the line being read short: what is buffered of it (a partial line, all of
    /// `buf` once `decode` returned `None`) comes back as a truncated line, and the rest
    /// is skipped up to its newline, as for an over-long line. For an input that must
    /// give back the memory the line holds. `None` when nothing of a line is buffered.
    pub fn cut(&mut self, buf: &mut BytesMut) -> Option<Line> {
        if buf.is_empty() || self.discarding {
            return None;
        }
        let head = buf.split_to(buf.len());
        self.discarding = true;
        self.searched = 0;
        Some(Line {
            bytes: head,
            truncated: true,
        })
    }

    /// Whether the line `decode_eof` returned last was cut short by the end of the
    /// stream (no newline).
    pub fn was_unterminated(&self) -> bool {
        self.unterminated
    }
}

fn trim_cr(mut b: BytesMut) -> BytesMut {
    if b.last() == Some(&b'\r') {
        b.truncate(b.len() - 1);
    }
    b
}

impl Decoder for LineFramer {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, std::io::Error> {
        loop {
            if self.discarding {
                match memchr::memchr(b'\n', buf) {
                    Some(i) => {
                        self.discarded += i as u64;
                        buf.advance(i + 1);
                        self.discarding = false;
                        self.searched = 0;
                        continue;
                    }
                    None => {
                        self.discarded += buf.len() as u64;
                        buf.clear();
                        return Ok(None);
                    }
                }
            }
            let start = self.searched.min(buf.len());
            if let Some(i) = memchr::memchr(b'\n', &buf[start..]) {
                let end = start + i;
                self.searched = 0;
                if end > self.max {
                    let head = buf.split_to(self.max);
                    self.discarded += (end - self.max) as u64;
                    buf.advance(end - self.max + 1);
                    return Ok(Some(Line {
                        bytes: head,
                        truncated: true,
                    }));
                }
                let line = buf.split_to(end);
                buf.advance(1);
                return Ok(Some(Line {
                    bytes: trim_cr(line),
                    truncated: false,
                }));
            }
            if buf.len() > self.max {
                // Emit the head now and drop the rest of the line as it arrives.
                let head = buf.split_to(self.max);
                self.discarded += buf.len() as u64;
                buf.clear();
                self.discarding = true;
                self.searched = 0;
                return Ok(Some(Line {
                    bytes: head,
                    truncated: true,
                }));
            }
            self.searched = buf.len();
            return Ok(None);
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, std::io::Error> {
        self.unterminated = false;
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        self.searched = 0;
        if buf.is_empty() || self.discarding {
            self.discarded += buf.len() as u64;
            buf.clear();
            return Ok(None);
        }
        self.unterminated = true;
        let rest = buf.split_to(buf.len());
        Ok(Some(Line {
            bytes: trim_cr(rest),
            truncated: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cut_line_keeps_its_head_and_skips_the_rest_up_to_its_newline() {
        let mut framer = LineFramer::new(1024);
        let mut buf = BytesMut::from(&b"done\npartial li"[..]);
        assert_eq!(
            framer.decode(&mut buf).unwrap().unwrap().bytes,
            &b"done"[..]
        );
        assert_eq!(framer.decode(&mut buf).unwrap(), None);
        let cut = framer.cut(&mut buf).expect("a partial line was buffered");
        assert_eq!(cut.bytes, &b"partial li"[..]);
        assert!(cut.truncated);
        assert!(buf.is_empty());
        assert_eq!(framer.cut(&mut buf), None, "nothing is left to cut");
        buf.extend_from_slice(b"ne's tail\nnext\n");
        assert_eq!(
            framer.decode(&mut buf).unwrap().unwrap().bytes,
            &b"next"[..]
        );
        assert_eq!(framer.take_discarded(), 9);
    }

    use super::*;

    fn lines(input: &[&[u8]], max: usize) -> Vec<(Vec<u8>, bool)> {
        let mut f = LineFramer::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in input {
            buf.extend_from_slice(chunk);
            while let Some(l) = f.decode(&mut buf).unwrap() {
                out.push((l.bytes.to_vec(), l.truncated));
            }
        }
        while let Some(l) = f.decode_eof(&mut buf).unwrap() {
            out.push((l.bytes.to_vec(), l.truncated));
        }
        out
    }

    #[test]
    fn splits_across_chunks_and_keeps_the_last_line() {
        let got = lines(&[b"ab", b"c\r\nde", b"f\n\nlast"], 100);
        assert_eq!(
            got,
            vec![
                (b"abc".to_vec(), false),
                (b"def".to_vec(), false),
                (b"".to_vec(), false),
                (b"last".to_vec(), false)
            ]
        );
    }

    #[test]
    fn cuts_long_lines_and_resynchronises() {
        let got = lines(&[b"0123456789abc\nok\n"], 4);
        assert_eq!(got, vec![(b"0123".to_vec(), true), (b"ok".to_vec(), false)]);
        // The long line arrives in pieces, never buffered past the cap.
        let got = lines(&[b"0123456", b"789", b"abc\nok\n"], 4);
        assert_eq!(got, vec![(b"0123".to_vec(), true), (b"ok".to_vec(), false)]);
    }
}
