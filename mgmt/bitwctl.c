// bitwctl: the command-line client of bitwd's REST API (placeholder until the CLI lands).
#include <stdio.h>

int main(void)
{
	fputs("bitwctl: not implemented yet\n", stderr);
	return 64;
}
