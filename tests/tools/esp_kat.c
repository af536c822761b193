/* esp_kat.c: placeholder. */
int main(void) { return 0; }
