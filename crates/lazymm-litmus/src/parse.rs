//! Parser for the kernel's C litmus-test format (the dialect `herd7`
//! accepts with `linux-kernel.def`).
//!
//! The parser never panics: every problem is reported as a [`LitmusError`]
//! carrying the line number and what was expected, or as
//! [`LitmusError::Unsupported`] naming the construct.

use std::fmt;

/// Error produced while reading or checking a litmus test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LitmusError {
    /// Malformed input: `line: message` (message says what was expected).
    Syntax { line: usize, msg: String },
    /// Well-formed, but uses something the checker does not model.
    Unsupported(String),
}

impl fmt::Display for LitmusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LitmusError::Syntax { line, msg } => write!(f, "{line}: {msg}"),
            LitmusError::Unsupported(c) => write!(f, "unsupported: {c}"),
        }
    }
}

impl std::error::Error for LitmusError {}

fn syn<T>(line: usize, msg: impl Into<String>) -> Result<T, LitmusError> {
    Err(LitmusError::Syntax {
        line,
        msg: msg.into(),
    })
}

fn unsup<T>(what: impl Into<String>) -> Result<T, LitmusError> {
    Err(LitmusError::Unsupported(what.into()))
}

// ---------------------------------------------------------------- AST

/// An initial value: an integer or the address of a shared variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InitVal {
    Int(i64),
    Addr(String),
}

/// Something whose final value can be observed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateRef {
    Loc(String),
    Reg(usize, String),
}

impl fmt::Display for StateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateRef::Loc(l) => write!(f, "{l}"),
            StateRef::Reg(t, r) => write!(f, "{t}:{r}"),
        }
    }
}

/// Propositions of `exists`/`forall`/`filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    True,
    False,
    Eq(StateRef, InitVal),
    Ne(StateRef, InitVal),
    /// `a = b` between two observed values (`ne` for `!=`)
    EqRef(StateRef, StateRef, bool),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

