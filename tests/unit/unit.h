/* The one main() of every unit suite: register a table of tests, run them verbosely,
 * exit 1 when an assertion failed (2 when CUnit itself could not start). */
#ifndef LS_UNIT_H
#define LS_UNIT_H

#include <CUnit/Basic.h>
#include <stddef.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

static inline int unit_run(const char *suite, const struct unit_test *t, size_t n)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	CU_pSuite s = CU_add_suite(suite, NULL, NULL);
	for (size_t i = 0; s && i < n; i++)
		if (!CU_add_test(s, t[i].name, t[i].fn))
			s = NULL;
	if (!s) {
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}

#define UNIT_MAIN(suite, ...)                                                      \
	int main(void)                                                             \
	{                                                                          \
		static const struct unit_test tests_[] = { __VA_ARGS__ };          \
		return unit_run(suite, tests_, sizeof(tests_) / sizeof(tests_[0])); \
	}

#endif
