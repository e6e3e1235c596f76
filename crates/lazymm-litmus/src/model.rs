//! The Linux-kernel memory model (`linux-kernel.bell`, `linux-kernel.cat`,
//! `lock.cat` of Linux 6.12), evaluated on one candidate execution.
//!
//! Names follow the `.cat` files so the code can be read side by side with
//! the specification.

use crate::exec::{Ann, Ev, Fence, Kind, Path};
use crate::rel::{bits, Rel, Set};

/// Everything about a candidate execution that does not depend on `rf`/`co`.
pub struct Static<const W: usize> {
    pub n: usize,
    /// events: init writes first (one per location), then the threads'
    pub evs: Vec<Ev>,
    pub tid: Vec<usize>,
    pub nloc: usize,
    // sets
    pub r: Set,
    pub w: Set,
    pub m: Set,
    pub iw: Set,
    pub marked: Set,
    pub plain: Set,
    pub noreturn: Set,
    pub lkr: Set,
    pub lkw: Set,
    pub ul: Set,
    pub ru: Set,
    pub srcu_unlock: Set,
    pub srcu_lock: Set,
    pub sync_rcu: Set,
    pub sync_srcu: Set,
    /// events of each location
    pub at: Vec<Set>,
    // static relations
    pub po: Rel<W>,
    pub int: Rel<W>,
    pub ext: Rel<W>,
    pub loc: Rel<W>,
    pub po_loc: Rel<W>,
    pub rmw: Rel<W>,
    pub addr0: Rel<W>,
    pub data0: Rel<W>,
    pub ctrl0: Rel<W>,
    pub acq_po: Rel<W>,
    pub po_rel: Rel<W>,
    pub rmb: Rel<W>,
    pub wmb: Rel<W>,
    /// `mb` without the `po-unlock-lock-po` term
    pub mb0: Rel<W>,
    pub gp: Rel<W>,
    pub po_ul: Rel<W>,
    pub lkr_po: Rel<W>,
    pub after_ull_po: Rel<W>,
    pub rcu_rscsi: Rel<W>,
    pub fencerel_rmb: Rel<W>,
    pub has_gp: bool,
    pub has_plain: bool,
    pub has_srcu: bool,
    /// Axioms decided statically (lock nesting) failed.
    pub static_forbidden: bool,
    /// [`Pre`] when it does not depend on `rf`: no lock-read events (the
    /// `po-unlock-lock-po` term of `mb`) and no data dependency into a
    /// write that `rfi` could extend (`carry-dep`).  Every candidate of the
    /// combination shares it.
    pub pre: Option<Pre<W>>,
}

/// The relations of `linux-kernel.cat` below `ppo` that depend on `rf` only
/// through `carry-dep` and `po-unlock-lock-po`.
pub struct Pre<const W: usize> {
    pub addr: Rel<W>,
    pub strong: Rel<W>,
    pub nonrw: Rel<W>,
    pub fence: Rel<W>,
    /// `po-unlock-lock-po`, when there are lock reads
    pub pullp: Option<Rel<W>>,
    /// the terms of `ppo` without `overwrite & int` and `dep ; rfi`
    pub ppo0: Rel<W>,
    /// `dep ; [Marked]` (the `to-r` term is `dep ; [Marked] ; rfi`)
    pub dep_m: Rel<W>,
}

impl<const W: usize> Pre<W> {
    fn new(
        st: &Static<W>,
        addr: Rel<W>,
        data: &Rel<W>,
        ctrl: &Rel<W>,
        pullp: Option<Rel<W>>,
    ) -> Pre<W> {
        let all = all_events(st.n);
        let mut mb = st.mb0.clone();
        if let Some(p) = &pullp {
            mb.or_in(&p.restrict(st.m, all).seq(&st.after_ull_po));
        }
        let strong = mb.or(&st.gp);
        let nonrw = strong.or(&st.po_rel).or(&st.acq_po);
        let fence = nonrw.or(&st.wmb).or(&st.rmb);
        let dep = addr.or(data);
        let mut ppo0 = dep.or(ctrl).restrict(all, st.w);
        ppo0.or_in(&addr.restrict(all, st.plain).seq(&st.wmb));
        ppo0.or_in(&addr.restrict(all, st.r));
        ppo0.or_in(&fence.and(&st.int));
        if let Some(p) = &pullp {
            ppo0.or_in(&p.and(&st.int));
        }
        Pre {
            dep_m: dep.restrict(all, st.marked),
            addr,
            strong,
            nonrw,
            fence,
            pullp,
            ppo0,
        }
    }
}

