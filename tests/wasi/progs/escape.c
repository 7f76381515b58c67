/*
 * escape.c — every way out of /sandbox we know of must fail with ENOTCAPABLE, while the
 * same shapes that stay inside work. The harness made, host-side:
 *
 *   sandbox/hello.txt                 "hello, sandbox\n"
 *   sandbox/sub/inner.txt             "inner\n"
 *   sandbox/link_abs  -> <root>/outside/secret.txt   (absolute)
 *   sandbox/link_rel  -> ../outside/secret.txt
 *   sandbox/link_dir  -> ../outside
 *   sandbox/link_in   -> hello.txt
 *   sandbox/sub/link_up -> ../hello.txt
 *   outside/secret.txt, outside/victim.txt
 *
 * and checks afterwards that nothing outside the sandbox changed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define NC __WASI_ERRNO_NOTCAPABLE
#define FOLLOW __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW
#define READ_RIGHTS (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_FILESTAT_GET)

static int ropen(int dir, const char *path, int follow, int oflags, __wasi_fd_t *out) {
  return __wasi_path_open(dir, follow ? FOLLOW : 0, path, oflags, READ_RIGHTS, 0, 0, out);
}

static void expect_content(int dir, const char *path, const char *want) {
  __wasi_fd_t fd;
  int e = ropen(dir, path, 1, 0, &fd);
  CHECK(e == 0, "open %s: errno %d", path, e);
  if (e) return;
  char buf[64] = {0};
  __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf - 1};
  __wasi_size_t n = 0;
  CHECK_WASI(__wasi_fd_read(fd, &iov, 1, &n), 0);
  CHECK(strcmp(buf, want) == 0, "%s holds \"%s\", expected \"%s\"", path, buf, want);
  (void)__wasi_fd_close(fd);
}

int main(void) {
  __wasi_fd_t fd;
  __wasi_filestat_t st;
  const int S = SANDBOX_FD;

  /* What stays inside works, links included. */
  expect_content(S, "hello.txt", "hello, sandbox\n");
  expect_content(S, "sub/../hello.txt", "hello, sandbox\n");
  expect_content(S, "./sub/./inner.txt", "inner\n");
  expect_content(S, "link_in", "hello, sandbox\n");
  expect_content(S, "sub/link_up", "hello, sandbox\n");

  /* `..` past the top, however it is spelled. */
  CHECK_WASI(ropen(S, "..", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "../outside/secret.txt", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "sub/../../outside/secret.txt", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "sub/../sub/../../outside/secret.txt", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "./../outside", 1, __WASI_OFLAGS_DIRECTORY, &fd), NC);

  /* Absolute paths name nothing. */
  CHECK_WASI(ropen(S, "/etc/passwd", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "/", 1, 0, &fd), NC);

  /* Links that point out: absolute, relative, to a directory, and chained. */
  CHECK_WASI(ropen(S, "link_abs", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "link_rel", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "link_dir/secret.txt", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "link_dir/secret.txt", 0, 0, &fd), NC); /* intermediate links are always followed */
  CHECK_WASI(ropen(S, "link_dir", 1, __WASI_OFLAGS_DIRECTORY, &fd), NC);
  CHECK(symlink("link_rel", "/sandbox/chain") == 0, "symlink chain: %s", strerror(errno));
  CHECK_WASI(ropen(S, "chain", 1, 0, &fd), NC);
  CHECK_WASI(ropen(S, "link_abs", 0, 0, &fd), __WASI_ERRNO_LOOP); /* not followed: a link, not an escape */

  /* ... through libc, the way programs meet them. */
  CHECK_ERR(fopen("/sandbox/../outside/secret.txt", "r"), ENOTCAPABLE);
  CHECK_ERR(fopen("/sandbox/link_abs", "r"), ENOTCAPABLE);
  CHECK_ERR(fopen("/sandbox/link_dir/secret.txt", "r"), ENOTCAPABLE);
  CHECK_ERR(opendir("/sandbox/link_dir"), ENOTCAPABLE);
  struct stat sb;
  CHECK_ERR(stat("/sandbox/link_dir/secret.txt", &sb), ENOTCAPABLE);
  CHECK_ERR(stat("/sandbox/link_abs", &sb), ENOTCAPABLE);
  CHECK(lstat("/sandbox/link_abs", &sb) == 0 && S_ISLNK(sb.st_mode), "lstat of the link itself: %s", strerror(errno));

  /* Creating through a way out. */
  CHECK_WASI(ropen(S, "link_dir/new.txt", 1, __WASI_OFLAGS_CREAT, &fd), NC);
  CHECK_WASI(ropen(S, "../new.txt", 1, __WASI_OFLAGS_CREAT, &fd), NC);
  CHECK(symlink("../outside/created.txt", "/sandbox/dangle_out") == 0, "a dangling link out: %s", strerror(errno));
  CHECK_WASI(ropen(S, "dangle_out", 1, __WASI_OFLAGS_CREAT, &fd), NC);
  CHECK_WASI(ropen(S, "dangle_out", 1, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, &fd), NC);
  CHECK_ERR(mkdir("/sandbox/../newdir", 0755), ENOTCAPABLE);
  CHECK_ERR(mkdir("/sandbox/link_dir/newdir", 0755), ENOTCAPABLE);

  /* Stat and times through links out. */
  CHECK_WASI(__wasi_path_filestat_get(S, FOLLOW, "link_abs", &st), NC);
  CHECK_WASI(__wasi_path_filestat_get(S, FOLLOW, "../outside", &st), NC);
  CHECK_WASI(__wasi_path_filestat_get(S, 0, "link_abs", &st), 0);
  CHECK_INT(st.filetype, __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK_WASI(__wasi_path_filestat_set_times(S, FOLLOW, "link_rel", 0, 0, __WASI_FSTFLAGS_MTIM_NOW), NC);
  CHECK_WASI(__wasi_path_filestat_set_times(S, 0, "link_dir/victim.txt", 0, 0, __WASI_FSTFLAGS_MTIM_NOW), NC);
  CHECK_WASI(__wasi_path_filestat_set_times(S, 0, "../outside/victim.txt", 0, 0, __WASI_FSTFLAGS_MTIM_NOW), NC);

  /* Removing outside things. */
  CHECK_WASI(__wasi_path_unlink_file(S, "../outside/victim.txt"), NC);
  CHECK_WASI(__wasi_path_unlink_file(S, "link_dir/victim.txt"), NC);
  CHECK_WASI(__wasi_path_remove_directory(S, "../outside"), NC);
  CHECK_WASI(__wasi_path_remove_directory(S, "link_dir/."), NC);

  /* Hard links: to an outside file, through a followed link, or planted outside. */
  CHECK_WASI(__wasi_path_link(S, 0, "../outside/secret.txt", S, "stolen"), NC);
  CHECK_WASI(__wasi_path_link(S, 0, "link_dir/secret.txt", S, "stolen"), NC);
  CHECK_WASI(__wasi_path_link(S, FOLLOW, "link_abs", S, "stolen"), NC);
  CHECK_WASI(__wasi_path_link(S, FOLLOW, "link_rel", S, "stolen"), NC);
  CHECK_WASI(__wasi_path_link(S, 0, "hello.txt", S, "../outside/planted"), NC);
  CHECK_WASI(__wasi_path_link(S, 0, "hello.txt", S, "link_dir/planted"), NC);
  CHECK_ERR(link("/sandbox/../outside/secret.txt", "/sandbox/stolen"), ENOTCAPABLE);
  /* Linking the link itself (not followed) is a link inside, which still cannot be followed out. */
  CHECK_WASI(__wasi_path_link(S, 0, "link_abs", S, "link_abs_copy"), 0);
  CHECK_WASI(ropen(S, "link_abs_copy", 1, 0, &fd), NC);

  /* Renames out of, or in from, the outside. */
  CHECK_WASI(__wasi_path_rename(S, "hello.txt", S, "../outside/moved"), NC);
  CHECK_WASI(__wasi_path_rename(S, "hello.txt", S, "link_dir/moved"), NC);
  CHECK_WASI(__wasi_path_rename(S, "../outside/victim.txt", S, "victim"), NC);
  CHECK_WASI(__wasi_path_rename(S, "link_dir/victim.txt", S, "victim"), NC);
  CHECK_WASI(__wasi_path_rename(S, "sub", S, "../sub"), NC);
  CHECK_ERR(rename("/sandbox/hello.txt", "/sandbox/../outside/moved"), ENOTCAPABLE);

  /* Symlinks that point out cannot be made with an absolute target; relative ones can be
   * made (they are data) but not followed. */
  CHECK_WASI(__wasi_path_symlink("/etc/passwd", S, "abs_made"), NC);
  CHECK_WASI(__wasi_path_symlink("x", S, "../outside/planted_link"), NC);
  CHECK_WASI(__wasi_path_symlink("x", S, "link_dir/planted_link"), NC);
  CHECK_WASI(__wasi_path_symlink("../../../../etc/passwd", S, "rel_made"), 0);
  CHECK_WASI(ropen(S, "rel_made", 1, 0, &fd), NC);

  /* readlink reads a link's text; it cannot reach past the sandbox to do it. */
  char buf[256] = {0};
  __wasi_size_t n = 0;
  CHECK_WASI(__wasi_path_readlink(S, "link_rel", (uint8_t *)buf, sizeof buf, &n), 0);
  CHECK(n == strlen("../outside/secret.txt") && memcmp(buf, "../outside/secret.txt", n) == 0, "readlink gave %.*s",
        (int)n, buf);
  CHECK_WASI(__wasi_path_readlink(S, "link_dir/x", (uint8_t *)buf, sizeof buf, &n), NC);

  /* A descriptor for a subdirectory is its own capability: `..` stops there too. */
  __wasi_fd_t sub;
  CHECK_WASI(__wasi_path_open(S, 0, "sub", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_PATH_OPEN | __WASI_RIGHTS_FD_READDIR,
                              READ_RIGHTS, 0, &sub),
             0);
  CHECK_WASI(ropen(sub, "inner.txt", 1, 0, &fd), 0);
  CHECK_WASI(ropen(sub, "../hello.txt", 1, 0, &fd), NC);
  CHECK_WASI(ropen(sub, "link_up", 1, 0, &fd), NC);
  /* ... and it cannot hand down rights it does not have. */
  CHECK_WASI(__wasi_path_open(sub, 0, "inner.txt", 0, __WASI_RIGHTS_FD_WRITE, 0, 0, &fd), NC);
  return check_done();
}
