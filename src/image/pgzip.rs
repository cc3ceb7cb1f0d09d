//! Parallel, deterministic gzip (the pigz scheme).
//!
//! The input is cut into fixed [`BLOCK`]-byte blocks. Each block is deflated
//! on its own thread as raw deflate, primed with the previous 32 KiB of input
//! as dictionary, and ended with a sync flush (the last block with a final
//! block). The concatenation is one valid deflate stream; one gzip header and
//! a CRC-32/length trailer make it a single gzip member any reader accepts.
//!
//! The output depends only on the input, the level and [`BLOCK`], never on the
//! number of threads, so digests stay reproducible across machines.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes of input per independently compressed block.
pub const BLOCK: usize = 1 << 20;
/// Deflate's window: how much preceding input primes each block.
const DICT: usize = 32 << 10;

/// The gzip header: no flags, MTIME 0, XFL 0, OS 255 (unknown).
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Deflate one block, primed with `dict`; `last` ends the stream.
fn deflate_block(dict: &[u8], input: &[u8], last: bool, level: u32) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() / 2 + 4096);
    let mut pos = 0;
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(1 << 16));
        }
        let before = c.total_in();
        let status = c
            .compress_vec(&input[pos..], &mut out, flush)
            .map_err(io::Error::other)?;
        pos += (c.total_in() - before) as usize;
        let done = match status {
            Status::StreamEnd => true,
            _ if last => false,
            _ => pos == input.len() && out.len() < out.capacity(),
        };
        if done {
            return Ok(out);
        }
    }
}

/// Deflate the `blocks` (ranges of `buf`) in parallel, each primed with the
/// 32 KiB before it. Returns the compressed blocks in order.
fn deflate_blocks(
    buf: &[u8],
    blocks: &[(usize, usize)],
    last_is_final: bool,
    level: u32,
    jobs: usize,
) -> io::Result<Vec<Vec<u8>>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<io::Result<Vec<u8>>>>> =
        Mutex::new((0..blocks.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, blocks.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(start, end)) = blocks.get(i) else {
                        break;
                    };
                    // `buf` starts with the kept tail, so this is the 32 KiB
                    // of input before the block (less at the very start).
                    let dict = &buf[start.saturating_sub(DICT)..start];
                    let last = last_is_final && i + 1 == blocks.len();
                    let r = deflate_block(dict, &buf[start..end], last, level);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every block was compressed"))
        .collect()
}

/// A streaming parallel gzip writer: input is buffered until a batch of
/// blocks is ready, the batch is compressed on `jobs` threads and written in
/// order. Memory stays around `(2 * jobs + 1)` blocks; the bytes equal
/// [`compress`] of the whole input.
pub struct Writer<W: Write> {
    out: W,
    level: u32,
    jobs: usize,
    /// The last (up to) 32 KiB already compressed, then pending input.
    buf: Vec<u8>,
    dict_len: usize,
    crc: Crc,
    total: u64,
    started: bool,
}

impl<W: Write> Writer<W> {
    /// A writer compressing at `level` on up to `jobs` threads into `out`.
    pub fn new(out: W, level: u32, jobs: usize) -> Writer<W> {
        let jobs = jobs.max(1);
        Writer {
            out,
            level,
            jobs,
            buf: Vec::with_capacity((2 * jobs + 1) * BLOCK + DICT),
            dict_len: 0,
            crc: Crc::new(),
            total: 0,
            started: false,
        }
    }

    /// Compress full blocks that are certainly not the last one (`final`:
    /// everything, the last block ending the stream).
    fn drain(&mut self, last: bool) -> io::Result<()> {
        let pending = self.buf.len() - self.dict_len;
        let mut blocks = Vec::new();
        let mut start = self.dict_len;
        if last {
            loop {
                let end = (start + BLOCK).min(self.buf.len());
                blocks.push((start, end));
                start = end;
                if start >= self.buf.len() {
                    break;
                }
            }
        } else {
            // Keep the tail block: only a block with data after it is
            // compressed with a sync flush, as in the one-shot form.
            while start + BLOCK < self.dict_len + pending {
                blocks.push((start, start + BLOCK));
                start += BLOCK;
            }
            if blocks.is_empty() {
                return Ok(());
            }
        }
        let parts = deflate_blocks(&self.buf, &blocks, last, self.level, self.jobs)?;
        if !self.started {
            self.out.write_all(&HEADER)?;
            self.started = true;
        }
        for p in parts {
            self.out.write_all(&p)?;
        }
        let keep_from = start.saturating_sub(DICT);
        self.buf.drain(..keep_from);
        self.dict_len = start - keep_from;
        Ok(())
    }

    /// Compress what is left, write the trailer, return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain(true)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.crc.update(data);
        self.total += data.len() as u64;
        if self.buf.len() - self.dict_len > 2 * self.jobs * BLOCK {
            self.drain(false)?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Gzip `data` at `level` using up to `jobs` threads.
pub fn compress(data: &[u8], level: u32, jobs: usize) -> io::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::with_capacity(data.len() / 2 + 64), level, jobs);
    w.write_all(data)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 7;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b"forge "[i % 6]
                }
            })
            .collect()
    }

    #[test]
    fn round_trips_and_ignores_thread_count() {
        for len in [0, 1, 1000, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345] {
            let data = sample(len);
            let one = compress(&data, 6, 1).unwrap();
            let many = compress(&data, 6, 4).unwrap();
            assert_eq!(one, many, "len {len}");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(one.as_slice())
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "len {len}");
            assert_eq!(&one[..10], &HEADER);
        }
    }

    #[test]
    fn streaming_in_odd_pieces_equals_one_shot() {
        let data = sample(7 * BLOCK + 999);
        let one = compress(&data, 6, 3).unwrap();
        for piece in [1usize << 16, BLOCK, BLOCK + 7, 3 * BLOCK - 1] {
            let mut w = Writer::new(Vec::new(), 6, 2);
            for chunk in data.chunks(piece) {
                w.write_all(chunk).unwrap();
            }
            assert_eq!(w.finish().unwrap(), one, "piece {piece}");
        }
    }

    #[test]
    fn dictionary_keeps_ratio_close_to_serial() {
        let data = sample(4 * BLOCK);
        let par = compress(&data, 6, 2).unwrap();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        std::io::Write::write_all(&mut serial, &data).unwrap();
        let serial = serial.finish().unwrap();
        assert!(
            par.len() < serial.len() + serial.len() / 100,
            "{} vs {}",
            par.len(),
            serial.len()
        );
    }
}
