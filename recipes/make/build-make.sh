#!/bin/sh
# Build GNU make 4.3 without make and without configure.
#
#   usage: sh build-make.sh HOST_TRIPLET
#   environment: CC, AR, CFLAGS, LDFLAGS
#
# Debian's make-dfsg repack carries no generated `configure` (nor the top
# Makefile.in it would need), and upstream's build.sh reads configure's
# outputs. This script does what configure and build.sh would do on a
# Linux musl system: it writes src/config.h from upstream's src/config.h.in,
# defining what musl provides (the lists below; everything else stays
# #undef), copies the gnulib headers make needs, and compiles and links the
# same sources as Makefile.am's make_SOURCES for POSIX, plus gnulib's glob
# and fnmatch (musl's glob has no GLOB_ALTDIRFUNC, which make needs, as its
# own configure finds on musl). Jobs start with vfork and exec, as
# `configure --disable-posix-spawn` builds make (posix_spawn would need
# gnulib's find-in-path and its error-reporting modules too).
set -eu
host=$1

# Features musl has: `#undef NAME` becomes `#define NAME 1`.
have="HAVE_ALLOCA HAVE_ALLOCA_H HAVE_ATEXIT HAVE_CLOCK_GETTIME HAVE_DIRENT_H
HAVE_DUP HAVE_DUP2 HAVE_FCNTL HAVE_FCNTL_H HAVE_FDOPEN HAVE_FORK HAVE_GETCWD
HAVE_GETDTABLESIZE HAVE_GETGROUPS HAVE_GETHOSTNAME HAVE_GETRLIMIT
HAVE_GETTIMEOFDAY HAVE_INTTYPES_H HAVE_ISATTY HAVE_LIMITS_H HAVE_LOCALE_H
HAVE_LONG_LONG_INT HAVE_LSTAT HAVE_MALLOC_POSIX HAVE_MEMORY_H HAVE_MEMRCHR
HAVE_MKSTEMP HAVE_MKTEMP HAVE_PIPE HAVE_POSIX_SPAWN
HAVE_POSIX_SPAWNATTR_SETSIGMASK HAVE_PSELECT HAVE_READLINK HAVE_REALPATH
HAVE_SA_RESTART HAVE_SETEGID HAVE_SETEUID HAVE_SETLINEBUF HAVE_SETREGID
HAVE_SETREUID HAVE_SETRLIMIT HAVE_SETVBUF HAVE_SIGACTION
HAVE_SIGNED_SIG_ATOMIC_T HAVE_SIGNED_WCHAR_T HAVE_SOCKET HAVE_SPAWN_H
HAVE_STDINT_H HAVE_STDLIB_H HAVE_STPCPY HAVE_STRCASECMP HAVE_STRCOLL
HAVE_STRDUP HAVE_STRERROR_R HAVE_STRINGS_H HAVE_STRING_H HAVE_STRNCASECMP
HAVE_STRNDUP HAVE_STRSIGNAL HAVE_STRUCT_DIRENT_D_TYPE HAVE_SYMLINK
HAVE_SYS_FILE_H HAVE_SYS_PARAM_H HAVE_SYS_RESOURCE_H HAVE_SYS_SELECT_H
HAVE_SYS_SOCKET_H HAVE_SYS_STAT_H HAVE_SYS_TIME_H HAVE_SYS_TYPES_H
HAVE_SYS_WAIT_H HAVE_TTYNAME HAVE_UINTMAX_T HAVE_UMASK HAVE_UNISTD_H
HAVE_UNSIGNED_LONG_LONG_INT HAVE_WAIT3 HAVE_WAITPID HAVE_WCHAR_H
HAVE_WCHAR_T HAVE_WINT_T HAVE_WORKING_FORK HAVE_WORKING_O_NOATIME
HAVE_WORKING_O_NOFOLLOW HAVE__BOOL HAVE_DECL_GETDTABLESIZE
HAVE_DECL_PROGRAM_INVOCATION_NAME HAVE_DECL_PROGRAM_INVOCATION_SHORT_NAME
HAVE_DECL_BSD_SIGNAL HAVE_DECL_STRERROR_R FILE_TIMESTAMP_HI_RES MAKE_JOBSERVER MAKE_SYMLINKS
STDC_HEADERS TIME_WITH_SYS_TIME HAVE_VFORK HAVE_WORKING_VFORK
_ALL_SOURCE _DARWIN_C_SOURCE _GNU_SOURCE _NETBSD_SOURCE _OPENBSD_SOURCE
_POSIX_PTHREAD_SEMANTICS __STDC_WANT_IEC_60559_ATTRIBS_EXT__
__STDC_WANT_IEC_60559_BFP_EXT__ __STDC_WANT_IEC_60559_DFP_EXT__
__STDC_WANT_IEC_60559_FUNCS_EXT__ __STDC_WANT_IEC_60559_TYPES_EXT__
__STDC_WANT_LIB_EXT2__ __STDC_WANT_MATH_SPEC_FUNCS__ _TANDEM_SOURCE
__EXTENSIONS__"
# Declarations musl lacks: `#undef NAME` becomes `#define NAME 0`.
lack="HAVE_DECL_DLERROR HAVE_DECL_DLOPEN HAVE_DECL_DLSYM
HAVE_DECL_SYS_SIGLIST HAVE_DECL__SYS_SIGLIST HAVE_DECL___SYS_SIGLIST
HAVE_DECL___ARGV"

