/* op_list.h: the list of ops, one line per op, as an X-macro: PD_OP(ENUM_SUFFIX, name), where
 * `name` is the op's name in a model YAML and its descriptor pd_op_<name> (planner/ops/<name>.c
 * or a file it shares). model.h makes the enum pd_op_kind from it and planner/ops/op.c the table
 * of descriptors. Adding an op is one line at the end (docs/architecture.md ("Ops")). No include
 * guard: every includer defines PD_OP first. */
PD_OP(LINEAR, linear)
PD_OP(CONV2D, conv2d)
PD_OP(RELU, relu)
PD_OP(MAXPOOL2D, maxpool2d)
PD_OP(AVGPOOL2D, avgpool2d)
PD_OP(FLATTEN, flatten)
PD_OP(DROPOUT, dropout)
PD_OP(BATCHNORM2D, batchnorm2d)
PD_OP(ADD, add)
PD_OP(CONCAT, concat)
PD_OP(EMBEDDING, embedding)
PD_OP(LSTM, lstm)
PD_OP(GELU, gelu)
PD_OP(LAYERNORM, layernorm)
PD_OP(ATTENTION, attention)
