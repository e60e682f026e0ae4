//! fleetform's AWS provider: everything that talks to EC2, Auto Scaling and STS.
//!
//! It implements the engine's [`Provider`] trait ([`AwsProvider`]) and
//! translates aws-sdk types into the engine's plain data; it decides no
//! policy. Reads are paged, tag-filtered calls per kind per region (never one
//! call per object), all regions at once, and report each (region, kind) as
//! complete or incomplete with the cause: a failed or cut-off read is never an
//! empty list. Mutations are idempotent under retry. Retries (throttling, 5xx,
//! network) use the SDK's adaptive mode: jittered exponential backoff plus a
//! client-side rate limiter per region client. Every request is counted.
//!
//! It also makes the SDK configuration every AWS client of fleetform uses,
//! the S3 state store's included ([`sdk_config`]): credentials, retries, time
//! limits and the endpoint of each [`Service`].

#![deny(missing_docs)]

mod counter;
pub mod discover;
mod error;
mod groups;
mod mutate;
mod observe;
mod paging;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_types::origin::Origin;
use aws_types::service_config::ServiceConfigKey;
use counter::CallCounter;
use fleetform_engine::provider::{
    Caller, ErrorKind, Mutation, MutationOutcome, Observation, ObserveRequest, Provider,
    ProviderError,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An AWS service fleetform calls, by the id the SDK's own endpoint settings
/// use (`AWS_ENDPOINT_URL_EC2`, `s3 =` in a profile's `services` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// EC2: observing and changing the fleet.
    Ec2,
    /// STS: whose credentials these are (FF009).
    Sts,
    /// Auto Scaling: the fleet's Auto Scaling groups.
    AutoScaling,
    /// S3: a `backend "s3"` state.
    S3,
}

impl Service {
    fn sdk_id(self) -> &'static str {
        match self {
            Service::Ec2 => "EC2",
            Service::Sts => "STS",
            Service::AutoScaling => "Auto Scaling",
            Service::S3 => "S3",
        }
    }
}

/// The endpoint a client of `service` made from `config` sends to, resolved
/// as the SDK's clients do: an endpoint set in code wins, then the
/// service's own setting (`AWS_ENDPOINT_URL_<SERVICE>`, the profile's
/// `services` section), then the shared one (`AWS_ENDPOINT_URL`, the
/// profile's `endpoint_url`). `None` is AWS itself.
pub fn endpoint_of(config: &SdkConfig, service: Service) -> Option<String> {
    let shared = config.endpoint_url().map(str::to_string);
    if config.get_origin("endpoint_url").is_client_config() {
        return shared;
    }
    let key = ServiceConfigKey::builder()
        .service_id(service.sdk_id())
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok();
    key.and_then(|key| config.service_config()?.load_config(key))
        .or(shared)
}

/// `config` with fleetform's `default` endpoint below the SDK's own
/// settings: the default is the shared endpoint only when the SDK has none,
/// and not set as if in code, so each client still prefers its service's
/// own setting (`AWS_ENDPOINT_URL_S3`, the profile's services section).
fn below_sdk_settings(config: SdkConfig, default: Option<&str>) -> SdkConfig {
    match (config.endpoint_url(), default) {
        (None, Some(url)) => config.into_builder().endpoint_url(url).build(),
        _ => config,
    }
}

/// `config` with `service`'s endpoint ([`endpoint_of`]) set as if in code,
/// for a configuration made for that one service: its client then sees an
/// explicit endpoint (S3 addresses buckets path-style, as a local endpoint
/// needs).
pub fn pin_endpoint(config: SdkConfig, service: Service) -> SdkConfig {
    let Some(url) = endpoint_of(&config, service) else {
        return config;
    };
    let mut builder = config.into_builder().endpoint_url(url);
    builder.insert_origin("endpoint_url", Origin::shared_config());
    builder.build()
}

