/* main.c: pdexport, the trained model as ONNX (docs/formats.md, "ONNX"). pdlaunch --save-onnx
 * runs it after training:  pdexport GENDIR WEIGHTS_DIR -o OUT.onnx
 * For a folder planned from ONNX (GENDIR/source.onnx and onnx_map.txt, written by pdplan) it
 * writes the source graph with every mapped initializer replaced by its trained tensor (weights,
 * biases, batch-norm running statistics; transposed back where the import transposed it) and
 * the training-mode extras of the export removed (batch norm's statistics outputs, dropout's
 * training_mode), so that the file is the trained model for inference. For a folder planned
 * from a model YAML (GENDIR/source.yaml) it builds the graph from our ops (from_yaml.c, the
 * sequence ops from_yaml_seq.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdexport.h"
#include "planner/read/frontend.h"
#include "planner/read/yaml_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: pdexport GENDIR WEIGHTS_DIR -o OUT.onnx\n"
               "\n"
               "Writes the model of the generated folder GENDIR with the trained weights of\n"
               "WEIGHTS_DIR (a --save folder: <layer>.<param>.f32) as ONNX (opset of the source,\n"
               "17 for a model YAML). pdlaunch GENDIR --save-onnx OUT.onnx runs it after training.\n"
               "  -o FILE      the ONNX file to write\n"
               "  -h, --help   this text\n"
               "exit status: 0 written, 2 bad input (nothing written).\n");
}

/* ---- the arena ---- */

typedef struct block {
    struct block *next;
    max_align_t data[];
} block;
static block *arena_head;

void *pd_arena(size_t bytes) {
    block *b = calloc(1, sizeof *b + bytes + 1);
    if (!b) {
        fprintf(stderr, "pdexport: out of memory\n");
        exit(2);
    }
    b->next = arena_head;
    arena_head = b;
    return b->data;
}

char *pd_arena_str(const char *s) {
    char *p = pd_arena(strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

void pd_arena_free_all(void) {
    while (arena_head) {
        block *n = arena_head->next;
        free(arena_head);
        arena_head = n;
    }
}

float *pd_read_trained(const char *dir, const char *layer, const char *param, int64_t n) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.%s.f32", dir, layer, param);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "pdexport: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    float *x = pd_arena((size_t)(n ? n : 1) * sizeof(float));
    size_t got = fread(x, sizeof(float), (size_t)n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != (size_t)n || extra) {
        fprintf(stderr, "pdexport: %s must hold exactly %lld floats\n", path, (long long)n);
        return NULL;
    }
    return x;
}

/* ---- a model that came from ONNX ---- */

static Onnx__TensorProto *find_init(Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name))
            return g->initializer[i];
    return NULL;
}

/* Replaces t's data by the trained tensor (ours [out][in]; the file's [rows][cols] when
 * transposed). The old data's memory is protobuf-c's (malloc): freed here. */
static int replace(Onnx__TensorProto *t, const char *dir, const char *tensor, int transpose,
                   int rows, int cols) {
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) n *= t->dims[i];
    char layer[256], *dot = strrchr(tensor, '.');
    if (!dot || dot - tensor >= (long)sizeof layer) return 1;
    snprintf(layer, sizeof layer, "%.*s", (int)(dot - tensor), tensor);
    float *x = pd_read_trained(dir, layer, dot + 1, n);
    if (!x) return 1;
    uint8_t *raw = malloc((size_t)(n ? n : 1) * 4);
    if (!raw) return 1;
    if (transpose && (int64_t)rows * cols == n) {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) memcpy(raw + 4 * (i * cols + j), &x[j * rows + i], 4);
    } else {
        memcpy(raw, x, (size_t)n * 4);
    }
    free(t->raw_data.data);
    free(t->float_data);
    t->float_data = NULL;
    t->n_float_data = 0;
    t->has_raw_data = 1;
    t->raw_data.data = raw;
    t->raw_data.len = (size_t)n * 4;
    return 0;
}

/* Keeps the first keep entries of a string list, freeing the rest (protobuf-c's memory). */
static void truncate_list(size_t *n, char **list, size_t keep) {
    for (size_t i = keep; i < *n; i++) free(list[i]);
    if (*n > keep) *n = keep;
}

/* The training-mode export's extras, for inference: batch norm's statistics outputs and
 * training_mode attribute, dropout's ratio and training_mode inputs and its mask, and the
 * Constant nodes that fed only those. */
