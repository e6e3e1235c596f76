// SPDX-License-Identifier: GPL-2.0
/*
 * lazymm kernel stress: the guest side of kernel/run.sh test.
 *
 * Runs concurrently, for a fixed amount of work (not time):
 *   - fork/exec/exit storm: children that exit at once, exec this program
 *     (argv[1] = "exit"), or start a thread and exit from both;
 *   - pipe ping-pong: pairs of threads of one process bouncing a byte, so
 *     CPUs keep going idle (lazy) and coming back to the same mm;
 *   - kthread_use_mm: rounds written to /sys/kernel/debug/lazy_tlb/test;
 *   - CPU hotplug: CPUs 1..N-1 taken offline and back online via sysfs.
 * Then settles (a user thread runs on every CPU, so every lazy borrow and
 * handed reference is dropped) and checks that every mm_struct allocated
 * since the start was freed (mm_allocs - mm_frees back to its start value,
 * from /sys/kernel/debug/lazy_tlb/stats).
 *
 * Prints "STRESS: PASS" or "STRESS: FAIL <why>" on stdout.
 * Usage: stress [forks] [pingpong_rounds] [kthread_rounds] [hotplug_cycles]
 *        stress exit            (exec target: exits at once)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATS "/sys/kernel/debug/lazy_tlb/stats"
#define TEST "/sys/kernel/debug/lazy_tlb/test"

static int ncpus;

static void die(const char *what)
{
	printf("STRESS: FAIL %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

/* Reads one counter (its sum) from the stats file; -1 if absent. */
static long stat_read(const char *name)
{
	char line[1024];
	FILE *f = fopen(STATS, "r");
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(name);

		if (!strncmp(line, name, n) && line[n] == ' ') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static void stats_dump(const char *tag)
{
	char line[1024];
	FILE *f = fopen(STATS, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("STATS %s %s", tag, line);
	fclose(f);
	fflush(stdout);
}

/* ---- fork/exec/exit storm ---- */

static void *thread_exit(void *arg)
{
	(void)arg;
	return NULL;
}

static void storm(int forks, const char *self)
{
	int i, live = 0;

	for (i = 0; i < forks; i++) {
		pid_t p = fork();

		if (p < 0)
			die("fork");
		if (p == 0) {
			pthread_t t;

			switch (i % 3) {
			case 0:
				_exit(0);
			case 1:
				execl(self, self, "exit", (char *)NULL);
				_exit(2);
			default:
				if (pthread_create(&t, NULL, thread_exit, NULL) == 0)
					pthread_join(t, NULL);
				_exit(0);
			}
		}
		if (++live >= 16) {
			int st;

			if (wait(&st) > 0 && (!WIFEXITED(st) || WEXITSTATUS(st)))
				printf("STRESS: FAIL child status %d\n", st);
			live--;
		}
	}
	while (live-- > 0)
		wait(NULL);
}

/* ---- pipe ping-pong between threads ---- */

struct pp {
	int rd, wr, rounds;
};

static void *pp_thread(void *arg)
{
	struct pp *p = arg;
	char c;
	int i;

	for (i = 0; i < p->rounds; i++) {
		if (read(p->rd, &c, 1) != 1)
			break;
		if (i % 64 == 0)
			usleep(200);	/* sleep: the CPU goes idle, lazily */
		if (write(p->wr, &c, 1) != 1)
			break;
	}
	return NULL;
}

/* Two pairs of threads of this process: x reads a, writes b; y the reverse. */
static void pingpong(int rounds)
{
	int a[2], b[2], pair;

	for (pair = 0; pair < 2; pair++) {
		struct pp x, y;
		pthread_t tx, ty;

		if (pipe(a) || pipe(b))
			die("pipe");
		x = (struct pp){ .rd = a[0], .wr = b[1], .rounds = rounds };
		y = (struct pp){ .rd = b[0], .wr = a[1], .rounds = rounds };
		if (write(a[1], "x", 1) != 1)
			die("write");
		pthread_create(&tx, NULL, pp_thread, &x);
		pthread_create(&ty, NULL, pp_thread, &y);
		pthread_join(tx, NULL);
		pthread_join(ty, NULL);
		close(a[0]);
		close(a[1]);
		close(b[0]);
		close(b[1]);
	}
}

/* ---- kthread_use_mm rounds ---- */

static void kthread_rounds(int rounds)
{
	int fd, i;
	char buf[16];

	for (i = 0; i < rounds; i += 12) {
		fd = open(TEST, O_WRONLY);
		if (fd < 0)
			die("open " TEST);
		snprintf(buf, sizeof(buf), "%d", 12);
		if (write(fd, buf, strlen(buf)) < 0)
			die("write " TEST);
		close(fd);
	}
}

/* ---- CPU hotplug ---- */

static int cpu_set_online(int cpu, int on)
{
	char path[64];
	int fd, r;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	r = write(fd, on ? "1" : "0", 1);
	close(fd);
	return r == 1 ? 0 : -1;
}

static void hotplug(int cycles)
{
	int i;

	for (i = 0; i < cycles; i++) {
		int cpu = 1 + i % (ncpus - 1);

		if (cpu_set_online(cpu, 0))
			printf("STRESS: note offline cpu%d: %s\n", cpu, strerror(errno));
		usleep(20000);
		if (cpu_set_online(cpu, 1))
			die("online");
		usleep(20000);
	}
}

/* ---- settle: a user thread on every CPU drops every lazy borrow ---- */

static void *settle_thread(void *arg)
{
	int cpu = (int)(long)arg, i;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return (void *)1L;
	for (i = 0; i < 20; i++)
		usleep(1000);	/* idle -> this user thread: kernel -> user */
	return NULL;
}

static void settle(void)
{
	pthread_t t[64];
	int cpu;

	for (cpu = 0; cpu < ncpus && cpu < 64; cpu++)
		pthread_create(&t[cpu], NULL, settle_thread, (void *)(long)cpu);
	for (cpu = 0; cpu < ncpus && cpu < 64; cpu++)
		pthread_join(t[cpu], NULL);
}

/* TIDs of kernel threads (PF_KTHREAD in /proc/PID/stat), one a line. */
static int print_kthreads(void)
{
	char path[300], buf[1024];
	struct dirent *d;
	DIR *dir = opendir("/proc");

	if (!dir)
		die("opendir /proc");
	while ((d = readdir(dir))) {
		unsigned long flags;
		FILE *f;
		char *p;
		int pid = atoi(d->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		/* ") S ppid pgrp session tty tpgid flags": kernel threads
		 * are single-threaded, so the PID is the TID. */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags) == 1 &&
		    (flags & 0x00200000))
			printf("%d\n", pid);
	}
	closedir(dir);
	return 0;
}

static pid_t spawn(void (*fn)(int), int arg)
{
	pid_t p = fork();

	if (p < 0)
		die("fork");
	if (p == 0) {
		fn(arg);
		fflush(stdout);
		_exit(0);
	}
	return p;
}

static const char *self_path;
static void storm_fn(int n) { storm(n, self_path); }

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 2000;
	int pp = argc > 2 ? atoi(argv[2]) : 20000;
	int kr = argc > 3 ? atoi(argv[3]) : 600;
	int hp = argc > 4 ? atoi(argv[4]) : 30;
	long live0, live1 = -1;
	pid_t kids[8];
	int n = 0, i, st, fail = 0;
	time_t t0 = time(NULL);

	if (argc > 1 && !strcmp(argv[1], "exit"))
		return 0;
	if (argc > 1 && !strcmp(argv[1], "kthreads"))
		return print_kthreads();
	self_path = "/proc/self/exe";
	{
		static char exe[256];
		ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		if (l > 0) {
			exe[l] = 0;
			self_path = exe;
		}
	}
	ncpus = sysconf(_SC_NPROCESSORS_CONF);
	printf("STRESS: start cpus=%d forks=%d pingpong=%d kthread=%d hotplug=%d\n",
	       ncpus, forks, pp, kr, hp);
	fflush(stdout);
	settle();
	live0 = stat_read("mm_allocs") - stat_read("mm_frees");
	stats_dump("before");

	kids[n++] = spawn(storm_fn, forks);
	kids[n++] = spawn(pingpong, pp);
	if (kr > 0)
		kids[n++] = spawn(kthread_rounds, kr);
	if (hp > 0 && ncpus > 1)
		kids[n++] = spawn(hotplug, hp);
	for (i = 0; i < n; i++) {
		if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("STRESS: FAIL worker %d status %d\n", i, st);
			fail = 1;
		}
	}
	printf("STRESS: workers done in %lds\n", (long)(time(NULL) - t0));
	for (i = 1; i < ncpus; i++)
		cpu_set_online(i, 1);
	/* Settle until every mm allocated since the start is freed (10 s). */
	for (i = 0; i < 100; i++) {
		settle();
		live1 = stat_read("mm_allocs") - stat_read("mm_frees");
		if (live1 == live0)
			break;
		usleep(100000);
	}
	stats_dump("after");
	printf("STRESS: mm live before=%ld after=%ld\n", live0, live1);
	if (stat_read("mm_allocs") < 0) {
		printf("STRESS: FAIL no %s\n", STATS);
		fail = 1;
	} else if (live1 != live0) {
		printf("STRESS: FAIL leak: %ld mm_struct not freed\n", live1 - live0);
		fail = 1;
	}
	printf("STRESS: %s in %lds\n", fail ? "FAIL" : "PASS", (long)(time(NULL) - t0));
	fflush(stdout);
	return fail;
}
