//! Decoding of the launch configuration: `network` blocks and, inside a
//! worker type, `root_volume`, `volume "DEVICE"`, `spot` and `metadata`.
//! What can be judged only against the rest of the model (zones of fleet
//! regions, EBS ranges, device names, coverage of regions) is checked later,
//! in `checks::launch`, from the origins recorded here.

use super::fields::{span_of, want, Decl, Fields};
use super::scope::Scope;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{HttpTokens, Metadata, Network, Origin, Spot, Volume, VolumeType};
use crate::source::{FileId, SourceRef};
use hcl_edit::structure::Block;
use hcl_edit::Span;
use std::collections::BTreeMap;

/// `prefix-` followed by 8 or 17 lowercase hex digits: EC2's resource ids.
fn is_resource_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

/// A `network "NAME" { subnets security_groups exclude assign_public_ip }` block.
pub(super) fn decode_network(
    name: String,
    decl: Decl<'_>,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<Network> {
    let what = format!("network \"{name}\"");
    let f = Fields::read(
        decl.file,
        &decl.block.body,
        &what,
        &["subnets", "security_groups", "exclude", "assign_public_ip"],
        &[],
        diags,
    );
    let mut origin = Origin {
        block: decl.header(),
        ..Origin::default()
    };
    f.record(&mut origin, "");
    let errors_before = diags.error_count();
    let entry_spans = |attr: &str| {
        f.get(attr)
            .map(|a| super::decode::object_value_spans(decl.file, &a.value))
            .unwrap_or_default()
    };

    let subnets = f
        .required(scope, "subnets", decl.header(), diags)
        .and_then(|(v, at)| {
            let subnets = want::string_map(&v, &at, "network.subnets", diags)?;
            let spans = entry_spans("subnets");
            for (zone, id) in &subnets {
                let item_at = spans.get(zone).cloned().or_else(|| at.clone());
                if let Some(item) = &item_at {
                    origin
                        .attributes
                        .insert(format!("subnets.{zone}"), item.clone());
                }
                if !is_resource_id(id, "subnet") {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("{what}: `{id}` (zone {zone}) is not a subnet id"),
                        )
                        .at(item_at, "expected subnet- and 8 or 17 hex digits")
                        .help("subnet ids look like `subnet-0123456789abcdef0`"),
                    );
                }
            }
            Some(subnets)
        });

    let security_groups = f
        .required(scope, "security_groups", decl.header(), diags)
        .and_then(|(v, at)| {
            let groups = want::string_list_map(&v, &at, "network.security_groups", diags)?;
            let spans = entry_spans("security_groups");
            for (region, ids) in &groups {
                let item_at = spans.get(region).cloned().or_else(|| at.clone());
                if let Some(item) = &item_at {
                    origin
                        .attributes
                        .insert(format!("security_groups.{region}"), item.clone());
                }
                if !super::decode::is_region_name(region) {
                    diags.push(
                        Diagnostic::error(
                            Code::Region,
                            format!("`{region}` in {what} security_groups is not an AWS region name"),
                        )
                        .at(item_at.clone(), "key is not a region")
                        .help("keys of `security_groups` are regions, e.g. `\"us-east-1\" = [\"sg-...\"]`"),
                    );
                }
                if ids.is_empty() {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("{what}: no security group for {region}"),
                        )
                        .at(item_at.clone(), "empty list")
                        .help("name at least one group; without any, EC2 would use the VPC's default group"),
                    );
                }
                for id in ids.iter().filter(|id| !is_resource_id(id, "sg")) {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("{what}: `{id}` ({region}) is not a security group id"),
                        )
                        .at(item_at.clone(), "expected sg- and 8 or 17 hex digits")
                        .help("security group ids look like `sg-0123456789abcdef0` (names are not accepted)"),
                    );
                }
            }
            Some(groups)
        });

    let exclude = match f.value(scope, "exclude", diags) {
        None => Some(BTreeMap::new()),
        Some((v, at)) => want::string_list_map(&v, &at, "network.exclude", diags).inspect(|ex| {
            let spans = entry_spans("exclude");
            for (zone, names) in ex {
                let item_at = spans.get(zone).cloned().or_else(|| at.clone());
                if let Some(item) = &item_at {
                    origin
                        .attributes
                        .insert(format!("exclude.{zone}"), item.clone());
                }
                for bad in names.iter().filter(|n| !is_type_or_family(n)) {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("{what}: `{bad}` in exclude of {zone} is neither an instance type nor a family"),
                        )
                        .at(item_at.clone(), "expected e.g. \"r5ad\" or \"m5dn.large\"")
                        .help("exclude names instance families (`r5ad`) or instance types (`m5dn.large`)"),
                    );
                }
            }
        }),
    };
    let assign_public_ip = f
        .value(scope, "assign_public_ip", diags)
        .and_then(|(v, at)| want::boolean(&v, &at, "network.assign_public_ip", diags));
    if diags.error_count() > errors_before {
        // Left out, so the worker types using it are not reported again for
        // regions it seems not to cover.
        return None;
    }
    Some(Network {
        name,
        subnets: subnets?,
        security_groups: security_groups?,
        exclude: exclude?,
        assign_public_ip,
        origin,
    })
}

