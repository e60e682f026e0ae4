//! A bucket on the local endpoint's S3 (moto serves every service on one
//! port), for tests of the S3 state backend: create it, and read, write and
//! list its objects directly, behind fleetform's back.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

/// One bucket of the local endpoint, with blocking helpers.
pub struct TestBucket {
    /// The bucket's name (unique to the test).
    pub name: String,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl TestBucket {
    /// Creates a new bucket with a unique name starting with `prefix` on the
    /// local endpoint ([`crate::endpoint`]).
    ///
    /// # Panics
    /// When the endpoint does not answer or refuses: a test cannot go on.
    pub fn create(prefix: &str) -> TestBucket {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(crate::endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .force_path_style(true)
            .build();
        let client = Client::from_conf(config);
        let name = crate::unique_fleet(prefix).to_lowercase();
        runtime
            .block_on(client.create_bucket().bucket(&name).send())
            .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
        TestBucket {
            name,
            client,
            runtime,
        }
    }

    /// The bytes of object `key`, `None` when there is none.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let answer = self
            .runtime
            .block_on(self.client.get_object().bucket(&self.name).key(key).send());
        match answer {
            Ok(output) => Some(
                self.runtime
                    .block_on(output.body.collect())
                    .expect("object body")
                    .into_bytes()
                    .to_vec(),
            ),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => None,
            Err(e) => panic!("get {key}: {e:?}"),
        }
    }

    /// Writes `bytes` to object `key`, unconditionally.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        self.runtime
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.name)
                    .key(key)
                    .body(ByteStream::from(bytes.to_vec()))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// Removes object `key`.
    pub fn delete(&self, key: &str) {
        self.runtime
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.name)
                    .key(key)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
    }

    /// The keys under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .runtime
                .block_on(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.name)
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send(),
                )
                .unwrap_or_else(|e| panic!("list {prefix}: {e:?}"));
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }
}
