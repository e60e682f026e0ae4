//! Translating SDK errors into the engine's [`ProviderError`] classes.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use fleetform_engine::provider::{ErrorKind, ProviderError};

/// Classifies an SDK error by its EC2/STS/Auto Scaling error code or
/// transport failure.
///
/// Auto Scaling's codes: `ValidationError` is a request that cannot succeed
/// as sent ([`ErrorKind::InvalidRequest`]), except when it says the group
/// (or instance) was not found ([`ErrorKind::NotFound`]: Auto Scaling has no
/// code of its own for that); `AlreadyExists`, `LimitExceeded`,
/// `InstanceRefreshInProgress` and `ResourceInUse` (a group with instances
/// deleted without ForceDelete) cannot succeed by sending again either;
/// `ScalingActivityInProgress` and `ResourceContention` pass once the
/// activity ends ([`ErrorKind::Unavailable`]); `Throttling` is throttling;
/// `ServiceLinkedRoleFailure` is a permission problem.
pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_string);
    let kind = match (&err, code.as_deref()) {
        (_, Some("DryRunOperation")) => ErrorKind::DryRunFailed,
        (_, Some("RequestLimitExceeded" | "Throttling" | "ThrottlingException")) => {
            ErrorKind::Throttled
        }
        (_, Some("ValidationError")) => validation_kind(err.message().unwrap_or_default()),
        (
            _,
            Some("AlreadyExists" | "LimitExceeded" | "InstanceRefreshInProgress" | "ResourceInUse"),
        ) => ErrorKind::InvalidRequest,
        (_, Some("ScalingActivityInProgress" | "ResourceContention")) => ErrorKind::Unavailable,
        (_, Some("ServiceLinkedRoleFailure")) => ErrorKind::Unauthorized,
        (_, Some(c))
            if c.starts_with("Unauthorized")
                || c.starts_with("AuthFailure")
                || c.starts_with("AccessDenied") =>
        {
            ErrorKind::Unauthorized
        }
        // InvalidKeyPair.NotFound, InvalidLaunchTemplateName.NotFoundException, ...
        (_, Some(c)) if c.contains("NotFound") => ErrorKind::NotFound,
        // A client token reused with other parameters: sending it again cannot succeed.
        (_, Some(c))
            if c.starts_with("Invalid")
                || c.starts_with("Missing")
                || c == "IdempotentParameterMismatch" =>
        {
            ErrorKind::InvalidRequest
        }
        _ => ErrorKind::Unavailable,
    };
    let message = match (code.as_deref(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => transport_message(&err),
    };
    ProviderError {
        kind,
        code,
        message,
    }
}

/// Auto Scaling's ValidationError says "not found" for a group or instance
/// that does not exist ("AutoScalingGroup name not found - ..."); anything
/// else it says is a request that cannot succeed as sent.
fn validation_kind(message: &str) -> ErrorKind {
    if message.to_ascii_lowercase().contains("not found") {
        ErrorKind::NotFound
    } else {
        ErrorKind::InvalidRequest
    }
}

/// A short cause for failures that have no service error code.
fn transport_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // The chain of causes, each once: "dispatch failure: io error: ... Connection refused".
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    let detail = parts.join(": ");
    match err {
        SdkError::TimeoutError(_) => format!("request timed out after retries ({detail})"),
        SdkError::DispatchFailure(_) => format!("cannot reach the endpoint ({detail})"),
        SdkError::ResponseError(_) => format!("unreadable response ({detail})"),
        _ => detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_scaling_validation_errors_are_not_found_only_when_they_say_so() {
        assert_eq!(
            validation_kind("AutoScalingGroup name not found - AutoScalingGroup 'a' not found"),
            ErrorKind::NotFound
        );
        assert_eq!(
            validation_kind(
                "Desired capacity:7 must be between the specified min size:0 and max size:6"
            ),
            ErrorKind::InvalidRequest
        );
    }
}
