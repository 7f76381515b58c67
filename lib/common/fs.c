/*
 * fs.c — mkdir -p, the one copy (include/tb/fs.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "tb/err.h"
#include "tb/fs.h"

/* Makes every prefix of `dir` ending before a '/', then, when `whole`, `dir` itself. */
static int make(const char *path, mode_t mode, bool whole) {
  char dir[4096];
  size_t n = strlen(path);
  if (n >= sizeof dir) return TB_ENAMETOOLONG;
  memcpy(dir, path, n + 1);
  if (!whole) {
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
  }
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    int rc = mkdir(dir, mode) != 0 && errno != EEXIST ? -errno : 0;
    *p = '/';
    if (rc != 0) return rc;
  }
  return mkdir(dir, mode) != 0 && errno != EEXIST ? -errno : 0;
}

int tb_mkdir_p(const char *path, mode_t mode) { return make(path, mode, true); }
int tb_mkdir_parents(const char *path, mode_t mode) { return make(path, mode, false); }
