/* test_plan_write.c: plan.yaml and the table on a hand-built plan, FNV-1a, and pdplan's argument
 * parsing (planner/plan/plan_write.c, tools/pdplan/cli_args.c), independent of the DP. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "tools/pdplan/cli_args.h"
#include "planner/plan/plan_write.h"
#include "planner/read/yaml_util.h"
#include "test.h"

/* ---- a hand-built 3-node graph and a 2-stage plan ---- */

typedef struct {
    pd_costgraph g;
    char *names[3];
    pd_plan p;
    pd_stage st[2];
    int nodes0[2], nodes1[1], ranks0[2], ranks1[1];
    pd_cluster c;
} fixture;

static void fixture_init(fixture *f) {
    memset(f, 0, sizeof *f);
    f->names[0] = "conv1";
    f->names[1] = "odd, \"name\": [x]";
    f->names[2] = "true";
    f->g.n = 3;
    f->g.name = f->names;
    f->nodes0[0] = 0, f->nodes0[1] = 1, f->nodes1[0] = 2;
    f->ranks0[0] = 0, f->ranks0[1] = 1, f->ranks1[0] = 2;
    f->st[0] = (pd_stage){.n_nodes = 2, .nodes = f->nodes0, .replicas = 2, .ranks = f->ranks0,
                          .warmup = 2, .weight_versions = 3, .compute_ms = 0.1 + 0.2,
                          .allreduce_ms = 1.0 / 3.0, .comm_in_ms = 0, .comm_out_ms = 0.25,
                          .time_ms = 2.0 / 3.0, .memory_bytes = 123456789.0};
    f->st[1] = (pd_stage){.n_nodes = 1, .nodes = f->nodes1, .replicas = 1, .ranks = f->ranks1,
                          .warmup = 1, .weight_versions = 2, .compute_ms = 0.6,
                          .time_ms = 0.65, .memory_bytes = 1e6};
    f->p.n_stages = 2;
    f->p.stages = f->st;
    f->p.workers = 3;
    strcpy(f->p.schedule, "1f1b");
    f->p.bottleneck_ms = 2.0 / 3.0;
    f->p.data_parallel_ms = 1.1;
    f->p.speedup_vs_data_parallel = 1.1 / (2.0 / 3.0);
    f->p.exact = 1;
    strcpy(f->p.certificate.solver, "glpk");
    strcpy(f->p.certificate.status, "optimal");
    f->p.certificate.objective = 2.0 / 3.0;
    f->p.certificate.seconds = 0.5;
    f->c.n_levels = 2;
    f->c.count[0] = 2, f->c.count[1] = 2;
    f->c.bandwidth[0] = 4e9, f->c.bandwidth[1] = 1e9;
    strcpy(f->c.device, "cpu");
}

static const pd_plan_info info_model = {
    .model_name = "tiny", .input_kind = "model", .input_path = "models/tiny.yaml",
    .input_hash = "0123456789abcdef", .cluster_kind = "flags",
    .cost_source = "estimated for cpu", .estimated = 1, .batch = 64};

/* Writes the plan to a malloc'd string. */
static char *yaml_text(const fixture *f, const pd_plan_info *info) {
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    if (!m) return NULL;
    int rc = pd_plan_write_yaml(m, &f->p, &f->g, &f->c, info);
    fclose(m);
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The scalar after "key: " on the first line that starts with prefix+key. */
static double yaml_number(const char *text, const char *line_prefix) {
    const char *at = strstr(text, line_prefix);
    if (!at) return -12345;
    return strtod(at + strlen(line_prefix), NULL);
}

/* ---- a libyaml walk: the document must parse, and we read values back from the tree ---- */

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(doc, pr->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
            return yaml_document_get_node(doc, pr->value);
    }
    return NULL;
}

static yaml_node_t *seq_get(yaml_document_t *doc, yaml_node_t *seq, int i) {
    if (!seq || seq->type != YAML_SEQUENCE_NODE) return NULL;
    if (i < 0 || i >= seq->data.sequence.items.top - seq->data.sequence.items.start) return NULL;
    return yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
}

static const char *scalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
}

