//! Evaluation of HCL expressions against the names a configuration declares.
//!
//! A [`Scope`] knows the variables, locals, AMI sets, key pairs and networks.
//! Before an expression is evaluated its references are checked against the
//! scope, so a dangling `ami_set.dockr-worker` is reported at its own span
//! with a suggestion, not as a generic evaluation failure. Inside a worker
//! type, `region` names the region a launch template is for: expressions that
//! use it are evaluated once per region ([`Scope::eval_in_region`]).

use super::budget::{Bound, Estimator, Known, TOTAL_BUDGET, VALUE_BUDGET};
use super::functions;
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::source::{FileId, SourceRef};
use hcl::eval::Context;
use hcl::{Map, Value};
use hcl_edit::expr::{Expression, ForExpr, TraversalOperator};
use hcl_edit::visit::{self, Visit};
use hcl_edit::Span;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The roots a reference may start with.
pub const ROOTS: &[&str] = &["var", "local", "ami_set", "key_pair", "network"];

/// The name that, inside a worker type, is the region a launch template is for.
pub const REGION: &str = "region";

/// Whether `expr` uses `region` (outside `for` expressions that bind the name).
pub fn uses_region(expr: &Expression) -> bool {
    references(expr).iter().any(|r| r.root == REGION)
}

/// The span of the first use of `region` in `expr`.
pub fn region_span(expr: &Expression) -> Option<Range<usize>> {
    references(expr)
        .into_iter()
        .find(|r| r.root == REGION)
        .and_then(|r| r.span)
}

/// One reference found in an expression: `root.name` (or a bare `root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `var`, `local`, ... or whatever the author wrote.
    pub root: String,
    /// The attribute after the root, if any.
    pub name: Option<String>,
    /// Span of the whole reference.
    pub span: Option<Range<usize>>,
}

/// Every reference in `expr`, except names bound by enclosing `for` expressions.
pub fn references(expr: &Expression) -> Vec<Reference> {
    let mut collector = Collector::default();
    collector.visit_expr(expr);
    collector.found
}

#[derive(Default)]
struct Collector {
    found: Vec<Reference>,
    bound: Vec<String>,
}

impl Visit for Collector {
    fn visit_expr(&mut self, node: &Expression) {
        match node {
            Expression::Variable(var) => {
                if !self.bound.iter().any(|b| b == var.as_str()) {
                    self.found.push(Reference {
                        root: var.as_str().to_string(),
                        name: None,
                        span: node.span(),
                    });
                }
            }
            Expression::Traversal(traversal) => {
                if let Expression::Variable(var) = &traversal.expr {
                    if !self.bound.iter().any(|b| b == var.as_str()) {
                        let name = traversal.operators.first().and_then(|op| match op.value() {
                            TraversalOperator::GetAttr(ident) => Some(ident.as_str().to_string()),
                            TraversalOperator::Index(Expression::String(s)) => {
                                Some(s.as_str().to_string())
                            }
                            _ => None,
                        });
                        // Span of `root.name`, so the label sits on the part that is wrong.
                        let span = match (traversal.expr.span(), traversal.operators.first()) {
                            (Some(root), Some(op)) => op.span().map(|s| root.start..s.end),
                            _ => node.span(),
                        };
                        self.found.push(Reference {
                            root: var.as_str().to_string(),
                            name,
                            span: span.or_else(|| node.span()),
                        });
                    }
                } else {
                    self.visit_expr(&traversal.expr);
                }
                for op in &traversal.operators {
                    if let TraversalOperator::Index(index) = op.value() {
                        self.visit_expr(index);
                    }
                }
            }
            _ => visit::visit_expr(self, node),
        }
    }

    fn visit_for_expr(&mut self, node: &ForExpr) {
        self.visit_expr(&node.intro.collection_expr);
        let before = self.bound.len();
        if let Some(key) = &node.intro.key_var {
            self.bound.push(key.as_str().to_string());
        }
        self.bound.push(node.intro.value_var.as_str().to_string());
        if let Some(key_expr) = &node.key_expr {
            self.visit_expr(key_expr);
        }
        self.visit_expr(&node.value_expr);
        if let Some(cond) = &node.cond {
            self.visit_expr(&cond.expr);
        }
        self.bound.truncate(before);
    }
}

