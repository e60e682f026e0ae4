//! `try` and `can`, which must see their arguments fail.
//!
//! hcl-rs evaluates every argument before it calls a function, so a function
//! never sees an argument's error: `try(local.m.missing, "d")` would fail
//! before `try` runs. [`evaluate`] therefore walks the expression itself
//! wherever a `try` or `can` sits below, evaluates those calls' arguments one
//! by one, and hands everything else back to hcl-rs with the values already
//! computed (so errors, key conversions and `for` semantics stay hcl-rs's).
//! An expression without `try` or `can` is evaluated by hcl-rs directly.

use hcl::eval::{Context, ErrorKind, Evaluate};
use hcl::expr::{
    BinaryOp, Conditional, Expression, ForExpr, FuncCall, ObjectKey, Operation, TemplateExpr,
    Traversal, TraversalOperator, UnaryOp,
};
use hcl::template::{Element, Template};
use hcl::{Identifier, Value};
use std::ops::Range;
use std::str::FromStr;

type Result<T> = std::result::Result<T, hcl::eval::Error>;

/// Evaluates `expr` in `ctx`, with `try` and `can` catching the evaluation
/// errors of their arguments.
pub fn evaluate(expr: &Expression, ctx: &Context) -> Result<Value> {
    if has_lazy(expr) {
        lazy(expr, ctx)
    } else {
        expr.evaluate(ctx)
    }
}

fn is_lazy_name(call: &FuncCall) -> bool {
    call.name.namespace.is_empty() && matches!(call.name.name.as_str(), "try" | "can")
}

/// Whether a `try` or `can` call sits anywhere in `expr`.
fn has_lazy(expr: &Expression) -> bool {
    match expr {
        Expression::Null
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_)
        | Expression::Variable(_) => false,
        Expression::Array(items) => items.iter().any(has_lazy),
        Expression::Object(object) => object
            .iter()
            .any(|(k, v)| matches!(k, ObjectKey::Expression(e) if has_lazy(e)) || has_lazy(v)),
        Expression::TemplateExpr(template) => template_has_lazy(template),
        Expression::Traversal(t) => {
            has_lazy(&t.expr)
                || t.operators
                    .iter()
                    .any(|op| matches!(op, TraversalOperator::Index(e) if has_lazy(e)))
        }
        Expression::FuncCall(call) => is_lazy_name(call) || call.args.iter().any(has_lazy),
        Expression::Parenthesis(inner) => has_lazy(inner),
        Expression::Conditional(c) => {
            has_lazy(&c.cond_expr) || has_lazy(&c.true_expr) || has_lazy(&c.false_expr)
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => has_lazy(&u.expr),
            Operation::Binary(b) => has_lazy(&b.lhs_expr) || has_lazy(&b.rhs_expr),
        },
        Expression::ForExpr(f) => {
            has_lazy(&f.collection_expr)
                || f.key_expr.as_ref().is_some_and(has_lazy)
                || has_lazy(&f.value_expr)
                || f.cond_expr.as_ref().is_some_and(has_lazy)
        }
        // hcl-rs may add kinds; they are evaluated as they are.
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

fn template_has_lazy(template: &TemplateExpr) -> bool {
    let text = match template {
        TemplateExpr::QuotedString(text) => text.as_str(),
        TemplateExpr::Heredoc(heredoc) => heredoc.template.as_str(),
    };
    // Parsing every template to look would cost a parse per evaluation.
    (text.contains("try") || text.contains("can"))
        && Template::from_expr(template).is_ok_and(|t| t.elements().iter().any(element_has_lazy))
}

fn element_has_lazy(element: &Element) -> bool {
    match element {
        Element::Literal(_) => false,
        Element::Interpolation(i) => has_lazy(&i.expr),
        // Directives hold templates of their own; they are left to hcl-rs.
        Element::Directive(_) => false,
    }
}

/// Whether an error is one `try` and `can` must not hide: a name or
/// function that does not exist is a mistake in the configuration, not a
/// value that failed.
fn is_structural(error: &hcl::eval::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::UndefinedVar(_) | ErrorKind::UndefinedFunc(_)
    )
}

fn literal(value: Value) -> Expression {
    Expression::from(value)
}

