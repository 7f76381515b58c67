/*
 * fd.c — the fd_* family: reading, writing, seeking, syncing, flags, rights, stat and
 * times of an open descriptor, pre-open names, directory listing and renumbering.
 *
 * Each function first checks the descriptor and its rights, then every guest pointer it
 * will write through (so a bad result pointer never loses data already read), and only
 * then touches the host. Stdio that the embedder plugs in as callbacks, or as nothing,
 * answers here too; it is a stream (no seek, no sync).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tb/alloc.h"
#include "wasi_int.h"

#define A32(i) ((uint32_t)a[i])

static uint32_t from_tb(int64_t rc) {
  /* A callback's negative TB_E* code: system codes are -errno; Tabbify's own are io. */
  return rc < 0 && rc > -4000 ? tb__wasi_errno((int)-rc) : W_EIO;
}

void tb__wasi_filestat_encode(uint8_t out[64], const struct stat *st) {
  memset(out, 0, 64);
  tb__wasi_le64(out + 0, (uint64_t)st->st_dev);
  tb__wasi_le64(out + 8, (uint64_t)st->st_ino);
  out[16] = tb__wasi_filetype(st->st_mode);
  tb__wasi_le64(out + 24, (uint64_t)st->st_nlink);
  tb__wasi_le64(out + 32, (uint64_t)st->st_size);
  tb__wasi_le64(out + 40, (uint64_t)st->st_atim.tv_sec * 1000000000u + (uint64_t)st->st_atim.tv_nsec);
  tb__wasi_le64(out + 48, (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec);
  tb__wasi_le64(out + 56, (uint64_t)st->st_ctim.tv_sec * 1000000000u + (uint64_t)st->st_ctim.tv_nsec);
}

/* ---- Reading and writing ---- */

/*
 * Moves the bytes of one fd_read/fd_write (or their positional twins) between the guest's
 * iovecs and the descriptor: a null sink, host callbacks (one call per iovec, stopping at
 * the first short transfer) or a host fd (one readv/writev).
 */
static uint32_t do_io(tb__wasi_fd_t *e, tb__wasi_iovs_t *v, bool write, bool positional, uint64_t offset,
                      uint32_t *done) {
  *done = 0;
  if (e->kind == FDK_NULL) {
    if (write) *done = (uint32_t)v->total; /* writes vanish, reads see end of file */
    return W_ESUCCESS;
  }
  if (e->kind == FDK_CALLBACK) {
    if (positional) return W_ESPIPE;
    uint64_t total = 0;
    for (int i = 0; i < v->n; i++) {
      if (v->iov[i].iov_len == 0) continue;
      int64_t r = write ? e->io.write(e->io.arg, v->iov[i].iov_base, v->iov[i].iov_len)
                        : e->io.read(e->io.arg, v->iov[i].iov_base, v->iov[i].iov_len);
      if (r < 0) {
        if (total) break;
        return from_tb(r);
      }
      if ((uint64_t)r > v->iov[i].iov_len) r = (int64_t)v->iov[i].iov_len;
      total += (uint64_t)r;
      if ((size_t)r < v->iov[i].iov_len) break;
    }
    *done = (uint32_t)total;
    return W_ESUCCESS;
  }
  if (positional && offset > INT64_MAX) return W_EINVAL;
  ssize_t r;
  do {
    if (write)
      r = positional ? pwritev(e->host, v->iov, v->n, (off_t)offset) : writev(e->host, v->iov, v->n);
    else
      r = positional ? preadv(e->host, v->iov, v->n, (off_t)offset) : readv(e->host, v->iov, v->n);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return tb__wasi_errno(errno);
  *done = (uint32_t)r;
  return W_ESUCCESS;
}

/* fd_read(fd, iovs, iovs_len, nread*) and the three like it. */
static uint32_t rw(tb__wasi_call_t *c, uint32_t fd, uint32_t iovs, uint32_t n, bool write, bool positional,
                   uint64_t offset, uint32_t retptr) {
  tb__wasi_fd_t *e;
  uint64_t need = (write ? R_FD_WRITE : R_FD_READ) | (positional ? R_FD_SEEK : 0);
  uint32_t err = tb__wasi_fd_get(c->ctx, fd, need, &e);
  if (err) return err;
  if (tb__wasi_ptr(c, retptr, 4) == NULL) return W_EFAULT;
  tb__wasi_iovs_t v;
  if ((err = tb__wasi_iovs_load(c, iovs, n, &v)) != W_ESUCCESS) return err;
  uint32_t done = 0;
  err = do_io(e, &v, write, positional, offset, &done);
  tb__wasi_iovs_free(&v);
  if (err == W_ESUCCESS) err = tb__wasi_put32(c, retptr, done);
  return err;
}

TB__WASI_IMPL(fd_read) { return rw(c, A32(0), A32(1), A32(2), false, false, 0, A32(3)); }
TB__WASI_IMPL(fd_write) { return rw(c, A32(0), A32(1), A32(2), true, false, 0, A32(3)); }
TB__WASI_IMPL(fd_pread) { return rw(c, A32(0), A32(1), A32(2), false, true, a[3], A32(4)); }
TB__WASI_IMPL(fd_pwrite) { return rw(c, A32(0), A32(1), A32(2), true, true, a[3], A32(4)); }

/* ---- Position ---- */

/* Streams (stdio, pipes, sockets, terminals) have no position: ESPIPE, as natively,
 * whatever the rights say, so programs can probe seekability the usual way. */
static bool seekable(const tb__wasi_fd_t *e) {
  return e->kind == FDK_HOST && (e->filetype == W_FT_REGULAR_FILE || e->filetype == W_FT_BLOCK_DEVICE ||
                                 e->filetype == W_FT_DIRECTORY);
}

TB__WASI_IMPL(fd_seek) {
  uint32_t fd = A32(0), whence = A32(2), retptr = A32(3);
  int64_t offset = (int64_t)a[1];
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, fd, 0, &e);
  if (err) return err;
  if (!seekable(e)) return W_ESPIPE;
  /* fd_seek's right implies fd_tell's; a pure tell needs either. */
  bool tell = offset == 0 && whence == 1;
  if (!(e->base & R_FD_SEEK) && !(tell && (e->base & R_FD_TELL))) return W_ENOTCAPABLE;
  if (whence > 2) return W_EINVAL;
  if (tb__wasi_ptr(c, retptr, 8) == NULL) return W_EFAULT;
  if (e->kind != FDK_HOST) return W_ESPIPE;
  static const int whences[] = {SEEK_SET, SEEK_CUR, SEEK_END};
  off_t r = lseek(e->host, (off_t)offset, whences[whence]);
  if (r < 0) return tb__wasi_errno(errno);
  return tb__wasi_put64(c, retptr, (uint64_t)r);
}

TB__WASI_IMPL(fd_tell) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), 0, &e);
  if (err) return err;
  if (!seekable(e)) return W_ESPIPE;
  if (!(e->base & (R_FD_TELL | R_FD_SEEK))) return W_ENOTCAPABLE;
  if (tb__wasi_ptr(c, A32(1), 8) == NULL) return W_EFAULT;
  if (e->kind != FDK_HOST) return W_ESPIPE;
  off_t r = lseek(e->host, 0, SEEK_CUR);
  if (r < 0) return tb__wasi_errno(errno);
  return tb__wasi_put64(c, A32(1), (uint64_t)r);
}

