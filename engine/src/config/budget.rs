//! How large a value an expression can grow to, bounded before it is
//! evaluated.
//!
//! The evaluator has no limit of its own. A config of a few hundred bytes can
//! ask it for gigabytes: nine nested `for` expressions over ten-element lists,
//! or a chain of locals that each interpolate the previous one twice. The fuzzer
//! found both. Each expression therefore gets an upper bound on the size of
//! its result and of everything built on the way, computed from the sizes of
//! the values it refers to (already known: locals are evaluated in dependency
//! order). One past [`VALUE_BUDGET`] is refused with a diagnostic at its span.
//!
//! Sizes are in bytes of text: a string counts its length, a number 24, a
//! collection one plus its parts (with keys). The bound is conservative and
//! never too small, because an iteration variable takes the largest element
//! of its collection. It stays close for the shapes configs use (maps of
//! worker types, lists of regions).

use hcl::Value;
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::template::{Directive, Element, Template};

/// The largest value (and intermediate value) one expression may produce: 16 MiB.
pub const VALUE_BUDGET: u64 = 16 * 1024 * 1024;

/// The most all the expressions of one load may produce together: 256 MiB
/// (a value referred to from many places is copied into each). A fleet of
/// 10,000 worker types with 16 KiB of user data each stays well under it.
pub const TOTAL_BUDGET: u64 = 256 * 1024 * 1024;

/// Size a number counts for (its longest decimal form).
const NUMBER: u64 = 24;

/// What is known of a value before it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Its size, and that of anything built while computing it.
    pub size: u64,
    /// How many elements it has, if it is a collection.
    pub items: u64,
    /// The size of its largest element.
    pub item: u64,
}

impl Bound {
    fn scalar(size: u64) -> Bound {
        Bound {
            size,
            items: 0,
            item: 0,
        }
    }

    /// An object of two short string attributes, of this size in all.
    pub fn scalar_object(size: u64) -> Bound {
        Bound {
            size,
            items: 2,
            item: size,
        }
    }

    /// A value of this size whose shape is unknown: any element may be all of it.
    fn opaque(size: u64) -> Bound {
        Bound {
            size,
            items: size,
            item: size,
        }
    }

    /// The bound of a value that exists.
    pub fn of(value: &Value) -> Bound {
        match value {
            Value::Array(items) => Bound {
                size: size_of(value),
                items: items.len() as u64,
                item: items.iter().map(size_of).max().unwrap_or(0),
            },
            Value::Object(map) => Bound {
                size: size_of(value),
                items: map.len() as u64,
                item: map.values().map(size_of).max().unwrap_or(0),
            },
            _ => Bound::scalar(size_of(value)),
        }
    }

    /// An element of this value (the largest one, for all that is known).
    fn element(self) -> Bound {
        Bound::opaque(self.item)
    }
}

/// Size of a value, in the units of [`Bound::size`].
pub fn size_of(value: &Value) -> u64 {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(_) => NUMBER,
        Value::String(s) => s.len() as u64,
        Value::Array(items) => items
            .iter()
            .fold(1u64, |sum, v| sum.saturating_add(size_of(v))),
        Value::Object(map) => map.iter().fold(1u64, |sum, (k, v)| {
            sum.saturating_add(k.len() as u64)
                .saturating_add(size_of(v))
        }),
    }
}

/// Where the sizes of names come from.
pub trait Known {
    /// The bound of `root.name` (or of `root` when `name` is `None`, or the
    /// value under it when `path` goes further), if the root is known. A
    /// template's bare variables come here with `root` set to their name.
    fn lookup(&self, root: &str, name: Option<&str>) -> Option<Bound>;
    /// The template `templatefile(path, ...)` would render, if it can be read and parsed.
    fn template(&self, path: &str) -> Option<std::rc::Rc<Template>>;
    /// The length of the file `file(path)` would read, if it can be read.
    fn file_len(&self, path: &str) -> Option<u64>;
    /// The files a path written as `"<prefix>${...}<suffix>"` can name, if
    /// they can be listed (by default they cannot: assume the worst).
    fn template_candidates(&self, prefix: &str, suffix: &str) -> Option<std::rc::Rc<Vec<String>>> {
        let _ = (prefix, suffix);
        None
    }
}