/// The names of `adopt` that the fleet-tagged reads of `observed` did not list.
fn not_listed(
    observed: &fleetform_engine::provider::RegionObservation,
    mut adopt: fleetform_engine::provider::AdoptNames,
) -> fleetform_engine::provider::AdoptNames {
    if let Some(templates) = observed.launch_templates.complete() {
        let listed: std::collections::BTreeSet<&str> =
            templates.iter().map(|t| t.name.as_str()).collect();
        adopt
            .launch_templates
            .retain(|n| !listed.contains(n.as_str()));
    }
    if let Some(keys) = observed.key_pairs.complete() {
        let listed: std::collections::BTreeSet<&str> =
            keys.iter().map(|k| k.name.as_str()).collect();
        adopt.key_pairs.retain(|n| !listed.contains(n.as_str()));
    }
    adopt
}

/// How to reach AWS (or a local EC2 endpoint).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Send the requests of every service in `services` here, whatever the
    /// SDK's own settings say (`--endpoint-url`, `--s3-endpoint-url`).
    pub endpoint_url: Option<String>,
    /// fleetform's default endpoint for `services`: used for a service only
    /// when neither `endpoint_url` nor the SDK's own settings name one.
    pub default_endpoint_url: Option<String>,
    /// The services the clients of this configuration call.
    pub services: &'static [Service],
    /// Attempts per request, first one included.
    pub max_attempts: u32,
    /// Limit for one attempt of one request.
    pub attempt_timeout: Duration,
    /// Limit for a request with all its retries.
    pub operation_timeout: Duration,
    /// Limit for finding credentials and region.
    pub setup_timeout: Duration,
    /// Items per page of the paged reads; `None` is EC2's (and Auto
    /// Scaling's) maximum per call.
    /// Smaller pages cost more calls; tests use them to read across pages.
    pub page_size: Option<u32>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            endpoint_url: None,
            default_endpoint_url: None,
            services: &[Service::Ec2, Service::Sts, Service::AutoScaling],
            max_attempts: 4,
            attempt_timeout: Duration::from_secs(20),
            operation_timeout: Duration::from_secs(60),
            setup_timeout: Duration::from_secs(10),
            page_size: None,
        }
    }
}

/// A connection to AWS: shared configuration and, per region, one EC2 and
/// one Auto Scaling client.
pub struct AwsProvider {
    config: SdkConfig,
    clients: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    auto_scaling_clients: Mutex<HashMap<String, aws_sdk_autoscaling::Client>>,
    calls: Arc<AtomicU64>,
    pages: observe::PageSizes,
}

impl ConnectOptions {
    /// The options for `endpoint_url` (AWS when `None`). A loopback endpoint
    /// is the local EC2 endpoint: it answers one request at a time, so a large
    /// read can wait in its queue far longer than AWS ever takes, and an
    /// attempt timed out there is only sent again behind the same queue. It
    /// gets minutes per attempt instead of seconds; AWS keeps the defaults.
    pub fn for_endpoint(endpoint_url: Option<String>) -> ConnectOptions {
        let local = endpoint_url.as_deref().is_some_and(is_loopback);
        let defaults = ConnectOptions::default();
        ConnectOptions {
            attempt_timeout: if local {
                Duration::from_secs(180)
            } else {
                defaults.attempt_timeout
            },
            operation_timeout: if local {
                Duration::from_secs(600)
            } else {
                defaults.operation_timeout
            },
            endpoint_url,
            ..defaults
        }
    }
}

/// Region used for STS when none is configured.
const DEFAULT_REGION: &str = "us-east-1";

/// Whether an endpoint URL points at this machine (where the local EC2 endpoint runs).
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
}

