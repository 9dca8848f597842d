#!/usr/bin/env python3
"""run.py - the peers benchmark: the same workloads untraced, under heapsnap
(nframe 1, 16, 64, 256), heaptrack, valgrind massif and, for python3,
CPython's tracemalloc; wall-time ratios to untraced and peak RSS, in one run.

Usage: run.py LIBHEAPSNAP WORKLOAD [--ops N] [--skip-massif]"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

PY_SCRIPT = ("x = [{'id': i, 'name': str(i)} for i in range(1000000)]\n"
             "del x\n")


def measure_once(cmd, env, cwd):
    """Wall time of one run, or None if it failed."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    dt = time.monotonic() - t0
    return dt if p.returncode == 0 else None


def proc_tree(root):
    """root and every process descending from it, by a scan of /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    tree, i = [root], 0
    while i < len(tree):
        tree += kids.get(tree[i], [])
        i += 1
    return tree


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def measure_tree_rss(cmd, env, cwd):
    """Peak RSS of a run's whole process tree (KiB): the highest sum of its
    processes' RSS, sampled every few milliseconds, and never less than
    wait4's figure for its largest process. A tool that keeps its data in a
    helper process (heaptrack_interpret, and its zstd) is charged for it.
    Sampling costs CPU, so this run is separate from the timed ones."""
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    peak, tree, scans = 0, [p.pid], 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if scans % 10 == 0:
            tree = proc_tree(p.pid)
        scans += 1
        peak = max(peak, sum(rss_kib(t) for t in tree))
        time.sleep(0.004)
    if os.waitstatus_to_exitcode(status) != 0:
        return None
    return max(peak, ru.ru_maxrss)


def measure_interleaved(configs, cwd):
    """Runs every config (label, cmd, env, repeat) round by round, one run
    of each per round, so that the machine's load drifting over the minutes
    of a run weighs on every row alike; keeps each one's best time. Then
    one more run of each for its process tree's peak RSS."""
    best = {c[0]: None for c in configs}
    failed = set()
    for r in range(max(c[3] for c in configs)):
        for label, cmd, env, repeat in configs:
            if r >= repeat or label in failed:
                continue
            t = measure_once(cmd, env, cwd)
            if t is None:
                failed.add(label)
                continue
            b = best[label]
            best[label] = t if b is None else min(b, t)
    rows = []
    for label, cmd, env, repeat in configs:
        if label in failed:
            rows.append((label, None, None))
            continue
        rows.append((label, best[label], measure_tree_rss(cmd, env, cwd)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("workload")
    ap.add_argument("--ops", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-massif", action="store_true")
    ap.add_argument("--skip-peers", action="store_true",
                    help="heapsnap only (no heaptrack, massif, tracemalloc)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hs-peers.")
    base = dict(os.environ)
    for k in list(base):
        if k.startswith("HEAPSNAP_") or k in ("LD_PRELOAD", "PYTHONTRACEMALLOC"):
            del base[k]
    have_ht = shutil.which("heaptrack") is not None and not a.skip_peers
    have_vg = (shutil.which("valgrind") is not None and not a.skip_massif
               and not a.skip_peers)
    # The interpreter itself, not a launcher script (pyenv shims are bash
    # scripts that fork several processes per call).
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
    if py is None and shutil.which("python3"):
        py = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"],
                            capture_output=True, text=True).stdout.strip()

    workloads = [
        ("alloc-heavy, 1 thread", [a.workload, "1", str(a.ops)], {}),
        ("alloc-heavy, 2 threads", [a.workload, "2", str(a.ops // 2)], {}),
    ]
    if py:
        workloads.append(("python3, 1M dicts", [py, "-c", PY_SCRIPT],
                          {"PYTHONMALLOC": "malloc"}))
    else:
        print("NOTE: python3 is not installed: the python3 workload is skipped")

    results = {}
    for name, cmd, extra in workloads:
        env0 = dict(base, **extra)
        configs = []

        def run(label, c, env, repeat=a.repeat):
            configs.append((label, c, env, repeat))

        run("untraced", cmd, env0)
        for n in (1, 16, 64, 256):
            run("heapsnap nframe=%d" % n, cmd, dict(env0, LD_PRELOAD=a.lib,
                HEAPSNAP_FRAMES=str(n), HEAPSNAP_OUTPUT=tmp + "/hs.%p.%n.hsnap"))
        # Each design choice against what it replaced, in the same run:
        # stacks by libunwind alone, and table updates made immediately.
        run("  nframe=64 libunwind", cmd, dict(env0, LD_PRELOAD=a.lib,
            HEAPSNAP_FRAMES="64", HEAPSNAP_UNWIND="libunwind",
            HEAPSNAP_AT_EXIT="0"))
        run("  nframe=64 fast unw.", cmd, dict(env0, LD_PRELOAD=a.lib,
            HEAPSNAP_FRAMES="64", HEAPSNAP_AT_EXIT="0"))
        run("  nframe=64 immediate", cmd, dict(env0, LD_PRELOAD=a.lib,
            HEAPSNAP_FRAMES="64", HEAPSNAP_DEFER="0", HEAPSNAP_AT_EXIT="0"))
        # Production mode: sampling at the default rate, full depth.
        run("heapsnap sampled 64K", cmd, dict(env0, LD_PRELOAD=a.lib,
            HEAPSNAP_FRAMES="64", HEAPSNAP_SAMPLE="default",
            HEAPSNAP_OUTPUT=tmp + "/hs.%p.%n.hsnap"), repeat=a.repeat + 2)
        # The same without the exit snapshot: what an always-on process pays
        # while it runs (the exit snapshot is a one-time cost that grows
        # with the code to symbolize, not with the run).
        run("  ... no exit snapshot", cmd, dict(env0, LD_PRELOAD=a.lib,
            HEAPSNAP_FRAMES="64", HEAPSNAP_SAMPLE="default",
            HEAPSNAP_AT_EXIT="0"), repeat=a.repeat + 2)
        if have_ht:
            run("heaptrack", ["heaptrack", "-o", tmp + "/ht"] + cmd, env0,
                repeat=min(a.repeat, 3))
        if have_vg:
            run("valgrind massif", ["valgrind", "--tool=massif",
                "--massif-out-file=" + tmp + "/massif.out"] + cmd, env0,
                repeat=1)
        if cmd[0] == py and not a.skip_peers:
            for n in (1, 25):
                run("tracemalloc %d frame%s" % (n, "s" if n > 1 else ""), cmd,
                    dict(env0, PYTHONTRACEMALLOC=str(n)))
        results[name] = measure_interleaved(configs, tmp)

    print("peers benchmark: wall time (best of %d, rows interleaved; best of "
          "%d for heaptrack, 1 run for massif) and peak RSS of the whole "
          "process tree (one more run, its processes' RSS summed)"
          % (a.repeat, min(a.repeat, 3)))
    verdicts = []
    for name, rows in results.items():
        print("\n== %s" % name)
        t0, r0 = rows[0][1], rows[0][2]
        print("  %-22s %9s %8s %10s" % ("tool", "time (s)", "ratio", "peak RSS"))
        for label, t, rss in rows:
            if t is None:
                print("  %-22s %9s" % (label, "failed"))
                continue
            print("  %-22s %9.3f %7.2fx %s" % (
                label, t, t / t0,
                "%7.1f MiB" % (rss / 1024) if rss else "    n/a"))
        by = {label: (t, rss) for label, t, rss in rows}
        smp = by.get("heapsnap sampled 64K")
        run_only = by.get("  ... no exit snapshot")
        if smp and smp[0] and run_only and run_only[0]:
            ov = (run_only[0] - t0) / t0
            print("  sampled (default rate): overhead while running %+.1f%% of "
                  "the untraced run (target < 5%%) %s; the exit snapshot adds "
                  "%.3f s once" % (100 * ov, "PASS" if ov < 0.05 else "MISS",
                                   smp[0] - run_only[0]))
        lu, fu, im = (by.get("  nframe=64 libunwind"),
                      by.get("  nframe=64 fast unw."),
                      by.get("  nframe=64 immediate"))
        if lu and fu and im and lu[0] and fu[0] and im[0]:
            print("  nframe=64 overhead: fast unwinding %.3f s vs libunwind "
                  "%.3f s; deferred table %.3f s vs immediate %.3f s" %
                  (fu[0] - t0, lu[0] - t0, fu[0] - t0, im[0] - t0))
        full16 = by.get("heapsnap nframe=16")
        if full16 and full16[0]:
            r16 = full16[0] / t0
            print("  full tracing nframe=16: %.2fx the untraced run (target "
                  "<= 3x) %s" % (r16, "PASS" if r16 <= 3 else "MISS"))
        hs, ht = by.get("heapsnap nframe=256"), by.get("heaptrack")
        if hs and ht and hs[0] and ht[0] and hs[1] and ht[1] and r0:
            ov_hs, ov_ht = hs[0] - t0, ht[0] - t0
            rss_hs, rss_ht = hs[1] - r0, ht[1] - r0
            ok_t = ov_hs <= ov_ht / 4
            ok_m = rss_hs < rss_ht
            print("  full depth: heapsnap overhead %.3f s vs heaptrack %.3f s "
                  "(%.1f%% of it; target <= 25%%) %s" %
                  (ov_hs, ov_ht, 100 * ov_hs / ov_ht if ov_ht > 0 else 0,
                   "PASS" if ok_t else "MISS"))
            print("  peak RSS overhead: heapsnap %.1f MiB vs heaptrack %.1f MiB"
                  " %s" % (rss_hs / 1024, rss_ht / 1024,
                           "PASS" if ok_m else "MISS"))
            verdicts += [ok_t, ok_m]
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
