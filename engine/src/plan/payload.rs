//! What an action carries out, as one typed value per kind of action: the
//! fields a call needs, present and of the right shape. [`Action`] keeps
//! the flat form plans are written in (its JSON is the plan format); an
//! action whose fields do not make a payload (a plan file edited by hand,
//! or written by something else) is refused when the plan is read, before
//! anything changes, instead of failing half way through an apply.

use super::{Action, ActionKind, LaunchPlacement, PlannedGroup, Reason, Resource};
use crate::provider::LaunchTemplateData;
use std::collections::BTreeMap;

/// The typed content of one action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload<'a> {
    /// Record objects that exist (no cloud call).
    Adopt {
        /// Their ids.
        ids: &'a [String],
    },
    /// Import a key pair (after deleting the old one, for a replacement).
    ImportKeyPair {
        /// EC2 name.
        name: &'a str,
        /// OpenSSH public key.
        public_key: &'a str,
        /// Whether the key pair of that name is deleted first.
        replace: bool,
        /// Tags at creation.
        tags: &'a BTreeMap<String, String>,
    },
    /// Delete a key pair.
    DeleteKeyPair {
        /// EC2 name.
        name: &'a str,
    },
    /// Copy an image into the region and wait for it (or wait for a copy under way).
    CopyImage {
        /// The copy already under way, if one was found.
        under_way: Option<&'a str>,
        /// Region of the source image.
        source_region: &'a str,
        /// The source image.
        source_image: &'a str,
        /// Name of the copy.
        name: &'a str,
        /// Tags at creation.
        tags: &'a BTreeMap<String, String>,
    },
    /// Deregister an image and delete its snapshots.
    DeregisterImage {
        /// The image.
        image_id: &'a str,
        /// Its snapshots.
        snapshot_ids: &'a [String],
    },
    /// Create a launch template (after deleting the old one, for a replacement).
    CreateTemplate {
        /// EC2 name.
        name: &'a str,
        /// What its first version launches (user data may be withheld).
        data: &'a LaunchTemplateData,
        /// Tags at creation.
        tags: &'a BTreeMap<String, String>,
    },
    /// Make a new default version of a launch template.
    UpdateTemplate {
        /// The template.
        template_id: &'a str,
        /// What the new version launches (user data may be withheld).
        data: &'a LaunchTemplateData,
    },
    /// Delete a launch template.
    DeleteTemplate {
        /// The template.
        template_id: &'a str,
    },
    /// Launch instances.
    Launch {
        /// The template, when it exists before the apply (else the one the
        /// apply creates is used).
        template_id: Option<&'a str>,
        /// How many.
        count: u32,
        /// Where: one instance type anywhere, or a split over zones.
        target: LaunchTarget<'a>,
        /// Tags at launch.
        tags: &'a BTreeMap<String, String>,
    },
    /// Terminate instances.
    Terminate {
        /// Their ids.
        ids: &'a [String],
    },
    /// Create an Auto Scaling group.
    CreateGroup {
        /// The group.
        group: &'a PlannedGroup,
    },
    /// Update an Auto Scaling group to `group`.
    UpdateGroup {
        /// The group as it should be.
        group: &'a PlannedGroup,
    },
    /// Delete an Auto Scaling group and its instances.
    DeleteGroup {
        /// Group name.
        name: &'a str,
    },
    /// Start an instance refresh.
    Refresh {
        /// Group name.
        name: &'a str,
        /// The share of capacity kept in service.
        min_healthy_percentage: u8,
    },
    /// Attach running instances to a group.
    Attach {
        /// Group name.
        name: &'a str,
        /// Instance ids.
        ids: &'a [String],
    },
    /// Detach instances from a group.
    Detach {
        /// Group name.
        name: &'a str,
        /// Instance ids.
        ids: &'a [String],
    },
    /// Tag objects made by hand with fleetform's tags (import).
    Tag {
        /// Their ids.
        ids: &'a [String],
        /// The tags.
        tags: &'a BTreeMap<String, String>,
    },
    /// Make a new default version of a template made by hand that is its
    /// default version with only fleetform's tag specifications added (import).
    TagTemplate {
        /// The template.
        template_id: &'a str,
        /// The version it is made from (the default version when planned).
        source_version: i64,
        /// Its tag specifications: instance and volume tags.
        data: &'a LaunchTemplateData,
    },
}

