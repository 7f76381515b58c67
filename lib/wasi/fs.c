/*
 * fs.c — the path_* family: open, create and remove directories, stat and times by
 * path, hard and symbolic links, readlink, rename and unlink.
 *
 * Every path goes through path.c's resolver, beneath the directory descriptor the guest
 * named and with that descriptor's rights checked first. Operations on a final
 * component use the *at() call that does not follow it, on a parent directory the
 * resolver opened beneath the capability; those that must follow (stat, times, link's
 * source with symlink_follow) let the resolver follow, beneath too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wasi_int.h"

#define A32(i) ((uint32_t)a[i])

/* The directory descriptor `fd` with `rights`: W_EBADF, W_ENOTCAPABLE, W_ENOTDIR. */
static uint32_t dir_get(tb__wasi_call_t *c, uint32_t fd, uint64_t rights, tb__wasi_fd_t **out) {
  uint32_t err = tb__wasi_fd_get(c->ctx, fd, rights, out);
  if (err) return err;
  if ((*out)->kind != FDK_HOST || (*out)->filetype != W_FT_DIRECTORY) return W_ENOTDIR;
  return W_ESUCCESS;
}

uint32_t tb__wasi_times(uint64_t atim, uint64_t mtim, uint32_t fst, struct timespec ts[2]) {
  if (fst & ~0xfu) return W_EINVAL;
  if ((fst & W_FST_ATIM) && (fst & W_FST_ATIM_NOW)) return W_EINVAL;
  if ((fst & W_FST_MTIM) && (fst & W_FST_MTIM_NOW)) return W_EINVAL;
  ts[0] = (struct timespec){.tv_nsec = UTIME_OMIT};
  ts[1] = (struct timespec){.tv_nsec = UTIME_OMIT};
  if (fst & W_FST_ATIM) ts[0] = (struct timespec){(time_t)(atim / 1000000000u), (long)(atim % 1000000000u)};
  if (fst & W_FST_ATIM_NOW) ts[0].tv_nsec = UTIME_NOW;
  if (fst & W_FST_MTIM) ts[1] = (struct timespec){(time_t)(mtim / 1000000000u), (long)(mtim % 1000000000u)};
  if (fst & W_FST_MTIM_NOW) ts[1].tv_nsec = UTIME_NOW;
  return W_ESUCCESS;
}

static uint32_t sys(int r) { return r == 0 ? W_ESUCCESS : tb__wasi_errno(errno); }

static void parent_close(tb__wasi_parent_t *p) {
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
}

/* ---- open ---- */

TB__WASI_IMPL(path_open) {
  uint32_t fd = A32(0), dirflags = A32(1), path_ptr = A32(2), path_len = A32(3), oflags = A32(4);
  uint64_t base = a[5], inh = a[6];
  uint32_t fdflags = A32(7), retptr = A32(8);
  char path[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *d;
  uint64_t need = R_PATH_OPEN;
  if (oflags & W_O_CREAT) need |= R_PATH_CREATE_FILE;
  if (oflags & W_O_TRUNC) need |= R_PATH_FILESTAT_SET_SIZE;
  uint32_t err = dir_get(c, fd, need, &d);
  if (err) return err;
  /* What the new descriptor may hold is bounded by what this one may hand down. */
  if ((base & ~d->inheriting) || (inh & ~d->inheriting)) return W_ENOTCAPABLE;
  if ((oflags & ~0xfu) || (fdflags & ~0x1fu) || (dirflags & ~1u)) return W_EINVAL;
  if (tb__wasi_ptr(c, retptr, 4) == NULL) return W_EFAULT;
  if ((err = tb__wasi_path_read(c, path_ptr, path_len, false, path)) != W_ESUCCESS) return err;

  bool rd = (base & (R_FD_READ | R_FD_READDIR)) != 0;
  bool wr = (base & (R_FD_WRITE | R_FD_ALLOCATE | R_FD_FILESTAT_SET_SIZE)) != 0;
  if (d->readonly && (wr || (oflags & (W_O_CREAT | W_O_TRUNC)))) return W_ENOTCAPABLE; /* belt and braces */
  int flags = (wr ? (rd ? O_RDWR : O_WRONLY) : O_RDONLY) | O_NOCTTY;
  if (oflags & W_O_CREAT) flags |= O_CREAT;
  if (oflags & W_O_DIRECTORY) flags |= O_DIRECTORY;
  if (oflags & W_O_EXCL) flags |= O_EXCL;
  if (oflags & W_O_TRUNC) flags |= O_TRUNC;
  if (fdflags & W_FDFLAG_APPEND) flags |= O_APPEND;
  if (fdflags & W_FDFLAG_DSYNC) flags |= O_DSYNC;
  if (fdflags & (W_FDFLAG_SYNC | W_FDFLAG_RSYNC)) flags |= O_SYNC;
  /* Opened non-blocking, so that a FIFO in the tree cannot hang the host thread in
   * open(2); the guest's own choice is restored afterwards. */
  int host = -1;
  err = tb__wasi_open_beneath(c->ctx, d->host, path, flags | O_NONBLOCK, 0666,
                              (dirflags & W_LOOKUP_SYMLINK_FOLLOW) != 0, &host);
  if (err) return err;
  if (!(fdflags & W_FDFLAG_NONBLOCK)) {
    int fl = fcntl(host, F_GETFL);
    if (fl >= 0) (void)fcntl(host, F_SETFL, fl & ~O_NONBLOCK);
  }
  struct stat st;
  if (fstat(host, &st) != 0) {
    err = tb__wasi_errno(errno);
    close(host);
    return err;
  }
  tb__wasi_fd_t e = {.kind = FDK_HOST, .host = host, .readonly = d->readonly};
  e.filetype = tb__wasi_filetype(st.st_mode);
  /* Rights that do not apply to the kind of file opened are dropped (the spec allows
   * exactly that); the rest are what was asked. */
  e.base = base & (S_ISDIR(st.st_mode) ? R_DIR_ALL : R_FILE_ALL);
  e.inheriting = inh;
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) e.base &= ~(R_FD_SEEK | R_FD_TELL);
  uint32_t nfd;
  if ((err = tb__wasi_fd_insert(c->ctx, &e, &nfd)) != W_ESUCCESS) {
    close(host);
    return err;
  }
  return tb__wasi_put32(c, retptr, nfd);
}

