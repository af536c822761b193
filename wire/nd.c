/* nd.c: placeholder until implemented. */
typedef int bitw_placeholder_nd_;
