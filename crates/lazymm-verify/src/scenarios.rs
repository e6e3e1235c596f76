//! The loom scenarios of docs/design.md section 7.
//!
//! Conventions (the kernel's, kept by every script):
//!
//! * a user task running on a CPU holds one `users` reference;
//!   `switch_to(c, Kernel)` is that task blocking, `exit_mm` + a switch to a
//!   kernel thread is it exiting;
//! * "the task's reference is dropped elsewhere" (it was woken on another CPU
//!   and exited there) is an `mmput` by the CPU it blocked on, after the
//!   switch away: the scheduler's `on_cpu` release/acquire makes it ordered
//!   after the switch exactly as program order does;
//! * the setup runs before any CPU thread exists (it happens-before
//!   everything), and builds the lazy state the race starts from.
//!
//! Every script ends with its CPU in a kernel thread or idle; the runner then
//! quiesces it on its own thread (`unlazy_to_init`: the end-of-run unlazy races the
//! other CPUs' teardowns, as hotplug's or Andy's `unlazy_mm_irqs_off` would);
//! the runner quiesces every CPU once more after all scripts have ended (a
//! reference handed to a CPU after its own quiesce is found then).

use lazymm::{Arch, MmRef, Next};

use crate::{Scenario, M};

/// CPU `c` ran a thread of `mm` that blocked and was then dropped: `c` is
/// left lazily borrowing `mm` with no reference of its own.
pub fn make_lazy(m: &M, c: usize, mm: MmRef) {
    m.mmget(c, mm);
    m.switch_to(c, Next::User(mm));
    m.switch_to(c, Next::Kernel);
    m.mmput(c, mm);
}

/// A process of two threads; the one on CPU 1 ran and blocked (CPU 1 is
/// lazy on its mm, the thread keeps its `users` reference).
fn two_threads_one_blocked_on_cpu1(m: &M) -> MmRef {
    let a = m.mm_alloc(0).expect("alloc");
    m.mmget(0, a);
    m.switch_to(1, Next::User(a));
    m.switch_to(1, Next::Kernel);
    a
}

fn exit_current(m: &M, c: usize) {
    m.exit_mm(c);
    m.switch_to(c, Next::Kernel);
}

/// Exit while another CPU is lazy: CPU 1's task of mm A blocks (CPU 1 goes
/// lazy on A) and its reference is dropped, while CPU 0's task of A exits.
/// Either CPU can be the last user; CPU 1's MMU walks A after its
/// reference is gone, and it unlazies at the end.
pub fn exit_while_lazy(arch: Arch) -> Scenario {
    Scenario {
        name: "exit while another CPU is lazy",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            m.mmget(0, a);
            m.switch_to(1, Next::User(a));
            m.switch_to(0, Next::User(a));
            vec![a]
        },
        run: |m, c, mms| match c {
            0 => exit_current(m, 0),
            _ => {
                m.switch_to(1, Next::Kernel);
                m.interrupt_point(1);
                m.mmput(1, mms[0]);
                m.interrupt_point(1);
            }
        },
    }
}

/// Unlazy racing the teardown hand-off: CPU 1 lazily borrows A (no
/// reference) and switches to a task of B while CPU 0's task, A's last
/// user, exits and scans.
pub fn unlazy_races_handoff(arch: Arch) -> Scenario {
    Scenario {
        name: "unlazy racing the teardown hand-off",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            make_lazy(m, 1, a);
            let b = m.mm_alloc(1).expect("alloc");
            m.switch_to(0, Next::User(a));
            vec![a, b]
        },
        run: |m, c, mms| match c {
            0 => exit_current(m, 0),
            _ => {
                m.interrupt_point(1);
                m.switch_to(1, Next::User(mms[1]));
                exit_current(m, 1);
            }
        },
    }
}

/// Unlazy to `init_mm` racing the teardown: CPU 1 lazily borrows A (no
/// reference) and leaves lazy mode without switching to another user mm
/// (the end-of-run quiesce: `unlazy_to_init`, as hotplug or Andy's
/// `unlazy_mm_irqs_off` do), while A's last task exits on CPU 0. CPU 1
/// publishes nothing afterwards.
pub fn unlazy_to_init_races_teardown(arch: Arch) -> Scenario {
    Scenario {
        name: "unlazy to init_mm racing the teardown",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            make_lazy(m, 1, a);
            m.switch_to(0, Next::User(a));
            vec![a]
        },
        run: |m, c, _| match c {
            0 => exit_current(m, 0),
            _ => m.interrupt_point(1),
        },
    }
}

