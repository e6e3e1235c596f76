//! Candidate-execution enumeration and verdicts.

use crate::exec::{self, Ev, Globals, Kind, Path, Val};
use crate::model::{judge, Static};
use crate::parse::{Cond, InitVal, LitmusError, Quantifier, StateRef, Test};
use crate::rel::{bits, Rel, Set};
use std::collections::BTreeSet;
use std::time::Duration;

/// At most this many final states are listed in an [`Outcome`].
pub const MAX_LISTED_STATES: usize = 1000;

/// How often the condition holds over the allowed executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Verdict {
    Never,
    Sometimes,
    Always,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// The result of checking one test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub name: String,
    pub quantifier: Quantifier,
    pub condition: String,
    pub verdict: Verdict,
    /// herd's "Ok"/"No": whether the quantified condition is validated.
    pub validated: bool,
    /// Number of distinct final states (observed locations and registers).
    pub state_count: usize,
    /// The first [`MAX_LISTED_STATES`] of them, in order.
    pub states: Vec<String>,
    /// Allowed executions satisfying / not satisfying the condition.
    pub positive: u64,
    pub negative: u64,
    /// Some allowed execution has a data race (`flag data-race`).
    pub data_race: bool,
    /// Candidate executions examined.
    pub candidates: u64,
}

/// Options for [`check`].
#[derive(Debug, Clone)]
pub struct Options {
    pub timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// Error of [`check`]: the test could not be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    Litmus(LitmusError),
    Timeout(Duration),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Litmus(e) => write!(f, "{e}"),
            CheckError::Timeout(d) => write!(
                f,
                "timeout: too large to enumerate within {:.1}s of CPU time (see --timeout)",
                d.as_secs_f64()
            ),
        }
    }
}

impl From<LitmusError> for CheckError {
    fn from(e: LitmusError) -> Self {
        CheckError::Litmus(e)
    }
}

/// One admissible (coherent, atomic) choice of rf/co for one location.
#[derive(Clone)]
struct LocChoice {
    /// (write, rf row = reads reading from it, co row = writes co-after it)
    rows: Vec<(usize, Set, Set)>,
    last: usize,
}

#[allow(clippy::too_many_arguments)]
fn permutations<const W: usize>(
    items: &[usize],
    po: &Rel<W>,
    partner: &[Option<usize>],
    after_ok: &dyn Fn(Option<usize>, usize) -> bool,
    out: &mut Vec<Vec<usize>>,
    cur: &mut Vec<usize>,
    used: &mut Vec<bool>,
) {
    if out.len() > MAX_CO_ORDERS {
        return;
    }
    if cur.len() == items.len() {
        out.push(cur.clone());
        return;
    }
    // lock.cat: a spin_lock's write is immediately followed in co by its
    // critical section's unlock
    let forced = cur
        .last()
        .and_then(|&w| items.iter().position(|&x| x == w))
        .and_then(|i| partner[i]);
    for k in 0..items.len() {
        if used[k] || forced.is_some_and(|f| f != k) {
            continue;
        }
        // respect po among same-thread writes: all po-predecessors already placed
        let x = items[k];
        if items
            .iter()
            .enumerate()
            .any(|(j, &y)| !used[j] && j != k && po.has(y, x))
        {
            continue;
        }
        if !after_ok(cur.last().copied(), x) {
            continue;
        }
        used[k] = true;
        cur.push(x);
        permutations(items, po, partner, after_ok, out, cur, used);
        cur.pop();
        used[k] = false;
    }
}

/// The admissible choices of one location, in the order of their
/// depth-first enumeration.
struct LocChoices {
    list: Vec<LocChoice>,
    /// `lcp[i]`: how many leading writes the coherence orders of
    /// `list[i - 1]` and `list[i]` share (0 for `i = 0`).  The orders are
    /// enumerated depth first, so the choices sharing a prefix of an order
    /// are consecutive.
    lcp: Vec<usize>,
}

impl LocChoices {
    fn new(list: Vec<LocChoice>) -> LocChoices {
        let mut lcp = Vec::with_capacity(list.len());
        lcp.push(0);
        lcp.extend(list.windows(2).map(|p| {
            p[0].rows
                .iter()
                .zip(&p[1].rows)
                .take_while(|(a, b)| a.0 == b.0)
                .count()
        }));
        LocChoices { list, lcp }
    }
}

/// At most this many per-location choices are kept in [`Ctx`]'s cache
/// (about 0.5 KB each).
const LOC_CACHE_MAX: usize = 1 << 19;

/// Cap on the coherence orders enumerated for one location.
const MAX_CO_ORDERS: usize = 1 << 20;

