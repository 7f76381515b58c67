/*
 * sys.c — the process-level WASI functions: arguments and environment, clocks,
 * randomness, exit and signals, yielding, and poll_oneoff (clock and fd subscriptions).
 *
 * Arguments and environment are what the configuration granted, packed once per
 * context; nothing here reads the host's own environment or argv.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tb/alloc.h"
#include "wasi_int.h"

#define A32(i) ((uint32_t)a[i])

/* poll_oneoff refuses more subscriptions than this (each costs host memory). */
#define MAX_SUBSCRIPTIONS 4096u

/* ---- Arguments and environment ---- */

static uint32_t strings_get(tb__wasi_call_t *c, const char *strs, uint32_t n, uint32_t len, uint32_t ptrs,
                            uint32_t buf) {
  uint8_t *pp = tb__wasi_ptr(c, ptrs, (uint64_t)n * 4);
  uint8_t *bp = tb__wasi_ptr(c, buf, len);
  if (pp == NULL || bp == NULL) return W_EFAULT;
  memcpy(bp, strs, len);
  uint32_t off = 0;
  for (uint32_t i = 0; i < n; i++) {
    tb__wasi_le32(pp + 4 * i, buf + off);
    off += (uint32_t)strlen(strs + off) + 1;
  }
  return W_ESUCCESS;
}

static uint32_t sizes_get(tb__wasi_call_t *c, uint32_t n, uint32_t len, uint32_t np, uint32_t lp) {
  if (tb__wasi_ptr(c, np, 4) == NULL || tb__wasi_ptr(c, lp, 4) == NULL) return W_EFAULT;
  tb__wasi_put32(c, np, n);
  return tb__wasi_put32(c, lp, len);
}

TB__WASI_IMPL(args_get) { return strings_get(c, c->ctx->args, c->ctx->argc, c->ctx->args_len, A32(0), A32(1)); }
TB__WASI_IMPL(args_sizes_get) { return sizes_get(c, c->ctx->argc, c->ctx->args_len, A32(0), A32(1)); }
TB__WASI_IMPL(environ_get) { return strings_get(c, c->ctx->envs, c->ctx->nenv, c->ctx->envs_len, A32(0), A32(1)); }
TB__WASI_IMPL(environ_sizes_get) { return sizes_get(c, c->ctx->nenv, c->ctx->envs_len, A32(0), A32(1)); }

/* ---- Clocks and randomness ---- */

static bool host_clock(uint32_t id, clockid_t *out) {
  static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                                  CLOCK_THREAD_CPUTIME_ID};
  if (id > 3) return false;
  *out = ids[id];
  return true;
}

