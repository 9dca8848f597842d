/* jit.c - allocations called from code in an anonymous executable mapping
 * (as JIT-compiled code is): no module, no CFI; the capture must neither
 * crash nor disagree with libunwind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static unsigned long total;
static void __attribute__((noinline)) alloc_some(void) {
  char *p = malloc(48);
  memset(p, 2, 48);
  total += (unsigned char)p[5];
  free(p);
}

int main(void) {
  /* sub $8,%rsp; call *%rdi; add $8,%rsp; ret */
  static const unsigned char stub[] = {0x48, 0x83, 0xec, 0x08, 0xff, 0xd7,
                                       0x48, 0x83, 0xc4, 0x08, 0xc3};
  unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED)
    return 1;
  for (int k = 0; k < 8; k++) /* eight copies: eight return addresses */
    memcpy(code + 64 * k, stub, sizeof stub);
  for (int i = 0; i < 4000; i++) {
    void (*fn)(void (*)(void));
    unsigned char *at = code + 64 * (i % 8);
    memcpy(&fn, &at, sizeof fn); /* ISO C has no object-to-code cast */
    fn(alloc_some);
  }
  printf("jit total %lu\n", total);
  return 0;
}
