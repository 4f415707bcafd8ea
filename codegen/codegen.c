/* codegen.c: pd_codegen, the generator's driver. Resolves the plan (resolve.c), builds the 1F1B
 * schedule and proves it deadlock-free (runtime/schedule.c), then writes the generated folder:
 * stage_<k>.c (emit.c), single.c, schedule, Makefile and launch.conf, filling the text templates
 * of templates/. Deterministic: the same inputs give the same bytes. */
#include "codegen.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "planner/plan/plan_write.h"
#include "planner/util/fs.h"
#include "resolve.h"
#include "runtime/schedule/schedule.h"

/* Minibatches in the schedule written for inspection (the runtime regenerates it per epoch). */
#define CG_SCHEDULE_STEPS(n) (2 * (n) + 2)

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (n + 2 > cap) {
            cap = cap ? 2 * cap : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        buf[n++] = (char)c;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    else buf[n] = 0;
    return buf;
}

/* 64-bit FNV-1a of plan.yaml, leaving out the certificate's `seconds` line (a timing, the only
 * thing in plan.yaml that differs between identical runs), as 16 hex digits. */
static int plan_hash_masked(char hex[17], const char *path) {
    char *t = read_text(path);
    if (!t) return -1;
    uint64_t h = PD_FNV1A_BASIS;
    for (char *line = t; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        size_t sp = strspn(line, " ");
        if (strncmp(line + sp, "seconds: ", 9))
            h = pd_fnv1a(line, n, h);
        line += n;
    }
    free(t);
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
    return 0;
}

typedef struct {
    const char *key, *value;
} subst;

/* Prints a template with every @KEY@ replaced. */
static void fill(FILE *o, const char *tpl, const subst *s, int n) {
    for (const char *p = tpl; *p; p++) {
        if (*p == '@') {
            int done = 0;
            for (int i = 0; i < n && !done; i++) {
                size_t k = strlen(s[i].key);
                if (!strncmp(p + 1, s[i].key, k) && p[1 + k] == '@') {
                    fputs(s[i].value, o);
                    p += k + 1;
                    done = 1;
                }
            }
            if (done) continue;
        }
        fputc(*p, o);
    }
}

static char *fill_str(const char *tpl, const subst *s, int n) {
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o) return NULL;
    fill(o, tpl, s, n);
    fclose(o);
    return buf;
}

/* Text safe inside a C block comment, on one line. */
static void comment_safe(char *s) {
    for (char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\r') *p = ' ';
        if (p[0] == '*' && p[1] == '/') p[1] = '|';
    }
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t n, pd_diag *d) {
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) pd_diag_error(d, path, 0, 0, "cannot write: %s", strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path, pd_diag *d) {
    int bad = ferror(f);
    if (fclose(f) || bad) {
        pd_diag_error(d, path, 0, 0, "write failed");
        return 1;
    }
    return 0;
}

