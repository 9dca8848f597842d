#!/usr/bin/env python3
"""run_leaks.py - the leak check on prog_leaks.c, whose leaks are known by
construction: exact classes and counts by marked line, and (when valgrind is
installed) the same verdicts as valgrind memcheck's on the same program.

usage: run_leaks.py PROG LIBHEAPSNAP SNAPDIFF SOURCE LAUNCHER
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

KINDS = {"definitely lost": "definite", "indirectly lost": "indirect",
         "possibly lost": "possible", "still reachable": "reachable"}
# marker -> (kind, blocks): what the program builds
EXPECTED = {
    "over_lost": ("definite", 1),   # the pointer was overwritten
    "over_kept": ("reachable", 1),  # the global holds the second block
    "list_head": ("definite", 1),   # the lost head of a list...
    "list_node": ("indirect", 5),   # ...and its nodes
    "cache": ("reachable", 8),      # a global cache
    "interior": ("possible", 1),    # only an interior pointer is kept
    "register": ("reachable", 1),   # only in a spinning thread's register
    "stack": ("reachable", 1),      # only on a blocked thread's stack
    "exited": ("definite", 3),      # dropped by a thread that has exited
    # the DTV ld.so made for that thread: its descriptor, in glibc's stack
    # cache, holds an interior pointer (the DTV's second entry)
    "exited_dtv": ("possible", 1),
}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def markers(source):
    lines = {}
    with open(source) as f:
        for no, text in enumerate(f, 1):
            m = re.search(r"/\* L:(\w+) \*/", text)
            if m:
                lines[m.group(1)] = no
    missing = set(EXPECTED) - set(lines)
    if missing:
        fail("markers missing from %s: %s" % (source, sorted(missing)))
    return lines


def heapsnap_verdicts(prog, lib, snapdiff, tmp, lines):
    out = os.path.join(tmp, "leaks.hsnap")
    env = dict(os.environ, LD_PRELOAD=lib, HEAPSNAP_FRAMES="16",
               HEAPSNAP_AT_EXIT="0")
    # Exact classes need every thread parked; one that got no CPU within
    # the 1 s handshake (a loaded machine) makes the check partial: retry.
    for attempt in range(5):
        r = subprocess.run([prog, out], env=env, capture_output=True,
                           text=True, timeout=120)
        print("heapsnap run: exit %d, stderr: %s"
              % (r.returncode, r.stderr.strip()))
        if r.returncode != 0 or r.stdout != "done\n":
            fail("the program under the preload: exit %d, stdout %r"
                 % (r.returncode, r.stdout))
        if "missed 0 partial 0" in r.stderr:
            break
    else:
        fail("every check was partial: " + r.stderr)
    j = subprocess.run([snapdiff, "--leaks", "--format", "json", out],
                       capture_output=True, text=True, timeout=60)
    if j.returncode != 0:
        fail("snapdiff --leaks --format json: " + j.stderr)
    doc = json.loads(j.stdout)
    t = subprocess.run([snapdiff, "--leaks", out], capture_output=True,
                       text=True, timeout=60)
    print(t.stdout)
    for words in KINDS:
        key = KINDS[words]
        want = "%s: %d bytes in %d blocks" % (
            words, doc["summary"][key]["bytes"], doc["summary"][key]["blocks"])
        if want not in t.stdout:
            fail("text report lacks %r" % want)
    by_line = {v: k for k, v in lines.items()}
    got = {}
    for rec in doc["leaks"]:
        if rec["file"] and rec["file"].endswith("prog_leaks.c") and \
                rec["lineno"] in by_line:
            k = (rec["kind"], by_line[rec["lineno"]])
            got[k] = got.get(k, 0) + rec["count"]
    return got, out


def suppressions(snapdiff, snap, tmp, lines):
    """fun: and obj: lines turn the matching losses into "suppressed"."""
    supp = os.path.join(tmp, "s.supp")
    with open(supp, "w") as f:
        f.write("# valgrind's layout: only fun:/obj: lines count\n"
                "{\n   list\n   Memcheck:Leak\n   fun:lost_list\n}\n"
                "{\n   dtv\n   Memcheck:Leak\n   obj:*ld-linux*\n}\n")
    j = subprocess.run([snapdiff, "--leaks", "--format", "json",
                        "--suppressions", supp, snap],
                       capture_output=True, text=True, timeout=60)
    if j.returncode != 0:
        fail("snapdiff --suppressions: " + j.stderr)
    doc = json.loads(j.stdout)
    kinds = {(r["kind"], r["lineno"]) for r in doc["leaks"]}
    for name in ("list_head", "list_node"):
        if ("suppressed", lines[name]) not in kinds:
            fail("fun:lost_list did not suppress line %d" % lines[name])
    if ("definite", lines["over_lost"]) not in kinds:
        fail("a loss no line matches was suppressed")
    if any(r["kind"] == "possible" and r["function"] == "main"
           for r in doc["leaks"]):
        fail("obj:*ld-linux* left pthread_create's DTV blocks")
    print("suppressions: %d blocks suppressed"
          % doc["summary"]["suppressed"]["blocks"])


def launcher(heapsnap, prog, tmp):
    """heapsnap run --leaks: the exit report leads with definitely lost."""
    r = subprocess.run([heapsnap, "run", "--leaks", "-o",
                        os.path.join(tmp, "x.%p.hsnap"), "--", prog,
                        os.path.join(tmp, "mid.hsnap")],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or r.stdout != "done\n":
        fail("heapsnap run --leaks: exit %d stdout %r" % (r.returncode, r.stdout))
    err = r.stderr
    at = [err.find(w) for w in ("definitely lost:", "indirectly lost:",
                                "possibly lost:", "still reachable:",
                                "top 10 allocation sites")]
    if min(at) < 0 or at != sorted(at):
        fail("exit report out of order:\n" + err)
    print("launcher report:\n" + err)


def valgrind_verdicts(prog, tmp, lines):
    r = subprocess.run(["valgrind", "--leak-check=no",
                        "--show-leak-kinds=all", "--num-callers=30", prog,
                        os.path.join(tmp, "unused.hsnap")],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or r.stdout != "done\n":
        fail("the program under valgrind: exit %d" % r.returncode)
    by_line = {v: k for k, v in lines.items()}
    got = {}
    head = re.compile(r"==\d+== ([\d,]+)(?: \([^)]*\))? bytes in ([\d,]+) "
                      r"blocks are (definitely lost|indirectly lost|possibly "
                      r"lost|still reachable) in loss record")
    cur = None
    for line in r.stderr.splitlines():
        m = head.search(line)
        if m:
            cur = [KINDS[m.group(3)], int(m.group(2).replace(",", "")), None]
            continue
        if cur and cur[2] is None:
            m = re.search(r"prog_leaks\.c:(\d+)\)", line)
            if m:
                cur[2] = int(m.group(1))
                if cur[2] in by_line:
                    k = (cur[0], by_line[cur[2]])
                    got[k] = got.get(k, 0) + cur[1]
        if line.strip().endswith("== ") or re.match(r"==\d+== $", line):
            cur = None
    return got


def table(rows):
    return "\n".join("  %-10s %-9s %s" % r for r in rows)


def main():
    if len(sys.argv) < 6:
        print(__doc__)
        sys.exit(2)
    prog, lib, snapdiff, source, heapsnap = sys.argv[1:6]
    lines = markers(source)
    tmp = tempfile.mkdtemp()
    try:
        want = {(kind, name): n for name, (kind, n) in EXPECTED.items()}
        got, snap = heapsnap_verdicts(prog, lib, snapdiff, tmp, lines)
        rows = [(name, kind, "want %d, heapsnap %d" % (n, got.get((kind, name), 0)))
                for (kind, name), n in sorted(want.items(), key=lambda x: lines[x[0][1]])]
        print("by construction:\n" + table(rows))
        if got != want:
            fail("heapsnap's classes differ from the construction: got %s" % got)
        suppressions(snapdiff, snap, tmp, lines)
        launcher(heapsnap, prog, tmp)
        if shutil.which("valgrind") is None:
            print("valgrind is not installed: comparison skipped")
            return
        vg = valgrind_verdicts(prog, tmp, lines)
        rows = [(name, kind, "heapsnap %d, valgrind %d" % (n, vg.get((kind, name), 0)))
                for (kind, name), n in sorted(got.items(), key=lambda x: lines[x[0][1]])]
        print("against valgrind memcheck:\n" + table(rows))
        if vg != got:
            fail("valgrind's verdicts differ: %s" % vg)
        print("PASS: heapsnap and valgrind agree on every marked line")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
