/* libgreet's check: the greeting and the snprintf-style length. */
#include <string.h>

#include "greet.h"

int main(void)
{
	char buf[64];
	if (greet_format(buf, sizeof buf, "check") != 17)
		return 1;
	return strcmp(buf, "Greetings, check!") != 0;
}
