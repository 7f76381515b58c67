/*
 * compat.h — what SQLite 3.40's os_unix.c and shell.c expect of a POSIX libc and
 * wasi-libc (2022) does not declare. Force-included (-include) in both translation
 * units; the definitions that must be real functions are in compat.c.
 *
 * WASI has no advisory locks, owners or modes, so locking constants exist only for the
 * code to compile: compat.c makes the "unix-none" VFS (no locking) the default, which is
 * right for one process owning its database file.
 */
#ifndef TB_SQLITE_WASI_COMPAT_H
#define TB_SQLITE_WASI_COMPAT_H
#include <fcntl.h>
#include <sys/types.h>

#ifndef F_RDLCK
#define F_RDLCK 0
#define F_WRLCK 1
#define F_UNLCK 2
#endif
#ifndef F_GETLK
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#endif

static inline int fchmod(int fd, mode_t mode) { (void)fd; (void)mode; return 0; }
static inline int fchown(int fd, uid_t uid, gid_t gid) { (void)fd; (void)uid; (void)gid; return 0; }
static inline uid_t geteuid(void) { return 0; }
static inline uid_t getuid(void) { return 0; }
#endif
