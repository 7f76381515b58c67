/*
 * test_demux.c — the Docker log stream demultiplexer on hand-made byte sequences.
 *
 * Each sequence is fed whole, byte by byte, and split in two at every offset (and in
 * three at every pair of offsets for the short ones); every way must give the same
 * frames, rendered as "1:hello\n|2:err\n|" (stream, payload, frame end).
 */
#include "test.h"

#include <stdio.h>
#include <string.h>

#include "tb/docker.h"

typedef struct out {
  char text[8192];
  size_t len;
  bool in_frame;
  int stop_after; /* frames; 0: never stop */
  int frames;
} out_t;

static void put(out_t *o, const void *p, size_t n) {
  assert_true(o->len + n < sizeof o->text);
  memcpy(o->text + o->len, p, n);
  o->len += n;
  o->text[o->len] = '\0';
}

static int on_frame(void *ud, int stream, const uint8_t *p, size_t n, bool end) {
  out_t *o = ud;
  if (!o->in_frame) {
    char h[4] = {(char)('0' + stream), ':'};
    put(o, h, 2);
  }
  put(o, p, n);
  o->in_frame = !end;
  if (end) {
    put(o, "|", 1);
    o->frames++;
    if (o->stop_after && o->frames == o->stop_after) return 42;
  }
  return 0;
}

/* Feeds `in` in pieces ending at cuts[0..ncuts) then the rest; returns feed's or finish's code. */
static int feed_cuts(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts, out_t *o, char *msg, size_t cap) {
  tb_docker_demux_t m;
  tb_errbuf_t eb = {msg, cap};
  tb_docker_demux_init(&m);
  memset(o, 0, sizeof *o);
  size_t at = 0;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : n;
    int rc = tb_docker_demux_feed(&m, in + at, end - at, on_frame, o, &eb);
    if (rc) return rc;
    at = end;
  }
  return tb_docker_demux_finish(&m, &eb);
}

/* Checks that every split of `in` gives `want` and `want_rc`. */
static void check_all_splits(const uint8_t *in, size_t n, const char *want, int want_rc) {
  out_t o;
  char msg[256];
  int rc = feed_cuts(in, n, NULL, 0, &o, msg, sizeof msg);
  if (rc != want_rc || strcmp(o.text, want) != 0) {
    print_error("whole: expected rc %d and \"%s\"\n       got      rc %d and \"%s\"\n", want_rc, want, rc, o.text);
    fail();
  }
  for (size_t a = 0; a <= n; a++) {
    size_t cuts[2] = {a, 0};
    rc = feed_cuts(in, n, cuts, 1, &o, msg, sizeof msg);
    if (rc != want_rc || strcmp(o.text, want) != 0) {
      print_error("split at %zu: expected rc %d and \"%s\"\n              got      rc %d and \"%s\"\n", a, want_rc,
                  want, rc, o.text);
      fail();
    }
    if (n > 64) continue;
    for (size_t b = a; b <= n; b++) {
      cuts[1] = b;
      rc = feed_cuts(in, n, cuts, 2, &o, msg, sizeof msg);
      if (rc != want_rc || strcmp(o.text, want) != 0) {
        print_error("split at %zu,%zu: expected rc %d and \"%s\", got rc %d and \"%s\"\n", a, b, want_rc, want, rc,
                    o.text);
        fail();
      }
    }
  }
  /* byte by byte */
  size_t cuts[4096];
  assert_true(n <= 4096);
  for (size_t i = 0; i < n; i++) cuts[i] = i;
  rc = feed_cuts(in, n, cuts, n, &o, msg, sizeof msg);
  assert_int_equal(rc, want_rc);
  assert_string_equal(o.text, want);
}

#define B(s) (const uint8_t *)(s), sizeof(s) - 1

static void test_frames(void **state) {
  check_all_splits(B("\x01\x00\x00\x00\x00\x00\x00\x06hello\n"
                     "\x02\x00\x00\x00\x00\x00\x00\x04" "err\n"
                     "\x01\x00\x00\x00\x00\x00\x00\x03" "bye"),
                   "1:hello\n|2:err\n|1:bye|", 0);
}

static void test_empty_and_stdin_frames(void **state) {
  check_all_splits(B("\x01\x00\x00\x00\x00\x00\x00\x00"
                     "\x00\x00\x00\x00\x00\x00\x00\x02in"
                     "\x02\x00\x00\x00\x00\x00\x00\x00"),
                   "1:|0:in|2:|", 0);
  check_all_splits(B(""), "", 0);
}

static void test_payload_bytes_are_data(void **state) {
  /* Payload that looks like headers and holds NULs is just payload. */
  check_all_splits(B("\x02\x00\x00\x00\x00\x00\x00\x09\x01\x00\x00\x00\x00\x00\x00\x05Z"
                     "\x01\x00\x00\x00\x00\x00\x00\x01\x00"),
                   "2:\x01", 0); /* the rendering stops at the NUL; lengths checked below */
  out_t o;
  char msg[256];
  static const uint8_t in[] = "\x02\x00\x00\x00\x00\x00\x00\x09\x01\x00\x00\x00\x00\x00\x00\x05Z";
  assert_int_equal(feed_cuts(in, sizeof in - 1, NULL, 0, &o, msg, sizeof msg), 0);
  assert_int_equal(o.len, 2 + 9 + 1);
  assert_memory_equal(o.text + 2, in + 8, 9);
}

