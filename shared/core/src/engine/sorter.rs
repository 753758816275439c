//! An external sort of (key, value) pairs with bounded memory: pairs are sorted in chunks,
//! spilled to anonymous temporary files, and merged back in key order. It lets a full sync
//! build its indexes in key order (sequential writes) instead of inserting entries at random
//! places page by page.
//!
//! A chunk lives in one byte buffer (`key\tvalue\n` back to back) plus an index of offsets,
//! both reused for every chunk: a pair costs no allocation of its own, so the heap does not
//! fragment over many chunks and memory stays the same however many pairs pass.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};

/// Where one pair sits in the chunk buffer: start, key length, whole line length.
#[derive(Clone, Copy)]
struct Slot {
    start: usize,
    key_len: usize,
    len: usize,
}

pub struct ExternalSorter {
    chunk: usize,
    bytes: Vec<u8>,
    slots: Vec<Slot>,
    runs: Vec<File>,
}

/// The chunk's pairs in (key, value) order.
fn sort_slots(bytes: &[u8], slots: &mut [Slot]) {
    let pair = |s: &Slot| {
        let line = &bytes[s.start..s.start + s.len - 1];
        (&line[..s.key_len], &line[s.key_len + 1..])
    };
    slots.sort_unstable_by(|a, b| pair(a).cmp(&pair(b)));
}

impl ExternalSorter {
    /// `chunk` pairs are held in memory at most.
    pub fn new(chunk: usize) -> Self {
        ExternalSorter {
            chunk: chunk.max(1),
            bytes: Vec::new(),
            slots: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// Keys and values must not contain a tab or a newline (sort keys and compact JSON don't).
    pub fn push(&mut self, key: String, value: String) -> io::Result<()> {
        debug_assert!(!key.contains(['\t', '\n']) && !value.contains('\n'));
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key.as_bytes());
        self.bytes.push(b'\t');
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.push(b'\n');
        self.slots.push(Slot {
            start,
            key_len: key.len(),
            len: self.bytes.len() - start,
        });
        if self.slots.len() >= self.chunk {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        sort_slots(&self.bytes, &mut self.slots);
        let mut file = tempfile::tempfile()?;
        {
            let mut w = BufWriter::with_capacity(1 << 16, &mut file);
            for s in &self.slots {
                w.write_all(&self.bytes[s.start..s.start + s.len])?;
            }
            w.flush()?;
        }
        file.rewind()?;
        self.runs.push(file);
        self.bytes.clear();
        self.slots.clear();
        Ok(())
    }

    /// All pairs in key order (equal keys in no particular order).
    pub fn finish(mut self) -> io::Result<Sorted> {
        if self.runs.is_empty() {
            sort_slots(&self.bytes, &mut self.slots);
            return Ok(Sorted(Inner::Memory {
                bytes: self.bytes,
                slots: self.slots.into_iter(),
            }));
        }
        if !self.slots.is_empty() {
            self.spill()?;
        }
        // The chunk buffers are not needed any more while the runs are merged.
        self.bytes = Vec::new();
        self.slots = Vec::new();
        let mut readers: Vec<Run> = self
            .runs
            .into_iter()
            .map(|f| Run(BufReader::with_capacity(1 << 16, f)))
            .collect();
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(pair) = r.next_pair()? {
                heap.push(Reverse((pair, i)));
            }
        }
        Ok(Sorted(Inner::Merge { readers, heap }))
    }
}

struct Run(BufReader<File>);

/// One `key\tvalue` line as its two parts.
fn split_line(line: &str) -> io::Result<(String, String)> {
    let (k, v) = line
        .split_once('\t')
        .ok_or_else(|| io::Error::other("corrupt sort run"))?;
    Ok((k.to_string(), v.to_string()))
}

impl Run {
    fn next_pair(&mut self) -> io::Result<Option<(String, String)>> {
        let mut line = String::new();
        if self.0.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        line.pop();
        split_line(&line).map(Some)
    }
}

/// The sorted pairs, from memory or merged from the spilled runs.
pub struct Sorted(Inner);

enum Inner {
    Memory {
        bytes: Vec<u8>,
        slots: std::vec::IntoIter<Slot>,
    },
    Merge {
        readers: Vec<Run>,
        heap: BinaryHeap<Reverse<((String, String), usize)>>,
    },
}

impl Iterator for Sorted {
    type Item = io::Result<(String, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::Memory { bytes, slots } => {
                let s = slots.next()?;
                let line = &bytes[s.start..s.start + s.len - 1];
                Some(
                    std::str::from_utf8(line)
                        .map_err(io::Error::other)
                        .and_then(split_line),
                )
            }
            Inner::Merge { readers, heap } => {
                let Reverse((pair, i)) = heap.pop()?;
                match readers[i].next_pair() {
                    Ok(Some(next)) => heap.push(Reverse((next, i))),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
                Some(Ok(pair))
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_and_in_memory_sorts_agree_and_keep_every_pair() {
        let mut s = ExternalSorter::new(7);
        let mut m = ExternalSorter::new(10_000);
        let mut rng = fastrand::Rng::with_seed(42);
        let mut expected = Vec::new();
        for i in 0..1000 {
            let k = crate::domain::keys::supporter_gift_sk(rng.u64(..500), i);
            let v = format!("{{\"n\":{i}}}");
            s.push(k.clone(), v.clone()).unwrap();
            m.push(k.clone(), v.clone()).unwrap();
            expected.push((k, v));
        }
        expected.sort();
        let a: Vec<_> = s.finish().unwrap().map(|r| r.unwrap()).collect();
        let b: Vec<_> = m.finish().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(a, expected);
        assert_eq!(b, expected);
        assert!(ExternalSorter::new(3).finish().unwrap().next().is_none());
    }
}
