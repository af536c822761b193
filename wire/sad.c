/* sad.c: placeholder until implemented. */
typedef int bitw_placeholder_sad_;
