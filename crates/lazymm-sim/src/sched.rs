//! The scheduler model: tasks, processes sharing an mm, kernel threads, the
//! per-CPU idle task, runqueues, migration, fork/exec/exit. It calls the
//! runtime at exactly the kernel's points; synthetic workloads and trace
//! replay both drive it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use lazymm::mm::ArenaFull;
use lazymm::{Machine, MmRef, Next, Platform};

/// A task id.
pub type TaskId = u32;

/// A task's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TState {
    /// On a runqueue.
    Runnable,
    /// Current on its CPU.
    Running,
    /// Waiting for a wake-up.
    Blocked,
    /// Exited.
    Dead,
}

/// A task.
#[derive(Clone, Debug)]
pub struct Task {
    /// Its mm (a `users` reference it holds); `None` for a kernel thread or
    /// after `exit_mm`.
    pub mm: Option<MmRef>,
    /// Kernel thread?
    pub kthread: bool,
    /// State.
    pub state: TState,
    /// The CPU it runs on or is queued on.
    pub cpu: u32,
}

/// A small deterministic PRNG (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// Next 64 bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// True with probability `num / den`.
    #[inline]
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// The scheduler model over a machine.
pub struct Sched<'m, P: Platform> {
    /// The machine (runtime + scheme).
    pub m: &'m Machine<P>,
    /// All tasks ever created.
    pub tasks: Vec<Task>,
    /// Per-CPU runqueues.
    pub rq: Vec<VecDeque<TaskId>>,
    /// Per-CPU current task (`None`: the idle task).
    pub curr: Vec<Option<TaskId>>,
    /// Deterministic randomness.
    pub rng: Rng,
    /// Timer wake-ups: (round due, task, cpu).
    pub timers: BinaryHeap<Reverse<(u64, TaskId, u32)>>,
    /// The current round.
    pub now: u64,
    /// Called after each CPU's turn of a round-based workload
    /// ([`crate::workloads`]): the timing mode charges the turn's
    /// non-scheme work there ([`crate::timing::rounds`]).
    pub turn_hook: Option<TurnHook<'m, P>>,
    /// Called at the end of each round.
    pub round_hook: Option<RoundHook<'m, P>>,
}

/// A per-turn callback: the machine and the CPU whose turn ended.
pub type TurnHook<'m, P> = Box<dyn FnMut(&'m Machine<P>, usize) + 'm>;
/// A per-round callback.
pub type RoundHook<'m, P> = Box<dyn FnMut(&'m Machine<P>) + 'm>;

impl<'m, P: Platform> Sched<'m, P> {
    /// A scheduler with every CPU idle.
    pub fn new(m: &'m Machine<P>, seed: u64) -> Self {
        let n = m.ncpus;
        Sched {
            m,
            tasks: Vec::new(),
            rq: (0..n).map(|_| VecDeque::new()).collect(),
            curr: vec![None; n],
            rng: Rng::new(seed),
            timers: BinaryHeap::new(),
            now: 0,
            turn_hook: None,
            round_hook: None,
        }
    }

    /// Number of CPUs.
    pub fn ncpus(&self) -> usize {
        self.m.ncpus
    }

    /// A new process (fork of a new address space, or the first task of a
    /// workload), allocated by `cpu`. The task starts blocked.
    pub fn new_process(&mut self, cpu: usize) -> Result<TaskId, ArenaFull> {
        let mm = self.m.mm_alloc(cpu)?;
        Ok(self.push(Task {
            mm: Some(mm),
            kthread: false,
            state: TState::Blocked,
            cpu: cpu as u32,
        }))
    }

    /// A new thread sharing `parent`'s mm (`mmget` on `cpu`).
    pub fn new_thread(&mut self, parent: TaskId, cpu: usize) -> TaskId {
        let mm = self.tasks[parent as usize]
            .mm
            .expect("thread of a task with an mm");
        self.m.mmget(cpu, mm);
        self.push(Task {
            mm: Some(mm),
            kthread: false,
            state: TState::Blocked,
            cpu: cpu as u32,
        })
    }

    /// A new kernel thread (starts blocked).
    pub fn new_kthread(&mut self, cpu: usize) -> TaskId {
        self.push(Task {
            mm: None,
            kthread: true,
            state: TState::Blocked,
            cpu: cpu as u32,
        })
    }

    fn push(&mut self, t: Task) -> TaskId {
        self.tasks.push(t);
        (self.tasks.len() - 1) as TaskId
    }

    /// Wakes `t` onto `cpu`'s runqueue (no effect unless blocked).
    pub fn wake(&mut self, t: TaskId, cpu: usize) {
        let task = &mut self.tasks[t as usize];
        if task.state == TState::Blocked {
            task.state = TState::Runnable;
            task.cpu = cpu as u32;
            self.rq[cpu].push_back(t);
        }
    }

    /// Wakes `t` at round `due` on `cpu`.
    pub fn wake_at(&mut self, t: TaskId, cpu: usize, due: u64) {
        self.timers.push(Reverse((due, t, cpu as u32)));
    }

    /// Fires the timers due by now.
    pub fn fire_timers(&mut self) {
        while let Some(Reverse((due, t, cpu))) = self.timers.peek().copied() {
            if due > self.now {
                break;
            }
            self.timers.pop();
            self.wake(t, cpu as usize);
        }
    }

