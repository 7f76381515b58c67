/*
 * store.c — the artifact store: PUT /v1/apps/{uuid}/versions/{n}.
 *
 * The body is streamed to a temporary file under <store>/tmp/ (same file system as the
 * final place) while SHA-256 is computed on the fly; nothing is buffered whole. At the end
 * the digest is compared with the client's X-Content-SHA256 header (64 hex digits). A
 * mismatch, a body over the limit or a client that goes away unlinks the temporary file,
 * so nothing is left behind. A match fsyncs the file, links it to
 * <store>/apps/<uuid>/v<N>/artifact with renameat2(RENAME_NOREPLACE) (a version is
 * immutable: an existing file is never replaced), fsyncs the directories, and only then
 * appends version_uploaded. The version exists once that event is in the log: a file
 * without its event (a crash between the rename and the append) was never acknowledged,
 * and the next PUT of that version removes it and stores the new upload.
 *
 * The file work runs on the libuv threadpool (uv_queue_work) so a big upload or a slow
 * fsync never stalls other requests: each piece of body is handed to a job that hashes
 * and writes it, and the body is not read while that job is in flight (read_stop, then
 * read_start when it is back), so at most one read's worth of bytes waits in memory.
 * The final fsync, mkdir, rename and directory fsyncs are one more job; the event is
 * appended back on the loop thread. One job at a time per upload, so the worker owns the
 * file descriptor and hash state while it runs and the loop thread touches them only
 * between jobs. A client that goes away mid-job leaves the exchange to be freed (and the
 * temporary file unlinked) when the job comes back.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* renameat2, mkostemp */
#endif
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_int.h"
#include "tb/alloc.h"
#include "tb/base64.h"
#include "tb/fs.h"
#include "tb/log.h"


static void fsync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

void tb__node_store_sweep(tb_node_t *n) {
  /* Temporary files are uploads that never finished; none was acknowledged. */
  char cmd_dir[1200];
  snprintf(cmd_dir, sizeof cmd_dir, "%s/tmp", n->store_dir);
  tb_mkdir_p(cmd_dir, 0700);
  char path[1400];
  DIR *d = opendir(cmd_dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", cmd_dir, e->d_name);
    unlink(path);
  }
  closedir(d);
}