/// The names an expression may refer to, and their values once known.
pub struct Scope {
    vars: BTreeMap<String, Option<Value>>,
    locals: BTreeMap<String, Option<Value>>,
    ami_sets: BTreeSet<String>,
    key_pairs: BTreeSet<String>,
    networks: BTreeSet<String>,
    /// Root (`network`, ...) -> label -> the keys of a block with `for_each`.
    instances: BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
    /// Variables marked sensitive, and locals derived from one.
    sensitive_vars: BTreeSet<String>,
    sensitive_locals: BTreeSet<String>,
    /// Functions, `ami_set` and `key_pair`, and (once [`Scope::settle`]d)
    /// `var` and `local` with every value.
    ctx: Context<'static>,
    /// `ctx` without `var` and `local`: the base of a per-expression context
    /// while values are still being set.
    base: Context<'static>,
    /// Whether a value was set since `ctx` last got `var` and `local`.
    unsettled: bool,
    /// Size bounds of the values known so far ("var"/"local" -> name ->
    /// bound; "" -> the whole root object), measured once when set.
    bounds: BTreeMap<&'static str, BTreeMap<String, Bound>>,
    /// Size bounds of all expressions evaluated so far, against [`TOTAL_BUDGET`].
    spent: AtomicU64,
    /// Whether the total budget was exceeded (reported once).
    overspent: AtomicBool,
}

/// Why an expression was not evaluated.
#[derive(Debug, PartialEq, Eq)]
pub enum Skipped {
    /// It had errors, which were reported.
    Reported,
    /// It depends on something that already failed; reporting again would only repeat that.
    Poisoned,
}

impl Scope {
    /// A scope with the given declared names; variable and local values are filled in later.
    pub fn new(
        vars: impl IntoIterator<Item = String>,
        locals: impl IntoIterator<Item = String>,
        ami_sets: impl IntoIterator<Item = String>,
        key_pairs: impl IntoIterator<Item = String>,
        networks: impl IntoIterator<Item = String>,
    ) -> Scope {
        let ami_sets: BTreeSet<String> = ami_sets.into_iter().collect();
        let key_pairs: BTreeSet<String> = key_pairs.into_iter().collect();
        let networks: BTreeSet<String> = networks.into_iter().collect();
        let mut ctx = Context::new();
        functions::declare_all(&mut ctx);
        let none = BTreeMap::new();
        ctx.declare_var("ami_set", reference_object("ami_set", &ami_sets, &none));
        ctx.declare_var("key_pair", reference_object("key_pair", &key_pairs, &none));
        ctx.declare_var("network", reference_object("network", &networks, &none));
        let mut scope = Scope {
            vars: vars.into_iter().map(|v| (v, None)).collect(),
            locals: locals.into_iter().map(|l| (l, None)).collect(),
            ami_sets,
            key_pairs,
            networks,
            instances: BTreeMap::new(),
            sensitive_vars: BTreeSet::new(),
            sensitive_locals: BTreeSet::new(),
            base: ctx.clone(),
            ctx,
            unsettled: true,
            bounds: BTreeMap::new(),
            spent: AtomicU64::new(0),
            overspent: AtomicBool::new(false),
        };
        scope.settle();
        scope
    }

    /// Records the instance keys of the blocks with `for_each` of `root`
    /// (`ami_set`, `key_pair`, `network`): `root.LABEL` is then a map of
    /// `root.LABEL["KEY"]` references.
    pub fn set_instances(&mut self, root: &'static str, instances: BTreeMap<String, Vec<String>>) {
        if instances.is_empty() {
            return;
        }
        let names = match root {
            "ami_set" => &self.ami_sets,
            "key_pair" => &self.key_pairs,
            _ => &self.networks,
        };
        let object = reference_object(root, names, &instances);
        self.instances.insert(root, instances);
        self.base.declare_var(root, object.clone());
        self.ctx.declare_var(root, object);
    }

