#!/usr/bin/env python3
"""bad_requests.py - hostile clients against heapsnap's pprof endpoint:
oversized heads, garbage, bare line feeds, slowloris (one, then enough to
take every slot), thousands of short connections, bounds on ?seconds; after
each, a good request must still be served. Usage: bad_requests.py HOST:PORT
(loopback only)."""
import os
import socket
import sys
import threading
import time

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
assert host in ("127.0.0.1", "::1", "localhost"), "loopback only"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def conn(timeout=10):
    s = socket.create_connection((host, port), timeout=timeout)
    return s


def exchange(data, timeout=10):
    """Sends data, returns everything the server sent until it closed."""
    s = conn(timeout)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    return out


def bare(status, text):
    return ("HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            % (status, text)).encode()


def good(what):
    t = time.monotonic()
    r = exchange(b"GET /debug/pprof/heap HTTP/1.1\r\nHost: x\r\n\r\n")
    dt = time.monotonic() - t
    ok = r.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n\x1f\x8b" in r
    check(ok, "%s: a good request is served (%.2f s)" % (what, dt))
    return dt


good("start")

# Oversized heads: one huge header, and many small ones.
r = exchange(b"GET /debug/pprof/heap HTTP/1.1\r\nX-Big: " + b"a" * 20000 +
             b"\r\n\r\n")
check(r == bare(431, "Request Header Fields Too Large"),
      "a 20 KB header gets 431 and nothing else")
r = exchange(b"GET /debug/pprof/heap HTTP/1.1\r\n" +
             b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n")
check(r == bare(431, "Request Header Fields Too Large"),
      "200 headers get 431")
good("after oversized heads")

# Garbage and near misses: 400 and nothing else.
cases = [
    b"\x00\x01\x02garbage\r\n\r\n",
    b"GET /debug/pprof/heap HTTP/1.1\n\n",
    b"GET /debug/pprof/heap HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET  /debug/pprof/heap HTTP/1.1\r\n\r\n",
    b"GET debug/pprof/heap HTTP/1.1\r\n\r\n",
    b"GET /debug/pprof/heap?seconds=abc HTTP/1.1\r\n\r\n",
    b"GET /debug/pprof/heap?seconds=61 HTTP/1.1\r\n\r\n",
    b"GET /debug/pprof/heap?seconds=1&debug=1 HTTP/1.1\r\n\r\n",
    b"GET /debug/pprof/heap HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /debug/pprof/heap HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /debug/pprof/heap HTTP/1.1\r\n folded\r\n\r\n",
    b"\r\n\r\n",
]
for c in cases:
    r = exchange(c)
    check(r == bare(400, "Bad Request"), "400 only for %r" % c[:40])
check(exchange(b"POST /debug/pprof/heap HTTP/1.1\r\n\r\n") ==
      ("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n"
       "Connection: close\r\nAllow: GET, HEAD\r\n\r\n").encode(), "POST: 405")
check(exchange(b"GET /debug/pprof/heap HTTP/2.0\r\n\r\n") ==
      bare(505, "HTTP Version Not Supported"), "HTTP/2.0: 505")
check(exchange(b"GET /nope HTTP/1.1\r\n\r\n") == bare(404, "Not Found"),
      "unknown path: 404")
check(exchange(b"GET /" + b"a" * 1000 + b" HTTP/1.1\r\n\r\n") ==
      bare(414, "URI Too Long"), "long path: 414")
r = exchange(b"HEAD /debug/pprof/heap HTTP/1.1\r\n\r\n")
check(r.startswith(b"HTTP/1.1 200 OK\r\n") and r.endswith(b"\r\n\r\n"),
      "HEAD: headers only")
r = exchange(os.urandom(9000))
check(r in (b"", bare(400, "Bad Request"),
            bare(431, "Request Header Fields Too Large")),
      "9000 random bytes: 400, 431 or a close")
good("after garbage")


# Slowloris: a byte every 0.3 s. The server must close it (about 5 s) and
# keep serving others meanwhile.
def slowloris(result, idx):
    s = conn(30)
    t = time.monotonic()
    head = b"GET /debug/pprof/heap HTTP/1.1\r\nX-Slow: " + b"z" * 100
    closed = False
    try:
        for b in head:
            s.send(bytes([b]))
            s.settimeout(0.3)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            if time.monotonic() - t > 20:
                break
    except OSError:
        closed = True
    result[idx] = (closed, time.monotonic() - t)
    s.close()


res = [None]
th = threading.Thread(target=slowloris, args=(res, 0))
th.start()
time.sleep(1)
dt = good("during a slowloris")
check(dt < 2, "a slowloris does not delay others")
th.join()
check(res[0][0] and res[0][1] < 10,
      "the slowloris was closed (after %.1f s)" % res[0][1])

# Enough slowlorises to take every slot: a new client waits in the backlog
# until they are closed, then is served.
res = [None] * 12
ths = [threading.Thread(target=slowloris, args=(res, i)) for i in range(12)]
for t in ths:
    t.start()
time.sleep(1)
dt = good("with every slot taken by slowlorises")
check(dt < 12, "served within the head deadline")
for t in ths:
    t.join()
check(all(r and r[0] for r in res), "every slowloris was closed")

# Thousands of connections opened and closed, some with half a request.
t = time.monotonic()
n_ok = 0
for i in range(2000):
    try:
        s = socket.create_connection((host, port), timeout=5)
        if i % 3 == 1:
            s.send(b"GET /debug/pp")
        elif i % 3 == 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        s.close()
        n_ok += 1
    except OSError:
        pass
check(n_ok > 1900, "2000 connections opened and closed (%d connected, %.1f s)"
      % (n_ok, time.monotonic() - t))
good("after 2000 connections")

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
