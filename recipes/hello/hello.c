/* hello: print a greeting. A tiny program for exercising forge's build,
 * check, strip and subpackage steps. */
#include <stdio.h>

#include "hello.h"

int main(void)
{
	if (puts(HELLO_GREETING) == EOF)
		return 1;
	return 0;
}