impl Cond {
    /// All state references mentioned, in order of appearance.
    pub fn refs(&self, out: &mut Vec<StateRef>) {
        match self {
            Cond::True | Cond::False => {}
            Cond::Eq(r, _) | Cond::Ne(r, _) => {
                if !out.contains(r) {
                    out.push(r.clone())
                }
            }
            Cond::EqRef(a, b, _) => {
                for r in [a, b] {
                    if !out.contains(r) {
                        out.push(r.clone())
                    }
                }
            }
            Cond::Not(c) => c.refs(out),
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.refs(out);
                b.refs(out);
            }
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |v: &InitVal| match v {
            InitVal::Int(i) => i.to_string(),
            InitVal::Addr(a) => a.clone(),
        };
        match self {
            Cond::True => write!(f, "true"),
            Cond::False => write!(f, "false"),
            Cond::Eq(r, x) => write!(f, "{r}={}", v(x)),
            Cond::Ne(r, x) => write!(f, "{r}!={}", v(x)),
            Cond::EqRef(a, b, ne) => write!(f, "{a}{}{b}", if *ne { "!=" } else { "=" }),
            Cond::Not(c) => write!(f, "~({c})"),
            Cond::And(a, b) => write!(f, "({a} /\\ {b})"),
            Cond::Or(a, b) => write!(f, "({a} \\/ {b})"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Quantifier {
    Exists,
    NotExists,
    Forall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    BitAnd,
    BitXor,
    BitOr,
    LAnd,
    LOr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    BitNot,
}

/// C expressions of thread bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Int(i64),
    Var(String),
    Deref(Box<Expr>),
    AddrOf(String),
    Un(UnOp, Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    /// `lhs = rhs` (`op` is `Some` for compound assignment).
    Assign(Box<Expr>, Option<BinOp>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    Decl(Vec<(String, Option<Expr>)>),
    Expr(Expr),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    Block(Vec<Stmt>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub id: usize,
    pub params: Vec<String>,
    pub body: Vec<Stmt>,
}

/// The verdict a test file claims (`Result:` comment).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Expected {
    /// `Never`, `Sometimes`, `Always`, `Maybe`, `DEADLOCK`, `Flag`, ...
    pub verdict: String,
    /// `DATARACE` follows the verdict.
    pub datarace: bool,
}

/// A parsed litmus test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub name: String,
    /// `(target, value)`; target `StateRef::Reg` for `0:r1=...`.
    pub init: Vec<(StateRef, InitVal)>,
    /// Names declared in the initial state without a value (value 0).
    pub threads: Vec<Thread>,
    pub locations: Vec<StateRef>,
    pub filter: Option<Cond>,
    pub quantifier: Quantifier,
    pub cond: Cond,
    pub expected: Option<Expected>,
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Int(i64),
    Str,
    P(&'static str),
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Int(i) => write!(f, "`{i}`"),
            Tok::Str => write!(f, "a string"),
            Tok::P(p) => write!(f, "`{p}`"),
            Tok::Eof => write!(f, "end of file"),
        }
    }
}

const PUNCTS: &[&str] = &[
    "/\\", "\\/", "<<=", ">>=", "=>", "<>", "==", "!=", "<=", ">=", "&&", "||", "<<", ">>", "->",
    "++", "--", "+=", "-=", "*=", "|=", "&=", "^=", "{", "}", "(", ")", "[", "]", ";", ",", ":",
    "=", "*", "&", "|", "^", "~", "!", "+", "-", "/", "%", "<", ">", "?", ".", "#", "\\", "@", "$",
    "'",
];

fn lex(src: &str, first_line: usize) -> Result<Vec<(Tok, usize)>, LitmusError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut line = first_line;
    let mut depth: i64 = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // OCaml-style comments, only outside braces (in C code `(*` is a deref).
        if c == b'('
            && b.get(i + 1) == Some(&b'*')
            && (depth == 0 || b.get(i + 2).is_some_and(|c| c.is_ascii_whitespace()))
        {
            let start = line;
            i += 2;
            let mut nest = 1;
            while nest > 0 {
                if i >= b.len() {
                    return syn(start, "expected `*)` to close comment");
                }
                if b[i] == b'\n' {
                    line += 1;
                } else if b[i] == b'(' && b.get(i + 1) == Some(&b'*') {
                    nest += 1;
                    i += 1;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b')') {
                    nest -= 1;
                    i += 1;
                }
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let start = line;
            i += 2;
            loop {
                if i + 1 >= b.len() {
                    return syn(start, "expected `*/` to close comment");
                }
                if b[i] == b'\n' {
                    line += 1;
                }
                if b[i] == b'*' && b[i + 1] == b'/' {
                    i += 2;
                    break;
                }
                i += 1;
            }
            continue;
        }
        if c == b'"' {
            let start = line;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\n' {
                    line += 1;
                }
                i += 1;
            }
            if i >= b.len() {
                return syn(start, "expected closing `\"`");
            }
            i += 1;
            out.push((Tok::Str, start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(src[s..i].to_string()), line));
            continue;
        }
        if c.is_ascii_digit() {
            let s = i;
            let v = if c == b'0' && matches!(b.get(i + 1), Some(b'x') | Some(b'X')) {
                i += 2;
                let hs = i;
                while i < b.len() && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
                i64::from_str_radix(&src[hs..i], 16).ok()
            } else {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                src[s..i].parse::<i64>().ok()
            };
            // integer suffixes
            while i < b.len() && matches!(b[i], b'u' | b'U' | b'l' | b'L') {
                i += 1;
            }
            match v {
                Some(v) => out.push((Tok::Int(v), line)),
                None => return syn(line, "expected an integer that fits in 64 bits"),
            }
            continue;
        }
        let rest = &src[i..];
        match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            Some(p) => {
                if *p == "{" {
                    depth += 1;
                } else if *p == "}" {
                    depth -= 1;
                }
                out.push((Tok::P(p), line));
                i += p.len();
            }
            None => {
                let ch = rest.chars().next().unwrap_or('?');
                return syn(line, format!("unexpected character `{ch}`"));
            }
        }
    }
    out.push((Tok::Eof, line));
    Ok(out)
}

// ---------------------------------------------------------------- parser

const TYPE_WORDS: &[&str] = &[
    "int",
    "long",
    "short",
    "char",
    "unsigned",
    "signed",
    "intptr_t",
    "uintptr_t",
    "atomic_t",
    "atomic_long_t",
    "atomic64_t",
    "spinlock_t",
    "bool",
    "u8",
    "u16",
    "u32",
    "u64",
    "s8",
    "s16",
    "s32",
    "s64",
    "void",
    "const",
    "volatile",
    "size_t",
    "struct",
    "srcu_struct",
    "raw_spinlock_t",
];

