//! [`KeyMap`]: values by [`DeliveryKey`], held as numbers. A sweep looks up every nudge it
//! plans among every key the ledger holds; with the keys' strings hashed, compared and
//! copied for each lookup, that was a fifth of the sweep after a reload. Here each task,
//! office and kind is stored once and named by its place in a list, and a nudge is looked
//! up by its borrowed parts, without building a key.

use super::DeliveryKey;
use crate::plan::planner::{Kind, Nudge};
use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

/// A key as numbers: each string's place in its [`Names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Packed {
    task: u32,
    office: u32,
    kind: u32,
    occurrence: NaiveDate,
}

/// Distinct strings, each with its place, written one after the other in one string (a
/// lookup compares with bytes that sit together, not with a string of its own somewhere
/// on the heap). Found by the string's hash, then compared byte for byte with each name of
/// that hash: two names are the same number only if their strings are equal, so a
/// collision of hashes never confuses two keys.
#[derive(Clone, Default)]
struct Names<S> {
    hasher: S,
    /// Per hash, the last name added with it; `next` chains the earlier ones.
    heads: FxHashMap<u64, u32>,
    next: Vec<u32>,
    text: String,
    /// Where each name is in `text`.
    spans: Vec<(usize, usize)>,
}

/// The end of a chain in [`Names::next`].
const NONE: u32 = u32::MAX;

impl<S: BuildHasher> Names<S> {
    fn get(&self, name: &str) -> Option<u32> {
        self.find(self.hasher.hash_one(name), name)
    }

    fn find(&self, hash: u64, name: &str) -> Option<u32> {
        let mut id = *self.heads.get(&hash)?;
        while id != NONE {
            if self.name(id) == name {
                return Some(id);
            }
            id = self.next[id as usize];
        }
        None
    }

    fn add(&mut self, name: &str) -> u32 {
        let hash = self.hasher.hash_one(name);
        if let Some(id) = self.find(hash, name) {
            return id;
        }
        // More distinct names than u32 holds would not fit in memory as keys anyway; the
        // last number ends a chain.
        let id = u32::try_from(self.spans.len())
            .ok()
            .filter(|id| *id != NONE)
            .expect("fewer than 2^32 - 1 distinct names");
        self.spans
            .push((self.text.len(), self.text.len() + name.len()));
        self.text.push_str(name);
        let head = self.heads.entry(hash).or_insert(NONE);
        self.next.push(*head);
        *head = id;
        id
    }

    fn name(&self, id: u32) -> &str {
        let (from, to) = self.spans[id as usize];
        &self.text[from..to]
    }
}

/// A key's parts, borrowed from a [`KeyMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    pub task: &'a str,
    pub occurrence: NaiveDate,
    pub office: &'a str,
    pub kind: &'a str,
}

impl KeyRef<'_> {
    pub fn to_key(&self) -> DeliveryKey {
        DeliveryKey {
            task: self.task.to_string(),
            occurrence: self.occurrence,
            office: self.office.to_string(),
            kind: self.kind.to_string(),
        }
    }
}

/// A map from [`DeliveryKey`] to `V`, its keys' strings held once each. Iterated in no
/// particular order, as a hash map is.
#[derive(Clone)]
pub struct KeyMap<V, S = rustc_hash::FxBuildHasher> {
    values: HashMap<Packed, V, S>,
    tasks: Names<S>,
    offices: Names<S>,
    kinds: Names<S>,
}

impl<V: std::fmt::Debug, S: BuildHasher + Default> std::fmt::Debug for KeyMap<V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k.to_key(), v)))
            .finish()
    }
}

impl<V, S: Default> Default for KeyMap<V, S> {
    fn default() -> Self {
        Self {
            values: HashMap::default(),
            tasks: Names::default(),
            offices: Names::default(),
            kinds: Names::default(),
        }
    }
}

impl<V, S: BuildHasher + Default> KeyMap<V, S> {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The numbers of a key made of these parts, if every part is known.
    fn packed(
        &self,
        task: &str,
        occurrence: NaiveDate,
        office: &str,
        kind: &str,
    ) -> Option<Packed> {
        Some(Packed {
            task: self.tasks.get(task)?,
            office: self.offices.get(office)?,
            kind: self.kinds.get(kind)?,
            occurrence,
        })
    }

