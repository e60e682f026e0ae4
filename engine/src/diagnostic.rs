//! Diagnostics: what went wrong, where in the HCL, and what to do about it.
//!
//! Every problem fleetform finds in a configuration, a plan or a call to the
//! cloud is a [`Diagnostic`]: plain data with a stable [`Code`], collected
//! rather than returned early so that one run reports every problem. The CLI
//! renders them with miette ([`Diagnostic::to_miette`], [`render_human`]) or
//! as JSON ([`Diagnostic::to_json`]). Loading and planning scrub sensitive
//! values out of the diagnostics they return ([`Diagnostic::scrub`]), so a
//! renderer never sees one.

use crate::source::{SourceRef, SourceSet};
use miette::{LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;
use std::fmt;

/// How bad a diagnostic is: errors block, warnings inform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Makes the configuration (or plan) invalid.
    Error,
    /// Worth reading; changes nothing.
    Warning,
}

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// Stable identifier of a kind of problem; part of the JSON contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// The stable text of the code, e.g. `FF003` or `unknown-attribute`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
        }
    };
}

codes! {
    /// FF001: an image still referenced would be deregistered.
    ImageInUse = "FF001",
    /// FF002: a worker type region has no image in its AMI set.
    ImageMissing = "FF002",
    /// FF003: AMI virtualization/architecture does not suit an instance type.
    ImageCompat = "FF003",
    /// FF004: a plan would leave running capacity above max.
    CapacityBound = "FF004",
    /// FF005: observation incomplete; no scaling in that region.
    BlindScaling = "FF005",
    /// FF006: more launches/terminations/deletions than the limits allow.
    BlastRadius = "FF006",
    /// FF007: the fleet at max capacity costs more than the budget.
    Budget = "FF007",
    /// FF008: a key pair replacement touches worker types and instances.
    KeyReplace = "FF008",
    /// FF009: the caller's account differs from `fleet.account_id`.
    AccountGuard = "FF009",
    /// FF010: a saved plan's base has moved.
    StalePlan = "FF010",
    /// FF011: EC2 refused a dry-run launch.
    DryRun = "FF011",
    /// FF012: a subnet or security group a network names is missing or does not fit.
    Network = "FF012",
    /// FF013: EC2 does not offer an instance type where a worker type runs.
    Offering = "FF013",
    /// FF014: an Auto Scaling group cannot be made as declared, or a group's state needs attention.
    AutoScaling = "FF014",
    /// A file or directory could not be read.
    Io = "io",
    /// A file is not valid UTF-8.
    Encoding = "encoding",
    /// The directory holds no `*.hcl` file.
    NoConfig = "no-config",
    /// The HCL does not parse.
    Syntax = "syntax",
    /// A block type that the language does not have.
    UnknownBlock = "unknown-block",
    /// An attribute that the block does not have.
    UnknownAttribute = "unknown-attribute",
    /// A required attribute or block is absent.
    Missing = "missing",
    /// A name or attribute is declared twice.
    Duplicate = "duplicate",
    /// A value has the wrong type.
    Type = "type",
    /// A value has the right type but is not allowed.
    InvalidValue = "invalid-value",
    /// A reference to something that is not declared.
    UndefinedReference = "undefined-reference",
    /// Locals that depend on themselves.
    ReferenceCycle = "reference-cycle",
    /// A variable with no value from any source.
    VariableUnset = "variable-unset",
    /// A value given for a variable that is not declared.
    VariableUndeclared = "variable-undeclared",
    /// A function call failed (missing file, escaping path, bad arguments).
    Function = "function",
    /// Capacity bounds that cannot hold (min above max, weight <= 0).
    CapacityRange = "capacity-range",
    /// A region that is not a fleet region, or not a region at all.
    Region = "region",
    /// A call to the cloud failed (credentials, network, permissions).
    Cloud = "cloud",
    /// A saved plan file that cannot be read (corrupt, truncated, newer format).
    PlanFile = "plan-file",
    /// A command that reads what an apply recorded, before any apply.
    NotApplied = "not-applied",
    /// An expression that could grow past the evaluation budget (nested
    /// `for`s, repeated interpolation).
    TooLarge = "too-large",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem, with its location and advice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What kind of problem.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// One sentence: what went wrong.
    pub message: String,
    /// Where, if the problem has a place in the sources.
    pub location: Option<SourceRef>,
    /// Short text shown at the location.
    pub label: Option<String>,
    /// What to do next.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with a code and message, no location yet.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            location: None,
            label: None,
            help: None,
        }
    }

    /// A warning with a code and message, no location yet.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    /// Points the diagnostic at a place, with a label there.
    pub fn at(mut self, location: Option<SourceRef>, label: impl Into<String>) -> Self {
        self.location = location;
        self.label = Some(label.into());
        self
    }

    /// Adds advice on what to do.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The advice as users see it, in every rendering: the help, then where
    /// the long explanation of the code is (`see: fleetform explain CODE`).
    pub fn help_text(&self) -> String {
        let see = format!("see: fleetform explain {}", self.code);
        match &self.help {
            Some(help) if help.ends_with(&see) => help.clone(),
            Some(help) => format!("{help}\n{see}"),
            None => see,
        }
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The JSON shape of `validate --json` and plan diagnostics (`code`, `severity`, `message`, `file`, `line`, `column`, `help`).
    pub fn to_json(&self, sources: &SourceSet) -> JsonDiagnostic {
        let (file, line, column) = match &self.location {
            Some(at) => {
                let lc = sources.line_col(at);
                (
                    Some(sources.file(at.file).name.clone()),
                    Some(lc.line),
                    Some(lc.column),
                )
            }
            None => (None, None, None),
        };
        JsonDiagnostic {
            code: self.code.as_str().to_string(),
            severity: self.severity,
            message: self.message.clone(),
            file,
            line,
            column,
            label: self.label.clone(),
            help: Some(self.help_text()),
        }
    }

    /// Replaces every sensitive value in the texts of this diagnostic.
    pub fn scrub(&mut self, secrets: &crate::sensitive::Secrets) {
        for text in [
            Some(&mut self.message),
            self.label.as_mut(),
            self.help.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let std::borrow::Cow::Owned(clean) = secrets.scrub(text) {
                *text = clean;
            }
        }
    }

    /// A miette report of this diagnostic with its source snippet.
    pub fn to_miette(&self, sources: &SourceSet) -> miette::Report {
        let source = self.location.as_ref().map(|at| {
            let file = sources.file(at.file);
            NamedSource::new(file.path.display().to_string(), sources.shown_text(at.file))
        });
        let report = miette::Report::new(Rendered {
            diagnostic: self.clone(),
        });
        match source {
            Some(source) => report.with_source_code(source),
            None => report,
        }
    }
}

