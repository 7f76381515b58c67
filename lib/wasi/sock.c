/*
 * sock.c — sock_accept, sock_recv, sock_send and sock_shutdown on the sockets the host
 * pre-opened (tb_wasi_config_socket). Preview 1 has no way to create or connect a
 * socket, so a guest reaches exactly the network its host handed it.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wasi_int.h"

#define A32(i) ((uint32_t)a[i])

static bool is_socket(const tb__wasi_fd_t *e) {
  return e->kind == FDK_HOST && (e->filetype == W_FT_SOCKET_STREAM || e->filetype == W_FT_SOCKET_DGRAM);
}

TB__WASI_IMPL(sock_accept) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_SOCK_ACCEPT, &e);
  if (err) return err;
  uint32_t flags = A32(1), retptr = A32(2);
  if (flags & ~(uint32_t)W_FDFLAG_NONBLOCK) return W_EINVAL;
  if (!is_socket(e)) return W_ENOTSOCK;
  if (tb__wasi_ptr(c, retptr, 4) == NULL) return W_EFAULT;
  int fd;
  do fd = accept4(e->host, NULL, NULL, SOCK_CLOEXEC | ((flags & W_FDFLAG_NONBLOCK) ? SOCK_NONBLOCK : 0));
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return tb__wasi_errno(errno);
  tb__wasi_fd_t n = {.kind = FDK_HOST, .host = fd, .filetype = W_FT_SOCKET_STREAM};
  n.base = e->inheriting & R_SOCK_CONN;
  n.inheriting = 0;
  uint32_t nfd;
  if ((err = tb__wasi_fd_insert(c->ctx, &n, &nfd)) != W_ESUCCESS) {
    close(fd);
    return err;
  }
  return tb__wasi_put32(c, retptr, nfd);
}

TB__WASI_IMPL(sock_recv) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_FD_READ, &e);
  if (err) return err;
  uint32_t flags = A32(3), nptr = A32(4), fptr = A32(5);
  if (flags & ~3u) return W_EINVAL;
  if (!is_socket(e)) return W_ENOTSOCK;
  if (tb__wasi_ptr(c, nptr, 4) == NULL || tb__wasi_ptr(c, fptr, 2) == NULL) return W_EFAULT;
  tb__wasi_iovs_t v;
  if ((err = tb__wasi_iovs_load(c, A32(1), A32(2), &v)) != W_ESUCCESS) return err;
  struct msghdr msg = {.msg_iov = v.iov, .msg_iovlen = (size_t)v.n};
  int host_flags = ((flags & 1) ? MSG_PEEK : 0) | ((flags & 2) ? MSG_WAITALL : 0);
  ssize_t r;
  do r = recvmsg(e->host, &msg, host_flags);
  while (r < 0 && errno == EINTR);
  tb__wasi_iovs_free(&v);
  if (r < 0) return tb__wasi_errno(errno);
  tb__wasi_put32(c, nptr, (uint32_t)r);
  uint8_t *fp = tb__wasi_ptr(c, fptr, 2);
  tb__wasi_le16(fp, (msg.msg_flags & MSG_TRUNC) ? 1 : 0); /* recv_data_truncated */
  return W_ESUCCESS;
}

TB__WASI_IMPL(sock_send) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_FD_WRITE, &e);
  if (err) return err;
  uint32_t flags = A32(3), retptr = A32(4);
  if (flags != 0) return W_EINVAL; /* siflags defines no flags */
  if (!is_socket(e)) return W_ENOTSOCK;
  if (tb__wasi_ptr(c, retptr, 4) == NULL) return W_EFAULT;
  tb__wasi_iovs_t v;
  if ((err = tb__wasi_iovs_load(c, A32(1), A32(2), &v)) != W_ESUCCESS) return err;
  struct msghdr msg = {.msg_iov = v.iov, .msg_iovlen = (size_t)v.n};
  ssize_t r;
  /* MSG_NOSIGNAL: a peer that went away is EPIPE for the guest, not SIGPIPE for us. */
  do r = sendmsg(e->host, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  tb__wasi_iovs_free(&v);
  if (r < 0) return tb__wasi_errno(errno);
  return tb__wasi_put32(c, retptr, (uint32_t)r);
}

TB__WASI_IMPL(sock_shutdown) {
  tb__wasi_fd_t *e;
  uint32_t err = tb__wasi_fd_get(c->ctx, A32(0), R_SOCK_SHUTDOWN, &e);
  if (err) return err;
  uint32_t how = A32(1);
  if (how == 0 || how > 3) return W_EINVAL;
  if (!is_socket(e)) return W_ENOTSOCK;
  int h = how == 1 ? SHUT_RD : how == 2 ? SHUT_WR : SHUT_RDWR;
  return shutdown(e->host, h) == 0 ? W_ESUCCESS : tb__wasi_errno(errno);
}
