/*
 * demux.c — the Docker multiplexed-stream demultiplexer (include/tb/docker.h).
 *
 * A pure state machine: it is fed whatever bytes the transport delivers and hands out
 * payload pieces tagged with their stream, never buffering payload, so the frames
 * that come out do not depend on how the input was split. The client (logs.c) feeds it
 * from libcurl's write callback; fuzz/docker_stream feeds it random splits.
 */
#include <string.h>

#include "tb/docker.h"

void tb_docker_demux_init(tb_docker_demux_t *m) { memset(m, 0, sizeof *m); }

static int bad_header(tb_docker_demux_t *m, tb_errbuf_t *eb) {
  m->err = TB_EPARSE;
  return tb_errf(eb, TB_EPARSE,
                 "byte %llu: not a Docker log stream frame header (stream %u, padding %02x %02x %02x; "
                 "expected stream 0, 1 or 2 and zero padding); was the container started with a TTY?",
                 (unsigned long long)(m->offset - 8), m->head[0], m->head[1], m->head[2], m->head[3]);
}

int tb_docker_demux_feed(tb_docker_demux_t *m, const uint8_t *p, size_t n, tb_docker_frame_cb cb, void *ud,
                         tb_errbuf_t *eb) {
  if (m->err) {
    return tb_errf(eb, m->err, "the Docker log stream was already malformed before byte %llu",
                   (unsigned long long)m->offset);
  }
  while (n > 0) {
    if (m->head_len < 8) { /* assembling a header */
      size_t take = 8u - m->head_len;
      if (take > n) take = n;
      memcpy(m->head + m->head_len, p, take);
      m->head_len = (uint8_t)(m->head_len + take);
      m->offset += take;
      p += take;
      n -= take;
      if (m->head_len < 8) break;
      if (m->head[0] > 2 || m->head[1] || m->head[2] || m->head[3]) return bad_header(m, eb);
      m->stream = m->head[0];
      m->left = (uint32_t)m->head[4] << 24 | (uint32_t)m->head[5] << 16 | (uint32_t)m->head[6] << 8 | m->head[7];
      if (m->left == 0) { /* an empty frame: one call, then the next header */
        m->head_len = 0;
        int rc = cb(ud, m->stream, p, 0, true);
        if (rc) return rc;
      }
      continue;
    }
    size_t take = m->left < n ? m->left : n;
    m->left -= (uint32_t)take;
    m->offset += take;
    bool end = m->left == 0;
    if (end) m->head_len = 0;
    int rc = cb(ud, m->stream, p, take, end);
    p += take;
    n -= take;
    if (rc) return rc;
  }
  return 0;
}

int tb_docker_demux_finish(const tb_docker_demux_t *m, tb_errbuf_t *eb) {
  if (m->err) return tb_errf(eb, m->err, "the Docker log stream was malformed");
  if (m->head_len == 0) return 0;
  if (m->head_len < 8) {
    return tb_errf(eb, TB_EPARSE, "byte %llu: the Docker log stream ended inside a frame header (%u of 8 bytes)",
                   (unsigned long long)m->offset, m->head_len);
  }
  return tb_errf(eb, TB_EPARSE, "byte %llu: the Docker log stream ended %lu bytes before the end of a frame",
                 (unsigned long long)m->offset, (unsigned long)m->left);
}