/// CPU hotplug racing the teardown: CPU 1 lazily borrows A (no reference)
/// and goes offline (`sched_force_init_mm`: unlazy, then leave the online
/// mask) while A's last task exits on CPU 0, whose scan or IPIs may or may
/// not still see CPU 1; CPU 1 then comes back online and runs a task of B.
pub fn offline_races_teardown(arch: Arch) -> Scenario {
    Scenario {
        name: "CPU offline racing the teardown",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            make_lazy(m, 1, a);
            let b = m.mm_alloc(1).expect("alloc");
            m.switch_to(0, Next::User(a));
            vec![a, b]
        },
        run: |m, c, mms| match c {
            0 => exit_current(m, 0),
            _ => {
                m.cpu_offline(1);
                m.cpu_online(1);
                m.switch_to(1, Next::User(mms[1]));
                exit_current(m, 1);
            }
        },
    }
}

/// The exiting CPU lazy on its own mm: both tasks of A exit at once on
/// CPUs 0 and 1; each CPU becomes lazy on A in `exit_mm` before its
/// `mmput`, so the last one's scan finds its own slot (the calling CPU)
/// and possibly the other's.
pub fn exiting_cpu_lazy_on_own_mm(arch: Arch) -> Scenario {
    Scenario {
        name: "the exiting CPU lazy on its own mm",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            m.mmget(0, a);
            m.switch_to(0, Next::User(a));
            m.switch_to(1, Next::User(a));
            vec![a]
        },
        run: |m, c, _| {
            exit_current(m, c);
            m.interrupt_point(c);
        },
    }
}

/// ABA: CPU 1 lazily borrows A while A's last task exits on CPU 0; CPU 0
/// then allocates B (the LIFO arena hands out A's address when A is
/// already freed), execs into it from the kernel thread, goes lazy on B,
/// returns to it and exits. Meanwhile CPU 1 unlazies to C and re-lazies on
/// C. A stale slot word naming A's address would be taken for B.
pub fn aba_address_reuse(arch: Arch) -> Scenario {
    Scenario {
        name: "re-lazy of a new mm reusing the address (ABA)",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            make_lazy(m, 1, a);
            let c = m.mm_alloc(1).expect("alloc");
            m.switch_to(0, Next::User(a));
            vec![a, c]
        },
        run: |m, c, mms| match c {
            0 => {
                exit_current(m, 0);
                let b = m.mm_alloc(0).expect("alloc");
                m.exec(0, b);
                m.switch_to(0, Next::Kernel);
                m.switch_to(0, Next::User(b));
                exit_current(m, 0);
            }
            _ => {
                m.interrupt_point(1);
                m.switch_to(1, Next::User(mms[1]));
                m.switch_to(1, Next::Kernel);
                m.interrupt_point(1);
                m.switch_to(1, Next::User(mms[1]));
                exit_current(m, 1);
            }
        },
    }
}

/// `kthread_use_mm` during exit: a kernel thread on CPU 1 holds a `users`
/// reference to A (from `mmget_not_zero`), adopts A, unuses it (becoming
/// lazy on A) and puts its reference, while A's task exits on CPU 0.
pub fn kthread_use_mm_during_exit(arch: Arch) -> Scenario {
    Scenario {
        name: "kthread_use_mm during exit",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            m.mmget(0, a);
            m.switch_to(0, Next::User(a));
            vec![a]
        },
        run: |m, c, mms| match c {
            0 => exit_current(m, 0),
            _ => {
                m.kthread_use_mm(1, mms[0]);
                m.interrupt_point(1);
                m.kthread_unuse_mm(1);
                m.mmput(1, mms[0]);
                m.interrupt_point(1);
            }
        },
    }
}

