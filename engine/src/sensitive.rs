//! Sensitive values: variables marked `sensitive = true` and every value
//! derived from them (a user data that renders a secret is sensitive as a
//! whole).
//!
//! Their text lives only in memory, in [`Secrets`] (the variables) and
//! [`Withheld`] (what the model derived from them, for apply to send to
//! EC2). Plans, plan files, state versions and the journal hold
//! [`SHOWN`] in their place. To tell whether a value changed without letting
//! anyone who reads a plan file test guesses cheaply, they hold a
//! [`SensitiveBinding`]: an argon2id digest per variable, each with its own
//! random salt, and the salt of a [`Mask`] key from which hashes over
//! derived values are keyed.

use crate::model::Config;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// What a sensitive value is shown as wherever it would appear.
pub const SHOWN: &str = "(sensitive)";

/// Values shorter than this are not searched for in free text (diagnostics,
/// snippets): hiding every `a` or `10` would hide the text, not the secret.
const MIN_SCRUBBED_LEN: usize = 4;

/// The values of the sensitive variables of one load, in memory only: never
/// serialized, and its `Debug` shows names, never values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    variables: BTreeMap<String, String>,
    /// What is searched for in free text, computed once: the values and the
    /// strings inside a sensitive list or object (which appear in files as
    /// written, not as the JSON of the whole value), those long enough to
    /// matter, longest first so that a secret containing another is hidden
    /// whole.
    scrubbed: Vec<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// Secrets from (name, value as text) pairs.
    pub fn new(variables: impl IntoIterator<Item = (String, String)>) -> Secrets {
        let variables: BTreeMap<String, String> = variables.into_iter().collect();
        let mut secrets = Secrets {
            scrubbed: Vec::new(),
            variables,
        };
        let values: Vec<String> = secrets.variables.values().cloned().collect();
        secrets.hide_also(values);
        secrets
    }

    /// Adds texts to hide wherever they appear (parts of a sensitive value).
    pub fn hide_also(&mut self, fragments: impl IntoIterator<Item = String>) {
        self.scrubbed.extend(
            fragments
                .into_iter()
                .filter(|v| v.len() >= MIN_SCRUBBED_LEN),
        );
        self.scrubbed
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.scrubbed.dedup();
    }

    /// True when no sensitive variable has a value.
    pub fn is_empty(&self) -> bool {
        self.variables.is_empty()
    }

    /// Names of the sensitive variables that have a value.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.variables.keys().map(String::as_str)
    }

    /// The value of one sensitive variable, as text.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// `text` with every sensitive value in it replaced by [`SHOWN`].
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for value in &self.scrubbed {
            if out.contains(value) {
                out = Cow::Owned(out.replace(value, SHOWN));
            }
        }
        out
    }

    /// `text` with every sensitive value overwritten by `*` of the same byte
    /// length (so byte offsets into it stay valid); `None` when it holds none.
    pub fn mask_in_place(&self, text: &str) -> Option<String> {
        let values = &self.scrubbed;
        if !values.iter().any(|v| text.contains(v)) {
            return None;
        }
        let mut out = text.to_string();
        for value in values {
            out = out.replace(value, &"*".repeat(value.len()));
        }
        Some(out)
    }

    /// True when `text` holds one of the sensitive values.
    pub fn appear_in(&self, text: &str) -> bool {
        self.scrubbed.iter().any(|v| text.contains(v.as_str()))
    }
}

/// What the model derived from sensitive values and a plan withholds: per
/// launch template (its plan address and region), its user data, and a
/// keyed digest of it that apply adds to the client tokens of the calls
/// that send it (a plan that only rotates a secret reads the same as the
/// one before, and EC2 must not take its calls for retries of the earlier
/// ones). Apply fills these into the calls it makes to EC2; they are never
/// written anywhere else.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Withheld {
    user_data: BTreeMap<(String, String), String>,
    token_parts: BTreeMap<(String, String), String>,
}

