/* memory.h: a pipeline stage's memory per worker under each schedule (pd_mem_model, in
 * planner/read/cluster.h): weight versions, the gradient and the optimizer's buffers, the
 * activations of every minibatch in flight, and zb's deferred weight-gradient buffers. The one
 * formula the DP's memory check (pd_stage_cost_eval, so the certificate's too) and the
 * simulator's peak memory (planner/sim) both call, so that they agree; docs/planner.md
 * ("Memory per schedule") gives it and why each in-flight count is what it is. */
#ifndef PD_MEMORY_H
#define PD_MEMORY_H

#include "planner/plan/plan.h"
#include "planner/model/costgraph.h"
#include "planner/read/cluster.h"

/* What a stage holds, per worker. */
typedef struct {
    double param_bytes;   /* P: its weights */
    double act_bytes;     /* its layers' stored activations per minibatch, as the runtime keeps
                             them (pd_node_stored_bytes: outputs that are not aliases, and saved
                             state such as attention's probabilities) */
    double kept_bytes;    /* selective recomputation: the part of act_bytes it keeps per
                             minibatch (the layers whose op keeps its output); < 0: unknown,
                             counted as no recomputation */
    double in_bytes;      /* its input per minibatch (0 on the first stage) */
    double optim_buffers; /* parameter-sized optimizer buffers (pd_costgraph.optim_buffers) */
} pd_mem_stage;

/* PD_MEM_* of a schedule name ("1f1b", "2bw", "flush", "gpipe", "zb-h1", "zb-h2"); -1 when none. */
int pd_mem_schedule_of(const char *name);

/* The model of schedule `name` (NULL or unknown: 1f1b) with M microbatches per batch, recompute
 * mode rc (pd_recompute_mode: 0 none, 1 full, 2 selective) and an upper bound on the pipeline's
 * largest warm-up. */
pd_mem_model pd_mem_model_of(const char *name, int microbatches, int rc, int max_warmup);

/* Minibatches one replica of a stage keeps in flight at most (from its forward to its backward,
 * zb: to its backward_weight), given its warm-up w and its replica count R, n = ceil(M / R) its
 * minibatches per batch: 1f1b and 2bw w + 1; flush min(w + 1, n); gpipe n; zb-h1
 * min(max_warmup + 1, n); zb-h2 min(2 max_warmup + 1, n), the limit its generator keeps to (its
 * greedy order may stay below it). Each is what runtime/schedule/schedule.c generates. zb's
 * count depends on the pipeline's largest warm-up, which one stage does not know: max_warmup
 * bounds it, and a stage whose own warm-up is deeper gets -1 (no such plan under this bound;
 * pd_mem_bytes gives it infinite memory), so that the DP under a bound B plans exactly over the
 * plans whose warm-ups are all at most B. */
int pd_mem_in_flight(const pd_mem_model *m, int warmup, int replicas);

/* The weight versions a stage holds with `in_flight` minibatches in flight: 1f1b one per
 * minibatch in flight (weight stashing), 2bw two, the synchronous schedules one. */
int pd_mem_versions(const pd_mem_model *m, int in_flight);

/* Bytes per worker of stage s with `in_flight` (n) minibatches in flight under m, as the CPU
 * runtime allocates them: (versions + 1 + optim_buffers) P for the weights, the gradient and the
 * optimizer, plus pd_mem_act_bytes. INFINITY when in_flight < 0 (pd_mem_in_flight's "beyond the
 * bound"). */
double pd_mem_bytes(const pd_mem_model *m, const pd_mem_stage *s, int in_flight);

/* The activations' part of pd_mem_bytes:
 *   no recomputation   n (act + in)
 *   full               n in + act                 (the input per minibatch, one working buffer)
 *   selective          n (in + kept) + act        (no kept copy when n <= 1: the working buffer)
 * and under zb-h1 and zb-h2 also n act (every layer's output gradient waits for W) and n P (the
 * deferred weight gradients). */
double pd_mem_act_bytes(const pd_mem_model *m, const pd_mem_stage *s, int in_flight);

/* What stage q of plan p holds (its nodes' activations from g, the rest from the stage). */
pd_mem_stage pd_mem_stage_of(const pd_plan *p, int q, const pd_costgraph *g);

/* Stage q's memory in plan p under m, with the plan's warm-ups (zb: their largest as
 * max_warmup) and m's microbatches: what the simulator's peak gives (test_memory). */
double pd_plan_stage_memory(const pd_plan *p, int q, const pd_costgraph *g,
                            const pd_mem_model *m);

#endif
