/*
 * path.c — the sandbox: resolving a guest path beneath a directory descriptor.
 *
 * Every path a guest names is relative to one of its directory descriptors and must
 * stay beneath it, whatever the path says (`..`, a leading '/') and whatever the tree
 * holds (symbolic links pointing out, links swapped in while we look). Two resolvers
 * give the same answers:
 *
 *   openat2   the kernel's RESOLVE_BENEATH (Linux 5.6+) resolves the whole path in one
 *             call and refuses, atomically, any step that would leave the starting
 *             directory (EXDEV). A concurrent rename makes it fail with EAGAIN, which
 *             we retry.
 *   walk      where openat2 is missing: one component at a time, each opened with
 *             O_PATH|O_NOFOLLOW relative to the previous one's descriptor, so the
 *             kernel never follows a link for us. A link is read through the descriptor
 *             we opened (not its name, which may have changed since) and spliced into
 *             the rest of the path; `..` pops our own stack of descriptors and fails at
 *             the bottom. Nothing is resolved twice by name, so a swap during the walk
 *             can only change which inside object we reach, never take us outside.
 *
 * Operations other than open (mkdir, unlink, rename, link, symlink, readlink, stat,
 * utimes) resolve the *parent* beneath the directory and then act on one final
 * component with the *at() call that does not follow it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wasi_int.h"

#define MAX_LINKS 40      /* symbolic links followed in one resolution, as Linux allows */
#define WALK_MAX_DEPTH 512 /* directories the walk keeps open at once */

static bool utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i++];
    if (c < 0x80) continue;
    int more;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      more = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      more = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      more = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < (size_t)more) return false;
    for (int k = 0; k < more; k++) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i++] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return false;
  }
  return true;
}

uint32_t tb__wasi_path_read(tb__wasi_call_t *c, uint32_t ptr, uint32_t len, bool absolute_ok, char *out) {
  const uint8_t *p = tb__wasi_ptr(c, ptr, len);
  if (p == NULL) return W_EFAULT;
  if (len > TB__WASI_PATH_MAX) return W_ENAMETOOLONG;
  if (memchr(p, 0, len)) return W_EINVAL;
  if (!utf8_valid(p, len)) return W_EILSEQ;
  memcpy(out, p, len);
  out[len] = '\0';
  if (len == 0) return W_ENOENT;
  if (!absolute_ok && out[0] == '/') return W_ENOTCAPABLE;
  return W_ESUCCESS;
}

/* ---- openat2 ---- */

static uint32_t open_openat2(int dirfd, const char *path, int flags, mode_t mode, bool follow, int *out) {
  struct open_how how = {0};
  how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int tries = 0;; tries++) {
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) {
      *out = (int)fd;
      return W_ESUCCESS;
    }
    if (errno == EINTR || (errno == EAGAIN && tries < 256)) continue;
    return errno == EXDEV ? W_ENOTCAPABLE : tb__wasi_errno(errno);
  }
}

/* ---- The walk ---- */

typedef struct walk {
  int stack[WALK_MAX_DEPTH]; /* owned descriptors of the directories entered */
  int depth;
  int root; /* borrowed */
} walk_t;

static int walk_cur(const walk_t *w) { return w->depth ? w->stack[w->depth - 1] : w->root; }

/* Replaces the component that ended at `rest` by the link's target: work = target + rest. */
static uint32_t splice_link(char *work, size_t work_size, const char *target, size_t tl, const char *rest) {
  if (tl == 0) return W_ENOENT;
  if (target[0] == '/') return W_ENOTCAPABLE; /* an absolute link never stays beneath */
  size_t rl = strlen(rest);
  if (tl + rl + 1 > work_size) return W_ENAMETOOLONG;
  memmove(work + tl, rest, rl + 1);
  memcpy(work, target, tl);
  return W_ESUCCESS;
}

