//! Thread semantics: turns each thread's C code into the set of its possible
//! event sequences ("paths"), one per choice of the values its reads return.
//!
//! Values a read may return are drawn from an over-approximation of the
//! values ever written to its location (a fixpoint over all threads); the
//! candidate-execution enumeration later keeps only reads that actually have
//! a matching write (`rf`).  Dependencies (`addr`, `data`, `ctrl`) are tracked
//! syntactically through registers, as herd7 does.

use crate::parse::{BinOp, Expr, InitVal, LitmusError, StateRef, Stmt, Test, UnOp};
use std::collections::{BTreeSet, HashMap};

/// A value: an integer, or (encoded) the address of a shared location.
pub type Val = i64;

const ADDR_BASE: i64 = 1 << 48;
const ADDR_STRIDE: i64 = 1 << 20;

/// The value of the address of location `loc`.
pub fn addr_val(loc: usize) -> Val {
    ADDR_BASE + loc as i64 * ADDR_STRIDE
}

/// If `v` is an address plus a non-zero offset (pointer arithmetic), the
/// location and the offset.
pub fn near_loc(v: Val) -> Option<(usize, i64)> {
    let rel = v.checked_sub(ADDR_BASE - ADDR_STRIDE / 2)?;
    if rel < 0 {
        return None;
    }
    let l = rel / ADDR_STRIDE;
    let off = v - addr_val(l as usize);
    (off != 0).then_some((l as usize, off))
}

/// A self-justified ("out-of-thin-air") value: what a read returns in a
/// candidate execution where its value comes only from a cycle of copies
/// (`r1 = *x; *y = r1;` against `r2 = *y; *x = r2;`, each read reading from
/// the other thread's write).  herd7 solves a candidate's value equations by
/// unification and keeps such a cycle as one free symbol (`S8` in its
/// output), different from every constant; an operation on it (arithmetic,
/// a comparison, a branch, an address) leaves an equation it cannot solve,
/// and herd7 drops the candidate.  Here: a distinguished value that only
/// reads of locations on a cycle of copies may return, that only copies
/// propagate, and on which every operation makes the path infeasible.
pub const SYM: Val = i64::MIN + 0x0053_594d;

/// Whether `v` is a self-justified symbol: [`SYM`] (`S1`), or `SYM + k`
/// (`S(k+1)`), the k-th of several independent cycles in one final state.
pub fn is_sym(v: Val) -> bool {
    (SYM..SYM + 64).contains(&v)
}

/// If `v` is the address of a location, that location.
pub fn as_loc(v: Val) -> Option<usize> {
    if v >= ADDR_BASE && (v - ADDR_BASE) % ADDR_STRIDE == 0 {
        Some(((v - ADDR_BASE) / ADDR_STRIDE) as usize)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    R,
    W,
    F,
    /// spin_lock read part
    Lkr,
    /// spin_lock write part
    Lkw,
    Ul,
    /// failed spin_trylock
    Lf,
    /// spin_is_locked() returning true
    Rl,
    /// spin_is_locked() returning false
    Ru,
    SrcuLock,
    SrcuUnlock,
    SyncSrcu,
}

impl Kind {
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Kind::R | Kind::Lkr | Kind::Lf | Kind::Rl | Kind::Ru | Kind::SrcuLock
        )
    }
    pub fn is_write(self) -> bool {
        matches!(self, Kind::W | Kind::Lkw | Kind::Ul | Kind::SrcuUnlock)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fence {
    Mb,
    Rmb,
    Wmb,
    Barrier,
    RcuLock,
    RcuUnlock,
    SyncRcu,
    BeforeAtomic,
    AfterAtomic,
    AfterSpinlock,
    AfterUnlockLock,
    AfterSrcuReadUnlock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ann {
    Plain,
    Once,
    Acquire,
    Release,
    Noreturn,
}

/// One event of a thread path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ev {
    pub kind: Kind,
    pub fence: Option<Fence>,
    /// location index, `usize::MAX` for fences
    pub loc: usize,
    pub val: Val,
    pub ann: Ann,
    /// This read is the read half of an RMW whose write is the next event.
    pub rmw_read: bool,
    /// Belongs to an RMW instruction (including failed cmpxchg).
    pub rmw_instr: bool,
    /// Thread-local dependency masks (bit i = i-th event of the path).
    pub addr: u64,
    pub data: u64,
    pub ctrl: u64,
    /// RMW write whose value is computed from the value its read returned
    /// (`atomic_add`, ...; not `xchg`, whose write ignores it).
    pub uses_old: bool,
}

/// One possible execution of one thread.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    pub evs: Vec<Ev>,
    pub regs: Vec<(String, Val)>,
    /// The thread stopped here on something the checker does not model
    /// (e.g. an access through `y + r2`); `evs` is the prefix up to it.  If
    /// an execution containing this prefix is allowed, the test is
    /// reported unsupported (never decided without the rest of the thread).
    pub stuck: Option<String>,
}

/// The test's shared locations.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    pub names: Vec<String>,
    pub index: HashMap<String, usize>,
    pub init: Vec<Val>,
    /// location is used as a spinlock
    pub is_lock: Vec<bool>,
}

impl Globals {
    fn add(&mut self, n: &str) -> usize {
        if let Some(&i) = self.index.get(n) {
            return i;
        }
        let i = self.names.len();
        self.names.push(n.to_string());
        self.index.insert(n.to_string(), i);
        self.init.push(0);
        self.is_lock.push(false);
        i
    }

    /// Format a value, naming addresses.
    pub fn show(&self, v: Val) -> String {
        if is_sym(v) {
            return format!("S{}", v - SYM + 1);
        }
        match as_loc(v) {
            Some(l) if l < self.names.len() => self.names[l].clone(),
            _ => v.to_string(),
        }
    }
}

