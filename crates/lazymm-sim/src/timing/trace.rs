//! A scheduler trace in simulated time: the trace replays
//! ([`crate::replay::replay_on`]) on a timed machine of the preset, its CPU
//! ids mapped to the preset's CPU ids one to one (the trace must fit).
//!
//! The trace's timestamps are the traced machine's time, context switches
//! and all; what the replay adds is the lazy-mm machinery: the runtime's and
//! the scheme's accesses (priced by the coherence model on the preset's
//! topology) and the IPIs they send. Before each event, the CPU's clock is
//! brought up to the event's timestamp; after it, the IPIs the event sent
//! are charged ([`super::IpiLedger`]). Outputs: that machinery's simulated
//! time per switch event and per exit event, and how far the busiest CPU's
//! clock ran past the trace's own time (the scheme's work that did not fit
//! into the trace's idle gaps).

use std::path::Path;

use lazymm::{CpuStats, MachineConfig, SchemeKind};
use lazymm_trace::{ParseOptions, TraceEvent, TraceSummary};
use serde::Serialize;

use super::model::{LineTime, Model, Params};
use super::spec::MachineSpec;
use super::IpiLedger;
use crate::counting::CountingPlatform;
use crate::replay::{replay_on, ReplayConfig, ReplayPhase, ReplayReport};

/// The result of one timed replay.
#[derive(Clone, Debug, Serialize)]
pub struct TraceTime {
    /// Machine preset.
    pub machine: String,
    /// Scheme.
    pub scheme: String,
    /// Trace name.
    pub trace: String,
    /// The trace's span, first to last event (us).
    pub trace_us: f64,
    /// Switch events and the machinery's time in them (ns per event).
    pub switch_events: u64,
    /// Simulated ns of lazy-mm work per switch event.
    pub ns_per_switch: f64,
    /// Exit events and the machinery's time in them (us per event, the
    /// teardown and its IPIs included).
    pub exit_events: u64,
    /// Simulated us of lazy-mm work per exit event.
    pub us_per_exit: f64,
    /// Simulated us of lazy-mm work over the whole trace, all CPUs.
    pub total_us: f64,
    /// How far the last CPU clock ran past the trace's last timestamp (us).
    pub overrun_us: f64,
    /// IPIs (scheme + flush) sent.
    pub ipis: u64,
    /// The lines that spent most time moving.
    pub hottest: Vec<LineTime>,
    /// The replay's exact counts (identical to the untimed replay's).
    pub replay: ReplayReport,
}

/// Replays `path` (whose scan is `summary`) with `scheme` on `spec`.
pub fn run(
    spec: &MachineSpec,
    scheme: SchemeKind,
    path: &Path,
    opts: &ParseOptions,
    summary: &TraceSummary,
) -> Result<TraceTime, String> {
    let cpus = summary.machine_cpus();
    if cpus > spec.cpus() {
        return Err(format!(
            "{}: the trace has CPU ids up to {}; machine {} has {} CPUs",
            path.display(),
            cpus - 1,
            spec.name,
            spec.cpus()
        ));
    }
    let mut options = MachineConfig::new(1, spec.arch(), scheme).options;
    options.kernel = lazymm::schemes::KernelOptions::parse(&spec.kernel)?;
    let cfg = ReplayConfig {
        scheme,
        arch: spec.arch(),
        options,
    };
    let p = CountingPlatform::timed(Model::new(Params::of(spec), spec.cpus()));
    let mut first: Option<u64> = None;
    let mut last_t = 0u64;
    let mut before: Option<(usize, CpuStats, u64)> = None;
    let mut ledger: Option<IpiLedger> = None;
    let (mut sw_n, mut sw_ps, mut ex_n, mut ex_ps, mut ipis) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut end_state: Option<(u64, u64, Vec<LineTime>)> = None;
    let replay = replay_on(path, opts, summary, &cfg, p, &mut |m, phase| match phase {
        ReplayPhase::Before(ev) => {
            let cpu = ev.cpu() as usize;
            let t = ev.time_us() * 1_000_000;
            first.get_or_insert(t);
            last_t = last_t.max(t);
            if ledger.is_none() {
                ledger = Some(IpiLedger::new(m));
            }
            let w = m.p.model(|md| {
                md.clock[cpu] = md.clock[cpu].max(t);
                md.work[cpu]
            });
            before = Some((cpu, m.cpu_stats(cpu), w));
        }
        ReplayPhase::After(ev) => {
            let Some((cpu, st, w0)) = before.take() else {
                return;
            };
            let a = m.cpu_stats(cpu);
            ipis += (a.ipis - st.ipis) + (a.flush_ipis - st.flush_ipis);
            if let Some(ld) = ledger.as_mut() {
                ld.settle(m, cpu, scheme, &st);
            }
            let spent = m.p.model(|md| md.work[cpu]) - w0;
            match ev {
                TraceEvent::Switch { .. } => {
                    sw_n += 1;
                    sw_ps += spent;
                }
                TraceEvent::Exit { .. } => {
                    ex_n += 1;
                    ex_ps += spent;
                }
                _ => {}
            }
        }
        ReplayPhase::End => {
            end_state = Some(m.p.model(|md| {
                (
                    md.clock.iter().copied().max().unwrap_or(0),
                    md.work.iter().sum(),
                    md.hottest(4),
                )
            }));
        }
    })
    .map_err(|e| e.to_string())?;
    let (end, work, hottest) = end_state.unwrap_or_default();
    let per = |ps: u64, n: u64, unit: f64| {
        if n == 0 {
            0.0
        } else {
            ps as f64 / unit / n as f64
        }
    };
    Ok(TraceTime {
        machine: spec.name.clone(),
        scheme: scheme.name().into(),
        trace: replay.run.workload.clone(),
        trace_us: (last_t - first.unwrap_or(0)) as f64 / 1e6,
        switch_events: sw_n,
        ns_per_switch: per(sw_ps, sw_n, 1e3),
        exit_events: ex_n,
        us_per_exit: per(ex_ps, ex_n, 1e6),
        total_us: work as f64 / 1e6,
        overrun_us: end.saturating_sub(last_t) as f64 / 1e6,
        ipis,
        hottest,
        replay,
    })
}
