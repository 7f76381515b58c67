/*
 * snapshot.c — snapshot files and start-up (include/tb/projections.h).
 *
 * A snapshot is <dir>/projections.snap:
 *
 *   tabbify-projections-snapshot 2 <offset> <event id> <body bytes> <BLAKE3 of body, hex>\n
 *   <body: the state at <offset> in the binary encoding of state_bin.c>
 *
 * Saving writes a temporary file, fsyncs it, moves the current snapshot to
 * projections.snap.prev and renames the new one into place, then fsyncs the directory;
 * a crash at any point leaves at least one complete snapshot. Loading checks the header,
 * the length and the hash, rebuilds the state, checks that the state says the same offset
 * and event id as the header, and finally asks the log whether the event at that offset
 * really has that id: a snapshot of another log, or of a log that has since lost events,
 * is passed over (and logged) rather than trusted.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "projections_int.h"
#include "tb/alloc.h"
#include "tb/blake3.h"
#include "tb/log.h"

#define MAGIC "tabbify-projections-snapshot"
#define FORMAT 2
#define SNAP_MAX ((size_t)2 << 30)

static void hex(const uint8_t *b, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * n] = '\0';
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return tb_err_from_errno(errno);
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int tb_projections_snapshot_save(tb_projections_t *p, const char *dir, tb_errbuf_t *eb) {
  char path[512], tmp[560], prev[560], header[256], id[TB_UUID_STR_LEN + 1], sum[2 * TB_BLAKE3_OUT_LEN + 1];
  uint8_t digest[TB_BLAKE3_OUT_LEN];
  tb_buf_t body;
  tb_buf_init(&body, SNAP_MAX);
  int fd = -1, rc = 0;
  snprintf(path, sizeof path, "%s/projections.snap", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  snprintf(prev, sizeof prev, "%s.prev", path);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot create %s: %s", dir, strerror(errno));
    goto out;
  }
  pthread_rwlock_rdlock(&p->lock);
  int er = tb__state_encode(&p->st, &body);
  uint64_t offset = p->st.offset;
  tb_uuid_t last = p->st.last_id;
  pthread_rwlock_unlock(&p->lock);
  if (er) {
    rc = tb_errf(eb, er, "cannot serialise the projections: %s", tb_strerror(er));
    goto out;
  }
  tb_blake3_hash(body.data, body.len, digest);
  hex(digest, sizeof digest, sum);
  tb_uuid_format(&last, id);
  int hl = snprintf(header, sizeof header, "%s %d %llu %s %zu %s\n", MAGIC, FORMAT, (unsigned long long)offset, id,
                    body.len, sum);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot create %s: %s", tmp, strerror(errno));
    goto out;
  }
  if ((rc = write_all(fd, header, (size_t)hl)) != 0 || (rc = write_all(fd, body.data, body.len)) != 0 ||
      (fsync(fd) != 0 && (rc = tb_err_from_errno(errno)) != 0)) {
    tb_errf(eb, rc, "cannot write %s: %s", tmp, tb_strerror(rc));
    goto out;
  }
  close(fd);
  fd = -1;
  if (rename(path, prev) != 0 && errno != ENOENT) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot keep the previous snapshot: %s", strerror(errno));
    goto out;
  }
  if (rename(tmp, path) != 0) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot install %s: %s", path, strerror(errno));
    goto out;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  pthread_rwlock_wrlock(&p->lock);
  p->snapshot_offset = offset;
  pthread_rwlock_unlock(&p->lock);
out:
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  tb_buf_deinit(&body);
  return rc;
}

int tb_projections_maybe_snapshot(tb_projections_t *p, const char *dir, uint64_t every, tb_errbuf_t *eb) {
  pthread_rwlock_rdlock(&p->lock);
  bool due = p->st.offset >= p->snapshot_offset + (every ? every : 1);
  pthread_rwlock_unlock(&p->lock);
  return due ? tb_projections_snapshot_save(p, dir, eb) : 0;
}

/* ---- Loading. ---- */

static int read_file(const char *path, char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tb_err_from_errno(errno);
  struct stat st;
  int rc = 0;
  char *buf = NULL;
  if (fstat(fd, &st) != 0) {
    rc = tb_err_from_errno(errno);
    goto out;
  }
  if ((size_t)st.st_size > SNAP_MAX + 512) {
    rc = TB_ETOOBIG;
    goto out;
  }
  buf = tb_malloc((size_t)st.st_size + 1);
  if (buf == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      rc = r < 0 ? tb_err_from_errno(errno) : TB_EIO;
      goto out;
    }
    got += (size_t)r;
  }
  buf[got] = '\0';
  *data = buf;
  *len = got;
  buf = NULL;
out:
  tb_free(buf);
  close(fd);
  return rc;
}

typedef struct first_ctx {
  tb_uuid_t id;
  bool found;
} first_ctx_t;

