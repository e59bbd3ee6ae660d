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
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_LIB := -std=c11 $(OPT) -g $(WARN) -fPIC -fvisibility=hidden -DCVIS_BUILDING \
	-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Ilib -I/usr/include/stb $(EXTRA_CFLAGS)
LDLIBS := -lopenblas -lz -lm -lpthread

BUILD ?= build
SRCS := $(sort $(wildcard lib/*.c lib/*/*.c))
OBJS := $(SRCS:%.c=$(BUILD)/obj/%.o)
DEPS := $(OBJS:.o=.d)

SONAME := libcvis.so.$(VERSION_MAJOR)
SHARED := lib/libcvis.so.$(VERSION)
# A build in another directory (the sanitizer build) keeps its own static
# library, so that it never replaces the normal one.
STATIC := $(if $(filter build,$(BUILD)),lib/libcvis.a,$(BUILD)/libcvis.a)

all: $(SHARED) lib/libcvis.so $(STATIC) $(BUILD)/cvis.pc examples

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LIB) -MMD -MP -c $< -o $@

$(SHARED): $(OBJS) lib/cvis.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/cvis.map -Wl,-z,defs \
		-o $@ $(OBJS) $(LDFLAGS) $(LDLIBS)

lib/$(SONAME): $(SHARED)
	ln -sf $(notdir $(SHARED)) $@

lib/libcvis.so: lib/$(SONAME)
	ln -sf $(SONAME) $@

$(STATIC): $(OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(OBJS)

$(BUILD)/cvis.pc: pkgconfig/cvis.pc.in include/cvis.h
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' $< > $@

-include $(DEPS)

# ---------------------------------------------------------------- examples
# Examples use only the public header and link the shared library.
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLES := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
CFLAGS_APP := -std=c11 $(OPT) -g $(WARN) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude $(EXTRA_CFLAGS)
APP_LDFLAGS := -Llib -Wl,-rpath,'$$ORIGIN/../../lib' -lcvis -lm

examples: $(EXAMPLES)

$(BUILD)/examples/%: examples/%.c $(SHARED) lib/libcvis.so include/cvis.h
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

deps:
	@bash tools/deps.sh build

# The README's two commands.  Each installs what it needs first.
demo: deps
	@$(MAKE) --no-print-directory all
	./$(BUILD)/examples/layers

test: test-deps
	@$(MAKE) --no-print-directory check

test-deps: deps
	@bash tools/deps.sh test

# check: everything, with one closing summary line.
check: all c-tests
	@PYTHON="$(PYTHON)" BUILD="$(BUILD)" bash tests/run_all.sh

# The whole suite with AddressSanitizer and UndefinedBehaviorSanitizer.
check-asan:
	$(MAKE) BUILD=build/asan OPT="-O1" \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" c-tests
	@BUILD=build/asan SANITIZED=1 bash tests/run_c.sh

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/cvis.h $(DESTDIR)$(INCLUDEDIR)/cvis.h
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libcvis.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(BUILD)/cvis.pc $(DESTDIR)$(LIBDIR)/pkgconfig/cvis.pc

clean:
	rm -rf $(BUILD) lib/libcvis.so* lib/libcvis.a

.PHONY: all examples c-tests check check-asan deps test-deps demo test install clean
