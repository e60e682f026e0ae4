//! The functions a configuration may call: Terraform's (in [`stdlib`], with
//! `try` and `can` in [`lazy`]), and `file` and `templatefile`.
//!
//! `hcl::eval::FuncDef` takes a plain `fn`, so `file` and `templatefile` cannot
//! close over the config directory. Evaluation is synchronous, so the
//! directory, and the log of the files read ([`ReadLog`]), live in
//! thread-locals set by [`ConfigDirGuard`] for exactly the duration of a load;
//! the helper threads of the same load (worker types are decoded in
//! parallel) join it with [`ConfigDirGuard::join`].

pub mod lazy;
pub mod stdlib;

pub use lazy::{call_span, evaluate};

use super::budget::Bound;
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::Value;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Largest file `file()`/`templatefile()` will read (user data is at most 16 KiB in EC2; keys are small).
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The files `file()`/`templatefile()` read during one load, relative to
/// the config directory, shared by the threads of that load: a recorded
/// version keeps exactly these beside the `*.hcl` files. Each log made is
/// a new load, whose caches no other load sees.
#[derive(Clone, Debug)]
pub struct ReadLog {
    files: Arc<Mutex<BTreeSet<String>>>,
    load: u64,
}

impl Default for ReadLog {
    fn default() -> ReadLog {
        static LOADS: AtomicU64 = AtomicU64::new(1);
        ReadLog {
            files: Arc::default(),
            load: LOADS.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl ReadLog {
    /// The files read so far, sorted.
    pub fn files(&self) -> Vec<String> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.iter().cloned().collect()
    }
}

thread_local! {
    static CONFIG_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    static READ_LOG: RefCell<Option<ReadLog>> = const { RefCell::new(None) };
    /// The load the caches below belong to ([`ReadLog`]'s number; 0 for
    /// none). They are kept when a thread's part in a load ends: a
    /// parallel loop joins the load once per piece of work, and each
    /// piece would otherwise read and parse the same templates again.
    static CACHED_LOAD: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// What `file()`/`templatefile()` read during this load, by the path as
    /// written: a fleet of thousands of worker types names the same few user
    /// data templates thousands of times, and each read is several syscalls.
    static READ_CACHE: RefCell<HashMap<String, Result<String, String>>> = RefCell::new(HashMap::new());
    /// Parsed templates of this load, by path as written, each with a
    /// context holding the functions whose names occur in its text (every
    /// function it can call: copying a context with every function for each
    /// render was most of the time of `templatefile`).
    static TEMPLATE_CACHE: RefCell<HashMap<String, Rc<(hcl::Template, Context<'static>)>>> =
        RefCell::new(HashMap::new());
    /// The same templates as syntax trees, for bounding their rendered size.
    static TEMPLATE_TREES: RefCell<HashMap<String, Option<Rc<hcl_edit::template::Template>>>> =
        RefCell::new(HashMap::new());
    /// The files a path with an interpolation could name, by its literal
    /// prefix and suffix (see [`template_candidates`]).
    static CANDIDATES: RefCell<HashMap<(String, String), Candidates>> =
        RefCell::new(HashMap::new());
}

/// What [`template_candidates`] found: the files, or `None` when it could not tell.
type Candidates = Option<Rc<Vec<String>>>;

/// Most files [`template_candidates`] lists before it gives up.
const MAX_CANDIDATES: usize = 256;

/// The files of the config directory (relative, `/`-separated) whose path
/// starts with `prefix` and ends with `suffix`: what `templatefile("<prefix>${...}<suffix>")`
/// can read, since no path may leave the directory. Listed once per load;
/// `None` when there is no load under way or more than [`MAX_CANDIDATES`]
/// files could match (then the caller must assume the worst).
pub(crate) fn template_candidates(prefix: &str, suffix: &str) -> Candidates {
    let key = (prefix.to_string(), suffix.to_string());
    if let Some(known) = caching()
        .then(|| CANDIDATES.with(|c| c.borrow().get(&key).cloned()))
        .flatten()
    {
        return known;
    }
    let listed = config_dir().and_then(|dir| {
        // Start at the deepest directory the prefix names.
        let start = prefix.rfind('/').map_or("", |at| &prefix[..at]);
        let mut found = Vec::new();
        let mut pending = vec![dir.join(start)];
        let mut visited = 0usize;
        while let Some(at) = pending.pop() {
            visited += 1;
            if visited > MAX_CANDIDATES {
                return None;
            }
            let Ok(entries) = std::fs::read_dir(&at) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Some(relative) = path
                    .strip_prefix(&dir)
                    .ok()
                    .and_then(|r| r.to_str())
                    .map(|r| r.replace('\\', "/"))
                else {
                    continue;
                };
                if relative.starts_with(prefix)
                    && relative.ends_with(suffix)
                    && relative.len() >= prefix.len() + suffix.len()
                {
                    found.push(relative);
                    if found.len() > MAX_CANDIDATES {
                        return None;
                    }
                }
            }
        }
        found.sort();
        Some(Rc::new(found))
    });
    if caching() {
        CANDIDATES.with(|c| c.borrow_mut().insert(key, listed.clone()));
    }
    listed
}

/// Makes the caches those of `load` (emptied if they were another's).
fn cache_for(load: u64) {
    if CACHED_LOAD.get() != load {
        clear_caches();
        CACHED_LOAD.set(load);
    }
}

/// Whether the caches may be used: a load is under way on this thread
/// (they are then its own, see [`cache_for`]).
fn caching() -> bool {
    READ_LOG.with(|l| l.borrow().is_some())
}

fn clear_caches() {
    READ_CACHE.with(|c| c.borrow_mut().clear());
    TEMPLATE_CACHE.with(|c| c.borrow_mut().clear());
    TEMPLATE_TREES.with(|c| c.borrow_mut().clear());
    CANDIDATES.with(|c| c.borrow_mut().clear());
}

/// The syntax tree of the template `templatefile(path, ...)` would render,
/// read and parsed once per load; `None` if it cannot be read or parsed
/// (evaluation reports that).
pub(crate) fn template_tree(path: &str) -> Option<Rc<hcl_edit::template::Template>> {
    if let Some(tree) = caching()
        .then(|| TEMPLATE_TREES.with(|c| c.borrow().get(path).cloned()))
        .flatten()
    {
        return tree;
    }
    let tree = read_config_file(path)
        .ok()
        .and_then(|text| hcl_edit::parser::parse_template(&text).ok())
        .map(Rc::new);
    if caching() {
        TEMPLATE_TREES.with(|c| c.borrow_mut().insert(path.to_string(), tree.clone()));
    }
    tree
}

/// Makes `dir` the base of relative paths in `file()` and `templatefile()` until dropped.
pub struct ConfigDirGuard {
    previous: Option<PathBuf>,
    previous_log: Option<ReadLog>,
}

impl ConfigDirGuard {
    /// Sets the config directory for this thread (canonicalized, so escapes
    /// can be detected), with a new log of the files read.
    pub fn set(dir: &Path) -> ConfigDirGuard {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Self::join(&dir, ReadLog::default())
    }

    /// Like [`ConfigDirGuard::set`] for a helper thread of the same load:
    /// `dir` is that load's [`config_dir`] (already canonical, so it is not
    /// resolved again on every thread a parallel loop starts), and what
    /// this thread reads goes to `log` (that load's [`read_log`]).
    pub fn join(dir: &Path, log: ReadLog) -> ConfigDirGuard {
        let dir = dir.to_path_buf();
        let previous = CONFIG_DIR.with(|d| d.replace(Some(dir)));
        cache_for(log.load);
        let previous_log = READ_LOG.with(|l| l.replace(Some(log)));
        ConfigDirGuard {
            previous,
            previous_log,
        }
    }
}

impl Drop for ConfigDirGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CONFIG_DIR.with(|d| *d.borrow_mut() = previous);
        let previous_log = self.previous_log.take();
        // Back in an enclosing load, the caches must be its own; with no
        // load under way they are kept (unused) for the next piece of
        // this one.
        if let Some(log) = &previous_log {
            cache_for(log.load);
        }
        READ_LOG.with(|l| *l.borrow_mut() = previous_log);
    }
}

