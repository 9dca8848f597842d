#!/usr/bin/env python3
"""go_pprof.py - `go tool pprof` (Debian's golang-go) reads snapdiff's pprof
profile as a Go heap profile: for each of the four sample types, -top shows
the expected line first with the expected value.

usage: go_pprof.py TEST_CHURN SNAPDIFF   (exit 77 when go is missing)"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def line_of(text):
    with open(os.path.join(HERE, "test_churn.c")) as f:
        for n, l in enumerate(f, 1):
            if text in l:
                return n
    raise SystemExit("no line with %r" % text)


# sample type -> (the allocating line, its value as -top prints it)
EXPECT = {
    "alloc_objects": (line_of("void *p = malloc(64);"), "3000"),
    "alloc_space": (line_of("held[i] = malloc(10000);"), "500000B"),
    "inuse_objects": (line_of("kept_d[i] = malloc(32);"), "1000"),
    "inuse_space": (line_of("kept_b[i] = malloc(1500);"), "300000B"),
}


def main():
    prog, snapdiff = sys.argv[1:3]
    go = shutil.which("go")
    if not go:
        print("SKIP: *** no go (Debian: golang-go; scripts/test-deps.sh) ***")
        return 77
    tmp = tempfile.mkdtemp()
    failed = 0
    try:
        snap = os.path.join(tmp, "churn.hsnap")
        prof = os.path.join(tmp, "churn.pb.gz")
        subprocess.run([prog, "--dump", snap], check=True)
        subprocess.run([snapdiff, snap, "--format", "pprof", "-o", prof], check=True)
        env = dict(os.environ, HOME=tmp, GOCACHE=os.path.join(tmp, "gocache"),
                   PPROF_TMPDIR=tmp)
        for st, (line, value) in EXPECT.items():
            # -unit=B prints bytes whole; it would print counts as bytes too.
            unit = ["-unit=B"] if st.endswith("_space") else []
            out = subprocess.run([go, "tool", "pprof", "-top", "-lines"] + unit +
                                 ["-sample_index=" + st, prof], env=env,
                                 capture_output=True, text=True)
            rows = out.stdout.splitlines()
            head = [i for i, r in enumerate(rows) if r.split()[:2] == ["flat", "flat%"]]
            first = rows[head[0] + 1] if head and head[0] + 1 < len(rows) else ""
            want = "test_churn.c:%d" % line
            ok = out.returncode == 0 and first.split()[:1] == [value] and want in first
            print("%s %s: %s" % ("ok  " if ok else "FAIL", st, first.strip()))
            if not ok:
                print("  want %s first with %s; pprof said:\n%s%s" %
                      (want, value, out.stdout, out.stderr))
                failed += 1
    finally:
        shutil.rmtree(tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