static uint64_t ts_ns(const struct timespec *ts) {
  return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

TB__WASI_IMPL(clock_res_get) {
  clockid_t id;
  struct timespec ts;
  if (!host_clock(A32(0), &id)) return W_EINVAL;
  if (tb__wasi_ptr(c, A32(1), 8) == NULL) return W_EFAULT;
  if (clock_getres(id, &ts) != 0) return tb__wasi_errno(errno);
  return tb__wasi_put64(c, A32(1), ts_ns(&ts));
}

TB__WASI_IMPL(clock_time_get) {
  clockid_t id;
  struct timespec ts;
  if (!host_clock(A32(0), &id)) return W_EINVAL;
  if (tb__wasi_ptr(c, A32(2), 8) == NULL) return W_EFAULT;
  if (clock_gettime(id, &ts) != 0) return tb__wasi_errno(errno);
  return tb__wasi_put64(c, A32(2), ts_ns(&ts));
}

TB__WASI_IMPL(random_get) {
  uint8_t *p = tb__wasi_ptr(c, A32(0), A32(1));
  if (p == NULL) return W_EFAULT;
  size_t len = A32(1), done = 0;
  while (done < len) {
    ssize_t r = getrandom(p + done, len - done, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return tb__wasi_errno(errno);
    }
    done += (size_t)r;
  }
  return W_ESUCCESS;
}

/* ---- Exit, signals, yield ---- */

TB__WASI_IMPL(proc_exit) {
  tb_wasm_caller_exit(c->caller, (int)A32(0));
  return TB__WASI_TRAP;
}

/* WASI's signal numbers (witx $signal), their names and host numbers. */
static const struct {
  const char *name;
  int host;
  char action; /* 't' terminate, 'i' ignore, 's' stop */
} signals[] = {
    {"SIG0", 0, 'i'},        {"SIGHUP", SIGHUP, 't'},   {"SIGINT", SIGINT, 't'},     {"SIGQUIT", SIGQUIT, 't'},
    {"SIGILL", SIGILL, 't'}, {"SIGTRAP", SIGTRAP, 't'}, {"SIGABRT", SIGABRT, 't'},   {"SIGBUS", SIGBUS, 't'},
    {"SIGFPE", SIGFPE, 't'}, {"SIGKILL", SIGKILL, 't'}, {"SIGUSR1", SIGUSR1, 't'},   {"SIGSEGV", SIGSEGV, 't'},
    {"SIGUSR2", SIGUSR2, 't'}, {"SIGPIPE", SIGPIPE, 't'}, {"SIGALRM", SIGALRM, 't'}, {"SIGTERM", SIGTERM, 't'},
    {"SIGCHLD", SIGCHLD, 'i'}, {"SIGCONT", SIGCONT, 'i'}, {"SIGSTOP", SIGSTOP, 's'}, {"SIGTSTP", SIGTSTP, 's'},
    {"SIGTTIN", SIGTTIN, 's'}, {"SIGTTOU", SIGTTOU, 's'}, {"SIGURG", SIGURG, 'i'},   {"SIGXCPU", SIGXCPU, 't'},
    {"SIGXFSZ", SIGXFSZ, 't'}, {"SIGVTALRM", SIGVTALRM, 't'}, {"SIGPROF", SIGPROF, 't'},
    {"SIGWINCH", SIGWINCH, 'i'}, {"SIGPOLL", SIGPOLL, 't'}, {"SIGPWR", SIGPWR, 't'}, {"SIGSYS", SIGSYS, 't'},
};

const char *tb_wasi_signal_name(int sig) {
  return sig > 0 && (size_t)sig < sizeof signals / sizeof signals[0] ? signals[sig].name : "SIG?";
}

/*
 * A guest has no handlers, so a raised signal does what its default action says: the
 * terminating ones end the guest as a shell reports a killed process (exit status
 * 128 + the host's number for it), the ignored ones do nothing, and stopping is not
 * something a guest can do.
 */
TB__WASI_IMPL(proc_raise) {
  uint32_t sig = A32(0);
  if (sig >= sizeof signals / sizeof signals[0]) return W_EINVAL;
  switch (signals[sig].action) {
  case 'i':
    return W_ESUCCESS;
  case 's':
    return W_ENOTSUP;
  }
  c->ctx->raised_signal = (int)sig;
  tb_wasm_caller_exit(c->caller, 128 + signals[sig].host);
  return TB__WASI_TRAP;
}

TB__WASI_IMPL(sched_yield) {
  sched_yield();
  return W_ESUCCESS;
}

/* ---- poll_oneoff ---- */

typedef struct sub {
  uint64_t userdata;
  uint64_t deadline; /* CLOCK_MONOTONIC ns, clocks only */
  uint64_t nbytes;
  uint16_t error, flags;
  uint8_t type;
  bool ready;
  int pfd; /* index into the pollfd array, or -1 */
} sub_t;

static uint64_t now_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts_ns(&ts);
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

TB__WASI_IMPL(poll_oneoff) {
  uint32_t in = A32(0), out = A32(1), nsubs = A32(2), retptr = A32(3);
  uint32_t err = W_ESUCCESS;
  sub_t *subs = NULL;
  struct pollfd *pfds = NULL;
  if (nsubs == 0) return W_EINVAL;
  const uint8_t *src = tb__wasi_ptr(c, in, (uint64_t)nsubs * 48);
  uint8_t *dst = tb__wasi_ptr(c, out, (uint64_t)nsubs * 32);
  if (src == NULL || dst == NULL || tb__wasi_ptr(c, retptr, 4) == NULL) return W_EFAULT;
  if (nsubs > MAX_SUBSCRIPTIONS) return W_ENOTSUP;
  subs = tb_calloc(nsubs, sizeof *subs);
  pfds = tb_calloc(nsubs, sizeof *pfds);
  if (subs == NULL || pfds == NULL) {
    err = W_ENOMEM;
    goto out;
  }
  /* Everything is read from the subscriptions before any event is written: the two
   * arrays may overlap. */
  int npfd = 0;
  uint64_t mono = now_ns(CLOCK_MONOTONIC);
  for (uint32_t i = 0; i < nsubs; i++) {
    const uint8_t *s = src + 48 * i;
    sub_t *u = &subs[i];
    u->userdata = tb__wasi_rd64(s);
    u->type = s[8];
    u->pfd = -1;
    if (u->type == W_EVENT_CLOCK) {
      uint32_t id = tb__wasi_rd32(s + 16);
      uint64_t timeout = tb__wasi_rd64(s + 24);
      uint16_t flags = tb__wasi_rd16(s + 40);
      if (id == W_CLOCK_MONOTONIC) {
        u->deadline = (flags & 1) ? timeout : sat_add(mono, timeout);
      } else if (id == W_CLOCK_REALTIME) {
        uint64_t real = now_ns(CLOCK_REALTIME);
        u->deadline = (flags & 1) ? (timeout > real ? sat_add(mono, timeout - real) : mono) : sat_add(mono, timeout);
      } else {
        u->error = W_EINVAL;
        u->ready = true;
      }
      continue;
    }
    if (u->type != W_EVENT_FD_READ && u->type != W_EVENT_FD_WRITE) {
      err = W_EINVAL;
      goto out;
    }
    tb__wasi_fd_t *e;
    uint32_t fe = tb__wasi_fd_get(c->ctx, tb__wasi_rd32(s + 16), R_POLL_FD_READWRITE, &e);
    if (fe != W_ESUCCESS) {
      u->error = (uint16_t)fe;
      u->ready = true;
      continue;
    }
    if (e->kind != FDK_HOST || e->filetype == W_FT_REGULAR_FILE || e->filetype == W_FT_DIRECTORY) {
      /* Files, and stdio the embedder serves, never block. */
      u->ready = true;
      if (e->kind == FDK_HOST && u->type == W_EVENT_FD_READ && e->filetype == W_FT_REGULAR_FILE) {
        struct stat st;
        off_t pos = lseek(e->host, 0, SEEK_CUR);
        if (fstat(e->host, &st) == 0 && pos >= 0 && st.st_size > pos) u->nbytes = (uint64_t)(st.st_size - pos);
      }
      continue;
    }
    pfds[npfd] = (struct pollfd){.fd = e->host, .events = u->type == W_EVENT_FD_READ ? POLLIN : POLLOUT};
    u->pfd = npfd++;
  }

  for (;;) {
    bool any = false;
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < nsubs; i++) {
      if (subs[i].ready) any = true;
      else if (subs[i].type == W_EVENT_CLOCK && subs[i].deadline < next) next = subs[i].deadline;
    }
    struct timespec ts, *tsp = NULL;
    if (any) {
      ts = (struct timespec){0, 0};
      tsp = &ts;
    } else if (next != UINT64_MAX) {
      uint64_t now = now_ns(CLOCK_MONOTONIC), wait = next > now ? next - now : 0;
      ts = (struct timespec){(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
      tsp = &ts;
    }
    int r = ppoll(pfds, (nfds_t)npfd, tsp, NULL);
    if (r < 0 && errno != EINTR) {
      err = tb__wasi_errno(errno);
      goto out;
    }
    if (r > 0) {
      for (uint32_t i = 0; i < nsubs; i++) {
        sub_t *u = &subs[i];
        if (u->pfd < 0 || pfds[u->pfd].revents == 0) continue;
        short re = pfds[u->pfd].revents;
        u->ready = true;
        if (re & POLLNVAL) {
          u->error = W_EBADF;
        } else {
          if (re & POLLHUP) u->flags = 1; /* fd_readwrite_hangup */
          int avail = 0;
          if (u->type == W_EVENT_FD_READ && ioctl(pfds[u->pfd].fd, FIONREAD, &avail) == 0 && avail > 0)
            u->nbytes = (uint64_t)avail;
          if ((re & POLLERR) && !(re & (POLLIN | POLLOUT))) u->error = W_EIO;
        }
      }
    }
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    for (uint32_t i = 0; i < nsubs; i++)
      if (subs[i].type == W_EVENT_CLOCK && !subs[i].ready && subs[i].deadline <= now) subs[i].ready = true;
    bool done = false;
    for (uint32_t i = 0; i < nsubs && !done; i++) done = subs[i].ready;
    if (done) break;
  }
  uint32_t nev = 0;
  for (uint32_t i = 0; i < nsubs; i++) {
    const sub_t *u = &subs[i];
    if (!u->ready) continue;
    uint8_t *ev = dst + 32 * nev++;
    memset(ev, 0, 32);
    tb__wasi_le64(ev, u->userdata);
    tb__wasi_le16(ev + 8, u->error);
    ev[10] = u->type;
    if (u->type != W_EVENT_CLOCK) {
      tb__wasi_le64(ev + 16, u->nbytes);
      tb__wasi_le16(ev + 24, u->flags);
    }
  }
  err = tb__wasi_put32(c, retptr, nev);
out:
  tb_free(subs);
  tb_free(pfds);
  return err;
}
