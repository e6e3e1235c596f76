//! PeterZ's adversarial exit in simulated time: every CPU runs one process
//! at a time; each process walks across `walk` CPUs (running one quantum —
//! the machine's `switch` — on each, then migrating to the next CPU), then
//! exits, and its CPU starts a fresh process. Every exit tears an mm down
//! while the CPUs it visited may hold it lazily (or, on profiles that never
//! shrink `mm_cpumask`, keep its bit): the exit flush and the schemes' IPIs
//! hit them, and their handlers delay what those CPUs were doing. Outputs:
//! exits and switches per simulated second, IPIs per CPU per second, the
//! mean exit latency, the hottest lines.
//!
//! Same runtime and scheme code as every other driver, through
//! [`Sched`](crate::sched::Sched): `migrate_current`, `idle_pick`,
//! `exit_current`, `new_process`.

use lazymm::SchemeKind;
use serde::Serialize;

use super::model::{ps, LineTime};
use super::spec::MachineSpec;
use super::{now, timed_machine, wake_idle, Events, IpiLedger};
use crate::sched::Sched;

/// The result of one run.
#[derive(Clone, Debug, Serialize)]
pub struct ExitWalkResult {
    /// Machine preset.
    pub machine: String,
    /// Scheme.
    pub scheme: String,
    /// CPUs each process visits before it exits.
    pub walk: usize,
    /// Exits per simulated second.
    pub exits_per_s: f64,
    /// Context switches per simulated second.
    pub switches_per_s: f64,
    /// IPIs (scheme + flush) handled per CPU per simulated second.
    pub ipis_per_cpu_s: f64,
    /// Mean simulated time of an exit (`exit_mm` to the end of `__mmput`,
    /// IPIs included), us.
    pub mean_exit_us: f64,
    /// The lines that spent most time moving, in the window.
    pub hottest: Vec<LineTime>,
    /// Ledger clean at the end.
    pub clean: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Turn,
    Wake,
}

/// Runs the exit walk of `scheme` on `spec` for `window_ns` simulated ns.
pub fn run(
    spec: &MachineSpec,
    scheme: SchemeKind,
    walk: usize,
    window_ns: f64,
) -> Result<ExitWalkResult, String> {
    let m = timed_machine(spec, scheme)?;
    let n = m.ncpus;
    let walk = walk.clamp(1, n);
    let end = ps(window_ns);
    let (exits, exit_ps, sw, ipis, hottest) = {
        let mut s = Sched::new(&m, 1);
        let mut left: Vec<u32> = Vec::new();
        let mut ev = Events::new();
        let spawn = |s: &mut Sched<'_, _>, left: &mut Vec<u32>, c: usize| -> Result<(), String> {
            let t = s.new_process(c).map_err(|e| e.to_string())?;
            if left.len() <= t as usize {
                left.resize(t as usize + 1, 0);
            }
            left[t as usize] = walk as u32;
            s.wake(t, c);
            Ok(())
        };
        for c in 0..n {
            spawn(&mut s, &mut left, c)?;
            ev.push(0, c, Ev::Wake);
        }
        let mut ipis = IpiLedger::new(&m);
        let (mut exits, mut exit_ps) = (0u64, 0u64);
        while let Some((_, cpu, e)) = ev.next(&m, end) {
            let mut before = m.cpu_stats(cpu);
            match e {
                Ev::Wake => {
                    if !wake_idle(&mut s, cpu) {
                        continue;
                    }
                }
                Ev::Turn => {
                    let Some(cur) = s.curr[cpu] else { continue };
                    m.p.model(|md| {
                        let sw = md.switch_cost();
                        md.clock[cpu] += sw;
                    });
                    let l = &mut left[cur as usize];
                    *l -= 1;
                    if *l == 0 {
                        let t0 = now(&m, cpu);
                        s.exit_current(cpu);
                        ipis.settle(&m, cpu, scheme, &before);
                        before = m.cpu_stats(cpu);
                        exits += 1;
                        exit_ps += now(&m, cpu) - t0;
                        spawn(&mut s, &mut left, cpu)?;
                        s.idle_pick(cpu);
                    } else {
                        let to = (cpu + 1) % n;
                        s.migrate_current(cpu, to);
                        if s.curr[to].is_none() {
                            let wakeup = m.p.model(|md| md.wakeup_cost());
                            ev.push(now(&m, cpu) + wakeup, to, Ev::Wake);
                        }
                    }
                }
            }
            ipis.settle(&m, cpu, scheme, &before);
            if s.curr[cpu].is_some() {
                ev.push(now(&m, cpu), cpu, Ev::Turn);
            }
        }
        let st = m.stats().cpu;
        let hot = m.p.model(|md| md.hottest(4));
        s.quiesce();
        (
            exits,
            exit_ps,
            st.switches(),
            st.ipis_handled + st.flush_ipis_handled,
            hot,
        )
    };
    let st = m.finish();
    let secs = window_ns * 1e-9;
    Ok(ExitWalkResult {
        machine: spec.name.clone(),
        scheme: scheme.name().into(),
        walk,
        exits_per_s: exits as f64 / secs,
        switches_per_s: sw as f64 / secs,
        ipis_per_cpu_s: ipis as f64 / n as f64 / secs,
        mean_exit_us: if exits == 0 {
            0.0
        } else {
            exit_ps as f64 / exits as f64 / 1e6
        },
        hottest,
        clean: st.ledger.uaf == 0 && st.ledger.double_free == 0 && st.ledger.leaked == 0,
    })
}
