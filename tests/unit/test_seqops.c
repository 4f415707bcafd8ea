/* test_seqops.c: the sequence ops (embedding, lstm) and rank-2 shapes on GNMT-8's planning
 * model: parameter counts and FLOPs against hand-computed values, the shape errors, and that
 * both ops have kernels (no planning-only flag: code generation and pdprof take them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "planner/read/frontend.h"
#include "test.h"

TEST(gnmt8_shapes_parameters_and_flops) {
    pd_model m;
    pd_diag d = {.out = stderr};
    CHECK_EQ_INT(pd_model_load("models/gnmt8.yaml", &m, &d), 0);
    if (d.errors) return;
    CHECK_EQ_INT(m.n_layers, 12); /* input, embed, 4 lstm, attention, 4 lstm, proj */
    const pd_layer *e = &m.layers[1], *l = &m.layers[2], *p = &m.layers[11];
    CHECK_EQ_INT(e->op, PD_OP_EMBEDDING);
    CHECK_EQ_INT(e->out.rank, 2);
    CHECK_EQ_INT(e->out.dim[0], 50);
    CHECK_EQ_INT(e->out.dim[1], 1024);
    CHECK_EQ_INT(e->n_weight, 32000LL * 1024);
    CHECK_EQ_INT(l->op, PD_OP_LSTM);
    CHECK_EQ_INT(l->n_weight, 4LL * 1024 * 2048);       /* weight_ih + weight_hh */
    CHECK_EQ_INT(l->n_bias, 8LL * 1024);                 /* bias_ih + bias_hh */
    /* 4 * (4*1024*2048 + 8*1024) bytes: the anchor's parameter_bytes for one LSTM */
    CHECK_CLOSE(4.0 * (double)(l->n_weight + l->n_bias), 33587200.0, 0, 0);
    CHECK_CLOSE(l->flops_fwd, 50.0 * (8.0 * 1024 * 2048 + 20.0 * 1024), 0, 1e-12);
    CHECK_EQ_INT(p->out.rank, 2);
    CHECK_EQ_INT(p->out.dim[1], 32000);
    CHECK_EQ_INT(p->n_weight, 1024LL * 32000);
    CHECK_CLOSE(p->flops_fwd, 50.0 * (2.0 * 1024 * 32000 + 32000), 0, 1e-12);
    CHECK(!pd_op_planning_only(PD_OP_LSTM) && !pd_op_planning_only(PD_OP_EMBEDDING)); /* run */
    CHECK(!pd_op_planning_only(PD_OP_LINEAR) && !pd_op_planning_only(PD_OP_CONV2D));
    CHECK(strcmp(pd_op_name(PD_OP_LSTM), "lstm") == 0);
    pd_model_free(&m);
}

static int load_text(const char *text, char *msg, int cap) {
    char path[] = "/tmp/pd_seqops_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    FILE *out = tmpfile();
    pd_diag d = {.out = out};
    pd_model m;
    int rc = pd_model_load(path, &m, &d);
    if (!rc) pd_model_free(&m);
    rewind(out);
    size_t n = fread(msg, 1, (size_t)cap - 1, out);
    msg[n] = 0;
    fclose(out);
    unlink(path);
    return rc;
}

TEST(sequence_shape_errors_are_diagnostics) {
    char msg[2048];
    /* an lstm on a rank-1 input */
    CHECK(load_text("pd: 1\nname: x\ninput: [8]\nclasses: 4\nbatch: 2\nlayers:\n"
                    "  - {name: l, op: lstm, hidden_size: 4}\n", msg, sizeof msg) != 0);
    CHECK(strstr(msg, ":7:5: error: layer 'l': lstm needs a rank-2 input") != NULL);
    /* an embedding without its vocabulary */
    CHECK(load_text("pd: 1\nname: x\ninput: [8]\nclasses: 4\nbatch: 2\nlayers:\n"
                    "  - {name: e, op: embedding, embedding_dim: 4}\n", msg, sizeof msg) != 0);
    CHECK(strstr(msg, "num_embeddings") != NULL);
    /* a sequence model's output must be (tokens, classes) */
    CHECK(load_text("pd: 1\nname: x\ninput: [8]\nclasses: 4\nbatch: 2\nlayers:\n"
                    "  - {name: e, op: embedding, num_embeddings: 10, embedding_dim: 4}\n"
                    "  - {name: l, op: lstm, hidden_size: 5}\n", msg, sizeof msg) != 0);
    CHECK(strstr(msg, "(tokens, 4)") != NULL);
    /* and a valid one loads, concat along features included */
    CHECK_EQ_INT(load_text("pd: 1\nname: x\ninput: [8]\nclasses: 4\nbatch: 2\nlayers:\n"
                           "  - {name: e, op: embedding, num_embeddings: 10, embedding_dim: 3}\n"
                           "  - {name: l, op: lstm, hidden_size: 5}\n"
                           "  - {name: c, op: concat, inputs: [e, l]}\n"
                           "  - {name: o, op: linear, out_features: 4}\n", msg, sizeof msg), 0);
}