static void for_inference(Onnx__GraphProto *g) {
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *nd = g->node[i];
        if (!strcmp(nd->op_type, "BatchNormalization")) {
            truncate_list(&nd->n_output, nd->output, 1);
            for (size_t k = 0; k < nd->n_attribute; k++)
                if (!strcmp(nd->attribute[k]->name, "training_mode")) nd->attribute[k]->i = 0;
        } else if (!strcmp(nd->op_type, "Dropout")) {
            truncate_list(&nd->n_input, nd->input, 1);
            truncate_list(&nd->n_output, nd->output, 1);
        }
    }
    /* the Constant nodes that fed only those inputs go too */
    size_t kept = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *nd = g->node[i];
        int used = strcmp(nd->op_type, "Constant") != 0 || nd->n_output != 1;
        for (size_t j = 0; j < g->n_node && !used; j++)
            for (size_t k = 0; k < g->node[j]->n_input && !used; k++)
                used = !strcmp(g->node[j]->input[k], nd->output[0]);
        for (size_t k = 0; k < g->n_output && !used; k++)
            used = !strcmp(g->output[k]->name, nd->output[0]);
        if (used) g->node[kept++] = nd;
        else onnx__node_proto__free_unpacked(nd, NULL);
    }
    g->n_node = kept;
}

static Onnx__ModelProto *from_onnx(const char *gendir, const char *dir, uint8_t **bytes) {
    char path[4200];
    snprintf(path, sizeof path, "%s/source.onnx", gendir);
    pd_diag d = {.out = stderr};
    size_t len = 0;
    *bytes = (uint8_t *)pd_read_file(path, 2048L * 1024 * 1024 - 1, &len, &d);
    if (!*bytes) return NULL;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, *bytes);
    if (!mp || !mp->graph) {
        fprintf(stderr, "pdexport: %s is not an ONNX model\n", path);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/onnx_map.txt", gendir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "pdexport: %s: %s\n", path, strerror(errno));
        onnx__model_proto__free_unpacked(mp, NULL);
        return NULL;
    }
    char line[1024], tensor[512];
    int transpose, rows, cols, e = 0, lineno = 0, n = 0, at = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = '\0';
        Onnx__TensorProto *t = NULL;
        if (sscanf(line, "%511s %d %d %d %n", tensor, &transpose, &rows, &cols, &at) != 4 ||
            !(t = find_init(mp->graph, line + at))) {
            fprintf(stderr, "pdexport: %s:%d: not an initializer of the source: %s\n", path,
                    lineno, line);
            e++;
            continue;
        }
        e += replace(t, dir, tensor, transpose, rows, cols);
        n++;
    }
    fclose(f);
    if (e || !n) {
        if (!n) fprintf(stderr, "pdexport: %s maps no initializer\n", path);
        onnx__model_proto__free_unpacked(mp, NULL);
        return NULL;
    }
    for_inference(mp->graph);
    return mp;
}

int main(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *out = NULL;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "pdexport: error: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (npos != 2 || !out) {
        usage(stderr);
        return 2;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/source.onnx", pos[0]);
    FILE *probe = fopen(path, "rb");
    uint8_t *bytes = NULL;
    Onnx__ModelProto *mp = NULL;
    pd_model m;
    int have_model = 0;
    if (probe) {
        fclose(probe);
        mp = from_onnx(pos[0], pos[1], &bytes);
    } else {
        pd_diag d = {.out = stderr};
        snprintf(path, sizeof path, "%s/source.yaml", pos[0]);
        if (pd_model_load(path, &m, &d) == 0) {
            have_model = 1;
            mp = pd_onnx_from_model(&m, pos[1]);
        } else {
            fprintf(stderr, "pdexport: %s has neither source.onnx nor a readable source.yaml "
                    "(plan it again with this pdplan)\n", pos[0]);
        }
    }
    int rc = 2;
    if (mp) {
        size_t size = onnx__model_proto__get_packed_size(mp);
        uint8_t *buf = malloc(size ? size : 1);
        FILE *f = buf ? fopen(out, "wb") : NULL;
        if (buf) onnx__model_proto__pack(mp, buf);
        size_t put = f ? fwrite(buf, 1, size, f) : 0;
        if (!f || fclose(f) != 0 || put != size) {
            fprintf(stderr, "pdexport: cannot write %s: %s\n", out, strerror(errno));
            remove(out);
        } else {
            printf("pdexport: wrote %s (%zu bytes)\n", out, size);
            rc = 0;
        }
        free(buf);
        if (bytes) onnx__model_proto__free_unpacked(mp, NULL);
    }
    if (have_model) pd_model_free(&m);
    free(bytes);
    pd_arena_free_all();
    return rc;
}
