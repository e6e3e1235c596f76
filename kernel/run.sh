#!/bin/bash
# lazymm kernel harness: Linux 6.12.117 (Debian linux-source-6.12) with the
# lazy TLB hand-off series, built and stress-tested on 4 vCPUs under QEMU.
#
#   kernel/run.sh deps                     install the Debian packages
#   kernel/run.sh build MODE               extract, apply, configure, build
#   kernel/run.sh boot  MODE [STRESS]      boot + stress, print the verdict
#   kernel/run.sh test  MODE [STRESS]      build (incremental) + boot
#   kernel/run.sh trace MODE [STRESS]      boot with a tracefs capture, then
#                                          convert it for `lazymm replay`
#
# MODE: stock        refcount (MMU_LAZY_TLB_HANDOFF=n), no debug options
#       handoff      the series, MMU_LAZY_TLB_HANDOFF=y
#       debug        handoff + KASAN + lockdep (PROVE_LOCKING) + DEBUG_VM
#       stock-debug  stock + KASAN + lockdep + DEBUG_VM
#       mutant[:NAME] debug + kernel/mutants/NAME.patch (default
#                    skip-remote-cpu); shares debug's build tree (reverted after)
# STRESS: "FORKS PINGPONG KTHREAD_ROUNDS HOTPLUG_CYCLES" (default "2000 20000 600 30")
#
# Environment: LAZYMM_KWORK (default /work/kbuild): where the kernel trees,
# build directories and logs live (never inside the repository).
# Exit status: 0 pass, 1 fail, 2 usage or setup error.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${LAZYMM_KWORK:-/work/kbuild}
TARBALL=/usr/src/linux-source-6.12.tar.xz
SRC=$WORK/linux-source-6.12
NICE="nice -n 5"
JOBS=${LAZYMM_JOBS:-2}

log() { echo "run.sh: $*" >&2; }
die() { log "$*"; exit 2; }
now() { date +%s; }

deps() {
	local pkgs="build-essential flex bison bc libelf-dev libssl-dev cpio qemu-system-x86 busybox-static linux-source-6.12"
	local missing=""
	for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
	if [ -n "$missing" ]; then
		log "installing:$missing"
		apt-get update -q && apt-get install -y $missing
	fi
}