/// The config directory of this thread's load, if one is under way: for
/// helper threads of the same load to set their own [`ConfigDirGuard`].
pub fn config_dir() -> Option<PathBuf> {
    CONFIG_DIR.with(|d| d.borrow().clone())
}

/// The log of files read by this thread's load, if one is under way.
pub fn read_log() -> Option<ReadLog> {
    READ_LOG.with(|l| l.borrow().clone())
}

fn log_read(relative: &Path) {
    READ_LOG.with(|l| {
        if let Some(log) = l.borrow().as_ref() {
            let mut files = log.files.lock().unwrap_or_else(|p| p.into_inner());
            files.insert(relative.to_string_lossy().into_owned());
        }
    });
}

/// Declares every function in `ctx`.
pub fn declare_all(ctx: &mut Context) {
    declare_where(ctx, |_| true);
}

/// Declares in `ctx` the functions of [`declare_all`] whose names `keep`.
fn declare_where(ctx: &mut Context, keep: impl Fn(&str) -> bool) {
    stdlib::declare_where(ctx, &keep);
    if keep("file") {
        ctx.declare_func(
            "file",
            FuncDef::builder().param(ParamType::String).build(file),
        );
    }
    if keep("templatefile") {
        ctx.declare_func(
            "templatefile",
            FuncDef::builder()
                .param(ParamType::String)
                .param(ParamType::Object(Box::new(ParamType::Any)))
                .build(templatefile),
        );
    }
}

