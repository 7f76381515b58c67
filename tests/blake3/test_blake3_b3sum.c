/*
 * test_blake3_b3sum.c — our BLAKE3 against b3sum, byte for byte.
 *
 * b3sum is the command line of the reference (Rust) implementation, so it is the oracle:
 * this program writes thousands of inputs to a temporary directory, asks b3sum for their
 * plain hash, their keyed hash, their derived key and a 131-byte extended output, and
 * compares each with ours. The inputs follow the official test vectors: byte i is i % 251,
 * with the official vectors' key and context string. Lengths cover every length up to
 * 4160 (four chunks and a block) and both sides of every block boundary up to 101 KiB,
 * which exercises every position within a chunk and every shape of the chunk tree up to
 * 101 chunks; a few larger ones add deeper trees. b3sum is run once per batch of files
 * rather than once per input, which keeps the test to a few seconds.
 *
 * On top of that it checks what b3sum cannot see: that feeding the same bytes in
 * irregular pieces changes nothing, that final() leaves the hasher usable, and that a
 * shorter output is a prefix of a longer one.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tb/blake3.h"

/* The official test vectors' key (32 bytes) and derive-key context. */
#define KEY "whats the Elvish word for friend"
#define CONTEXT "BLAKE3 2019-12-27 16:29:52 test vectors context"
#define XOF_LEN 131
#define LONG_XOF_LEN 1000
#define MAX_LEN (((size_t)1 << 20) + 1)
#define BATCH 1000

enum mode { PLAIN, KEYED, DERIVE, XOF, LONG_XOF, NMODES };
static const char *const MODE_NAME[NMODES] = {"hash", "keyed", "derive-key", "xof-131", "xof-1000"};
static const size_t MODE_OUT_LEN[NMODES] = {32, 32, 32, XOF_LEN, LONG_XOF_LEN};

static uint8_t *pattern; /* byte i = i % 251 */
static char dir[256];
static int failures;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void to_hex(const uint8_t *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static void init_mode(tb_blake3_t *h, enum mode m) {
  if (m == KEYED)
    tb_blake3_init_keyed(h, (const uint8_t *)KEY);
  else if (m == DERIVE)
    tb_blake3_init_derive_key(h, CONTEXT);
  else
    tb_blake3_init(h);
}

/* Our output for `len` pattern bytes in mode `m`, as hex. */
static void ours(enum mode m, size_t len, char *hex) {
  uint8_t out[LONG_XOF_LEN];
  tb_blake3_t h;
  init_mode(&h, m);
  tb_blake3_update(&h, pattern, len);
  tb_blake3_final(&h, out, MODE_OUT_LEN[m]);
  to_hex(out, MODE_OUT_LEN[m], hex);
}

/* Which lengths get every mode; the rest get the plain hash only. */
static bool all_modes(size_t len) {
  size_t r = len % 1024;
  return len <= 4160 || r <= 1 || r == 1023 || len > 102464 + 1;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static size_t build_lengths(size_t **out) {
  static const size_t extra[] = {131071, 131072, 131073,          262143,
                                 262144, 262145, (size_t)1 << 20, ((size_t)1 << 20) + 1};
  size_t cap = 4161 + 3 * 1602 + sizeof extra / sizeof extra[0], n = 0;
  size_t *v = malloc(cap * sizeof *v);
  if (v == NULL) die("malloc");
  for (size_t len = 0; len <= 4160; len++) v[n++] = len;
  for (size_t k = 64; k <= 102464; k += 64) {
    v[n++] = k - 1;
    v[n++] = k;
    v[n++] = k + 1;
  }
  for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) v[n++] = extra[i];
  qsort(v, n, sizeof *v, cmp_size);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || v[u - 1] != v[i]) v[u++] = v[i];
  *out = v;
  return u;
}

static void write_file(const char *name, const void *p, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) die(path);
}

static void remove_file(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
}

/*
 * Runs b3sum in mode `m` over the files named by the lengths `lens[0..n)` (at most BATCH)
 * and compares each line with our output. Returns how many matched.
 */