/// `kthread_use_mm` with only an `mmgrab` (kernel/kthread.c
/// kthread_use_mm requires no more; KVM's Xen code calls it with `users`
/// possibly 0): CPU 1 lazily borrows A (no reference) and a kernel thread
/// there holds an `mmgrab` of A taken in the setup; A's last task exits on
/// CPU 0 (its fix-up may hand CPU 1 `A|1`) while the kernel thread adopts
/// A, unuses it (CPU 1 lazy on A again, perhaps after the fix-up) and drops
/// its grab.
pub fn kthread_use_mm_grab_only(arch: Arch) -> Scenario {
    Scenario {
        name: "kthread_use_mm with only an mmgrab",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            make_lazy(m, 1, a);
            m.mmgrab(1, a);
            m.switch_to(0, Next::User(a));
            vec![a]
        },
        run: |m, c, mms| match c {
            0 => exit_current(m, 0),
            _ => {
                m.kthread_use_mm(1, mms[0]);
                m.kthread_unuse_mm(1);
                m.mmdrop(1, mms[0]);
                m.interrupt_point(1);
            }
        },
    }
}

/// `mmput_async` (kernel/fork.c): the last `users` reference of A is a
/// kernel thread's on CPU 0 (`mmget_not_zero` + `kthread_use_mm`; A's task
/// exited elsewhere), CPU 1 lazily borrows A. CPU 0's kernel thread unuses
/// A and drops it with `mmput_async`; CPU 0 then runs a task of B, which
/// blocks, and its kworker runs `mmput_async_fn`: `__mmput` of A on a CPU
/// lazy on B, not on A, while CPU 1 switches from idle to a kernel thread
/// (kernel -> kernel: the lazy borrow of A stays; for RCU a context switch,
/// kernel/rcu/tree_plugin.h rcu_note_context_switch) and later leaves lazy
/// mode (the end-of-run unlazy). B's task exited elsewhere: CPU 0 puts it
/// last.
pub fn mmput_async_on_a_kworker(arch: Arch) -> Scenario {
    Scenario {
        name: "mmput_async: __mmput on a kworker",
        cpus: 2,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            make_lazy(m, 1, a);
            let b = m.mm_alloc(0).expect("alloc");
            m.switch_to(0, Next::Kthread);
            m.mmget(0, a);
            m.mmput(0, a); // A's task exited elsewhere
            m.kthread_use_mm(0, a);
            vec![a, b]
        },
        run: |m, c, mms| match c {
            0 => {
                m.kthread_unuse_mm(0);
                m.mmput_async(0, mms[0]);
                m.switch_to(0, Next::User(mms[1]));
                m.switch_to(0, Next::Kthread);
                m.run_async_mmput(0);
                m.mmput(0, mms[1]);
            }
            _ => {
                m.interrupt_point(1);
                m.switch_to(1, Next::Kthread);
                m.interrupt_point(1);
            }
        },
    }
}

/// Three CPUs: CPUs 1 and 2 both lazily borrow A (no reference) and unlazy
/// (to `init_mm`, CPU 1 via a task of B) while A's last task exits on CPU 0.
pub fn two_lazy_cpus(arch: Arch) -> Scenario {
    Scenario {
        name: "exit while two CPUs are lazy (3 CPUs)",
        cpus: 3,
        arch,
        setup: |m| {
            let a = m.mm_alloc(0).expect("alloc");
            make_lazy(m, 1, a);
            make_lazy(m, 2, a);
            m.switch_to(0, Next::User(a));
            vec![a]
        },
        run: |m, c, _| match c {
            0 => exit_current(m, 0),
            _ => m.interrupt_point(c),
        },
    }
}

/// The stale-mailbox race of kernel-history 8.4 (3 CPUs): CPU 0's task of
/// B, B's last user, exits and its teardown scans CPU 1, which lazily
/// borrows B. Meanwhile CPU 1 leaves B for a task of X, goes lazy on X and
/// drops that task's reference, and X's last task exits on CPU 2, whose
/// teardown hands CPU 1 a unit of X (two-slot schemes: into its mailbox). A
/// teardown that trusts its earlier read of CPU 1's slot when it finds a
/// stale unit there frees X under CPU 1.
pub fn stale_mailbox_steal(arch: Arch) -> Scenario {
    Scenario {
        name: "stale mailbox: two teardowns, one lazy CPU (3 CPUs)",
        cpus: 3,
        arch,
        setup: |m| {
            let b = m.mm_alloc(0).expect("alloc");
            make_lazy(m, 1, b);
            let x = m.mm_alloc(2).expect("alloc");
            m.mmget(2, x);
            m.switch_to(0, Next::User(b));
            m.switch_to(2, Next::User(x));
            vec![b, x]
        },
        run: |m, c, mms| match c {
            1 => {
                m.switch_to(1, Next::User(mms[1]));
                m.switch_to(1, Next::Kernel);
                m.mmput(1, mms[1]);
                m.interrupt_point(1);
            }
            _ => exit_current(m, c),
        },
    }
}