int pd_codegen(const pd_model *m, const pd_costgraph *g, const pd_plan *p, const char *outdir,
               const pd_codegen_opts *o, pd_diag *d) {
    (void)g;
    int cuda = o && o->backend && !strcmp(o->backend, "cuda");
    if (o && o->backend && strcmp(o->backend, "cpu") && !cuda) {
        pd_diag_error(d, NULL, 0, 0, "codegen: unknown backend '%s' (cpu, cuda)", o->backend);
        return 1;
    }
    int bf16 = cuda && o->precision && !strcmp(o->precision, "bf16");
    const char *sched = p->schedule[0] ? p->schedule : "1f1b";
    char root[4096];
    /* the checkout that holds templates/ and runtime/pdrt.h: o->root or the nearest folder above
     * it (a binary under build/ may be handed its own folder) */
    pd_find_checkout(root, sizeof root, o && o->root ? o->root : ".", 4);
    cg_program pr;
    if (cg_resolve(&pr, m, p, d)) return 1;
    int rc = 1;
    char path[4400], tpath[4400];
    char *banner_t = NULL, *make_t = NULL, *cmd = NULL;
    pd_schedule *sch = NULL;

    /* the schedule, proved deadlock-free with rendezvous sends, for the runtime's layout:
     * contiguous ranks, the plan's replicas and warm-up */
    int *warm = calloc((size_t)p->n_stages, sizeof *warm);
    int *reps = calloc((size_t)p->n_stages, sizeof *reps);
    if (!warm || !reps) { free(warm); free(reps); goto out; }
    for (int s = 0; s < p->n_stages; s++) {
        warm[s] = p->stages[s].warmup;
        reps[s] = p->stages[s].replicas;
    }
    int M = pd_schedule_default_microbatches(p->n_stages, reps);
    pd_schedule_spec sp = {sched, p->n_stages, reps, NULL, warm, 0, M};
    sp.steps = strcmp(sched, "1f1b") ? 2 * M : CG_SCHEDULE_STEPS(p->n_stages);
    sch = pd_schedule_build(&sp);
    char why[1024];
    if (!sch) pd_diag_error(d, NULL, 0, 0, "codegen: cannot build the %s schedule", sched);
    else if (pd_schedule_check(sch, why, sizeof why))
        pd_diag_error(d, NULL, 0, 0, "codegen: the %s schedule is unsafe: %s", sched, why);
    /* every longer run repeats the same pattern; check the runtime's epoch lengths too (and
     * other batch sizes: --microbatches) */
    int bad = !sch || d->errors;
    for (int steps = 0; !bad && steps <= 2 * M + 3 * p->n_stages + 3; steps++)
        for (int mb = 1; !bad && mb <= (strcmp(sched, "1f1b") ? M + 1 : 1); mb += (mb < 4 ? 1 : M - 3)) {
            pd_schedule_spec t_sp = sp;
            t_sp.steps = steps;
            t_sp.microbatches = strcmp(sched, "1f1b") ? mb : M;
            pd_schedule *t = pd_schedule_build(&t_sp);
            bad = !t || pd_schedule_check(t, why, sizeof why);
            pd_schedule_free(t);
            if (bad)
                pd_diag_error(d, NULL, 0, 0, "codegen: the %s schedule is unsafe for %d steps: %s",
                              sched, steps, why);
        }
    free(warm);
    free(reps);
    if (bad) goto out;
    FILE *f = open_out(outdir, "schedule", path, sizeof path, d);
    if (!f) goto out;
    pd_schedule_write(f, sch);
    if (close_out(f, path, d)) goto out;

    /* templates */
    snprintf(tpath, sizeof tpath, "%s/templates/banner.in", root);
    banner_t = read_text(tpath);
    if (!banner_t) { pd_diag_error(d, tpath, 0, 0, "cannot read template: %s", strerror(errno)); goto out; }
    snprintf(tpath, sizeof tpath, "%s/templates/%s", root, cuda ? "Makefile.cuda.in" : "Makefile.in");
    make_t = read_text(tpath);
    if (!make_t) { pd_diag_error(d, tpath, 0, 0, "cannot read template: %s", strerror(errno)); goto out; }

    char plan_hash[17] = "", plan_path[4400];
    snprintf(plan_path, sizeof plan_path, "%s/plan.yaml", outdir);
    if (plan_hash_masked(plan_hash, plan_path)) {
        pd_diag_error(d, plan_path, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    memcpy(pr.plan_hash, plan_hash, sizeof pr.plan_hash);
    cmd = strdup(o && o->command_line ? o->command_line : "pdplan");
    char model_path[4096], cost[256];
    snprintf(model_path, sizeof model_path, "%s", m->path);
    snprintf(cost, sizeof cost, "%s", m->cost_source);
    if (!cmd) goto out;
    comment_safe(cmd);
    comment_safe(model_path);
    comment_safe(cost);

    for (int s = 0; s < p->n_stages; s++) {
        char name[64], what[256];
        const cg_stage *cs = &pr.stages[s];
        snprintf(name, sizeof name, cuda ? "stage_%d.cu" : "stage_%d.c", s);
        snprintf(what, sizeof what,
                 "stage %d of %d: cost-graph nodes %d..%d, warm-up %d, %d weight versions, "
                 "predicted %.6g ms per minibatch", s, p->n_stages, cs->first_node, cs->last_node,
                 p->stages[s].warmup, p->stages[s].weight_versions, p->stages[s].time_ms);
        subst sb[] = {{"FILE", name}, {"VERSION", PDPLAN_VERSION}, {"COMMAND", cmd},
                      {"MODEL_PATH", model_path}, {"MODEL_HASH", m->hash},
                      {"PLAN_HASH", plan_hash}, {"COST_SOURCE", cost}, {"WHAT", what}};
        char *banner = fill_str(banner_t, sb, (int)(sizeof sb / sizeof sb[0]));
        if (!banner) goto out;
        f = open_out(outdir, name, path, sizeof path, d);
        if (!f) { free(banner); goto out; }
        if (cuda) cg_emit_stage_cuda(f, &pr, s, m, p, banner, bf16);
        else cg_emit_stage(f, &pr, s, m, p, banner);
        free(banner);
        if (close_out(f, path, d)) goto out;
    }

    /* single.c: every stage in one process (the CPU backend's reference; none for cuda) */
    if (!cuda) {
        subst sb[] = {{"FILE", "single.c"}, {"VERSION", PDPLAN_VERSION}, {"COMMAND", cmd},
                      {"MODEL_PATH", model_path}, {"MODEL_HASH", m->hash},
                      {"PLAN_HASH", plan_hash}, {"COST_SOURCE", cost},
                      {"WHAT", "every stage in one process: pdlaunch --single (sequential) and --emulate"}};
        f = open_out(outdir, "single.c", path, sizeof path, d);
        if (!f) goto out;
        fill(f, banner_t, sb, (int)(sizeof sb / sizeof sb[0]));
        fprintf(f, "#include \"pdrt.h\"\n\n");
        for (int s = 0; s < p->n_stages; s++) fprintf(f, "extern const pdrt_stage S%d_stage;\n", s);
        fprintf(f, "\nint main(int argc, char **argv) {\n    const pdrt_stage *const stages[] = {");
        for (int s = 0; s < p->n_stages; s++) fprintf(f, "%s&S%d_stage", s ? ", " : "", s);
        fprintf(f, "};\n    return pdrt_main_local(argc, argv, stages, %d);\n}\n", p->n_stages);
        if (close_out(f, path, d)) goto out;
    }

    /* Makefile */
    {
        char stages[4096] = "";
        size_t off = 0;
        for (int s = 0; s < p->n_stages && off < sizeof stages - 32; s++)
            off += (size_t)snprintf(stages + off, sizeof stages - off, "%sstage_%d", s ? " " : "", s);
        subst sb[] = {{"MODEL", m->name}, {"VERSION", PDPLAN_VERSION}, {"ROOT", root},
                      {"STAGES", stages}};
        f = open_out(outdir, "Makefile", path, sizeof path, d);
        if (!f) goto out;
        fill(f, make_t, sb, (int)(sizeof sb / sizeof sb[0]));
        if (close_out(f, path, d)) goto out;
    }

    /* launch.conf, read by scripts/pdlaunch */
    f = open_out(outdir, "launch.conf", path, sizeof path, d);
    if (!f) goto out;
    fprintf(f, "# pd_launch 1: generated by pdplan %s; read by scripts/pdlaunch\n", PDPLAN_VERSION);
    fprintf(f, "model %s\nschedule %s\nstages %d\nranks %d\nsingle %s\n", m->name,
            sched, p->n_stages, p->workers > 0 ? p->workers : p->n_stages,
            cuda ? "stage_0" : "pd_single"); /* cuda: stage_0 refuses --single with a message */
    if (cuda) fprintf(f, "backend cuda\n");
    for (int s = 0; s < p->n_stages; s++) {
        fprintf(f, "stage %d binary stage_%d replicas %d ranks", s, s, p->stages[s].replicas);
        for (int r = 0; r < p->stages[s].replicas; r++)
            fprintf(f, " %d", p->stages[s].ranks ? p->stages[s].ranks[r] : s);
        fprintf(f, "\n");
    }
    if (close_out(f, path, d)) goto out;
    rc = 0;
out:
    pd_schedule_free(sch);
    free(banner_t);
    free(make_t);
    free(cmd);
    cg_program_free(&pr);
    return rc;
}
