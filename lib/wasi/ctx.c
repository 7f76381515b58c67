/*
 * ctx.c — grants and contexts: the configuration a host builds (arguments, environment,
 * directories, stdio, sockets), the context made from it for one guest, and the guest's
 * descriptor table with its rights.
 *
 * The guest never sees a host descriptor number. Its table maps guest numbers to entries
 * that own a host descriptor (or a stdio callback) and carry the witx's base and
 * inheriting rights; fds 0-2 are stdio, the granted directories follow in the order they
 * were given (libc finds them by walking fd_prestat_get upward from 3), then sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tb/alloc.h"
#include "wasi_int.h"

#define DEFAULT_MAX_FDS 1024u

/* ---- errno ---- */

uint16_t tb__wasi_errno(int e) {
  switch (e) {
  case 0:
    return W_ESUCCESS;
#define TB__WASI_ERRNO_CASE_(name, value, host) \
  case host:                                    \
    return (value);
    TB__WASI_ERRNO_MAP(TB__WASI_ERRNO_CASE_)
#undef TB__WASI_ERRNO_CASE_
  }
  return W_EIO;
}

uint8_t tb__wasi_filetype(mode_t mode) {
  switch (mode & S_IFMT) {
  case S_IFREG:
    return W_FT_REGULAR_FILE;
  case S_IFDIR:
    return W_FT_DIRECTORY;
  case S_IFLNK:
    return W_FT_SYMBOLIC_LINK;
  case S_IFCHR:
    return W_FT_CHARACTER_DEVICE;
  case S_IFBLK:
    return W_FT_BLOCK_DEVICE;
  case S_IFSOCK:
    return W_FT_SOCKET_STREAM;
  }
  return W_FT_UNKNOWN;
}

/* ---- Growable arrays of the config ---- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap * 2 : 8;
  while (n < need) n *= 2;
  void *p = tb_reallocarray(*arr, n, elem);
  if (p == NULL) return TB_ENOMEM;
  *arr = p;
  *cap = n;
  return 0;
}

/* ---- Configuration ---- */

int tb_wasi_config_new(tb_wasi_config_t **out) {
  tb_wasi_config_t *cfg = tb_calloc(1, sizeof *cfg);
  if (cfg == NULL) return TB_ENOMEM;
  for (int i = 0; i < 3; i++) cfg->stdio[i] = (tb_wasi_stdio_t){.kind = TB_WASI_STDIO_NULL, .fd = -1};
  cfg->max_fds = DEFAULT_MAX_FDS;
  *out = cfg;
  return 0;
}

void tb_wasi_config_free(tb_wasi_config_t *cfg) {
  if (cfg == NULL) return;
  for (size_t i = 0; i < cfg->argc; i++) tb_free(cfg->argv[i]);
  tb_free(cfg->argv);
  for (size_t i = 0; i < cfg->nenv; i++) tb_free(cfg->env[i]);
  tb_free(cfg->env);
  for (size_t i = 0; i < cfg->ndirs; i++) {
    close(cfg->dirs[i].fd);
    tb_free(cfg->dirs[i].guest);
  }
  tb_free(cfg->dirs);
  for (size_t i = 0; i < cfg->nsocks; i++) close(cfg->socks[i]);
  tb_free(cfg->socks);
  for (int i = 0; i < 3; i++)
    if (cfg->stdio[i].kind == TB_WASI_STDIO_FD) close(cfg->stdio[i].fd);
  tb_free(cfg);
}

int tb_wasi_config_arg(tb_wasi_config_t *cfg, const char *arg) {
  if (grow((void **)&cfg->argv, &cfg->argv_cap, cfg->argc + 1, sizeof *cfg->argv)) return TB_ENOMEM;
  if ((cfg->argv[cfg->argc] = tb_strdup(arg)) == NULL) return TB_ENOMEM;
  cfg->argc++;
  return 0;
}

