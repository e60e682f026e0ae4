//! Counts every HTTP request the SDK transmits, retries included, so that the
//! cost of an observation is measured rather than assumed.

use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An interceptor that adds one to a shared counter per transmitted request.
#[derive(Debug, Clone)]
pub(crate) struct CallCounter {
    calls: Arc<AtomicU64>,
}

impl CallCounter {
    pub(crate) fn new(calls: Arc<AtomicU64>) -> Self {
        CallCounter { calls }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "fleetform-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
