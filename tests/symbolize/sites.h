/* sites.h - the call sites the symbolizer tests resolve: each returns the
 * return address of a call and the source line of that call. */
#ifndef HS_TEST_SITES_H
#define HS_TEST_SITES_H

#include <stdint.h>

/* inline_site.c (-O2): the return address lies in inl_helper, inlined into
 * inline_site; *inner_line is the call inside inl_helper, *outer_line the
 * call of inl_helper. */
uintptr_t inline_site(int *inner_line, int *outer_line);

/* site_lib.c, built into the shared test libraries and reached by dlsym. */
typedef uintptr_t (*site_capture_fn)(int *line);

#endif
