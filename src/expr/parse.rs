//! Text -> checked [`Expr`]: pest parses by the grammar in `expr.pest`, then one walk over the
//! parse tree resolves every name against the [`Decl`] the op declares and builds the tree.

use pest::iterators::Pair;
use pest::Parser as _;
use pest_derive::Parser;

use super::ast::{Axis, BinOp, Expr, Func, FUNCS};

#[derive(Parser)]
#[grammar = "expr/expr.pest"]
struct Grammar;

/// The names an op offers to its expressions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decl {
    /// Scalar variables (`x`, `acc`, `residual`).
    pub scalars: Vec<String>,
    /// Vectors indexable by `row` or `col` (`bias`, `sa`, `sw`).
    pub vectors: Vec<String>,
}

impl Decl {
    /// Only scalar variables.
    pub fn scalars(names: &[&str]) -> Self {
        Decl {
            scalars: names.iter().map(|s| s.to_string()).collect(),
            vectors: vec![],
        }
    }

    /// Adds vectors.
    pub fn with_vectors(mut self, names: &[&str]) -> Self {
        self.vectors = names.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// A parse or check failure: where (1-based line and column), the offending text, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message} (at `{text}`)")]
pub struct ExprError {
    pub line: usize,
    pub column: usize,
    pub text: String,
    pub message: String,
}

/// Parses `src` and checks it against `decl`.
pub fn parse(src: &str, decl: &Decl) -> Result<Expr, ExprError> {
    let mut pairs = Grammar::parse(Rule::expression, src).map_err(|e| syntax_error(src, e))?;
    let top = pairs.next().and_then(|p| p.into_inner().next());
    match top {
        Some(sum) => Checker { decl }.build(sum),
        None => Err(ExprError {
            line: 1,
            column: 1,
            text: src.into(),
            message: "empty expression".into(),
        }),
    }
}

fn syntax_error(src: &str, e: pest::error::Error<Rule>) -> ExprError {
    let (line, column) = match e.line_col {
        pest::error::LineColLocation::Pos(p) | pest::error::LineColLocation::Span(p, _) => p,
    };
    let offset = match e.location {
        pest::error::InputLocation::Pos(p) | pest::error::InputLocation::Span((p, _)) => p,
    };
    let rest: String = src[offset..]
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(20)
        .collect();
    let message = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let wanted: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            if wanted.is_empty() {
                "syntax error".to_string()
            } else {
                format!("syntax error: expected {}", wanted.join(" or "))
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    ExprError {
        line,
        column,
        text: if rest.is_empty() {
            "end of input".into()
        } else {
            rest
        },
        message,
    }
}

fn rule_name(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::add_op => "`+` or `-`",
        Rule::mul_op => "`*` or `/`",
        Rule::unary | Rule::sum | Rule::product => "an operand",
        Rule::number => "a number",
        Rule::ident => "a name",
        Rule::EOI => "end of input",
        _ => return None,
    })
}

struct Checker<'d> {
    decl: &'d Decl,
}

impl Checker<'_> {
    fn fail(&self, pair: &Pair<Rule>, message: String) -> ExprError {
        let (line, column) = pair.as_span().start_pos().line_col();
        ExprError {
            line,
            column,
            text: pair.as_str().into(),
            message,
        }
    }

    fn build(&self, pair: Pair<Rule>) -> Result<Expr, ExprError> {
        match pair.as_rule() {
            Rule::sum | Rule::product => self.binary_chain(pair),
            Rule::unary => {
                let mut inner: Vec<Pair<Rule>> = pair.into_inner().collect();
                let atom = inner.pop().expect("grammar: unary ends in an atom");
                let mut e = self.build(atom)?;
                for _ in inner {
                    e = Expr::Neg(Box::new(e));
                }
                Ok(e)
            }
            Rule::number => pair
                .as_str()
                .parse::<f64>()
                .map(Expr::Const)
                .map_err(|err| self.fail(&pair, format!("bad number: {err}"))),
            Rule::ident => self.variable(&pair),
            Rule::indexed => self.indexed(pair),
            Rule::call => self.call(pair),
            other => Err(self.fail(&pair, format!("unexpected {other:?}"))),
        }
    }

    /// `a op b op c ...`, left-associative.
    fn binary_chain(&self, pair: Pair<Rule>) -> Result<Expr, ExprError> {
        let mut inner = pair.into_inner();
        let first = inner
            .next()
            .expect("grammar: a chain starts with an operand");
        let mut acc = self.build(first)?;
        while let (Some(op), Some(rhs)) = (inner.next(), inner.next()) {
            let op = match op.as_str() {
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                _ => BinOp::Div,
            };
            acc = Expr::Binary(op, Box::new(acc), Box::new(self.build(rhs)?));
        }
        Ok(acc)
    }

    fn variable(&self, pair: &Pair<Rule>) -> Result<Expr, ExprError> {
        let name = pair.as_str();
        if self.decl.scalars.iter().any(|s| s == name) {
            return Ok(Expr::Var(name.into()));
        }
        let hint = if self.decl.vectors.iter().any(|s| s == name) {
            format!("`{name}` is a vector: index it as `{name}[row]` or `{name}[col]`")
        } else if Func::by_name(name).is_some() {
            format!("`{name}` is a function: call it as `{name}(...)`")
        } else {
            format!(
                "unknown variable `{name}`; this op declares {}",
                list(&self.decl.scalars)
            )
        };
        Err(self.fail(pair, hint))
    }

    fn indexed(&self, pair: Pair<Rule>) -> Result<Expr, ExprError> {
        let mut inner = pair.clone().into_inner();
        let (name, index) = (inner.next().expect("vector"), inner.next().expect("index"));
        if !self.decl.vectors.iter().any(|s| s == name.as_str()) {
            return Err(self.fail(
                &name,
                format!(
                    "unknown vector `{}`; this op declares {}",
                    name.as_str(),
                    list(&self.decl.vectors)
                ),
            ));
        }
        let axis = match index.as_str() {
            "row" => Axis::Row,
            "col" => Axis::Col,
            other => {
                return Err(self.fail(
                    &index,
                    format!("a vector is indexed by `row` or `col`, not `{other}`"),
                ))
            }
        };
        Ok(Expr::Vector {
            name: name.as_str().into(),
            axis,
        })
    }

    fn call(&self, pair: Pair<Rule>) -> Result<Expr, ExprError> {
        let mut inner = pair.clone().into_inner();
        let name = inner.next().expect("grammar: a call starts with its name");
        let Some(func) = Func::by_name(name.as_str()) else {
            let known: Vec<String> = FUNCS.iter().map(|f| f.name().to_string()).collect();
            return Err(self.fail(
                &name,
                format!(
                    "unknown function `{}`; known: {}",
                    name.as_str(),
                    known.join(", ")
                ),
            ));
        };
        let args = inner
            .map(|a| self.build(a))
            .collect::<Result<Vec<_>, _>>()?;
        if args.len() != func.arity() {
            return Err(self.fail(
                &pair,
                format!(
                    "`{}` takes {} argument{}, got {}",
                    func.name(),
                    func.arity(),
                    if func.arity() == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        Ok(Expr::Call(func, args))
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
