//! Variable type constraints (`type = list(string)`, `object({...})` with
//! `optional()` attributes) and the conversion of values to them, as
//! Terraform converts: numbers and bools to strings and back, lists to
//! sets, objects to maps, missing optional attributes to their defaults.
//!
//! A type is read from the syntax tree, not evaluated: `string` and
//! `list(string)` are not values.

use crate::config::functions::{describe, stdlib};
use hcl::{Map, Value};
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::Span;
use std::fmt;
use std::ops::Range;

/// A type constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `any`: the value as it is.
    Any,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`: a list without duplicates, in a set's order.
    Set(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `tuple([T, ...])`
    Tuple(Vec<Type>),
    /// `object({name = T, ...})`
    Object(Vec<Attribute>),
}

/// One attribute of an object type.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Whether it is `optional(...)`.
    pub optional: bool,
    /// The default of an optional attribute, if given.
    pub default: Option<Value>,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::Any => f.write_str("any"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
            Type::Object(attrs) => {
                f.write_str("object({")?;
                for (i, a) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if a.optional {
                        write!(f, "{} = optional({})", a.name, a.ty)?;
                    } else {
                        write!(f, "{} = {}", a.name, a.ty)?;
                    }
                }
                f.write_str("})")
            }
        }
    }
}

impl Type {
    /// Whether a value of this type is a collection or structure: such
    /// values given on the command line are written in HCL.
    pub fn is_complex(&self) -> bool {
        !matches!(self, Type::String | Type::Number | Type::Bool | Type::Any)
    }
}

/// A type expression that is not a type: what is wrong, and where.
#[derive(Debug)]
pub struct BadType {
    /// What is wrong.
    pub message: String,
    /// The part of the type expression at fault.
    pub span: Option<Range<usize>>,
}

fn bad(expr: &Expression, message: impl Into<String>) -> BadType {
    BadType {
        message: message.into(),
        span: expr.span(),
    }
}

const KINDS: &str = "string, number, bool, any, list(T), set(T), map(T), tuple([T, ...]) or object({name = T, ...})";

/// Reads a type constraint. `default_of` evaluates the default of an
/// `optional(T, default)` (a literal value).
pub fn parse(
    expr: &Expression,
    default_of: &mut dyn FnMut(&Expression) -> Option<Value>,
) -> Result<Type, BadType> {
    parse_in(expr, false, default_of).map(|(ty, _, _)| ty)
}

fn parse_in(
    expr: &Expression,
    in_object: bool,
    default_of: &mut dyn FnMut(&Expression) -> Option<Value>,
) -> Result<(Type, bool, Option<Value>), BadType> {
    let plain = |ty| Ok((ty, false, None));
    match expr {
        Expression::Parenthesis(inner) => parse_in(inner.inner(), in_object, default_of),
        Expression::Variable(name) => match name.as_str() {
            "string" => plain(Type::String),
            "number" => plain(Type::Number),
            "bool" => plain(Type::Bool),
            "any" => plain(Type::Any),
            // Terraform's older spellings: a collection of anything.
            "list" => plain(Type::List(Box::new(Type::Any))),
            "set" => plain(Type::Set(Box::new(Type::Any))),
            "map" => plain(Type::Map(Box::new(Type::Any))),
            other => Err(bad(
                expr,
                format!("`{other}` is not a type; a type is {KINDS}"),
            )),
        },
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let args: Vec<&Expression> = call.args.iter().collect();
            let one = |what: &str| -> Result<&Expression, BadType> {
                match args.as_slice() {
                    [only] => Ok(*only),
                    _ => Err(bad(expr, format!("`{what}(...)` takes one type"))),
                }
            };
            match name {
                "list" => plain(Type::List(Box::new(
                    parse_in(one("list")?, false, default_of)?.0,
                ))),
                "set" => plain(Type::Set(Box::new(
                    parse_in(one("set")?, false, default_of)?.0,
                ))),
                "map" => plain(Type::Map(Box::new(
                    parse_in(one("map")?, false, default_of)?.0,
                ))),
                "tuple" => match one("tuple")? {
                    Expression::Array(items) => {
                        let mut types = Vec::new();
                        for item in items.iter() {
                            types.push(parse_in(item, false, default_of)?.0);
                        }
                        plain(Type::Tuple(types))
                    }
                    other => Err(bad(
                        other,
                        "`tuple` takes a list of types: `tuple([string, number])`",
                    )),
                },
                "object" => match one("object")? {
                    Expression::Object(object) => {
                        let mut attrs: Vec<Attribute> = Vec::new();
                        for (key, value) in object.iter() {
                            let name = match key {
                                ObjectKey::Ident(ident) => ident.as_str().to_string(),
                                ObjectKey::Expression(Expression::String(s)) => s.as_str().to_string(),
                                ObjectKey::Expression(other) => {
                                    return Err(bad(other, "an attribute name of an object type is a name, not an expression"))
                                }
                            };
                            if attrs.iter().any(|a| a.name == name) {
                                return Err(bad(
                                    value.expr(),
                                    format!("attribute `{name}` is declared twice"),
                                ));
                            }
                            let (ty, optional, default) = parse_in(value.expr(), true, default_of)?;
                            attrs.push(Attribute {
                                name,
                                ty,
                                optional,
                                default,
                            });
                        }
                        plain(Type::Object(attrs))
                    }
                    other => Err(bad(
                        other,
                        "`object` takes an object of attribute types: `object({ name = string })`",
                    )),
                },
                "optional" if in_object => {
                    let (ty_expr, default_expr) = match args.as_slice() {
                        [ty] => (*ty, None),
                        [ty, default] => (*ty, Some(*default)),
                        _ => return Err(bad(expr, "`optional` takes a type and, optionally, a default: `optional(number, 1)`")),
                    };
                    let ty = parse_in(ty_expr, false, default_of)?.0;
                    let default = match default_expr {
                        None => None,
                        Some(d) => {
                            let value = default_of(d).ok_or_else(|| {
                                bad(
                                    d,
                                    "the default of an optional attribute must be a literal value",
                                )
                            })?;
                            let value = convert(&value, &ty).map_err(|e| {
                                bad(d, format!("this default is not of type {ty}: {e}"))
                            })?;
                            Some(value)
                        }
                    };
                    Ok((ty, true, default))
                }
                "optional" => Err(bad(
                    expr,
                    "`optional(...)` is only for attributes of an object type",
                )),
                other => Err(bad(
                    expr,
                    format!("`{other}(...)` is not a type; a type is {KINDS}"),
                )),
            }
        }
        // A quoted type is how Terraform 0.11 wrote them.
        Expression::String(s) => Err(bad(
            expr,
            format!("a type is written without quotes: `type = {}`", s.as_str()),
        )),
        _ => Err(bad(expr, format!("this is not a type; a type is {KINDS}"))),
    }
}

/// Where in a value a conversion failed: `[2].name`.
fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

/// Converts `value` to `ty`, as Terraform does. The error names the place
/// in the value and the types, never the value (it may be a secret).
pub fn convert(value: &Value, ty: &Type) -> Result<Value, String> {
    convert_at(value, ty, "")
}

fn convert_at(value: &Value, ty: &Type, path: &str) -> Result<Value, String> {
    if *value == Value::Null {
        return Ok(Value::Null);
    }
    let wrong = |wanted: &str| {
        Err(format!(
            "{wanted} is required{}, got {}",
            at(path),
            describe(value)
        ))
    };
    match ty {
        Type::Any => Ok(value.clone()),
        Type::String => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => wrong("a string"),
        },
        Type::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => stdlib::num(f),
                _ => Err(format!(
                    "a number is required{}, got a string that is not one",
                    at(path)
                )),
            },
            _ => wrong("a number"),
        },
        Type::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            Value::String(_) => Err(format!(
                "a bool is required{}, got a string that is neither \"true\" nor \"false\"",
                at(path)
            )),
            _ => wrong("a bool"),
        },
        Type::List(inner) | Type::Set(inner) => match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(convert_at(item, inner, &format!("{path}[{i}]"))?);
                }
                if matches!(ty, Type::Set(_)) {
                    let mut distinct: Vec<Value> = Vec::with_capacity(out.len());
                    for v in out {
                        if !distinct.contains(&v) {
                            distinct.push(v);
                        }
                    }
                    out = stdlib::ordered_set(distinct);
                }
                Ok(Value::Array(out))
            }
            _ => wrong(if matches!(ty, Type::Set(_)) {
                "a set"
            } else {
                "a list"
            }),
        },
        Type::Tuple(types) => match value {
            Value::Array(items) if items.len() == types.len() => items
                .iter()
                .zip(types)
                .enumerate()
                .map(|(i, (item, t))| convert_at(item, t, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Array(items) => Err(format!(
                "a tuple of {} elements is required{}, got {}",
                types.len(),
                at(path),
                items.len()
            )),
            _ => wrong("a tuple"),
        },
        Type::Map(inner) => match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    out.insert(
                        k.clone(),
                        convert_at(v, inner, &format!("{path}[\"{k}\"]"))?,
                    );
                }
                Ok(Value::Object(out))
            }
            _ => wrong("a map"),
        },
        Type::Object(attrs) => match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for attr in attrs {
                    let here = if path.is_empty() {
                        attr.name.clone()
                    } else {
                        format!("{path}.{}", attr.name)
                    };
                    match map.get(&attr.name) {
                        Some(v) if *v != Value::Null || !attr.optional => {
                            out.insert(attr.name.clone(), convert_at(v, &attr.ty, &here)?);
                        }
                        _ if attr.optional => {
                            let default = match &attr.default {
                                Some(d) => d.clone(),
                                // An optional object without a default still gets its
                                // own attributes' defaults only when it is given.
                                None => Value::Null,
                            };
                            out.insert(attr.name.clone(), default);
                        }
                        _ => return Err(format!("attribute `{here}` is required")),
                    }
                }
                // Attributes the type does not name are dropped, as Terraform does.
                Ok(Value::Object(out))
            }
            _ => wrong("an object"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i64) -> Value {
        Value::Number(hcl::Number::from(n))
    }

    fn ty(text: &str) -> Result<Type, String> {
        let expr = hcl_edit::parser::parse_expr(text).map_err(|e| e.to_string())?;
        parse(&expr, &mut |e| {
            let e: hcl::Expression = e.clone().into();
            hcl::eval::Evaluate::evaluate(&e, &hcl::eval::Context::new()).ok()
        })
        .map_err(|e| e.message)
    }

    fn value(text: &str) -> Value {
        let e: hcl::Expression = text.parse().expect("parses");
        hcl::eval::Evaluate::evaluate(&e, &hcl::eval::Context::new()).expect("evaluates")
    }

    #[test]
    fn types_parse_and_print() {
        for text in [
            "string",
            "list(number)",
            "set(string)",
            "map(bool)",
            "tuple([string, number])",
            "object({a = string, b = optional(number)})",
            "map(object({max = number, tags = optional(map(string))}))",
        ] {
            assert_eq!(ty(text).map(|t| t.to_string()), Ok(text.to_string()));
        }
        assert!(ty("strin").unwrap_err().contains("not a type"));
        assert!(ty("\"string\"").unwrap_err().contains("without quotes"));
        assert!(ty("optional(string)")
            .unwrap_err()
            .contains("only for attributes"));
        assert!(ty("object({a = optional(number, \"x\")})")
            .unwrap_err()
            .contains("not of type number"));
        assert!(ty("list(string, number)").unwrap_err().contains("one type"));
    }

    #[test]
    fn values_convert_as_terraform_converts() {
        let t = |text| ty(text).expect("type");
        assert_eq!(convert(&int(3), &t("string")), Ok(Value::from("3")));
        assert_eq!(convert(&Value::from("3"), &t("number")), Ok(int(3)));
        assert_eq!(
            convert(&Value::from("true"), &t("bool")),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            convert(&value(r#"["b", "a", "b"]"#), &t("set(string)")),
            Ok(value(r#"["a", "b"]"#))
        );
        assert_eq!(
            convert(&value("[1, 2]"), &t("list(string)")),
            Ok(value(r#"["1", "2"]"#))
        );
        assert_eq!(
            convert(
                &value(r#"{a = "x", extra = 1}"#),
                &t(r#"object({a = string, b = optional(number, 5), c = optional(string)})"#)
            ),
            Ok(value(r#"{a = "x", b = 5, c = null}"#))
        );
        let err = convert(
            &value(r#"{a = {x = [1, {}]}}"#),
            &t("map(object({x = list(number)}))"),
        )
        .unwrap_err();
        assert_eq!(err, "a number is required at `[\"a\"].x[1]`, got an object");
        assert_eq!(
            convert(&value("{}"), &t("object({a = string})")).unwrap_err(),
            "attribute `a` is required"
        );
        assert!(convert(&value("[1]"), &t("tuple([number, number])"))
            .unwrap_err()
            .contains("2 elements"));
        assert!(convert(&Value::from("x"), &t("number"))
            .unwrap_err()
            .contains("not one"));
    }
}