    /// Sets the value of the key made of these parts; returns the one it replaces.
    pub fn insert_parts(
        &mut self,
        task: &str,
        occurrence: NaiveDate,
        office: &str,
        kind: &str,
        value: V,
    ) -> Option<V> {
        let key = Packed {
            task: self.tasks.add(task),
            office: self.offices.add(office),
            kind: self.kinds.add(kind),
            occurrence,
        };
        self.values.insert(key, value)
    }

    pub fn insert(&mut self, key: DeliveryKey, value: V) -> Option<V> {
        self.insert_parts(&key.task, key.occurrence, &key.office, &key.kind, value)
    }

    pub fn get(&self, key: &DeliveryKey) -> Option<&V> {
        let p = self.packed(&key.task, key.occurrence, &key.office, &key.kind)?;
        self.values.get(&p)
    }

    pub fn get_mut(&mut self, key: &DeliveryKey) -> Option<&mut V> {
        let p = self.packed(&key.task, key.occurrence, &key.office, &key.kind)?;
        self.values.get_mut(&p)
    }

    /// The value of `n`'s key ([`Nudge::key`]), found without building that key.
    pub fn get_nudge(&self, n: &Nudge) -> Option<&V> {
        let task = self.tasks.get(&n.task)?;
        let office = self.offices.get(&n.office)?;
        let kind = with_code(&n.kind, |code| self.kinds.get(code))?;
        self.values.get(&Packed {
            task,
            office,
            kind,
            occurrence: n.occurrence,
        })
    }

    /// The value of the key made of these parts, added by `value` when it has none.
    pub fn entry_parts(
        &mut self,
        task: &str,
        occurrence: NaiveDate,
        office: &str,
        kind: &str,
        value: impl FnOnce() -> V,
    ) -> &mut V {
        let key = Packed {
            task: self.tasks.add(task),
            office: self.offices.add(office),
            kind: self.kinds.add(kind),
            occurrence,
        };
        match self.values.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(value()),
        }
    }

    fn key_ref(&self, p: &Packed) -> KeyRef<'_> {
        KeyRef {
            task: self.tasks.name(p.task),
            occurrence: p.occurrence,
            office: self.offices.name(p.office),
            kind: self.kinds.name(p.kind),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (KeyRef<'_>, &V)> {
        self.values.iter().map(|(p, v)| (self.key_ref(p), v))
    }

    pub fn contains_key(&self, key: &DeliveryKey) -> bool {
        self.get(key).is_some()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.values.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.values.values_mut()
    }

    /// Every key, as owned keys.
    pub fn into_keys(self) -> impl Iterator<Item = DeliveryKey> {
        let keys: Vec<DeliveryKey> = self
            .values
            .keys()
            .map(|p| self.key_ref(p).to_key())
            .collect();
        keys.into_iter()
    }
}

impl<V, S: BuildHasher + Default> std::ops::Index<&DeliveryKey> for KeyMap<V, S> {
    type Output = V;

    /// Panics when the key is absent, as a map's index does.
    fn index(&self, key: &DeliveryKey) -> &V {
        self.get(key).expect("no value for the key")
    }
}