    /// Gives a variable its value (`None`: it has none; references to it are poisoned).
    pub fn set_var(&mut self, name: &str, value: Option<Value>) {
        self.measure("var", name, value.as_ref());
        self.vars.insert(name.to_string(), value);
        self.unsettled = true;
    }

    /// Marks a variable as sensitive: every value derived from it is.
    pub fn mark_sensitive_var(&mut self, name: &str) {
        self.sensitive_vars.insert(name.to_string());
    }

    /// Marks a local as sensitive (its expression uses a sensitive value).
    pub fn mark_sensitive_local(&mut self, name: &str) {
        self.sensitive_locals.insert(name.to_string());
    }

    /// Whether the value of `expr` derives from a sensitive variable, directly
    /// or through locals. Judged from the references alone, so a value that
    /// only passes near a secret (`var.token != "" ? "a" : "b"`) counts too:
    /// sensitivity is never lost, only sometimes gained.
    pub fn is_sensitive(&self, expr: &Expression) -> bool {
        if self.sensitive_vars.is_empty() {
            return false;
        }
        references(expr)
            .iter()
            .any(|r| match (r.root.as_str(), r.name.as_deref()) {
                ("var", Some(name)) => self.sensitive_vars.contains(name),
                ("local", Some(name)) => self.sensitive_locals.contains(name),
                ("var", None) => !self.sensitive_vars.is_empty(),
                ("local", None) => !self.sensitive_locals.is_empty(),
                _ => false,
            })
    }

    /// Gives a local its value (`None`: it failed).
    pub fn set_local(&mut self, name: &str, value: Option<Value>) {
        self.measure("local", name, value.as_ref());
        self.locals.insert(name.to_string(), value);
        self.unsettled = true;
    }

    /// Puts every variable and local into the shared evaluation context, once
    /// all are set (before the worker types are decoded). Until then each
    /// expression gets a context of its own with only the values it refers
    /// to: rebuilding the shared one after every local would copy all locals
    /// once per local.
    pub fn settle(&mut self) {
        if self.unsettled {
            self.refresh("var");
            self.refresh("local");
            self.unsettled = false;
        }
    }

    /// Whether the shared context holds so much that evaluating in it costs
    /// more than building a context of what an expression refers to: the
    /// evaluator copies the whole `local` (or `var`) object at every
    /// `local.NAME` it meets, and a configuration whose locals hold the
    /// maps `for_each` repeats over would copy them once per reference.
    fn shared_is_large(&self) -> bool {
        /// Above this, a copy per reference outweighs a context per expression.
        const LARGE: u64 = 64 * 1024;
        ["var", "local"].iter().any(|root| {
            self.bounds
                .get(root)
                .and_then(|b| b.get(""))
                .is_some_and(|whole| whole.size > LARGE)
        })
    }

