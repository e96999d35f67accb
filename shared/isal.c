/* Loading ISA-L on first use (see isal.h). */
#include "isal.h"

#include <dlfcn.h>
#include <isa-l/erasure_code.h>
#include <stdbool.h>
#include <stddef.h>

#include "log.h"

#ifndef LS_ISAL_SONAME
#define LS_ISAL_SONAME "libisal.so.2"
#endif

static struct ls_isal lib;
static bool tried, loaded;

/* Each pointer gets the type of the header's declaration, so a changed signature in a
 * newer ISA-L fails to compile here rather than misbehaving at run time. */
#define LOAD(h, name)                                                     \
	do {                                                              \
		__typeof__(&name) fn_;                                    \
		*(void **)&fn_ = dlsym(h, #name);                         \
		if (!fn_)                                                 \
			goto fail;                                        \
		lib.name = fn_;                                           \
	} while (0)

const struct ls_isal *ls_isal(void)
{
	void *h;

	if (tried)
		return loaded ? &lib : NULL;
	tried = true;
	h = dlopen(LS_ISAL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		ls_err("FEC unavailable: cannot load %s: %s", LS_ISAL_SONAME, dlerror());
		return NULL;
	}
	LOAD(h, gf_mul);
	LOAD(h, gf_inv);
	LOAD(h, gf_invert_matrix);
	LOAD(h, ec_init_tables);
	LOAD(h, ec_encode_data);
	loaded = true;
	return &lib;
fail:
	ls_err("FEC unavailable: %s lacks a symbol: %s", LS_ISAL_SONAME, dlerror());
	dlclose(h);
	return NULL;
}
