#!/usr/bin/env python3
"""pprof_raw.py - reads `go tool pprof -raw` output (the samples, their
locations, the profile's time) for the endpoint tests' allocation checks.

usage: pprof_raw.py only RAW FUNC A0 A1 I0 I1   exactly one sample with any
                                               value, FUNC's, with these four
       pprof_raw.py has RAW FUNC A0 A1 I0 I1    FUNC's sample has these four
       pprof_raw.py grew OLD NEW                no stack's alloc values fell
       pprof_raw.py before RAW ACKFILE          exit 0 when the ack's time
                                               (ns) is before the profile's
       pprof_raw.py body HTTP OUT               a 200 answer's body to OUT
Exit 0 when the check holds, 1 (saying why) when not."""
import calendar
import re
import sys


def parse(path):
    """(time_ns or None, [(values, (frame, ...))]), a frame 'func file:line'."""
    text = open(path).read()
    time_ns = None
    m = re.search(r"^Time: (\d+-\d+-\d+ \d+:\d+:\d+)(?:\.(\d+))? ([+-])(\d\d)(\d\d)",
                  text, re.M)
    if m:
        secs = calendar.timegm(tuple(int(x) for x in re.split("[- :]", m.group(1))) +
                               (0, 0, 0))
        off = (int(m.group(4)) * 60 + int(m.group(5))) * 60
        secs -= off if m.group(3) == "+" else -off
        time_ns = secs * 10**9 + int((m.group(2) or "0").ljust(9, "0"))
    locs = {}
    for lm in re.finditer(r"^ +(\d+): 0x[0-9a-f]+ M=\d+ (.*)$", text, re.M):
        # One line per frame, inlined frames on continuation lines.
        locs[int(lm.group(1))] = lm.group(2).split(" s=")[0].strip()
    samples = []
    part = text.split("\nSamples:\n", 1)[-1].split("\nLocations", 1)[0]
    for sm in re.finditer(r"^ +(-?\d+(?: +-?\d+)*): ([\d ]+)$", part, re.M):
        vals = tuple(int(v) for v in sm.group(1).split())
        frames = tuple(locs.get(int(i), "?") for i in sm.group(2).split())
        samples.append((vals, frames))
    return time_ns, samples


def func_of(frames):
    return frames[0].split()[0] if frames else "?"


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd in ("only", "has"):
        _, samples = parse(args[0])
        want = (args[1], tuple(int(v) for v in args[2:6]))
        got = [(func_of(f), v) for v, f in samples if any(v)]
        ok = got == [want] if cmd == "only" else want in got
        if not ok:
            print("want %s%s; samples: %s" % ("only " if cmd == "only" else "",
                                              want, got))
        return 0 if ok else 1
    if cmd == "grew":
        _, old = parse(args[0])
        _, new = parse(args[1])
        now = {f: v for v, f in new}
        bad = [(f[0], v, now.get(f)) for v, f in old
               if f not in now or now[f][0] < v[0] or now[f][1] < v[1]]
        for b in bad:
            print("fell or went: %s %s -> %s" % b)
        return 1 if bad or not old else 0
    if cmd == "body":
        head, _, body = open(args[0], "rb").read().partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 OK"):
            print("answer: %r" % head[:200])
            return 1
        open(args[1], "wb").write(body)
        return 0
    if cmd == "before":
        t, _ = parse(args[0])
        acked = int(open(args[1]).read().split()[0])
        return 0 if t is not None and acked < t else 1
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
