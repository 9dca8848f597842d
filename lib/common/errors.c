/* errors.c - the sentences behind the HS_E* codes of heapsnap.h. */
#include "internal.h"

const char *hs_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define HS_ERRNO_CASE(name, value, text)                                      \
  case HS_##name:                                                             \
    return text;
    HS_ERRNO_MAP(HS_ERRNO_CASE)
#undef HS_ERRNO_CASE
  }
  return "unknown heapsnap error";
}
