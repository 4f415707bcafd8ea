# PipeDream-C top-level build.
#   make          builds bin/pdplan, build/libpdrt.a, bin/pdexport and bin/pdprof (with the GPU op kernels where
#                 nvcc and cuDNN's header exist)
#   make deps     installs what is missing through apt (scripts/install-deps.sh)
#   make test     builds the tests with AddressSanitizer+UBSan and runs every test (tests/run.sh)
#   make demo     plans, generates, builds and trains models/fmnist_cnn.yaml end to end
#   make demo-gpt the same for the character model on Shakespeare, then samples text from it
# Sources are picked up by wildcard: planner/**/*.c make libplanner, codegen/*.c libcodegen,
# tools/pdplan/*.c the pdplan command over both, runtime/schedule/*.c libpdsched (the schedule
# IR and the hash: a leaf library that pdplan links and libpdrt carries), runtime/*.c,
# runtime/cpu/*.c and runtime/transport/*.c libpdrt, tests/unit/test_*.c each one test binary.
# Includes are written from the repository root (-I.), e.g. #include "runtime/schedule/schedule.h".

CC      ?= gcc
OPT     ?= -O2
PKG     := pkg-config
BLAS_CFLAGS := $(shell $(PKG) --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell $(PKG) --libs openblas 2>/dev/null || echo -lopenblas)
MPI_CFLAGS  := $(shell $(PKG) --cflags ompi-c 2>/dev/null || echo -I/usr/lib/x86_64-linux-gnu/openmpi/include)
MPI_LIBS    := $(shell $(PKG) --libs ompi-c 2>/dev/null || echo -lmpi)
WARN    := -Wall -Wextra -Werror
BASE    := -std=c11 -D_GNU_SOURCE $(WARN) -g -MMD -MP -I. -Ibuild/gen
# zlib is optional (runtime/data.c reads gzip IDX files with it, plain IDX files without)
ZLIB_FOUND  := $(shell $(PKG) --exists zlib 2>/dev/null && echo 1 || (test -f /usr/include/zlib.h && echo 1))
ZLIB_CFLAGS := $(if $(ZLIB_FOUND),-DPD_HAVE_ZLIB)
ZLIB_LIBS   := $(if $(ZLIB_FOUND),-lz)
# oneDNN is optional too (runtime/cpu/ops_conv_dnnl.c: conv2d; im2col + sgemm without it)
DNNL_FOUND  := $(shell test -f /usr/include/oneapi/dnnl/dnnl.h && echo 1)
DNNL_CFLAGS := $(if $(DNNL_FOUND),-DPD_HAVE_DNNL)
DNNL_LIBS   := $(if $(DNNL_FOUND),-ldnnl -lgomp)
CFLAGS_ALL := $(BASE) $(OPT) $(BLAS_CFLAGS) $(MPI_CFLAGS) $(ZLIB_CFLAGS) $(DNNL_CFLAGS)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
PLANNER_LIBS := -lglpk -lyaml -lprotobuf-c -lm -pthread
RUNTIME_LIBS := $(MPI_LIBS) $(BLAS_LIBS) $(ZLIB_LIBS) $(DNNL_LIBS) -lm

