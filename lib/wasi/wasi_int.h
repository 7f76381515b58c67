/*
 * wasi_int.h — what the files of lib/wasi share: WASI's numbers (from the witx in
 * shared/specs/wasi-preview1), the configuration and context structures, the guest's
 * descriptor table, guest-memory helpers and the sandboxed path resolver.
 *
 * Every WASI function is written as `uint32_t impl(tb__wasi_call_t *c, const uint64_t *a)`
 * returning a WASI errno; link.c wraps each into an engine host function. An impl that
 * ends the guest (proc_exit, proc_raise) returns TB__WASI_TRAP after arranging the trap.
 */
#ifndef TB_WASI_INT_H
#define TB_WASI_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tb/wasi.h"

/* ---- WASI's numbers ---- */

/* X(name, wasi value, host errno). The host errno column drives the mapping. */
#define TB__WASI_ERRNO_MAP(X)                                                                       \
  X(2BIG, 1, E2BIG) X(ACCES, 2, EACCES) X(ADDRINUSE, 3, EADDRINUSE) X(ADDRNOTAVAIL, 4, EADDRNOTAVAIL) \
  X(AFNOSUPPORT, 5, EAFNOSUPPORT) X(AGAIN, 6, EAGAIN) X(ALREADY, 7, EALREADY) X(BADF, 8, EBADF)       \
  X(BADMSG, 9, EBADMSG) X(BUSY, 10, EBUSY) X(CANCELED, 11, ECANCELED) X(CHILD, 12, ECHILD)           \
  X(CONNABORTED, 13, ECONNABORTED) X(CONNREFUSED, 14, ECONNREFUSED) X(CONNRESET, 15, ECONNRESET)     \
  X(DEADLK, 16, EDEADLK) X(DESTADDRREQ, 17, EDESTADDRREQ) X(DOM, 18, EDOM) X(DQUOT, 19, EDQUOT)      \
  X(EXIST, 20, EEXIST) X(FAULT, 21, EFAULT) X(FBIG, 22, EFBIG) X(HOSTUNREACH, 23, EHOSTUNREACH)      \
  X(IDRM, 24, EIDRM) X(ILSEQ, 25, EILSEQ) X(INPROGRESS, 26, EINPROGRESS) X(INTR, 27, EINTR)          \
  X(INVAL, 28, EINVAL) X(IO, 29, EIO) X(ISCONN, 30, EISCONN) X(ISDIR, 31, EISDIR) X(LOOP, 32, ELOOP) \
  X(MFILE, 33, EMFILE) X(MLINK, 34, EMLINK) X(MSGSIZE, 35, EMSGSIZE) X(MULTIHOP, 36, EMULTIHOP)      \
  X(NAMETOOLONG, 37, ENAMETOOLONG) X(NETDOWN, 38, ENETDOWN) X(NETRESET, 39, ENETRESET)               \
  X(NETUNREACH, 40, ENETUNREACH) X(NFILE, 41, ENFILE) X(NOBUFS, 42, ENOBUFS) X(NODEV, 43, ENODEV)    \
  X(NOENT, 44, ENOENT) X(NOEXEC, 45, ENOEXEC) X(NOLCK, 46, ENOLCK) X(NOLINK, 47, ENOLINK)            \
  X(NOMEM, 48, ENOMEM) X(NOMSG, 49, ENOMSG) X(NOPROTOOPT, 50, ENOPROTOOPT) X(NOSPC, 51, ENOSPC)      \
  X(NOSYS, 52, ENOSYS) X(NOTCONN, 53, ENOTCONN) X(NOTDIR, 54, ENOTDIR) X(NOTEMPTY, 55, ENOTEMPTY)    \
  X(NOTRECOVERABLE, 56, ENOTRECOVERABLE) X(NOTSOCK, 57, ENOTSOCK) X(NOTSUP, 58, EOPNOTSUPP)          \
  X(NOTTY, 59, ENOTTY) X(NXIO, 60, ENXIO) X(OVERFLOW, 61, EOVERFLOW) X(OWNERDEAD, 62, EOWNERDEAD)    \
  X(PERM, 63, EPERM) X(PIPE, 64, EPIPE) X(PROTO, 65, EPROTO) X(PROTONOSUPPORT, 66, EPROTONOSUPPORT)  \
  X(PROTOTYPE, 67, EPROTOTYPE) X(RANGE, 68, ERANGE) X(ROFS, 69, EROFS) X(SPIPE, 70, ESPIPE)          \
  X(SRCH, 71, ESRCH) X(STALE, 72, ESTALE) X(TIMEDOUT, 73, ETIMEDOUT) X(TXTBSY, 74, ETXTBSY)          \
  X(XDEV, 75, EXDEV)