/// Enumerate per-location admissible rf/co choices (`None`: too many
/// coherence orders to enumerate).
fn loc_choices<const W: usize>(st: &Static<W>, l: usize) -> Option<Vec<LocChoice>> {
    let evs = &st.evs;
    let here = st.at[l];
    let writes: Vec<usize> = bits(here & st.w).filter(|&i| i != l).collect();
    let reads: Vec<usize> = bits(here & st.r).collect();
    // partner[i]: index in `writes` of the unlock matching the lock write i
    let partner: Vec<Option<usize>> = writes
        .iter()
        .map(|&w| {
            if evs[w].kind != Kind::Lkw {
                return None;
            }
            let next = writes
                .iter()
                .enumerate()
                .filter(|(_, &x)| st.po.has(w, x))
                .min_by_key(|(_, &x)| x)?;
            (evs[*next.1].kind == Kind::Ul).then_some(next.0)
        })
        .collect();
    // atomicity: the write of an RMW immediately follows (in co) the write
    // its read reads from, so that write must carry the value read
    let after_ok = |prev: Option<usize>, x: usize| -> bool {
        if x == 0 || !evs[x - 1].rmw_read || !st.rmw.has(x - 1, x) {
            return true;
        }
        evs[prev.unwrap_or(l)].val == evs[x - 1].val
    };
    let mut perms = Vec::new();
    permutations(
        &writes,
        &st.po,
        &partner,
        &after_ok,
        &mut perms,
        &mut Vec::new(),
        &mut vec![false; writes.len()],
    );
    if perms.len() > MAX_CO_ORDERS {
        return None;
    }
    let mut out = Vec::new();
    // candidate sources per read (same value)
    let cands: Vec<Vec<usize>> = reads
        .iter()
        .map(|&r| {
            std::iter::once(l)
                .chain(writes.iter().copied())
                .filter(|&w| evs[w].val == evs[r].val)
                .collect()
        })
        .collect();
    if cands.iter().any(|c| c.is_empty()) {
        return Some(out);
    }
    let n = st.n;
    for perm in perms {
        let mut order = vec![l];
        order.extend(perm.iter().copied());
        let mut pos = vec![usize::MAX; n];
        for (k, &w) in order.iter().enumerate() {
            pos[w] = k;
        }
        // co rows
        let mut co_rows = Vec::with_capacity(order.len());
        for (k, &w) in order.iter().enumerate() {
            let later = order[k + 1..].iter().fold(0u128, |a, &x| a | 1 << x);
            co_rows.push((w, later));
        }
        // filter candidates individually (CoWR / CoRW), then product
        let po_loc = &st.po_loc;
        let per_read: Vec<Vec<usize>> = reads
            .iter()
            .zip(&cands)
            .map(|(&r, cs)| {
                cs.iter()
                    .copied()
                    .filter(|&w| {
                        // no write po-before r (or w itself po-after r) that is co-after w
                        if po_loc.has(r, w) {
                            return false;
                        }
                        order.iter().all(|&w2| {
                            let before_r = po_loc.has(w2, r);
                            let after_r = po_loc.has(r, w2);
                            !((before_r && pos[w2] > pos[w]) || (after_r && pos[w2] <= pos[w]))
                        })
                    })
                    .collect()
            })
            .collect();
        if per_read.iter().any(|c| c.is_empty()) {
            continue;
        }
        let mut idx = vec![0usize; reads.len()];
        loop {
            // check CoRR, atomicity
            let src = |k: usize| per_read[k][idx[k]];
            let mut ok = true;
            'outer: for a in 0..reads.len() {
                for b in 0..reads.len() {
                    if a != b && po_loc.has(reads[a], reads[b]) && pos[src(b)] < pos[src(a)] {
                        ok = false;
                        break 'outer;
                    }
                }
                // atomicity: the rmw write is immediately co-after the source
                let r = reads[a];
                if st.rmw.r[r] != 0 {
                    let w = st.rmw.r[r].trailing_zeros() as usize;
                    if pos[w] != pos[src(a)] + 1 {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                let mut rows: Vec<(usize, Set, Set)> =
                    co_rows.iter().map(|&(w, c)| (w, 0, c)).collect();
                for (k, &r) in reads.iter().enumerate() {
                    let w = src(k);
                    rows[pos[w]].1 |= 1 << r;
                }
                out.push(LocChoice {
                    rows,
                    last: *order.last().unwrap_or(&l),
                });
            }
            // next
            let mut k = 0;
            loop {
                if k == reads.len() {
                    break;
                }
                idx[k] += 1;
                if idx[k] < per_read[k].len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
            if k == reads.len() {
                break;
            }
        }
    }
    Some(out)
}

/// The per-location choices of one combination of thread paths, and the
/// order in which [`Ctx::product`] takes the locations.
struct Product<'a> {
    choices: &'a [std::rc::Rc<LocChoices>],
    order: &'a [usize],
    remaining: &'a [u64],
}

/// A partial choice is checked against the model when at least this many
/// candidates lie below it (a check costs about as much as one candidate).
const PRUNE_MIN: u64 = 8;

/// The static part of a candidate execution, in the narrowest relation
/// width that holds its events (see [`Rel`]).
enum AnyStatic {
    W32(Box<Static<32>>),
    W64(Box<Static<64>>),
    W128(Box<Static<128>>),
}

impl AnyStatic {
    fn new(init: &[i64], paths: &[&Path]) -> Option<AnyStatic> {
        let n = init.len() + paths.iter().map(|p| p.evs.len()).sum::<usize>();
        Some(if n <= 32 {
            AnyStatic::W32(Box::new(Static::new(init, paths)?))
        } else if n <= 64 {
            AnyStatic::W64(Box::new(Static::new(init, paths)?))
        } else {
            AnyStatic::W128(Box::new(Static::new(init, paths)?))
        })
    }

    /// The events and the number of locations (their init writes come first).
    fn events(&self) -> (&[Ev], usize) {
        match self {
            AnyStatic::W32(s) => (&s.evs, s.nloc),
            AnyStatic::W64(s) => (&s.evs, s.nloc),
            AnyStatic::W128(s) => (&s.evs, s.nloc),
        }
    }

    fn events_mut(&mut self) -> (&mut [Ev], usize) {
        match self {
            AnyStatic::W32(s) => (&mut s.evs, s.nloc),
            AnyStatic::W64(s) => (&mut s.evs, s.nloc),
            AnyStatic::W128(s) => (&mut s.evs, s.nloc),
        }
    }
}

/// Symmetric threads: a renaming of the threads together with a renaming of
/// the locations (from the threads' parameter lists, position by position)
/// that maps every thread's paths exactly onto the paths of its image
/// thread, and fixes the initial state, maps the candidate executions of a
/// combination of paths one to one onto those of the image combination;
/// the LKMM does not depend on the names.  Identical threads (`P1` and `P2`
/// of `C-ManfredSpraul-L1G2xchg`: a transposition, locations fixed) and
/// rotations (`P0(sl, x0, x1)` ... `P4(sl, x4, x0)` of the `absperf/`
/// tests: thread t -> t+1 with x_i -> x_i+1) generate such a group.  Only
/// the combinations whose tuple of path indices is the least of its images
/// are enumerated, and each allowed execution also counts for its distinct
/// images (registers and locations renamed back), so states, `Positive`/
/// `Negative` and the data-race flag are those of the full enumeration.
/// Not used with a `filter` (it prunes combinations, and a combination's
/// images may pass where it does not), nor when a value is an address (it
/// would have to be renamed too).
#[derive(Default)]
struct Symmetry {
    /// The group without the identity.
    group: Vec<Sym>,
}

/// One element of the symmetry group.
#[derive(Clone)]
struct Sym {
    /// thread t -> thread[t]
    thread: Vec<usize>,
    thread_inv: Vec<usize>,
    /// location l -> loc[l]
    loc: Vec<usize>,
    loc_inv: Vec<usize>,
    /// path i of thread t -> path path[t][i] of thread thread[t]
    path: Vec<Vec<usize>>,
}

/// Larger groups are not used (each combination is compared with every
/// element).
const MAX_SYM_GROUP: usize = 720;

fn inverse(p: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; p.len()];
    for (i, &x) in p.iter().enumerate() {
        inv[x] = i;
    }
    inv
}

