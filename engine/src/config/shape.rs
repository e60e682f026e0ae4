//! Large `locals` values held as values instead of syntax trees.
//!
//! A fleet written with `for_each` keeps its data in locals: maps of
//! thousands of objects made of literals and a few paths (`ami_set.x`).
//! Their syntax trees take about forty times their text, and all of them
//! were held until the end of the load. Once a file is parsed, each local
//! made of literals, lists, objects with literal keys and paths is taken out
//! of its tree as a [`Shape`] (its literals as values, its paths as written),
//! file by file, so the trees of all locals never exist at once.
//!
//! A shaped local is assessed, charged and evaluated as its expression
//! would be (see `Scope::assess_shape`). The one case it cannot follow, a
//! path that does not resolve (an error), starts the load again with every
//! file parsed whole, so that the error is reported as written.

use super::scope::{literal_key, references, Reference};
use hcl::{Map, Value};
use hcl_edit::expr::{Expression, TraversalOperator};
use hcl_edit::structure::Body;
use hcl_edit::Span;
use std::ops::Range;

/// A value made of literals, lists, objects with literal keys and paths
/// from a name (`ami_set.docker-worker`, `var.tags.owner`).
#[derive(Debug)]
pub(crate) enum Shape {
    /// A part made of literals alone, as its value.
    Literal(Value),
    /// A path, as written: resolved when the local is evaluated.
    Path(Expression),
    /// A list with at least one path in it.
    Array(Vec<Shape>),
    /// An object with at least one path in it, in the order written.
    Object(Vec<(String, Shape)>),
}

/// One local whose value was taken out of its file's syntax tree.
#[derive(Debug)]
pub(crate) struct ShapedLocal {
    /// Where the local's name starts in its file: which local this is.
    pub key_start: usize,
    /// The span of its value expression.
    pub span: Option<Range<usize>>,
    /// The references of its value expression, as
    /// [`references`] finds them in the tree.
    pub references: Vec<Reference>,
    /// Its value expression.
    pub shape: Shape,
}

/// Takes the value of every local of `body`'s top-level `locals` blocks
/// that is a list or an object of literals and paths out of the tree
/// (leaving `null` in its place), as shapes in the order written. The
/// other locals stay as they are.
pub(crate) fn take_locals(body: &mut Body) -> Vec<ShapedLocal> {
    let mut taken = Vec::new();
    for mut structure in body.iter_mut() {
        let Some(block) = structure.as_block_mut() else {
            continue;
        };
        if block.ident.as_str() != "locals" {
            continue;
        }
        for mut inner in block.body.iter_mut() {
            let Some(mut attr) = inner.as_attribute_mut() else {
                continue;
            };
            let Some(key_start) = attr.get().key.span().map(|span| span.start) else {
                continue;
            };
            let value = attr.value_mut();
            if !matches!(value, Expression::Array(_) | Expression::Object(_)) || !shapeable(value) {
                continue;
            }
            let expr = std::mem::replace(value, Expression::null());
            taken.push(ShapedLocal {
                key_start,
                span: expr.span(),
                references: references(&expr),
                shape: shape(expr),
            });
        }
    }
    taken
}

/// Whether `expr` is made of literals, lists, objects with literal keys
/// and paths only.
fn shapeable(expr: &Expression) -> bool {
    match expr {
        Expression::Null(_)
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_) => true,
        Expression::Array(items) => items.iter().all(shapeable),
        Expression::Object(object) => object
            .iter()
            .all(|(key, value)| literal_key(key).is_some() && shapeable(value.expr())),
        other => is_path(other),
    }
}

/// Whether `expr` is a name or a path of attributes and literal keys from one.
fn is_path(expr: &Expression) -> bool {
    match expr {
        Expression::Variable(_) => true,
        Expression::Traversal(traversal) => {
            matches!(traversal.expr, Expression::Variable(_))
                && traversal.operators.iter().all(|op| {
                    matches!(
                        op.value(),
                        TraversalOperator::GetAttr(_)
                            | TraversalOperator::LegacyIndex(_)
                            | TraversalOperator::Index(Expression::String(_))
                            | TraversalOperator::Index(Expression::Number(_))
                    )
                })
        }
        _ => false,
    }
}