enum {
  W_ESUCCESS = 0,
#define TB__WASI_ERRNO_ENUM_(name, value, host) W_E##name = (value),
  TB__WASI_ERRNO_MAP(TB__WASI_ERRNO_ENUM_)
#undef TB__WASI_ERRNO_ENUM_
  W_ENOTCAPABLE = 76,
};

/* Returned by an impl that ended the guest; link.c passes it to the engine as is. */
#define TB__WASI_TRAP 0xffffffffu

/* Rights (witx $rights), one bit each in declaration order. */
#define W_RIGHT(n) ((uint64_t)1 << (n))
#define R_FD_DATASYNC W_RIGHT(0)
#define R_FD_READ W_RIGHT(1)
#define R_FD_SEEK W_RIGHT(2)
#define R_FD_FDSTAT_SET_FLAGS W_RIGHT(3)
#define R_FD_SYNC W_RIGHT(4)
#define R_FD_TELL W_RIGHT(5)
#define R_FD_WRITE W_RIGHT(6)
#define R_FD_ADVISE W_RIGHT(7)
#define R_FD_ALLOCATE W_RIGHT(8)
#define R_PATH_CREATE_DIRECTORY W_RIGHT(9)
#define R_PATH_CREATE_FILE W_RIGHT(10)
#define R_PATH_LINK_SOURCE W_RIGHT(11)
#define R_PATH_LINK_TARGET W_RIGHT(12)
#define R_PATH_OPEN W_RIGHT(13)
#define R_FD_READDIR W_RIGHT(14)
#define R_PATH_READLINK W_RIGHT(15)
#define R_PATH_RENAME_SOURCE W_RIGHT(16)
#define R_PATH_RENAME_TARGET W_RIGHT(17)
#define R_PATH_FILESTAT_GET W_RIGHT(18)
#define R_PATH_FILESTAT_SET_SIZE W_RIGHT(19)
#define R_PATH_FILESTAT_SET_TIMES W_RIGHT(20)
#define R_FD_FILESTAT_GET W_RIGHT(21)
#define R_FD_FILESTAT_SET_SIZE W_RIGHT(22)
#define R_FD_FILESTAT_SET_TIMES W_RIGHT(23)
#define R_PATH_SYMLINK W_RIGHT(24)
#define R_PATH_REMOVE_DIRECTORY W_RIGHT(25)
#define R_PATH_UNLINK_FILE W_RIGHT(26)
#define R_POLL_FD_READWRITE W_RIGHT(27)
#define R_SOCK_SHUTDOWN W_RIGHT(28)
#define R_SOCK_ACCEPT W_RIGHT(29)
#define R_ALL (W_RIGHT(30) - 1)

/* What each kind of descriptor can ever hold. */
#define R_FILE_ALL                                                                                    \
  (R_FD_DATASYNC | R_FD_READ | R_FD_SEEK | R_FD_FDSTAT_SET_FLAGS | R_FD_SYNC | R_FD_TELL | R_FD_WRITE | \
   R_FD_ADVISE | R_FD_ALLOCATE | R_FD_FILESTAT_GET | R_FD_FILESTAT_SET_SIZE | R_FD_FILESTAT_SET_TIMES |  \
   R_POLL_FD_READWRITE)
#define R_DIR_ALL                                                                                     \
  (R_FD_FDSTAT_SET_FLAGS | R_FD_SYNC | R_FD_DATASYNC | R_PATH_CREATE_DIRECTORY | R_PATH_CREATE_FILE |  \
   R_PATH_LINK_SOURCE | R_PATH_LINK_TARGET | R_PATH_OPEN | R_FD_READDIR | R_PATH_READLINK |           \
   R_PATH_RENAME_SOURCE | R_PATH_RENAME_TARGET | R_PATH_FILESTAT_GET | R_PATH_FILESTAT_SET_SIZE |      \
   R_PATH_FILESTAT_SET_TIMES | R_FD_FILESTAT_GET | R_FD_FILESTAT_SET_TIMES | R_PATH_SYMLINK |         \
   R_PATH_REMOVE_DIRECTORY | R_PATH_UNLINK_FILE | R_POLL_FD_READWRITE)