    /// `__schedule()` on `cpu`: the current task has already been given its
    /// new state; picks the next runnable task (or idle) and switches.
    pub fn schedule(&mut self, cpu: usize) {
        let next = self.rq[cpu].pop_front();
        let prev = self.curr[cpu];
        if prev.is_none() && next.is_none() {
            return; // idle stays idle
        }
        let target = match next {
            Some(t) => {
                let task = &mut self.tasks[t as usize];
                task.state = TState::Running;
                task.cpu = cpu as u32;
                // A kernel thread that adopted an mm (kthread_use_mm) has
                // `tsk->mm` set and is switched to like a user task.
                match task.mm {
                    Some(mm) if task.kthread => Next::Adopted(mm),
                    Some(mm) => Next::User(mm),
                    // A kernel thread (a kworker), not idle: for RCU a
                    // running kernel thread is not quiescent.
                    None => Next::Kthread,
                }
            }
            None => Next::Kernel,
        };
        self.curr[cpu] = next;
        self.m.switch_to(cpu, target);
    }

    /// If `cpu` is idle and has work, switch to it; if it has none, it
    /// enters an idle state (`cpuidle_enter`: with the `deep-idle` kernel
    /// option on x86, `leave_mm`; otherwise nothing).
    pub fn idle_pick(&mut self, cpu: usize) {
        if self.curr[cpu].is_none() {
            if self.rq[cpu].is_empty() {
                self.m.cpuidle_enter(cpu);
            } else {
                self.schedule(cpu);
            }
        }
    }

    /// The current task of `cpu` blocks.
    pub fn block(&mut self, cpu: usize) {
        if let Some(t) = self.curr[cpu] {
            self.tasks[t as usize].state = TState::Blocked;
        }
        self.schedule(cpu);
    }

    /// The current task of `cpu` is preempted (back of the runqueue).
    pub fn preempt(&mut self, cpu: usize) {
        if let Some(t) = self.curr[cpu] {
            self.tasks[t as usize].state = TState::Runnable;
            self.rq[cpu].push_back(t);
        }
        self.schedule(cpu);
    }

    /// The current task of `cpu` moves to `to`'s runqueue.
    pub fn migrate_current(&mut self, cpu: usize, to: usize) {
        if let Some(t) = self.curr[cpu] {
            let task = &mut self.tasks[t as usize];
            task.state = TState::Runnable;
            task.cpu = to as u32;
            self.rq[to].push_back(t);
        }
        self.schedule(cpu);
    }

    /// The current task of `cpu` exits: `exit_mm` (the CPU becomes lazy on
    /// the dying mm), then its final switch.
    pub fn exit_current(&mut self, cpu: usize) {
        if let Some(t) = self.curr[cpu] {
            let task = &mut self.tasks[t as usize];
            if task.mm.take().is_some() && !task.kthread {
                self.m.exit_mm(cpu);
            }
            task.state = TState::Dead;
        }
        self.schedule(cpu);
    }

    /// The current (user) task of `cpu` execs: a new mm.
    pub fn exec_current(&mut self, cpu: usize) -> Result<(), ArenaFull> {
        let t = self.curr[cpu].expect("exec needs a current task");
        let new = self.m.mm_alloc(cpu)?;
        self.m.exec(cpu, new);
        let task = &mut self.tasks[t as usize];
        task.mm = Some(new);
        task.kthread = false;
        Ok(())
    }

    /// An interrupt point on `cpu`.
    pub fn interrupt(&mut self, cpu: usize) {
        self.m.interrupt_point(cpu);
    }

    /// Live user tasks holding an mm.
    pub fn live_users_of(&self, mm: MmRef) -> usize {
        self.tasks
            .iter()
            .filter(|t| t.mm == Some(mm) && t.state != TState::Dead && !t.kthread)
            .count()
    }

    /// Runs `t` on its CPU now (ahead of its runqueue), preempting
    /// whatever runs there.
    pub fn run_now(&mut self, t: TaskId) -> usize {
        let cpu = self.tasks[t as usize].cpu as usize;
        if self.curr[cpu] == Some(t) {
            return cpu;
        }
        self.rq[cpu].retain(|&x| x != t);
        self.tasks[t as usize].state = TState::Runnable;
        self.rq[cpu].push_front(t);
        if self.curr[cpu].is_some() {
            self.preempt_to_front(cpu);
        } else {
            self.schedule(cpu);
        }
        cpu
    }

    fn preempt_to_front(&mut self, cpu: usize) {
        if let Some(c) = self.curr[cpu] {
            self.tasks[c as usize].state = TState::Runnable;
            // behind the task we want to run
            self.rq[cpu].insert(1, c);
        }
        self.schedule(cpu);
    }

    /// End of a run: every user task still alive exits, every CPU goes to
    /// idle and is quiesced (no lazy state left), so the ledger's leak check
    /// is meaningful.
    pub fn quiesce(&mut self) {
        for cpu in 0..self.ncpus() {
            if !self.m.is_online(cpu) {
                self.m.cpu_online(cpu);
            }
        }
        let alive: Vec<TaskId> = (0..self.tasks.len() as TaskId)
            .filter(|&t| {
                let k = &self.tasks[t as usize];
                k.state != TState::Dead && !k.kthread && k.mm.is_some()
            })
            .collect();
        for t in alive {
            let cpu = self.run_now(t);
            self.exit_current(cpu);
        }
        for cpu in 0..self.ncpus() {
            // Kernel threads still queued or running just go to sleep.
            while let Some(t) = self.rq[cpu].pop_front() {
                self.tasks[t as usize].state = TState::Blocked;
            }
            if self.curr[cpu].is_some() {
                self.block(cpu);
            }
        }
        for cpu in 0..self.ncpus() {
            self.m.quiesce_cpu(cpu);
        }
    }
}
