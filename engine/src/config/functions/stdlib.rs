//! Terraform's functions, by name and meaning, on hcl-rs values.
//!
//! Every function takes its arguments as `Any` and checks them itself:
//! hcl-rs's own checks quote the value they were given (which may be a
//! secret) and count positions from zero. Messages here name the argument
//! by position from one and its type, never its value. Sets are lists kept
//! sorted and without duplicates (what Terraform's sets of strings iterate
//! as); maps are objects.

use super::super::budget::{size_of, VALUE_BUDGET};
use super::describe;
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::{Map, Number, Value};

type Out = Result<Value, String>;

/// Declares in `ctx` the functions of this module whose names `keep`.
pub fn declare_where(ctx: &mut Context, keep: impl Fn(&str) -> bool) {
    for (name, func) in FUNCS.iter().filter(|(name, _)| keep(name)) {
        ctx.declare_func(
            *name,
            FuncDef::builder()
                .variadic_param(ParamType::Any)
                .build(*func),
        );
    }
}

/// The functions of this module, by name.
pub const FUNCS: &[(&str, hcl::eval::Func)] = &[
    ("length", length),
    ("keys", keys),
    ("values", values),
    ("contains", contains),
    ("lookup", lookup),
    ("element", element),
    ("flatten", flatten),
    ("distinct", distinct),
    ("sort", sort),
    ("reverse", reverse),
    ("toset", toset),
    ("tolist", tolist),
    ("tomap", tomap),
    ("tostring", tostring),
    ("tonumber", tonumber),
    ("coalesce", coalesce),
    ("compact", compact),
    ("concat", concat),
    ("merge", merge),
    ("zipmap", zipmap),
    ("setproduct", setproduct),
    ("range", range),
    ("join", join),
    ("split", split),
    ("replace", replace),
    ("upper", upper),
    ("lower", lower),
    ("trimspace", trimspace),
    ("trimprefix", trimprefix),
    ("trimsuffix", trimsuffix),
    ("startswith", startswith),
    ("endswith", endswith),
    ("substr", substr),
    ("format", format),
    ("formatlist", formatlist),
    ("jsonencode", jsonencode),
    ("jsondecode", jsondecode),
    ("yamlencode", yamlencode),
    ("yamldecode", yamldecode),
    ("base64encode", base64encode),
    ("base64decode", base64decode),
    ("sha256", sha256),
    ("min", min),
    ("max", max),
    ("abs", abs),
    ("ceil", ceil),
    ("floor", floor),
    // Reached only where `try`/`can` could not be evaluated lazily (inside
    // template directives): their arguments have then already succeeded.
    ("try", try_eager),
    ("can", can_eager),
];

/// Most elements `range` makes (Terraform's limit too).
pub const MAX_RANGE: usize = 1024;

/// Widest field a `format` verb may pad to.
pub const MAX_WIDTH: usize = 1000;

// ---- argument checks -------------------------------------------------------

fn count(args: &FuncArgs, min: usize, max: Option<usize>) -> Result<(), String> {
    let n = args.len();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    match max {
        Some(max) if min == max && n != min => {
            Err(format!("takes {min} argument{}, got {n}", plural(min)))
        }
        Some(max) if n < min || n > max => Err(format!("takes {min} to {max} arguments, got {n}")),
        None if n < min => Err(format!(
            "takes at least {min} argument{}, got {n}",
            plural(min)
        )),
        _ => Ok(()),
    }
}

fn wrong(index: usize, wanted: &str, got: &Value) -> String {
    format!(
        "argument {} must be {wanted}, got {}",
        index + 1,
        describe(got)
    )
}

/// A string, or a number or bool converted to one (as Terraform converts).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string(args: &FuncArgs, index: usize) -> Result<String, String> {
    let value = &args[index];
    text_of(value).ok_or_else(|| wrong(index, "a string", value))
}

/// A number, or a string that reads as one.
fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn number(args: &FuncArgs, index: usize) -> Result<f64, String> {
    let value = &args[index];
    number_of(value).ok_or_else(|| wrong(index, "a number", value))
}

