/* ops_conv_dnnl.c: conv2d forward, backward-data and backward-weights through oneDNN (Debian's
 * libdnnl, the library PyTorch's CPU convolutions use), one thread, when the build found it
 * (PD_HAVE_DNNL); ops_conv.c calls these first and falls back to im2col + sgemm otherwise.
 *
 * The callers' tensors stay NCHW / OIHW: for each convolution shape (the whole key of sizes) the
 * primitives are created once, with the layouts oneDNN prefers (format "any": blocked, 16
 * channels a block on AVX-512), and reorders move each tensor between the caller's layout and the
 * primitive's around every call. Gradients accumulate as ops.h asks: the primitive writes into its
 * own buffer and a reorder with a sum post-op adds it into the caller's (dst = reordered + dst).
 * One thread (omp_set_num_threads(1), set when the engine is made) and fixed shapes give the same
 * bits on every call, so the pipeline and --single agree as before. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "ops_conv_dnnl.h"

#ifdef PD_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include "runtime/base/base.h"

/* TRY: a oneDNN call while making primitives (failure: 0, im2col does the shape); OK: ours;
 * RUN: a oneDNN call while computing (failure stops the run) */
#define TRY(x)                                                                                   \
    do {                                                                                         \
        if ((x) != dnnl_success) return 0;                                                       \
    } while (0)
#define OK(x)                                                                                    \
    do {                                                                                         \
        if (!(x)) return 0;                                                                      \
    } while (0)