version=4.3
{
  for n in $have; do printf 's/^ *# *undef %s$/#define %s 1/\n' "$n" "$n"; done
  for n in $lack; do printf 's/^ *# *undef %s$/#define %s 0/\n' "$n" "$n"; done
  cat <<SED
s/^#undef PACKAGE\$/#define PACKAGE "make"/
s/^#undef VERSION\$/#define VERSION "$version"/
s/^#undef PACKAGE_NAME\$/#define PACKAGE_NAME "GNU make"/
s/^#undef PACKAGE_TARNAME\$/#define PACKAGE_TARNAME "make"/
s/^#undef PACKAGE_VERSION\$/#define PACKAGE_VERSION "$version"/
s/^#undef PACKAGE_STRING\$/#define PACKAGE_STRING "GNU make $version"/
s/^#undef PACKAGE_BUGREPORT\$/#define PACKAGE_BUGREPORT "bug-make@gnu.org"/
s|^#undef PACKAGE_URL\$|#define PACKAGE_URL "http://www.gnu.org/software/make/"|
s/^#undef MAKE_HOST\$/#define MAKE_HOST "$host"/
s/^#undef PATH_SEPARATOR_CHAR\$/#define PATH_SEPARATOR_CHAR ':'/
s/^#undef RETSIGTYPE\$/#define RETSIGTYPE void/
s/^#undef SCCS_GET\$/#define SCCS_GET "get"/
s/^#undef ST_MTIM_NSEC\$/#define ST_MTIM_NSEC st_mtim.tv_nsec/
SED
} >config.sed
sed -f config.sed src/config.h.in >src/config.h
# Every name of the lists must have been found.
for n in $have $lack; do
  grep -q "^ *# *define $n [01]\$" src/config.h || {
    echo "build-make.sh: $n is not in src/config.h.in" >&2
    exit 1
  }
done

# gnulib headers without substitutions, used as they are.
mkdir -p build/lib
cp lib/glob.in.h build/lib/glob.h
cp lib/fnmatch.in.h build/lib/fnmatch.h

objs=
for f in src/ar src/arscan src/commands src/default src/dir src/expand \
  src/file src/function src/getopt src/getopt1 src/guile src/hash \
  src/implicit src/job src/load src/loadapi src/main src/misc src/output \
  src/read src/remake src/rule src/signame src/strcache src/variable \
  src/version src/vpath src/posixos src/remote-stub \
  lib/glob lib/fnmatch; do
  o="build/$(echo "$f" | tr / _).o"
  # glob.c's K&R-style realloc wrapper (char * for char **) is an error for
  # clang (zig cc) since 16, a warning for gcc: keep it a warning.
  $CC $CFLAGS -Wno-error=incompatible-pointer-types -DHAVE_CONFIG_H -DLOCALEDIR=\"/usr/share/locale\" \
    -DLIBDIR=\"/usr/lib\" -DINCLUDEDIR=\"/usr/include\" \
    -Ibuild/lib -Isrc -Ilib -c -o "$o" "$f.c"
  objs="$objs $o"
done
$CC $CFLAGS $LDFLAGS -o build/make $objs
