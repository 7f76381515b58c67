/*
 * applog.c — the app's log file: "<RFC 3339 UTC ms> <stream> <text>\n" lines.
 *
 * Worker threads write concurrently, and the supervisor points the runner's own
 * stdout/stderr at the same file, so every line is one write(2) on an O_APPEND fd: lines
 * never interleave and no lock is needed. The guest's stderr arrives as the guest wrote
 * it; it is split into lines here, and the unfinished last line of a request is kept in
 * a per-thread buffer (a worker serves one request at a time) until the request ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner_int.h"
#include "tb/fs.h"
#include "tb/clock.h"

#define LINE_MAX_BYTES 8192   /* longer lines are cut (and the cut marked) */
#define PARTIAL_MAX 4096      /* an unfinished stderr line longer than this is written as is */

static _Thread_local char partial[PARTIAL_MAX];
static _Thread_local size_t partial_len;


int tb__applog_open(tb__applog_t *l, const char *path, tb_errbuf_t *eb) {
  l->fd = -1;
  int rc = tb_mkdir_parents(path, 0750);
  if (rc != 0) return tb_errf(eb, rc, "cannot create the directories of the log file %s: %s", path, tb_strerror(rc));
  l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (l->fd < 0) {
    rc = -errno;
    return tb_errf(eb, rc, "cannot open the log file %s: %s", path, tb_strerror(rc));
  }
  return 0;
}

void tb__applog_close(tb__applog_t *l) {
  if (l->fd >= 0) close(l->fd);
  l->fd = -1;
}

void tb__applog_line(tb__applog_t *l, const char *stream, const char *text, size_t len) {
  char line[LINE_MAX_BYTES];
  char ts[TB_RFC3339_MAX];
  if (l == NULL || l->fd < 0) return;
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
  tb_clock_format_rfc3339(tb_clock_wall_ns(), ts);
  int n = snprintf(line, sizeof line, "%s %s ", ts, stream);
  if (n < 0) return;
  size_t pos = (size_t)n, room = sizeof line - 1 - pos; /* keep one byte for '\n' */
  bool cut = len > room;
  if (cut) len = room > 5 ? room - 5 : 0;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    line[pos++] = (c == '\n' || c == '\r') ? ' ' : c;
  }
  if (cut) {
    memcpy(line + pos, " ...", 4);
    pos += 4;
  }
  line[pos++] = '\n';
  ssize_t w;
  do w = write(l->fd, line, pos);
  while (w < 0 && errno == EINTR);
}

void tb__applog_printf(tb__applog_t *l, const char *stream, const char *fmt, ...) {
  char text[LINE_MAX_BYTES];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  tb__applog_line(l, stream, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

void tb__applog_flush_thread(tb__applog_t *l) {
  if (partial_len == 0) return;
  tb__applog_line(l, "stderr", partial, partial_len);
  partial_len = 0;
}

void tb__applog_wagi(void *arg, tb_wagi_log_kind_t kind, const char *data, size_t len) {
  tb__applog_t *l = arg;
  if (kind != TB_WAGI_LOG_STDERR) {
    tb__applog_line(l, "runtime", data, len);
    return;
  }
  while (len > 0) {
    const char *nl = memchr(data, '\n', len);
    size_t n = nl ? (size_t)(nl - data) : len;
    if (partial_len > 0 || !nl) {
      /* Join with the unfinished line; write when complete or when the buffer is full. */
      size_t take = n < PARTIAL_MAX - partial_len ? n : PARTIAL_MAX - partial_len;
      memcpy(partial + partial_len, data, take);
      partial_len += take;
      if (nl || partial_len == PARTIAL_MAX) {
        tb__applog_line(l, "stderr", partial, partial_len);
        partial_len = 0;
      }
      if (take < n) { /* the rest of an overlong line starts a new one */
        data += take;
        len -= take;
        continue;
      }
    } else {
      tb__applog_line(l, "stderr", data, n);
    }
    if (!nl) break;
    data += n + 1;
    len -= n + 1;
  }
}