#define RUN(x)                                                                                   \
    do {                                                                                         \
        dnnl_status_t st_ = (x);                                                                 \
        if (st_ != dnnl_success) PDRT_FAIL("oneDNN: %s failed (status %d)", #x, (int)st_);       \
    } while (0)

/* One tensor of a primitive: the caller's memory (its handle set per call), the primitive's, and
 * the reorder between them (NULL when the layouts are equal and nothing accumulates: then the
 * primitive reads or writes the caller's memory directly). */
typedef struct {
    dnnl_memory_t user, prim;
    dnnl_primitive_t reorder;
} io_t;

typedef struct {
    int key[12];
    int ok;                        /* 1 made, -1 oneDNN refused the shape (use im2col) */
    dnnl_primitive_t fwd, bwd_data, bwd_w;
    io_t f_src, f_w, f_b, f_dst;   /* forward */
    io_t d_dsrc, d_w, d_ddst;      /* backward data (diff_src accumulates into dinp) */
    io_t w_src, w_dw, w_db, w_ddst; /* backward weights (both accumulate) */
    int same_ddst;                 /* both backwards take dout in one layout: reorder it once */
} conv_t;

#define MAX_CONVS 64
static conv_t convs[MAX_CONVS];
static int n_convs;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int use_dnnl = 1;

void pdrt_conv2d_use_dnnl(int on) { use_dnnl = on; }

int pdrt_conv2d_dnnl_shapes(void) {
    int n = 0;
    for (int i = 0; i < n_convs; i++) n += convs[i].ok > 0;
    return n;
}

/* the io of a tensor whose caller layout is user_md and primitive layout prim_md; output: data
 * flows primitive -> caller; accumulate: the caller's tensor gets the primitive's added */
static int io_init(io_t *io, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *prim_md,
                   int output, int accumulate) {
    TRY(dnnl_memory_create(&io->user, user_md, engine, DNNL_MEMORY_NONE));
    if (!accumulate && dnnl_memory_desc_equal(user_md, prim_md)) {
        io->prim = io->user;
        io->reorder = NULL;
        return 1;
    }
    TRY(dnnl_memory_create(&io->prim, prim_md, engine, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (accumulate) {
        TRY(dnnl_primitive_attr_create(&attr));
        TRY(dnnl_post_ops_create(&po));
        TRY(dnnl_post_ops_append_sum(po, 1.0f));
        TRY(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = output ? dnnl_reorder_primitive_desc_create(&pd, prim_md, engine, user_md, engine, attr)
                             : dnnl_reorder_primitive_desc_create(&pd, user_md, engine, prim_md, engine, attr);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    TRY(s);
    s = dnnl_primitive_create(&io->reorder, pd);
    dnnl_primitive_desc_destroy(pd);
    return s == dnnl_success;
}

static void reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    RUN(dnnl_primitive_execute(r, stream, 2, args));
}

/* an input: the caller's data in the primitive's layout */
static dnnl_memory_t io_in(io_t *io, const float *p) {
    RUN(dnnl_memory_set_data_handle(io->user, (void *)p));
    if (io->reorder) reorder(io->reorder, io->user, io->prim);
    return io->prim;
}

/* an output: where the primitive writes; io_out_end then moves (or adds) it into the caller's */
static dnnl_memory_t io_out(io_t *io, float *p) {
    if (!io->reorder) RUN(dnnl_memory_set_data_handle(io->user, p));
    return io->prim;
}
static void io_out_end(io_t *io, float *p) {
    if (!io->reorder) return;
    RUN(dnnl_memory_set_data_handle(io->user, p));
    reorder(io->reorder, io->prim, io->user);
}

static const dnnl_memory_desc_t *md_of(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* creates the three primitives and their ios for c->key; 0 when oneDNN refuses */
static int conv_make(conv_t *c) {
    const int *k = c->key;
    int B = k[0], C = k[1], H = k[2], W = k[3], OC = k[4], KH = k[5], KW = k[6], SH = k[7],
        SW = k[8], PH = k[9], PW = k[10], has_bias = k[11];
    int OH = pdrt_pool_out_size(H, KH, SH, PH), OW = pdrt_pool_out_size(W, KW, SW, PW);
    /* the right padding that makes oneDNN's output size ours (floor division drops a remainder) */
    dnnl_dims_t src_d = {B, C, H, W}, w_d = {OC, C, KH, KW}, b_d = {OC}, dst_d = {B, OC, OH, OW};
    dnnl_dims_t strides = {SH, SW}, pad_l = {PH, PW},
                pad_r = {(OH - 1) * SH + KH - H - PH, (OW - 1) * SW + KW - W - PW};
    dnnl_memory_desc_t u_src, u_w, u_b, u_dst, a_src, a_w, a_dst;
    TRY(dnnl_memory_desc_init_by_tag(&u_src, 4, src_d, dnnl_f32, dnnl_nchw));
    TRY(dnnl_memory_desc_init_by_tag(&u_w, 4, w_d, dnnl_f32, dnnl_oihw));
    TRY(dnnl_memory_desc_init_by_tag(&u_b, 1, b_d, dnnl_f32, dnnl_x));
    TRY(dnnl_memory_desc_init_by_tag(&u_dst, 4, dst_d, dnnl_f32, dnnl_nchw));
    TRY(dnnl_memory_desc_init_by_tag(&a_src, 4, src_d, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&a_w, 4, w_d, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&a_dst, 4, dst_d, dnnl_f32, dnnl_format_tag_any));
    const dnnl_memory_desc_t *bias = has_bias ? &u_b : NULL;

    dnnl_convolution_desc_t fd, dd, wd;
    dnnl_primitive_desc_t fpd, dpd, wpd;
    /* a first layer's few input channels fill no 16-channel block: its forward reads and writes
     * NCHW itself, which beats reordering its large output back (fmnist_cnn's conv1) */
    int plain = C < 4;
    TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                           plain ? &u_src : &a_src, &a_w, bias,
                                           plain ? &u_dst : &a_dst, strides, pad_l, pad_r));
    TRY(dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL));
    TRY(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &a_src, &a_w, &a_dst,
                                                 strides, pad_l, pad_r));
    TRY(dnnl_primitive_desc_create(&dpd, &dd, NULL, engine, fpd));
    TRY(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &a_src, &a_w,
                                                    bias, &a_dst, strides, pad_l, pad_r));
    TRY(dnnl_primitive_desc_create(&wpd, &wd, NULL, engine, fpd));

    OK(io_init(&c->f_src, &u_src, md_of(fpd, dnnl_query_src_md), 0, 0));
    OK(io_init(&c->f_w, &u_w, md_of(fpd, dnnl_query_weights_md), 0, 0));
    if (has_bias) OK(io_init(&c->f_b, &u_b, &u_b, 0, 0)); /* bias: plain x on both sides */
    OK(io_init(&c->f_dst, &u_dst, md_of(fpd, dnnl_query_dst_md), 1, 0));
    OK(io_init(&c->d_dsrc, &u_src, md_of(dpd, dnnl_query_diff_src_md), 1, 1));
    OK(io_init(&c->d_w, &u_w, md_of(dpd, dnnl_query_weights_md), 0, 0));
    OK(io_init(&c->d_ddst, &u_dst, md_of(dpd, dnnl_query_diff_dst_md), 0, 0));
    OK(io_init(&c->w_src, &u_src, md_of(wpd, dnnl_query_src_md), 0, 0));
    OK(io_init(&c->w_dw, &u_w, md_of(wpd, dnnl_query_diff_weights_md), 1, 1));
    if (has_bias) OK(io_init(&c->w_db, &u_b, &u_b, 1, 1));
    OK(io_init(&c->w_ddst, &u_dst, md_of(wpd, dnnl_query_diff_dst_md), 0, 0));
    c->same_ddst = dnnl_memory_desc_equal(md_of(dpd, dnnl_query_diff_dst_md),
                                          md_of(wpd, dnnl_query_diff_dst_md));
    TRY(dnnl_primitive_create(&c->fwd, fpd));
    TRY(dnnl_primitive_create(&c->bwd_data, dpd));
    TRY(dnnl_primitive_create(&c->bwd_w, wpd));
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    return 1;
}

