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
//!
//! It is a pipeline, as pigz's: the caller (the layer's tar writer and its
//! DiffID hash) keeps producing the next block while `jobs` long-lived
//! workers deflate the previous ones and compute each block's CRC-32 (the
//! CRCs are combined in order). A batch-at-a-time scheme left the workers
//! idle while the tar was produced and the producer idle while they ran.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, mpsc};

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

/// A compressed block and the CRC-32 of its input.
type Deflated = io::Result<(Vec<u8>, Crc)>;

/// One block handed to a worker: its input, the 32 KiB before it, whether
/// it ends the stream, and where the result goes.
struct Job {
    dict: Vec<u8>,
    input: Vec<u8>,
    last: bool,
    level: u32,
    done: mpsc::SyncSender<Deflated>,
}

/// Deflate jobs from `queue` until it closes.
fn worker(queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let job = match queue.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let r = deflate_block(&job.dict, &job.input, job.last, job.level).map(|out| {
            let mut crc = Crc::new();
            crc.update(&job.input);
            (out, crc)
        });
        // The writer may be gone (an error elsewhere): nothing to report to.
        let _ = job.done.send(r);
    }
}

/// A streaming parallel gzip writer (the pigz pipeline): input fills one
/// block at a time; each full block goes to one of `jobs` worker threads as
/// soon as more input follows it, while the caller keeps producing; the
/// compressed blocks are written in order. At most `2 * jobs` blocks are in
/// flight, so memory stays around `(2 * jobs + 1)` blocks; the bytes equal
/// [`compress`] of the whole input, whatever `jobs` is.
pub struct Writer<W: Write> {
    out: W,
    level: u32,
    jobs: usize,
    /// The block being filled.
    block: Vec<u8>,
    /// The 32 KiB of input before `block`.
    dict: Vec<u8>,
    /// Results of submitted blocks, oldest first.
    in_flight: VecDeque<mpsc::Receiver<Deflated>>,
    queue: Option<mpsc::Sender<Job>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    crc: Crc,
    started: bool,
}

impl<W: Write> Writer<W> {
    /// A writer compressing at `level` on up to `jobs` threads into `out`.
    pub fn new(out: W, level: u32, jobs: usize) -> Writer<W> {
        let jobs = jobs.max(1);
        let (tx, rx) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..jobs)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || worker(rx))
            })
            .collect();
        Writer {
            out,
            level,
            jobs,
            block: Vec::with_capacity(BLOCK),
            dict: Vec::new(),
            in_flight: VecDeque::new(),
            queue: Some(tx),
            workers,
            crc: Crc::new(),
            started: false,
        }
    }

    /// Hand the current block to the workers (`last`: it ends the stream).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let keep = input.len().min(DICT);
        let next_dict = if keep == DICT {
            input[input.len() - DICT..].to_vec()
        } else {
            // A short block is the last one; a dictionary is never needed.
            Vec::new()
        };
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let (done, result) = mpsc::sync_channel(1);
        let job = Job {
            dict,
            input,
            last,
            level: self.level,
            done,
        };
        self.queue
            .as_ref()
            .and_then(|q| q.send(job).ok())
            .ok_or_else(|| io::Error::other("gzip workers are gone"))?;
        self.in_flight.push_back(result);
        while self.in_flight.len() > 2 * self.jobs {
            self.write_oldest()?;
        }
        Ok(())
    }

    /// Wait for the oldest block in flight and write it out.
    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(result) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let (bytes, crc) = result
            .recv()
            .map_err(|_| io::Error::other("a gzip worker stopped"))??;
        if !self.started {
            self.out.write_all(&HEADER)?;
            self.started = true;
        }
        self.out.write_all(&bytes)?;
        self.crc.combine(&crc);
        Ok(())
    }

    /// Compress what is left, write the trailer, return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let (sum, len) = (self.crc.sum(), self.crc.amount());
        self.out.write_all(&sum.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        // Closing the queue stops the workers. (A writer dropped without
        // `finish` closes it too; its workers end after their current block.)
        self.queue = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        Ok(self.out)
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            if self.block.len() == BLOCK {
                // Input follows this block, so it is not the last one.
                self.submit(false)?;
            }
            let take = (BLOCK - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(n)
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

    /// Eight blocks through the pipeline on three workers, pinned: the
    /// bytes (so every image digest) must not depend on the scheduling, and
    /// equal what the batch-at-a-time writer gave before it.
    #[test]
    fn many_blocks_are_pinned() {
        use sha2::Digest as _;
        let data = sample(7 * BLOCK + 999);
        let gz = compress(&data, 6, 3).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&gz)), PINNED);
    }
    const PINNED: &str = "512db652e473189778ff351aab15074c46632127e0281fa90ffbb5cd58922a3b";

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