    /// A context with the functions and only the variables and locals `expr` refers to.
    fn context_for(&self, expr: &Expression) -> Context<'static> {
        let mut ctx = self.base.clone();
        let mut wanted: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for reference in references(expr) {
            let (root, values) = match reference.root.as_str() {
                "var" => ("var", &self.vars),
                "local" => ("local", &self.locals),
                _ => continue,
            };
            let object = wanted.entry(root).or_default();
            match reference.name {
                Some(name) => {
                    if let Some(Some(value)) = values.get(&name) {
                        object.insert(name, value.clone());
                    }
                }
                // `local[...]`: the whole object.
                None => object.extend(
                    values
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.clone()?))),
                ),
            }
        }
        for root in ["var", "local"] {
            ctx.declare_var(root, Value::Object(wanted.remove(root).unwrap_or_default()));
        }
        ctx
    }

    /// Records the size bound of `root.name`, and of the whole root object
    /// (kept as running totals: a value is set once).
    fn measure(&mut self, root: &'static str, name: &str, value: Option<&Value>) {
        let per_root = self.bounds.entry(root).or_default();
        let old = match value {
            Some(value) => per_root.insert(name.to_string(), Bound::of(value)),
            None => per_root.remove(name),
        };
        let new = value.map(|_| per_root[name]);
        let whole = per_root.entry(String::new()).or_insert(Bound {
            size: 1,
            items: 0,
            item: 0,
        });
        if let Some(old) = old {
            whole.size = whole
                .size
                .saturating_sub(old.size.saturating_add(name.len() as u64));
            whole.items = whole.items.saturating_sub(1);
        }
        if let Some(new) = new {
            whole.size = whole
                .size
                .saturating_add(new.size.saturating_add(name.len() as u64));
            whole.items = whole.items.saturating_add(1);
            whole.item = whole.item.max(new.size);
        }
    }

    fn refresh(&mut self, root: &str) {
        let source = if root == "var" {
            &self.vars
        } else {
            &self.locals
        };
        let object: Map<String, Value> = source
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        self.ctx.declare_var(root, Value::Object(object));
    }

    /// Reports references in `expr` to undeclared names; `Err` if any is wrong or poisoned.
    #[cfg(test)]
    pub fn check_references(
        &self,
        file: FileId,
        expr: &Expression,
        diags: &mut Diagnostics,
    ) -> Result<(), Skipped> {
        self.check_references_in(file, expr, false, diags)
    }

    /// Reports references in `expr` to undeclared names; `Err` if any is
    /// wrong or poisoned. `region_defined` says whether
    /// `region` is a name here (in a worker type attribute evaluated per region).
    fn check_references_in(
        &self,
        file: FileId,
        expr: &Expression,
        region_defined: bool,
        diags: &mut Diagnostics,
    ) -> Result<(), Skipped> {
        let mut result = Ok(());
        for reference in references(expr) {
            let at = reference.span.clone().map(|span| SourceRef { file, span });
            let problem = match (reference.root.as_str(), &reference.name) {
                ("var", Some(name)) => self.check_name(name, &self.vars, "variable", "var"),
                ("local", Some(name)) => self.check_name(name, &self.locals, "local", "local"),
                ("ami_set", Some(name)) => {
                    self.check_declared(name, &self.ami_sets, "AMI set", "ami_set")
                }
                ("key_pair", Some(name)) => {
                    self.check_declared(name, &self.key_pairs, "key pair", "key_pair")
                }
                ("network", Some(name)) => {
                    self.check_declared(name, &self.networks, "network", "network")
                }
                ("each", _) => Some(Err(Diagnostic::error(
                    Code::UndefinedReference,
                    "`each` is defined only inside a block with `for_each`",
                )
                .help(
                    "add `for_each = ...` to this worker_type, key_pair, ami_set or network block, \
                     or use a value that does not depend on a key; inside a dynamic block the \
                     iterator is named after the block type (`instance_type.key`)",
                ))),
                (REGION, None) if region_defined => None,
                (REGION, None) => Some(Err(Diagnostic::error(
                    Code::UndefinedReference,
                    "`region` is defined only inside a worker_type block",
                )
                .help(
                    "`region` is the region a worker type's launch template is for; outside a \
                     worker type there is none (for a value shared by every region, use a local)",
                ))),
                (REGION, Some(_)) => Some(Err(Diagnostic::error(
                    Code::UndefinedReference,
                    "`region` is a region name (a string) and has no attributes",
                )
                .help("write `region` alone, e.g. `\"${region}-workers\"`"))),
                (root, None) if ROOTS.contains(&root) => Some(Err(Diagnostic::error(
                    Code::UndefinedReference,
                    format!("`{root}` needs a name after it"),
                )
                .help(format!("write `{root}.NAME`")))),
                (root, _) => {
                    let mut d = Diagnostic::error(
                        Code::UndefinedReference,
                        format!("unknown reference `{root}`"),
                    );
                    d = match did_you_mean(root, ROOTS.iter().copied()) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(
                            "references start with var., local., ami_set., key_pair. or \
                             network.; quote plain text as a string",
                        ),
                    };
                    Some(Err(d))
                }
            };
            match problem {
                None => {}
                Some(Ok(Skipped::Poisoned)) if result.is_ok() => result = Err(Skipped::Poisoned),
                Some(Ok(Skipped::Poisoned)) => {}
                Some(Ok(Skipped::Reported)) => result = Err(Skipped::Reported),
                Some(Err(diagnostic)) => {
                    diags.push(diagnostic.at(at, "not declared"));
                    result = Err(Skipped::Reported);
                }
            }
        }
        result
    }

    fn check_name(
        &self,
        name: &str,
        known: &BTreeMap<String, Option<Value>>,
        what: &str,
        root: &str,
    ) -> Option<Result<Skipped, Diagnostic>> {
        match known.get(name) {
            Some(Some(_)) => None,
            Some(None) => Some(Ok(Skipped::Poisoned)),
            None => Some(Err(undeclared(
                name,
                known.keys().map(String::as_str),
                what,
                root,
            ))),
        }
    }

    fn check_declared(
        &self,
        name: &str,
        known: &BTreeSet<String>,
        what: &str,
        root: &str,
    ) -> Option<Result<Skipped, Diagnostic>> {
        if known.contains(name) {
            None
        } else {
            Some(Err(undeclared(
                name,
                known.iter().map(String::as_str),
                what,
                root,
            )))
        }
    }

    /// Evaluates `expr`, reporting any problem at its span; `None` if it failed.
    pub fn eval(&self, file: FileId, expr: &Expression, diags: &mut Diagnostics) -> Option<Value> {
        self.try_eval(file, expr, diags).ok()
    }

    /// Like [`Scope::eval`], but says whether a failure was reported or inherited.
    pub fn try_eval(
        &self,
        file: FileId,
        expr: &Expression,
        diags: &mut Diagnostics,
    ) -> Result<Value, Skipped> {
        self.try_eval_with(file, expr, None, diags)
    }

    /// Evaluates `expr` with `region` bound to `region` (an attribute of a
    /// worker type, for the launch template of one of its regions).
    pub fn eval_in_region(
        &self,
        file: FileId,
        expr: &Expression,
        region: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        self.try_eval_with(file, expr, Some(region), diags).ok()
    }

    fn try_eval_with(
        &self,
        file: FileId,
        expr: &Expression,
        region: Option<&str>,
        diags: &mut Diagnostics,
    ) -> Result<Value, Skipped> {
        // Literals are most attributes of a large fleet (capacities, markets,
        // lifetimes); they need neither reference checks nor a conversion.
        match expr {
            Expression::String(s) => return Ok(Value::String(s.value().clone())),
            Expression::Number(n) => return Ok(Value::Number(*n.value())),
            Expression::Bool(b) => return Ok(Value::Bool(*b.value())),
            Expression::Null(_) => return Ok(Value::Null),
            _ => {}
        }
        self.check_references_in(file, expr, region.is_some(), diags)?;
        let at = expr.span().map(|span| SourceRef { file, span });
        let bound = Estimator::new(self).expr(expr);
        if bound.size > VALUE_BUDGET {
            diags.push(
                Diagnostic::error(
                    Code::TooLarge,
                    format!(
                        "this expression could build a value of up to {} MiB, past the limit of {} MiB",
                        bound.size / (1024 * 1024),
                        VALUE_BUDGET / (1024 * 1024)
                    ),
                )
                .at(at, "too large to evaluate")
                .help("nested `for` expressions multiply the sizes of their collections, and each interpolation repeats its value; iterate over smaller collections or split the expression"),
            );
            return Err(Skipped::Reported);
        }
        let spent = self
            .spent
            .fetch_add(bound.size, Ordering::Relaxed)
            .saturating_add(bound.size);
        if spent > TOTAL_BUDGET {
            // Reported once, at the expression that crossed the line; the
            // rest are skipped quietly (they would all say the same).
            if self.overspent.swap(true, Ordering::Relaxed) {
                return Err(Skipped::Poisoned);
            }
            diags.push(
                Diagnostic::error(
                    Code::TooLarge,
                    format!(
                        "evaluating this configuration could build more than {} MiB of values in all; this expression crosses that",
                        TOTAL_BUDGET / (1024 * 1024)
                    ),
                )
                .at(at, "past the total budget")
                .help("a large value referred to from many places is copied into each; keep large locals small or refer to them less often"),
            );
            return Err(Skipped::Reported);
        }
        let converted: hcl::Expression = expr.clone().into();
        let own;
        let ctx = if let Some(region) = region {
            // Only what the expression refers to, plus `region`: copying the
            // shared context once per region would copy every local.
            let mut ctx = self.context_for(expr);
            ctx.declare_var(REGION, region);
            own = ctx;
            &own
        } else if self.unsettled || self.shared_is_large() {
            own = self.context_for(expr);
            &own
        } else {
            &self.ctx
        };
        functions::evaluate(&converted, ctx).map_err(|error| {
            // A function's failure is shown at its call.
            let at = functions::call_span(expr, &error)
                .map(|span| SourceRef { file, span })
                .or(at);
            // An error message may quote the values it was given.
            let names_only = matches!(error.kind(), hcl::eval::ErrorKind::UndefinedFunc(_));
            let d = if self.is_sensitive(expr) && !names_only {
                Diagnostic::error(
                    Code::Type,
                    "cannot evaluate this expression; it uses a sensitive value, so the details are not shown",
                )
                .help("check the types and arguments of what this expression combines; `fleetform validate` with a non-secret test value shows the details")
            } else {
                eval_diagnostic(&error)
            };
            diags.push(d.at(at, "while evaluating this"));
            Skipped::Reported
        })
    }
}