/// The SDK configuration every client of fleetform is made from (EC2, STS,
/// and the S3 state store): credentials and region resolved as the AWS CLI
/// does (environment, profiles, SSO, instance roles), `options`' retries
/// and time limits, and per service the endpoint in this order:
/// `options.endpoint_url` (a fleetform flag), then the SDK's own settings
/// (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, the profile's
/// `endpoint_url` and `services` section), then
/// `options.default_endpoint_url`; else AWS itself. When every
/// service of `options` goes to this machine (a local endpoint), missing
/// credentials are replaced by dummy ones; anything else without credentials
/// is an error within `setup_timeout`, never a hang.
pub async fn sdk_config(options: &ConnectOptions) -> Result<SdkConfig, ProviderError> {
    let setup = async {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(
                RetryConfig::adaptive()
                    .with_max_attempts(options.max_attempts.max(1))
                    .with_initial_backoff(Duration::from_millis(100))
                    .with_max_backoff(Duration::from_secs(5)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(options.attempt_timeout)
                    .operation_timeout(options.operation_timeout)
                    .build(),
            );
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            config = config
                .into_builder()
                .region(Region::new(DEFAULT_REGION))
                .build();
        }
        if options.endpoint_url.is_none() {
            config = below_sdk_settings(config, options.default_endpoint_url.as_deref());
        }
        let local = options
            .services
            .iter()
            .all(|s| endpoint_of(&config, *s).is_some_and(|url| is_loopback(&url)));
        let found = match config.credentials_provider() {
            Some(provider) => provider
                .provide_credentials()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("no credential provider is configured".to_string()),
        };
        match found {
                Ok(()) => Ok(config),
                Err(_) if local && !options.services.is_empty() => {
                    let dummy = Credentials::new("fleetform-local", "fleetform-local", None, None, "fleetform");
                    Ok(config
                        .into_builder()
                        .credentials_provider(SharedCredentialsProvider::new(dummy))
                        .build())
                }
                Err(why) => Err(ProviderError {
                    kind: ErrorKind::Setup,
                    code: None,
                    message: format!(
                        "no AWS credentials found ({why}); set AWS_PROFILE, run `aws sso login`, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                    ),
                }),
            }
    };
    tokio::time::timeout(options.setup_timeout, setup)
            .await
            .map_err(|_| ProviderError {
                kind: ErrorKind::Setup,
                code: None,
                message: format!(
                    "finding AWS credentials and region took longer than {}s; check AWS_PROFILE and network access",
                    options.setup_timeout.as_secs()
                ),
            })?
}

impl AwsProvider {
    /// Connects with [`sdk_config`]: the same resolution, endpoint, retries
    /// and limits.
    pub async fn connect(options: &ConnectOptions) -> Result<AwsProvider, ProviderError> {
        let config = sdk_config(options).await?;
        Ok(AwsProvider {
            config,
            clients: Mutex::new(HashMap::new()),
            auto_scaling_clients: Mutex::new(HashMap::new()),
            calls: Arc::new(AtomicU64::new(0)),
            pages: observe::PageSizes::at_most(options.page_size),
        })
    }

    /// HTTP requests made so far (retries included).
    pub fn api_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The EC2 client for `region`, made once, with this provider's endpoint,
    /// credentials, retries and call counter: for tools and tests that need a
    /// call the [`Provider`] trait does not offer.
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let config = aws_sdk_ec2::config::Builder::from(&self.config)
                    .region(Region::new(region.to_string()))
                    .interceptor(CallCounter::new(Arc::clone(&self.calls)))
                    .build();
                aws_sdk_ec2::Client::from_conf(config)
            })
            .clone()
    }

    /// The Auto Scaling client for `region`, made once, as [`AwsProvider::ec2`]
    /// makes the EC2 client: the same endpoint, credentials, retries, time
    /// limits and call counter.
    pub fn auto_scaling(&self, region: &str) -> aws_sdk_autoscaling::Client {
        let mut clients = self
            .auto_scaling_clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let config = aws_sdk_autoscaling::config::Builder::from(&self.config)
                    .region(Region::new(region.to_string()))
                    .interceptor(CallCounter::new(Arc::clone(&self.calls)))
                    .build();
                aws_sdk_autoscaling::Client::from_conf(config)
            })
            .clone()
    }
}