PLANNER_SRC := $(sort $(shell find planner -name '*.c'))
CODEGEN_SRC := $(wildcard codegen/*.c)
PDPLAN_SRC  := $(wildcard tools/pdplan/*.c)
SCHED_SRC   := $(wildcard runtime/schedule/*.c)
RUNTIME_SRC := $(wildcard runtime/*.c runtime/base/*.c runtime/cpu/*.c runtime/transport/*.c)
TEST_SRC    := $(wildcard tests/unit/test_*.c)

PLANNER_OBJ := $(PLANNER_SRC:%.c=build/obj/%.o) build/obj/gen/onnx.pb-c.o
CODEGEN_OBJ := $(CODEGEN_SRC:%.c=build/obj/%.o)
PDPLAN_OBJ  := $(PDPLAN_SRC:%.c=build/obj/%.o)
SCHED_OBJ   := $(SCHED_SRC:%.c=build/obj/%.o)
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=build/obj/%.o)
SAN_PLANNER_OBJ := $(PLANNER_SRC:%.c=build/san/%.o) build/san/gen/onnx.pb-c.o
SAN_SCHED_OBJ := $(SCHED_SRC:%.c=build/san/%.o)
SAN_RUNTIME_OBJ := $(RUNTIME_SRC:%.c=build/san/%.o)
SAN_CODEGEN_OBJ := $(CODEGEN_SRC:%.c=build/san/%.o)
SAN_PDPLAN_OBJ  := $(PDPLAN_SRC:%.c=build/san/%.o)
TEST_BIN    := $(TEST_SRC:tests/unit/%.c=build/san/tests/%)

.PHONY: all deps test demo demo-gpt clean bench runtime
all: bin/pdplan build/libpdrt.a bin/pdprof bin/pdexport

runtime: build/libpdrt.a

deps:
	bash scripts/install-deps.sh

# named corpora (runtime/rt_data.c): the checkout's data/, where make deps puts them
build/obj/runtime/rt_data.o build/san/runtime/rt_data.o: CFLAGS_ALL += -DPDRT_DATA_ROOT='"$(CURDIR)/data"'

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# ONNX (planner/read/onnx*.c, tools/pdexport): Debian libonnx-dev's onnx.proto, compiled by
# protoc-c (protobuf-c-compiler) at build time into build/gen/, linked with libprotobuf-c
# (docs/formats.md, "ONNX", says why it is not committed)
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
build/gen/onnx.pb-c.c build/gen/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p build/gen
	cp $(ONNX_PROTO) build/gen/onnx.proto
	cd build/gen && protoc-c --c_out=. onnx.proto
build/obj/gen/onnx.pb-c.o: build/gen/onnx.pb-c.c build/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@
build/san/gen/onnx.pb-c.o: build/gen/onnx.pb-c.c build/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -O1 $(SANFLAGS) -c $< -o $@
ONNX_USERS := $(wildcard planner/read/onnx*.c tools/pdexport/*.c)
$(ONNX_USERS:%.c=build/obj/%.o) $(ONNX_USERS:%.c=build/san/%.o): build/gen/onnx.pb-c.h

build/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -O1 $(SANFLAGS) -c $< -o $@

build/libplanner.a: $(PLANNER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

build/libcodegen.a: $(CODEGEN_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# the schedule IR and FNV-1a: a leaf library of its own (pdplan links it), whose objects libpdrt
# also carries, so that a generated stage links libpdrt.a alone
build/libpdsched.a: $(SCHED_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

build/libpdrt.a: $(RUNTIME_OBJ) $(SCHED_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

bin/pdplan: $(PDPLAN_OBJ) build/libcodegen.a build/libplanner.a build/libpdsched.a
	@mkdir -p bin
	$(CC) $(OPT) -o $@ $^ $(PLANNER_LIBS)

# pdexport: a trained model as ONNX (tools/pdexport; pdlaunch --save-onnx runs it); it reads model
# YAML through the planner library, and links protobuf-c, which the generated stages never do
PDEXPORT_OBJ := $(patsubst %.c,build/obj/%.o,$(wildcard tools/pdexport/*.c))
bin/pdexport: $(PDEXPORT_OBJ) build/libplanner.a build/libpdsched.a
	@mkdir -p bin
	$(CC) $(OPT) -o $@ $^ $(PLANNER_LIBS)

# pdprof: per-layer timing with the runtime's kernels (tools/pdprof/pdprof.c), the GPU's where
# nvcc exists (tools/pdprof/pdprof_cuda.c; see below), or inside training (pdprof_train.c). It
# makes the calls the op descriptors list by name (dlsym + libffi, tools/pdprof/pdprof_layer.c), so
# the kernels are linked whole (as objects) and exported (-rdynamic); libffi goes in statically
# where its archive exists, as libyaml does (docs/design-decisions.md)
PDPROF_OBJ := $(patsubst %.c,build/obj/%.o,$(filter-out tools/pdprof/pdprof_cuda.c,$(wildcard tools/pdprof/*.c)))
PDPROF_KERNELS := $(filter build/obj/runtime/cpu/%,$(RUNTIME_OBJ)) build/obj/runtime/init.o \
    build/obj/runtime/base/rng.o
FFI_CFLAGS := $(shell $(PKG) --cflags libffi 2>/dev/null)
PDPROF_FFI := $(if $(filter /%,$(shell $(CC) -print-file-name=libffi.a)),$(shell $(CC) -print-file-name=libffi.a),-lffi)
build/obj/tools/pdprof/%.o: CFLAGS_ALL += $(FFI_CFLAGS)
bin/pdprof: $(PDPROF_OBJ) $(PDPROF_KERNELS) build/libplanner.a build/libpdrt.a
	@mkdir -p bin
	$(CC) $(OPT) -rdynamic -o $@ $(filter %.o,$^) build/libplanner.a build/libpdrt.a \
	    $(PDPROF_CUDA_LIBS) $(PDPROF_YAML) $(PDPROF_FFI) $(PLANNER_LIBS) $(RUNTIME_LIBS) -ldl

build/san/libplanner.a: $(SAN_PLANNER_OBJ)
	rm -f $@ && ar rcs $@ $^

build/san/libcodegen.a: $(SAN_CODEGEN_OBJ)
	rm -f $@ && ar rcs $@ $^

build/san/libpdsched.a: $(SAN_SCHED_OBJ)
	rm -f $@ && ar rcs $@ $^

build/san/libpdrt.a: $(SAN_RUNTIME_OBJ) $(SAN_SCHED_OBJ)
	rm -f $@ && ar rcs $@ $^

build/san/pdplan: $(SAN_PDPLAN_OBJ) build/san/libcodegen.a build/san/libplanner.a build/san/libpdsched.a
	$(CC) $(SANFLAGS) -o $@ $^ $(PLANNER_LIBS)

# pdexport sanitized, for tests/cli/test_onnx.sh
build/san/pdexport: $(patsubst %.c,build/san/%.o,$(wildcard tools/pdexport/*.c)) \
    build/san/libplanner.a build/san/libpdsched.a
	$(CC) $(SANFLAGS) -o $@ $^ $(PLANNER_LIBS)

# the tests link pdplan's argument parser (tools/pdplan/cli_args.c), its interleaved partition
# (tools/pdplan/interleave.c), its schedule planning (tools/pdplan/choose.c) and the code generator
build/san/tests/%: tests/unit/%.c tests/unit/ref_check.h tests/test_main.c \
    build/san/tools/pdplan/cli_args.o build/san/tools/pdplan/interleave.o \
    build/san/tools/pdplan/choose.o build/san/libcodegen.a build/san/libplanner.a build/san/libpdrt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -O1 $(SANFLAGS) -Itests -o $@ $< tests/test_main.c \
	    build/san/tools/pdplan/cli_args.o build/san/tools/pdplan/interleave.o \
	    build/san/tools/pdplan/choose.o build/san/libcodegen.a build/san/libplanner.a \
	    build/san/libpdrt.a $(PLANNER_LIBS) $(RUNTIME_LIBS)

test: all build/san/pdplan build/san/pdexport $(TEST_BIN)
	bash tests/run.sh

demo:
	bash scripts/demo.sh

# the character model demo-gpt trains: gpt_char (650 updates of 32 sequences as a 2-stage flush
# pipeline: validation 1.85 nats per character; 440 s of training at load 7 on the shared 2
# cores, docs/performance.md), or DEMO_GPT_MODEL=bigram_char (under a minute)
DEMO_GPT_MODEL ?= gpt_char
demo-gpt:
	MODEL=$(DEMO_GPT_MODEL) bash scripts/demo_gpt.sh

bench: all
	@echo "benchmarks: see bench/README.md"

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- CUDA library (runtime/cuda, docs/cuda.md): only `make cuda` and, when nvcc exists, `make
# test` build it; `make all` never needs nvcc (it builds the op kernels into bin/pdprof only where
# nvcc and cuDNN exist, below). sm_90 code, compute_90 PTX, generic compute_75 PTX.
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(shell command -v nvcc 2>/dev/null || (test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc))
CUDA_GENCODE := -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
    -gencode arch=compute_75,code=compute_75
NVCCFLAGS ?= -std=c++17 -O2 -g $(CUDA_GENCODE) -Xcompiler -Wall,-Wextra,-Werror -Werror all-warnings
CUDA_INC  := -I. -I$(CUDA_HOME)/include
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcudnn -lcudart -lstdc++ -lm
CUDA_SRC  := $(wildcard runtime/cuda/*.cu)
CUDA_OBJ  := $(CUDA_SRC:%.cu=build/cuda/%.o) build/cuda/runtime/cuda/gpu_detect.o
# the CPU reference the GPU test compares against: the ops, rng and optimizers only
CUDA_REF_SRC := $(wildcard runtime/cpu/ops_*.c) runtime/base/rng.c runtime/optim.c
CUDA_TEST_BIN := $(if $(NVCC),build/san/tests/test_ops_cuda)

.PHONY: cuda
cuda: build/libpdrt_cuda.a build/cuda/test_ops_cuda build/cuda/gpu_step

build/cuda/%.o: %.cu runtime/cuda/ops_cuda.h runtime/cuda/cuda_internal.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(CUDA_INC) -c $< -o $@

build/cuda/runtime/cuda/gpu_detect.o: runtime/cuda/gpu_detect.c runtime/cuda/ops_cuda.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) -O2 -g $(CUDA_INC) -c $< -o $@

# the CUDA executor and transports (pdrt_cuda.h, transport.h): C with MPI, NCCL and the CUDA runtime
CUDA_RT_SRC := $(filter-out runtime/cuda/gpu_detect.c,$(wildcard runtime/cuda/*.c runtime/cuda/transport/*.c))
CUDA_OBJ    += $(CUDA_RT_SRC:%.c=build/cuda/%.o)
build/cuda/runtime/cuda/%.o: runtime/cuda/%.c $(wildcard runtime/cuda/*.h runtime/cuda/transport/*.h \
    runtime/transport/*.h) runtime/rt.h runtime/pdrt.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g $(CUDA_INC) $(MPI_CFLAGS) -c $< -o $@

build/libpdrt_cuda.a: $(CUDA_OBJ)
	rm -f $@ && ar rcs $@ $^

# the CUDA executor on a host stand-in of the CUDA runtime (tests/cuda_host/host_cuda.c): its
# schedules, stash, arena, links and evaluation run and are tested without a GPU (the stages'
# kernels are the CPU's); needs the CUDA headers only, no libcudart, NCCL or nvcc. Sanitized.
CUDA_HOST_SRC := $(filter-out runtime/cuda/transport/transport_ipc.c \
    runtime/cuda/transport/transport_nccl.c,$(CUDA_RT_SRC)) tests/cuda_host/host_cuda.c
build/cuda_host/%.o: %.c $(wildcard runtime/cuda/*.h runtime/cuda/transport/*.h \
    runtime/transport/*.h) runtime/rt.h runtime/pdrt.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g $(SANFLAGS) $(CUDA_INC) $(MPI_CFLAGS) -c $< -o $@
build/cuda_host/libpdrt_cuda_host.a: $(CUDA_HOST_SRC:%.c=build/cuda_host/%.o)
	rm -f $@ && ar rcs $@ $^

# the GPU op checks: UBSan only (AddressSanitizer and the CUDA driver do not mix); SKIPs without a GPU
CUDA_TEST_DEPS := tests/cuda/test_ops_cuda.c tests/test_main.c $(CUDA_REF_SRC) build/libpdrt_cuda.a
define cuda_test_link
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -g -O2 $(1) -Itests \
	    $(BLAS_CFLAGS) $(CUDA_INC) -o $@ tests/cuda/test_ops_cuda.c tests/test_main.c \
	    $(CUDA_REF_SRC) build/libpdrt_cuda.a $(CUDA_LIBS) $(BLAS_LIBS)
endef
build/san/tests/test_ops_cuda: $(CUDA_TEST_DEPS)
	$(call cuda_test_link,-fsanitize=undefined -fno-sanitize-recover=undefined)
build/cuda/test_ops_cuda: $(CUDA_TEST_DEPS)
	$(call cuda_test_link,)

# pdprof --backend cuda links the GPU kernels whole (only the op objects: no NCCL, MPI or executor)
# where nvcc and cuDNN's header exist; elsewhere tools/pdprof/pdprof_cuda.c builds as a stub that says
# so, under another object name, so that switching between the two always relinks the right one.
# libyaml goes in statically where its archive exists, so that bin/pdprof runs on the GPU
# machine, which has no libyaml (bench/gpu_check.sh)
PDPROF_YAML := $(if $(filter /%,$(shell $(CC) -print-file-name=libyaml.a)),$(shell $(CC) -print-file-name=libyaml.a))
PDPROF_GPU  := $(if $(NVCC),$(wildcard $(CUDA_HOME)/include/cudnn.h))
CUDA_OPS_OBJ := $(CUDA_SRC:%.cu=build/cuda/%.o) build/cuda/runtime/cuda/gpu_detect.o
# build/pdprof.mode changes (and relinks bin/pdprof) only when the choice does
PDPROF_MODE := $(if $(PDPROF_GPU),gpu,stub)
$(shell mkdir -p build && [ "$$(cat build/pdprof.mode 2>/dev/null)" = $(PDPROF_MODE) ] || echo $(PDPROF_MODE) >build/pdprof.mode)
bin/pdprof: build/pdprof.mode
ifneq ($(PDPROF_GPU),)
bin/pdprof: build/obj/tools/pdprof/pdprof_cuda_gpu.o $(CUDA_OPS_OBJ)
PDPROF_CUDA_LIBS := build/libpdrt.a $(CUDA_LIBS)
else
bin/pdprof: build/obj/tools/pdprof/pdprof_cuda_stub.o
endif
build/obj/tools/pdprof/pdprof_cuda_gpu.o: tools/pdprof/pdprof_cuda.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DPDPROF_HAVE_CUDA $(CUDA_INC) -c $< -o $@
build/obj/tools/pdprof/pdprof_cuda_stub.o: tools/pdprof/pdprof_cuda.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# bench/gpu_step.c: full training steps of VGG-16, AlexNet, ResNet-50 on synthetic data
# (runtime/optim.c: the learning-rate schedule the CUDA optimizer step reads, pd_optim_lr)
build/cuda/gpu_step: bench/gpu_step.c runtime/optim.c build/libpdrt_cuda.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -g -O2 $(CUDA_INC) -o $@ bench/gpu_step.c runtime/optim.c \
	    build/libpdrt_cuda.a $(CUDA_LIBS)

test: $(CUDA_TEST_BIN)
