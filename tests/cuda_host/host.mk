# host.mk: builds a binary of the CUDA executor on the host stand-in (host_stage.c) from a CPU
# plan's generated stages; read after the generated Makefile, whose CFLAGS_GEN and LIBS it uses:
#   make -C GEN -f Makefile -f ROOT/tests/cuda_host/host.mk host_bin HOST_OUT=stage_0 \
#        HOST_SOURCES=stage_0.c HOST_STAGES='&S0_stage'
# Test-only (tests/cli/test_cuda_executor_host.sh).
CUDA_HOME ?= /usr/local/cuda
HOST_LIB  := $(PDRT_ROOT)/build/cuda_host/libpdrt_cuda_host.a
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: host_bin
host_bin: $(HOST_LIB)
	$(CC) $(CFLAGS_GEN) $(SANFLAGS) -Werror -I$(CUDA_HOME)/include -DPDRT_NO_MAIN \
	    "-DHOST_STAGES=$(HOST_STAGES)" -o $(HOST_OUT) $(PDRT_ROOT)/tests/cuda_host/host_stage.c \
	    $(HOST_SOURCES) $(HOST_LIB) $(LIBS)