impl Symmetry {
    fn new(test: &Test, g: &Globals, paths: &[Vec<Path>]) -> Symmetry {
        let nt = paths.len();
        let nloc = g.names.len();
        let none = Symmetry::default();
        if test.filter.is_some() || test.threads.len() != nt || nt < 2 {
            return none;
        }
        let is_addr = |v: Val| exec::as_loc(v).is_some();
        let addr_in_paths = paths.iter().flatten().any(|p| {
            p.evs.iter().any(|e| is_addr(e.val)) || p.regs.iter().any(|(_, v)| is_addr(*v))
        });
        if g.init.iter().any(|&v| is_addr(v)) || addr_in_paths {
            return none;
        }
        let init_regs = |t: usize| {
            let mut v: Vec<String> = test
                .init
                .iter()
                .filter_map(|(r, x)| match r {
                    StateRef::Reg(u, name) if *u == t => Some(format!("{name} {x:?}")),
                    _ => None,
                })
                .collect();
            v.sort();
            v
        };
        let index: Vec<std::collections::HashMap<&Path, usize>> = paths
            .iter()
            .map(|ps| ps.iter().enumerate().map(|(i, p)| (p, i)).collect())
            .collect();
        let make = |thread: Vec<usize>| -> Option<Sym> {
            let mut loc: Vec<Option<usize>> = vec![None; nloc];
            for (t, &u) in thread.iter().enumerate() {
                let (a, b) = (&test.threads[t].params, &test.threads[u].params);
                if a.len() != b.len() || init_regs(t) != init_regs(u) {
                    return None;
                }
                for (x, y) in a.iter().zip(b) {
                    let (lx, ly) = (*g.index.get(x)?, *g.index.get(y)?);
                    match loc[lx] {
                        None => loc[lx] = Some(ly),
                        Some(z) if z != ly => return None,
                        _ => {}
                    }
                }
            }
            let loc: Vec<usize> = (0..nloc).map(|l| loc[l].unwrap_or(l)).collect();
            let mut sorted = loc.clone();
            sorted.sort_unstable();
            if sorted != (0..nloc).collect::<Vec<_>>()
                || (0..nloc).any(|l| g.init[loc[l]] != g.init[l])
            {
                return None;
            }
            let mut path = Vec::with_capacity(nt);
            for t in 0..nt {
                if paths[t].len() != paths[thread[t]].len() {
                    return None;
                }
                let m: Option<Vec<usize>> = paths[t]
                    .iter()
                    .map(|p| {
                        let mut q = p.clone();
                        for e in q.evs.iter_mut() {
                            if e.loc < nloc {
                                e.loc = loc[e.loc];
                            }
                        }
                        index[thread[t]].get(&q).copied()
                    })
                    .collect();
                path.push(m?);
            }
            Some(Sym {
                thread_inv: inverse(&thread),
                loc_inv: inverse(&loc),
                thread,
                loc,
                path,
            })
        };
        // generators: the transpositions and the rotation of the threads
        let mut gens = Vec::new();
        for i in 0..nt {
            for j in i + 1..nt {
                let mut p: Vec<usize> = (0..nt).collect();
                p.swap(i, j);
                gens.extend(make(p));
            }
        }
        gens.extend(make((0..nt).map(|t| (t + 1) % nt).collect()));
        // the group they generate (closure under composition)
        let is_id = |s: &Sym| {
            s.thread.iter().enumerate().all(|(i, &x)| i == x)
                && s.loc.iter().enumerate().all(|(i, &x)| i == x)
        };
        let key = |s: &Sym| (s.thread.clone(), s.loc.clone());
        let mut group: Vec<Sym> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut queue: Vec<Sym> = gens.clone();
        while let Some(s) = queue.pop() {
            if is_id(&s) || !seen.insert(key(&s)) {
                continue;
            }
            if group.len() >= MAX_SYM_GROUP {
                return none;
            }
            for b in &gens {
                // s after b
                let thread: Vec<usize> = (0..nt).map(|t| s.thread[b.thread[t]]).collect();
                let loc: Vec<usize> = (0..nloc).map(|l| s.loc[b.loc[l]]).collect();
                let path = (0..nt)
                    .map(|t| b.path[t].iter().map(|&i| s.path[b.thread[t]][i]).collect())
                    .collect();
                queue.push(Sym {
                    thread_inv: inverse(&thread),
                    loc_inv: inverse(&loc),
                    thread,
                    loc,
                    path,
                });
            }
            group.push(s);
        }
        Symmetry { group }
    }