fn collect_expr(e: &Expr, g: &mut Globals) {
    match e {
        Expr::AddrOf(n) => {
            g.add(n);
        }
        Expr::Deref(a) | Expr::Un(_, a) => collect_expr(a, g),
        Expr::Bin(_, a, b) | Expr::Assign(a, _, b) => {
            collect_expr(a, g);
            collect_expr(b, g);
        }
        Expr::Ternary(a, b, c) => {
            collect_expr(a, g);
            collect_expr(b, g);
            collect_expr(c, g);
        }
        Expr::Call(_, args) => args.iter().for_each(|a| collect_expr(a, g)),
        Expr::Int(_) | Expr::Var(_) => {}
    }
}

fn collect_stmt(s: &Stmt, g: &mut Globals) {
    match s {
        Stmt::Decl(d) => d
            .iter()
            .flat_map(|(_, e)| e)
            .for_each(|e| collect_expr(e, g)),
        Stmt::Expr(e) => collect_expr(e, g),
        Stmt::If(c, t, e) => {
            collect_expr(c, g);
            collect_stmt(t, g);
            if let Some(e) = e {
                collect_stmt(e, g);
            }
        }
        Stmt::Block(v) => v.iter().for_each(|s| collect_stmt(s, g)),
    }
}

/// Build the table of shared locations with their initial values.
pub fn globals(t: &Test) -> Globals {
    let mut g = Globals::default();
    for (r, v) in &t.init {
        if let StateRef::Loc(n) = r {
            g.add(n);
        }
        if let InitVal::Addr(a) = v {
            g.add(a);
        }
    }
    for th in &t.threads {
        for p in &th.params {
            g.add(p);
        }
    }
    for th in &t.threads {
        th.body.iter().for_each(|s| collect_stmt(s, &mut g));
    }
    let mut refs = Vec::new();
    t.cond.refs(&mut refs);
    if let Some(f) = &t.filter {
        f.refs(&mut refs);
    }
    refs.extend(t.locations.iter().cloned());
    for r in &refs {
        if let StateRef::Loc(n) = r {
            g.add(n);
        }
    }
    let mut vals = Vec::new();
    t.cond.values(&mut vals);
    for v in vals {
        g.add(&v);
    }
    for (r, v) in &t.init {
        if let StateRef::Loc(n) = r {
            let i = g.index[n];
            g.init[i] = init_val(&g, v);
        }
    }
    g
}

/// Value of an initializer.
pub fn init_val(g: &Globals, v: &InitVal) -> Val {
    match v {
        InitVal::Int(i) => *i,
        InitVal::Addr(a) => g.index.get(a).map(|&l| addr_val(l)).unwrap_or(0),
    }
}

impl crate::parse::Cond {
    fn values(&self, out: &mut Vec<String>) {
        use crate::parse::Cond::*;
        match self {
            True | False => {}
            Eq(_, InitVal::Addr(a)) | Ne(_, InitVal::Addr(a)) => out.push(a.clone()),
            Eq(..) | Ne(..) | EqRef(..) => {}
            Not(c) => c.values(out),
            And(a, b) | Or(a, b) => {
                a.values(out);
                b.values(out);
            }
        }
    }
}

/// Why a path was abandoned.
enum Stop {
    /// Infeasible with these value choices (e.g. dereferencing a non-pointer).
    Infeasible,
    /// A construct not modelled, reached with these value choices: the
    /// path is kept as a prefix, see [`Path::stuck`].
    Stuck(String),
    Err(LitmusError),
}

impl From<LitmusError> for Stop {
    fn from(e: LitmusError) -> Self {
        Stop::Err(e)
    }
}

fn unsup<T>(s: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Err(LitmusError::Unsupported(s.into())))
}

struct Interp<'a> {
    g: &'a Globals,
    /// Values this thread's reads of each location may return from other
    /// sources than its own po-earlier writes: the initial value, what the
    /// other threads may write (and, in the literal pass, the literals).
    domains: &'a [Vec<Val>],
    choices: Vec<usize>,
    limits: Vec<usize>,
    pos: usize,
    evs: Vec<Ev>,
    regs: HashMap<String, (Val, u64)>,
    reg_order: Vec<String>,
    ctrl: u64,
}

#[derive(Clone, Copy)]
enum Order {
    Relaxed,
    Acquire,
    Release,
    Full,
}

impl<'a> Interp<'a> {
    fn choose(&mut self, n: usize) -> Result<usize, Stop> {
        if n == 0 {
            return Err(Stop::Infeasible);
        }
        if self.pos >= self.choices.len() {
            self.choices.push(0);
        }
        if self.pos >= self.limits.len() {
            self.limits.push(n);
        }
        let c = self.choices[self.pos];
        self.limits[self.pos] = n;
        self.pos += 1;
        Ok(c.min(n - 1))
    }

    fn push(&mut self, ev: Ev) -> Result<u64, Stop> {
        if self.evs.len() >= 64 {
            return unsup("more than 64 events in one thread");
        }
        self.evs.push(ev);
        Ok(1u64 << (self.evs.len() - 1))
    }

    fn ev(&self, kind: Kind, loc: usize, val: Val, ann: Ann, addr: u64, data: u64) -> Ev {
        Ev {
            kind,
            fence: None,
            loc,
            val,
            ann,
            rmw_read: false,
            rmw_instr: false,
            addr,
            data,
            ctrl: self.ctrl,
            uses_old: false,
        }
    }

    fn fence(&mut self, f: Fence) -> Result<(), Stop> {
        let mut e = self.ev(Kind::F, usize::MAX, 0, Ann::Once, 0, 0);
        e.fence = Some(f);
        self.push(e)?;
        Ok(())
    }

    /// The path run so far, with the final register values.
    fn path(&self, stuck: Option<String>) -> Path {
        Path {
            evs: self.evs.clone(),
            regs: self
                .reg_order
                .iter()
                .map(|r| (r.clone(), self.regs[r].0))
                .collect(),
            stuck,
        }
    }

    /// Values a read of `loc` may return here: the thread's domain plus its
    /// own po-earlier writes to `loc` (never a po-later one: a read from a
    /// po-later write of the same thread breaks coherence), sorted.
    fn candidates(&self, loc: usize) -> Vec<Val> {
        let mut v = self.domains[loc].clone();
        for e in &self.evs {
            if e.kind.is_write() && e.loc == loc && !v.contains(&e.val) {
                v.push(e.val);
            }
        }
        v.sort_unstable();
        v
    }