TEST(plan_yaml_parses_and_round_trips) {
    fixture f;
    fixture_init(&f);
    char *text = yaml_text(&f, &info_model);
    CHECK(text != NULL);
    if (!text) return;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (unsigned char *)text, strlen(text));
    int ok = yaml_parser_load(&parser, &doc);
    CHECK(ok);
    if (ok) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        CHECK(!strcmp(scalar(map_get(&doc, root, "pd_plan")), "1"));
        CHECK(!strcmp(scalar(map_get(&doc, root, "model")), "tiny"));
        CHECK(!strcmp(scalar(map_get(&doc, root, "estimated")), "true"));
        CHECK(!strcmp(scalar(map_get(&doc, root, "cost_source")), "estimated for cpu"));
        CHECK(strtod(scalar(map_get(&doc, root, "bottleneck_ms")), NULL) == 2.0 / 3.0);
        CHECK(strtod(scalar(map_get(&doc, root, "throughput")), NULL) == 64 * 1000.0 / (2.0 / 3.0));
        CHECK(strtod(scalar(map_get(&doc, root, "speedup_vs_data_parallel")), NULL) ==
              1.1 / (2.0 / 3.0));
        CHECK(!strcmp(scalar(map_get(&doc, root, "exact")), "true"));
        CHECK(map_get(&doc, root, "lower_bound_ms") == NULL);
        yaml_node_t *cert = map_get(&doc, root, "certificate");
        CHECK(!strcmp(scalar(map_get(&doc, cert, "status")), "optimal"));
        CHECK(!strcmp(scalar(map_get(&doc, cert, "solver")), "glpk"));
        yaml_node_t *cl = map_get(&doc, root, "cluster");
        yaml_node_t *lv1 = seq_get(&doc, map_get(&doc, cl, "levels"), 1);
        CHECK(!strcmp(scalar(map_get(&doc, lv1, "count")), "2"));
        CHECK(strtod(scalar(map_get(&doc, lv1, "bandwidth")), NULL) == 1e9);
        CHECK(!strcmp(scalar(map_get(&doc, cl, "workers")), "4"));
        yaml_node_t *stages = map_get(&doc, root, "stages");
        yaml_node_t *s0 = seq_get(&doc, stages, 0), *s1 = seq_get(&doc, stages, 1);
        CHECK(s0 && s1 && !seq_get(&doc, stages, 2));
        yaml_node_t *layers = map_get(&doc, s0, "layers");
        CHECK(!strcmp(scalar(seq_get(&doc, layers, 0)), "conv1"));
        CHECK(!strcmp(scalar(seq_get(&doc, layers, 1)), "odd, \"name\": [x]"));
        yaml_node_t *l2 = seq_get(&doc, map_get(&doc, s1, "layers"), 0);
        /* "true" must be quoted, or a reader would take it for a boolean */
        CHECK(!strcmp(scalar(l2), "true") && l2->data.scalar.style != YAML_PLAIN_SCALAR_STYLE);
        CHECK(!strcmp(scalar(seq_get(&doc, map_get(&doc, s0, "ranks"), 1)), "1"));
        CHECK(!strcmp(scalar(map_get(&doc, s0, "replicas")), "2"));
        CHECK(!strcmp(scalar(map_get(&doc, s0, "weight_versions")), "3"));
        CHECK(strtod(scalar(map_get(&doc, s0, "compute_ms")), NULL) == 0.1 + 0.2);
        CHECK(strtod(scalar(map_get(&doc, s0, "allreduce_ms")), NULL) == 1.0 / 3.0);
        CHECK(strtod(scalar(map_get(&doc, s0, "comm_ms")), NULL) == 0.25);
        CHECK(strtod(scalar(map_get(&doc, s0, "memory_bytes")), NULL) == 123456789.0);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    free(text);
}

TEST(plan_yaml_is_deterministic_and_masks_only_seconds) {
    fixture f;
    fixture_init(&f);
    char *a = yaml_text(&f, &info_model), *b = yaml_text(&f, &info_model);
    CHECK(a && b && !strcmp(a, b));
    f.p.certificate.seconds = 7.25;
    char *c = yaml_text(&f, &info_model);
    /* the only difference is the line that starts with "  seconds: " */
    CHECK(c && a && strcmp(a, c) != 0);
    if (a && c) {
        const char *sa = strstr(a, "\n  seconds: "), *sc = strstr(c, "\n  seconds: ");
        CHECK(sa && sc && sa - a == sc - c);
        if (sa && sc) {
            CHECK(!strcmp(strchr(sa + 1, '\n'), strchr(sc + 1, '\n')));
            CHECK(yaml_number(c, "\n  seconds: ") == 7.25);
        }
    }
    free(a);
    free(b);
    free(c);
}