int tb_wasi_config_env(tb_wasi_config_t *cfg, const char *name, const char *value, tb_errbuf_t *eb) {
  if (name[0] == '\0') return tb_errf(eb, TB_EINVAL, "the variable's name is empty");
  if (strchr(name, '=')) return tb_errf(eb, TB_EINVAL, "a variable's name cannot contain '='");
  if (value == NULL && (value = getenv(name)) == NULL) return 0; /* nothing to inherit */
  size_t nl = strlen(name), vl = strlen(value);
  char *kv = tb_malloc(nl + vl + 2);
  if (kv == NULL) return TB_ENOMEM;
  memcpy(kv, name, nl);
  kv[nl] = '=';
  memcpy(kv + nl + 1, value, vl + 1);
  /* A later grant of the same name replaces the earlier one, as in a shell. */
  for (size_t i = 0; i < cfg->nenv; i++) {
    if (strncmp(cfg->env[i], kv, nl + 1) == 0) {
      tb_free(cfg->env[i]);
      cfg->env[i] = kv;
      return 0;
    }
  }
  if (grow((void **)&cfg->env, &cfg->env_cap, cfg->nenv + 1, sizeof *cfg->env)) {
    tb_free(kv);
    return TB_ENOMEM;
  }
  cfg->env[cfg->nenv++] = kv;
  return 0;
}

int tb_wasi_config_env_grant(tb_wasi_config_t *cfg, const char *spec, tb_errbuf_t *eb) {
  const char *eq = strchr(spec, '=');
  if (eq == NULL) return tb_wasi_config_env(cfg, spec, NULL, eb);
  if (eq == spec) return tb_errf(eb, TB_EINVAL, "the variable's name is empty");
  char *name = tb_strndup(spec, (size_t)(eq - spec));
  if (name == NULL) return TB_ENOMEM;
  int rc = tb_wasi_config_env(cfg, name, eq + 1, eb);
  tb_free(name);
  return rc;
}

/* A valid pre-open name: non-empty UTF-8 without NUL (checked by the caller's C string). */
static bool utf8_ok(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p++;
    int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (more < 0 || (more == 1 && c < 0xc2)) return false;
    for (int i = 0; i < more; i++)
      if ((*p++ & 0xc0) != 0x80) return false;
  }
  return true;
}

int tb_wasi_config_dir(tb_wasi_config_t *cfg, const char *host_path, const char *guest_path, unsigned flags,
                       tb_errbuf_t *eb) {
  if (host_path[0] == '\0') return tb_errf(eb, TB_EINVAL, "the host path is empty");
  if (guest_path[0] == '\0') return tb_errf(eb, TB_EINVAL, "the guest path is empty");
  if (!utf8_ok(guest_path)) return tb_errf(eb, TB_EINVAL, "the guest path is not UTF-8");
  int fd = open(host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) fd = open(host_path, O_PATH | O_DIRECTORY | O_CLOEXEC); /* search-only */
  if (fd < 0) {
    int e = errno;
    switch (e) {
    case ENOENT:
      return tb_errf(eb, TB_ENOENT, "no such directory");
    case ENOTDIR:
      return tb_errf(eb, TB_ENOTDIR, "not a directory");
    case EACCES:
      return tb_errf(eb, TB_EACCES, "permission denied");
    default:
      return tb_errf(eb, tb_err_from_errno(e), "cannot open: %s", tb_strerror(tb_err_from_errno(e)));
    }
  }
  char *guest = tb_strdup(guest_path);
  if (guest == NULL || grow((void **)&cfg->dirs, &cfg->dirs_cap, cfg->ndirs + 1, sizeof *cfg->dirs)) {
    tb_free(guest);
    close(fd);
    return TB_ENOMEM;
  }
  cfg->dirs[cfg->ndirs++] = (tb__wasi_dir_grant_t){fd, guest, (flags & TB_WASI_DIR_READONLY) != 0};
  return 0;
}

int tb_wasi_config_dir_grant(tb_wasi_config_t *cfg, const char *spec, unsigned flags, tb_errbuf_t *eb) {
  const char *sep = strstr(spec, "::");
  if (sep == NULL) return tb_wasi_config_dir(cfg, spec, spec, flags, eb);
  char *host = tb_strndup(spec, (size_t)(sep - spec));
  if (host == NULL) return TB_ENOMEM;
  int rc = tb_wasi_config_dir(cfg, host, sep + 2, flags, eb);
  tb_free(host);
  return rc;
}