# The pristine tree, as a git repository with the series applied on a branch.
tree() {
	[ -f "$TARBALL" ] || die "$TARBALL missing (apt-get install linux-source-6.12)"
	if [ ! -d "$SRC/.git" ]; then
		local t=$(now)
		mkdir -p "$WORK"
		rm -rf "$SRC"
		tar -C "$WORK" -xf "$TARBALL"
		( cd "$SRC" && git init -q && git add -A -f &&
		  git -c user.name=lazymm -c user.email=lazymm@localhost \
			commit -qm "Linux 6.12.117 (Debian linux-source-6.12)" &&
		  git tag v6.12.117-debian )
		log "extracted $TARBALL in $(( $(now) - t )) s"
	fi
	cd "$SRC"
	git rev-parse -q --verify v6.12.117-debian >/dev/null || git tag v6.12.117-debian "$(git rev-list --max-parents=0 HEAD)"
	# (Re)apply the series when it changed.
	local want=$(cat "$HERE"/patches/*.patch | sha1sum | cut -c1-12)
	if [ "$(git config lazymm.series || true)" != "$want" ]; then
		git reset -q --hard && git checkout -q -B lazymm v6.12.117-debian
		git -c user.name=lazymm -c user.email=lazymm@localhost am -q "$HERE"/patches/*.patch
		git config lazymm.series "$want"
		log "applied $(ls "$HERE"/patches/*.patch | wc -l) patches"
	fi
	local m
	for m in "$HERE"/mutants/*.patch; do
		git apply --check "$m" 2>/dev/null || die "$SRC: mutant $(basename "$m") left applied? (git -C $SRC apply -R $m)"
	done
}

outdir() {
	case "$1" in
	mutant*) echo "$WORK/out-debug" ;;
	*) echo "$WORK/out-$1" ;;
	esac
}

build() {
	local mode=$1 out mutant="" t
	out=$(outdir "$mode")
	case "$mode" in
	stock|handoff|debug|stock-debug) ;;
	mutant) mutant=skip-remote-cpu ;;
	mutant:*) mutant=${mode#mutant:} ;;
	*) die "unknown mode $mode" ;;
	esac
	tree
	if [ ! -f "$out/.config" ]; then
		"$HERE"/config.sh "$SRC" "$out" "${mode%%:*}"
	fi
	if [ -n "$mutant" ]; then
		[ -f "$HERE/mutants/$mutant.patch" ] || die "no mutant $mutant"
		git -C "$SRC" apply "$HERE/mutants/$mutant.patch"
	fi
	t=$(now)
	local rc=0
	$NICE make -s -C "$SRC" O="$out" -j"$JOBS" bzImage > "$out/build.log" 2>&1 || rc=$?
	[ -n "$mutant" ] && git -C "$SRC" apply -R "$HERE/mutants/$mutant.patch"
	if [ $rc != 0 ]; then
		tail -30 "$out/build.log" >&2
		die "build $mode failed (log $out/build.log)"
	fi
	cp "$out/arch/x86/boot/bzImage" "$WORK/bzImage-${mode//:/-}"
	log "built $mode in $(( $(now) - t )) s: $WORK/bzImage-${mode//:/-}"
}

initramfs() {
	local dir=$WORK/initramfs
	rm -rf "$dir" && mkdir -p "$dir"/{bin,proc,sys,dev,tmp}
	cp /usr/bin/busybox "$dir/bin/busybox"
	cp "$HERE/initramfs/init" "$dir/init"
	gcc -O2 -Wall -static -pthread -o "$dir/stress" "$HERE/stress/stress.c"
	( cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1 ) > "$WORK/init.cpio.gz"
}

# Boot MODE's image on 4 vCPUs; serial log to $WORK/MODE.serial.log
boot() {
	local mode=$1 stress=${2:-2000 20000 600 30} trace=${3:-0}
	local img=$WORK/bzImage-${mode//:/-} tag=${mode//:/-}
	[ -f "$img" ] || die "no $img: run.sh build $mode first"
	initramfs
	[ "$trace" = 1 ] && tag=$tag-trace
	local ser=$WORK/$tag.serial.log t=$(now) rc=0
	rm -f "$ser"
	# microvm with acpi=off: QEMU writes an MP table listing every vCPU (the
	# pc machine's SeaBIOS table lists one, and the tinyconfig kernel has no
	# ACPI). reboot=t: a triple fault, so -no-reboot ends QEMU.
	timeout 1800 qemu-system-x86_64 -M microvm,acpi=off -accel tcg,thread=multi -smp 4 -m 1024 \
		-display none -monitor none -no-reboot \
		-serial file:"$ser" \
		-kernel "$img" -initrd "$WORK/init.cpio.gz" \
		-append "console=ttyS0 printk.time=1 reboot=t panic=-1 oops=panic lazymm.stress=\"$stress\" lazymm.trace=$trace" \
		|| rc=$?
	log "boot $mode: qemu exit $rc after $(( $(now) - t )) s; serial log $ser"
	verdict "$ser"
}

# Pass: the stress printed PASS and the log has no KASAN/lockdep/WARN/BUG line.
verdict() {
	local ser=$1 bad
	bad=$(grep -aE 'BUG:|WARNING:|KASAN|kernel BUG|Oops|general protection|DEBUG_LOCKS_WARN_ON|suspicious RCU usage|possible circular locking|inconsistent lock state|Kernel panic|INFO: task .* blocked|rcu: INFO|self-detected stall' "$ser" | grep -av 'Kernel command line\|^Command line' | head -20 || true)
	grep -a '^STRESS\|^STATS after\|^LAZYMM' "$ser" | grep -v '^STATS after.*[a-z]_[a-z]* [0-9]* ' | tail -8 >&2 || true
	grep -a '^STATS after' "$ser" | awk '{print "  " $3, $4}' >&2 || true
	if [ -n "$bad" ]; then
		echo "FAIL: kernel reports in $ser:"; echo "$bad"; return 1
	fi
	if ! grep -aq '^STRESS: PASS' "$ser"; then
		echo "FAIL: stress did not pass:"; grep -a '^STRESS' "$ser" | tail -5; return 1
	fi
	echo "PASS: $ser"
}

cmd=${1:-}; mode=${2:-}
case "$cmd" in
deps) deps ;;
build) [ -n "$mode" ] || die "usage: run.sh build MODE"; deps; build "$mode" ;;
boot) [ -n "$mode" ] || die "usage: run.sh boot MODE [STRESS]"; boot "$mode" "${3:-}" ;;
test) [ -n "$mode" ] || die "usage: run.sh test MODE [STRESS]"; deps; build "$mode"; boot "$mode" "${3:-}" ;;
trace)
	[ -n "$mode" ] || die "usage: run.sh trace MODE [STRESS]"
	boot "$mode" "${3:-300 4000 60 4}" 1 || true
	tag=${mode//:/-}-trace
	python3 "$HERE/tracefs2perf.py" "$WORK/$tag.serial.log" "$WORK/$tag.perf.txt" "$WORK/$tag.kthreads.txt"
	;;
*) sed -n '2,22p' "$0"; exit 2 ;;
esac
