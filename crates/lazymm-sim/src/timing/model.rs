//! The coherence and clock model behind the timing mode.
//!
//! Every CPU has a clock (picoseconds). Every counted atomic access of the
//! counting backend ([`crate::counting::CountingPlatform`]) comes here with
//! the accessing CPU and its cache line:
//!
//! * each line has an **owner** (the last writer) and a set of **sharers**
//!   (CPUs that read it since);
//! * a load that hits (owner or sharer) costs `load_hit`; otherwise the line
//!   is fetched from its owner at the **topology distance** between the two
//!   CPUs (SMT sibling, same die, same socket, one hop, two hops);
//! * a store or RMW by the exclusive owner costs `load_hit` / `rmw_local`;
//!   otherwise the line is taken exclusive: the latency is the farthest of
//!   the owner and the sharers, and the RMW's own `rmw_local` follows; a
//!   **steal** (the requester holds no copy of a line another CPU wrote)
//!   costs the owner's distance times the machine's `coherence.steal`
//!   (1 unless measured: `this-machine`);
//! * **a line serves one transfer at a time**: a transfer starts at
//!   `max(requester's clock, line free)` and holds the line for its
//!   latency, so a line everyone fights over caps the machine's throughput
//!   at one transfer per latency, whatever the number of CPUs;
//! * the previous owner keeps the line until the request reaches it (by
//!   default half the transfer after it starts; `coherence.hold`, measured
//!   on `this-machine`): its own accesses until then hit. A CPU
//!   that RMWs a line again within that window (a tight loop) keeps it for
//!   a burst, as real cores do: two threads hammering one word run at a
//!   fraction of the one-way hand-off latency per operation
//!   (`crates/lazymm-bench` calibration: ~15 ns per RMW against a 40-190 ns
//!   hand-off);
//! * a `SeqCst` fence costs `fence`.
//!
//! The driver ([`super::wis`], [`super::exit_cost`]) adds what the scheme
//! code does not do through atomics: context-switch work, wake-up latency,
//! IPIs (send, delivery, handler on the target).
//!
//! Per line the model keeps the time it spent transferring (busy) and the
//! time requesters waited for it: the bottleneck line is the one with the
//! most busy time.

use lazymm::CpuId;
use serde::Serialize;

use super::spec::MachineSpec;
use crate::counting::KIND_NAMES;

const NONE: u32 = u32::MAX;

/// How far behind the newest request a line keeps its reservations (ps):
/// requests older than this are not expected (steps are microseconds).
const KEEP: u64 = 1_000_000_000;

/// Nanoseconds to the model's picoseconds.
pub fn ps(ns: f64) -> u64 {
    (ns * 1000.0).round().max(0.0) as u64
}

/// The machine's parameters in picoseconds, and its topology.
#[derive(Clone, Debug)]
pub struct Params {
    smt: u32,
    cores_per_die: u32,
    dies_per_socket: u32,
    sockets_per_node: u32,
    /// Transfer latency by distance: SMT, die, socket, node, remote.
    lat: [u64; 5],
    /// Load/store hit.
    pub hit: u64,
    /// RMW on an owned line.
    pub rmw: u64,
    /// Full fence.
    pub fence: u64,
    /// IPI: sender side.
    pub ipi_send: u64,
    /// IPI: delivery.
    pub ipi_delivery: u64,
    /// IPI: handler on the target.
    pub ipi_handler: u64,
    /// Wake-up of an idle CPU.
    pub wakeup: u64,
    /// Non-scheme part of a context switch.
    pub switch: u64,
    /// How much `switch` and `wakeup` vary from one to the next, in
    /// thousandths (uniform within +- that share of the figure;
    /// [`super::spec::Costs::spread`]).
    pub spread_milli: u64,
    /// Distance classes below this are served first from a queued
    /// requester ([`super::spec::Coherence::local_first`]).
    pub local_first: usize,
    /// A steal's latency as a multiple of the distance's, in thousandths
    /// ([`super::spec::Coherence::steal`]).
    pub steal_milli: u64,
    /// How long the previous owner keeps a line once a request to take it
    /// started, in thousandths of the transfer
    /// ([`super::spec::Coherence::hold`]).
    pub hold_milli: u64,
    places: Vec<[u32; 4]>,
}