/// The shape of a [`shapeable`] expression; parts without a path become values.
fn shape(expr: Expression) -> Shape {
    match expr {
        Expression::Null(_) => Shape::Literal(Value::Null),
        Expression::Bool(b) => Shape::Literal(Value::Bool(*b.value())),
        Expression::Number(n) => Shape::Literal(Value::Number(*n.value())),
        Expression::String(s) => Shape::Literal(Value::String(s.into_value())),
        Expression::Array(items) => {
            let items: Vec<Shape> = items.into_iter().map(shape).collect();
            if items.iter().all(|item| matches!(item, Shape::Literal(_))) {
                Shape::Literal(Value::Array(
                    items.into_iter().filter_map(Shape::into_literal).collect(),
                ))
            } else {
                Shape::Array(items)
            }
        }
        Expression::Object(object) => {
            let entries: Vec<(String, Shape)> = object
                .into_iter()
                .map(|(key, value)| {
                    let key = literal_key(&key).unwrap_or_default().to_string();
                    (key, shape(value.into_expr()))
                })
                .collect();
            if entries.iter().all(|(_, v)| matches!(v, Shape::Literal(_))) {
                let mut map = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    if let Some(value) = value.into_literal() {
                        map.insert(key, value);
                    }
                }
                Shape::Literal(Value::Object(map))
            } else {
                Shape::Object(entries)
            }
        }
        path => Shape::Path(path),
    }
}

impl Shape {
    fn into_literal(self) -> Option<Value> {
        match self {
            Shape::Literal(value) => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(text: &str) -> (Body, Vec<ShapedLocal>) {
        let mut body = hcl_edit::parser::parse_body(text).expect("parses");
        let taken = take_locals(&mut body);
        (body, taken)
    }

    #[test]
    fn literal_maps_and_paths_are_taken_and_the_rest_left() {
        let text = r#"
locals {
  pools = {
    "a" = { ami = ami_set.docker, min = 1, types = { "m5.large" = 1 } }
    b   = { ami = var.ami["x"], regions = ["us-east-1"] }
  }
  plain  = ["a", "b"]
  called = { a = upper("x") }
  scalar = 3
  keyed  = { (var.k) = 1 }
}
worker_type "w" { pools = { a = 1 } }
"#;
        let (body, taken) = taken(text);
        let names: Vec<&str> = taken
            .iter()
            .map(|t| &text[t.key_start..t.key_start + 5])
            .collect();
        assert_eq!(names, ["pools", "plain"]);
        let refs: Vec<(&str, Option<&str>)> = taken[0]
            .references
            .iter()
            .map(|r| (r.root.as_str(), r.name.as_deref()))
            .collect();
        assert_eq!(refs, [("ami_set", Some("docker")), ("var", Some("ami"))]);
        let span = taken[0].span.clone().expect("a span");
        assert!(text[span].starts_with("{\n    \"a\""));
        // A list of literals is one value.
        assert!(matches!(&taken[1].shape, Shape::Literal(Value::Array(items)) if items.len() == 2));
        let Shape::Object(pools) = &taken[0].shape else {
            panic!("pools is an object with paths: {:?}", taken[0].shape);
        };
        let Shape::Object(a) = &pools[0].1 else {
            panic!("pool a has a path");
        };
        assert!(matches!(&a[0], (k, Shape::Path(_)) if k == "ami"));
        assert!(matches!(&a[2], (k, Shape::Literal(Value::Object(_))) if k == "types"));
        // What was taken is null in the tree; the rest is untouched.
        let locals = body.get_blocks("locals").next().expect("locals");
        let values: Vec<String> = locals
            .body
            .attributes()
            .map(|attr| attr.value.to_string().trim().to_string())
            .collect();
        assert_eq!(values[0], "null");
        assert_eq!(values[1], "null");
        assert_eq!(values[2], "{ a = upper(\"x\") }");
        assert_eq!(values[3], "3");
        let worker = body.get_blocks("worker_type").next().expect("worker type");
        assert!(worker
            .body
            .get_attribute("pools")
            .is_some_and(|a| !a.value.is_null()));
    }
}