fn integer(args: &FuncArgs, index: usize) -> Result<i64, String> {
    let f = number(args, index)?;
    if f.fract() != 0.0 || f.abs() > 9.0e15 {
        return Err(format!("argument {} must be a whole number", index + 1));
    }
    Ok(f as i64)
}

fn list(args: &FuncArgs, index: usize) -> Result<&Vec<Value>, String> {
    match &args[index] {
        Value::Array(items) => Ok(items),
        other => Err(wrong(index, "a list", other)),
    }
}

fn map(args: &FuncArgs, index: usize) -> Result<&Map<String, Value>, String> {
    match &args[index] {
        Value::Object(map) => Ok(map),
        other => Err(wrong(index, "a map or object", other)),
    }
}

/// A number as a value: whole numbers as integers, so they print as `3`, not `3.0`.
pub fn num(f: f64) -> Out {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Ok(Value::Number(Number::from(f as i64)));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite number".to_string())
}

/// Refuses a result past the evaluation budget before it is built.
fn within_budget(size: u64) -> Result<(), String> {
    if size > VALUE_BUDGET {
        Err(format!(
            "the result would be larger than the limit of {} MiB",
            VALUE_BUDGET / (1024 * 1024)
        ))
    } else {
        Ok(())
    }
}

// ---- collections -----------------------------------------------------------

fn length(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let n = match &args[0] {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        other => return Err(wrong(0, "a string, list or map", other)),
    };
    Ok(Value::from(n as u64))
}

fn sorted_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn keys(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let map = map(&args, 0)?;
    Ok(Value::Array(
        sorted_entries(map)
            .into_iter()
            .map(|(k, _)| Value::from(k.as_str()))
            .collect(),
    ))
}

fn values(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let map = map(&args, 0)?;
    Ok(Value::Array(
        sorted_entries(map)
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect(),
    ))
}

fn contains(args: FuncArgs) -> Out {
    count(&args, 2, Some(2))?;
    let items = list(&args, 0)?;
    Ok(Value::Bool(items.contains(&args[1])))
}

fn lookup(args: FuncArgs) -> Out {
    count(&args, 2, Some(3))?;
    let map = map(&args, 0)?;
    let key = string(&args, 1)?;
    match (map.get(&key), args.get(2)) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(format!("no key `{key}` and no default given")),
    }
}

fn element(args: FuncArgs) -> Out {
    count(&args, 2, Some(2))?;
    let items = list(&args, 0)?;
    let index = integer(&args, 1)?;
    if items.is_empty() {
        return Err("cannot take an element of an empty list".into());
    }
    if index < 0 {
        return Err("the index must not be negative".into());
    }
    // Terraform's element wraps around.
    Ok(items[(index as usize) % items.len()].clone())
}

fn flatten_into(items: &[Value], out: &mut Vec<Value>) {
    for item in items {
        match item {
            Value::Array(inner) => flatten_into(inner, out),
            other => out.push(other.clone()),
        }
    }
}

fn flatten(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let mut out = Vec::new();
    flatten_into(list(&args, 0)?, &mut out);
    Ok(Value::Array(out))
}

