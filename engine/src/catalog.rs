//! What fleetform knows about EC2 instance types without asking EC2:
//! which families take paravirtual or arm64 images (FF003), and a price table
//! for the budget check (FF007), shipped in `engine/data/prices.tsv`.

use crate::model::{Architecture, Virtualization};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Families that still boot paravirtual images; every current family is HVM-only.
/// From the EC2 user guide, "Linux AMI virtualization types".
const PV_FAMILIES: &[&str] = &["c1", "c3", "hs1", "m1", "m2", "m3", "t1"];

/// An instance type name split into what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeInfo {
    /// The family, e.g. `c5` of `c5.metal`, `m6gd` of `m6gd.large`.
    pub family: String,
    /// True for Graviton (arm64) families: `a1` and families whose suffix has `g` (m6g, c7gn, t4g...).
    pub graviton: bool,
    /// True for the previous-generation families that boot paravirtual images.
    pub paravirtual: bool,
}

impl InstanceTypeInfo {
    /// Splits `family.size`; `None` when the name is not of that shape.
    pub fn parse(name: &str) -> Option<InstanceTypeInfo> {
        let (family, size) = name.split_once('.')?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        if !valid(family) || !valid(size) || !family.starts_with(|c: char| c.is_ascii_lowercase()) {
            return None;
        }
        // The letters after the generation digit are the attributes: `g` there means Graviton
        // (m6g, c7gn, x2gd, is4gen), while a leading `g` is the GPU series (g4dn).
        let attributes = family
            .find(|c: char| c.is_ascii_digit())
            .map(|at| family[at..].trim_start_matches(|c: char| c.is_ascii_digit()))
            .unwrap_or("");
        Some(InstanceTypeInfo {
            family: family.to_string(),
            graviton: family == "a1" || attributes.contains('g'),
            paravirtual: PV_FAMILIES.contains(&family),
        })
    }

    /// The architecture this family runs.
    pub fn architecture(&self) -> Architecture {
        if self.graviton {
            Architecture::Arm64
        } else {
            Architecture::X86_64
        }
    }

    /// Whether an image of this virtualization boots here.
    pub fn supports(&self, virtualization: Virtualization) -> bool {
        match virtualization {
            Virtualization::Hvm => true,
            Virtualization::Pv => self.paravirtual,
        }
    }
}

/// On-demand price in USD per hour, if the shipped table has the type.
pub fn hourly_price(instance_type: &str) -> Option<f64> {
    static TABLE: OnceLock<HashMap<&'static str, f64>> = OnceLock::new();
    TABLE
        .get_or_init(|| parse_price_table(include_str!("../data/prices.tsv")))
        .get(instance_type)
        .copied()
}

fn parse_price_table(text: &'static str) -> HashMap<&'static str, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (name, price) = line.split_once('\t')?;
            Some((name.trim(), price.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> InstanceTypeInfo {
        InstanceTypeInfo::parse(name).unwrap_or_else(|| panic!("{name} should parse"))
    }

    #[test]
    fn graviton_families_are_arm64() {
        for name in [
            "m6g.large",
            "c7gn.xlarge",
            "t4g.micro",
            "x2gd.large",
            "a1.large",
            "is4gen.large",
        ] {
            assert_eq!(info(name).architecture(), Architecture::Arm64, "{name}");
        }
        for name in [
            "m5.large",
            "g4dn.xlarge",
            "c5.metal",
            "m1.small",
            "c6i.large",
        ] {
            assert_eq!(info(name).architecture(), Architecture::X86_64, "{name}");
        }
    }

    #[test]
    fn only_previous_generation_families_take_pv() {
        assert!(info("m3.large").supports(Virtualization::Pv));
        assert!(!info("m5.large").supports(Virtualization::Pv));
        assert!(info("m5.large").supports(Virtualization::Hvm));
    }

    #[test]
    fn malformed_names_do_not_parse() {
        for name in [
            "",
            "m5",
            ".large",
            "m5.",
            "M5.large",
            "m5 .large",
            "5m.large",
        ] {
            assert_eq!(InstanceTypeInfo::parse(name), None, "{name:?}");
        }
    }

    #[test]
    fn every_price_row_parses() {
        let text = include_str!("../data/prices.tsv");
        let rows = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(parse_price_table(text).len(), rows);
        assert_eq!(hourly_price("c5.metal"), Some(4.08));
        assert_eq!(hourly_price("nope.large"), None);
    }
}