/* ---- Syncing, advice, allocation, size ---- */

static uint32_t sync_common(tb__wasi_call_t *c, uint32_t fd, bool data) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, fd, data ? R_FD_DATASYNC : R_FD_SYNC, &e);
  if (err) return err;
  if (e->kind != FDK_HOST) return W_ESUCCESS;
  return (data ? fdatasync(e->host) : fsync(e->host)) == 0 ? W_ESUCCESS : tb__wasi_errno(errno);
}

TB__WASI_IMPL(fd_sync) { return sync_common(c, A32(0), false); }
TB__WASI_IMPL(fd_datasync) { return sync_common(c, A32(0), true); }

TB__WASI_IMPL(fd_advise) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_FD_ADVISE, &e);
  if (err) return err;
  static const int advice[] = {POSIX_FADV_NORMAL,   POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
                               POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED,   POSIX_FADV_NOREUSE};
  uint32_t adv = A32(3);
  if (adv > 5 || a[1] > INT64_MAX || a[2] > INT64_MAX) return W_EINVAL;
  if (e->kind != FDK_HOST) return W_ESPIPE;
  int r = posix_fadvise(e->host, (off_t)a[1], (off_t)a[2], advice[adv]);
  return r == 0 ? W_ESUCCESS : tb__wasi_errno(r);
}

