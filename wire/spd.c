/* spd.c: placeholder until implemented. */
typedef int bitw_placeholder_spd_;
