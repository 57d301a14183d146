# cohortbridge — build, test, lint, demo.
#
#   make            build build/cohortbridge
#   make test       install missing packages, build, run the whole suite on a throwaway PostgreSQL
#   make demo       install missing packages, build, show the bridge at work on an embedded
#                   PostgreSQL and the Discord simulator: plan, channels, learners registering
#   make bench      benchmarks of the hot paths, with figures and ratios
#   make lint       clang-format check, cppcheck, clang-tidy, banned functions
#   make fuzz       libFuzzer on the readers of outside bytes, FUZZ_SECONDS (60) each
#   make deps       install what a fresh Debian 12 machine lacks (as root)
#   make SANITIZE=address,undefined test   the same suite under sanitizers (built in build/san)

CC       ?= cc
PKGS     := libuv libwebsockets libcurl jansson libpq zlib libutf8proc
# libxml2 and libical are loaded when the first XML document or calendar arrives
# (connectors/xmllib.c, connectors/icallib.c): their headers only, no link
PKGS_DL  := libxml-2.0 libical
SANITIZE ?=

ifeq ($(strip $(SANITIZE)),)
BUILD    := build
SANFLAGS :=
else
BUILD    := build/san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wpointer-arith -Wundef -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CPPFLAGS += -std=c11 -D_DEFAULT_SOURCE -MMD -MP -Ibridge -Idb -Iconnectors -Imappings -Itests/unit -I$(BUILD)/gen
ALLCFLAGS = $(CPPFLAGS) $(CFLAGS) $(WARN) $(SANFLAGS) $(PKG_CFLAGS)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) $(PKGS_DL) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS   = $(PKG_LIBS) -lm

LIB_SRC  := $(filter-out bridge/main.c,$(wildcard bridge/*.c)) $(wildcard db/*.c) \
            $(wildcard connectors/*.c) $(wildcard mappings/*.c)
GEN_SRC  := $(BUILD)/gen/embedded.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/embedded.o
TEST_SRC := $(wildcard tests/unit/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
EMBEDDED := deploy/config.schema.json mappings/mapping.schema.json $(sort $(wildcard db/migrations/*.sql))

BIN      := $(BUILD)/cohortbridge
TESTBIN  := $(BUILD)/cohortbridge-tests
BENCHBIN := $(BUILD)/cohortbridge-bench
SIMBIN   := $(BUILD)/discord-sim
SIM_SRC  := $(wildcard tests/sim/*.c)
SIM_OBJ  := $(SIM_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all deps test demo lint bench clean check-deps fuzz
all: $(BIN) $(SIMBIN)

$(BUILD)/gen/embedded.c: bridge/embed.sh $(EMBEDDED)
	@mkdir -p $(dir $@)
	sh bridge/embed.sh $(EMBEDDED) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/embedded.o: $(BUILD)/gen/embedded.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.c | $(GEN_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(BUILD)/libcohortbridge.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/bridge/main.o $(BUILD)/libcohortbridge.a
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(TESTBIN): $(TEST_OBJ) $(BUILD)/libcohortbridge.a
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(SIMBIN): $(SIM_OBJ)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BENCHBIN): $(BUILD)/obj/tests/bench/bench.o $(BUILD)/libcohortbridge.a
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer targets for the entry points that read outside bytes (clang; not under SANITIZE,
# they carry their own sanitizers). `make fuzz` runs each for FUZZ_SECONDS; the suite runs
# each briefly.
FUZZ_DIR   := build/fuzz
FUZZERS    := csv roster_json moodle_xml jtok frab_xml schedule_json ical
FUZZBINS   := $(FUZZERS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_SECONDS ?= 60
FUZZ_FLAGS  = -std=c11 -D_DEFAULT_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
              -Ibridge -Iconnectors $(PKG_CFLAGS)

$(FUZZ_DIR)/fuzz_csv $(FUZZ_DIR)/fuzz_roster_json: connectors/roster_file.c
$(FUZZ_DIR)/fuzz_moodle_xml: connectors/moodle_xml.c connectors/xmllib.c
$(FUZZ_DIR)/fuzz_jtok: bridge/jtok.c
$(FUZZ_DIR)/fuzz_frab_xml $(FUZZ_DIR)/fuzz_schedule_json: connectors/schedule.c connectors/xmllib.c \
  bridge/jpos.c
$(FUZZ_DIR)/fuzz_ical: connectors/ical.c connectors/icallib.c
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c bridge/err.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZBINS)
	@for f in $(FUZZERS); do \
	  mkdir -p $(FUZZ_DIR)/corpus-$$f && cp -n tests/fuzz/corpus/$$f/* $(FUZZ_DIR)/corpus-$$f/; \
	  echo "fuzz_$$f: $(FUZZ_SECONDS) s"; \
	  $(FUZZ_DIR)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    $(FUZZ_DIR)/corpus-$$f 2>&1 | tail -2 || exit 1; \
	done

# Packages a fresh Debian 12 machine lacks. `make deps` installs only the missing ones.
DEB_BUILD := build-essential pkg-config libuv1-dev libwebsockets-dev libwebsockets-evlib-uv \
             libcurl4-openssl-dev libjansson-dev libical-dev libpq-dev libxml2-dev zlib1g-dev \
             libjsmn-dev libutf8proc-dev libcmocka-dev postgresql-15 ca-certificates \
             python3-discord clang libclang-rt-14-dev
DEB_LINT  := clang-format clang-tidy cppcheck

deps:
	@sh deploy/install-deps $(DEB_BUILD)

test: deps
	@$(MAKE) --no-print-directory $(BIN) $(SIMBIN) $(TESTBIN) $(FUZZBINS)
	@COHORTBRIDGE_BIN=$(BIN) DISCORD_SIM_BIN=$(SIMBIN) COHORTBRIDGE_FUZZ_DIR=$(FUZZ_DIR) \
	  sh deploy/pg-dev run $(TESTBIN)

demo: deps
	@# the demo acts as learners through the simulator's control API with curl and jq
	@sh deploy/install-deps curl jq
	@$(MAKE) --no-print-directory $(BIN) $(SIMBIN)
	@COHORTBRIDGE_BIN=$(BIN) DISCORD_SIM_BIN=$(SIMBIN) sh deploy/pg-dev run bash deploy/demo

bench: deps
	@# discord.js, a peer of the benchmarks, comes from npm: Node.js from Debian unless present
	@command -v node >/dev/null && command -v npm >/dev/null || sh deploy/install-deps nodejs npm
	@# the calendars benchmark's peer
	@sh deploy/install-deps python3-recurring-ical-events
	@$(MAKE) --no-print-directory $(BENCHBIN) $(SIMBIN) $(BIN)
	@COHORTBRIDGE_BIN=$(BIN) DISCORD_SIM_BIN=$(SIMBIN) sh deploy/pg-dev run $(BENCHBIN)

lint: deps
	@sh deploy/install-deps $(DEB_LINT)
	@$(MAKE) --no-print-directory $(GEN_SRC)
	sh deploy/lint $(BUILD) $(LIB_SRC) bridge/main.c $(TEST_SRC) tests/bench/bench.c $(SIM_SRC) \
	  $(wildcard tests/fuzz/*.c)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(SIM_OBJ:.o=.d) $(BUILD)/obj/bridge/main.d $(BUILD)/obj/tests/bench/bench.d
