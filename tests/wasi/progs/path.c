/*
 * path.c — the path_* family inside /sandbox/ptest: create and remove directories,
 * open flags, filestat get and set times, hard and symbolic links, readlink, rename and
 * unlink, with the errnos POSIX programs expect for each misuse.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define P "/sandbox/ptest"

static void put(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
  if (fd >= 0) {
    CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
  }
}

static long long size_of(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int main(void) {
  /* Directories. */
  CHECK(mkdir(P, 0755) == 0, "mkdir: %s", strerror(errno));
  CHECK_ERR(mkdir(P, 0755), EEXIST);
  CHECK_ERR(mkdir(P "/a/b", 0755), ENOENT);
  CHECK(mkdir(P "/d/", 0755) == 0, "mkdir with a trailing slash: %s", strerror(errno));
  CHECK(rmdir(P "/d/") == 0, "rmdir with a trailing slash: %s", strerror(errno));
  CHECK_ERR(mkdir(P "/.", 0755), EEXIST);
  CHECK(mkdir(P "/sub", 0755) == 0, "mkdir sub");

  /* Files and open flags. */
  int fd = open(P "/f", O_WRONLY | O_CREAT | O_EXCL, 0644);
  CHECK(fd >= 0, "create f: %s", strerror(errno));
  close(fd);
  CHECK_ERR(open(P "/f", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
  CHECK_ERR(open(P "/f", O_RDONLY | O_DIRECTORY), ENOTDIR);
  CHECK_ERR(open(P "/f/", O_RDONLY), ENOTDIR);
  CHECK_ERR(open(P "/none", O_RDONLY), ENOENT);
  CHECK_ERR(open(P "/sub", O_WRONLY), EISDIR);
  put(P "/f", "0123456789");
  CHECK_INT(size_of(P "/f"), 10);
  fd = open(P "/f", O_WRONLY | O_TRUNC);
  CHECK(fd >= 0, "open O_TRUNC: %s", strerror(errno));
  close(fd);
  CHECK_INT(size_of(P "/f"), 0);
  fd = open(P "/sub", O_RDONLY | O_DIRECTORY);
  CHECK(fd >= 0, "open a directory: %s", strerror(errno));
  __wasi_fdstat_t fst;
  CHECK_WASI(__wasi_fd_fdstat_get(fd, &fst), 0);
  CHECK_INT(fst.fs_filetype, __WASI_FILETYPE_DIRECTORY);
  close(fd);

  /* A directory that is not empty, and one that is a file. */
  put(P "/sub/x", "x");
  CHECK_ERR(rmdir(P "/sub"), ENOTEMPTY);
  CHECK_ERR(rmdir(P "/f"), ENOTDIR);
  CHECK_ERR(rmdir(P "/sub/."), EINVAL);

  /* Symbolic links: created, read, followed by stat, not by lstat. */
  CHECK(symlink("f", P "/l") == 0, "symlink: %s", strerror(errno));
  CHECK_ERR(symlink("f", P "/l"), EEXIST);
  char buf[256] = {0};
  CHECK_INT(readlink(P "/l", buf, sizeof buf), 1);
  CHECK_STR(buf, "f");
  CHECK_ERR(readlink(P "/f", buf, sizeof buf), EINVAL);
  uint32_t used = 0;
  const char *lp = "ptest/l";
  CHECK_WASI(raw_path_readlink(SANDBOX_FD, A(lp), strlen(lp), A(buf), 0, A(&used)), 0);
  CHECK_INT(used, 0); /* truncated to the buffer, as readlink(2) does */
  struct stat sb, lsb;
  put(P "/f", "abc");
  CHECK(stat(P "/l", &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 3, "stat through the link");
  CHECK(lstat(P "/l", &lsb) == 0 && S_ISLNK(lsb.st_mode), "lstat of the link");
  CHECK(symlink("sub", P "/dl") == 0, "symlink to a directory");
  CHECK(stat(P "/dl/x", &sb) == 0 && sb.st_size == 1, "stat through a directory link");
  CHECK(symlink("nowhere", P "/dangling") == 0, "dangling symlink");
  CHECK_ERR(stat(P "/dangling", &sb), ENOENT);
  CHECK(lstat(P "/dangling", &lsb) == 0 && S_ISLNK(lsb.st_mode), "lstat of a dangling link");
  /* O_CREAT through a dangling link creates its target, inside. */
  fd = open(P "/dangling", O_WRONLY | O_CREAT, 0644);
  CHECK(fd >= 0, "create through a dangling link: %s", strerror(errno));
  close(fd);
  CHECK(stat(P "/nowhere", &sb) == 0, "the link's target was not created");
  CHECK_ERR(open(P "/l", O_RDONLY | O_NOFOLLOW), ELOOP);
  CHECK(symlink("loop_b", P "/loop_a") == 0 && symlink("loop_a", P "/loop_b") == 0, "loop links");
  CHECK_ERR(open(P "/loop_a", O_RDONLY), ELOOP);

  /* Times by path: following the link changes the target, AT_SYMLINK_NOFOLLOW the link. */
  struct timespec t1[2] = {{1100000000, 0}, {1100000000, 0}};
  CHECK(utimensat(AT_FDCWD, P "/l", t1, 0) == 0, "utimensat: %s", strerror(errno));
  CHECK(stat(P "/f", &sb) == 0 && sb.st_mtim.tv_sec == 1100000000, "target mtime %lld", (long long)sb.st_mtim.tv_sec);
  struct timespec t2[2] = {{1300000000, 0}, {1300000000, 0}};
  CHECK(utimensat(AT_FDCWD, P "/l", t2, AT_SYMLINK_NOFOLLOW) == 0, "utimensat nofollow: %s", strerror(errno));
  CHECK(lstat(P "/l", &lsb) == 0 && lsb.st_mtim.tv_sec == 1300000000, "link mtime %lld", (long long)lsb.st_mtim.tv_sec);
  CHECK(stat(P "/f", &sb) == 0 && sb.st_mtim.tv_sec == 1100000000, "the target changed too");
  CHECK_ERR(utimensat(AT_FDCWD, P "/none", t1, 0), ENOENT);

  /* Hard links. */
  CHECK(link(P "/f", P "/h") == 0, "link: %s", strerror(errno));
  CHECK(stat(P "/f", &sb) == 0 && sb.st_nlink == 2, "nlink %lld", (long long)sb.st_nlink);
  CHECK_ERR(link(P "/f", P "/h"), EEXIST);
  CHECK_ERR(link(P "/sub", P "/hsub"), EPERM);
  CHECK_ERR(link(P "/none", P "/h2"), ENOENT);

  /* Rename. */
  CHECK(rename(P "/h", P "/h2") == 0, "rename: %s", strerror(errno));
  CHECK_ERR(stat(P "/h", &sb), ENOENT);
  CHECK(mkdir(P "/full", 0755) == 0 && mkdir(P "/full/inner", 0755) == 0, "mkdir full");
  CHECK_ERR(rename(P "/sub", P "/full"), ENOTEMPTY);
  CHECK_ERR(rename(P "/h2", P "/full"), EISDIR);
  CHECK_ERR(rename(P "/none", P "/x"), ENOENT);
  CHECK_ERR(rename(P "/h2/", P "/h3"), ENOTDIR);
  CHECK(rename(P "/full/inner", P "/inner") == 0, "rename a directory: %s", strerror(errno));

  /* Unlink. */
  CHECK(unlink(P "/h2") == 0, "unlink: %s", strerror(errno));
  CHECK(stat(P "/f", &sb) == 0 && sb.st_nlink == 1, "nlink after unlink");
  CHECK_ERR(unlink(P "/sub"), EISDIR);
  CHECK_ERR(unlink(P "/none"), ENOENT);
  CHECK_ERR(unlink(P "/f/"), ENOTDIR);
  CHECK(unlink(P "/dl") == 0, "unlink a link to a directory removes the link");
  CHECK(stat(P "/sub/x", &sb) == 0, "the directory went with its link");

  /* Names: 255 bytes is a name, 256 is too long. */
  char longname[300];
  memset(longname, 'n', sizeof longname);
  memcpy(longname, P "/", strlen(P "/"));
  longname[strlen(P "/") + 255] = '\0';
  fd = open(longname, O_WRONLY | O_CREAT, 0644);
  CHECK(fd >= 0, "a 255-byte name: %s", strerror(errno));
  close(fd);
  longname[strlen(P "/") + 255] = 'n';
  longname[strlen(P "/") + 256] = '\0';
  CHECK_ERR(open(longname, O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
  return check_done();
}