impl Known for Scope {
    fn lookup(&self, root: &str, name: Option<&str>) -> Option<Bound> {
        match root {
            "var" | "local" => {
                let known = self.bounds.get(root);
                // A declared name without a value yet (or that failed) is poisoned
                // elsewhere; it adds nothing here.
                Some(
                    known
                        .and_then(|b| b.get(name.unwrap_or("")))
                        .copied()
                        .unwrap_or(Bound {
                            size: 0,
                            items: 0,
                            item: 0,
                        }),
                )
            }
            // `{kind = "...", name = "..."}` per declared name (see reference_object).
            // A region name is short; the longest today is about 15 bytes.
            REGION => Some(Bound::scalar_object(32)),
            "ami_set" | "key_pair" | "network" => {
                let names = match root {
                    "ami_set" => &self.ami_sets,
                    "key_pair" => &self.key_pairs,
                    _ => &self.networks,
                };
                let one = |name: &str| 1 + 4 + root.len() as u64 + 4 + name.len() as u64;
                let keys = self
                    .instances
                    .get(root)
                    .and_then(|i| i.get(name.unwrap_or("")));
                Some(match name {
                    // A block with `for_each`: a map of one reference per key.
                    Some(name) if keys.is_some() => {
                        let keys = keys.map(Vec::as_slice).unwrap_or_default();
                        let item = keys
                            .iter()
                            .map(|k| one(name) + 4 + 2 * k.len() as u64)
                            .max()
                            .unwrap_or(0);
                        Bound {
                            size: keys
                                .iter()
                                .map(|k| one(name) + 4 + 3 * k.len() as u64)
                                .fold(1, u64::saturating_add),
                            items: keys.len() as u64,
                            item,
                        }
                    }
                    Some(name) => Bound::scalar_object(one(name)),
                    None => {
                        let item = names.iter().map(|n| one(n)).max().unwrap_or(0);
                        Bound {
                            size: names
                                .iter()
                                .map(|n| one(n) + n.len() as u64)
                                .fold(1, u64::saturating_add),
                            items: names.len() as u64,
                            item,
                        }
                    }
                })
            }
            _ => None,
        }
    }

