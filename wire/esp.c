/* esp.c: placeholder until implemented. */
typedef int bitw_placeholder_esp_;