fn is_type_word(s: &str) -> bool {
    TYPE_WORDS.contains(&s)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// Maximum nesting of statements/expressions/conditions (keeps the
/// recursive-descent parser's stack bounded on hostile input).
const MAX_DEPTH: usize = 200;

type PResult<T> = Result<T, LitmusError>;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].0
    }
    fn line(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }
    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn is_p(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::P(q) if *q == p)
    }
    fn peek_at_is(&self, k: usize, p: &str) -> bool {
        matches!(self.peek_at(k), Tok::P(q) if *q == p)
    }
    fn is_ident(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Ident(q) if q == s)
    }
    fn eat_p(&mut self, p: &str) -> bool {
        if self.is_p(p) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_p(&mut self, p: &str, ctx: &str) -> PResult<()> {
        if self.eat_p(p) {
            Ok(())
        } else {
            syn(
                self.line(),
                format!("expected `{p}` {ctx}, found {}", self.peek()),
            )
        }
    }
    fn expect_ident(&mut self, ctx: &str) -> PResult<String> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.bump();
                Ok(s)
            }
            t => syn(self.line(), format!("expected {ctx}, found {t}")),
        }
    }

    // ----- initial state
    fn init_value(&mut self) -> PResult<InitVal> {
        // optional cast
        if self.is_p("(") && matches!(self.peek_at(1), Tok::Ident(s) if is_type_word(s)) {
            self.bump();
            while !self.is_p(")") && *self.peek() != Tok::Eof {
                self.bump();
            }
            self.expect_p(")", "to close cast")?;
        }
        let neg = self.eat_p("-");
        match self.bump() {
            Tok::Int(i) => Ok(InitVal::Int(if neg { -i } else { i })),
            Tok::P("&") if !neg => Ok(InitVal::Addr(self.expect_ident("a variable name")?)),
            Tok::Ident(s) if !neg => {
                if s == "ATOMIC_INIT" {
                    self.expect_p("(", "after ATOMIC_INIT")?;
                    let v = self.init_value()?;
                    self.expect_p(")", "to close ATOMIC_INIT")?;
                    Ok(v)
                } else if s == "NULL" {
                    Ok(InitVal::Int(0))
                } else {
                    Ok(InitVal::Addr(s))
                }
            }
            Tok::P("{") => unsup("array/struct initializer"),
            t => syn(self.line(), format!("expected an initial value, found {t}")),
        }
    }

    fn init_block(&mut self) -> PResult<Vec<(StateRef, InitVal)>> {
        self.expect_p("{", "to open the initial state")?;
        let mut out = Vec::new();
        loop {
            if self.eat_p("}") {
                return Ok(out);
            }
            if self.eat_p(";") {
                continue;
            }
            // Optional type, then target.
            let mut words = Vec::new();
            loop {
                match self.peek().clone() {
                    Tok::Ident(s) => {
                        words.push(s);
                        self.bump();
                    }
                    Tok::P("*") => {
                        self.bump();
                    }
                    _ => break,
                }
            }
            let typed_reg = !words.is_empty() && matches!(self.peek(), Tok::Int(_));
            let target = if words.is_empty() || typed_reg {
                match self.bump() {
                    Tok::Int(t) if self.eat_p(":") => {
                        StateRef::Reg(t as usize, self.expect_ident("a register name")?)
                    }
                    t => {
                        return syn(
                            self.line(),
                            format!(
                                "expected a variable or `N:reg` in the initial state, found {t}"
                            ),
                        )
                    }
                }
            } else {
                let name = words.pop().unwrap_or_default();
                if words.iter().any(|w| w == "spinlock_t") {
                    // spinlocks are initially unlocked
                }
                StateRef::Loc(name)
            };
            if self.is_p("[") {
                return unsup("array variable");
            }
            if self.eat_p("=") {
                let v = self.init_value()?;
                out.push((target, v));
            } else {
                out.push((target, InitVal::Int(0)));
            }
            if !self.is_p("}") {
                self.expect_p(";", "after an initial-state item")?;
            }
        }
    }

    // ----- threads
    fn thread(&mut self, name: &str) -> PResult<Thread> {
        let line = self.line();
        let id: usize = match name[1..].parse() {
            Ok(i) => i,
            Err(_) => return syn(line, format!("expected a thread name P<n>, found `{name}`")),
        };
        self.expect_p("(", "after thread name")?;
        let mut params = Vec::new();
        if !self.eat_p(")") {
            loop {
                let mut last = None;
                loop {
                    match self.peek().clone() {
                        Tok::Ident(s) => {
                            last = Some(s);
                            self.bump();
                        }
                        Tok::P("*") => {
                            self.bump();
                        }
                        _ => break,
                    }
                }
                match last {
                    Some(s) if s != "void" => params.push(s),
                    Some(_) => {}
                    None => {
                        return syn(
                            self.line(),
                            format!("expected a parameter, found {}", self.peek()),
                        )
                    }
                }
                if self.eat_p(")") {
                    break;
                }
                self.expect_p(",", "between parameters")?;
            }
        }
        self.expect_p("{", "to open the thread body")?;
        let mut body = Vec::new();
        while !self.eat_p("}") {
            if *self.peek() == Tok::Eof {
                return syn(self.line(), "expected `}` to close the thread body");
            }
            body.push(self.stmt()?);
        }
        Ok(Thread { id, params, body })
    }

    fn skip_type(&mut self) {
        loop {
            match self.peek().clone() {
                // a type word followed by a name, `*` or `)` (casts); a
                // type word followed by anything else is the declared name
                Tok::Ident(s)
                    if is_type_word(&s)
                        && (matches!(self.peek_at(1), Tok::Ident(_))
                            || self.peek_at_is(1, "*")
                            || self.peek_at_is(1, ")")) =>
                {
                    self.bump();
                    if s == "struct" {
                        if let Tok::Ident(_) = self.peek() {
                            self.bump();
                        }
                    }
                }
                _ => break,
            }
        }
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        if self.depth >= MAX_DEPTH {
            return syn(self.line(), "expected less deeply nested code");
        }
        self.depth += 1;
        let r = self.stmt_inner();
        self.depth -= 1;
        r
    }

    fn stmt_inner(&mut self) -> PResult<Stmt> {
        let line = self.line();
        match self.peek().clone() {
            Tok::P("{") => {
                self.bump();
                let mut v = Vec::new();
                while !self.eat_p("}") {
                    if *self.peek() == Tok::Eof {
                        return syn(self.line(), "expected `}` to close a block");
                    }
                    v.push(self.stmt()?);
                }
                Ok(Stmt::Block(v))
            }
            Tok::P(";") => {
                self.bump();
                Ok(Stmt::Block(vec![]))
            }
            Tok::Ident(s) if s == "if" => {
                self.bump();
                self.expect_p("(", "after `if`")?;
                let c = self.expr()?;
                self.expect_p(")", "to close the `if` condition")?;
                let t = self.stmt()?;
                let e = if self.is_ident("else") {
                    self.bump();
                    Some(Box::new(self.stmt()?))
                } else {
                    None
                };
                Ok(Stmt::If(c, Box::new(t), e))
            }
            // herd7's C lexer reserves only `if`, `else` and `while`: the other
            // C keywords are ordinary names there (a register may be called
            // `continue`), so they start a statement only when followed by
            // what that statement needs.
            Tok::Ident(s)
                if s == "while"
                    || (matches!(s.as_str(), "for" | "switch") && self.peek_at_is(1, "("))
                    || (s == "do" && self.peek_at_is(1, "{"))
                    || (matches!(s.as_str(), "break" | "continue") && self.peek_at_is(1, ";"))
                    || (matches!(s.as_str(), "goto" | "return")
                        && (self.peek_at_is(1, ";")
                            || matches!(self.peek_at(1), Tok::Ident(_) | Tok::Int(_)))) =>
            {
                unsup(format!("`{s}` statement"))
            }
            // A type word starts a declaration only when a name (or `*`)
            // follows: `u8 = 1;` assigns a register called `u8` (herd7 knows
            // only a few type names; the others are ordinary names there).
            Tok::Ident(s)
                if is_type_word(&s)
                    && (matches!(self.peek_at(1), Tok::Ident(_)) || self.peek_at_is(1, "*")) =>
            {
                self.skip_type();
                let mut decls = Vec::new();
                loop {
                    while self.eat_p("*") {}
                    let name = self.expect_ident("a variable name in a declaration")?;
                    if self.is_p("[") {
                        return unsup("array variable");
                    }
                    let init = if self.eat_p("=") {
                        Some(self.assign_expr()?)
                    } else {
                        None
                    };
                    decls.push((name, init));
                    if self.eat_p(",") {
                        continue;
                    }
                    self.expect_p(";", "after a declaration")?;
                    break;
                }
                Ok(Stmt::Decl(decls))
            }
            Tok::Eof => syn(line, "expected a statement, found end of file"),
            // herd7 expands a macro of `linux-kernel.def` written as an
            // expression (no `{ }` body: every value-returning one) only
            // inside an expression; as a statement it says "Unknown macro"
            Tok::Ident(s) if is_value_macro(&s) && self.peek_at_is(1, "(") => syn(
                line,
                format!(
                    "`{s}(...)` returns a value and cannot be a statement (herd7: \"Unknown macro {s}\"); \
                     write `r = {s}(...);` or `(void){s}(...);`"
                ),
            ),
            _ => {
                let e = self.expr()?;
                self.expect_p(";", "after an expression statement")?;
                Ok(Stmt::Expr(e))
            }
        }
    }

    fn expr(&mut self) -> PResult<Expr> {
        let e = self.assign_expr()?;
        if self.is_p(",") {
            return unsup("comma operator");
        }
        Ok(e)
    }

    fn assign_expr(&mut self) -> PResult<Expr> {
        let lhs = self.ternary()?;
        let op = match self.peek() {
            Tok::P("=") => None,
            Tok::P("+=") => Some(BinOp::Add),
            Tok::P("-=") => Some(BinOp::Sub),
            Tok::P("*=") => Some(BinOp::Mul),
            Tok::P("|=") => Some(BinOp::BitOr),
            Tok::P("&=") => Some(BinOp::BitAnd),
            Tok::P("^=") => Some(BinOp::BitXor),
            Tok::P("<<=") => Some(BinOp::Shl),
            Tok::P(">>=") => Some(BinOp::Shr),
            _ => return Ok(lhs),
        };
        let line = self.line();
        self.bump();
        match lhs {
            Expr::Var(_) | Expr::Deref(_) => {}
            _ => return syn(line, "expected a register or `*pointer` on the left of `=`"),
        }
        let rhs = self.assign_expr()?;
        Ok(Expr::Assign(Box::new(lhs), op, Box::new(rhs)))
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let c = self.binary(0)?;
        if self.eat_p("?") {
            let a = self.assign_expr()?;
            self.expect_p(":", "in a conditional expression")?;
            let b = self.assign_expr()?;
            return Ok(Expr::Ternary(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }

    fn binop(&self) -> Option<(BinOp, u8)> {
        Some(match self.peek() {
            Tok::P("||") => (BinOp::LOr, 1),
            Tok::P("&&") => (BinOp::LAnd, 2),
            Tok::P("|") => (BinOp::BitOr, 3),
            Tok::P("^") => (BinOp::BitXor, 4),
            Tok::P("&") => (BinOp::BitAnd, 5),
            Tok::P("==") => (BinOp::Eq, 6),
            Tok::P("!=") => (BinOp::Ne, 6),
            Tok::P("<") => (BinOp::Lt, 7),
            Tok::P("<=") => (BinOp::Le, 7),
            Tok::P(">") => (BinOp::Gt, 7),
            Tok::P(">=") => (BinOp::Ge, 7),
            Tok::P("<<") => (BinOp::Shl, 8),
            Tok::P(">>") => (BinOp::Shr, 8),
            Tok::P("+") => (BinOp::Add, 9),
            Tok::P("-") => (BinOp::Sub, 9),
            Tok::P("*") => (BinOp::Mul, 10),
            Tok::P("/") => (BinOp::Div, 10),
            Tok::P("%") => (BinOp::Rem, 10),
            _ => return None,
        })
    }

    fn binary(&mut self, min: u8) -> PResult<Expr> {
        let saved = self.depth;
        let r = self.binary_chain(min);
        self.depth = saved;
        r
    }

    fn binary_chain(&mut self, min: u8) -> PResult<Expr> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.binop() {
            if prec < min {
                break;
            }
            // each link deepens the (left-leaning) tree
            self.deeper()?;
            self.bump();
            let rhs = self.binary(prec + 1)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.depth >= MAX_DEPTH {
            return syn(self.line(), "expected less deeply nested code");
        }
        self.depth += 1;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> PResult<Expr> {
        let line = self.line();
        match self.peek().clone() {
            Tok::P("*") => {
                self.bump();
                Ok(Expr::Deref(Box::new(self.unary()?)))
            }
            Tok::P("&") => {
                self.bump();
                match self.unary()? {
                    Expr::Var(v) => Ok(Expr::AddrOf(v)),
                    Expr::Deref(e) => Ok(*e),
                    _ => syn(line, "expected a variable name after `&`"),
                }
            }
            Tok::P("!") => {
                self.bump();
                Ok(Expr::Un(UnOp::Not, Box::new(self.unary()?)))
            }
            Tok::P("-") => {
                self.bump();
                Ok(Expr::Un(UnOp::Neg, Box::new(self.unary()?)))
            }
            Tok::P("~") => {
                self.bump();
                Ok(Expr::Un(UnOp::BitNot, Box::new(self.unary()?)))
            }
            Tok::P("+") => {
                self.bump();
                self.unary()
            }
            Tok::P("++") | Tok::P("--") => unsup("`++`/`--`"),
            Tok::P("(") if matches!(self.peek_at(1), Tok::Ident(s) if is_type_word(s)) => {
                // cast
                self.bump();
                self.skip_type();
                while self.eat_p("*") {}
                self.expect_p(")", "to close a cast")?;
                self.unary()
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let e = self.primary()?;
        match self.peek() {
            Tok::P("[") => unsup("array indexing"),
            Tok::P("->") | Tok::P(".") => unsup("struct field access"),
            Tok::P("++") | Tok::P("--") => unsup("`++`/`--`"),
            _ => Ok(e),
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let line = self.line();
        match self.bump() {
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Ident(s) => {
                if self.eat_p("(") {
                    let mut args = Vec::new();
                    if !self.eat_p(")") {
                        loop {
                            args.push(self.assign_expr()?);
                            if self.eat_p(")") {
                                break;
                            }
                            self.expect_p(",", "between call arguments")?;
                        }
                    }
                    Ok(Expr::Call(s, args))
                } else if s == "NULL" || s == "false" {
                    Ok(Expr::Int(0))
                } else if s == "true" {
                    Ok(Expr::Int(1))
                } else {
                    Ok(Expr::Var(s))
                }
            }
            Tok::P("(") => {
                let e = self.expr()?;
                self.expect_p(")", "to close a parenthesis")?;
                Ok(e)
            }
            t => syn(line, format!("expected an expression, found {t}")),
        }
    }

    // ----- final conditions
    fn deeper(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return syn(self.line(), "expected less deeply nested code");
        }
        Ok(())
    }
    fn cond(&mut self) -> PResult<Cond> {
        let saved = self.depth;
        let r = (|| {
            let mut c = self.cond_and()?;
            while self.eat_p("\\/") || self.eat_p("||") {
                self.deeper()?;
                let r = self.cond_and()?;
                c = Cond::Or(Box::new(c), Box::new(r));
            }
            Ok(c)
        })();
        self.depth = saved;
        r
    }
    fn cond_and(&mut self) -> PResult<Cond> {
        let saved = self.depth;
        let r = (|| {
            let mut c = self.cond_impl()?;
            while self.eat_p("/\\") || self.eat_p("&&") {
                self.deeper()?;
                let r = self.cond_impl()?;
                c = Cond::And(Box::new(c), Box::new(r));
            }
            Ok(c)
        })();
        self.depth = saved;
        r
    }
    /// `a => b` (herd7: right-associative, binds tighter than `/\`).
    fn cond_impl(&mut self) -> PResult<Cond> {
        let a = self.cond_atom()?;
        if self.eat_p("=>") {
            self.deeper()?;
            let b = self.cond_impl()?;
            return Ok(Cond::Or(Box::new(Cond::Not(Box::new(a))), Box::new(b)));
        }
        Ok(a)
    }
    fn state_ref(&mut self) -> PResult<StateRef> {
        let line = self.line();
        match self.bump() {
            Tok::Int(t) => {
                self.expect_p(":", "after a thread number")?;
                let r = StateRef::Reg(t as usize, self.expect_ident("a register name")?);
                // `1:r1*` (herd: show the pointed-to value) is shown as the register
                if self.is_p("*") && matches!(self.peek_at(1), Tok::P(";") | Tok::P("]")) {
                    self.bump();
                }
                Ok(r)
            }
            Tok::Ident(s) => Ok(StateRef::Loc(s)),
            Tok::P("*") => Ok(StateRef::Loc(self.expect_ident("a variable name")?)),
            Tok::P("[") => {
                let s = self.expect_ident("a variable name")?;
                self.expect_p("]", "after a variable name")?;
                Ok(StateRef::Loc(s))
            }
            t => syn(
                line,
                format!("expected `N:reg` or a variable name, found {t}"),
            ),
        }
    }
    fn cond_atom(&mut self) -> PResult<Cond> {
        if self.depth >= MAX_DEPTH {
            return syn(self.line(), "expected less deeply nested code");
        }
        self.depth += 1;
        let r = self.cond_atom_inner();
        self.depth -= 1;
        r
    }

    fn cond_atom_inner(&mut self) -> PResult<Cond> {
        let line = self.line();
        if self.eat_p("~")
            || self.eat_p("!")
            || (self.is_ident("not") && matches!(self.peek_at(1), Tok::P("(")))
        {
            if self.is_ident("not") {
                self.bump();
            }
            return Ok(Cond::Not(Box::new(self.cond_atom()?)));
        }
        if self.eat_p("(") {
            let c = self.cond()?;
            self.expect_p(")", "to close a parenthesis in the condition")?;
            return Ok(c);
        }
        if self.is_ident("true") {
            self.bump();
            return Ok(Cond::True);
        }
        if self.is_ident("false") {
            self.bump();
            return Ok(Cond::False);
        }
        let r = self.state_ref()?;
        let ne = match self.bump() {
            Tok::P("=") | Tok::P("==") => false,
            Tok::P("!=") | Tok::P("<>") => true,
            t => return syn(line, format!("expected `=` in the condition, found {t}")),
        };
        if matches!(self.peek(), Tok::Int(_)) && matches!(self.peek_at(1), Tok::P(":")) {
            let r2 = self.state_ref()?;
            return Ok(Cond::EqRef(r, r2, ne));
        }
        let neg = self.eat_p("-");
        let v = match self.bump() {
            Tok::Int(i) => InitVal::Int(if neg { -i } else { i }),
            Tok::Ident(s) if !neg => InitVal::Addr(s),
            t => return syn(self.line(), format!("expected a value, found {t}")),
        };
        Ok(if ne { Cond::Ne(r, v) } else { Cond::Eq(r, v) })
    }
}

/// Extract the `Result:` annotation from the raw text.
pub fn expected_result(src: &str) -> Option<Expected> {
    let idx = src.find("Result:")?;
    let rest = &src[idx + "Result:".len()..];
    let line = rest.lines().next().unwrap_or("");
    let mut words = line
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
        .filter(|w| !w.is_empty());
    let verdict = words.next()?.to_string();
    let datarace = words.any(|w| w == "DATARACE");
    Some(Expected { verdict, datarace })
}

/// Macros of the 6.12 `linux-kernel.def` defined as an expression (no
/// `{ }` body), which herd7 refuses as a statement.
fn is_value_macro(name: &str) -> bool {
    const FIXED: &[&str] = &[
        "READ_ONCE",
        "smp_load_acquire",
        "rcu_dereference",
        "spin_trylock",
        "spin_is_locked",
        "srcu_read_lock",
        "srcu_down_read",
        "atomic_read",
        "atomic_read_acquire",
        "atomic_sub_and_test",
        "atomic_dec_and_test",
        "atomic_inc_and_test",
        "atomic_add_negative",
    ];
    if FIXED.contains(&name) {
        return true;
    }
    let base = ["_relaxed", "_acquire", "_release"]
        .iter()
        .find_map(|sfx| name.strip_suffix(sfx))
        .unwrap_or(name);
    matches!(
        base,
        "xchg"
            | "cmpxchg"
            | "atomic_xchg"
            | "atomic_cmpxchg"
            | "atomic_add_return"
            | "atomic_sub_return"
            | "atomic_inc_return"
            | "atomic_dec_return"
            | "atomic_fetch_add"
            | "atomic_fetch_sub"
            | "atomic_fetch_inc"
            | "atomic_fetch_dec"
    )
}

/// Byte offset of the first `{` of `body` outside `(* *)` comments
/// (`body.len()` if there is none).
fn pre_init_end(body: &str) -> usize {
    let b = body.as_bytes();
    let mut i = 0;
    let mut nest = 0usize;
    while i < b.len() {
        if b[i] == b'(' && b.get(i + 1) == Some(&b'*') {
            nest += 1;
            i += 2;
            continue;
        }
        if nest > 0 && b[i] == b'*' && b.get(i + 1) == Some(&b')') {
            nest -= 1;
            i += 2;
            continue;
        }
        if nest == 0 && b[i] == b'{' {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Parse a litmus test.  `Err` carries the line and what was expected.
pub fn parse(src: &str) -> Result<Test, LitmusError> {
    // Header: first non-blank line, `C name`.
    let mut first = 0;
    let mut header = "";
    for (i, l) in src.lines().enumerate() {
        if !l.trim().is_empty() {
            first = i;
            header = l.trim();
            break;
        }
    }
    if header.is_empty() {
        return syn(1, "expected a header line `C <name>`, found an empty file");
    }
    let mut hw = header.splitn(2, char::is_whitespace);
    let arch = hw.next().unwrap_or("");
    // herd7 (splitter.mll): the name is one word; `(texname)` or a doc
    // string may follow it.
    let name = hw
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    if arch == "LISA" {
        let c = crate::lisa::to_c(src)?;
        return match parse(&c) {
            Err(LitmusError::Syntax { line, msg }) => Err(LitmusError::Syntax {
                line: 0,
                msg: format!("{msg} (line {line} of the LISA test translated to C)"),
            }),
            r => r,
        };
    }
    if arch != "C" {
        if !arch.is_empty()
            && arch.chars().all(|c| c.is_ascii_alphanumeric())
            && arch.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        {
            return unsup(format!("{arch} litmus test (only C tests are checked)"));
        }
        return syn(
            first + 1,
            format!("expected a header line `C <name>`, found `{header}`"),
        );
    }
    if name.is_empty() {
        return syn(first + 1, "expected a test name after `C`");
    }
    // Body starts on the line after the header.
    let mut off = 0;
    for (i, l) in src.split_inclusive('\n').enumerate() {
        off += l.len();
        if i == first {
            break;
        }
    }
    let body = &src[off.min(src.len())..];
    // Between the header and the initial state herd7 (splitter.mll,
    // `find_init`) skips everything up to the first `{` outside `(* *)`
    // comments: `key=value` metadata (`Cycle=...`), a doc string, free text
    // such as a second `C name` line.  Blank it, keeping the line numbers.
    let pre_end = pre_init_end(body);
    let mut cleaned = String::with_capacity(body.len());
    for c in body[..pre_end].chars() {
        cleaned.push(if c == '\n' { '\n' } else { ' ' });
    }
    cleaned.push_str(&body[pre_end..]);
    let toks = lex(&cleaned, first + 2)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    while matches!(p.peek(), Tok::Str) {
        p.bump();
    }
    let init = if p.is_p("{") {
        p.init_block()?
    } else {
        return syn(
            p.line(),
            format!(
                "expected `{{` to open the initial state, found {}",
                p.peek()
            ),
        );
    };
    let mut threads: Vec<Thread> = Vec::new();
    let mut locations = Vec::new();
    let mut filter = None;
    let mut quant = None;
    loop {
        let line = p.line();
        match p.peek().clone() {
            Tok::Eof => break,
            Tok::P(";") => {
                p.bump();
            }
            // herd7 accepts `void P0(...)` (and `void *P0(...)`)
            Tok::Ident(s) if s == "void" => {
                p.bump();
                p.eat_p("*");
            }
            Tok::Ident(s)
                if s.starts_with('P')
                    && s.len() > 1
                    && s[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                if quant.is_some() {
                    return syn(line, "expected end of file after the final condition");
                }
                p.bump();
                let t = p.thread(&s)?;
                if threads.iter().any(|u| u.id == t.id) {
                    return syn(
                        line,
                        format!("expected distinct thread names, found {s} twice"),
                    );
                }
                threads.push(t);
            }
            Tok::Ident(s) if s == "locations" => {
                p.bump();
                p.expect_p("[", "after `locations`")?;
                loop {
                    if p.eat_p("]") {
                        break;
                    }
                    if p.eat_p(";") {
                        continue;
                    }
                    locations.push(p.state_ref()?);
                }
            }
            Tok::Ident(s) if s == "filter" => {
                p.bump();
                filter = Some(p.cond()?);
            }
            Tok::Ident(s) if s == "exists" || s == "forall" => {
                p.bump();
                if quant.is_some() {
                    return syn(line, "expected only one final condition");
                }
                quant = Some((
                    if s == "exists" {
                        Quantifier::Exists
                    } else {
                        Quantifier::Forall
                    },
                    p.cond()?,
                ));
            }
            Tok::P("~") if matches!(p.peek_at(1), Tok::Ident(s) if s == "exists") => {
                p.bump();
                p.bump();
                if quant.is_some() {
                    return syn(line, "expected only one final condition");
                }
                quant = Some((Quantifier::NotExists, p.cond()?));
            }
            t => {
                return syn(
                    line,
                    format!(
                    "expected a thread `P<n>(...)`, `locations`, `filter` or `exists`, found {t}"
                ),
                )
            }
        }
    }
    let (quantifier, cond) = match quant {
        Some(q) => q,
        // herd7 reads a test without a final condition as `forall (true)`
        // (e.g. manual/locked/self-deadlock.litmus)
        None => (Quantifier::Forall, Cond::True),
    };
    if threads.is_empty() {
        return syn(p.line(), "expected at least one thread `P0(...) { ... }`");
    }
    threads.sort_by_key(|t| t.id);
    for (i, t) in threads.iter().enumerate() {
        if t.id != i {
            return syn(
                1,
                format!(
                    "expected threads numbered P0..P{}, found P{}",
                    threads.len() - 1,
                    t.id
                ),
            );
        }
    }
    Ok(Test {
        name,
        init,
        threads,
        locations,
        filter,
        quantifier,
        cond,
        expected: expected_result(src),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mp() {
        let src = "C MP\n(* Result: Never *)\n{}\nP0(int *x, int *y)\n{\n\tWRITE_ONCE(*x, 1);\n\tsmp_store_release(y, 1);\n}\n\nP1(int *x, int *y)\n{\n\tint r0;\n\tint r1;\n\tr0 = smp_load_acquire(y);\n\tr1 = READ_ONCE(*x);\n}\nexists (1:r0=1 /\\ 1:r1=0)\n";
        let t = parse(src).unwrap();
        assert_eq!(t.name, "MP");
        assert_eq!(t.threads.len(), 2);
        assert_eq!(t.expected.unwrap().verdict, "Never");
    }

    #[test]
    fn syntax_error_has_line() {
        let src = "C X\n{}\nP0(int *x)\n{\n\tWRITE_ONCE(*x, 1)\n}\nexists (x=1)\n";
        match parse(src) {
            Err(LitmusError::Syntax { line, msg }) => {
                assert_eq!(line, 6);
                assert!(msg.contains("expected `;`"), "{msg}");
            }
            r => panic!("{r:?}"),
        }
    }
}
