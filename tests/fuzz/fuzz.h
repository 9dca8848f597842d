/* fuzz.h - the fuzz targets' entry points, shared by the libFuzzer drivers
 * and by the replay test that runs the corpora and regressions through them. */
#ifndef HS_FUZZ_H
#define HS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Each returns 0 and aborts (with a line on stderr) when an invariant the
 * target checks does not hold; memory errors are the sanitizers' to report. */
int hs_fuzz_hsnap_load(const uint8_t *data, size_t size);
int hs_fuzz_snapdiff_args(const uint8_t *data, size_t size);
int hs_fuzz_reclayout_ops(const uint8_t *data, size_t size);
int hs_fuzz_http_request(const uint8_t *data, size_t size);

/* Makes an .hsnap image pass the reader's cheap gates when it is at least
 * a 1.0 header long: magic, major 1, file_size = size, then a recomputed
 * CRC. Without this almost every mutation dies at the checksum and the
 * fuzzer never reaches the section parser. Returns 1 if it patched. */
int hs_fuzz_fix_hsnap(uint8_t *b, size_t size);

#define HS_FUZZ_CHECK(cond)                                                   \
  do {                                                                        \
    if (!(cond))                                                              \
      hs_fuzz_fail(__FILE__, __LINE__, #cond);                                \
  } while (0)
_Noreturn void hs_fuzz_fail(const char *file, int line, const char *what);

#endif