bool tb__node_x_store_cleanup(tb__node_x_t *x) {
  if (x->up_busy) return false;
  if (x->fd >= 0) {
    close(x->fd);
    x->fd = -1;
  }
  if (x->tmp_path[0]) {
    unlink(x->tmp_path);
    x->tmp_path[0] = 0;
  }
  tb_buf_deinit(&x->up_pend);
  tb_buf_deinit(&x->up_fly);
  return true;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void fail(tb__node_x_t *x, int status, const char *code, const char *msg) {
  x->failed = true;
  tb_http_req_read_stop(x->req);
  tb__node_x_store_cleanup(x);
  tb_http_resp_error(x->req, status, code, msg);
}

/* ---- threadpool jobs: they touch only fd, sha, up_fly, tmp_path, up_dir, up_errno, up_step ---- */

static void write_job(uv_work_t *w) {
  tb__node_x_t *x = w->data;
  const uint8_t *data = x->up_fly.data;
  size_t len = x->up_fly.len;
  crypto_hash_sha256_update(&x->sha, data, len);
  x->up_errno = 0;
  while (len > 0) {
    ssize_t n = write(x->fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      x->up_errno = errno;
      return;
    }
    data += n, len -= (size_t)n;
  }
}

/*
 * The version's resolved manifest (x->body, from X-Tabbify-Manifest) goes next to the
 * artifact as manifest.json before the artifact is renamed into place, so a version
 * that exists has its settings. A manifest left by an upload that failed later is
 * replaced by the next upload of that version.
 */
static int write_manifest(tb__node_x_t *x) {
  char tmp[1300], path[1300];
  snprintf(tmp, sizeof tmp, "%s/manifest.json.tmp", x->up_dir);
  snprintf(path, sizeof path, "%s/manifest.json", x->up_dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < x->body.len) {
    ssize_t n = write(fd, x->body.data + off, x->body.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  int rc = off == x->body.len && fsync(fd) == 0 ? 0 : -1;
  close(fd);
  if (rc == 0 && rename(tmp, path) != 0) rc = -1;
  if (rc != 0) unlink(tmp);
  return rc;
}

static void finish_job(uv_work_t *w) {
  tb__node_x_t *x = w->data;
  char final[1300];
  snprintf(final, sizeof final, "%s/artifact", x->up_dir);
  x->up_errno = 0, x->up_step = 0;
  if (fsync(x->fd) != 0 || tb_mkdir_p(x->up_dir, 0700) != 0) {
    x->up_errno = errno ? errno : EIO, x->up_step = 1;
    return;
  }
  if (x->body.len > 0 && write_manifest(x) != 0) {
    x->up_errno = errno ? errno : EIO, x->up_step = 1;
    return;
  }
  if (renameat2(AT_FDCWD, x->tmp_path, AT_FDCWD, final, RENAME_NOREPLACE) != 0) {
    x->up_errno = errno, x->up_step = 2;
    return;
  }
  x->tmp_path[0] = 0;
  fsync_dir(x->up_dir);
  char parent[1200];
  snprintf(parent, sizeof parent, "%s", x->up_dir);
  char *slash = strrchr(parent, '/');
  if (slash) {
    *slash = 0;
    fsync_dir(parent);
  }
}

/* ---- the loop side ---- */

static void after_job(uv_work_t *w, int status);
static void up_end(tb_http_req_t *req, void *ud);

static int queue(tb__node_x_t *x, uv_work_cb job) {
  x->up_work.data = x;
  int rc = uv_queue_work(x->node->loop, &x->up_work, job, after_job);
  if (rc == 0) x->up_busy = true;
  return rc;
}

/* Hands what is pending to a write job and pauses the body until it is back. */
static void kick_write(tb__node_x_t *x) {
  tb_buf_t t = x->up_fly;
  x->up_fly = x->up_pend;
  x->up_pend = t;
  tb_buf_reset(&x->up_pend);
  if (queue(x, write_job) != 0) {
    fail(x, 507, "store_failed", "The artifact could not be written to the store.");
    return;
  }
  tb_http_req_read_stop(x->req);
}

static void up_data(tb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  (void)req;
  tb__node_x_t *x = ud;
  if (x->failed) return;
  x->received += len;
  if (x->received > x->node->max_artifact) {
    if (x->up_busy) { /* answer once the job is back; drop the bytes meanwhile */
      x->failed = true;
      tb_http_req_read_stop(x->req);
      return;
    }
    char m[128];
    snprintf(m, sizeof m, "An artifact may be at most %llu bytes.", (unsigned long long)x->node->max_artifact);
    fail(x, 413, "artifact_too_large", m);
    return;
  }
  if (tb_buf_append(&x->up_pend, data, len) != 0) {
    if (x->up_busy) x->failed = true, tb_http_req_read_stop(x->req);
    else fail(x, 507, "store_failed", "The node is out of memory for the upload.");
    return;
  }
  if (!x->up_busy) kick_write(x);
}

static void finish(tb__node_x_t *x);

static void after_job(uv_work_t *w, int status) {
  tb__node_x_t *x = w->data;
  bool finishing = x->up_finishing;
  x->up_busy = false, x->up_finishing = false;
  if (x->up_orphan) { /* the client went away meanwhile */
    tb__node_x_free(x);
    return;
  }
  if (status != 0 || x->up_errno != 0) {
    if (finishing && x->up_step == 2 && x->up_errno == EEXIST)
      fail(x, 409, "version_exists", "That version was uploaded meanwhile; versions are immutable.");
    else if (finishing)
      fail(x, 507, "store_failed",
           x->up_step == 2 ? "The artifact could not be moved into the store." : "The artifact could not be made durable.");
    else
      fail(x, 507, "store_failed", "The artifact could not be written to the store.");
    return;
  }
  if (finishing) {
    finish(x);
    return;
  }
  if (x->failed) { /* over the limit or out of memory while the job ran */
    char m[128];
    x->failed = false;
    if (x->received > x->node->max_artifact) {
      snprintf(m, sizeof m, "An artifact may be at most %llu bytes.", (unsigned long long)x->node->max_artifact);
      fail(x, 413, "artifact_too_large", m);
    } else
      fail(x, 507, "store_failed", "The node is out of memory for the upload.");
    return;
  }
  if (x->up_pend.len > 0) {
    kick_write(x);
    return;
  }
  if (x->up_end_pending) {
    x->up_end_pending = false;
    up_end(x->req, x);
    return;
  }
  tb_http_req_read_start(x->req, up_data, up_end, x);
}

static void up_end(tb_http_req_t *req, void *ud) {
  (void)req;
  tb__node_x_t *x = ud;
  if (x->failed) return;
  if (x->up_busy) {
    x->up_end_pending = true;
    return;
  }
  if (x->up_pend.len > 0) {
    x->up_end_pending = true;
    kick_write(x);
    return;
  }
  uint8_t got[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&x->sha, got);
  char hex[65];
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", got[i]);
  if (memcmp(got, x->want_sha, 32) != 0) {
    char m[200];
    snprintf(m, sizeof m, "The artifact's SHA-256 is %s, not the one X-Content-SHA256 declared.", hex);
    fail(x, 400, "digest_mismatch", m);
    return;
  }
  memcpy(x->want_sha, got, 32); /* kept for finish() */
  char id[TB_UUID_STR_LEN + 1];
  tb_uuid_format(&x->app_id, id);
  snprintf(x->up_dir, sizeof x->up_dir, "%s/apps/%s/v%lld", x->node->store_dir, id, (long long)x->version);
  x->up_finishing = true;
  if (queue(x, finish_job) != 0) {
    x->up_finishing = false;
    fail(x, 507, "store_failed", "The artifact could not be made durable.");
  }
}

/* The file is in place and durable: record the version, then answer. */
static void finish(tb__node_x_t *x) {
  char hex[65];
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", x->want_sha[i]);
  char id[TB_UUID_STR_LEN + 1], final[1300], rel[200];
  tb_uuid_format(&x->app_id, id);
  snprintf(final, sizeof final, "%s/artifact", x->up_dir);
  snprintf(rel, sizeof rel, "apps/%s/v%lld/artifact", id, (long long)x->version);

  char digest[80], idem[100], eb_[256] = "";
  tb_errbuf_t eb = {eb_, sizeof eb_};
  snprintf(digest, sizeof digest, "sha256:%s", hex);
  snprintf(idem, sizeof idem, "version:%s:%lld", id, (long long)x->version);
  json_t *pl = json_pack("{s:s, s:I, s:s, s:I, s:s}", "app", id, "version", (json_int_t)x->version, "digest", digest,
                         "size", (json_int_t)x->received, "artifact", rel);
  int rc = pl ? tb__node_append(x->node, "version_uploaded", &x->app_id, x->actor, idem, pl, NULL, &eb) : TB_ENOMEM;
  json_decref(pl);
  if (rc != 0) {
    unlink(final); /* not acknowledged: leave nothing that looks like a version */
    tb__node_error(x, 500, "event_log", "The upload could not be recorded: %s.", eb_[0] ? eb_ : tb_strerror(rc));
    return;
  }
  tb__node_reply_json(x, 201, json_pack("{s:s, s:I, s:s, s:I, s:s}", "app", id, "version", (json_int_t)x->version,
                                        "digest", digest, "size", (json_int_t)x->received, "artifact", rel));
}

/*
 * X-Tabbify-Manifest: the resolved manifest (tb_manifest_to_json) as base64url, which
 * `tabbify push` sends with the artifact. Optional; when present it must be a JSON object
 * naming this app. It is kept, decoded, in x->body until the upload is stored.
 */
static int read_manifest_header(tb__node_x_t *x) {
  const char *h = tb_http_req_header(x->req, "X-Tabbify-Manifest");
  if (!h) return 0;
  size_t hl = strlen(h), n = 0;
  char *text = tb_malloc(hl + 1);
  json_t *m = NULL;
  const char *why = "is not base64url";
  if (text && tb_base64url_decode(h, hl, (uint8_t *)text, hl, &n) == 0) {
    text[n] = 0;
    why = "is not a JSON object";
    m = json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(m)) {
      const char *id = json_string_value(json_object_get(json_object_get(m, "app"), "id"));
      tb_uuid_t u;
      why = "does not name this app in app.id";
      if (id && tb_uuid_parse(id, strlen(id), &u) == 0 && memcmp(u.b, x->app_id.b, 16) == 0) why = NULL;
    }
  }
  int rc = -1;
  if (text && why) tb__node_error(x, 400, "invalid_manifest", "X-Tabbify-Manifest %s.", why);
  else if (!text || tb_buf_append(&x->body, text, n) != 0) tb__node_error(x, 503, "overloaded", "The node is out of memory.");
  else rc = 0;
  json_decref(m);
  tb_free(text);
  return rc;
}

void tb__node_put_version(tb__node_x_t *x) {
  int64_t v = 0;
  const char *s = x->params[1];
  bool ok = *s && strlen(s) < 10;
  for (const char *p = s; ok && *p; p++) ok = *p >= '0' && *p <= '9', v = v * 10 + (*p - '0');
  if (!ok || v < 1) {
    tb__node_error(x, 400, "invalid_version", "The version must be a whole number of 1 or more, not \"%s\".", s);
    return;
  }
  x->version = v;
  json_t *e;
  size_t i;
  json_array_foreach(json_object_get(x->app, "versions"), i, e) {
    if (json_integer_value(json_object_get(e, "version")) == v) {
      tb__node_error(x, 409, "version_exists", "Version %lld of this app exists; versions are immutable.", (long long)v);
      return;
    }
  }
  const char *h = tb_http_req_header(x->req, "X-Content-SHA256");
  if (h && strncmp(h, "sha256:", 7) == 0) h += 7;
  if (!h || strlen(h) != 64) {
    tb__node_error(x, 400, "missing_digest", "An upload needs the header X-Content-SHA256: <64 hex digits>.");
    return;
  }
  for (int k = 0; k < 32; k++) {
    int hi = hexval(h[2 * k]), lo = hexval(h[2 * k + 1]);
    if (hi < 0 || lo < 0) {
      tb__node_error(x, 400, "missing_digest", "X-Content-SHA256 must be 64 hex digits.");
      return;
    }
    x->want_sha[k] = (uint8_t)(hi << 4 | lo);
  }
  if (read_manifest_header(x) != 0) return;
  const tb_http_head_t *head = tb_http_req_head(x->req);
  if (head->content_length > 0 && (uint64_t)head->content_length > x->node->max_artifact) {
    tb__node_error(x, 413, "artifact_too_large", "An artifact may be at most %llu bytes.",
                   (unsigned long long)x->node->max_artifact);
    return;
  }
  /* A file without its version_uploaded event was never acknowledged: drop it. */
  char id[TB_UUID_STR_LEN + 1], final[1300];
  tb_uuid_format(&x->app_id, id);
  snprintf(final, sizeof final, "%s/apps/%s/v%lld/artifact", x->node->store_dir, id, (long long)v);
  unlink(final);

  snprintf(x->tmp_path, sizeof x->tmp_path, "%s/tmp/upload-XXXXXX", x->node->store_dir);
  x->fd = mkostemp(x->tmp_path, O_CLOEXEC);
  crypto_hash_sha256_init(&x->sha);
  /* At most one read's worth waits while a write is in flight; the bound is only a guard. */
  tb_buf_init(&x->up_pend, (size_t)64 << 20);
  tb_buf_init(&x->up_fly, (size_t)64 << 20);
  if (x->fd < 0) {
    if (x->fd < 0) x->tmp_path[0] = 0;
    tb__node_x_store_cleanup(x);
    tb__node_error(x, 507, "store_failed", "The store could not take the upload.");
    return;
  }
  tb_http_req_read_start(x->req, up_data, up_end, x);
}
