/* pdprof_train.c: pdprof --train, profiling inside training as PipeDream's profiler does. Plans
 * the model as one stage on one worker (bin/pdplan -n 1), builds the generated stage, trains it
 * with scripts/pdlaunch for N minibatches (--jobs trainings at once, as many as the run will have
 * ranks per host, so that they share the caches and memory bandwidth as its ranks will), and
 * returns the per-layer times the runtime measured between the stage's marks (runtime/laps.c:
 * run/profile.yaml; averaged over the jobs), which include what the layer kernels alone miss:
 * zeroing of the gradients, accumulation, the optimizer, the cache state of a real step. Children
 * run with their output in a log that is shown when one fails. */
#define _POSIX_C_SOURCE 200809L
#include "pdprof_train.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_INTERNAL = 1, EXIT_INPUT = 2 };
enum { MAX_JOBS = 16 };

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The folder of this executable (bin/), and the checkout above it ($PDC_ROOT first). */
static int find_paths(char *bindir, char *root, size_t n) {
    char buf[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (len <= 0) return -1;
    buf[len] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash) return -1;
    *slash = 0;
    snprintf(bindir, n, "%s", buf);
    const char *env = getenv("PDC_ROOT");
    if (env && *env) {
        snprintf(root, n, "%s", env);
        return 0;
    }
    slash = strrchr(buf, '/');
    if (!slash) return -1;
    *slash = 0;
    snprintf(root, n, "%s", buf[0] ? buf : "/");
    return 0;
}

/* Prints the last lines of the log. */
static void show_log(const char *log) {
    FILE *f = fopen(log, "r");
    if (!f) return;
    char line[1024];
    char ring[20][1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) snprintf(ring[n++ % 20], sizeof ring[0], "%s", line);
    fclose(f);
    for (int i = n > 20 ? n - 20 : 0; i < n; i++) fprintf(stderr, "  | %s", ring[i % 20]);
}

/* The children running now, each the leader of its own process group (pdlaunch's mpirun and
 * ranks go with it), and the signal that stopped pdprof (0: none). */
static volatile pid_t children[MAX_JOBS + 1];
static volatile sig_atomic_t stopped_by;

static void on_signal(int sig) {
    stopped_by = sig;
    for (int i = 0; i <= MAX_JOBS; i++)
        if (children[i] > 0) kill(-children[i], SIGTERM);
}

static void track(pid_t pid, int add) {
    for (int i = 0; i <= MAX_JOBS; i++)
        if (add ? children[i] == 0 : children[i] == pid) {
            children[i] = add ? pid : 0;
            return;
        }
}

/* Starts argv with stdout and stderr appended to log, in a process group of its own; the
 * child's pid, or -1. */
