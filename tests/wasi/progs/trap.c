/* trap.c — abort() is a trap (unreachable), not an exit: the harness expects TB_ETRAP. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  printf("about to abort\n");
  fflush(stdout);
  abort();
}