/// `m5dn.large` (an instance type) or `r5ad` (a family).
fn is_type_or_family(name: &str) -> bool {
    if name.contains('.') {
        crate::catalog::InstanceTypeInfo::parse(name).is_some()
    } else {
        name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }
}

/// Span of `kind "label"` of a nested block (or of its ident when it has no label).
pub(super) fn block_header(file: FileId, block: &Block) -> Option<SourceRef> {
    let start = block.ident.span()?.start;
    let end = block
        .labels
        .last()
        .and_then(Span::span)
        .or_else(|| block.ident.span())?
        .end;
    Some(SourceRef {
        file,
        span: start..end,
    })
}

/// A `root_volume {}` or `volume "DEVICE" {}` body; its spans go into
/// `origin` under `prefix` (`root_volume`, `volume./dev/xvdb`, ...).
pub(super) fn decode_volume(
    file: FileId,
    block: &Block,
    prefix: &str,
    scope: &Scope,
    origin: &mut Origin,
    diags: &mut Diagnostics,
) -> Option<Volume> {
    let what = prefix.to_string();
    let v = Fields::read(
        file,
        &block.body,
        &format!("`{what}`"),
        &["size_gb", "type", "iops", "throughput", "encrypted"],
        &[],
        diags,
    )
    .in_worker_type();
    if let Some(at) = block_header(file, block) {
        origin.attributes.insert(prefix.to_string(), at);
    }
    v.record(origin, &format!("{prefix}."));
    let header = block_header(file, block);
    let size_gb = v
        .required(scope, "size_gb", header.clone(), diags)
        .and_then(|(value, at)| want::count(&value, &at, &format!("{what}.size_gb"), diags));
    let choices: Vec<(&str, VolumeType)> =
        VolumeType::ALL.iter().map(|t| (t.as_str(), *t)).collect();
    let volume_type = v
        .required(scope, "type", header, diags)
        .and_then(|(value, at)| {
            want::one_of(&value, &at, &format!("{what}.type"), &choices, diags)
        });
    let iops = v
        .value(scope, "iops", diags)
        .and_then(|(value, at)| want::count(&value, &at, &format!("{what}.iops"), diags));
    let throughput = v
        .value(scope, "throughput", diags)
        .and_then(|(value, at)| want::count(&value, &at, &format!("{what}.throughput"), diags));
    let encrypted = v
        .value(scope, "encrypted", diags)
        .and_then(|(value, at)| want::boolean(&value, &at, &format!("{what}.encrypted"), diags));
    // An optional attribute that is set but failed leaves the volume out,
    // rather than quietly meaning the default.
    let failed = |name: &str, decoded: bool| v.get(name).is_some() && !decoded;
    if failed("iops", iops.is_some())
        || failed("throughput", throughput.is_some())
        || failed("encrypted", encrypted.is_some())
    {
        return None;
    }
    Some(Volume {
        size_gb: size_gb?,
        volume_type: volume_type?,
        iops,
        throughput,
        encrypted,
    })
}

/// The `spot { max_price }` block; `max_price` is kept as written (`0.68`).
pub(super) fn decode_spot(
    file: FileId,
    block: &Block,
    scope: &Scope,
    origin: &mut Origin,
    diags: &mut Diagnostics,
) -> Option<Spot> {
    let s = Fields::read(file, &block.body, "spot", &["max_price"], &[], diags).in_worker_type();
    if let Some(at) = span_of(file, &block.ident) {
        origin.attributes.insert("spot".into(), at);
    }
    s.record(origin, "spot.");
    let Some((value, at)) = s.value(scope, "max_price", diags) else {
        return if s.get("max_price").is_some() {
            None
        } else {
            Some(Spot::default())
        };
    };
    let price = want::number(&value, &at, "spot.max_price", diags)?;
    if !(price.is_finite() && price > 0.0) {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("`spot.max_price` must be above 0, got {price}"),
            )
            .at(at, "not a positive price")
            .help("give the most to pay per instance-hour in USD, e.g. `max_price = 0.68`, or leave it out to pay up to the on-demand price"),
        );
        return None;
    }
    // As written: the literal's own text (`0.680` stays `0.680`), else the
    // text of a numeric string, else a computed number's shortest form
    // (0.68, never 0.68000000000000005).
    let literal = s.get("max_price").and_then(|attr| match &attr.value {
        hcl_edit::expr::Expression::Number(n) => n.as_repr().map(|r| r.trim().to_string()),
        _ => None,
    });
    let text = match (&value, literal) {
        (_, Some(text)) if !text.is_empty() => text,
        (hcl::Value::String(s), _) => s.trim().to_string(),
        _ => price.to_string(),
    };
    Some(Spot {
        max_price: Some(text),
    })
}