    fn read(&mut self, loc: usize, ann: Ann, kind: Kind, adeps: u64) -> Result<(Val, u64), Stop> {
        let mut dom = self.candidates(loc);
        if kind != Kind::R {
            dom.retain(|&v| v != SYM);
        }
        let c = self.choose(dom.len())?;
        let v = dom[c];
        let bit = self.push(self.ev(kind, loc, v, ann, adeps, 0))?;
        Ok((v, bit))
    }

    fn write(
        &mut self,
        loc: usize,
        v: Val,
        ann: Ann,
        kind: Kind,
        adeps: u64,
        ddeps: u64,
    ) -> Result<(), Stop> {
        self.push(self.ev(kind, loc, v, ann, adeps, ddeps))?;
        Ok(())
    }

    /// Read-modify-write.  `f(old)` gives `Some(new)` on success.
    /// Returns (old, new-or-old, read bit).
    /// `uses_old`: the operation computes with the old value (everything but
    /// `xchg`), so a self-justified old value makes the path infeasible.
    #[allow(clippy::too_many_arguments)]
    fn rmw(
        &mut self,
        loc: usize,
        ord: Order,
        noreturn: bool,
        uses_old: bool,
        adeps: u64,
        ddeps: u64,
        f: &dyn Fn(Val) -> Option<Val>,
    ) -> Result<(Val, Val, u64), Stop> {
        let dom = self.candidates(loc);
        let c = self.choose(dom.len())?;
        let old = dom[c];
        if uses_old && old == SYM {
            return Err(Stop::Infeasible);
        }
        match f(old) {
            Some(new) => {
                if let Order::Full = ord {
                    self.fence(Fence::Mb)?;
                }
                let rann = if noreturn {
                    Ann::Noreturn
                } else if let Order::Acquire = ord {
                    Ann::Acquire
                } else {
                    Ann::Once
                };
                let wann = if let Order::Release = ord {
                    Ann::Release
                } else {
                    Ann::Once
                };
                let mut r = self.ev(Kind::R, loc, old, rann, adeps, 0);
                r.rmw_read = true;
                r.rmw_instr = true;
                let bit = self.push(r)?;
                let mut w = self.ev(Kind::W, loc, new, wann, adeps, ddeps);
                w.rmw_instr = true;
                w.uses_old = uses_old;
                self.push(w)?;
                if let Order::Full = ord {
                    self.fence(Fence::Mb)?;
                }
                Ok((old, new, bit))
            }
            None => {
                let mut r = self.ev(Kind::R, loc, old, Ann::Once, adeps, 0);
                r.rmw_instr = true;
                let bit = self.push(r)?;
                Ok((old, old, bit))
            }
        }
    }

    fn loc_of(&self, v: Val) -> Result<usize, Stop> {
        match as_loc(v) {
            Some(l) if l < self.g.names.len() => Ok(l),
            _ => match near_loc(v) {
                // herd7 treats `&y + k` as one more location; not modelled here
                Some((l, off)) if l < self.g.names.len() => Err(Stop::Stuck(format!(
                    "pointer arithmetic on a shared location (access to `{}{off:+}`)",
                    self.g.names[l]
                ))),
                _ => Err(Stop::Infeasible),
            },
        }
    }

    /// Address designated by an lvalue argument (`*p` or a bare variable name).
    fn lvalue(&mut self, e: &Expr) -> Result<(usize, u64), Stop> {
        match e {
            Expr::Deref(p) => {
                let (v, d) = self.eval(p)?;
                Ok((self.loc_of(v)?, d))
            }
            Expr::Var(n) if !self.regs.contains_key(n) => match self.g.index.get(n) {
                Some(&l) => Ok((l, 0)),
                None => unsup(format!("undeclared variable `{n}`")),
            },
            _ => unsup("access through a non-pointer expression"),
        }
    }

    /// Address designated by a pointer argument (`x`, `&x`, a register).
    fn pointer(&mut self, e: &Expr) -> Result<(usize, u64), Stop> {
        let (v, d) = self.eval(e)?;
        Ok((self.loc_of(v)?, d))
    }

