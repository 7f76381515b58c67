/*
 * readonly.c — a directory granted with --dir-ro (/ro, fd 4): everything that reads
 * works, everything that would change the tree is not capable. The harness checks the
 * host tree is byte-for-byte what it was.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

int main(void) {
  char buf[64] = {0};
  int fd = open("/ro/data.txt", O_RDONLY);
  CHECK(fd >= 0, "open for reading: %s", strerror(errno));
  CHECK_INT(read(fd, buf, sizeof buf), 15);
  CHECK_STR(buf, "read only data\n");
  close(fd);
  DIR *d = opendir("/ro");
  int n = 0;
  while (d && readdir(d)) n++;
  if (d) closedir(d);
  CHECK_INT(n, 4); /* ., .., data.txt, dir */
  struct stat sb;
  CHECK(stat("/ro/dir", &sb) == 0 && S_ISDIR(sb.st_mode), "stat");

  __wasi_fdstat_t st;
  CHECK_WASI(__wasi_fd_fdstat_get(RO_FD, &st), 0);
  CHECK((st.fs_rights_base & (__WASI_RIGHTS_PATH_CREATE_FILE | __WASI_RIGHTS_PATH_UNLINK_FILE)) == 0,
        "a read-only directory holds create/unlink rights: %llx", (unsigned long long)st.fs_rights_base);
  CHECK((st.fs_rights_inheriting & __WASI_RIGHTS_FD_WRITE) == 0, "files under it could be written");

  /* Writing, by every road. */
  CHECK_ERR(fopen("/ro/data.txt", "w"), ENOTCAPABLE);
  CHECK_ERR(fopen("/ro/new.txt", "w"), ENOTCAPABLE);
  CHECK_ERR(fopen("/ro/data.txt", "a"), ENOTCAPABLE);
  CHECK_ERR(open("/ro/data.txt", O_WRONLY | O_TRUNC), ENOTCAPABLE);
  fd = open("/ro/data.txt", O_WRONLY); /* libc asks only for what the directory can give */
  if (fd >= 0) {
    CHECK_ERR(write(fd, "x", 1), EBADF); /* libc's spelling of notcapable for write */
    CHECK_ERR(ftruncate(fd, 0), ENOTCAPABLE);
    close(fd);
  }
  __wasi_fd_t wfd;
  CHECK_WASI(__wasi_path_open(RO_FD, 0, "data.txt", 0, __WASI_RIGHTS_FD_WRITE, 0, 0, &wfd), __WASI_ERRNO_NOTCAPABLE);
  CHECK_ERR(mkdir("/ro/newdir", 0755), ENOTCAPABLE);
  CHECK_ERR(rmdir("/ro/dir"), ENOTCAPABLE);
  CHECK_ERR(unlink("/ro/data.txt"), ENOTCAPABLE);
  CHECK_ERR(rename("/ro/data.txt", "/ro/moved.txt"), ENOTCAPABLE);
  CHECK_ERR(symlink("data.txt", "/ro/l"), ENOTCAPABLE);
  CHECK_ERR(link("/ro/data.txt", "/ro/h"), ENOTCAPABLE);
  struct timespec t[2] = {{1, 0}, {1, 0}};
  CHECK_ERR(utimensat(AT_FDCWD, "/ro/data.txt", t, 0), ENOTCAPABLE);
  /* Between a writable and a read-only directory: nothing moves in or out. */
  int w = open("/sandbox/ro_test.txt", O_WRONLY | O_CREAT, 0644);
  close(w);
  CHECK_ERR(rename("/sandbox/ro_test.txt", "/ro/ro_test.txt"), ENOTCAPABLE);
  CHECK_ERR(rename("/ro/data.txt", "/sandbox/data.txt"), ENOTCAPABLE);
  CHECK_ERR(link("/ro/data.txt", "/sandbox/data_link"), ENOTCAPABLE);
  /* Rights cannot be taken back once dropped, nor grown. */
  CHECK_WASI(__wasi_fd_fdstat_set_rights(RO_FD, st.fs_rights_base | __WASI_RIGHTS_PATH_CREATE_FILE,
                                         st.fs_rights_inheriting),
             __WASI_ERRNO_NOTCAPABLE);
  return check_done();
}