static size_t check_batch(enum mode m, const size_t *lens, size_t n) {
  static char cmd[64 + BATCH * 24 + 512];
  size_t hexlen = 2 * MODE_OUT_LEN[m];
  int o = snprintf(cmd, sizeof cmd, "cd '%s' && b3sum --no-names", dir);
  if (m == KEYED) o += snprintf(cmd + o, sizeof cmd - o, " --keyed");
  if (m == DERIVE) o += snprintf(cmd + o, sizeof cmd - o, " --derive-key '%s'", CONTEXT);
  if (m == XOF || m == LONG_XOF)
    o += snprintf(cmd + o, sizeof cmd - o, " --length %zu", MODE_OUT_LEN[m]);
  o += snprintf(cmd + o, sizeof cmd - o, " --");
  for (size_t i = 0; i < n; i++) o += snprintf(cmd + o, sizeof cmd - o, " %zu", lens[i]);
  if (m == KEYED) o += snprintf(cmd + o, sizeof cmd - o, " < key");

  FILE *p = popen(cmd, "r");
  if (p == NULL) die("popen b3sum");
  char line[2 * LONG_XOF_LEN + 16], mine[2 * LONG_XOF_LEN + 1];
  size_t matched = 0, i = 0;
  for (; i < n && fgets(line, sizeof line, p) != NULL; i++) {
    line[strcspn(line, "\n")] = '\0';
    ours(m, lens[i], mine);
    if (strlen(line) == hexlen && strcmp(line, mine) == 0) {
      matched++;
    } else if (failures++ < 20) {
      printf("MISMATCH %s, input length %zu\n  b3sum: %s\n  ours:  %s\n", MODE_NAME[m], lens[i],
             line, mine);
    }
  }
  int status = pclose(p);
  if (i != n || status != 0) {
    printf("b3sum %s: %zu lines for %zu inputs, exit status %d\n", MODE_NAME[m], i, n, status);
    failures++;
  }
  return matched;
}

