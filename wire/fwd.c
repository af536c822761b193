/* fwd.c: placeholder until implemented. */
typedef int bitw_placeholder_fwd_;
