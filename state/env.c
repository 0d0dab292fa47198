/*
 * env.c: the named databases of the store and beginning a read transaction
 * (see env.h).
 */
#include "state/env.h"

const char *const tdm__db_names[TDM__N_DBS] = {"meta",   "files", "procs",
                                               "hashes", "dirs",  "dirkeys",
                                               "forgotten"};

int tdm__env_begin_read(MDB_env *env, const tdm__log_t *log, const char *qdir,
                        MDB_txn **txn) {
  size_t last = 0;
  int rc;

  while ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn)) ==
         MDB_MAP_RESIZED) {
    MDB_envinfo info;
    if (log != NULL)
      tdm__debug(log, "%s: the writer grew the map; following it", qdir);
    if ((rc = mdb_env_set_mapsize(env, 0)) != 0)
      break;
    /* A map that did not grow and is still too small for the data is not a
       writer at work but a damaged meta page: retrying would spin forever. */
    mdb_env_info(env, &info);
    if (info.me_mapsize == last)
      return MDB_CORRUPTED;
    last = info.me_mapsize;
  }
  return rc;
}