TEST(plan_yaml_graphtxt_not_exact) {
    fixture f;
    fixture_init(&f);
    f.p.exact = 0;
    f.p.lower_bound_ms = 0.5;
    strcpy(f.p.certificate.status, "skipped");
    pd_plan_info info = {.model_name = "g", .input_kind = "graph.txt", .input_path = "g.txt",
                         .input_hash = "ffffffffffffffff", .cluster_kind = "default",
                         .cost_source = "g.txt", .estimated = 0, .batch = 0};
    char *t = yaml_text(&f, &info);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(strstr(t, "\nexact: false\n") != NULL);
    CHECK(yaml_number(t, "\nlower_bound_ms: ") == 0.5);
    CHECK(strstr(t, "\nbatch: null\n") != NULL);
    CHECK(strstr(t, "\nthroughput_unit: minibatches/s\n") != NULL);
    CHECK(yaml_number(t, "\nthroughput: ") == 1000.0 / (2.0 / 3.0));
    CHECK(strstr(t, "  graph: {path: g.txt, fnv1a: ffffffffffffffff}") != NULL);
    CHECK(strstr(t, "\nestimated: false\n") != NULL);
    free(t);
}

TEST(table_rows_and_estimate_line) {
    fixture f;
    fixture_init(&f);
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    pd_plan_print_table(m, &f.p, &f.g, &f.c, &info_model);
    fclose(m);
    CHECK(strstr(buf, "conv1..odd") != NULL);
    CHECK(strstr(buf, "0-1") != NULL);
    CHECK(strstr(buf, "bottleneck: 0.667 ms") != NULL);
    CHECK(strstr(buf, "96000.00 samples/s") != NULL);
    CHECK(strstr(buf, "speedup 1.65x") != NULL);
    CHECK(strstr(buf, "certificate: glpk optimal") != NULL);
    CHECK(strstr(buf, "costs: estimated for cpu") != NULL);
    CHECK(strstr(buf, "117.7 MiB") != NULL);
    free(buf);
    pd_plan_info measured = info_model;
    measured.estimated = 0;
    measured.cost_source = "profiles/x.yaml";
    buf = NULL;
    m = open_memstream(&buf, &n);
    pd_plan_print_table(m, &f.p, &f.g, &f.c, &measured);
    fclose(m);
    CHECK(strstr(buf, "costs:") == NULL);
    free(buf);
}

TEST(fnv1a_known_vectors) {
    const uint64_t basis = 14695981039346656037ULL;
    CHECK(pd_fnv1a("", 0, basis) == 0xcbf29ce484222325ULL);
    CHECK(pd_fnv1a("a", 1, basis) == 0xaf63dc4c8601ec8cULL);
    CHECK(pd_fnv1a("foobar", 6, basis) == 0x85944171f73967e8ULL);
    char dir[] = "/tmp/pdtest_fnvXXXXXX", path[64], hex[17];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/f", dir);
    FILE *f = fopen(path, "wb");
    fputs("foobar", f);
    fclose(f);
    /* a file's input hash, as pdplan takes it: read once (bounded), then hashed */
    FILE *quiet = fopen("/dev/null", "w");
    pd_diag d = {.out = quiet};
    pd_text t = pd_read_text(path, 1 << 20, &d);
    CHECK(t.text != NULL && t.len == 6);
    if (t.text) pd_fnv1a_hex(hex, t.text, t.len);
    CHECK(!strcmp(hex, "85944171f73967e8"));
    free(t.text);
    unlink(path);
    t = pd_read_text(path, 1 << 20, &d); /* gone: a diagnostic, no text */
    CHECK(t.text == NULL && pd_diag_errors(&d) == 1);
    fclose(quiet);
    rmdir(dir);
}

TEST(plan_save_is_atomic) {
    fixture f;
    fixture_init(&f);
    char dir[] = "/tmp/pdtest_saveXXXXXX", path[80];
    CHECK(mkdtemp(dir) != NULL);
    FILE *devnull = fopen("/dev/null", "w");
    pd_diag d = {.out = devnull};
    CHECK(pd_plan_save(dir, &f.p, &f.g, &f.c, &info_model, &d) == 0);
    CHECK(d.errors == 0);
    snprintf(path, sizeof path, "%s/plan.yaml", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 100);
    /* nothing else is left in the folder (no temporary file) */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    CHECK(system(cmd) == 0);
    unlink(path);
    rmdir(dir);
    /* a missing folder is a diagnostic, not a crash */
    CHECK(pd_plan_save("/nonexistent/pdtest", &f.p, &f.g, &f.c, &info_model, &d) != 0);
    CHECK(d.errors == 1);
    fclose(devnull);
}

/* ---- argument parsing ---- */

static int parse(pd_cli *cli, const char *line) {
    char buf[512], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "pdplan %s", line);
    for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
    argv[argc] = NULL;
    static FILE *devnull;
    if (!devnull) devnull = fopen("/dev/null", "w");
    pd_diag d = {.out = devnull};
    int e = pd_cli_parse(cli, argc, argv, &d);
    /* argv points into buf: keep what the tests read as numbers only */
    cli->input = cli->input ? "set" : NULL;
    cli->profile = cli->profile ? "set" : NULL;
    cli->outdir = cli->outdir ? "set" : NULL;
    return e;
}

