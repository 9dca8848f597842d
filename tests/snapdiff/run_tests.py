#!/usr/bin/env python3
"""run_tests.py - snapdiff's end-to-end tests: runs the tool on the fixture
snapshots and checks every option and format by parsing what it wrote.

Usage: run_tests.py --snapdiff BIN --fixtures DIR ... CASE
Exit 0 pass, 1 fail, 77 skip (printed loudly: ctest shows it as skipped).
SNAPDIFF_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing.
"""
import argparse
import csv
import glob
import gzip
import io
import json
import os
import pty
import re
import select
import shutil
import stat
import struct
import subprocess
import sys
import tempfile

A = None  # parsed arguments
FAILS = []
SKIP = 77


def fail(msg):
    FAILS.append(msg)
    print("FAIL: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def fx(name):
    return os.path.join(A.fixtures, name)


def run(*args, env=None, stdin=None):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    if env:
        e.update(env)
    p = subprocess.run([A.snapdiff] + [str(a) for a in args], capture_output=True,
                       env=e, stdin=stdin or subprocess.DEVNULL, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def ok(*args, **kw):
    rc, out, err = run(*args, **kw)
    if rc != 0:
        fail("snapdiff %s: exit %d, stderr: %s" % (" ".join(map(str, args)), rc, err))
    return out


def get_json(*args):
    out = ok(*args, "--format", "json")
    try:
        return json.loads(out.decode("utf-8"))
    except ValueError as e:
        fail("snapdiff %s --format json: not JSON (%s)" % (" ".join(args), e))
        return None


PAIR = ("old.hsnap", "new.hsnap")
TIMELINE = ("t1.hsnap", "t2.hsnap", "t3.hsnap", "t4.hsnap")


def pair():
    return [fx(p) for p in PAIR]


def series():
    return [fx(p) for p in TIMELINE]


# Facts the fixtures were built to have (make_fixtures.c).
OLD_SIZE = 10000 + 500 + 1000 + 21 + 256 + 320 + 16
NEW_SIZE = 15000 + 200 + 21 + 256 + 8192 + 640 + 16 + 15
OLD_COUNT = 100 + 50 + 10 + 3 + 4 + 10 + 2
NEW_COUNT = 150 + 20 + 3 + 4 + 8 + 20 + 2 + 5
GROWTH = 5000 + 8192 + 320 + 15  # positive growth by traceback


# ---- cases -----------------------------------------------------------------

def case_cli():
    rc, out, err = run("--help")
    check(rc == 0 and out.startswith(b"usage: snapdiff"), "--help: exit %d" % rc)
    for opt in (b"--by", b"--cumulative", b"--top", b"--include", b"--exclude",
                b"--domain", b"--wrapper", b"--raw", b"--format", b"--output",
                b"--timeline", b"--version"):
        check(opt in out, "--help does not mention %s" % opt.decode())
    rc, out, err = run("-h")
    check(rc == 0 and out.startswith(b"usage:"), "-h: exit %d" % rc)
    hdr = open(os.path.join(A.source_dir, "include", "heapsnap.h")).read()
    version = re.search(r'#define HS_VERSION_STRING "([^"]+)"', hdr).group(1)
    for opt in ("--version", "-V"):
        rc, out, err = run(opt)
        check(rc == 0 and out == ("snapdiff %s\n" % version).encode(),
              "%s printed %r (exit %d)" % (opt, out, rc))
    usage = [
        [],
        ["--by", "nope", fx("old.hsnap")],
        ["--top", "-1", fx("old.hsnap")],
        ["--top", "ten", fx("old.hsnap")],
        ["--top", "", fx("old.hsnap")],
        ["--format", "xml", fx("old.hsnap")],
        ["--domain", "x", fx("old.hsnap")],
        ["--domain", "-3", fx("old.hsnap")],
        ["--wrapper", "file:", fx("old.hsnap")],
        ["--bogus", fx("old.hsnap")],
        ["-q", fx("old.hsnap")],
        ["--by"],
        ["-o"],
        [fx("t1.hsnap"), fx("t2.hsnap"), fx("t3.hsnap")],
        ["--timeline", fx("t1.hsnap")],
        ["--cumulative", "--by", "traceback", fx("old.hsnap")],
        ["--cumulative", "--format", "folded", fx("old.hsnap")],
        ["--cumulative", "--format", "pprof", fx("old.hsnap")],
    ]
    for args in usage:
        rc, out, err = run(*args)
        lines = err.strip().splitlines()
        check(rc == 2, "usage error %r: exit %d, want 2" % (args, rc))
        check(out == b"", "usage error %r wrote to stdout" % (args,))
        check(len(lines) == 2 and lines[0].startswith("snapdiff: ") and
              "--help" in lines[1], "usage error %r: stderr %r" % (args, err))


STAT_RE = re.compile(r"^(?P<key>.+): size=(?P<size>[^,(]+?)(?: \((?P<dsize>[^)]+)\))?, "
                     r"count=(?P<count>\d+)(?: \((?P<dcount>[+-]\d+)\))?(?:, average=.+)?$")


def text_rows(out):
    lines = out.decode("utf-8", "replace").splitlines()
    rows = [STAT_RE.match(l) for l in lines if not l.startswith(("[", "Total:", " "))
            and not re.match(r"^\d+ other:", l)]
    return lines, rows


def case_text():
    lines, rows = text_rows(ok(fx("new.hsnap"), "--top", "0"))
    check(lines[0] == "[ Top 7 of 7 lines ]", "header: %r" % lines[0])
    check(all(rows), "unparsed line in %r" % lines)
    check(sum(int(m.group("count")) for m in rows) == NEW_COUNT, "counts do not sum")
    check(lines[-1] == "Total: size=23.8 KiB, count=%d" % NEW_COUNT, "total: %r" % lines[-1])
    # --top: the rest folds into one "other" line.
    lines, rows = text_rows(ok(fx("new.hsnap"), "--top", "2"))
    check(lines[0] == "[ Top 2 of 7 lines ]" and len(rows) == 2, "--top 2: %r" % lines)
    check(lines[-2] == "5 other: size=892 B, count=50", "other line: %r" % lines[-2])
    # Default top is 10 (the fixtures have fewer keys: all shown).
    lines, rows = text_rows(ok(*pair()))
    check(lines[0] == "[ Top 8 of 8 lines by difference ]", "compare header %r" % lines[0])
    check(lines[-1] == "Total: size=23.8 KiB (+11.9 KiB), count=%d (+%d)"
          % (NEW_COUNT, NEW_COUNT - OLD_COUNT), "compare total %r" % lines[-1])
    check(sum(int(m.group("dcount")) for m in rows) == NEW_COUNT - OLD_COUNT,
          "count diffs do not sum")
    check(rows[0].group("dsize") == "+8192 B", "largest change first: %r" % rows[0].group(0))
    # --by filename / function.
    lines, rows = text_rows(ok(fx("new.hsnap"), "--by", "filename"))
    keys = [os.path.basename(m.group("key")) for m in rows]
    check(keys[:2] == ["make_fixtures.c", "fixture_lib.c"], "--by filename %r" % keys)
    lines, rows = text_rows(ok(fx("new.hsnap"), "--by", "function"))
    check(rows[0].group("key").startswith("site_a (") and lines[0].endswith("functions ]"),
          "--by function %r" % lines[:2])
    # --by traceback prints each stack, oldest frame first, site last.
    out = ok(*pair(), "--by", "traceback", "--top", "1").decode()
    tb = [l for l in out.splitlines() if l.startswith("  ")]
    check(len(tb) >= 4 and any("uses_wrapper(0, 1024, 8);" in l for l in tb) and
          'make_fixtures.c", line' in tb[-2], "--by traceback stack: %r" % tb)
    # --cumulative: the recursive frame counts twice (2 traces x 2 frames).
    lines, rows = text_rows(ok(fx("old.hsnap"), "--cumulative", "--top", "0"))
    check(lines[0].endswith(", cumulative ]"), "cumulative header %r" % lines[0])
    rec_call = [m for m in rows if m.group("count") == "4" and m.group("size") == "32 B"]
    check(len(rec_call) == 1, "cumulative: the recursive call line (4 x 8 B) is missing")


def normalize(text):
    for path, tag in ((A.build_dir, "@BUILD@"), (A.source_dir, "@SRC@")):
        text = text.replace(os.path.realpath(path), tag).replace(path, tag)
    return text


def case_golden():
    cases = {
        "pair.txt": [fx("old.hsnap"), fx("new.hsnap")],
        "single.txt": [fx("old.hsnap")],
        "pair_function_top3.txt": [fx("old.hsnap"), fx("new.hsnap"), "--by", "function",
                                   "--top", "3"],
        "single_filename.txt": [fx("new.hsnap"), "--by", "filename"],
    }
    for name, args in cases.items():
        got = normalize(ok(*args).decode("utf-8", "replace"))
        path = os.path.join(A.golden, name)
        if os.environ.get("SNAPDIFF_UPDATE_GOLDEN"):
            os.makedirs(A.golden, exist_ok=True)
            with open(path, "w") as f:
                f.write(got)
            print("wrote " + path)
            continue
        want = open(path).read()
        if not check(got == want, "golden %s differs" % name):
            print("--- want\n%s--- got\n%s" % (want, got))


def frames_ok(stat):
    return all(set(f) == {"file", "line", "function", "module", "offset"}
               for f in stat["frames"]) and 0 <= stat["site"] < len(stat["frames"])


def case_json():
    j = get_json(fx("new.hsnap"), "--top", "0")
    check(j["schema"] == "heapsnap-stats/1" and j["kind"] == "statistics" and
          j["key"] == "lineno" and j["cumulative"] is False, "json header %r" % j)
    check(j["total"] == {"size": NEW_SIZE, "count": NEW_COUNT}, "json total %r" % j["total"])
    check(sum(s["size"] for s in j["stats"]) == NEW_SIZE, "json sizes do not sum")
    check(sum(s["count"] for s in j["stats"]) == NEW_COUNT, "json counts do not sum")
    check(j["keys"] == len(j["stats"]) == 7, "json keys %r" % j["keys"])
    check(all(frames_ok(s) for s in j["stats"]), "json frames malformed")
    snap = j["snapshots"][0]
    check(snap["path"] == fx("new.hsnap") and snap["size"] == NEW_SIZE and
          snap["program"].endswith("sd_fixtures") and snap["traceback_limit"] == 16,
          "json snapshot %r" % snap)
    # The odd file name survives escaping: quote, comma, semicolon,
    # backslash, e-acute, and U+FFFD for the byte that is not UTF-8.
    odd = [s for s in j["stats"] if "odd dir" in (s["frames"][0]["file"] or "")]
    check(len(odd) == 1 and odd[0]["frames"][0]["file"].endswith(
        'odd dir/we"ird,na;me\\\u00e9\ufffd.c'), "json odd name %r" % odd)
    # Compare: diffs sum to the total diff.
    for key in ("lineno", "filename", "function", "traceback"):
        j = get_json(*pair(), "--top", "0", "--by", key)
        t = j["total"]
        check(j["kind"] == "compare" and t["size"] == NEW_SIZE and
              t["size_diff"] == NEW_SIZE - OLD_SIZE and
              t["count_diff"] == NEW_COUNT - OLD_COUNT, "json compare total %r" % t)
        check(sum(s["size_diff"] for s in j["stats"]) == t["size_diff"],
              "json --by %s: size diffs do not sum" % key)
        check(sum(s["size"] for s in j["stats"]) == t["size"],
              "json --by %s: sizes do not sum" % key)
        check(all(frames_ok(s) for s in j["stats"]), "json --by %s frames" % key)
        if key == "traceback":
            check(all(len(s["frames"]) >= 4 for s in j["stats"]), "traceback frames")
    # --top limits stats, not totals.
    j = get_json(*pair(), "--top", "3")
    check(len(j["stats"]) == 3 and j["keys"] == 8 and
          j["total"]["size_diff"] == NEW_SIZE - OLD_SIZE, "json --top 3")
    j = get_json(fx("empty.hsnap"))
    check(j["total"] == {"size": 0, "count": 0} and j["stats"] == [], "json empty %r" % j)


def read_csv(*args):
    out = ok(*args, "--format", "csv")
    check(b"\r\n" in out, "csv records end with CRLF")
    return list(csv.DictReader(io.StringIO(out.decode("utf-8", "surrogateescape"),
                                           newline="")))


def case_csv():
    rows = read_csv(fx("new.hsnap"), "--top", "0")
    check(list(rows[0].keys()) == ["rank", "key", "file", "line", "function", "module",
                                  "size", "count"], "csv header %r" % list(rows[0]))
    check(sum(int(r["size"]) for r in rows) == NEW_SIZE, "csv sizes do not sum")
    check(sum(int(r["count"]) for r in rows) == NEW_COUNT, "csv counts do not sum")
    check([int(r["rank"]) for r in rows] == list(range(1, 8)), "csv ranks")
    odd = [r for r in rows if "odd dir" in r["file"]]
    check(len(odd) == 1 and 'we"ird,na;me\\' in odd[0]["file"] and odd[0]["line"] == "3",
          "csv odd name %r" % odd)
    check(rows[0]["function"] == "site_a" and rows[0]["line"] == "21", "csv first %r" % rows[0])
    rows = read_csv(*pair(), "--top", "0")
    check(sum(int(r["size_diff"]) for r in rows) == NEW_SIZE - OLD_SIZE, "csv diffs")
    check(sum(int(r["count_diff"]) for r in rows) == NEW_COUNT - OLD_COUNT, "csv count diffs")
    rows = read_csv(*pair(), "--top", "0", "--by", "traceback")
    check(all(r["stack"].count(";") >= 3 and r["stack"].startswith("_start")
              for r in rows), "csv stack column")
    rows = read_csv(*pair(), "--top", "2")
    check(len(rows) == 2, "csv --top 2")


def folded(*args):
    out = ok(*args, "--format", "folded").decode("utf-8", "replace")
    lines = out.splitlines()
    parsed = []
    for l in lines:
        m = re.match(r"^(.+) (\d+)$", l)
        if check(m, "folded line %r" % l):
            parsed.append((m.group(1).split(";"), int(m.group(2))))
    return parsed


def case_folded():
    st = folded(fx("new.hsnap"))
    check(sum(w for _, w in st) == NEW_SIZE, "folded weights sum to %d, want %d"
          % (sum(w for _, w in st), NEW_SIZE))
    check(all(f[0].startswith("_start") for f, _ in st), "folded root first")
    check(any(f[-1].startswith("site_a (make_fixtures.c:") for f, _ in st), "folded site last")
    odd = [f for f, _ in st if "weird_alloc" in f[-1]]
    check(len(odd) == 1 and ";" not in "".join(odd[0]) and
          odd[0][-1].startswith('weird_alloc (we"ird,na:me'), "folded odd %r" % odd)
    # A comparison: growth only; it equals the positive traceback diffs.
    d = folded(*pair())
    j = get_json(*pair(), "--by", "traceback", "--top", "0")
    growth = sum(s["size_diff"] for s in j["stats"] if s["size_diff"] > 0)
    check(growth == GROWTH and sum(w for _, w in d) == growth,
          "folded growth %d, want %d" % (sum(w for _, w in d), growth))
    check(all(w > 0 for _, w in d), "folded weights positive")
    # --by does not change the stacks; a timeline shows first-to-last growth.
    check(folded(*pair(), "--by", "function") == d, "folded ignores --by")
    t = folded("--timeline", *series())
    check(sum(w for _, w in t) == 3000 + 300 + 3200, "timeline folded growth")
    check(folded(fx("empty.hsnap")) == [], "folded of an empty snapshot")


def load_profile_module(tmp):
    protoc = shutil.which("protoc")
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        protoc = None
    if not protoc:
        return None
    subprocess.run([protoc, "--python_out=" + tmp, "-I" + os.path.dirname(A.proto), A.proto],
                   check=True)
    sys.path.insert(0, tmp)
    import profile_pb2
    return profile_pb2


def case_pprof():
    tmp = tempfile.mkdtemp()
    try:
        pb = load_profile_module(tmp)
        if pb is None:
            print("SKIP: *** pprof decoding needs protoc and python3-protobuf "
                  "(Debian: protobuf-compiler python3-protobuf; scripts/test-deps.sh) ***")
            return SKIP
        out = os.path.join(tmp, "p.pb.gz")
        rc, _, err = run(fx("new.hsnap"), "--format", "pprof", "-o", out)
        if "no pprof support" in err:
            print("SKIP: *** this snapdiff was built without protobuf-c "
                  "(Debian: protobuf-c-compiler libprotobuf-c-dev) ***")
            return SKIP

        def decode(*args):
            ok(*args, "--format", "pprof", "-o", out)
            raw = open(out, "rb").read()
            check(raw[:2] == b"\x1f\x8b", "pprof output is not gzip")
            p = pb.Profile()
            p.ParseFromString(gzip.decompress(raw))
            st = p.string_table
            check(st[0] == "", "string_table[0] is not empty")
            check([(st[v.type], st[v.unit]) for v in p.sample_type] ==
                  [("alloc_objects", "count"), ("alloc_space", "bytes"),
                   ("inuse_objects", "count"), ("inuse_space", "bytes")],
                  "sample types %r" % p.sample_type)
            check(st[p.default_sample_type] == "inuse_space", "default sample type")
            locs = {l.id: l for l in p.location}
            funcs = {f.id: f for f in p.function}
            maps = {m.id: m for m in p.mapping}
            check(len(locs) == len(p.location) and len(funcs) == len(p.function),
                  "duplicate ids")
            for s in p.sample:
                check(len(s.value) == 4, "sample values")
                for lid in s.location_id:
                    l = locs.get(lid)
                    if not check(l is not None, "sample names unknown location %d" % lid):
                        continue
                    check(l.mapping_id == 0 or l.mapping_id in maps, "unknown mapping")
                    for ln in l.line:
                        check(ln.function_id in funcs, "unknown function")
            return p

        p = decode(fx("new.hsnap"))
        st = p.string_table
        check(st[p.period_type.type] == "space" and st[p.period_type.unit] == "bytes",
              "period type")
        check(sum(s.value[3] for s in p.sample) == NEW_SIZE, "pprof bytes sum")
        check(sum(s.value[2] for s in p.sample) == NEW_COUNT, "pprof counts sum")
        check(st[p.mapping[0].filename].endswith("sd_fixtures"), "mapping 1 is the program")
        names = {st[f.name] for f in p.function}
        check({"site_a", "calls_a", "main", "lib_alloc", "weird_alloc"} <= names,
              "pprof functions %r" % names)
        # The innermost location of site_a's stack is the hs_track line.
        locs = {l.id: l for l in p.location}
        funcs = {f.id: f for f in p.function}
        leaf = [(st[funcs[locs[s.location_id[0]].line[0].function_id].name],
                 locs[s.location_id[0]].line[0].line) for s in p.sample]
        check(("site_a", 21) in leaf, "pprof leaf frames %r" % leaf)
        check(any(st[f.filename].endswith("make_fixtures.c") for f in p.function),
              "pprof file names")
        p = decode(*pair())
        check(sum(s.value[3] for s in p.sample) == GROWTH, "pprof growth sum")
        check(all(min(s.value) >= 0 and max(s.value) > 0 for s in p.sample),
              "pprof growth positive")
        check(any("growth from" in p.string_table[c] for c in p.comment), "pprof comment")
        check(p.duration_nanos > 0 and p.time_nanos > 0, "pprof times")
        p = decode("--timeline", *series())
        check(sum(s.value[3] for s in p.sample) == 6500, "pprof timeline growth")
        p = decode(fx("empty.hsnap"))
        check(len(p.sample) == 0, "pprof of an empty snapshot")
        # A gzipped profile is never sent to a terminal.
        rc, err = run_in_pty([fx("new.hsnap"), "--format", "pprof"])[0:3:2]
        check(rc == 2, "pprof to a terminal: exit %d" % rc)
    finally:
        shutil.rmtree(tmp)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browser(html, extra, tmp):
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--user-data-dir=" + tempfile.mkdtemp(dir=tmp),
           "--enable-logging=stderr", "--v=0"] + extra + ["file://" + html]
    return subprocess.run(cmd, capture_output=True, timeout=90)


def case_html():
    tmp = tempfile.mkdtemp()
    try:
        pages = {"stats": [fx("new.hsnap")], "compare": pair(),
                 "timeline": ["--timeline"] + series(),
                 "traceback": pair() + ["--by", "traceback", "--top", "3"]}
        paths = {}
        for name, args in pages.items():
            path = os.path.join(tmp, name + ".html")
            ok(*args, "--format", "html", "-o", path)
            page = open(path, encoding="utf-8").read()
            paths[name] = path
            # One self-contained file: no external resource of any kind.
            check(not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page) and
                  "@import" not in page and "url(" not in page,
                  "%s.html refers to something outside itself" % name)
            data = re.search(r'<script id="sd-data" type="application/json">(.*?)</script>',
                             page, re.S)
            if check(data, "%s.html has no data block" % name):
                d = json.loads(data.group(1))
                check(d["kind"] == ("statistics" if name == "stats" else
                                    "timeline" if name == "timeline" else "compare"),
                      "%s.html kind" % name)
                weights = sum(s[0] for s in d["stacks"])
                want = {"stats": NEW_SIZE, "compare": GROWTH, "timeline": 6500,
                        "traceback": GROWTH}[name]
                check(weights == want, "%s.html flame weights %d, want %d"
                      % (name, weights, want))
                if name == "stats":
                    check(len(d["rows"]) == 7, "html shows every row by default")
                if name == "timeline":
                    a = [r for r in d["rows"] if r["function"] == "site_a"]
                    check(a and a[0]["series"] == [1000, 2000, 3000, 4000],
                          "html timeline series %r" % a)
        if not chromium():
            print("SKIP: *** no chromium: the HTML report was checked but not rendered "
                  "(Debian: chromium; scripts/test-deps.sh) ***")
            return SKIP
        for name, path in paths.items():
            p = browser(path, ["--dump-dom"], tmp)
            dom = p.stdout.decode("utf-8", "replace")
            log = p.stderr.decode("utf-8", "replace")
            check(p.returncode == 0, "chromium exit %d on %s" % (p.returncode, name))
            check('data-sd-status="ok"' in dom and 'id="sd-ok"' in dom,
                  "%s.html: the script did not finish (%s)" % (name, log[-400:]))
            check('id="sd-error"' not in dom, "%s.html reported a script error" % name)
            console = [l for l in log.splitlines() if "CONSOLE" in l or "Uncaught" in l]
            check(not console, "%s.html console messages: %r" % (name, console))
            check("<svg" in dom and 'id="sd-flame"' in dom, "%s.html has no flame graph" % name)
            check('id="sd-table"' in dom, "%s.html has no table" % name)
            # A flame graph per metric, and for two snapshots the differential
            # one (growth red, shrinkage blue), each drawn with search.
            for v in ["live", "allocated", "temporary"] + (["diff"] if name != "stats" else []):
                check('id="sd-view-%s"' % v in dom, "%s.html has no %s view" % (name, v))
            check('id="sd-search"' in dom, "%s.html has no search box" % name)
            if name == "compare":
                check('id="sd-view-svg-diff"' in dom and "hsl(0,80%" in dom,
                      "compare.html: the differential view has no growth in red")
            if name == "timeline":
                check('id="sd-chart"' in dom and "<polyline" in dom, "timeline.html has no chart")
        shots = {"timeline": "snapdiff-timeline.png", "compare": "snapdiff-compare.png"}
        for name, png in shots.items():
            dest = os.path.join(os.path.dirname(A.fixtures), png)
            if os.path.exists(dest):
                os.unlink(dest)
            p = browser(paths[name], ["--screenshot=" + dest, "--window-size=1200,900",
                                      "--hide-scrollbars"], tmp)
            if check(os.path.exists(dest), "no screenshot %s (%s)"
                     % (dest, p.stderr.decode()[-300:])):
                raw = open(dest, "rb").read()
                w, h = struct.unpack(">II", raw[16:24])
                check(raw[:8] == b"\x89PNG\r\n\x1a\n" and (w, h) == (1200, 900),
                      "screenshot is not a 1200x900 PNG")
                check(len(raw) > 20000, "screenshot %s is only %d bytes" % (dest, len(raw)))
                print("screenshot: %s (%d bytes)" % (dest, len(raw)))
    finally:
        shutil.rmtree(tmp)