impl<V, S: BuildHasher + Default> FromIterator<(DeliveryKey, V)> for KeyMap<V, S> {
    fn from_iter<I: IntoIterator<Item = (DeliveryKey, V)>>(iter: I) -> Self {
        let mut m = Self::default();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// Calls `f` with [`Kind::code`], written on the stack: a nudge is looked up without
/// allocating.
fn with_code<R>(kind: &Kind, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = Code::default();
    if kind.write_code(&mut buf).is_ok()
        && let Ok(s) = std::str::from_utf8(&buf.bytes[..buf.len])
    {
        return f(s);
    }
    f(&kind.code())
}

/// A short string on the stack; writing past its end is an error.
struct Code {
    bytes: [u8; 64],
    len: usize,
}

impl Default for Code {
    fn default() -> Self {
        Self {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl std::fmt::Write for Code {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let to = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        to.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::config::Offset;

    fn key(task: &str, occ: u32, office: &str, kind: &str) -> DeliveryKey {
        DeliveryKey {
            task: task.into(),
            occurrence: NaiveDate::from_ymd_opt(2024, 1, occ).unwrap(),
            office: office.into(),
            kind: kind.into(),
        }
    }

    /// Every hash the same: each lookup meets every other key's hash.
    #[derive(Clone, Default)]
    struct Colliding;

    struct Zero;

    impl std::hash::Hasher for Zero {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, _: &[u8]) {}
    }

    impl BuildHasher for Colliding {
        type Hasher = Zero;
        fn build_hasher(&self) -> Zero {
            Zero
        }
    }

    /// Keys that differ in one part only, or whose parts are swapped between fields.
    fn neighbours() -> Vec<DeliveryKey> {
        vec![
            key("a", 1, "b", "on-day"),
            key("b", 1, "a", "on-day"),
            key("a", 2, "b", "on-day"),
            key("a", 1, "c", "on-day"),
            key("ab", 1, "", "on-day"),
            key("a", 1, "bon-day", ""),
            key("a", 1, "b", "before-1d"),
            key("on-day", 1, "b", "a"),
        ]
    }

    fn keeps_keys_apart<S: BuildHasher + Default>() {
        let keys = neighbours();
        let mut m: KeyMap<usize, S> = KeyMap::default();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(m.insert(k.clone(), i), None, "{k} taken for another key");
        }
        assert_eq!(m.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(m.get(k), Some(&i), "{k}");
        }
        assert_eq!(m.get(&key("b", 1, "b", "on-day")), None);
        assert_eq!(m.get(&key("a", 3, "b", "on-day")), None);
        *m.get_mut(&keys[1]).unwrap() = 100;
        assert_eq!(m.get(&keys[0]), Some(&0));
        assert_eq!(m.insert(keys[1].clone(), 101), Some(100));
        let mut back: Vec<(DeliveryKey, usize)> = m.iter().map(|(k, v)| (k.to_key(), *v)).collect();
        back.sort_by_key(|(_, v)| *v);
        let mut want: Vec<(DeliveryKey, usize)> = keys.into_iter().zip(0..).collect();
        want[1].1 = 101;
        want.sort_by_key(|(_, v)| *v);
        assert_eq!(back, want);
    }

    #[test]
    fn different_keys_are_never_confused() {
        keeps_keys_apart::<rustc_hash::FxBuildHasher>();
    }

    #[test]
    fn keys_whose_hashes_collide_are_told_apart_by_their_strings() {
        keeps_keys_apart::<Colliding>();
    }

    #[test]
    fn a_nudge_finds_the_value_of_its_key() {
        use crate::plan::planner::tests::generated;
        let cfg = generated(40, 3);
        let cal = cfg.work_calendar(2024);
        let at = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
                .unwrap()
                .and_utc()
        };
        let plan = crate::plan::planner::plan(
            &cfg,
            &cal,
            at("2024-01-01 00:00"),
            at("2024-12-31 23:00"),
            &Default::default(),
        );
        let nudges: Vec<&Nudge> = plan.upcoming.iter().collect();
        assert!(nudges.len() > 500, "{}", nudges.len());
        // Every other nudge's key held: the rest, of the same tasks, offices and kinds,
        // are not found.
        let mut m: KeyMap<usize> = KeyMap::default();
        let mut held = std::collections::HashSet::new();
        for (i, n) in nudges.iter().enumerate().step_by(2) {
            if held.insert(n.key()) {
                m.insert(n.key(), i);
            }
        }
        for (i, n) in nudges.iter().enumerate() {
            let got = m.get_nudge(n).copied();
            assert_eq!(got, m.get(&n.key()).copied(), "{}", n.key());
            assert_eq!(got.is_some(), held.contains(&n.key()), "{i}: {}", n.key());
        }
    }

    #[test]
    fn a_code_too_long_for_the_stack_is_still_looked_up() {
        let kind = Kind::LeadershipAgain(Offset::working(u32::MAX));
        assert_eq!(with_code(&kind, str::to_string), kind.code());
        let mut short = Code::default();
        let long = "x".repeat(65);
        assert!(std::fmt::Write::write_str(&mut short, &long).is_err());
        assert_eq!(with_code(&Kind::OnDay, str::len), "on-day".len());
    }
}