    /// `None` if the combination (path index `idx[t]` of thread t) is not
    /// the least of its images; else the elements of the group giving its
    /// distinct images (`usize::MAX`: the identity, first).
    fn images(&self, idx: &[usize]) -> Option<Vec<usize>> {
        let mut out = vec![usize::MAX];
        let mut imgs = vec![idx.to_vec()];
        for (e, s) in self.group.iter().enumerate() {
            let mut img = vec![0; idx.len()];
            for (t, &i) in idx.iter().enumerate() {
                img[s.thread[t]] = s.path[t][i];
            }
            if img.as_slice() < idx {
                return None;
            }
            if !imgs.contains(&img) {
                imgs.push(img);
                out.push(e);
            }
        }
        Some(out)
    }
}

struct Ctx<'a> {
    test: &'a Test,
    g: &'a Globals,
    observed: Vec<StateRef>,
    /// CPU-time deadline (seconds of this thread's CPU time).
    deadline: Option<f64>,
    leaves: u64,
    timeout: Duration,
    states: BTreeSet<Vec<Val>>,
    positive: u64,
    negative: u64,
    data_race: bool,
    candidates: u64,
    cache: Option<AnyStatic>,
    /// Per location of the cached [`AnyStatic`]: its choices by the values
    /// of its events (cleared with it), and how many choices are cached.
    loc_cache: Vec<std::collections::HashMap<Vec<Val>, std::rc::Rc<LocChoices>>>,
    loc_cached: usize,
    /// Symmetries of the threads.
    sym: Symmetry,
    /// The executions the current combination stands for: elements of
    /// `sym.group` (`usize::MAX`, the identity, first).
    images: Vec<usize>,
    /// Some location's value can depend on itself (see
    /// [`exec::has_value_cycle`]): allowed executions are checked for
    /// values justified only by a cycle ([`justified`]).
    value_cycles: bool,
}

fn eval_cond(c: &Cond, get: &dyn Fn(&StateRef) -> Val, g: &Globals) -> bool {
    let v = |x: &InitVal| exec::init_val(g, x);
    match c {
        Cond::True => true,
        Cond::False => false,
        Cond::Eq(r, x) => get(r) == v(x),
        Cond::Ne(r, x) => get(r) != v(x),
        Cond::EqRef(a, b, ne) => (get(a) == get(b)) != *ne,
        Cond::Not(a) => !eval_cond(a, get, g),
        Cond::And(a, b) => eval_cond(a, get, g) && eval_cond(b, get, g),
        Cond::Or(a, b) => eval_cond(a, get, g) || eval_cond(b, get, g),
    }
}

/// Final value of a register or location in a candidate execution.
fn final_value<const W: usize>(
    r: &StateRef,
    g: &Globals,
    st: &Static<W>,
    last: &[usize],
    paths: &[&Path],
) -> Val {
    match r {
        StateRef::Loc(n) => match g.index.get(n) {
            Some(&i) => st.evs[last[i]].val,
            None => 0,
        },
        StateRef::Reg(t, name) => reg_value(paths, *t, name),
    }
}

fn reg_value(paths: &[&Path], t: usize, name: &str) -> Val {
    paths
        .get(t)
        .and_then(|p| p.regs.iter().find(|(n, _)| n == name))
        .map(|(_, v)| *v)
        .unwrap_or(0)
}

/// Whether a condition mentions registers only (no shared location).
fn regs_only(c: &Cond) -> bool {
    let mut refs = Vec::new();
    c.refs(&mut refs);
    refs.iter().all(|r| matches!(r, StateRef::Reg(..)))
}