fn dedup(items: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

fn distinct(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    Ok(Value::Array(dedup(list(&args, 0)?)))
}

fn sort(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let items = list(&args, 0)?;
    let mut texts = items
        .iter()
        .map(|v| {
            text_of(v)
                .ok_or_else(|| format!("sort takes a list of strings; it holds {}", describe(v)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    texts.sort();
    Ok(Value::Array(texts.into_iter().map(Value::String).collect()))
}

fn reverse(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let mut items = list(&args, 0)?.clone();
    items.reverse();
    Ok(Value::Array(items))
}

fn toset(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let items = dedup(list(&args, 0)?);
    Ok(Value::Array(ordered_set(items)))
}

/// A set's order: numbers by value, strings (and numbers or bools among
/// them, converted, as Terraform unifies them) lexically; anything else as given.
pub fn ordered_set(items: Vec<Value>) -> Vec<Value> {
    if items.iter().all(|v| matches!(v, Value::Number(_))) {
        let mut items = items;
        items.sort_by(|a, b| {
            let (a, b) = (number_of(a).unwrap_or(0.0), number_of(b).unwrap_or(0.0));
            a.total_cmp(&b)
        });
        return items;
    }
    if items.iter().any(|v| matches!(v, Value::String(_)))
        && items.iter().all(|v| text_of(v).is_some())
    {
        let mut texts: Vec<String> = items.iter().filter_map(text_of).collect();
        texts.sort();
        texts.dedup();
        return texts.into_iter().map(Value::String).collect();
    }
    items
}

fn tolist(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    match &args[0] {
        Value::Null => Ok(Value::Null),
        _ => Ok(Value::Array(list(&args, 0)?.clone())),
    }
}

fn tomap(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    if args[0] == Value::Null {
        return Ok(Value::Null);
    }
    let map = map(&args, 0)?;
    let primitive = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    let kinds: std::collections::BTreeSet<&str> = map
        .values()
        .filter(|v| **v != Value::Null)
        .map(describe)
        .collect();
    if kinds.len() <= 1 {
        return Ok(Value::Object(map.clone()));
    }
    // Mixed primitives become strings, as Terraform unifies a map's element type.
    if map.values().all(|v| primitive(v) || *v == Value::Null) {
        return Ok(Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), text_of(v).map_or(Value::Null, Value::String)))
                .collect(),
        ));
    }
    Err(
        "the values of a map must all be of one type; these mix collections and other values"
            .into(),
    )
}

fn tostring(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    match &args[0] {
        Value::Null => Ok(Value::Null),
        other => text_of(other)
            .map(Value::String)
            .ok_or_else(|| format!("cannot convert {} to a string", describe(other))),
    }
}

fn tonumber(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => Ok(Value::Number(*n)),
        Value::String(_) => {
            num(number(&args, 0).map_err(|_| "this string is not a number".to_string())?)
        }
        other => Err(format!("cannot convert {} to a number", describe(other))),
    }
}

fn coalesce(args: FuncArgs) -> Out {
    count(&args, 1, None)?;
    args.iter()
        .find(|v| !matches!(v, Value::Null) && **v != Value::String(String::new()))
        .cloned()
        .ok_or_else(|| "every argument is null or an empty string".to_string())
}

fn compact(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let items = list(&args, 0)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            other => out.push(Value::String(text_of(other).ok_or_else(|| {
                format!(
                    "compact takes a list of strings; it holds {}",
                    describe(other)
                )
            })?)),
        }
    }
    Ok(Value::Array(out))
}

fn concat(args: FuncArgs) -> Out {
    count(&args, 1, None)?;
    let mut joined = Vec::new();
    for index in 0..args.len() {
        joined.extend(list(&args, index)?.iter().cloned());
    }
    Ok(Value::Array(joined))
}

fn merge(args: FuncArgs) -> Out {
    let mut merged = Map::new();
    for index in 0..args.len() {
        match &args[index] {
            // Terraform skips null arguments.
            Value::Null => {}
            _ => merged.extend(
                map(&args, index)?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            ),
        }
    }
    Ok(Value::Object(merged))
}

fn zipmap(args: FuncArgs) -> Out {
    count(&args, 2, Some(2))?;
    let (keys, values) = (list(&args, 0)?, list(&args, 1)?);
    if keys.len() != values.len() {
        return Err(format!(
            "the lists of keys and values have different lengths ({} and {})",
            keys.len(),
            values.len()
        ));
    }
    let mut out = Map::new();
    for (key, value) in keys.iter().zip(values) {
        let key =
            text_of(key).ok_or_else(|| format!("keys must be strings, not {}", describe(key)))?;
        out.insert(key, value.clone());
    }
    Ok(Value::Object(out))
}

