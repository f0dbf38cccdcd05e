# syncbridge: build, install and test.
#
#   make                      build the release layer and tools
#   sudo make install         system-wide under $(PREFIX) (default /usr/local)
#   make install-user         for the current user, under ~/.local
#   make DESTDIR=pkg PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu install
#                             staged install for distribution packages
#   make test                 the test suite (tests/run.sh)
#   make demo                 vkcube through the layer on a headless compositor

CARGO   ?= cargo
INSTALL ?= install
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
# Where the built files are taken from (cargo's release output by default).
BUILD_DIR ?= target/release

USER_PREFIX ?= $(HOME)/.local

LIB_NAME      := libVkLayer_syncbridge.so
MANIFEST_NAME := VkLayer_syncbridge.json
LIB_OUT       := $(BUILD_DIR)/$(LIB_NAME)
INFO_OUT      := $(BUILD_DIR)/syncbridge-info

# $(call install-files,libdir,bindir,datadir): the library, the tool and both
# manifests. library_path in the manifests is the final path, without DESTDIR.
define install-files
	$(INSTALL) -d "$(DESTDIR)$(1)" "$(DESTDIR)$(2)" \
		"$(DESTDIR)$(3)/vulkan/explicit_layer.d" "$(DESTDIR)$(3)/vulkan/implicit_layer.d"
	$(INSTALL) -m 0755 "$(LIB_OUT)" "$(DESTDIR)$(1)/$(LIB_NAME)"
	$(INSTALL) -m 0755 "$(INFO_OUT)" "$(DESTDIR)$(2)/syncbridge-info"
	sed 's|@LIBRARY_PATH@|$(1)/$(LIB_NAME)|' manifest/VkLayer_syncbridge.json.in \
		> "$(DESTDIR)$(3)/vulkan/explicit_layer.d/$(MANIFEST_NAME)"
	sed 's|@LIBRARY_PATH@|$(1)/$(LIB_NAME)|' manifest/VkLayer_syncbridge_implicit.json.in \
		> "$(DESTDIR)$(3)/vulkan/implicit_layer.d/$(MANIFEST_NAME)"
	chmod 0644 "$(DESTDIR)$(3)/vulkan/explicit_layer.d/$(MANIFEST_NAME)" \
		"$(DESTDIR)$(3)/vulkan/implicit_layer.d/$(MANIFEST_NAME)"
endef

define uninstall-files
	rm -f "$(DESTDIR)$(1)/$(LIB_NAME)" "$(DESTDIR)$(2)/syncbridge-info" \
		"$(DESTDIR)$(3)/vulkan/explicit_layer.d/$(MANIFEST_NAME)" \
		"$(DESTDIR)$(3)/vulkan/implicit_layer.d/$(MANIFEST_NAME)"
endef

.PHONY: all build install install-user uninstall uninstall-user test demo clean

all: build

build:
	$(CARGO) build --release

# Installing does not rebuild (so `sudo make install` needs no toolchain for
# root); it builds only when nothing was built yet.
$(LIB_OUT) $(INFO_OUT):
	$(CARGO) build --release

install: $(LIB_OUT) $(INFO_OUT)
	$(call install-files,$(LIBDIR),$(BINDIR),$(DATADIR))

install-user: $(LIB_OUT) $(INFO_OUT)
	$(call install-files,$(USER_PREFIX)/lib,$(USER_PREFIX)/bin,$(USER_PREFIX)/share)

uninstall:
	$(call uninstall-files,$(LIBDIR),$(BINDIR),$(DATADIR))

uninstall-user:
	$(call uninstall-files,$(USER_PREFIX)/lib,$(USER_PREFIX)/bin,$(USER_PREFIX)/share)

test:
	./tests/run.sh

demo:
	./demos/run.sh

clean:
	$(CARGO) clean