/* ---- Directories ---- */

TB__WASI_IMPL(path_create_directory) {
  char path[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *d;
  tb__wasi_parent_t p = {.fd = -1};
  uint32_t err = dir_get(c, A32(0), R_PATH_CREATE_DIRECTORY, &d);
  if (!err) err = tb__wasi_path_read(c, A32(1), A32(2), false, path);
  if (!err) err = tb__wasi_resolve_parent(c->ctx, d->host, path, &p);
  if (!err) err = sys(mkdirat(p.fd, p.name, 0777));
  parent_close(&p);
  return err;
}

TB__WASI_IMPL(path_remove_directory) {
  char path[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *d;
  tb__wasi_parent_t p = {.fd = -1};
  uint32_t err = dir_get(c, A32(0), R_PATH_REMOVE_DIRECTORY, &d);
  if (!err) err = tb__wasi_path_read(c, A32(1), A32(2), false, path);
  if (!err) err = tb__wasi_resolve_parent(c->ctx, d->host, path, &p);
  if (!err) err = sys(unlinkat(p.fd, p.name, AT_REMOVEDIR));
  parent_close(&p);
  return err;
}

TB__WASI_IMPL(path_unlink_file) {
  char path[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *d;
  tb__wasi_parent_t p = {.fd = -1};
  uint32_t err = dir_get(c, A32(0), R_PATH_UNLINK_FILE, &d);
  if (!err) err = tb__wasi_path_read(c, A32(1), A32(2), false, path);
  if (!err) err = tb__wasi_resolve_parent(c->ctx, d->host, path, &p);
  if (!err) err = sys(unlinkat(p.fd, p.name, 0));
  parent_close(&p);
  return err;
}

/* ---- Stat and times ---- */

TB__WASI_IMPL(path_filestat_get) {
  char path[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *d;
  int fd = -1;
  uint32_t err = dir_get(c, A32(0), R_PATH_FILESTAT_GET, &d);
  if (err) return err;
  uint8_t *out = tb__wasi_ptr(c, A32(4), 64);
  if (out == NULL) return W_EFAULT;
  if ((err = tb__wasi_path_read(c, A32(2), A32(3), false, path)) != W_ESUCCESS) return err;
  /* An O_PATH open stats the object itself (the link, when not following) without
   * needing read permission. */
  err = tb__wasi_open_beneath(c->ctx, d->host, path, O_PATH, 0, (A32(1) & W_LOOKUP_SYMLINK_FOLLOW) != 0, &fd);
  if (err) return err;
  struct stat st;
  if (fstat(fd, &st) != 0) err = tb__wasi_errno(errno);
  else tb__wasi_filestat_encode(out, &st);
  close(fd);
  return err;
}

TB__WASI_IMPL(path_filestat_set_times) {
  char path[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *d;
  tb__wasi_parent_t p = {.fd = -1};
  struct timespec ts[2];
  uint32_t err = dir_get(c, A32(0), R_PATH_FILESTAT_SET_TIMES, &d);
  if (!err) err = tb__wasi_times(a[4], a[5], A32(6), ts);
  if (!err) err = tb__wasi_path_read(c, A32(2), A32(3), false, path);
  if (!err) err = tb__wasi_resolve_final(c->ctx, d->host, path, (A32(1) & W_LOOKUP_SYMLINK_FOLLOW) != 0, &p);
  if (!err) err = sys(utimensat(p.fd, p.name, ts, AT_SYMLINK_NOFOLLOW));
  parent_close(&p);
  return err;
}

/* ---- Links ---- */

TB__WASI_IMPL(path_link) {
  char oldp[TB__WASI_PATH_MAX + 1], newp[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *od, *nd;
  tb__wasi_parent_t po = {.fd = -1}, pn = {.fd = -1};
  uint32_t err = dir_get(c, A32(0), R_PATH_LINK_SOURCE, &od);
  if (!err) err = dir_get(c, A32(4), R_PATH_LINK_TARGET, &nd);
  if (!err && (A32(1) & ~1u)) err = W_EINVAL;
  if (!err) err = tb__wasi_path_read(c, A32(2), A32(3), false, oldp);
  if (!err) err = tb__wasi_path_read(c, A32(5), A32(6), false, newp);
  if (!err) err = tb__wasi_resolve_final(c->ctx, od->host, oldp, (A32(1) & W_LOOKUP_SYMLINK_FOLLOW) != 0, &po);
  if (!err) err = tb__wasi_resolve_parent(c->ctx, nd->host, newp, &pn);
  if (!err) err = sys(linkat(po.fd, po.name, pn.fd, pn.name, 0));
  parent_close(&po);
  parent_close(&pn);
  return err;
}

TB__WASI_IMPL(path_symlink) {
  char target[TB__WASI_PATH_MAX + 1], newp[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *d;
  tb__wasi_parent_t p = {.fd = -1};
  uint32_t err = dir_get(c, A32(2), R_PATH_SYMLINK, &d);
  if (!err) err = tb__wasi_path_read(c, A32(0), A32(1), true, target);
  /* An absolute target could never be followed beneath a capability; refusing it now
   * gives the guest the answer it would get later, and leaves no link pointing out. */
  if (!err && target[0] == '/') err = W_ENOTCAPABLE;
  if (!err) err = tb__wasi_path_read(c, A32(3), A32(4), false, newp);
  if (!err) err = tb__wasi_resolve_parent(c->ctx, d->host, newp, &p);
  if (!err) err = sys(symlinkat(target, p.fd, p.name));
  parent_close(&p);
  return err;
}

TB__WASI_IMPL(path_readlink) {
  char path[TB__WASI_PATH_MAX + 1], buf[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *d;
  tb__wasi_parent_t p = {.fd = -1};
  uint32_t buf_ptr = A32(3), buf_len = A32(4), retptr = A32(5);
  uint32_t err = dir_get(c, A32(0), R_PATH_READLINK, &d);
  if (err) return err;
  uint8_t *out = tb__wasi_ptr(c, buf_ptr, buf_len);
  if (out == NULL || tb__wasi_ptr(c, retptr, 4) == NULL) return W_EFAULT;
  if ((err = tb__wasi_path_read(c, A32(1), A32(2), false, path)) != W_ESUCCESS) return err;
  if ((err = tb__wasi_resolve_parent(c->ctx, d->host, path, &p)) != W_ESUCCESS) return err;
  ssize_t n;
  if (p.trailing_slash) {
    /* "link/" names what the link points to, which is never a link: not one to read. */
    n = -1;
    errno = EINVAL;
  } else {
    n = readlinkat(p.fd, p.name, buf, sizeof buf);
  }
  if (n < 0) err = tb__wasi_errno(errno);
  parent_close(&p);
  if (err) return err;
  uint32_t len = (size_t)n < buf_len ? (uint32_t)n : buf_len; /* truncated, as readlink(2) does */
  memcpy(out, buf, len);
  return tb__wasi_put32(c, retptr, len);
}

/* ---- Rename ---- */

TB__WASI_IMPL(path_rename) {
  char oldp[TB__WASI_PATH_MAX + 1], newp[TB__WASI_PATH_MAX + 1];
  tb__wasi_fd_t *od, *nd;
  tb__wasi_parent_t po = {.fd = -1}, pn = {.fd = -1};
  uint32_t err = dir_get(c, A32(0), R_PATH_RENAME_SOURCE, &od);
  if (!err) err = dir_get(c, A32(3), R_PATH_RENAME_TARGET, &nd);
  if (!err) err = tb__wasi_path_read(c, A32(1), A32(2), false, oldp);
  if (!err) err = tb__wasi_path_read(c, A32(4), A32(5), false, newp);
  if (!err) err = tb__wasi_resolve_parent(c->ctx, od->host, oldp, &po);
  if (!err) err = tb__wasi_resolve_parent(c->ctx, nd->host, newp, &pn);
  if (!err) err = sys(renameat(po.fd, po.name, pn.fd, pn.name));
  parent_close(&po);
  parent_close(&pn);
  return err;
}
