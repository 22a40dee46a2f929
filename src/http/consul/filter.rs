//! `?filter=`: the common go-bexpr expressions, evaluated on the JSON of each element a
//! list endpoint returns.
//!
//! Grammar: `Sel == V`, `Sel != V`, `V [not] in Sel`, `Sel [not] contains V`,
//! `Sel [not] matches "re"`, `Sel is [not] empty`, joined by `and`, `or`, `not` and
//! parentheses (precedence not > and > or). Selectors are dot paths (`Service.Meta.env`) with
//! `["key"]` for map keys that are not identifiers. Values: `"quoted"` or `` `raw` `` strings,
//! numbers, `true`/`false`, or bare identifiers. `in`/`contains` test membership in a list,
//! key membership in a map and substrings in a string. A missing field matches nothing (and
//! `is empty`).

use regex::Regex;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Op(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' | ')' | '[' | ']' | '.' => {
                out.push(Tok::Op(match c {
                    '(' => "(",
                    ')' => ")",
                    '[' => "[",
                    ']' => "]",
                    _ => ".",
                }));
                i += 1;
            }
            '=' | '!' => {
                if cs.get(i + 1) != Some(&'=') {
                    return Err(format!("unexpected {c:?} at position {i}"));
                }
                out.push(Tok::Op(if c == '=' { "==" } else { "!=" }));
                i += 2;
            }
            '"' | '`' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match cs.get(i) {
                        None => return Err("unterminated string".into()),
                        Some(&q) if q == c => break,
                        Some('\\') if c == '"' => {
                            let e = cs.get(i + 1).ok_or("unterminated string")?;
                            v.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                other => *other,
                            });
                            i += 2;
                            continue;
                        }
                        Some(&x) => v.push(x),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            _ if c.is_ascii_digit() || (c == '-' && cs.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                let start = i;
                i += 1;
                while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
                    i += 1;
                }
                out.push(Tok::Num(cs[start..i].iter().collect()));
            }
            _ if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == '-') {
                    i += 1;
                }
                out.push(Tok::Word(cs[start..i].iter().collect()));
            }
            _ => return Err(format!("unexpected {c:?} at position {i}")),
        }
    }
    Ok(out)
}

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Eq(Vec<String>, String, bool),
    In(Vec<String>, String, bool),
    Empty(Vec<String>, bool),
    Matches(Vec<String>, Regex, bool),
}

/// A parsed filter.
#[derive(Debug)]
pub struct Filter(Expr);

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

const KEYWORDS: [&str; 8] = ["and", "or", "not", "in", "contains", "matches", "is", "empty"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn op(&self, o: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(x)) if *x == o)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.word("or") {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        while self.word("and") {
            self.pos += 1;
            l = Expr::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.op("(") {
            self.pos += 1;
            let e = self.or()?;
            if !self.op(")") {
                return Err("missing closing parenthesis".into());
            }
            self.pos += 1;
            return Ok(e);
        }
        self.matcher()
    }

    fn selector(&mut self, first: String) -> Result<Vec<String>, String> {
        let mut path = vec![first];
        loop {
            if self.op(".") {
                self.pos += 1;
                match self.next() {
                    Some(Tok::Word(w)) => path.push(w),
                    other => return Err(format!("expected a field name after '.', got {other:?}")),
                }
            } else if self.op("[") {
                self.pos += 1;
                let Some(Tok::Str(k)) = self.next() else { return Err("expected a quoted key inside [ ]".into()) };
                if !self.op("]") {
                    return Err("missing ']'".into());
                }
                self.pos += 1;
                path.push(k);
            } else {
                return Ok(path);
            }
        }
    }

    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) | Some(Tok::Num(s)) => Ok(s),
            Some(Tok::Word(w)) if !KEYWORDS.contains(&w.as_str()) => Ok(w),
            other => Err(format!("expected a value, got {other:?}")),
        }
    }

    fn negated(&mut self) -> bool {
        let n = self.word("not");
        if n {
            self.pos += 1;
        }
        n
    }

    fn matcher(&mut self) -> Result<Expr, String> {
        let first = self.next().ok_or("unexpected end of expression")?;
        // `V [not] in Sel`.
        let save = self.pos;
        let neg = self.negated();
        if self.word("in") {
            self.pos += 1;
            let v = match first {
                Tok::Str(s) | Tok::Num(s) | Tok::Word(s) => s,
                Tok::Op(o) => return Err(format!("unexpected {o:?}")),
            };
            let Some(Tok::Word(w)) = self.next() else { return Err("expected a selector after 'in'".into()) };
            return Ok(Expr::In(self.selector(w)?, v, neg));
        }
        self.pos = save;
        let sel = match first {
            Tok::Word(w) if !KEYWORDS.contains(&w.as_str()) => self.selector(w)?,
            other => return Err(format!("expected a selector, got {other:?}")),
        };
        if self.op("==") || self.op("!=") {
            let eq = self.op("==");
            self.pos += 1;
            return Ok(Expr::Eq(sel, self.value()?, !eq));
        }
        if self.word("is") {
            self.pos += 1;
            let neg = self.negated();
            if !self.word("empty") {
                return Err("expected 'empty' after 'is'".into());
            }
            self.pos += 1;
            return Ok(Expr::Empty(sel, neg));
        }
        let neg = self.negated();
        if self.word("contains") {
            self.pos += 1;
            return Ok(Expr::In(sel, self.value()?, neg));
        }
        if self.word("matches") {
            self.pos += 1;
            let re = self.value()?;
            let re = Regex::new(&re).map_err(|e| format!("invalid regular expression: {e}"))?;
            return Ok(Expr::Matches(sel, re, neg));
        }
        Err(format!("expected an operator after selector {:?}", sel.join(".")))
    }
}

