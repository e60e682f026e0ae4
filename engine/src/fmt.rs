//! Canonical formatting of HCL files (`fleetform fmt`). Placeholder until the formatter lands.

/// Formats `text`; an error when it does not parse.
pub fn format_source(text: &str) -> Result<String, hcl_edit::parser::Error> {
    let body = hcl_edit::parser::parse_body(text)?;
    Ok(body.to_string())
}