/// The set of the `n` events.
fn all_events(n: usize) -> Set {
    if n == 128 {
        !0
    } else {
        (1u128 << n) - 1
    }
}

fn fencerel<const W: usize>(po: &Rel<W>, f: Set) -> Rel<W> {
    // po ; [f] ; po
    po.restrict(!0, f).seq(po)
}

impl<const W: usize> Static<W> {
    pub fn new(init: &[i64], paths: &[&Path]) -> Option<Static<W>> {
        let nloc = init.len();
        let n = nloc + paths.iter().map(|p| p.evs.len()).sum::<usize>();
        if n > W {
            return None;
        }
        let mut evs = Vec::with_capacity(n);
        let mut tid = Vec::with_capacity(n);
        let mut base = Vec::new();
        for (l, &v) in init.iter().enumerate() {
            evs.push(Ev {
                kind: Kind::W,
                fence: None,
                loc: l,
                val: v,
                ann: Ann::Once,
                rmw_read: false,
                rmw_instr: false,
                addr: 0,
                data: 0,
                ctrl: 0,
                uses_old: false,
            });
            tid.push(paths.len() + l);
        }
        for (t, p) in paths.iter().enumerate() {
            base.push(evs.len());
            for e in &p.evs {
                evs.push(e.clone());
                tid.push(t);
            }
        }
        let set = |f: &dyn Fn(usize, &Ev) -> bool| -> Set {
            evs.iter()
                .enumerate()
                .filter(|(i, e)| f(*i, e))
                .fold(0, |a, (i, _)| a | 1u128 << i)
        };
        let iw: Set = if nloc == 0 {
            0
        } else {
            (!0u128) >> (128 - nloc)
        };
        let r = set(&|_, e| e.kind.is_read());
        let w = set(&|_, e| e.kind.is_write());
        let m = r | w;
        let fset = |k: Fence| set(&|_, e| e.fence == Some(k));
        let lkr = set(&|_, e| e.kind == Kind::Lkr);
        let lkw = set(&|_, e| e.kind == Kind::Lkw);
        let ul = set(&|_, e| e.kind == Kind::Ul);
        let lf = set(&|_, e| matches!(e.kind, Kind::Lf | Kind::Rl));
        let ru = set(&|_, e| e.kind == Kind::Ru);
        let srcu_lock = set(&|_, e| e.kind == Kind::SrcuLock);
        let srcu_unlock = set(&|_, e| e.kind == Kind::SrcuUnlock);
        let sync_srcu = set(&|_, e| e.kind == Kind::SyncSrcu);
        let once = set(&|_, e| e.ann == Ann::Once && e.kind != Kind::F);
        let acquire = set(&|_, e| e.ann == Ann::Acquire) | lkr;
        let release = set(&|_, e| e.ann == Ann::Release) | ul;
        let noreturn = set(&|_, e| e.ann == Ann::Noreturn);
        let rmw_instr = set(&|_, e| e.rmw_instr);
        let mut rmw = Rel::empty(n);
        for (i, e) in evs.iter().enumerate() {
            if e.rmw_read && i + 1 < n {
                rmw.add(i, i + 1);
            }
        }
        let marked = !m
            | iw
            | once
            | release
            | acquire
            | rmw.domain()
            | rmw.range()
            | lkr
            | lkw
            | ul
            | lf
            | ru
            | srcu_lock
            | srcu_unlock;
        let all: Set = if n == 128 { !0 } else { (1u128 << n) - 1 };
        let marked = marked & all;
        let plain = m & !marked;
        let mut po = Rel::empty(n);
        let mut int = Rel::empty(n);
        let mut addr0 = Rel::empty(n);
        let mut data0 = Rel::empty(n);
        let mut ctrl0 = Rel::empty(n);
        for (t, p) in paths.iter().enumerate() {
            let b = base[t];
            let k = p.evs.len();
            let tmask: Set = if k == 0 {
                0
            } else {
                ((!0u128) >> (128 - k)) << b
            };
            for (j, e) in p.evs.iter().enumerate() {
                let i = b + j;
                int.r[i] = tmask;
                let later = tmask & !((1u128 << (i + 1)) - 1);
                po.r[i] = later;
                for d in bits(e.addr as u128) {
                    addr0.add(b + d, i);
                }
                for d in bits(e.data as u128) {
                    data0.add(b + d, i);
                }
                for d in bits(e.ctrl as u128) {
                    ctrl0.add(b + d, i);
                }
            }
        }
        for l in 0..nloc {
            int.add(l, l);
        }
        let mut ext = Rel::empty(n);
        for i in 0..n {
            ext.r[i] = all & !int.r[i];
        }
        let mut at = vec![0u128; nloc];
        for (i, e) in evs.iter().enumerate() {
            if e.loc != usize::MAX {
                at[e.loc] |= 1 << i;
            }
        }
        let mut loc = Rel::empty(n);
        for (i, e) in evs.iter().enumerate() {
            if e.loc != usize::MAX {
                loc.r[i] = at[e.loc];
            }
        }
        let po_loc = po.and(&loc);
        let acq_po = po.restrict(acquire, m);
        let po_rel = po.restrict(m, release);
        let r4rmb = r & !noreturn;
        let fencerel_rmb = fencerel(&po, fset(Fence::Rmb));
        let rmb = fencerel_rmb.restrict(r4rmb, r4rmb);
        let wmb = fencerel(&po, fset(Fence::Wmb)).restrict(w, w);
        let poq = po.opt();
        let mut mb0 = fencerel(&po, fset(Fence::Mb)).restrict(m, m);
        // [M] ; fencerel(Before-atomic) ; [RMW] ; po? ; [M]
        mb0.or_in(
            &fencerel(&po, fset(Fence::BeforeAtomic))
                .restrict(m, rmw_instr)
                .seq(&poq)
                .restrict(m, m),
        );
        // [M] ; po? ; [RMW] ; fencerel(After-atomic) ; [M]
        mb0.or_in(
            &poq.restrict(m, rmw_instr)
                .seq(&fencerel(&po, fset(Fence::AfterAtomic)))
                .restrict(m, m),
        );
        mb0.or_in(
            &poq.restrict(m, lkw)
                .seq(&fencerel(&po, fset(Fence::AfterSpinlock)))
                .restrict(m, m),
        );
        mb0.or_in(
            &poq.restrict(m, srcu_unlock)
                .seq(&fencerel(&po, fset(Fence::AfterSrcuReadUnlock)))
                .restrict(m, m),
        );
        let sync_rcu = fset(Fence::SyncRcu);
        let gp = po.restrict(!0, sync_rcu | sync_srcu).seq(&poq);
        let po_ul = po.restrict(!0, ul);
        let lkr_po = po.restrict(lkr, !0);
        let after_ull_po = po.restrict(fset(Fence::AfterUnlockLock), m);
        // rcu-rscs: match rcu_read_lock/unlock like parentheses, per thread
        let mut rcu_rscsi = Rel::empty(n);
        let mut static_forbidden = false;
        for (t, p) in paths.iter().enumerate() {
            let mut stack = Vec::new();
            for (j, e) in p.evs.iter().enumerate() {
                match e.fence {
                    Some(Fence::RcuLock) => stack.push(base[t] + j),
                    Some(Fence::RcuUnlock) => {
                        if let Some(l) = stack.pop() {
                            rcu_rscsi.add(base[t] + j, l);
                        }
                    }
                    _ => {}
                }
            }
        }
        // lock.cat static axioms
        if lkw != 0 {
            let ul_between = po_loc.restrict(!0, ul).seq(&po_loc);
            let nest = po_loc.restrict(lkw, lkr | ru).minus(&ul_between);
            if !nest.is_empty() {
                static_forbidden = true;
            }
            let critical = po_loc
                .restrict(lkw, ul)
                .minus(&po_loc.restrict(!0, lkw | ul).seq(&po_loc));
            let unmatched = lkw & !critical.domain();
            for a in bits(unmatched) {
                for b in bits(unmatched) {
                    if a != b && evs[a].loc == evs[b].loc {
                        static_forbidden = true;
                    }
                }
            }
        }
        let mut st = Static {
            n,
            evs,
            tid,
            nloc,
            r,
            w,
            m,
            iw,
            marked,
            plain,
            noreturn,
            lkr,
            lkw,
            ul,
            ru,
            srcu_unlock,
            srcu_lock,
            sync_rcu,
            sync_srcu,
            at,
            po,
            int,
            ext,
            loc,
            po_loc,
            rmw,
            addr0,
            data0,
            ctrl0,
            acq_po,
            po_rel,
            rmb,
            wmb,
            mb0,
            gp,
            po_ul,
            lkr_po,
            after_ull_po,
            rcu_rscsi,
            fencerel_rmb,
            has_gp: (sync_rcu | sync_srcu) != 0,
            has_plain: plain != 0,
            has_srcu: (srcu_lock | srcu_unlock | sync_srcu) != 0,
            static_forbidden,
            pre: None,
        };
        let dyn_deps = !st
            .data0
            .restrict(all, all & !st.srcu_unlock)
            .restrict(all, st.w)
            .is_empty();
        if st.lkr == 0 && !dyn_deps {
            st.pre = Some(Pre::new(&st, st.addr0.clone(), &st.data0, &st.ctrl0, None));
        }
        Some(st)
    }
}