/// Names of the declared functions, for "did you mean".
pub const NAMES: &[&str] = &[
    "file",
    "templatefile",
    "length",
    "keys",
    "values",
    "contains",
    "lookup",
    "element",
    "flatten",
    "distinct",
    "sort",
    "reverse",
    "toset",
    "tolist",
    "tomap",
    "tostring",
    "tonumber",
    "coalesce",
    "compact",
    "concat",
    "merge",
    "zipmap",
    "setproduct",
    "range",
    "join",
    "split",
    "replace",
    "upper",
    "lower",
    "trimspace",
    "trimprefix",
    "trimsuffix",
    "startswith",
    "endswith",
    "substr",
    "format",
    "formatlist",
    "jsonencode",
    "jsondecode",
    "yamlencode",
    "yamldecode",
    "base64encode",
    "base64decode",
    "sha256",
    "min",
    "max",
    "abs",
    "ceil",
    "floor",
    "try",
    "can",
];

/// An upper bound on the result of calling `name` with arguments bounded
/// by `args` (and everything built on the way), for the functions whose
/// result is not simply about the size of their arguments. `None`: the
/// estimator's general rule applies.
pub(crate) fn bound(name: &str, args: &[Bound]) -> Option<Bound> {
    let total = args.iter().fold(0u64, |s, a| s.saturating_add(a.size));
    let items = args.iter().fold(0u64, |s, a| s.saturating_add(a.items));
    let list = |size: u64, items: u64, item: u64| Bound { size, items, item };
    Some(match name {
        // Lists at most as large as their arguments, elements from them.
        "flatten" | "distinct" | "sort" | "reverse" | "toset" | "tolist" | "tomap" | "compact"
        | "keys" | "values" | "zipmap" | "coalesce" | "element" | "try" => {
            list(total.saturating_add(1), items.max(total), total)
        }
        // Terraform's limit of 1024 numbers.
        "range" => list(
            (stdlib::MAX_RANGE as u64) * 25 + 1,
            stdlib::MAX_RANGE as u64,
            24,
        ),
        // Every combination holds one element of each list.
        "setproduct" => {
            let combinations = args
                .iter()
                .fold(1u64, |p, a| p.saturating_mul(a.items.max(1)));
            let each = args
                .iter()
                .fold(1u64, |s, a| s.saturating_add(a.item.max(1)));
            list(
                combinations.saturating_mul(each).max(total),
                combinations,
                each,
            )
        }
        // Pieces of the text, or one per character (each at least a byte).
        "split" => list(total.saturating_mul(2).saturating_add(1), total, total),
        // The separator may come between every pair of elements.
        "join" => {
            let separator = args.first().map_or(0, |a| a.size);
            list(total.saturating_add(separator.saturating_mul(items)), 0, 0)
        }
        // Every match (at worst every position) takes the replacement.
        "replace" => {
            let text = args.first().map_or(0, |a| a.size);
            let with = args.get(2).map_or(0, |a| a.size);
            list(
                total.saturating_add(text.saturating_add(1).saturating_mul(with)),
                0,
                0,
            )
        }
        // Case mapping can triple a character's bytes (e.g. U+0390).
        "upper" | "lower" => list(total.saturating_mul(3), 0, 0),
        // A format verb pads to at most MAX_WIDTH, and takes at least two bytes.
        "format" => list(
            total
                .saturating_mul(2)
                .saturating_add(
                    args.first()
                        .map_or(0, |a| a.size)
                        .saturating_mul(stdlib::MAX_WIDTH as u64 / 2),
                )
                .saturating_add(24),
            0,
            0,
        ),
        "formatlist" => {
            let rows = args
                .iter()
                .skip(1)
                .map(|a| a.items)
                .max()
                .unwrap_or(1)
                .max(1);
            let row = args
                .first()
                .map_or(0, |a| a.size)
                .saturating_mul(stdlib::MAX_WIDTH as u64 / 2)
                .saturating_add(total.saturating_mul(2))
                .saturating_add(24);
            list(rows.saturating_mul(row), rows, row)
        }
        // A decoded value may be larger than its text (a digit becomes a number).
        // YAML quotes and escapes like JSON; a decoded alias repeats what it names.
        "yamlencode" => list(total.saturating_mul(6).saturating_add(2), 0, 0),
        "jsondecode" | "yamldecode" => list(
            total.saturating_mul(24).saturating_add(24),
            total,
            total.saturating_mul(24),
        ),
        "base64encode" => list(total.saturating_mul(2).saturating_add(4), 0, 0),
        "sha256" => list(total.saturating_add(64), 0, 0),
        _ => return None,
    })
}