impl Params {
    /// From a machine spec.
    pub fn of(s: &MachineSpec) -> Params {
        let t = &s.topology;
        let l = &s.latency_ns;
        let c = &s.cost_ns;
        let mut p = Params {
            smt: t.smt.value as u32,
            cores_per_die: t.cores_per_die.value as u32,
            dies_per_socket: t.dies_per_socket.value as u32,
            sockets_per_node: t.sockets_per_node.value as u32,
            lat: [
                ps(l.smt.value),
                ps(l.die.value),
                ps(l.socket.value),
                ps(l.node.value),
                ps(l.remote.value),
            ],
            hit: ps(c.load_hit.value),
            rmw: ps(c.rmw_local.value),
            fence: ps(c.fence.value),
            ipi_send: ps(c.ipi_send.value),
            ipi_delivery: ps(c.ipi_delivery.value),
            ipi_handler: ps(c.ipi_handler.value),
            wakeup: ps(c.wakeup.value),
            switch: ps(c.switch.value),
            spread_milli: (c.spread.value * 1000.0).round().max(0.0) as u64,
            local_first: s.coherence.local_first.value as usize,
            steal_milli: (s.coherence.steal.value * 1000.0).round().max(1.0) as u64,
            hold_milli: (s.coherence.hold.value * 1000.0).round().max(0.0) as u64,
            places: Vec::new(),
        };
        p.places = (0..s.cpus() as u32).map(|c| p.compute_place(c)).collect();
        p
    }

    /// Topology distance class of two CPUs: 0 SMT sibling, 1 same die,
    /// 2 same socket, 3 same node, 4 remote.
    #[inline]
    pub fn distance(&self, a: u32, b: u32) -> usize {
        let (x, y) = (self.place(a), self.place(b));
        // Core, die, socket, node: the first level they share.
        (0..4).find(|&i| x[i] == y[i]).unwrap_or(4)
    }

    /// Core, die, socket and node of a CPU (precomputed for the machine's
    /// CPUs: the queue walk asks for thousands of distances per access).
    #[inline]
    fn place(&self, c: u32) -> [u32; 4] {
        match self.places.get(c as usize) {
            Some(p) => *p,
            None => self.compute_place(c),
        }
    }

    fn compute_place(&self, c: u32) -> [u32; 4] {
        let core = c / self.smt;
        let die = core / self.cores_per_die;
        let socket = die / self.dies_per_socket;
        [core, die, socket, socket / self.sockets_per_node]
    }

    /// One-way transfer latency between two CPUs.
    #[inline]
    pub fn latency(&self, a: u32, b: u32) -> u64 {
        self.lat[self.distance(a, b)]
    }

    /// The latency of a steal by `a` of a line `b` holds modified.
    #[inline]
    pub fn steal_latency(&self, a: u32, b: u32) -> u64 {
        self.latency(a, b) * self.steal_milli / 1000
    }
}

#[derive(Clone, Debug, Default)]
struct LineT {
    owner: u32,
    /// The owner before the transfer in flight, and when the line leaves it
    /// (the request reaches it half a transfer after it starts): until
    /// then that CPU still has the line and its accesses hit.
    prev_owner: u32,
    depart_at: u64,
    sharers: Vec<u64>,
    nsharers: u32,
    /// Reserved transfer intervals `[start, end)`, sorted, none overlapping:
    /// a request takes the first gap at or after its time that fits its
    /// transfer. (A single "free at" time would make a CPU whose clock ran
    /// ahead — a long teardown step — drag every later-processed but
    /// earlier-timed requester behind it.) Intervals ending more than
    /// [`KEEP`] before a request are dropped.
    busy_iv: std::collections::VecDeque<(u64, u64, u32)>,
    busy: u64,
    wait: u64,
    transfers: u64,
    /// Transfers by the distance they were priced at.
    by_distance: [u64; 5],
    kind: u8,
}

impl LineT {
    /// The first gap of `lat` at or after `t`: its start and the index its
    /// interval goes at.
    fn gap(&mut self, t: u64, lat: u64) -> (u64, usize) {
        let iv = &mut self.busy_iv;
        while iv.front().is_some_and(|&(_, e, _)| e + KEEP < t) {
            iv.pop_front();
        }
        // Intervals are sorted and disjoint, so their ends are sorted too:
        // skip those ending at or before `t` by bisection (a saturated line
        // keeps a long history).
        let first = iv.partition_point(|&(_, e, _)| e <= t);
        let mut cursor = t;
        let mut at = iv.len();
        for (i, &(s, e, _)) in iv.iter().enumerate().skip(first) {
            if s >= cursor + lat {
                at = i;
                break;
            }
            cursor = cursor.max(e);
        }
        (cursor, at)
    }

    /// Reserves `[start, start + lat)` for `cpu` at index `at` (from
    /// [`LineT::gap`]).
    fn put(&mut self, at: usize, start: u64, lat: u64, cpu: u32) {
        if lat > 0 {
            self.busy_iv.insert(at, (start, start + lat, cpu));
        }
    }

