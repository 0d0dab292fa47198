/*
 * reader.h: reading a tail-mode file from its bookmark in large preads and
 * handing the framed chunks over.
 */
#ifndef TDM_READER_H
#define TDM_READER_H

#include <stddef.h>
#include <stdint.h>

#include "core/filetable.h"
#include "tidemark.h"

/* Smallest read buffer (the buffer is max(this, --max-record)). */
#define TDM_READ_MIN (1u << 20)

/*
 * Read `f` through `fd` from f->pos up to `end` (the size it had when it was
 * looked at: a file that keeps growing, such as a processor's own output in
 * the tree, must not be chased forever), delivering chunks.
 * Returns 0 (end reached, or only a partial line is left), TDM_EPROC,
 * TDM_ESTOPPED, -errno on a read error (logged, naming the file).
 */
int tdm__read(tdm_t *t, tdm_file_t *f, int fd, uint64_t end);

/* tdm_run_once begins: records that stopped their file in the last call
   (settled, no --dead-letter) are offered again in this one. */
void tdm__suspects_release(tdm_t *t);

/* The chunk of the `cut` bytes at t->buf, read from `f` at f->pos (a piece
   of an over-long record when `piece`). Fields about records are left as
   they are. */
void tdm__chunk_fill(const tdm_t *t, const tdm_file_t *f, size_t cut,
                     int piece, tdm_chunk_t *c);

/* `cut` bytes of `f` at its bookmark were delivered (a piece of a longer
   record if `piece`, said once per record): move the bookmark past them,
   count them, and make a FAILED file ACTIVE again (a later pass got
   through). The marker is the caller's to move: plain and compressed
   files compute it differently. */
void tdm__advance(tdm_t *t, tdm_file_t *f, size_t cut, int piece);

#endif /* TDM_READER_H */
