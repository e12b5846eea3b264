//! The flow files' small expression language: conditions in `branch`,
//! `${...}` templates in prompt names, lookup parameters and `set`.
//!
//! It reads variables and literals and compares them; it cannot loop, call
//! out, or touch anything outside the call's variables.
//!
//! ```text
//! expr    := or
//! or      := and ("||" and)*
//! and     := not ("&&" not)*
//! not     := "!" not | cmp
//! cmp     := sum (("=="|"!="|"<"|"<="|">"|">=") sum)?
//! sum     := atom ("+" atom)*
//! atom    := NUMBER | 'STRING' | "STRING" | true | false | IDENT
//!          | IDENT "(" expr ("," expr)* ")" | "(" expr ")"
//! ```
//! Functions: `len(x)`, `starts_with(x, y)`, `digits(x)` (only the digits of
//! x), `open("calendar")` (whether the configured calendar is open now).

use std::collections::HashMap;
use std::fmt;

/// A value in a call's variables.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// A number.
    Num(f64),
    /// A truth value.
    Bool(bool),
    /// No value (an unset variable).
    Null,
}

impl Value {
    /// Truthiness: false, null, empty text and 0 are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Num(n) => *n != 0.0,
            Value::Bool(b) => *b,
            Value::Null => false,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{}", *n as i64),
            Value::Num(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => Ok(()),
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Value),
    /// A variable.
    Var(String),
    /// `!e`.
    Not(Box<Expr>),
    /// A binary operation.
    Bin(Box<Expr>, Op, Box<Expr>),
    /// A function call.
    Call(String, Vec<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+` (numbers add, text joins)
    Add,
}

/// A syntax error with its character offset in the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {offset})")]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// Character offset in the source text.
    pub offset: usize,
}

const FUNCTIONS: &[(&str, usize)] = &[("len", 1), ("starts_with", 2), ("digits", 1), ("open", 1)];

struct Parser<'a> {
    src: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            message: message.into(),
            offset: self.pos,
        })
    }

    fn skip_ws(&mut self) {
        while self.src.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        let chars: Vec<char> = s.chars().collect();
        if self.src[self.pos..].starts_with(&chars) {
            self.pos += chars.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Bin(Box::new(e), Op::Or, Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.not()?;
        while self.eat("&&") {
            e = Expr::Bin(Box::new(e), Op::And, Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        self.skip_ws();
        if self.src.get(self.pos) == Some(&'!') && self.src.get(self.pos + 1) != Some(&'=') {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let left = self.sum()?;
        for (tok, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(tok) {
                return Ok(Expr::Bin(Box::new(left), op, Box::new(self.sum()?)));
            }
        }
        Ok(left)
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.atom()?;
        while self.eat("+") {
            e = Expr::Bin(Box::new(e), Op::Add, Box::new(self.atom()?));
        }
        Ok(e)
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        self.skip_ws();
        let Some(&c) = self.src.get(self.pos) else {
            return self.err("expected a value");
        };
        if c == '(' {
            self.pos += 1;
            let e = self.or()?;
            if !self.eat(")") {
                return self.err("expected ')'");
            }
            return Ok(e);
        }
        if c == '\'' || c == '"' {
            self.pos += 1;
            let start = self.pos;
            while self.src.get(self.pos).is_some_and(|x| *x != c) {
                self.pos += 1;
            }
            if self.pos >= self.src.len() {
                self.pos = start - 1;
                return self.err("unterminated string");
            }
            let s: String = self.src[start..self.pos].iter().collect();
            self.pos += 1;
            return Ok(Expr::Lit(Value::Str(s)));
        }
        if c.is_ascii_digit()
            || (c == '-'
                && self
                    .src
                    .get(self.pos + 1)
                    .is_some_and(|d| d.is_ascii_digit()))
        {
            let start = self.pos;
            self.pos += 1;
            while self
                .src
                .get(self.pos)
                .is_some_and(|x| x.is_ascii_digit() || *x == '.')
            {
                self.pos += 1;
            }
            let s: String = self.src[start..self.pos].iter().collect();
            return match s.parse() {
                Ok(n) => Ok(Expr::Lit(Value::Num(n))),
                Err(_) => {
                    self.pos = start;
                    self.err(format!("bad number {s:?}"))
                }
            };
        }
        if c.is_alphabetic() || c == '_' {
            let start = self.pos;
            while self
                .src
                .get(self.pos)
                .is_some_and(|x| x.is_alphanumeric() || *x == '_' || *x == '.')
            {
                self.pos += 1;
            }
            let name: String = self.src[start..self.pos].iter().collect();
            match name.as_str() {
                "true" => return Ok(Expr::Lit(Value::Bool(true))),
                "false" => return Ok(Expr::Lit(Value::Bool(false))),
                "null" => return Ok(Expr::Lit(Value::Null)),
                _ => {}
            }
            if self.eat("(") {
                let Some((_, arity)) = FUNCTIONS.iter().find(|(f, _)| *f == name) else {
                    self.pos = start;
                    return self.err(format!("unknown function `{name}`"));
                };
                let mut args = vec![self.or()?];
                while self.eat(",") {
                    args.push(self.or()?);
                }
                if !self.eat(")") {
                    return self.err("expected ')'");
                }
                if args.len() != *arity {
                    self.pos = start;
                    return self.err(format!("`{name}` takes {arity} argument(s)"));
                }
                return Ok(Expr::Call(name, args));
            }
            return Ok(Expr::Var(name));
        }
        self.err(format!("unexpected `{c}`"))
    }
}

impl Expr {
    /// The calendars named by `open(...)` in this expression, with the
    /// character offset of each name; a name that is not a literal text is
    /// given as `None` (the checker refuses it).
    pub fn calendars(&self) -> Vec<Option<String>> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Call(f, args) = e {
                if f == "open" {
                    out.push(match &args[0] {
                        Expr::Lit(Value::Str(s)) => Some(s.clone()),
                        _ => None,
                    });
                }
            }
        });
        out
    }

    fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Not(e) => e.walk(f),
            Expr::Bin(a, _, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
            Expr::Lit(_) | Expr::Var(_) => {}
        }
    }
}

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut p = Parser {
        src: &chars,
        pos: 0,
    };
    let e = p.or()?;
    p.skip_ws();
    if p.pos != chars.len() {
        return p.err("unexpected text after the expression");
    }
    Ok(e)
}

/// Variables an expression reads from.
pub type Vars = HashMap<String, Value>;

impl Expr {
    /// Evaluates with the call's variables; unset variables are null and
    /// every calendar is closed.
    pub fn eval(&self, vars: &Vars) -> Value {
        self.eval_with(vars, &|_| false)
    }

    /// Evaluates with the call's variables and `open`, which answers
    /// `open("calendar")` for the time of the evaluation.
    pub fn eval_with(&self, vars: &Vars, open: &dyn Fn(&str) -> bool) -> Value {
        let ev = |e: &Expr| e.eval_with(vars, open);
        match self {
            Expr::Lit(v) => v.clone(),
            Expr::Var(name) => vars.get(name).cloned().unwrap_or(Value::Null),
            Expr::Not(e) => Value::Bool(!ev(e).truthy()),
            Expr::Bin(a, Op::Or, b) => Value::Bool(ev(a).truthy() || ev(b).truthy()),
            Expr::Bin(a, Op::And, b) => Value::Bool(ev(a).truthy() && ev(b).truthy()),
            Expr::Bin(a, op, b) => binary(*op, ev(a), ev(b)),
            Expr::Call(f, args) => {
                let v: Vec<Value> = args.iter().map(ev).collect();
                match f.as_str() {
                    "open" => Value::Bool(open(&v[0].to_string())),
                    "len" => Value::Num(v[0].to_string().chars().count() as f64),
                    "starts_with" => Value::Bool(v[0].to_string().starts_with(&v[1].to_string())),
                    "digits" => Value::Str(
                        v[0].to_string()
                            .chars()
                            .filter(char::is_ascii_digit)
                            .collect(),
                    ),
                    _ => Value::Null,
                }
            }
        }
    }
}

fn as_num(v: &Value) -> Option<f64> {
    match v {
        Value::Num(n) => Some(*n),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn binary(op: Op, a: Value, b: Value) -> Value {
    if op == Op::Add {
        return match (as_num(&a), as_num(&b), &a, &b) {
            (Some(x), Some(y), Value::Num(_), Value::Num(_)) => Value::Num(x + y),
            _ => Value::Str(format!("{a}{b}")),
        };
    }
    let ord = match (as_num(&a), as_num(&b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(a.to_string().cmp(&b.to_string())),
    };
    let eq = match (&a, &b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        _ => ord == Some(std::cmp::Ordering::Equal),
    };
    Value::Bool(match op {
        Op::Eq => eq,
        Op::Ne => !eq,
        Op::Lt => ord == Some(std::cmp::Ordering::Less),
        Op::Le => matches!(
            ord,
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        ),
        Op::Gt => ord == Some(std::cmp::Ordering::Greater),
        Op::Ge => matches!(
            ord,
            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
        ),
        _ => false,
    })
}

/// A text with `${expr}` parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

impl Template {
    /// Parses a template; errors carry the character offset in `src`.
    pub fn parse(src: &str) -> Result<Template, ExprError> {
        let mut parts = Vec::new();
        let mut rest = src;
        let mut offset = 0;
        while let Some(i) = rest.find("${") {
            if i > 0 {
                parts.push(Part::Text(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                return Err(ExprError {
                    message: "`${` without `}`".into(),
                    offset: offset + rest[..i].chars().count(),
                });
            };
            let e = parse(&after[..end]).map_err(|e| ExprError {
                message: e.message,
                offset: offset + rest[..i].chars().count() + 2 + e.offset,
            })?;
            parts.push(Part::Expr(e));
            offset += rest[..i + 2 + end + 1].chars().count();
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template(parts))
    }

    /// Whether the template is plain text.
    pub fn literal(&self) -> Option<&str> {
        match self.0.as_slice() {
            [] => Some(""),
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// Fills the template.
    pub fn render(&self, vars: &Vars) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Expr(e) => e.eval(vars).to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.insert("status".into(), Value::Str("approved".into()));
        v.insert("tries".into(), Value::Num(2.0));
        v.insert("app".into(), Value::Str("20231234".into()));
        v
    }

    #[test]
    fn evaluates_conditions() {
        let v = vars();
        let t = |s: &str| parse(s).unwrap().eval(&v);
        assert_eq!(t("status == 'approved'"), Value::Bool(true));
        assert_eq!(t("status != \"approved\" || tries >= 2"), Value::Bool(true));
        assert_eq!(t("!(tries < 3) && true"), Value::Bool(false));
        assert_eq!(
            t("len(app) == 8 && starts_with(app, '2023')"),
            Value::Bool(true)
        );
        assert_eq!(t("missing == null"), Value::Bool(true));
        assert_eq!(t("tries + 1"), Value::Num(3.0));
        assert_eq!(t("'a' + status"), Value::Str("aapproved".into()));
        assert_eq!(t("digits('A-12 3')"), Value::Str("123".into()));
    }

    #[test]
    fn open_asks_the_calendars_and_names_them() {
        let v = vars();
        let open = |c: &str| c == "visa_centre";
        let e = parse("open('visa_centre') && !open(\"police\")").unwrap();
        assert_eq!(e.eval_with(&v, &open), Value::Bool(true));
        assert_eq!(e.eval(&v), Value::Bool(false));
        assert_eq!(
            e.calendars(),
            vec![Some("visa_centre".into()), Some("police".into())]
        );
        assert_eq!(parse("open(status)").unwrap().calendars(), vec![None]);
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        assert_eq!(parse("status == ").unwrap_err().offset, 10);
        assert_eq!(parse("status === 1").unwrap_err().offset, 9);
        assert!(parse("exec('rm')")
            .unwrap_err()
            .message
            .contains("unknown function"));
        assert!(parse("'open").unwrap_err().message.contains("unterminated"));
        assert!(parse("len(a, b)").is_err());
    }

    #[test]
    fn templates() {
        let t = Template::parse("status_${status}").unwrap();
        assert_eq!(t.render(&vars()), "status_approved");
        assert_eq!(
            Template::parse("welcome").unwrap().literal(),
            Some("welcome")
        );
        assert_eq!(Template::parse("a${b").unwrap_err().offset, 1);
        assert_eq!(Template::parse("ab${x ==}").unwrap_err().offset, 8);
    }
}
