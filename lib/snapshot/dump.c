/* dump.c - the public face of the .hsnap file: dump symbolizes first, load
 * validates everything (lib/format does the bytes). */
#include <errno.h>
#include <stdio.h>

#include "../format/hsnap.h"
#include "snapshot.h"

int hs_snapshot_dump(hs_snapshot_t *snap, const char *path) {
  if (!snap || !path)
    return HS_EINVAL;
  int rc = hs__snapshot_symbolize(snap);
  if (rc != 0)
    return rc;
  hs__guard_enter();
  rc = hs__hsnap_write(snap, path);
  int saved = errno;
  hs__guard_exit();
  errno = saved;
  return rc;
}

int hs_snapshot_load(const char *path, hs_snapshot_t **out, char *err,
                     size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!out || !path) {
    if (err && errlen)
      snprintf(err, errlen, "%s: invalid argument", path ? path : "(null)");
    return HS_EINVAL;
  }
  *out = NULL;
  hs__guard_enter();
  int rc = hs__hsnap_read(path, out, err, errlen);
  if (rc == 0 && hs__snapshot_init_wrappers(*out) != 0) {
    hs_snapshot_free(*out);
    *out = NULL;
    rc = HS_ENOMEM;
    if (err && errlen)
      snprintf(err, errlen, "%s: out of memory", path);
  }
  hs__guard_exit();
  return rc;
}
