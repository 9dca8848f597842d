/* server.c - the pprof endpoint (HEAPSNAP_HTTP): the listening socket, one
 * server thread with every signal blocked and the guard held, its bounded
 * connections, the routes, and what happens at fork and exit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

/* The bounds. A slot holds a connection from accept to its answer; when
 * every slot is taken the socket is not accepted from and connections
 * wait in the backlog (then the kernel refuses them). A connection whose
 * head has not arrived within HEAD_SECONDS is closed unanswered: a
 * slowloris holds one slot for that long and no other. */
enum {
  NSLOT = 8,
  BACKLOG = 64,
  MAX_DELTAS = 2,    /* ?seconds=N requests waiting at once */
  MAX_SECONDS = 60,  /* the longest delta */
};
#define HEAD_SECONDS 5.0
#define WRITE_SECONDS 10.0

typedef enum { FREE = 0, READING, WAITING } state_t;

typedef struct conn {
  state_t state;
  int fd;
  double deadline;        /* READING: close it then */
  size_t len;
  hs_http_req_t req;      /* WAITING: the request being answered */
  hs_snapshot_t *base;    /* WAITING: the snapshot at the start */
  double due;             /* WAITING: when to take the second */
  char buf[HS_HTTP_HEAD_MAX];
} conn_t;

static int listen_fd = -1;
static int wake_pipe[2] = {-1, -1};
static pthread_t server;
static int running;           /* this process's server thread exists */
static pid_t owner;           /* the process that bound the socket */
static char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static conn_t *slots;         /* server thread only (and the fork child) */
/* What our descriptors and socket file are, to notice when the host took
 * them: daemons close every descriptor they did not open, and the number
 * then goes to the host's next file, which we must never read, write or
 * accept from. */
static struct ident {
  dev_t dev;
  ino_t ino;
} id_listen, id_wake[2], id_path;
static double accept_pause;   /* accept nothing before this (fd limits) */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) {
    ssize_t r = write(2, buf, (size_t)n < sizeof buf ? (size_t)n
                                                     : sizeof buf - 1);
    (void)r;
  }
}

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the address ---- */

static int parse_port(const char *p, in_port_t *out) {
  if (!*p || strlen(p) > 5)
    return -1;
  unsigned v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (unsigned)(*p - '0');
  }
  if (v > 65535)
    return -1;
  *out = htons((in_port_t)v);
  return 0;
}

int hs__http_parse_addr(const char *v, void *addr, unsigned *alen) {
  struct sockaddr_storage *ss = addr;
  memset(ss, 0, sizeof *ss);
  if (!strncmp(v, "unix:", 5)) {
    struct sockaddr_un *un = addr;
    size_t n = strlen(v + 5);
    if (n == 0 || n >= sizeof un->sun_path)
      return -1;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, v + 5, n + 1);
    *alen = (unsigned)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
  }
  char host[64];
  const char *port;
  if (v[0] == '[') {
    const char *close = strchr(v, ']');
    if (!close || close[1] != ':' || (size_t)(close - v - 1) >= sizeof host)
      return -1;
    memcpy(host, v + 1, (size_t)(close - v - 1));
    host[close - v - 1] = '\0';
    port = close + 2;
    struct sockaddr_in6 *s6 = addr;
    s6->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1 ||
        parse_port(port, &s6->sin6_port))
      return -1;
    *alen = sizeof *s6;
    return 0;
  }
  const char *colon = strrchr(v, ':');
  if (colon) {
    if ((size_t)(colon - v) >= sizeof host)
      return -1;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    port = colon + 1;
  } else {
    host[0] = '\0';
    port = v;
  }
  struct sockaddr_in *s4 = addr;
  s4->sin_family = AF_INET;
  /* Loopback unless named: a profile shows a program's code paths to
   * whoever can connect. Literals only: a name lookup at load time would
   * run NSS modules inside the host's constructor. */
  if (!*host || !strcmp(host, "localhost"))
    strcpy(host, "127.0.0.1");
  if (inet_pton(AF_INET, host, &s4->sin_addr) != 1 ||
      parse_port(port, &s4->sin_port))
    return -1;
  *alen = sizeof *s4;
  return 0;
}

