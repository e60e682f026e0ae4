//! Evaluation of HCL expressions against the names a configuration declares.
//!
//! A [`Scope`] knows the variables, locals, AMI sets, key pairs and networks.
//! Before an expression is evaluated its references are checked against the
//! scope, so a dangling `ami_set.dockr-worker` is reported at its own span
//! with a suggestion, not as a generic evaluation failure. Inside a worker
//! type, `region` names the region a launch template is for: expressions that
//! use it are evaluated once per region ([`Scope::eval_in_region`]).

use super::budget::{size_of, Bound, Estimator, Known, TOTAL_BUDGET, VALUE_BUDGET};
use super::functions;
use super::shape::{Shape, ShapedLocal};
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::source::{FileId, SourceRef};
use hcl::eval::Context;
use hcl::{Map, Value};
use hcl_edit::expr::{Expression, ForExpr, TraversalOperator};
use hcl_edit::visit::{self, Visit};
use hcl_edit::Span;
use std::cell::RefCell;
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

    // hcl-edit's own walk of a template `%{ for }` skips its collection.
    fn visit_for_template_expr(&mut self, node: &hcl_edit::template::ForTemplateExpr) {
        self.visit_expr(&node.collection_expr);
        let before = self.bound.len();
        if let Some(key) = &node.key_var {
            self.bound.push(key.as_str().to_string());
        }
        self.bound.push(node.value_var.as_str().to_string());
        self.visit_template(&node.template);
        self.bound.truncate(before);
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
///
/// A scope made by [`Scope::bind`] adds names (`each` in an instance of a
/// block with `for_each`) to the one it was made from and shares everything
/// else with it, the budget included.
pub struct Scope<'p> {
    declared: Declared<'p>,
    /// Names bound on top of the declared ones, innermost last; shared, so
    /// that binding a dynamic block's iterator inside an instance of a
    /// `for_each` does not copy its `each`.
    bound: Vec<(String, std::sync::Arc<Value>)>,
}

enum Declared<'p> {
    Own(Box<Names>),
    Shared(&'p Names),
}

/// What every scope of one configuration shares.
struct Names {
    vars: BTreeMap<String, Option<Value>>,
    locals: BTreeMap<String, Option<Value>>,
    ami_sets: BTreeSet<String>,
    key_pairs: BTreeSet<String>,
    networks: BTreeSet<String>,
    /// Root (`network`, ...) -> label -> the keys of a block with `for_each`.
    instances: BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
    /// `ami_set`, `key_pair`, `network` -> what `root.NAME` evaluates to.
    objects: BTreeMap<&'static str, Map<String, Value>>,
    /// Variables marked sensitive, and locals derived from one.
    sensitive_vars: BTreeSet<String>,
    sensitive_locals: BTreeSet<String>,
    /// Size bounds of the values known so far ("var"/"local" -> name ->
    /// bound; "" -> the whole root object), measured once when set.
    bounds: BTreeMap<&'static str, BTreeMap<String, Bound>>,
    /// Size bounds of all expressions evaluated so far, against [`TOTAL_BUDGET`].
    spent: AtomicU64,
    /// Whether the total budget was exceeded (reported once).
    overspent: AtomicBool,
}

/// What [`Scope::assess`] found of an expression, to be spent ([`Scope::spend`]).
pub(super) enum Assessed {
    /// A literal: its value (which costs nothing).
    Literal(Value),
    /// Anything else: what it refers to and its size bound.
    Pending {
        references: Vec<Reference>,
        size: u64,
    },
}

/// An expression [`Scope::spend`] found nothing wrong with, to be evaluated.
pub(super) enum Charged {
    /// A literal: its value.
    Literal(Value),
    /// Anything else: what it refers to.
    Pending(Vec<Reference>),
}

