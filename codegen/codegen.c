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
#include "emit_common.h"
#include "planner/plan/plan_write.h"
#include "planner/util/fs.h"
#include "resolve.h"
#include "runtime/schedule/schedule.h"
#include "template.h"

/* Minibatches in the schedule written for inspection (the runtime regenerates it per epoch). */
#define CG_SCHEDULE_STEPS(n) (2 * (n) + 2)

/* 64-bit FNV-1a of plan.yaml, leaving out the certificate's `seconds` line (a timing, the only
 * thing in plan.yaml that differs between identical runs), as 16 hex digits. */
static int plan_hash_masked(char hex[17], const char *path) {
    char *t = cg_read_text(path);
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

/* The plan's schedule (1f1b, flush, gpipe, zb-h1, zb-h2, 2bw) for the runtime's layout (contiguous ranks, the plan's
 * replicas and warm-up), proved deadlock-free with rendezvous sends for the schedule written and
 * for every epoch length and batch size the runtime may run. NULL with diagnostics if unsafe. */
static pd_schedule *checked_schedule(const pd_plan *p, int microbatches, pd_diag *d) {
    if (p->chunks > 1) { /* interleaved: whole batches and one shorter last batch */
        pd_schedule *t = NULL;
        char why[512];
        for (int steps = 0; steps <= 2 * microbatches; steps++) {
            pd_schedule_free(t);
            t = pd_schedule_interleaved(p->workers, p->chunks, steps, microbatches);
            if (!t || pd_schedule_check(t, why, sizeof why)) {
                pd_diag_error(d, NULL, 0, 0, "codegen: the interleaved schedule is unsafe for %d "
                              "steps: %s", steps, t ? why : "cannot build it");
                pd_schedule_free(t);
                return NULL;
            }
        }
        return t; /* 2 microbatches' worth, as the others write */
    }
    const char *sched = p->schedule[0] ? p->schedule : "1f1b";
    int one_f_one_b = !strcmp(sched, "1f1b");
    int *warm = calloc((size_t)p->n_stages, sizeof *warm);
    int *reps = calloc((size_t)p->n_stages, sizeof *reps);
    if (!warm || !reps) { free(warm); free(reps); return NULL; }
    for (int s = 0; s < p->n_stages; s++) {
        warm[s] = p->stages[s].warmup;
        reps[s] = p->stages[s].replicas;
    }
    int M = microbatches;
    pd_schedule_spec sp = {sched, p->n_stages, reps, NULL, warm, 0, M};
    sp.steps = one_f_one_b ? CG_SCHEDULE_STEPS(p->n_stages) : 2 * M;
    pd_schedule *sch = pd_schedule_build(&sp);
    char why[1024];
    if (!sch) pd_diag_error(d, NULL, 0, 0, "codegen: cannot build the %s schedule", sched);
    else if (pd_schedule_check(sch, why, sizeof why))
        pd_diag_error(d, NULL, 0, 0, "codegen: the %s schedule is unsafe: %s", sched, why);
    /* every longer run repeats the same pattern; check the runtime's epoch lengths too (and
     * other batch sizes: --microbatches) */
    int bad = !sch || d->errors;
    for (int steps = 0; !bad && steps <= 2 * M + 3 * p->n_stages + 3; steps++)
        for (int mb = 1; !bad && mb <= (one_f_one_b ? 1 : M + 1); mb += (mb < 4 || M < 5 ? 1 : M - 3)) {
            pd_schedule_spec t_sp = sp;
            t_sp.steps = steps;
            t_sp.microbatches = one_f_one_b ? M : mb;
            pd_schedule *t = pd_schedule_build(&t_sp);
            bad = !t || pd_schedule_check(t, why, sizeof why);
            pd_schedule_free(t);
            if (bad)
                pd_diag_error(d, NULL, 0, 0, "codegen: the %s schedule is unsafe for %d steps: %s",
                              sched, steps, why);
        }
    free(warm);
    free(reps);
    if (bad) {
        pd_schedule_free(sch);
        return NULL;
    }
    return sch;
}

/* The banner's command line, broken between words so that no line of the banner passes the
 * generated code's width (a word longer than that stays whole). malloc'd. */
static char *wrap_command(const char *cmd) {
    const size_t lead = strlen(" * command: ");
    char *out = malloc(2 * strlen(cmd) + 64), *w = out;
    if (!out) return NULL;
    size_t col = lead;
    for (const char *p = cmd; *p;) {
        size_t n = strcspn(p, " ");
        if (col > lead && col + 1 + n > CG_COLUMNS) {
            w += sprintf(w, "\n *          ");
            col = lead;
        } else if (col > lead) {
            *w++ = ' ';
            col++;
        }
        memcpy(w, p, n);
        w += n;
        col += n;
        p += n;
        while (*p == ' ') p++;
    }
    *w = 0;
    return out;
}

/* The generated folder's text that does not depend on the stage: templates and banner values. */
typedef struct {
    char *banner_t, *stage_t, *single_t, *make_t;
    char *cmd, model_path[4096], cost[256], plan_hash[17];
} texts;

static char *read_template(const char *root, const char *name, pd_diag *d) {
    char path[4400];
    snprintf(path, sizeof path, "%s/templates/%s", root, name);
    char *t = cg_read_text(path);
    if (!t) pd_diag_error(d, path, 0, 0, "cannot read template: %s", strerror(errno));
    return t;
}

static char *banner_for(const texts *t, const pd_model *m, const char *file, const char *what,
                        pd_diag *d) {
    cg_subst sb[] = {{"FILE", file}, {"VERSION", PDPLAN_VERSION}, {"COMMAND", t->cmd},
                     {"MODEL_PATH", t->model_path}, {"MODEL_HASH", m->hash},
                     {"PLAN_HASH", t->plan_hash}, {"COST_SOURCE", t->cost}, {"WHAT", what}};
    char unknown[64];
    char *b = cg_fill_str(t->banner_t, sb, (int)(sizeof sb / sizeof sb[0]), unknown,
                          sizeof unknown);
    if (!b) pd_diag_error(d, NULL, 0, 0, "codegen: templates/banner.in: cannot fill%s%s%s",
                          unknown[0] ? " @" : "", unknown, unknown[0] ? "@" : "");
    return b;
}

static int write_stages(const texts *t, const cg_program *pr, const pd_model *m,
                        const pd_plan *p, const char *outdir, int cuda, int bf16, pd_diag *d) {
    char path[4400];
    for (int s = 0; s < p->n_stages; s++) {
        char name[64], what[256];
        const cg_stage *cs = &pr->stages[s];
        snprintf(name, sizeof name, cuda ? "stage_%d.cu" : "stage_%d.c", s);
        snprintf(what, sizeof what,
                 "stage %d of %d: cost-graph nodes %d..%d, warm-up %d, %d weight versions,\n"
                 " * predicted %.6g ms per minibatch", s, p->n_stages, cs->first_node,
                 cs->last_node, p->stages[s].warmup, p->stages[s].weight_versions,
                 p->stages[s].time_ms);
        char *banner = banner_for(t, m, name, what, d);
        if (!banner) return 1;
        FILE *f = open_out(outdir, name, path, sizeof path, d);
        int rc = !f;
        if (f && cuda) rc = cg_emit_stage_cuda(f, pr, s, m, p, banner, t->stage_t, bf16, d);
        else if (f) rc = cg_emit_stage(f, pr, s, m, p, banner, t->stage_t, d);
        free(banner);
        if (f && close_out(f, path, d)) rc = 1;
        if (rc) return 1;
    }
    return 0;
}

/* single.c: every stage in one process (the CPU backend's reference). */
static int write_single(const texts *t, const pd_model *m, const pd_plan *p, const char *outdir,
                        pd_diag *d) {
    char path[4400];
    char *banner = banner_for(t, m, "single.c", "every stage in one process: pdlaunch --single "
                              "(sequential) and --emulate", d);
    char *decls = NULL, *list = NULL;
    size_t n1, n2;
    FILE *a = open_memstream(&decls, &n1), *b = open_memstream(&list, &n2);
    if (a && b) {
        for (int s = 0; s < p->n_stages; s++) fprintf(a, "extern const pdrt_stage S%d_stage;\n", s);
        char *line = NULL;
        size_t n3;
        FILE *l = open_memstream(&line, &n3);
        if (l) {
            fprintf(l, "    const pdrt_stage *const stages[] = {");
            for (int s = 0; s < p->n_stages; s++) fprintf(l, "%s&S%d_stage", s ? ", " : "", s);
            fprintf(l, "};");
            if (!fclose(l)) cg_wrap_line(b, line, strlen(line));
            free(line);
        }
    }
    if (a) fclose(a);
    if (b) fclose(b);
    int rc = 1;
    char n_stages[16], unknown[64];
    snprintf(n_stages, sizeof n_stages, "%d", p->n_stages);
    FILE *f = banner && decls && list ? open_out(outdir, "single.c", path, sizeof path, d) : NULL;
    if (f) {
        cg_subst sb[] = {{"BANNER", banner}, {"DECLARATIONS", decls}, {"STAGES", list},
                         {"N_STAGES", n_stages}};
        rc = cg_fill(f, t->single_t, sb, (int)(sizeof sb / sizeof sb[0]), unknown, sizeof unknown);
        if (rc) pd_diag_error(d, NULL, 0, 0, "codegen: templates/single.c.in names @%s@, which "
                              "the generator does not fill", unknown);
        rc |= close_out(f, path, d);
    }
    free(banner);
    free(decls);
    free(list);
    return rc;
}

/* The Makefile from its template; no_stages: its stage list empty (the CUDA backend's
 * interleaved plans build only the ranks' binaries, write_ranks). */
static int write_makefile(const texts *t, const pd_model *m, const pd_plan *p, const char *root,
                          const char *outdir, int no_stages, pd_diag *d) {
    char path[4400], unknown[64];
    char *stages = malloc((size_t)p->n_stages * 16 + 1);
    if (!stages) return 1;
    size_t off = 0;
    stages[0] = 0;
    for (int s = 0; s < p->n_stages && !no_stages; s++)
        off += (size_t)sprintf(stages + off, "%sstage_%d", s ? " " : "", s);
    cg_subst sb[] = {{"MODEL", m->name}, {"VERSION", PDPLAN_VERSION}, {"ROOT", root},
                     {"STAGES", stages}};
    FILE *f = open_out(outdir, "Makefile", path, sizeof path, d);
    int rc = 1;
    if (f) {
        rc = cg_fill(f, t->make_t, sb, (int)(sizeof sb / sizeof sb[0]), unknown, sizeof unknown);
        if (rc) pd_diag_error(d, NULL, 0, 0, "codegen: the Makefile template names @%s@, which "
                              "the generator does not fill", unknown);
        rc |= close_out(f, path, d);
    }
    free(stages);
    return rc;
}

/* rank_R.c (cpu) or rank_R.cu (cuda): rank R's binary under an interleaved plan, which runs its
 * chunks' stages R, R + p, ... through pdrt_main_chunks or pdrt_cuda_main_chunks. */
static int write_rank(const texts *t, const pd_model *m, const pd_plan *p, int r, int cuda,
                      const char *outdir, pd_diag *d) {
    char path[4400], name[64], what[128];
    int P = p->workers, V = p->chunks;
    snprintf(name, sizeof name, "rank_%d.%s", r, cuda ? "cu" : "c");
    snprintf(what, sizeof what, "rank %d of %d (interleaved): stages %d, %d, ... of %d, "
             "one chunk each", r, P, r, r + P, p->n_stages);
    char *banner = banner_for(t, m, name, what, d);
    FILE *f = banner ? open_out(outdir, name, path, sizeof path, d) : NULL;
    if (f && cuda) {
        fprintf(f, "%s#include \"pdrt_cuda.h\"\n\n", banner);
        for (int c = 0; c < V; c++) fprintf(f, "pdrt_cuda_stage S%d_describe(void);\n", c * P + r);
        fprintf(f, "\nint main(int argc, char **argv) {\n    const pdrt_cuda_stage chunks[] = {");
        for (int c = 0; c < V; c++) fprintf(f, "%sS%d_describe()", c ? ", " : "", c * P + r);
        fprintf(f, "};\n    return pdrt_cuda_main_chunks(argc, argv, chunks, %d);\n}\n", V);
    } else if (f) {
        fprintf(f, "%s#include \"pdrt.h\"\n\n", banner);
        for (int c = 0; c < V; c++) fprintf(f, "extern const pdrt_stage S%d_stage;\n", c * P + r);
        fprintf(f, "\nint main(int argc, char **argv) {\n    const pdrt_stage *const chunks[] = {");
        for (int c = 0; c < V; c++) fprintf(f, "%s&S%d_stage", c ? ", " : "", c * P + r);
        fprintf(f, "};\n    return pdrt_main_chunks(argc, argv, chunks, %d);\n}\n", V);
    }
    free(banner);
    return !f || close_out(f, path, d);
}

/* Interleaved plans: every rank's binary source, and the Makefile's rules for them, appended to
 * the template's (cpu: whose stage_K binaries are not launched; cuda: whose stage list is
 * empty, the stages compiled once more without their main as chunk_K.o). */
static int write_ranks(const texts *t, const pd_model *m, const pd_plan *p, const char *outdir,
                       int cuda, pd_diag *d) {
    char path[4400];
    int P = p->workers, V = p->chunks;
    for (int r = 0; r < P; r++)
        if (write_rank(t, m, p, r, cuda, outdir, d)) return 1;
    snprintf(path, sizeof path, "%s/Makefile", outdir);
    FILE *f = fopen(path, "a");
    if (!f) {
        pd_diag_error(d, path, 0, 0, "cannot append to: %s", strerror(errno));
        return 1;
    }
    fprintf(f, "\n# interleaved: one binary per rank, linking its chunks' stages\nRANKS     :=");
    for (int r = 0; r < P; r++) fprintf(f, " rank_%d", r);
    fprintf(f, "\n.PHONY: clean-ranks\nstages: $(RANKS)\nclean: clean-ranks\nclean-ranks:\n"
            "\trm -f $(RANKS)%s\n", cuda ? " $(RANKS:%=%.o) chunk_*.o" : "");
    if (cuda)
        fprintf(f, "chunk_%%.o: stage_%%.cu\n\t$(NVCC) $(NVCCFLAGS) $(CUDA_INC) -DPDRT_NO_MAIN -c $< "
                "-o $@\nrank_%%.o: rank_%%.cu\n\t$(NVCC) $(NVCCFLAGS) $(CUDA_INC) -c $< -o $@\n");
    for (int r = 0; r < P; r++) {
        char srcs[1024] = "";
        for (int c = 0, off = 0; c < V && off < (int)sizeof srcs - 32; c++)
            off += snprintf(srcs + off, sizeof srcs - (size_t)off, cuda ? " chunk_%d.o" : " stage_%d.c",
                            c * P + r);
        if (cuda)
            fprintf(f, "rank_%d: rank_%d.o%s $(LIBPDRT)\n\t$(CC) -o $@ rank_%d.o%s $(LIBS)\n", r, r,
                    srcs, r, srcs);
        else
            fprintf(f, "rank_%d: rank_%d.c%s $(LIBPDRT)\n\t$(CC) $(CFLAGS_GEN) -DPDRT_NO_MAIN -o $@ "
                    "rank_%d.c%s $(LIBS)\n", r, r, srcs, r, srcs);
    }
    return close_out(f, path, d);
}

/* launch.conf, read by scripts/pdlaunch */
static int write_launch(const pd_model *m, const pd_plan *p, const char *outdir, int cuda,
                        pd_diag *d) {
    char path[4400];
    FILE *f = open_out(outdir, "launch.conf", path, sizeof path, d);
    if (!f) return 1;
    fprintf(f, "# pd_launch 1: generated by pdplan %s; read by scripts/pdlaunch\n", PDPLAN_VERSION);
    fprintf(f, "model %s\nschedule %s\nstages %d\nranks %d\nsingle %s\n", m->name,
            p->schedule[0] ? p->schedule : "1f1b", p->n_stages,
            p->workers > 0 ? p->workers : p->n_stages,
            !cuda ? "pd_single" : p->chunks > 1 ? "rank_0" : "stage_0"); /* cuda: it refuses
                                                       * --single with a message */
    if (cuda) fprintf(f, "backend cuda\n");
    if (p->chunks > 1) { /* interleaved: one binary per rank, its "stage" line the rank's */
        fprintf(f, "chunks %d\n", p->chunks);
        for (int r = 0; r < p->workers; r++)
            fprintf(f, "stage %d binary rank_%d replicas 1 ranks %d\n", r, r, r);
        return close_out(f, path, d);
    }
    for (int s = 0; s < p->n_stages; s++) {
        fprintf(f, "stage %d binary stage_%d replicas %d ranks", s, s, p->stages[s].replicas);
        for (int r = 0; r < p->stages[s].replicas; r++)
            fprintf(f, " %d", p->stages[s].ranks ? p->stages[s].ranks[r] : s);
        fprintf(f, "\n");
    }
    return close_out(f, path, d);
}

/* The backend o names (1 cuda, 0 cpu), or -1 with a diagnostic. */
static int backend_of(const pd_codegen_opts *o, pd_diag *d) {
    if (!o || !o->backend || !strcmp(o->backend, "cpu")) return 0;
    if (!strcmp(o->backend, "cuda")) return 1;
    pd_diag_error(d, NULL, 0, 0, "codegen: unknown backend '%s' (cpu, cuda)", o->backend);
    return -1;
}

int pd_codegen_check(const pd_model *m, const pd_plan *p, const pd_codegen_opts *o, pd_diag *d) {
    int cuda = backend_of(o, d);
    if (cuda < 0) return 1;
    cg_program pr;
    if (cg_resolve(&pr, m, p, cuda ? CG_BACKEND_CUDA : CG_BACKEND_CPU, d)) return 1;
    cg_program_free(&pr);
    return 0;
}

int pd_codegen(const pd_model *m, const pd_costgraph *g, const pd_plan *p, const char *outdir,
               const pd_codegen_opts *o, pd_diag *d) {
    (void)g;
    int cuda = backend_of(o, d);
    if (cuda < 0) return 1;
    int bf16 = cuda && o->precision && !strcmp(o->precision, "bf16");
    char root[4096];
    /* the checkout that holds templates/ and runtime/pdrt.h: o->root or the nearest folder above
     * it (a binary under build/ may be handed its own folder) */
    pd_find_checkout(root, sizeof root, o && o->root ? o->root : ".", 4);
    cg_program pr;
    if (cg_resolve(&pr, m, p, cuda ? CG_BACKEND_CUDA : CG_BACKEND_CPU, d)) return 1;
    int rc = 1;
    char path[4400];
    texts t = {0};
    pd_schedule *sch = checked_schedule(p, pr.microbatches, d);
    if (!sch) goto out;
    FILE *f = open_out(outdir, "schedule", path, sizeof path, d);
    if (!f) goto out;
    pd_schedule_write(f, sch);
    if (close_out(f, path, d)) goto out;

    t.banner_t = read_template(root, "banner.in", d);
    t.stage_t = read_template(root, cuda ? "stage.cu.in" : "stage.c.in", d);
    t.single_t = cuda ? NULL : read_template(root, "single.c.in", d);
    t.make_t = read_template(root, cuda ? "Makefile.cuda.in" : "Makefile.in", d);
    if (!t.banner_t || !t.stage_t || (!cuda && !t.single_t) || !t.make_t) goto out;
    char plan_path[4400];
    snprintf(plan_path, sizeof plan_path, "%s/plan.yaml", outdir);
    if (plan_hash_masked(t.plan_hash, plan_path)) {
        pd_diag_error(d, plan_path, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    memcpy(pr.plan_hash, t.plan_hash, sizeof pr.plan_hash);
    char *cmd = strdup(o && o->command_line ? o->command_line : "pdplan");
    if (!cmd) goto out;
    comment_safe(cmd);
    t.cmd = wrap_command(cmd);
    free(cmd);
    if (!t.cmd) goto out;
    snprintf(t.model_path, sizeof t.model_path, "%s", m->path);
    snprintf(t.cost, sizeof t.cost, "%s", m->cost_source);
    comment_safe(t.model_path);
    comment_safe(t.cost);

    if (write_stages(&t, &pr, m, p, outdir, cuda, bf16, d)) goto out;
    if (!cuda && write_single(&t, m, p, outdir, d)) goto out; /* none for cuda */
    if (write_makefile(&t, m, p, root, outdir, cuda && p->chunks > 1, d)) goto out;
    if (p->chunks > 1 && write_ranks(&t, m, p, outdir, cuda, d)) goto out;
    if (write_launch(m, p, outdir, cuda, d)) goto out;
    rc = 0;
out:
    pd_schedule_free(sch);
    free(t.banner_t);
    free(t.stage_t);
    free(t.single_t);
    free(t.make_t);
    free(t.cmd);
    cg_program_free(&pr);
    return rc;
}
