/* ISA-L's Reed-Solomon primitives, loaded the first time FEC is used: a node that never
 * protects a flow maps none of the library (its pages would count against the
 * dataplane's idle memory budget). The signatures are those of isa-l/erasure_code.h. */
#ifndef LS_ISAL_H
#define LS_ISAL_H

struct ls_isal {
	unsigned char (*gf_mul)(unsigned char a, unsigned char b);
	unsigned char (*gf_inv)(unsigned char a);
	int (*gf_invert_matrix)(unsigned char *in, unsigned char *out, const int n);
	void (*ec_init_tables)(int k, int rows, unsigned char *a, unsigned char *gftbls);
	void (*ec_encode_data)(int len, int k, int rows, unsigned char *gftbls,
			       unsigned char **data, unsigned char **coding);
};

/* The loaded library, or NULL (logged once) when it cannot be loaded. */
const struct ls_isal *ls_isal(void);

#endif
