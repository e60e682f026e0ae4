//! Terraform's functions in configurations: each function's values, its
//! errors at the call's span, `try`/`can`, the evaluation budget, and
//! sensitivity flowing through them.

use fleetform_engine::diagnostic::render_human;
use fleetform_engine::{load_dir, Inputs, Loaded};
use serde_json::{json, Value};
use tempfile::TempDir;

const HEAD: &str = r#"fleet "test" {
  regions = ["us-east-1"]
}

ami_set "linux" {
  images = {
    "us-east-1" = "ami-785db401"
  }
}
"#;

fn write(text: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), text).expect("write");
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).expect("write");
    }
    dir
}

/// A config whose worker type's user data is `jsonencode(EXPR)`.
fn config_with(locals: &str, user_data: &str) -> String {
    format!(
        r#"{HEAD}
locals {{
{locals}
}}

worker_type "w" {{
  ami_set = ami_set.linux
  instance_type "m5.large" {{ capacity = 1 }}
  capacity {{
    max = 2
  }}
  user_data = {user_data}
}}
"#
    )
}

fn load(text: &str, inputs: &Inputs) -> (TempDir, Loaded) {
    let dir = write(text, &[]);
    let loaded = load_dir(dir.path(), inputs);
    (dir, loaded)
}

fn rendered(loaded: &Loaded) -> String {
    render_human(&loaded.diagnostics, &loaded.sources, false)
}

/// The values of many expressions, from one load: `name -> value`.
fn values(cases: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    let locals: String = cases
        .iter()
        .enumerate()
        .map(|(i, (expr, _))| format!("  v{i} = {expr}\n"))
        .collect();
    let object: String = (0..cases.len())
        .map(|i| format!("v{i} = local.v{i}, "))
        .collect();
    let (_dir, loaded) = load(
        &config_with(&locals, &format!("jsonencode({{ {object} }})")),
        &Inputs::default(),
    );
    let config = loaded
        .config
        .as_ref()
        .unwrap_or_else(|| panic!("{}", rendered(&loaded)));
    let text = config.worker_types["w"]
        .user_data
        .clone()
        .expect("user data");
    match serde_json::from_str(&text).expect("json") {
        Value::Object(map) => map,
        other => panic!("{other}"),
    }
}

fn check(cases: &[(&str, Value)]) {
    let exprs: Vec<(&str, &str)> = cases.iter().map(|(e, _)| (*e, "")).collect();
    let got = values(&exprs);
    for (i, (expr, want)) in cases.iter().enumerate() {
        assert_eq!(&got[&format!("v{i}")], want, "{expr}");
    }
}

/// The one error of `local.x = EXPR`: its code, message, and line:col.
fn error_of(expr: &str) -> (String, String, usize, usize) {
    let (_dir, loaded) = load(
        &format!("{HEAD}\nlocals {{\n  x = {expr}\n}}\n"),
        &Inputs::default(),
    );
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == fleetform_engine::diagnostic::Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{expr}: {}", rendered(&loaded));
    let d = errors[0];
    let at = d.location.as_ref().expect("a location");
    let lc = loaded.sources.line_col(at);
    (
        d.code.as_str().to_string(),
        d.message.clone(),
        lc.line,
        lc.column,
    )
}

/// Line of `x = ...` in [`error_of`]'s config, and the column its expression starts at.
fn x_line() -> usize {
    HEAD.lines().count() + 3
}

fn assert_function_error(expr: &str, column_in_expr: usize, message: &str) {
    let (code, got, line, column) = error_of(expr);
    assert_eq!(code, "function", "{expr}: {got}");
    assert!(got.contains(message), "{expr}: {got}");
    assert_eq!(
        (line, column),
        (x_line(), 7 + column_in_expr),
        "{expr}: {got}"
    );
}

