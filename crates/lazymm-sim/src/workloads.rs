//! Synthetic workloads, deterministic from a seed. Each drives the
//! [`Sched`] model; none touches the runtime directly.

use lazymm::mm::ArenaFull;
use lazymm::Platform;

use crate::sched::{Sched, TState, TaskId};

/// The synthetic workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// will-it-scale `context_switch1_threads`: pairs of threads of one
    /// process ping-pong, one task per CPU, so every switch passes through
    /// idle.
    CtxswitchThreads,
    /// The same with each pair its own process.
    CtxswitchProcesses,
    /// PeterZ's adversarial exit: one process per CPU walks across every
    /// CPU, then exits; in waves.
    ExitStorm,
    /// Short-lived processes, shell-script shape: fork, exec, run briefly
    /// (sometimes migrating), exit, parent wakes.
    ForkExecExit,
    /// Kernel workers interleaved with user tasks; workers adopt live
    /// processes' mms with `kthread_use_mm` and drop them with `mmput` or
    /// `mmput_async` (whose `__mmput` a kworker runs later); processes come
    /// and go.
    KthreadMix,
    /// CPU offline/online cycles under a mixed load, with exec from a kernel
    /// thread (usermode helper) thrown in.
    Hotplug,
    /// Multi-threaded processes that `munmap` (a flush that frees page
    /// tables: it reaches lazy CPUs) and `mprotect` (a flush that x86 skips
    /// on lazy CPUs, `should_flush_tlb`) while their threads sleep, migrate
    /// and exit (issue 9's omitted flush paths).
    MunmapMix,
}

impl WorkloadKind {
    /// Every workload.
    pub const ALL: [WorkloadKind; 7] = [
        WorkloadKind::CtxswitchThreads,
        WorkloadKind::CtxswitchProcesses,
        WorkloadKind::ExitStorm,
        WorkloadKind::ForkExecExit,
        WorkloadKind::KthreadMix,
        WorkloadKind::Hotplug,
        WorkloadKind::MunmapMix,
    ];

