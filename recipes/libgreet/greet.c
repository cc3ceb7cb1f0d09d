/* libgreet: build greetings. */
#include <stdio.h>

#include "greet.h"

int greet_format(char *buf, size_t size, const char *name)
{
	return snprintf(buf, size, "Greetings, %s!", name);
}
