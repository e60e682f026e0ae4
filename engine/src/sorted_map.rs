//! [`SortedMap`]: a small map from names to values, in one vector.

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Values by name: names in order, each once, as a `BTreeMap<String, V>`
/// would hold them, in one sorted vector. Sets of tags
/// ([`crate::provider::Tags`]) and of attribute locations
/// ([`crate::model::Spans`]) are a few entries each and there is one per
/// object of a fleet, where a map per set was most of an observation's
/// memory and a third of a model's; at that size a binary search is as
/// quick as the map's lookup. Names are held inline when short (most
/// tag keys are), not each in an allocation of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SortedMap<V>(Vec<(CompactString, V)>);

/// The entries of a [`SortedMap`], by reference, in name order.
pub type Iter<'a, V> =
    std::iter::Map<std::slice::Iter<'a, (CompactString, V)>, fn(&(CompactString, V)) -> (&str, &V)>;

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap(Vec::new())
    }
}

impl<V> SortedMap<V> {
    /// No entries.
    pub fn new() -> Self {
        SortedMap(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`, if it is set.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (CompactString::from(key), value));
                None
            }
        }
    }

    /// Unsets `key`; the value it had, if any.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_, V> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Keeps the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }
}

impl<V> std::ops::Index<&str> for SortedMap<V> {
    type Output = V;
    /// The value of `key`, which must be set (as a map's index).
    fn index(&self, key: &str) -> &V {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no entry `{key}`"),
        }
    }
}

impl<V, W: Into<V>> FromIterator<(String, W)> for SortedMap<V> {
    /// A key given twice keeps its last value, as a map's `collect` does.
    fn from_iter<I: IntoIterator<Item = (String, W)>>(entries: I) -> Self {
        let mut all: Vec<(CompactString, V)> = entries
            .into_iter()
            .map(|(k, v)| (CompactString::from(k), v.into()))
            .collect();
        // Stable: of equal keys, the last one given is the last one here.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(CompactString, V)> = Vec::with_capacity(all.len());
        for entry in all {
            match out.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => out.push(entry),
            }
        }
        out.shrink_to_fit();
        SortedMap(out)
    }
}

impl<V, W: Into<V>> Extend<(String, W)> for SortedMap<V> {
    fn extend<I: IntoIterator<Item = (String, W)>>(&mut self, entries: I) {
        for (k, v) in entries {
            self.insert(k, v.into());
        }
    }
}

impl<V> IntoIterator for SortedMap<V> {
    type Item = (String, V);
    type IntoIter = std::iter::Map<
        std::vec::IntoIter<(CompactString, V)>,
        fn((CompactString, V)) -> (String, V),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().map(|(k, v)| (k.into_string(), v))
    }
}

impl<'a, V> IntoIterator for &'a SortedMap<V> {
    type Item = (&'a str, &'a V);
    type IntoIter = Iter<'a, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<V, W: Into<V>> From<BTreeMap<String, W>> for SortedMap<V> {
    fn from(map: BTreeMap<String, W>) -> Self {
        // A map's entries are in order already.
        SortedMap(
            map.into_iter()
                .map(|(k, v)| (CompactString::from(k), v.into()))
                .collect(),
        )
    }
}

impl<V, W: Into<V>, const N: usize> From<[(String, W); N]> for SortedMap<V> {
    fn from(entries: [(String, W); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<V: Into<W>, W> From<SortedMap<V>> for BTreeMap<String, W> {
    fn from(map: SortedMap<V>) -> BTreeMap<String, W> {
        map.into_iter().map(|(k, v)| (k, v.into())).collect()
    }
}

impl<V: Serialize> Serialize for SortedMap<V> {
    /// As a map, as the `BTreeMap` it replaces was: plans and recorded
    /// observations read the same.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SortedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, V>::deserialize(deserializer).map(SortedMap::from)
    }
}

impl<V: schemars::JsonSchema> schemars::JsonSchema for SortedMap<V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        BTreeMap::<String, V>::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        BTreeMap::<String, V>::json_schema(generator)
    }
}

/// A short text held inline when it fits (24 bytes), as a tag's value:
/// a string everywhere else (it derefs to `str`, serializes as one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(CompactString);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text(CompactString::from(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text(CompactString::from(text))
    }
}

impl From<&String> for Text {
    fn from(text: &String) -> Text {
        Text(CompactString::from(text.as_str()))
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.0.into_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.0.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.0.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.0.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.0.as_str()
    }
}

impl schemars::JsonSchema for Text {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_sorted_map_behaves_as_the_map_it_replaces() {
        let given = pairs(&[("b", "1"), ("a", "2"), ("b", "3"), ("c", "4")]);
        let tags: SortedMap<String> = given.clone().into_iter().collect();
        let map: BTreeMap<String, String> = given.into_iter().collect();
        assert_eq!(BTreeMap::from(tags.clone()), map);
        assert_eq!(tags.get("b").map(String::as_str), Some("3"));
        assert!(tags.get("z").is_none() && !tags.contains_key("z"));
        let mut tags = tags;
        assert_eq!(tags.insert("a".into(), "5".into()).as_deref(), Some("2"));
        assert_eq!(tags.insert("0".into(), "6".into()), None);
        assert_eq!(tags.remove("c").as_deref(), Some("4"));
        let keys: Vec<&str> = tags.keys().collect();
        assert_eq!(keys, ["0", "a", "b"]);
        assert_eq!(
            serde_json::to_string(&tags).expect("json"),
            r#"{"0":"6","a":"5","b":"3"}"#
        );
        let back: SortedMap<String> =
            serde_json::from_str(r#"{"b":"3","0":"6","a":"5"}"#).expect("json");
        assert_eq!(back, tags);
    }
}