#[test]
fn collection_functions() {
    check(&[
        (r#"length("héllo")"#, json!(5)),
        ("length([1, 2, 3])", json!(3)),
        ("length({a = 1})", json!(1)),
        ("keys({b = 1, a = 2})", json!(["a", "b"])),
        ("values({b = 1, a = 2})", json!([2, 1])),
        (r#"contains(["a", "b"], "b")"#, json!(true)),
        (r#"contains(["a", "b"], "c")"#, json!(false)),
        (r#"lookup({a = "x"}, "a", "d")"#, json!("x")),
        (r#"lookup({a = "x"}, "b", "d")"#, json!("d")),
        (r#"element(["a", "b", "c"], 1)"#, json!("b")),
        (r#"element(["a", "b", "c"], 4)"#, json!("b")),
        ("flatten([[1, [2]], [], [3]])", json!([1, 2, 3])),
        ("distinct([1, 2, 1, 3, 2])", json!([1, 2, 3])),
        (r#"sort(["b", "c", "a"])"#, json!(["a", "b", "c"])),
        ("sort([10, 9])", json!(["10", "9"])),
        ("reverse([1, 2, 3])", json!([3, 2, 1])),
        (r#"toset(["b", "a", "b"])"#, json!(["a", "b"])),
        ("toset([3, 1, 3])", json!([1, 3])),
        ("tolist([1, 2])", json!([1, 2])),
        (r#"tomap({a = 1, b = "x"})"#, json!({"a": "1", "b": "x"})),
        (r#"tomap({a = 1, b = 2})"#, json!({"a": 1, "b": 2})),
        (r#"coalesce(null, "", "x", "y")"#, json!("x")),
        (r#"compact(["a", "", null, "b"])"#, json!(["a", "b"])),
        ("concat([1], [], [2, 3])", json!([1, 2, 3])),
        (
            "merge({a = 1, b = 1}, null, {b = 2})",
            json!({"a": 1, "b": 2}),
        ),
        (r#"zipmap(["a", "b"], [1, 2])"#, json!({"a": 1, "b": 2})),
        (
            r#"setproduct(["a", "b"], [1, 2])"#,
            json!([["a", 1], ["a", 2], ["b", 1], ["b", 2]]),
        ),
        ("range(3)", json!([0, 1, 2])),
        ("range(1, 4)", json!([1, 2, 3])),
        ("range(4, 1)", json!([4, 3, 2])),
        ("range(0, 10, 4)", json!([0, 4, 8])),
        ("range(0, 1, 0.5)", json!([0, 0.5])),
        ("range(0, 3, -1)", json!([])),
    ]);
}

#[test]
fn conversion_and_number_functions() {
    check(&[
        ("tostring(5)", json!("5")),
        ("tostring(true)", json!("true")),
        ("tostring(null)", json!(null)),
        (r#"tonumber("42")"#, json!(42)),
        (r#"tonumber("1.5")"#, json!(1.5)),
        ("min(3, 1, 2)", json!(1)),
        ("max(3, 1, 2)", json!(3)),
        ("max([4, 9]...)", json!(9)),
        ("abs(-2.5)", json!(2.5)),
        ("ceil(1.2)", json!(2)),
        ("floor(-1.2)", json!(-2)),
    ]);
}

#[test]
fn string_functions() {
    check(&[
        (r#"join("-", ["a", "b"], ["c"])"#, json!("a-b-c")),
        (r#"join(",", [1, 2])"#, json!("1,2")),
        (r#"split(",", "a,b,,c")"#, json!(["a", "b", "", "c"])),
        (r#"replace("a-b-c", "-", "_")"#, json!("a_b_c")),
        (
            r#"replace("c5.4xlarge", "/^([a-z]+)\\d.*$/", "$1")"#,
            json!("c"),
        ),
        (r#"upper("gecko")"#, json!("GECKO")),
        (r#"lower("GeCko")"#, json!("gecko")),
        (r#"trimspace("  x \n")"#, json!("x")),
        (r#"trimprefix("gecko-t", "gecko-")"#, json!("t")),
        (r#"trimprefix("gecko-t", "x")"#, json!("gecko-t")),
        (r#"trimsuffix("a.hcl", ".hcl")"#, json!("a")),
        (r#"startswith("gecko-t", "gecko")"#, json!(true)),
        (r#"endswith("gecko-t", "gecko")"#, json!(false)),
        (r#"substr("hello", 1, 3)"#, json!("ell")),
        (r#"substr("hello", -3, -1)"#, json!("llo")),
        (r#"substr("hello", 3, 10)"#, json!("lo")),
        (
            r#"format("%s-%d %q %t 100%% %5.2f|%-3s|%03d", "a", 7, "q", true, 3.14159, "x", 5)"#,
            json!("a-7 \"q\" true 100%  3.14|x  |005"),
        ),
        (r#"format("%v %v", [1], "s")"#, json!("[1] s")),
        (
            r#"format("%x %X %o %b %.2e %+d", 255, 255, 8, 5, 1234.5, 3)"#,
            json!("ff FF 10 101 1.23e+03 +3"),
        ),
        (
            r#"formatlist("%s-%s", ["a", "b"], "x")"#,
            json!(["a-x", "b-x"]),
        ),
        (
            r#"formatlist("%s=%d", ["a", "b"], [1, 2])"#,
            json!(["a=1", "b=2"]),
        ),
    ]);
}

#[test]
fn encoding_functions() {
    check(&[
        (r#"jsonencode({a = [1, true]})"#, json!("{\"a\":[1,true]}")),
        (
            r#"jsondecode("{\"a\": [1, \"x\"]}")"#,
            json!({"a": [1, "x"]}),
        ),
        (r#"yamlencode({a = [1, "x"]})"#, json!("a:\n- 1\n- x\n")),
        (
            r#"yamldecode("a: 1\nb: [x, true]\n")"#,
            json!({"a": 1, "b": ["x", true]}),
        ),
        (
            r#"yamldecode(yamlencode({k = "v: w"}))"#,
            json!({"k": "v: w"}),
        ),
        (r#"base64encode("hello")"#, json!("aGVsbG8=")),
        (r#"base64decode("aGVsbG8=")"#, json!("hello")),
        (
            r#"sha256("hello")"#,
            json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        ),
    ]);
}

#[test]
fn try_and_can_catch_evaluation_errors() {
    check(&[
        (r#"try({a = 1}.b, "fallback")"#, json!("fallback")),
        (r#"try({a = 1}.a, "fallback")"#, json!(1)),
        (r#"try(tonumber("x"), 0)"#, json!(0)),
        ("can({a = 1}.b)", json!(false)),
        ("can({a = 1}.a)", json!(true)),
        (r#"can(element([], 0))"#, json!(false)),
        // Inside a for, with the iteration names bound.
        (
            r#"[for m in [{spot = true}, {}] : try(m.spot, false)]"#,
            json!([true, false]),
        ),
        (
            r#"{for k, m in {a = {n = 1}, b = {}} : k => try(m.n, 0) if can(m.n) || k == "b"}"#,
            json!({"a": 1, "b": 0}),
        ),
        // The body may use other names (only those are copied into its context).
        (
            r#"[for k in ["a", "b"] : try({a = "A"}[k], "${k}-none")]"#,
            json!(["A", "b-none"]),
        ),
        (
            r#"[for r in [[1], []] : [for x in r : try(x.n, x)]]"#,
            json!([[1], []]),
        ),
        // Nested under other functions and in templates.
        (r#"upper(try({}.missing, "dflt"))"#, json!("DFLT")),
        (r#""x-${try({}.missing, "d")}-y""#, json!("x-d-y")),
        (r#"true ? try({}.m, 1) : 2"#, json!(1)),
    ]);
}

#[test]
fn try_works_in_templatefile_templates() {
    let text = config_with("", r#"templatefile("w.sh", { pool = { max = 2 } })"#);
    let dir = write(
        &text,
        &[(
            "w.sh",
            "max=${pool.max} spot=${try(pool.spot, false)} ok=${can(pool.max)}",
        )],
    );
    let loaded = load_dir(dir.path(), &Inputs::default());
    let config = loaded
        .config
        .as_ref()
        .unwrap_or_else(|| panic!("{}", rendered(&loaded)));
    assert_eq!(
        config.worker_types["w"].user_data.as_deref(),
        Some("max=2 spot=false ok=true")
    );
    // A name the template does not have is a mistake, not a failed value.
    let dir = write(&text, &[("w.sh", "${try(nope, \"x\")}")]);
    let loaded = load_dir(dir.path(), &Inputs::default());
    assert!(loaded.config.is_none());
    let shown = rendered(&loaded);
    assert!(shown.contains("nope"), "{shown}");
}

#[test]
fn try_inside_a_for_sees_locals_and_variables() {
    let text = config_with(
        r#"  defaults = { spot = false }
  pools    = { a = { spot = true }, b = {} }"#,
        // In a worker type, after every local is known (the shared context).
        "jsonencode({ for k, p in local.pools : k => try(p.spot, local.defaults.spot) if can(p) })",
    );
    let (_dir, loaded) = load(&text, &Inputs::default());
    let config = loaded
        .config
        .as_ref()
        .unwrap_or_else(|| panic!("{}", rendered(&loaded)));
    let got: Value =
        serde_json::from_str(config.worker_types["w"].user_data.as_deref().unwrap_or(""))
            .expect("json");
    assert_eq!(got, json!({"a": true, "b": false}));
}

#[test]
fn try_does_not_hide_undefined_references_or_unknown_functions() {
    let (code, message, _, _) = error_of(r#"try(local.nope, "d")"#);
    assert_eq!(code, "undefined-reference", "{message}");
    let (code, message, _, _) = error_of(r#"try(nofunc(1), "d")"#);
    assert_eq!(code, "undefined-reference", "{message}");
    assert!(message.contains("nofunc"), "{message}");
}

#[test]
fn try_with_every_argument_failing_reports_the_last_error() {
    let (code, message, line, _) = error_of(r#"try({}.a, {}.b)"#);
    assert_eq!(line, x_line());
    assert!(code == "undefined-reference" || code == "type", "{code}");
    assert!(message.contains('b'), "{message}");
}

#[test]
fn wrong_arguments_are_function_errors_at_the_call() {
    // (expression, column of the failing call within it, message)
    for (expr, column, message) in [
        (
            "length(1)",
            0,
            "argument 1 must be a string, list or map, got a number",
        ),
        ("length()", 0, "takes 1 argument, got 0"),
        (r#"keys("a")"#, 0, "must be a map or object"),
        (r#"lookup({}, "k")"#, 0, "no key `k` and no default given"),
        ("element([], 0)", 0, "empty list"),
        ("element([1], -1)", 0, "must not be negative"),
        ("element([1], 1.5)", 0, "whole number"),
        ("sort([[1]])", 0, "list of strings"),
        (r#"tonumber("x1")"#, 0, "not a number"),
        ("tostring([1])", 0, "cannot convert a list to a string"),
        ("tomap({a = [1], b = 1})", 0, "of one type"),
        (r#"coalesce(null, "")"#, 0, "null or an empty string"),
        ("concat([1], 2)", 0, "argument 2 must be a list"),
        ("merge({}, [1])", 0, "argument 2 must be a map or object"),
        (r#"zipmap(["a"], [])"#, 0, "different lengths"),
        ("setproduct([1])", 0, "at least 2 arguments"),
        ("range(0, 1, 0)", 0, "step must not be zero"),
        ("range(2000)", 0, "more than 1024 values"),
        (r#"join(",", [[1]])"#, 0, "lists of strings"),
        (
            r#"replace("a", "/(/", "b")"#,
            0,
            "not a valid regular expression",
        ),
        (r#"upper({})"#, 0, "must be a string, got an object"),
        (r#"substr("abc", 1)"#, 0, "takes 3 arguments, got 2"),
        (r#"format("%d", "x")"#, 0, "`%d` cannot format a string"),
        (r#"format("%d", 1.5)"#, 0, "whole number"),
        (r#"format("%s")"#, 0, "no argument left"),
        (
            r#"format("x", 1)"#,
            0,
            "1 arguments given but the format string uses 0",
        ),
        (r#"format("%y", 1)"#, 0, "not a format verb"),
        (r#"format("%99999d", 1)"#, 0, "at most 1000"),
        (
            r#"formatlist("%s%s", ["a"], ["b", "c"])"#,
            0,
            "of one length",
        ),
        (r#"jsondecode("{")"#, 0, "not valid JSON"),
        (r#"yamldecode("a: [")"#, 0, "not valid YAML"),
        (r#"base64decode("!!")"#, 0, "not valid base64"),
        ("min()", 0, "at least 1 argument"),
        (r#"abs("x")"#, 0, "must be a number"),
        (r#"can(1, 2)"#, 0, "takes 1 argument"),
        // The failing call inside a larger expression is the one pointed at.
        (r#"concat(["a"], [upper([])])"#, 15, "upper() failed"),
        (
            r#""${lower("A")}-${upper(1 == 1 ? [] : [])}""#,
            17,
            "upper() failed",
        ),
    ] {
        assert_function_error(expr, column, message);
    }
}

#[test]
fn outputs_past_the_budget_are_refused_not_built() {
    // range is capped at Terraform's 1024; setproduct and replace by the budget.
    let (code, message, line, _) = error_of("setproduct(range(1000), range(1000), range(1000))");
    assert_eq!(line, x_line());
    assert_eq!(code, "too-large", "{message}");
    let big = "[for i in range(1000) : \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]";
    let (code, message, _, _) = error_of(&format!(
        "[for a in {big} : [for b in {big} : [for c in {big} : c]]]"
    ));
    assert_eq!(code, "too-large", "{message}");
    let (code, message, _, _) = error_of(r#"formatlist("%1000s", range(1000), range(1000))"#);
    assert!(
        code == "too-large" || code == "function",
        "{code}: {message}"
    );
}

#[test]
fn a_yaml_alias_bomb_is_refused() {
    // Nine levels of nine aliases: 9^9 strings if expanded.
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\\n");
    for n in 1..10 {
        let p = n - 1;
        yaml.push_str(&format!(
            "a{n}: &a{n} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\\n"
        ));
    }
    let (code, message, _, _) = error_of(&format!("yamldecode(\"{yaml}\")"));
    assert!(
        code == "function" || code == "too-large",
        "{code}: {message}"
    );
}

#[test]
fn sensitive_values_stay_sensitive_through_functions_and_errors_hide_them() {
    let secret = "canary-71f3-secret";
    let text = format!(
        r#"{HEAD}
variable "token" {{
  sensitive = true
}}

locals {{
  via = upper(replace(try(var.token, "x"), "a", "b"))
}}

worker_type "w" {{
  ami_set = ami_set.linux
  instance_type "m5.large" {{ capacity = 1 }}
  capacity {{
    max = 2
  }}
  user_data = join(",", formatlist("%s", [local.via, base64encode(var.token)]))
}}
"#
    );
    let inputs = Inputs {
        vars: vec![format!("token={secret}")],
        ..Inputs::default()
    };
    let (_dir, loaded) = load(&text, &inputs);
    let config = loaded
        .config
        .as_ref()
        .unwrap_or_else(|| panic!("{}", rendered(&loaded)));
    assert!(config.worker_types["w"].user_data_sensitive);
    // A failing function over a secret does not show it.
    let failing = text.replace(
        r#"upper(replace(try(var.token, "x"), "a", "b"))"#,
        r#"tonumber(var.token)"#,
    );
    let (_dir, loaded) = load(&failing, &inputs);
    let shown = rendered(&loaded);
    assert!(!loaded.diagnostics.is_empty());
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("sensitive"), "{shown}");
}

#[test]
fn unknown_functions_suggest_the_nearest_name() {
    let (code, message, _, _) = error_of(r#"lenght([1])"#);
    assert_eq!(code, "undefined-reference");
    assert!(message.contains("lenght"), "{message}");
}
