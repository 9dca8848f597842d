#!/usr/bin/env python3
"""heaptrack_compare.py - reads a heaptrack data file and prints the peak of
the heap and the number of allocation calls, counting only allocations made
under main() (heaptrack's preload also sees its own libraries' start-up,
which heapsnap, loaded without them, never runs). Reallocs count as
heaptrack records them: a free of the old block, then an allocation."""
import subprocess
import sys


def main(path):
    data = subprocess.run(["zstdcat", path], check=True, capture_output=True,
                          text=True, errors="replace").stdout.splitlines()
    strings = [""]            # 's' lines, 1-based indexes
    ips = [None]              # 'i' lines: function string index
    traces = [(0, 0)]         # 't' lines: (ip index, parent trace index)
    allocs = []               # 'a' lines: (size, trace index)
    under_main_cache = {}
    peak = cur = calls = 0

    def under_main(t):
        if t in under_main_cache:
            return under_main_cache[t]
        seen = []
        found = False
        while t and t not in under_main_cache:
            seen.append(t)
            ip, parent = traces[t]
            fn = ips[ip]
            if fn is not None and strings[fn] == "main":
                found = True
                break
            t = parent
        if not found and t in under_main_cache:
            found = under_main_cache[t]
        for s in seen:
            under_main_cache[s] = found
        return found

    for line in data:
        if not line:
            continue
        kind, rest = line[0], line[2:]
        if kind == "s":
            strings.append(rest.split(" ", 1)[1] if " " in rest else "")
        elif kind == "i":
            f = rest.split()
            ips.append(int(f[2], 16) if len(f) > 2 else None)
        elif kind == "t":
            f = rest.split()
            traces.append((int(f[0], 16), int(f[1], 16)))
        elif kind == "a":
            f = rest.split()
            allocs.append((int(f[0], 16), int(f[1], 16)))
        elif kind in "+-":
            size, trace = allocs[int(rest, 16)]
            if not under_main(trace):
                continue
            if kind == "+":
                cur += size
                calls += 1
                peak = max(peak, cur)
            else:
                cur -= size
    print("peak=%d calls=%d" % (peak, calls))


if __name__ == "__main__":
    main(sys.argv[1])
