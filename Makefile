# libcvis build.  `make` builds the shared and static libraries; `make check`
# runs every test; see README.md for the rest.

# The version comes from include/cvis.h, its one source.
VERSION_MAJOR := $(shell sed -n 's/^\#define CVIS_VERSION_MAJOR \([0-9]*\).*/\1/p' include/cvis.h)
VERSION_MINOR := $(shell sed -n 's/^\#define CVIS_VERSION_MINOR \([0-9]*\).*/\1/p' include/cvis.h)
VERSION_PATCH := $(shell sed -n 's/^\#define CVIS_VERSION_PATCH \([0-9]*\).*/\1/p' include/cvis.h)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
DESTDIR ?=

CC ?= cc
# A Python that has numpy: Debian's own first, then whatever python3 is.
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do \
	$$p -c 'import numpy' 2>/dev/null && { command -v $$p; break; }; done)

OPT ?= -O2
# Element-wise loops (optimizer steps, activations) vectorize once sqrt no
# longer sets errno and loops with a remainder are allowed; neither changes
# a result.
VECTORIZE := -fno-math-errno $(shell $(CC) -fvect-cost-model=cheap -x c -c -o /dev/null /dev/null 2>/dev/null && echo -fvect-cost-model=cheap)
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_LIB := -std=c11 $(OPT) $(VECTORIZE) -g $(WARN) -fPIC -fvisibility=hidden -DCVIS_BUILDING \
	-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Ilib -I/usr/include/stb $(EXTRA_CFLAGS)
LDLIBS := -lopenblas -lz -lm -lpthread

BUILD ?= build
SRCS := $(sort $(wildcard lib/*.c lib/*/*.c))
OBJS := $(SRCS:%.c=$(BUILD)/obj/%.o)
DEPS := $(OBJS:.o=.d)

# Where the libraries go: lib/ for the normal build; sanitizer builds keep
# theirs under their own build directory so they never replace these.
LIBOUT ?= lib
SONAME := libcvis.so.$(VERSION_MAJOR)
SHARED := $(LIBOUT)/libcvis.so.$(VERSION)
STATIC := $(LIBOUT)/libcvis.a

all: $(SHARED) $(LIBOUT)/libcvis.so $(STATIC) $(BUILD)/cvis.pc examples

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LIB) -MMD -MP -c $< -o $@

$(SHARED): $(OBJS) lib/cvis.map
	@mkdir -p $(LIBOUT)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/cvis.map -Wl,-z,defs \
		-o $@ $(OBJS) $(LDFLAGS) $(LDLIBS)

$(LIBOUT)/$(SONAME): $(SHARED)
	ln -sf $(notdir $(SHARED)) $@

$(LIBOUT)/libcvis.so: $(LIBOUT)/$(SONAME)
	ln -sf $(SONAME) $@

$(STATIC): $(OBJS)
	@mkdir -p $(LIBOUT)
	rm -f $@
	ar rcs $@ $(OBJS)

# The .pc file names PREFIX, LIBDIR and INCLUDEDIR, which may change from one
# make call to the next: `install` writes it afresh with the current ones.
PC_SED := sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|'

$(BUILD)/cvis.pc: pkgconfig/cvis.pc.in include/cvis.h
	@mkdir -p $(BUILD)
	$(PC_SED) $< > $@

-include $(DEPS)

# ---------------------------------------------------------------- examples
# Examples use only the public header and link the shared library (and zlib,
# which the Fashion-MNIST reader uses: harmless for the others).
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLES := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
CFLAGS_APP := -std=c11 $(OPT) -g $(WARN) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude $(EXTRA_CFLAGS)
APP_LDFLAGS := -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) -lcvis -lz -lm

examples: $(EXAMPLES) $(BUILD)/bin/cvis

# The cvis command: public API only, like the examples; installed by make install.
$(BUILD)/bin/cvis: tools/cvis.c $(SHARED) $(LIBOUT)/libcvis.so include/cvis.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_APP) $< -o $@ $(APP_LDFLAGS)