thread_local! {
    /// The context expressions are evaluated in on this thread: the
    /// functions, declared once, and the values of the expression being
    /// evaluated, declared over the previous ones (see [`Scope::with_context`]).
    /// Copying a context with every function for each expression was a
    /// fifth of the time of a large load.
    static CONTEXT: RefCell<Option<(Context<'static>, BTreeSet<String>)>> = const { RefCell::new(None) };
}

impl Names {
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
}

/// Why an expression was not evaluated.
#[derive(Debug, PartialEq, Eq)]
pub enum Skipped {
    /// It had errors, which were reported.
    Reported,
    /// It depends on something that already failed; reporting again would only repeat that.
    Poisoned,
}

impl Scope<'static> {
    /// A scope with the given declared names; variable and local values are filled in later.
    pub fn new(
        vars: impl IntoIterator<Item = String>,
        locals: impl IntoIterator<Item = String>,
        ami_sets: impl IntoIterator<Item = String>,
        key_pairs: impl IntoIterator<Item = String>,
        networks: impl IntoIterator<Item = String>,
    ) -> Scope<'static> {
        let ami_sets: BTreeSet<String> = ami_sets.into_iter().collect();
        let key_pairs: BTreeSet<String> = key_pairs.into_iter().collect();
        let networks: BTreeSet<String> = networks.into_iter().collect();
        let none = BTreeMap::new();
        let objects = BTreeMap::from([
            ("ami_set", reference_object("ami_set", &ami_sets, &none)),
            ("key_pair", reference_object("key_pair", &key_pairs, &none)),
            ("network", reference_object("network", &networks, &none)),
        ]);
        Scope {
            declared: Declared::Own(Box::new(Names {
                vars: vars.into_iter().map(|v| (v, None)).collect(),
                locals: locals.into_iter().map(|l| (l, None)).collect(),
                ami_sets,
                key_pairs,
                networks,
                instances: BTreeMap::new(),
                objects,
                sensitive_vars: BTreeSet::new(),
                sensitive_locals: BTreeSet::new(),
                bounds: BTreeMap::new(),
                spent: AtomicU64::new(0),
                overspent: AtomicBool::new(false),
            })),
            bound: Vec::new(),
        }
    }

    /// The declared names, to change; a scope made by [`Scope::bind`]
    /// borrows them and has none of its own (it lives no longer than the
    /// `&Scope` it was made from, so no setter can reach it).
    fn names_mut(&mut self) -> &mut Names {
        match &mut self.declared {
            Declared::Own(names) => names,
            // `Scope<'static>` is only ever made by `new`.
            Declared::Shared(_) => unreachable!("a bound scope is never 'static"),
        }
    }

    /// Records the instance keys of the blocks with `for_each` of `root`
    /// (`ami_set`, `key_pair`, `network`): `root.LABEL` is then a map of
    /// `root.LABEL["KEY"]` references.
    pub fn set_instances(&mut self, root: &'static str, instances: BTreeMap<String, Vec<String>>) {
        if instances.is_empty() {
            return;
        }
        let names = self.names_mut();
        let declared = match root {
            "ami_set" => &names.ami_sets,
            "key_pair" => &names.key_pairs,
            _ => &names.networks,
        };
        let object = reference_object(root, declared, &instances);
        names.instances.insert(root, instances);
        names.objects.insert(root, object);
    }

    /// Gives a variable its value (`None`: it has none; references to it are poisoned).
    pub fn set_var(&mut self, name: &str, value: Option<Value>) {
        let names = self.names_mut();
        names.measure("var", name, value.as_ref());
        names.vars.insert(name.to_string(), value);
    }

    /// Marks a variable as sensitive: every value derived from it is.
    pub fn mark_sensitive_var(&mut self, name: &str) {
        self.names_mut().sensitive_vars.insert(name.to_string());
    }

    /// Marks a local as sensitive (its expression uses a sensitive value).
    pub fn mark_sensitive_local(&mut self, name: &str) {
        self.names_mut().sensitive_locals.insert(name.to_string());
    }

    /// Gives a local its value (`None`: it failed).
    pub fn set_local(&mut self, name: &str, value: Option<Value>) {
        let names = self.names_mut();
        names.measure("local", name, value.as_ref());
        names.locals.insert(name.to_string(), value);
    }
}

