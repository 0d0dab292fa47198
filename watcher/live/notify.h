/*
 * notify.h: telling systemd how a `run` is doing (sd_notify, libsystemd),
 * for Type=notify services. Every call does nothing when NOTIFY_SOCKET is
 * not set (not under systemd), and never fails: systemd going away must not
 * stop the work. Called from the loop thread of a started tdm_t whose
 * options ask for it (tdm_options_t.notify).
 */
#ifndef TDM_NOTIFY_H
#define TDM_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS line: the first pass over the sources is done. */
void tdm__notify_ready(uint64_t files, uint64_t pending);
/* STATUS=tracking N files, B bytes pending */
void tdm__notify_status(uint64_t files, uint64_t pending);
/* STOPPING=1: the final checkpoint is under way. */
void tdm__notify_stopping(void);
/* WATCHDOG=1 */
void tdm__notify_watchdog(void);
/* The watchdog interval systemd expects pings within (WatchdogSec=), in
   microseconds, for this process; 0 when there is none. */
uint64_t tdm__notify_watchdog_usec(void);

#endif /* TDM_NOTIFY_H */
