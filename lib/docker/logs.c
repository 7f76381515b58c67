/*
 * logs.c — a container's output, followed and demultiplexed (include/tb/docker.h).
 *
 * The transport hands the answer's bytes to the demultiplexer (demux.c) as libcurl
 * receives them; frames go straight to the caller's callback. A follow ends when the
 * daemon ends the answer (the container stopped), when the callback asks, or on
 * tb_docker_cancel.
 */
#include <inttypes.h>

#include "docker_int.h"

typedef struct logs_st {
  tb_docker_demux_t demux;
  tb_docker_frame_cb cb;
  void *ud;
} logs_st_t;

static int feed(void *ud, const uint8_t *p, size_t n, tb_errbuf_t *eb) {
  logs_st_t *s = ud;
  return tb_docker_demux_feed(&s->demux, p, n, s->cb, s->ud, eb);
}

int tb_docker_logs(tb_docker_t *d, const char *id, int64_t since, int flags, tb_docker_frame_cb cb, void *ud,
                   tb_errbuf_t *eb) {
  tb_buf_t path, what;
  logs_st_t st = {.cb = cb, .ud = ud};
  int rc;
  tb_docker_demux_init(&st.demux);
  tb_buf_init(&path, 8192);
  tb_buf_init(&what, 256);
  if ((rc = tb_buf_printf(&what, "send the logs of the container %.12s", id)) != 0 ||
      (rc = tb__docker_path(d, &path, "/containers/")) != 0 || (rc = tb__docker_escape(&path, id)) != 0 ||
      (rc = tb_buf_printf(&path, "/logs?stdout=1&stderr=1&follow=%d&timestamps=%d&since=%" PRId64,
                          flags & TB_DOCKER_LOGS_FOLLOW ? 1 : 0, flags & TB_DOCKER_LOGS_TIMESTAMPS ? 1 : 0,
                          since > 0 ? since : 0)) != 0) {
    rc = tb_errf(eb, rc, "the container id is too long");
    goto out;
  }
  tb__docker_req_t r = {.method = "GET", .path = tb_buf_cstr(&path), .what = tb_buf_cstr(&what), .sink = feed,
                        .sink_ud = &st, .timeout_s = flags & TB_DOCKER_LOGS_FOLLOW ? 0 : TB__DOCKER_TIMEOUT_S};
  if ((rc = tb__docker_do(d, &r, eb)) != 0) goto out;
  rc = tb_docker_demux_finish(&st.demux, eb);
out:
  tb_buf_deinit(&path);
  tb_buf_deinit(&what);
  return rc;
}