impl Scope<'_> {
    fn names(&self) -> &Names {
        match &self.declared {
            Declared::Own(names) => names,
            Declared::Shared(names) => names,
        }
    }

    /// This scope with `name` bound to `value` as well (`each`, or a
    /// dynamic block's iterator), shadowing a binding of the same name.
    /// Nothing is copied but the bindings: an instance of a block with
    /// `for_each` is evaluated in such a scope instead of being a copy of
    /// the block with `each` written in.
    pub fn bind(&self, name: &str, value: Value) -> Scope<'_> {
        let mut bound = Vec::with_capacity(self.bound.len() + 1);
        bound.extend(self.bound.iter().filter(|(n, _)| n != name).cloned());
        bound.push((name.to_string(), std::sync::Arc::new(value)));
        Scope {
            declared: Declared::Shared(self.names()),
            bound,
        }
    }

    /// The value bound last ([`Scope::bind`]), taken back from the scope
    /// (`Null` if none was bound).
    pub fn into_last_bound(mut self) -> Value {
        self.bound.pop().map_or(Value::Null, |(_, value)| {
            std::sync::Arc::try_unwrap(value).unwrap_or_else(|shared| (*shared).clone())
        })
    }

    /// This scope as it is, borrowed: for code that picks a scope per item,
    /// some bound and some not.
    pub fn borrowed(&self) -> Scope<'_> {
        Scope {
            declared: Declared::Shared(self.names()),
            bound: self.bound.clone(),
        }
    }

    /// The value bound to `name` by [`Scope::bind`], if any.
    fn bound(&self, name: &str) -> Option<&Value> {
        self.bound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &**v)
    }

    /// Whether the value of `expr` derives from a sensitive variable, directly
    /// or through locals. Judged from the references alone, so a value that
    /// only passes near a secret (`var.token != "" ? "a" : "b"`) counts too:
    /// sensitivity is never lost, only sometimes gained.
    pub fn is_sensitive(&self, expr: &Expression) -> bool {
        if self.names().sensitive_vars.is_empty() {
            return false;
        }
        self.is_sensitive_refs(&references(expr))
    }

    /// [`Scope::is_sensitive`] for an expression with these references.
    pub fn is_sensitive_refs(&self, references: &[Reference]) -> bool {
        let names = self.names();
        if names.sensitive_vars.is_empty() {
            return false;
        }
        references
            .iter()
            .any(|r| match (r.root.as_str(), r.name.as_deref()) {
                ("var", Some(name)) => names.sensitive_vars.contains(name),
                ("local", Some(name)) => names.sensitive_locals.contains(name),
                ("var", None) => !names.sensitive_vars.is_empty(),
                ("local", None) => !names.sensitive_locals.is_empty(),
                _ => false,
            })
    }

    /// The value of `expr` when it is a name or a path of attributes and
    /// literal keys from one (`each.value.max`, `local.tags`,
    /// `ami_set.x`), looked up where it is kept: most attributes of a large
    /// fleet are such paths, and evaluating them would copy the root's
    /// value (or build a context for it) first. `None` for anything else,
    /// or a path that does not resolve, which is then evaluated (and its
    /// error reported) as any expression.
    fn resolve<'v>(
        &'v self,
        expr: &Expression,
        region: Option<&'v str>,
    ) -> Option<std::borrow::Cow<'v, Value>> {
        use std::borrow::Cow;
        let (root, operators) = match expr {
            Expression::Variable(var) => (var.as_str(), &[][..]),
            Expression::Traversal(traversal) => match &traversal.expr {
                Expression::Variable(var) => (var.as_str(), traversal.operators.as_slice()),
                // What a `dynamic` block's iterator is written in as
                // (`{ key = ..., value = ... }.value`, see `repeat`).
                literal @ (Expression::Object(_) | Expression::Array(_)) => {
                    return literal_path(literal, &traversal.operators).map(Cow::Owned);
                }
                _ => return None,
            },
            _ => return None,
        };
        let names = self.names();
        let (mut value, rest): (&Value, _) = if let Some(value) = self.bound(root) {
            (value, operators)
        } else {
            let (first, rest) = operators.split_first()?;
            let name = key(first)?;
            let value = match root {
                "var" => names.vars.get(name)?.as_ref()?,
                "local" => names.locals.get(name)?.as_ref()?,
                "ami_set" | "key_pair" | "network" => names.objects.get(root)?.get(name)?,
                REGION if operators.is_empty() => {
                    return region.map(|r| Cow::Owned(Value::from(r)));
                }
                _ => return None,
            };
            (value, rest)
        };
        for op in rest {
            value = match (value, op.value()) {
                (Value::Object(object), _) => object.get(key(op)?)?,
                (Value::Array(items), TraversalOperator::LegacyIndex(i)) => {
                    items.get(usize::try_from(*i.value()).ok()?)?
                }
                (Value::Array(items), TraversalOperator::Index(Expression::Number(n))) => {
                    items.get(usize::try_from(n.value().as_u64()?).ok()?)?
                }
                _ => return None,
            };
        }
        Some(Cow::Borrowed(value))
    }

    /// The value of `expr` when it is made of literals, lists and objects
    /// with literal keys, and paths [`Scope::resolve`] finds: what hcl-rs
    /// would evaluate it to. `None` when anything else is in it.
    fn folded(&self, expr: &Expression, region: Option<&str>) -> Option<Value> {
        if let Some(value) = self.resolve(expr, region) {
            return Some(value.into_owned());
        }
        Some(match expr {
            Expression::Null(_) => Value::Null,
            Expression::Bool(b) => Value::Bool(*b.value()),
            Expression::Number(n) => Value::Number(*n.value()),
            Expression::String(s) => Value::String(s.value().clone()),
            Expression::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.folded(item, region))
                    .collect::<Option<_>>()?,
            ),
            Expression::Object(object) => {
                let mut map = Map::new();
                for (k, v) in object.iter() {
                    map.insert(literal_key(k)?.to_string(), self.folded(v.expr(), region)?);
                }
                Value::Object(map)
            }
            _ => return None,
        })
    }

    /// `expr` converted for hcl-rs, with every path [`Scope::resolve`]
    /// finds in a function's arguments, a list, an object's values or a
    /// string template replaced by its value (a template of strings alone
    /// by the string); `residual` gets the references of what is left.
    /// Nothing below another kind of expression is replaced: a `for`
    /// expression may bind a name of its own, and the others are rare.
    fn substituted(
        &self,
        expr: &Expression,
        region: Option<&str>,
        residual: &mut Vec<Reference>,
    ) -> hcl::Expression {
        use hcl_edit::template::Element;
        if let Some(value) = self.resolve(expr, region) {
            return value.into_owned().into();
        }
        match expr {
            Expression::FuncCall(call) => hcl::Expression::from(hcl::expr::FuncCall {
                name: call.name.clone().into(),
                args: call
                    .args
                    .iter()
                    .map(|arg| self.substituted(arg, region, residual))
                    .collect(),
                expand_final: call.args.expand_final(),
            }),
            Expression::Array(items) => hcl::Expression::Array(
                items
                    .iter()
                    .map(|item| self.substituted(item, region, residual))
                    .collect(),
            ),
            Expression::Object(object) => hcl::Expression::Object(
                object
                    .iter()
                    .map(|(key, value)| {
                        if let hcl_edit::expr::ObjectKey::Expression(key) = key {
                            residual.extend(references(key));
                        }
                        (
                            hcl::expr::ObjectKey::from(key.clone()),
                            self.substituted(value.expr(), region, residual),
                        )
                    })
                    .collect(),
            ),
            Expression::StringTemplate(template) => {
                // Only literals that read the same decoded or not (no
                // escape, no `$${`/`%%{`) and interpolations without
                // strip markers of strings that resolve.
                let mut text = String::new();
                for element in template.iter() {
                    match element {
                        Element::Literal(literal)
                            if !literal.value().contains(['$', '%', '\\']) =>
                        {
                            text.push_str(literal.value());
                        }
                        Element::Interpolation(i) if i.strip == hcl_edit::template::Strip::None => {
                            match self.resolve(&i.expr, region).as_deref() {
                                Some(Value::String(s)) => text.push_str(s),
                                _ => {
                                    residual.extend(references(expr));
                                    return expr.clone().into();
                                }
                            }
                        }
                        _ => {
                            residual.extend(references(expr));
                            return expr.clone().into();
                        }
                    }
                }
                hcl::Expression::String(text)
            }
            other => {
                residual.extend(references(other));
                other.clone().into()
            }
        }
    }

    /// Runs `f` with this thread's evaluation context holding the functions
    /// and, for each root `references` uses, only the names it refers to
    /// (`local.a` puts `a` into `local`, not every local: the evaluator
    /// copies a root's whole object at each reference), plus `region`.
    ///
    /// Names that an earlier expression had bound and this one has not are
    /// declared null rather than removed (the context cannot forget a
    /// name); the reference checks that run first refuse such a name, so
    /// no expression reaches one.
    fn with_context<R>(
        &self,
        references: &[Reference],
        region: Option<&str>,
        f: impl FnOnce(&Context<'static>) -> R,
    ) -> R {
        let names = self.names();
        let mut wanted: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for reference in references {
            let root = reference.root.as_str();
            let object = match root {
                "var" | "local" => {
                    let values = if root == "var" {
                        &names.vars
                    } else {
                        &names.locals
                    };
                    let object = wanted.entry(root).or_default();
                    match &reference.name {
                        Some(name) => {
                            if let Some(Some(value)) = values.get(name) {
                                object.insert(name.clone(), value.clone());
                            }
                        }
                        // `local[...]`: the whole object.
                        None => object.extend(
                            values
                                .iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.clone()?))),
                        ),
                    }
                    continue;
                }
                "ami_set" | "key_pair" | "network" => names.objects.get(root),
                other => match self.bound(other) {
                    Some(Value::Object(object)) => Some(object),
                    // A bound value that is not an object goes in whole.
                    Some(_) | None => None,
                },
            };
            let Some(object) = object else { continue };
            let entry = wanted.entry(root).or_default();
            match &reference.name {
                Some(name) => {
                    if let Some(value) = object.get(name) {
                        entry.insert(name.clone(), value.clone());
                    }
                }
                None => entry.extend(object.iter().map(|(k, v)| (k.clone(), v.clone()))),
            }
        }
        let mut declare = |ctx: &mut Context<'static>, declared: &mut BTreeSet<String>| {
            for root in ["var", "local", "ami_set", "key_pair", "network"] {
                ctx.declare_var(root, Value::Object(wanted.remove(root).unwrap_or_default()));
            }
            let mut now: BTreeSet<String> = BTreeSet::new();
            for (name, value) in &self.bound {
                if !references.iter().any(|r| &r.root == name) {
                    continue;
                }
                let value = match (&**value, wanted.remove(name.as_str())) {
                    (Value::Object(_), Some(partial)) => Value::Object(partial),
                    (value, _) => value.clone(),
                };
                ctx.declare_var(name.as_str(), value);
                now.insert(name.clone());
            }
            if let Some(region) = region {
                ctx.declare_var(REGION, region);
                now.insert(REGION.to_string());
            }
            for stale in declared.difference(&now) {
                ctx.declare_var(stale.as_str(), Value::Null);
            }
            declared.extend(now);
        };
        CONTEXT.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let (ctx, declared) = slot.get_or_insert_with(|| {
                    let mut ctx = Context::new();
                    functions::declare_all(&mut ctx);
                    (ctx, BTreeSet::new())
                });
                declare(ctx, declared);
                f(ctx)
            }
            // Evaluation inside an evaluation (none today): a context of its own.
            Err(_) => {
                let mut ctx = Context::new();
                functions::declare_all(&mut ctx);
                declare(&mut ctx, &mut BTreeSet::new());
                f(&ctx)
            }
        })
    }

    /// Reports references in `expr` to undeclared names; `Err` if any is wrong or poisoned.
    #[cfg(test)]
    pub fn check_references(
        &self,
        file: FileId,
        expr: &Expression,
        diags: &mut Diagnostics,
    ) -> Result<(), Skipped> {
        self.check_references_in(file, &references(expr), false, diags)
    }

    /// Reports references in `expr` to undeclared names; `Err` if any is
    /// wrong or poisoned. `region_defined` says whether
    /// `region` is a name here (in a worker type attribute evaluated per region).
    fn check_references_in(
        &self,
        file: FileId,
        references: &[Reference],
        region_defined: bool,
        diags: &mut Diagnostics,
    ) -> Result<(), Skipped> {
        let mut result = Ok(());
        let names = self.names();
        for reference in references {
            let at = reference.span.clone().map(|span| SourceRef { file, span });
            let problem = match (reference.root.as_str(), &reference.name) {
                (root, _) if self.bound(root).is_some() => None,
                ("var", Some(name)) => self.check_name(name, &names.vars, "variable", "var"),
                ("local", Some(name)) => self.check_name(name, &names.locals, "local", "local"),
                ("ami_set", Some(name)) => {
                    self.check_declared(name, &names.ami_sets, "AMI set", "ami_set")
                }
                ("key_pair", Some(name)) => {
                    self.check_declared(name, &names.key_pairs, "key pair", "key_pair")
                }
                ("network", Some(name)) => {
                    self.check_declared(name, &names.networks, "network", "network")
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
        self.try_eval_borrowed(file, expr, region, diags)
            .map(std::borrow::Cow::into_owned)
    }

    /// Evaluates `expr` in this scope (see [`Scope::eval`]), borrowing the
    /// value where it is kept when `expr` is a path to it: a `for_each` over
    /// a large local then copies each element where it is used (on the
    /// thread that uses it) instead of the whole map first.
    pub(super) fn eval_borrowed<'s>(
        &'s self,
        file: FileId,
        expr: &Expression,
        diags: &mut Diagnostics,
    ) -> Option<std::borrow::Cow<'s, Value>> {
        self.try_eval_borrowed(file, expr, None, diags).ok()
    }

    fn try_eval_borrowed<'s>(
        &'s self,
        file: FileId,
        expr: &Expression,
        region: Option<&'s str>,
        diags: &mut Diagnostics,
    ) -> Result<std::borrow::Cow<'s, Value>, Skipped> {
        match self.charge_with(file, expr, region.is_some(), diags)? {
            Charged::Literal(value) => Ok(std::borrow::Cow::Owned(value)),
            Charged::Pending(references) => {
                self.evaluate_charged(file, expr, region, references, diags)
            }
        }
    }

    /// The last part of [`Scope::eval`], for what [`Scope::spend`] charged.
    /// Assessing expressions, charging them in a fixed order and
    /// evaluating them afterwards, in any order or at once, reports what
    /// evaluating them one after another in that order reports.
    pub(super) fn evaluate(
        &self,
        file: FileId,
        expr: &Expression,
        charged: Charged,
        diags: &mut Diagnostics,
    ) -> Result<Value, Skipped> {
        match charged {
            Charged::Literal(value) => Ok(value),
            Charged::Pending(references) => self
                .evaluate_charged(file, expr, None, references, diags)
                .map(std::borrow::Cow::into_owned),
        }
    }

    fn charge_with(
        &self,
        file: FileId,
        expr: &Expression,
        regional: bool,
        diags: &mut Diagnostics,
    ) -> Result<Charged, Skipped> {
        let assessed = self.assess_with(file, expr, regional, diags)?;
        self.spend(file, expr, assessed, diags)
    }

    /// The first part of [`Scope::eval`], which spends nothing: the
    /// references of `expr` checked and its size bound. It reads only
    /// what was set before, so expressions that do not depend on each
    /// other are assessed at once and then spent in order.
    pub(super) fn assess(
        &self,
        file: FileId,
        expr: &Expression,
        diags: &mut Diagnostics,
    ) -> Result<Assessed, Skipped> {
        self.assess_with(file, expr, false, diags)
    }

    fn assess_with(
        &self,
        file: FileId,
        expr: &Expression,
        regional: bool,
        diags: &mut Diagnostics,
    ) -> Result<Assessed, Skipped> {
        // Literals are most attributes of a large fleet (capacities, markets,
        // lifetimes); they need neither reference checks nor a conversion.
        let literal = match expr {
            Expression::String(s) => Value::String(s.value().clone()),
            Expression::Number(n) => Value::Number(*n.value()),
            Expression::Bool(b) => Value::Bool(*b.value()),
            Expression::Null(_) => Value::Null,
            _ => {
                // A path to a value kept here (`each.value.min`, `local.tags`:
                // most other attributes of a fleet written with `for_each`)
                // refers to names that are declared and set, and copies that
                // value: it is charged its size, without a walk for
                // references and a bound. (Evaluating it resolves it again,
                // which is a walk down the path.)
                return Ok(match self.resolve(expr, None) {
                    Some(value) => Assessed::Pending {
                        references: Vec::new(),
                        size: size_of(&value),
                    },
                    None => {
                        let references = references(expr);
                        self.check_references_in(file, &references, regional, diags)?;
                        let size = Estimator::new(self).expr(expr).size;
                        Assessed::Pending { references, size }
                    }
                });
            }
        };
        Ok(Assessed::Literal(literal))
    }

    /// The second part of [`Scope::eval`]: charges an assessed
    /// expression to the budgets, in the order of the calls.
    pub(super) fn spend(
        &self,
        file: FileId,
        expr: &Expression,
        assessed: Assessed,
        diags: &mut Diagnostics,
    ) -> Result<Charged, Skipped> {
        self.spend_at(file, expr.span(), assessed, diags)
    }

    /// [`Scope::spend`] for an expression at `span` of `file`.
    pub(super) fn spend_at(
        &self,
        file: FileId,
        span: Option<Range<usize>>,
        assessed: Assessed,
        diags: &mut Diagnostics,
    ) -> Result<Charged, Skipped> {
        let (references, size) = match assessed {
            Assessed::Literal(value) => return Ok(Charged::Literal(value)),
            Assessed::Pending { references, size } => (references, size),
        };
        if size > VALUE_BUDGET {
            diags.push(
                Diagnostic::error(
                    Code::TooLarge,
                    format!(
                        "this expression could build a value of up to {} MiB, past the limit of {} MiB",
                        size / (1024 * 1024),
                        VALUE_BUDGET / (1024 * 1024)
                    ),
                )
                .at(span.clone().map(|span| SourceRef { file, span }), "too large to evaluate")
                .help("nested `for` expressions multiply the sizes of their collections, and each interpolation repeats its value; iterate over smaller collections or split the expression"),
            );
            return Err(Skipped::Reported);
        }
        let names = self.names();
        let spent = names
            .spent
            .fetch_add(size, Ordering::Relaxed)
            .saturating_add(size);
        if spent > TOTAL_BUDGET {
            // Reported once, at the expression that crossed the line; the
            // rest are skipped quietly (they would all say the same).
            if names.overspent.swap(true, Ordering::Relaxed) {
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
                .at(span.map(|span| SourceRef { file, span }), "past the total budget")
                .help("a large value referred to from many places is copied into each; keep large locals small or refer to them less often"),
            );
            return Err(Skipped::Reported);
        }
        Ok(Charged::Pending(references))
    }

    /// [`Scope::assess`] for a local taken out of its syntax tree: what
    /// assessing the list or object it was written as finds.
    pub(super) fn assess_shape(
        &self,
        file: FileId,
        local: &ShapedLocal,
        diags: &mut Diagnostics,
    ) -> Result<Assessed, Skipped> {
        // A list or an object is neither a literal nor a path: its references
        // are checked and its size bound is what the estimator finds.
        self.check_references_in(file, &local.references, false, diags)?;
        let size = self.shape_size(&local.shape, &mut Estimator::new(self));
        // Evaluating a shape needs no references (see `fold_shape`).
        Ok(Assessed::Pending {
            references: Vec::new(),
            size,
        })
    }

    /// The estimator's size bound of the expression `shape` was made from.
    fn shape_size(&self, shape: &Shape, estimator: &mut Estimator) -> u64 {
        match shape {
            // Of literals alone, the bound is the size of the value.
            Shape::Literal(value) => size_of(value),
            Shape::Path(path) => estimator.expr(path).size,
            Shape::Array(items) => items.iter().fold(1u64, |size, item| {
                size.saturating_add(self.shape_size(item, estimator))
            }),
            Shape::Object(entries) => entries.iter().fold(1u64, |size, (key, value)| {
                size.saturating_add(key.len() as u64)
                    .saturating_add(self.shape_size(value, estimator))
            }),
        }
    }

    /// The value of a local taken out of its syntax tree, as evaluating the
    /// list or object it was written as gives it; `None` when a path in it
    /// does not resolve (evaluating it as written then reports why).
    pub(super) fn fold_shape(&self, shape: Shape) -> Option<Value> {
        Some(match shape {
            Shape::Literal(value) => value,
            Shape::Path(path) => self.resolve(&path, None)?.into_owned(),
            Shape::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| self.fold_shape(item))
                    .collect::<Option<_>>()?,
            ),
            Shape::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    map.insert(key, self.fold_shape(value)?);
                }
                Value::Object(map)
            }
        })
    }

    fn evaluate_charged<'s>(
        &'s self,
        file: FileId,
        expr: &Expression,
        region: Option<&'s str>,
        references: Vec<Reference>,
        diags: &mut Diagnostics,
    ) -> Result<std::borrow::Cow<'s, Value>, Skipped> {
        use std::borrow::Cow;
        let at = expr.span().map(|span| SourceRef { file, span });
        if let Some(value) = self.resolve(expr, region) {
            return Ok(value);
        }
        // A list or object of literals and such paths (the large maps of a
        // fleet's `locals`) is built here, not converted and evaluated.
        if matches!(expr, Expression::Array(_) | Expression::Object(_)) {
            if let Some(value) = self.folded(expr, region) {
                return Ok(Cow::Owned(value));
            }
        }
        // The paths inside a call, list, object or template that resolve
        // (`each.value.userdata`, `var.root_url`) go in as their values: the
        // context then holds only the names of the rest (a bound `each`
        // would otherwise be copied into it for every expression), and a
        // template made of strings alone is not re-parsed by hcl-rs. Values
        // are what hcl-rs would look up, so a success is its success; on a
        // failure the expression is evaluated again as written, so that the
        // error (which may quote the expression) is hcl-rs's own.
        let mut residual = Vec::new();
        let substituted = self.substituted(expr, region, &mut residual);
        if let Ok(value) = self.with_context(&residual, region, |ctx| {
            functions::evaluate(&substituted, ctx)
        }) {
            return Ok(Cow::Owned(value));
        }
        let converted: hcl::Expression = expr.clone().into();
        let evaluated = self.with_context(&references, region, |ctx| {
            functions::evaluate(&converted, ctx)
        });
        evaluated.map(Cow::Owned).map_err(|error| {
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

impl Known for Scope<'_> {
    fn lookup(&self, root: &str, name: Option<&str>) -> Option<Bound> {
        if let Some(value) = self.bound(root) {
            return Some(match (value, name) {
                (Value::Object(object), Some(name)) => object.get(name).map_or(
                    Bound {
                        size: 0,
                        items: 0,
                        item: 0,
                    },
                    Bound::of,
                ),
                (value, _) => Bound::of(value),
            });
        }
        let names = self.names();
        match root {
            "var" | "local" => {
                let known = names.bounds.get(root);
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
                let instances = &names.instances;
                let names = match root {
                    "ami_set" => &names.ami_sets,
                    "key_pair" => &names.key_pairs,
                    _ => &names.networks,
                };
                let one = |name: &str| 1 + 4 + root.len() as u64 + 4 + name.len() as u64;
                let keys = instances.get(root).and_then(|i| i.get(name.unwrap_or("")));
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

/// The key a traversal step names: `.key` or `["key"]`.
/// The value at `operators` in a literal list or object, if everything
/// on the way is a literal with literal keys; `None` otherwise (then it is
/// evaluated as any expression).
fn literal_path(
    literal: &Expression,
    operators: &[hcl_edit::Decorated<TraversalOperator>],
) -> Option<Value> {
    let mut at = literal;
    for op in operators {
        at = match (at, op.value()) {
            (Expression::Object(object), _) => {
                let wanted = key(op)?;
                // As in hcl-rs's objects, the last of two equal keys wins
                // (the parser refuses them; one from a value has none).
                let mut found = None;
                for (k, v) in object.iter() {
                    if literal_key(k)? == wanted {
                        found = Some(v.expr());
                    }
                }
                found?
            }
            (Expression::Array(items), TraversalOperator::LegacyIndex(i)) => {
                items.get(usize::try_from(*i.value()).ok()?)?
            }
            (Expression::Array(items), TraversalOperator::Index(Expression::Number(n))) => {
                items.get(usize::try_from(n.value().as_u64()?).ok()?)?
            }
            _ => return None,
        };
    }
    literal_value(at)
}

/// The name of an object key written as a name or a string literal.
pub(super) fn literal_key(key: &hcl_edit::expr::ObjectKey) -> Option<&str> {
    match key {
        hcl_edit::expr::ObjectKey::Ident(ident) => Some(ident.as_str()),
        hcl_edit::expr::ObjectKey::Expression(Expression::String(s)) => Some(s.as_str()),
        hcl_edit::expr::ObjectKey::Expression(_) => None,
    }
}

/// The value of an expression made of literals alone.
fn literal_value(expr: &Expression) -> Option<Value> {
    Some(match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => Value::Number(*n.value()),
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(items) => {
            Value::Array(items.iter().map(literal_value).collect::<Option<_>>()?)
        }
        Expression::Object(object) => {
            let mut map = Map::new();
            for (k, v) in object.iter() {
                map.insert(literal_key(k)?.to_string(), literal_value(v.expr())?);
            }
            Value::Object(map)
        }
        _ => return None,
    })
}

fn key(op: &hcl_edit::Decorated<TraversalOperator>) -> Option<&str> {
    match op.value() {
        TraversalOperator::GetAttr(ident) => Some(ident.as_str()),
        TraversalOperator::Index(Expression::String(s)) => Some(s.as_str()),
        _ => None,
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
) -> Map<String, Value> {
    let one = |name: &str| {
        let mut object = Map::new();
        object.insert("kind".to_string(), Value::from(kind));
        object.insert("name".to_string(), Value::from(name));
        Value::Object(object)
    };
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
        .collect()
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

    /// Regression: a template's `%{ for }` binds its names over its body, and
    /// its collection is a reference like any other.
    #[test]
    fn a_template_for_directive_binds_its_names_and_reads_its_collection() {
        assert_eq!(
            refs(r#""%{ for k, t in var.xs }${k}=${t} ${local.sep}%{ endfor }""#),
            vec![
                ("var".to_string(), Some("xs".to_string())),
                ("local".to_string(), Some("sep".to_string())),
            ]
        );
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

    /// A path to a kept value is charged that value's size: a small
    /// attribute of a large `each.value` costs what it copies, not the
    /// largest attribute beside it.
    #[test]
    fn a_local_taken_out_as_a_shape_is_assessed_and_evaluated_as_written() {
        let mut scope = Scope::new(
            ["owner".to_string()],
            ["sizes".to_string(), "later".to_string()],
            ["ubuntu".to_string()],
            [],
            [],
        );
        scope.set_var("owner", Some(Value::from("releng")));
        let mut sizes = Map::new();
        sizes.insert("large".to_string(), Value::from(4));
        sizes.insert("names".to_string(), Value::from(vec!["a", "bb"]));
        scope.set_local("sizes", Some(Value::Object(sizes)));
        let texts = [
            r#"{ "a" = { ami = ami_set.ubuntu, min = 1, types = { "m5.large" = 1 } }, b = [var.owner, "x", null, true] }"#,
            r#"[local.sizes.large, local.sizes["names"], local.sizes.names[1], { owner = var.owner }]"#,
            r#"{ whole = local.sizes, plain = [1, 2.5, "three"] }"#,
        ];
        for text in texts {
            let body = format!("locals {{\n  l = {text}\n}}\n");
            let mut parsed = hcl_edit::parser::parse_body(&body).expect("parses");
            let written = parsed
                .get_blocks("locals")
                .next()
                .and_then(|b| b.body.get_attribute("l"))
                .map(|a| a.value.clone())
                .expect("the local");
            let [shaped] =
                <[ShapedLocal; 1]>::try_from(super::super::shape::take_locals(&mut parsed))
                    .expect("one local taken");
            let mut diags = Diagnostics::default();
            let (
                Ok(Assessed::Pending {
                    size: as_written, ..
                }),
                Ok(Assessed::Pending { size: as_shape, .. }),
            ) = (
                scope.assess(0, &written, &mut diags),
                scope.assess_shape(0, &shaped, &mut diags),
            )
            else {
                panic!("{text}: both are assessed as pending");
            };
            assert_eq!(as_written, as_shape, "{text}");
            assert_eq!(shaped.references, references(&written), "{text}");
            assert_eq!(shaped.span, written.span(), "{text}");
            let value = scope.eval(0, &written, &mut diags).expect("evaluates");
            assert_eq!(scope.fold_shape(shaped.shape), Some(value), "{text}");
            assert!(diags.is_empty(), "{text}: {diags:?}");
        }
        // A path that does not resolve has no shape value: the load starts
        // again with whole files, where evaluating it reports why.
        let mut parsed =
            hcl_edit::parser::parse_body("locals {\n  l = { a = local.sizes.missing }\n}\n")
                .expect("parses");
        let [shaped] = <[ShapedLocal; 1]>::try_from(super::super::shape::take_locals(&mut parsed))
            .expect("one local taken");
        assert_eq!(scope.fold_shape(shaped.shape), None);
    }

    #[test]
    fn a_path_is_charged_the_size_of_the_value_it_names() {
        let scope = Scope::new([], [], [], [], []);
        let mut value = Map::new();
        value.insert("small".to_string(), Value::from("abc"));
        value.insert("large".to_string(), Value::from("x".repeat(100_000)));
        let mut each = Map::new();
        each.insert("key".to_string(), Value::from("k"));
        each.insert("value".to_string(), Value::Object(value));
        let bound = scope.bind("each", Value::Object(each));
        let spent = |scope: &Scope| scope.names().spent.load(Ordering::Relaxed);
        let before = spent(&bound);
        let expr = hcl_edit::parser::parse_expr("each.value.small").expect("parses");
        let mut diags = Diagnostics::default();
        assert_eq!(bound.eval(0, &expr, &mut diags), Some(Value::from("abc")));
        assert!(diags.is_empty());
        assert_eq!(spent(&bound) - before, 3);
        // The same path in an operation is bounded from what it may name.
        let expr = hcl_edit::parser::parse_expr("upper(each.value.small)").expect("parses");
        assert_eq!(bound.eval(0, &expr, &mut diags), Some(Value::from("ABC")));
        assert!(spent(&bound) - before >= 100_000);
    }

    #[test]
    fn a_bound_name_is_looked_up_or_evaluated_alike_and_its_errors_are_reported() {
        let mut scope = Scope::new([], ["m".to_string()], [], [], []);
        let m: Value = hcl::from_str::<hcl::Body>("v = { max = 3, tags = { a = \"b\" } }")
            .ok()
            .and_then(|b| {
                b.attributes()
                    .next()
                    .map(|a| hcl::Value::from(a.expr.clone()))
            })
            .expect("a value");
        scope.set_local("m", Some(m.clone()));
        let mut each = Map::new();
        each.insert("key".to_string(), Value::from("k"));
        each.insert("value".to_string(), m);
        let bound = scope.bind("each", Value::Object(each));
        let eval = |text: &str, scope: &Scope, diags: &mut Diagnostics| {
            let expr = hcl_edit::parser::parse_expr(text).expect("parses");
            scope.eval(0, &expr, diags)
        };
        let mut diags = Diagnostics::default();
        // A path (looked up) and the same value through an operation (evaluated).
        assert_eq!(
            eval("each.value.max", &bound, &mut diags),
            Some(Value::from(3))
        );
        assert_eq!(
            eval("each.value.max + 0", &bound, &mut diags),
            Some(Value::from(3))
        );
        assert_eq!(
            eval("\"${each.key}-${local.m.tags.a}\"", &bound, &mut diags),
            Some(Value::from("k-b"))
        );
        assert!(diags.is_empty());
        assert_eq!(eval("each.value.nope", &bound, &mut diags), None);
        assert_eq!(diags.len(), 1);
        assert_eq!(
            diags.iter().next().map(|d| d.code),
            Some(Code::UndefinedReference)
        );
        // The scope it was made from has no `each`.
        let mut diags = Diagnostics::default();
        assert_eq!(eval("each.key", &scope, &mut diags), None);
        assert!(diags
            .iter()
            .any(|d| d.message.contains("`each` is defined only inside")));
    }

    /// Paths inside calls, lists, objects and templates go into hcl-rs as
    /// their values (`Scope::substituted`): every value, and every error,
    /// is what evaluating the expression as written gives.
    #[test]
    fn substituted_paths_evaluate_and_fail_as_written() {
        let mut scope = Scope::new([], ["m".to_string()], [], [], []);
        let m: Value = hcl::from_str::<hcl::Body>(
            "v = { max = 3, name = \"gw.ps1\", tags = { a = \"b\" }, list = [\"x\", \"y\"] }",
        )
        .ok()
        .and_then(|b| {
            b.attributes()
                .next()
                .map(|a| hcl::Value::from(a.expr.clone()))
        })
        .expect("a value");
        scope.set_local("m", Some(m.clone()));
        let mut each = Map::new();
        each.insert("key".to_string(), Value::from("k"));
        each.insert("value".to_string(), m);
        let bound = scope.bind("each", Value::Object(each));
        for text in [
            "upper(each.value.name)",
            "\"userdata/${each.value.name}\"",
            "\"${each.key}-${each.value.max}\"",
            "\"a$${each.key}b${each.key}\"",
            "\"a%%{x}\\n${each.key}\"",
            "\"  ${~ each.key ~}  \"",
            "\"%{ if each.key == \"k\" }${each.key}%{ endif }\"",
            "[each.key, local.m.tags, { (each.key) = each.value.max, z = each.value.list }]",
            "merge(local.m.tags, { k = each.key })",
            "[for each in each.value.list : each]",
            "concat(each.value.list, [each.key]...)",
            "length(\"${each.value.tags}\")",
            "upper(each.value.nope)",
            "each.value.max + each.key",
            "lookup(each.value.tags, \"z\", each.value.max)",
            // What a dynamic block's iterator is written in as.
            "{ key = \"k\", value = { a = [1, true, null], \"b\" = \"c\" } }.value",
            "{ key = \"k\", value = { a = [1, true, null] } }.value.a[1]",
            "[\"x\", [\"y\"]][1].0",
            "{ a = 1 }.b",
            "{ (each.key) = 1 }.k",
            "{ a = each.key }.a",
            // Lists and objects of literals and paths, built directly.
            "{ a = each.key, b = [local.m.tags, 1, \"x\", true], \"c\" = { d = null } }",
            "[each.value.max, [each.value.list], {}]",
            "{ a = upper(each.key), b = each.value.nope }",
            "[each.value.nope]",
        ] {
            let expr = hcl_edit::parser::parse_expr(text).expect("parses");
            let written: hcl::Expression = expr.clone().into();
            let expected = bound.with_context(&references(&expr), None, |ctx| {
                functions::evaluate(&written, ctx)
            });
            let mut diags = Diagnostics::default();
            let got = bound.eval(0, &expr, &mut diags);
            match expected {
                Ok(value) => {
                    assert_eq!(got.as_ref(), Some(&value), "{text}");
                    assert!(diags.is_empty(), "{text}");
                }
                Err(error) => {
                    assert_eq!(got, None, "{text}");
                    let messages: Vec<String> = diags.iter().map(|d| d.message.clone()).collect();
                    assert_eq!(messages, [eval_diagnostic(&error).message], "{text}");
                }
            }
        }
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
