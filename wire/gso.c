/* gso.c: placeholder until implemented. */
typedef int bitw_placeholder_gso_;