fn lazy(expr: &Expression, ctx: &Context) -> Result<Value> {
    if !has_lazy(expr) {
        return expr.evaluate(ctx);
    }
    match expr {
        Expression::FuncCall(call) if is_lazy_name(call) => lazy_call(call, ctx),
        Expression::FuncCall(call) => {
            let mut resolved = FuncCall::new(call.name.clone());
            resolved.expand_final = call.expand_final;
            for arg in &call.args {
                resolved.args.push(literal(lazy(arg, ctx)?));
            }
            Expression::FuncCall(Box::new(resolved)).evaluate(ctx)
        }
        Expression::Array(items) => items
            .iter()
            .map(|item| lazy(item, ctx))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array),
        Expression::Object(object) => {
            let mut resolved = hcl::Object::new();
            for (key, value) in object {
                let key = match key {
                    ObjectKey::Expression(e) => ObjectKey::Expression(literal(lazy(e, ctx)?)),
                    ident => ident.clone(),
                };
                resolved.insert(key, literal(lazy(value, ctx)?));
            }
            Expression::Object(resolved).evaluate(ctx)
        }
        Expression::Parenthesis(inner) => lazy(inner, ctx),
        Expression::Conditional(c) => match lazy(&c.cond_expr, ctx)? {
            Value::Bool(true) => lazy(&c.true_expr, ctx),
            Value::Bool(false) => lazy(&c.false_expr, ctx),
            // hcl-rs reports a condition that is not a bool.
            other => Expression::Conditional(Box::new(Conditional::new(
                literal(other),
                Expression::Null,
                Expression::Null,
            )))
            .evaluate(ctx),
        },
        Expression::Operation(op) => {
            let resolved = match op.as_ref() {
                Operation::Unary(u) => {
                    Operation::Unary(UnaryOp::new(u.operator, literal(lazy(&u.expr, ctx)?)))
                }
                Operation::Binary(b) => Operation::Binary(BinaryOp::new(
                    literal(lazy(&b.lhs_expr, ctx)?),
                    b.operator,
                    literal(lazy(&b.rhs_expr, ctx)?),
                )),
            };
            Expression::Operation(Box::new(resolved)).evaluate(ctx)
        }
        Expression::Traversal(t) => {
            let mut operators = Vec::with_capacity(t.operators.len());
            for op in &t.operators {
                operators.push(match op {
                    TraversalOperator::Index(e) => TraversalOperator::Index(literal(lazy(e, ctx)?)),
                    other => other.clone(),
                });
            }
            let base = literal(lazy(&t.expr, ctx)?);
            Expression::Traversal(Box::new(Traversal::new(base, operators))).evaluate(ctx)
        }
        Expression::ForExpr(f) => lazy_for(f, ctx),
        Expression::TemplateExpr(template) => lazy_template(template, ctx),
        other => other.evaluate(ctx),
    }
}

/// `try(a, b, ...)`: the first argument that evaluates; `can(a)`: whether it does.
fn lazy_call(call: &FuncCall, ctx: &Context) -> Result<Value> {
    let name = call.name.name.as_str();
    if name == "can" {
        if call.args.len() != 1 || call.expand_final {
            // The declared `can` reports the wrong count.
            return Expression::FuncCall(Box::new(call.clone())).evaluate(ctx);
        }
        return match lazy(&call.args[0], ctx) {
            Ok(_) => Ok(Value::Bool(true)),
            Err(e) if is_structural(&e) => Err(e),
            Err(_) => Ok(Value::Bool(false)),
        };
    }
    if call.args.is_empty() || call.expand_final {
        return Expression::FuncCall(Box::new(call.clone())).evaluate(ctx);
    }
    let mut last = None;
    for arg in &call.args {
        match lazy(arg, ctx) {
            Ok(value) => return Ok(value),
            Err(e) if is_structural(&e) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    // Every argument failed: the last one's error says why.
    match last {
        Some(e) => Err(e),
        None => Ok(Value::Null),
    }
}

const ITEM: &str = "__fleetform_item";

/// A `for` with `try`/`can` in its body: each element's key, value and
/// condition are computed here (with the iteration names bound in a copy of
/// `ctx`), then an equivalent `for` over the computed parts is handed to
/// hcl-rs, which applies its own rules (key types, grouping, duplicates).
fn lazy_for(f: &ForExpr, ctx: &Context) -> Result<Value> {
    let collection = lazy(&f.collection_expr, ctx)?;
    let elements: Vec<(Value, Value)> = match &collection {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (Value::from(i as u64), v.clone()))
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), v.clone()))
            .collect(),
        // hcl-rs reports a collection that is not one.
        _ => return Expression::ForExpr(Box::new(f.clone())).evaluate(ctx),
    };
    let mut inner = narrowed(f, ctx);
    let mut parts = Vec::with_capacity(elements.len());
    for (key, value) in elements {
        if let Some(key_var) = &f.key_var {
            inner.declare_var(key_var.clone(), key);
        }
        inner.declare_var(f.value_var.clone(), value);
        let mut part = hcl::Map::new();
        if let Some(cond) = &f.cond_expr {
            let cond = lazy(cond, &inner)?;
            if cond == Value::Bool(false) {
                continue;
            }
            part.insert("c".to_string(), cond);
        }
        if let Some(key_expr) = &f.key_expr {
            part.insert("k".to_string(), lazy(key_expr, &inner)?);
        }
        part.insert("v".to_string(), lazy(&f.value_expr, &inner)?);
        parts.push(Value::Object(part));
    }
    let item = |attr: &str| {
        Expression::Traversal(Box::new(Traversal::new(
            Expression::Variable(Identifier::unchecked(ITEM).into()),
            [TraversalOperator::GetAttr(Identifier::unchecked(attr))],
        )))
    };
    let mut resolved = ForExpr::new(
        Identifier::unchecked(ITEM),
        literal(Value::Array(parts)),
        item("v"),
    );
    resolved.key_expr = f.key_expr.as_ref().map(|_| item("k"));
    resolved.cond_expr = f.cond_expr.as_ref().map(|_| item("c"));
    resolved.grouping = f.grouping;
    Expression::ForExpr(Box::new(resolved)).evaluate(&Context::new())
}

