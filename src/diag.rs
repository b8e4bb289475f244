//! Diagnostics as data: a stable code, Entra's error category, a severity, a span, a message and
//! an optional help. Rendering (miette) happens at the edge, in [`Report`].
//!
//! Every code is listed in [`Code`], with the category it belongs to and the text Entra shows for
//! that category (the "Troubleshooting dynamic groups" table of Microsoft Learn, and messages seen
//! in public issues: see `grammar/DECISIONS.md`).

use crate::span::Span;
use serde::Serialize;

/// How serious a diagnostic is. Only errors make a rule invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The rule is rejected (Entra would refuse to save it, or we refuse because its meaning is
    /// unknowable; see `grammar/DECISIONS.md`).
    Error,
    /// The rule is accepted, but something in it is slow, suspicious or relies on a documented
    /// guess of ours.
    Warning,
}

/// Entra's error categories, plus ours for lints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Category {
    /// `Error: Attribute not supported.`
    AttributeNotSupported,
    /// `Error: Operator isn't supported on attribute.`
    OperatorNotSupported,
    /// `Error: Query compilation error.` (syntax, invalid regex, missing connective).
    QueryCompilation,
    /// `Invalid operands found for operator.`
    InvalidOperands,
    /// `Value can't be applied to property.`
    ValueNotApplicable,
    /// `Invalid object type.` (missing or mixed `user.`/`device.` prefix).
    InvalidObjectType,
    /// `Wrong property applied.` (an element property used where it does not belong).
    WrongPropertyApplied,
    /// A documented limit (3,072 characters, 50 memberOf groups) or our nesting limit.
    LimitExceeded,
    /// Lint: Microsoft's "create simpler, more efficient rules" guidance.
    Performance,
    /// Lint: a rule that probably does not do what its author meant.
    Suspicious,
    /// Lint: accepted syntax with a better-supported spelling.
    Compatibility,
}

impl Category {
    /// The message Entra shows for this category (for lints, our own one-line summary).
    pub fn entra_message(self) -> &'static str {
        match self {
            Category::AttributeNotSupported => "Error: Attribute not supported.",
            Category::OperatorNotSupported => "Error: Operator isn't supported on attribute.",
            Category::QueryCompilation => "Error: Query compilation error.",
            Category::InvalidOperands => "Invalid operands found for operator.",
            Category::ValueNotApplicable => "Value can't be applied to property.",
            Category::InvalidObjectType => "Invalid object type.",
            Category::WrongPropertyApplied => "Wrong property applied.",
            Category::LimitExceeded => "The membership rule exceeds a service limit.",
            Category::Performance => "Rule can be simpler or faster to process.",
            Category::Suspicious => "Rule probably does not do what was meant.",
            Category::Compatibility => "Rule relies on a form with uncertain service support.",
        }
    }
}

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $name:ident = $code:literal, $sev:ident, $cat:ident; )*) => {
        /// Stable diagnostic codes. The number never changes meaning once released.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[non_exhaustive]
        pub enum Code { $( $(#[doc = $doc])* $name, )* }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[ $( Code::$name, )* ];

            /// The code as printed: `DR101`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$name => $code, )* }
            }

            /// The severity a diagnostic with this code has.
            pub fn severity(self) -> Severity {
                match self { $( Code::$name => Severity::$sev, )* }
            }

            /// The Entra category this code belongs to.
            pub fn category(self) -> Category {
                match self { $( Code::$name => Category::$cat, )* }
            }

            /// What the code means, one paragraph (the code's documentation here; SARIF's
            /// `fullDescription`).
            pub fn summary(self) -> &'static str {
                match self { $( Code::$name => concat!($($doc, " ",)*).trim_ascii(), )* }
            }
        }
    };
}

