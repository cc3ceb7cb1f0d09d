/* greet: greet the name given (default: forge) using libgreet. */
#include <stdio.h>

#include <greet.h>

int main(int argc, char **argv)
{
	char buf[256];
	const char *name = argc > 1 ? argv[1] : "forge";
	int n = greet_format(buf, sizeof buf, name);
	if (n < 0 || (size_t)n >= sizeof buf)
		return 1;
	return puts(buf) == EOF;
}
