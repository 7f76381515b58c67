/* exit.c — proc_exit: the harness expects exit status 42, and nothing after it to run. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  printf("before exit\n");
  fflush(stdout);
  exit(42);
  printf("after exit\n");
  return 0;
}