impl Provider for AwsProvider {
    async fn caller(&self) -> Result<Caller, ProviderError> {
        let config = aws_sdk_sts::config::Builder::from(&self.config)
            .interceptor(CallCounter::new(Arc::clone(&self.calls)))
            .build();
        let out = aws_sdk_sts::Client::from_conf(config)
            .get_caller_identity()
            .send()
            .await
            .map_err(error::from_sdk)?;
        Ok(Caller {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }

    async fn observe(&self, request: &ObserveRequest) -> Observation {
        let before = self.api_calls();
        let mut tasks = tokio::task::JoinSet::new();
        for region in &request.regions {
            let client = self.ec2(region);
            let auto_scaling = self.auto_scaling(region);
            let read_groups = request.auto_scaling_groups;
            let fleet = request.fleet.clone();
            let of = |by_region: &std::collections::BTreeMap<String, Vec<String>>| {
                by_region.get(region).cloned().unwrap_or_default()
            };
            let image_ids = of(&request.image_ids);
            let subnet_ids = of(&request.subnet_ids);
            let security_group_ids = of(&request.security_group_ids);
            let instance_types = of(&request.instance_types);
            let refresh_groups = of(&request.refresh_groups);
            let lookups = request.lookups.clone();
            let adopt = request.adoptable.get(region).cloned().unwrap_or_default();
            let region = region.clone();
            let pages = self.pages;
            tasks.spawn(async move {
                let named = observe::Named {
                    image_ids: &image_ids,
                    lookups: &lookups,
                    subnet_ids: &subnet_ids,
                    security_group_ids: &security_group_ids,
                    instance_types: &instance_types,
                };
                // The groups are read beside the EC2 kinds, not after them.
                let (mut observed, groups) = tokio::join!(
                    observe::region(&client, pages, &fleet, named),
                    groups::observe(
                        &auto_scaling,
                        read_groups,
                        pages.groups(),
                        &fleet,
                        &refresh_groups
                    ),
                );
                observed.auto_scaling_groups = groups;
                // Objects the configuration names that carry no fleet tag
                // (made by hand, imported) are looked up by name, but only
                // those the tagged reads did not list: a fleet fleetform
                // made costs no call for them. (Unread kinds leave every
                // name to look up; the region is blind then anyway.)
                let adopt = not_listed(&observed, adopt);
                observed.adoptable = discover::adoptable(&client, pages, &adopt).await;
                (region, observed)
            });
        }
        let mut regions = std::collections::BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((region, observed)) => {
                    regions.insert(region, observed);
                }
                // A task that panicked or was cancelled observed nothing; report its regions below.
                Err(_) => continue,
            }
        }
        for region in &request.regions {
            regions.entry(region.clone()).or_insert_with(|| {
                observe::all_incomplete("the observation task of this region failed")
            });
        }
        Observation {
            regions,
            api_calls: self.api_calls() - before,
        }
    }