    fn args<'e>(&self, name: &str, args: &'e [Expr], n: usize) -> Result<&'e [Expr], Stop> {
        if args.len() != n {
            return Err(Stop::Err(LitmusError::Syntax {
                line: 0,
                msg: format!("expected {n} argument(s) to `{name}`, found {}", args.len()),
            }));
        }
        Ok(args)
    }

    fn eval(&mut self, e: &Expr) -> Result<(Val, u64), Stop> {
        match e {
            Expr::Int(i) => Ok((*i, 0)),
            Expr::Var(n) => {
                if let Some(&(v, d)) = self.regs.get(n) {
                    Ok((v, d))
                } else if let Some(&l) = self.g.index.get(n) {
                    Ok((addr_val(l), 0))
                } else {
                    unsup(format!("undeclared variable `{n}`"))
                }
            }
            Expr::AddrOf(n) => match self.g.index.get(n) {
                Some(&l) => Ok((addr_val(l), 0)),
                None => unsup(format!("address of non-shared variable `{n}`")),
            },
            Expr::Deref(p) => {
                let (v, d) = self.eval(p)?;
                let l = self.loc_of(v)?;
                if self.g.is_lock[l] {
                    return unsup("plain access to a spinlock");
                }
                self.read(l, Ann::Plain, Kind::R, d)
            }
            Expr::Un(op, a) => {
                let (v, d) = self.eval(a)?;
                no_sym(&[v])?;
                let r = match op {
                    UnOp::Not => (v == 0) as Val,
                    UnOp::Neg => v.wrapping_neg(),
                    UnOp::BitNot => !v,
                };
                Ok((r, d))
            }
            Expr::Bin(op, a, b) => {
                let (x, da) = self.eval(a)?;
                no_sym(&[x])?;
                if matches!(op, BinOp::LAnd | BinOp::LOr) {
                    let short = (*op == BinOp::LAnd && x == 0) || (*op == BinOp::LOr && x != 0);
                    if short {
                        return Ok(((*op == BinOp::LOr) as Val, da));
                    }
                    let (y, db) = self.eval(b)?;
                    no_sym(&[y])?;
                    return Ok(((y != 0) as Val, da | db));
                }
                let (y, db) = self.eval(b)?;
                no_sym(&[y])?;
                let r = match op {
                    BinOp::Add => x.wrapping_add(y),
                    BinOp::Sub => x.wrapping_sub(y),
                    BinOp::Mul => x.wrapping_mul(y),
                    BinOp::Div => {
                        if y == 0 {
                            return Err(Stop::Infeasible);
                        }
                        x.wrapping_div(y)
                    }
                    BinOp::Rem => {
                        if y == 0 {
                            return Err(Stop::Infeasible);
                        }
                        x.wrapping_rem(y)
                    }
                    BinOp::Shl => x.wrapping_shl(y as u32),
                    BinOp::Shr => x.wrapping_shr(y as u32),
                    BinOp::Lt => (x < y) as Val,
                    BinOp::Le => (x <= y) as Val,
                    BinOp::Gt => (x > y) as Val,
                    BinOp::Ge => (x >= y) as Val,
                    BinOp::Eq => (x == y) as Val,
                    BinOp::Ne => (x != y) as Val,
                    BinOp::BitAnd => x & y,
                    BinOp::BitXor => x ^ y,
                    BinOp::BitOr => x | y,
                    BinOp::LAnd | BinOp::LOr => unreachable!("handled above"),
                };
                Ok((r, da | db))
            }
            Expr::Ternary(c, a, b) => {
                let (v, d) = self.eval(c)?;
                no_sym(&[v])?;
                let (r, d2) = if v != 0 { self.eval(a)? } else { self.eval(b)? };
                Ok((r, d | d2))
            }
            Expr::Assign(lhs, op, rhs) => {
                let (mut v, mut d) = self.eval(rhs)?;
                match &**lhs {
                    Expr::Var(n) => {
                        if let Some(op) = op {
                            let (old, od) = self.eval(lhs)?;
                            v = binop(*op, old, v)?;
                            d |= od;
                        }
                        if !self.regs.contains_key(n) {
                            self.reg_order.push(n.clone());
                        }
                        self.regs.insert(n.clone(), (v, d));
                    }
                    Expr::Deref(p) => {
                        let (pv, pd) = self.eval(p)?;
                        let l = self.loc_of(pv)?;
                        if let Some(op) = op {
                            let (old, od) = self.read(l, Ann::Plain, Kind::R, pd)?;
                            v = binop(*op, old, v)?;
                            d |= od;
                        }
                        self.write(l, v, Ann::Plain, Kind::W, pd, d)?;
                    }
                    _ => unsup("assignment to a non-lvalue")?,
                }
                Ok((v, d))
            }
            Expr::Call(name, args) => self.call(name, args),
        }
    }

    fn call(&mut self, name: &str, args: &[Expr]) -> Result<(Val, u64), Stop> {
        let n = name;
        // fences
        let fence = match n {
            "smp_mb" => Some(Fence::Mb),
            "smp_rmb" => Some(Fence::Rmb),
            "smp_wmb" => Some(Fence::Wmb),
            "barrier" => Some(Fence::Barrier),
            "smp_mb__before_atomic" => Some(Fence::BeforeAtomic),
            "smp_mb__after_atomic" => Some(Fence::AfterAtomic),
            "smp_mb__after_spinlock" => Some(Fence::AfterSpinlock),
            "smp_mb__after_unlock_lock" => Some(Fence::AfterUnlockLock),
            "smp_mb__after_srcu_read_unlock" => Some(Fence::AfterSrcuReadUnlock),
            "rcu_read_lock" => Some(Fence::RcuLock),
            "rcu_read_unlock" => Some(Fence::RcuUnlock),
            "synchronize_rcu" | "synchronize_rcu_expedited" => Some(Fence::SyncRcu),
            _ => None,
        };
        if let Some(f) = fence {
            self.args(n, args, 0)?;
            self.fence(f)?;
            return Ok((0, 0));
        }
        match n {
            "READ_ONCE" | "rcu_dereference" | "rcu_dereference_raw" | "rcu_access_pointer" => {
                let a = self.args(n, args, 1)?;
                let (l, d) = self.lvalue(&a[0])?;
                self.check_not_lock(l)?;
                self.read(l, Ann::Once, Kind::R, d)
            }
            "WRITE_ONCE" | "rcu_assign_pointer" | "smp_store_mb" => {
                let a = self.args(n, args, 2)?;
                let (l, ad) = self.lvalue(&a[0])?;
                self.check_not_lock(l)?;
                let (v, dd) = self.eval(&a[1])?;
                let ann = if n == "rcu_assign_pointer" {
                    Ann::Release
                } else {
                    Ann::Once
                };
                self.write(l, v, ann, Kind::W, ad, dd)?;
                if n == "smp_store_mb" {
                    self.fence(Fence::Mb)?;
                }
                Ok((v, dd))
            }
            "smp_load_acquire" | "atomic_read_acquire" | "atomic_read" => {
                let a = self.args(n, args, 1)?;
                let (l, d) = self.pointer(&a[0])?;
                self.check_not_lock(l)?;
                let ann = if n == "atomic_read" {
                    Ann::Once
                } else {
                    Ann::Acquire
                };
                self.read(l, ann, Kind::R, d)
            }
            "smp_store_release" | "atomic_set_release" | "atomic_set" => {
                let a = self.args(n, args, 2)?;
                let (l, ad) = self.pointer(&a[0])?;
                self.check_not_lock(l)?;
                let (v, dd) = self.eval(&a[1])?;
                let ann = if n == "atomic_set" {
                    Ann::Once
                } else {
                    Ann::Release
                };
                self.write(l, v, ann, Kind::W, ad, dd)?;
                Ok((v, dd))
            }
            "spin_lock" | "spin_unlock" | "spin_trylock" | "spin_is_locked" => {
                let a = self.args(n, args, 1)?;
                let (l, ad) = self.pointer(&a[0])?;
                if !self.g.is_lock[l] {
                    return unsup("spinlock operation on a location also used as data");
                }
                match n {
                    "spin_lock" => {
                        self.lock(l, ad)?;
                        Ok((0, 0))
                    }
                    "spin_unlock" => {
                        self.write(l, 0, Ann::Release, Kind::Ul, ad, 0)?;
                        Ok((0, 0))
                    }
                    "spin_trylock" => {
                        if self.choose(2)? == 0 {
                            self.lock(l, ad)?;
                            Ok((1, 0))
                        } else {
                            let b = self.push(self.ev(Kind::Lf, l, 1, Ann::Once, ad, 0))?;
                            Ok((0, b))
                        }
                    }
                    _ => {
                        if self.choose(2)? == 0 {
                            let b = self.push(self.ev(Kind::Rl, l, 1, Ann::Once, ad, 0))?;
                            Ok((1, b))
                        } else {
                            let b = self.push(self.ev(Kind::Ru, l, 0, Ann::Once, ad, 0))?;
                            Ok((0, b))
                        }
                    }
                }
            }
            "srcu_read_lock" | "srcu_down_read" => {
                let a = self.args(n, args, 1)?;
                let (l, ad) = self.pointer(&a[0])?;
                self.read(l, Ann::Once, Kind::SrcuLock, ad)
            }
            "srcu_read_unlock" | "srcu_up_read" => {
                let a = self.args(n, args, 2)?;
                let (l, ad) = self.pointer(&a[0])?;
                let (v, dd) = self.eval(&a[1])?;
                self.write(l, v, Ann::Once, Kind::SrcuUnlock, ad, dd)?;
                Ok((0, 0))
            }
            "synchronize_srcu" | "synchronize_srcu_expedited" => {
                let a = self.args(n, args, 1)?;
                let (l, ad) = self.pointer(&a[0])?;
                self.push(self.ev(Kind::SyncSrcu, l, 0, Ann::Once, ad, 0))?;
                Ok((0, 0))
            }
            "atomic_add_unless" => {
                let a = self.args(n, args, 3)?;
                let (l, ad) = self.pointer(&a[0])?;
                let (x, dx) = self.eval(&a[1])?;
                let (u, du) = self.eval(&a[2])?;
                no_sym(&[x, u])?;
                let (old, _, bit) = self.rmw(l, Order::Full, false, true, ad, dx | du, &|o| {
                    if o != u {
                        Some(o.wrapping_add(x))
                    } else {
                        None
                    }
                })?;
                Ok(((old != u) as Val, bit))
            }
            _ => self.atomic(n, args),
        }
    }

    fn check_not_lock(&self, l: usize) -> Result<(), Stop> {
        if self.g.is_lock[l] {
            return unsup("ordinary access to a spinlock");
        }
        Ok(())
    }

    fn lock(&mut self, l: usize, ad: u64) -> Result<(), Stop> {
        let mut r = self.ev(Kind::Lkr, l, 0, Ann::Acquire, ad, 0);
        r.rmw_read = true;
        self.push(r)?;
        self.write(l, 1, Ann::Once, Kind::Lkw, ad, 0)
    }

    /// `xchg`, `cmpxchg` and `atomic_*` families.
    fn atomic(&mut self, n: &str, args: &[Expr]) -> Result<(Val, u64), Stop> {
        let (base, ord) = if let Some(b) = n.strip_suffix("_relaxed") {
            (b, Order::Relaxed)
        } else if let Some(b) = n.strip_suffix("_acquire") {
            (b, Order::Acquire)
        } else if let Some(b) = n.strip_suffix("_release") {
            (b, Order::Release)
        } else {
            (n, Order::Full)
        };
        let base = base
            .strip_prefix("atomic_")
            .map(|b| (b, true))
            .unwrap_or((base, false));
        let (op, is_atomic) = base;
        let explicit = !matches!(ord, Order::Full);
        match (op, is_atomic) {
            ("xchg", _) => {
                let a = self.args(n, args, 2)?;
                let (l, ad) = self.pointer(&a[0])?;
                let (v, dv) = self.eval(&a[1])?;
                self.check_not_lock(l)?;
                let (old, _, bit) = self.rmw(l, ord, false, false, ad, dv, &|_| Some(v))?;
                Ok((old, bit))
            }
            ("cmpxchg", _) => {
                let a = self.args(n, args, 3)?;
                let (l, ad) = self.pointer(&a[0])?;
                let (o, dol) = self.eval(&a[1])?;
                let (v, dv) = self.eval(&a[2])?;
                self.check_not_lock(l)?;
                no_sym(&[o])?;
                let (old, _, bit) = self.rmw(l, ord, false, true, ad, dv | dol, &|x| {
                    if x == o {
                        Some(v)
                    } else {
                        None
                    }
                })?;
                Ok((old, bit))
            }
            ("add" | "sub" | "inc" | "dec", true) if !explicit => {
                // no return value: R[noreturn] ->rmw W[once], no fences
                let (l, ad, x, dx) = self.op_args(n, op, args)?;
                self.rmw(l, Order::Relaxed, true, true, ad, dx, &|o| {
                    Some(o.wrapping_add(x))
                })?;
                Ok((0, 0))
            }
            (
                "add_return" | "sub_return" | "inc_return" | "dec_return" | "fetch_add"
                | "fetch_sub" | "fetch_inc" | "fetch_dec",
                true,
            ) => {
                let fetch = op.starts_with("fetch_");
                let core = op.trim_start_matches("fetch_").trim_end_matches("_return");
                let (l, ad, x, dx) = self.op_args(n, core, args)?;
                let (old, new, bit) =
                    self.rmw(l, ord, false, true, ad, dx, &|o| Some(o.wrapping_add(x)))?;
                Ok((if fetch { old } else { new }, bit | dx))
            }
            ("sub_and_test" | "dec_and_test" | "inc_and_test" | "add_negative", true)
                if !explicit =>
            {
                let core = match op {
                    "sub_and_test" => "sub",
                    "dec_and_test" => "dec",
                    "inc_and_test" => "inc",
                    _ => "add",
                };
                let (l, ad, x, dx) = self.op_args(n, core, args)?;
                let (_, new, bit) = self.rmw(l, Order::Full, false, true, ad, dx, &|o| {
                    Some(o.wrapping_add(x))
                })?;
                let r = if op == "add_negative" {
                    new < 0
                } else {
                    new == 0
                };
                Ok((r as Val, bit | dx))
            }
            _ => unsup(format!("call to `{n}`")),
        }
    }

    /// Arguments of an arithmetic atomic: returns (loc, addr deps, signed delta, data deps).
    fn op_args(
        &mut self,
        n: &str,
        core: &str,
        args: &[Expr],
    ) -> Result<(usize, u64, Val, u64), Stop> {
        let (l, ad, x, dx) = match core {
            "inc" | "dec" => {
                let a = self.args(n, args, 1)?;
                let (l, ad) = self.pointer(&a[0])?;
                (l, ad, 1, 0)
            }
            _ => {
                let a = self.args(n, args, 2)?;
                let (x, dx) = self.eval(&a[0])?;
                let (l, ad) = self.pointer(&a[1])?;
                (l, ad, x, dx)
            }
        };
        self.check_not_lock(l)?;
        no_sym(&[x])?;
        let x = if core == "sub" || core == "dec" {
            x.wrapping_neg()
        } else {
            x
        };
        Ok((l, ad, x, dx))
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), Stop> {
        match s {
            Stmt::Decl(ds) => {
                for (name, init) in ds {
                    // in scope (uninitialised: 0) within its own initializer
                    if !self.regs.contains_key(name) {
                        self.regs.insert(name.clone(), (0, 0));
                        self.reg_order.push(name.clone());
                    }
                    let v = match init {
                        Some(e) => self.eval(e)?,
                        None => (0, 0),
                    };
                    if init.is_some() {
                        self.regs.insert(name.clone(), v);
                    }
                }
            }
            Stmt::Expr(e) => {
                self.eval(e)?;
            }
            Stmt::If(c, t, e) => {
                let (v, d) = self.eval(c)?;
                no_sym(&[v])?;
                let saved = self.ctrl;
                self.ctrl |= d;
                if v != 0 {
                    self.stmt(t)?;
                } else if let Some(e) = e {
                    self.stmt(e)?;
                }
                self.ctrl = saved;
            }
            Stmt::Block(v) => {
                for s in v {
                    self.stmt(s)?;
                }
            }
        }
        Ok(())
    }
}