impl Filter {
    pub fn parse(s: &str) -> Result<Filter, String> {
        let mut p = Parser { toks: tokenize(s)?, pos: 0 };
        if p.toks.is_empty() {
            return Err("empty expression".into());
        }
        let e = p.or()?;
        if p.pos < p.toks.len() {
            return Err(format!("unexpected {:?} after the expression", p.toks[p.pos]));
        }
        Ok(Filter(e))
    }

    pub fn matches(&self, v: &Value) -> bool {
        eval(&self.0, v)
    }
}

/// The value at `path`; through a list, the values of its elements (`Checks.Status`).
fn lookup(v: &Value, path: &[String]) -> Option<Value> {
    let Some((p, rest)) = path.split_first() else { return Some(v.clone()) };
    match v {
        Value::Object(m) => {
            let x = m.get(p).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(p)).map(|(_, x)| x))?;
            lookup(x, rest)
        }
        Value::Array(a) => Some(Value::Array(a.iter().filter_map(|x| lookup(x, path)).collect())),
        _ => None,
    }
}

fn equals(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Number(n) => match (n.as_f64(), s.parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        Value::Bool(b) => crate::http::consul::parse_go_bool(s) == Some(*b),
        // Through a list (`Checks.Status == passing`): any element.
        Value::Array(a) => a.iter().any(|x| equals(x, s)),
        _ => false,
    }
}

fn eval(e: &Expr, v: &Value) -> bool {
    match e {
        Expr::And(a, b) => eval(a, v) && eval(b, v),
        Expr::Or(a, b) => eval(a, v) || eval(b, v),
        Expr::Not(a) => !eval(a, v),
        Expr::Eq(sel, val, neg) => lookup(v, sel).is_some_and(|x| equals(&x, val)) != *neg,
        Expr::In(sel, val, neg) => {
            let hit = match lookup(v, sel) {
                Some(Value::Array(a)) => a.iter().any(|x| equals(x, val)),
                Some(Value::Object(m)) => m.contains_key(val.as_str()),
                Some(Value::String(s)) => s.contains(val.as_str()),
                _ => false,
            };
            hit != *neg
        }
        Expr::Empty(sel, neg) => {
            let empty = match lookup(v, sel) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(m)) => m.is_empty(),
                Some(_) => false,
            };
            empty != *neg
        }
        Expr::Matches(sel, re, neg) => {
            lookup(v, sel).as_ref().and_then(Value::as_str).is_some_and(|s| re.is_match(s)) != *neg
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(f: &str, v: &Value) -> bool {
        Filter::parse(f).unwrap_or_else(|e| panic!("{f}: {e}")).matches(v)
    }

    #[test]
    fn bexpr_forms() {
        let v = json!({"ServiceName": "web", "ServiceTags": ["v1", "primary"], "ServicePort": 8080,
                       "ServiceMeta": {"env": "prod", "team-name": "x"}, "Node": {"Node": "n1"}, "Empty": "",
                       "Flag": true});
        assert!(m("ServiceName == web", &v));
        assert!(m(r#"ServiceName == "web" and ServicePort == 8080"#, &v));
        assert!(m("ServiceName != api", &v));
        assert!(m("v1 in ServiceTags", &v) && m(r#""v2" not in ServiceTags"#, &v));
        assert!(m("ServiceTags contains primary", &v) && m("ServiceTags not contains canary", &v));
        assert!(m("ServiceMeta.env == prod", &v) && m(r#"ServiceMeta["team-name"] == "x""#, &v));
        assert!(m("env in ServiceMeta", &v) && m("ServiceName contains we", &v));
        assert!(m(r#"ServiceName matches "^w.b$""#, &v) && m("ServiceName not matches `^api`", &v));
        assert!(m("Empty is empty", &v) && m("Missing is empty", &v) && m("ServiceTags is not empty", &v));
        assert!(m("Node.Node == n1 and (ServicePort == 1 or not ServiceName == api)", &v));
        assert!(m("Flag == true", &v));
        let h = json!({"Checks": [{"Status": "passing"}, {"Status": "critical"}]});
        assert!(m("Checks.Status == critical", &h) && m("critical in Checks.Status", &h));
        assert!(!m("ServiceMeta.missing == x", &v) && m("ServiceMeta.missing != x", &v));
        assert!(m("not ServiceName == api and ServiceName == web or ServiceName == x", &v));
        assert!(!m("ServiceName == api or ServiceName == x and ServiceName == web", &v));
    }

    #[test]
    fn bad_expressions_are_refused() {
        for bad in [
            "",
            "ServiceName ==",
            "== web",
            "ServiceName = web",
            "(ServiceName == web",
            "ServiceName foo x",
            r#"ServiceName matches "(""#,
            "ServiceName == web and",
            r#"Meta["x" == 1"#,
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
