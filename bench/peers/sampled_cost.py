#!/usr/bin/env python3
"""sampled_cost.py - what sampled tracing at the default rate costs the
peers benchmark's workloads, counted in instructions with callgrind (which
does not move with the machine's load, as wall time does here) and, for
comparison, in wall time: untraced and sampled runs interleaved, best of N.

Usage: sampled_cost.py LIBHEAPSNAP WORKLOAD [--ops N] [--dicts N] [--repeat N]
Sizes are the peers benchmark's, but the python3 workload's instructions are
counted on a fifth of its dicts (callgrind runs some fifty times slower);
PYTHONHASHSEED is fixed, so that CPython's string hashing is repeatable.
Needs valgrind for the instruction counts (skipped with a note without it)."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def instructions(cmd, env, tmp):
    out = os.path.join(tmp, "cg.out")
    p = subprocess.run(["valgrind", "--tool=callgrind",
                        "--callgrind-out-file=" + out] + cmd, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, check=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if not m:
        raise RuntimeError("no instruction count from callgrind: " + p.stderr)
    return int(m.group(1))


def wall(cmd, env):
    t0 = time.monotonic()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("workload")
    ap.add_argument("--ops", type=int, default=1000000)
    ap.add_argument("--dicts", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--frames", type=int, default=64)
    a = ap.parse_args()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("HEAPSNAP_") and k != "LD_PRELOAD"}
    sampled = dict(base, LD_PRELOAD=a.lib, HEAPSNAP_FRAMES=str(a.frames),
                   HEAPSNAP_SAMPLE="default", HEAPSNAP_AT_EXIT="0")
    def c_cmd(ops):
        return [a.workload, "1", str(ops)]

    def py_cmd(dicts):
        return [py, "-c", "x = [{'id': i, 'name': str(i)} for i in "
                "range(%d)]\ndel x\n" % dicts]

    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
    workloads = [("alloc-heavy, 1 thread, %d ops" % a.ops, c_cmd, a.ops, 1,
                  {})]
    if py:
        workloads.append(("python3, %d dicts" % a.dicts, py_cmd, a.dicts, 5,
                          {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"}))
    else:
        print("NOTE: /usr/bin/python3 is missing: its workload is skipped")
    have_vg = shutil.which("valgrind") is not None
    if not have_vg:
        print("NOTE: valgrind is missing: no instruction counts")
    tmp = tempfile.mkdtemp(prefix="hs-sampled.")
    print("sampled tracing at the default rate (64 KiB), nframe=%d, no exit "
          "snapshot" % a.frames)
    ok = True
    try:
        for name, mk, size, shrink, extra in workloads:
            e0, e1 = dict(base, **extra), dict(sampled, **extra)
            print("\n== %s" % name)
            if have_vg:
                cmd = mk(size // shrink)
                i0, i1 = instructions(cmd, e0, tmp), instructions(cmd, e1, tmp)
                ov = (i1 - i0) / i0
                ok = ok and ov < 0.05
                print("  instructions (size / %d): untraced %d, sampled %d: "
                      "%+.2f%% (target < 5%%) %s" %
                      (shrink, i0, i1, 100 * ov,
                       "PASS" if ov < 0.05 else "MISS"))
            cmd = mk(size)
            us, ss = [], []
            for _ in range(a.repeat):
                us.append(wall(cmd, e0))
                ss.append(wall(cmd, e1))
            t0, t1 = min(us), min(ss)
            m0, m1 = statistics.median(us), statistics.median(ss)
            print("  wall, %d interleaved runs: best untraced %.3f s, sampled "
                  "%.3f s: %+.1f%%; median %.3f s, %.3f s: %+.1f%%" %
                  (a.repeat, t0, t1, 100 * (t1 - t0) / t0, m0, m1,
                   100 * (m1 - m0) / m0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
