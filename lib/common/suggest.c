/*
 * suggest.c — optimal string alignment distance for did-you-mean hints.
 *
 * Names in manifests and commands are short, so a fixed 65x65 table on the stack is
 * enough and avoids allocating; longer strings are never a plausible typo of a key.
 */
#include "tb/suggest.h"

#include <ctype.h>
#include <string.h>

#define MAXLEN 64

size_t tb_edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > MAXLEN || m > MAXLEN) return (size_t)-1;
  unsigned char d[MAXLEN + 1][MAXLEN + 1];
  for (size_t i = 0; i <= n; i++) d[i][0] = (unsigned char)i;
  for (size_t j = 0; j <= m; j++) d[0][j] = (unsigned char)j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      unsigned best = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1u < best) best = d[i - 1][j] + 1u;
      if (d[i][j - 1] + 1u < best) best = d[i][j - 1] + 1u;
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1u < best)
        best = d[i - 2][j - 2] + 1u;
      d[i][j] = (unsigned char)best;
    }
  }
  return d[n][m];
}

const char *tb_suggest(const char *word, const char *const *candidates, size_t n) {
  size_t len = strlen(word);
  size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
  const char *best = NULL;
  size_t best_d = limit + 1;
  for (size_t i = 0; i < n; i++) {
    size_t dist = tb_edit_distance(word, candidates[i]);
    if (dist < best_d) {
      best = candidates[i];
      best_d = dist;
    }
  }
  return best;
}