impl fmt::Debug for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Withheld")
            .field("user_data", &self.user_data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Withheld {
    /// Every value of `config` a plan withholds: user data that derives
    /// from a sensitive variable or holds one's value, of every launch
    /// template in every region (the worker type's, and those of instance
    /// types with their own).
    pub fn of(config: &Config, secrets: &Secrets) -> Result<Withheld, DigestError> {
        let mut user_data: BTreeMap<(String, String), String> = BTreeMap::new();
        for wt in config.worker_types.values() {
            for region in &wt.regions {
                if let Some(data) = wt.user_data_in(region) {
                    if wt.user_data_sensitive || secrets.appear_in(data) {
                        user_data.insert(
                            (crate::model::address::worker_type(&wt.name), region.clone()),
                            data.to_string(),
                        );
                    }
                }
                for it in wt
                    .instance_types_in(region)
                    .filter(|it| wt.has_own_template(it, region))
                {
                    let Some(data) = wt.instance_user_data_in(it, region) else {
                        continue;
                    };
                    if wt.instance_user_data_sensitive(it) || secrets.appear_in(data) {
                        user_data.insert(
                            (
                                crate::plan::build::instance_type_address(&wt.name, &it.name),
                                region.clone(),
                            ),
                            data.to_string(),
                        );
                    }
                }
            }
        }
        if user_data.is_empty() {
            return Ok(Withheld::default());
        }
        // Deterministic for the same fleet and secrets, so that a retried
        // apply repeats its tokens; slow to test guesses against.
        let salt = sha2::Sha256::digest(format!("fleetform client tokens\0{}", config.fleet.name));
        let mask = Mask::derive(secrets, &salt[..16])?;
        let token_parts = user_data
            .iter()
            .map(|(key, data)| {
                let tag = mask.digest(data);
                (key.clone(), tag[..16].to_string())
            })
            .collect();
        Ok(Withheld {
            user_data,
            token_parts,
        })
    }

    /// The sensitive user data of the launch template at `address`
    /// (`worker_type.NAME`, or an instance type's) in `region`.
    pub fn user_data(&self, address: &str, region: &str) -> Option<&str> {
        self.user_data
            .get(&(address.to_string(), region.to_string()))
            .map(String::as_str)
    }

    /// What the client token of a call sending the withheld user data of
    /// `address` in `region` ends with.
    pub fn token_part(&self, address: &str, region: &str) -> Option<&str> {
        self.token_parts
            .get(&(address.to_string(), region.to_string()))
            .map(String::as_str)
    }
}

/// Replaces every live user data of `observation` by its description: what
/// commands that print what EC2 holds show of it, since any may hold a secret
/// (of this configuration, or of an earlier one).
pub fn describe_live_user_data(observation: &mut crate::provider::Observation) {
    for region in observation.regions.values_mut() {
        if let crate::provider::Observed::Complete { items } = &mut region.launch_templates {
            for data in items.iter_mut().filter_map(|t| t.default_data.as_mut()) {
                if let Some(text) = data.user_data.as_mut() {
                    *text = describe(text);
                }
            }
        }
    }
}

/// How a plan file or a state version tells whether sensitive values
/// changed: per variable an argon2id digest (PHC string) with its own random
/// salt, and the random salt of the [`Mask`] key. Holds no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SensitiveBinding {
    /// Variable name -> argon2id digest of its value.
    pub variables: BTreeMap<String, String>,
    /// Salt (hex) of the key that masks derived values inside hashes.
    pub key_salt: String,
}

/// A sensitive variable whose value does not match a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// No value was supplied.
    Missing(String),
    /// The value supplied differs from the one digested.
    Differs(String),
}

/// Why digests could not be made or checked (never because of a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot digest sensitive values: {0}")]
pub struct DigestError(String);

fn argon2() -> Argon2<'static> {
    // argon2id, version 0x13, 19 MiB, 2 passes: OWASP's minimum for password storage.
    Argon2::default()
}

