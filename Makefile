# LightSpeed — the one build entry.
#   make            build every program into build/bin/
#   make test       build and run every test (installs missing Debian packages first)
#   make demo       run the product here: echo game server, proxy, client
#   make bench      run the benchmarks and print the table
#   make fuzz       run the fuzz harnesses (FUZZ_SECONDS each, default 30)
#   make deps       install the Debian packages the project needs
#   make install    install programs, units and example configs (PREFIX, DESTDIR)

PREFIX  ?= /usr/local
# Shipped game profiles (profiles/*.toml); a user's directory overrides them.
PROFILEDIR ?= $(PREFIX)/share/lightspeed/profiles
DESTDIR ?=
CC      ?= cc
CFLAGS  ?= -O2 -g
LDFLAGS ?=
PKG_CONFIG ?= pkg-config
# What the build needs whatever CFLAGS says (`make CFLAGS=-O0` keeps the include path,
# the language level and the warnings).
LS_CFLAGS := -std=c11 -D_GNU_SOURCE -fno-math-errno -MMD -MP -Ishared \
             -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wpointer-arith -Wcast-qual -Werror=implicit-function-declaration

B := build
Q := @
ifeq ($(V),1)
Q :=
endif

# Libraries, each through pkg-config.
SHARED_PKGS := jansson nettle
TEST_PKGS   := cunit
# ISA-L is loaded on first use (shared/isal.c): only its headers and soname at build time.
ISAL_SONAME := $(shell objdump -p $$($(PKG_CONFIG) --variable=libdir libisal 2>/dev/null)/libisal.so 2>/dev/null | awk '/SONAME/ { print $$2 }')
LS_CFLAGS += $(call pc_cflags,libisal) $(if $(ISAL_SONAME),-DLS_ISAL_SONAME='"$(ISAL_SONAME)"')
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs   = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)
# The control plane's libraries (controller, agent, lsctl; shared/ modules they use).
CTRL_PKGS := libuv libmicrohttpd gnutls libngtcp2 libngtcp2_crypto_gnutls libcares
LSCTL_PKGS := libcurl
LS_CFLAGS += $(call pc_cflags,$(SHARED_PKGS) $(TEST_PKGS) $(CTRL_PKGS) $(LSCTL_PKGS))
LS_CFLAGS += -DLS_PROFILE_DIR='"$(PROFILEDIR)"'
ALL_CFLAGS = $(LS_CFLAGS) $(CFLAGS)

# The dataplane programs link jansson and nettle statically, so that an idle node
# maps only the library code it uses: the idle memory budget (2 MiB RSS) counts every
# resident page of every shared library (libm is linked only when used: at -O0 sqrt
# and floor are calls).
DP_LIBS := -Wl,-Bstatic $(call pc_libs,jansson nettle) -Wl,-Bdynamic -Wl,--as-needed -lm -Wl,--no-as-needed

LIB      := $(B)/lib/libls.a
LIB_SRC  := $(wildcard shared/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)

