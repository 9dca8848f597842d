#!/usr/bin/env python3
# make_seeds.py - writes the committed seed corpora of the fuzz targets from
# snapdiff's test fixtures (run once by hand; see tests/fuzz/README.md).
import os, struct, sys, zlib

FIX = sys.argv[1]  # a build's tests/snapdiff/fixtures
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SEP = b"\n--8<--\n"


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fix_crc(b):
    b = bytearray(b)
    c = zlib.crc32(bytes(b[:16]))
    c = zlib.crc32(bytes(b[20:]), c)
    struct.pack_into("<I", b, 16, c)
    return bytes(b)


def to_v10(b):
    """The same snapshot as a 1.0 file: a 96-byte header, no sample_rate."""
    hsize, = struct.unpack_from("<I", b, 12)
    nsec, = struct.unpack_from("<I", b, 20)
    assert hsize == 104
    out = bytearray(b[:96] + b[104:])
    struct.pack_into("<HI", out, 10, 0, 96)  # minor 0, header_size 96
    struct.pack_into("<Q", out, 24, len(out))
    for i in range(nsec):
        off = 96 + 32 * i + 16
        o, = struct.unpack_from("<Q", out, off)
        struct.pack_into("<Q", out, off, o - 8)
    return fix_crc(out)


def fixture(name):
    with open(os.path.join(FIX, name), "rb") as f:
        return f.read()


# fuzz_hsnap_load: real files, and one in the 1.0 layout.
for n in ["old", "new", "empty", "t1", "other"]:
    put("fuzz_hsnap_load", n, fixture(n + ".hsnap"))
put("fuzz_hsnap_load", "old-v1.0", to_v10(fixture("old.hsnap")))

# fuzz_snapdiff_args: NUL-separated argv, then each file after SEP.
old, new, emp = fixture("old.hsnap"), fixture("new.hsnap"), fixture("empty.hsnap")
cases = {
    "one-text": ([b"a"], [old]),
    "pair-text": ([b"a", b"b"], [old, new]),
    "pair-json-func": ([b"--format", b"json", b"--by", b"function", b"a", b"b"], [old, new]),
    "csv-traceback": ([b"--format=csv", b"--by", b"traceback", b"--top", b"0", b"a"], [new]),
    "folded-filters": ([b"--format", b"folded", b"--include", b"*site*", b"--exclude", b"*lib*",
                        b"--domain", b"0", b"a", b"b"], [old, new]),
    "pprof-out": ([b"--format", b"pprof", b"-o", b"out.pb.gz", b"a", b"b"], [old, new]),
    "html-timeline": ([b"--timeline", b"--format", b"html", b"-o", b"r.html", b"a", b"b"], [old, new]),
    "wrapper-raw": ([b"--wrapper", b"my_xmalloc", b"--wrapper", b"module:*fixture*", b"--raw",
                     b"--cumulative", b"a"], [new]),
    "text-traceback": ([b"--by", b"traceback", b"--top", b"3", b"a", b"b"], [emp, new]),
    "usage-errors": ([b"--by", b"nope", b"--top", b"-1", b"a"], [old]),
    "help": ([b"--help"], []),
    "bad-file": ([b"a", b"b"], [b"\x89HSN\r\n\x1a\nshort", b"not a snapshot"]),
}
for name, (args, files) in cases.items():
    data = b"\0".join(args) + b"\0"
    for f in files:
        data += SEP + f
    put("fuzz_snapdiff_args", name, data)

# fuzz_reclayout_ops: small programs (op encoding in fuzz_reclayout_ops.c).
def cls(idx, flags, name=None, base=None, slots=(), kind=0, keys=()):
    b = [0, idx, flags]
    if not flags & 0x80:
        b.append(name)
    if flags & 1:
        b.append(base)
    b.append(len(slots))
    for n, t in slots:
        b += [n, t]
    b += [kind, len(keys)] + list(keys)
    return b
def new(c, o): return [3, c, o]
def attr(sub, o, name, index, value): return [6 + 16 * sub, o, name, index] + value
INT = lambda i: [2, i]        # ints[i % 10]
DBL = lambda i: [3, i]        # dbls[i % 12]
STR = lambda s: [4, len(s)] + list(s)
BSTR = lambda i: [5, i]
X, Y, Z, NAME, ID, DICT, VAL, K0, K1, K2 = range(10)
SET, DEL, GET, SETI, GETI, SETF, SETL, HAS = range(8)

put("fuzz_reclayout_ops", "point-typed",
    bytes(cls(0, 2, NAME, slots=[(X, 2), (Y, 2), (Z, 2)])
          + [10, 2, 0, 0] + [10, 0, 0, X] + DBL(8) + [1]
          + new(0, 0) + attr(SETF, 0, X, 1, DBL(11)) + attr(GETI, 0, X, 1, [0])
          + attr(SET, 0, VAL, 0, INT(1)) + [11, 0, 10, 1, 0]))
put("fuzz_reclayout_ops", "shared-dict",
    bytes(cls(1, 0, ID, kind=3, keys=[K0, K1, K2]) + new(1, 0) + new(1, 1)
          + attr(SET, 0, K0, 0, INT(2)) + attr(SET, 0, K1, 0, STR(b"hello"))
          + attr(SET, 0, K2, 0, BSTR(1)) + attr(SET, 1, K1, 0, INT(3))
          + attr(SET, 0, VAL, 0, DBL(2)) + attr(DEL, 0, K1, 0, [0])
          + [12, 0] + attr(SET, 1, K0, 0, STR(b"x" * 10)) + [11, 1]
          + attr(HAS, 0, DICT, 0, [0]) + [5, 0]))
put("fuzz_reclayout_ops", "inherit",
    bytes(cls(0, 2, X, slots=[(X, 0), (Y, 3)])
          + cls(1, 3, Y, base=0, slots=[(Z, 6), (DICT, 0)], kind=2)
          + cls(2, 1, Z, base=1) + cls(3, 3, VAL, base=0, slots=[(X, 1)])
          + new(0, 0) + new(1, 1) + new(2, 2)
          + attr(SET, 0, Y, 0, INT(5)) + attr(SET, 0, Y, 0, INT(4))
          + attr(SETI, 1, 0, 0, STR(b"owned")) + attr(SET, 1, Z, 0, [1, 1])
          + attr(SET, 1, NAME, 0, BSTR(2)) + attr(DEL, 1, X, 0, [0])
          + attr(DEL, 1, Y, 0, [0]) + attr(SET, 2, ID, 0, [6, 1])
          + attr(SETL, 2, X, 1, INT(9)) + [12, 1] + attr(SET, 2, K0, 0, STR(b"abc"))
          + [11, 2, 5, 1, 2, 3]))
print("seeds written under", OUT)