/// Verdict of the model on one candidate execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    pub allowed: bool,
    pub data_race: bool,
}

/// Evaluate the LKMM on the candidate (`rf`: write -> read; `co`: strict,
/// transitive coherence order per location, init write first).
/// Coherence and atomicity are assumed already checked per location.
pub fn judge<const W: usize>(st: &Static<W>, rf: &Rel<W>, co: &Rel<W>) -> Judgement {
    let no = Judgement {
        allowed: false,
        data_race: false,
    };
    let n = st.n;
    let all: Set = if n == 128 { !0 } else { (1u128 << n) - 1 };
    let fr = rf.inv().seq(co);
    let rfe = rf.and(&st.ext);
    let rfi = rf.and(&st.int);
    let marked = st.marked;
    let pre_dyn;
    let pre = match &st.pre {
        Some(p) => p,
        None => {
            // carry-dep = (data ; [~Srcu-unlock] ; rfi)*
            let step = st.data0.restrict(all, all & !st.srcu_unlock).seq(&rfi);
            let (addr, data, ctrl) = if step.is_empty() {
                (st.addr0.clone(), st.data0.clone(), st.ctrl0.clone())
            } else {
                let carry = step.star();
                (
                    carry.seq(&st.addr0),
                    carry.seq(&st.data0),
                    carry.seq(&st.ctrl0),
                )
            };
            // po-unlock-lock-po = po ; [UL] ; (po|rf) ; [LKR] ; po
            let pullp = (st.lkr != 0).then(|| {
                st.po_ul
                    .seq(&st.po.or(rf).restrict(st.ul, st.lkr))
                    .seq(&st.lkr_po)
            });
            pre_dyn = Pre::new(st, addr, &data, &ctrl, pullp);
            &pre_dyn
        }
    };
    let (addr, strong, nonrw, fence) = (&pre.addr, &pre.strong, &pre.nonrw, &pre.fence);
    let overwrite = co.or(&fr);
    // ppo = to-r | to-w | fence & int | po-unlock-lock-po & int, where
    // to-w = rwdep | overwrite & int | addr ; [Plain] ; wmb and
    // to-r = addr ; [R] | dep ; [Marked] ; rfi (`pre.ppo0`: the rest)
    let mut ppo = pre.ppo0.or(&overwrite.and(&st.int));
    ppo.or_in(&pre.dep_m.seq(&rfi));
    // cumul-fence
    let rfe_m_opt = rfe.restrict(all, marked).opt();
    let a_cumul = rfe_m_opt.seq(&strong.or(&st.po_rel));
    let rmwseq = rf.seq(&st.rmw).star();
    let mut cumul0 = a_cumul.or(&st.wmb);
    if let Some(p) = &pre.pullp {
        cumul0.or_in(p);
    }
    let cumul = cumul0.restrict(marked, marked).seq(&rmwseq);
    let cumul_star = cumul.star();
    let prop = overwrite
        .and(&st.ext)
        .opt()
        .restrict(marked, all)
        .seq(&cumul_star)
        .restrict(all, marked)
        .seq(&rfe.opt())
        .restrict(all, marked);
    let mut prop_noid_int = prop.and(&st.int);
    for (i, x) in prop_noid_int.r.iter_mut().enumerate() {
        *x &= !(1u128 << i);
    }
    let hb = ppo.or(&rfe).or(&prop_noid_int).restrict(marked, marked);
    let hb_plus = hb.plus();
    if !hb_plus.irreflexive() {
        return no;
    }
    let hb_star = hb_plus.opt();
    let pb = prop.seq(strong).seq(&hb_star).restrict(all, marked);
    let pb_plus = pb.plus();
    if !pb_plus.irreflexive() {
        return no;
    }
    // RCU
    let mut rcu_fence = Rel::empty(n);
    let mut rb = Rel::empty(n);
    if st.has_gp {
        let pb_star = pb_plus.opt();
        // rcu-link is only ever used from grace periods and from the lock
        // ends of read-side critical sections: compute just those rows.
        let rows = st.sync_rcu | st.sync_srcu | st.rcu_rscsi.range() | st.srcu_lock;
        let link = st
            .po
            .opt()
            .restrict(rows, all)
            .seq(&hb_star)
            .seq(&pb_star)
            .seq(&prop)
            .seq(&st.po);
        let order = rcu_order(st, rf, &link);
        rcu_fence = st.po.seq(&order).seq(&st.po.opt());
        rb = prop
            .seq(&rcu_fence)
            .seq(&hb_star)
            .seq(&pb_star)
            .restrict(all, marked);
        if !rb.irreflexive() {
            return no;
        }
    }
    if !st.has_plain {
        return Judgement {
            allowed: true,
            data_race: false,
        };
    }
    // Plain accesses and data races
    let fence2 = fence.or(&rcu_fence);
    let strong2 = strong.or(&rcu_fence);
    let xbstar = hb.or(&pb).or(&rb).star();
    let vis = cumul_star.seq(&rfe.opt()).restrict(all, marked).seq(
        &strong2
            .restrict(all, marked)
            .seq(&xbstar)
            .or(&xbstar.and(&st.int)),
    );
    let w_pre = addr.or(&fence2).opt().restrict(marked, all);
    let rmb_tail = st
        .fencerel_rmb
        .restrict(st.r & !st.noreturn, all & !st.noreturn);
    let r_pre = addr.or(nonrw).or(&rmb_tail).opt().restrict(marked, all);
    let w_post = fence2.opt().restrict(all, marked).seq(&rmwseq);
    let rmb_head = st
        .fencerel_rmb
        .restrict(all & !st.noreturn, st.r & !st.noreturn);
    let r_post = nonrw.or(&rmb_head).opt().restrict(all, marked);
    let ww_vis = fence2
        .or(&strong2.seq(&xbstar).seq(&w_pre))
        .or(&w_post.seq(&vis).seq(&w_pre));
    let wr_vis = fence2
        .or(&strong2.seq(&xbstar).seq(&r_pre))
        .or(&w_post.seq(&vis).seq(&r_pre));
    let rw_xbstar = fence2.or(&r_post.seq(&xbstar).seq(&w_pre));
    let pre_race = Rel::cross(n, st.plain, st.m)
        .or(&Rel::cross(n, st.m & !st.iw, st.plain))
        .and(&st.ext);
    let rw_xbstar_inv = rw_xbstar.inv();
    let wr_incoh = pre_race.and(rf).and(&rw_xbstar_inv);
    let rw_incoh = pre_race.and(&fr).and(&wr_vis.inv());
    let ww_incoh = pre_race.and(co).and(&ww_vis.inv());
    if !(wr_incoh.is_empty() && rw_incoh.is_empty() && ww_incoh.is_empty()) {
        return no;
    }
    let marked_w = Rel::cross(n, marked, st.w).or(&rw_xbstar);
    let w_marked = Rel::cross(n, st.w, marked).or(&wr_vis);
    let ww_nonrace = ww_vis.and(&marked_w).and(&w_marked);
    let ww_race = pre_race.and(co).minus(&ww_nonrace);
    let wr_race = pre_race
        .and(&co.opt().seq(rf))
        .minus(&wr_vis)
        .minus(&rw_xbstar_inv);
    let rw_race = pre_race.and(&fr).minus(&rw_xbstar);
    Judgement {
        allowed: true,
        data_race: !(ww_race.is_empty() && wr_race.is_empty() && rw_race.is_empty()),
    }
}