/// Reads a file inside the config directory; refuses paths that escape it.
/// Each path is read once per load.
pub fn read_config_file(relative: &str) -> Result<String, String> {
    if let Some(known) = caching()
        .then(|| READ_CACHE.with(|c| c.borrow().get(relative).cloned()))
        .flatten()
    {
        return known;
    }
    let read = read_config_file_uncached(relative);
    if caching() {
        READ_CACHE.with(|c| c.borrow_mut().insert(relative.to_string(), read.clone()));
    }
    read
}

fn read_config_file_uncached(relative: &str) -> Result<String, String> {
    let dir = config_dir()
        .ok_or_else(|| "file functions are only available while loading a config".to_string())?;
    let joined = dir.join(relative);
    let resolved = joined
        .canonicalize()
        .map_err(|e| format!("cannot read `{relative}` (relative to the config directory): {e}"))?;
    if !resolved.starts_with(&dir) {
        return Err(format!(
            "`{relative}` is outside the config directory; files read by the config must live inside it"
        ));
    }
    let meta =
        std::fs::metadata(&resolved).map_err(|e| format!("cannot read `{relative}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{relative}` is not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "`{relative}` is {} bytes; files read by the config may be at most {MAX_FILE_BYTES}",
            meta.len()
        ));
    }
    let bytes = std::fs::read(&resolved).map_err(|e| format!("cannot read `{relative}`: {e}"))?;
    if let Ok(inside) = resolved.strip_prefix(&dir) {
        log_read(inside);
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "`{relative}` is not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn string_arg(args: &FuncArgs, index: usize) -> Result<String, String> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "argument {} must be a string, got {}",
            index + 1,
            describe(other)
        )),
        None => Err(format!("argument {} is missing", index + 1)),
    }
}

