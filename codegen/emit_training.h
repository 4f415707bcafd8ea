/* emit_training.h: the stage descriptor's training fields that only some models set (AdamW's
 * decay mask, the learning-rate schedule, clipping), printed only when set so that the stages of
 * other models stay as they were. */
#ifndef PD_EMIT_TRAINING_H
#define PD_EMIT_TRAINING_H

#include "emit_common.h"

/* `    .field = value,` lines (the CPU stage's designated initialisers) */
void cg_emit_training(cg_em *e);
/* `    b->field = value;` lines (the CUDA stage's assignments) */
void cg_emit_training_cuda(cg_em *e);

#endif