def bad_inputs(tmp):
    """Every kind of bad input, as (what, path)."""
    good = open(fx("old.hsnap"), "rb").read()
    files = {}

    def put(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        files[name] = path

    put("text.hsnap", b"this is not a heapsnap snapshot at all\n")
    put("empty-file.hsnap", b"")
    put("version.hsnap", good[:8] + struct.pack("<H", 99) + good[10:])
    put("truncated.hsnap", good[:len(good) // 2])
    put("header-only.hsnap", good[:40])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    put("corrupt.hsnap", bytes(flipped))
    files["missing.hsnap"] = os.path.join(tmp, "missing.hsnap")
    files["a-directory"] = tmp
    return files


def case_errors():
    tmp = tempfile.mkdtemp()
    try:
        for what, path in bad_inputs(tmp).items():
            for args in ([path], [fx("old.hsnap"), path], [path, fx("new.hsnap")],
                         ["--timeline", fx("t1.hsnap"), path, fx("t4.hsnap")],
                         ["--format", "json", path]):
                rc, out, err = run(*args)
                lines = err.splitlines()
                check(rc == 1, "%s %r: exit %d, want 1" % (what, args, rc))
                check(len(lines) == 1 and lines[0].startswith("snapdiff: " + path + ":"),
                      "%s: want one line naming the file, got %r" % (what, err))
                check(out == b"", "%s: wrote to stdout" % what)
            print("%-18s -> %s" % (what, lines[0] if lines else "?"))
        # Different programs: a warning, not an error.
        rc, out, err = run(fx("old.hsnap"), fx("other.hsnap"))
        lines = err.splitlines()
        check(rc == 0 and len(lines) == 1 and "warning" in lines[0] and
              "other.hsnap" in lines[0] and "old.hsnap" in lines[0] and
              "sd_fixtures_other" in lines[0], "different programs: %d %r" % (rc, err))
        check(out.startswith(b"[ Top"), "different programs: no report")
        # The same program: no warning.
        rc, out, err = run(*pair())
        check(err == "", "same program warned: %r" % err)
    finally:
        shutil.rmtree(tmp)


def case_options():
    def total(*args):
        return get_json(*args, "--top", "0")["total"]

    def site_lines(*args):
        return [(os.path.basename(s["frames"][s["site"]]["file"] or ""),
                 s["frames"][s["site"]]["line"])
                for s in get_json(*args, "--top", "0")["stats"]]

    new = fx("new.hsnap")
    check(total(new, "--include", "*fixture_lib.c")["size"] == 640, "--include")
    check(total(new, "--exclude", "*fixture_lib.c")["size"] == NEW_SIZE - 640, "--exclude")
    check(total(new, "--include", "*fixture_lib.c", "--include", "*/odd dir/*")["size"]
          == 655, "two --include: either matches")
    check(total(new, "--include", "*.c", "--exclude", "*fixture_lib.c",
                "--exclude", "*make_fixtures.c")["size"] == 15, "--include with --exclude")
    check(total(new, "--domain", "5")["size"] == 256, "--domain 5")
    check(total(new, "--domain", "0")["size"] == NEW_SIZE - 256, "--domain 0")
    check(total(new, "--domain", "0", "--domain", "5")["size"] == NEW_SIZE, "two --domain")
    check(total(new, "--domain", "5", "--include", "*make_fixtures.c")["size"] == 256,
          "--domain and --include combine with and")
    check(total(new, "--domain", "5", "--include", "*fixture_lib.c")["size"] == 0,
          "--domain and --include: nothing matches both")
    t = total(*pair(), "--include", "*fixture_lib.c")
    check(t["size"] == 640 and t["size_diff"] == 320, "--include on a comparison %r" % t)
    # Wrappers move the site to the caller; --raw puts it back on frame 0.
    base = site_lines(new)
    check(("make_fixtures.c", 48) in base and ("fixture_lib.c", 12) in base, "sites %r" % base)
    w = site_lines(new, "--wrapper", "my_x*")
    check(("make_fixtures.c", 48) not in w and ("make_fixtures.c", 55) in w, "--wrapper %r" % w)
    w = site_lines(new, "--wrapper", "function:my_xmalloc")
    check(("make_fixtures.c", 55) in w, "--wrapper function:")
    w = site_lines(new, "--wrapper", "file:*fixture_lib.c")
    check(not any(f == "fixture_lib.c" for f, _ in w), "--wrapper file: %r" % w)
    w = site_lines(new, "--wrapper", "module:libsd_fixture_lib*")
    check(not any(f == "fixture_lib.c" for f, _ in w) and len(w) == 8,
          "--wrapper module: %r" % w)
    w = site_lines(new, "--wrapper", "my_x*", "--raw")
    check(w == base, "--raw ignores wrappers: %r" % w)
    # --by and --cumulative reach every table format.
    j = get_json(new, "--by", "function", "--cumulative", "--top", "0")
    check(j["key"] == "function" and j["cumulative"] is True and
          any(s["frames"][0]["function"] == "main" and s["size"] == NEW_SIZE
              for s in j["stats"]), "--by function --cumulative")
    rows = read_csv(new, "--by", "filename", "--top", "0")
    check(sorted(os.path.basename(r["file"]) for r in rows)[:2] ==
          ["fixture_lib.c", "make_fixtures.c"], "--by filename csv")
    # --top 1 and the default 10.
    check(len(get_json(new, "--top", "1")["stats"]) == 1, "--top 1")
    j = get_json("--timeline", *series(), "--by", "traceback")
    check(len(j["stats"]) == j["keys"] == 7, "--top default 10 with 7 keys")
    j = get_json(*pair(), "--by", "traceback")
    check(len(j["stats"]) == 10 and j["keys"] == 12, "--top default 10 of 12 keys")


def case_timeline():
    lines = ok("--timeline", *series()).decode().splitlines()
    check(lines[0] == "Timeline of 4 snapshots:", "timeline header %r" % lines[0])
    rows = [l.split() for l in lines[2:6]]
    check([r[0] for r in rows] == ["1", "2", "3", "4"] and
          [r[-1] for r in rows] == [fx(t) for t in TIMELINE], "timeline rows %r" % rows)
    check([" ".join(r[2:4]) for r in rows] == ["1500 B", "2800 B", "7300 B", "8000 B"],
          "timeline sizes %r" % rows)
    times = [float(r[1]) for r in rows]
    check(times[0] == 0 and times == sorted(times), "timeline times %r" % times)
    check("[ Top 4 of 4 lines by growth, first to last ]" in lines, "timeline table")
    check(lines[-1] == "Total: size=8000 B (+6500 B), count=193 (+133)",
          "timeline total %r" % lines[-1])
    j = get_json("--timeline", *series())
    check(j["kind"] == "timeline" and len(j["snapshots"]) == 4, "timeline json")
    check([s["size"] for s in j["snapshots"]] == [1500, 2800, 7300, 8000], "timeline totals")
    diffs = [s["size_diff"] for s in j["stats"]]
    check(diffs == sorted(diffs, reverse=True), "timeline ordered by growth %r" % diffs)
    by_fn = {s["frames"][0]["function"]: s for s in j["stats"]}
    check([x["size"] for x in by_fn["site_a"]["series"]] == [1000, 2000, 3000, 4000],
          "site_a series")
    check([x["size"] for x in by_fn["site_c"]["series"]] == [0, 300, 600, 300],
          "site_c series")
    check([x["count"] for x in by_fn["lib_alloc"]["series"]] == [0, 0, 100, 100],
          "lib_alloc series")
    # Per-site series sum to each snapshot's total (every key shown).
    for k in range(4):
        check(sum(s["series"][k]["size"] for s in j["stats"]) == j["snapshots"][k]["size"],
              "series of snapshot %d do not sum" % (k + 1))
    rows = read_csv("--timeline", *series())
    check(all("size_%d" % k in rows[0] for k in range(1, 5)), "timeline csv columns")
    check([int(rows[0]["size_%d" % k]) for k in range(1, 5)] == [0, 0, 3200, 3200],
          "timeline csv series %r" % rows[0])


def run_in_pty(args, env=None, stderr_tty=False, stdout_tty=True):
    """Runs snapdiff with stdout (and optionally stderr) on a terminal."""
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    p = subprocess.Popen([A.snapdiff] + args, stdin=subprocess.DEVNULL,
                         stdout=slave if stdout_tty else subprocess.PIPE,
                         stderr=slave if stderr_tty else subprocess.PIPE, env=e)
    os.close(slave)
    tty = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    out, err = p.communicate(timeout=30)
    os.close(master)
    return p.returncode, tty, (err or out or b"")


def case_tty():
    rc, tty, err = run_in_pty(pair())
    check(rc == 0 and b"\x1b[31m" in tty and b"\x1b[32m" in tty, "no colour on a terminal")
    red = [l for l in tty.split(b"\n") if l.startswith(b"\x1b[31m")]
    check(all(b"(+" in l for l in red) and len(red) == 4, "red lines are growth: %r" % red)
    rc, tty, err = run_in_pty(pair(), env={"NO_COLOR": "1"})
    check(rc == 0 and b"\x1b[" not in tty, "NO_COLOR still coloured")
    rc, out, err = run(*pair())
    check(b"\x1b[" not in out, "colour in a pipe")
    # Progress: only when stderr is a terminal.
    rc, tty, out = run_in_pty(pair(), stderr_tty=True, stdout_tty=False)
    check(rc == 0 and b"loading 1/2" in tty and b"new.hsnap" in tty and
          b"computing statistics" in tty, "no progress on a terminal: %r" % tty)
    check(out.startswith(b"[ Top"), "report with progress")
    rc, out, err = run("--timeline", *series())
    check(err == "", "progress on a pipe: %r" % err)


def case_output():
    tmp = tempfile.mkdtemp()
    try:
        dest = os.path.join(tmp, "report.json")
        old_mask = os.umask(0o022)
        rc, out, err = run(*pair(), "--format", "json", "-o", dest)
        os.umask(old_mask)
        check(rc == 0 and out == b"" and err == "", "-o: %d %r" % (rc, err))
        check(json.load(open(dest))["total"]["size"] == NEW_SIZE, "-o wrote the report")
        check(stat.S_IMODE(os.stat(dest).st_mode) == 0o644, "-o mode %o"
              % stat.S_IMODE(os.stat(dest).st_mode))
        check(os.listdir(tmp) == ["report.json"], "temporary left behind: %r" % os.listdir(tmp))
        ino = os.stat(dest).st_ino
        ok(fx("old.hsnap"), "--format", "csv", "--output", dest)
        check(os.stat(dest).st_ino != ino, "-o replaces by rename")
        check(open(dest).read().startswith("rank,"), "--output wrote csv")
        # "-" is standard output.
        rc, out, err = run(*pair(), "-o", "-")
        check(rc == 0 and out.startswith(b"[ Top"), "-o -")
        # An unwritable place: one line, exit 1, nothing left.
        bad = os.path.join(tmp, "no-such-dir", "r.txt")
        rc, out, err = run(*pair(), "-o", bad)
        check(rc == 1 and err.count("\n") == 1 and bad in err, "-o bad dir: %d %r" % (rc, err))
        # Bad input writes no output file.
        rc, out, err = run(os.path.join(tmp, "missing.hsnap"), "-o",
                           os.path.join(tmp, "x.txt"))
        check(rc == 1 and not os.path.exists(os.path.join(tmp, "x.txt")), "bad input -o")
        # A full disk: the error is reported and no partial file remains.
        if os.path.exists("/dev/full"):
            with open("/dev/full", "w") as full:
                p = subprocess.run([A.snapdiff] + pair() + ["--format", "json"],
                                   stdout=full, stderr=subprocess.PIPE)
            err = p.stderr.decode()
            check(p.returncode == 1 and err.count("\n") == 1 and
                  "standard output" in err, "stdout on a full device: %d %r"
                  % (p.returncode, err))
    finally:
        shutil.rmtree(tmp)


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapdiff", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--golden", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("case")
    A = ap.parse_args()
    fn = globals().get("case_" + A.case)
    if not fn:
        print("unknown case " + A.case)
        return 2
    if not glob.glob(fx("*.hsnap")):
        print("no fixtures in %s: run the snapdiff_fixtures test first" % A.fixtures)
        return 1
    rc = fn()
    if FAILS:
        print("%d check(s) failed in %s" % (len(FAILS), A.case))
        return 1
    if rc == SKIP:
        return SKIP
    print("ok: " + A.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
