//! Architecture profiles: what `mm_cpumask` means, and what the exit-time
//! TLB flush does (docs/design.md section 3, kernel-history.md section 6).

/// An architecture profile. Each names the kernel it models (issue 9): the
/// runtime's `switch_mm_irqs_off`, exit flush and hotplug follow Linux
/// 6.12.117 by default, with the differences kept as named options in
/// [`crate::schemes::KernelOptions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// x86, Linux 6.12 (arch/x86/mm/tlb.c): bit cleared on switch away
    /// *before* the CR3 write, set (locked RMW) on switch to; lazy CPUs stay
    /// set; the page-table-freeing flush at exit IPIs every CPU in the mask
    /// and a lazy one switches only its MMU to `init_mm` (`flush_tlb_func`).
    X86,
    /// x86 after 6.12 (commit 209954cbc7d0, "Update mm_cpumask lazily"):
    /// bits set on switch (tested first), cleared only by a flush IPI that
    /// finds another mm loaded (a superset mask). The once-a-second trim of
    /// `should_trim_cpumask` is not modelled. Not a superset of the CPUs
    /// whose `active_mm` is the mm under 6.12's `flush_tlb_func`: after a
    /// `munmap` flush (or deep idle) moved a lazy CPU's MMU, the next flush
    /// clears its bit; so the runtime's teardown scan visits every CPU here
    /// too (`Machine::lazy_cpus`).
    X86LazyCpumask,
    /// arm64, Linux 6.12: the mask is never tracked; flushes are hardware
    /// broadcast; `switch_mm` does nothing when `prev == next` and reads no
    /// `tlb_gen`. A scan of "every online CPU" where the mask is untracked is
    /// lazymm's extension (6.12 has no such default: shoot-down is only
    /// selected by powerpc).
    Arm64,
    /// powerpc Book3S64 radix, Linux 6.12: bit set on switch (`smp_mb()` only
    /// when newly set), cleared by `exit_lazy_flush_tlb` and hotplug; the
    /// fullmm exit flush is a `tlbie` broadcast (`flush_type_needed`), the
    /// IPI form (`exit_flush_lazy_tlbs`) is the option `radix-exit-ipi`.
    PowerpcRadix,
    /// powerpc hash MMU, Linux 6.12: set on switch, cleared only by hotplug
    /// (`clear_tasks_mm_cpumask`).
    PowerpcHash,
}

/// What the exit-time (`exit_mmap`, freed page tables) flush does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitFlush {
    /// A hardware broadcast invalidation: no IPI, no CPU leaves lazy mode.
    Broadcast,
    /// IPIs every CPU in `mm_cpumask` (the local CPU runs the handler
    /// directly); lazy targets switch to `init_mm` and clear their bit.
    IpiMask {
        /// Targets whose loaded mm is another one clear their bit too
        /// (x86's lazy cpumask, powerpc's exit_lazy_flush_tlb).
        clear_stale: bool,
    },
}

/// Which CPUs a teardown must consider (`for_each_possible_lazymm_cpu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LazyCpus {
    /// The bits of `mm_cpumask` (valid when the mask is a superset of the
    /// CPUs that can hold the mm lazily).
    Cpumask,
    /// Every online CPU: the generic default, for profiles that do not track
    /// the mask (the lesson of the seed's m68k build failure: a default must
    /// exist).
    AllOnline,
}

impl Arch {
    /// Every profile.
    pub const ALL: [Arch; 5] = [
        Arch::X86,
        Arch::X86LazyCpumask,
        Arch::Arm64,
        Arch::PowerpcRadix,
        Arch::PowerpcHash,
    ];

    /// The profile's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X86LazyCpumask => "x86-lazy-cpumask",
            Arch::Arm64 => "arm64",
            Arch::PowerpcRadix => "powerpc-radix",
            Arch::PowerpcHash => "powerpc-hash",
        }
    }

    /// Parses a profile name.
    pub fn parse(s: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Does the architecture set the accessed bit in hardware
    /// (`ARCH_HAS_HW_PTE_YOUNG`, which `CONFIG_LRU_GEN_WALKS_MMU` needs)?
    pub fn has_hw_pte_young(self) -> bool {
        // arch/x86/Kconfig and arch/arm64/Kconfig `select
        // ARCH_HAS_HW_PTE_YOUNG` (6.12); powerpc does not.
        matches!(self, Arch::X86 | Arch::X86LazyCpumask | Arch::Arm64)
    }

    /// Is this an x86 profile (x86's `switch_mm_irqs_off` shape)?
    pub fn is_x86(self) -> bool {
        matches!(self, Arch::X86 | Arch::X86LazyCpumask)
    }

    /// Does a switch *to* an mm set this CPU's bit?
    pub fn sets_cpumask(self) -> bool {
        !matches!(self, Arch::Arm64)
    }

    /// Does a switch *away* from an mm clear this CPU's bit?
    pub fn clears_on_switch(self) -> bool {
        matches!(self, Arch::X86)
    }

    /// Does CPU hotplug clear the dying CPU from every mm's mask?
    pub fn hotplug_clears(self) -> bool {
        matches!(self, Arch::PowerpcRadix | Arch::PowerpcHash)
    }

    /// The exit flush. `shootdown` is whether the running scheme is
    /// shoot-lazies (powerpc radix piggy-backs it on the exit flush only
    /// then; otherwise radix uses a broadcast `tlbie`).
    pub fn exit_flush(self, shootdown: bool) -> ExitFlush {
        match self {
            Arch::X86 => ExitFlush::IpiMask { clear_stale: false },
            Arch::X86LazyCpumask => ExitFlush::IpiMask { clear_stale: true },
            Arch::PowerpcRadix if shootdown => ExitFlush::IpiMask { clear_stale: true },
            Arch::PowerpcRadix | Arch::PowerpcHash | Arch::Arm64 => ExitFlush::Broadcast,
        }
    }

    /// Which CPUs a scan at teardown must visit.
    pub fn lazy_cpus(self) -> LazyCpus {
        if self.sets_cpumask() {
            LazyCpus::Cpumask
        } else {
            LazyCpus::AllOnline
        }
    }
}

impl core::fmt::Display for Arch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