/// An operation on a self-justified value: herd7 cannot solve the equation
/// it leaves, and drops the candidate (see [`SYM`]).
fn no_sym(vs: &[Val]) -> Result<(), Stop> {
    if vs.contains(&SYM) {
        return Err(Stop::Infeasible);
    }
    Ok(())
}

fn binop(op: BinOp, x: Val, y: Val) -> Result<Val, Stop> {
    no_sym(&[x, y])?;
    Ok(match op {
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        BinOp::BitOr => x | y,
        BinOp::BitAnd => x & y,
        BinOp::BitXor => x ^ y,
        BinOp::Shl => x.wrapping_shl(y as u32),
        BinOp::Shr => x.wrapping_shr(y as u32),
        _ => return unsup("compound assignment operator"),
    })
}

fn mark_locks_stmt(s: &Stmt, g: &mut Globals) {
    fn expr(e: &Expr, g: &mut Globals) {
        match e {
            Expr::Call(n, args) => {
                if matches!(
                    n.as_str(),
                    "spin_lock" | "spin_unlock" | "spin_trylock" | "spin_is_locked"
                ) {
                    let name = match args.first() {
                        Some(Expr::Var(v)) | Some(Expr::AddrOf(v)) => Some(v.clone()),
                        _ => None,
                    };
                    if let Some(v) = name {
                        if let Some(&l) = g.index.get(&v) {
                            g.is_lock[l] = true;
                        }
                    }
                }
                args.iter().for_each(|a| expr(a, g));
            }
            Expr::Deref(a) | Expr::Un(_, a) => expr(a, g),
            Expr::Bin(_, a, b) | Expr::Assign(a, _, b) => {
                expr(a, g);
                expr(b, g);
            }
            Expr::Ternary(a, b, c) => {
                expr(a, g);
                expr(b, g);
                expr(c, g);
            }
            _ => {}
        }
    }
    match s {
        Stmt::Decl(d) => d.iter().flat_map(|(_, e)| e).for_each(|e| expr(e, g)),
        Stmt::Expr(e) => expr(e, g),
        Stmt::If(c, t, e) => {
            expr(c, g);
            mark_locks_stmt(t, g);
            if let Some(e) = e {
                mark_locks_stmt(e, g);
            }
        }
        Stmt::Block(v) => v.iter().for_each(|s| mark_locks_stmt(s, g)),
    }
}

