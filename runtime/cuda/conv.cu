// conv.cu: conv2d through cuDNN's convolution API (legacy descriptors, heuristics _v7).
// Per shape and precision the context caches the descriptors and one algorithm per direction,
// chosen once among those fitting the fixed algorithm workspace. fp32 runs with FMA math (no
// TF32); bf16 casts operands into scratch, runs on tensor cores, and accumulates back in fp32.
#include "cuda_internal.h"

#include <string.h>

static int out_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

static pd_conv_plan *conv_plan(pd_cuda_ctx *ctx, int B, int C, int H, int W, int OC, int KH,
                               int KW, int SH, int SW, int PH, int PW) {
    int bf16 = ctx->prec == PD_CUDA_BF16;
    int key[14] = {B, C, H, W, OC, KH, KW, SH, SW, PH, PW, bf16, 0, 0};
    for (int i = 0; i < ctx->n_conv_plans; i++)
        if (!memcmp(ctx->conv_plans[i].key, key, sizeof key)) return &ctx->conv_plans[i];
    PD_CUDA_REQUIRE(ctx->n_conv_plans < PD_MAX_CONV_PLANS, "too many distinct conv shapes");
    pd_conv_plan *p = &ctx->conv_plans[ctx->n_conv_plans];
    memset(p, 0, sizeof *p);
    memcpy(p->key, key, sizeof key);
    cudnnDataType_t dt = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    cudnnMathType_t math = bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    int OH = out_size(H, KH, SH, PH), OW = out_size(W, KW, SW, PW);
    PD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    PD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    PD_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    PD_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    PD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, dt, B, C, H, W));
    PD_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NCHW, OC, C, KH, KW));
    PD_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, PH, PW, SH, SW, 1, 1,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    PD_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, math));
    int n_, c_, h_, w_;
    PD_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n_, &c_, &h_, &w_));
    PD_CUDA_REQUIRE(n_ == B && c_ == OC && h_ == OH && w_ == OW,
                    "cuDNN output shape differs from pdrt_pool_out_size");
    PD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, dt, B, OC, OH, OW));

    // forward: the heuristic's order, preferring the precision's math type, within workspace
    cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int nf = 0, pick = -1;
    PD_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
        ctx->dnn, p->x, p->w, p->conv, p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &nf, fp));
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int i = 0; i < nf && pick < 0; i++)
            if (fp[i].status == CUDNN_STATUS_SUCCESS && fp[i].memory <= ctx->algo_ws_bytes &&
                (pass || fp[i].mathType == math))
                pick = i;
    PD_CUDA_REQUIRE(pick >= 0, "cuDNN: no forward convolution algorithm fits the workspace");
    p->fwd = fp[pick].algo;
    p->fwd_ws = fp[pick].memory;

    cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int nd = 0;
    pick = -1;
    PD_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        ctx->dnn, p->w, p->y, p->conv, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &nd, dp));
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int i = 0; i < nd && pick < 0; i++)
            if (dp[i].status == CUDNN_STATUS_SUCCESS && dp[i].memory <= ctx->algo_ws_bytes &&
                (pass || dp[i].mathType == math))
                pick = i;
    PD_CUDA_REQUIRE(pick >= 0, "cuDNN: no backward-data algorithm fits the workspace");
    p->bwd_data = dp[pick].algo;
    p->bwd_data_ws = dp[pick].memory;

    cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int nw = 0;
    pick = -1;
    PD_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        ctx->dnn, p->x, p->y, p->conv, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &nw, wp));
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int i = 0; i < nw && pick < 0; i++)
            if (wp[i].status == CUDNN_STATUS_SUCCESS && wp[i].memory <= ctx->algo_ws_bytes &&
                (pass || wp[i].mathType == math))
                pick = i;
    PD_CUDA_REQUIRE(pick >= 0, "cuDNN: no backward-filter algorithm fits the workspace");
    p->bwd_filter = wp[pick].algo;
    p->bwd_filter_ws = wp[pick].memory;
    p->have_bwd = 1;
    ctx->n_conv_plans++;
    return p;
}

extern "C" size_t pdrt_conv2d_cuda_scratch_bytes(pd_cuda_precision prec, int B, int C, int H, int W,
                                            int OC, int KH, int KW, int SH, int SW, int PH,
                                            int PW) {
    if (prec != PD_CUDA_BF16) return 0;
    size_t OH = (size_t)out_size(H, KH, SH, PH), OW = (size_t)out_size(W, KW, SW, PW);
    size_t x = pd_scratch_round((size_t)B * C * H * W * 2);
    size_t w = pd_scratch_round((size_t)OC * C * KH * KW * 2);
    size_t y = pd_scratch_round((size_t)B * OC * OH * OW * 2);
    return 2 * x + 2 * w + y; // backward: dy, x, w, dx, dw
}

