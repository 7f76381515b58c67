/*
 * natsd.c — start, kill and restart a nats-server for tests (natsd.h).
 */
#include "natsd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *server_path(void) {
  const char *p = getenv("NATS_SERVER");
  return p && *p ? p : "/usr/sbin/nats-server";
}

bool natsd_available(void) { return access(server_path(), X_OK) == 0; }

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static pid_t spawn(natsd_t *d, int port) {
  char store[300], portarg[16], logf[300];
  snprintf(store, sizeof store, "%s/store", d->dir);
  snprintf(portarg, sizeof portarg, "%d", port);
  snprintf(logf, sizeof logf, "%s/nats.log", d->dir);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  execl(server_path(), "nats-server", "-js", "-a", "127.0.0.1", "-p", portarg, "-sd", store, "--ports_file_dir",
        d->dir, "-m", "0", (char *)NULL);
  _exit(127);
}

/* Waits for the ports file of `pid` and reads the client port from it. */
static int wait_port(natsd_t *d, pid_t pid) {
  char path[400];
  snprintf(path, sizeof path, "%s/nats-server_%d.ports", d->dir, (int)pid);
  for (int i = 0; i < 1000; i++) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return -ECHILD;
    FILE *f = fopen(path, "r");
    if (f) {
      char buf[1024];
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = '\0';
      const char *p = strstr(buf, "nats://127.0.0.1:");
      if (p) return atoi(p + strlen("nats://127.0.0.1:"));
    }
    sleep_ms(10);
  }
  return -ETIMEDOUT;
}

int natsd_start(natsd_t *d) {
  memset(d, 0, sizeof *d);
  const char *tmp = getenv("TMPDIR");
  snprintf(d->dir, sizeof d->dir, "%s/tb-natsd-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(d->dir) == NULL) return -errno;
  d->pid = spawn(d, -1);
  if (d->pid < 0) return -errno;
  int port = wait_port(d, d->pid);
  if (port < 0) {
    natsd_kill(d, SIGKILL);
    return port;
  }
  d->port = port;
  snprintf(d->url, sizeof d->url, "nats://127.0.0.1:%d", port);
  return 0;
}

void natsd_kill(natsd_t *d, int sig) {
  if (d->pid <= 0) return;
  kill(d->pid, sig);
  int st;
  while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR) {
  }
  d->pid = 0;
}

int natsd_restart(natsd_t *d) {
  if (d->pid > 0) natsd_kill(d, SIGKILL);
  for (int attempt = 0; attempt < 50; attempt++) {
    d->pid = spawn(d, d->port);
    if (d->pid < 0) return -errno;
    int port = wait_port(d, d->pid);
    if (port == d->port) return 0;
    natsd_kill(d, SIGKILL); /* most likely the port was not free yet */
    sleep_ms(100);
  }
  return -EADDRINUSE;
}

void natsd_cleanup(natsd_t *d) {
  if (d->dir[0] == '\0') return;
  natsd_kill(d, SIGKILL);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
  if (system(cmd) != 0) fprintf(stderr, "natsd: cannot remove %s\n", d->dir);
  d->dir[0] = '\0';
}