/// Computes bounds, with the iteration variables of enclosing `for`s bound.
pub struct Estimator<'a> {
    known: &'a dyn Known,
    bound: Vec<(String, Bound)>,
    /// Bound for a bare name that is neither iterated nor known (template arguments).
    unknown_names: Option<Bound>,
}

impl<'a> Estimator<'a> {
    /// An estimator over `known`.
    pub fn new(known: &'a dyn Known) -> Estimator<'a> {
        Estimator {
            known,
            bound: Vec::new(),
            unknown_names: None,
        }
    }

    /// The bound of `expr`.
    pub fn expr(&mut self, expr: &Expression) -> Bound {
        match expr {
            Expression::Null(_) | Expression::Bool(_) => Bound::scalar(1),
            Expression::Number(_) => Bound::scalar(NUMBER),
            Expression::String(s) => Bound::scalar(s.len() as u64),
            Expression::Array(array) => {
                let parts: Vec<Bound> = array.iter().map(|e| self.expr(e)).collect();
                Bound {
                    size: sum(parts.iter().map(|b| b.size)).saturating_add(1),
                    items: parts.len() as u64,
                    item: parts.iter().map(|b| b.size).max().unwrap_or(0),
                }
            }
            Expression::Object(object) => {
                let mut size = 1u64;
                let mut item = 0u64;
                for (key, value) in object.iter() {
                    let key = match key {
                        ObjectKey::Ident(ident) => ident.as_str().len() as u64,
                        ObjectKey::Expression(e) => self.expr(e).size,
                    };
                    let value = self.expr(value.expr()).size;
                    size = size.saturating_add(key).saturating_add(value);
                    item = item.max(value);
                }
                Bound {
                    size,
                    items: object.len() as u64,
                    item,
                }
            }
            Expression::StringTemplate(template) => Bound::scalar(self.template(template)),
            Expression::HeredocTemplate(heredoc) => Bound::scalar(self.template(&heredoc.template)),
            Expression::Parenthesis(inner) => self.expr(inner.inner()),
            Expression::Variable(var) => self.name(var.as_str(), None),
            Expression::Conditional(c) => {
                let cond = self.expr(&c.cond_expr);
                let (t, f) = (self.expr(&c.true_expr), self.expr(&c.false_expr));
                Bound {
                    size: cond.size.max(t.size).max(f.size),
                    items: t.items.max(f.items),
                    item: t.item.max(f.item),
                }
            }
            Expression::FuncCall(call) => {
                let args: Vec<Bound> = call.args.iter().map(|a| self.expr(a)).collect();
                self.call(call.name.name.as_str(), &args, call)
            }
            Expression::Traversal(traversal) => self.traversal(traversal),
            Expression::UnaryOp(op) => {
                let inner = self.expr(&op.expr);
                Bound::scalar(inner.size.max(NUMBER))
            }
            Expression::BinaryOp(op) => {
                // Arithmetic, comparison and logic give numbers and bools;
                // the operands are built on the way.
                let (l, r) = (self.expr(&op.lhs_expr), self.expr(&op.rhs_expr));
                Bound::scalar(l.size.max(r.size).max(NUMBER))
            }
            Expression::ForExpr(for_expr) => {
                let collection = self.expr(&for_expr.intro.collection_expr);
                let before = self.bind_iteration(
                    for_expr.intro.key_var.as_deref(),
                    &for_expr.intro.value_var,
                    collection,
                );
                let key = for_expr.key_expr.as_ref().map_or(0, |k| self.expr(k).size);
                let value = self.expr(&for_expr.value_expr).size;
                let cond = for_expr
                    .cond
                    .as_ref()
                    .map_or(0, |c| self.expr(&c.expr).size);
                self.bound.truncate(before);
                // One more per element: in grouping mode each key holds a list.
                let each = key.saturating_add(value).saturating_add(1).max(cond);
                let all = collection.items.saturating_mul(each);
                Bound {
                    size: collection.size.max(all.saturating_add(1)),
                    items: collection.items,
                    // Grouping collects every value under one key at worst.
                    item: if for_expr.grouping { all } else { value },
                }
            }
        }
    }

    /// The bound of a template's rendered text.
    pub fn template(&mut self, template: &Template) -> u64 {
        let mut size = 0u64;
        for element in template.iter() {
            let part = match element {
                Element::Literal(text) => text.len() as u64,
                Element::Interpolation(i) => self.expr(&i.expr).size,
                Element::Directive(directive) => match directive.as_ref() {
                    Directive::If(d) => {
                        let cond = self.expr(&d.if_expr.cond_expr).size;
                        let then = self.template(&d.if_expr.template);
                        let other = d
                            .else_expr
                            .as_ref()
                            .map_or(0, |e| self.template(&e.template));
                        cond.max(then.max(other))
                    }
                    Directive::For(d) => {
                        let collection = self.expr(&d.for_expr.collection_expr);
                        let before = self.bind_iteration(
                            d.for_expr.key_var.as_deref(),
                            &d.for_expr.value_var,
                            collection,
                        );
                        let body = self.template(&d.for_expr.template);
                        self.bound.truncate(before);
                        collection.size.max(collection.items.saturating_mul(body))
                    }
                },
            };
            size = size.saturating_add(part);
        }
        size
    }

    /// Binds a `for`'s key and value variables to an element of `collection`;
    /// returns the depth to truncate the bindings back to afterwards.
    fn bind_iteration(
        &mut self,
        key: Option<&hcl_edit::Ident>,
        value: &hcl_edit::Ident,
        collection: Bound,
    ) -> usize {
        let before = self.bound.len();
        for name in key.into_iter().chain([value]) {
            self.bound
                .push((name.as_str().to_string(), collection.element()));
        }
        before
    }

    fn name(&self, root: &str, attr: Option<&str>) -> Bound {
        if let Some((_, bound)) = self.bound.iter().rev().find(|(name, _)| name == root) {
            return match attr {
                Some(_) => bound.element(),
                None => *bound,
            };
        }
        if let Some(bound) = self.known.lookup(root, attr) {
            return bound;
        }
        self.unknown_names.unwrap_or(Bound::scalar(0))
    }

    fn traversal(&mut self, traversal: &hcl_edit::expr::Traversal) -> Bound {
        let mut operators = traversal.operators.iter().peekable();
        let mut current = match &traversal.expr {
            Expression::Variable(var) => {
                let attr = operators.peek().and_then(|op| match op.value() {
                    TraversalOperator::GetAttr(ident) => Some(ident.as_str()),
                    TraversalOperator::Index(Expression::String(s)) => Some(s.as_str()),
                    _ => None,
                });
                if attr.is_some() {
                    operators.next();
                }
                self.name(var.as_str(), attr)
            }
            other => self.expr(other),
        };
        for op in operators {
            current = match op.value() {
                TraversalOperator::Index(index) => {
                    let index = self.expr(index);
                    let element = current.element();
                    Bound {
                        size: element.size.max(index.size),
                        ..element
                    }
                }
                TraversalOperator::GetAttr(_) | TraversalOperator::LegacyIndex(_) => {
                    current.element()
                }
                // A splat keeps the collection's length; each element shrinks or stays.
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => current,
            };
        }
        current
    }

    fn call(&mut self, name: &str, args: &[Bound], call: &hcl_edit::expr::FuncCall) -> Bound {
        let total = sum(args.iter().map(|a| a.size));
        match name {
            "file" => Bound::scalar(self.file(call)),
            "templatefile" => Bound::scalar(self.templatefile(call, args)),
            "merge" | "concat" => Bound {
                size: total.saturating_add(1),
                items: sum(args.iter().map(|a| a.items)),
                item: args.iter().map(|a| a.item).max().unwrap_or(0),
            },
            // lookup(map, key, default): an element of the map, or the default.
            "lookup" => {
                let element = args.first().map_or(Bound::scalar(0), |m| m.element());
                let default = args.get(2).copied().unwrap_or(Bound::scalar(0));
                Bound {
                    size: total.max(element.size.max(default.size)),
                    items: element.items.max(default.items),
                    item: element.item.max(default.item),
                }
            }
            // JSON escapes a byte into at most six (\u00XX), plus quotes and separators.
            "jsonencode" => Bound::scalar(total.saturating_mul(6).saturating_add(2)),
            // Functions whose result outgrows their arguments know their own bound.
            _ => super::functions::bound(name, args).unwrap_or(Bound::scalar(
                total.saturating_mul(2).saturating_add(NUMBER),
            )),
        }
    }

    /// The size of `file(PATH)`: the file's when the path is written out and
    /// it can be read, else the largest file `file()` reads.
    fn file(&self, call: &hcl_edit::expr::FuncCall) -> u64 {
        match call.args.iter().next() {
            Some(Expression::String(path)) => self.known.file_len(path.as_str()).unwrap_or(0),
            _ => super::functions::MAX_FILE_BYTES,
        }
    }

    /// The rendered size of `templatefile(PATH, VARS)`: the template is read
    /// and bounded with VARS' entries as its names. A path that is not a
    /// literal, or a file that cannot be read or parsed (evaluation reports
    /// that), gets a bound from the largest readable file and the arguments.
    fn templatefile(&mut self, call: &hcl_edit::expr::FuncCall, args: &[Bound]) -> u64 {
        let fallback = || {
            super::functions::MAX_FILE_BYTES
                .saturating_mul(args.get(1).map_or(1, |a| a.size.max(1)))
        };
        let path = match call.args.iter().next() {
            Some(Expression::String(path)) => path.as_str().to_string(),
            // `"userdata/${each.value.kind}.sh"`: the largest of the files it
            // can name (paths never leave the config directory).
            Some(Expression::StringTemplate(path)) => {
                let Some((prefix, suffix)) = literal_ends(path) else {
                    return fallback();
                };
                let Some(candidates) = self.known.template_candidates(&prefix, &suffix) else {
                    return fallback();
                };
                return candidates
                    .iter()
                    .map(|candidate| self.rendered(candidate, call, args))
                    .max()
                    .unwrap_or(0);
            }
            _ => return fallback(),
        };
        self.rendered(&path, call, args)
    }

    /// The rendered size of the template at `path` with the VARS of `call`.
    fn rendered(&mut self, path: &str, call: &hcl_edit::expr::FuncCall, args: &[Bound]) -> u64 {
        let Some(template) = self.known.template(path) else {
            return 0;
        };
        let mut inner = Estimator {
            known: &NothingKnown,
            bound: Vec::new(),
            unknown_names: args.get(1).map(|a| a.element()),
        };
        if let Some(Expression::Object(vars)) = call.args.iter().nth(1) {
            for (key, value) in vars.iter() {
                if let ObjectKey::Ident(ident) = key {
                    let value = self.expr(value.expr());
                    inner.bound.push((ident.as_str().to_string(), value));
                }
            }
        }
        inner.template(&template)
    }
}

/// The literal text before the first and after the last interpolation or
/// directive of a string template; `None` when it has neither (then it is
/// not a path with a hole).
fn literal_ends(template: &hcl_edit::template::StringTemplate) -> Option<(String, String)> {
    use hcl_edit::template::Element;
    let elements: Vec<&Element> = template.iter().collect();
    let first_hole = elements
        .iter()
        .position(|e| !matches!(e, Element::Literal(_)))?;
    let last_hole = elements
        .iter()
        .rposition(|e| !matches!(e, Element::Literal(_)))?;
    let text = |es: &[&Element]| {
        es.iter()
            .filter_map(|e| match e {
                Element::Literal(text) => Some(text.as_str()),
                _ => None,
            })
            .collect::<String>()
    };
    Some((
        text(&elements[..first_hole]),
        text(&elements[last_hole + 1..]),
    ))
}

/// No names known (inside a template, whose names are its arguments).
struct NothingKnown;

impl Known for NothingKnown {
    fn lookup(&self, _: &str, _: Option<&str>) -> Option<Bound> {
        None
    }
    fn template(&self, _: &str) -> Option<std::rc::Rc<Template>> {
        None
    }
    fn file_len(&self, _: &str) -> Option<u64> {
        None
    }
}

fn sum(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0u64, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Locals(BTreeMap<String, Value>);

    impl Known for Locals {
        fn lookup(&self, root: &str, name: Option<&str>) -> Option<Bound> {
            (root == "local")
                .then(|| self.0.get(name?))
                .flatten()
                .map(Bound::of)
        }
        fn template(&self, _: &str) -> Option<std::rc::Rc<Template>> {
            hcl_edit::parser::parse_template("%{ for w in workers }${w}-${root}\n%{ endfor }")
                .ok()
                .map(std::rc::Rc::new)
        }
        fn file_len(&self, _: &str) -> Option<u64> {
            Some(100)
        }
    }

    fn bound(expr: &str, locals: &[(&str, Value)]) -> Bound {
        let known = Locals(
            locals
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        );
        let expr = hcl_edit::parser::parse_expr(expr).expect("parses");
        Estimator::new(&known).expr(&expr)
    }

    fn eval(expr: &str) -> Value {
        use hcl::eval::Evaluate;
        let expr: hcl::Expression = expr.parse().expect("parses");
        expr.evaluate(&hcl::eval::Context::new())
            .expect("evaluates")
    }

    #[test]
    fn the_bound_is_never_below_the_value() {
        for expr in [
            r#""plain""#,
            r#"[1, 2, "three"]"#,
            r#"{a = "x", b = [1, 2]}"#,
            r#"[for v in [1, 2, 3] : [for w in ["a", "bb"] : "${v}${w}"]]"#,
            r#"{for k, v in {a = "x", b = "yy"} : v => k}"#,
            r#"{for v in ["a", "b", "a"] : v => v...}"#,
            r#"true ? "long string here" : "s""#,
            r#""%{ for x in ["a", "b"] }${x}, %{ endfor }""#,
        ] {
            let value = eval(expr);
            let b = bound(expr, &[]);
            assert!(
                b.size >= size_of(&value),
                "{expr}: {b:?} < {}",
                size_of(&value)
            );
        }
    }

    #[test]
    fn nested_fors_multiply_and_the_fuzzers_blow_up_is_far_past_the_budget() {
        let ten = "[0,1,2,3,4,5,6,7,8,9]";
        let mut expr = r#""xxxxxxxxxxxxxxxx""#.to_string();
        for depth in 0..9 {
            expr = format!("[for v{depth} in {ten} : {expr}]");
        }
        assert!(
            bound(&expr, &[]).size > 10_000_000_000,
            "ten to the ninth elements"
        );
        let two = "[for a in [1,2] : [for b in [1,2] : a + b]]";
        assert!(bound(two, &[]).size < 1_000);
    }

    #[test]
    fn a_doubling_interpolation_doubles_the_known_size() {
        let l0 = Value::String("x".repeat(1 << 20));
        let b = bound(r#""${local.l0}${local.l0}""#, &[("l0", l0)]);
        assert_eq!(b.size, 2 << 20);
    }

    #[test]
    fn iterating_a_known_map_costs_its_elements_not_its_square() {
        // 10,000 worker types of ~100 bytes: iterating costs ~count x element.
        let map: hcl::Map<String, Value> = (0..10_000)
            .map(|n| (format!("w{n}"), Value::String("y".repeat(100))))
            .collect();
        let b = bound(
            r#"{for k, v in local.types : k => "${v}-suffix"}"#,
            &[("types", Value::Object(map))],
        );
        assert!(b.size < 3_000_000, "{b:?}");
    }

    #[test]
    fn templatefile_is_bounded_by_its_template_and_arguments() {
        let b = bound(
            r#"templatefile("t.sh", { workers = ["a", "b", "c"], root = "https://x" })"#,
            &[],
        );
        // Three iterations of at most (whole list + "-" + root + "\n").
        assert!(b.size >= 3 * (1 + 1 + 9 + 1), "{b:?}");
        assert!(b.size < 200, "{b:?}");
    }
}
