/*
 * env.h: what the parts of the store share about its LMDB environment (the
 * named databases, beginning a read transaction). Internal to state/.
 */
#ifndef TDM_STATE_ENV_H
#define TDM_STATE_ENV_H

#include <lmdb.h>

#include "base/log.h"

/* The named databases, in the order store.h lists them. "dirs" and
   "dirkeys" are new in schema 2 (a store of schema 1 has no directory
   table), "forgotten" in schema 3. */
enum { TDM__DB_META, TDM__DB_FILES, TDM__DB_PROCS, TDM__DB_HASHES,
       TDM__DB_DIRS, TDM__DB_DIRKEYS, TDM__DB_FORGOTTEN, TDM__N_DBS };
#define TDM__SCHEMA1_DBS TDM__DB_DIRS
#define TDM__SCHEMA2_DBS TDM__DB_FORGOTTEN /* "forgotten": new in schema 3 */
extern const char *const tdm__db_names[TDM__N_DBS];

/*
 * Begin a read transaction on `env`. A writer in another process may have
 * grown the map past ours (MDB_MAP_RESIZED): adopt its size and try again
 * (legal when the calling thread has no other transaction open). Returns an
 * untranslated LMDB result; MDB_CORRUPTED for a map that does not grow yet is
 * too small for the data (a damaged meta page, not a writer at work).
 * `log` (may be NULL) gets a debug line naming `qdir` when the map is
 * followed.
 */
int tdm__env_begin_read(MDB_env *env, const tdm__log_t *log, const char *qdir,
                        MDB_txn **txn);

#endif /* TDM_STATE_ENV_H */