/// The `metadata { http_tokens hop_limit }` block.
pub(super) fn decode_metadata(
    file: FileId,
    block: &Block,
    scope: &Scope,
    origin: &mut Origin,
    diags: &mut Diagnostics,
) -> Option<Metadata> {
    let m = Fields::read(
        file,
        &block.body,
        "metadata",
        &["http_tokens", "hop_limit"],
        &[],
        diags,
    )
    .in_worker_type();
    if let Some(at) = span_of(file, &block.ident) {
        origin.attributes.insert("metadata".into(), at);
    }
    m.record(origin, "metadata.");
    let defaults = Metadata::default();
    let http_tokens = match m.value(scope, "http_tokens", diags) {
        Some((value, at)) => want::one_of(
            &value,
            &at,
            "metadata.http_tokens",
            &[
                (HttpTokens::Required.as_str(), HttpTokens::Required),
                (HttpTokens::Optional.as_str(), HttpTokens::Optional),
            ],
            diags,
        ),
        None if m.get("http_tokens").is_some() => None,
        None => Some(defaults.http_tokens),
    };
    let hop_limit = match m.value(scope, "hop_limit", diags) {
        Some((value, at)) => match want::integer(&value, &at, "metadata.hop_limit", diags) {
            Some(n) if (1..=64).contains(&n) => u8::try_from(n).ok(),
            Some(n) => {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!("`metadata.hop_limit` must be between 1 and 64, got {n}"),
                    )
                    .at(at, "out of range")
                    .help("1 keeps metadata on the instance (the default); containers need 2"),
                );
                None
            }
            None => None,
        },
        None if m.get("hop_limit").is_some() => None,
        None => Some(defaults.hop_limit),
    };
    Some(Metadata {
        http_tokens: http_tokens?,
        hop_limit: hop_limit?,
    })
}

/// `volume "DEVICE"` blocks of one body: by device, each HCL duplicate reported.
pub(super) fn decode_volumes<'a>(
    file: FileId,
    blocks: impl Iterator<Item = &'a Block>,
    prefix: &str,
    scope: &Scope,
    origin: &mut Origin,
    diags: &mut Diagnostics,
) -> BTreeMap<String, Volume> {
    let mut volumes = BTreeMap::new();
    let mut seen: Vec<String> = Vec::new();
    for block in blocks {
        let header = block_header(file, block);
        let device = match block.labels.as_slice() {
            [label] => label.as_str().to_string(),
            _ => {
                diags.push(
                    Diagnostic::error(Code::Missing, "`volume` needs exactly one device name")
                        .at(header, "volume block")
                        .help("write `volume \"/dev/xvdb\" { size_gb = 100  type = \"gp3\" }`, each attribute on its own line"),
                );
                continue;
            }
        };
        if seen.contains(&device) {
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    format!("volume `{device}` is declared twice"),
                )
                .at(header, "declared again here")
                .help("declare each device once; merge the two blocks"),
            );
            continue;
        }
        seen.push(device.clone());
        let key = format!("{prefix}volume.{device}");
        if let Some(volume) = decode_volume(file, block, &key, scope, origin, diags) {
            volumes.insert(device, volume);
        }
    }
    volumes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_have_the_ec2_shape() {
        assert!(is_resource_id("subnet-0123456789abcdef0", "subnet"));
        assert!(is_resource_id("sg-12345678", "sg"));
        assert!(!is_resource_id("sg-12345678", "subnet"));
        assert!(!is_resource_id("subnet-XYZ", "subnet"));
        assert!(!is_resource_id("subnet0123456789abcdef0", "subnet"));
    }

    #[test]
    fn exclude_names_types_or_families() {
        assert!(is_type_or_family("r5ad"));
        assert!(is_type_or_family("m5dn.large"));
        assert!(!is_type_or_family("m5dn."));
        assert!(!is_type_or_family("R5AD"));
        assert!(!is_type_or_family(""));
    }
}