impl SensitiveBinding {
    /// Digests every secret, each with a fresh random salt.
    pub fn new(secrets: &Secrets) -> Result<SensitiveBinding, DigestError> {
        let mut variables = BTreeMap::new();
        for (name, value) in &secrets.variables {
            let salt = SaltString::generate(&mut OsRng);
            let digest = argon2()
                .hash_password(value.as_bytes(), &salt)
                .map_err(|e| DigestError(e.to_string()))?;
            variables.insert(name.clone(), digest.to_string());
        }
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        Ok(SensitiveBinding {
            variables,
            key_salt: crate::hex(&salt),
        })
    }

    /// The variables of this binding whose value `secrets` lacks or has another of.
    pub fn check(&self, secrets: &Secrets) -> Vec<Mismatch> {
        check_digests(&self.variables, secrets)
    }

    /// The mask key of this binding, derived from `secrets`: the same
    /// secrets give the same key.
    pub fn mask(&self, secrets: &Secrets) -> Result<Mask, DigestError> {
        let salt = unhex(&self.key_salt).ok_or_else(|| DigestError("bad key salt".into()))?;
        Mask::derive(secrets, &salt)
    }
}

/// The variables of `digests` (name -> argon2id digest) whose value
/// `secrets` lacks or has another of.
pub fn check_digests(digests: &BTreeMap<String, String>, secrets: &Secrets) -> Vec<Mismatch> {
    digests
        .iter()
        .filter_map(|(name, digest)| match secrets.value(name) {
            None => Some(Mismatch::Missing(name.clone())),
            Some(value) => {
                let same = PasswordHash::new(digest)
                    .map(|parsed| argon2().verify_password(value.as_bytes(), &parsed).is_ok())
                    .unwrap_or(false);
                (!same).then(|| Mismatch::Differs(name.clone()))
            }
        })
        .collect()
}

/// Turns a sensitive value into a keyed digest (HMAC-SHA256 under a key
/// derived with argon2id from every secret), so that hashes over data that
/// holds it change when it changes, yet cannot be used to test guesses
/// without paying for argon2id per guess.
#[derive(Clone)]
pub struct Mask {
    key: [u8; 32],
}

impl fmt::Debug for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mask(..)")
    }
}

impl Mask {
    /// The key derived from every secret with argon2id and `salt`.
    fn derive(secrets: &Secrets, salt: &[u8]) -> Result<Mask, DigestError> {
        // Length-prefixed pairs, so no two sets of values read alike.
        let mut material = Vec::new();
        for (name, value) in &secrets.variables {
            for part in [name.as_bytes(), value.as_bytes()] {
                material.extend_from_slice(&(part.len() as u64).to_le_bytes());
                material.extend_from_slice(part);
            }
        }
        let mut key = [0u8; 32];
        argon2()
            .hash_password_into(&material, salt, &mut key)
            .map_err(|e| DigestError(e.to_string()))?;
        Ok(Mask { key })
    }

    /// The keyed digest of `value` (hex).
    fn digest(&self, value: &str) -> String {
        // A key of any length is accepted by HMAC; this cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(value.as_bytes());
        crate::hex(&mac.finalize().into_bytes())
    }

    /// The keyed digest of `value`, marked as such.
    pub fn tag(&self, value: &str) -> String {
        format!("(sensitive {})", self.digest(value))
    }
}

