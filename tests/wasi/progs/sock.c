/*
 * sock.c — a pre-opened listening socket (fd 5, after /sandbox and /ro): accept a
 * connection from the harness, peek and read its "ping", answer "pong:ping", shut the
 * write side and see the peer close. Also the errnos of misuse.
 */
#include <fcntl.h>
#include <unistd.h>

#include "check.h"

#define LISTEN_FD 5

int main(void) {
  __wasi_fdstat_t st;
  CHECK_WASI(__wasi_fd_fdstat_get(LISTEN_FD, &st), 0);
  CHECK_INT(st.fs_filetype, __WASI_FILETYPE_SOCKET_STREAM);
  CHECK((st.fs_rights_base & __WASI_RIGHTS_SOCK_ACCEPT) != 0, "no sock_accept right");
  __wasi_fd_t c = 0;
  CHECK_WASI(__wasi_sock_accept(LISTEN_FD, 0x10, &c), __WASI_ERRNO_INVAL);
  CHECK_WASI(__wasi_sock_accept(SANDBOX_FD, 0, &c), __WASI_ERRNO_NOTCAPABLE);
  CHECK_WASI(__wasi_sock_accept(LISTEN_FD, 0, &c), 0);

  char buf[64] = {0};
  __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
  __wasi_size_t n = 0;
  __wasi_roflags_t ro = 0;
  /* Peek waits for data and leaves it; waitall gets exactly the 4 bytes. */
  CHECK_WASI(__wasi_sock_recv(c, &iov, 1, __WASI_RIFLAGS_RECV_PEEK, &n, &ro), 0);
  CHECK(n >= 1 && buf[0] == 'p', "peek gave %u bytes", (unsigned)n);
  __wasi_iovec_t iov4 = {(uint8_t *)buf, 4};
  memset(buf, 0, sizeof buf);
  CHECK_WASI(__wasi_sock_recv(c, &iov4, 1, __WASI_RIFLAGS_RECV_WAITALL, &n, &ro), 0);
  CHECK_INT(n, 4);
  CHECK_STR(buf, "ping");
  CHECK_INT(ro, 0);

  char reply[] = "pong:ping";
  __wasi_ciovec_t out[2] = {{(const uint8_t *)reply, 5}, {(const uint8_t *)reply + 5, 4}};
  CHECK_WASI(__wasi_sock_send(c, out, 2, 1, &n), __WASI_ERRNO_INVAL);
  CHECK_WASI(__wasi_sock_send(c, out, 2, 0, &n), 0);
  CHECK_INT(n, 9);
  CHECK_WASI(__wasi_sock_shutdown(c, 0), __WASI_ERRNO_INVAL);
  CHECK_WASI(__wasi_sock_shutdown(c, __WASI_SDFLAGS_WR), 0);
  /* The harness closes after reading the reply: end of stream. */
  CHECK_WASI(__wasi_sock_recv(c, &iov, 1, 0, &n, &ro), 0);
  CHECK_INT(n, 0);
  CHECK_WASI(raw_sock_recv(c, mem_end() - 4, 1, 0, A(&n), A(&ro)), __WASI_ERRNO_FAULT);
  CHECK_INT(close(c), 0);

  /* Socket calls on what is not a socket. */
  int f = open("/sandbox/sock.txt", O_RDWR | O_CREAT, 0644);
  CHECK_WASI(__wasi_sock_recv(f, &iov, 1, 0, &n, &ro), __WASI_ERRNO_NOTSOCK);
  CHECK_WASI(__wasi_sock_shutdown(f, __WASI_SDFLAGS_RD), __WASI_ERRNO_NOTCAPABLE);
  return check_done();
}
