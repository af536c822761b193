/* main.c: bitw-wire entry point (placeholder). */
int main(void) { return 0; }