    /// The holders of the reservations a request at `t` queues behind
    /// (those ending after `t` and starting before `before`).
    fn queued_ahead(&self, t: u64, before: u64) -> impl Iterator<Item = u32> + '_ {
        let first = self.busy_iv.partition_point(|&(_, e, _)| e <= t);
        self.busy_iv
            .iter()
            .skip(first)
            .take_while(move |&&(s, _, _)| s < before)
            .map(|&(_, _, c)| c)
    }

    fn has(&self, c: u32) -> bool {
        let w = (c / 64) as usize;
        w < self.sharers.len() && self.sharers[w] & (1 << (c % 64)) != 0
    }
    fn add(&mut self, c: u32) {
        let w = (c / 64) as usize;
        if self.sharers.len() <= w {
            self.sharers.resize(w + 1, 0);
        }
        if self.sharers[w] & (1 << (c % 64)) == 0 {
            self.sharers[w] |= 1 << (c % 64);
            self.nsharers += 1;
        }
    }
}

/// What an access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Load,
    /// A store.
    Store,
    /// A read-modify-write (failed compare-exchanges included).
    Rmw,
    /// A full fence.
    Fence,
}

/// Time spent on one cache line.
#[derive(Clone, Debug, Serialize)]
pub struct LineTime {
    /// The line's index in the platform.
    pub line: u32,
    /// What it holds (see [`KIND_NAMES`]).
    pub kind: &'static str,
    /// Simulated ns the line spent moving between CPUs.
    pub busy_ns: f64,
    /// Simulated ns requesters waited for it to be free.
    pub wait_ns: f64,
    /// Transfers.
    pub transfers: u64,
    /// Transfers by the distance they were priced at: SMT sibling, same
    /// die, same socket, one hop, two hops.
    pub by_distance: [u64; 5],
}

/// The model's state: per-CPU clocks and per-line coherence state.
#[derive(Clone, Debug)]
pub struct Model {
    /// Parameters.
    pub p: Params,
    /// Per-CPU clocks (ps).
    pub clock: Vec<u64>,
    lines: Vec<LineT>,
    /// Accesses seen.
    pub accesses: u64,
    /// Per CPU: simulated time (ps) its clock gained in accesses (waits
    /// included) and IPIs, i.e. the runtime's and the scheme's own work,
    /// apart from what the drivers charge for the rest of a switch.
    pub work: Vec<u64>,
    /// The state of the generator behind [`Model::vary`] (xorshift64, a
    /// fixed seed: runs stay deterministic).
    rng: u64,
}