int tb_wasi_config_stdio(tb_wasi_config_t *cfg, int guest_fd, const tb_wasi_stdio_t *io) {
  if (guest_fd < 0 || guest_fd > 2) return TB_EINVAL;
  tb_wasi_stdio_t s = *io;
  if (s.kind == TB_WASI_STDIO_CALLBACK && (guest_fd == 0 ? s.read == NULL : s.write == NULL)) return TB_EINVAL;
  if (s.kind == TB_WASI_STDIO_FD) {
    if ((s.fd = fcntl(io->fd, F_DUPFD_CLOEXEC, 3)) < 0) return TB_EINVAL;
  } else if (s.kind != TB_WASI_STDIO_NULL && s.kind != TB_WASI_STDIO_CALLBACK) {
    return TB_EINVAL;
  } else {
    s.fd = -1;
  }
  if (cfg->stdio[guest_fd].kind == TB_WASI_STDIO_FD) close(cfg->stdio[guest_fd].fd);
  cfg->stdio[guest_fd] = s;
  return 0;
}

int tb_wasi_config_socket(tb_wasi_config_t *cfg, int host_fd, tb_errbuf_t *eb) {
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(host_fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
    return tb_errf(eb, TB_EINVAL, "descriptor %d is not a socket", host_fd);
  if (type != SOCK_STREAM) return tb_errf(eb, TB_EUNSUPPORTED, "only stream sockets can be pre-opened");
  int fd = fcntl(host_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return tb_errf(eb, tb_err_from_errno(errno), "cannot duplicate descriptor %d", host_fd);
  if (grow((void **)&cfg->socks, &cfg->socks_cap, cfg->nsocks + 1, sizeof *cfg->socks)) {
    close(fd);
    return TB_ENOMEM;
  }
  cfg->socks[cfg->nsocks++] = fd;
  return 0;
}

void tb_wasi_config_max_fds(tb_wasi_config_t *cfg, uint32_t max_fds) {
  cfg->max_fds = max_fds < 3 ? 3 : max_fds;
}

void tb_wasi_config_resolver(tb_wasi_config_t *cfg, tb_wasi_resolver_t resolver) { cfg->resolver = resolver; }

/* ---- The descriptor table ---- */

uint32_t tb__wasi_fd_get(tb_wasi_ctx_t *ctx, uint32_t fd, uint64_t rights, tb__wasi_fd_t **out) {
  if (fd >= ctx->nfds || ctx->fds[fd].kind == FDK_FREE) return W_EBADF;
  tb__wasi_fd_t *e = &ctx->fds[fd];
  if ((e->base & rights) != rights) return W_ENOTCAPABLE;
  *out = e;
  return W_ESUCCESS;
}

uint32_t tb__wasi_fd_insert(tb_wasi_ctx_t *ctx, const tb__wasi_fd_t *e, uint32_t *out) {
  uint32_t i = 0;
  while (i < ctx->nfds && ctx->fds[i].kind != FDK_FREE) i++;
  if (i == ctx->nfds) {
    if (ctx->nfds >= ctx->max_fds) return W_EMFILE;
    uint32_t n = ctx->nfds ? ctx->nfds * 2 : 8;
    if (n > ctx->max_fds) n = ctx->max_fds;
    tb__wasi_fd_t *p = tb_reallocarray(ctx->fds, n, sizeof *p);
    if (p == NULL) return W_ENOMEM;
    memset(p + ctx->nfds, 0, (n - ctx->nfds) * sizeof *p);
    ctx->fds = p;
    ctx->nfds = n;
  }
  ctx->fds[i] = *e;
  *out = i;
  return W_ESUCCESS;
}

void tb__wasi_fd_release(tb__wasi_fd_t *e) {
  if (e->kind == FDK_HOST && e->host >= 0) close(e->host);
  tb__wasi_dirstream_free(e->dir);
  tb_free(e->preopen);
  memset(e, 0, sizeof *e);
  e->kind = FDK_FREE;
  e->host = -1;
}

/* ---- Contexts ---- */

/* Packs strings back to back; TB_ETOOBIG when the total does not fit a guest u32. */
static int pack(char *const *strs, size_t n, char **out, uint32_t *count, uint32_t *len) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += strlen(strs[i]) + 1;
  if (n > UINT32_MAX / 4 || total > UINT32_MAX / 2) return TB_ETOOBIG;
  char *buf = tb_malloc(total ? total : 1);
  if (buf == NULL) return TB_ENOMEM;
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(strs[i]) + 1;
    memcpy(buf + off, strs[i], l);
    off += l;
  }
  *out = buf;
  *count = (uint32_t)n;
  *len = (uint32_t)total;
  return 0;
}

