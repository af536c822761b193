/* neigh.c: placeholder until implemented. */
typedef int bitw_placeholder_neigh_;