codes! {
    /// A character that has no place in a rule: `*null*` (markdown emphasis), `\_`, `;`.
    UnknownCharacter = "DR001", Error, QueryCompilation;
    /// A string literal with no closing quote.
    UnterminatedString = "DR002", Error, QueryCompilation;
    /// Curly quotes `“ ” ‘ ’` copied from a document, where straight quotes are required.
    TypographicQuote = "DR003", Error, QueryCompilation;
    /// An en dash, em dash or minus sign `– — −` in front of an operator, where `-` is required.
    TypographicDash = "DR004", Error, QueryCompilation;
    /// A JSON escape `\"` inside a rule; the rule language escapes with a backtick: `` `" ``.
    JsonEscape = "DR005", Error, QueryCompilation;
    /// A backtick escape outside any string: `` -eq `"Sales`" ``.
    StrayBacktick = "DR006", Error, QueryCompilation;
    /// A PowerShell variable such as `$siteName` that was never expanded.
    PowerShellVariable = "DR007", Error, QueryCompilation;
    /// A token where the grammar expects something else.
    UnexpectedToken = "DR010", Error, QueryCompilation;
    /// Two expressions side by side with no `-and`/`-or` between them.
    MissingConnective = "DR011", Error, QueryCompilation;
    /// An opening parenthesis or bracket that is never closed.
    UnclosedDelimiter = "DR012", Error, QueryCompilation;
    /// A closing parenthesis or bracket with no opening one.
    UnmatchedDelimiter = "DR013", Error, QueryCompilation;
    /// A `-word` that is not an operator of the language (`-bevat`, `-like`).
    UnknownOperator = "DR014", Error, QueryCompilation;
    /// An operator with nothing after it.
    MissingValue = "DR015", Error, QueryCompilation;
    /// `-not` used as a comparison (`user.mail -not null`).
    NotAsComparison = "DR016", Error, QueryCompilation;
    /// Parentheses nested deeper than dynrule's limit.
    NestingTooDeep = "DR017", Error, LimitExceeded;
    /// The rule is longer than 3,072 characters.
    RuleTooLong = "DR018", Error, LimitExceeded;
    /// The rule is empty.
    EmptyRule = "DR019", Error, QueryCompilation;
    /// A `-match` pattern that does not compile.
    InvalidRegex = "DR020", Error, QueryCompilation;
    /// A `system.now -plus/-minus` duration that is not ISO 8601.
    InvalidDuration = "DR021", Error, InvalidOperands;
    /// A date that is not a valid ISO 8601 date or date-time.
    InvalidDateTime = "DR022", Error, InvalidOperands;
    /// A property name that is not in the schema for its object type.
    AttributeNotSupported = "DR101", Error, AttributeNotSupported;
    /// An operator that the property's type does not support.
    OperatorNotSupported = "DR102", Error, OperatorNotSupported;
    /// A value of the wrong type or form for the property and operator.
    InvalidOperands = "DR103", Error, InvalidOperands;
    /// A list with an operator other than `-in`/`-notIn`, or `-in` without a list.
    ValueNotApplicable = "DR104", Error, ValueNotApplicable;
    /// A missing, unknown or mixed object prefix (`user.` and `device.` in one rule).
    InvalidObjectType = "DR105", Error, InvalidObjectType;
    /// `_`, `assignedPlan.x` or `group.objectId` outside the `-any`/`-all` they belong to.
    WrongPropertyApplied = "DR106", Error, WrongPropertyApplied;
    /// A memberOf or Direct Reports rule combined with other expressions, negated or with `-all`.
    MustStandAlone = "DR107", Error, QueryCompilation;
    /// A Direct Reports manager id or memberOf group id that is not an object id (GUID).
    NotAnObjectId = "DR108", Error, InvalidOperands;
    /// `null` with an operator other than `-eq`/`-ne`.
    NullNotAllowed = "DR109", Error, InvalidOperands;
    /// More than 50 source groups in one memberOf rule.
    TooManyGroups = "DR110", Error, LimitExceeded;
    /// `$null`: accepted as `null`, which current documentation uses.
    DollarNull = "DR201", Warning, Compatibility;
    /// `-any _ -op v` without parentheses around the predicate.
    UnparenthesizedLambda = "DR202", Warning, Compatibility;
    /// An operator glued to its neighbours: `user.department-eq"Sales"`.
    MissingWhitespace = "DR203", Warning, Compatibility;
    /// A string operator applied directly to a string collection, read as `-any (_ op v)`.
    CollectionWithoutAny = "DR204", Warning, Compatibility;
    /// A property that older documentation listed and current documentation dropped.
    DeprecatedProperty = "DR205", Warning, Compatibility;
    /// A date-time with no offset, read as UTC.
    DateWithoutOffset = "DR206", Warning, Compatibility;
    /// A lone `'` inside a double-quoted string (documented escape: `''`).
    LoneApostrophe = "DR207", Warning, Compatibility;
    /// A memberOf rule wrapped in parentheses (reported to fail in the portal).
    ParenthesizedMemberOf = "DR208", Warning, Compatibility;
    /// A `-match` whose pattern is a plain prefix, suffix, equality or substring test.
    MatchCanBeSimpler = "DR301", Warning, Performance;
    /// `-contains`/`-match` on a property with a small fixed set of values.
    PreferEquality = "DR302", Warning, Performance;
    /// Several `-eq` on one property joined by `-or`: use `-in`.
    OrChainToIn = "DR303", Warning, Performance;
    /// Several `-ne` on one property joined by `-and`: use `-notIn`.
    AndChainToNotIn = "DR304", Warning, Performance;
    /// `-and` and `-or` mixed at one level without parentheses.
    MixedAndOr = "DR305", Warning, Suspicious;
    /// `deviceOwnership -eq "Corporate"`: Entra stores `Company`.
    CorporateOwnership = "DR306", Warning, Suspicious;
    /// `-eq "null"`/`-ne "null"`: compares with the four-letter text, not with null.
    QuotedNull = "DR307", Warning, Suspicious;
    /// A comparison or combination that can never be true.
    AlwaysFalse = "DR308", Warning, Suspicious;
    /// A comparison or combination that is always true.
    AlwaysTrue = "DR309", Warning, Suspicious;
    /// The same value twice in an `-in`/`-notIn` list.
    DuplicateListItem = "DR310", Warning, Suspicious;
    /// A value outside the documented set of a property (`deviceTrustType -eq "Hybrid"`).
    UnknownEnumValue = "DR311", Warning, Suspicious;
    /// A `-match` pattern that needs the backtracking engine (look-around, back-references):
    /// slow, and a value it cannot decide within the step limit is unknown (D63).
    BacktrackingPattern = "DR312", Warning, Performance;
    /// `-eq "Sales*"`: PowerShell's wildcard in an equality, where `*` is a literal character.
    WildcardInEquality = "DR313", Warning, Suspicious;
    /// A zero-width or invisible character (U+200B, U+FEFF, U+00AD, …) inside a value, pasted
    /// from a web page or a document: the value will not match what it looks like.
    InvisibleCharacter = "DR314", Warning, Suspicious;
}

