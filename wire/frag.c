/* frag.c: placeholder until implemented. */
typedef int bitw_placeholder_frag_;