static bool have_openat2(void) {
  static _Atomic int known; /* 0 unknown, 1 yes, 2 no; threads racing here compute the same */
  int k = atomic_load_explicit(&known, memory_order_relaxed);
  if (k == 0) {
    /* A probe with a zero-sized open_how: EINVAL means the call exists, ENOSYS (or a
     * seccomp filter's EPERM) that it does not. */
    long r = syscall(SYS_openat2, AT_FDCWD, "", NULL, 0);
    k = (r < 0 && (errno == ENOSYS || errno == EPERM)) ? 2 : 1;
    atomic_store_explicit(&known, k, memory_order_relaxed);
  }
  return k == 1;
}

static uint8_t host_filetype(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return W_FT_UNKNOWN;
  if (S_ISSOCK(st.st_mode)) {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM) return W_FT_SOCKET_DGRAM;
  }
  return tb__wasi_filetype(st.st_mode);
}

static int add_stdio(tb_wasi_ctx_t *ctx, int i, const tb_wasi_stdio_t *io) {
  tb__wasi_fd_t e = {.kind = FDK_NULL, .host = -1, .filetype = W_FT_CHARACTER_DEVICE};
  /* Stdio is a stream: no seeking, and no flag changes, which would reach the host's
   * shared open file description. */
  e.base = (i == 0 ? R_FD_READ : R_FD_WRITE) | R_FD_FILESTAT_GET | R_POLL_FD_READWRITE;
  if (io->kind == TB_WASI_STDIO_FD) {
    e.kind = FDK_HOST;
    if ((e.host = fcntl(io->fd, F_DUPFD_CLOEXEC, 3)) < 0) return tb_err_from_errno(errno);
    e.filetype = host_filetype(e.host);
  } else if (io->kind == TB_WASI_STDIO_CALLBACK) {
    e.kind = FDK_CALLBACK;
    e.io = *io;
    e.filetype = W_FT_UNKNOWN; /* a pipe, as far as the guest can tell: not a terminal */
  }
  uint32_t n;
  if (tb__wasi_fd_insert(ctx, &e, &n) != W_ESUCCESS) {
    if (e.kind == FDK_HOST) close(e.host);
    return TB_ENOMEM;
  }
  return 0;
}