/// A context for the body of `f`: the functions, and of the names it uses
/// (other than its own iteration names) only the values it refers to.
/// Copying the whole context instead would copy every local of the
/// configuration for each such `for`.
fn narrowed(f: &ForExpr, ctx: &Context) -> Context<'static> {
    let mut used = Used::default();
    let mut bound = vec![f.value_var.to_string()];
    if let Some(key) = &f.key_var {
        bound.push(key.to_string());
    }
    for expr in [
        f.key_expr.as_ref(),
        Some(&f.value_expr),
        f.cond_expr.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        used.expr(expr, &mut bound);
    }
    let mut inner = Context::new();
    super::declare_all(&mut inner);
    for (root, attrs) in used.roots {
        let whole = Expression::Variable(Identifier::unchecked(root.as_str()).into());
        let value = match attrs {
            None => whole.evaluate(ctx).ok(),
            Some(attrs) => {
                let mut object = hcl::Map::new();
                for attr in attrs {
                    let one = Traversal::new(
                        whole.clone(),
                        [TraversalOperator::GetAttr(Identifier::unchecked(
                            attr.as_str(),
                        ))],
                    );
                    if let Ok(v) = Expression::Traversal(Box::new(one)).evaluate(ctx) {
                        object.insert(attr, v);
                    }
                }
                if object.is_empty() {
                    // Not an object, or none of the names exist: evaluating
                    // reports that as it would have.
                    whole.evaluate(ctx).ok()
                } else {
                    Some(Value::Object(object))
                }
            }
        };
        if let Some(value) = value {
            inner.declare_var(Identifier::unchecked(root.as_str()), value);
        }
    }
    inner
}

/// The names an expression uses: root -> the attributes used under it
/// (`None`: the whole root, e.g. `local[k]`).
#[derive(Default)]
struct Used {
    roots: std::collections::BTreeMap<String, Option<std::collections::BTreeSet<String>>>,
}

impl Used {
    fn whole(&mut self, root: &str) {
        self.roots.insert(root.to_string(), None);
    }

    fn attr(&mut self, root: &str, attr: &str) {
        if let Some(attrs) = self
            .roots
            .entry(root.to_string())
            .or_insert_with(|| Some(Default::default()))
        {
            attrs.insert(attr.to_string());
        }
    }

    fn expr(&mut self, expr: &Expression, bound: &mut Vec<String>) {
        let free = |name: &str, bound: &[String]| !bound.iter().any(|b| b == name);
        match expr {
            Expression::Variable(v) if free(v.as_str(), bound) => self.whole(v.as_str()),
            Expression::Traversal(t) => {
                match &t.expr {
                    Expression::Variable(v) if free(v.as_str(), bound) => {
                        match t.operators.first() {
                            Some(TraversalOperator::GetAttr(a)) => {
                                self.attr(v.as_str(), a.as_str())
                            }
                            Some(TraversalOperator::Index(Expression::String(a))) => {
                                self.attr(v.as_str(), a)
                            }
                            _ => self.whole(v.as_str()),
                        }
                    }
                    Expression::Variable(_) => {}
                    other => self.expr(other, bound),
                }
                for op in &t.operators {
                    if let TraversalOperator::Index(e) = op {
                        self.expr(e, bound);
                    }
                }
            }
            Expression::Array(items) => items.iter().for_each(|e| self.expr(e, bound)),
            Expression::Object(object) => {
                for (k, v) in object {
                    if let ObjectKey::Expression(k) = k {
                        self.expr(k, bound);
                    }
                    self.expr(v, bound);
                }
            }
            Expression::FuncCall(call) => call.args.iter().for_each(|e| self.expr(e, bound)),
            Expression::Parenthesis(inner) => self.expr(inner, bound),
            Expression::Conditional(c) => {
                self.expr(&c.cond_expr, bound);
                self.expr(&c.true_expr, bound);
                self.expr(&c.false_expr, bound);
            }
            Expression::Operation(op) => match op.as_ref() {
                Operation::Unary(u) => self.expr(&u.expr, bound),
                Operation::Binary(b) => {
                    self.expr(&b.lhs_expr, bound);
                    self.expr(&b.rhs_expr, bound);
                }
            },
            Expression::ForExpr(f) => {
                self.expr(&f.collection_expr, bound);
                let before = bound.len();
                bound.push(f.value_var.to_string());
                if let Some(key) = &f.key_var {
                    bound.push(key.to_string());
                }
                for e in [
                    f.key_expr.as_ref(),
                    Some(&f.value_expr),
                    f.cond_expr.as_ref(),
                ]
                .into_iter()
                .flatten()
                {
                    self.expr(e, bound);
                }
                bound.truncate(before);
            }
            Expression::TemplateExpr(t) => {
                if let Ok(template) = Template::from_expr(t) {
                    self.template(&template, bound);
                }
            }
            _ => {}
        }
    }