/// [`eval_cond`] with unknown values (`None`): `Some(b)` when the known
/// values decide the condition.
fn eval_cond3(c: &Cond, get: &dyn Fn(&StateRef) -> Option<Val>, g: &Globals) -> Option<bool> {
    let v = |x: &InitVal| exec::init_val(g, x);
    match c {
        Cond::True => Some(true),
        Cond::False => Some(false),
        Cond::Eq(r, x) => get(r).map(|a| a == v(x)),
        Cond::Ne(r, x) => get(r).map(|a| a != v(x)),
        Cond::EqRef(a, b, ne) => Some((get(a)? == get(b)?) != *ne),
        Cond::Not(a) => eval_cond3(a, get, g).map(|b| !b),
        Cond::And(a, b) => match (eval_cond3(a, get, g), eval_cond3(b, get, g)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Cond::Or(a, b) => match (eval_cond3(a, get, g), eval_cond3(b, get, g)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
    }
}

impl Ctx<'_> {
    fn combination(&mut self, paths: &[&Path]) -> Result<(), CheckError> {
        // Reuse the static part when only the values differ from the last
        // combination (the common case: same control flow, other read values).
        let same_shape = self.cache.as_ref().is_some_and(|c| {
            let (evs, nloc) = c.events();
            let mut i = nloc;
            paths.iter().all(|p| {
                p.evs.iter().all(|e| {
                    if i >= evs.len() {
                        return false;
                    }
                    let c = &evs[i];
                    i += 1;
                    c.kind == e.kind
                        && c.loc == e.loc
                        && Ev {
                            val: c.val,
                            ..e.clone()
                        } == *c
                })
            }) && i == evs.len()
        });
        if same_shape {
            if let Some(c) = self.cache.as_mut() {
                let (evs, nloc) = c.events_mut();
                let mut i = nloc;
                for p in paths {
                    for e in &p.evs {
                        evs[i].val = e.val;
                        i += 1;
                    }
                }
            }
        } else {
            self.loc_cache.clear();
            self.cache = match AnyStatic::new(&self.g.init, paths) {
                Some(s) => Some(s),
                None => {
                    return Err(LitmusError::Unsupported(
                        "more than 128 events in one execution".into(),
                    )
                    .into())
                }
            };
        }
        let cache = self.cache.take();
        let res = match &cache {
            Some(AnyStatic::W32(st)) => self.combination_with(st, paths),
            Some(AnyStatic::W64(st)) => self.combination_with(st, paths),
            Some(AnyStatic::W128(st)) => self.combination_with(st, paths),
            None => Ok(()),
        };
        self.cache = cache;
        res
    }

    fn combination_with<const W: usize>(
        &mut self,
        st: &Static<W>,
        paths: &[&Path],
    ) -> Result<(), CheckError> {
        if st.static_forbidden {
            return Ok(());
        }
        if self.loc_cache.len() != st.nloc {
            self.loc_cache = vec![std::collections::HashMap::new(); st.nloc];
            self.loc_cached = 0;
        }
        let mut choices = Vec::with_capacity(st.nloc);
        for l in 0..st.nloc {
            // the choices depend on the values of the location's events only
            // (the rest of the combination has the same shape): cached
            let key: Vec<Val> = bits(st.at[l]).map(|i| st.evs[i].val).collect();
            let c = match self.loc_cache[l].get(&key) {
                Some(c) => c.clone(),
                None => {
                    let Some(list) = loc_choices(st, l) else {
                        return Err(LitmusError::Unsupported(format!(
                            "more than {MAX_CO_ORDERS} coherence orders for `{}`",
                            self.g.names.get(l).map(String::as_str).unwrap_or("?")
                        ))
                        .into());
                    };
                    let c = std::rc::Rc::new(LocChoices::new(list));
                    if self.loc_cached + c.list.len() <= LOC_CACHE_MAX {
                        self.loc_cached += c.list.len();
                        self.loc_cache[l].insert(key, c.clone());
                    }
                    c
                }
            };
            if c.list.is_empty() {
                return Ok(());
            }
            choices.push(c);
        }
        let mut rf = Rel::empty(st.n);
        let mut co = Rel::empty(st.n);
        let mut last = vec![0usize; st.nloc];
        // locations with few choices first: the model is checked on every
        // partial choice (see `product`), so a forbidden prefix is cut
        // before the product over the locations with many choices
        let mut order: Vec<usize> = (0..st.nloc).collect();
        order.sort_by_key(|&l| choices[l].list.len());
        // remaining[k]: candidates below a node at depth k
        let mut remaining = vec![1u64; st.nloc + 1];
        for k in (0..st.nloc).rev() {
            remaining[k] = remaining[k + 1].saturating_mul(choices[order[k]].list.len() as u64);
        }
        let prod = Product {
            choices: &choices,
            order: &order,
            remaining: &remaining,
        };
        self.product(st, paths, &prod, 0, &mut rf, &mut co, &mut last)
    }

    /// The product of the per-location choices, depth `k` = the first `k`
    /// locations of `prod.order` chosen.  The rows of `rf`/`co` of the other
    /// locations are empty.  Every axiom of the model forbids a pattern made
    /// of `rf`, `co` and `fr = rf^-1 ; co` edges through unions,
    /// compositions and closures (the `\ id` of `hb` included), so an
    /// execution whose partial `rf`/`co` is already forbidden has no allowed
    /// completion: such a prefix is cut when enough candidates lie below it
    /// to pay for the check.
    #[allow(clippy::too_many_arguments)]
    fn product<const W: usize>(
        &mut self,
        st: &Static<W>,
        paths: &[&Path],
        prod: &Product<'_>,
        k: usize,
        rf: &mut Rel<W>,
        co: &mut Rel<W>,
        last: &mut Vec<usize>,
    ) -> Result<(), CheckError> {
        if k > 0
            && k < prod.order.len()
            && prod.remaining[k] >= PRUNE_MIN
            && !judge(st, rf, co).allowed
        {
            return Ok(());
        }
        if k == prod.order.len() {
            self.candidates += 1;
            if self.candidates.is_multiple_of(64) {
                if let Some(d) = self.deadline {
                    if crate::thread_cpu_seconds() > d {
                        return Err(CheckError::Timeout(self.timeout));
                    }
                }
            }
            // the filter first: a filtered-out execution counts for nothing
            // (not even the data-race flag), so it need not be judged
            // (with self-justified values, once their symbols are known)
            if let Some(f) = self.test.filter.as_ref().filter(|_| !self.value_cycles) {
                let get = |r: &StateRef| final_value(r, self.g, st, last, paths);
                if !eval_cond(f, &get, self.g) {
                    return Ok(());
                }
            }
            let j = judge(st, rf, co);
            if !j.allowed {
                return Ok(());
            }
            let syms = if self.value_cycles {
                match justified(st, rf)? {
                    Some(s) => s,
                    None => return Ok(()),
                }
            } else {
                Symbols::default()
            };
            let get =
                |r: &StateRef| syms.value(r, final_value(r, self.g, st, last, paths), self.g, last);
            if let Some(f) = self.test.filter.as_ref().filter(|_| self.value_cycles) {
                if !eval_cond(f, &get, self.g) {
                    return Ok(());
                }
            }
            if let Some(why) = paths.iter().find_map(|p| p.stuck.as_ref()) {
                // an allowed execution reaches a construct not modelled
                return Err(LitmusError::Unsupported(why.clone()).into());
            }
            self.data_race |= j.data_race;
            let images = std::mem::take(&mut self.images);
            for &e in &images {
                // the image of this execution under an element of the
                // symmetry group (see `Symmetry`; the identity first): its
                // thread u has the registers of thread_inv[u], its location
                // loc[l] the value of l
                let get = |r: &StateRef| match (self.sym.group.get(e), r) {
                    (Some(s), StateRef::Reg(u, name)) => {
                        get(&StateRef::Reg(s.thread_inv[*u], name.clone()))
                    }
                    (Some(s), StateRef::Loc(x)) => match self.g.index.get(x) {
                        Some(&l) => get(&StateRef::Loc(self.g.names[s.loc_inv[l]].clone())),
                        None => get(r),
                    },
                    (None, _) => get(r),
                };
                let mut state: Vec<Val> = self.observed.iter().map(&get).collect();
                syms.canonical(&mut state);
                self.states.insert(state);
                if eval_cond(&self.test.cond, &get, self.g) {
                    self.positive += 1;
                } else {
                    self.negative += 1;
                }
            }
            self.images = images;
            return Ok(());
        }
        let l = prod.order[k];
        let (cs, lcp) = (&prod.choices[l].list, &prod.choices[l].lcp);
        let below = prod.remaining[k + 1];
        // the reads of RMWs: their source is the write just before theirs
        let rmw_reads = st.rmw.domain();
        // `passed`: the longest prefix of the current choice's coherence
        // order known not to be forbidden
        let mut passed = 0;
        let mut i = 0;
        while i < cs.len() {
            let c = &cs[i];
            passed = passed.min(lcp[i]);
            // A proper prefix of the order (its first `j` writes placed) is
            // a partial execution as well: the placed writes are co-before
            // every other write of the location, and the read of an RMW
            // whose write is placed reads from the write placed before it
            // (atomicity); the other reads' sources are not known yet.  If
            // the model forbids it, every choice sharing the prefix is cut.
            let mut cut = None;
            for j in passed + 1..c.rows.len() {
                let mut share = 1;
                while i + share < cs.len()
                    && lcp[i + share] >= j
                    && (share as u64) * below < PRUNE_MIN
                {
                    share += 1;
                }
                if (share as u64).saturating_mul(below) < PRUNE_MIN {
                    break;
                }
                for (p, &(w, rrow, crow)) in c.rows.iter().enumerate() {
                    rf.r[w] = if p + 1 < j { rrow & rmw_reads } else { 0 };
                    co.r[w] = if p < j { crow } else { 0 };
                }
                if !judge(st, rf, co).allowed {
                    let mut e = i + 1;
                    while e < cs.len() && lcp[e] >= j {
                        e += 1;
                    }
                    cut = Some(e);
                    break;
                }
                passed = j;
            }
            if let Some(e) = cut {
                i = e;
                continue;
            }
            for &(w, rrow, crow) in &c.rows {
                rf.r[w] = rrow;
                co.r[w] = crow;
            }
            last[l] = c.last;
            self.product(st, paths, prod, k + 1, rf, co, last)?;
            i += 1;
        }
        if let Some(c) = prod.choices[l].list.first() {
            for &(w, _, _) in &c.rows {
                rf.r[w] = 0;
                co.r[w] = 0;
            }
        }
        Ok(())
    }
}

/// Decide a parsed test under the LKMM.
pub fn check(test: &Test, opts: &Options) -> Result<Outcome, CheckError> {
    let start = crate::thread_cpu_seconds();
    let progs = exec::programs(test)?;
    let g = &progs.globals;
    let mut observed = Vec::new();
    test.cond.refs(&mut observed);
    for r in &test.locations {
        if !observed.contains(r) {
            observed.push(r.clone());
        }
    }
    for r in &observed {
        if let StateRef::Reg(t, _) = r {
            if *t >= test.threads.len() {
                return Err(LitmusError::Syntax {
                    line: 0,
                    msg: format!(
                        "expected a thread number below {} in `{r}`",
                        test.threads.len()
                    ),
                }
                .into());
            }
        }
    }
    let timeout = opts.timeout.unwrap_or(Duration::MAX);
    let mut ctx = Ctx {
        test,
        g,
        observed,
        deadline: opts.timeout.map(|t| start + t.as_secs_f64()),
        leaves: 0,
        timeout,
        states: BTreeSet::new(),
        positive: 0,
        negative: 0,
        data_race: false,
        candidates: 0,
        cache: None,
        loc_cache: Vec::new(),
        loc_cached: 0,
        sym: Symmetry::default(),
        images: Vec::new(),
        value_cycles: exec::has_value_cycle(&progs.paths, g.names.len()),
    };
    // DFS over the product of thread paths, pruning read values that no
    // chosen or remaining thread can write.
    let nt = progs.paths.len();
    let can: Vec<std::collections::HashSet<(usize, Val)>> = progs
        .paths
        .iter()
        .map(|ps| {
            ps.iter()
                .flat_map(|p| p.evs.iter())
                .filter(|e| e.kind.is_write())
                .map(|e| (e.loc, e.val))
                .collect()
        })
        .collect();
    ctx.sym = Symmetry::new(test, g, &progs.paths);
    if progs.paths.iter().all(|p| !p.is_empty()) {
        let mut sel = Vec::with_capacity(nt);
        dfs(&mut ctx, &progs.paths, &can, 0, &mut sel, &mut Vec::new())?;
    }
    let verdict = if ctx.positive == 0 {
        Verdict::Never
    } else if ctx.negative == 0 {
        Verdict::Always
    } else {
        Verdict::Sometimes
    };
    let validated = match test.quantifier {
        Quantifier::Exists => ctx.positive > 0,
        Quantifier::NotExists => ctx.positive == 0,
        Quantifier::Forall => ctx.negative == 0,
    };
    let state_count = ctx.states.len();
    let states = ctx
        .states
        .iter()
        .take(MAX_LISTED_STATES)
        .map(|s| {
            ctx.observed
                .iter()
                .zip(s)
                .map(|(r, v)| format!("{r}={};", g.show(*v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Ok(Outcome {
        name: test.name.clone(),
        quantifier: test.quantifier,
        condition: test.cond.to_string(),
        verdict,
        validated,
        state_count,
        states,
        positive: ctx.positive,
        negative: ctx.negative,
        data_race: ctx.data_race,
        candidates: ctx.candidates,
    })
}

/// The self-justified values of one execution when there are several
/// independent cycles (empty: at most one, [`exec::SYM`] everywhere).
#[derive(Default)]
struct Symbols {
    /// the cycle (1, 2, ...) of each event on one; `usize::MAX` elsewhere
    class: Vec<usize>,
    /// the cycle whose value each thread reads (0: none)
    thread: Vec<usize>,
}

impl Symbols {
    /// The value of `r` (`v`, computed with one symbol for all cycles) with
    /// the symbol of its cycle: `SYM + k` for the k-th cycle (from 0).
    fn value(&self, r: &StateRef, v: Val, g: &Globals, last: &[usize]) -> Val {
        if v != exec::SYM || self.class.is_empty() {
            return v;
        }
        let c = match r {
            StateRef::Loc(n) => g.index.get(n).map(|&l| self.class[last[l]]),
            StateRef::Reg(t, _) => self.thread.get(*t).copied(),
        };
        match c {
            Some(c) if c >= 1 && c != usize::MAX => exec::SYM + (c - 1) as Val,
            _ => v,
        }
    }

    /// Number the symbols of a state by first appearance (a state names
    /// its symbols apart; which cycle is called `S1` does not matter).
    fn canonical(&self, state: &mut [Val]) {
        if self.class.is_empty() {
            return;
        }
        let mut seen: Vec<Val> = Vec::new();
        for v in state.iter_mut() {
            if exec::is_sym(*v) {
                let k = match seen.iter().position(|s| s == v) {
                    Some(k) => k,
                    None => {
                        seen.push(*v);
                        seen.len() - 1
                    }
                };
                *v = exec::SYM + k as Val;
            }
        }
    }
}

/// Whether herd7 would have this candidate execution with these values.
/// herd7 enumerates `rf` and solves the value equations: a read's value is
/// determined if the write it reads from is (initial writes, constants, and
/// operations on determined reads; a branch does not determine the value
/// it tests: `if (r1)` is the operation `r1 != 0`).  A read left undetermined
/// is on a cycle of the equations: herd7 keeps it as one free symbol when
/// the cycle is made of copies only (lazymm's [`exec::SYM`]) and drops the
/// candidate otherwise.  So an execution in which an undetermined read
/// returns a concrete value is not one of herd7's (its value was chosen
/// from the domain, not forced), and one with a symbol is.  `None`: not
/// herd7's; else the symbols of its independent cycles (see [`Symbols`]).
fn justified<const W: usize>(st: &Static<W>, rf: &Rel<W>) -> Result<Option<Symbols>, CheckError> {
    let n = st.n;
    let mut src = vec![usize::MAX; n];
    for w in bits(st.w) {
        for r in bits(rf.r[w]) {
            src[r] = w;
        }
    }
    // deps[w]: the reads the value of write w is computed from
    let mut deps = vec![0 as Set; n];
    for r in bits(st.r) {
        for w in bits(st.data0.r[r]) {
            deps[w] |= 1 << r;
        }
    }
    for w in bits(st.w) {
        if st.evs[w].uses_old && w > 0 {
            deps[w] |= 1 << (w - 1);
        }
    }
    let mut det: Set = st.iw;
    loop {
        let before = det;
        for e in 0..n {
            if det >> e & 1 == 1 {
                continue;
            }
            let ev = &st.evs[e];
            let ok = if ev.kind.is_write() {
                deps[e] & !det == 0
            } else if ev.kind.is_read() {
                src[e] != usize::MAX && det >> src[e] & 1 == 1
            } else {
                true
            };
            if ok {
                det |= 1 << e;
            }
        }
        if det == before {
            break;
        }
    }
    let undet = st.r & !det;
    if undet == 0 {
        return Ok(Some(Symbols::default()));
    }
    if bits(undet).any(|r| st.evs[r].val != exec::SYM) {
        return Ok(None);
    }
    // the symbols: classes of undetermined events connected by rf and copies
    let mut class = vec![usize::MAX; n];
    let mut classes = 0;
    for start in bits(undet) {
        if class[start] != usize::MAX {
            continue;
        }
        classes += 1;
        let mut stack = vec![start];
        while let Some(e) = stack.pop() {
            if class[e] != usize::MAX {
                continue;
            }
            class[e] = classes;
            let mut next: Vec<usize> = bits(deps[e] & !det).collect();
            if st.evs[e].kind.is_read() && src[e] != usize::MAX {
                next.push(src[e]);
            }
            // the other direction: reads of e, writes copying e
            next.extend(bits(rf.r[e] & !det));
            next.extend((0..n).filter(|&w| deps[w] >> e & 1 == 1 && det >> w & 1 == 0));
            stack.extend(next);
        }
    }
    if classes == 1 {
        return Ok(Some(Symbols::default()));
    }
    // several independent cycles: one symbol each (herd7 names them after
    // its variables, `S8`, `S16`); a register holding a symbol copied it
    // from a read of its thread, so each thread must read one symbol only
    let nt = st.tid[st.nloc..].iter().max().map_or(0, |&t| t + 1);
    let mut thread = vec![0usize; nt];
    for r in bits(undet) {
        let t = st.tid[r];
        if thread[t] != 0 && thread[t] != class[r] {
            return Err(LitmusError::Unsupported(
                "one thread reading two independent self-justified (out-of-thin-air) values".into(),
            )
            .into());
        }
        thread[t] = class[r];
    }
    Ok(Some(Symbols { class, thread }))
}

#[allow(clippy::too_many_arguments)]
fn dfs<'p>(
    ctx: &mut Ctx<'_>,
    paths: &'p [Vec<Path>],
    can: &[std::collections::HashSet<(usize, Val)>],
    k: usize,
    sel: &mut Vec<&'p Path>,
    idx: &mut Vec<usize>,
) -> Result<(), CheckError> {
    if k == paths.len() {
        // symmetric threads: only the least combination of each orbit
        let canonical = match ctx.sym.images(idx) {
            Some(images) => {
                ctx.images = images;
                true
            }
            None => false,
        };
        // a filter on registers only is decided by the paths alone
        let filtered_out = ctx.test.filter.as_ref().is_some_and(|f| {
            let get = |r: &StateRef| match r {
                StateRef::Reg(t, name) => reg_value(sel, *t, name),
                StateRef::Loc(_) => 0,
            };
            regs_only(f) && !eval_cond(f, &get, ctx.g)
        });
        if canonical && !filtered_out && quick_feasible(ctx.g, sel) {
            ctx.combination(sel)?;
        }
        ctx.leaves += 1;
        if let Some(d) = ctx.deadline.filter(|_| ctx.leaves.is_multiple_of(256)) {
            if crate::thread_cpu_seconds() > d {
                return Err(CheckError::Timeout(ctx.timeout));
            }
        }
        return Ok(());
    }
    for (i, p) in paths[k].iter().enumerate() {
        sel.push(p);
        idx.push(i);
        // a filter on registers is decided as soon as the threads it names
        // are chosen (three-valued: unknown while some are not)
        if let Some(f) = &ctx.test.filter {
            let get = |r: &StateRef| match r {
                StateRef::Reg(t, name) if *t < sel.len() => Some(reg_value(sel, *t, name)),
                _ => None,
            };
            if eval_cond3(f, &get, ctx.g) == Some(false) {
                sel.pop();
                idx.pop();
                continue;
            }
        }
        let producible = |l: usize, v: Val| {
            ctx.g.init[l] == v
                || sel.iter().any(|q| {
                    q.evs
                        .iter()
                        .any(|w| w.kind.is_write() && w.loc == l && w.val == v)
                })
                || can[k + 1..].iter().any(|c| c.contains(&(l, v)))
        };
        let ok = sel.iter().all(|q| {
            q.evs
                .iter()
                .all(|e| !e.kind.is_read() || producible(e.loc, e.val))
        });
        if ok {
            dfs(ctx, paths, can, k + 1, sel, idx)?;
        }
        sel.pop();
        idx.pop();
    }
    Ok(())
}

/// Cheap necessary condition: every read value is written by someone (or initial).
fn quick_feasible(g: &Globals, sel: &[&Path]) -> bool {
    for p in sel {
        for e in &p.evs {
            if e.kind.is_read() {
                let ok = g.init[e.loc] == e.val
                    || sel.iter().any(|q| {
                        q.evs
                            .iter()
                            .any(|w| w.kind.is_write() && w.loc == e.loc && w.val == e.val)
                    });
                if !ok {
                    return false;
                }
            }
        }
    }
    true
}