static uint32_t open_walk(int dirfd, const char *path, int flags, mode_t mode, bool follow, int *out) {
  char work[2 * TB__WASI_PATH_MAX + 2], target[TB__WASI_PATH_MAX + 1], name[NAME_MAX + 1];
  walk_t w = {.root = dirfd};
  uint32_t err = W_ESUCCESS;
  int links = 0, retries = 0;
  size_t plen = strlen(path);
  if (plen >= sizeof work) return W_ENAMETOOLONG;
  memcpy(work, path, plen + 1);
  if (work[0] == '/') return W_ENOTCAPABLE;
  /* O_CREAT|O_EXCL never follows a final link (POSIX): the open fails with EEXIST. */
  if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) follow = false;
  char *p = work;
  for (;;) {
    int cur = walk_cur(&w);
    while (*p == '/') p++;
    bool final;
    char *rest;
    if (*p == '\0') {
      /* Everything was consumed by directories (a trailing slash, ".", ".."): what is
       * opened is the directory we stand in. */
      strcpy(name, ".");
      rest = p;
      final = true;
    } else {
      char *slash = strchr(p, '/');
      size_t n = slash ? (size_t)(slash - p) : strlen(p);
      if (n > NAME_MAX) {
        err = W_ENAMETOOLONG;
        goto out;
      }
      memcpy(name, p, n);
      name[n] = '\0';
      rest = p + n;
      bool has_slash = *rest == '/';
      const char *after = rest;
      while (*after == '/') after++;
      bool last = *after == '\0';
      if (strcmp(name, ".") == 0) {
        p = rest;
        continue;
      }
      if (strcmp(name, "..") == 0) {
        if (w.depth == 0) {
          err = W_ENOTCAPABLE;
          goto out;
        }
        close(w.stack[--w.depth]);
        p = rest;
        continue;
      }
      final = last && !has_slash;
      if (!final || follow) {
        /* Look at the component without following it. */
        int fd = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
          if (errno == ENOENT && final && (flags & O_CREAT)) goto final_open;
          err = tb__wasi_errno(errno);
          goto out;
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
          err = tb__wasi_errno(errno);
          close(fd);
          goto out;
        }
        if (S_ISLNK(st.st_mode)) {
          if (++links > MAX_LINKS) {
            close(fd);
            err = W_ELOOP;
            goto out;
          }
          /* Read the link we hold, not whatever the name means by now. */
          ssize_t tl = readlinkat(fd, "", target, sizeof target);
          int e = errno;
          close(fd);
          if (tl < 0) {
            err = tb__wasi_errno(e);
            goto out;
          }
          if ((size_t)tl >= sizeof target) {
            err = W_ENAMETOOLONG;
            goto out;
          }
          if ((err = splice_link(work, sizeof work, target, (size_t)tl, rest)) != W_ESUCCESS) goto out;
          p = work;
          continue;
        }
        if (S_ISDIR(st.st_mode) && !final) {
          if (w.depth == WALK_MAX_DEPTH) {
            close(fd);
            err = W_ENAMETOOLONG;
            goto out;
          }
          w.stack[w.depth++] = fd;
          p = rest;
          continue;
        }
        close(fd);
        if (!final) {
          err = W_ENOTDIR;
          goto out;
        }
      }
    }
  final_open:;
    /* The last component, never followed by the kernel: if a link was swapped in since
     * we looked, O_NOFOLLOW makes the open fail (or, with O_PATH, return the link) and we
     * look again. */
    int fd = openat(cur, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
      if (errno == ELOOP && follow && strcmp(name, ".") != 0 && ++retries < 16) continue;
      err = tb__wasi_errno(errno);
      goto out;
    }
    if (follow && (flags & O_PATH) && strcmp(name, ".") != 0) {
      struct stat st;
      if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode) && ++retries < 16) {
        close(fd);
        continue;
      }
    }
    *out = fd;
    break;
  }
out:
  while (w.depth > 0) close(w.stack[--w.depth]);
  return err;
}

uint32_t tb__wasi_open_beneath(tb_wasi_ctx_t *ctx, int dirfd, const char *path, int flags, mode_t mode,
                               bool follow, int *out) {
  if (path[0] == '/') return W_ENOTCAPABLE;
  if (path[0] == '\0') return W_ENOENT;
  return ctx->use_openat2 ? open_openat2(dirfd, path, flags, mode, follow, out)
                          : open_walk(dirfd, path, flags, mode, follow, out);
}

/* ---- Parent + final component ---- */