/// One diagnostic about a rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Stable code, for example `DR101`.
    pub code: Code,
    /// Error or warning (derived from the code).
    pub severity: Severity,
    /// Entra's category (derived from the code).
    pub category: Category,
    /// What is wrong, lower case, code in backticks.
    pub message: String,
    /// Where, in bytes of the rule text.
    pub span: Span,
    /// How to fix it, when we know.
    pub help: Option<String>,
    /// Secondary locations with their own short message (the opening parenthesis of an
    /// unclosed group, the first `user.` of a rule that also says `device.`).
    pub labels: Vec<(Span, String)>,
}

impl Diagnostic {
    /// A diagnostic with `code`'s severity and category.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            category: code.category(),
            message: message.into(),
            span,
            help: None,
            labels: Vec::new(),
        }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The JSON shape of one diagnostic in `dynrule check --format json` output:
/// `{"code", "category", "entraMessage", "severity", "message", "help", "span": [start, end]}`.
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    /// `DR101`.
    pub code: &'a str,
    /// Category in camelCase.
    pub category: Category,
    /// Entra's text for the category.
    #[serde(rename = "entraMessage")]
    pub entra_message: &'a str,
    /// `error` or `warning`.
    pub severity: Severity,
    /// Our message.
    pub message: &'a str,
    /// Help, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<&'a str>,
    /// Byte range `[start, end)`.
    pub span: [usize; 2],
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        JsonDiagnostic {
            code: d.code.as_str(),
            category: d.category,
            entra_message: d.category.entra_message(),
            severity: d.severity,
            message: &d.message,
            help: d.help.as_deref(),
            span: [d.span.start, d.span.end],
        }
    }
}

/// A diagnostic together with the rule it is about, ready for miette to render.
#[derive(Debug)]
pub struct Report {
    diag: Diagnostic,
    src: miette::NamedSource<String>,
}

impl Report {
    /// Pairs `diag` with its rule text; `name` labels the source (a file name and line, or `rule`).
    pub fn new(diag: Diagnostic, name: impl AsRef<str>, rule: &str) -> Self {
        Report {
            diag,
            src: miette::NamedSource::new(name, rule.to_string()),
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(format!(
            "{} ({})",
            self.diag.code.as_str(),
            self.diag.category.entra_message()
        )))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let primary = miette::LabeledSpan::new_primary_with_span(None, self.diag.span);
        let rest = self
            .diag
            .labels
            .iter()
            .map(|(s, t)| miette::LabeledSpan::new_with_span(Some(t.clone()), *s));
        Some(Box::new(std::iter::once(primary).chain(rest)))
    }
}

/// Renders diagnostics as plain text (no colour, no Unicode box drawing) for snapshots and
/// non-terminal output.
pub fn render_plain(diags: &[Diagnostic], name: &str, rule: &str) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    for d in diags {
        let report = Report::new(d.clone(), name, rule);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&d.message);
        }
        out.push('\n');
    }
    out
}