    async fn mutate(
        &self,
        region: &str,
        mutation: Mutation,
    ) -> Result<MutationOutcome, ProviderError> {
        match mutation {
            Mutation::CreateAutoScalingGroup { .. }
            | Mutation::UpdateAutoScalingGroup { .. }
            | Mutation::DeleteAutoScalingGroup { .. }
            | Mutation::StartInstanceRefresh { .. }
            | Mutation::AttachInstances { .. }
            | Mutation::DetachInstances { .. } => {
                groups::mutate(&self.auto_scaling(region), mutation).await
            }
            other => mutate::run(&self.ec2(region), other).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_local_endpoint_gets_long_attempt_timeouts() {
        let defaults = ConnectOptions::default();
        let aws = ConnectOptions::for_endpoint(None);
        assert_eq!(aws.attempt_timeout, defaults.attempt_timeout);
        assert_eq!(aws.operation_timeout, defaults.operation_timeout);
        let remote = ConnectOptions::for_endpoint(Some("https://ec2.example.com".into()));
        assert_eq!(remote.attempt_timeout, defaults.attempt_timeout);
        let local = ConnectOptions::for_endpoint(Some("http://127.0.0.1:5000".into()));
        assert!(local.attempt_timeout > defaults.attempt_timeout);
        assert!(local.operation_timeout >= local.attempt_timeout);
        assert_eq!(local.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(local.max_attempts, defaults.max_attempts);
        assert_eq!(
            defaults.services,
            [Service::Ec2, Service::Sts, Service::AutoScaling],
            "the local endpoint serves Auto Scaling as it serves EC2 and STS"
        );
    }

    /// Settings as aws-config reads them from the environment and profile:
    /// per service id.
    #[derive(Debug)]
    struct Settings(&'static [(&'static str, &'static str)]);

    impl aws_types::service_config::LoadServiceConfig for Settings {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            self.0
                .iter()
                .find(|(id, _)| *id == key.service_id())
                .map(|(_, url)| url.to_string())
        }
    }

    fn configured(
        shared: Option<&str>,
        services: &'static [(&'static str, &'static str)],
    ) -> SdkConfig {
        let mut builder = SdkConfig::builder().service_config(Settings(services));
        builder.set_endpoint_url(shared.map(str::to_string));
        builder.build()
    }

    #[test]
    fn a_service_setting_beats_the_shared_one_and_code_beats_both() {
        let config = configured(Some("http://shared"), &[("S3", "http://s3")]);
        assert_eq!(
            endpoint_of(&config, Service::S3).as_deref(),
            Some("http://s3")
        );
        assert_eq!(
            endpoint_of(&config, Service::Ec2).as_deref(),
            Some("http://shared")
        );
        let pinned = pin_endpoint(config, Service::S3);
        assert_eq!(pinned.endpoint_url(), Some("http://s3"));
        assert!(pinned.get_origin("endpoint_url").is_client_config());
        assert_eq!(
            endpoint_of(&pinned, Service::Ec2).as_deref(),
            Some("http://s3")
        );
        let auto_scaling = configured(Some("http://shared"), &[("Auto Scaling", "http://asg")]);
        assert_eq!(
            endpoint_of(&auto_scaling, Service::AutoScaling).as_deref(),
            Some("http://asg"),
            "AWS_ENDPOINT_URL_AUTO_SCALING"
        );
        assert_eq!(
            endpoint_of(&auto_scaling, Service::Ec2).as_deref(),
            Some("http://shared")
        );
        let none = configured(None, &[]);
        assert_eq!(endpoint_of(&none, Service::Sts), None);
        assert_eq!(pin_endpoint(none, Service::S3).endpoint_url(), None);
    }

    #[test]
    fn fleetform_s_default_endpoint_yields_to_every_sdk_setting() {
        let default = Some("http://127.0.0.1:1");
        let service = below_sdk_settings(configured(None, &[("S3", "http://s3")]), default);
        assert_eq!(
            endpoint_of(&service, Service::S3).as_deref(),
            Some("http://s3")
        );
        assert_eq!(endpoint_of(&service, Service::Ec2).as_deref(), default);
        let shared = below_sdk_settings(configured(Some("http://shared"), &[]), default);
        assert_eq!(
            endpoint_of(&shared, Service::S3).as_deref(),
            Some("http://shared")
        );
        let nothing = below_sdk_settings(configured(None, &[]), default);
        assert_eq!(endpoint_of(&nothing, Service::S3).as_deref(), default);
        let aws = below_sdk_settings(configured(None, &[]), None);
        assert_eq!(endpoint_of(&aws, Service::S3), None);
    }
}