uint32_t tb__wasi_resolve_parent(tb_wasi_ctx_t *ctx, int dirfd, const char *path, tb__wasi_parent_t *out) {
  char dir[TB__WASI_PATH_MAX + 1];
  out->fd = -1;
  out->trailing_slash = false;
  out->name[0] = '\0';
  if (path[0] == '/') return W_ENOTCAPABLE;
  size_t len = strlen(path), end = len;
  if (len > TB__WASI_PATH_MAX) return W_ENAMETOOLONG;
  while (end > 0 && path[end - 1] == '/') end--;
  if (end == 0) return W_ENOENT;
  size_t start = end;
  while (start > 0 && path[start - 1] != '/') start--;
  size_t n = end - start;
  if (n > NAME_MAX) return W_ENAMETOOLONG;
  bool dots = (n == 1 && path[start] == '.') || (n == 2 && path[start] == '.' && path[start + 1] == '.');
  if (dots) {
    /* "a/.." names a directory we can open beneath; the operation then acts on "." in it,
     * which the kernel refuses or answers for that directory itself. */
    memcpy(dir, path, end);
    dir[end] = '\0';
    uint32_t err = tb__wasi_open_beneath(ctx, dirfd, dir, O_PATH | O_DIRECTORY, 0, true, &out->fd);
    if (err) return err;
    strcpy(out->name, ".");
    return W_ESUCCESS;
  }
  if (start == 0) {
    if ((out->fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3)) < 0) return tb__wasi_errno(errno);
  } else {
    memcpy(dir, path, start);
    dir[start] = '\0';
    uint32_t err = tb__wasi_open_beneath(ctx, dirfd, dir, O_PATH | O_DIRECTORY, 0, true, &out->fd);
    if (err) return err;
  }
  memcpy(out->name, path + start, n);
  out->trailing_slash = end < len;
  strcpy(out->name + n, out->trailing_slash ? "/" : "");
  return W_ESUCCESS;
}

uint32_t tb__wasi_resolve_final(tb_wasi_ctx_t *ctx, int dirfd, const char *path, bool follow,
                                tb__wasi_parent_t *out) {
  char cur[TB__WASI_PATH_MAX + 1], target[TB__WASI_PATH_MAX + 1];
  size_t plen = strlen(path);
  if (plen > TB__WASI_PATH_MAX) return W_ENAMETOOLONG;
  memcpy(cur, path, plen + 1);
  for (int links = 0;; links++) {
    uint32_t err = tb__wasi_resolve_parent(ctx, dirfd, cur, out);
    if (err) return err;
    bool trail = out->trailing_slash;
    if (!follow && !trail) return W_ESUCCESS;
    size_t nl = strlen(out->name);
    if (trail) out->name[--nl] = '\0';
    if (strcmp(out->name, ".") == 0) return W_ESUCCESS;
    struct stat st;
    if (fstatat(out->fd, out->name, &st, AT_SYMLINK_NOFOLLOW) != 0) return W_ESUCCESS; /* the op will say */
    if (!S_ISLNK(st.st_mode)) {
      if (trail && !S_ISDIR(st.st_mode)) {
        close(out->fd);
        out->fd = -1;
        return W_ENOTDIR;
      }
      return W_ESUCCESS;
    }
    if (links >= MAX_LINKS) {
      close(out->fd);
      out->fd = -1;
      return W_ELOOP;
    }
    ssize_t tl = readlinkat(out->fd, out->name, target, sizeof target - 1);
    int e = errno;
    close(out->fd);
    out->fd = -1;
    if (tl < 0) return tb__wasi_errno(e);
    if (tl == 0) return W_ENOENT;
    target[tl] = '\0';
    if (target[0] == '/') return W_ENOTCAPABLE;
    /* The link's target is relative to the directory holding it: the path up to the
     * last component, resolved again from the top beneath `dirfd`. */
    size_t end = strlen(cur);
    while (end > 0 && cur[end - 1] == '/') end--;
    while (end > 0 && cur[end - 1] != '/') end--;
    if (end + (size_t)tl + (trail ? 1 : 0) > TB__WASI_PATH_MAX) return W_ENAMETOOLONG;
    memcpy(cur + end, target, (size_t)tl);
    end += (size_t)tl;
    if (trail) cur[end++] = '/';
    cur[end] = '\0';
  }
}