/// Where a launch goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LaunchTarget<'a> {
    /// One instance type; EC2 picks the zone.
    Type(&'a str),
    /// A split over (zone, instance type) pairs with its fall-through order.
    Placed(&'a LaunchPlacement),
}

/// An action whose fields do not make its payload: what is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {resource} action at {address} in {region} has no {missing}")]
pub struct Malformed {
    /// The action's address.
    pub address: String,
    /// Its region.
    pub region: String,
    /// Its kind, as plans write it.
    pub kind: String,
    /// What it acts on, as plans write it.
    pub resource: String,
    /// The field it lacks.
    pub missing: &'static str,
}

impl Action {
    /// The typed content of this action, or what it lacks.
    pub fn payload(&self) -> Result<Payload<'_>, Malformed> {
        let lacks = |missing: &'static str| Malformed {
            address: self.address.clone(),
            region: self.region.clone(),
            kind: serde_json::to_value(self.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            resource: serde_json::to_value(self.resource)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            missing,
        };
        let name = || self.name.as_deref().ok_or_else(|| lacks("EC2 name"));
        let first_id = |what: &'static str| {
            self.ids
                .first()
                .map(String::as_str)
                .ok_or_else(|| lacks(what))
        };
        let group = || {
            self.auto_scaling_group
                .as_ref()
                .ok_or_else(|| lacks("Auto Scaling group"))
        };
        Ok(match (self.resource, self.action) {
            (_, ActionKind::Adopt) if self.reason == Reason::Import => {
                if self.ids.is_empty() {
                    return Err(lacks("ids to tag"));
                }
                if self.tags.is_empty() {
                    return Err(lacks("tags"));
                }
                Payload::Tag {
                    ids: &self.ids,
                    tags: &self.tags,
                }
            }
            (_, ActionKind::Adopt) => Payload::Adopt { ids: &self.ids },
            (Resource::LaunchTemplate, ActionKind::Update) if self.reason == Reason::Import => {
                Payload::TagTemplate {
                    template_id: first_id("template id")?,
                    source_version: self
                        .ids
                        .get(1)
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| lacks("source version"))?,
                    data: self
                        .launch_template
                        .as_ref()
                        .ok_or_else(|| lacks("launch template data"))?,
                }
            }
            (_, ActionKind::Attach) => Payload::Attach {
                name: &group()?.name,
                ids: &self.ids,
            },
            (_, ActionKind::Detach) => Payload::Detach {
                name: &group()?.name,
                ids: &self.ids,
            },
            (Resource::AutoScalingGroup, ActionKind::Create) => {
                Payload::CreateGroup { group: group()? }
            }
            (Resource::AutoScalingGroup, ActionKind::Refresh) => Payload::Refresh {
                name: &group()?.name,
                min_healthy_percentage: group()?
                    .min_healthy_percentage
                    .ok_or_else(|| lacks("min_healthy_percentage"))?,
            },
            (Resource::AutoScalingGroup, ActionKind::Delete) => {
                Payload::DeleteGroup { name: name()? }
            }
            (Resource::AutoScalingGroup, _) => Payload::UpdateGroup { group: group()? },
            (Resource::KeyPair, ActionKind::Create | ActionKind::Replace) => {
                Payload::ImportKeyPair {
                    name: name()?,
                    public_key: self
                        .public_key
                        .as_deref()
                        .ok_or_else(|| lacks("public key"))?,
                    replace: self.action == ActionKind::Replace,
                    tags: &self.tags,
                }
            }
            (Resource::KeyPair, _) => Payload::DeleteKeyPair { name: name()? },
            (Resource::Image, ActionKind::Copy) => Payload::CopyImage {
                under_way: self.ids.first().map(String::as_str),
                source_region: self
                    .source_region
                    .as_deref()
                    .ok_or_else(|| lacks("source region"))?,
                source_image: self
                    .source_image
                    .as_deref()
                    .ok_or_else(|| lacks("source image"))?,
                name: self.name.as_deref().unwrap_or_default(),
                tags: &self.tags,
            },
            (Resource::Image, _) => {
                let (image_id, snapshot_ids) =
                    self.ids.split_first().ok_or_else(|| lacks("image id"))?;
                Payload::DeregisterImage {
                    image_id,
                    snapshot_ids,
                }
            }
            (Resource::LaunchTemplate, ActionKind::Create | ActionKind::Replace) => {
                Payload::CreateTemplate {
                    name: name()?,
                    data: self
                        .launch_template
                        .as_ref()
                        .ok_or_else(|| lacks("launch template data"))?,
                    tags: &self.tags,
                }
            }
            (Resource::LaunchTemplate, ActionKind::Update) => Payload::UpdateTemplate {
                template_id: first_id("template id")?,
                data: self
                    .launch_template
                    .as_ref()
                    .ok_or_else(|| lacks("launch template data"))?,
            },
            (Resource::LaunchTemplate, _) => Payload::DeleteTemplate {
                template_id: first_id("template id")?,
            },
            (Resource::Instances, ActionKind::Launch) => Payload::Launch {
                template_id: self.ids.first().map(String::as_str),
                count: self.count.ok_or_else(|| lacks("count"))?,
                target: match (&self.placement, self.instance_type.as_deref()) {
                    (Some(placement), _) => LaunchTarget::Placed(placement),
                    (None, Some(instance_type)) => LaunchTarget::Type(instance_type),
                    (None, None) => return Err(lacks("instance type")),
                },
                tags: &self.tags,
            },
            (Resource::Instances, _) => Payload::Terminate { ids: &self.ids },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Reason;

    #[test]
    fn each_kind_of_action_makes_its_payload_or_says_what_it_lacks() {
        let mut import = Action::new(
            "key_pair.k",
            "us-east-1",
            ActionKind::Create,
            Resource::KeyPair,
            Reason::New,
        );
        import.name = Some("f.k".into());
        let missing = import.payload().expect_err("no public key");
        assert_eq!(missing.missing, "public key");
        assert_eq!(
            missing.to_string(),
            "create key_pair action at key_pair.k in us-east-1 has no public key"
        );
        import.public_key = Some("ssh-ed25519 AAAA".into());
        assert!(matches!(
            import.payload(),
            Ok(Payload::ImportKeyPair {
                name: "f.k",
                replace: false,
                ..
            })
        ));

        let mut launch = Action::new(
            "worker_type.w",
            "us-east-1",
            ActionKind::Launch,
            Resource::Instances,
            Reason::BelowMin,
        );
        launch.count = Some(2);
        assert_eq!(
            launch.payload().map_err(|m| m.missing),
            Err("instance type")
        );
        launch.instance_type = Some("m5.large".into());
        assert!(matches!(
            launch.payload(),
            Ok(Payload::Launch {
                template_id: None,
                count: 2,
                target: LaunchTarget::Type("m5.large"),
                ..
            })
        ));

        let update = Action::new(
            "worker_type.w",
            "us-east-1",
            ActionKind::Update,
            Resource::LaunchTemplate,
            Reason::ConfigChanged,
        );
        assert_eq!(update.payload().map_err(|m| m.missing), Err("template id"));
    }
}
