/* fuzz_common.c - what every fuzz target shares: the .hsnap gate fixer and
 * the invariant failure that libFuzzer and Check both see as a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format/hsnap.h"
#include "fuzz.h"

_Noreturn void hs_fuzz_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
  abort();
}

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

int hs_fuzz_fix_hsnap(uint8_t *b, size_t size) {
  typedef struct hs_hsnap_header H;
  if (size < HS_HSNAP_HEADER_MIN)
    return 0;
  memcpy(b, HS_HSNAP_MAGIC, HS_HSNAP_MAGIC_LEN);
  put_le(b + offsetof(H, major), HS_HSNAP_MAJOR, 2);
  put_le(b + offsetof(H, file_size), size, 8);
  /* The same CRC the reader computes: every byte but the CRC field's. */
  size_t off = offsetof(H, crc);
  uLong c = crc32_z(0L, b, off);
  c = crc32_z(c, b + off + 4, size - off - 4);
  put_le(b + off, c, 4);
  return 1;
}