/* "127.0.0.1:8080", "[::1]:8080" or "unix:/path" for what fd is bound to. */
static void describe(int fd, char *out, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  out[0] = '\0';
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
    return;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
    snprintf(out, len, "%s:%u", ip, ntohs(s4->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
    snprintf(out, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
  } else {
    snprintf(out, len, "unix:%s", unix_path);
  }
}

/* A Unix socket left by a process that is gone is replaced; anything
 * else at the path (a file, a live server) is not ours to remove. */
static int clear_stale(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? 0 : -1;
  if (!S_ISSOCK(st.st_mode))
    return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
  int live = connect(fd, (struct sockaddr *)&un, sizeof un) == 0 ||
             errno != ECONNREFUSED;
  close(fd);
  return live ? -1 : unlink(path);
}

static int bind_listen(const struct sockaddr_storage *ss, unsigned alen) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                  0);
  if (fd < 0)
    return -1;
  int one = 1, rc;
  if (ss->ss_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
    if (clear_stale(un->sun_path) != 0) {
      close(fd);
      errno = EADDRINUSE;
      return -1;
    }
    /* The socket file takes its mode from the umask at bind: 0600 from
     * the start, never readable by others even for an instant. The umask
     * is the process's; this runs in the constructor, before the host has
     * threads of its own that could create files meanwhile. */
    mode_t old = umask(0177);
    rc = bind(fd, (const struct sockaddr *)ss, alen);
    umask(old);
    if (rc == 0) {
      snprintf(unix_path, sizeof unix_path, "%s", un->sun_path);
      (void)chmod(unix_path, 0600);
    }
  } else {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    rc = bind(fd, (const struct sockaddr *)ss, alen);
  }
  if (rc != 0 || listen(fd, BACKLOG) != 0) {
    int e = errno;
    if (rc == 0 && unix_path[0])
      unlink(unix_path), unix_path[0] = '\0';
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* Writes the address to path through a temporary name, so that a reader
 * polling for the file never sees half of it. */
static void write_addr_file(const char *path, const char *addr) {
  char tmp[PATH_MAX];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >=
      sizeof tmp)
    return;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    say("heapsnap: HEAPSNAP_HTTP_FILE=%s: %s\n", path, strerror(errno));
    return;
  }
  char line[300];
  int n = snprintf(line, sizeof line, "%s\n", addr);
  int ok = write(fd, line, (size_t)n) == n;
  ok &= close(fd) == 0;
  if (!ok || rename(tmp, path) != 0) {
    say("heapsnap: HEAPSNAP_HTTP_FILE=%s: %s\n", path, strerror(errno));
    unlink(tmp);
  }
}

static struct ident ident_of(int fd) {
  struct stat st;
  struct ident id = {0, 0};
  if (fstat(fd, &st) == 0)
    id.dev = st.st_dev, id.ino = st.st_ino;
  return id;
}

static int still(int fd, struct ident want) {
  struct ident id = ident_of(fd);
  return fd >= 0 && id.ino && id.dev == want.dev && id.ino == want.ino;
}

/* ---- answers ---- */

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 301: return "Moved Permanently";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Internal Server Error";
  }
}

/* Sends everything or gives up at the deadline; the socket is
 * non-blocking and MSG_NOSIGNAL spares the process a SIGPIPE. */
static void send_all(int fd, const void *p, size_t n, double deadline) {
  const char *c = p;
  while (n) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w > 0) {
      c += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return;
    double left = deadline - mono();
    if (left <= 0)
      return;
    struct pollfd pfd = {fd, POLLOUT, 0};
    if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
      return;
  }
}

static void respond(int fd, int head_only, int status, const char *type,
                    const char *extra, const void *body, size_t len) {
  char h[512];
  int n = snprintf(h, sizeof h,
                   "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n%s%s%s%s\r\n",
                   status, reason(status), len, type ? "Content-Type: " : "",
                   type ? type : "", type ? "\r\n" : "", extra ? extra : "");
  double deadline = mono() + WRITE_SECONDS;
  send_all(fd, h, (size_t)n, deadline);
  if (!head_only)
    send_all(fd, body, len, deadline);
}

/* Errors carry no body: a malformed request gets its status and nothing
 * else. */
static void respond_status(int fd, int status) {
  respond(fd, 0, status, NULL,
          status == 405 ? "Allow: GET, HEAD\r\n" : NULL, NULL, 0);
}

static const char index_html[] =
    "<html>\n<head><title>/debug/pprof/</title></head>\n<body>\n"
    "/debug/pprof/ (heapsnap)<br>\n<br>\n"
    "<table>\n<thead><td>Profile</td></thead>\n"
    "<tr><td><a href=\"allocs?debug=1\">allocs</a></td></tr>\n"
    "<tr><td><a href=\"heap?debug=1\">heap</a></td></tr>\n"
    "</table>\n<p>allocs and heap are one profile per stack: what was "
    "allocated since tracing started (alloc_objects, alloc_space) and "
    "what is live (inuse_objects, inuse_space); allocs defaults to "
    "alloc_space, heap to inuse_space. ?seconds=N (1 to 60) gives the "
    "change over N seconds, ?debug=1 text.</p>\n</body>\n</html>\n";

