/* prog.h - what the leak test programs share: heapsnap's functions found
 * with dlsym (the programs are never linked with it), and a stack scrub. */
#ifndef HS_LEAK_PROG_H
#define HS_LEAK_PROG_H

#include <dlfcn.h>
#include <string.h>

/* dlsym's object pointer made a function pointer without the cast ISO C
 * forbids. */
#define SYM(fp, name)                                                         \
  do {                                                                        \
    void *sym_ = dlsym(RTLD_DEFAULT, name);                                   \
    memcpy(&(fp), &sym_, sizeof(fp));                                         \
  } while (0)

#define NOINLINE __attribute__((noinline))
#define KEY ((uintptr_t)0x5a5a5a5a5a5a5a5aull)

/* Zeroes the stack below the caller, where dead frames kept copies of the
 * pointers a scenario dropped. */
__attribute__((noinline, unused)) static void scrub(void) {
  volatile char buf[32768];
  memset((char *)buf, 0, sizeof buf);
  __asm__ volatile("" ::"r"(buf) : "memory");
}

#endif