TB__WASI_IMPL(fd_allocate) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_FD_ALLOCATE, &e);
  if (err) return err;
  uint64_t off = a[1], len = a[2];
  if (off > INT64_MAX || len > INT64_MAX || off + len > INT64_MAX) return W_EFBIG;
  if (e->kind != FDK_HOST) return W_ESPIPE;
  if (len == 0) return W_EINVAL;
  int r;
  do r = posix_fallocate(e->host, (off_t)off, (off_t)len);
  while (r == EINTR);
  return r == 0 ? W_ESUCCESS : tb__wasi_errno(r);
}

TB__WASI_IMPL(fd_filestat_set_size) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_FD_FILESTAT_SET_SIZE, &e);
  if (err) return err;
  if (a[1] > INT64_MAX) return W_EFBIG;
  if (e->kind != FDK_HOST) return W_EINVAL;
  return ftruncate(e->host, (off_t)a[1]) == 0 ? W_ESUCCESS : tb__wasi_errno(errno);
}

TB__WASI_IMPL(fd_filestat_set_times) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_FD_FILESTAT_SET_TIMES, &e);
  if (err) return err;
  struct timespec ts[2];
  if ((err = tb__wasi_times(a[1], a[2], A32(3), ts)) != W_ESUCCESS) return err;
  if (e->kind != FDK_HOST) return W_ESUCCESS;
  return futimens(e->host, ts) == 0 ? W_ESUCCESS : tb__wasi_errno(errno);
}

/* ---- Status, flags and rights ---- */

TB__WASI_IMPL(fd_fdstat_get) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), 0, &e);
  if (err) return err;
  uint8_t *p = tb__wasi_ptr(c, A32(1), 24);
  if (p == NULL) return W_EFAULT;
  uint16_t flags = 0;
  if (e->kind == FDK_HOST) {
    int fl = fcntl(e->host, F_GETFL);
    if (fl >= 0) {
      if (fl & O_APPEND) flags |= W_FDFLAG_APPEND;
      if (fl & O_NONBLOCK) flags |= W_FDFLAG_NONBLOCK;
      if ((fl & O_SYNC) == O_SYNC) flags |= W_FDFLAG_SYNC | W_FDFLAG_RSYNC;
      else if (fl & O_DSYNC) flags |= W_FDFLAG_DSYNC;
    }
  }
  memset(p, 0, 24);
  p[0] = e->filetype;
  tb__wasi_le16(p + 2, flags);
  tb__wasi_le64(p + 8, e->base);
  tb__wasi_le64(p + 16, e->inheriting);
  return W_ESUCCESS;
}