static void test_large_frame(void **state) {
  static uint8_t in[8 + 70000];
  in[0] = 1;
  in[5] = (70000 >> 16) & 0xff;
  in[6] = (70000 >> 8) & 0xff;
  in[7] = 70000 & 0xff;
  for (size_t i = 0; i < 70000; i++) in[8 + i] = (uint8_t)('a' + i % 26);
  tb_docker_demux_t m;
  tb_docker_demux_init(&m);
  out_t *o = calloc(1, sizeof *o);
  /* Fed in 1000-byte pieces: 71 calls, the last one ends the frame, and nothing is held back. */
  size_t total = 0;
  for (size_t at = 0; at < sizeof in; at += 1000) {
    size_t n = sizeof in - at < 1000 ? sizeof in - at : 1000;
    o->len = 0;
    assert_int_equal(tb_docker_demux_feed(&m, in + at, n, on_frame, o, NULL), 0);
    total += o->len - (at == 0 ? 2 : 0) - (at + n == sizeof in ? 1 : 0);
  }
  assert_int_equal(total, 70000);
  assert_int_equal(o->frames, 1);
  assert_int_equal(tb_docker_demux_finish(&m, NULL), 0);
  free(o);
  /* The biggest length a header can say: 4 GiB - 1, not a problem since nothing is buffered. */
  static const uint8_t huge[] = "\x01\x00\x00\x00\xff\xff\xff\xff" "abc";
  tb_docker_demux_init(&m);
  out_t o2 = {0};
  assert_int_equal(tb_docker_demux_feed(&m, huge, sizeof huge - 1, on_frame, &o2, NULL), 0);
  assert_string_equal(o2.text, "1:abc");
  assert_int_equal(m.left, 0xffffffffu - 3);
}

static void test_bad_headers(void **state) {
  char msg[256];
  out_t o;
  /* A stream byte of 3 in the second header, at byte 10. */
  check_all_splits(B("\x01\x00\x00\x00\x00\x00\x00\x02hi\x03\x00\x00\x00\x00\x00\x00\x01x"), "1:hi|", TB_EPARSE);
  static const uint8_t bad[] = "\x01\x00\x00\x00\x00\x00\x00\x02hi\x03\x00\x00\x00\x00\x00\x00\x01x";
  assert_int_equal(feed_cuts(bad, sizeof bad - 1, NULL, 0, &o, msg, sizeof msg), TB_EPARSE);
  assert_non_null(strstr(msg, "byte 10:"));
  /* Non-zero padding. */
  check_all_splits(B("\x02\x00\x01\x00\x00\x00\x00\x01x"), "", TB_EPARSE);
  /* What a TTY container sends: plain text. */
  static const uint8_t tty[] = "hello from a tty\r\n";
  assert_int_equal(feed_cuts(tty, sizeof tty - 1, NULL, 0, &o, msg, sizeof msg), TB_EPARSE);
  assert_non_null(strstr(msg, "byte 0:"));
  assert_non_null(strstr(msg, "TTY"));
  /* Sticky: after an error every feed fails. */
  tb_docker_demux_t m;
  tb_docker_demux_init(&m);
  assert_int_equal(tb_docker_demux_feed(&m, tty, 8, on_frame, &o, NULL), TB_EPARSE);
  assert_int_equal(tb_docker_demux_feed(&m, (const uint8_t *)"\x01\0\0\0\0\0\0\0", 8, on_frame, &o, NULL), TB_EPARSE);
}

static void test_truncated(void **state) {
  char msg[256];
  out_t o;
  check_all_splits(B("\x01\x00\x00\x00\x00\x00\x00\x02hi\x02\x00\x00"), "1:hi|", TB_EPARSE);
  static const uint8_t half_head[] = "\x01\x00\x00\x00\x00\x00\x00\x02hi\x02\x00\x00";
  assert_int_equal(feed_cuts(half_head, sizeof half_head - 1, NULL, 0, &o, msg, sizeof msg), TB_EPARSE);
  assert_non_null(strstr(msg, "inside a frame header (3 of 8 bytes)"));
  static const uint8_t short_payload[] = "\x01\x00\x00\x00\x00\x00\x00\x05hi";
  check_all_splits(B("\x01\x00\x00\x00\x00\x00\x00\x05hi"), "1:hi", TB_EPARSE);
  assert_int_equal(feed_cuts(short_payload, sizeof short_payload - 1, NULL, 0, &o, msg, sizeof msg), TB_EPARSE);
  assert_non_null(strstr(msg, "3 bytes before the end of a frame"));
}

static void test_callback_stops(void **state) {
  static const uint8_t in[] = "\x01\x00\x00\x00\x00\x00\x00\x01" "a"
                              "\x02\x00\x00\x00\x00\x00\x00\x01" "b";
  tb_docker_demux_t m;
  tb_docker_demux_init(&m);
  out_t o = {.stop_after = 1};
  assert_int_equal(tb_docker_demux_feed(&m, in, sizeof in - 1, on_frame, &o, NULL), 42);
  assert_string_equal(o.text, "1:a|");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frames),       cmocka_unit_test(test_empty_and_stdin_frames),
      cmocka_unit_test(test_payload_bytes_are_data), cmocka_unit_test(test_large_frame),
      cmocka_unit_test(test_bad_headers),  cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_callback_stops),
  };
  return TB_RUN(tests);
}