fn setproduct(args: FuncArgs) -> Out {
    count(&args, 2, None)?;
    let lists = (0..args.len())
        .map(|i| list(&args, i))
        .collect::<Result<Vec<_>, _>>()?;
    // Bounded before it is built: the product of the lengths, each a list of one per argument.
    let mut combinations: u64 = 1;
    let mut each: u64 = 1;
    for items in &lists {
        combinations = combinations.saturating_mul(items.len() as u64);
        each = each.saturating_add(items.iter().map(size_of).max().unwrap_or(0));
    }
    within_budget(combinations.saturating_mul(each))?;
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    for items in lists {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                items.iter().map(move |item| {
                    let mut next = prefix.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(Value::Array(out.into_iter().map(Value::Array).collect()))
}

fn range(args: FuncArgs) -> Out {
    count(&args, 1, Some(3))?;
    let (start, limit) = match args.len() {
        1 => (0.0, number(&args, 0)?),
        _ => (number(&args, 0)?, number(&args, 1)?),
    };
    let step = match args.len() {
        3 => number(&args, 2)?,
        _ if start <= limit => 1.0,
        _ => -1.0,
    };
    if step == 0.0 {
        return Err("the step must not be zero".into());
    }
    if (step > 0.0 && start > limit) || (step < 0.0 && start < limit) {
        // Terraform gives an empty list when the step walks away from the limit.
        return Ok(Value::Array(Vec::new()));
    }
    let mut out = Vec::new();
    let mut value = start;
    while (step > 0.0 && value < limit) || (step < 0.0 && value > limit) {
        if out.len() >= MAX_RANGE {
            return Err(format!(
                "more than {MAX_RANGE} values would be generated; use a larger step or a smaller span"
            ));
        }
        out.push(num(value)?);
        value += step;
    }
    Ok(Value::Array(out))
}

// ---- strings ---------------------------------------------------------------

fn join(args: FuncArgs) -> Out {
    count(&args, 2, None)?;
    let separator = string(&args, 0)?;
    let mut parts = Vec::new();
    for index in 1..args.len() {
        for item in list(&args, index)? {
            parts.push(text_of(item).ok_or_else(|| {
                format!(
                    "join takes lists of strings; argument {} holds {}",
                    index + 1,
                    describe(item)
                )
            })?);
        }
    }
    Ok(Value::String(parts.join(&separator)))
}

fn split(args: FuncArgs) -> Out {
    count(&args, 2, Some(2))?;
    let (separator, text) = (string(&args, 0)?, string(&args, 1)?);
    let parts: Vec<Value> = if separator.is_empty() {
        text.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        text.split(separator.as_str()).map(Value::from).collect()
    };
    Ok(Value::Array(parts))
}

fn replace(args: FuncArgs) -> Out {
    count(&args, 3, Some(3))?;
    let (text, pattern, with) = (string(&args, 0)?, string(&args, 1)?, string(&args, 2)?);
    let regex = pattern.len() >= 2 && pattern.starts_with('/') && pattern.ends_with('/');
    // An empty pattern matches between every character: bound that too.
    let matches = (text.len() as u64).saturating_add(1);
    within_budget((text.len() as u64).saturating_add(matches.saturating_mul(with.len() as u64)))?;
    if regex {
        let re = regex::RegexBuilder::new(&pattern[1..pattern.len() - 1])
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("the pattern is not a valid regular expression: {e}"))?;
        // Go's `$1` and `${name}` references mean the same in Rust's regex.
        Ok(Value::String(
            re.replace_all(&text, with.as_str()).into_owned(),
        ))
    } else if pattern.is_empty() {
        Ok(Value::String(text))
    } else {
        Ok(Value::String(text.replace(pattern.as_str(), &with)))
    }
}

fn one_string(args: &FuncArgs) -> Result<String, String> {
    count(args, 1, Some(1))?;
    string(args, 0)
}

fn upper(args: FuncArgs) -> Out {
    Ok(Value::String(one_string(&args)?.to_uppercase()))
}

fn lower(args: FuncArgs) -> Out {
    Ok(Value::String(one_string(&args)?.to_lowercase()))
}

fn trimspace(args: FuncArgs) -> Out {
    Ok(Value::String(one_string(&args)?.trim().to_string()))
}

fn two_strings(args: &FuncArgs) -> Result<(String, String), String> {
    count(args, 2, Some(2))?;
    Ok((string(args, 0)?, string(args, 1)?))
}

fn trimprefix(args: FuncArgs) -> Out {
    let (text, prefix) = two_strings(&args)?;
    Ok(Value::String(
        text.strip_prefix(prefix.as_str())
            .unwrap_or(&text)
            .to_string(),
    ))
}

fn trimsuffix(args: FuncArgs) -> Out {
    let (text, suffix) = two_strings(&args)?;
    Ok(Value::String(
        text.strip_suffix(suffix.as_str())
            .unwrap_or(&text)
            .to_string(),
    ))
}

fn startswith(args: FuncArgs) -> Out {
    let (text, prefix) = two_strings(&args)?;
    Ok(Value::Bool(text.starts_with(prefix.as_str())))
}

fn endswith(args: FuncArgs) -> Out {
    let (text, suffix) = two_strings(&args)?;
    Ok(Value::Bool(text.ends_with(suffix.as_str())))
}

fn substr(args: FuncArgs) -> Out {
    count(&args, 3, Some(3))?;
    let text = string(&args, 0)?;
    let (offset, length) = (integer(&args, 1)?, integer(&args, 2)?);
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len() as i64;
    // A negative offset counts from the end; a negative length means "to the end".
    let start = if offset < 0 {
        (len + offset).max(0)
    } else {
        offset.min(len)
    };
    let end = if length < 0 {
        len
    } else {
        (start + length).min(len)
    };
    Ok(Value::String(
        chars[start as usize..end as usize].iter().collect(),
    ))
}

/// One `%` verb of a format string: flags, width, precision, verb.
struct Verb {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
    verb: char,
}

fn parse_digits(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<Option<usize>, String> {
    let mut digits = String::new();
    while let Some(c) = chars.peek().copied().filter(char::is_ascii_digit) {
        digits.push(c);
        chars.next();
    }
    if digits.is_empty() {
        return Ok(None);
    }
    match digits.parse::<usize>() {
        Ok(n) if n <= MAX_WIDTH => Ok(Some(n)),
        _ => Err(format!(
            "widths and precisions in a format string may be at most {MAX_WIDTH}"
        )),
    }
}

fn parse_verb(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<Verb, String> {
    let mut verb = Verb {
        minus: false,
        plus: false,
        zero: false,
        space: false,
        width: None,
        precision: None,
        verb: ' ',
    };
    while let Some(c) = chars.peek().copied() {
        match c {
            '-' => verb.minus = true,
            '+' => verb.plus = true,
            '0' => verb.zero = true,
            ' ' => verb.space = true,
            '#' => {}
            _ => break,
        }
        chars.next();
    }
    verb.width = parse_digits(chars)?;
    if chars.peek() == Some(&'.') {
        chars.next();
        verb.precision = Some(parse_digits(chars)?.unwrap_or(0));
    }
    verb.verb = chars
        .next()
        .ok_or_else(|| "the format string ends in the middle of a `%` verb".to_string())?;
    Ok(verb)
}

fn sign(verb: &Verb, negative: bool, digits: String) -> String {
    let sign = if negative {
        "-"
    } else if verb.plus {
        "+"
    } else if verb.space {
        " "
    } else {
        ""
    };
    format!("{sign}{digits}")
}

fn pad(verb: &Verb, body: String, numeric: bool) -> String {
    let width = verb.width.unwrap_or(0);
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if verb.minus {
        format!("{body}{}", " ".repeat(fill))
    } else if verb.zero && numeric {
        let (sign, digits) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), body[1..].to_string()),
            _ => (String::new(), body),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

fn format_one(verb: &Verb, value: &Value) -> Result<String, String> {
    let cannot = || format!("`%{}` cannot format {}", verb.verb, describe(value));
    let whole = |value: &Value| -> Result<i64, String> {
        match number_of(value) {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(f as i64),
            Some(_) => Err(format!("`%{}` takes a whole number", verb.verb)),
            None => Err(cannot()),
        }
    };
    let (body, numeric) = match verb.verb {
        'v' => match value {
            Value::String(s) => (s.clone(), false),
            Value::Number(n) => (n.to_string(), true),
            Value::Bool(b) => (b.to_string(), false),
            Value::Null => ("null".to_string(), false),
            other => (
                serde_json::to_string(other).map_err(|e| e.to_string())?,
                false,
            ),
        },
        's' => {
            let mut s = text_of(value).ok_or_else(cannot)?;
            if let Some(p) = verb.precision {
                s = s.chars().take(p).collect();
            }
            (s, false)
        }
        'q' => {
            let s = text_of(value).ok_or_else(cannot)?;
            (serde_json::to_string(&s).map_err(|e| e.to_string())?, false)
        }
        't' => match value {
            Value::Bool(b) => (b.to_string(), false),
            Value::String(s) if s == "true" || s == "false" => (s.clone(), false),
            _ => return Err(cannot()),
        },
        'd' => {
            let n = whole(value)?;
            (sign(verb, n < 0, n.unsigned_abs().to_string()), true)
        }
        'x' | 'X' | 'o' | 'b' => {
            let n = whole(value)?;
            let m = n.unsigned_abs();
            let digits = match verb.verb {
                'x' => format!("{m:x}"),
                'X' => format!("{m:X}"),
                'o' => format!("{m:o}"),
                _ => format!("{m:b}"),
            };
            (sign(verb, n < 0, digits), true)
        }
        'f' | 'e' | 'E' | 'g' | 'G' => {
            let f = number_of(value).ok_or_else(cannot)?;
            let p = verb.precision;
            let digits = match verb.verb {
                'f' => format!("{:.*}", p.unwrap_or(6), f.abs()),
                'e' => go_exponent(format!("{:.*e}", p.unwrap_or(6), f.abs())),
                'E' => go_exponent(format!("{:.*E}", p.unwrap_or(6), f.abs())),
                _ => match p {
                    Some(p) => format!("{:.*}", p, f.abs()),
                    None => format!("{}", f.abs()),
                },
            };
            (sign(verb, f < 0.0, digits), true)
        }
        other => {
            return Err(format!(
            "`%{other}` is not a format verb (use %s, %d, %f, %q, %v, %t, %x, %o, %b, %e or %g)"
        ))
        }
    };
    Ok(pad(verb, body, numeric))
}

/// Rust writes `1.5e0`; Terraform (Go) writes `1.5e+00`.
fn go_exponent(rust: String) -> String {
    match rust.find(['e', 'E']) {
        Some(at) => {
            let (mantissa, exponent) = rust.split_at(at);
            let (letter, digits) = exponent.split_at(1);
            let (sign, digits) = match digits.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("+", digits),
            };
            format!("{mantissa}{letter}{sign}{digits:0>2}")
        }
        None => rust,
    }
}

/// Renders `spec` with `values`, as Terraform's `format`.
fn render(spec: &str, values: &[Value]) -> Result<String, String> {
    let mut out = String::with_capacity(spec.len());
    let mut chars = spec.chars().peekable();
    let mut next = 0usize;
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let verb = parse_verb(&mut chars)?;
        let value = values
            .get(next)
            .ok_or_else(|| format!("`%{}` has no argument left to format", verb.verb))?;
        next += 1;
        out.push_str(&format_one(&verb, value)?);
    }
    if next < values.len() {
        return Err(format!(
            "{} arguments given but the format string uses {next}",
            values.len()
        ));
    }
    Ok(out)
}

fn format(args: FuncArgs) -> Out {
    count(&args, 1, None)?;
    let spec = string(&args, 0)?;
    render(&spec, &args[1..]).map(Value::String)
}

fn formatlist(args: FuncArgs) -> Out {
    count(&args, 1, None)?;
    let spec = string(&args, 0)?;
    let mut length: Option<usize> = None;
    for (index, value) in args.iter().enumerate().skip(1) {
        if let Value::Array(items) = value {
            match length {
                Some(n) if n != items.len() => {
                    return Err(format!(
                        "argument {} is a list of {} elements, but an earlier list has {n}; lists must be of one length",
                        index + 1,
                        items.len()
                    ))
                }
                _ => length = Some(items.len()),
            }
        }
    }
    let rows = length.unwrap_or(1);
    // Each row is at most the format string padded, plus its arguments.
    let per_row = (spec.len() as u64)
        .saturating_mul(MAX_WIDTH as u64)
        .min(VALUE_BUDGET)
        .saturating_add(args[1..].iter().map(size_of).sum::<u64>());
    within_budget((rows as u64).saturating_mul(per_row.min(64 * 1024)))?;
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        let values: Vec<Value> = args[1..]
            .iter()
            .map(|v| match v {
                Value::Array(items) => items[row].clone(),
                other => other.clone(),
            })
            .collect();
        out.push(Value::String(render(&spec, &values)?));
    }
    Ok(Value::Array(out))
}

// ---- encodings -------------------------------------------------------------

fn jsonencode(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    serde_json::to_string(&args[0])
        .map(Value::String)
        .map_err(|e| e.to_string())
}

fn jsondecode(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let text = string(&args, 0)?;
    // serde_json refuses nesting past 128 levels; the position is shown, not the text.
    serde_json::from_str::<Value>(&text).map_err(|e| {
        format!(
            "the string is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

fn yamlencode(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    serde_yaml_ng::to_string(&args[0])
        .map(Value::String)
        .map_err(|e| e.to_string())
}

fn yamldecode(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    let text = string(&args, 0)?;
    // The parser bounds nesting and alias expansion; its message quotes no
    // more than a position, not the text (it may be a secret).
    serde_yaml_ng::from_str::<Value>(&text).map_err(|e| match e.location() {
        Some(at) => format!(
            "the string is not valid YAML for a value (line {}, column {})",
            at.line(),
            at.column()
        ),
        None => "the string is not valid YAML for a value".to_string(),
    })
}

fn base64encode(args: FuncArgs) -> Out {
    use base64::Engine;
    let text = one_string(&args)?;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
    ))
}

fn base64decode(args: FuncArgs) -> Out {
    use base64::Engine;
    let text = one_string(&args)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim().as_bytes())
        .map_err(|e| format!("the string is not valid base64: {e}"))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the decoded bytes are not valid UTF-8 text".to_string())
}

fn sha256(args: FuncArgs) -> Out {
    use sha2::Digest;
    let text = one_string(&args)?;
    let digest = sha2::Sha256::digest(text.as_bytes());
    Ok(Value::String(
        digest.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

// ---- numbers ---------------------------------------------------------------

fn numbers(args: &FuncArgs) -> Result<Vec<f64>, String> {
    count(args, 1, None)?;
    (0..args.len()).map(|i| number(args, i)).collect()
}

fn min(args: FuncArgs) -> Out {
    num(numbers(&args)?.into_iter().fold(f64::INFINITY, f64::min))
}

fn max(args: FuncArgs) -> Out {
    num(numbers(&args)?
        .into_iter()
        .fold(f64::NEG_INFINITY, f64::max))
}

fn one_number(args: &FuncArgs) -> Result<f64, String> {
    count(args, 1, Some(1))?;
    number(args, 0)
}

fn abs(args: FuncArgs) -> Out {
    num(one_number(&args)?.abs())
}

fn ceil(args: FuncArgs) -> Out {
    num(one_number(&args)?.ceil())
}

fn floor(args: FuncArgs) -> Out {
    num(one_number(&args)?.floor())
}

fn try_eager(args: FuncArgs) -> Out {
    count(&args, 1, None)?;
    Ok(args[0].clone())
}

fn can_eager(args: FuncArgs) -> Out {
    count(&args, 1, Some(1))?;
    Ok(Value::Bool(true))
}
