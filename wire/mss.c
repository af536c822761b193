/* mss.c: placeholder until implemented. */
typedef int bitw_placeholder_mss_;
