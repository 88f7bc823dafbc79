/* The policy text the library sends the DNS guard: whole texts parse; a text without its end
 * line (cut short, so its last name may be shortened) or with a bad line changes nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnsguard/policy_text.h"
#include "testing.h"

static int parse(const char *text, struct egress_policy **p)
{
	char *copy = strdup(text);
	int rc = policy_text_parse(copy, p);

	free(copy);
	return rc;
}

int main(void)
{
	static const char whole[] = "allow\napi.github.com\n10.0.0.0/8\n1.2.3.4:443\n#end\n";
	struct egress_policy *p = NULL;
	struct egress_config cfg = { .quiet = 1 };
	struct egress *e = NULL;

	CHECK_EQ(parse(whole, &p), 0);
	CHECK_EQ(egress_new(&cfg, &e), 0);
	egress_set_policy(e, p);
	CHECK(egress_name_allowed(e, "api.github.com"));
	CHECK(!egress_name_allowed(e, "api.github.co"));
	egress_free(e);
	CHECK_EQ(parse("none\n#end\n", &p), 0);
	egress_policy_free(p);
	CHECK_EQ(parse("all\n#end\n", &p), 0);
	egress_policy_free(p);
	/* Every cut of a whole text is refused: none ends with the end line. */
	for (size_t cut = 0; cut < sizeof(whole) - 1; cut++) {
		char text[sizeof(whole)];

		memcpy(text, whole, cut);
		text[cut] = 0;
		CHECK_EQ(policy_text_parse(text, &p), -EINVAL);
	}
	CHECK_EQ(parse("sometimes\n#end\n", &p), -EINVAL);
	CHECK_EQ(parse("allow\nnot a name!\n#end\n", &p), -EINVAL);
	CHECK_EQ(parse("allow\n10.0.0.1/8\n#end\n", &p), -EINVAL);
	CHECK_EQ(parse("allow\nx.org#end\n", &p), -EINVAL);
	CHECK_EQ(parse("#end\n", &p), -EINVAL);
	CHECK_EQ(parse("", &p), -EINVAL);
	return TEST_SUMMARY();
}