static int first_cb(const tb_event_t *ev, void *ud) {
  first_ctx_t *f = ud;
  f->id = ev->id;
  f->found = true;
  return 1;
}

/* Loads one snapshot file into `st`. 0, or an error with a sentence in `eb`. */
static int load_one(const char *path, tb_eventlog_t *log, tb__state_t *st, tb_errbuf_t *eb) {
  char *data = NULL;
  size_t len = 0;
  int rc = read_file(path, &data, &len);
  if (rc) {
    if (rc != TB_ENOENT) tb_errf(eb, rc, "cannot read %s: %s", path, tb_strerror(rc));
    return rc;
  }
  char *nl = memchr(data, '\n', len < 300 ? len : 300);
  unsigned long long offset = 0;
  size_t body_len = 0;
  int format = 0;
  char id_text[64] = "", sum[128] = "", magic[64] = "";
  tb_uuid_t id;
  if (nl == NULL ||
      sscanf(data, "%63s %d %llu %63s %zu %127s", magic, &format, &offset, id_text, &body_len, sum) != 6 ||
      strcmp(magic, MAGIC) != 0 || tb_uuid_parse(id_text, strlen(id_text), &id) != 0) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s: not a projections snapshot", path);
    goto out;
  }
  if (format != FORMAT) {
    rc = tb_errf(eb, TB_EUNSUPPORTED, "%s has format %d; this program reads %d", path, format, FORMAT);
    goto out;
  }
  const char *body = nl + 1;
  if ((size_t)(data + len - body) != body_len) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s: the body is %zu bytes, the header says %zu: truncated", path,
                 (size_t)(data + len - body), body_len);
    goto out;
  }
  uint8_t digest[TB_BLAKE3_OUT_LEN];
  char want[2 * TB_BLAKE3_OUT_LEN + 1];
  tb_blake3_hash(body, body_len, digest);
  hex(digest, sizeof digest, want);
  if (strcmp(want, sum) != 0) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s: the body does not match its hash: damaged", path);
    goto out;
  }
  char why[200] = "";
  tb_errbuf_t web = {why, sizeof why};
  if ((rc = tb__state_decode(st, body, body_len, &web)) != 0) {
    tb_errf(eb, rc, "%s: %s", path, why);
    goto out;
  }
  if (st->offset != offset || memcmp(st->last_id.b, id.b, 16) != 0) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s: the header and the state disagree", path);
    goto out;
  }
  if (offset > 0) {
    first_ctx_t f = {.found = false};
    char msg[256] = "";
    tb_errbuf_t leb = {msg, sizeof msg};
    int r = tb_eventlog_read(log, offset, NULL, first_cb, &f, &leb);
    if (r != 0 && r != 1) {
      rc = tb_errf(eb, r, "%s: cannot check it against the log: %s", path, msg);
      goto out;
    }
    if (!f.found || memcmp(f.id.b, id.b, 16) != 0) {
      rc = tb_errf(eb, TB_ECONFLICT, "%s was taken at offset %llu, where the log %s", path, offset,
                   f.found ? "has another event" : "has no event");
      goto out;
    }
  }
out:
  tb_free(data);
  return rc;
}

int tb_projections_snapshot_load(tb_projections_t *p, const char *dir, tb_eventlog_t *log, tb_errbuf_t *eb) {
  const char *names[] = {"projections.snap", "projections.snap.prev"};
  for (size_t i = 0; i < 2; i++) {
    char path[512], msg[512] = "";
    tb_errbuf_t leb = {msg, sizeof msg};
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    tb__state_t st;
    tb__state_init(&st);
    int rc = load_one(path, log, &st, &leb);
    if (rc == 0) {
      pthread_rwlock_wrlock(&p->lock);
      tb__state_deinit(&p->st);
      p->st = st;
      p->snapshot_offset = st.offset;
      pthread_rwlock_unlock(&p->lock);
      tb_log_info("projections", "snapshot loaded", TB_KV_STR("file", path), TB_KV_UINT("offset", st.offset));
      return 0;
    }
    tb__state_deinit(&st);
    if (rc == TB_ENOMEM) return tb_errf(eb, rc, "out of memory loading %s", path);
    if (rc != TB_ENOENT)
      tb_log_warn("projections", "snapshot not used", TB_KV_STR("file", path), TB_KV_STR("reason", msg));
  }
  return TB_ENOENT;
}

int tb_projections_open(tb_eventlog_t *log, const char *dir, tb_projections_t **out, tb_errbuf_t *eb) {
  *out = NULL;
  tb_projections_t *p = NULL;
  int rc = tb_projections_new(&p);
  if (rc) return tb_errf(eb, rc, "out of memory");
  if (dir) {
    rc = tb_projections_snapshot_load(p, dir, log, eb);
    if (rc && rc != TB_ENOENT) goto out;
  }
  uint64_t n = 0;
  rc = tb_projections_catch_up(p, log, &n, eb);
out:
  if (rc) {
    tb_projections_free(p);
    return rc;
  }
  *out = p;
  return 0;
}
