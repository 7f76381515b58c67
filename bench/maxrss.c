/*
 * maxrss.c — runs a command and writes its peak resident set size, in KiB, to a file:
 * bench/startup's stand-in for `/usr/bin/time -f %M` on machines without GNU time.
 *
 * usage: maxrss OUTFILE COMMAND [ARGS...]; exits with the command's status.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: maxrss OUTFILE COMMAND [ARGS...]\n");
    return 2;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("maxrss: fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror("maxrss: exec");
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("maxrss: wait4");
    return 2;
  }
  FILE *f = fopen(argv[1], "w");
  if (f == NULL) {
    perror("maxrss: fopen");
    return 2;
  }
  fprintf(f, "%ld\n", ru.ru_maxrss); /* Linux reports KiB */
  fclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