/// All paths of every thread, for the given value domains.
/// `Err(Unsupported)` if the code uses something not modelled; `limit` caps
/// the number of paths per thread.
fn paths_with(
    t: &Test,
    g: &Globals,
    domains: &[Vec<Vec<Val>>],
    limit: usize,
    partial: &mut [Vec<Vec<Ev>>],
) -> Result<Vec<Vec<Path>>, LitmusError> {
    let mut all = Vec::new();
    for (ti, th) in t.threads.iter().enumerate() {
        let domains = &domains[ti];
        let partial = &mut partial[ti];
        let mut out: Vec<Path> = Vec::new();
        let mut choices: Vec<usize> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut it = Interp {
                g,
                domains,
                choices: std::mem::take(&mut choices),
                limits: Vec::new(),
                pos: 0,
                evs: Vec::new(),
                regs: HashMap::new(),
                reg_order: Vec::new(),
                ctrl: 0,
            };
            for (r, v) in &t.init {
                if let StateRef::Reg(tid, name) = r {
                    if *tid == th.id {
                        it.regs.insert(name.clone(), (init_val(g, v), 0));
                        it.reg_order.push(name.clone());
                    }
                }
            }
            let mut res = Ok(());
            for s in &th.body {
                res = it.stmt(s);
                if res.is_err() {
                    break;
                }
            }
            match res {
                Ok(()) => {
                    let p = it.path(None);
                    if seen.insert(p.clone()) {
                        out.push(p);
                    }
                    if out.len() > limit {
                        return Err(LitmusError::Unsupported(format!(
                            "thread P{} has more than {limit} paths",
                            th.id
                        )));
                    }
                }
                Err(Stop::Stuck(why)) => {
                    let p = it.path(Some(why));
                    if seen.insert(p.clone()) {
                        out.push(p);
                    }
                }
                Err(Stop::Infeasible) => {
                    // keep the writes of the prefix: they feed the value domains
                    let evs: Vec<Ev> = it
                        .evs
                        .iter()
                        .filter(|e| e.kind.is_write())
                        .cloned()
                        .collect();
                    if !evs.is_empty() {
                        partial.push(evs);
                    }
                }
                Err(Stop::Err(e)) => return Err(e),
            }
            // odometer over the choices actually made
            choices = it.choices;
            choices.truncate(it.pos);
            let limits = &it.limits[..it.pos.min(it.limits.len())];
            while let Some(i) = choices.len().checked_sub(1) {
                if choices[i] + 1 < limits[i] {
                    choices[i] += 1;
                    break;
                }
                choices.pop();
            }
            if choices.is_empty() {
                break;
            }
        }
        all.push(out);
    }
    Ok(all)
}

