#!/usr/bin/env python3
"""run.py - the no-frame-pointer benchmark (issue 16): workloads built with a
distribution's flags (C, C++, python3) untraced, under heapsnap (64, 16 and
1 frames, and 64 with libunwind alone) and under heaptrack; wall and CPU
ratios to untraced and the issue's targets, in one run.

Usage: run.py LIBHEAPSNAP BUILD_DIR [--repeat N] [--ops N] [--threads]"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# CRT start-up code, linked from the toolchain's objects rather than built
# from the workload's sources: its flags are not ours to check.
CRT_FUNCS = {"_start", "_dl_relocate_static_pie", "deregister_tm_clones",
             "register_tm_clones", "__do_global_dtors_aux", "frame_dummy"}


def py_script(n):
    # bench/peers's script, its size from --ops.
    return ("x = [{'id': i, 'name': str(i)} for i in range(%d)]\n"
            "del x\n"
            "print('python3: %d dicts of an int and a str, built and freed')\n"
            % (n, n))


def frame_pointer_functions(binary):
    """(functions whose prologue sets up rbp as a frame pointer, functions
    in .text), from the disassembly; None without objdump. The prologue is
    `push %rbp` with `mov %rsp,%rbp` right after it: rbp merely pushed is
    a callee-saved register in use, and `mov %rsp,%rbp` alone is rbp
    holding the address of a local."""
    if not shutil.which("objdump"):
        return None
    out = subprocess.run(["objdump", "-d", "-j", ".text", "--no-show-raw-insn",
                          binary], capture_output=True, text=True).stdout
    fp, total, name, prev = [], 0, None, None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            name, prev = m.group(1), None
            # A .cold part is the split-off tail of a function, not one.
            if name.endswith(".cold"):
                name = None
            elif name not in CRT_FUNCS:
                total += 1
            continue
        insn = line.split("\t", 1)[-1].strip() if "\t" in line else ""
        if not insn or name is None or name in CRT_FUNCS:
            continue
        if prev == "push" and re.match(r"mov\s+%rsp,%rbp$", insn):
            if not fp or fp[-1] != name:
                fp.append(name)
        prev = "push" if re.match(r"push\s+%rbp$", insn) else "other"
    return fp, total


def run_once(cmd, env, cwd):
    """(wall s, CPU s, exit status, stderr tail) of one run. The CPU time is
    wait4's user+sys, which holds the child's descendants that were waited
    for: heaptrack's script waits for heaptrack_interpret and zstd (checked
    by sampling /proc during a run: wait4 1.26 s, the polled processes
    1.20 s, of which heaptrack_interpret 0.44 s and zstd 0.05 s)."""
    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=err)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    tail = err.read()[-600:].decode(errors="replace")
    err.close()
    return wall, ru.ru_utime + ru.ru_stime, p.returncode, tail


def measure(configs, outdir):
    """Runs every config round by round, one run of each per round, so that
    the machine's load drifting over the run weighs on every row alike.
    Keeps the best wall time and the best CPU time of each (each the
    least disturbed by other work on the machine), and the slowest wall
    time, for the spread."""
    res = {c[0]: {"wall": [], "cpu": [], "fail": None} for c in configs}
    for r in range(max(c[3] for c in configs)):
        for label, cmd, env, repeat in configs:
            row = res[label]
            if r >= repeat or row["fail"]:
                continue
            wall, cpu, rc, tail = run_once(cmd, env, outdir)
            if rc != 0:
                row["fail"] = "exit status %d%s" % (
                    rc, " (signal %d)" % -rc if rc < 0 else "")
                row["stderr"] = tail
                continue
            row["wall"].append(wall)
            row["cpu"].append(cpu)
            if r == 0 and "LD_PRELOAD" in env:
                # A heapsnap row that wrote no snapshot did not trace.
                if not any(f.endswith(".hsnap") for f in os.listdir(outdir)):
                    row["fail"] = "no snapshot written: tracing was off"
            for f in os.listdir(outdir):
                os.unlink(os.path.join(outdir, f))
    return res


def verdict(ok):
    return "PASS" if ok else "MISS"


def report(name, desc, res, fpcheck):
    print("\n== %s" % name)
    if desc:
        print("  %s" % desc)
    if fpcheck:
        print("  %s" % fpcheck)
    base = res.get("untraced")
    if not base or not base["wall"]:
        print("  untraced run failed: %s" % (base or {}).get("fail"))
        return
    w0, c0 = min(base["wall"]), min(base["cpu"])
    print("  %-24s %8s %7s %8s %7s %7s" % ("configuration", "wall (s)", "ratio",
                                         "CPU (s)", "ratio", "spread"))
    best = {}
    for label, row in res.items():
        if row["fail"]:
            print("  %-24s FAILED: %s" % (label, row["fail"]))
            for line in row.get("stderr", "").strip().splitlines()[-3:]:
                print("  %24s   | %s" % ("", line))
            continue
        w, c = min(row["wall"]), min(row["cpu"])
        best[label] = (w, c)
        print("  %-24s %8.3f %6.2fx %8.3f %6.2fx %6.0f%%" % (
            label, w, w / w0, c, c / c0, 100 * (max(row["wall"]) - w) / w))
    hs64, ht = best.get("heapsnap 64 frames"), best.get("heaptrack")
    if hs64 and ht:
        for i, what in ((0, "wall"), (1, "CPU")):
            o_hs, o_ht = hs64[i] - (w0, c0)[i], ht[i] - (w0, c0)[i]
            share = 100 * o_hs / o_ht if o_ht > 0 else float("inf")
            print("  64 frames, %-4s overhead: heapsnap %.3f s, heaptrack %.3f s:"
                  " %.1f%% of heaptrack's (target <= 25%%) %s" % (
                      what, o_hs, o_ht, share, verdict(share <= 25)))
    lu = best.get("  64, UNWIND=libunwind")
    if hs64 and lu:
        print("  64 frames, wall overhead: default unwinding %.3f s, "
              "libunwind alone %.3f s" % (hs64[0] - w0, lu[0] - w0))
    hs1 = best.get("heapsnap 1 frame")
    if hs1:
        print("  1 frame: wall %.2fx untraced (target <= 2.0x) %s, CPU %.2fx "
              "(target <= 2.5x) %s" % (
                  hs1[0] / w0, verdict(hs1[0] / w0 <= 2.0),
                  hs1[1] / c0, verdict(hs1[1] / c0 <= 2.5)))
    fp64 = best.get("heapsnap 64 frames (FP)")
    if fp64:
        print("  frame-pointer build, 64 frames: wall %.2fx, CPU %.2fx untraced"
              " (no target here: compare with the figure recorded before the"
              " new unwinder; issue 16 measured 4.0x wall, 7.0x CPU)" % (
                  fp64[0] / w0, fp64[1] / c0))


def describe(cmd, env):
    """The workload's own one-line account of what it did (its stdout)."""
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lib", help="path of libheapsnap.so")
    ap.add_argument("build", help="the CMake build directory")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds; every row runs once per round (default 3)")
    ap.add_argument("--ops", type=int, default=2000000,
                    help="allocations of the C workload; the C++ workload "
                    "makes OPS/2 operations and python3 OPS/2 dicts "
                    "(default 2000000)")
    ap.add_argument("--threads", action="store_true",
                    help="also the C workload with 2 threads")
    a = ap.parse_args()
    lib = os.path.abspath(a.lib)
    bdir = os.path.join(os.path.abspath(a.build), "bench", "nofp")
    for exe in ("nofp_c", "fp_c", "nofp_cxx"):
        if not os.access(os.path.join(bdir, exe), os.X_OK):
            print("run.py: %s/%s is missing: build the bench first" % (bdir, exe))
            return 2
    have_ht = shutil.which("heaptrack") is not None
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None

    env0 = dict(os.environ)
    for k in list(env0):
        if k.startswith("HEAPSNAP_") or k in ("LD_PRELOAD", "PYTHONMALLOC"):
            del env0[k]
    tmp = tempfile.mkdtemp(prefix="hs-nofp.")

    c = os.path.join(bdir, "nofp_c")
    workloads = [("C, no frame pointers, 1 thread", [c, str(a.ops), "1"], {},
                  c, "full")]
    if a.threads:
        workloads.append(("C, no frame pointers, 2 threads",
                          [c, str(a.ops), "2"], {}, c, "full"))
    fpc = os.path.join(bdir, "fp_c")
    workloads.append(("C, built with frame pointers, 1 thread",
                      [fpc, str(a.ops), "1"], {}, fpc, "fp"))
    cxx = os.path.join(bdir, "nofp_cxx")
    workloads.append(("C++, no frame pointers", [cxx, str(a.ops // 2)], {},
                      cxx, "full"))
    if py:
        workloads.append(("python3, PYTHONMALLOC=malloc, %d dicts" % (a.ops // 2),
                          [py, "-c", py_script(a.ops // 2)],
                          {"PYTHONMALLOC": "malloc"}, None, "full"))
    else:
        print("NOTE: /usr/bin/python3 is missing: the python3 workload is skipped")
    if not have_ht:
        print("NOTE: heaptrack is not installed: its rows and the 25% "
              "target are skipped")

    def hs(env, frames, **extra):
        return dict(env, LD_PRELOAD=lib, HEAPSNAP_FRAMES=str(frames),
                    HEAPSNAP_OUTPUT=tmp + "/hs.%p.%n.hsnap", **extra)

    print("no-frame-pointer benchmark: wall and CPU time (user+sys of the "
          "process tree, from wait4) of each configuration, best of %d "
          "rounds (wall and CPU each their own best), rows interleaved (each round runs every row once); "
          "ratios to the untraced row; spread = slowest wall time over the "
          "best; heapsnap rows include the exit snapshot" % a.repeat)
    for name, cmd, extra, binary, kind in workloads:
        env = dict(env0, **extra)
        configs = [("untraced", cmd, env, a.repeat)]
        if kind == "fp":
            configs.append(("heapsnap 64 frames (FP)", cmd, hs(env, 64),
                            a.repeat))
        else:
            configs += [
                ("heapsnap 64 frames", cmd, hs(env, 64), a.repeat),
                ("heapsnap 16 frames", cmd, hs(env, 16), a.repeat),
                ("heapsnap 1 frame", cmd, hs(env, 1), a.repeat),
                # The unwinder the new one replaces, in the same run.
                ("  64, UNWIND=libunwind", cmd,
                 hs(env, 64, HEAPSNAP_UNWIND="libunwind"), a.repeat)]
            if have_ht:
                configs.append(("heaptrack", ["heaptrack", "-o", tmp + "/ht"]
                                + cmd, env, a.repeat))
        fpcheck = None
        if binary:
            r = frame_pointer_functions(binary)
            if r is None:
                fpcheck = "frame pointers: not checked (no objdump)"
            else:
                fp, total = r
                fpcheck = ("frame pointers (objdump, prologue push %%rbp; "
                           "mov %%rsp,%%rbp): %d of %d functions set one up%s"
                           % (len(fp), total,
                              "" if not fp else " (%s%s)" % (
                                  ", ".join(fp[:3]), ", ..." if len(fp) > 3
                                  else "")))
        desc = describe(cmd, env)
        res = measure(configs, tmp)
        report(name, desc, res, fpcheck)
        sys.stdout.flush()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