/* the primitives of this shape (made on first use), or NULL: use im2col */
static conv_t *conv_get(int B, int C, int H, int W, int OC, int KH, int KW, int SH, int SW, int PH,
                        int PW, int has_bias) {
    if (!use_dnnl) return NULL;
    int key[12] = {B, C, H, W, OC, KH, KW, SH, SW, PH, PW, has_bias};
    for (int i = 0; i < n_convs; i++)
        if (!memcmp(convs[i].key, key, sizeof key)) return convs[i].ok > 0 ? &convs[i] : NULL;
    if (n_convs == MAX_CONVS) return NULL;
    if (!engine) {
        omp_set_num_threads(1); /* the pipeline is the parallelism: one thread per rank */
        if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
            dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
            use_dnnl = 0;
            return NULL;
        }
    }
    conv_t *c = &convs[n_convs++];
    memcpy(c->key, key, sizeof key);
    c->ok = conv_make(c) ? 1 : -1;
    return c->ok > 0 ? c : NULL;
}

int pdrt_conv2d_forward_dnnl(float *out, const float *inp, const float *weight, const float *bias,
                             int B, int C, int H, int W, int OC, int KH, int KW, int SH, int SW,
                             int PH, int PW) {
    conv_t *c = conv_get(B, C, H, W, OC, KH, KW, SH, SW, PH, PW, bias != NULL);
    if (!c) return 0;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, io_in(&c->f_src, inp)},
                               {DNNL_ARG_WEIGHTS, io_in(&c->f_w, weight)},
                               {DNNL_ARG_DST, io_out(&c->f_dst, out)},
                               {DNNL_ARG_BIAS, bias ? io_in(&c->f_b, bias) : NULL}};
    RUN(dnnl_primitive_execute(c->fwd, stream, bias ? 4 : 3, args));
    io_out_end(&c->f_dst, out);
    RUN(dnnl_stream_wait(stream));
    return 1;
}

int pdrt_conv2d_backward_dnnl(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, int B, int C, int H, int W,
                              int OC, int KH, int KW, int SH, int SW, int PH, int PW) {
    if (dbias && !dweight) return 0; /* one primitive makes both: leave this case to im2col */
    conv_t *c = conv_get(B, C, H, W, OC, KH, KW, SH, SW, PH, PW, dbias != NULL);
    if (!c) return 0;
    dnnl_memory_t ddst = NULL; /* dout in the backward-weights layout, once reordered */
    if (dweight) {
        ddst = io_in(&c->w_ddst, dout);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, io_in(&c->w_src, inp)},
                                   {DNNL_ARG_DIFF_DST, ddst},
                                   {DNNL_ARG_DIFF_WEIGHTS, io_out(&c->w_dw, dweight)},
                                   {DNNL_ARG_DIFF_BIAS, dbias ? io_out(&c->w_db, dbias) : NULL}};
        RUN(dnnl_primitive_execute(c->bwd_w, stream, dbias ? 4 : 3, args));
        io_out_end(&c->w_dw, dweight);
        if (dbias) io_out_end(&c->w_db, dbias);
    }
    if (dinp) {
        if (!ddst || !c->same_ddst) ddst = io_in(&c->d_ddst, dout);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, ddst},
                                   {DNNL_ARG_WEIGHTS, io_in(&c->d_w, weight)},
                                   {DNNL_ARG_DIFF_SRC, io_out(&c->d_dsrc, dinp)}};
        RUN(dnnl_primitive_execute(c->bwd_data, stream, 3, args));
        io_out_end(&c->d_dsrc, dinp);
    }
    RUN(dnnl_stream_wait(stream));
    return 1;
}

#else /* no oneDNN: ops_conv.c's im2col does every convolution */

void pdrt_conv2d_use_dnnl(int on) { (void)on; }
int pdrt_conv2d_dnnl_shapes(void) { return 0; }
int pdrt_conv2d_forward_dnnl(float *out, const float *inp, const float *weight, const float *bias,
                             int B, int C, int H, int W, int OC, int KH, int KW, int SH, int SW,
                             int PH, int PW) {
    (void)out, (void)inp, (void)weight, (void)bias, (void)B, (void)C, (void)H, (void)W, (void)OC;
    (void)KH, (void)KW, (void)SH, (void)SW, (void)PH, (void)PW;
    return 0;
}
int pdrt_conv2d_backward_dnnl(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, int B, int C, int H, int W,
                              int OC, int KH, int KW, int SH, int SW, int PH, int PW) {
    (void)dinp, (void)dweight, (void)dbias, (void)dout, (void)inp, (void)weight, (void)B, (void)C;
    (void)H, (void)W, (void)OC, (void)KH, (void)KW, (void)SH, (void)SW, (void)PH, (void)PW;
    return 0;
}

#endif