# Programs: each is a folder's files (or a prefix's) plus the libraries it links.
PROXY_SRC      := $(wildcard dataplane/proxy*.c)
CLIENT_SRC     := $(wildcard dataplane/client*.c)
CONTROLLER_SRC := $(wildcard controller/*.c)
AGENT_SRC      := $(wildcard agent/*.c)
LSCTL_SRC      := $(wildcard api/*.c)
PROGS :=

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(TOOL_SRC:tests/tools/%.c=$(B)/tests/%)
NETSIM_SRC := $(wildcard tests/netsim/*.c)
NETSIM     := $(B)/tests/ls-netsim
BENCH_SRC  := $(wildcard tests/bench/*.c)
BENCH_BINS := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

.PHONY: all test demo bench fuzz deps install clean check-deps tools
# Keep objects of programs built through pattern rules (no rebuild on every run).
.SECONDARY:
all:

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# $(call program,NAME,MAIN,SOURCES,LIBS): build/bin/NAME from MAIN, the other SOURCES
# (kept as a library, build/lib/libNAME.a, so that a unit suite links one module of a
# program without its main), libls and LIBS.
PROG_LIBS :=
# The binary is built once MAIN exists; until then the folder's modules still form the
# library (a unit suite can test them before the program's main lands).
define program
PROGS += $(if $(wildcard $(2)),$(B)/bin/$(1))
PROG_LIBS += $(B)/lib/lib$(1).a
$(B)/lib/lib$(1).a: $(patsubst %.c,$(B)/obj/%.o,$(filter-out $(2),$(3)))
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  AR      $$@")
	$$(Q)rm -f $$@ && ar rcs $$@ $$^
$(B)/bin/$(1): $(B)/obj/$(2:.c=.o) $(B)/lib/lib$(1).a $(LIB)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $(4)
endef
CTRL_LIBS := $(call pc_libs,$(SHARED_PKGS) $(CTRL_PKGS)) -lm
# The agent tells systemd when it is ready (Type=notify) and feeds its watchdog.
AGENT_LIBS := $(CTRL_LIBS) $(call pc_libs,libsystemd)
$(eval $(call program,lightspeed-proxy,dataplane/proxy.c,$(PROXY_SRC),$(DP_LIBS)))
$(eval $(call program,lightspeed-client,dataplane/client.c,$(CLIENT_SRC),$(DP_LIBS)))
$(if $(CONTROLLER_SRC),$(eval $(call program,lightspeed-controller,controller/controller.c,$(CONTROLLER_SRC),$(CTRL_LIBS))))
$(if $(AGENT_SRC),$(eval $(call program,lightspeed-agent,agent/agent.c,$(AGENT_SRC),$(AGENT_LIBS))))
$(if $(LSCTL_SRC),$(eval $(call program,lsctl,api/lsctl.c,$(LSCTL_SRC),$(call pc_libs,$(SHARED_PKGS) $(LSCTL_PKGS)))))
all: $(PROGS)

# A unit suite links the libraries (it pulls just the modules it uses) and CUnit.
$(B)/tests/test_%: $(B)/obj/tests/unit/test_%.o $(PROG_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(SHARED_PKGS) $(TEST_PKGS) $(CTRL_PKGS)) -lm

# Test tools may run the control plane's HTTP server (shared/httpd) on a libuv loop, and
# drive a program's modules (the controller's QUIC client) as the programs do.
$(B)/tests/%: $(B)/obj/tests/tools/%.o $(PROG_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(SHARED_PKGS) $(CTRL_PKGS)) -lm

# The ML benchmark's tool runs the controller's model code.
$(B)/bench/ml_%: $(B)/obj/tests/bench/ml_%.o $(PROG_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(SHARED_PKGS) $(CTRL_PKGS)) -lm

# Benchmark tools may drive a program's modules too (the agent benchmark drives the
# controller's QUIC client).
$(B)/bench/%: $(B)/obj/tests/bench/%.o $(PROG_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(SHARED_PKGS) $(CTRL_PKGS)) -lm

$(NETSIM): $(NETSIM_SRC:%.c=$(B)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(SHARED_PKGS)) -lm

tools: $(TOOL_BINS) $(if $(NETSIM_SRC),$(NETSIM))

# `make test` works on a machine holding nothing but the repository.
test: check-deps
	$(Q)$(MAKE) --no-print-directory all tools $(UNIT_BINS)
	$(Q)tests/run-all $(B)

# The product on this machine: echo game server, proxy and client on loopback.
demo: check-deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)deploy/demo --build $(B) $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS))

bench:
	$(Q)deploy/install-deps --if-missing bench
	$(Q)$(MAKE) --no-print-directory all tools $(BENCH_BINS)
	$(Q)tests/bench/run $(B)

# Every parser of outside input under libFuzzer with ASan and UBSan (FUZZ_SECONDS each).
fuzz:
	$(Q)deploy/install-deps --if-missing fuzz
	$(Q)tests/fuzz/run $(B)

deps:
	$(Q)deploy/install-deps
	$(Q)web/install-deps

check-deps:
	$(Q)deploy/install-deps --if-missing
	$(Q)web/install-deps --if-missing

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/lightspeed $(DESTDIR)/lib/systemd/system
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PROFILEDIR)
	install -m 0644 profiles/*.toml $(DESTDIR)$(PROFILEDIR)/
	@# The dashboard's files; the controller finds them at $(PREFIX)/share/lightspeed/web.
	install -d $(DESTDIR)$(PREFIX)/share/lightspeed/web/node_modules/uplot/dist
	install -m 0644 web/index.html web/app.js web/style.css web/favicon.svg \
	  $(DESTDIR)$(PREFIX)/share/lightspeed/web/
	install -m 0644 web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css \
	  web/node_modules/uplot/LICENSE $(DESTDIR)$(PREFIX)/share/lightspeed/web/node_modules/uplot/dist/
	@# An existing configuration is the operator's: never overwrite it.
	@for f in deploy/config/*.toml; do \
	  t=$(DESTDIR)/etc/lightspeed/$$(basename $$f); \
	  if [ -e $$t ]; then echo "keeping $$t"; else install -m 0644 $$f $$t; fi; \
	done
	sed 's|@BINDIR@|$(PREFIX)/bin|g' deploy/systemd/lightspeed-proxy.service.in \
	  > $(DESTDIR)/lib/systemd/system/lightspeed-proxy.service
	sed 's|@BINDIR@|$(PREFIX)/bin|g' deploy/systemd/lightspeed-client.service.in \
	  > $(DESTDIR)/lib/systemd/system/lightspeed-client.service
	sed 's|@BINDIR@|$(PREFIX)/bin|g' deploy/systemd/lightspeed-capture.service.in \
	  > $(DESTDIR)/lib/systemd/system/lightspeed-capture.service
	sed 's|@BINDIR@|$(PREFIX)/bin|g' deploy/systemd/lightspeed-agent.service.in \
	  > $(DESTDIR)/lib/systemd/system/lightspeed-agent.service
	sed 's|@BINDIR@|$(PREFIX)/bin|g' deploy/systemd/lightspeed-controller.service.in \
	  > $(DESTDIR)/lib/systemd/system/lightspeed-controller.service

clean:
	rm -rf $(B)

-include $(shell find $(B)/obj -name "*.d" 2>/dev/null)