/// The recursive `rcu-order` relation (with SRCU terms restricted by `loc`).
fn rcu_order<const W: usize>(st: &Static<W>, rf: &Rel<W>, link: &Rel<W>) -> Rel<W> {
    let n = st.n;
    let all: Set = if n == 128 { !0 } else { (1u128 << n) - 1 };
    let gp = Rel::id(n, st.sync_rcu);
    let rscsi = &st.rcu_rscsi;
    let sgp = Rel::id(n, st.sync_srcu);
    let srscsi = if st.has_srcu {
        // carry-srcu-data = (data ; [~Srcu-unlock] ; rf)*
        let carry = st.data0.restrict(all, all & !st.srcu_unlock).seq(rf).star();
        carry
            .restrict(st.srcu_lock, all)
            .seq(&st.data0)
            .restrict(all, st.srcu_unlock)
            .and(&st.loc)
            .inv()
    } else {
        Rel::empty(n)
    };
    // [S] ; r  and  r ; [S]  as restrictions (cheaper than compositions)
    let gl = link.restrict(st.sync_rcu, all);
    let sl = rscsi.seq(link);
    let sgl = link.restrict(st.sync_srcu, all);
    let ssl = srscsi.seq(link);
    let mut base = gl.seq(rscsi).or(&sl.restrict(all, st.sync_rcu)).or(&gp);
    if st.has_srcu {
        base.or_in(&sgp);
        base.or_in(&sgl.seq(&srscsi).and(&st.loc));
        base.or_in(&ssl.seq(&sgp).and(&st.loc));
    }
    let mut order = base.clone();
    loop {
        let ol = order.seq(link);
        let mut next = base.clone();
        next.or_in(&gl.seq(&ol).seq(rscsi));
        next.or_in(&sl.seq(&ol).restrict(all, st.sync_rcu));
        next.or_in(&ol.seq(&order));
        if st.has_srcu {
            next.or_in(&sgl.seq(&ol).seq(&srscsi).and(&st.loc));
            next.or_in(&ssl.seq(&ol).seq(&sgp).and(&st.loc));
        }
        next.or_in(&order);
        if next == order {
            return order;
        }
        order = next;
    }
}
