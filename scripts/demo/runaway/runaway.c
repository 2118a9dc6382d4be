// Loops forever on purpose: the host's fuel budget (or deadline) must stop it.
#include "runaway.h"

void exports_runaway_summarize(runaway_string_t *text, runaway_string_t *ret) {
  volatile unsigned long spins = 0;
  for (;;) {
    spins++;
  }
  (void)text;
  (void)ret;
}