static size_t check_mode(enum mode m, const size_t *lens, size_t n) {
  size_t matched = 0;
  for (size_t i = 0; i < n; i += BATCH)
    matched += check_batch(m, lens + i, n - i < BATCH ? n - i : BATCH);
  return matched;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Piece sizes that sit on and around every boundary, plus arbitrary ones. */
static size_t piece_size(void) {
  static const size_t sizes[] = {0,   1,    2,    3,    31,   63,   64,   65,   127,  128,
                                 129, 1000, 1023, 1024, 1025, 2047, 2048, 2049, 4096, 5000};
  uint64_t r = next_rand();
  if (r % 4 == 0) return (size_t)(r >> 8) % 3000;
  return sizes[(r >> 8) % (sizeof sizes / sizeof sizes[0])];
}

/* The same input fed in irregular pieces, with final() called in between, must give the
 * same output as one update. Returns true when it does. */
static bool check_pieces(enum mode m, size_t len) {
  size_t out_len = MODE_OUT_LEN[m];
  uint8_t whole[LONG_XOF_LEN], split[LONG_XOF_LEN], scratch[64];
  tb_blake3_t h;
  init_mode(&h, m);
  tb_blake3_update(&h, pattern, len);
  tb_blake3_final(&h, whole, out_len);

  init_mode(&h, m);
  for (size_t off = 0; off < len;) {
    size_t n = piece_size();
    if (n > len - off) n = len - off;
    tb_blake3_update(&h, pattern + off, n);
    off += n;
    if (next_rand() % 8 == 0) tb_blake3_final(&h, scratch, 1 + next_rand() % 64);
  }
  tb_blake3_update(&h, NULL, 0);
  tb_blake3_final(&h, split, out_len);
  bool ok = memcmp(whole, split, out_len) == 0;
  /* final() again, and any shorter output, must repeat the same prefix. */
  size_t shorter = 1 + next_rand() % out_len;
  tb_blake3_final(&h, split, shorter);
  ok = ok && memcmp(whole, split, shorter) == 0;
  if (!ok && failures++ < 20)
    printf("MISMATCH %s in irregular pieces, input length %zu\n", MODE_NAME[m], len);
  return ok;
}

static void check_known_answers(void) {
  /* From the official test_vectors.json (input length 0 and 1), so that this program
   * means something even if b3sum and we agreed on a wrong answer. */
  static const struct {
    size_t len;
    const char *hash;
  } kat[] = {
      {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
      {1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
  };
  for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
    uint8_t out[32];
    char hex[65];
    tb_blake3_hash(pattern, kat[i].len, out);
    to_hex(out, 32, hex);
    if (strcmp(hex, kat[i].hash) != 0) {
      failures++;
      printf("MISMATCH known answer, length %zu\n  expected: %s\n  ours:     %s\n", kat[i].len,
             kat[i].hash, hex);
    }
  }
}

int main(void) {
  FILE *v = popen("b3sum --version 2>/dev/null", "r");
  char version[128] = "";
  if (v == NULL || fgets(version, sizeof version, v) == NULL || pclose(v) != 0 ||
      strncmp(version, "b3sum", 5) != 0) {
    printf("b3sum is missing: it is the oracle for this test (scripts/setup installs it)\n");
    return 1;
  }
  version[strcspn(version, "\n")] = '\0';

  pattern = malloc(MAX_LEN);
  if (pattern == NULL) die("malloc");
  for (size_t i = 0; i < MAX_LEN; i++) pattern[i] = (uint8_t)(i % 251);
  check_known_answers();

  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/tb-blake3-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) die("mkdtemp");

  size_t *lens, n = build_lengths(&lens);
  size_t *sub = malloc(n * sizeof *sub), nsub = 0;
  if (sub == NULL) die("malloc");
  for (size_t i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "%zu", lens[i]);
    write_file(name, pattern, lens[i]);
    if (all_modes(lens[i])) sub[nsub++] = lens[i];
  }
  write_file("key", KEY, 32);
  static const size_t long_lens[] = {0, 1, 1023, 1024, 1025, 2049, 102401, ((size_t)1 << 20) + 1};
  size_t nlong = sizeof long_lens / sizeof long_lens[0];

  size_t matched[NMODES] = {0};
  matched[PLAIN] = check_mode(PLAIN, lens, n);
  matched[KEYED] = check_mode(KEYED, sub, nsub);
  matched[DERIVE] = check_mode(DERIVE, sub, nsub);
  matched[XOF] = check_mode(XOF, sub, nsub);
  matched[LONG_XOF] = check_mode(LONG_XOF, long_lens, nlong);

  size_t pieces = 0, pieces_ok = 0;
  for (size_t i = 0; i < nsub; i++)
    for (enum mode m = PLAIN; m < NMODES; m++)
      if (m != LONG_XOF || sub[i] % 997 == 0) {
        pieces++;
        pieces_ok += check_pieces(m, sub[i]);
      }

  for (size_t i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "%zu", lens[i]);
    remove_file(name);
  }
  remove_file("key");
  rmdir(dir);

  size_t total = 0, checks = 0;
  for (enum mode m = PLAIN; m < NMODES; m++) total += matched[m];
  checks = n + 3 * nsub + nlong;
  printf(
      "blake3: %zu inputs (lengths 0..%zu) match %s: %zu/%zu hash, %zu/%zu keyed, "
      "%zu/%zu derive-key, %zu/%zu xof-131, %zu/%zu xof-1000; "
      "%zu/%zu irregular-update checks agree\n",
      n, lens[n - 1], version, matched[PLAIN], n, matched[KEYED], nsub, matched[DERIVE], nsub,
      matched[XOF], nsub, matched[LONG_XOF], nlong, pieces_ok, pieces);
  free(sub);
  free(lens);
  free(pattern);
  if (failures || total != checks || pieces_ok != pieces) {
    printf("blake3: FAILED (%d problems)\n", failures);
    return 1;
  }
  return 0;
}