/// Maximum number of paths per thread.
pub const MAX_PATHS: usize = 1 << 16;

/// Result of the thread-semantics phase.
pub struct Programs {
    pub globals: Globals,
    /// paths[t] = the possible paths of thread t
    pub paths: Vec<Vec<Path>>,
}

/// Compute the threads' paths, iterating the value domains to a fixpoint.
pub fn programs(t: &Test) -> Result<Programs, LitmusError> {
    let mut g = globals(t);
    for th in &t.threads {
        th.body.iter().for_each(|s| mark_locks_stmt(s, &mut g));
    }
    let nloc = g.names.len();
    // Integer literals of the program: a read may return one of them through
    // a self-justifying cycle (herd solves such cycles symbolically), so they
    // seed every domain while the written values are computed.
    let mut lits = BTreeSet::new();
    for th in &t.threads {
        th.body.iter().for_each(|s| literals_stmt(s, &mut lits));
    }
    // written[t][l]: values thread t may write to l (over-approximation).
    let nt = t.threads.len();
    let mut written: Vec<Vec<BTreeSet<Val>>> = vec![vec![BTreeSet::new(); nloc]; nt];
    // The domain of thread `ti`: initial value and the other threads' writes
    // (its own po-earlier writes are added per path, see `candidates`).
    let domains = |written: &Vec<Vec<BTreeSet<Val>>>, with_lits: bool| -> Vec<Vec<Vec<Val>>> {
        (0..nt)
            .map(|ti| {
                (0..nloc)
                    .map(|l| {
                        let mut s = BTreeSet::from([g.init[l]]);
                        for (u, w) in written.iter().enumerate() {
                            if u != ti {
                                s.extend(w[l].iter().copied());
                            }
                        }
                        if with_lits && !g.is_lock[l] {
                            s.extend(lits.iter().copied());
                        }
                        s.into_iter().collect()
                    })
                    .collect()
            })
            .collect()
    };
    // 1. least fixpoint: values reachable forward from the initial state;
    // 2. one pass with the literals added to every domain, keeping what is
    //    written (values justified by a cycle through a constant).
    for phase in 0..2 {
        let mut rounds = 0;
        loop {
            let d = domains(&written, phase == 1);
            let mut partial = vec![Vec::new(); nt];
            let paths = paths_with(t, &g, &d, MAX_PATHS, &mut partial)?;
            let mut changed = false;
            for ti in 0..nt {
                for evs in paths[ti].iter().map(|p| &p.evs).chain(partial[ti].iter()) {
                    for e in evs {
                        if e.kind.is_write() {
                            changed |= written[ti][e.loc].insert(e.val);
                        }
                    }
                }
            }
            rounds += 1;
            let max_chain = max_writes(&paths);
            if (0..nloc).any(|l| {
                written
                    .iter()
                    .flat_map(|w| w[l].iter())
                    .collect::<BTreeSet<_>>()
                    .len()
                    > 64
            }) {
                return Err(LitmusError::Unsupported(
                    "more than 64 distinct values for one location".into(),
                ));
            }
            if phase == 1 || !changed || rounds > max_chain + 1 {
                break;
            }
        }
    }
    let mut d = domains(&written, false);
    let mut paths = paths_with(t, &g, &d, MAX_PATHS, &mut vec![Vec::new(); nt])?;
    // 3. values that need more writes than an execution has: dropped
    if prune_deep_values(&paths, &g, &mut written) {
        d = domains(&written, false);
        paths = paths_with(t, &g, &d, MAX_PATHS, &mut vec![Vec::new(); nt])?;
    }
    // 4. self-justified values (see `SYM`): the locations on a cycle of
    //    copies (a write of exactly the value of one read, location of the
    //    read -> location of the write) may also hold the symbol.
    let cyclic = copy_cycles(&paths, nloc);
    if cyclic.iter().any(|&c| c) {
        for dt in d.iter_mut() {
            for (l, dl) in dt.iter_mut().enumerate() {
                if cyclic[l] && !g.is_lock[l] {
                    dl.push(SYM);
                    dl.sort_unstable();
                }
            }
        }
        paths = paths_with(t, &g, &d, MAX_PATHS, &mut vec![Vec::new(); nt])?;
    }
    Ok(Programs { globals: g, paths })
}

/// The most writes one execution can have: the sum over the threads of
/// their longest path's writes.
fn max_writes(paths: &[Vec<Path>]) -> usize {
    paths
        .iter()
        .map(|ps| {
            ps.iter()
                .map(|p| p.evs.iter().filter(|e| e.kind.is_write()).count())
                .max()
                .unwrap_or(0)
        })
        .sum()
}

