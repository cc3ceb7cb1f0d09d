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

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes of input per independently compressed block.
pub const BLOCK: usize = 1 << 20;
/// Deflate's window: how much preceding input primes each block.
const DICT: usize = 32 << 10;

/// The gzip header: no flags, MTIME 0, XFL 0, OS 255 (unknown).
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

fn deflate_block(data: &[u8], start: usize, end: usize, level: u32) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if start > 0 {
        c.set_dictionary(&data[start.saturating_sub(DICT)..start])
            .map_err(io::Error::other)?;
    }
    let last = end == data.len();
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let input = &data[start..end];
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

/// Gzip `data` at `level` using up to `jobs` threads.
pub fn compress(data: &[u8], level: u32, jobs: usize) -> io::Result<Vec<u8>> {
    let blocks: Vec<(usize, usize)> = if data.is_empty() {
        vec![(0, 0)]
    } else {
        (0..data.len())
            .step_by(BLOCK)
            .map(|s| (s, (s + BLOCK).min(data.len())))
            .collect()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<io::Result<Vec<u8>>>>> =
        Mutex::new((0..blocks.len()).map(|_| None).collect());
    let mut crc = Crc::new();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, blocks.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(start, end)) = blocks.get(i) else {
                        break;
                    };
                    let r = deflate_block(data, start, end, level);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
        crc.update(data);
    });
    let parts = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let total: usize = parts.iter().flatten().flatten().map(Vec::len).sum();
    let mut out = Vec::with_capacity(HEADER.len() + total + 8);
    out.extend_from_slice(&HEADER);
    for p in parts {
        out.extend_from_slice(&p.expect("every block was compressed")?);
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(out)
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
