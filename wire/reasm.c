/* reasm.c: placeholder until implemented. */
typedef int bitw_placeholder_reasm_;
