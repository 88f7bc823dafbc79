/* A minimal test harness: CHECK records a failure and goes on; TEST_SUMMARY prints the closing
 * line ("N passed, N failed") and gives the exit status. */
#pragma once
#include <stdint.h>
#include <stdio.h>

static int testing_passed, testing_failed;

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (cond) {                                                                \
			testing_passed++;                                                  \
		} else {                                                                   \
			testing_failed++;                                                  \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                                     \
	do {                                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);                        \
		if (a_ == b_) {                                                            \
			testing_passed++;                                                  \
		} else {                                                                   \
			testing_failed++;                                                  \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n",        \
				__FILE__, __LINE__, #a, a_, #b, b_);                       \
		}                                                                          \
	} while (0)

static inline int testing_summary(void)
{
	printf("%d passed, %d failed\n", testing_passed, testing_failed);
	return testing_failed ? 1 : (testing_passed ? 0 : 1);
}
#define TEST_SUMMARY() testing_summary()

/* xorshift64: the same pseudo-random inputs on every run, from the test's own seed. */
static inline uint32_t testing_rand(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return (uint32_t)(*state >> 11);
}
