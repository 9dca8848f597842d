/* interpose.h - what the interposer offers the runtime above it: resolving
 * the real allocator before anything else runs. */
#ifndef HS_INTERPOSE_H
#define HS_INTERPOSE_H

#include "../common/internal.h"

/* Finds the real allocator (dlsym(RTLD_NEXT)); idempotent. */
HS_HIDDEN void hs__interpose_init(void);

#endif