    fn template(&self, path: &str) -> Option<std::rc::Rc<hcl_edit::template::Template>> {
        functions::template_tree(path)
    }

    fn file_len(&self, path: &str) -> Option<u64> {
        functions::read_config_file(path)
            .ok()
            .map(|text| text.len() as u64)
    }

    fn template_candidates(&self, prefix: &str, suffix: &str) -> Option<std::rc::Rc<Vec<String>>> {
        functions::template_candidates(prefix, suffix)
    }
}

fn undeclared<'a>(
    name: &str,
    known: impl Iterator<Item = &'a str>,
    what: &str,
    root: &str,
) -> Diagnostic {
    let d = Diagnostic::error(
        Code::UndefinedReference,
        format!("{what} `{name}` is not declared"),
    );
    match did_you_mean(name, known) {
        Some(s) => d.help(format!("did you mean `{root}.{s}`?")),
        None => d.help(format!(
            "declare it, or check the spelling of `{root}.{name}`"
        )),
    }
}

fn eval_diagnostic(error: &hcl::eval::Error) -> Diagnostic {
    use hcl::eval::ErrorKind;
    match error.kind() {
        ErrorKind::FuncCall(name, message) => {
            Diagnostic::error(Code::Function, format!("{name}() failed: {message}"))
                .help("fix the arguments; paths are relative to the config directory")
        }
        ErrorKind::UndefinedFunc(name) => {
            let text = name.to_string();
            let d = Diagnostic::error(
                Code::UndefinedReference,
                format!("unknown function `{text}`"),
            );
            match did_you_mean(&text, functions::NAMES.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "available functions: {}",
                    functions::NAMES.join(", ")
                )),
            }
        }
        ErrorKind::NoSuchKey(key) => Diagnostic::error(
            Code::UndefinedReference,
            format!("no key `{key}` in this value"),
        )
        .help("check the key name against the object it indexes"),
        _ => Diagnostic::error(Code::Type, format!("cannot evaluate: {error}"))
            .help("check the types of the values this expression combines"),
    }
}