int tb_wasi_ctx_new(const tb_wasi_config_t *cfg, tb_wasi_ctx_t **out, tb_errbuf_t *eb) {
  int rc = 0;
  tb_wasi_ctx_t *ctx = tb_calloc(1, sizeof *ctx);
  if (ctx == NULL) return TB_ENOMEM;
  ctx->max_fds = cfg->max_fds ? cfg->max_fds : DEFAULT_MAX_FDS;
  switch (cfg->resolver) {
  case TB_WASI_RESOLVE_AUTO:
    ctx->use_openat2 = have_openat2();
    break;
  case TB_WASI_RESOLVE_OPENAT2:
    if (!have_openat2()) {
      rc = tb_errf(eb, TB_ENOSYS, "this kernel has no openat2");
      goto out;
    }
    ctx->use_openat2 = true;
    break;
  case TB_WASI_RESOLVE_WALK:
    ctx->use_openat2 = false;
    break;
  }
  if ((rc = pack(cfg->argv, cfg->argc, &ctx->args, &ctx->argc, &ctx->args_len)) != 0 ||
      (rc = pack(cfg->env, cfg->nenv, &ctx->envs, &ctx->nenv, &ctx->envs_len)) != 0) {
    if (rc == TB_ETOOBIG) tb_errf(eb, rc, "the arguments or environment exceed 2 GiB");
    goto out;
  }
  for (int i = 0; i < 3; i++)
    if ((rc = add_stdio(ctx, i, &cfg->stdio[i])) != 0) goto out;
  for (size_t i = 0; i < cfg->ndirs; i++) {
    const tb__wasi_dir_grant_t *g = &cfg->dirs[i];
    tb__wasi_fd_t e = {.kind = FDK_HOST, .filetype = W_FT_DIRECTORY, .readonly = g->readonly};
    /* A fresh open file description, not a dup: contexts must not share a directory
     * offset, which readdir moves. */
    e.host = openat(g->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (e.host < 0 && errno == EACCES) e.host = openat(g->fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (e.host < 0) {
      rc = tb_errf(eb, tb_err_from_errno(errno), "cannot reopen the directory granted as \"%s\"", g->guest);
      goto out;
    }
    e.base = g->readonly ? R_DIR_ALL & ~R_MUTATING : R_DIR_ALL;
    e.inheriting = g->readonly ? (R_DIR_ALL | R_FILE_ALL) & ~R_MUTATING : R_DIR_ALL | R_FILE_ALL;
    e.preopen_len = strlen(g->guest);
    uint32_t n;
    if ((e.preopen = tb_strdup(g->guest)) == NULL || tb__wasi_fd_insert(ctx, &e, &n) != W_ESUCCESS) {
      tb_free(e.preopen);
      close(e.host);
      rc = tb_errf(eb, TB_ENOMEM, "too many directories granted");
      goto out;
    }
  }
  for (size_t i = 0; i < cfg->nsocks; i++) {
    tb__wasi_fd_t e = {.kind = FDK_HOST, .filetype = W_FT_SOCKET_STREAM};
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(cfg->socks[i], SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) listening = 0;
    e.base = listening ? R_SOCK_LISTEN : R_SOCK_CONN;
    e.inheriting = listening ? R_SOCK_CONN : 0;
    if ((e.host = fcntl(cfg->socks[i], F_DUPFD_CLOEXEC, 3)) < 0) {
      rc = tb_err_from_errno(errno);
      goto out;
    }
    uint32_t n;
    if (tb__wasi_fd_insert(ctx, &e, &n) != W_ESUCCESS) {
      close(e.host);
      rc = tb_errf(eb, TB_ENOMEM, "too many sockets granted");
      goto out;
    }
  }
  if ((rc = tb__wasi_bindings_new(ctx)) != 0) goto out;
  *out = ctx;
  ctx = NULL;
out:
  tb_wasi_ctx_free(ctx);
  return rc;
}

void tb_wasi_ctx_free(tb_wasi_ctx_t *ctx) {
  if (ctx == NULL) return;
  for (uint32_t i = 0; i < ctx->nfds; i++)
    if (ctx->fds[i].kind != FDK_FREE) tb__wasi_fd_release(&ctx->fds[i]);
  tb_free(ctx->fds);
  tb_free(ctx->args);
  tb_free(ctx->envs);
  tb__wasi_bindings_free(ctx->bindings);
  tb_free(ctx);
}

int tb_wasi_ctx_raised_signal(const tb_wasi_ctx_t *ctx) { return ctx->raised_signal; }

/* ---- Guest memory ---- */

uint32_t tb__wasi_put32(tb__wasi_call_t *c, uint32_t off, uint32_t v) {
  uint8_t *p = tb__wasi_ptr(c, off, 4);
  if (p == NULL) return W_EFAULT;
  tb__wasi_le32(p, v);
  return W_ESUCCESS;
}

uint32_t tb__wasi_put64(tb__wasi_call_t *c, uint32_t off, uint64_t v) {
  uint8_t *p = tb__wasi_ptr(c, off, 8);
  if (p == NULL) return W_EFAULT;
  tb__wasi_le64(p, v);
  return W_ESUCCESS;
}

uint32_t tb__wasi_iovs_load(tb__wasi_call_t *c, uint32_t ptr, uint32_t count, tb__wasi_iovs_t *out) {
  out->iov = out->small;
  out->n = 0;
  out->total = 0;
  const uint8_t *arr = tb__wasi_ptr(c, ptr, (uint64_t)count * 8);
  if (arr == NULL) return W_EFAULT;
  uint32_t n = count > IOV_MAX ? IOV_MAX : count;
  if (n > sizeof out->small / sizeof out->small[0]) {
    if ((out->iov = tb_calloc(n, sizeof *out->iov)) == NULL) {
      out->iov = out->small;
      return W_ENOMEM;
    }
  }
  /* Every buffer of the array is checked, even past IOV_MAX: a bad pointer is a fault
   * whether or not this call would have reached it. */
  for (uint32_t i = 0; i < count; i++) {
    uint32_t base = tb__wasi_rd32(arr + 8 * i), len = tb__wasi_rd32(arr + 8 * i + 4);
    uint8_t *p = tb__wasi_ptr(c, base, len);
    if (p == NULL) {
      tb__wasi_iovs_free(out);
      return W_EFAULT;
    }
    if (i >= n) continue;
    out->total += len;
    if (out->total > UINT32_MAX) {
      tb__wasi_iovs_free(out);
      return W_EINVAL;
    }
    out->iov[i] = (struct iovec){p, len};
  }
  out->n = (int)n;
  return W_ESUCCESS;
}

void tb__wasi_iovs_free(tb__wasi_iovs_t *v) {
  if (v->iov != v->small) tb_free(v->iov);
  v->iov = v->small;
  v->n = 0;
}