    fn template(&mut self, template: &Template, bound: &mut Vec<String>) {
        use hcl::template::Directive;
        for element in template.elements() {
            match element {
                Element::Literal(_) => {}
                Element::Interpolation(i) => self.expr(&i.expr, bound),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(d) => {
                        self.expr(&d.cond_expr, bound);
                        self.template(&d.true_template, bound);
                        if let Some(other) = &d.false_template {
                            self.template(other, bound);
                        }
                    }
                    Directive::For(d) => {
                        self.expr(&d.collection_expr, bound);
                        let before = bound.len();
                        bound.push(d.value_var.to_string());
                        if let Some(key) = &d.key_var {
                            bound.push(key.to_string());
                        }
                        self.template(&d.template, bound);
                        bound.truncate(before);
                    }
                },
            }
        }
    }
}

/// A template of literals and interpolations with `try`/`can` inside: each
/// interpolation is evaluated here and the text joined. Templates with
/// directives are left to hcl-rs (their `try` sees evaluated arguments).
fn lazy_template(template: &TemplateExpr, ctx: &Context) -> Result<Value> {
    match Template::from_expr(template) {
        Ok(parsed) => render(&parsed, ctx).map(Value::String),
        Err(_) => Expression::TemplateExpr(Box::new(template.clone())).evaluate(ctx),
    }
}

/// Renders `template` in `ctx`, with `try` and `can` in its interpolations
/// catching their arguments' errors (as in expressions; inside directives
/// they see evaluated arguments).
pub fn render(template: &Template, ctx: &Context) -> Result<String> {
    let elements = template.elements();
    if !elements.iter().any(element_has_lazy)
        || elements.iter().any(|e| matches!(e, Element::Directive(_)))
    {
        return template.evaluate(ctx);
    }
    let mut out = String::new();
    for element in elements {
        match element {
            Element::Literal(text) => out.push_str(text),
            Element::Interpolation(i) => match lazy(&i.expr, ctx)? {
                Value::String(s) => out.push_str(&s),
                Value::Number(n) => out.push_str(&n.to_string()),
                Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                other => {
                    // hcl-rs reports what cannot be interpolated.
                    let mut one = Context::new();
                    one.declare_var(ITEM, other);
                    return Template::from_str(&format!("${{{ITEM}}}"))
                        .map_err(hcl::eval::Error::from)?
                        .evaluate(&one);
                }
            },
            Element::Directive(_) => return template.evaluate(ctx),
        }
    }
    Ok(out)
}

/// The span of the function call an evaluation error came from, if the
/// error is a function's: diagnostics point at the call, not at the whole
/// expression around it. With several calls of one name, the one whose
/// arguments match the failed call (as hcl-rs recorded it), else the first.
pub fn call_span(
    expr: &hcl_edit::expr::Expression,
    error: &hcl::eval::Error,
) -> Option<Range<usize>> {
    use hcl_edit::visit::Visit;
    use hcl_edit::Span;
    let ErrorKind::FuncCall(name, _) = error.kind() else {
        return None;
    };
    struct Calls<'n> {
        name: &'n str,
        found: Vec<(Range<usize>, Expression)>,
    }
    impl Visit for Calls<'_> {
        fn visit_func_call(&mut self, node: &hcl_edit::expr::FuncCall) {
            if node.name.name.as_str() == self.name {
                if let Some(span) = node.span() {
                    let converted = hcl_edit::expr::Expression::FuncCall(Box::new(node.clone()));
                    self.found.push((span, converted.into()));
                }
            }
            hcl_edit::visit::visit_func_call(self, node);
        }
    }
    let mut calls = Calls {
        name: name.name.as_str(),
        found: Vec::new(),
    };
    calls.visit_expr(expr);
    let matching = error
        .expr()
        .and_then(|failed| calls.found.iter().find(|(_, call)| call == failed));
    matching
        .or_else(|| calls.found.first())
        .map(|(span, _)| span.clone())
}