    /// The workload's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::CtxswitchThreads => "ctxswitch-threads",
            WorkloadKind::CtxswitchProcesses => "ctxswitch-processes",
            WorkloadKind::ExitStorm => "exit-storm",
            WorkloadKind::ForkExecExit => "fork-exec-exit",
            WorkloadKind::KthreadMix => "kthread-mix",
            WorkloadKind::Hotplug => "hotplug",
            WorkloadKind::MunmapMix => "munmap-mix",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<WorkloadKind> {
        WorkloadKind::ALL.into_iter().find(|w| w.name() == s)
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs `kind` for about `rounds` scheduler rounds (each round gives every
/// CPU one turn), then lets every task exit.
pub fn run<P: Platform>(
    s: &mut Sched<'_, P>,
    kind: WorkloadKind,
    rounds: u64,
) -> Result<(), ArenaFull> {
    match kind {
        WorkloadKind::CtxswitchThreads => ping_pong(s, rounds, false),
        WorkloadKind::CtxswitchProcesses => ping_pong(s, rounds, true),
        WorkloadKind::ExitStorm => exit_storm(s, rounds),
        WorkloadKind::ForkExecExit => fork_exec_exit(s, rounds),
        WorkloadKind::KthreadMix => kthread_mix(s, rounds, false),
        WorkloadKind::Hotplug => kthread_mix(s, rounds, true),
        WorkloadKind::MunmapMix => munmap_mix(s, rounds),
    }
}

/// One round: every CPU gets a turn, starting at a random CPU.
fn round<P: Platform>(
    s: &mut Sched<'_, P>,
    mut turn: impl FnMut(&mut Sched<'_, P>, usize) -> Result<(), ArenaFull>,
) -> Result<(), ArenaFull> {
    let n = s.ncpus();
    let off = s.rng.below(n as u64) as usize;
    for i in 0..n {
        let cpu = (off + i) % n;
        turn(s, cpu)?;
        let m = s.m;
        if let Some(h) = s.turn_hook.as_mut() {
            h(m, cpu);
        }
    }
    let m = s.m;
    if let Some(h) = s.round_hook.as_mut() {
        h(m);
    }
    s.now += 1;
    s.fire_timers();
    Ok(())
}

fn ping_pong<P: Platform>(
    s: &mut Sched<'_, P>,
    rounds: u64,
    processes: bool,
) -> Result<(), ArenaFull> {
    let n = s.ncpus();
    let pairs = n / 2;
    let mut task = Vec::with_capacity(2 * pairs);
    let mut leader: Option<TaskId> = None;
    for p in 0..pairs {
        let a = match leader {
            Some(l) if !processes => s.new_thread(l, 2 * p),
            _ => {
                let t = s.new_process(2 * p)?;
                leader = Some(t);
                t
            }
        };
        let b = s.new_thread(a, 2 * p + 1);
        task.push(a);
        task.push(b);
    }
    // The even task of each pair holds the token and starts running.
    for p in 0..pairs {
        s.wake(task[2 * p], 2 * p);
        s.schedule(2 * p);
    }
    for _ in 0..rounds {
        round(s, |s, cpu| {
            if cpu >= 2 * pairs {
                return Ok(());
            }
            match s.curr[cpu] {
                // Running (it has the token): write to the pipe, waking the
                // partner on its CPU, then block in read().
                Some(_) => {
                    let partner = cpu ^ 1;
                    s.wake(task[partner], partner);
                    s.block(cpu);
                }
                None => s.idle_pick(cpu),
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn exit_storm<P: Platform>(s: &mut Sched<'_, P>, rounds: u64) -> Result<(), ArenaFull> {
    let n = s.ncpus();
    // steps[t] = CPUs still to visit
    let mut steps: Vec<u32> = Vec::new();
    let wave = |s: &mut Sched<'_, P>, steps: &mut Vec<u32>| -> Result<(), ArenaFull> {
        for c in 0..n {
            let t = s.new_process(c)?;
            if steps.len() <= t as usize {
                steps.resize(t as usize + 1, 0);
            }
            steps[t as usize] = n as u32;
            s.wake(t, c);
        }
        Ok(())
    };
    wave(s, &mut steps)?;
    let mut r = 0;
    while r < rounds {
        round(s, |s, cpu| {
            match s.curr[cpu] {
                Some(t) => {
                    let left = &mut steps[t as usize];
                    *left -= 1;
                    if *left == 0 {
                        s.exit_current(cpu);
                    } else {
                        s.migrate_current(cpu, (cpu + 1) % n);
                    }
                }
                None => s.idle_pick(cpu),
            }
            Ok(())
        })?;
        r += 1;
        let alive = s.tasks.iter().any(|t| t.state != TState::Dead);
        if !alive && r < rounds {
            wave(s, &mut steps)?;
        }
    }
    Ok(())
}

fn fork_exec_exit<P: Platform>(s: &mut Sched<'_, P>, rounds: u64) -> Result<(), ArenaFull> {
    let n = s.ncpus();
    let shells = (n / 2).max(1);
    // role[t]: 0 = shell, otherwise a child: remaining turns + exec flag
    #[derive(Clone, Copy)]
    enum Role {
        Shell {
            child: Option<TaskId>,
        },
        Child {
            parent: TaskId,
            turns: u32,
            exec_done: bool,
        },
    }
    let mut role: Vec<Role> = Vec::new();
    let set = |role: &mut Vec<Role>, t: TaskId, r: Role| {
        if role.len() <= t as usize {
            role.resize(t as usize + 1, Role::Shell { child: None });
        }
        role[t as usize] = r;
    };
    for i in 0..shells {
        let cpu = (2 * i) % n;
        let t = s.new_process(cpu)?;
        set(&mut role, t, Role::Shell { child: None });
        s.wake(t, cpu);
    }
    let mut stopping = false;
    for r in 0..rounds + 4 * n as u64 {
        if r >= rounds {
            stopping = true;
        }
        round(s, |s, cpu| {
            let Some(t) = s.curr[cpu] else {
                s.idle_pick(cpu);
                return Ok(());
            };
            match role[t as usize] {
                Role::Shell { child: None } => {
                    if stopping {
                        s.exit_current(cpu);
                        return Ok(());
                    }
                    // fork: the child is a new process (copy of the mm).
                    let c = s.new_process(cpu)?;
                    let target = s.rng.below(n as u64) as usize;
                    let turns = 1 + s.rng.below(4) as u32;
                    set(
                        &mut role,
                        c,
                        Role::Child {
                            parent: t,
                            turns,
                            exec_done: false,
                        },
                    );
                    role[t as usize] = Role::Shell { child: Some(c) };
                    s.wake(c, target);
                    // wait()
                    s.block(cpu);
                }
                Role::Shell { child: Some(_) } => s.block(cpu),
                Role::Child {
                    parent,
                    turns,
                    exec_done,
                } => {
                    if !exec_done {
                        s.exec_current(cpu)?;
                        role[t as usize] = Role::Child {
                            parent,
                            turns,
                            exec_done: true,
                        };
                    } else if turns > 1 {
                        role[t as usize] = Role::Child {
                            parent,
                            turns: turns - 1,
                            exec_done,
                        };
                        if s.rng.chance(1, 4) {
                            let to = s.rng.below(n as u64) as usize;
                            s.migrate_current(cpu, to);
                        } else {
                            s.preempt(cpu);
                        }
                    } else {
                        let pcpu = s.tasks[parent as usize].cpu as usize;
                        role[parent as usize] = Role::Shell { child: None };
                        s.exit_current(cpu);
                        s.wake(parent, pcpu);
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn kthread_mix<P: Platform>(
    s: &mut Sched<'_, P>,
    rounds: u64,
    hotplug: bool,
) -> Result<(), ArenaFull> {
    let n = s.ncpus();
    #[derive(Clone, Copy, PartialEq)]
    enum Role {
        User { turns: u32 },
        Worker { using: bool },
        Helper,
    }
    let mut role: Vec<Role> = Vec::new();
    let set = |t: TaskId, r: Role, role: &mut Vec<Role>| {
        if role.len() <= t as usize {
            role.resize(t as usize + 1, Role::Helper);
        }
        role[t as usize] = r;
    };
    // One kworker per CPU.
    let mut workers = Vec::new();
    for c in 0..n {
        let w = s.new_kthread(c);
        set(w, Role::Worker { using: false }, &mut role);
        workers.push(w);
        let due = 1 + s.rng.below(4);
        s.wake_at(w, c, due);
    }
    // Processes of 1-3 threads, about one thread per CPU.
    let spawn = |s: &mut Sched<'_, P>, role: &mut Vec<Role>, cpu: usize| -> Result<(), ArenaFull> {
        let lead = s.new_process(cpu)?;
        let threads = 1 + s.rng.below(3) as usize;
        let mut all = vec![lead];
        for _ in 1..threads {
            all.push(s.new_thread(lead, cpu));
        }
        for t in all {
            let turns = 2 + s.rng.below(40) as u32;
            if role.len() <= t as usize {
                role.resize(t as usize + 1, Role::Helper);
            }
            role[t as usize] = Role::User { turns };
            let c = s.rng.below(n as u64) as usize;
            s.wake(t, c);
        }
        Ok(())
    };
    for c in 0..n.div_ceil(2) {
        spawn(s, &mut role, c)?;
    }
    let mut offline: Option<usize> = None;
    let mut stopping = false;
    // The mm a worker adopted, and whether through a users reference
    // (mmget_not_zero) or only an mmgrab (the KVM shape: kvm->mm is grabbed
    // at VM creation and adopted by kthread_use_mm, kernel/kthread.c,
    // whether or not the process still lives: users may be 0).
    let mut adopted: Vec<Option<(lazymm::MmRef, bool)>> = vec![None; s.tasks.len() + 1];
    // The mm a worker keeps grabbed across adoptions (KVM's kvm->mm).
    let mut grabbed: Vec<Option<lazymm::MmRef>> = vec![None; s.tasks.len() + 1];
    for r in 0..rounds + 64 {
        if r >= rounds {
            stopping = true;
        }
        if hotplug && !stopping && n > 1 && r % 16 == 8 {
            // Take one CPU (not 0) offline, or bring the offline one back.
            match offline.take() {
                Some(c) => s.m.cpu_online(c),
                None => {
                    let c = 1 + s.rng.below(n as u64 - 1) as usize;
                    // Move its work away, let it reach idle, then offline.
                    let mut moved: Vec<TaskId> = s.rq[c].drain(..).collect();
                    if let Some(t) = s.curr[c] {
                        // The current task is pushed away; the CPU runs idle.
                        moved.push(t);
                        s.schedule(c);
                    }
                    for t in moved {
                        s.tasks[t as usize].cpu = 0;
                        s.tasks[t as usize].state = TState::Runnable;
                        s.rq[0].push_back(t);
                    }
                    s.m.cpu_offline(c);
                    offline = Some(c);
                }
            }
        }
        round(s, |s, cpu| {
            if offline == Some(cpu) {
                return Ok(());
            }
            let Some(t) = s.curr[cpu] else {
                s.idle_pick(cpu);
                s.interrupt(cpu);
                return Ok(());
            };
            if adopted.len() <= t as usize {
                adopted.resize(t as usize + 1, None);
                grabbed.resize(t as usize + 1, None);
            }
            match role[t as usize] {
                Role::User { turns } => {
                    if turns <= 1 || stopping {
                        s.exit_current(cpu);
                        if !stopping && s.rng.chance(1, 2) {
                            spawn(s, &mut role, cpu)?;
                        }
                    } else {
                        role[t as usize] = Role::User { turns: turns - 1 };
                        match s.rng.below(4) {
                            0 => {
                                s.tasks[t as usize].state = TState::Blocked;
                                let due = s.now + 1 + s.rng.below(3);
                                s.wake_at(t, cpu, due);
                                s.schedule(cpu);
                            }
                            1 => {
                                let to = s.rng.below(n as u64) as usize;
                                let to = if Some(to) == offline { 0 } else { to };
                                s.migrate_current(cpu, to);
                            }
                            _ => s.preempt(cpu),
                        }
                    }
                }
                Role::Worker { using } => {
                    if !using {
                        // The kworker runs its pool's mmput_async_fn works
                        // (kernel/fork.c): __mmput on this CPU, whatever
                        // this kernel thread borrowed lazily.
                        s.m.run_async_mmput(cpu);
                    }
                    if using {
                        // kthread_unuse_mm, then drop our users reference
                        // (the grab-only adoption keeps its mmgrab).
                        s.m.kthread_unuse_mm(cpu);
                        let (mm, users) = adopted[t as usize].take().expect("adopted mm");
                        s.tasks[t as usize].mm = None;
                        if users {
                            if s.rng.chance(1, 2) {
                                // The binder / bpf task-iterator shape
                                // (kernel/fork.c mmput_async): a last
                                // reference's __mmput goes to a kworker.
                                s.m.mmput_async(cpu, mm);
                            } else {
                                s.m.mmput(cpu, mm);
                            }
                        }
                        role[t as usize] = Role::Worker { using: false };
                        if stopping || s.rng.chance(1, 4) {
                            // The VM goes away: mmdrop(kvm->mm).
                            if let Some(g) = grabbed[t as usize].take() {
                                s.m.mmdrop(cpu, g);
                            }
                        }
                    } else if !stopping && grabbed[t as usize].is_some() && s.rng.chance(1, 3) {
                        // kthread_use_mm on the grabbed mm, users perhaps 0
                        // (its process may have exited meanwhile).
                        let mm = grabbed[t as usize].expect("grabbed mm");
                        s.m.kthread_use_mm(cpu, mm);
                        adopted[t as usize] = Some((mm, false));
                        s.tasks[t as usize].mm = Some(mm);
                        role[t as usize] = Role::Worker { using: true };
                        s.preempt(cpu);
                        return Ok(());
                    } else if !stopping && s.rng.chance(1, 3) {
                        // mmget_not_zero on a live process, then kthread_use_mm.
                        let live: Vec<lazymm::MmRef> = s
                            .tasks
                            .iter()
                            .filter(|k| !k.kthread && k.state != TState::Dead)
                            .filter_map(|k| k.mm)
                            .collect();
                        if !live.is_empty() {
                            let mm = live[s.rng.below(live.len() as u64) as usize];
                            if grabbed[t as usize].is_none() && s.rng.chance(1, 2) {
                                // Creating a VM: mmgrab(current->mm).
                                s.m.mmgrab(cpu, mm);
                                grabbed[t as usize] = Some(mm);
                            }
                            s.m.mmget(cpu, mm);
                            s.m.kthread_use_mm(cpu, mm);
                            adopted[t as usize] = Some((mm, true));
                            s.tasks[t as usize].mm = Some(mm);
                            role[t as usize] = Role::Worker { using: true };
                            s.preempt(cpu);
                            return Ok(());
                        }
                    }
                    if !using {
                        s.tasks[t as usize].state = TState::Blocked;
                        if !stopping {
                            let due = s.now + 1 + s.rng.below(6);
                            s.wake_at(t, cpu, due);
                        }
                        s.schedule(cpu);
                    } else {
                        s.preempt(cpu);
                    }
                }
                Role::Helper => {
                    // A usermode helper: a kernel thread that execs.
                    s.exec_current(cpu)?;
                    role[t as usize] = Role::User { turns: 2 };
                    s.preempt(cpu);
                }
            }
            Ok(())
        })?;
        if hotplug && !stopping && r % 32 == 5 {
            // call_usermodehelper: a kernel thread that will exec.
            let c = s.rng.below(n as u64) as usize;
            let c = if Some(c) == offline { 0 } else { c };
            let h = s.new_kthread(c);
            set(h, Role::Helper, &mut role);
            s.wake(h, c);
        }
    }
    if let Some(c) = offline {
        s.m.cpu_online(c);
    }
    // Workers still holding an adopted or grabbed mm give it back.
    for (t, a) in adopted.iter_mut().enumerate() {
        if let Some((mm, users)) = a.take() {
            let cpu = s.run_now(t as TaskId);
            s.m.kthread_unuse_mm(cpu);
            s.tasks[t].mm = None;
            if users {
                s.m.mmput(cpu, mm);
            }
        }
    }
    for (t, g) in grabbed.iter_mut().enumerate() {
        if let Some(mm) = g.take() {
            let cpu = s.run_now(t as TaskId);
            s.m.mmdrop(cpu, mm);
        }
    }
    Ok(())
}

/// [`WorkloadKind::MunmapMix`]: processes of 2-4 threads, about one thread
/// per CPU. A running thread munmaps (1 in 6 turns: mm/mmap.c
/// `unmap_region` → `tlb_finish_mmu` with freed page tables), mprotects
/// (1 in 6: a flush without), sleeps (a timer wakes it: its CPU goes lazy
/// meanwhile), migrates, or is preempted; after its turns it exits, and a
/// new process may replace it.
fn munmap_mix<P: Platform>(s: &mut Sched<'_, P>, rounds: u64) -> Result<(), ArenaFull> {
    let n = s.ncpus();
    let mut turns: Vec<u32> = Vec::new();
    let spawn = |s: &mut Sched<'_, P>, turns: &mut Vec<u32>, cpu: usize| -> Result<(), ArenaFull> {
        let lead = s.new_process(cpu)?;
        let threads = 2 + s.rng.below(3) as usize;
        let mut all = vec![lead];
        for _ in 1..threads {
            all.push(s.new_thread(lead, cpu));
        }
        for t in all {
            if turns.len() <= t as usize {
                turns.resize(t as usize + 1, 0);
            }
            turns[t as usize] = 4 + s.rng.below(24) as u32;
            let c = s.rng.below(n as u64) as usize;
            s.wake(t, c);
        }
        Ok(())
    };
    for c in 0..n.div_ceil(3) {
        spawn(s, &mut turns, c)?;
    }
    let mut stopping = false;
    for r in 0..rounds + 64 {
        if r >= rounds {
            stopping = true;
        }
        round(s, |s, cpu| {
            let Some(t) = s.curr[cpu] else {
                s.idle_pick(cpu);
                s.interrupt(cpu);
                return Ok(());
            };
            let left = turns[t as usize];
            if left <= 1 || stopping {
                s.exit_current(cpu);
                if !stopping && s.rng.chance(1, 3) {
                    spawn(s, &mut turns, cpu)?;
                }
                return Ok(());
            }
            turns[t as usize] = left - 1;
            match s.rng.below(6) {
                0 => {
                    s.m.munmap(cpu);
                    s.preempt(cpu);
                }
                1 => {
                    s.m.mprotect(cpu);
                    s.preempt(cpu);
                }
                2 | 3 => {
                    s.tasks[t as usize].state = TState::Blocked;
                    let due = s.now + 1 + s.rng.below(4);
                    s.wake_at(t, cpu, due);
                    s.schedule(cpu);
                }
                4 => {
                    let to = s.rng.below(n as u64) as usize;
                    s.migrate_current(cpu, to);
                }
                _ => s.preempt(cpu),
            }
            Ok(())
        })?;
    }
    Ok(())
}
