//! The offices' ids as the config finds them: the task reader once per lead, cooperating
//! office and `report_to:` of every task (hundreds of thousands in a large plan), and
//! [`super::Config::office`] after it.

use super::model::Office;
use std::hash::BuildHasher;

/// Each office's place by its id, in a few compact arrays instead of a map of owned
/// strings: a half-full table of 16-byte slots, probed linearly, that holds each short id
/// itself (most are a few letters: `hctc`, `dv-00042`), and the longer ids written one
/// after another. A look-up of a short id reads one slot (four to a cache line), where the
/// map read a bucket, then the id in its own allocation, both cold for most look-ups of a
/// large plan (a fifth of reading its tasks).
#[derive(Debug, Clone)]
pub(crate) struct OfficeIds {
    /// Every id, in the offices' order.
    text: String,
    /// Each office's id: its start in `text` and its length.
    spans: Vec<(u32, u32)>,
    /// A power of two, at most half full.
    slots: Vec<Slot>,
}

/// Ids up to this long are kept in their slot.
const INLINE: usize = 11;

/// One slot: `1 + place` (0 when empty), and the id itself when it is short
/// (`len <= INLINE`), or `LONG` to look it up in `text`.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    place: u32,
    len: u8,
    id: [u8; INLINE],
}

const LONG: u8 = u8::MAX;

/// A length or place as the arrays keep it: a config is far below 4 GiB.
fn narrow(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn hash(id: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(id)
}

impl OfficeIds {
    /// The index of `offices`; of a repeated id (the reader reports it), the last, as a
    /// map built from them keeps.
    pub(crate) fn new(offices: &[Office]) -> Self {
        let mut text = String::with_capacity(offices.iter().map(|o| o.id.len()).sum());
        let spans = offices
            .iter()
            .map(|o| {
                let start = text.len();
                text.push_str(&o.id);
                (narrow(start), narrow(o.id.len()))
            })
            .collect();
        let size = (offices.len() * 2).next_power_of_two().max(8);
        let mut ids = Self {
            text,
            spans,
            slots: vec![Slot::default(); size],
        };
        for (i, o) in offices.iter().enumerate() {
            // The same id's slot, or the first empty one.
            let slot = ids.find(&o.id).unwrap_or_else(|empty| empty);
            let mut s = Slot {
                place: narrow(i + 1),
                len: LONG,
                id: [0; INLINE],
            };
            if o.id.len() <= INLINE {
                s.len = o.id.len() as u8;
                s.id[..o.id.len()].copy_from_slice(o.id.as_bytes());
            }
            ids.slots[slot] = s;
        }
        ids
    }

    /// The slot of `id`, or the empty slot where it would go.
    fn find(&self, id: &str) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut at = (hash(id) as usize) & mask;
        let short = id.len() <= INLINE;
        loop {
            let s = &self.slots[at];
            if s.place == 0 {
                return Err(at);
            }
            let found = if short {
                usize::from(s.len) == id.len() && s.id[..id.len()] == *id.as_bytes()
            } else {
                s.len == LONG && self.at(s.place) == id
            };
            if found {
                return Ok(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// The id of the office at slot value `place` (1 + its place).
    fn at(&self, place: u32) -> &str {
        let (start, len) = self.spans[place as usize - 1];
        &self.text[start as usize..(start + len) as usize]
    }

    /// The place of the office `id`, if there is one.
    pub(crate) fn get(&self, id: &str) -> Option<usize> {
        let at = self.find(id).ok()?;
        Some(self.slots[at].place as usize - 1)
    }

    /// Every id with its office's place, in the offices' order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        self.ids().enumerate().map(|(i, id)| (id, i))
    }

    /// Every id, in the offices' order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> + Clone {
        self.spans
            .iter()
            .map(|&(start, len)| &self.text[start as usize..(start + len) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(id: &str) -> Office {
        Office {
            id: id.to_string(),
            name: String::new(),
            emails: vec![],
            head: None,
            note: None,
            placeholder: false,
        }
    }

    /// Every id is found at its place, and nothing else is found, whatever the number of
    /// offices (tables of every size, full to half) and ids that differ by one letter.
    #[test]
    fn every_office_is_found_at_its_place_and_nothing_else() {
        for n in [0, 1, 2, 3, 7, 8, 9, 100, 1000, 4097] {
            let offices: Vec<Office> = (0..n)
                .map(|i| office(&format!("dv-{i:05}")))
                .chain((0..n.min(50)).map(|i| office(&format!("Phòng ơ {i}"))))
                .chain((0..n.min(30)).map(|i| office(&format!("so-noi-vu-tinh-{i:03}"))))
                .collect();
            let ids = OfficeIds::new(&offices);
            for (i, o) in offices.iter().enumerate() {
                assert_eq!(ids.get(&o.id), Some(i), "{}", o.id);
            }
            for missing in [
                "",
                "dv-",
                "dv-0000",
                "dv-000000",
                "DV-00001",
                "Phòng ơ",
                "x",
            ] {
                assert_eq!(ids.get(missing), None, "{missing} among {n}");
            }
            assert_eq!(ids.get(&format!("dv-{n:05}")), None);
            assert!(ids.ids().eq(offices.iter().map(|o| o.id.as_str())));
        }
        // A repeated id is found at its last place, as in a map built from the offices.
        let ids = OfficeIds::new(&[office("a"), office("b"), office("a")]);
        assert_eq!(ids.get("a"), Some(2));
        assert_eq!(ids.get("b"), Some(1));
    }
}
