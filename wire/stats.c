/* stats.c: placeholder until implemented. */
typedef int bitw_placeholder_stats_;
