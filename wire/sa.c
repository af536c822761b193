/* sa.c: placeholder until implemented. */
typedef int bitw_placeholder_sa_;