fn file(args: FuncArgs) -> Result<Value, String> {
    read_config_file(&string_arg(&args, 0)?).map(Value::String)
}

fn templatefile(args: FuncArgs) -> Result<Value, String> {
    let path = string_arg(&args, 0)?;
    let cached = caching()
        .then(|| TEMPLATE_CACHE.with(|c| c.borrow().get(&path).cloned()))
        .flatten();
    let template = match cached {
        Some(parsed) => parsed,
        None => {
            let text = read_config_file(&path)?;
            let parsed: hcl::Template = text
                .parse()
                .map_err(|e| format!("template `{path}` does not parse: {e}"))?;
            // A call names its function in the text, so these are all the
            // template can call; any other name is undefined either way.
            let mut functions = Context::new();
            declare_where(&mut functions, |name| text.contains(name));
            let parsed = Rc::new((parsed, functions));
            if caching() {
                TEMPLATE_CACHE.with(|c| c.borrow_mut().insert(path.clone(), Rc::clone(&parsed)));
            }
            parsed
        }
    };
    let (template, functions) = &*template;
    let mut ctx = functions.clone();
    if let Some(Value::Object(vars)) = args.get(1) {
        for (name, value) in vars {
            ctx.declare_var(name.as_str(), value.clone());
        }
    }
    lazy::render(template, &ctx)
        .map(Value::String)
        .map_err(|e| format!("template `{path}`: {e}"))
}