TB__WASI_IMPL(fd_fdstat_set_flags) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_FD_FDSTAT_SET_FLAGS, &e);
  if (err) return err;
  uint32_t want = A32(1);
  if (want & ~0x1fu) return W_EINVAL;
  if (e->kind != FDK_HOST) return W_ENOTSUP;
  int fl = fcntl(e->host, F_GETFL);
  if (fl < 0) return tb__wasi_errno(errno);
  /* Linux cannot change the sync flags of an open file; asking to is refused. */
  uint32_t have_sync = (fl & O_SYNC) == O_SYNC ? (W_FDFLAG_SYNC | W_FDFLAG_RSYNC) : (fl & O_DSYNC) ? W_FDFLAG_DSYNC : 0;
  uint32_t want_sync = want & (W_FDFLAG_SYNC | W_FDFLAG_RSYNC | W_FDFLAG_DSYNC);
  if (want_sync && want_sync != have_sync) return W_ENOTSUP;
  int nfl = (fl & ~(O_APPEND | O_NONBLOCK)) | ((want & W_FDFLAG_APPEND) ? O_APPEND : 0) |
            ((want & W_FDFLAG_NONBLOCK) ? O_NONBLOCK : 0);
  return fcntl(e->host, F_SETFL, nfl) == 0 ? W_ESUCCESS : tb__wasi_errno(errno);
}

TB__WASI_IMPL(fd_fdstat_set_rights) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), 0, &e);
  if (err) return err;
  uint64_t base = a[1], inh = a[2];
  /* Rights only ever shrink. */
  if ((base & ~e->base) || (inh & ~e->inheriting)) return W_ENOTCAPABLE;
  e->base = base;
  e->inheriting = inh;
  return W_ESUCCESS;
}

TB__WASI_IMPL(fd_filestat_get) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_FD_FILESTAT_GET, &e);
  if (err) return err;
  uint8_t *p = tb__wasi_ptr(c, A32(1), 64);
  if (p == NULL) return W_EFAULT;
  if (e->kind != FDK_HOST) {
    memset(p, 0, 64);
    p[16] = e->filetype;
    return W_ESUCCESS;
  }
  struct stat st;
  if (fstat(e->host, &st) != 0) return tb__wasi_errno(errno);
  tb__wasi_filestat_encode(p, &st);
  return W_ESUCCESS;
}

/* ---- Pre-opens, closing, renumbering ---- */

TB__WASI_IMPL(fd_prestat_get) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), 0, &e);
  if (err) return err;
  /* libc walks fds upward from 3 until this says badf: anything not pre-opened says so. */
  if (e->preopen == NULL) return W_EBADF;
  uint8_t *p = tb__wasi_ptr(c, A32(1), 8);
  if (p == NULL) return W_EFAULT;
  memset(p, 0, 8);
  tb__wasi_le32(p + 4, (uint32_t)e->preopen_len);
  return W_ESUCCESS;
}

TB__WASI_IMPL(fd_prestat_dir_name) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), 0, &e);
  if (err) return err;
  if (e->preopen == NULL) return W_EBADF;
  uint32_t len = A32(2);
  if (len < e->preopen_len) return W_ENAMETOOLONG;
  uint8_t *p = tb__wasi_ptr(c, A32(1), e->preopen_len);
  if (p == NULL) return W_EFAULT;
  memcpy(p, e->preopen, e->preopen_len);
  return W_ESUCCESS;
}

TB__WASI_IMPL(fd_close) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), 0, &e);
  if (err) return err;
  tb__wasi_fd_release(e);
  return W_ESUCCESS;
}

TB__WASI_IMPL(fd_renumber) {
  tb__wasi_fd_t *from, *to;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), 0, &from);
  if (err) return err;
  if ((err = tb__wasi_fd_get(c->ctx, A32(1), 0, &to)) != W_ESUCCESS) return err;
  if (from == to) return W_ESUCCESS;
  tb__wasi_fd_release(to);
  *to = *from;
  memset(from, 0, sizeof *from);
  from->kind = FDK_FREE;
  from->host = -1;
  return W_ESUCCESS;
}

/* ---- Directory listing ---- */

/*
 * A listing position that survives between calls. Cookies are entry indexes (0 is the
 * start, d_next of entry i is i + 1). Reading on from where the last call stopped is the
 * common case and costs nothing extra; any other cookie rewinds and skips. The listing
 * uses its own open of the directory, so it never moves another descriptor's offset.
 */
