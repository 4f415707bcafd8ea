/* progress.h: a progress ticker on stderr for a command's slow phases: after a phase has run one
 * second, "PROG: PHASE...", then every ten seconds "PROG: still PHASE (N s)", and at its end
 * "PROG: PHASE took N s" when it ticked at all. One ticker per process (SIGALRM, ITIMER_REAL). */
#ifndef PD_PROGRESS_H
#define PD_PROGRESS_H

/* Starts the ticker; prog and phase_names (indexed by phase, entry 0 unused: phase 0 is "none")
 * must outlive it. */
void pd_progress_init(const char *prog, const char *const *phase_names);
/* A phase (>= 1) begins: the second restarts. */
void pd_progress_begin(int phase);
/* The phase ends (and says how long it took when it ticked). */
void pd_progress_end(void);
/* Stops the ticker (before printing to stdout, and at exit). */
void pd_progress_stop(void);

#endif