/// A short name for a value's type, for messages.
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::eval::Evaluate;

    fn eval(expr: &str) -> Result<Value, String> {
        let mut ctx = Context::new();
        declare_all(&mut ctx);
        let expr: hcl::Expression = expr.parse().map_err(|e: hcl::Error| e.to_string())?;
        expr.evaluate(&ctx).map_err(|e| e.to_string())
    }

    struct NoNames;

    impl crate::config::budget::Known for NoNames {
        fn lookup(&self, _: &str, _: Option<&str>) -> Option<Bound> {
            None
        }
        fn template(&self, _: &str) -> Option<Rc<hcl_edit::template::Template>> {
            None
        }
        fn file_len(&self, _: &str) -> Option<u64> {
            None
        }
    }

    /// The budget refuses what could grow too large from these bounds, so
    /// a bound below the value would let a blow-up through.
    #[test]
    fn every_functions_bound_is_at_least_its_value() {
        use crate::config::budget::{size_of, Estimator};
        for text in [
            "range(1000)",
            "range(0, 10, 0.5)",
            r#"setproduct(["a", "bb"], [1, 2, 3], [[1], [2]])"#,
            r#"flatten([[1, [2, [3]]], ["x"]])"#,
            r#"split("", "abcdef")"#,
            r#"split(",", "a,b,,c")"#,
            r#"join("------", ["a", "b", "c", "d"])"#,
            r#"replace("aaaa", "", "xyz")"#,
            r#"replace("aaaa", "/a/", "xyz")"#,
            r#"upper("ΐΐΐ")"#,
            r#"format("%100s|%-50d|%.3f", "a", 1, 2)"#,
            r#"formatlist("%20s", ["a", "b", "c"])"#,
            r#"jsondecode("[1,2,3,4,5,6,7,8,9]")"#,
            r#"yamldecode("[1, 2, 3]")"#,
            r#"yamlencode({a = ["x", "y"], b = "z"})"#,
            r#"base64encode("abcdefg")"#,
            r#"sha256("")"#,
            r#"zipmap(["a", "b"], [[1, 2], [3]])"#,
            r#"tomap({a = 1, b = "x"})"#,
            r#"toset(["b", "a", "b"])"#,
            r#"keys({a = 1, bb = 2})"#,
            r#"values({a = "x", b = "yy"})"#,
            r#"element(["a", "bbbb"], 1)"#,
            r#"coalesce("", "xyz")"#,
            r#"compact(["a", "", "b"])"#,
            r#"substr("hello", 1, 3)"#,
            r#"tostring(12345)"#,
        ] {
            let value = eval(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let parsed = hcl_edit::parser::parse_expr(text).expect("parses");
            let bound = Estimator::new(&NoNames).expr(&parsed);
            assert!(
                bound.size >= size_of(&value),
                "{text}: bound {bound:?} < {}",
                size_of(&value)
            );
        }
    }

    #[test]
    fn the_suggested_names_are_exactly_the_declared_functions() {
        let mut declared: Vec<&str> = stdlib::FUNCS.iter().map(|(n, _)| *n).collect();
        declared.extend(["file", "templatefile"]);
        declared.sort_unstable();
        let mut named = NAMES.to_vec();
        named.sort_unstable();
        assert_eq!(declared, named);
    }

    #[test]
    fn merge_and_concat_combine_in_order() {
        assert_eq!(
            eval(r#"merge({a = 1, b = 1}, {b = 2})"#),
            Ok(hcl::value!({ a = 1, b = 2 }))
        );
        assert_eq!(eval("concat([1], [2, 3])"), Ok(hcl::value!([1, 2, 3])));
    }

    #[test]
    fn lookup_falls_back_to_the_default() {
        assert_eq!(eval(r#"lookup({a = "x"}, "a", "d")"#), Ok(Value::from("x")));
        assert_eq!(eval(r#"lookup({a = "x"}, "b", "d")"#), Ok(Value::from("d")));
        assert!(eval(r#"lookup({a = "x"}, "b")"#).is_err());
    }

    #[test]
    fn format_supports_the_common_verbs() {
        assert_eq!(
            eval(r#"format("%s-%d %q %t 100%%", "a", 7, "q", true)"#),
            Ok(Value::from(r#"a-7 "q" true 100%"#))
        );
        assert!(eval(r#"format("%d", "x")"#).is_err());
        assert!(eval(r#"format("%s")"#).is_err());
        assert!(eval(r#"format("x", 1)"#).is_err());
    }

    #[test]
    fn jsonencode_writes_compact_json() {
        assert_eq!(
            eval(r#"jsonencode({a = [1, true]})"#),
            Ok(Value::from(r#"{"a":[1,true]}"#))
        );
    }

    #[test]
    fn file_reads_inside_and_refuses_escapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = dir.path().join("cfg");
        std::fs::create_dir(&inner).expect("mkdir");
        std::fs::write(inner.join("a.txt"), "hello").expect("write");
        std::fs::write(dir.path().join("secret"), "no").expect("write");
        let _guard = ConfigDirGuard::set(&inner);
        assert_eq!(eval(r#"file("a.txt")"#), Ok(Value::from("hello")));
        let escape = eval(r#"file("../secret")"#).unwrap_err();
        assert!(escape.contains("outside the config directory"), "{escape}");
        let missing = eval(r#"file("nope.txt")"#).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }

    #[test]
    fn templatefile_renders_with_its_own_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.sh"), "type=${worker_type}").expect("write");
        let _guard = ConfigDirGuard::set(dir.path());
        assert_eq!(
            eval(r#"templatefile("t.sh", { worker_type = "gecko" })"#),
            Ok(Value::from("type=gecko"))
        );
    }
}
