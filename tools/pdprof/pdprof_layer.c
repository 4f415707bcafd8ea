/* pdprof_layer.c: a layer's buffers and calls for pdprof, from its op's descriptor. The calls are
 * the ones the generated stages make (pd_call, planner/ops/op.h): pdprof finds each function by
 * name in itself (dlsym; the Makefile links the kernels whole and exports them) and makes the call
 * through libffi with the argument types the call lists. So an op added to the descriptors is
 * profiled with no change here. */
#include "pdprof_layer.h"

#include <dlfcn.h>
#include <ffi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/ops.h"

static void *must(void *p) {
    if (!p) {
        fprintf(stderr, "pdprof: error: out of memory\n");
        exit(1);
    }
    return p;
}

static uint64_t lcg = 0x2545F4914F6CDD1Dull;
static float *random_floats(size_t n) {
    float *x = must(malloc((n ? n : 1) * sizeof(float)));
    for (size_t i = 0; i < n; i++) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((lcg >> 40) * (1.0 / 16777216.0) - 0.5);
    }
    return x;
}

/* ---- calls through libffi ---- */

static ffi_type *size_type(void) { return sizeof(size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32; }

int pdprof_call_bind(pdprof_call *pc, const pd_call *c, int returns_size, const pdprof_bufs *b,
                     char *why, size_t cap) {
    memset(pc, 0, sizeof *pc);
    void *sym = dlsym(RTLD_DEFAULT, c->fn);
    if (!sym) {
        snprintf(why, cap, "%s is not in this pdprof (its kernels are linked whole, -rdynamic)",
                 c->fn);
        return -1;
    }
    pc->fn = (void (*)(void))sym;
    pc->returns_size = returns_size;
    pc->n = c->n_args;
    for (int i = 0; i < c->n_args; i++) {
        const pd_arg *a = &c->args[i];
        ffi_type *t = &ffi_type_pointer;
        void *p = NULL;
        switch (a->kind) {
        case PD_ARG_OUT: p = b->y; break;
        case PD_ARG_IN: p = b->x[a->k]; break;
        case PD_ARG_INS: p = (void *)b->x; break;
        case PD_ARG_DOUT: p = b->dy; break;
        case PD_ARG_DIN: p = b->dx[a->k]; break;
        case PD_ARG_DINS: p = (void *)b->dx; break;
        case PD_ARG_PARAM: p = b->param[a->k]; break;
        case PD_ARG_DPARAM: p = b->dparam[a->k]; break;
        case PD_ARG_BUFFER: p = b->buffer[a->k]; break;
        case PD_ARG_SAVED: p = b->saved[a->k]; break;
        case PD_ARG_SCRATCH: p = b->scratch; break;
        case PD_ARG_CTX: p = b->ctx; break;
        case PD_ARG_INTS:
            memcpy(pc->ints, a->ints, sizeof(int) * (size_t)a->n);
            p = pc->ints;
            break;
        case PD_ARG_INT: t = &ffi_type_sint32; pc->v[i].i = (int)a->i; break;
        case PD_ARG_BATCH: t = &ffi_type_sint32; pc->v[i].i = b->batch; break;
        case PD_ARG_LAYER: t = &ffi_type_sint32; pc->v[i].i = b->layer; break;
        case PD_ARG_PREC: t = &ffi_type_sint32; pc->v[i].i = b->prec; break;
        case PD_ARG_I64: t = &ffi_type_sint64; pc->v[i].l = a->i; break;
        case PD_ARG_STEP: t = &ffi_type_sint64; pc->v[i].l = 0; break;
        case PD_ARG_SEED: t = &ffi_type_uint64; pc->v[i].u = 1; break;
        case PD_ARG_SIZE: t = size_type(); pc->v[i].u = (uint64_t)a->i; break;
        case PD_ARG_BATCH_TIMES: t = size_type(); pc->v[i].u = (uint64_t)(b->batch * a->i); break;
        case PD_ARG_ROWS: t = &ffi_type_sint32; pc->v[i].i = (int)(b->batch * a->i); break;
        case PD_ARG_FLOAT: t = &ffi_type_float; pc->v[i].f = (float)a->f; break;
        }
        if (t == &ffi_type_pointer) pc->v[i].p = p;
        if (t == &ffi_type_uint32) pc->v[i].i = (int)pc->v[i].u; /* 32-bit size_t */
        pc->types[i] = t;
        pc->argp[i] = &pc->v[i];
    }
    ffi_cif *cif = must(malloc(sizeof *cif));
    if (ffi_prep_cif(cif, FFI_DEFAULT_ABI, (unsigned)pc->n,
                     pc->returns_size ? size_type() : &ffi_type_void,
                     (ffi_type **)pc->types) != FFI_OK) {
        free(cif);
        snprintf(why, cap, "libffi cannot describe the call to %s", c->fn);
        return -1;
    }
    pc->ffi = cif;
    return 0;
}

size_t pdprof_call_run(pdprof_call *pc) {
    uint64_t ret = 0; /* at least an ffi_arg */
    ffi_call((ffi_cif *)pc->ffi, pc->fn, &ret, pc->argp);
    return pc->returns_size ? (size_t)ret : 0;
}

void pdprof_call_free(pdprof_call *pc) {
    free(pc->ffi);
    pc->ffi = NULL;
}

int pdprof_bind_phase(pdprof_call *calls, int max, const pd_layer *L, const pd_shape *const *in,
                      pd_backend backend, pd_phase phase, const pdprof_bufs *b) {
    pd_call c[PDPROF_MAX_CALLS];
    char why[256];
    int n = pd_op_calls(L, in, backend, phase, c, max < PDPROF_MAX_CALLS ? max : PDPROF_MAX_CALLS);
    for (int k = 0; k < n; k++)
        if (pdprof_call_bind(&calls[k], &c[k], phase == PD_PHASE_SCRATCH, b, why, sizeof why)) {
            fprintf(stderr, "pdprof: error: layer '%s': %s\n", L->name, why);
            while (k-- > 0) pdprof_call_free(&calls[k]);
            return -1;
        }
    return n;
}

/* ---- one layer ---- */

void pdprof_layer_setup(layer_run *r, const pd_model *m, int i, int B) {
    const pd_layer *L = &m->layers[i];
    pdprof_bufs *h = &r->host;
    memset(r, 0, sizeof *r);
    r->L = L;
    r->B = B;
    r->index = i;
    r->n_in = L->n_inputs;
    h->batch = B;
    h->layer = i;
    for (int k = 0; k < L->n_inputs; k++) {
        r->in[k] = &m->layers[L->inputs[k]].out;
        r->x_floats[k] = (size_t)B * (size_t)pd_shape_numel(r->in[k]);
        h->x[k] = random_floats(r->x_floats[k]);
        h->dx[k] = random_floats(r->x_floats[k]);
        /* a token model's input holds ids (floats below classes), as its data does */
        if (L->inputs[k] == 0 && (!strcmp(m->dataset, "shakespeare_char") ||
                                  !strncmp(m->dataset, "tokens:", 7)))
            for (size_t j = 0; j < r->x_floats[k]; j++)
                h->x[k][j] = (float)((j * 7919) % (size_t)m->classes);
    }
    r->y_floats = (size_t)B * (size_t)pd_shape_numel(&L->out);
    h->y = random_floats(r->y_floats);
    h->dy = random_floats(r->y_floats);
    pd_tensor t[PD_MAX_OP_TENSORS];
    int nt = pd_op_tensors(L, t), np = 0, nb = 0;
    for (int k = 0; k < nt; k++) {
        float *v = t[k].floats > 0 ? random_floats((size_t)t[k].floats) : NULL;
        if (t[k].buffer) {
            r->buffer_floats[nb] = (size_t)t[k].floats;
            h->buffer[nb++] = v;
        } else {
            r->param_floats[np] = (size_t)t[k].floats;
            h->dparam[np] = t[k].floats > 0 ? random_floats((size_t)t[k].floats) : NULL;
            h->param[np++] = v;
        }
    }
    int ns = pd_op_saved(L, B, t); /* written by the forward before a backward reads them */
    for (int k = 0; k < ns; k++) {
        r->saved_floats[k] = (size_t)t[k].floats;
        h->saved[k] = must(calloc(t[k].floats ? (size_t)t[k].floats : 1, sizeof(float)));
    }
    pdprof_call c[PDPROF_MAX_CALLS];
    int n = pdprof_bind_phase(c, PDPROF_MAX_CALLS, L, r->in, PD_BACKEND_CPU, PD_PHASE_SCRATCH, h);
    for (int k = 0; k < n; k++) {
        size_t s = pdprof_call_run(&c[k]);
        if (s > r->scratch_floats) r->scratch_floats = s;
        pdprof_call_free(&c[k]);
    }
    if (r->scratch_floats) h->scratch = random_floats(r->scratch_floats);
    n = pdprof_bind_phase(c, PDPROF_MAX_CALLS, L, r->in, PD_BACKEND_CPU, PD_PHASE_INIT, h);
    for (int k = 0; k < n; k++) { /* the stage's initial parameters (batch norm: var 1) */
        pdprof_call_run(&c[k]);
        pdprof_call_free(&c[k]);
    }
    r->n_fwd = pdprof_bind_phase(r->fwd, PDPROF_MAX_CALLS, L, r->in, PD_BACKEND_CPU,
                                 PD_PHASE_FORWARD, h);
    r->n_bwd = pdprof_bind_phase(r->bwd, PDPROF_MAX_CALLS, L, r->in, PD_BACKEND_CPU,
                                 PD_PHASE_BACKWARD, h);
    if (n < 0 || r->n_fwd < 0 || r->n_bwd < 0) exit(1);
    r->last = i == m->n_layers - 1;
    if (r->last) {
        r->classes = m->classes;
        r->labels = must(calloc((size_t)B, sizeof(int)));
        for (int b = 0; b < B; b++) r->labels[b] = b % m->classes;
    }
}

void pdprof_layer_teardown(layer_run *r) {
    pdprof_bufs *h = &r->host;
    for (int k = 0; k < r->n_fwd; k++) pdprof_call_free(&r->fwd[k]);
    for (int k = 0; k < r->n_bwd; k++) pdprof_call_free(&r->bwd[k]);
    for (int k = 0; k < r->n_in; k++) free(h->x[k]), free(h->dx[k]);
    for (int k = 0; k < PD_MAX_OP_TENSORS; k++)
        free(h->param[k]), free(h->dparam[k]), free(h->buffer[k]), free(h->saved[k]);
    free(h->y), free(h->dy), free(h->scratch), free(r->labels);
}

void pdprof_layer_run(layer_run *r, int backward) {
    int n = backward ? r->n_bwd : r->n_fwd;
    for (int k = 0; k < n; k++) pdprof_call_run(backward ? &r->bwd[k] : &r->fwd[k]);
    if (!backward && r->last)
        pdrt_softmax_cross_entropy(r->host.dy, r->host.y, r->labels, r->B, r->classes);
}
