//! The offices' ids as the task reader looks them up: one per lead, cooperating office and
//! `report_to:` of every task, hundreds of thousands in a large plan.

use super::Office;
use std::hash::BuildHasher;

/// Each office's place by its id, in a few compact arrays instead of a map of owned
/// strings: the ids written one after another, each one's span, and a table of places
/// probed linearly. A look-up reads the table and one id in memory a few hundred KiB
/// wide for 10,000 offices, where the map's buckets and its strings, each in its own
/// allocation, were cold for most look-ups of a large plan (a fifth of reading its tasks).
pub(super) struct OfficeIds {
    /// Every id, in the offices' order.
    text: String,
    /// Each office's id: its start in `text` and its length.
    spans: Vec<(u32, u32)>,
    /// Slots of `1 + place`, 0 when empty, with the hash's high bits beside each to pass
    /// over most other ids without reading them; a power of two, at most half full.
    slots: Vec<(u32, u32)>,
}

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
    pub(super) fn new(offices: &[Office]) -> Self {
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
            slots: vec![(0, 0); size],
        };
        for (i, o) in offices.iter().enumerate() {
            let h = hash(&o.id);
            let mut slot = (h as usize) & (size - 1);
            // The same id's slot, or the first empty one.
            while ids.slots[slot].0 != 0 && ids.at(ids.slots[slot].0) != o.id {
                slot = (slot + 1) & (size - 1);
            }
            ids.slots[slot] = (narrow(i + 1), (h >> 32) as u32);
        }
        ids
    }

    /// The id of the office at slot value `place` (1 + its place).
    fn at(&self, place: u32) -> &str {
        let (start, len) = self.spans[place as usize - 1];
        &self.text[start as usize..(start + len) as usize]
    }

    /// The place of the office `id`, if there is one.
    pub(super) fn get(&self, id: &str) -> Option<usize> {
        let h = hash(id);
        let mask = self.slots.len() - 1;
        let mut slot = (h as usize) & mask;
        loop {
            let (place, tag) = self.slots[slot];
            if place == 0 {
                return None;
            }
            if tag == (h >> 32) as u32 && self.at(place) == id {
                return Some(place as usize - 1);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Every id, in the offices' order.
    pub(super) fn ids(&self) -> impl Iterator<Item = &str> + Clone {
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
