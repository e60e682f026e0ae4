//! What EC2 accepts for each EBS volume type: sizes, IOPS, throughput, and
//! whether it may be a root (boot) volume. The static checks hold `volume`
//! and `root_volume` blocks against it, so a volume EC2 would refuse at apply
//! is an error at validate.
//!
//! Source: the Amazon EBS User Guide, "Amazon EBS volume types" and its pages
//! "General Purpose SSD volumes", "Provisioned IOPS SSD volumes" and
//! "Throughput Optimized HDD and Cold HDD volumes" (with the EC2 API
//! reference's `EbsBlockDevice` for which types take IOPS and throughput),
//! read 2026-12-01. The same table is in README.md; change both together.

use crate::model::VolumeType;
use std::ops::RangeInclusive;

/// The limits of one volume type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeLimits {
    /// Sizes a volume may have, in GiB.
    pub size_gib: RangeInclusive<u32>,
    /// Provisioned IOPS a volume may have; `None`: the type takes no `iops`.
    pub iops: Option<RangeInclusive<u32>>,
    /// Most provisioned IOPS per GiB of size; `None`: no such ratio.
    pub max_iops_per_gib: Option<u32>,
    /// Whether `iops` must be given.
    pub iops_required: bool,
    /// Provisioned throughput in MiB/s; `None`: the type takes no `throughput`.
    pub throughput: Option<RangeInclusive<u32>>,
    /// IOPS needed per MiB/s of provisioned throughput (gp3: 0.25 MiB/s per
    /// IOPS, so 4 IOPS per MiB/s); `None`: no such ratio.
    pub iops_per_throughput: Option<u32>,
    /// IOPS a volume has when `iops` is not given (gp3's baseline).
    pub default_iops: Option<u32>,
    /// Whether the type may be a root (boot) volume.
    pub boot: bool,
}

/// 16 TiB in GiB: the largest size of most types.
const TIB_16: u32 = 16 * 1024;

/// The table, in the order of [`VolumeType::ALL`] (a test holds it to that).
const TABLE: [(VolumeType, VolumeLimits); 7] = [
    (
        VolumeType::Gp2,
        VolumeLimits {
            size_gib: 1..=TIB_16,
            iops: None,
            max_iops_per_gib: None,
            iops_required: false,
            throughput: None,
            iops_per_throughput: None,
            default_iops: None,
            boot: true,
        },
    ),
    (
        VolumeType::Gp3,
        VolumeLimits {
            size_gib: 1..=TIB_16,
            iops: Some(3_000..=16_000),
            max_iops_per_gib: Some(500),
            iops_required: false,
            throughput: Some(125..=1_000),
            iops_per_throughput: Some(4),
            default_iops: Some(3_000),
            boot: true,
        },
    ),
    (
        VolumeType::Io1,
        VolumeLimits {
            size_gib: 4..=TIB_16,
            iops: Some(100..=64_000),
            max_iops_per_gib: Some(50),
            iops_required: true,
            throughput: None,
            iops_per_throughput: None,
            default_iops: None,
            boot: true,
        },
    ),
    (
        VolumeType::Io2,
        VolumeLimits {
            // io2 volumes are Block Express volumes.
            size_gib: 4..=64 * 1024,
            iops: Some(100..=256_000),
            max_iops_per_gib: Some(1_000),
            iops_required: true,
            throughput: None,
            iops_per_throughput: None,
            default_iops: None,
            boot: true,
        },
    ),
    (
        VolumeType::St1,
        VolumeLimits {
            size_gib: 125..=TIB_16,
            iops: None,
            max_iops_per_gib: None,
            iops_required: false,
            throughput: None,
            iops_per_throughput: None,
            default_iops: None,
            boot: false,
        },
    ),
    (
        VolumeType::Sc1,
        VolumeLimits {
            size_gib: 125..=TIB_16,
            iops: None,
            max_iops_per_gib: None,
            iops_required: false,
            throughput: None,
            iops_per_throughput: None,
            default_iops: None,
            boot: false,
        },
    ),
    (
        VolumeType::Standard,
        VolumeLimits {
            size_gib: 1..=1_024,
            iops: None,
            max_iops_per_gib: None,
            iops_required: false,
            throughput: None,
            iops_per_throughput: None,
            default_iops: None,
            boot: true,
        },
    ),
];

/// The limits of `volume_type`.
pub fn limits(volume_type: VolumeType) -> &'static VolumeLimits {
    // The table is in the enum's order, so the discriminant is the index.
    &TABLE[volume_type as usize].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_order_of_the_enum() {
        for (i, t) in VolumeType::ALL.into_iter().enumerate() {
            assert_eq!(TABLE[i].0, t);
            assert_eq!(t as usize, i);
        }
    }

    #[test]
    fn the_documented_facts() {
        assert_eq!(limits(VolumeType::Gp3).iops, Some(3_000..=16_000));
        assert_eq!(limits(VolumeType::Io2).size_gib, 4..=65_536);
        assert!(limits(VolumeType::Io1).iops_required);
        assert!(!limits(VolumeType::St1).boot && !limits(VolumeType::Sc1).boot);
        assert_eq!(limits(VolumeType::Gp2).throughput, None);
    }
}
