/*
 * tool.c — a small command for the CLI tests: `tool args`, `tool env`, `tool cat PATH`,
 * `tool write PATH TEXT`, `tool ls DIR`, `tool exit N`. Errors print "tool: PATH:
 * strerror" to stderr and exit 1, like a coreutil.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int fail(const char *what) {
  fprintf(stderr, "tool: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *cmd = argv[1];
  if (strcmp(cmd, "args") == 0) {
    for (int i = 0; i < argc; i++) printf("%s\n", argv[i]);
  } else if (strcmp(cmd, "env") == 0) {
    for (char **e = environ; *e; e++) printf("%s\n", *e);
  } else if (strcmp(cmd, "cat") == 0 && argc == 3) {
    FILE *f = fopen(argv[2], "r");
    if (!f) return fail(argv[2]);
    int c;
    while ((c = fgetc(f)) != EOF) putchar(c);
    fclose(f);
  } else if (strcmp(cmd, "write") == 0 && argc == 4) {
    FILE *f = fopen(argv[2], "w");
    if (!f) return fail(argv[2]);
    fputs(argv[3], f);
    if (fclose(f) != 0) return fail(argv[2]);
  } else if (strcmp(cmd, "ls") == 0 && argc == 3) {
    DIR *d = opendir(argv[2]);
    if (!d) return fail(argv[2]);
    struct dirent *de;
    while ((de = readdir(d)))
      if (de->d_name[0] != '.') printf("%s\n", de->d_name);
    closedir(d);
  } else if (strcmp(cmd, "exit") == 0 && argc == 3) {
    return atoi(argv[2]);
  } else {
    return 2;
  }
  return 0;
}