/* The rights that change something; a read-only grant never carries them. */
#define R_MUTATING                                                                                    \
  (R_FD_WRITE | R_FD_ALLOCATE | R_FD_FILESTAT_SET_SIZE | R_FD_FILESTAT_SET_TIMES |                    \
   R_PATH_CREATE_DIRECTORY | R_PATH_CREATE_FILE | R_PATH_LINK_SOURCE | R_PATH_LINK_TARGET |           \
   R_PATH_RENAME_SOURCE | R_PATH_RENAME_TARGET | R_PATH_FILESTAT_SET_SIZE | R_PATH_FILESTAT_SET_TIMES | \
   R_PATH_SYMLINK | R_PATH_REMOVE_DIRECTORY | R_PATH_UNLINK_FILE)
#define R_SOCK_CONN                                                                                   \
  (R_FD_READ | R_FD_WRITE | R_FD_FDSTAT_SET_FLAGS | R_FD_FILESTAT_GET | R_POLL_FD_READWRITE |        \
   R_SOCK_SHUTDOWN)
#define R_SOCK_LISTEN (R_SOCK_ACCEPT | R_FD_FDSTAT_SET_FLAGS | R_FD_FILESTAT_GET | R_POLL_FD_READWRITE)

enum {
  W_FT_UNKNOWN = 0,
  W_FT_BLOCK_DEVICE,
  W_FT_CHARACTER_DEVICE,
  W_FT_DIRECTORY,
  W_FT_REGULAR_FILE,
  W_FT_SOCKET_DGRAM,
  W_FT_SOCKET_STREAM,
  W_FT_SYMBOLIC_LINK,
};

enum { W_FDFLAG_APPEND = 1, W_FDFLAG_DSYNC = 2, W_FDFLAG_NONBLOCK = 4, W_FDFLAG_RSYNC = 8, W_FDFLAG_SYNC = 16 };
enum { W_O_CREAT = 1, W_O_DIRECTORY = 2, W_O_EXCL = 4, W_O_TRUNC = 8 };
enum { W_LOOKUP_SYMLINK_FOLLOW = 1 };
enum { W_FST_ATIM = 1, W_FST_ATIM_NOW = 2, W_FST_MTIM = 4, W_FST_MTIM_NOW = 8 };
enum { W_CLOCK_REALTIME = 0, W_CLOCK_MONOTONIC, W_CLOCK_PROCESS_CPUTIME, W_CLOCK_THREAD_CPUTIME };
enum { W_EVENT_CLOCK = 0, W_EVENT_FD_READ = 1, W_EVENT_FD_WRITE = 2 };

/* ---- Configuration and context ---- */

typedef struct tb__wasi_dir_grant {
  int fd;        /* opened by tb_wasi_config_dir; each context reopens it */
  char *guest;   /* the pre-open name */
  bool readonly;
} tb__wasi_dir_grant_t;

struct tb_wasi_config {
  char **argv;
  size_t argc, argv_cap;
  char **env; /* "KEY=VALUE" */
  size_t nenv, env_cap;
  tb__wasi_dir_grant_t *dirs;
  size_t ndirs, dirs_cap;
  int *socks;
  size_t nsocks, socks_cap;
  tb_wasi_stdio_t stdio[3]; /* FD kinds hold the config's own dup */
  uint32_t max_fds;
  tb_wasi_resolver_t resolver;
};

typedef enum tb__wasi_fd_kind {
  FDK_FREE = 0,
  FDK_HOST,     /* a host descriptor the context owns: file, directory, socket, stdio dup */
  FDK_CALLBACK, /* stdio through the embedder's read/write functions */
  FDK_NULL,     /* stdio that reads nothing and drops writes */
} tb__wasi_fd_kind_t;

typedef struct tb__wasi_dirstream tb__wasi_dirstream_t;

typedef struct tb__wasi_fd {
  tb__wasi_fd_kind_t kind;
  uint8_t filetype;   /* W_FT_* */
  bool readonly;      /* derived from a read-only grant: never opened for writing */
  int host;           /* FDK_HOST: owned */
  uint64_t base, inheriting;
  char *preopen;      /* the pre-open name for granted directories, else NULL; owned */
  size_t preopen_len;
  tb_wasi_stdio_t io; /* FDK_CALLBACK */
  tb__wasi_dirstream_t *dir; /* fd_readdir state, made on first use; owned */
} tb__wasi_fd_t;

typedef struct tb__wasi_binding tb__wasi_binding_t;

