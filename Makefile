# pyheap, the usual way:
#   make                  build the library and the report tool (cargo, release)
#   make install          install into $(DESTDIR)$(PREFIX) (default /usr/local)
#   make uninstall        remove what install put there
# Installs libpyheap.so.X.Y.Z with its links, libpyheap.a, the headers in
# $(INCLUDEDIR)/pyheap, pyheap.pc (pkg-config), a CMake package
# (find_package(pyheap) -> pyheap::pyheap, pyheap::pyheap_static) and the
# pyheap report tool. NO_BUILD=1 installs what is already built in OUT
# (and TOOL).

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
DESTDIR ?=
CARGO ?= cargo
PROFILE ?= release
OUT ?= target/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
NO_BUILD ?=
TOOL ?= $(OUT)/pyheap

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(firstword $(subst ., ,$(VERSION)))
# What the static library needs from the system (rustc's
# --print native-static-libs, without what the C compiler adds itself:
# libgcc_s cannot be linked with -static, and libc always is).
NATIVE_LIBS ?= -lutil -lrt -lpthread -lm -ldl
CMAKE_LIBS := $(subst -l,,$(subst $() $(),;,$(strip $(NATIVE_LIBS))))

SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@MAJOR@|$(MAJOR)|g' -e 's|@NATIVE_LIBS@|$(NATIVE_LIBS)|g' \
	-e 's|@CMAKE_LIBS@|$(CMAKE_LIBS)|g'

.PHONY: all build install uninstall native-libs

all: build

build:
ifeq ($(NO_BUILD),)
	$(CARGO) build --profile $(PROFILE)
endif

# Prints what rustc says the static library needs (for checking NATIVE_LIBS).
native-libs:
	$(CARGO) rustc --profile $(PROFILE) -p pyheap --crate-type staticlib -- --print native-static-libs

install: build
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cmake/pyheap \
		$(DESTDIR)$(INCLUDEDIR)/pyheap $(DESTDIR)$(BINDIR)
	install -m 644 $(OUT)/libpyheap.a $(DESTDIR)$(LIBDIR)/libpyheap.a
	install -m 755 $(OUT)/libpyheap.so $(DESTDIR)$(LIBDIR)/libpyheap.so.$(VERSION)
	ln -sf libpyheap.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libpyheap.so.$(MAJOR)
	ln -sf libpyheap.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libpyheap.so
	install -m 644 include/pyheap.h include/pyheap_inline.h include/structmember.h \
		$(DESTDIR)$(INCLUDEDIR)/pyheap/
	$(SUBST) packaging/pyheap.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/pyheap.pc
	$(SUBST) packaging/pyheapConfig.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/pyheap/pyheapConfig.cmake
	$(SUBST) packaging/pyheapConfigVersion.cmake.in \
		> $(DESTDIR)$(LIBDIR)/cmake/pyheap/pyheapConfigVersion.cmake
	if [ -f $(TOOL) ]; then install -m 755 $(TOOL) $(DESTDIR)$(BINDIR)/pyheap; fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libpyheap.a $(DESTDIR)$(LIBDIR)/libpyheap.so \
		$(DESTDIR)$(LIBDIR)/libpyheap.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libpyheap.so.$(VERSION) \
		$(DESTDIR)$(LIBDIR)/pkgconfig/pyheap.pc $(DESTDIR)$(BINDIR)/pyheap
	rm -rf $(DESTDIR)$(INCLUDEDIR)/pyheap $(DESTDIR)$(LIBDIR)/cmake/pyheap