struct tb__wasi_dirstream {
  DIR *d;
  uint64_t next;          /* index of `pending`, or of the next entry readdir() returns */
  struct dirent *pending; /* fetched but not yet delivered whole, or NULL */
};

void tb__wasi_dirstream_free(tb__wasi_dirstream_t *s) {
  if (s == NULL) return;
  if (s->d) closedir(s->d);
  tb_free(s);
}

static uint32_t dir_peek(tb__wasi_dirstream_t *s, struct dirent **out) {
  if (s->pending == NULL) {
    errno = 0;
    s->pending = readdir(s->d);
    if (s->pending == NULL && errno != 0) return tb__wasi_errno(errno);
  }
  *out = s->pending;
  return W_ESUCCESS;
}

static uint8_t dirent_type(int dfd, const struct dirent *de) {
  switch (de->d_type) {
  case DT_REG:
    return W_FT_REGULAR_FILE;
  case DT_DIR:
    return W_FT_DIRECTORY;
  case DT_LNK:
    return W_FT_SYMBOLIC_LINK;
  case DT_CHR:
    return W_FT_CHARACTER_DEVICE;
  case DT_BLK:
    return W_FT_BLOCK_DEVICE;
  case DT_SOCK:
    return W_FT_SOCKET_STREAM;
  case DT_UNKNOWN: {
    struct stat st;
    return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? tb__wasi_filetype(st.st_mode) : W_FT_UNKNOWN;
  }
  }
  return W_FT_UNKNOWN;
}

TB__WASI_IMPL(fd_readdir) {
  uint32_t fd = A32(0), buf = A32(1), buf_len = A32(2), retptr = A32(4);
  uint64_t cookie = a[3];
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, fd, R_FD_READDIR, &e);
  if (err) return err;
  if (e->filetype != W_FT_DIRECTORY || e->kind != FDK_HOST) return W_ENOTDIR;
  uint8_t *out = tb__wasi_ptr(c, buf, buf_len);
  if (out == NULL || tb__wasi_ptr(c, retptr, 4) == NULL) return W_EFAULT;
  tb__wasi_dirstream_t *s = e->dir;
  if (s == NULL) {
    if ((s = tb_calloc(1, sizeof *s)) == NULL) return W_ENOMEM;
    int dfd = openat(e->host, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (s->d = fdopendir(dfd)) == NULL) {
      err = tb__wasi_errno(errno);
      if (dfd >= 0) close(dfd);
      tb_free(s);
      return err;
    }
    e->dir = s;
  }
  if (cookie < s->next) {
    rewinddir(s->d);
    s->next = 0;
    s->pending = NULL;
  }
  struct dirent *de = NULL;
  while (s->next < cookie) {
    if ((err = dir_peek(s, &de)) != W_ESUCCESS) return err;
    if (de == NULL) return tb__wasi_put32(c, retptr, 0);
    s->pending = NULL;
    s->next++;
  }
  uint32_t used = 0;
  while (used < buf_len) {
    if ((err = dir_peek(s, &de)) != W_ESUCCESS) return err;
    if (de == NULL) break;
    size_t namlen = strlen(de->d_name);
    uint8_t hdr[24] = {0};
    tb__wasi_le64(hdr, s->next + 1);
    tb__wasi_le64(hdr + 8, (uint64_t)de->d_ino);
    tb__wasi_le32(hdr + 16, (uint32_t)namlen);
    hdr[20] = dirent_type(dirfd(s->d), de);
    /* Copy what fits; an entry cut short stays pending, and the guest, seeing a full
     * buffer, asks again from the last whole entry's d_next. */
    uint32_t room = buf_len - used, n = room < 24 ? room : 24;
    memcpy(out + used, hdr, n);
    used += n;
    if (n < 24) break;
    room = buf_len - used;
    n = room < namlen ? room : (uint32_t)namlen;
    memcpy(out + used, de->d_name, n);
    used += n;
    if (n < namlen) break;
    s->pending = NULL;
    s->next++;
  }
  return tb__wasi_put32(c, retptr, used);
}