struct tb_wasi_ctx {
  char *args;       /* argv strings back to back, each NUL-terminated */
  uint32_t argc, args_len;
  char *envs;
  uint32_t nenv, envs_len;
  tb__wasi_fd_t *fds;
  uint32_t nfds, max_fds; /* nfds: slots in use in the array (free ones included) */
  bool use_openat2;
  int raised_signal;
  tb__wasi_binding_t *bindings; /* one per WASI function, the host functions' env */
};

/* One WASI call in progress. */
typedef struct tb__wasi_call {
  tb_wasi_ctx_t *ctx;
  tb_wasm_caller_t *caller;
  tb_wasm_memory_t *mem;
} tb__wasi_call_t;

typedef uint32_t (*tb__wasi_impl_fn)(tb__wasi_call_t *c, const uint64_t *a);

/* ---- Helpers shared by the files ---- */

/** The WASI errno for a host errno value (positive); unknown ones are `io`. */
uint16_t tb__wasi_errno(int host_errno);

/** The guest fd `fd` if open and holding every right in `rights`: W_EBADF or W_ENOTCAPABLE. */
uint32_t tb__wasi_fd_get(tb_wasi_ctx_t *ctx, uint32_t fd, uint64_t rights, tb__wasi_fd_t **out);
/** Puts `e` in the lowest free slot (moving it: the table owns its resources) and stores
 *  the guest number in *out. W_EMFILE past the limit, W_ENOMEM. On failure `e` is not taken. */
uint32_t tb__wasi_fd_insert(tb_wasi_ctx_t *ctx, const tb__wasi_fd_t *e, uint32_t *out);
/** Releases everything the entry owns and marks it free. */
void tb__wasi_fd_release(tb__wasi_fd_t *e);
/** Frees a directory listing state (fd.c); NULL is fine. */
void tb__wasi_dirstream_free(tb__wasi_dirstream_t *d);
/** The per-function host-function envs of a context (link.c). */
int tb__wasi_bindings_new(tb_wasi_ctx_t *ctx);
void tb__wasi_bindings_free(tb__wasi_binding_t *b);
/** WASI filetype of a stat mode. */
uint8_t tb__wasi_filetype(mode_t mode);

/* Guest memory: every access goes through the engine's bounds-checked helpers. */
static inline uint8_t *tb__wasi_ptr(tb__wasi_call_t *c, uint64_t off, uint64_t len) {
  return c->mem ? tb_wasm_memory_ptr(c->mem, off, len) : NULL;
}
static inline void tb__wasi_le16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void tb__wasi_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void tb__wasi_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t tb__wasi_rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t tb__wasi_rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t tb__wasi_rd64(const uint8_t *p) {
  return (uint64_t)tb__wasi_rd32(p) | (uint64_t)tb__wasi_rd32(p + 4) << 32;
}
/** Stores a u32 / u64 result at a guest address: W_EFAULT when outside memory. */
uint32_t tb__wasi_put32(tb__wasi_call_t *c, uint32_t off, uint32_t v);
uint32_t tb__wasi_put64(tb__wasi_call_t *c, uint32_t off, uint64_t v);

/*
 * A guest iovec array turned into host iovecs. Checks the array and every buffer against
 * memory and the total length against u32 (a result must fit a WASI size): W_EFAULT,
 * W_EINVAL. At most IOV_MAX buffers are used (a short transfer is legal). `iov` points
 * to `small` when it fits, else to an allocation released by tb__wasi_iovs_free.
 */
typedef struct tb__wasi_iovs {
  struct iovec *iov;
  int n;
  uint64_t total;
  struct iovec small[16];
} tb__wasi_iovs_t;
uint32_t tb__wasi_iovs_load(tb__wasi_call_t *c, uint32_t ptr, uint32_t count, tb__wasi_iovs_t *out);
void tb__wasi_iovs_free(tb__wasi_iovs_t *v);

/* ---- Paths (path.c) ---- */

#define TB__WASI_PATH_MAX 4096

/**
 * Copies the guest path [ptr, ptr+len) into `out` (TB__WASI_PATH_MAX + 1 bytes) as a
 * C string: W_EFAULT outside memory, W_ENAMETOOLONG, W_EILSEQ for invalid UTF-8,
 * W_EINVAL for an embedded NUL. `absolute_ok` false refuses a leading '/' with
 * W_ENOTCAPABLE (guest paths are always relative to a directory capability).
 */
uint32_t tb__wasi_path_read(tb__wasi_call_t *c, uint32_t ptr, uint32_t len, bool absolute_ok, char *out);

