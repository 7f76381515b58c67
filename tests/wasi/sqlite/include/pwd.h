/* pwd.h — shell.c looks up the home directory for ~/.sqliterc; a WASI guest has none. */
#ifndef TB_SQLITE_WASI_PWD_H
#define TB_SQLITE_WASI_PWD_H
#include <sys/types.h>
struct passwd {
  char *pw_name;
  char *pw_dir;
};
static inline struct passwd *getpwuid(uid_t uid) { (void)uid; return 0; }
#endif