static int profile_kind(const char *path) {
  if (!strcmp(path, "/debug/pprof/heap"))
    return HS_PROFILE_HEAP;
  if (!strcmp(path, "/debug/pprof/allocs"))
    return HS_PROFILE_ALLOCS;
  return -1;
}

/* Answers a profile request: snap, or snap minus base. */
static void answer_profile(int fd, const hs_http_req_t *rq,
                           hs_snapshot_t *snap, hs_snapshot_t *base) {
  int kind = profile_kind(rq->path);
  int text = rq->debug > 0;
  hs_buf_t body = {0};
  if (hs__profile_write(snap, base, kind, text ? HS_PROFILE_TEXT
                                               : HS_PROFILE_PPROF,
                        &body) != 0) {
    respond_status(fd, 500);
  } else if (text) {
    respond(fd, rq->method == HS_HTTP_HEAD, 200, "text/plain; charset=utf-8",
            "X-Content-Type-Options: nosniff\r\n", body.p, body.len);
  } else {
    respond(fd, rq->method == HS_HTTP_HEAD, 200, "application/octet-stream",
            kind == HS_PROFILE_HEAP
                ? "Content-Disposition: attachment; filename=\"heap\"\r\n"
                  "X-Content-Type-Options: nosniff\r\n"
                : "Content-Disposition: attachment; filename=\"allocs\"\r\n"
                  "X-Content-Type-Options: nosniff\r\n",
            body.p, body.len);
  }
  hs__buf_free(&body);
}

static void close_slot(conn_t *c) {
  int fd = c->fd;
  c->fd = -1; /* before the close: a fork child must not see a stale fd */
  if (fd >= 0)
    close(fd);
  hs_snapshot_free(c->base);
  c->base = NULL;
  c->len = 0;
  c->state = FREE;
}

static int waiting_count(void) {
  int n = 0;
  for (int i = 0; i < NSLOT; i++)
    n += slots[i].state == WAITING;
  return n;
}

/* A complete request head in c. Either answered at once (and c closed)
 * or, for ?seconds=N, left WAITING with its first snapshot. */
static void handle(conn_t *c) {
  const hs_http_req_t *rq = &c->req;
  if (!strcmp(rq->path, "/debug/pprof/")) {
    respond(c->fd, rq->method == HS_HTTP_HEAD, 200,
            "text/html; charset=utf-8", NULL, index_html,
            sizeof index_html - 1);
  } else if (!strcmp(rq->path, "/debug/pprof")) {
    respond(c->fd, 0, 301, NULL, "Location: /debug/pprof/\r\n", NULL, 0);
  } else if (profile_kind(rq->path) < 0) {
    respond_status(c->fd, 404);
  } else if (rq->seconds > MAX_SECONDS || (rq->seconds > 0 && rq->debug > 0)) {
    /* Go refuses debug= with seconds= as well. */
    respond_status(c->fd, 400);
  } else {
    hs_snapshot_t *s;
    if (rq->seconds > 0 && waiting_count() >= MAX_DELTAS) {
      respond(c->fd, 0, 503, NULL, "Retry-After: 5\r\n", NULL, 0);
    } else if (hs_take_snapshot(&s) != 0) {
      respond_status(c->fd, 503);
    } else if (rq->seconds > 0) {
      /* Waits in the poll loop, holding nothing but this snapshot, so the
       * other connections are served meanwhile. */
      c->base = s;
      c->due = mono() + rq->seconds;
      c->state = WAITING;
      return;
    } else {
      answer_profile(c->fd, rq, s, NULL);
      hs_snapshot_free(s);
    }
  }
  close_slot(c);
}

static void finish_delta(conn_t *c) {
  hs_snapshot_t *s;
  if (hs_take_snapshot(&s) != 0) {
    respond_status(c->fd, 503);
  } else {
    answer_profile(c->fd, &c->req, s, c->base);
    hs_snapshot_free(s);
  }
  close_slot(c);
}

/* Reads what c's peer sent; answers or closes c when the head is whole,
 * malformed, or the peer is gone. Reads until the socket is empty, so a
 * short connection (request and close in one go) is done without another
 * trip through poll. */
static void on_readable(conn_t *c) {
  while (c->state == READING) {
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return;
    if (r <= 0) {
      close_slot(c);
      return;
    }
    c->len += (size_t)r;
    int rc = hs__http_parse(c->buf, c->len, &c->req);
    if (rc > 0) {
      handle(c);
    } else if (rc < 0) {
      respond_status(c->fd, -rc);
      close_slot(c);
    }
  }
}

