/*
 * compat.c — the few functions SQLite's shell calls that a WASI guest cannot have:
 * no processes (system, popen), no file modes (chmod). Each fails or does nothing, as
 * the shell already handles. SQLITE_EXTRA_INIT makes "unix-none" the default VFS.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/types.h>

#include "sqlite3.h"

int chmod(const char *path, mode_t mode);
FILE *popen(const char *cmd, const char *mode);
int pclose(FILE *f);
int system(const char *cmd);
int tb_sqlite_wasi_init(const char *unused);

int chmod(const char *path, mode_t mode) { (void)path; (void)mode; return 0; }
FILE *popen(const char *cmd, const char *mode) { (void)cmd; (void)mode; errno = ENOSYS; return NULL; }
int pclose(FILE *f) { (void)f; errno = ENOSYS; return -1; }
int system(const char *cmd) { (void)cmd; errno = ENOSYS; return -1; }

int tb_sqlite_wasi_init(const char *unused) {
  (void)unused;
  sqlite3_vfs *vfs = sqlite3_vfs_find("unix-none");
  return vfs ? sqlite3_vfs_register(vfs, 1) : SQLITE_ERROR;
}
