/* notify.c: sd_notify for Type=notify services (see notify.h). */
#include "live/notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

static void status_line(char *buf, size_t cap, uint64_t files,
                        uint64_t pending) {
  snprintf(buf, cap, "STATUS=tracking %" PRIu64 " file%s, %" PRIu64
           " byte%s pending", files, files == 1 ? "" : "s", pending,
           pending == 1 ? "" : "s");
}

void tdm__notify_ready(uint64_t files, uint64_t pending) {
  char s[160];
  status_line(s, sizeof(s), files, pending);
  sd_notifyf(0, "READY=1\n%s", s);
}

void tdm__notify_status(uint64_t files, uint64_t pending) {
  char s[160];
  status_line(s, sizeof(s), files, pending);
  sd_notify(0, s);
}

void tdm__notify_stopping(void) {
  sd_notify(0, "STOPPING=1\nSTATUS=stopping: final checkpoint");
}

void tdm__notify_watchdog(void) {
  sd_notify(0, "WATCHDOG=1");
}

uint64_t tdm__notify_watchdog_usec(void) {
  uint64_t usec = 0;
  return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
