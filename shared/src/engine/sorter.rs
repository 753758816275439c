//! An external sort of (key, value) pairs with bounded memory: pairs are sorted in chunks,
//! spilled to anonymous temporary files, and merged back in key order. It lets a full sync
//! build its indexes in key order (sequential writes) instead of inserting entries at random
//! places page by page.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};

pub struct ExternalSorter {
    chunk: usize,
    buf: Vec<(String, String)>,
    runs: Vec<File>,
}

impl ExternalSorter {
    /// `chunk` pairs are held in memory at most.
    pub fn new(chunk: usize) -> Self {
        ExternalSorter {
            chunk: chunk.max(1),
            buf: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// Keys and values must not contain a tab or a newline (sort keys and compact JSON don't).
    pub fn push(&mut self, key: String, value: String) -> io::Result<()> {
        debug_assert!(!key.contains(['\t', '\n']) && !value.contains('\n'));
        self.buf.push((key, value));
        if self.buf.len() >= self.chunk {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buf.sort_unstable();
        let mut file = tempfile::tempfile()?;
        {
            let mut w = BufWriter::with_capacity(1 << 16, &mut file);
            for (k, v) in self.buf.drain(..) {
                w.write_all(k.as_bytes())?;
                w.write_all(b"\t")?;
                w.write_all(v.as_bytes())?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
        }
        file.rewind()?;
        self.runs.push(file);
        Ok(())
    }

    /// All pairs in key order (equal keys in no particular order).
    pub fn finish(mut self) -> io::Result<Sorted> {
        if self.runs.is_empty() {
            self.buf.sort_unstable();
            return Ok(Sorted(Inner::Memory(self.buf.into_iter())));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
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

impl Run {
    fn next_pair(&mut self) -> io::Result<Option<(String, String)>> {
        let mut line = String::new();
        if self.0.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        line.pop();
        let (k, v) = line
            .split_once('\t')
            .ok_or_else(|| io::Error::other("corrupt sort run"))?;
        Ok(Some((k.to_string(), v.to_string())))
    }
}

/// The sorted pairs, from memory or merged from the spilled runs.
pub struct Sorted(Inner);

enum Inner {
    Memory(std::vec::IntoIter<(String, String)>),
    Merge {
        readers: Vec<Run>,
        heap: BinaryHeap<Reverse<((String, String), usize)>>,
    },
}

impl Iterator for Sorted {
    type Item = io::Result<(String, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::Memory(it) => it.next().map(Ok),
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
            let k = format!("SIDX#{:020}#T#{i:05}", rng.u32(..500));
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