$(BUILD)/examples/%: examples/%.c $(wildcard examples/*.h) $(SHARED) $(LIBOUT)/libcvis.so include/cvis.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_APP) $< -o $@ $(APP_LDFLAGS)

# ------------------------------------------------------------------- tests
# C tests link the static library, so that they can reach internals too.
TEST_SRCS := $(wildcard tests/c/test_*.c)
TESTS := $(TEST_SRCS:tests/c/%.c=$(BUILD)/tests/%)
CFLAGS_TEST := $(CFLAGS_LIB) -Itests/c

$(BUILD)/tests/%: tests/c/%.c tests/c/check.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TEST) $< -o $@ $(STATIC) $(LDFLAGS) $(LDLIBS)

c-tests: $(TESTS)

# make bench: libcvis against PyTorch, interleaved (bench/run.py; 6 to 7
# minutes on the 2-core machine at load 1).  BENCH_ARGS=--quick: a smoke run.
BENCH_ARGS ?=
$(BUILD)/bench/bench: bench/bench.c examples/tutorial_model.h $(SHARED) $(LIBOUT)/libcvis.so include/cvis.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_APP) $< -o $@ $(APP_LDFLAGS) -lopenblas

bench: all $(BUILD)/bench/bench
	/usr/bin/python3 bench/run.py $(BENCH_ARGS)

deps:
	@bash tools/deps.sh build

# The README's two commands.  Each installs what it needs first.
# make demo trains the tutorial's network once (the weights are cached in
# build/demo) and then draws the whole tutorial into build/demo/index.html.
DEMO_DIR ?= $(BUILD)/demo
DEMO_WEIGHTS := $(DEMO_DIR)/tutorial_model.npz
DEMO_TRAIN_ARGS ?=
DEMO_ARGS ?=
demo: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(DEMO_DIR)
	@start=$$(date +%s); \
	if [ ! -f $(DEMO_WEIGHTS) ]; then \
		./$(BUILD)/examples/train_shapes -o $(DEMO_WEIGHTS) $(DEMO_TRAIN_ARGS) || exit 1; \
	else echo "using the trained weights in $(DEMO_WEIGHTS) (delete them to train again)"; fi; \
	./$(BUILD)/examples/demo -w $(DEMO_WEIGHTS) -o $(DEMO_DIR) $(DEMO_ARGS) || exit 1; \
	echo "make demo: $$(( $$(date +%s) - start )) s in all"

# make compare measures every method on both trained example models
# (docs/comparison.md); the weights are trained once and cached in
# build/compare, the tables written to build/compare/comparison.md.
COMPARE_DIR ?= $(BUILD)/compare
COMPARE_ARGS ?= --n 16 --fashion-n 100 --rise-masks 500
compare: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(COMPARE_DIR)
	@if [ ! -f $(COMPARE_DIR)/shapes.npz ]; then \
		./$(BUILD)/examples/train_shapes -o $(COMPARE_DIR)/shapes.npz --quiet || exit 1; fi; \
	if [ ! -f $(COMPARE_DIR)/fashion.npz ]; then \
		./$(BUILD)/examples/train_fashion -o $(COMPARE_DIR)/fashion.npz --quiet || exit 1; fi; \
	./$(BUILD)/examples/compare --shapes $(COMPARE_DIR)/shapes.npz \
		--fashion $(COMPARE_DIR)/fashion.npz $(COMPARE_ARGS) > $(COMPARE_DIR)/comparison.md \
		|| exit 1; cat $(COMPARE_DIR)/comparison.md

test: test-deps
	@$(MAKE) --no-print-directory check

test-deps: deps
	@bash tools/deps.sh test

# check: everything, with one closing summary line.
check: all c-tests
	@PYTHON="$(PYTHON)" BUILD="$(BUILD)" bash tests/run_all.sh

# The whole suite with AddressSanitizer and UndefinedBehaviorSanitizer.
# Its static library stays under build/asan, so that the normal build's
# lib/libcvis.a is never replaced by an instrumented one.
check-asan:
	$(MAKE) BUILD=build/asan LIBOUT=build/asan/lib OPT="-O1" \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" c-tests fuzz-replay
	@BUILD=build/asan SANITIZED=1 bash tests/run_c.sh

# The C tests, the examples and the cvis command under valgrind memcheck:
# zero errors and zero definite or indirect leaks (tests/valgrind.sh).
check-valgrind: all c-tests
	@BUILD=$(BUILD) VALGRIND_SKIP="$(VALGRIND_SKIP)" VALGRIND_QUICK="$(VALGRIND_QUICK)" bash tests/valgrind.sh

# The concurrency test (tests/c/test_threads.c) under ThreadSanitizer, on a
# library built with it under build/tsan.  OpenBLAS's code is not
# instrumented (its pthread calls are still seen by TSan).
TSAN_TESTS ?= test_threads
check-tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan LIBOUT=build/tsan/lib OPT="-O1" \
		EXTRA_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=thread" $(TSAN_TESTS:%=build/tsan/tests/%)
	@for t in $(TSAN_TESTS); do \
		TSAN_OPTIONS="halt_on_error=1 exitcode=66 $(TSAN_OPTIONS)" build/tsan/tests/$$t || exit 1; done

# -------------------------------------------------------------------- ABI
# abi/libcvis.abi is the baseline of the 1.x ABI, written by abidw with
# source locations (abidiff needs them to see layout changes).  abi-check
# compares the built library with it (additions allowed, anything else
# fails) and checks exports, SONAME and the header (abi/check.sh);
# abi-fixture shows that a changed signature is caught (abi/fixture.sh).
# Write a new baseline only when the ABI may change: a new major version,
# or a minor one that added functions (see docs/abi.md).
ABI_BASELINE := abi/libcvis.abi
abi-baseline: $(SHARED)
	abidw --headers-dir include --out-file $(ABI_BASELINE) $(SHARED)

abi-check: $(SHARED)
	@bash abi/check.sh $(SHARED) $(ABI_BASELINE) include $(VERSION_MAJOR)

abi-fixture: $(SHARED)
	@bash abi/fixture.sh $(BUILD) $(abspath $(ABI_BASELINE)) $(VERSION_MAJOR) $(VERSION)

# ----------------------------------------------------------------- fuzzing
# libFuzzer targets (tests/fuzz/fuzz_*.c) over a clang build of the library
# with AddressSanitizer and UndefinedBehaviorSanitizer, kept under
# build/fuzz.  `make fuzz FUZZ_SECONDS=N` runs each target for N seconds on
# its corpus (build/fuzz/corpus/<target>, grown from the seeds that
# tests/fuzz/make_seeds.* write and the regression inputs under
# tests/fuzz/regressions).  A crash fails the run and leaves the input in
# build/fuzz/crashes.
FUZZ_SECONDS ?= 30
FUZZ_SEED ?=
FUZZ_TARGETS := onnx npz image model
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_HEADERS := tests/fuzz/fuzz.h tests/fuzz/seed_models.h

# Built by a clang sub-make (its STATIC is then build/fuzz/lib/libcvis.a).
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HEADERS) $(STATIC)
	$(CC) $(CFLAGS_LIB) -Itests/fuzz -fsanitize=fuzzer $< -o $@ $(STATIC) $(LDLIBS)

fuzz-build:
	@$(MAKE) --no-print-directory CC=clang BUILD=$(FUZZ_DIR) LIBOUT=$(FUZZ_DIR)/lib OPT=-O1 \
		EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" LDFLAGS="$(FUZZ_SAN)" \
		$(FUZZ_BINS)

# Seeds come from the normal build, from valid files (see make_seeds.c).
$(FUZZ_DIR)/make_seeds: tests/fuzz/make_seeds.c $(FUZZ_HEADERS) tests/c/jpeg_samples.h tests/c/gif_sample.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TEST) -Itests/fuzz $< -o $@ $(STATIC) $(LDFLAGS) $(LDLIBS)

$(FUZZ_DIR)/seeds/.done: $(FUZZ_DIR)/make_seeds tests/fuzz/make_seeds.py
	rm -rf $(FUZZ_DIR)/seeds
	$(FUZZ_DIR)/make_seeds $(FUZZ_DIR)/seeds
	@if [ -n "$(PYTHON)" ]; then $(PYTHON) tests/fuzz/make_seeds.py $(FUZZ_DIR)/seeds; fi
	touch $@

fuzz-seeds: $(FUZZ_DIR)/seeds/.done

# The targets without libFuzzer (tests/fuzz/replay.c) in the current build,
# replaying the regression inputs and, when they exist, the seeds.
FUZZ_REPLAY := $(FUZZ_TARGETS:%=$(BUILD)/fuzz-replay/fuzz_%)
$(BUILD)/fuzz-replay/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HEADERS) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TEST) -Itests/fuzz $< tests/fuzz/replay.c -o $@ $(STATIC) $(LDFLAGS) $(LDLIBS)

fuzz-replay: $(FUZZ_REPLAY)
	@for t in $(FUZZ_TARGETS); do \
		kind=$$t; [ $$t = model ] && kind=onnx; \
		$(BUILD)/fuzz-replay/fuzz_$$t tests/fuzz/regressions/$$t $(FUZZ_DIR)/seeds/$$kind || exit 1; \
	done

fuzz: fuzz-build fuzz-seeds
	@FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEED=$(FUZZ_SEED) \
		bash tests/fuzz/run.sh $(FUZZ_TARGETS)

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/cvis.h $(DESTDIR)$(INCLUDEDIR)/cvis.h
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libcvis.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	$(PC_SED) pkgconfig/cvis.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/cvis.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/cvis.pc
	install -d $(DESTDIR)$(BINDIR)
	$(CC) $(CFLAGS_APP) tools/cvis.c -o $(DESTDIR)$(BINDIR)/cvis -L$(LIBOUT) -Wl,-rpath,$(LIBDIR) \
		-lcvis -lm

clean:
	rm -rf $(BUILD) lib/libcvis.so* lib/libcvis.a

.PHONY: all examples c-tests check check-asan deps test-deps demo compare test install clean bench \
	fuzz fuzz-build fuzz-seeds check-tsan check-valgrind \
	abi-baseline abi-check abi-fixture fuzz-replay