/// What `ami_set.X` / `key_pair.X` / `network.X` evaluate to: an object
/// naming the kind and the target; for a block with `for_each`, a map of
/// them by key (`network.X["KEY"]`, named `X["KEY"]` in the model).
fn reference_object(
    kind: &str,
    names: &BTreeSet<String>,
    instances: &BTreeMap<String, Vec<String>>,
) -> Value {
    let one = |name: &str| {
        let mut object = Map::new();
        object.insert("kind".to_string(), Value::from(kind));
        object.insert("name".to_string(), Value::from(name));
        Value::Object(object)
    };
    Value::Object(
        names
            .iter()
            .map(|name| match instances.get(name) {
                Some(keys) => (
                    name.clone(),
                    Value::Object(
                        keys.iter()
                            .map(|key| {
                                (
                                    key.clone(),
                                    one(&crate::model::address::instance(name, key)),
                                )
                            })
                            .collect(),
                    ),
                ),
                None => (name.clone(), one(name)),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<(String, Option<String>)> {
        let expr = hcl_edit::parser::parse_expr(text).expect("parses");
        references(&expr)
            .into_iter()
            .map(|r| (r.root, r.name))
            .collect()
    }

    #[test]
    fn finds_references_in_templates_calls_and_objects() {
        assert_eq!(
            refs(r#"merge(local.tags, { owner = "${var.owner}-x" })"#),
            vec![
                ("local".into(), Some("tags".into())),
                ("var".into(), Some("owner".into()))
            ]
        );
    }

    #[test]
    fn for_expression_variables_are_not_references() {
        assert_eq!(
            refs("[for r in var.regions : upper(r)]"),
            vec![("var".into(), Some("regions".into()))]
        );
    }

    #[test]
    fn reports_undeclared_names_with_a_suggestion() {
        let scope = Scope::new(
            ["owner".to_string()],
            [],
            ["docker-worker".to_string()],
            [],
            [],
        );
        let mut diags = Diagnostics::default();
        let expr = hcl_edit::parser::parse_expr("ami_set.docker-wroker").expect("parses");
        assert_eq!(
            scope.check_references(0, &expr, &mut diags),
            Err(Skipped::Reported)
        );
        let d = diags.iter().next().expect("one diagnostic");
        assert_eq!(d.code, Code::UndefinedReference);
        assert_eq!(
            d.help.as_deref(),
            Some("did you mean `ami_set.docker-worker`?")
        );
        assert_eq!(d.location.as_ref().map(|l| l.span.clone()), Some(0..21));
    }

    #[test]
    fn a_reference_to_a_failed_variable_is_poisoned_not_reported() {
        let mut scope = Scope::new(["owner".to_string()], [], [], [], []);
        scope.set_var("owner", None);
        let mut diags = Diagnostics::default();
        let expr = hcl_edit::parser::parse_expr("var.owner").expect("parses");
        assert_eq!(scope.try_eval(0, &expr, &mut diags), Err(Skipped::Poisoned));
        assert!(diags.is_empty());
    }
}
