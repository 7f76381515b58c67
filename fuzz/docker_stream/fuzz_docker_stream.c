/*
 * fuzz_docker_stream.c — libFuzzer target over the Docker log stream demultiplexer.
 *
 * The first byte picks how the rest is split into feeds (fixed chunk sizes, or sizes
 * taken from the data itself). The same bytes are fed once whole and once split; both
 * runs must report the same frames (stream, payload, boundaries — folded into a hash),
 * the same result and the same end state. Payload pieces must lie inside the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tb/docker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rec {
  uint64_t hash;
  uint64_t bytes, frames;
  const uint8_t *lo, *hi; /* the input, to check pieces point into it */
  bool in_frame;
} rec_t;

static void mix(rec_t *r, uint8_t b) { r->hash = (r->hash ^ b) * 0x100000001b3ull; }

static int on_frame(void *ud, int stream, const uint8_t *p, size_t n, bool end) {
  rec_t *r = ud;
  if (stream < 0 || stream > 2) abort();
  if (n > 0 && (p < r->lo || p + n > r->hi)) abort();
  if (!r->in_frame) mix(r, (uint8_t)(0x10 + stream)); /* a frame starts */
  r->in_frame = !end;
  for (size_t i = 0; i < n; i++) mix(r, p[i]);
  r->bytes += n;
  if (end) {
    mix(r, 0xEE);
    r->frames++;
  }
  return 0;
}

static int run(const uint8_t *p, size_t n, int mode, rec_t *r, int *fin) {
  tb_docker_demux_t m;
  char msg[256];
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_docker_demux_init(&m);
  memset(r, 0, sizeof *r);
  r->hash = 0xcbf29ce484222325ull;
  r->lo = p;
  r->hi = p + n;
  int rc = 0;
  size_t off = 0, k = 0;
  while (off < n) {
    size_t chunk = n - off;
    if (mode == 1) chunk = 1;
    else if (mode == 2) chunk = 7;
    else if (mode >= 3) chunk = 1 + (p[(off + k++) % n] % (size_t)(mode * 3)); /* data-driven sizes */
    if (chunk > n - off) chunk = n - off;
    rc = tb_docker_demux_feed(&m, p + off, chunk, on_frame, r, &eb);
    if (rc) break;
    off += chunk;
  }
  *fin = rc ? rc : tb_docker_demux_finish(&m, &eb);
  if (rc && (msg[0] == '\0' || rc != TB_EPARSE)) abort(); /* our callback never stops it */
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int mode = data[0] % 8;
  data++;
  size--;
  rec_t whole, split;
  int fin_whole, fin_split;
  int rc_whole = run(data, size, 0, &whole, &fin_whole);
  int rc_split = run(data, size, mode, &split, &fin_split);
  if (rc_whole != rc_split || fin_whole != fin_split) abort();
  if (rc_whole == 0 && (whole.hash != split.hash || whole.bytes != split.bytes || whole.frames != split.frames)) abort();
  /* An error stops at the same header whatever the split: the frames before it agree. */
  if (rc_whole != 0 && (whole.frames != split.frames)) abort();
  return 0;
}