static void accept_some(double now) {
  for (int i = 0; i < NSLOT; i++) {
    if (slots[i].state != FREE)
      continue;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      /* Out of descriptors or memory, the connection stays queued and
       * the socket readable: pause instead of spinning on it. EAGAIN or a
       * connection reset before we took it need nothing. */
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM)
        accept_pause = now + 0.25;
      return;
    }
    slots[i].state = READING;
    slots[i].fd = fd;
    slots[i].len = 0;
    slots[i].deadline = now + HEAD_SECONDS;
    /* What has arrived already is read now, and the slot is taken again
     * at once if that finished it: scanners and health checks that
     * connect and close come faster than a poll round each. */
    on_readable(&slots[i]);
    if (slots[i].state == FREE)
      i--;
  }
}

static void *server_main(void *arg) {
  (void)arg;
  /* Everything this thread allocates (snapshots, profiles, zlib's state)
   * goes to the real allocator untraced, as the writer thread's does. */
  hs__guard_enter();
  slots = calloc(NSLOT, sizeof *slots);
  if (!slots) {
    hs__guard_exit();
    return NULL;
  }
  for (int i = 0; i < NSLOT; i++)
    slots[i].fd = -1;
  int lost = 0;
  for (;;) {
    struct pollfd pf[NSLOT + 2];
    int who[NSLOT + 2];
    int n = 0, free_slots = 0;
    double now = mono(), next = now + 3600;
    if (!still(listen_fd, id_listen) || !still(wake_pipe[0], id_wake[0])) {
      lost = 1; /* the host closed them: no descriptor is ours any more */
      break;
    }
    pf[n] = (struct pollfd){wake_pipe[0], POLLIN, 0};
    who[n++] = -1;
    for (int i = 0; i < NSLOT; i++) {
      conn_t *c = &slots[i];
      if (c->state == FREE) {
        free_slots++;
        continue;
      }
      double t = c->state == READING ? c->deadline : c->due;
      if (t < next)
        next = t;
      /* A waiting client is watched too, so that one that hangs up is
       * dropped with its snapshot instead of held to the end. */
      pf[n] = (struct pollfd){c->fd, POLLIN | POLLRDHUP, 0};
      who[n++] = i;
    }
    if (free_slots && now >= accept_pause) {
      pf[n] = (struct pollfd){listen_fd, POLLIN, 0};
      who[n++] = -2;
    } else if (free_slots && accept_pause < next) {
      next = accept_pause;
    }
    int ms = next > now ? (int)((next - now) * 1000) + 1 : 0;
    if (poll(pf, (nfds_t)n, ms) < 0 && errno != EINTR) {
      struct timespec ts = {0, 10 * 1000 * 1000}; /* never spin on it */
      nanosleep(&ts, NULL);
      continue;
    }
    for (int k = 0; k < n; k++) {
      if (!pf[k].revents)
        continue;
      if (who[k] < 0 && (pf[k].revents & POLLNVAL))
        goto quit;
      if (who[k] == -1) {
        char b[16];
        ssize_t r = read(wake_pipe[0], b, sizeof b);
        if (r > 0 && memchr(b, 'q', (size_t)r))
          goto quit;
      } else if (who[k] == -2) {
        accept_some(mono());
      } else {
        conn_t *c = &slots[who[k]];
        if (c->state == READING)
          on_readable(c);
        else if (c->state == WAITING)
          close_slot(c); /* it sent more or hung up: nobody to answer */
      }
    }
    now = mono();
    for (int i = 0; i < NSLOT; i++) {
      conn_t *c = &slots[i];
      if (c->state == READING && now >= c->deadline)
        close_slot(c); /* too slow: closed unanswered */
      else if (c->state == WAITING && now >= c->due)
        finish_delta(c);
    }
  }
quit:
  for (int i = 0; i < NSLOT; i++) {
    if (lost)
      slots[i].fd = -1;
    if (slots[i].state != FREE)
      close_slot(&slots[i]);
  }
  hs__guard_exit();
  return NULL;
}

/* ---- fork and exit ---- */

/* Whether fd is a connection accepted from our socket: its local address
 * is the listening one. The fork can catch the server thread between an
 * accept or a close and its note of it, and the number may by then be a
 * descriptor of the host's, which the child must keep. */
static int accepted_here(int fd, const struct sockaddr_storage *mine,
                         socklen_t mlen) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  struct stat st;
  return fd >= 0 && fd != listen_fd && fstat(fd, &st) == 0 &&
         S_ISSOCK(st.st_mode) &&
         getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && sl == mlen &&
         memcmp(&ss, mine, sl) == 0;
}