/// How a withheld multi-line value is described: `(sensitive: 12 lines)`.
pub fn describe(value: &str) -> String {
    let lines = value.lines().count().max(1);
    format!(
        "(sensitive: {lines} line{})",
        if lines == 1 { "" } else { "s" }
    )
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl crate::source::MaskInPlace for Secrets {
    fn mask_in_place(&self, text: &str) -> Option<String> {
        Secrets::mask_in_place(self, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        Secrets::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn a_binding_holds_no_value_and_recognises_the_same_one() {
        let s = secrets(&[("token", "canary-7f3a")]);
        let binding = SensitiveBinding::new(&s).expect("digest");
        let json = serde_json::to_string(&binding).expect("json");
        assert!(!json.contains("canary-7f3a"), "{json}");
        assert!(binding.variables["token"].starts_with("$argon2id$"));
        assert!(binding.check(&s).is_empty());
        assert_eq!(
            binding.check(&secrets(&[("token", "other")])),
            vec![Mismatch::Differs("token".into())]
        );
        assert_eq!(
            binding.check(&Secrets::default()),
            vec![Mismatch::Missing("token".into())]
        );
    }

    #[test]
    fn every_digest_has_its_own_salt() {
        let s = secrets(&[("a", "same-value"), ("b", "same-value")]);
        let binding = SensitiveBinding::new(&s).expect("digest");
        assert_ne!(binding.variables["a"], binding.variables["b"]);
        let again = SensitiveBinding::new(&s).expect("digest");
        assert_ne!(binding.variables["a"], again.variables["a"]);
        assert_ne!(binding.key_salt, again.key_salt);
    }

    #[test]
    fn the_mask_follows_the_values_and_the_salt() {
        let s = secrets(&[("token", "canary-7f3a")]);
        let binding = SensitiveBinding::new(&s).expect("digest");
        let tag = |b: &SensitiveBinding, s: &Secrets| b.mask(s).expect("mask").tag("user data");
        assert_eq!(tag(&binding, &s), tag(&binding, &s));
        assert_ne!(
            tag(&binding, &s),
            tag(&binding, &secrets(&[("token", "canary-7f3b")]))
        );
        let other = SensitiveBinding::new(&s).expect("digest");
        assert_ne!(tag(&binding, &s), tag(&other, &s));
        assert!(!tag(&binding, &s).contains("canary"));
    }

    #[test]
    fn scrubbing_hides_values_and_keeps_offsets_when_masking() {
        let s = secrets(&[("token", "canary-7f3a"), ("short", "ab")]);
        assert_eq!(
            s.scrub("x canary-7f3a y ab"),
            format!("x {SHOWN} y ab").as_str()
        );
        let masked = s.mask_in_place("k = \"canary-7f3a\"").expect("masked");
        assert_eq!(masked.len(), "k = \"canary-7f3a\"".len());
        assert!(!masked.contains("canary"));
        assert_eq!(s.mask_in_place("nothing here"), None);
    }

    #[test]
    fn debug_output_names_but_never_shows_values() {
        let s = secrets(&[("token", "canary-7f3a")]);
        let shown = format!("{s:?}");
        assert!(
            shown.contains("token") && !shown.contains("canary"),
            "{shown}"
        );
    }

    #[test]
    fn a_rotated_secret_changes_the_token_part_and_the_same_one_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hcl = r#"
fleet "f" {
  regions = ["us-east-1"]
}
variable "token" {
  sensitive = true
}
ami_set "a" {
  images = { "us-east-1" = "ami-0123456789abcdef0" }
}
worker_type "w" {
  ami_set   = ami_set.a
  user_data = "t=${var.token}"
  instance_type "m5.large" {}
  capacity {
    max = 1
  }
}
"#;
        std::fs::write(dir.path().join("f.hcl"), hcl).expect("write");
        let withheld = |value: &str| {
            let loaded = crate::load_dir(
                dir.path(),
                &crate::Inputs {
                    vars: vec![format!("token={value}")],
                    ..crate::Inputs::default()
                },
            );
            let config = loaded.config.expect("valid");
            Withheld::of(&config, &loaded.secrets).expect("withheld")
        };
        let (one, again, two) = (
            withheld("first-1"),
            withheld("first-1"),
            withheld("second-2"),
        );
        let part = |w: &Withheld| {
            w.token_part("worker_type.w", "us-east-1")
                .map(str::to_string)
        };
        assert!(part(&one).is_some());
        assert_eq!(part(&one), part(&again));
        assert_ne!(part(&one), part(&two));
        assert_eq!(
            one.user_data("worker_type.w", "us-east-1"),
            Some("t=first-1")
        );
    }

    #[test]
    fn descriptions_count_lines() {
        assert_eq!(describe("a\nb\nc\n"), "(sensitive: 3 lines)");
        assert_eq!(describe("one"), "(sensitive: 1 line)");
    }
}