/**
 * Opens `path` beneath the directory `dirfd` with open(2) `flags` and `mode`, following a
 * final symbolic link when `follow`. Intermediate links are followed but may not leave
 * `dirfd`'s tree. Stores an owned host fd in *out; returns a WASI errno.
 */
uint32_t tb__wasi_open_beneath(tb_wasi_ctx_t *ctx, int dirfd, const char *path, int flags, mode_t mode,
                               bool follow, int *out);

/*
 * The directory holding the last component of a path, opened beneath `dirfd` (owned by
 * the caller), and that component. `name` never contains a '/' except one trailing
 * slash kept when the guest wrote one, which the kernel's *at() calls that do not follow
 * a final link (mkdirat, unlinkat, renameat, symlinkat, linkat's new name) interpret
 * safely. A final "." or ".." is resolved into `parent` itself, with `name` ".".
 */
typedef struct tb__wasi_parent {
  int fd;
  bool trailing_slash;
  char name[256 + 2];
} tb__wasi_parent_t;

uint32_t tb__wasi_resolve_parent(tb_wasi_ctx_t *ctx, int dirfd, const char *path, tb__wasi_parent_t *out);
/** As resolve_parent, then, when `follow` (or a trailing slash), follows a final link
 *  to what it names, beneath `dirfd`; `name` has no trailing slash then. */
uint32_t tb__wasi_resolve_final(tb_wasi_ctx_t *ctx, int dirfd, const char *path, bool follow,
                                tb__wasi_parent_t *out);

/* ---- The WASI functions, by file ---- */

#define TB__WASI_IMPL(name) uint32_t tb__wasi_##name(tb__wasi_call_t *c, const uint64_t *a)

/* sys.c */
TB__WASI_IMPL(args_get);
TB__WASI_IMPL(args_sizes_get);
TB__WASI_IMPL(environ_get);
TB__WASI_IMPL(environ_sizes_get);
TB__WASI_IMPL(clock_res_get);
TB__WASI_IMPL(clock_time_get);
TB__WASI_IMPL(random_get);
TB__WASI_IMPL(proc_exit);
TB__WASI_IMPL(proc_raise);
TB__WASI_IMPL(sched_yield);
TB__WASI_IMPL(poll_oneoff);
/* fd.c */
TB__WASI_IMPL(fd_advise);
TB__WASI_IMPL(fd_allocate);
TB__WASI_IMPL(fd_close);
TB__WASI_IMPL(fd_datasync);
TB__WASI_IMPL(fd_fdstat_get);
TB__WASI_IMPL(fd_fdstat_set_flags);
TB__WASI_IMPL(fd_fdstat_set_rights);
TB__WASI_IMPL(fd_filestat_get);
TB__WASI_IMPL(fd_filestat_set_size);
TB__WASI_IMPL(fd_filestat_set_times);
TB__WASI_IMPL(fd_pread);
TB__WASI_IMPL(fd_prestat_get);
TB__WASI_IMPL(fd_prestat_dir_name);
TB__WASI_IMPL(fd_pwrite);
TB__WASI_IMPL(fd_read);
TB__WASI_IMPL(fd_readdir);
TB__WASI_IMPL(fd_renumber);
TB__WASI_IMPL(fd_seek);
TB__WASI_IMPL(fd_sync);
TB__WASI_IMPL(fd_tell);
TB__WASI_IMPL(fd_write);
/* fs.c */
TB__WASI_IMPL(path_create_directory);
TB__WASI_IMPL(path_filestat_get);
TB__WASI_IMPL(path_filestat_set_times);
TB__WASI_IMPL(path_link);
TB__WASI_IMPL(path_open);
TB__WASI_IMPL(path_readlink);
TB__WASI_IMPL(path_remove_directory);
TB__WASI_IMPL(path_rename);
TB__WASI_IMPL(path_symlink);
TB__WASI_IMPL(path_unlink_file);
/* sock.c */
TB__WASI_IMPL(sock_accept);
TB__WASI_IMPL(sock_recv);
TB__WASI_IMPL(sock_send);
TB__WASI_IMPL(sock_shutdown);

/* fd.c, shared with fs.c: a filestat record (64 bytes) from a host stat. */
void tb__wasi_filestat_encode(uint8_t out[64], const struct stat *st);
/* fs.c: struct timespec pair for utimensat from WASI times and fstflags; W_EINVAL. */
struct timespec;
uint32_t tb__wasi_times(uint64_t atim, uint64_t mtim, uint32_t fst, struct timespec ts[2]);

#endif /* TB_WASI_INT_H */