impl Model {
    /// A model of `cpus` CPUs, all clocks at 0.
    pub fn new(p: Params, cpus: usize) -> Model {
        Model {
            p,
            clock: vec![0; cpus],
            lines: Vec::new(),
            accesses: 0,
            work: vec![0; cpus],
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// `x` (a `switch` or `wakeup` figure) varied by the machine's spread:
    /// uniform within `x * (1 +- spread)`, from a deterministic generator;
    /// `x` itself when the spread is 0. Without variation the drivers'
    /// clocks lock into step, and a line loaded 70 % of the time never
    /// makes anyone wait, which no machine does: requests that arrive at
    /// random queue well before saturation.
    pub fn vary(&mut self, x: u64) -> u64 {
        if self.p.spread_milli == 0 {
            return x;
        }
        let mut r = self.rng;
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        self.rng = r;
        // u in [0, 2^20): the offset is x * spread * (2u / 2^20 - 1).
        let u = (r >> 44) as i128;
        let span = x as i128 * self.p.spread_milli as i128;
        let off = span * (2 * u - (1 << 20)) / (1000 << 20);
        (x as i128 + off).max(0) as u64
    }

    /// A context switch's non-scheme part ([`Params::switch`], varied).
    pub fn switch_cost(&mut self) -> u64 {
        let x = self.p.switch;
        self.vary(x)
    }

    /// A wake-up ([`Params::wakeup`], varied).
    pub fn wakeup_cost(&mut self) -> u64 {
        let x = self.p.wakeup;
        self.vary(x)
    }

    /// A new line of kind index `kind` (the counting backend's order).
    pub fn add_line(&mut self, kind: u8) {
        self.lines.push(LineT {
            owner: NONE,
            prev_owner: NONE,
            kind,
            ..Default::default()
        });
    }

    /// One access by `cpu` to `line`, at `cpu`'s clock.
    pub fn access(&mut self, cpu: CpuId, line: u32, a: Access) {
        let t0 = self.clock[cpu];
        self.access_at(cpu, line, a);
        self.work[cpu] += self.clock[cpu] - t0;
    }

    fn access_at(&mut self, cpu: CpuId, line: u32, a: Access) {
        self.accesses += 1;
        let c = cpu as u32;
        let t = self.clock[cpu];
        if a == Access::Fence {
            self.clock[cpu] = t + self.p.fence;
            return;
        }
        let p = &self.p;
        let l = &mut self.lines[line as usize];
        if l.prev_owner == c && t < l.depart_at {
            // The line is still here: the request that takes it away has
            // not arrived yet.
            self.clock[cpu] = t + if a == Access::Rmw { p.rmw } else { p.hit };
            return;
        }
        let prev = l.owner;
        // A store or RMW by a CPU with no copy of a line another CPU
        // wrote: a steal, wherever the line comes from (its owner now, or a
        // requester queued ahead). The owner's own write with sharers left
        // is an invalidation, not a steal.
        let steal = a != Access::Load && l.owner != c && l.owner != NONE && !l.has(c);
        let (mut lat, end_cost) = match a {
            Access::Load => {
                if l.owner == c || l.owner == NONE || l.has(c) {
                    self.clock[cpu] = t + p.hit;
                    return;
                }
                let lat = p.latency(c, l.owner);
                l.add(c);
                (lat, p.hit)
            }
            Access::Store | Access::Rmw => {
                let own = if a == Access::Rmw { p.rmw } else { p.hit };
                let others = l.nsharers - u32::from(l.has(c));
                if (l.owner == c || l.owner == NONE) && others == 0 {
                    l.owner = c;
                    if l.nsharers != 0 {
                        l.sharers.iter_mut().for_each(|w| *w = 0);
                        l.nsharers = 0;
                    }
                    self.clock[cpu] = t + own;
                    return;
                }
                let mut lat = if l.owner != c && l.owner != NONE {
                    if steal {
                        p.steal_latency(c, l.owner)
                    } else {
                        // An upgrade: the requester shares the line.
                        p.latency(c, l.owner)
                    }
                } else {
                    0
                };
                if others != 0 {
                    for (wi, w) in l.sharers.iter().enumerate() {
                        let mut bits = *w;
                        while bits != 0 {
                            let s = wi as u32 * 64 + bits.trailing_zeros();
                            bits &= bits - 1;
                            if s != c {
                                lat = lat.max(p.latency(c, s));
                            }
                        }
                    }
                    l.sharers.iter_mut().for_each(|w| *w = 0);
                    l.nsharers = 0;
                }
                l.owner = c;
                (lat, own)
            }
            Access::Fence => unreachable!(),
        };
        // A request that queues (the line is reserved past its time) gets
        // the line from a requester queued ahead of it, not from one fixed
        // predecessor: within the machine's local-first scope the nearest
        // such requester (that scope's shared cache hands the line on to
        // its own requesters first); otherwise any of them, so it pays the
        // mean of their latencies (the arbitration order among far
        // requesters is unrelated to where they are; a fixed arrival order
        // would instead replay the lock-step order the run started in).
        let (mut start, mut at) = l.gap(t, lat);
        if start > t && lat > 0 {
            let (mut best, mut sum, mut n) = (usize::MAX, 0u64, 0u64);
            for h in l.queued_ahead(t, start) {
                if h == c {
                    continue;
                }
                let dh = p.distance(c, h);
                if dh < p.local_first {
                    best = best.min(dh);
                }
                sum += p.lat[dh];
                n += 1;
            }
            let q = if best != usize::MAX {
                p.lat[best]
            } else {
                sum.checked_div(n).unwrap_or(lat)
            };
            let q = if steal && n > 0 {
                q * p.steal_milli / 1000
            } else {
                q
            };
            if q != lat {
                lat = q;
                (start, at) = l.gap(t, lat);
            }
        }
        l.put(at, start, lat, c);
        if prev != c && a != Access::Load {
            l.prev_owner = prev;
            l.depart_at = start + lat * p.hold_milli / 1000;
        }
        l.wait += start - t;
        l.busy += lat;
        l.transfers += 1;
        // The distance class whose latency is nearest to the price paid.
        let d = (0..5).min_by_key(|&i| p.lat[i].abs_diff(lat)).unwrap_or(0);
        l.by_distance[d] += 1;
        self.clock[cpu] = start + lat + end_cost;
    }

    /// Lines by busy time, most first (at most `n`).
    pub fn hottest(&self, n: usize) -> Vec<LineTime> {
        let mut v: Vec<LineTime> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.transfers > 0)
            .map(|(i, l)| LineTime {
                line: i as u32,
                kind: KIND_NAMES[l.kind as usize],
                busy_ns: l.busy as f64 / 1000.0,
                wait_ns: l.wait as f64 / 1000.0,
                transfers: l.transfers,
                by_distance: l.by_distance,
            })
            .collect();
        v.sort_by(|a, b| b.busy_ns.total_cmp(&a.busy_ns).then(a.line.cmp(&b.line)));
        v.truncate(n);
        v
    }

    /// Resets the per-line accounting (after a warm-up), keeping coherence
    /// state and clocks.
    pub fn reset_accounting(&mut self) {
        for l in &mut self.lines {
            l.busy = 0;
            l.wait = 0;
            l.transfers = 0;
            l.by_distance = [0; 5];
        }
    }
}
