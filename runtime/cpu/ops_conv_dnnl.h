/* ops_conv_dnnl.h: conv2d through oneDNN (ops_conv_dnnl.c), which ops_conv.c's pdrt_conv2d_forward
 * and _backward try first. Same arguments and semantics as those (the backward accumulates);
 * each returns 1 when it did the work, 0 when oneDNN is not built in, switched off
 * (pdrt_conv2d_use_dnnl) or refuses the shape: then the caller runs im2col + sgemm. */
#ifndef PD_OPS_CONV_DNNL_H
#define PD_OPS_CONV_DNNL_H

int pdrt_conv2d_forward_dnnl(float *out, const float *inp, const float *weight, const float *bias,
                             int B, int C, int H, int W, int OC, int KH, int KW, int SH, int SW,
                             int PH, int PW);
int pdrt_conv2d_backward_dnnl(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, int B, int C, int H, int W,
                              int OC, int KH, int KW, int SH, int SW, int PH, int PW);

#endif