static pid_t start(char *const argv[], const char *log) {
    if (stopped_by) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "pdprof: error: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        setpgid(pid, pid); /* both sides: whichever runs first */
        track(pid, 1);
        if (stopped_by) kill(-pid, SIGTERM);
    }
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits for pid started from argv; 0 when it exited 0, else -1 with its log's tail shown. */
static int finish(pid_t pid, char *const argv[], const char *log) {
    int status = 0;
    if (pid < 0) return -1;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) break;
    track(pid, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (stopped_by) return -1; /* interrupted: no child's failure to report */
    fprintf(stderr, "pdprof: error: `%s", argv[0]);
    for (int i = 1; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    if (WIFEXITED(status)) fprintf(stderr, "` exited with status %d; its output ends:\n", WEXITSTATUS(status));
    else fprintf(stderr, "` was killed by signal %d; its output ends:\n", WTERMSIG(status));
    show_log(log);
    return -1;
}

static int run(char *const argv[], const char *log) {
    return finish(start(argv, log), argv, log);
}

int pdprof_train(const pdprof_train_opts *o, const pd_model *m, double *fwd, double *bwd,
                 char *header, size_t header_cap) {
    char bindir[PATH_MAX], root[PATH_MAX], pdplan[PATH_MAX + 16], pdlaunch[PATH_MAX + 32];
    if (o->jobs < 1 || o->jobs > MAX_JOBS) {
        fprintf(stderr, "pdprof: error: --jobs must be 1 to %d\n", MAX_JOBS);
        return EXIT_INTERNAL;
    }
    if (find_paths(bindir, root, sizeof bindir)) {
        fprintf(stderr, "pdprof: error: cannot find where pdprof is installed (/proc/self/exe)\n");
        return EXIT_INTERNAL;
    }
    snprintf(pdplan, sizeof pdplan, "%s/pdplan", bindir);
    snprintf(pdlaunch, sizeof pdlaunch, "%s/scripts/pdlaunch", root);
    if (!is_file(pdplan) || !is_file(pdlaunch)) {
        fprintf(stderr, "pdprof: error: --train needs %s and %s (build the checkout with make, or "
                "set PDC_ROOT to it)\n", pdplan, pdlaunch);
        return EXIT_INTERNAL;
    }
    const char *tmpbase = getenv("TMPDIR");
    char work[PATH_MAX];
    snprintf(work, sizeof work, "%s/pdprof.XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(work)) {
        fprintf(stderr, "pdprof: error: cannot create a folder %s: %s\n", work, strerror(errno));
        return EXIT_INTERNAL;
    }
    /* SIGINT, SIGTERM, SIGHUP: stop the children, remove the folder, then die of the signal */
    struct sigaction sa, old_sa[3];
    const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old_sa[i]);
    char gen[PATH_MAX + 8], log[PATH_MAX + 8], steps[32];
    snprintf(gen, sizeof gen, "%s/gen", work);
    snprintf(log, sizeof log, "%s/log", work);
    snprintf(steps, sizeof steps, "%d", o->steps);
    double t0 = now_s();
    int status = EXIT_INTERNAL;
    if (!o->quiet) fprintf(stderr, "pdprof: [1/3] planning %s as one stage (in %s)\n", o->model_path, work);
    char *plan[] = {pdplan, (char *)o->model_path, "-n", "1", "-q", "-o", gen, NULL};
    if (run(plan, log)) goto out;
    if (!o->quiet) fprintf(stderr, "pdprof: [2/3] building the stage (%.1f s)\n", now_s() - t0);
    char *build[] = {"make", "-s", "-C", gen, NULL};
    if (run(build, log)) goto out;
    if (!o->quiet)
        fprintf(stderr, "pdprof: [3/3] training %d minibatches%s on %s data, timing every layer (%.1f s)\n",
                o->steps, o->jobs > 1 ? " in each of the jobs at once" : "", o->data, now_s() - t0);
    /* the jobs, at once: each its own run folder and log */
    char rundir[MAX_JOBS][PATH_MAX + 16], jlog[MAX_JOBS][PATH_MAX + 16];
    char *train[MAX_JOBS][16];
    pid_t pid[MAX_JOBS];
    for (int j = 0; j < o->jobs; j++) {
        snprintf(rundir[j], sizeof rundir[j], "%s/run%d", work, j);
        snprintf(jlog[j], sizeof jlog[j], "%s/log%d", work, j);
        char *a[] = {pdlaunch, gen, "--steps", steps, "--no-eval", "--no-trace", "--log-every", steps,
                     "--data", (char *)o->data, "--run-dir", rundir[j], NULL};
        memcpy(train[j], a, sizeof a);
        pid[j] = start(train[j], jlog[j]);
    }
    int failed = 0;
    for (int j = 0; j < o->jobs; j++) failed |= finish(pid[j], train[j], jlog[j]) != 0;
    if (failed) goto out;
    /* each job's run/profile.yaml, read as pdplan reads it, averaged per layer */
    for (int i = 0; i < m->n_layers; i++) fwd[i] = bwd[i] = 0;
    for (int j = 0; j < o->jobs; j++) {
        char prof[sizeof rundir[0] + 16];
        snprintf(prof, sizeof prof, "%.*s/profile.yaml", (int)(sizeof rundir[0] - 1), rundir[j]);
        pd_model c;
        pd_diag d = {.out = stderr};
        if (pd_model_load(o->model_path, &c, &d)) goto out;
        if (c.n_layers != m->n_layers || pd_profile_apply(prof, &c, &d) || pd_diag_errors(&d)) {
            fprintf(stderr, "pdprof: error: the runtime's profile %s does not fit %s\n", prof, o->model_path);
            pd_model_free(&c);
            goto out;
        }
        for (int i = 1; i < m->n_layers; i++) {
            fwd[i] += c.layers[i].fwd_ms / o->jobs;
            bwd[i] += c.layers[i].bwd_ms / o->jobs;
        }
        pd_model_free(&c);
    }
    char jobs[64] = "";
    if (o->jobs > 1) snprintf(jobs, sizeof jobs, " (%d jobs at once, averaged)", o->jobs);
    snprintf(header, header_cap,
             "# Measured by pdprof --train on cpu: %s trained as one stage on one process%s for %d minibatches, "
             "the runtime timing every layer between its marks (mean after the first tenth, at most 20; work "
             "outside the layers attributed: loading to the first layer, loss to the last, accumulation and "
             "optimizer by parameter bytes).\n", m->name, jobs, o->steps);
    if (!o->quiet) fprintf(stderr, "pdprof: profiled inside training in %.1f s\n", now_s() - t0);
    status = EXIT_OK;
out:
    if (o->keep) {
        fprintf(stderr, "pdprof: kept %s\n", work);
    } else {
        int sig = stopped_by;
        stopped_by = 0; /* let the removal run */
        char *rm[] = {"rm", "-rf", work, NULL};
        run(rm, "/dev/null");
        stopped_by = sig;
    }
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &old_sa[i], NULL);
    if (stopped_by) {
        fprintf(stderr, "pdprof: stopped by signal %d; nothing written\n", (int)stopped_by);
        raise(stopped_by);
    }
    return status;
}
