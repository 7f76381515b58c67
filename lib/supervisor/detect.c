/*
 * detect.c — what this machine can run, checked for real each time it is asked.
 *
 * wasm-http needs nothing but our engine. docker needs a daemon that answers: we send
 * GET /_ping over its unix socket and want "200 ... OK" back within a second (a socket
 * file alone proves nothing; a stopped daemon leaves one behind). firecracker needs
 * /dev/kvm opened read-write (readable is not enough to create VMs) and a VMM on $PATH.
 * The answers carry a sentence saying why not, for /health and the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor_int.h"

static bool on_path(const char *prog) {
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  char buf[4096];
  for (const char *p = path; *p;) {
    const char *c = strchr(p, ':');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
    if (n && access(buf, X_OK) == 0) return true;
    p += n + (c != NULL);
  }
  return false;
}

/* A blocking GET /_ping on a unix socket with a 1 s budget; 0 when the daemon said OK. */
static int docker_ping(const char *sock_path, char *why, size_t whycap) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(sock_path) >= sizeof sa.sun_path) {
    snprintf(why, whycap, "the socket path %s is too long", sock_path);
    return -1;
  }
  strcpy(sa.sun_path, sock_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    snprintf(why, whycap, "no daemon answers at %s (%s)", sock_path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  static const char rq[] = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
  char buf[1024];
  size_t got = 0;
  int rc = -1;
  if (write(fd, rq, sizeof rq - 1) != (ssize_t)(sizeof rq - 1)) {
    snprintf(why, whycap, "cannot write to %s (%s)", sock_path, strerror(errno));
    goto out;
  }
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1000) <= 0) {
      snprintf(why, whycap, "the daemon at %s did not answer /_ping within 1 s", sock_path);
      goto out;
    }
    ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    if (got == sizeof buf - 1) break;
  }
  buf[got] = 0;
  if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 9, "200", 3) == 0 && strstr(buf, "\r\n\r\nOK")) rc = 0;
  else snprintf(why, whycap, "the daemon at %s answered /_ping with \"%.40s\"", sock_path, buf);
out:
  close(fd);
  return rc;
}

const char *tb__sup_docker_socket(const char *configured) {
  if (configured && *configured) return configured;
  const char *h = getenv("DOCKER_HOST");
  if (h && strncmp(h, "unix://", 7) == 0) return h + 7;
  return "/var/run/docker.sock";
}

void tb_supervisor_detect(const char *docker_socket, tb_supervisor_caps_t *out) {
  memset(out, 0, sizeof *out);
  out->docker = docker_ping(tb__sup_docker_socket(docker_socket), out->docker_why, sizeof out->docker_why) == 0;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    snprintf(out->firecracker_why, sizeof out->firecracker_why, "/dev/kvm cannot be opened read-write (%s)",
             strerror(errno));
  } else {
    close(kvm);
    if (on_path("firecracker") || on_path("qemu-system-x86_64")) out->firecracker = true;
    else snprintf(out->firecracker_why, sizeof out->firecracker_why, "no VMM installed (firecracker or qemu-system-x86_64)");
  }
}