/// The posted mockup's leak path: CPU 1 returns from lazy mode to the same
/// mm (x86's early return skips `lazy_mm_drop`, the slot keeps A), then
/// switches user -> user to B (no tail either) while A's last task exits on
/// CPU 0 and hands a reference to CPU 1's stale slot; CPU 1's next
/// `enter_lazy_tlb` overwrites `A|1` with B. Uses a profile whose scan
/// visits every CPU (arm64), as the seed's "for_each_online_cpu" port does.
pub fn stale_slot_after_early_return(arch: Arch) -> Scenario {
    Scenario {
        name: "stale slot after the same-mm early return",
        cpus: 2,
        arch,
        setup: |m| {
            let a = two_threads_one_blocked_on_cpu1(m);
            m.switch_to(1, Next::User(a));
            let b = m.mm_alloc(1).expect("alloc");
            m.switch_to(1, Next::User(b));
            m.mmput(1, a);
            m.switch_to(0, Next::User(a));
            vec![a, b]
        },
        run: |m, c, mms| match c {
            0 => exit_current(m, 0),
            _ => {
                m.switch_to(1, Next::Kernel);
                m.switch_to(1, Next::User(mms[1]));
                exit_current(m, 1);
            }
        },
    }
}

/// Issue 9's omitted flush paths (crates/lazymm/src/runtime/flush.rs):
/// CPU 1's task of A blocks (CPU 1 lazy on A) and wakes again while CPU 0's
/// task of A `mprotect`s (x86 arch/x86/mm/tlb.c `should_flush_tlb` skips a
/// lazy CPU, which must then catch up through `tlb_gen` in
/// `switch_mm_irqs_off`: `is_lazy = false; smp_mb(); read tlb_gen` against
/// the flusher's `inc_mm_tlb_gen; read is_lazy`, checked by the ledger's
/// stale-TLB rule) and `munmap`s (a flush with `freed_tables`: it reaches
/// lazy CPUs and moves their MMU), then both tasks exit.
pub fn flush_races_lazy_return(arch: Arch) -> Scenario {
    Scenario {
        name: "mprotect and munmap racing a lazy return",
        cpus: 2,
        arch,
        setup: |m| {
            let a = two_threads_one_blocked_on_cpu1(m);
            m.switch_to(0, Next::User(a));
            vec![a]
        },
        run: |m, c, mms| match c {
            0 => {
                m.mprotect(0);
                m.munmap(0);
                exit_current(m, 0);
            }
            _ => {
                m.switch_to(1, Next::User(mms[0]));
                m.interrupt_point(1);
                exit_current(m, 1);
            }
        },
    }
}

/// The scenarios that apply to `kind` on `arch`: all of [`all`], except the
/// 3-CPU ones where CPUs must serve IPI mailboxes (loom's stale reads of a
/// mailbox in a serving loop exceed any branch bound with three spinners).
pub fn for_scheme(kind: lazymm::SchemeKind, arch: Arch) -> Vec<Scenario> {
    let ipis = crate::needs_ipi_service(kind, arch);
    all(arch)
        .into_iter()
        .filter(|s| !(ipis && s.cpus > 2))
        .collect()
}

/// The profiles the suite runs: arm64 (no mask: the scan visits every
/// online CPU; broadcast flush), powerpc-hash (mask set on switch, never
/// cleared: a mask-driven scan without IPIs) and x86 (mask cleared on
/// switch away, the exit flush IPIs lazy CPUs).
pub const ARCHES: [Arch; 3] = [Arch::Arm64, Arch::PowerpcHash, Arch::X86];

/// Every scenario above on `arch`.
pub fn all(arch: Arch) -> Vec<Scenario> {
    vec![
        exit_while_lazy(arch),
        unlazy_to_init_races_teardown(arch),
        unlazy_races_handoff(arch),
        offline_races_teardown(arch),
        exiting_cpu_lazy_on_own_mm(arch),
        aba_address_reuse(arch),
        kthread_use_mm_during_exit(arch),
        kthread_use_mm_grab_only(arch),
        mmput_async_on_a_kworker(arch),
        two_lazy_cpus(arch),
        stale_mailbox_steal(arch),
        stale_slot_after_early_return(arch),
        flush_races_lazy_return(arch),
    ]
}