extern "C" void pdrt_conv2d_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp,
                                    const float *weight, const float *bias, int B, int C, int H,
                                    int W, int OC, int KH, int KW, int SH, int SW, int PH,
                                    int PW) {
    pd_scratch_reset(ctx);
    pd_conv_plan *p = conv_plan(ctx, B, C, H, W, OC, KH, KW, SH, SW, PH, PW);
    size_t HW = (size_t)out_size(H, KH, SH, PH) * out_size(W, KW, SW, PW);
    float one = 1.0f, zero = 0.0f;
    if (ctx->prec == PD_CUDA_BF16) {
        size_t nx = (size_t)B * C * H * W, nw = (size_t)OC * C * KH * KW, ny = (size_t)B * OC * HW;
        __nv_bfloat16 *xb = (__nv_bfloat16 *)PD_SCRATCH(ctx, nx * 2);
        __nv_bfloat16 *wb = (__nv_bfloat16 *)PD_SCRATCH(ctx, nw * 2);
        __nv_bfloat16 *yb = (__nv_bfloat16 *)PD_SCRATCH(ctx, ny * 2);
        pd_cuda_to_bf16(ctx, xb, inp, nx);
        pd_cuda_to_bf16(ctx, wb, weight, nw);
        PD_CUDNN_CHECK(cudnnConvolutionForward(ctx->dnn, &one, p->x, xb, p->w, wb, p->conv,
                                               p->fwd, ctx->algo_ws, p->fwd_ws, &zero, p->y,
                                               yb));
        pd_cuda_bf16_to_f32_bias(ctx, out, yb, bias, B, OC, HW);
        return;
    }
    PD_CUDNN_CHECK(cudnnConvolutionForward(ctx->dnn, &one, p->x, inp, p->w, weight, p->conv,
                                           p->fwd, ctx->algo_ws, p->fwd_ws, &zero, p->y, out));
    pd_cuda_add_bias(ctx, out, bias, B, OC, HW);
}

extern "C" void pdrt_conv2d_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *weight,
                                     int B, int C, int H, int W, int OC, int KH, int KW, int SH,
                                     int SW, int PH, int PW) {
    pd_scratch_reset(ctx);
    pd_conv_plan *p = conv_plan(ctx, B, C, H, W, OC, KH, KW, SH, SW, PH, PW);
    size_t HW = (size_t)out_size(H, KH, SH, PH) * out_size(W, KW, SW, PW);
    float one = 1.0f, zero = 0.0f;
    pd_cuda_bias_grad(ctx, dbias, dout, B, OC, HW);
    if (ctx->prec == PD_CUDA_BF16) {
        size_t nx = (size_t)B * C * H * W, nw = (size_t)OC * C * KH * KW, ny = (size_t)B * OC * HW;
        __nv_bfloat16 *dyb = (__nv_bfloat16 *)PD_SCRATCH(ctx, ny * 2);
        pd_cuda_to_bf16(ctx, dyb, dout, ny);
        if (dinp) {
            __nv_bfloat16 *wb = (__nv_bfloat16 *)PD_SCRATCH(ctx, nw * 2);
            __nv_bfloat16 *dxb = (__nv_bfloat16 *)PD_SCRATCH(ctx, nx * 2);
            pd_cuda_to_bf16(ctx, wb, weight, nw);
            PD_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx->dnn, &one, p->w, wb, p->y, dyb,
                                                        p->conv, p->bwd_data, ctx->algo_ws,
                                                        p->bwd_data_ws, &zero, p->x, dxb));
            pd_cuda_acc_from_bf16(ctx, dinp, dxb, nx);
        }
        if (dweight) {
            __nv_bfloat16 *xb = (__nv_bfloat16 *)PD_SCRATCH(ctx, nx * 2);
            __nv_bfloat16 *dwb = (__nv_bfloat16 *)PD_SCRATCH(ctx, nw * 2);
            pd_cuda_to_bf16(ctx, xb, inp, nx);
            PD_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx->dnn, &one, p->x, xb, p->y, dyb,
                                                          p->conv, p->bwd_filter, ctx->algo_ws,
                                                          p->bwd_filter_ws, &zero, p->w, dwb));
            pd_cuda_acc_from_bf16(ctx, dweight, dwb, nw);
        }
        return;
    }
    if (dinp)
        PD_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx->dnn, &one, p->w, weight, p->y, dout,
                                                    p->conv, p->bwd_data, ctx->algo_ws,
                                                    p->bwd_data_ws, &one, p->x, dinp));
    if (dweight)
        PD_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx->dnn, &one, p->x, inp, p->y, dout,
                                                      p->conv, p->bwd_filter, ctx->algo_ws,
                                                      p->bwd_filter_ws, &one, p->w, dweight));
}