TEST(cli_good_arguments) {
    pd_cli cli;
    CHECK_EQ_INT(parse(&cli, "m.yaml -n 4 4 -b 1e9 4e+09 --memory 16e9 -o out -q"), 0);
    CHECK_EQ_INT(cli.n_counts, 2);
    CHECK(cli.counts[0] == 4 && cli.counts[1] == 4);
    CHECK(cli.bandwidths[0] == 1e9 && cli.bandwidths[1] == 4e9);
    CHECK(cli.memory_bytes == 16e9 && cli.quiet && cli.input && cli.outdir);
    CHECK_EQ_INT(parse(&cli, "-n 8 8 16 m.yaml --straight --compat pipedream --schedule=flush"),
                 0);
    CHECK_EQ_INT(cli.n_counts, 3);
    CHECK(cli.counts[2] == 16 && cli.input && cli.straight);
    CHECK(cli.cost_model == PD_COST_PIPEDREAM && !strcmp(cli.schedule, "flush"));
    CHECK_EQ_INT(parse(&cli, "--profile=p.yaml m.yaml --verify --time-limit 5 --explain"), 0);
    CHECK(cli.profile && cli.verify && cli.explain && cli.time_limit_s == 5);
    CHECK_EQ_INT(parse(&cli, "--help"), 0);
    CHECK(cli.help);
    CHECK_EQ_INT(parse(&cli, "m.yaml"), 0);
    CHECK(!strcmp(cli.schedule, "1f1b") && !strcmp(cli.backend, "cpu") && !cli.n_counts);
}

TEST(cli_bad_arguments) {
    pd_cli cli;
    CHECK(parse(&cli, "") == 1);                        /* no input */
    CHECK(parse(&cli, "a.yaml b.yaml") == 1);           /* two inputs */
    CHECK(parse(&cli, "m.yaml --frobnicate") == 1);     /* unknown option */
    CHECK(parse(&cli, "m.yaml -n") == 1);               /* missing value */
    CHECK(parse(&cli, "m.yaml -n -b 1e9") >= 1);        /* missing -n value */
    CHECK(parse(&cli, "m.yaml -n 0") == 1);             /* zero workers */
    CHECK(parse(&cli, "m.yaml -n -4") == 1);            /* negative */
    CHECK(parse(&cli, "m.yaml -n 2.5") == 1);           /* not whole */
    CHECK(parse(&cli, "m.yaml -n four") == 1);          /* non-number */
    CHECK(parse(&cli, "m.yaml -n 4 -b nan") == 1);      /* NaN */
    CHECK(parse(&cli, "m.yaml -n 4 -b 0") == 1);        /* bandwidth <= 0 */
    CHECK(parse(&cli, "m.yaml -n 4 -b -1e9") == 1);     /* negative bandwidth */
    CHECK(parse(&cli, "m.yaml -n 4 4 -b 1e9") == 1);    /* count mismatch */
    CHECK(parse(&cli, "m.yaml -b 1e9") == 1);           /* -b without -n */
    CHECK(parse(&cli, "m.yaml --memory -5") == 1);      /* negative memory */
    CHECK(parse(&cli, "m.yaml --memory inf") == 1);
    CHECK(parse(&cli, "m.yaml --memory") == 1);
    CHECK(parse(&cli, "m.yaml --compat tensorflow") == 1);
    CHECK(parse(&cli, "m.yaml --schedule interleaf") == 1); /* not a schedule */
    CHECK(parse(&cli, "m.yaml --chunks 2") == 1);             /* without interleaved */
    CHECK(parse(&cli, "m.yaml --schedule interleaved --chunks 1") == 1);
    CHECK(parse(&cli, "m.yaml --schedule interleaved --backend cuda") == 0); /* both run it */
    CHECK(parse(&cli, "m.yaml --backend tpu") == 1);
    CHECK(parse(&cli, "m.yaml -o") == 1);
    CHECK(parse(&cli, "m.yaml -c c.yaml -n 4") == 1);   /* both cluster forms */
    CHECK(parse(&cli, "m.yaml -p a -p b") == 1);        /* twice */
    CHECK(parse(&cli, "m.yaml -n 1024 1024 2") == 1);   /* too many workers in all */
    CHECK(parse(&cli, "m.yaml -n 1 2 3 4 5 6 7 8 9") == 1); /* too many levels */
    /* several problems at once are all reported */
    CHECK(parse(&cli, "a b -n 0 -b x --bogus") == 4);
}