/* The child serves nothing: the socket and the connections are the
 * parent's (two processes accepting on one socket would answer a scrape
 * with either's heap), and the server thread is not in the child. */
void hs__http_fork_child(void) {
  if (listen_fd < 0)
    return;
  struct sockaddr_storage mine;
  socklen_t mlen = sizeof mine;
  if (!still(listen_fd, id_listen) ||
      getsockname(listen_fd, (struct sockaddr *)&mine, &mlen) != 0)
    mlen = 0;
  if (slots && mlen)
    for (int i = 0; i < NSLOT; i++)
      if (accepted_here(slots[i].fd, &mine, mlen))
        close(slots[i].fd), slots[i].fd = -1;
  if (still(listen_fd, id_listen))
    close(listen_fd);
  listen_fd = -1;
  for (int i = 0; i < 2; i++) {
    if (still(wake_pipe[i], id_wake[i]))
      close(wake_pipe[i]);
    wake_pipe[i] = -1;
  }
  running = 0;
}

static void stop_at_exit(void) {
  if (!running || owner != getpid())
    return;
  running = 0;
  hs__guard_enter();
  int saved = errno;
  if (still(wake_pipe[1], id_wake[1])) {
    ssize_t w = write(wake_pipe[1], "q", 1);
    (void)w;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2; /* a snapshot in progress must not hold the exit up */
    if (pthread_timedjoin_np(server, NULL, &ts) != 0)
      pthread_detach(server);
  } else {
    pthread_detach(server); /* it stops by itself once it sees that */
  }
  struct stat st;
  if (unix_path[0] && lstat(unix_path, &st) == 0 &&
      st.st_dev == id_path.dev && st.st_ino == id_path.ino)
    unlink(unix_path); /* ours still, not a socket someone put there since */
  errno = saved;
  hs__guard_exit();
}

void hs__http_start(void) {
  const char *v = getenv("HEAPSNAP_HTTP");
  if (!v || !*v || running)
    return;
  hs__guard_enter();
  struct sockaddr_storage ss;
  unsigned alen;
  char addr[300];
  const char *file = getenv("HEAPSNAP_HTTP_FILE");
  if (hs__http_parse_addr(v, &ss, &alen) != 0) {
    say("heapsnap: HEAPSNAP_HTTP=%s: expected [ADDR:]PORT, [V6]:PORT or "
        "unix:PATH; not serving\n", v);
    goto out;
  }
  int port0 = ss.ss_family == AF_INET
                  ? ((struct sockaddr_in *)&ss)->sin_port == 0
                  : ss.ss_family == AF_INET6 &&
                        ((struct sockaddr_in6 *)&ss)->sin6_port == 0;
  if ((listen_fd = bind_listen(&ss, alen)) < 0) {
    say("heapsnap: HEAPSNAP_HTTP=%s: %s; not serving\n", v, strerror(errno));
    goto out;
  }
  int piped = pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) == 0;
  if (piped) {
    id_listen = ident_of(listen_fd);
    id_wake[0] = ident_of(wake_pipe[0]);
    id_wake[1] = ident_of(wake_pipe[1]);
    struct stat st;
    if (unix_path[0] && lstat(unix_path, &st) == 0)
      id_path.dev = st.st_dev, id_path.ino = st.st_ino;
  }
  if (!piped || hs__thread_start(&server, server_main, 256 * 1024, 0) != 0) {
    say("heapsnap: HEAPSNAP_HTTP=%s: cannot start the server thread; not "
        "serving\n", v);
    for (int i = 0; i < 2; i++)
      if (wake_pipe[i] >= 0)
        close(wake_pipe[i]), wake_pipe[i] = -1;
    close(listen_fd);
    listen_fd = -1;
    if (unix_path[0])
      unlink(unix_path), unix_path[0] = '\0';
    goto out;
  }
  running = 1;
  owner = getpid();
  describe(listen_fd, addr, sizeof addr);
  if (port0)
    say("heapsnap: pid %ld serves pprof at %s%s/debug/pprof/\n",
        (long)getpid(), addr[0] == 'u' ? "" : "http://", addr);
  if (file && *file)
    write_addr_file(file, addr);
  atexit(stop_at_exit);
  /* An exec'd image is another program: it would bind the same address
   * (and fail) or, with port 0, replace the address file. The endpoint is
   * this process's alone. */
  unsetenv("HEAPSNAP_HTTP");
  unsetenv("HEAPSNAP_HTTP_FILE");
out:
  hs__guard_exit();
}