/// The forward fixpoint over-approximates the values written: a chain such
/// as `r1 = READ_ONCE(*ctr); WRITE_ONCE(*ctr, r1 + 1);` in several threads
/// grows the domain of `ctr` by a few values per round until the round
/// bound, far beyond what one execution can reach (`C-seqlock`: 0..30
/// where 4 writes reach 0..4), and every extra value multiplies the paths.
/// A lower bound of the writes needed to produce value v at location l:
/// `depth(l, init) = 0`, and a write of v whose value depends (`data`) on
/// reads of values with depths d1, d2, ... gives `depth(l, v) <= 1 +
/// max(d1, d2, ...)` (minimum over all such writes; a value whose depth
/// stays unknown, justified only by a cycle, is kept).  In an execution
/// herd7 keeps, every value read is determined by a finite chain of
/// distinct writes of that execution, so a value whose depth exceeds the
/// most writes an execution can have (the sum over the threads of their
/// longest path's writes) is never read.  Removes such values from
/// `written`; returns whether any was removed.
fn prune_deep_values(paths: &[Vec<Path>], g: &Globals, written: &mut [Vec<BTreeSet<Val>>]) -> bool {
    let nloc = g.names.len();
    let bound = max_writes(paths);
    let mut depth: HashMap<(usize, Val), usize> = (0..nloc).map(|l| ((l, g.init[l]), 0)).collect();
    loop {
        let mut changed = false;
        for p in paths.iter().flatten() {
            for w in p.evs.iter().filter(|e| e.kind.is_write() && e.loc < nloc) {
                let mut dw = Some(1);
                for (b, r) in p.evs.iter().enumerate() {
                    if w.data >> b & 1 == 1 && r.kind.is_read() {
                        dw = match (dw, depth.get(&(r.loc, r.val))) {
                            (Some(x), Some(&y)) => Some(x.max(y + 1)),
                            _ => None,
                        };
                    }
                }
                if let Some(x) = dw {
                    let e = depth.entry((w.loc, w.val)).or_insert(usize::MAX);
                    if x < *e {
                        *e = x;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut pruned = false;
    for wt in written.iter_mut() {
        for (l, vs) in wt.iter_mut().enumerate() {
            let before = vs.len();
            vs.retain(|&v| depth.get(&(l, v)).is_none_or(|&x| x <= bound));
            pruned |= vs.len() != before;
        }
    }
    pruned
}

/// Locations on a cycle of the graph "a write copies (stores exactly the
/// value of) a read of location m into location l": m -> l.
fn copy_cycles(paths: &[Vec<Path>], nloc: usize) -> Vec<bool> {
    on_cycle(
        nloc,
        |p: &Path, w: &Ev| {
            if w.kind != Kind::W || w.data.count_ones() != 1 {
                return Vec::new();
            }
            let r = &p.evs[w.data.trailing_zeros() as usize];
            if r.kind == Kind::R && r.val == w.val {
                vec![r.loc]
            } else {
                Vec::new()
            }
        },
        paths,
    )
}

/// Whether some location can reach itself through the values written: a
/// write to l whose value depends (`data`) on a read of m gives m -> l.
/// Only then can a candidate execution have a read whose value nothing but
/// a cycle justifies (the RMW's own read -> write is left out: a cycle
/// through atomic updates alone breaks atomicity).
pub fn has_value_cycle(paths: &[Vec<Path>], nloc: usize) -> bool {
    on_cycle(
        nloc,
        |p: &Path, w: &Ev| {
            if !w.kind.is_write() {
                return Vec::new();
            }
            (0..p.evs.len())
                .filter(|&b| w.data >> b & 1 == 1 && p.evs[b].kind.is_read())
                .map(|b| p.evs[b].loc)
                .collect()
        },
        paths,
    )
    .contains(&true)
}

/// Locations on a cycle of the graph with an edge m -> l for every write
/// `w` to l of a path `p` and every m in `sources(p, w)`.
fn on_cycle(
    nloc: usize,
    sources: impl Fn(&Path, &Ev) -> Vec<usize>,
    paths: &[Vec<Path>],
) -> Vec<bool> {
    let mut reach = vec![vec![false; nloc]; nloc];
    for p in paths.iter().flatten() {
        for w in p.evs.iter().filter(|e| e.loc < nloc) {
            for m in sources(p, w) {
                if m < nloc {
                    reach[m][w.loc] = true;
                }
            }
        }
    }
    for k in 0..nloc {
        let via = reach[k].clone();
        for row in reach.iter_mut() {
            if row[k] {
                for (x, &v) in row.iter_mut().zip(&via) {
                    *x |= v;
                }
            }
        }
    }
    (0..nloc).map(|l| reach[l][l]).collect()
}

fn literals_expr(e: &Expr, out: &mut BTreeSet<Val>) {
    match e {
        Expr::Int(i) => {
            out.insert(*i);
        }
        Expr::Var(_) | Expr::AddrOf(_) => {}
        Expr::Deref(a) | Expr::Un(_, a) => literals_expr(a, out),
        Expr::Bin(_, a, b) | Expr::Assign(a, _, b) => {
            literals_expr(a, out);
            literals_expr(b, out);
        }
        Expr::Ternary(a, b, c) => {
            literals_expr(a, out);
            literals_expr(b, out);
            literals_expr(c, out);
        }
        Expr::Call(_, args) => args.iter().for_each(|a| literals_expr(a, out)),
    }
}

fn literals_stmt(s: &Stmt, out: &mut BTreeSet<Val>) {
    match s {
        Stmt::Decl(d) => d
            .iter()
            .flat_map(|(_, e)| e)
            .for_each(|e| literals_expr(e, out)),
        Stmt::Expr(e) => literals_expr(e, out),
        Stmt::If(c, a, b) => {
            literals_expr(c, out);
            literals_stmt(a, out);
            if let Some(b) = b {
                literals_stmt(b, out);
            }
        }
        Stmt::Block(v) => v.iter().for_each(|s| literals_stmt(s, out)),
    }
}