/// A diagnostic as it appears in `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct JsonDiagnostic {
    /// Stable code: `FF0xx` for safety checks, a kebab-case name otherwise.
    pub code: String,
    /// `error` or `warning`.
    #[schemars(with = "String")]
    pub severity: Severity,
    /// What went wrong.
    pub message: String,
    /// File name, relative to the config directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// Text shown at the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// Adapter that lets miette render a [`Diagnostic`].
#[derive(Debug)]
struct Rendered {
    diagnostic: Diagnostic,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.help_text()))
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let at = self.diagnostic.location.as_ref()?;
        let span = SourceSpan::new(at.span.start.into(), at.span.len());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            self.diagnostic.label.clone(),
            span,
        ))))
    }
}

/// Diagnostics collected during one run, in the order found.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Records one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// True if any is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// All diagnostics, sorted by file, position, then code, so output is stable.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort_by(|a, b| {
            let key =
                |d: &Diagnostic| (d.location.as_ref().map(|l| (l.file, l.span.start)), d.code);
            key(a).cmp(&key(b))
        });
        self.0
    }

    /// Iterates in the order found.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The diagnostics in the order found.
impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<T: IntoIterator<Item = Diagnostic>>(&mut self, iter: T) {
        self.0.extend(iter);
    }
}

/// "Did you mean" suggestion: the closest candidate if it is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Renders diagnostics as miette prints them on a terminal, one after another.
pub fn render_human(diagnostics: &[Diagnostic], sources: &SourceSet, color: bool) -> String {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = diagnostic.to_miette(sources);
        // Writing into a String cannot fail; a formatter error would only drop this diagnostic.
        let _ = handler.render_report(&mut out, report.as_ref());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("capcity", ["capacity", "market"]),
            Some("capacity")
        );
        assert_eq!(did_you_mean("zzz", ["capacity", "market"]), None);
    }

    #[test]
    fn every_help_ends_with_where_to_read_more() {
        let plain = Diagnostic::error(Code::Syntax, "bad");
        assert_eq!(plain.help_text(), "see: fleetform explain syntax");
        let advised = Diagnostic::error(Code::ImageCompat, "bad").help("use an hvm image");
        assert_eq!(
            advised.help_text(),
            "use an hvm image\nsee: fleetform explain FF003"
        );
        let json = advised.to_json(&SourceSet::new());
        assert_eq!(json.help.as_deref(), Some(advised.help_text().as_str()));
        assert_eq!(json.code, "FF003");
        let rendered = render_human(&[advised], &SourceSet::new(), false);
        assert!(
            rendered.contains("see: fleetform explain FF003"),
            "{rendered}"
        );
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
        }
    }
}
