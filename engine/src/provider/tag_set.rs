//! [`Tags`]: the tags of one EC2 object.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// The tags of one EC2 object: keys in order, each once, as a
/// `BTreeMap<String, String>` of them would hold them, in one vector. An
/// observation holds a set per launch template and per instance (three
/// per template), and a map per set was most of its memory; sets are a
/// few entries, so a lookup's binary search is as quick as the map's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tags(Vec<(String, String)>);

/// The entries of a [`Tags`], by reference, in key order.
pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (String, String)>,
    fn(&(String, String)) -> (&String, &String),
>;

impl Tags {
    /// No tags.
    pub fn new() -> Tags {
        Tags(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`, if it is set.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Unsets `key`; the value it had, if any.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(_, v)| v)
    }

    /// How many tags are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Unsets every tag.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Keeps the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut String) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }
}

impl std::ops::Index<&str> for Tags {
    type Output = String;
    /// The value of `key`, which must be set (as a map's index).
    fn index(&self, key: &str) -> &String {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no tag `{key}`"),
        }
    }
}

impl FromIterator<(String, String)> for Tags {
    /// A key given twice keeps its last value, as a map's `collect` does.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Tags {
        let mut all: Vec<(String, String)> = entries.into_iter().collect();
        // Stable: of equal keys, the last one given is the last one here.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(all.len());
        for entry in all {
            match out.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => out.push(entry),
            }
        }
        out.shrink_to_fit();
        Tags(out)
    }
}

impl Extend<(String, String)> for Tags {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, entries: I) {
        for (k, v) in entries {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for Tags {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Tags {
    type Item = (&'a String, &'a String);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl From<BTreeMap<String, String>> for Tags {
    fn from(map: BTreeMap<String, String>) -> Tags {
        // A map's entries are in order already.
        Tags(map.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for Tags {
    fn from(entries: [(String, String); N]) -> Tags {
        entries.into_iter().collect()
    }
}

impl From<Tags> for BTreeMap<String, String> {
    fn from(tags: Tags) -> BTreeMap<String, String> {
        tags.0.into_iter().collect()
    }
}

impl Serialize for Tags {
    /// As a map, as the `BTreeMap` it replaces was: plans and recorded
    /// observations read the same.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tags, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Tags::from)
    }
}

impl schemars::JsonSchema for Tags {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        BTreeMap::<String, String>::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        BTreeMap::<String, String>::json_schema(generator)
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
    fn tags_behave_as_the_map_they_replace() {
        let given = pairs(&[("b", "1"), ("a", "2"), ("b", "3"), ("c", "4")]);
        let tags: Tags = given.clone().into_iter().collect();
        let map: BTreeMap<String, String> = given.into_iter().collect();
        assert_eq!(BTreeMap::from(tags.clone()), map);
        assert_eq!(tags.get("b").map(String::as_str), Some("3"));
        assert!(tags.get("z").is_none() && !tags.contains_key("z"));
        let mut tags = tags;
        assert_eq!(tags.insert("a".into(), "5".into()).as_deref(), Some("2"));
        assert_eq!(tags.insert("0".into(), "6".into()), None);
        assert_eq!(tags.remove("c").as_deref(), Some("4"));
        let keys: Vec<&str> = tags.keys().map(String::as_str).collect();
        assert_eq!(keys, ["0", "a", "b"]);
        assert_eq!(
            serde_json::to_string(&tags).expect("json"),
            r#"{"0":"6","a":"5","b":"3"}"#
        );
        let back: Tags = serde_json::from_str(r#"{"b":"3","0":"6","a":"5"}"#).expect("json");
        assert_eq!(back, tags);
    }
}
