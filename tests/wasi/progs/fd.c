/*
 * fd.c — the fd_* family on a file and a directory in /sandbox: read, write, pread,
 * pwrite, seek, tell, sync, datasync, advise, allocate, fdstat (get, flags, rights),
 * filestat (get, size, times), prestat, readdir with cookies, renumber and close.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static void readdir_checks(void) {
  CHECK(mkdir("/sandbox/many", 0755) == 0, "mkdir many: %s", strerror(errno));
  char name[128];
  for (int i = 0; i < 100; i++) {
    snprintf(name, sizeof name, "/sandbox/many/entry-with-a-longish-name-%03d", i);
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0, "create %s: %s", name, strerror(errno));
    close(fd);
  }
  /* libc's readdir: every entry once, "." and ".." included. */
  DIR *d = opendir("/sandbox/many");
  CHECK(d != NULL, "opendir: %s", strerror(errno));
  int seen[100] = {0}, dots = 0, total = 0;
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    total++;
    int k;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
      dots++;
      CHECK(de->d_type == DT_DIR, "%s has type %d", de->d_name, de->d_type);
    } else if (sscanf(de->d_name, "entry-with-a-longish-name-%d", &k) == 1 && k >= 0 && k < 100) {
      seen[k]++;
      CHECK(de->d_type == DT_REG, "%s has type %d", de->d_name, de->d_type);
      CHECK(de->d_ino != 0, "%s has inode 0", de->d_name);
    } else {
      CHECK(0, "unexpected entry %s", de->d_name);
    }
  }
  CHECK_INT(total, 102);
  CHECK_INT(dots, 2);
  for (int i = 0; i < 100; i++) CHECK(seen[i] == 1, "entry %d seen %d times", i, seen[i]);
  /* rewinddir starts over. */
  if (d) {
    rewinddir(d);
    int again = 0;
    while (readdir(d)) again++;
    CHECK_INT(again, 102);
    closedir(d);
  }
  /* Raw fd_readdir with a buffer too small for one entry: the entry is cut, and asking
   * again from the same cookie gives it whole. */
  int dfd = open("/sandbox/many", O_RDONLY | O_DIRECTORY);
  CHECK(dfd >= 0, "open dir: %s", strerror(errno));
  unsigned char buf[256];
  uint32_t used = 0;
  CHECK_WASI(raw_fd_readdir(dfd, A(buf), 30, 0, A(&used)), 0);
  CHECK_INT(used, 30);
  uint64_t cookie = 0;
  int count = 0;
  for (int guard = 0; guard < 1000; guard++) {
    CHECK_WASI(raw_fd_readdir(dfd, A(buf), sizeof buf, cookie, A(&used)), 0);
    uint32_t off = 0;
    while (off + 24 <= used) {
      uint64_t next;
      uint32_t namlen;
      memcpy(&next, buf + off, 8);
      memcpy(&namlen, buf + off + 16, 4);
      if (off + 24 + namlen > used) break;
      count++;
      cookie = next;
      off += 24 + namlen;
    }
    if (used < sizeof buf) break;
  }
  CHECK_INT(count, 102);
  /* A cookie past the end is an empty read; cookie 0 starts over. */
  CHECK_WASI(raw_fd_readdir(dfd, A(buf), sizeof buf, 100000, A(&used)), 0);
  CHECK_INT(used, 0);
  CHECK_WASI(raw_fd_readdir(dfd, A(buf), sizeof buf, 0, A(&used)), 0);
  CHECK(used == sizeof buf, "a full buffer expected, got %u", used);
  /* readdir on a file is not a directory. */
  int ffd = open("/sandbox/hello.txt", O_RDONLY);
  CHECK_WASI(raw_fd_readdir(ffd, A(buf), sizeof buf, 0, A(&used)), __WASI_ERRNO_NOTCAPABLE);
  close(ffd);
  close(dfd);
}

int main(void) {
  int fd = open("/sandbox/fdtest.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0, "open: %s", strerror(errno));
  CHECK_INT(write(fd, "hello world", 11), 11);
  CHECK_INT(lseek(fd, 0, SEEK_CUR), 11);
  __wasi_filesize_t pos = 0;
  CHECK_WASI(__wasi_fd_tell(fd, &pos), 0);
  CHECK_INT(pos, 11);
  CHECK_INT(pwrite(fd, "HELLO", 5, 0), 5);
  char buf[64] = {0};
  CHECK_INT(pread(fd, buf, 5, 6), 5);
  CHECK_STR(buf, "world");
  CHECK_INT(lseek(fd, 0, SEEK_CUR), 11); /* pread/pwrite leave the position */
  CHECK_INT(lseek(fd, 0, SEEK_SET), 0);
  memset(buf, 0, sizeof buf);
  CHECK_INT(read(fd, buf, sizeof buf), 11);
  CHECK_STR(buf, "HELLO world");
  CHECK_INT(read(fd, buf, sizeof buf), 0);
  CHECK_INT(lseek(fd, -5, SEEK_END), 6);
  CHECK_ERR(lseek(fd, 0, 7), EINVAL);
  CHECK_ERR(lseek(fd, -100, SEEK_SET), EINVAL);

  /* fdstat: type, rights, flags. */
  __wasi_fdstat_t st;
  CHECK_WASI(__wasi_fd_fdstat_get(fd, &st), 0);
  CHECK_INT(st.fs_filetype, __WASI_FILETYPE_REGULAR_FILE);
  CHECK((st.fs_rights_base & (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK)) ==
            (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK),
        "rights %llx", (unsigned long long)st.fs_rights_base);
  CHECK((st.fs_rights_base & __WASI_RIGHTS_PATH_OPEN) == 0, "a file holds path_open");
  CHECK_INT(st.fs_flags, 0);
  CHECK(fcntl(fd, F_SETFL, O_APPEND) == 0, "F_SETFL: %s", strerror(errno));
  CHECK((fcntl(fd, F_GETFL) & O_APPEND) != 0, "O_APPEND not set");
  CHECK_INT(lseek(fd, 0, SEEK_SET), 0);
  CHECK_INT(write(fd, "!", 1), 1);
  CHECK_INT(lseek(fd, 0, SEEK_CUR), 12); /* appended at the end */
  CHECK_WASI(__wasi_fd_fdstat_set_flags(fd, __WASI_FDFLAGS_SYNC), __WASI_ERRNO_NOTSUP);
  CHECK_WASI(__wasi_fd_fdstat_set_flags(fd, 0x100), __WASI_ERRNO_INVAL);
  CHECK(fcntl(fd, F_SETFL, 0) == 0, "F_SETFL 0");

  /* filestat: size, truncate, times. */
  struct stat sb;
  CHECK(fstat(fd, &sb) == 0, "fstat");
  CHECK_INT(sb.st_size, 12);
  CHECK(S_ISREG(sb.st_mode), "not regular");
  CHECK(ftruncate(fd, 3) == 0, "ftruncate: %s", strerror(errno));
  CHECK(fstat(fd, &sb) == 0 && sb.st_size == 3, "size %lld after truncate", (long long)sb.st_size);
  struct timespec times[2] = {{1000000000, 123456789}, {1200000000, 5}};
  CHECK(futimens(fd, times) == 0, "futimens: %s", strerror(errno));
  CHECK(fstat(fd, &sb) == 0, "fstat");
  CHECK_INT(sb.st_atim.tv_sec, 1000000000);
  CHECK_INT(sb.st_atim.tv_nsec, 123456789);
  CHECK_INT(sb.st_mtim.tv_sec, 1200000000);
  /* (wasi-libc 2022's futimens refuses UTIME_OMIT itself, so this one goes raw.) */
  CHECK_WASI(__wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_MTIM_NOW), 0);
  CHECK(fstat(fd, &sb) == 0 && sb.st_atim.tv_sec == 1000000000 && sb.st_mtim.tv_sec > 1600000000,
        "omit/now gave atime %lld mtime %lld", (long long)sb.st_atim.tv_sec, (long long)sb.st_mtim.tv_sec);
  CHECK_WASI(__wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW),
             __WASI_ERRNO_INVAL);

  /* sync, datasync, advise, allocate. */
  CHECK(fsync(fd) == 0, "fsync: %s", strerror(errno));
  CHECK(fdatasync(fd) == 0, "fdatasync: %s", strerror(errno));
  CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) == 0, "fadvise");
  CHECK_WASI(__wasi_fd_advise(fd, 0, 0, 9), __WASI_ERRNO_INVAL);
  CHECK(posix_fallocate(fd, 0, 4096) == 0, "fallocate");
  CHECK(fstat(fd, &sb) == 0 && sb.st_size == 4096, "size %lld after allocate", (long long)sb.st_size);

  /* Rights only shrink: without fd_write, writing is not capable, and it stays so. */
  CHECK_WASI(__wasi_fd_fdstat_set_rights(fd, st.fs_rights_base & ~__WASI_RIGHTS_FD_WRITE, 0), 0);
  CHECK_WASI(__wasi_fd_write(fd, &(__wasi_ciovec_t){(const uint8_t *)"x", 1}, 1, &(__wasi_size_t){0}),
             __WASI_ERRNO_NOTCAPABLE);
  CHECK_ERR(write(fd, "x", 1), EBADF); /* libc reports notcapable on write as EBADF, as POSIX would */
  CHECK_WASI(__wasi_fd_fdstat_set_rights(fd, st.fs_rights_base, 0), __WASI_ERRNO_NOTCAPABLE);
  CHECK_INT(pread(fd, buf, 3, 0), 3); /* reading still works */

  /* renumber: `to` now refers to what `fd` was, and `fd` is gone. */
  int other = open("/sandbox/hello.txt", O_RDONLY);
  CHECK(other >= 0, "open hello: %s", strerror(errno));
  CHECK_WASI(__wasi_fd_renumber(fd, other), 0);
  memset(buf, 0, sizeof buf);
  CHECK_INT(pread(other, buf, 3, 0), 3);
  CHECK_STR(buf, "HEL");
  CHECK_ERR(read(fd, buf, 1), EBADF);
  CHECK_WASI(__wasi_fd_renumber(other, 999), __WASI_ERRNO_BADF);
  CHECK(close(other) == 0, "close");
  CHECK_ERR(close(other), EBADF);

  /* Pre-opens: fd 3 is /sandbox, 4 is /ro, and nothing after is one. */
  __wasi_prestat_t ps;
  CHECK_WASI(__wasi_fd_prestat_get(SANDBOX_FD, &ps), 0);
  CHECK_INT(ps.tag, __WASI_PREOPENTYPE_DIR);
  CHECK_INT(ps.u.dir.pr_name_len, 8);
  char name[16] = {0};
  CHECK_WASI(__wasi_fd_prestat_dir_name(SANDBOX_FD, (uint8_t *)name, 8), 0);
  CHECK_STR(name, "/sandbox");
  CHECK_WASI(__wasi_fd_prestat_dir_name(SANDBOX_FD, (uint8_t *)name, 3), __WASI_ERRNO_NAMETOOLONG);
  CHECK_WASI(__wasi_fd_prestat_get(1, &ps), __WASI_ERRNO_BADF);
  CHECK_WASI(__wasi_fd_prestat_get(77, &ps), __WASI_ERRNO_BADF);
  CHECK_WASI(__wasi_fd_fdstat_get(SANDBOX_FD, &st), 0);
  CHECK_INT(st.fs_filetype, __WASI_FILETYPE_DIRECTORY);
  CHECK((st.fs_rights_base & __WASI_RIGHTS_PATH_OPEN) && (st.fs_rights_inheriting & __WASI_RIGHTS_FD_WRITE),
        "directory rights %llx/%llx", (unsigned long long)st.fs_rights_base,
        (unsigned long long)st.fs_rights_inheriting);

  /* Stdio: stdin is empty here, stdout a stream that cannot seek. */
  CHECK_INT(read(0, buf, sizeof buf), 0);
  CHECK_ERR(lseek(1, 0, SEEK_CUR), ESPIPE);
  CHECK_WASI(__wasi_fd_fdstat_get(1, &st), 0);
  CHECK((st.fs_rights_base & __WASI_RIGHTS_FD_WRITE) && !(st.fs_rights_base & __WASI_RIGHTS_FD_READ),
        "stdout rights %llx", (unsigned long long)st.fs_rights_base);

  readdir_checks();
  return check_done();
}
